//! The MLP workload shared by `benches/workloads.rs` and
//! `examples/mlp_memory.rs`: the exact step of `bench_torch.py` (W as
//! `[in, out]`, `h·W + b`, MSE loss, plain SGD with lr 0.01).

use tapegrad::autograd::{Result, Tape, Var};
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
    let tape = Tape::<f32>::new();
    let vars: Vec<Var<'_, f32>> = ps.iter().map(|p| tape.leaf(p.clone())).collect();
    let out = mlp_forward(&vars, tape.constant(x.clone()), act)?;
    let loss = out.sub(tape.constant(y.clone()))?.square()?.mean_all()?;
    let grads = tape.backward(loss)?;
    for (p, v) in ps.iter_mut().zip(&vars) {
        let g = grads.get(*v).expect("every parameter gets a gradient");
        // One fused pass, like PyTorch's `p.sub_(grad, alpha=lr)`.
        let lr = LR as f32;
        *p = p.zip_with(g, "sgd", |p, g| p - lr * g)?;
    }
    Ok(())
}
