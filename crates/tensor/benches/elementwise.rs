//! Elementwise maps, binary ops and reductions on 1M `f32` elements.
//!
//! Run with `cargo bench -p tapegrad-tensor --bench elementwise`; compare
//! against PyTorch with 2 threads (`torch.set_num_threads(2)`).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tapegrad_tensor::Tensor;

const N: usize = 1 << 20;

fn inputs() -> (Tensor<f32>, Tensor<f32>) {
    (
        Tensor::uniform_seeded(&[1024, 1024], -3.0, 3.0, 1),
        Tensor::uniform_seeded(&[1024, 1024], -3.0, 3.0, 2),
    )
}

fn unary(c: &mut Criterion) {
    let (a, _) = inputs();
    let mut g = c.benchmark_group("unary_1m_f32");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("tanh", |b| b.iter(|| black_box(&a).tanh()));
    g.bench_function("exp", |b| b.iter(|| black_box(&a).exp()));
    // ln on (0, 3]: |a| + 1e-3 keeps every input positive.
    let a_pos = a.abs().unwrap().add_scalar(1e-3).unwrap();
    g.bench_function("ln", |b| b.iter(|| black_box(&a_pos).ln()));
    g.bench_function("sigmoid", |b| b.iter(|| black_box(&a).sigmoid()));
    g.bench_function("relu", |b| b.iter(|| black_box(&a).relu()));
    g.bench_function("mul_scalar", |b| b.iter(|| black_box(&a).mul_scalar(2.0)));
    g.bench_function("neg", |b| b.iter(|| black_box(&a).neg()));
    g.bench_function("abs", |b| b.iter(|| black_box(&a).abs()));
    g.bench_function("sin", |b| b.iter(|| black_box(&a).sin()));
    g.bench_function("cos", |b| b.iter(|| black_box(&a).cos()));
    g.bench_function("softplus", |b| b.iter(|| black_box(&a).softplus()));
    g.bench_function("clamp", |b| b.iter(|| black_box(&a).clamp(-1.0, 1.0)));
    // A short-form exponent (x·x) and a general one (the library's powf).
    g.bench_function("powf_2", |b| b.iter(|| black_box(&a).powf(2.0)));
    let a_abs = a.abs().unwrap();
    g.bench_function("powf_1_5", |b| b.iter(|| black_box(&a_abs).powf(1.5)));
    g.finish();
}

fn binary(c: &mut Criterion) {
    let (a, b_) = inputs();
    let row = Tensor::<f32>::uniform_seeded(&[1024], -1.0, 1.0, 3);
    let s = Tensor::<f32>::scalar(2.0);
    let mask = a.gt_mask(&b_).unwrap();
    let mut g = c.benchmark_group("binary_1m_f32");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("add", |b| b.iter(|| black_box(&a).add(&b_).unwrap()));
    g.bench_function("mul", |b| b.iter(|| black_box(&a).mul(&b_).unwrap()));
    g.bench_function("add_row_broadcast", |b| {
        b.iter(|| black_box(&a).add(&row).unwrap())
    });
    g.bench_function("mul_0d", |b| b.iter(|| black_box(&a).mul(&s).unwrap()));
    g.bench_function("sub", |b| b.iter(|| black_box(&a).sub(&b_).unwrap()));
    g.bench_function("div", |b| b.iter(|| black_box(&a).div(&b_).unwrap()));
    let a_pos = a.abs().unwrap().add_scalar(1e-3).unwrap();
    g.bench_function("pow", |b| b.iter(|| black_box(&a_pos).pow(&b_).unwrap()));
    g.bench_function("maximum", |b| {
        b.iter(|| black_box(&a).maximum(&b_).unwrap())
    });
    g.bench_function("gt_mask", |b| {
        b.iter(|| black_box(&a).gt_mask(&b_).unwrap())
    });
    g.bench_function("where", |b| {
        b.iter(|| black_box(&mask).where_cond(&a, &b_).unwrap())
    });
    g.bench_function("tanh_a_mul_b_add_c", |b| {
        b.iter(|| black_box(&a).mul(&b_).unwrap().add(&a).unwrap().tanh())
    });
    g.finish();
}

fn reduce(c: &mut Criterion) {
    let (a, _) = inputs();
    let at = a.t().unwrap();
    let mut g = c.benchmark_group("reduce_1m_f32");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("sum_all", |b| b.iter(|| black_box(&a).sum_all()));
    g.bench_function("max_all", |b| b.iter(|| black_box(&a).max_all()));
    g.bench_function("sum_axis0", |b| {
        b.iter(|| black_box(&a).sum(&[0], false).unwrap())
    });
    g.bench_function("sum_axis1", |b| {
        b.iter(|| black_box(&a).sum(&[1], false).unwrap())
    });
    g.bench_function("sum_all_transposed", |b| {
        b.iter(|| black_box(&at).sum_all())
    });
    g.bench_function("softmax_axis1", |b| {
        b.iter(|| black_box(&a).softmax(1).unwrap())
    });
    g.bench_function("log_softmax_axis1", |b| {
        b.iter(|| black_box(&a).log_softmax(1).unwrap())
    });
    g.bench_function("logsumexp_axis1", |b| {
        b.iter(|| black_box(&a).logsumexp(&[1], false).unwrap())
    });
    g.bench_function("mean_axis0", |b| {
        b.iter(|| black_box(&a).mean(&[0], false).unwrap())
    });
    g.bench_function("max_axis1", |b| {
        b.iter(|| black_box(&a).max(&[1], false).unwrap())
    });
    g.bench_function("argmax_axis1", |b| {
        b.iter(|| black_box(&a).argmax(1, false).unwrap())
    });
    g.bench_function("var_axis1", |b| {
        b.iter(|| black_box(&a).var(&[1], false, 1).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = unary, binary, reduce
}
criterion_main!(benches);
