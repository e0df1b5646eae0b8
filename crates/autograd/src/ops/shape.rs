//! Views and joins: reshape, permute, slice, concat.
//!
//! | op | forward | backward |
//! | --- | --- | --- |
//! | reshape | same elements, new shape | g reshaped back |
//! | permute(p) | axes reordered | g permuted by p⁻¹ |
//! | slice(axis, a..b step s) | a strided view | g placed back into zeros (`slice_backward`) |
//! | concat(axis) | inputs joined | g cut into the inputs' pieces |

use tapegrad_tensor::{Element, Layout, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op, TangentCtx, TensorGrads, ValueCtx};
use crate::ops::arith::{single, tsingle};

/// Same elements, another shape (a view when the layout allows it).
#[derive(Debug, Clone)]
pub struct Reshape {
    /// The new shape.
    pub shape: Vec<usize>,
}
impl<T: Element> Op<T> for Reshape {
    fn name(&self) -> &str {
        "reshape"
    }
    fn params(&self) -> String {
        format!("shape={:?}", self.shape)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx = g reshaped to x's shape".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].reshape(&self.shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.reshape(&cx.inputs[0].shape())?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(
            cx.grad_output
                .reshape(cx.inputs[0].dims())
                .map(tsingle)
                .map_err(Into::into),
        )
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// The inverse permutation: `inverse(p)[p[i]] = i`.
fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Reorders axes (a view).
#[derive(Debug, Clone)]
pub struct Permute {
    /// Axis `i` of the output is axis `perm[i]` of the input.
    pub perm: Vec<usize>,
}
impl<T: Element> Op<T> for Permute {
    fn name(&self) -> &str {
        "permute"
    }
    fn params(&self) -> String {
        format!("perm={:?}", self.perm)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx = g permuted by the inverse permutation".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].permute(&self.perm)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.permute(&inverse(&self.perm))?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(
            cx.grad_output
                .permute(&inverse(&self.perm))
                .map(tsingle)
                .map_err(Into::into),
        )
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// Positions `start, start+step, …` below `end` along `axis` (a view).
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    /// The sliced axis.
    pub axis: usize,
    /// First position.
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
    /// Step (at least 1).
    pub step: usize,
}
impl<T: Element> Op<T> for Slice {
    fn name(&self) -> &str {
        "slice"
    }
    fn params(&self) -> String {
        format!(
            "axis={}, {}..{} step {}",
            self.axis, self.start, self.end, self.step
        )
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx = g at the sliced positions, 0 elsewhere".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].slice(self.axis, self.start, self.end, self.step)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let tape = cx.output.tape();
        let op = SliceBackward {
            slice: *self,
            input_shape: cx.inputs[0].shape().to_vec(),
        };
        Ok(single(tape.apply(op, &[cx.grad_output])?))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// Places `g` at the positions a [`Slice`] took, zeros elsewhere (the
/// adjoint of slicing; its own backward is the slice again).
#[derive(Debug, Clone)]
pub struct SliceBackward {
    /// The slice being undone.
    pub slice: Slice,
    /// Shape of the sliced input.
    pub input_shape: Vec<usize>,
}
impl<T: Element> Op<T> for SliceBackward {
    fn name(&self) -> &str {
        "slice_backward"
    }
    fn params(&self) -> String {
        format!("into {:?}", self.input_shape)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dg = h sliced".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let s = self.slice;
        let full = Layout::contiguous(&self.input_shape);
        let view = full.slice(s.axis, s.start, s.end, s.step)?;
        if view.shape() != x[0].dims() {
            return Err(crate::Error::InvalidArgument {
                op: "slice_backward".into(),
                msg: format!(
                    "gradient of shape {:?} does not fit slice {:?}",
                    x[0].dims(),
                    view.shape()
                ),
            });
        }
        let mut out = vec![T::ZERO; full.numel()];
        let vals = x[0].to_vec();
        let mut k = 0;
        view.for_each_offset(|o| {
            out[o] = vals[k];
            k += 1;
        });
        Ok(Tensor::from_vec(out, &self.input_shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let s = self.slice;
        Ok(single(
            cx.grad_output.slice(s.axis, s.start, s.end, s.step)?,
        ))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        // Linear in its input: the tangent goes through the op itself.
        Some(self.forward(&[cx.tangents[0]?]))
    }
}

/// Joins its inputs along `axis`.
#[derive(Debug, Clone, Copy)]
pub struct Concat {
    /// The joining axis.
    pub axis: usize,
}
impl<T: Element> Op<T> for Concat {
    fn name(&self) -> &str {
        "concat"
    }
    fn params(&self) -> String {
        format!("axis={}", self.axis)
    }
    fn formula(&self) -> Option<String> {
        Some("d/dx_k = the k-th piece of g along the axis".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(Tensor::concat(x, self.axis)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let mut start = 0;
        let mut out = InputGrads::new();
        for (k, inp) in cx.inputs.iter().enumerate() {
            let len = inp.shape()[self.axis];
            out.push(if cx.needs_grad[k] {
                Some(cx.grad_output.narrow(self.axis, start, len)?)
            } else {
                None
            });
            start += len;
        }
        Ok(out)
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        let parts: Vec<Tensor<T>> = (0..cx.inputs.len())
            .map(|k| cx.tangent_or_zeros(k))
            .collect();
        let refs: Vec<&Tensor<T>> = parts.iter().collect();
        Some(self.forward(&refs))
    }
}

#[cfg(test)]
mod tests {
    use super::{Slice, SliceBackward};
    use crate::ops::testutil::*;
    use crate::Var;

    #[test]
    fn reshape_gradcheck() {
        check(|_, v| v[0].reshape(&[3, 2]), &[rnd(&[2, 3], 1)]);
        check(|_, v| v[0].reshape(&[2, 2, 2]), &[rnd(&[8], 2)]);
        // A non-contiguous input (a transpose) must be copied, not viewed.
        check(|_, v| v[0].t()?.reshape(&[6]), &[rnd(&[2, 3], 3)]);
        check2(|_, v| v[0].reshape(&[3, 2])?.square(), &[rnd(&[2, 3], 4)]);
    }

    #[test]
    fn reshape_by_hand() {
        // Reshape keeps the row-major order, so the seed comes back in the
        // same flat order, in the input's shape.
        let (y, g) = vjp(
            |_, v| v[0].reshape(&[3, 2]),
            &[t(&[1., 2., 3., 4., 5., 6.], &[2, 3])],
            Some(&[10., 20., 30., 40., 50., 60.]),
        );
        assert_eq!(y, [1., 2., 3., 4., 5., 6.]);
        assert_eq!(g[0], [10., 20., 30., 40., 50., 60.]);
    }

    #[test]
    fn permute_gradcheck() {
        check(|_, v| v[0].permute(&[1, 0]), &[rnd(&[2, 3], 1)]);
        check(|_, v| v[0].permute(&[2, 0, 1]), &[rnd(&[2, 3, 4], 2)]);
        check(|_, v| v[0].transpose(0, 2), &[rnd(&[2, 1, 3], 3)]);
        check2(
            |_, v| v[0].permute(&[2, 0, 1])?.square(),
            &[rnd(&[2, 3, 2], 4)],
        );
    }

    #[test]
    fn permute_by_hand() {
        // y = xᵀ, y_ji = x_ij, so ∂L/∂x_ij = w_ji: the seed transposed back.
        let (y, g) = vjp(
            |_, v| v[0].permute(&[1, 0]),
            &[t(&[1., 2., 3., 4., 5., 6.], &[2, 3])],
            Some(&[1., 2., 3., 4., 5., 6.]),
        );
        assert_eq!(y, [1., 4., 2., 5., 3., 6.]);
        assert_eq!(g[0], [1., 3., 5., 2., 4., 6.]);
    }

    #[test]
    fn slice_gradcheck() {
        check(|_, v| v[0].slice(0, 1, 5, 2), &[rnd(&[6], 1)]);
        check(|_, v| v[0].slice(1, 0, 3, 2), &[rnd(&[2, 4], 2)]);
        check(|_, v| v[0].narrow(0, 1, 2), &[rnd(&[3, 2], 3)]);
        check(|_, v| v[0].select(1, 2), &[rnd(&[2, 3], 4)]);
        check2(|_, v| v[0].slice(1, 1, 4, 2)?.square(), &[rnd(&[2, 4], 5)]);
    }

    #[test]
    fn slice_by_hand() {
        // y = x[1..5 step 2] = (x₁, x₃): the seed goes back to positions 1
        // and 3, zeros elsewhere.
        let (y, g) = vjp(
            |_, v| v[0].slice(0, 1, 5, 2),
            &[t(&[0., 1., 2., 3., 4.], &[5])],
            Some(&[10., 20.]),
        );
        assert_eq!(y, [1., 3.]);
        assert_eq!(g[0], [0., 10., 0., 20., 0.]);
    }

    fn slice_back<'t>(v: Var<'t, f64>) -> crate::Result<Var<'t, f64>> {
        let op = SliceBackward {
            slice: Slice {
                axis: 1,
                start: 0,
                end: 4,
                step: 2,
            },
            input_shape: vec![2, 4],
        };
        v.tape().apply(op, &[v])
    }

    #[test]
    fn slice_backward_gradcheck() {
        check(|_, v| slice_back(v[0]), &[rnd(&[2, 2], 1)]);
        check2(|_, v| slice_back(v[0])?.square(), &[rnd(&[2, 2], 2)]);
    }

    #[test]
    fn slice_backward_by_hand() {
        // h scatters g into columns 0 and 2 of a [2, 4] zero tensor; its
        // own gradient picks those columns out of the seed again.
        let (y, g) = vjp(
            |_, v| slice_back(v[0]),
            &[t(&[1., 2., 3., 4.], &[2, 2])],
            Some(&[1., 2., 3., 4., 5., 6., 7., 8.]),
        );
        assert_eq!(y, [1., 0., 2., 0., 3., 0., 4., 0.]);
        assert_eq!(g[0], [1., 3., 5., 7.]);
    }

    #[test]
    fn concat_stack_gradcheck() {
        check(
            |_, v| Var::concat(&[v[0], v[1], v[2]], 1),
            &[rnd(&[2, 1], 1), rnd(&[2, 3], 2), rnd(&[2, 2], 3)],
        );
        check(
            |_, v| Var::concat(&[v[0], v[1]], 0),
            &[rnd(&[1, 3], 4), rnd(&[2, 3], 5)],
        );
        check(
            |_, v| Var::stack(&[v[0], v[1]], 1),
            &[rnd(&[2, 3], 6), rnd(&[2, 3], 7)],
        );
        check2(
            |_, v| Var::concat(&[v[0], v[1]], 0)?.square(),
            &[rnd(&[2], 8), rnd(&[3], 9)],
        );
    }

    #[test]
    fn concat_by_hand() {
        // y = [a, b, a] along axis 0: a receives two pieces of the seed
        // (positions 0–1 and 3–4), b the middle one.
        let (y, g) = vjp(
            |_, v| Var::concat(&[v[0], v[1], v[0]], 0),
            &[t(&[1., 2.], &[2]), t(&[3.], &[1])],
            Some(&[1., 2., 3., 4., 5.]),
        );
        assert_eq!(y, [1., 2., 3., 1., 2.]);
        assert_eq!(g, [vec![5., 7.], vec![3.]]);
    }

    #[test]
    fn squeeze_unsqueeze_by_hand() {
        // Pure reshapes: the gradient is the seed in the input's shape.
        let (y, g) = vjp(
            |_, v| v[0].unsqueeze(0)?.squeeze(2),
            &[t(&[1., 2.], &[2, 1])],
            Some(&[3., 4.]),
        );
        assert_eq!(y, [1., 2.]);
        assert_eq!(g[0], [3., 4.]);
    }
}
