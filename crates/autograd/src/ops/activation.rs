//! Activations and piecewise functions.
//!
//! | op | forward | derivative | where it is not defined |
//! | --- | --- | --- | --- |
//! | tanh | tanh x | 1 − tanh²x (saved output) | |
//! | sigmoid | σ(x) | σ(x)(1 − σ(x)) (saved output) | |
//! | relu | max(x, 0) | 1 if x > 0 else 0 | x = 0: we use 0 (PyTorch does too) |
//! | abs | \|x\| | sign x | x = 0: we use 0 |
//! | clamp | min(max(x, lo), hi) | 1 if lo ≤ x ≤ hi else 0 | at the bounds: 1 |
//! | softplus | ln(1 + eˣ) | σ(x) | |
//! | maximum | max(a, b) | 1 to the larger | ties: half to each |
//! | minimum | min(a, b) | 1 to the smaller | ties: half to each |
//!
//! tanh and sigmoid differentiate through their own fused backward ops
//! (`tanh_backward`, `sigmoid_backward`): one pass over memory instead of
//! three, and each has its own rule so higher orders still work.

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op};
use crate::ops::arith::{pair, single};

/// Hyperbolic tangent.
#[derive(Debug, Clone, Copy)]
pub struct Tanh;
impl<T: Element> Op<T> for Tanh {
    fn name(&self) -> &str {
        "tanh"
    }
    fn formula(&self) -> Option<String> {
        Some("d tanh(x)/dx = 1 - tanh(x)²".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].tanh())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        Ok(single(
            tape.apply(TanhBackward, &[cx.grad_output, cx.output])?,
        ))
    }
}

/// `g · (1 − y²)` for `y = tanh(x)`: the fused backward of [`Tanh`].
#[derive(Debug, Clone, Copy)]
pub struct TanhBackward;
impl<T: Element> Op<T> for TanhBackward {
    fn name(&self) -> &str {
        "tanh_backward"
    }
    fn formula(&self) -> Option<String> {
        Some("h = g·(1 - y²): dh/dg = 1 - y², dh/dy = -2·g·y".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].zip_with(x[1], "tanh_backward", |g, y| g * (T::ONE - y * y))?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (h, g, y) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let tape = h.tape();
        let dg = if cx.needs_grad[0] {
            Some(tape.apply(TanhBackward, &[h, y])?.sum_to(&g.shape())?)
        } else {
            None
        };
        let dy = if cx.needs_grad[1] {
            Some(h.mul(g)?.mul(y)?.mul_scalar(-2.0)?.sum_to(&y.shape())?)
        } else {
            None
        };
        Ok(pair(dg, dy))
    }
}

/// Logistic sigmoid, `1 / (1 + e^-x)` (stable for large `|x|`).
#[derive(Debug, Clone, Copy)]
pub struct Sigmoid;
impl<T: Element> Op<T> for Sigmoid {
    fn name(&self) -> &str {
        "sigmoid"
    }
    fn formula(&self) -> Option<String> {
        Some("d σ(x)/dx = σ(x)·(1 - σ(x))".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].sigmoid())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        Ok(single(
            tape.apply(SigmoidBackward, &[cx.grad_output, cx.output])?,
        ))
    }
}

/// `g · y · (1 − y)` for `y = σ(x)`: the fused backward of [`Sigmoid`].
#[derive(Debug, Clone, Copy)]
pub struct SigmoidBackward;
impl<T: Element> Op<T> for SigmoidBackward {
    fn name(&self) -> &str {
        "sigmoid_backward"
    }
    fn formula(&self) -> Option<String> {
        Some("h = g·y·(1 - y): dh/dg = y·(1 - y), dh/dy = g·(1 - 2y)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].zip_with(x[1], "sigmoid_backward", |g, y| g * y * (T::ONE - y))?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (h, g, y) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let tape = h.tape();
        let dg = if cx.needs_grad[0] {
            Some(tape.apply(SigmoidBackward, &[h, y])?.sum_to(&g.shape())?)
        } else {
            None
        };
        let dy = if cx.needs_grad[1] {
            let one_minus_2y = y.mul_scalar(-2.0)?.add_scalar(1.0)?;
            Some(h.mul(g)?.mul(one_minus_2y)?.sum_to(&y.shape())?)
        } else {
            None
        };
        Ok(pair(dg, dy))
    }
}

/// `max(x, 0)`.
#[derive(Debug, Clone, Copy)]
pub struct Relu;
impl<T: Element> Op<T> for Relu {
    fn name(&self) -> &str {
        "relu"
    }
    fn formula(&self) -> Option<String> {
        Some("d relu(x)/dx = 1 if x > 0 else 0".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].relu())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        let mask = tape.constant(cx.inputs[0].value().gt_scalar(0.0));
        Ok(single(cx.grad_output.mul(mask)?))
    }
}

/// `|x|`.
#[derive(Debug, Clone, Copy)]
pub struct Abs;
impl<T: Element> Op<T> for Abs {
    fn name(&self) -> &str {
        "abs"
    }
    fn formula(&self) -> Option<String> {
        Some("d |x|/dx = sign(x) (0 at x = 0)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].abs())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        let sign = cx.inputs[0].value().map(|x| {
            if x > T::ZERO {
                T::ONE
            } else if x < T::ZERO {
                -T::ONE
            } else {
                T::ZERO
            }
        });
        Ok(single(cx.grad_output.mul(tape.constant(sign))?))
    }
}

/// Limits `x` to `[lo, hi]`.
#[derive(Debug, Clone, Copy)]
pub struct Clamp {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}
impl<T: Element> Op<T> for Clamp {
    fn name(&self) -> &str {
        "clamp"
    }
    fn params(&self) -> String {
        format!("lo={}, hi={}", self.lo, self.hi)
    }
    fn formula(&self) -> Option<String> {
        Some("d clamp(x)/dx = 1 if lo ≤ x ≤ hi else 0".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].clamp(self.lo, self.hi))
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (lo, hi) = (T::from_f64(self.lo), T::from_f64(self.hi));
        let mask = cx.inputs[0]
            .value()
            .map(|x| if x >= lo && x <= hi { T::ONE } else { T::ZERO });
        let tape = cx.output.tape();
        Ok(single(cx.grad_output.mul(tape.constant(mask))?))
    }
}

/// `ln(1 + eˣ)`, stable for any `x`.
#[derive(Debug, Clone, Copy)]
pub struct Softplus;
impl<T: Element> Op<T> for Softplus {
    fn name(&self) -> &str {
        "softplus"
    }
    fn formula(&self) -> Option<String> {
        Some("d softplus(x)/dx = σ(x)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].softplus())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul(cx.inputs[0].sigmoid()?)?))
    }
}

/// Which of two inputs a gradient goes to, as constant masks: 1 to the
/// larger (or smaller), ½ to each on a tie.
fn select_masks<T: Element>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    max: bool,
) -> Result<(Tensor<T>, Tensor<T>)> {
    let half = T::from_f64(0.5);
    let ma = a.zip_with(b, if max { "maximum" } else { "minimum" }, move |x, y| {
        if x == y {
            half
        } else if (x > y) == max {
            T::ONE
        } else {
            T::ZERO
        }
    })?;
    let mb = ma.rsub_scalar(1.0);
    Ok((ma, mb))
}

fn select_backward<'t, T: Element>(
    cx: &BackwardCtx<'t, T>,
    max: bool,
) -> Result<InputGrads<'t, T>> {
    let (g, a, b) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
    let (ma, mb) = select_masks(&a.value(), &b.value(), max)?;
    let tape = g.tape();
    let ga = if cx.needs_grad[0] {
        Some(g.mul(tape.constant(ma))?.sum_to(&a.shape())?)
    } else {
        None
    };
    let gb = if cx.needs_grad[1] {
        Some(g.mul(tape.constant(mb))?.sum_to(&b.shape())?)
    } else {
        None
    };
    Ok(pair(ga, gb))
}

/// Elementwise maximum, broadcasting.
#[derive(Debug, Clone, Copy)]
pub struct Maximum;
impl<T: Element> Op<T> for Maximum {
    fn name(&self) -> &str {
        "maximum"
    }
    fn formula(&self) -> Option<String> {
        Some("d max(a, b) = 1 to the larger input (½ each on a tie)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].maximum(x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        select_backward(cx, true)
    }
}

/// Elementwise minimum, broadcasting.
#[derive(Debug, Clone, Copy)]
pub struct Minimum;
impl<T: Element> Op<T> for Minimum {
    fn name(&self) -> &str {
        "minimum"
    }
    fn formula(&self) -> Option<String> {
        Some("d min(a, b) = 1 to the smaller input (½ each on a tie)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].minimum(x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        select_backward(cx, false)
    }
}
