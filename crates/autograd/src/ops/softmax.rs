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
use crate::op::{BackwardCtx, InputGrads, Op, TangentCtx, TensorGrads, ValueCtx};
use crate::ops::arith::{single, tsingle};
use crate::ops::reduce::{axes_params, keepdim_shape};

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
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let (g, y) = (cx.grad_output, cx.output);
        if self.axis + 1 == y.ndim() && g.dims() == y.dims() {
            // Over the last axis: the fused row kernel (one pass per row).
            return Some(y.softmax_backward(g).map(tsingle).map_err(Into::into));
        }
        Some((|| {
            let s = g.mul(y)?.sum(&[self.axis], true)?;
            Ok(tsingle(y.mul(&g.sub(&s)?)?))
        })())
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // ẏ = y·(ẋ − Σ y·ẋ)
        let (y, t) = (cx.output, cx.tangents[0]?);
        Some((|| {
            let s = y.mul(t)?.sum(&[self.axis], true)?;
            Ok(y.mul(&t.sub(&s)?)?)
        })())
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
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let (g, y) = (cx.grad_output, cx.output);
        Some((|| {
            let s = g.sum(&[self.axis], true)?;
            Ok(tsingle(g.sub(&y.exp()?.mul(&s)?)?))
        })())
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // ẏ = ẋ − Σ softmax(x)·ẋ
        let (y, t) = (cx.output, cx.tangents[0]?);
        Some((|| {
            let s = y.exp()?.mul(t)?.sum(&[self.axis], true)?;
            Ok(t.sub(&s)?)
        })())
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
        axes_params(&self.axes, self.keepdim)
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
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // ẏ = Σ softmax(x)·ẋ over the axes, softmax(x) = exp(x − y)
        let (x, t) = (cx.inputs[0], cx.tangents[0]?);
        Some((|| {
            let y = cx.output.reshape(&keepdim_shape(x.dims(), &self.axes))?;
            let w = x.sub(&y)?.exp()?;
            Ok(w.mul(t)?.sum(&self.axes, self.keepdim)?)
        })())
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::*;

    #[test]
    fn softmax_gradcheck() {
        check(|_, v| v[0].softmax(0), &[rnd(&[4], 1)]);
        check(
            |_, v| v[0].softmax(1),
            &[rnd(&[2, 3], 2).mul_scalar(3.0).unwrap()],
        );
        check(|_, v| v[0].softmax(1), &[rnd(&[2, 3, 2], 3)]);
        check(
            |_, v| v[0].broadcast_to(&[2, 3])?.softmax(0),
            &[rnd(&[1, 3], 4)],
        );
        check2(|_, v| v[0].softmax(1), &[rnd(&[2, 3], 5)]);
    }

    #[test]
    fn softmax_by_hand() {
        // x = (0, 0): y = (½, ½). With seed (1, 0), L = y₀ and
        // ∂y₀/∂x_j = y₀(δ₀ⱼ − y_j) = (¼, −¼).
        let (y, g) = vjp(
            |_, v| v[0].softmax(0),
            &[t(&[0., 0.], &[2])],
            Some(&[1., 0.]),
        );
        assert_eq!(y, [0.5, 0.5]);
        assert_eq!(g[0], [0.25, -0.25]);
    }

    #[test]
    fn log_softmax_gradcheck() {
        check(|_, v| v[0].log_softmax(0), &[rnd(&[4], 1)]);
        check(
            |_, v| v[0].log_softmax(1),
            &[rnd(&[2, 3], 2).mul_scalar(3.0).unwrap()],
        );
        check(|_, v| v[0].log_softmax(0), &[rnd(&[3, 2], 3)]);
        check2(|_, v| v[0].log_softmax(1), &[rnd(&[2, 3], 4)]);
    }

    #[test]
    fn log_softmax_by_hand() {
        // x = (0, 0): y = (−ln 2, −ln 2). L = y₀: ∂y₀/∂x_j = δ₀ⱼ − softmax_j
        // = (½, −½).
        let (y, g) = vjp(
            |_, v| v[0].log_softmax(0),
            &[t(&[0., 0.], &[2])],
            Some(&[1., 0.]),
        );
        assert_close(&y, &[-(2f64.ln()), -(2f64.ln())]);
        assert_eq!(g[0], [0.5, -0.5]);
    }

    #[test]
    fn log_softmax_at_plus_minus_100() {
        // x = (100, −100): y = (−ln(1 + e⁻²⁰⁰), −200 − …) ≈ (0, −200); with
        // seed (1, 0) the gradient is (1 − p₀, −p₁) ≈ (e⁻²⁰⁰, −e⁻²⁰⁰), finite.
        let (y, g) = vjp(
            |_, v| v[0].log_softmax(0),
            &[t(&[100., -100.], &[2])],
            Some(&[1., 0.]),
        );
        assert_eq!(y, [0., -200.]);
        assert!(g[0].iter().all(|x| x.is_finite()));
        assert!(g[0][0].abs() < 1e-80 && g[0][1].abs() < 1e-80, "{:?}", g[0]);
    }

    #[test]
    fn logsumexp_gradcheck() {
        check(|_, v| v[0].logsumexp(&[0], false), &[rnd(&[4], 1)]);
        check(
            |_, v| v[0].logsumexp(&[1], true),
            &[rnd(&[2, 3], 2).mul_scalar(3.0).unwrap()],
        );
        check(|_, v| v[0].logsumexp(&[0, 2], false), &[rnd(&[2, 3, 2], 3)]);
        check2(|_, v| v[0].logsumexp(&[1], false), &[rnd(&[2, 3], 4)]);
    }

    #[test]
    fn logsumexp_by_hand() {
        // y = ln(eˣ⁰ + eˣ¹); ∂y/∂x = softmax x. At x = (0, ln 3):
        // y = ln 4 and the gradient is (1/4, 3/4).
        let (y, g) = grads_of_sum(
            |_, v| v[0].logsumexp(&[0], false),
            &[t(&[0., 3f64.ln()], &[2])],
        );
        assert_close(&y, &[4f64.ln()]);
        assert_close(&g[0], &[0.25, 0.75]);
    }

    #[test]
    fn logsumexp_at_plus_minus_100() {
        // (100, −100): y = 100 + ln(1 + e⁻²⁰⁰) = 100, gradient (1, e⁻²⁰⁰).
        // (100, 100): y = 100 + ln 2, gradient (½, ½).
        // (−100, −100): y = −100 + ln 2, gradient (½, ½) — no underflow to 0/0.
        fn lse<'t>(
            _: &'t crate::Tape<f64>,
            v: &[crate::Var<'t, f64>],
        ) -> crate::Result<crate::Var<'t, f64>> {
            v[0].logsumexp(&[0], false)
        }
        let (y, g) = grads_of_sum(lse, &[t(&[100., -100.], &[2])]);
        assert_eq!(y, [100.]);
        assert_eq!(g[0][0], 1.);
        assert!(g[0][1].is_finite() && g[0][1] < 1e-80);
        let (y, g) = grads_of_sum(lse, &[t(&[100., 100.], &[2])]);
        assert_close(&y, &[100. + 2f64.ln()]);
        assert_close(&g[0], &[0.5, 0.5]);
        let (y, g) = grads_of_sum(lse, &[t(&[-100., -100.], &[2])]);
        assert_close(&y, &[-100. + 2f64.ln()]);
        assert_close(&g[0], &[0.5, 0.5]);
    }
}
