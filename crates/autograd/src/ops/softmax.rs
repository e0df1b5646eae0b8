//! Softmax, log-softmax and log-sum-exp along axes (all stable: the maximum
//! is subtracted before exponentiating).
//!
//! | op | forward | backward (g = ∂L/∂y) |
//! | --- | --- | --- |
//! | softmax | y = eˣ / Σeˣ | y · (g − Σ g·y) |
//! | log_softmax | y = x − logΣeˣ | g − eʸ · Σ g |
//! | logsumexp | y = log Σ eˣ | g · e^(x − y) (= g · softmax x) |
//!
//! The sums run over the op's axis, with keepdim so they broadcast back.

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op};
use crate::ops::arith::single;
use crate::ops::reduce::keepdim_shape;

/// Softmax along `axis`.
#[derive(Debug, Clone, Copy)]
pub struct Softmax {
    /// The normalised axis.
    pub axis: usize,
}
impl<T: Element> Op<T> for Softmax {
    fn name(&self) -> &str {
        "softmax"
    }
    fn params(&self) -> String {
        format!("axis={}", self.axis)
    }
    fn formula(&self) -> Option<String> {
        Some("d softmax: dx = y·(g - Σ g·y)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].softmax(self.axis)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, y) = (cx.grad_output, cx.output);
        let s = g.mul(y)?.sum(&[self.axis], true)?;
        Ok(single(y.mul(g.sub(s)?)?))
    }
}

/// Log-softmax along `axis`.
#[derive(Debug, Clone, Copy)]
pub struct LogSoftmax {
    /// The normalised axis.
    pub axis: usize,
}
impl<T: Element> Op<T> for LogSoftmax {
    fn name(&self) -> &str {
        "log_softmax"
    }
    fn params(&self) -> String {
        format!("axis={}", self.axis)
    }
    fn formula(&self) -> Option<String> {
        Some("d log_softmax: dx = g - exp(y)·Σ g".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].log_softmax(self.axis)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, y) = (cx.grad_output, cx.output);
        let s = g.sum(&[self.axis], true)?;
        Ok(single(g.sub(y.exp()?.mul(s)?)?))
    }
}

/// `log Σ exp(x)` over `axes`.
#[derive(Debug, Clone)]
pub struct LogSumExp {
    /// The reduced axes.
    pub axes: Vec<usize>,
    /// Whether they stay as length-1 axes.
    pub keepdim: bool,
}
impl<T: Element> Op<T> for LogSumExp {
    fn name(&self) -> &str {
        "logsumexp"
    }
    fn params(&self) -> String {
        format!(
            "axes={:?}{}",
            self.axes,
            if self.keepdim { ", keepdim" } else { "" }
        )
    }
    fn formula(&self) -> Option<String> {
        Some("d logsumexp(x)/dx = softmax(x) = exp(x - y)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].logsumexp(&self.axes, self.keepdim)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let x = cx.inputs[0];
        let ks = keepdim_shape(&x.shape(), &self.axes);
        let g = cx.grad_output.reshape(&ks)?;
        let y = cx.output.reshape(&ks)?;
        Ok(single(g.mul(x.sub(y)?.exp()?)?))
    }
}
