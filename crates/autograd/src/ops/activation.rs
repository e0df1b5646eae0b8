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
use crate::op::{BackwardCtx, InputGrads, Op, TangentCtx, TensorGrads, ValueCtx};
use crate::ops::arith::{pair, single, tsingle};

/// `g · (1 − y²)`, the kernel of [`TanhBackward`]. Inlined (as the other
/// two kernels here) so that on 0-d values the value rule builds its result
/// in place: through a call, the returned tensor was copied twice more.
#[inline]
fn tanh_backward<T: Element>(g: &Tensor<T>, y: &Tensor<T>) -> Result<Tensor<T>> {
    Ok(g.zip_with(y, "tanh_backward", |g, y| g * (T::ONE - y * y))?)
}

/// `g · y · (1 − y)`, the kernel of [`SigmoidBackward`].
#[inline]
fn sigmoid_backward<T: Element>(g: &Tensor<T>, y: &Tensor<T>) -> Result<Tensor<T>> {
    Ok(g.zip_with(y, "sigmoid_backward", |g, y| g * y * (T::ONE - y))?)
}

/// `g` where `y > 0`, else 0: the kernel of [`ReluBackward`].
#[inline]
fn relu_backward<T: Element>(g: &Tensor<T>, y: &Tensor<T>) -> Result<Tensor<T>> {
    Ok(g.zip_with(
        y,
        "relu_backward",
        |g, y| if y > T::ZERO { g } else { T::ZERO },
    )?)
}

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
        Ok(x[0].tanh()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        Ok(single(
            tape.apply(TanhBackward, &[cx.grad_output, cx.output])?,
        ))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(match tanh_backward(cx.grad_output, cx.output) {
            Ok(t) => Ok(tsingle(t)),
            Err(e) => Err(e),
        })
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(tanh_backward(cx.tangents[0]?, cx.output))
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
        tanh_backward(x[0], x[1])
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (h, g, y) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let tape = h.tape();
        let dg = if cx.needs_grad[0] {
            Some(tape.apply(TanhBackward, &[h, y])?.sum_to_like(g)?)
        } else {
            None
        };
        let dy = if cx.needs_grad[1] {
            Some(h.mul(g)?.mul(y)?.mul_scalar(-2.0)?.sum_to_like(y)?)
        } else {
            None
        };
        Ok(pair(dg, dy))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // h = g·(1 − y²): ḣ = ġ·(1 − y²) − 2·g·y·ẏ
        let (g, y) = (cx.inputs[0], cx.inputs[1]);
        Some(cx.sum_terms(|k, t| {
            if k == 0 {
                tanh_backward(t, y)
            } else {
                Ok(g.mul(y)?.mul(t)?.mul_scalar(-2.0)?)
            }
        }))
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
        Ok(x[0].sigmoid()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        Ok(single(
            tape.apply(SigmoidBackward, &[cx.grad_output, cx.output])?,
        ))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(match sigmoid_backward(cx.grad_output, cx.output) {
            Ok(t) => Ok(tsingle(t)),
            Err(e) => Err(e),
        })
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(sigmoid_backward(cx.tangents[0]?, cx.output))
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
        sigmoid_backward(x[0], x[1])
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (h, g, y) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let tape = h.tape();
        let dg = if cx.needs_grad[0] {
            Some(tape.apply(SigmoidBackward, &[h, y])?.sum_to_like(g)?)
        } else {
            None
        };
        let dy = if cx.needs_grad[1] {
            let one_minus_2y = y.mul_scalar(-2.0)?.add_scalar(1.0)?;
            Some(h.mul(g)?.mul(one_minus_2y)?.sum_to_like(y)?)
        } else {
            None
        };
        Ok(pair(dg, dy))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // h = g·y·(1 − y): ḣ = ġ·y·(1 − y) + g·(1 − 2y)·ẏ
        let (g, y) = (cx.inputs[0], cx.inputs[1]);
        Some(cx.sum_terms(|k, t| {
            if k == 0 {
                sigmoid_backward(t, y)
            } else {
                Ok(g.mul(&y.mul_scalar(-2.0)?.add_scalar(1.0)?)?.mul(t)?)
            }
        }))
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
        Ok(x[0].relu()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        Ok(single(
            tape.apply(ReluBackward, &[cx.grad_output, cx.output])?,
        ))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(match relu_backward(cx.grad_output, cx.output) {
            Ok(t) => Ok(tsingle(t)),
            Err(e) => Err(e),
        })
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(relu_backward(cx.tangents[0]?, cx.output))
    }
}

/// `g` where `y > 0`, else 0, for `y = relu(x)` (`y > 0` exactly where
/// `x > 0`): the fused backward of [`Relu`], one pass instead of building a
/// mask and multiplying.
#[derive(Debug, Clone, Copy)]
pub struct ReluBackward;
impl<T: Element> Op<T> for ReluBackward {
    fn name(&self) -> &str {
        "relu_backward"
    }
    fn formula(&self) -> Option<String> {
        Some("h = g·[y > 0]: dh/dg = [y > 0], dh/dy = 0".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        relu_backward(x[0], x[1])
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (h, g, y) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let dg = if cx.needs_grad[0] {
            Some(h.tape().apply(ReluBackward, &[h, y])?.sum_to_like(g)?)
        } else {
            None
        };
        // The mask is piecewise constant in y: no gradient flows to y.
        Ok(pair(dg, None))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // h = g·[y > 0] is linear in g and flat in y.
        match cx.tangents[0] {
            Some(t) => Some(relu_backward(t, cx.inputs[1])),
            None => Some(Ok(Tensor::zeros(cx.output.dims()))),
        }
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
        Ok(x[0].abs()?)
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
        })?;
        Ok(single(cx.grad_output.mul(tape.constant(sign))?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        let sign = |x: T| {
            if x > T::ZERO {
                T::ONE
            } else if x < T::ZERO {
                -T::ONE
            } else {
                T::ZERO
            }
        };
        let t = cx.tangents[0]?;
        Some((|| Ok(cx.inputs[0].map(sign)?.mul(t)?))())
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
        Ok(x[0].clamp(self.lo, self.hi)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (lo, hi) = (T::from_f64(self.lo), T::from_f64(self.hi));
        let mask = cx.inputs[0]
            .value()
            .map(|x| if x >= lo && x <= hi { T::ONE } else { T::ZERO })?;
        let tape = cx.output.tape();
        Ok(single(cx.grad_output.mul(tape.constant(mask))?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        let (lo, hi) = (T::from_f64(self.lo), T::from_f64(self.hi));
        let pass = move |x: T| if x >= lo && x <= hi { T::ONE } else { T::ZERO };
        let t = cx.tangents[0]?;
        Some((|| Ok(cx.inputs[0].map(pass)?.mul(t)?))())
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
        Ok(x[0].softplus()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul(cx.inputs[0].sigmoid()?)?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        let t = cx.tangents[0]?;
        Some((|| Ok(cx.inputs[0].sigmoid()?.mul(t)?))())
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
    let mb = ma.rsub_scalar(1.0)?;
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
        Some(g.mul(tape.constant(ma))?.sum_to_like(a)?)
    } else {
        None
    };
    let gb = if cx.needs_grad[1] {
        Some(g.mul(tape.constant(mb))?.sum_to_like(b)?)
    } else {
        None
    };
    Ok(pair(ga, gb))
}

/// The tangent rule of [`Maximum`] and [`Minimum`], matching their backward
/// rule: the selected input's tangent, the mean of both on a tie.
fn select_tangent<T: Element>(cx: &TangentCtx<'_, T>, max: bool) -> Option<Result<Tensor<T>>> {
    Some((|| {
        let (ma, mb) = select_masks(cx.inputs[0], cx.inputs[1], max)?;
        cx.sum_terms(|k, t| Ok(t.mul(if k == 0 { &ma } else { &mb })?))
    })())
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
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        select_tangent(cx, true)
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
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        select_tangent(cx, false)
    }
}

#[cfg(test)]
mod tests {
    use super::{ReluBackward, SigmoidBackward, TanhBackward};
    use crate::ops::testutil::*;

    #[test]
    fn tanh_gradcheck() {
        check(|_, v| v[0].tanh(), &[rnd(&[4], 1)]);
        check(
            |_, v| v[0].tanh(),
            &[rnd(&[2, 3], 2).mul_scalar(3.0).unwrap()],
        );
        check(|_, v| v[0].broadcast_to(&[2, 3])?.tanh(), &[rnd(&[3], 3)]);
        check2(
            |_, v| v[0].tanh(),
            &[rnd(&[2, 3], 4).mul_scalar(2.0).unwrap()],
        );
    }

    #[test]
    fn tanh_by_hand() {
        // d tanh x/dx = 1 − tanh²x: 1 at x = 0; at x = atanh(0.5),
        // tanh x = 0.5 so the derivative is 1 − 0.25 = 0.75.
        let (y, g) = grads_of_sum(|_, v| v[0].tanh(), &[t(&[0., 0.5f64.atanh()], &[2])]);
        assert_close(&y, &[0., 0.5]);
        assert_close(&g[0], &[1., 0.75]);
    }

    #[test]
    fn tanh_backward_gradcheck() {
        // The fused rule h = g·(1 − y²) as an op of its own, with g
        // broadcast against y.
        check(
            |tape, v| tape.apply(TanhBackward, &[v[0], v[1]]),
            &[rnd(&[2, 3], 1), rnd(&[2, 3], 2)],
        );
        check(
            |tape, v| tape.apply(TanhBackward, &[v[0], v[1]]),
            &[rnd(&[3], 3), rnd(&[2, 3], 4)],
        );
        // ∂²h/∂g∂y = −2y: not zero.
        check2(
            |tape, v| tape.apply(TanhBackward, &[v[0], v[1]]),
            &[rnd(&[2, 3], 5), rnd(&[2, 3], 6)],
        );
    }

    #[test]
    fn relu_backward_by_hand_and_gradcheck() {
        // h = g·[y > 0] at g = (2, 3), y = (0.5, 0): h = (2, 0);
        // ∂h/∂g = [y > 0] = (1, 0); ∂h/∂y = 0 (piecewise constant).
        let (h, g) = grads_of_sum(
            |tape, v| tape.apply(ReluBackward, &[v[0], v[1]]),
            &[t(&[2., 3.], &[2]), t(&[0.5, 0.], &[2])],
        );
        assert_eq!(h, [2., 0.]);
        assert_eq!(g, [vec![1., 0.], vec![0., 0.]]);
        // Away from y = 0 the finite differences agree, to second order.
        let y = t(&[0.7, -0.4, 1.3, -2.0, 0.2, -0.9], &[2, 3]);
        check(
            |tape, v| tape.apply(ReluBackward, &[v[0], v[1]]),
            &[rnd(&[2, 3], 1), y.clone()],
        );
        check2(
            |tape, v| tape.apply(ReluBackward, &[v[0].square()?, v[1]]),
            &[rnd(&[2, 3], 2), y],
        );
    }

    #[test]
    fn tanh_backward_by_hand() {
        // h = g·(1 − y²) at g = 2, y = 0.5: h = 1.5;
        // ∂h/∂g = 1 − y² = 0.75; ∂h/∂y = −2·g·y = −2.
        let (y, g) = grads_of_sum(
            |tape, v| tape.apply(TanhBackward, &[v[0], v[1]]),
            &[t(&[2.], &[1]), t(&[0.5], &[1])],
        );
        assert_eq!(y, [1.5]);
        assert_eq!(g, [vec![0.75], vec![-2.]]);
    }

    #[test]
    fn sigmoid_gradcheck() {
        check(|_, v| v[0].sigmoid(), &[rnd(&[4], 1)]);
        check(
            |_, v| v[0].sigmoid(),
            &[rnd(&[2, 3], 2).mul_scalar(4.0).unwrap()],
        );
        check(
            |_, v| v[0].broadcast_to(&[2, 3])?.sigmoid(),
            &[rnd(&[3], 3)],
        );
        check2(
            |_, v| v[0].sigmoid(),
            &[rnd(&[2, 3], 4).mul_scalar(3.0).unwrap()],
        );
    }

    #[test]
    fn sigmoid_by_hand() {
        // σ'(x) = σ(x)(1 − σ(x)): 0.25 at x = 0; at x = ln 3, σ = 3/4 so
        // σ' = 3/4 · 1/4 = 3/16.
        let (y, g) = grads_of_sum(|_, v| v[0].sigmoid(), &[t(&[0., 3f64.ln()], &[2])]);
        assert_close(&y, &[0.5, 0.75]);
        assert_close(&g[0], &[0.25, 3. / 16.]);
    }

    #[test]
    fn sigmoid_at_plus_minus_100() {
        // No overflow: σ(100) rounds to 1 with gradient ≈ e⁻¹⁰⁰ (0 after
        // rounding), σ(−100) = e⁻¹⁰⁰/(1 + e⁻¹⁰⁰) ≈ 3.7e−44 with the same gradient.
        let (y, g) = grads_of_sum(|_, v| v[0].sigmoid(), &[t(&[100., -100.], &[2])]);
        assert!(y.iter().chain(&g[0]).all(|x| x.is_finite()));
        assert_eq!(y[0], 1.0);
        assert!(g[0][0] >= 0.0 && g[0][0] < 1e-40);
        let e = (-100f64).exp();
        assert!((y[1] - e).abs() < 1e-50 && (g[0][1] - e).abs() < 1e-50);
    }

    #[test]
    fn sigmoid_backward_gradcheck() {
        check(
            |tape, v| tape.apply(SigmoidBackward, &[v[0], v[1]]),
            &[rnd(&[2, 3], 1), rnd(&[2, 3], 2)],
        );
        check(
            |tape, v| tape.apply(SigmoidBackward, &[v[0], v[1]]),
            &[rnd(&[2, 3], 3), rnd(&[3], 4)],
        );
        check2(
            |tape, v| tape.apply(SigmoidBackward, &[v[0], v[1]]),
            &[rnd(&[2, 3], 5), rnd(&[2, 3], 6)],
        );
    }

    #[test]
    fn sigmoid_backward_by_hand() {
        // h = g·y·(1 − y) at g = 2, y = 0.25: h = 0.375;
        // ∂h/∂g = y(1 − y) = 0.1875; ∂h/∂y = g(1 − 2y) = 1.
        let (y, g) = grads_of_sum(
            |tape, v| tape.apply(SigmoidBackward, &[v[0], v[1]]),
            &[t(&[2.], &[1]), t(&[0.25], &[1])],
        );
        assert_eq!(y, [0.375]);
        assert_eq!(g, [vec![0.1875], vec![1.]]);
    }

    #[test]
    fn relu_gradcheck() {
        check(|_, v| v[0].relu(), &[rnd(&[4], 1)]);
        check(|_, v| v[0].relu(), &[rnd(&[2, 3], 2)]);
        check(|_, v| v[0].broadcast_to(&[2, 3])?.relu(), &[rnd(&[3], 3)]);
        // relu'' = 0 away from 0; relu(x)² has second derivative 2·[x > 0].
        check2(|_, v| v[0].relu()?.square(), &[rnd(&[2, 3], 4)]);
    }

    #[test]
    fn relu_by_hand_and_at_zero() {
        // relu'(x) = 1 for x > 0, 0 for x < 0, and 0 at exactly x = 0 (our
        // documented choice, as in PyTorch).
        let (y, g) = grads_of_sum(|_, v| v[0].relu(), &[t(&[-1., 0., 2.], &[3])]);
        assert_eq!(y, [0., 0., 2.]);
        assert_eq!(g[0], [0., 0., 1.]);
    }

    #[test]
    fn abs_gradcheck() {
        check(|_, v| v[0].abs(), &[rnd(&[4], 1)]);
        check(|_, v| v[0].abs(), &[rnd(&[2, 3], 2)]);
        check2(|_, v| v[0].abs()?.mul(v[0]), &[rnd(&[2, 3], 3)]);
    }

    #[test]
    fn abs_by_hand_and_at_zero() {
        // |x|' = sign x: −1, 1, and 0 at exactly x = 0 (documented choice).
        let (y, g) = grads_of_sum(|_, v| v[0].abs(), &[t(&[-2., 0., 3.], &[3])]);
        assert_eq!(y, [2., 0., 3.]);
        assert_eq!(g[0], [-1., 0., 1.]);
    }

    #[test]
    fn clamp_gradcheck() {
        check(|_, v| v[0].clamp(-0.5, 0.5), &[rnd(&[6], 1)]);
        check(|_, v| v[0].clamp(-0.3, 0.8), &[rnd(&[2, 3], 2)]);
        check2(|_, v| v[0].clamp(-0.5, 0.5)?.square(), &[rnd(&[2, 3], 3)]);
    }

    #[test]
    fn clamp_by_hand_and_at_bounds() {
        // clamp'(x) = 1 inside [lo, hi], 0 outside; at the bounds
        // themselves it is 1 (documented choice: the bounds count as inside).
        let (y, g) = grads_of_sum(
            |_, v| v[0].clamp(-0.5, 0.5),
            &[t(&[-1., -0.5, 0., 0.5, 1.], &[5])],
        );
        assert_eq!(y, [-0.5, -0.5, 0., 0.5, 0.5]);
        assert_eq!(g[0], [0., 1., 1., 1., 0.]);
    }

    #[test]
    fn softplus_gradcheck() {
        check(|_, v| v[0].softplus(), &[rnd(&[4], 1)]);
        check(
            |_, v| v[0].softplus(),
            &[rnd(&[2, 3], 2).mul_scalar(5.0).unwrap()],
        );
        check2(
            |_, v| v[0].softplus(),
            &[rnd(&[2, 3], 3).mul_scalar(3.0).unwrap()],
        );
    }

    #[test]
    fn softplus_by_hand() {
        // softplus(0) = ln 2, softplus'(x) = σ(x): 0.5 at 0, 0.75 at ln 3.
        let (y, g) = grads_of_sum(|_, v| v[0].softplus(), &[t(&[0., 3f64.ln()], &[2])]);
        assert_close(&y, &[2f64.ln(), 4f64.ln()]);
        assert_close(&g[0], &[0.5, 0.75]);
    }

    #[test]
    fn softplus_at_plus_minus_100() {
        // softplus(100) = 100 + ln(1 + e⁻¹⁰⁰) rounds to 100, gradient 1;
        // softplus(−100) = ln(1 + e⁻¹⁰⁰) ≈ e⁻¹⁰⁰, gradient σ(−100) ≈ e⁻¹⁰⁰.
        let (y, g) = grads_of_sum(|_, v| v[0].softplus(), &[t(&[100., -100.], &[2])]);
        let e = (-100f64).exp();
        assert_eq!((y[0], g[0][0]), (100., 1.));
        assert!((y[1] - e).abs() < 1e-50 && (g[0][1] - e).abs() < 1e-50);
    }

    #[test]
    fn maximum_minimum_gradcheck() {
        // Random inputs have no ties.
        for (a, b) in [
            (vec![4], vec![4]),
            (vec![2, 3], vec![3]),
            (vec![2, 1], vec![1, 3]),
        ] {
            check(|_, v| v[0].maximum(v[1]), &[rnd(&a, 1), rnd(&b, 2)]);
            check(|_, v| v[0].minimum(v[1]), &[rnd(&a, 3), rnd(&b, 4)]);
        }
        check2(
            |_, v| v[0].maximum(v[1])?.square(),
            &[rnd(&[2, 3], 5), rnd(&[3], 6)],
        );
        check2(
            |_, v| v[0].minimum(v[1])?.square(),
            &[rnd(&[2, 3], 7), rnd(&[3], 8)],
        );
    }

    #[test]
    fn maximum_minimum_by_hand_with_ties() {
        // max(a, b) sends the gradient to the larger input; on a tie
        // (a = b = 2) each gets half.
        let inputs = [t(&[1., 2., 3.], &[3]), t(&[3., 2., 1.], &[3])];
        let (y, g) = grads_of_sum(|_, v| v[0].maximum(v[1]), &inputs);
        assert_eq!(y, [3., 2., 3.]);
        assert_eq!(g, [vec![0., 0.5, 1.], vec![1., 0.5, 0.]]);
        let (y, g) = grads_of_sum(|_, v| v[0].minimum(v[1]), &inputs);
        assert_eq!(y, [1., 2., 1.]);
        assert_eq!(g, [vec![1., 0.5, 0.], vec![0., 0.5, 1.]]);
        // max(x, x) = x: the two halves add back up to 1.
        let (_, g) = grads_of_sum(|_, v| v[0].maximum(v[0]), &[t(&[1., -1.], &[2])]);
        assert_eq!(g[0], [1., 1.]);
        // Broadcast b = [2] against a = [1, 2, 3]: b gets 1 (from a₀ < 2),
        // ½ (the tie) and 0: 1.5 in total.
        let (_, g) = grads_of_sum(
            |_, v| v[0].maximum(v[1]),
            &[t(&[1., 2., 3.], &[3]), t(&[2.], &[1])],
        );
        assert_eq!(g, [vec![0., 0.5, 1.], vec![1.5]]);
    }
}
