//! Embedding lookup and its adjoint.
//!
//! | op | forward | backward |
//! | --- | --- | --- |
//! | embedding(ids) | row `ids[i]` of the `[vocab, d]` table, shaped `ids_shape + [d]` | g's rows added into a zero table at their ids (`embedding_backward`) |
//! | embedding_backward(ids) | that scatter-add | gathers g's rows at ids again (`embedding`) |
//!
//! Both ops are linear, each the other's adjoint, so every order works. A
//! repeated id receives the sum of its rows' gradients. The ids are
//! constants (no gradient flows to them).

use std::sync::Arc;

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op, TensorGrads, ValueCtx};
use crate::ops::arith::{single, tsingle};
use crate::var::Var;

/// Rows of a `[vocab, d]` table at `ids`, shaped `[..ids_shape, d]`.
#[derive(Debug, Clone)]
pub struct Embedding {
    /// The row taken for each output position, row-major over `ids_shape`.
    pub ids: Arc<[usize]>,
    /// The shape of the ids (the output is this plus `[d]`).
    pub ids_shape: Vec<usize>,
}
impl Embedding {
    fn out_shape(&self, d: usize) -> Vec<usize> {
        let mut s = self.ids_shape.clone();
        s.push(d);
        s
    }
}
impl<T: Element> Op<T> for Embedding {
    fn name(&self) -> &str {
        "embedding"
    }
    fn params(&self) -> String {
        format!("ids {:?}", self.ids_shape)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dtable = g's rows summed into the rows at their ids".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let d = x[0].dims().get(1).copied().unwrap_or(0);
        Ok(x[0].embedding(&self.ids)?.reshape(&self.out_shape(d))?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let shape = cx.inputs[0].shape();
        let g = cx.grad_output.reshape(&[self.ids.len(), shape[1]])?;
        let op = EmbeddingBackward {
            ids: self.ids.clone(),
            vocab: shape[0],
        };
        Ok(single(g.tape().apply(op, &[g])?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let dims = cx.inputs[0].dims();
        Some((|| {
            let g = cx.grad_output.reshape(&[self.ids.len(), dims[1]])?;
            Ok(tsingle(g.embedding_backward(&self.ids, dims[0])?))
        })())
    }
}

/// A `[vocab, d]` zero table with row `i` of its `[ids.len(), d]` input
/// added at `ids[i]` (the adjoint of [`Embedding`]).
#[derive(Debug, Clone)]
pub struct EmbeddingBackward {
    /// Where each input row goes.
    pub ids: Arc<[usize]>,
    /// Rows of the result.
    pub vocab: usize,
}
impl<T: Element> Op<T> for EmbeddingBackward {
    fn name(&self) -> &str {
        "embedding_backward"
    }
    fn params(&self) -> String {
        format!("{} ids into {} rows", self.ids.len(), self.vocab)
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].embedding_backward(&self.ids, self.vocab)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let op = Embedding {
            ids: self.ids.clone(),
            ids_shape: vec![self.ids.len()],
        };
        let g = cx.grad_output;
        Ok(single(g.tape().apply(op, &[g])?))
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Embedding lookup: `self` is a `[vocab, d]` table, `ids` the row
    /// numbers laid out row-major in `ids_shape`; the result is
    /// `[..ids_shape, d]` (`F.embedding`). The table's gradient sums the
    /// gradients of every position that read a row.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let table = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let e = table.embedding(&[1, 1, 0], &[3])?;
    /// assert_eq!(e.value().to_vec(), vec![3.0, 4.0, 3.0, 4.0, 1.0, 2.0]);
    /// let g = tape.backward(e.sum_all()?)?;
    /// assert_eq!(g.get(table).unwrap().to_vec(), vec![1.0, 1.0, 2.0, 2.0]); // row 1 read twice
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the table is not 2-d, `ids_shape` does not hold `ids.len()`
    /// elements, or an id is `≥ vocab`.
    pub fn embedding(self, ids: &[usize], ids_shape: &[usize]) -> Result<Var<'t, T>> {
        if ids_shape.iter().product::<usize>() != ids.len() {
            return Err(crate::Error::InvalidArgument {
                op: "embedding".into(),
                msg: format!("{} ids do not fill the shape {ids_shape:?}", ids.len()),
            });
        }
        let op = Embedding {
            ids: ids.into(),
            ids_shape: ids_shape.to_vec(),
        };
        self.tape().apply(op, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::*;

    #[test]
    fn embedding_gradchecks() {
        check(
            |_, v| v[0].embedding(&[2, 0, 2, 1], &[2, 2]),
            &[rnd(&[3, 2], 1)],
        );
        check2(
            |_, v| v[0].embedding(&[1, 1, 0], &[3])?.square(),
            &[rnd(&[2, 3], 2)],
        );
    }

    #[test]
    fn embedding_repeated_ids_accumulate() {
        // Rows 2, 0, 2 with seeds 1, 10, 100 (width 1): row 2 gets 101.
        let (y, g) = vjp(
            |_, v| v[0].embedding(&[2, 0, 2], &[3]),
            &[t(&[5., 6., 7.], &[3, 1])],
            Some(&[1., 10., 100.]),
        );
        assert_eq!(y, [7., 5., 7.]);
        assert_eq!(g[0], [10., 0., 101.]);
    }

    #[test]
    fn embedding_errors_name_the_shapes() {
        let tape = crate::Tape::<f64>::new();
        let table = tape.leaf(t(&[0.; 6], &[3, 2]));
        let e = table.embedding(&[3], &[1]).unwrap_err().to_string();
        assert!(e.contains("embedding") && e.contains('3'), "{e}");
        assert!(table.embedding(&[0, 1], &[3]).is_err());
    }
}
