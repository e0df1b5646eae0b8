//! The reference workloads of `../shared/bench/README.md`, with the same
//! constants, ids and units as the PyTorch side, `torch_workloads.py` in
//! this folder, so the two can be run one after the other and compared as
//! ratios.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench workloads` (a filter such as
//! `-- matmul` picks some). Ids: `matmul/f32/{128,512,1024}`,
//! `scalar_tape/tanh_chain/10002`, `elementwise/tanh_fma/1000000`,
//! `mlp_step/784-512-512-10/128`, `small_mlp_step/2-16-16-1/{32,1}`,
//! `lstm_step/32-128x50/32`.

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tapegrad::autograd::{Tape, Var};
use tapegrad::tensor::Tensor;

#[path = "common/mlp.rs"]
mod mlp;
use mlp::{mlp_init, train_step};

const MATMUL_SIZES: [usize; 3] = [128, 512, 1024];
const W4_ITERS: usize = 3334;
const W4_X0: f32 = 0.5;
const W5_LEN: usize = 1_000_000;

/// The scalar-tape leaf values: the LCG of `bench_common.py`.
fn w4_values() -> (Vec<f32>, Vec<f32>) {
    let mut s: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 40) as f64 / (1u64 << 24) as f64
    };
    let (mut w, mut b) = (Vec::new(), Vec::new());
    for _ in 0..W4_ITERS {
        w.push((0.5 + next()) as f32);
        b.push((next() - 0.5) as f32);
    }
    (w, b)
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    for n in MATMUL_SIZES {
        let a = Tensor::<f32>::randn_seeded(&[n, n], 1);
        let b = Tensor::<f32>::randn_seeded(&[n, n], 2);
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        g.bench_with_input(BenchmarkId::new("f32", n), &n, |bench, _| {
            bench.iter(|| black_box(a.matmul(&b).unwrap()))
        });
    }
    g.finish();
}

fn scalar_tape(c: &mut Criterion) {
    let (wv, bv) = w4_values();
    let ws: Vec<Tensor<f32>> = wv.iter().map(|&v| Tensor::scalar(v)).collect();
    let bs: Vec<Tensor<f32>> = bv.iter().map(|&v| Tensor::scalar(v)).collect();
    let mut g = c.benchmark_group("scalar_tape");
    g.throughput(Throughput::Elements(3 * W4_ITERS as u64));
    g.bench_function(BenchmarkId::new("tanh_chain", 3 * W4_ITERS), |bench| {
        bench.iter(|| {
            let tape = Tape::<f32>::new();
            let w: Vec<Var<'_, f32>> = ws.iter().map(|t| tape.leaf(t.clone())).collect();
            let b: Vec<Var<'_, f32>> = bs.iter().map(|t| tape.leaf(t.clone())).collect();
            let mut x = tape.constant(Tensor::scalar(W4_X0));
            for i in 0..W4_ITERS {
                x = x.mul(w[i]).unwrap().add(b[i]).unwrap().tanh().unwrap();
            }
            black_box(tape.backward(x).unwrap())
        })
    });
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let a = Tensor::<f32>::randn_seeded(&[W5_LEN], 1);
    let b = Tensor::<f32>::randn_seeded(&[W5_LEN], 2);
    let cc = Tensor::<f32>::randn_seeded(&[W5_LEN], 3);
    let mut g = c.benchmark_group("elementwise");
    g.bench_function(BenchmarkId::new("tanh_fma", W5_LEN), |bench| {
        bench.iter(|| {
            let tape = Tape::<f32>::new();
            let (va, vb, vc) = (
                tape.leaf(a.clone()),
                tape.leaf(b.clone()),
                tape.leaf(cc.clone()),
            );
            let z = va
                .mul(vb)
                .unwrap()
                .add(vc)
                .unwrap()
                .tanh()
                .unwrap()
                .sum_all()
                .unwrap();
            black_box(tape.backward(z).unwrap())
        })
    });
    g.finish();
}

fn mlp_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("mlp_step");
    let mut ps = mlp_init(&[784, 512, 512, 10], 10);
    let x = Tensor::<f32>::randn_seeded(&[128, 784], 1);
    let y = Tensor::<f32>::randn_seeded(&[128, 10], 2);
    g.bench_function(BenchmarkId::new("784-512-512-10", 128), |bench| {
        bench.iter(|| train_step(&mut ps, &x, &y, |h| h.relu()).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("small_mlp_step");
    for batch in [32, 1] {
        let mut ps = mlp_init(&[2, 16, 16, 1], 20);
        let x = Tensor::<f32>::randn_seeded(&[batch, 2], 3);
        let y = Tensor::<f32>::randn_seeded(&[batch, 1], 4);
        g.bench_function(BenchmarkId::new("2-16-16-1", batch), |bench| {
            bench.iter(|| train_step(&mut ps, &x, &y, |h| h.tanh()).unwrap())
        });
    }
    g.finish();
}

/// Every group's settings: 20 samples after 0.7 s of warm-up, 3 s each.
fn workload_config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = workloads;
    config = workload_config();
    targets = matmul, scalar_tape, elementwise, mlp_step
}

/// lstm_step: one-layer LSTM (input 32, hidden 128, batch first), batch 32,
/// 50 steps; the last step's `h` → Linear(128, 1), MSE against random
/// targets, plain SGD (lr 0.01) on every parameter.
fn lstm_step(c: &mut Criterion) {
    use tapegrad::nn::{loss, Linear, Lstm, Module, Optimizer, RecurrentOptions, Sgd};
    let (batch, seq, input, hidden) = (32, 50, 32, 128);
    let opts = RecurrentOptions::new().batch_first(true).seed(1);
    let mut lstm = Lstm::<f32>::with_options(input, hidden, opts).unwrap();
    let mut head = Linear::<f32>::new(hidden, 1, 2);
    let x = Tensor::<f32>::randn_seeded(&[batch, seq, input], 3);
    let y = Tensor::<f32>::randn_seeded(&[batch, 1], 4);
    let mut sgd = Sgd::new(0.01);
    let mut g = c.benchmark_group("lstm_step");
    g.bench_function(BenchmarkId::new("32-128x50", batch), |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let out = lstm.forward(&tape, tape.constant(x.clone())).unwrap();
            let last = out.select(1, seq - 1).unwrap();
            let pred = head.forward(&tape, last).unwrap();
            let l = loss::mse(pred, tape.constant(y.clone())).unwrap();
            let grads = tape.backward(l).unwrap();
            let (gl, gh) = (lstm.grads(&grads), head.grads(&grads));
            sgd.step(lstm.parameters_mut(), &gl).unwrap();
            black_box(sgd.step(head.parameters_mut(), &gh).unwrap())
        })
    });
    g.finish();
}

criterion_group! {
    name = recurrent_workloads;
    config = workload_config();
    targets = lstm_step
}
criterion_main!(workloads, recurrent_workloads);
