//! The MLP workload shared by `benches/workloads.rs` and
//! `examples/mlp_memory.rs`: the exact step of `bench_torch.py` (W as
//! `[in, out]`, `h·W + b`, MSE loss, plain SGD with lr 0.01).

use tapegrad::autograd::{Result, Tape, Var};
use tapegrad::tensor::parallel::{for_each_chunk, use_parallel, CHUNK};
use tapegrad::tensor::Tensor;

/// Learning rate of the reference workload.
pub const LR: f64 = 0.01;

/// Parameters `[W0, b0, W1, b1, ...]`, W as `[in, out]`, uniform in
/// ±1/sqrt(fan_in), as in the PyTorch script.
pub fn mlp_init(sizes: &[usize], seed: u64) -> Vec<Tensor<f32>> {
    let mut ps = Vec::new();
    for (i, w) in sizes.windows(2).enumerate() {
        let k = 1.0 / (w[0] as f64).sqrt();
        ps.push(Tensor::uniform_seeded(
            &[w[0], w[1]],
            -k,
            k,
            seed + 2 * i as u64,
        ));
        ps.push(Tensor::uniform_seeded(
            &[w[1]],
            -k,
            k,
            seed + 2 * i as u64 + 1,
        ));
    }
    ps
}

pub fn mlp_forward<'t>(
    ps: &[Var<'t, f32>],
    x: Var<'t, f32>,
    act: fn(Var<'t, f32>) -> Result<Var<'t, f32>>,
) -> Result<Var<'t, f32>> {
    let n = ps.len() / 2;
    let mut h = x;
    for i in 0..n {
        h = h.matmul(ps[2 * i])?.add(ps[2 * i + 1])?;
        if i + 1 < n {
            h = act(h)?;
        }
    }
    Ok(h)
}

/// One step: forward, MSE loss, backward, plain SGD on every parameter.
pub fn train_step(
    ps: &mut [Tensor<f32>],
    x: &Tensor<f32>,
    y: &Tensor<f32>,
    act: for<'t> fn(Var<'t, f32>) -> Result<Var<'t, f32>>,
) -> Result<()> {
    let grads: Vec<Tensor<f32>> = {
        let tape = Tape::<f32>::new();
        let vars: Vec<Var<'_, f32>> = ps.iter().map(|p| tape.leaf(p.clone())).collect();
        let out = mlp_forward(&vars, tape.constant(x.clone()), act)?;
        let loss = out.sub(tape.constant(y.clone()))?.square()?.mean_all()?;
        let grads = tape.backward(loss)?;
        vars.iter()
            .map(|v| {
                grads
                    .get(*v)
                    .expect("every parameter gets a gradient")
                    .clone()
            })
            .collect()
        // The tape and its copies of the parameters go here, so the update
        // below owns each parameter's buffer and writes it in place.
    };
    for (p, g) in ps.iter_mut().zip(&grads) {
        // Gradients come back contiguous; a strided one would be copied.
        let g: std::borrow::Cow<'_, [f32]> = match g.as_slice() {
            Some(s) => s.into(),
            None => g.to_vec().into(),
        };
        sgd_in_place(p.make_mut_slice(), &g, LR as f32);
    }
    Ok(())
}

/// `p -= lr·g` in place, like PyTorch's `p.sub_(grad, alpha=lr)`: one pass
/// that reads both and writes `p`, on the library's threads when large.
fn sgd_in_place(p: &mut [f32], g: &[f32], lr: f32) {
    let update = |start: usize, part: &mut [f32]| {
        for (p, &g) in part.iter_mut().zip(&g[start..]) {
            *p -= lr * g;
        }
    };
    if use_parallel(p.len()) {
        for_each_chunk(p, CHUNK, update);
    } else {
        update(0, p);
    }
}
