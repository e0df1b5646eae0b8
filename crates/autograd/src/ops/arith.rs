//! Broadcasting arithmetic: add, sub, mul, div, pow, and the scalar forms.
//!
//! | op | forward | ∂/∂a | ∂/∂b |
//! | --- | --- | --- | --- |
//! | add | a + b | g | g |
//! | sub | a − b | g | −g |
//! | mul | a · b | g · b | g · a |
//! | div | a / b | g / b | −g · (a/b) / b |
//! | pow | a^b | g · b · a^(b−1) | g · a^b · ln a |
//!
//! Each partial is summed back to its input's shape when the inputs were
//! broadcast (`sum_to`). Only the output value and inputs are saved (they are
//! the tape nodes themselves).

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op};
use crate::var::Var;

/// Two input gradients.
pub(crate) fn pair<'t, T: Element>(
    a: Option<Var<'t, T>>,
    b: Option<Var<'t, T>>,
) -> InputGrads<'t, T> {
    let mut v = InputGrads::new();
    v.push(a);
    v.push(b);
    v
}

/// One input gradient.
pub(crate) fn single<'t, T: Element>(a: Var<'t, T>) -> InputGrads<'t, T> {
    InputGrads::from_elem(Some(a), 1)
}

/// `a + b`, broadcasting.
#[derive(Debug, Clone, Copy)]
pub struct Add;
impl<T: Element> Op<T> for Add {
    fn name(&self) -> &str {
        "add"
    }
    fn formula(&self) -> Option<String> {
        Some("d(a + b)/da = 1, d(a + b)/db = 1".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].add(x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let g = cx.grad_output;
        let ga = if cx.needs_grad[0] {
            Some(g.sum_to(&cx.inputs[0].shape())?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(g.sum_to(&cx.inputs[1].shape())?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
}

/// `a - b`, broadcasting.
#[derive(Debug, Clone, Copy)]
pub struct Sub;
impl<T: Element> Op<T> for Sub {
    fn name(&self) -> &str {
        "sub"
    }
    fn formula(&self) -> Option<String> {
        Some("d(a - b)/da = 1, d(a - b)/db = -1".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].sub(x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let g = cx.grad_output;
        let ga = if cx.needs_grad[0] {
            Some(g.sum_to(&cx.inputs[0].shape())?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(g.neg()?.sum_to(&cx.inputs[1].shape())?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
}

/// `a · b` elementwise, broadcasting.
#[derive(Debug, Clone, Copy)]
pub struct Mul;
impl<T: Element> Op<T> for Mul {
    fn name(&self) -> &str {
        "mul"
    }
    fn formula(&self) -> Option<String> {
        Some("d(a·b)/da = b, d(a·b)/db = a".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].mul(x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, a, b) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let ga = if cx.needs_grad[0] {
            Some(g.mul(b)?.sum_to(&a.shape())?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(g.mul(a)?.sum_to(&b.shape())?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
}

/// `a / b` elementwise, broadcasting.
#[derive(Debug, Clone, Copy)]
pub struct Div;
impl<T: Element> Op<T> for Div {
    fn name(&self) -> &str {
        "div"
    }
    fn formula(&self) -> Option<String> {
        Some("d(a/b)/da = 1/b, d(a/b)/db = -a/b²".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].div(x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, a, b, out) = (cx.grad_output, cx.inputs[0], cx.inputs[1], cx.output);
        let ga = if cx.needs_grad[0] {
            Some(g.div(b)?.sum_to(&a.shape())?)
        } else {
            None
        };
        // -g·a/b² = -(g·out)/b, reusing the saved output.
        let gb = if cx.needs_grad[1] {
            Some(g.mul(out)?.div(b)?.neg()?.sum_to(&b.shape())?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
}

/// `a ^ b` elementwise, broadcasting. The gradient for `b` uses `ln a`, so it
/// is NaN where `a < 0` (as in PyTorch).
#[derive(Debug, Clone, Copy)]
pub struct Pow;
impl<T: Element> Op<T> for Pow {
    fn name(&self) -> &str {
        "pow"
    }
    fn formula(&self) -> Option<String> {
        Some("d(a^b)/da = b·a^(b-1), d(a^b)/db = a^b·ln(a)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].pow(x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, a, b, out) = (cx.grad_output, cx.inputs[0], cx.inputs[1], cx.output);
        let ga = if cx.needs_grad[0] {
            Some(
                g.mul(b)?
                    .mul(a.pow(b.add_scalar(-1.0)?)?)?
                    .sum_to(&a.shape())?,
            )
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(g.mul(out)?.mul(a.ln()?)?.sum_to(&b.shape())?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
}

/// `-x`.
#[derive(Debug, Clone, Copy)]
pub struct Neg;
impl<T: Element> Op<T> for Neg {
    fn name(&self) -> &str {
        "neg"
    }
    fn formula(&self) -> Option<String> {
        Some("d(-x)/dx = -1".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].neg())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.neg()?))
    }
}

/// `x + c` for a constant `c`.
#[derive(Debug, Clone, Copy)]
pub struct AddScalar(pub f64);
impl<T: Element> Op<T> for AddScalar {
    fn name(&self) -> &str {
        "add_scalar"
    }
    fn params(&self) -> String {
        format!("c={}", self.0)
    }
    fn formula(&self) -> Option<String> {
        Some("d(x + c)/dx = 1".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].add_scalar(self.0))
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output))
    }
}

/// `x · c` for a constant `c`.
#[derive(Debug, Clone, Copy)]
pub struct MulScalar(pub f64);
impl<T: Element> Op<T> for MulScalar {
    fn name(&self) -> &str {
        "mul_scalar"
    }
    fn params(&self) -> String {
        format!("c={}", self.0)
    }
    fn formula(&self) -> Option<String> {
        Some("d(c·x)/dx = c".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].mul_scalar(self.0))
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul_scalar(self.0)?))
    }
}
