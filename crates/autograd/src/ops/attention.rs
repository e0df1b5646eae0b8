//! Attention and its pieces: `masked_fill`, a masked softmax, scaled
//! dot-product attention, and `split` / `chunk` (views).
//!
//! | op | forward | backward |
//! | --- | --- | --- |
//! | masked_fill(mask, v) | v where mask ≠ 0, else x | g where mask = 0, else 0 |
//! | softmax_masked(keep) | softmax over the kept positions of the last axis, 0 elsewhere | y·(g − Σ g·y) |
//!
//! Scaled dot-product attention is a composite:
//! `softmax_masked(q·kᵀ·scale + additive, keep)·v`, with the batched
//! products taken on views (no copy for a head split done by `reshape` +
//! `transpose`).
//!
//! **Fully masked rows.** A query whose every key is masked (by the causal
//! flag, a boolean mask, or `-inf` in an additive mask) gets probability 0
//! on every key, so its output row is **0** and no gradient flows through
//! it. (A naive softmax over all `-inf` gives NaN; a large-negative fill
//! gives a uniform average of the values instead.)

use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::op::{BackwardCtx, InputGrads, Op, TensorGrads, ValueCtx};
use crate::ops::arith::{single, tsingle};
use crate::var::Var;

/// `value` where the constant `mask` is non-zero, the input elsewhere.
#[derive(Debug, Clone)]
pub struct MaskedFill<T: Element> {
    /// Non-zero where the value is replaced; broadcasts to the input.
    pub mask: Tensor<T>,
    /// The fill value.
    pub value: f64,
}
impl<T: Element> Op<T> for MaskedFill<T> {
    fn name(&self) -> &str {
        "masked_fill"
    }
    fn params(&self) -> String {
        format!("value={}", self.value)
    }
    fn formula(&self) -> Option<String> {
        Some("dx = g where mask = 0, else 0".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].masked_fill(&self.mask, self.value)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.masked_fill(&self.mask, 0.0)?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let g = cx.grad_output.masked_fill(&self.mask, 0.0);
        Some(g.map(tsingle).map_err(Into::into))
    }
}

/// Softmax over the last axis among the positions where `keep` is
/// non-zero (see [`Tensor::softmax_masked`]); fully masked rows give 0.
#[derive(Debug, Clone)]
pub struct SoftmaxMasked<T: Element> {
    /// Non-zero where a position takes part; broadcasts to the input.
    pub keep: Tensor<T>,
}
impl<T: Element> Op<T> for SoftmaxMasked<T> {
    fn name(&self) -> &str {
        "softmax_masked"
    }
    fn formula(&self) -> Option<String> {
        Some("d softmax: dx = y·(g − Σ g·y) (y = 0 where masked)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].softmax_masked(&self.keep)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, y) = (cx.grad_output, cx.output);
        let last = y.shape().len() - 1;
        let s = g.mul(y)?.sum(&[last], true)?;
        Ok(single(y.mul(g.sub(s)?)?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        // The fused row kernel computes the same y·(g − Σ g·y).
        let dx = cx.output.softmax_backward(cx.grad_output);
        Some(dx.map(tsingle).map_err(Into::into))
    }
}

/// A mask for [`Var::scaled_dot_product_attention`], broadcasting to the
/// scores' shape `[..., L, S]` (queries by keys).
#[derive(Debug, Clone)]
pub enum AttentionMask<T: Element> {
    /// Non-zero where the query may attend to the key (PyTorch's boolean
    /// `attn_mask`: `True` takes part).
    Keep(Tensor<T>),
    /// Added to the scores before the softmax (PyTorch's float
    /// `attn_mask`); `-inf` entries mask their key out.
    Additive(Tensor<T>),
}

impl<T: Element> AttentionMask<T> {
    fn tensor(&self) -> &Tensor<T> {
        match self {
            AttentionMask::Keep(t) | AttentionMask::Additive(t) => t,
        }
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// `value` where `mask` is non-zero, `self` elsewhere (`masked_fill`);
    /// the mask broadcasts to `self`'s shape. No gradient flows to the
    /// filled positions.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// let y = x.masked_fill(&Tensor::from_vec(vec![1.0, 0.0], &[2])?, 0.0)?;
    /// assert_eq!(y.value().to_vec(), vec![0.0, 2.0]);
    /// assert_eq!(tape.backward(y.sum_all()?)?.get(x).unwrap().to_vec(), vec![0.0, 1.0]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the mask does not broadcast to `self`'s shape.
    pub fn masked_fill(self, mask: &Tensor<T>, value: f64) -> Result<Var<'t, T>> {
        let op = MaskedFill {
            mask: mask.clone(),
            value,
        };
        self.tape().apply(op, &[self])
    }

    /// Softmax over the last axis among the positions where `keep` is
    /// non-zero; masked positions get 0, and a row with nothing kept is all
    /// 0 (see [`Tensor::softmax_masked`]).
    ///
    /// # Errors
    /// If `self` is 0-d or `keep` does not broadcast to its shape.
    pub fn softmax_masked(self, keep: &Tensor<T>) -> Result<Var<'t, T>> {
        let op = SoftmaxMasked { keep: keep.clone() };
        self.tape().apply(op, &[self])
    }

    /// Splits along `axis` into consecutive pieces of the given lengths
    /// (`torch.split` with a list); each piece is a view of `self`.
    ///
    /// # Errors
    /// If the axis is out of range or the lengths do not add up to its size.
    pub fn split(self, sizes: &[usize], axis: usize) -> Result<Vec<Var<'t, T>>> {
        let shape = self.shape();
        let n = *shape.get(axis).ok_or_else(|| Error::InvalidArgument {
            op: "split".into(),
            msg: format!("axis {axis} out of range for shape {:?}", shape.as_slice()),
        })?;
        if sizes.iter().sum::<usize>() != n {
            return Err(Error::InvalidArgument {
                op: "split".into(),
                msg: format!(
                    "pieces {sizes:?} do not add up to axis {axis} of shape {:?}",
                    shape.as_slice()
                ),
            });
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                let piece = self.narrow(axis, start, len);
                start += len;
                piece
            })
            .collect()
    }

    /// Splits along `axis` into `chunks` pieces of `ceil(n / chunks)`, the
    /// last one shorter if needed (`torch.chunk`; fewer pieces when `n` is
    /// small). Each piece is a view of `self`.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let qkv = tape.leaf(Tensor::zeros(&[2, 5, 12]));
    /// let parts = qkv.chunk(3, 2)?;
    /// assert_eq!(parts.len(), 3);
    /// assert_eq!(parts[0].shape().as_slice(), &[2, 5, 4]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the axis is out of range or `chunks` is 0.
    pub fn chunk(self, chunks: usize, axis: usize) -> Result<Vec<Var<'t, T>>> {
        let shape = self.shape();
        let n = *shape.get(axis).ok_or_else(|| Error::InvalidArgument {
            op: "chunk".into(),
            msg: format!("axis {axis} out of range for shape {:?}", shape.as_slice()),
        })?;
        if chunks == 0 {
            return Err(Error::InvalidArgument {
                op: "chunk".into(),
                msg: "needs at least one chunk".into(),
            });
        }
        let each = n.div_ceil(chunks).max(1);
        let mut sizes = vec![each; n / each];
        if n % each != 0 {
            sizes.push(n % each);
        }
        self.split(&sizes, axis)
    }

    /// Scaled dot-product attention, `softmax(q·kᵀ/√E + mask)·v` over
    /// `q: [..., L, E]`, `k: [..., S, E]`, `v: [..., S, Ev]`, giving
    /// `[..., L, Ev]` (`F.scaled_dot_product_attention` with its default
    /// scale). `causal` lets query `i` see keys `j ≤ i` only; `mask`
    /// ([`AttentionMask`]) broadcasts to `[..., L, S]`. A query with no
    /// visible key gets an output row of 0 (see the module docs).
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let q = tape.leaf(Tensor::zeros(&[1, 2, 4]));
    /// let v = tape.leaf(Tensor::from_vec((0..8).map(f64::from).collect(), &[1, 2, 4])?);
    /// // Causal: the first query sees only the first value, the second
    /// // (equal scores) averages both.
    /// let y = q.scaled_dot_product_attention(q, v, None, true)?;
    /// assert_eq!(y.value().to_vec(), vec![0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0, 5.0]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If an operand has fewer than 2 axes, the widths or batch axes do not
    /// match, or the mask does not broadcast to `[..., L, S]` (the error
    /// names the shapes).
    pub fn scaled_dot_product_attention(
        self,
        k: Var<'t, T>,
        v: Var<'t, T>,
        mask: Option<&AttentionMask<T>>,
        causal: bool,
    ) -> Result<Var<'t, T>> {
        let (qs, ks, vs) = (self.shape(), k.shape(), v.shape());
        let bad = |msg: String| Error::InvalidArgument {
            op: "scaled_dot_product_attention".into(),
            msg,
        };
        if qs.len() < 2 || ks.len() < 2 || vs.len() < 2 {
            return Err(bad(format!(
                "q {:?}, k {:?}, v {:?}: each needs [..., positions, width]",
                qs.as_slice(),
                ks.as_slice(),
                vs.as_slice()
            )));
        }
        let (l, e, s) = (qs[qs.len() - 2], qs[qs.len() - 1], ks[ks.len() - 2]);
        if ks[ks.len() - 1] != e || vs[vs.len() - 2] != s {
            return Err(bad(format!(
                "q {:?}, k {:?}, v {:?}: q and k need the same width, k and v the same positions",
                qs.as_slice(),
                ks.as_slice(),
                vs.as_slice()
            )));
        }
        let scores = self.matmul(k.t()?)?.mul_scalar(1.0 / (e as f64).sqrt())?;
        let score_shape = scores.shape();
        let mut keep: Option<Tensor<T>> = None;
        let mut scores = scores;
        if let Some(m) = mask {
            let mt = m.tensor();
            if mt.broadcast_to(&score_shape).is_err() {
                return Err(bad(format!(
                    "mask {:?} does not broadcast to the scores [..., L={l}, S={s}] = {:?} \
                     (q {:?}, k {:?})",
                    mt.dims(),
                    score_shape.as_slice(),
                    qs.as_slice(),
                    ks.as_slice()
                )));
            }
            match m {
                AttentionMask::Keep(t) => keep = Some(t.ne_scalar(0.0)?),
                AttentionMask::Additive(t) => {
                    // -inf entries mask their key; the finite rest is added.
                    let finite = t.gt_scalar(f64::NEG_INFINITY)?;
                    let c = scores
                        .tape()
                        .constant(t.masked_fill(&finite.eq_scalar(0.0)?, 0.0)?);
                    scores = scores.add(c)?;
                    keep = Some(finite);
                }
            }
        }
        if causal {
            let tri = Tensor::tril_mask(l, s, 0)?;
            keep = Some(match keep {
                Some(k) => k.mul(&tri)?,
                None => tri,
            });
        }
        let p = match keep {
            Some(k) => scores.softmax_masked(&k)?,
            None => scores.softmax(score_shape.len() - 1)?,
        };
        p.matmul(v)
    }
}

#[cfg(test)]
mod tests {
    use super::AttentionMask;
    use crate::ops::testutil::*;
    use tapegrad_tensor::Tensor;

    #[test]
    fn masked_fill_gradcheck_and_by_hand() {
        let m = t(&[1., 0., 0., 1., 0., 0.], &[2, 3]);
        check(|_, v| v[0].masked_fill(&m, 2.0), &[rnd(&[2, 3], 1)]);
        check2(
            |_, v| v[0].masked_fill(&m, 2.0)?.square(),
            &[rnd(&[2, 3], 2)],
        );
        let (y, g) = grads_of_sum(|_, v| v[0].masked_fill(&m, -1.0), &[t(&[5.; 6], &[2, 3])]);
        assert_eq!(y, [-1., 5., 5., -1., 5., 5.]);
        assert_eq!(g[0], [0., 1., 1., 0., 1., 1.]);
    }

    #[test]
    fn softmax_masked_gradchecks() {
        let causal = Tensor::<f64>::tril_mask(3, 3, 0).unwrap();
        check(|_, v| v[0].softmax_masked(&causal), &[rnd(&[2, 3, 3], 1)]);
        check2(|_, v| v[0].softmax_masked(&causal), &[rnd(&[3, 3], 2)]);
    }

    #[test]
    fn split_and_chunk() {
        check(
            |_, v| {
                let p = v[0].split(&[1, 3], 1)?;
                p[0].mul(p[1].sum(&[1], true)?)
            },
            &[rnd(&[2, 4], 1)],
        );
        let tape = crate::Tape::<f64>::new();
        let x = tape.leaf(rnd(&[7, 2], 2));
        let sizes: Vec<usize> = x
            .chunk(3, 0)
            .unwrap()
            .iter()
            .map(|p| p.shape()[0])
            .collect();
        assert_eq!(sizes, [3, 3, 1]);
        // Each piece is a view of the input's storage.
        assert!(x.chunk(3, 0).unwrap()[1]
            .value()
            .shares_storage_with(&x.value()));
        assert!(x.split(&[3, 3], 0).is_err());
        assert!(x.chunk(0, 0).is_err());
    }

    fn attend<'t>(
        v: &[crate::Var<'t, f64>],
        mask: Option<&AttentionMask<f64>>,
        causal: bool,
    ) -> crate::Result<crate::Var<'t, f64>> {
        v[0].scaled_dot_product_attention(v[1], v[2], mask, causal)
    }

    #[test]
    fn attention_gradchecks() {
        let qkv = [rnd(&[2, 3, 4], 1), rnd(&[2, 5, 4], 2), rnd(&[2, 5, 2], 3)];
        check(|_, v| attend(v, None, false), &qkv);
        check(|_, v| attend(v, None, true), &qkv);
        check2(|_, v| attend(v, None, true), &qkv);
        let keep = AttentionMask::Keep(t(&[1., 1., 0., 1., 0.], &[5]));
        check(|_, v| attend(v, Some(&keep), false), &qkv);
        let add = AttentionMask::Additive(rnd(&[3, 5], 4));
        check2(|_, v| attend(v, Some(&add), true), &qkv);
    }

    #[test]
    fn attention_by_hand_and_fully_masked_rows() {
        // q = 0 gives equal scores; an additive mask (0, ln 3) then weights
        // the two values 1:3, so y = ¼·4 + ¾·8 = 7.
        let mask = AttentionMask::Additive(t(&[0., 3f64.ln()], &[1, 2]));
        let (y, _) = grads_of_sum(
            |_, v| attend(v, Some(&mask), false),
            &[
                t(&[0., 0.], &[1, 2]),
                t(&[1., 2., 3., 4.], &[2, 2]),
                t(&[4., 8.], &[2, 1]),
            ],
        );
        assert_close(&y, &[7.0]);
        // A row whose keys are all masked (-inf and a false keep) gives 0,
        // with zero (not NaN) gradients.
        let ninf =
            AttentionMask::Additive(t(&[0., 0., f64::NEG_INFINITY, f64::NEG_INFINITY], &[2, 2]));
        let (y, g) = grads_of_sum(
            |_, v| attend(v, Some(&ninf), false),
            &[
                rnd(&[2, 3], 5),
                rnd(&[2, 3], 6),
                t(&[1., 2., 3., 4.], &[2, 2]),
            ],
        );
        assert_eq!(&y[2..], &[0., 0.]);
        assert!(g.iter().flatten().all(|x| x.is_finite()));
        // The second query row contributed nothing to q's gradient.
        assert_eq!(&g[0][3..], &[0., 0., 0.]);
    }

    #[test]
    fn attention_errors_name_shapes() {
        let tape = crate::Tape::<f64>::new();
        let q = tape.leaf(rnd(&[2, 3, 4], 1));
        let k = tape.leaf(rnd(&[2, 5, 4], 2));
        let bad = AttentionMask::Keep(Tensor::ones(&[3, 4]));
        let e = q
            .scaled_dot_product_attention(k, k, Some(&bad), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mask [3, 4]") && e.contains("[2, 3, 5]"), "{e}");
        let e = q
            .scaled_dot_product_attention(q, k, None, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("same positions"), "{e}");
    }
}
