//! Layer normalisation over the last axis, fused.
//!
//! For each row `x` of width `d`: `μ = mean x`, `σ² = mean (x − μ)²`,
//! `r = 1/√(σ² + eps)`, `x̂ = (x − μ)·r`, `y = x̂·w + b`.
//!
//! Backward, with `ĝ = g·w` (derivation: `∂x̂_j/∂x_i = r(δᵢⱼ − 1/d −
//! x̂ᵢx̂ⱼ/d)`, summed against `ĝ_j`):
//!
//! | input | gradient |
//! | --- | --- |
//! | x | r·(ĝ − mean ĝ − x̂·mean(ĝ·x̂)) |
//! | w | Σ over rows of g·x̂ |
//! | b | Σ over rows of g |
//!
//! The forward pass and the first-order value rule are single passes over
//! each row (tensor kernels `layer_norm` and `layer_norm_backward`); the
//! recorded rule recomputes `x̂` with differentiable ops so second and
//! higher orders work.

use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::op::{BackwardCtx, InputGrads, Op, TensorGrads, ValueCtx};
use crate::var::Var;

/// `layer_norm(x, w, b)` over the last axis; inputs `[x, weight, bias]`.
#[derive(Debug, Clone, Copy)]
pub struct LayerNorm {
    /// Added to the variance before the square root.
    pub eps: f64,
}
impl<T: Element> Op<T> for LayerNorm {
    fn name(&self) -> &str {
        "layer_norm"
    }
    fn params(&self) -> String {
        format!("eps={}", self.eps)
    }
    fn formula(&self) -> Option<String> {
        Some("dx = r·(ĝ − mean ĝ − x̂·mean(ĝ·x̂)), ĝ = g·w; dw = Σ g·x̂; db = Σ g".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].layer_norm(Some(x[1]), Some(x[2]), self.eps)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, x, w, b) = (cx.grad_output, cx.inputs[0], cx.inputs[1], cx.inputs[2]);
        let last = [x.shape().len() - 1];
        let centred = x.sub(x.mean(&last, true)?)?;
        let var = centred.square()?.mean(&last, true)?;
        let r = var.add_scalar(self.eps)?.powf(-0.5)?;
        let xhat = centred.mul(r)?;
        let dx = if cx.needs_grad[0] {
            let gh = g.mul(w)?;
            let m1 = gh.mean(&last, true)?;
            let m2 = gh.mul(xhat)?.mean(&last, true)?;
            Some(gh.sub(m1)?.sub(xhat.mul(m2)?)?.mul(r)?)
        } else {
            None
        };
        let dw = if cx.needs_grad[1] {
            Some(g.mul(xhat)?.sum_to_like(w)?)
        } else {
            None
        };
        let db = if cx.needs_grad[2] {
            Some(g.sum_to_like(b)?)
        } else {
            None
        };
        Ok([dx, dw, db].into_iter().collect())
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let (x, w) = (cx.inputs[0], cx.inputs[1]);
        Some((|| {
            let (dx, dw, db) = x.layer_norm_backward(Some(w), cx.grad_output, self.eps)?;
            let keep = |k: usize, t: Tensor<T>| cx.needs_grad[k].then_some(t);
            Ok([keep(0, dx), keep(1, dw), keep(2, db)]
                .into_iter()
                .collect())
        })())
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Layer normalisation over the last axis, `(x − mean)/√(var + eps)·w + b`
    /// (PyTorch's `F.layer_norm(x, [d], w, b, eps)`); `weight` and `bias`
    /// are `[d]`, and `None` means 1 and 0.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 3.0], &[1, 2])?);
    /// let y = x.layer_norm(None, None, 0.0)?;
    /// assert_eq!(y.value().to_vec(), vec![-1.0, 1.0]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `self` is 0-d, `weight` or `bias` is not `[d]`, or `eps` is
    /// negative or not finite.
    pub fn layer_norm(
        self,
        weight: Option<Var<'t, T>>,
        bias: Option<Var<'t, T>>,
        eps: f64,
    ) -> Result<Var<'t, T>> {
        let tape = self.tape();
        let shape = self.shape();
        let d = *shape.last().ok_or_else(|| Error::InvalidArgument {
            op: "layer_norm".into(),
            msg: "needs at least one axis, got a 0-d value".into(),
        })?;
        let w = weight.unwrap_or_else(|| tape.constant(Tensor::ones(&[d])));
        let b = bias.unwrap_or_else(|| tape.constant(Tensor::zeros(&[d])));
        tape.apply(LayerNorm { eps }, &[self, w, b])
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::*;
    use crate::{Result, Tape, Var};

    #[test]
    fn layer_norm_gradchecks() {
        fn ln<'t>(_: &'t Tape<f64>, v: &[Var<'t, f64>]) -> Result<Var<'t, f64>> {
            v[0].layer_norm(Some(v[1]), Some(v[2]), 1e-5)
        }
        let inputs = [rnd(&[2, 3, 4], 1), rnd(&[4], 2), rnd(&[4], 3)];
        check(ln, &inputs);
        check2(ln, &inputs);
        check(|_, v| v[0].layer_norm(None, None, 0.1), &[rnd(&[3, 5], 4)]);
    }

    #[test]
    fn layer_norm_by_hand() {
        // x = (1, 3): μ = 2, σ² = 1, x̂ = (−1, 1). With w = (2, 1), b = 0
        // and seed (1, 0): ĝ = (2, 0), mean ĝ = 1, mean ĝx̂ = −1, so
        // dx = (2 − 1 − 1, 0 − 1 + 1) = (0, 0) — shifting both inputs or
        // spreading them leaves y₀ = −2 unchanged. dw = g·x̂ = (−1, 0),
        // db = (1, 0).
        let (y, g) = vjp(
            |_, v| v[0].layer_norm(Some(v[1]), Some(v[2]), 0.0),
            &[
                t(&[1., 3.], &[1, 2]),
                t(&[2., 1.], &[2]),
                t(&[0., 0.], &[2]),
            ],
            Some(&[1., 0.]),
        );
        assert_eq!(y, [-2., 1.]);
        assert_eq!(g, [vec![0., 0.], vec![-1., 0.], vec![1., 0.]]);
        // (A two-wide row always normalises to ±1, hence the zero dx.)
        // A three-wide row, no affine part, seed (1, 0, 0):
        let (_, g) = vjp(
            |_, v| v[0].layer_norm(None, None, 0.0),
            &[t(&[0., 1., 2.], &[3])],
            Some(&[1., 0., 0.]),
        );
        // x̂ = (−√1.5, 0, √1.5), r = √1.5; ĝ = (1, 0, 0): mean ĝ = ⅓,
        // mean ĝx̂ = −√1.5/3; dx = r·(ĝ − ⅓ − x̂·(−√1.5/3)) = √1.5·(1 − ⅓ − ½,
        // −⅓, −⅓ + ½) = √1.5·(⅙, −⅓, ⅙).
        let r = 1.5f64.sqrt();
        assert_close(&g[0], &[r / 6.0, -r / 3.0, r / 6.0]);
    }
}
