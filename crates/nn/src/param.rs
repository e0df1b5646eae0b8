//! [`Param`]: a named, trainable tensor with an identity of its own.

use std::sync::atomic::{AtomicU64, Ordering};

use tapegrad_autograd::{Gradients, Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Shape, Tensor};

/// The identity of one [`Param`]: unique within the process, kept when the
/// value changes (an optimiser step, a checkpoint load) and new for a
/// [`clone`](Clone::clone), which is a different parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(u64);

impl ParamId {
    fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ParamId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number the tape records with the parameter's nodes (see
    /// [`Tape::param_with_key`] and [`Gradients::param`]).
    pub fn key(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for ParamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A model parameter: a value, a name and an identity.
///
/// One weight's life, end to end:
/// 1. **Creation.** [`Param::new`] gives it a value, a name and a [`ParamId`]
///    that no other parameter in the process has.
/// 2. **Forward.** [`Param::var`] records the value on a tape as a parameter
///    node tagged with that id ([`Tape::param_with_key`]). Nothing is stored
///    in the parameter: it can be read on any number of tapes, by any number
///    of threads.
/// 3. **Backward.** `tape.backward(loss)` returns [`Gradients`] for every
///    node, and with them the list of tagged parameter nodes;
///    [`Module::grads`](crate::Module::grads) turns that into
///    [`ParamGrads`](crate::ParamGrads): one gradient per parameter, by the
///    name the checkpoint uses, each remembering the id it belongs to.
/// 4. **Update.** [`Optimizer::step`](crate::Optimizer::step) finds each
///    parameter's gradient by name, checks that it was computed for this
///    very parameter, and updates the value in place.
///
/// [`var`](Self::var) puts the value on a tape as a named parameter node;
/// [`grad`](Self::grad) reads its gradient back from a backward pass of
/// that tape. A model applied twice on one tape (or a weight shared by two
/// layers) records the parameter twice; its gradient is the sum, as the
/// chain rule says.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::Param;
/// use tapegrad_tensor::Tensor;
/// let p = Param::new("w", Tensor::<f64>::scalar(3.0));
/// let tape = Tape::new();
/// let w = p.var(&tape)?;
/// let y = w.mul(p.var(&tape)?)?; // w² through two uses
/// let grads = tape.backward(y)?;
/// assert_eq!(p.grad(&grads).unwrap().item()?, 6.0);
///
/// // Another tape meanwhile (a validation pass, say) changes nothing.
/// let other = Tape::new();
/// let _ = p.var(&other)?.sum_all()?;
/// assert_eq!(p.grad(&grads).unwrap().item()?, 6.0);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
pub struct Param<T: Element = f32> {
    id: ParamId,
    name: String,
    value: Tensor<T>,
}

impl<T: Element> Param<T> {
    /// A parameter named `name` (shown in printed tapes) holding `value`.
    pub fn new(name: impl Into<String>, value: Tensor<T>) -> Self {
        Param {
            id: ParamId::fresh(),
            name: name.into(),
            value: value.to_contiguous(),
        }
    }

    /// This parameter's identity.
    pub fn id(&self) -> ParamId {
        self.id
    }

    /// The name shown on tapes (set by containers to the full path, e.g.
    /// `0.weight`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the parameter (containers call this with the full path).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// The current value.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// The shape of the value, as an owned [`Shape`] like
    /// [`Tensor::shape`] and `Var::shape` return.
    pub fn shape(&self) -> Shape {
        self.value.shape()
    }

    /// The shape of the value, borrowed (like [`Tensor::dims`]).
    pub fn dims(&self) -> &[usize] {
        self.value.dims()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.value.numel()
    }

    /// Replaces the value (checkpoint loading calls this). Nodes recorded
    /// before keep the old value; the next [`var`](Self::var) records the
    /// new one.
    pub fn set_value(&mut self, value: Tensor<T>) {
        self.value = value.to_contiguous();
    }

    /// The value's elements (row-major) for an in-place update; optimisers
    /// call this. Copy-on-write through [`Tensor::make_mut_slice`]: written
    /// in place when this parameter is the only holder of its buffer, else
    /// copied first, so a tape node or a clone of [`value`](Self::value)
    /// taken earlier keeps the old values.
    ///
    /// ```
    /// use tapegrad_nn::Param;
    /// use tapegrad_tensor::Tensor;
    /// let mut p = Param::new("w", Tensor::from_vec(vec![1.0f32, 2.0], &[2])?);
    /// let before = p.value().clone();
    /// p.make_mut_slice().iter_mut().for_each(|w| *w -= 0.5);
    /// assert_eq!(p.value().to_vec(), vec![0.5, 1.5]);
    /// assert_eq!(before.to_vec(), vec![1.0, 2.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn make_mut_slice(&mut self) -> &mut [T] {
        self.value.make_mut_slice()
    }

    /// Records the value on `tape` as a parameter node tagged with this
    /// parameter's [`id`](Self::id), and returns it.
    ///
    /// # Errors
    /// If this parameter is already on `tape` with a value of another shape
    /// ([`set_value`](Self::set_value) resized it between two uses).
    pub fn var<'t>(&self, tape: &'t Tape<T>) -> TapeResult<Var<'t, T>> {
        tape.param_with_key(&self.name, self.value.clone(), self.id.key())
    }

    /// This parameter's gradient in `grads` (summed over every node recorded
    /// for it), or `None` if the root does not depend on it, including
    /// when `grads` come from a tape it was never recorded on.
    pub fn grad(&self, grads: &Gradients<T>) -> Option<Tensor<T>> {
        grads.param(self.id.key())
    }

    /// The nodes this parameter was recorded as on `tape`, in order: use
    /// them with [`Tape::grad`] or [`Tape::grad_graph`] for higher-order
    /// work.
    pub fn vars_on<'t>(&self, tape: &'t Tape<T>) -> Vec<Var<'t, T>> {
        tape.param_vars(self.id.key())
    }
}

impl<T: Element> Clone for Param<T> {
    /// Copies the name and value into a new parameter (with a new
    /// [`ParamId`]): gradients of the original do not step the copy.
    fn clone(&self) -> Self {
        Param::new(self.name.clone(), self.value.clone())
    }
}

impl<T: Element> std::fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Param({:?} {}, {}{:?})",
            self.name,
            self.id,
            T::DTYPE,
            self.dims()
        )
    }
}
