//! Reductions and their inverse, broadcasting.
//!
//! | op | forward | backward |
//! | --- | --- | --- |
//! | sum(axes) | Σ over axes | g broadcast back over the summed axes |
//! | sum_to(shape) | sums broadcast axes away | g broadcast back |
//! | broadcast_to(shape) | stretches length-1 axes | g summed back (`sum_to`) |
//! | max / min (axes) | extreme over axes | g to the elements equal to the extreme, split evenly on ties |
//!
//! `sum` and `broadcast_to` are each other's backward, so every order of
//! derivative stays on the tape.

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op, TangentCtx, TensorGrads, ValueCtx};
use crate::ops::arith::{single, tsingle};
use crate::var::Var;

/// How a reduction's axes print in the tape table: `axes=[0], keepdim`.
pub(crate) fn axes_params(axes: &[usize], keepdim: bool) -> String {
    format!("axes={axes:?}{}", if keepdim { ", keepdim" } else { "" })
}

/// The shape of `shape` with `axes` kept as length 1.
pub(crate) fn keepdim_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect()
}

/// `g` (the gradient of a reduction's output) reshaped to keepdim form and
/// broadcast to the input's shape.
fn spread<'t, T: Element>(g: Var<'t, T>, in_shape: &[usize], axes: &[usize]) -> Result<Var<'t, T>> {
    g.reshape(&keepdim_shape(in_shape, axes))?
        .broadcast_to(in_shape)
}

/// Sum over `axes`.
#[derive(Debug, Clone)]
pub struct Sum {
    /// The summed axes.
    pub axes: Vec<usize>,
    /// Whether they stay as length-1 axes.
    pub keepdim: bool,
}
impl<T: Element> Op<T> for Sum {
    fn name(&self) -> &str {
        "sum"
    }
    fn params(&self) -> String {
        axes_params(&self.axes, self.keepdim)
    }
    fn formula(&self) -> Option<String> {
        Some("d Σx/dx_i = 1 (g is copied to every summed element)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].sum(&self.axes, self.keepdim)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(spread(
            cx.grad_output,
            &cx.inputs[0].shape(),
            &self.axes,
        )?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let x = cx.inputs[0].dims();
        Some((|| {
            let g = cx.grad_output.reshape(&keepdim_shape(x, &self.axes))?;
            Ok(tsingle(g.broadcast_to(x)?))
        })())
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// Sums a broadcast value back down to `shape` (the inverse of
/// [`BroadcastTo`]).
#[derive(Debug, Clone)]
pub struct SumTo {
    /// The target shape.
    pub shape: Vec<usize>,
}

/// The axes (of `from`) that broadcasting `to` up to `from` created or
/// stretched.
pub(crate) fn broadcast_axes(from: &[usize], to: &[usize]) -> Vec<usize> {
    let lead = from.len() - to.len();
    (0..from.len())
        .filter(|&i| i < lead || (to[i - lead] == 1 && from[i] != 1))
        .collect()
}

/// `x` summed over the axes that broadcasting `shape` up to `x`'s shape
/// created or stretched; `x` itself when the shapes match.
#[inline]
pub(crate) fn sum_to_shape<T: Element>(x: Tensor<T>, shape: &[usize]) -> Result<Tensor<T>> {
    // Inlined so the common case (no broadcasting happened) costs a shape
    // comparison, not a call that moves the tensor in and out.
    if crate::backward::same_dims(x.dims(), shape) {
        return Ok(x);
    }
    sum_to_broadcast(x, shape)
}

/// [`sum_to_shape`] when the shapes differ.
#[inline(never)]
fn sum_to_broadcast<T: Element>(x: Tensor<T>, shape: &[usize]) -> Result<Tensor<T>> {
    let from = x.dims();
    let ok = from.len() >= shape.len()
        && tapegrad_tensor::broadcast_shapes("sum_to", shape, from)
            .is_ok_and(|s| s.as_slice() == from);
    if !ok {
        return Err(crate::Error::InvalidArgument {
            op: "sum_to".into(),
            msg: format!("cannot sum {from:?} down to {shape:?}: it does not broadcast back"),
        });
    }
    let axes = broadcast_axes(from, shape);
    Ok(x.sum(&axes, true)?.reshape(shape)?)
}

impl<T: Element> Op<T> for SumTo {
    fn name(&self) -> &str {
        "sum_to"
    }
    fn params(&self) -> String {
        format!("shape={:?}", self.shape)
    }
    fn formula(&self) -> Option<String> {
        Some("sum over broadcast axes; d/dx = g broadcast back".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        sum_to_shape(x[0].clone(), &self.shape)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.broadcast_to(&cx.inputs[0].shape())?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(
            cx.grad_output
                .broadcast_to(cx.inputs[0].dims())
                .map(tsingle)
                .map_err(Into::into),
        )
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// Broadcasts to `shape` (a zero-copy view in the forward pass).
#[derive(Debug, Clone)]
pub struct BroadcastTo {
    /// The target shape.
    pub shape: Vec<usize>,
}
impl<T: Element> Op<T> for BroadcastTo {
    fn name(&self) -> &str {
        "broadcast_to"
    }
    fn params(&self) -> String {
        format!("shape={:?}", self.shape)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx = g summed over the broadcast axes".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].broadcast_to(&self.shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.sum_to_like(cx.inputs[0])?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(cx.sum_to_input(cx.grad_output.clone(), 0).map(tsingle))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// Maximum (or minimum) over `axes`.
#[derive(Debug, Clone)]
pub struct Extreme {
    /// The reduced axes.
    pub axes: Vec<usize>,
    /// Whether they stay as length-1 axes.
    pub keepdim: bool,
    /// `true` for max, `false` for min.
    pub max: bool,
}
impl<T: Element> Op<T> for Extreme {
    fn name(&self) -> &str {
        if self.max {
            "max"
        } else {
            "min"
        }
    }
    fn params(&self) -> String {
        axes_params(&self.axes, self.keepdim)
    }
    fn formula(&self) -> Option<String> {
        Some("d max(x)/dx_i = 1/k for the k elements equal to the max, 0 elsewhere".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(if self.max {
            x[0].max(&self.axes, self.keepdim)?
        } else {
            x[0].min(&self.axes, self.keepdim)?
        })
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let x = cx.inputs[0].value();
        let shape = x.dims();
        let out = cx
            .output
            .value()
            .reshape(&keepdim_shape(shape, &self.axes))?;
        // Constant weights: 1/k on the k elements that attain the extreme.
        let mask = x.eq_mask(&out)?;
        let count = mask.sum(&self.axes, true)?;
        let weights = mask.div(&count)?;
        let tape = cx.output.tape();
        let g = spread(cx.grad_output, shape, &self.axes)?;
        Ok(single(g.mul(tape.constant(weights))?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // The derivative the backward rule uses: the mean of ẋ over the
        // elements equal to the extreme (ties share it evenly).
        let (x, t) = (cx.inputs[0], cx.tangents[0]?);
        Some((|| {
            let out = cx.output.reshape(&keepdim_shape(x.dims(), &self.axes))?;
            let mask = x.eq_mask(&out)?;
            let count = mask.sum(&self.axes, self.keepdim)?;
            Ok(t.mul(&mask)?.sum(&self.axes, self.keepdim)?.div(&count)?)
        })())
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::*;

    #[test]
    fn sum_gradcheck() {
        check(|_, v| v[0].sum(&[1], false), &[rnd(&[2, 3], 1)]);
        check(|_, v| v[0].sum(&[0, 2], true), &[rnd(&[2, 3, 2], 2)]);
        check(|_, v| v[0].sum_all(), &[rnd(&[4], 3)]);
        check(
            |_, v| v[0].broadcast_to(&[2, 3])?.sum(&[0], false),
            &[rnd(&[3], 4)],
        );
        // sum is linear: square it so the backward of its backward
        // (broadcast_to) is differentiated.
        check2(|_, v| v[0].sum(&[1], false)?.square(), &[rnd(&[2, 3], 5)]);
    }

    #[test]
    fn sum_by_hand() {
        // s_i = Σ_j x_ij; with seed w = [1, 10], L = Σ_i w_i s_i, so
        // ∂L/∂x_ij = w_i: each row gets its own seed.
        let x = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        let (y, g) = vjp(
            |_, v| v[0].sum(&[1], false),
            std::slice::from_ref(&x),
            Some(&[1., 10.]),
        );
        assert_eq!(y, [6., 15.]);
        assert_eq!(g[0], [1., 1., 1., 10., 10., 10.]);
        // keepdim: the same numbers, shape [2, 1].
        let (y, g) = vjp(|_, v| v[0].sum(&[1], true), &[x], Some(&[1., 10.]));
        assert_eq!(y, [6., 15.]);
        assert_eq!(g[0], [1., 1., 1., 10., 10., 10.]);
    }

    #[test]
    fn mean_var_gradcheck() {
        check(|_, v| v[0].mean(&[0], false), &[rnd(&[3, 2], 1)]);
        check(|_, v| v[0].mean_all(), &[rnd(&[2, 3], 2)]);
        check(|_, v| v[0].var(&[1], true, 1), &[rnd(&[2, 4], 3)]);
        check2(|_, v| v[0].var(&[1], false, 0), &[rnd(&[2, 4], 4)]);
    }

    #[test]
    fn mean_var_by_hand() {
        // mean: ∂/∂x_i = 1/n = 0.25.
        let x = t(&[1., 2., 3., 4.], &[4]);
        let (y, g) = grads_of_sum(|_, v| v[0].mean_all(), std::slice::from_ref(&x));
        assert_eq!((y, g[0].clone()), (vec![2.5], vec![0.25; 4]));
        // population variance, mean m = 2.5: v = Σ(x − m)²/n = 1.25 and
        // ∂v/∂x_i = 2(x_i − m)/n (the mean's own term sums to zero) =
        // [−0.75, −0.25, 0.25, 0.75].
        let (y, g) = grads_of_sum(|_, v| v[0].var(&[0], false, 0), &[x]);
        assert_eq!(y, [1.25]);
        assert_close(&g[0], &[-0.75, -0.25, 0.25, 0.75]);
    }

    #[test]
    fn sum_to_gradcheck() {
        check(|_, v| v[0].sum_to(&[1, 3]), &[rnd(&[2, 3], 1)]);
        check(|_, v| v[0].sum_to(&[3]), &[rnd(&[2, 3], 2)]);
        check(|_, v| v[0].sum_to(&[2, 1]), &[rnd(&[2, 3], 3)]);
        check2(|_, v| v[0].sum_to(&[3])?.square(), &[rnd(&[2, 3], 4)]);
    }

    #[test]
    fn sum_to_by_hand() {
        // sum_to [2, 3] → [3] sums the rows: y_j = x_0j + x_1j, so with seed
        // w the gradient is w_j in both rows.
        let (y, g) = vjp(
            |_, v| v[0].sum_to(&[3]),
            &[t(&[1., 2., 3., 4., 5., 6.], &[2, 3])],
            Some(&[1., 2., 3.]),
        );
        assert_eq!(y, [5., 7., 9.]);
        assert_eq!(g[0], [1., 2., 3., 1., 2., 3.]);
    }

    #[test]
    fn sum_to_rejects_non_broadcast_shape() {
        let tape = crate::Tape::<f64>::new();
        let x = tape.leaf(rnd(&[2, 3], 1));
        let e = x.sum_to(&[2]).unwrap_err();
        assert!(
            e.to_string().contains("cannot sum [2, 3] down to [2]"),
            "{e}"
        );
    }

    #[test]
    fn broadcast_to_gradcheck() {
        check(|_, v| v[0].broadcast_to(&[2, 3]), &[rnd(&[3], 1)]);
        check(|_, v| v[0].broadcast_to(&[2, 3]), &[rnd(&[2, 1], 2)]);
        check(|_, v| v[0].broadcast_to(&[2, 2, 3]), &[rnd(&[1, 3], 3)]);
        check2(
            |_, v| v[0].broadcast_to(&[2, 3])?.square(),
            &[rnd(&[2, 1], 4)],
        );
    }

    #[test]
    fn broadcast_to_by_hand() {
        // x: [2, 1] copied into 3 columns: ∂L/∂x_i = Σ_j w_ij.
        let (y, g) = vjp(
            |_, v| v[0].broadcast_to(&[2, 3]),
            &[t(&[1., 2.], &[2, 1])],
            Some(&[1., 2., 3., 4., 5., 6.]),
        );
        assert_eq!(y, [1., 1., 1., 2., 2., 2.]);
        assert_eq!(g[0], [6., 15.]);
    }

    #[test]
    fn max_min_gradcheck() {
        check(|_, v| v[0].max(&[1], false), &[rnd(&[2, 3], 1)]);
        check(|_, v| v[0].max(&[0, 2], true), &[rnd(&[2, 3, 2], 2)]);
        check(|_, v| v[0].min(&[0], false), &[rnd(&[3, 2], 3)]);
        check(|_, v| v[0].min(&[0, 1], false), &[rnd(&[2, 3], 4)]);
        // The rule is piecewise linear; max(x)² has a non-zero second derivative.
        check2(|_, v| v[0].max(&[1], false)?.square(), &[rnd(&[2, 3], 5)]);
        check2(|_, v| v[0].min(&[1], true)?.square(), &[rnd(&[2, 3], 6)]);
    }

    #[test]
    fn max_min_by_hand() {
        // max over axis 1 of [[1, 5], [4, 2]]: the gradient goes to the
        // argmax of each row.
        let x = t(&[1., 5., 4., 2.], &[2, 2]);
        let (y, g) = grads_of_sum(|_, v| v[0].max(&[1], false), std::slice::from_ref(&x));
        assert_eq!((y, g[0].clone()), (vec![5., 4.], vec![0., 1., 1., 0.]));
        let (y, g) = grads_of_sum(|_, v| v[0].min(&[0], false), &[x]);
        assert_eq!((y, g[0].clone()), (vec![1., 2.], vec![1., 0., 0., 1.]));
    }

    #[test]
    fn max_min_ties_split_evenly() {
        // Two elements attain the max 3: each gets 1/2. Three attain the
        // min 0: each gets 1/3.
        let (y, g) = grads_of_sum(|_, v| v[0].max(&[0], false), &[t(&[1., 3., 3., 2.], &[4])]);
        assert_eq!((y, g[0].clone()), (vec![3.], vec![0., 0.5, 0.5, 0.]));
        let (y, g) = grads_of_sum(|_, v| v[0].min(&[0], false), &[t(&[0., 0., 1., 0.], &[4])]);
        assert_eq!(y, [0.]);
        assert_close(&g[0], &[1. / 3., 1. / 3., 0., 1. / 3.]);
    }
}
