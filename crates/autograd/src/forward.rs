//! Forward mode: tangents carried beside the values.
//!
//! A *dual* leaf ([`Tape::dual`]) holds a value `x` and a tangent `ẋ`. Once a
//! tape has one, every op recorded on it also computes its output's tangent
//! `ẏ = Σ_k ∂y/∂x_k·ẋ_k` right after its value, with the op's tangent rule
//! ([`Op::tangent`]), so one forward pass gives both `f(x)` and the
//! directional derivative `J·ẋ` ([`jvp`]). Ops recorded by a backward pass
//! (`grad_graph`) carry tangents too, which is how
//! [`hvp_forward_over_reverse`](crate::hvp_forward_over_reverse) gets `H·v`
//! as the tangent of `∇f`.
//!
//! An op without a tangent rule falls back to reverse mode (see
//! [`Op::tangent`] for the cost).

use std::cell::RefCell;

use smallvec::SmallVec;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::op::{BackwardCtx, Op, TangentCtx};
use crate::tape::{Node, Tape};
use crate::var::Var;

/// The tangents of a tape's nodes, by tape position (`None`: zero).
pub(crate) type Tangents<T> = RefCell<Vec<Option<Tensor<T>>>>;

impl<T: Element> Tape<T> {
    /// Records a leaf (a value to differentiate with respect to) with the
    /// tangent `tangent` (a direction `ẋ` of the same shape), and turns
    /// forward mode on for this tape: every op recorded from now on also
    /// computes its output's tangent, read with [`Var::tangent`].
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.dual(Tensor::scalar(3.0), Tensor::scalar(1.0))?;
    /// let y = x.square()?.mul_scalar(2.0)?; // y = 2x², ẏ = 4x·ẋ
    /// assert_eq!(y.tangent().unwrap().item()?, 12.0);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the shapes differ.
    pub fn dual(&self, value: Tensor<T>, tangent: Tensor<T>) -> Result<Var<'_, T>> {
        if value.dims() != tangent.dims() {
            return Err(Error::InvalidArgument {
                op: "dual".into(),
                msg: format!(
                    "the tangent's shape {:?} differs from the value's shape {:?}",
                    tangent.dims(),
                    value.dims()
                ),
            });
        }
        let v = self.leaf(value);
        self.forward_mode.set(true);
        self.set_tangent(v.id(), Some(tangent));
        Ok(v)
    }

    /// Whether forward mode is on (a [`dual`](Self::dual) leaf was recorded).
    pub fn is_forward_mode(&self) -> bool {
        self.forward_mode.get()
    }

    fn set_tangent(&self, id: usize, t: Option<Tensor<T>>) {
        let mut tangents = self.tangents.borrow_mut();
        if tangents.len() <= id {
            tangents.resize(id + 1, None);
        }
        tangents[id] = t;
    }

    pub(crate) fn tangent_of(&self, id: usize) -> Option<Tensor<T>> {
        self.tangents.borrow().get(id).cloned().flatten()
    }

    /// Computes and stores the tangent of the node just recorded at `id`
    /// (called by [`apply`](Self::apply) in forward mode).
    pub(crate) fn carry_tangent(&self, id: usize) -> Result<()> {
        let t = {
            let nodes = self.nodes.borrow();
            let tangents = self.tangents.borrow();
            node_tangent(&nodes, id, |j| tangents.get(j).and_then(Option::as_ref))?
        };
        if t.is_some() {
            self.set_tangent(id, t);
        }
        Ok(())
    }

    /// Pushes the tangents `seeds` (tape position, tangent) forward through
    /// the recorded nodes up to `last`, without recomputing any value, and
    /// returns the tangent reaching `last` (`None`: zero). The tape's own
    /// forward mode is not involved; this is what forward-mode
    /// [`jacobian`](crate::jacobian) runs once per column.
    pub(crate) fn sweep_tangents(
        &self,
        seeds: &[(usize, Tensor<T>)],
        last: usize,
    ) -> Result<Option<Tensor<T>>> {
        let Some(first) = seeds.iter().map(|s| s.0).min() else {
            return Ok(None);
        };
        let mut tangents: Vec<Option<Tensor<T>>> = vec![None; last + 1];
        for (id, t) in seeds {
            tangents[*id] = Some(t.clone());
        }
        let nodes = self.nodes.borrow();
        for i in first + 1..=last {
            if tangents[i].is_none() {
                tangents[i] = node_tangent(&nodes, i, |j| tangents[j].as_ref())?;
            }
        }
        Ok(tangents[last].take())
    }

    pub(crate) fn truncate_tangents(&self, len: usize) {
        let mut tangents = self.tangents.borrow_mut();
        if tangents.len() > len {
            tangents.truncate(len);
        }
    }
}

impl<T: Element> Var<'_, T> {
    /// This value's tangent in forward mode (see [`Tape::dual`]); `None`
    /// when it is zero (the value does not depend on a dual leaf) or
    /// forward mode is off.
    pub fn tangent(&self) -> Option<Tensor<T>> {
        self.tape().tangent_of(self.id())
    }
}

/// The tangent of node `i` from its inputs' tangents (`tangent(j)`), by the
/// op's tangent rule or, without one, by reverse mode. `None` when every
/// input's tangent is zero, or the node is a leaf.
fn node_tangent<'a, T: Element>(
    nodes: &'a [Node<T>],
    i: usize,
    tangent: impl Fn(usize) -> Option<&'a Tensor<T>>,
) -> Result<Option<Tensor<T>>> {
    let node = &nodes[i];
    let Some(op) = node.op.as_ref() else {
        return Ok(None);
    };
    let tangents: SmallVec<[Option<&Tensor<T>>; 2]> =
        node.inputs.iter().map(|&j| tangent(j)).collect();
    if tangents.iter().all(Option::is_none) {
        return Ok(None);
    }
    let inputs: SmallVec<[&Tensor<T>; 2]> = node.inputs.iter().map(|&j| &nodes[j].value).collect();
    let cx = TangentCtx {
        inputs: &inputs,
        output: &node.value,
        tangents: &tangents,
    };
    let t = match op.tangent(&cx) {
        Some(t) => t,
        None => tangent_by_reverse_mode(&**op, &cx),
    }
    .map_err(|e| crate::backward::op_error(i, op.name(), e))?;
    if !crate::backward::same_dims(t.dims(), node.value.dims()) {
        return Err(Error::InvalidArgument {
            op: op.name().to_string(),
            msg: format!(
                "tangent rule at %{i:04} returned shape {:?} for an output of shape {:?}",
                t.dims(),
                node.value.dims()
            ),
        });
    }
    Ok(Some(t))
}

/// `J·ẋ` for an op without a tangent rule, from its backward rule: on a
/// scratch tape, `u ↦ backward(u)` is the linear map `Jᵀ`, so the gradient
/// of `Σ_k ⟨backward(u)_k, ẋ_k⟩` with respect to `u` is `J·ẋ`.
fn tangent_by_reverse_mode<T: Element>(
    op: &dyn Op<T>,
    cx: &TangentCtx<'_, T>,
) -> Result<Tensor<T>> {
    let scratch = Tape::<T>::new();
    let u = scratch.leaf(Tensor::zeros(cx.output.dims()));
    let bcx = BackwardCtx {
        inputs: cx
            .inputs
            .iter()
            .map(|x| scratch.constant((*x).clone()))
            .collect(),
        output: scratch.constant(cx.output.clone()),
        grad_output: u,
        needs_grad: cx.tangents.iter().map(Option::is_some).collect(),
    };
    let grads = op.backward(&bcx)?;
    let mut total: Option<Var<'_, T>> = None;
    for (g, t) in grads.iter().zip(cx.tangents) {
        let (Some(g), Some(t)) = (g, t) else { continue };
        let term = g.mul(scratch.constant((*t).clone()))?.sum_all()?;
        total = Some(match total {
            None => term,
            Some(acc) => acc.add(term)?,
        });
    }
    let Some(total) = total else {
        return Ok(Tensor::zeros(cx.output.dims()));
    };
    Ok(scratch.grad(&[total], &[u])?[0]
        .clone()
        .unwrap_or_else(|| Tensor::zeros(cx.output.dims())))
}

/// The Jacobian-vector product of `f` at `x` in the direction `v`: returns
/// `(f(x), J·v)`, computed in one forward pass with the tangents carried
/// beside the values (forward mode), not by reverse passes. `x` and `v`
/// hold one tensor per input of `f`, pairwise of the same shape; `J·v` has
/// the output's shape.
///
/// ```
/// use tapegrad_autograd::jvp;
/// use tapegrad_tensor::Tensor;
/// // f(a, b) = a·sin(b): ḟ = ȧ·sin(b) + a·cos(b)·ḃ.
/// let (a, b) = (Tensor::scalar(2.0), Tensor::scalar(0.0));
/// let (da, db) = (Tensor::scalar(1.0), Tensor::scalar(3.0));
/// let (y, dy) = jvp(|_, x| x[0].mul(x[1].sin()?), &[a, b], &[da, db])?;
/// assert_eq!((y.item()?, dy.item()?), (0.0, 6.0));
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if the counts or shapes of `x` and `v`
/// differ; whatever `f` returns; a tangent rule's error.
pub fn jvp<T, F>(f: F, x: &[Tensor<T>], v: &[Tensor<T>]) -> Result<(Tensor<T>, Tensor<T>)>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, &[Var<'t, T>]) -> Result<Var<'t, T>>,
{
    if x.len() != v.len() {
        return Err(Error::InvalidArgument {
            op: "jvp".into(),
            msg: format!("{} inputs but {} tangents", x.len(), v.len()),
        });
    }
    let tape = Tape::<T>::new();
    let vars = x
        .iter()
        .zip(v)
        .map(|(x, v)| tape.dual(x.clone(), v.clone()))
        .collect::<Result<Vec<_>>>()?;
    let y = f(&tape, &vars)?;
    tape.check_own(y, "jvp")?;
    let dy = y.tangent().unwrap_or_else(|| Tensor::zeros(&y.shape()));
    Ok((y.value(), dy))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in op recorded here answers with its own tangent rule,
    /// not the reverse-mode fallback (the numbers are checked in
    /// `tests/forward_mode.rs`).
    #[test]
    fn builtin_ops_have_their_own_tangent_rules() {
        let tape = Tape::<f64>::new();
        let r = |s: &[usize], seed| Tensor::uniform_seeded(s, 0.5, 1.5, seed);
        let a = tape.dual(r(&[2, 3], 1), r(&[2, 3], 2)).unwrap();
        let b = tape.dual(r(&[3], 3), r(&[3], 4)).unwrap();
        let m = tape.dual(r(&[3, 2], 5), r(&[3, 2], 6)).unwrap();
        let cond = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3]).unwrap();
        let run = || -> Result<()> {
            let y = a.add(b)?.sub(b)?.mul(b)?.div(b)?.pow(b)?.neg()?;
            let y = y.add_scalar(1.0)?.mul_scalar(2.0)?.exp()?.ln()?.sqrt()?;
            let y = y
                .powf(1.5)?
                .sin()?
                .cos()?
                .tanh()?
                .sigmoid()?
                .relu()?
                .abs()?;
            let y = y.clamp(0.0, 1.0)?.softplus()?.maximum(b)?.minimum(b)?;
            let y = y.sum(&[0], true)?.broadcast_to(&[2, 3])?.max(&[1], true)?;
            let y = y.sum_to(&[1, 1])?.broadcast_to(&[2, 3])?.add(a)?;
            let y = y
                .logsumexp(&[1], true)?
                .mul(a.softmax(1)?)?
                .log_softmax(0)?;
            let y = y
                .matmul(m)?
                .reshape(&[4])?
                .reshape(&[2, 2])?
                .permute(&[1, 0])?
                .slice(0, 0, 2, 1)?;
            let y = Var::concat(&[y, y], 0)?.index_select(0, &[0, 1])?;
            let _ = y.gather_rows(&[0, 1])?.sum_all()?;
            let _ = a.where_cond(&cond, b)?;
            // The rules of the backward pass's own ops: each squared so the
            // gradient reaching them carries a tangent.
            let parts = [
                a.tanh()?,
                a.sigmoid()?,
                a.relu()?.square()?,
                a.slice(1, 0, 2, 1)?.square()?,
                a.index_select(0, &[1])?.square()?,
                a.gather_rows(&[0, 2])?.square()?,
            ];
            let mut l = parts[0].sum_all()?;
            for p in &parts[1..] {
                l = l.add(p.sum_all()?)?;
            }
            tape.grad_graph(&[l], &[a])?;
            Ok(())
        };
        run().unwrap();
        let nodes = tape.nodes.borrow();
        let tangents = tape.tangents.borrow();
        let mut seen = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let Some(op) = node.op.as_ref() else { continue };
            let t: SmallVec<[Option<&Tensor<f64>>; 2]> = node
                .inputs
                .iter()
                .map(|&j| tangents.get(j).and_then(Option::as_ref))
                .collect();
            if t.iter().all(Option::is_none) {
                continue;
            }
            let inputs: SmallVec<[&Tensor<f64>; 2]> =
                node.inputs.iter().map(|&j| &nodes[j].value).collect();
            let cx = TangentCtx {
                inputs: &inputs,
                output: &node.value,
                tangents: &t,
            };
            assert!(
                op.tangent(&cx).is_some(),
                "{} at %{i} has no tangent rule",
                op.name()
            );
            seen.push(op.name().to_string());
        }
        for name in [
            "add",
            "sub",
            "mul",
            "div",
            "pow",
            "neg",
            "add_scalar",
            "mul_scalar",
            "exp",
            "ln",
            "sqrt",
            "powf",
            "sin",
            "cos",
            "tanh",
            "sigmoid",
            "relu",
            "abs",
            "clamp",
            "softplus",
            "maximum",
            "minimum",
            "sum",
            "broadcast_to",
            "max",
            "sum_to",
            "logsumexp",
            "softmax",
            "log_softmax",
            "matmul",
            "reshape",
            "permute",
            "slice",
            "concat",
            "index_select",
            "gather_rows",
            "where",
            "tanh_backward",
            "sigmoid_backward",
            "relu_backward",
            "slice_backward",
            "index_add",
            "scatter_rows",
        ] {
            assert!(seen.iter().any(|s| s == name), "{name} was not exercised");
        }
    }
}
