//! Second-order helpers built on [`Tape::grad_graph`]: the Hessian of a
//! scalar function and Hessian-vector products.
//!
//! Both record the gradient `∇f` on a fresh tape (`create_graph`) and
//! differentiate it again. [`hvp`] costs about two gradient evaluations
//! whatever the size of `x`; [`hessian`] costs one more backward pass per
//! element of `x`, so keep it to small inputs.

use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::tape::Tape;
use crate::var::Var;

/// The Hessian `H_ij = ∂²f/∂x_i∂x_j` of a scalar function `f` at `x`, as an
/// `[n, n]` tensor where `n` is the number of elements of `x` (taken in
/// row-major order). It is built row by row: row `i` is the gradient of
/// `(∇f)_i`.
///
/// ```
/// use tapegrad_autograd::hessian;
/// use tapegrad_tensor::Tensor;
/// // f(x) = x₀²·x₁ + x₁³, so ∇f = (2x₀x₁, x₀² + 3x₁²) and
/// // H = [[2x₁, 2x₀], [2x₀, 6x₁]] = [[4, 2], [2, 12]] at x = (1, 2).
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[2])?;
/// let h = hessian(
///     |_tape, x| {
///         let (x0, x1) = (x.select(0, 0)?, x.select(0, 1)?);
///         x0.square()?.mul(x1)?.add(x1.powf(3.0)?)
///     },
///     &x,
/// )?;
/// assert_eq!(h.shape(), &[2, 2]);
/// assert_eq!(h.to_vec(), vec![4.0, 2.0, 2.0, 12.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// Whatever `f` returns, [`Error::NonScalarRoot`] if `f` does not return a
/// single element, or a backward failure.
pub fn hessian<T, F>(f: F, x: &Tensor<T>) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    let tape = Tape::<T>::new();
    let xv = tape.leaf(x.clone());
    let y = f(&tape, xv)?;
    let n = x.numel();
    let Some(g) = tape.grad_graph(&[y], &[xv])?[0] else {
        return Ok(Tensor::zeros(&[n, n]));
    };
    let g = g.flatten()?;
    let mut h = Vec::with_capacity(n * n);
    for i in 0..n {
        let gi = g.select(0, i)?;
        match &tape.grad(&[gi], &[xv])?[0] {
            Some(row) => h.extend(row.to_vec()),
            None => h.extend(std::iter::repeat_n(T::ZERO, n)),
        }
    }
    Ok(Tensor::from_vec(h, &[n, n])?)
}

/// The Hessian-vector product `H·v` of a scalar function `f` at `x`, without
/// forming `H`: the gradient of `⟨∇f(x), v⟩` with respect to `x`. The result
/// has `x`'s shape.
///
/// ```
/// use tapegrad_autograd::hvp;
/// use tapegrad_tensor::Tensor;
/// // f(x) = Σ xᵢ³ has H = diag(6xᵢ); with v = (1, 1) at x = (1, 2), Hv = (6, 12).
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[2])?;
/// let v = Tensor::ones(&[2]);
/// let hv = hvp(|_tape, x| x.powf(3.0)?.sum_all(), &x, &v)?;
/// assert_eq!(hv.to_vec(), vec![6.0, 12.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `v`'s shape differs from `x`'s; otherwise
/// as [`hessian`].
pub fn hvp<T, F>(f: F, x: &Tensor<T>, v: &Tensor<T>) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    if x.dims() != v.dims() {
        return Err(Error::InvalidArgument {
            op: "hvp".into(),
            msg: format!(
                "the vector's shape {:?} differs from the point's shape {:?}",
                v.dims(),
                x.dims()
            ),
        });
    }
    let tape = Tape::<T>::new();
    let xv = tape.leaf(x.clone());
    let y = f(&tape, xv)?;
    let Some(g) = tape.grad_graph(&[y], &[xv])?[0] else {
        return Ok(Tensor::zeros(x.dims()));
    };
    let gv = g.mul(tape.constant(v.clone()))?.sum_all()?;
    Ok(tape.grad(&[gv], &[xv])?[0]
        .clone()
        .unwrap_or_else(|| Tensor::zeros(x.dims())))
}
