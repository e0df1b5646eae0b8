//! Jacobians of functions from tensors to tensors, by reverse mode (one
//! backward pass per output element: rows) or forward mode (one tangent
//! sweep per input element: columns).
//!
//! Both record `f` once. A row is a backward pass seeded with a one-hot
//! output gradient; a column pushes a one-hot tangent forward through the
//! recorded nodes (no value is recomputed). A backward pass costs about
//! twice a tangent sweep, so [`JacobianMode::Auto`] takes columns unless
//! the input has more than twice as many elements as the output.

use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::tape::Tape;
use crate::var::Var;

/// How [`jacobian_with`] and [`batch_jacobian`] build the Jacobian.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JacobianMode {
    /// Forward mode when the input has at most twice as many elements as
    /// the output, reverse mode otherwise.
    #[default]
    Auto,
    /// Rows: one backward pass per output element (`jacrev`).
    Reverse,
    /// Columns: one forward tangent sweep per input element (`jacfwd`).
    Forward,
}

impl JacobianMode {
    fn pick(self, n_in: usize, n_out: usize) -> JacobianMode {
        match self {
            JacobianMode::Auto if n_in <= 2 * n_out => JacobianMode::Forward,
            JacobianMode::Auto => JacobianMode::Reverse,
            m => m,
        }
    }
}

/// The Jacobian of `f` at `x`, choosing the mode from the shapes
/// ([`JacobianMode::Auto`]). The result has shape `out.shape ++ x.shape`:
/// element `[i.., j..]` is `∂f(x)[i..]/∂x[j..]` (as
/// `torch.autograd.functional.jacobian`).
///
/// ```
/// use tapegrad_autograd::jacobian;
/// use tapegrad_tensor::Tensor;
/// // f(x) = (x₀·x₁, sin x₀): J = [[x₁, x₀], [cos x₀, 0]].
/// let x = Tensor::from_vec(vec![0.0, 2.0], &[2])?;
/// let j = jacobian(
///     |_, x| {
///         let (a, b) = (x.select(0, 0)?, x.select(0, 1)?);
///         tapegrad_autograd::Var::stack(&[a.mul(b)?, a.sin()?], 0)
///     },
///     &x,
/// )?;
/// assert_eq!(j.shape(), [2, 2]);
/// assert_eq!(j.to_vec(), vec![2.0, 0.0, 1.0, 0.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// Whatever `f` returns, or a backward or tangent rule's error.
pub fn jacobian<T, F>(f: F, x: &Tensor<T>) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    jacobian_with(f, x, JacobianMode::Auto)
}

/// [`jacobian`] in a chosen mode. Both modes give the same numbers.
///
/// ```
/// use tapegrad_autograd::{jacobian_with, JacobianMode};
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?;
/// let rows = jacobian_with(|_, x| x.square()?.sum_all(), &x, JacobianMode::Reverse)?;
/// let cols = jacobian_with(|_, x| x.square()?.sum_all(), &x, JacobianMode::Forward)?;
/// assert_eq!(rows.shape(), [3]); // a scalar output: the gradient
/// assert_eq!(rows.to_vec(), vec![2.0, 4.0, 6.0]);
/// assert_eq!(cols.to_vec(), rows.to_vec());
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// As [`jacobian`].
pub fn jacobian_with<T, F>(f: F, x: &Tensor<T>, mode: JacobianMode) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    let tape = Tape::<T>::new();
    let xv = tape.leaf(x.clone());
    let y = f(&tape, xv)?;
    tape.check_own(y, "jacobian")?;
    let (n_in, out_shape) = (x.numel(), y.shape());
    let n_out = out_shape.iter().product::<usize>();
    let mut shape = out_shape.to_vec();
    shape.extend_from_slice(x.dims());
    // Each row or column is a one-hot seed over the whole tensor: the
    // "batch" is a single sample.
    let blocks = jacobian_blocks(&tape, xv, y, 1, n_in, n_out, mode)?;
    Ok(Tensor::from_vec(blocks, &shape)?)
}

/// Per-sample Jacobians of a function applied to a batch, like
/// `torch.func.vmap(torch.func.jacrev(f))`: for `x` of shape `[B, in..]`
/// and `f(x)` of shape `[B, out..]`, the result has shape
/// `[B, out.., in..]`, block `b` being `∂f(x)[b]/∂x[b]`.
///
/// `f` must treat the samples independently (row `b` of the output
/// depends only on row `b` of the input, as a per-sample model without
/// batch statistics does): every seed sets one element in *every* sample
/// at once, so the cost is that of one Jacobian of a single sample, not
/// `B` of them. Cross-sample derivatives, if `f` had any, would be added
/// into the blocks; [`jacobian_with`] gives the full Jacobian instead.
///
/// ```
/// use tapegrad_autograd::{batch_jacobian, JacobianMode};
/// use tapegrad_tensor::Tensor;
/// // f(x)[b] = (x[b,0]·x[b,1], x[b,0]²) for two samples.
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
/// let j = batch_jacobian(
///     |_, x| {
///         let (a, b) = (x.narrow(1, 0, 1)?, x.narrow(1, 1, 1)?);
///         tapegrad_autograd::Var::concat(&[a.mul(b)?, a.square()?], 1)
///     },
///     &x,
///     JacobianMode::Auto,
/// )?;
/// assert_eq!(j.shape(), [2, 2, 2]);
/// assert_eq!(j.to_vec(), vec![2.0, 1.0, 2.0, 0.0, 4.0, 3.0, 6.0, 0.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `x` is 0-d or `f`'s output does not keep
/// the batch axis; otherwise as [`jacobian`].
pub fn batch_jacobian<T, F>(f: F, x: &Tensor<T>, mode: JacobianMode) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    let Some(&batch) = x.dims().first() else {
        return Err(Error::InvalidArgument {
            op: "batch_jacobian".into(),
            msg: "the input needs a batch axis, got a 0-d tensor".into(),
        });
    };
    let tape = Tape::<T>::new();
    let xv = tape.leaf(x.clone());
    let y = f(&tape, xv)?;
    tape.check_own(y, "batch_jacobian")?;
    let out_shape = y.shape();
    if out_shape.first() != Some(&batch) {
        return Err(Error::InvalidArgument {
            op: "batch_jacobian".into(),
            msg: format!(
                "the input has {batch} samples (shape {:?}) but the output's shape is {:?}",
                x.dims(),
                out_shape.as_slice()
            ),
        });
    }
    let n_in = x.dims()[1..].iter().product::<usize>();
    let n_out = out_shape[1..].iter().product::<usize>();
    let mut shape = out_shape.to_vec();
    shape.extend_from_slice(&x.dims()[1..]);
    let blocks = jacobian_blocks(&tape, xv, y, batch, n_in, n_out, mode)?;
    Ok(Tensor::from_vec(blocks, &shape)?)
}

/// The `batch` blocks `[n_out, n_in]` (row-major, block after block) of the
/// Jacobian of the recorded `y` with respect to `x`, each seed setting one
/// element in every sample.
fn jacobian_blocks<T: Element>(
    tape: &Tape<T>,
    x: Var<'_, T>,
    y: Var<'_, T>,
    batch: usize,
    n_in: usize,
    n_out: usize,
    mode: JacobianMode,
) -> Result<Vec<T>> {
    let mut out = vec![T::ZERO; batch * n_out * n_in];
    let one_hot = |k: usize, n: usize, shape: &[usize]| -> Result<Tensor<T>> {
        let mut v = vec![T::ZERO; batch * n];
        for b in 0..batch {
            v[b * n + k] = T::ONE;
        }
        Ok(Tensor::from_vec(v, shape)?)
    };
    match mode.pick(n_in, n_out) {
        JacobianMode::Reverse => {
            for i in 0..n_out {
                let grads = tape.backward_with_seed(y, one_hot(i, n_out, &y.shape())?)?;
                let Some(row) = grads.get(x) else { continue };
                for (k, v) in row.to_vec().into_iter().enumerate() {
                    let (b, j) = (k / n_in, k % n_in);
                    out[(b * n_out + i) * n_in + j] = v;
                }
            }
        }
        _ => {
            for j in 0..n_in {
                let seed = one_hot(j, n_in, &x.shape())?;
                let Some(col) = tape.sweep_tangents(&[(x.id(), seed)], y.id())? else {
                    continue;
                };
                for (k, v) in col.to_vec().into_iter().enumerate() {
                    let (b, i) = (k / n_out, k % n_out);
                    out[(b * n_out + i) * n_in + j] = v;
                }
            }
        }
    }
    Ok(out)
}
