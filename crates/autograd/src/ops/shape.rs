//! Views and joins: reshape, permute, slice, concat.
//!
//! | op | forward | backward |
//! | --- | --- | --- |
//! | reshape | same elements, new shape | g reshaped back |
//! | permute(p) | axes reordered | g permuted by p⁻¹ |
//! | slice(axis, a..b step s) | a strided view | g placed back into zeros (`slice_backward`) |
//! | concat(axis) | inputs joined | g cut into the inputs' pieces |

use tapegrad_tensor::{Element, Layout, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op};
use crate::ops::arith::single;

/// Same elements, another shape (a view when the layout allows it).
#[derive(Debug, Clone)]
pub struct Reshape {
    /// The new shape.
    pub shape: Vec<usize>,
}
impl<T: Element> Op<T> for Reshape {
    fn name(&self) -> &str {
        "reshape"
    }
    fn params(&self) -> String {
        format!("shape={:?}", self.shape)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx = g reshaped to x's shape".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].reshape(&self.shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.reshape(&cx.inputs[0].shape())?))
    }
}

/// Reorders axes (a view).
#[derive(Debug, Clone)]
pub struct Permute {
    /// Axis `i` of the output is axis `perm[i]` of the input.
    pub perm: Vec<usize>,
}
impl<T: Element> Op<T> for Permute {
    fn name(&self) -> &str {
        "permute"
    }
    fn params(&self) -> String {
        format!("perm={:?}", self.perm)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx = g permuted by the inverse permutation".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].permute(&self.perm)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let mut inv = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inv[p] = i;
        }
        Ok(single(cx.grad_output.permute(&inv)?))
    }
}

/// Positions `start, start+step, …` below `end` along `axis` (a view).
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    /// The sliced axis.
    pub axis: usize,
    /// First position.
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
    /// Step (at least 1).
    pub step: usize,
}
impl<T: Element> Op<T> for Slice {
    fn name(&self) -> &str {
        "slice"
    }
    fn params(&self) -> String {
        format!(
            "axis={}, {}..{} step {}",
            self.axis, self.start, self.end, self.step
        )
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx = g at the sliced positions, 0 elsewhere".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].slice(self.axis, self.start, self.end, self.step)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        let op = SliceBackward {
            slice: *self,
            input_shape: cx.inputs[0].shape().to_vec(),
        };
        Ok(single(tape.apply(op, &[cx.grad_output])?))
    }
}

/// Places `g` at the positions a [`Slice`] took, zeros elsewhere (the
/// adjoint of slicing; its own backward is the slice again).
#[derive(Debug, Clone)]
pub struct SliceBackward {
    /// The slice being undone.
    pub slice: Slice,
    /// Shape of the sliced input.
    pub input_shape: Vec<usize>,
}
impl<T: Element> Op<T> for SliceBackward {
    fn name(&self) -> &str {
        "slice_backward"
    }
    fn params(&self) -> String {
        format!("into {:?}", self.input_shape)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dg = h sliced".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let s = self.slice;
        let full = Layout::contiguous(&self.input_shape);
        let view = full.slice(s.axis, s.start, s.end, s.step)?;
        if view.shape() != x[0].shape() {
            return Err(crate::Error::InvalidArgument {
                op: "slice_backward".into(),
                msg: format!(
                    "gradient of shape {:?} does not fit slice {:?}",
                    x[0].shape(),
                    view.shape()
                ),
            });
        }
        let mut out = vec![T::ZERO; full.numel()];
        let vals = x[0].to_vec();
        let mut k = 0;
        view.for_each_offset(|o| {
            out[o] = vals[k];
            k += 1;
        });
        Ok(Tensor::from_vec(out, &self.input_shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let s = self.slice;
        Ok(single(
            cx.grad_output.slice(s.axis, s.start, s.end, s.step)?,
        ))
    }
}

/// Joins its inputs along `axis`.
#[derive(Debug, Clone, Copy)]
pub struct Concat {
    /// The joining axis.
    pub axis: usize,
}
impl<T: Element> Op<T> for Concat {
    fn name(&self) -> &str {
        "concat"
    }
    fn params(&self) -> String {
        format!("axis={}", self.axis)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx_k = the k-th piece of g along the axis".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(Tensor::concat(x, self.axis)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let mut start = 0;
        let mut out = InputGrads::new();
        for (k, inp) in cx.inputs.iter().enumerate() {
            let len = inp.shape()[self.axis];
            out.push(if cx.needs_grad[k] {
                Some(cx.grad_output.narrow(self.axis, start, len)?)
            } else {
                None
            });
            start += len;
        }
        Ok(out)
    }
}
