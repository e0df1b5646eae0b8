//! Indexing and selection: index_select, gather_rows, where.
//!
//! | op | forward | backward |
//! | --- | --- | --- |
//! | index_select(axis, idx) | slices idx\[k\] along axis | g\[k\] added back at idx\[k\] (`index_add`) |
//! | gather_rows(idx) | x\[r, idx\[r\]\] for each row r | g\[r\] placed at (r, idx\[r\]) (`scatter_rows`) |
//! | where(cond, a, b) | a where cond ≠ 0, else b | g to a where cond, to b elsewhere |
//!
//! Indices and the condition are constants: no gradient flows to them.

use tapegrad_tensor::{Element, Layout, Tensor};

use crate::error::{Error, Result};
use crate::op::{BackwardCtx, InputGrads, Op, TangentCtx};
use crate::ops::arith::{pair, single};

/// Slices at `indices` along `axis` (repeats allowed).
#[derive(Debug, Clone)]
pub struct IndexSelect {
    /// The indexed axis.
    pub axis: usize,
    /// The positions taken, in order.
    pub indices: Vec<usize>,
}
impl<T: Element> Op<T> for IndexSelect {
    fn name(&self) -> &str {
        "index_select"
    }
    fn params(&self) -> String {
        format!("axis={}, {} indices", self.axis, self.indices.len())
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx = g's slices added back at their indices".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].index_select(self.axis, &self.indices)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let op = IndexAdd {
            axis: self.axis,
            indices: self.indices.clone(),
            input_shape: cx.inputs[0].shape().to_vec(),
        };
        Ok(single(cx.output.tape().apply(op, &[cx.grad_output])?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// Adds slice `k` of its input at position `indices[k]` of a zero tensor of
/// `input_shape` (the adjoint of [`IndexSelect`]).
#[derive(Debug, Clone)]
pub struct IndexAdd {
    /// The indexed axis.
    pub axis: usize,
    /// Where each slice goes.
    pub indices: Vec<usize>,
    /// Shape of the result.
    pub input_shape: Vec<usize>,
}
impl<T: Element> Op<T> for IndexAdd {
    fn name(&self) -> &str {
        "index_add"
    }
    fn params(&self) -> String {
        format!("axis={}, into {:?}", self.axis, self.input_shape)
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let full = Layout::contiguous(&self.input_shape);
        let mut out = vec![T::ZERO; full.numel()];
        for (k, &i) in self.indices.iter().enumerate() {
            let dst = full.slice(self.axis, i, i + 1, 1)?;
            let src = x[0].narrow(self.axis, k, 1)?.to_vec();
            let mut n = 0;
            dst.for_each_offset(|o| {
                out[o] += src[n];
                n += 1;
            });
        }
        Ok(Tensor::from_vec(out, &self.input_shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(
            cx.grad_output.index_select(self.axis, &self.indices)?,
        ))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// For `[n, c]` input, element `indices[r]` of each row `r`, giving `[n]`.
#[derive(Debug, Clone)]
pub struct GatherRows {
    /// One column index per row.
    pub indices: Vec<usize>,
}
impl<T: Element> Op<T> for GatherRows {
    fn name(&self) -> &str {
        "gather_rows"
    }
    fn params(&self) -> String {
        format!("{} indices", self.indices.len())
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx[r, idx[r]] = g[r], 0 elsewhere".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].gather_rows(&self.indices)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let op = ScatterRows {
            indices: self.indices.clone(),
            cols: cx.inputs[0].shape()[1],
        };
        Ok(single(cx.output.tape().apply(op, &[cx.grad_output])?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// Places `g[r]` at `(r, indices[r])` of an `[n, cols]` zero tensor (the
/// adjoint of [`GatherRows`]).
#[derive(Debug, Clone)]
pub struct ScatterRows {
    /// One column index per row.
    pub indices: Vec<usize>,
    /// Number of columns of the result.
    pub cols: usize,
}
impl<T: Element> Op<T> for ScatterRows {
    fn name(&self) -> &str {
        "scatter_rows"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let n = self.indices.len();
        if x[0].dims() != [n] {
            return Err(Error::InvalidArgument {
                op: "scatter_rows".into(),
                msg: format!("expected a [{n}] gradient, got {:?}", x[0].dims()),
            });
        }
        let g = x[0].to_vec();
        let mut out = vec![T::ZERO; n * self.cols];
        for (r, &c) in self.indices.iter().enumerate() {
            out[r * self.cols + c] = g[r];
        }
        Ok(Tensor::from_vec(out, &[n, self.cols])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.gather_rows(&self.indices)?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// `a` where the constant condition is non-zero, `b` elsewhere.
#[derive(Debug, Clone)]
pub struct Where<T: Element> {
    /// The condition (any non-zero value counts as true).
    pub cond: Tensor<T>,
}
impl<T: Element> Op<T> for Where<T> {
    fn name(&self) -> &str {
        "where"
    }
    fn formula(&self) -> Option<String> {
        Some("d/da = g where cond, d/db = g elsewhere".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(self.cond.where_cond(x[0], x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, a, b) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let tape = g.tape();
        let zero = tape.constant(Tensor::scalar(T::ZERO));
        let ga = if cx.needs_grad[0] {
            let op = Where {
                cond: self.cond.clone(),
            };
            Some(tape.apply(op, &[g, zero])?.sum_to_like(a)?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            let op = Where {
                cond: self.cond.clone(),
            };
            Some(tape.apply(op, &[zero, g])?.sum_to_like(b)?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in both branches: pick each tangent where its branch is.
        let (ta, tb) = (cx.tangent_or_zeros(0), cx.tangent_or_zeros(1));
        Some(self.forward(&[&ta, &tb]))
    }
}

#[cfg(test)]
mod tests {
    use super::{IndexAdd, ScatterRows};
    use crate::ops::testutil::*;
    use tapegrad_tensor::Tensor;

    #[test]
    fn index_select_gradcheck() {
        check(|_, v| v[0].index_select(0, &[2, 0, 2]), &[rnd(&[3], 1)]);
        check(|_, v| v[0].index_select(1, &[1, 1, 0]), &[rnd(&[2, 3], 2)]);
        check2(
            |_, v| v[0].index_select(0, &[1, 0, 1])?.square(),
            &[rnd(&[2, 3], 3)],
        );
    }

    #[test]
    fn index_select_by_hand() {
        // y = (x₂, x₀, x₂): x₂ is taken twice, so it gets both seeds.
        let (y, g) = vjp(
            |_, v| v[0].index_select(0, &[2, 0, 2]),
            &[t(&[1., 2., 3.], &[3])],
            Some(&[1., 10., 100.]),
        );
        assert_eq!(y, [3., 1., 3.]);
        assert_eq!(g[0], [10., 0., 101.]);
    }

    #[test]
    fn index_add_gradcheck_and_by_hand() {
        let op = || IndexAdd {
            axis: 0,
            indices: vec![2, 0, 2],
            input_shape: vec![3],
        };
        check(|tape, v| tape.apply(op(), &[v[0]]), &[rnd(&[3], 1)]);
        check2(
            |tape, v| tape.apply(op(), &[v[0]])?.square(),
            &[rnd(&[3], 2)],
        );
        // h = (g₁, 0, g₀ + g₂); its adjoint reads the seed back at 2, 0, 2.
        let (y, g) = vjp(
            |tape, v| tape.apply(op(), &[v[0]]),
            &[t(&[1., 2., 3.], &[3])],
            Some(&[1., 10., 100.]),
        );
        assert_eq!(y, [2., 0., 4.]);
        assert_eq!(g[0], [100., 1., 100.]);
    }

    #[test]
    fn gather_rows_gradcheck() {
        check(|_, v| v[0].gather_rows(&[2, 0]), &[rnd(&[2, 3], 1)]);
        check(|_, v| v[0].gather_rows(&[1, 1, 0, 1]), &[rnd(&[4, 2], 2)]);
        check2(
            |_, v| v[0].gather_rows(&[2, 0])?.square(),
            &[rnd(&[2, 3], 3)],
        );
    }

    #[test]
    fn gather_rows_by_hand() {
        // y_r = x[r, idx_r]: the seed lands at (0, 2) and (1, 0).
        let (y, g) = vjp(
            |_, v| v[0].gather_rows(&[2, 0]),
            &[t(&[1., 2., 3., 4., 5., 6.], &[2, 3])],
            Some(&[7., 8.]),
        );
        assert_eq!(y, [3., 4.]);
        assert_eq!(g[0], [0., 0., 7., 8., 0., 0.]);
    }

    #[test]
    fn scatter_rows_gradcheck_and_by_hand() {
        let op = || ScatterRows {
            indices: vec![1, 0],
            cols: 2,
        };
        check(|tape, v| tape.apply(op(), &[v[0]]), &[rnd(&[2], 1)]);
        check2(
            |tape, v| tape.apply(op(), &[v[0]])?.square(),
            &[rnd(&[2], 2)],
        );
        // h = [[0, g₀], [g₁, 0]]; the adjoint gathers (0, 1) and (1, 0).
        let (y, g) = vjp(
            |tape, v| tape.apply(op(), &[v[0]]),
            &[t(&[5., 6.], &[2])],
            Some(&[1., 2., 3., 4.]),
        );
        assert_eq!(y, [0., 5., 6., 0.]);
        assert_eq!(g[0], [2., 3.]);
    }

    #[test]
    fn where_gradcheck() {
        let c = t(&[1., 0., 1., 0., 0., 1.], &[2, 3]);
        check(
            |_, v| v[0].where_cond(&c, v[1]),
            &[rnd(&[2, 3], 1), rnd(&[2, 3], 2)],
        );
        check(
            |_, v| v[0].where_cond(&c, v[1]),
            &[rnd(&[3], 3), rnd(&[2, 1], 4)],
        );
        // A condition that broadcasts against the values.
        let c1 = t(&[0., 1., 1.], &[3]);
        check(
            |_, v| v[0].where_cond(&c1, v[1]),
            &[rnd(&[2, 3], 5), rnd(&[2, 3], 6)],
        );
        check2(
            |_, v| v[0].where_cond(&c, v[1])?.square(),
            &[rnd(&[2, 3], 7), rnd(&[3], 8)],
        );
    }

    #[test]
    fn where_by_hand() {
        // y = a where c else b, b = [10] broadcast: a gets the gradient where
        // c ≠ 0; b gets the sum of the rest (two positions): 2.
        let c = Tensor::from_vec(vec![1., 0., 1., 0.], &[4]).unwrap();
        let (y, g) = grads_of_sum(
            |_, v| v[0].where_cond(&c, v[1]),
            &[t(&[1., 2., 3., 4.], &[4]), t(&[10.], &[1])],
        );
        assert_eq!(y, [1., 10., 3., 10.]);
        assert_eq!(g, [vec![1., 0., 1., 0.], vec![2.]]);
    }
}
