//! Elementwise functions of one input.
//!
//! | op | forward | derivative |
//! | --- | --- | --- |
//! | exp | eˣ | eˣ (the saved output) |
//! | ln | ln x | 1/x |
//! | sqrt | √x | 1/(2√x) (the saved output) |
//! | powf | xᵉ | e·x^(e−1) (exactly 0 for e = 0, also at x = 0) |
//! | sin | sin x | cos x |
//! | cos | cos x | −sin x |

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op, TangentCtx, TensorGrads, ValueCtx};
use crate::ops::arith::{single, tsingle};

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
        Ok(x[0].exp()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul(cx.output)?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(
            cx.grad_output
                .mul(cx.output)
                .map(tsingle)
                .map_err(Into::into),
        )
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(cx.output.mul(cx.tangents[0]?).map_err(Into::into))
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
        Ok(x[0].ln()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.div(cx.inputs[0])?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(
            cx.grad_output
                .div(cx.inputs[0])
                .map(tsingle)
                .map_err(Into::into),
        )
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(cx.tangents[0]?.div(cx.inputs[0]).map_err(Into::into))
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
        Ok(x[0].sqrt()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.div(cx.output)?.mul_scalar(0.5)?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(
            cx.grad_output
                .div(cx.output)
                .and_then(|q| q.mul_scalar(0.5))
                .map(tsingle)
                .map_err(Into::into),
        )
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // ẏ = ẋ / (2√x)
        let t = cx.tangents[0]?;
        Some((|| Ok(t.div(&cx.output.mul_scalar(2.0)?)?))())
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
        Ok(x[0].powf(self.0)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, x) = (cx.grad_output, cx.inputs[0]);
        // e = 0: x⁰ = 1 is constant. The general rule would compute
        // 0·x⁻¹, which is NaN at x = 0, so give exact zeros instead.
        // e = 1: the derivative is 1; skipping x⁰ keeps higher orders exact too.
        let grad = if self.0 == 0.0 {
            g.constant(Tensor::zeros(&x.shape()))
        } else if self.0 == 1.0 {
            g
        } else if self.0 == 2.0 {
            g.mul(x.mul_scalar(2.0)?)?
        } else {
            g.mul(x.powf(self.0 - 1.0)?.mul_scalar(self.0)?)?
        };
        Ok(single(grad))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let (g, x) = (cx.grad_output, cx.inputs[0]);
        // The same cases as the recorded rule, in the same arithmetic order.
        let grad = if self.0 == 0.0 {
            Ok(Tensor::zeros(x.dims()))
        } else if self.0 == 1.0 {
            Ok(g.clone())
        } else if self.0 == 2.0 {
            x.mul_scalar(2.0).and_then(|d| g.mul(&d))
        } else {
            x.powf(self.0 - 1.0)
                .and_then(|p| p.mul_scalar(self.0))
                .and_then(|d| g.mul(&d))
        };
        Some(grad.map(tsingle).map_err(Into::into))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // ẏ = e·x^(e−1)·ẋ
        let (x, t) = (cx.inputs[0], cx.tangents[0]?);
        Some((|| Ok(x.powf(self.0 - 1.0)?.mul_scalar(self.0)?.mul(t)?))())
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
        Ok(x[0].sin()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul(cx.inputs[0].cos()?)?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        let t = cx.tangents[0]?;
        Some((|| Ok(cx.inputs[0].cos()?.mul(t)?))())
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
        Ok(x[0].cos()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul(cx.inputs[0].sin()?)?.neg()?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        let t = cx.tangents[0]?;
        Some((|| Ok(cx.inputs[0].sin()?.neg()?.mul(t)?))())
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::*;
    use crate::Tape;
    use tapegrad_tensor::Tensor;

    #[test]
    fn exp_gradcheck() {
        check(|_, v| v[0].exp(), &[rnd(&[4], 1)]);
        check(|_, v| v[0].exp(), &[rnd(&[2, 3], 2)]);
        // A broadcast (stride-0) view as the input of the kernel.
        check(|_, v| v[0].broadcast_to(&[2, 3])?.exp(), &[rnd(&[3], 3)]);
        check2(|_, v| v[0].exp(), &[rnd(&[2, 3], 4)]);
    }

    #[test]
    fn exp_by_hand() {
        // d eˣ/dx = eˣ: 1 at x = 0, 2 at x = ln 2.
        let (y, g) = grads_of_sum(|_, v| v[0].exp(), &[t(&[0., 2f64.ln()], &[2])]);
        assert_close(&y, &[1., 2.]);
        assert_close(&g[0], &[1., 2.]);
    }

    #[test]
    fn ln_gradcheck() {
        check(|_, v| v[0].ln(), &[pos(&[4], 1)]);
        check(|_, v| v[0].ln(), &[pos(&[2, 3], 2)]);
        check(|_, v| v[0].broadcast_to(&[2, 3])?.ln(), &[pos(&[3], 3)]);
        check2(|_, v| v[0].ln(), &[pos(&[2, 3], 4)]);
    }

    #[test]
    fn ln_by_hand() {
        // d ln x/dx = 1/x: 2 at x = 0.5, 0.25 at x = 4.
        let (y, g) = grads_of_sum(|_, v| v[0].ln(), &[t(&[0.5, 4.], &[2])]);
        assert_close(&y, &[-(2f64.ln()), 4f64.ln()]);
        assert_eq!(g[0], [2., 0.25]);
    }

    #[test]
    fn ln_near_zero() {
        // Close to 0 the gradient is large but finite and still correct.
        check(|_, v| v[0].ln(), &[t(&[1e-3, 2e-3, 5e-3], &[3])]);
        let (y, g) = grads_of_sum(|_, v| v[0].ln(), &[t(&[1e-8], &[1])]);
        assert_close(&y, &[1e-8f64.ln()]);
        assert_close(&g[0], &[1e8]);
        // At exactly 0: ln 0 = −∞ and the gradient 1/0 = +∞ (IEEE; anomaly
        // mode reports it). Below 0 the value is NaN.
        let (y, g) = grads_of_sum(|_, v| v[0].ln(), &[t(&[0.], &[1])]);
        assert_eq!((y[0], g[0][0]), (f64::NEG_INFINITY, f64::INFINITY));
        let (y, _) = grads_of_sum(|_, v| v[0].ln(), &[t(&[-1.], &[1])]);
        assert!(y[0].is_nan());
    }

    #[test]
    fn sqrt_gradcheck() {
        check(|_, v| v[0].sqrt(), &[pos(&[4], 1)]);
        check(|_, v| v[0].sqrt(), &[pos(&[2, 3], 2)]);
        check2(|_, v| v[0].sqrt(), &[pos(&[2, 3], 3)]);
    }

    #[test]
    fn sqrt_by_hand() {
        // d √x/dx = 1/(2√x): 1/4 at x = 4, 1/6 at x = 9.
        let (y, g) = grads_of_sum(|_, v| v[0].sqrt(), &[t(&[4., 9.], &[2])]);
        assert_eq!(y, [2., 3.]);
        assert_close(&g[0], &[0.25, 1. / 6.]);
    }

    #[test]
    fn powf_gradcheck() {
        // Integer exponents on inputs of both signs, fractional and
        // negative exponents on positive inputs.
        check(|_, v| v[0].powf(3.0), &[rnd(&[4], 1)]);
        check(|_, v| v[0].powf(2.0), &[rnd(&[2, 3], 2)]);
        check(|_, v| v[0].powf(1.5), &[pos(&[2, 3], 3)]);
        check(|_, v| v[0].powf(-1.0), &[pos(&[3], 4)]);
        check(|_, v| v[0].powf(-0.5), &[pos(&[3], 5)]);
        check2(|_, v| v[0].powf(3.0), &[rnd(&[2, 3], 6)]);
        check2(|_, v| v[0].powf(2.0), &[rnd(&[3], 7)]);
        check2(|_, v| v[0].powf(1.5), &[pos(&[3], 8)]);
        check2(|_, v| v[0].powf(-1.0), &[pos(&[3], 9)]);
    }

    #[test]
    fn powf_by_hand() {
        // d x³/dx = 3x²: 12 at x = 2. d x^1.5/dx = 1.5·√x: 3 at x = 4.
        let (y, g) = grads_of_sum(|_, v| v[0].powf(3.0), &[t(&[2.], &[1])]);
        assert_eq!((y, g[0].clone()), (vec![8.], vec![12.]));
        let (y, g) = grads_of_sum(|_, v| v[0].powf(1.5), &[t(&[4.], &[1])]);
        assert_close(&y, &[8.]);
        assert_close(&g[0], &[3.]);
    }

    #[test]
    fn powf_negative_base_integer_exponent() {
        // x = −2: x³ = −8, d/dx = 3x² = 12, d²/dx² = 6x = −12.
        // x = −3: x² = 9, d/dx = 2x = −6.
        let tape = Tape::<f64>::new();
        let x = tape.leaf(Tensor::scalar(-2.0));
        let y = x.powf(3.0).unwrap();
        assert_eq!(y.item().unwrap(), -8.0);
        let dy = tape.grad_graph(&[y], &[x]).unwrap()[0].unwrap();
        assert_eq!(dy.item().unwrap(), 12.0);
        let d2y = tape.grad(&[dy], &[x]).unwrap()[0].clone().unwrap();
        assert_eq!(d2y.item().unwrap(), -12.0);
        let (y, g) = grads_of_sum(|_, v| v[0].powf(2.0), &[t(&[-3.], &[1])]);
        assert_eq!((y, g[0].clone()), (vec![9.], vec![-6.]));
        // A negative base with a fractional exponent has no real value.
        let (y, _) = grads_of_sum(|_, v| v[0].powf(0.5), &[t(&[-4.], &[1])]);
        assert!(y[0].is_nan());
    }

    #[test]
    fn powf_zero_and_one_exponents_at_zero() {
        // x⁰ = 1 is constant: its derivative is 0 everywhere, also at x = 0
        // (naively 0·x⁻¹ = 0·∞ = NaN). x¹ has derivative 1 and second
        // derivative 0 at x = 0.
        let (y, g) = grads_of_sum(|_, v| v[0].powf(0.0), &[t(&[0., 2.], &[2])]);
        assert_eq!((y, g[0].clone()), (vec![1., 1.], vec![0., 0.]));
        let tape = Tape::<f64>::new();
        let x = tape.leaf(Tensor::scalar(0.0));
        let y = x.powf(1.0).unwrap();
        let dy = tape.grad_graph(&[y], &[x]).unwrap()[0].unwrap();
        assert_eq!(dy.item().unwrap(), 1.0);
        let d2y = tape.grad(&[dy], &[x]).unwrap()[0].clone();
        assert_eq!(d2y.map_or(0.0, |g| g.item().unwrap()), 0.0);
    }

    #[test]
    fn sin_cos_gradcheck() {
        check(|_, v| v[0].sin(), &[rnd(&[4], 1)]);
        check(|_, v| v[0].sin(), &[rnd(&[2, 3], 2)]);
        check(|_, v| v[0].cos(), &[rnd(&[4], 3)]);
        check(|_, v| v[0].cos(), &[rnd(&[2, 3], 4)]);
        check2(|_, v| v[0].sin(), &[rnd(&[2, 3], 5)]);
        check2(|_, v| v[0].cos(), &[rnd(&[2, 3], 6)]);
    }

    #[test]
    fn sin_cos_by_hand() {
        // d sin x/dx = cos x: 1 at 0, −1 at π.
        let pi = std::f64::consts::PI;
        let (_, g) = grads_of_sum(|_, v| v[0].sin(), &[t(&[0., pi], &[2])]);
        assert_eq!(g[0], [1., -1.]);
        // d cos x/dx = −sin x: 0 at 0, −1 at π/2.
        let (_, g) = grads_of_sum(|_, v| v[0].cos(), &[t(&[0., pi / 2.], &[2])]);
        assert_eq!(g[0], [0., -1.]);
    }
}
