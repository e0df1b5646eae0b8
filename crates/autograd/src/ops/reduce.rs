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
use crate::op::{BackwardCtx, InputGrads, Op};
use crate::ops::arith::single;
use crate::var::Var;

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
        format!(
            "axes={:?}{}",
            self.axes,
            if self.keepdim { ", keepdim" } else { "" }
        )
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
        let from = x[0].shape();
        let ok = from.len() >= self.shape.len()
            && tapegrad_tensor::broadcast_shapes("sum_to", &self.shape, from)
                .is_ok_and(|s| s.as_slice() == from);
        if !ok {
            return Err(crate::Error::InvalidArgument {
                op: "sum_to".into(),
                msg: format!(
                    "cannot sum {from:?} down to {:?}: it does not broadcast back",
                    self.shape
                ),
            });
        }
        let axes = broadcast_axes(from, &self.shape);
        Ok(x[0].sum(&axes, true)?.reshape(&self.shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.broadcast_to(&cx.inputs[0].shape())?))
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
        Ok(single(cx.grad_output.sum_to(&cx.inputs[0].shape())?))
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
        format!(
            "axes={:?}{}",
            self.axes,
            if self.keepdim { ", keepdim" } else { "" }
        )
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
            .reshape(&keepdim_shape(&shape, &self.axes))?;
        // Constant weights: 1/k on the k elements that attain the extreme.
        let mask = x.eq_mask(&out)?;
        let count = mask.sum(&self.axes, true)?;
        let weights = mask.div(&count)?;
        let tape = cx.output.tape();
        let g = spread(cx.grad_output, &shape, &self.axes)?;
        Ok(single(g.mul(tape.constant(weights))?))
    }
}
