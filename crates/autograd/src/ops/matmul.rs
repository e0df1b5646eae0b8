//! Matrix product (batched, with broadcast batch axes).
//!
//! For `C = A·B` with `A: [..., m, k]` and `B: [..., k, n]`:
//! `∂L/∂A = G·Bᵀ` and `∂L/∂B = Aᵀ·G`, each summed over the batch axes its
//! operand was broadcast along. Vectors are promoted to matrices by the
//! [`Var::matmul`](crate::Var::matmul) wrapper, so this op sees rank ≥ 2 only.

use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op};
use crate::ops::arith::pair;

/// `a · b` for operands of rank 2 or more.
#[derive(Debug, Clone, Copy)]
pub struct Matmul;
impl<T: Element> Op<T> for Matmul {
    fn name(&self) -> &str {
        "matmul"
    }
    fn formula(&self) -> Option<String> {
        Some("d(A·B)/dA = G·Bᵀ, d(A·B)/dB = Aᵀ·G".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].matmul(x[1])?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (g, a, b) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let ga = if cx.needs_grad[0] {
            Some(g.matmul(b.t()?)?.sum_to(&a.shape())?)
        } else {
            None
        };
        let gb = if cx.needs_grad[1] {
            Some(a.t()?.matmul(g)?.sum_to(&b.shape())?)
        } else {
            None
        };
        Ok(pair(ga, gb))
    }
}
