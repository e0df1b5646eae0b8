//! Per-op overhead on tiny tensors (the scalar tape and the small MLP).
//!
//! Run with `cargo bench -p tapegrad-tensor --bench small`. For instruction
//! counts, which are far less noisy on a shared machine, run the bench
//! binary under `valgrind --tool=callgrind` with `--bench --profile-time 1`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tapegrad_tensor::Tensor;

fn scalar(c: &mut Criterion) {
    let a = Tensor::<f32>::scalar(0.75);
    let b = Tensor::<f32>::scalar(-1.25);
    let mut g = c.benchmark_group("small_scalar");
    g.bench_function("mul", |bn| bn.iter(|| black_box(&a).mul(&b).unwrap()));
    g.bench_function("add", |bn| bn.iter(|| black_box(&a).add(&b).unwrap()));
    g.bench_function("tanh", |bn| bn.iter(|| black_box(&a).tanh()));
    g.bench_function("sum_all", |bn| bn.iter(|| black_box(&a).sum_all()));
    g.bench_function("reshape", |bn| {
        bn.iter(|| black_box(&a).reshape(&[1, 1]).unwrap())
    });
    g.finish();
}

fn mlp(c: &mut Criterion) {
    let x = Tensor::<f32>::randn_seeded(&[32, 16], 1);
    let bias = Tensor::<f32>::randn_seeded(&[16], 2);
    let w = Tensor::<f32>::randn_seeded(&[16, 16], 3);
    let x1 = Tensor::<f32>::randn_seeded(&[1, 16], 4);
    let mut g = c.benchmark_group("small_mlp");
    g.bench_function("add_bias_32x16", |bn| {
        bn.iter(|| black_box(&x).add(&bias).unwrap())
    });
    g.bench_function("add_32x16", |bn| bn.iter(|| black_box(&x).add(&x).unwrap()));
    g.bench_function("tanh_32x16", |bn| bn.iter(|| black_box(&x).tanh()));
    g.bench_function("matmul_32x16x16", |bn| {
        bn.iter(|| black_box(&x).matmul(&w).unwrap())
    });
    g.bench_function("matmul_t_16x32x16", |bn| {
        bn.iter(|| black_box(&x).t().unwrap().matmul(&x).unwrap())
    });
    g.bench_function("matmul_1x16x16", |bn| {
        bn.iter(|| black_box(&x1).matmul(&w).unwrap())
    });
    g.bench_function("sum_axis0_32x16", |bn| {
        bn.iter(|| black_box(&x).sum(&[0], false).unwrap())
    });
    g.bench_function("sum_axis1_32x16", |bn| {
        bn.iter(|| black_box(&x).sum(&[1], false).unwrap())
    });
    g.bench_function("softmax_axis1_32x16", |bn| {
        bn.iter(|| black_box(&x).softmax(1).unwrap())
    });
    g.bench_function("broadcast_to_32x16", |bn| {
        bn.iter(|| black_box(&bias).broadcast_to(&[32, 16]).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(200))
        .measurement_time(std::time::Duration::from_millis(700));
    targets = scalar, mlp
}
criterion_main!(benches);
