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
use crate::op::{BackwardCtx, InputGrads, Op, TangentCtx, TensorGrads, ValueCtx};
use crate::var::Var;

// The lists below are built from full arrays, not with `push` or
// `from_elem`: `from_elem` clones its element (a tensor clone and drop per
// scalar op) and `push` checks for growth. The unused slot of a one-item
// list is `None`, which owns nothing, so not dropping it leaks nothing.

/// Two input gradients.
#[inline]
pub(crate) fn pair<'t, T: Element>(
    a: Option<Var<'t, T>>,
    b: Option<Var<'t, T>>,
) -> InputGrads<'t, T> {
    InputGrads::from_buf_and_len([a, b], 2)
}

/// Two input gradients, as tensors (for value rules).
#[inline]
pub(crate) fn tpair<T: Element>(a: Option<Tensor<T>>, b: Option<Tensor<T>>) -> TensorGrads<T> {
    TensorGrads::from_buf_and_len([a, b], 2)
}

/// One input gradient, as a tensor (for value rules).
#[inline]
pub(crate) fn tsingle<T: Element>(a: Tensor<T>) -> TensorGrads<T> {
    TensorGrads::from_buf_and_len([Some(a), None], 1)
}

/// One input gradient.
#[inline]
pub(crate) fn single<'t, T: Element>(a: Var<'t, T>) -> InputGrads<'t, T> {
    InputGrads::from_buf_and_len([Some(a), None], 1)
}

/// The output gradient as input `k`'s gradient (summed down to its shape
/// if it was broadcast), or `None` if that input needs none.
#[inline]
fn passed_on<T: Element>(cx: &ValueCtx<'_, T>, k: usize) -> Result<Option<Tensor<T>>> {
    if !cx.needs_grad[k] {
        return Ok(None);
    }
    cx.sum_to_input(cx.grad_output.clone(), k).map(Some)
}

/// Both partial products summed down to their inputs' shapes.
#[inline]
fn summed_to_inputs<T: Element>(
    cx: &ValueCtx<'_, T>,
    ga: Option<Tensor<T>>,
    gb: Option<Tensor<T>>,
) -> Result<TensorGrads<T>> {
    let ga = match ga {
        Some(t) => Some(cx.sum_to_input(t, 0)?),
        None => None,
    };
    let gb = match gb {
        Some(t) => Some(cx.sum_to_input(t, 1)?),
        None => None,
    };
    Ok(tpair(ga, gb))
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
            Some(g.sum_to_like(cx.inputs[0])?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(g.sum_to_like(cx.inputs[1])?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let g = cx.grad_output;
        if cx.same_shape_as_output(0) && cx.same_shape_as_output(1) {
            // No broadcasting: both inputs get `g` as it is.
            let pass = |k: usize| cx.needs_grad[k].then(|| g.clone());
            return Some(Ok(tpair(pass(0), pass(1))));
        }
        Some(passed_on(cx, 0).and_then(|ga| Ok(tpair(ga, passed_on(cx, 1)?))))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(cx.sum_terms(|_, t| Ok(t.clone())))
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
            Some(g.sum_to_like(cx.inputs[0])?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(g.neg()?.sum_to_like(cx.inputs[1])?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let g = cx.grad_output;
        Some((|| {
            let ga = cx.grad_for(0, || cx.sum_to_input(g.clone(), 0))?;
            let gb = cx.grad_for(1, || cx.sum_to_input(g.neg()?, 1))?;
            Ok(tpair(ga, gb))
        })())
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(cx.sum_terms(|k, t| Ok(if k == 0 { t.clone() } else { t.neg()? })))
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
            Some(g.mul(b)?.sum_to_like(a)?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(g.mul(a)?.sum_to_like(b)?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let (g, a, b) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        Some((|| {
            let ga = if cx.needs_grad[0] {
                Some(g.mul(b)?)
            } else {
                None
            };
            let gb = if cx.needs_grad[1] {
                Some(g.mul(a)?)
            } else {
                None
            };
            if cx.same_shape_as_output(0) && cx.same_shape_as_output(1) {
                return Ok(tpair(ga, gb));
            }
            summed_to_inputs(cx, ga, gb)
        })())
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // (a·b)˙ = ȧ·b + a·ḃ
        Some(cx.sum_terms(|k, t| Ok(t.mul(cx.inputs[1 - k])?)))
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
            Some(g.div(b)?.sum_to_like(a)?)
        } else {
            None
        };
        // -g·a/b² = -(g·out)/b, reusing the saved output.
        let gb = if cx.needs_grad[1] {
            Some(g.mul(out)?.div(b)?.neg()?.sum_to_like(b)?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let (g, b, out) = (cx.grad_output, cx.inputs[1], cx.output);
        Some((|| {
            let ga = cx.grad_for(0, || cx.sum_to_input(g.div(b)?, 0))?;
            let gb = cx.grad_for(1, || cx.sum_to_input(g.mul(out)?.div(b)?.neg()?, 1))?;
            Ok(tpair(ga, gb))
        })())
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // (a/b)˙ = ȧ/b − (a/b)·ḃ/b
        let (b, out) = (cx.inputs[1], cx.output);
        Some(cx.sum_terms(|k, t| {
            Ok(if k == 0 {
                t.div(b)?
            } else {
                out.mul(t)?.div(b)?.neg()?
            })
        }))
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
            Some(g.mul(b)?.mul(a.pow(b.add_scalar(-1.0)?)?)?.sum_to_like(a)?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(g.mul(out)?.mul(a.ln()?)?.sum_to_like(b)?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // (a^b)˙ = b·a^(b−1)·ȧ + a^b·ln(a)·ḃ
        let (a, b, out) = (cx.inputs[0], cx.inputs[1], cx.output);
        Some(cx.sum_terms(|k, t| {
            Ok(if k == 0 {
                b.mul(&a.pow(&b.add_scalar(-1.0)?)?)?.mul(t)?
            } else {
                out.mul(&a.ln()?)?.mul(t)?
            })
        }))
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
        Ok(x[0].neg()?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.neg()?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(cx.grad_output.neg().map(tsingle).map_err(Into::into))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
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
        Ok(x[0].add_scalar(self.0)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(Ok(tsingle(cx.grad_output.clone())))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(Ok(cx.tangents[0]?.clone()))
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
        Ok(x[0].mul_scalar(self.0)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.mul_scalar(self.0)?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(
            cx.grad_output
                .mul_scalar(self.0)
                .map(tsingle)
                .map_err(Into::into),
        )
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::*;

    #[test]
    fn add_gradcheck() {
        check(|_, v| v[0].add(v[1]), &[rnd(&[4], 1), rnd(&[4], 2)]);
        check(|_, v| v[0].add(v[1]), &[rnd(&[2, 3], 3), rnd(&[3], 4)]);
        check(|_, v| v[0].add(v[1]), &[rnd(&[2, 1], 5), rnd(&[1, 3], 6)]);
        // add is linear; squaring its result makes the second derivative
        // non-zero and runs the backward of add's own backward (sum_to).
        check2(
            |_, v| v[0].add(v[1])?.square(),
            &[rnd(&[2, 3], 7), rnd(&[3], 8)],
        );
    }

    #[test]
    fn add_by_hand() {
        // L = Σ_ij (a_ij + b_j), a: [2, 2], b: [2] broadcast over the rows.
        // ∂L/∂a_ij = 1; ∂L/∂b_j = Σ_i 1 = 2 (b_j is read by both rows).
        let (y, g) = grads_of_sum(
            |_, v| v[0].add(v[1]),
            &[t(&[1., 2., 3., 4.], &[2, 2]), t(&[10., 20.], &[2])],
        );
        assert_eq!(y, [11., 22., 13., 24.]);
        assert_eq!(g[0], [1., 1., 1., 1.]);
        assert_eq!(g[1], [2., 2.]);
    }

    #[test]
    fn sub_gradcheck() {
        check(|_, v| v[0].sub(v[1]), &[rnd(&[4], 1), rnd(&[4], 2)]);
        check(|_, v| v[0].sub(v[1]), &[rnd(&[3], 3), rnd(&[2, 3], 4)]);
        check(|_, v| v[0].sub(v[1]), &[rnd(&[2, 1], 5), rnd(&[1, 3], 6)]);
        check2(
            |_, v| v[0].sub(v[1])?.square(),
            &[rnd(&[2, 3], 7), rnd(&[2, 1], 8)],
        );
    }

    #[test]
    fn sub_by_hand() {
        // L = Σ_ij (a_ij − b_j): ∂L/∂a_ij = 1, ∂L/∂b_j = −(number of rows) = −3.
        let (y, g) = grads_of_sum(
            |_, v| v[0].sub(v[1]),
            &[t(&[5., 6., 7., 8., 9., 10.], &[3, 2]), t(&[1., 2.], &[2])],
        );
        assert_eq!(y, [4., 4., 6., 6., 8., 8.]);
        assert_eq!(g[0], [1.; 6]);
        assert_eq!(g[1], [-3., -3.]);
    }

    #[test]
    fn mul_gradcheck() {
        check(|_, v| v[0].mul(v[1]), &[rnd(&[4], 1), rnd(&[4], 2)]);
        check(|_, v| v[0].mul(v[1]), &[rnd(&[2, 3], 3), rnd(&[2, 1], 4)]);
        check(|_, v| v[0].mul(v[1]), &[rnd(&[], 5), rnd(&[2, 2], 6)]);
        // ∂²(a·b)/∂a∂b = 1: not zero.
        check2(|_, v| v[0].mul(v[1]), &[rnd(&[2, 3], 7), rnd(&[3], 8)]);
    }

    #[test]
    fn mul_by_hand() {
        // L = Σ_i a_i · b with a = [2, 3] and a scalar-like b = [4] broadcast.
        // ∂L/∂a_i = b = 4; ∂L/∂b = Σ_i a_i = 5.
        let (y, g) = grads_of_sum(|_, v| v[0].mul(v[1]), &[t(&[2., 3.], &[2]), t(&[4.], &[1])]);
        assert_eq!(y, [8., 12.]);
        assert_eq!(g[0], [4., 4.]);
        assert_eq!(g[1], [5.]);
    }

    #[test]
    fn div_gradcheck() {
        check(|_, v| v[0].div(v[1]), &[rnd(&[4], 1), pos(&[4], 2)]);
        check(|_, v| v[0].div(v[1]), &[rnd(&[2, 3], 3), pos(&[3], 4)]);
        check(|_, v| v[0].div(v[1]), &[rnd(&[2, 1], 5), pos(&[1, 3], 6)]);
        // ∂²(a/b)/∂b² = 2a/b³: not zero.
        check2(|_, v| v[0].div(v[1]), &[rnd(&[2, 3], 7), pos(&[3], 8)]);
    }

    #[test]
    fn div_by_hand() {
        // L = Σ_i a_i / b with a = [1, 3], b = [2] broadcast.
        // ∂L/∂a_i = 1/b = 0.5; ∂L/∂b = −Σ a_i / b² = −4/4 = −1.
        let (y, g) = grads_of_sum(|_, v| v[0].div(v[1]), &[t(&[1., 3.], &[2]), t(&[2.], &[1])]);
        assert_eq!(y, [0.5, 1.5]);
        assert_eq!(g[0], [0.5, 0.5]);
        assert_eq!(g[1], [-1.]);
    }

    #[test]
    fn pow_gradcheck() {
        check(|_, v| v[0].pow(v[1]), &[pos(&[4], 1), rnd(&[4], 2)]);
        check(|_, v| v[0].pow(v[1]), &[pos(&[2, 3], 3), rnd(&[3], 4)]);
        check(|_, v| v[0].pow(v[1]), &[pos(&[2, 1], 5), rnd(&[1, 3], 6)]);
        check2(|_, v| v[0].pow(v[1]), &[pos(&[2, 3], 7), rnd(&[3], 8)]);
    }

    #[test]
    fn pow_by_hand() {
        // y = a^b at a = 2, b = 3: y = 8.
        // ∂y/∂a = b·a^(b−1) = 3·4 = 12; ∂y/∂b = a^b·ln a = 8·ln 2.
        let (y, g) = grads_of_sum(|_, v| v[0].pow(v[1]), &[t(&[2.], &[]), t(&[3.], &[])]);
        assert_eq!(y, [8.]);
        assert_close(&g[0], &[12.]);
        assert_close(&g[1], &[8. * 2f64.ln()]);
    }

    #[test]
    fn pow_negative_base() {
        // a = −2, b = 2: y = 4, ∂y/∂a = 2·(−2) = −4 (an integer exponent is
        // fine for a negative base); ∂y/∂b = a^b·ln a is NaN (ln of a
        // negative number), as in PyTorch.
        let (y, g) = grads_of_sum(|_, v| v[0].pow(v[1]), &[t(&[-2.], &[]), t(&[2.], &[])]);
        assert_eq!(y, [4.]);
        assert_eq!(g[0], [-4.]);
        assert!(g[1][0].is_nan());
    }

    #[test]
    fn neg_gradcheck() {
        check(|_, v| v[0].neg(), &[rnd(&[4], 1)]);
        check(|_, v| v[0].neg(), &[rnd(&[2, 3], 2)]);
        // −x·x = −x²: second derivative −2, through neg's backward.
        check2(|_, v| v[0].neg()?.mul(v[0]), &[rnd(&[2, 3], 3)]);
    }

    #[test]
    fn neg_by_hand() {
        // d(−x)/dx = −1 for every element.
        let (y, g) = grads_of_sum(|_, v| v[0].neg(), &[t(&[1., -2.], &[2])]);
        assert_eq!(y, [-1., 2.]);
        assert_eq!(g[0], [-1., -1.]);
    }

    #[test]
    fn scalar_ops_gradcheck() {
        for shape in [&[4][..], &[2, 3]] {
            check(|_, v| v[0].add_scalar(1.5), &[rnd(shape, 1)]);
            check(|_, v| v[0].sub_scalar(1.5), &[rnd(shape, 2)]);
            check(|_, v| v[0].mul_scalar(-2.5), &[rnd(shape, 3)]);
            check(|_, v| v[0].div_scalar(4.0), &[rnd(shape, 4)]);
            check(|_, v| v[0].rsub_scalar(1.0), &[rnd(shape, 5)]);
        }
        check2(|_, v| v[0].add_scalar(1.5)?.square(), &[rnd(&[3], 6)]);
        check2(|_, v| v[0].mul_scalar(-2.5)?.mul(v[0]), &[rnd(&[3], 7)]);
    }

    #[test]
    fn scalar_ops_by_hand() {
        // d(x + c)/dx = 1, d(c·x)/dx = c, d(x/c)/dx = 1/c, d(c − x)/dx = −1.
        let x = [t(&[2., -1.], &[2])];
        let (y, g) = grads_of_sum(|_, v| v[0].add_scalar(3.0), &x);
        assert_eq!((y, g[0].clone()), (vec![5., 2.], vec![1., 1.]));
        let (y, g) = grads_of_sum(|_, v| v[0].mul_scalar(3.0), &x);
        assert_eq!((y, g[0].clone()), (vec![6., -3.], vec![3., 3.]));
        let (y, g) = grads_of_sum(|_, v| v[0].div_scalar(4.0), &x);
        assert_eq!((y, g[0].clone()), (vec![0.5, -0.25], vec![0.25, 0.25]));
        let (y, g) = grads_of_sum(|_, v| v[0].rsub_scalar(1.0), &x);
        assert_eq!((y, g[0].clone()), (vec![-1., 2.], vec![-1., -1.]));
    }
}
