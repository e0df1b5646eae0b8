//! Helpers shared by the op unit tests at the bottom of each op file
//! (compiled for tests only).

use tapegrad_tensor::Tensor;

use crate::{gradcheck, gradcheck_second_order, Result, Tape, Var};

/// Seeded uniform samples in `[-1, 1)`.
pub(crate) fn rnd(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform_seeded(shape, -1.0, 1.0, seed)
}

/// Seeded uniform samples in `[0.5, 2)` (for ln, sqrt, division, fractional powers).
pub(crate) fn pos(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform_seeded(shape, 0.5, 2.0, seed)
}

/// A tensor from literal values.
pub(crate) fn t(data: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

/// Asserts that the first-order gradcheck passes.
#[track_caller]
pub(crate) fn check<F>(f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    let r = gradcheck(f, inputs).unwrap();
    assert!(r.passed, "{r}");
}

/// Asserts that the second-order gradcheck passes.
#[track_caller]
pub(crate) fn check2<F>(f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    let r = gradcheck_second_order(f, inputs).unwrap();
    assert!(r.passed, "{r}");
}

/// The output of `f` and the gradients of `seed · f` (elementwise product,
/// summed) with respect to every input; `seed = None` means all ones.
pub(crate) fn vjp<F>(
    f: F,
    inputs: &[Tensor<f64>],
    seed: Option<&[f64]>,
) -> (Vec<f64>, Vec<Vec<f64>>)
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    let tape = Tape::<f64>::new();
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let y = f(&tape, &vars).unwrap();
    let shape = y.shape();
    let seed = match seed {
        Some(s) => Tensor::from_vec(s.to_vec(), &shape).unwrap(),
        None => Tensor::ones(&shape),
    };
    let g = tape.backward_with_seed(y, seed).unwrap();
    let grads = vars.iter().map(|&v| g.get_or_zeros(v).to_vec()).collect();
    (y.value().to_vec(), grads)
}

/// [`vjp`] with an all-ones seed: the gradients of `Σ f`.
pub(crate) fn grads_of_sum<F>(f: F, inputs: &[Tensor<f64>]) -> (Vec<f64>, Vec<Vec<f64>>)
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    vjp(f, inputs, None)
}

/// Asserts `|a − b| ≤ 1e-12·max(1, |b|)` elementwise (exact values whose
/// last bits depend on rounding).
#[track_caller]
pub(crate) fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-12 * y.abs().max(1.0),
            "{a:?} vs expected {b:?}"
        );
    }
}
