//! Second-order helpers built on [`Tape::grad_graph`]: the Hessian of a
//! scalar function and Hessian-vector products.
//!
//! Both record the gradient `∇f` on a fresh tape (`create_graph`).
//! [`hessian`] differentiates it again once per element of `x` (one more
//! backward pass each, so keep it to small inputs); [`hvp`] differentiates
//! `⟨∇f, v⟩` once, and [`hvp_forward_over_reverse`] pushes `v` through it
//! as a forward-mode tangent instead.

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
/// forming `H`. The result has `x`'s shape.
///
/// This is [`hvp_reverse_over_reverse`]: the gradient of `⟨∇f(x), v⟩`.
/// [`hvp_forward_over_reverse`] gives the same numbers; on the `hvp`
/// benchmark of `benches/workloads.rs` (a 64×32 input through two 32×32
/// layers, f64) it took about 1.2× as long, since it computes a tangent for
/// every recorded node, the backward pass's included, where the second
/// reverse pass runs value rules on the nodes that lead to `x` only.
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
    hvp_reverse_over_reverse(f, x, v)
}

/// `H·v` by forward over reverse: `∇f` is recorded (`grad_graph`) on a tape
/// where `x` is a [dual](Tape::dual) leaf with tangent `v`, so every op,
/// those of the backward pass included, carries its tangent, and the
/// tangent of `∇f` is `H·v`. About one gradient evaluation plus the
/// tangents, with no second backward pass.
///
/// ```
/// use tapegrad_autograd::hvp_forward_over_reverse;
/// use tapegrad_tensor::Tensor;
/// // f(x) = x₀²·x₁: H = [[2x₁, 2x₀], [2x₀, 0]]; at (1, 3), H·(1, 0) = (6, 2).
/// let x = Tensor::from_vec(vec![1.0, 3.0], &[2])?;
/// let v = Tensor::from_vec(vec![1.0, 0.0], &[2])?;
/// let hv = hvp_forward_over_reverse(
///     |_, x| x.select(0, 0)?.square()?.mul(x.select(0, 1)?),
///     &x,
///     &v,
/// )?;
/// assert_eq!(hv.to_vec(), vec![6.0, 2.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// As [`hvp`].
pub fn hvp_forward_over_reverse<T, F>(f: F, x: &Tensor<T>, v: &Tensor<T>) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    check_direction(x, v)?;
    let tape = Tape::<T>::new();
    let xv = tape.dual(x.clone(), v.clone())?;
    let y = f(&tape, xv)?;
    let g = tape.grad_graph(&[y], &[xv])?[0];
    Ok(g.and_then(|g| g.tangent())
        .unwrap_or_else(|| Tensor::zeros(x.dims())))
}

fn check_direction<T: Element>(x: &Tensor<T>, v: &Tensor<T>) -> Result<()> {
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
    Ok(())
}

/// `H·v` by reverse over reverse: the gradient of `⟨∇f(x), v⟩` with respect
/// to `x`, with `∇f` recorded (`create_graph`) and differentiated again.
/// About two gradient evaluations whatever the size of `x`.
///
/// ```
/// use tapegrad_autograd::hvp_reverse_over_reverse;
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[2])?;
/// let v = Tensor::ones(&[2]);
/// let hv = hvp_reverse_over_reverse(|_tape, x| x.powf(3.0)?.sum_all(), &x, &v)?;
/// assert_eq!(hv.to_vec(), vec![6.0, 12.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// As [`hvp`].
pub fn hvp_reverse_over_reverse<T, F>(f: F, x: &Tensor<T>, v: &Tensor<T>) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    check_direction(x, v)?;
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
