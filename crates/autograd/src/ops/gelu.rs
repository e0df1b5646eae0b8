//! GELU, exact (erf) and tanh forms.
//!
//! | op | forward | derivative |
//! | --- | --- | --- |
//! | gelu | x·Φ(x) = ½x(1 + erf(x/√2)) | Φ(x) + x·φ(x) (op `gelu_grad`) |
//! | gelu_grad | Φ(x) + x·φ(x) | φ(x)·(2 − x²) |
//! | gelu_tanh | ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³) | ½(1 + t) + ½x(1 − t²)·u′, t = tanh u |
//!
//! `φ` is the standard normal density, `Φ` its distribution function. The
//! derivative of `Φ(x) + xφ(x)` is `φ + φ + xφ′ = φ(2 − x²)` since
//! `φ′(x) = −xφ(x)`. Each backward rule is written with differentiable ops,
//! so every order works; the value rules call the fused tensor kernels.

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op, TensorGrads, ValueCtx};
use crate::ops::arith::{single, tsingle};
use crate::var::Var;

/// `1/√(2π)`.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// GELU, exact form (PyTorch's default `gelu`).
#[derive(Debug, Clone, Copy)]
pub struct Gelu;
impl<T: Element> Op<T> for Gelu {
    fn name(&self) -> &str {
        "gelu"
    }
    fn formula(&self) -> Option<String> {
        Some("d gelu(x)/dx = Φ(x) + x·φ(x)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].gelu()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let x = cx.inputs[0];
        let d = x.tape().apply(GeluGrad, &[x])?;
        Ok(single(cx.grad_output.mul(d)?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        // One fused pass: g·gelu'(x) without the derivative as a tensor.
        let dx = cx.inputs[0].gelu_backward(cx.grad_output);
        Some(dx.map(tsingle).map_err(Into::into))
    }
}

/// The exact GELU's derivative `Φ(x) + x·φ(x)`, an op of its own so that
/// GELU differentiates again.
#[derive(Debug, Clone, Copy)]
pub struct GeluGrad;
impl<T: Element> Op<T> for GeluGrad {
    fn name(&self) -> &str {
        "gelu_grad"
    }
    fn formula(&self) -> Option<String> {
        Some("d(Φ(x) + x·φ(x))/dx = φ(x)·(2 − x²)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].gelu_grad()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let x = cx.inputs[0];
        let x2 = x.square()?;
        let pdf = x2.mul_scalar(-0.5)?.exp()?.mul_scalar(INV_SQRT_2PI)?;
        let d = pdf.mul(x2.rsub_scalar(2.0)?)?;
        Ok(single(cx.grad_output.mul(d)?))
    }
}

/// GELU, tanh form (`gelu(approximate='tanh')`).
#[derive(Debug, Clone, Copy)]
pub struct GeluTanh;
impl<T: Element> Op<T> for GeluTanh {
    fn name(&self) -> &str {
        "gelu_tanh"
    }
    fn formula(&self) -> Option<String> {
        Some("d gelu_tanh(x)/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 0.134145x²)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].gelu_tanh()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let x = cx.inputs[0];
        let c = (2.0 / std::f64::consts::PI).sqrt();
        let x2 = x.square()?;
        let u = x2
            .mul_scalar(0.044_715)?
            .add_scalar(1.0)?
            .mul(x)?
            .mul_scalar(c)?;
        let t = u.tanh()?;
        let du = x2
            .mul_scalar(3.0 * 0.044_715)?
            .add_scalar(1.0)?
            .mul_scalar(c)?;
        let left = t.add_scalar(1.0)?.mul_scalar(0.5)?;
        let right = x
            .mul(t.square()?.rsub_scalar(1.0)?)?
            .mul(du)?
            .mul_scalar(0.5)?;
        Ok(single(cx.grad_output.mul(left.add(right)?)?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let dx = cx.inputs[0].gelu_tanh_backward(cx.grad_output);
        Some(dx.map(tsingle).map_err(Into::into))
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// GELU, exact form `x·Φ(x)` (PyTorch's `F.gelu`).
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::scalar(0.0));
    /// let y = x.gelu()?;
    /// assert_eq!(y.item()?, 0.0);
    /// assert_eq!(tape.backward(y)?.get(x).unwrap().item()?, 0.5); // Φ(0)
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// Only if the result cannot be allocated.
    pub fn gelu(self) -> Result<Var<'t, T>> {
        self.tape().apply(Gelu, &[self])
    }

    /// GELU, tanh approximation (`F.gelu(x, approximate='tanh')`).
    ///
    /// # Errors
    /// Only if the result cannot be allocated.
    pub fn gelu_tanh(self) -> Result<Var<'t, T>> {
        self.tape().apply(GeluTanh, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::*;

    #[test]
    fn gelu_gradchecks() {
        let x = rnd(&[2, 3], 1).mul_scalar(3.0).unwrap();
        check(|_, v| v[0].gelu(), std::slice::from_ref(&x));
        check2(|_, v| v[0].gelu(), std::slice::from_ref(&x));
        check(|_, v| v[0].gelu_tanh(), std::slice::from_ref(&x));
        check2(|_, v| v[0].gelu_tanh(), &[x]);
    }

    #[test]
    fn gelu_by_hand() {
        // At 0: gelu = 0, slope Φ(0) = ½, curvature φ(0)·2 = 2/√(2π).
        // At 1 (PyTorch): gelu(1) = 0.8413447460685429, d/dx = 1.0833154705876864.
        let (y, g) = grads_of_sum(|_, v| v[0].gelu(), &[t(&[0., 1.], &[2])]);
        assert_eq!(y[0], 0.0);
        assert!((y[1] - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert_eq!(g[0][0], 0.5);
        assert!((g[0][1] - 1.083_315_470_587_686_4).abs() < 1e-14);
        let h = crate::hessian(|_, v| v.gelu()?.sum_all(), &t(&[0.], &[1])).unwrap();
        assert_close(&h.to_vec(), &[2.0 * super::INV_SQRT_2PI]);
        // Tanh form at 1 (PyTorch): 0.8411919906082768.
        let (y, _) = grads_of_sum(|_, v| v[0].gelu_tanh(), &[t(&[1.], &[1])]);
        assert!((y[0] - 0.841_191_990_608_276_8).abs() < 1e-15);
    }
}
