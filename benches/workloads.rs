//! The reference workloads of `../shared/bench/README.md`, with the same
//! constants, ids and units as the PyTorch side, `torch_workloads.py` in
//! this folder, so the two can be run one after the other and compared as
//! ratios.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench workloads` from the top folder (a filter such as
//! `-- matmul` picks some). Ids: `matmul/f32/{128,512,1024}`,
//! `scalar_tape/tanh_chain/10002`, `elementwise/tanh_fma/1000000`,
//! `mlp_step/784-512-512-10/128`, `small_mlp_step/2-16-16-1/{32,1}`,
//! `conv2d/32x3x32x32-64k3`, `cnn_step/lenet-16-32/64`,
//! `lstm_step/32-128x50/32`.

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tapegrad::autograd::{Tape, Var};
use tapegrad::tensor::Tensor;

#[path = "common/cnn.rs"]
mod cnn;
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

// ----- function transforms (issue 16) ----------------------------------------
// Ids: `jacobian/2-16-16-8/256` (per-sample Jacobians of the MLP's output
// with respect to its input, mode chosen from the shapes: forward, two
// columns), `jacobian/2-16-16-8/256-reverse` (forced reverse: eight rows),
// `per_sample_grads/64-256-10/128` (the digits MLP, cross-entropy, every
// sample's gradient), `hvp/{forward_over_reverse,reverse_over_reverse}/64x32`.
// The PyTorch side (`torch.func.vmap(jacrev)`, `vmap(grad)`) is in
// `torch_workloads.py` under the same ids.

fn jacobian(c: &mut Criterion) {
    use tapegrad::autograd::{batch_jacobian, JacobianMode};
    let mut g = c.benchmark_group("jacobian");
    let ps = mlp_init(&[2, 16, 16, 8], 30);
    let x = Tensor::<f32>::randn_seeded(&[256, 2], 5);
    for (id, mode) in [
        ("256", JacobianMode::Auto),
        ("256-reverse", JacobianMode::Reverse),
    ] {
        g.bench_function(BenchmarkId::new("2-16-16-8", id), |bench| {
            bench.iter(|| {
                let j = batch_jacobian(
                    |tape, x| {
                        let vars: Vec<Var<'_, f32>> =
                            ps.iter().map(|p| tape.constant(p.clone())).collect();
                        mlp::mlp_forward(&vars, x, |h| h.tanh())
                    },
                    &x,
                    mode,
                )
                .unwrap();
                black_box(j)
            })
        });
    }
    g.finish();
}

fn per_sample_grads(c: &mut Criterion) {
    use tapegrad::nn::{per_sample_grads, Mlp};
    let mut g = c.benchmark_group("per_sample_grads");
    let model = Mlp::<f32>::builder(&[64, 256, 10]).seed(1).build().unwrap();
    let x = Tensor::<f32>::randn_seeded(&[128, 64], 6);
    let labels: Vec<usize> = (0..128).map(|i| (i * 7) % 10).collect();
    g.bench_function(BenchmarkId::new("64-256-10", 128), |bench| {
        bench.iter(|| {
            let per = per_sample_grads(&model, &x, |out, rows| {
                out.log_softmax(1)?.gather_rows(&labels[rows])?.neg()
            })
            .unwrap();
            black_box(per)
        })
    });
    g.finish();
}

/// f(x) = Σ softplus(tanh(x·W)·W): a small network's output.
fn hvp_f<'t>(x: Var<'t, f64>, w: &Tensor<f64>) -> tapegrad::autograd::Result<Var<'t, f64>> {
    let w = x.constant(w.clone());
    x.matmul(w)?.tanh()?.matmul(w)?.softplus()?.sum_all()
}

fn hvp(c: &mut Criterion) {
    use tapegrad::autograd::{hvp_forward_over_reverse, hvp_reverse_over_reverse};
    let mut g = c.benchmark_group("hvp");
    let w = Tensor::<f64>::uniform_seeded(&[32, 32], -0.3, 0.3, 7);
    let x = Tensor::<f64>::uniform_seeded(&[64, 32], -1.0, 1.0, 8);
    let v = Tensor::<f64>::uniform_seeded(&[64, 32], -1.0, 1.0, 9);
    g.bench_function("forward_over_reverse/64x32", |bench| {
        bench.iter(|| black_box(hvp_forward_over_reverse(|_, x| hvp_f(x, &w), &x, &v).unwrap()))
    });
    g.bench_function("reverse_over_reverse/64x32", |bench| {
        bench.iter(|| black_box(hvp_reverse_over_reverse(|_, x| hvp_f(x, &w), &x, &v).unwrap()))
    });
    g.finish();
}

/// `Conv2d(3, 64, 3, padding=1)` with bias on a 32×3×32×32 input needing
/// gradients; loss = sum of the output; backward to input, weight and bias.
fn conv2d(c: &mut Criterion) {
    use tapegrad::nn::{Conv2d, Module};
    let mut g = c.benchmark_group("conv2d");
    let conv = Conv2d::<f32>::new(3, 64, 3, 5).unwrap().padding(1);
    let x = Tensor::<f32>::randn_seeded(&[32, 3, 32, 32], 6);
    g.bench_function("32x3x32x32-64k3", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let xv = tape.leaf(x.clone());
            let y = conv.forward(&tape, xv).unwrap().sum_all().unwrap();
            let grads = tape.backward(y).unwrap();
            black_box((grads.get(xv).is_some(), conv.grads(&grads)))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("cnn_step");
    let mut model = cnn::lenet(7);
    let mut opt = tapegrad::nn::Sgd::new(0.01);
    let (x, y) = cnn::cnn_batch();
    g.bench_function(BenchmarkId::new("lenet-16-32", cnn::CNN_BATCH), |bench| {
        bench.iter(|| cnn::cnn_step(&mut model, &mut opt, &x, &y).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = workloads;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3));
    targets = matmul, scalar_tape, elementwise, mlp_step, jacobian, per_sample_grads, hvp, transformer_step, conv2d, lstm_step
}
criterion_main!(workloads);

/// `transformer_step` (../shared/bench/README.md): the decoder-only model
/// of `bench_torch.Gpt` (vocabulary 65, context 64, width 128, 4 heads, 2
/// pre-norm blocks, exact GELU), batch 16 of random token windows,
/// next-token cross-entropy, AdamW (lr 3e-4, PyTorch's other defaults).
fn transformer_step(c: &mut Criterion) {
    use tapegrad::nn::{loss, Adam, GptConfig, Module, Optimizer};
    let (vocab, block, batch) = (65, 64, 16);
    let mut model = GptConfig::new(vocab, block, 128, 4, 2)
        .build::<f32>(0)
        .unwrap();
    let mut opt = Adam::adamw(3e-4, 0.01);
    // Random windows of block + 1 tokens: inputs and next-token targets.
    let ids: Vec<usize> =
        Tensor::<f32>::uniform_seeded(&[batch * (block + 1)], 0.0, vocab as f64, 5)
            .to_vec()
            .into_iter()
            .map(|v| (v as usize).min(vocab - 1))
            .collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for w in ids.chunks(block + 1) {
        x.extend_from_slice(&w[..block]);
        y.extend_from_slice(&w[1..]);
    }
    let mut g = c.benchmark_group("transformer_step");
    g.bench_function(BenchmarkId::new("gpt-2x128", batch), |bench| {
        bench.iter(|| {
            // As `Trainer` steps (and PyTorch frees its graph): the pass
            // frees activations once used and clears the tape, so the
            // optimiser updates the parameters in place.
            let mut tape = Tape::new();
            let root = {
                let logits = model.forward_ids(&tape, &x, batch).unwrap();
                let logits = logits.reshape(&[batch * block, vocab]).unwrap();
                loss::cross_entropy(logits, &y).unwrap().var_id()
            };
            let grads = model.grads(&tape.backward_and_clear(root).unwrap());
            black_box(opt.step(model.parameters_mut(), &grads).unwrap())
        })
    });
    g.finish();
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
            // Stepped as `Trainer` does (see transformer_step).
            let mut tape = Tape::new();
            let root = {
                let out = lstm.forward(&tape, tape.constant(x.clone())).unwrap();
                let last = out.select(1, seq - 1).unwrap();
                let pred = head.forward(&tape, last).unwrap();
                loss::mse(pred, tape.constant(y.clone())).unwrap().var_id()
            };
            let grads = tape.backward_and_clear(root).unwrap();
            let (gl, gh) = (lstm.grads(&grads), head.grads(&grads));
            sgd.step(lstm.parameters_mut(), &gl).unwrap();
            black_box(sgd.step(head.parameters_mut(), &gh).unwrap())
        })
    });
    g.finish();
}
