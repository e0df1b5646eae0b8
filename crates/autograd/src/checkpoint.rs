//! Gradient checkpointing: a segment of the computation recorded as one
//! node and recomputed in the backward pass instead of keeping its
//! intermediate values on the tape (`torch.utils.checkpoint`,
//! `jax.checkpoint`).
//!
//! The forward pass runs the segment on a scratch tape that is dropped at
//! once, so the main tape holds only the segment's inputs and output. The
//! backward pass runs it again:
//! - for gradients that will not be differentiated again (`backward`,
//!   `grad`), on a scratch tape, whose backward pass gives the inputs'
//!   gradients and frees each recomputed value and intermediate gradient
//!   as soon as it has been used ([`Tape::backward_and_clear`]);
//! - for `grad_graph` (second order), on the main tape itself, behind
//!   identity nodes standing for the inputs, and differentiated there with
//!   a backward pass that stops at those nodes, so the gradient is recorded
//!   in terms of the original inputs and can be differentiated again.
//!
//! Parameters used inside the segment must be among its inputs (record them
//! first, for example with `Param::var`): while the segment runs, a
//! parameter recorded with [`Tape::param_with_key`] under the key of an
//! input parameter resolves to that input. A keyed parameter recorded in
//! the segment that is not an input is an error, not a silently missing
//! gradient.

use std::sync::Arc;

use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::op::{BackwardCtx, InputGrads, Op, TangentCtx, TensorGrads, ValueCtx};
use crate::tape::Tape;
use crate::var::Var;

/// A recomputable segment: a function of recorded values that records its
/// computation on whatever tape it is given. It runs once in the forward
/// pass and again in every backward pass through it, so it must compute the
/// same function each time (see `tapegrad_nn::checkpoint` for dropout).
pub type Segment<T> =
    Arc<dyn for<'s> Fn(&'s Tape<T>, &[Var<'s, T>]) -> Result<Var<'s, T>> + Send + Sync>;

impl<T: Element> Tape<T> {
    /// Records `f(inputs)` as one checkpointed node: its intermediate values
    /// are not kept, and `f` runs again during the backward pass. Gradients
    /// (of every order) are those of `f(inputs)` recorded directly; the
    /// cost is one more forward pass of the segment per backward pass.
    ///
    /// Everything the result should be differentiated with respect to must
    /// be in `inputs`; a keyed parameter ([`Tape::param_with_key`]) used
    /// inside `f` must be one of them (see the module docs).
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![0.5, -1.0], &[2])?);
    /// let w = tape.leaf(Tensor::from_vec(vec![2.0, 3.0], &[2])?);
    /// // tanh(w·x)², with the tanh and square recomputed in backward.
    /// let y = tape.checkpoint(&[x, w], |_, v| v[0].mul(v[1])?.tanh()?.square())?;
    /// let before = tape.len();
    /// let g = tape.backward(y.sum_all()?)?;
    /// assert_eq!(tape.len(), before + 1); // only the sum was added
    /// let expect = |x: f64, w: f64| 2.0 * (w * x).tanh() * (1.0 - (w * x).tanh().powi(2)) * w;
    /// let gx = g.get(x).unwrap().to_vec();
    /// assert!((gx[0] - expect(0.5, 2.0)).abs() < 1e-12);
    /// assert!((gx[1] - expect(-1.0, 3.0)).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `inputs` is empty or holds a value of another tape, `f` fails,
    /// returns a value of another tape, or records a keyed parameter that is
    /// not an input.
    pub fn checkpoint<'t, F>(&'t self, inputs: &[Var<'t, T>], f: F) -> Result<Var<'t, T>>
    where
        F: for<'s> Fn(&'s Tape<T>, &[Var<'s, T>]) -> Result<Var<'s, T>> + Send + Sync + 'static,
    {
        self.checkpoint_segment(inputs, Arc::new(f))
    }

    /// [`checkpoint`](Self::checkpoint) with a segment already shared.
    ///
    /// # Errors
    /// As [`checkpoint`](Self::checkpoint).
    pub fn checkpoint_segment<'t>(
        &'t self,
        inputs: &[Var<'t, T>],
        segment: Segment<T>,
    ) -> Result<Var<'t, T>> {
        if inputs.is_empty() {
            return Err(Error::InvalidArgument {
                op: "checkpoint".into(),
                msg: "needs at least one input".into(),
            });
        }
        let keys = self.param_keys();
        let keys = inputs
            .iter()
            .map(|v| keys.iter().find(|&&(id, _)| id == v.id()).map(|&(_, k)| k))
            .collect();
        self.apply(Checkpoint { segment, keys }, inputs)
    }

    /// The value a keyed parameter is bound to while a checkpointed segment
    /// runs (see [`param_with_key`](Self::param_with_key)).
    pub(crate) fn bound_param(&self, key: u64) -> Option<Var<'_, T>> {
        let bound = self.bound_params.borrow();
        bound
            .iter()
            .rev()
            .find(|&&(k, _)| k == key)
            .map(|&(_, id)| Var::new(self, id))
    }
}

/// The checkpointed node: the segment, and for each input the key of the
/// parameter it is, if it is one.
struct Checkpoint<T: Element> {
    segment: Segment<T>,
    keys: Vec<Option<u64>>,
}

impl<T: Element> Checkpoint<T> {
    /// Runs the segment on `tape` with `vars` standing for the inputs (and
    /// the input parameters bound to them); checks what it returns.
    fn run<'s>(&self, tape: &'s Tape<T>, vars: &[Var<'s, T>]) -> Result<Var<'s, T>> {
        let mark = tape.bound_params.borrow().len();
        let unbound_before = tape.param_keys().len();
        tape.bound_params.borrow_mut().extend(
            self.keys
                .iter()
                .zip(vars)
                .filter_map(|(k, v)| k.map(|k| (k, v.id()))),
        );
        let y = (self.segment)(tape, vars);
        tape.bound_params.borrow_mut().truncate(mark);
        let y = y?;
        tape.check_own(y, "checkpoint")?;
        if let Some(&(id, key)) = tape.param_keys().get(unbound_before) {
            return Err(Error::InvalidArgument {
                op: "checkpoint".into(),
                msg: format!(
                    "the segment recorded parameter {:?} (key {key}) at %{id:04} without it \
                     being an input; pass it in the inputs so its gradient reaches the tape",
                    tape.node(id).label.unwrap_or_default()
                ),
            });
        }
        Ok(y)
    }
}

impl<T: Element> Op<T> for Checkpoint<T> {
    fn name(&self) -> &str {
        "checkpoint"
    }
    fn params(&self) -> String {
        format!("{} inputs, recomputed in backward", self.keys.len())
    }
    fn formula(&self) -> Option<String> {
        Some("the segment is run again and differentiated".into())
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let scratch = Tape::<T>::new();
        let vars: Vec<Var<'_, T>> = inputs
            .iter()
            .map(|x| scratch.constant((*x).clone()))
            .collect();
        Ok(self.run(&scratch, &vars)?.value())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        // Recompute on the main tape behind identity nodes, and
        // differentiate back to them only.
        let tape = cx.output.tape();
        let start = tape.len();
        let stand_ins = cx
            .inputs
            .iter()
            .map(|&x| tape.apply(StandIn, &[x]))
            .collect::<Result<Vec<_>>>()?;
        let y = self.run(tape, &stand_ins)?;
        let grads = tape.run_graph_above(&[(y.id(), cx.grad_output)], start)?;
        Ok(stand_ins
            .iter()
            .zip(&cx.needs_grad)
            .map(|(v, &need)| grads.get(v.id()).copied().flatten().filter(|_| need))
            .collect())
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some((|| {
            let mut scratch = Tape::<T>::new();
            let (root, inputs) = {
                let vars: Vec<Var<'_, T>> = cx
                    .inputs
                    .iter()
                    .zip(cx.needs_grad)
                    .map(|(x, &need)| {
                        if need {
                            scratch.leaf((*x).clone())
                        } else {
                            scratch.constant((*x).clone())
                        }
                    })
                    .collect();
                let y = self.run(&scratch, &vars)?;
                (
                    y.var_id(),
                    vars.iter().map(|v| v.var_id()).collect::<Vec<_>>(),
                )
            };
            // The scratch tape is freed as its pass goes: the recomputed
            // segment never holds its values and all its gradients at once.
            let grads = scratch.backward_and_clear_with_seed(root, cx.grad_output.clone())?;
            Ok(inputs
                .iter()
                .map(|v| grads.get_id(v.position()).cloned())
                .collect())
        })())
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some((|| {
            let scratch = Tape::<T>::new();
            let vars = cx
                .inputs
                .iter()
                .zip(cx.tangents)
                .map(|(x, t)| match t {
                    Some(t) => scratch.dual((*x).clone(), (*t).clone()),
                    None => Ok(scratch.constant((*x).clone())),
                })
                .collect::<Result<Vec<_>>>()?;
            let y = self.run(&scratch, &vars)?;
            Ok(y.tangent()
                .unwrap_or_else(|| Tensor::zeros(cx.output.dims())))
        })())
    }
}

/// The identity, standing for a checkpointed segment's input while it is
/// recomputed on the main tape (where the backward pass through the
/// recomputation stops).
struct StandIn;
impl<T: Element> Op<T> for StandIn {
    fn name(&self) -> &str {
        "checkpoint_input"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].clone())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(InputGrads::from_elem(Some(cx.grad_output), 1))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some(Ok(TensorGrads::from_elem(Some(cx.grad_output.clone()), 1)))
    }
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        Some(Ok(cx.tangents[0]?.clone()))
    }
}
