//! Elementwise functions of one input.
//!
//! | op | forward | derivative |
//! | --- | --- | --- |
//! | exp | eˣ | eˣ (the saved output) |
//! | ln | ln x | 1/x |
//! | sqrt | √x | 1/(2√x) (the saved output) |
//! | powf | xᵉ | e·x^(e−1) |
//! | sin | sin x | cos x |
//! | cos | cos x | −sin x |

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op};
use crate::ops::arith::single;

/// `eˣ`.
#[derive(Debug, Clone, Copy)]
pub struct Exp;
impl<T: Element> Op<T> for Exp {
    fn name(&self) -> &str {
        "exp"
    }
    fn formula(&self) -> Option<String> {
        Some("d exp(x)/dx = exp(x)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].exp())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul(cx.output)?))
    }
}

/// Natural logarithm.
#[derive(Debug, Clone, Copy)]
pub struct Ln;
impl<T: Element> Op<T> for Ln {
    fn name(&self) -> &str {
        "ln"
    }
    fn formula(&self) -> Option<String> {
        Some("d ln(x)/dx = 1/x".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].ln())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.div(cx.inputs[0])?))
    }
}

/// Square root.
#[derive(Debug, Clone, Copy)]
pub struct Sqrt;
impl<T: Element> Op<T> for Sqrt {
    fn name(&self) -> &str {
        "sqrt"
    }
    fn formula(&self) -> Option<String> {
        Some("d sqrt(x)/dx = 1/(2·sqrt(x))".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].sqrt())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.div(cx.output)?.mul_scalar(0.5)?))
    }
}

/// `xᵉ` for a constant exponent.
#[derive(Debug, Clone, Copy)]
pub struct Powf(pub f64);
impl<T: Element> Op<T> for Powf {
    fn name(&self) -> &str {
        "powf"
    }
    fn params(&self) -> String {
        format!("e={}", self.0)
    }
    fn formula(&self) -> Option<String> {
        Some(format!("d x^{e}/dx = {e}·x^{}", self.0 - 1.0, e = self.0))
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].powf(self.0))
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let x = cx.inputs[0];
        let d = if self.0 == 2.0 {
            x.mul_scalar(2.0)?
        } else {
            x.powf(self.0 - 1.0)?.mul_scalar(self.0)?
        };
        Ok(single(cx.grad_output.mul(d)?))
    }
}

/// Sine.
#[derive(Debug, Clone, Copy)]
pub struct Sin;
impl<T: Element> Op<T> for Sin {
    fn name(&self) -> &str {
        "sin"
    }
    fn formula(&self) -> Option<String> {
        Some("d sin(x)/dx = cos(x)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].sin())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul(cx.inputs[0].cos()?)?))
    }
}

/// Cosine.
#[derive(Debug, Clone, Copy)]
pub struct Cos;
impl<T: Element> Op<T> for Cos {
    fn name(&self) -> &str {
        "cos"
    }
    fn formula(&self) -> Option<String> {
        Some("d cos(x)/dx = -sin(x)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].cos())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul(cx.inputs[0].sin()?)?.neg()?))
    }
}
