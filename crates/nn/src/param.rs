//! [`Param`]: a named, trainable tensor that knows where it sits on a tape.

use std::sync::Mutex;

use tapegrad_autograd::{Gradients, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

/// A model parameter: a value plus a record of the tape nodes it was
/// registered as.
///
/// [`var`](Self::var) puts the value on a tape as a named parameter node;
/// [`grad`](Self::grad) reads its gradient back after `backward`.
///
/// Design note: ideally a second `var` call on the same tape would return the
/// node registered first. The autograd crate has no public way to rebuild a
/// [`Var`] from a node id, so each call registers a fresh node (a cheap
/// shared handle to the same storage) and the parameter remembers all of
/// them for that tape; `grad` sums their gradients. For weight sharing or a
/// model applied twice on one tape that is exactly the chain rule's sum,
/// so gradients are right either way; the tape just shows the parameter
/// once per use.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::Param;
/// use tapegrad_tensor::Tensor;
/// let p = Param::new("w", Tensor::<f64>::scalar(3.0));
/// let tape = Tape::new();
/// let w = p.var(&tape);
/// let y = w.mul(p.var(&tape))?; // w² through two uses
/// let grads = tape.backward(y)?;
/// assert_eq!(p.grad(&grads).unwrap().item()?, 6.0);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
pub struct Param<T: Element = f32> {
    name: String,
    value: Tensor<T>,
    /// (tape id, node ids registered on that tape).
    slot: Mutex<Option<(u64, Vec<usize>)>>,
}

impl<T: Element> Param<T> {
    /// A parameter named `name` (shown in printed tapes) holding `value`.
    pub fn new(name: impl Into<String>, value: Tensor<T>) -> Self {
        Param {
            name: name.into(),
            value: value.to_contiguous(),
            slot: Mutex::new(None),
        }
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

    /// The shape of the value.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.value.numel()
    }

    /// Replaces the value (optimisers and checkpoint loading call this).
    /// Nodes registered before on a tape keep the old value; the next
    /// [`var`](Self::var) registers the new one.
    pub fn set_value(&mut self, value: Tensor<T>) {
        self.value = value.to_contiguous();
        *self.slot.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The value's elements (row-major) for an in-place update; optimisers
    /// call this. Copy-on-write through [`Tensor::make_mut_slice`]: written
    /// in place when this parameter is the only holder of its buffer, else
    /// copied first, so a tape node or a clone of [`value`](Self::value)
    /// taken earlier keeps the old values. Like [`set_value`](Self::set_value)
    /// it forgets the tape nodes registered so far.
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
        *self.slot.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        self.value.make_mut_slice()
    }

    /// Registers the value on `tape` as a parameter node and returns it.
    pub fn var<'t>(&self, tape: &'t Tape<T>) -> Var<'t, T> {
        let v = tape.param(&self.name, self.value.clone());
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some((id, nodes)) if *id == tape.id() => nodes.push(v.id()),
            _ => *slot = Some((tape.id(), vec![v.id()])),
        }
        v
    }

    /// The gradient from a backward pass on the tape this parameter was last
    /// registered on, or `None` if the loss does not depend on it (or the
    /// gradients come from another tape).
    pub fn grad(&self, grads: &Gradients<T>) -> Option<Tensor<T>> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let (id, nodes) = slot.as_ref()?;
        if *id != grads.tape_id() {
            return None;
        }
        let mut total: Option<Tensor<T>> = None;
        for &n in nodes {
            if let Some(g) = grads.get_id(n) {
                total = Some(match total {
                    None => g.clone(),
                    // Same shapes: the add cannot fail.
                    Some(t) => t.add(g).unwrap_or(t),
                });
            }
        }
        total
    }

    /// The tape nodes this parameter was registered as on `tape` (empty if
    /// none): use them with [`Tape::grad`] for higher-order work.
    pub fn nodes_on(&self, tape: &Tape<T>) -> Vec<usize> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some((id, nodes)) if *id == tape.id() => nodes.clone(),
            _ => Vec::new(),
        }
    }
}

impl<T: Element> Clone for Param<T> {
    /// Copies the name and value; the copy is on no tape.
    fn clone(&self) -> Self {
        Param::new(self.name.clone(), self.value.clone())
    }
}

impl<T: Element> std::fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({:?}, {}{:?})", self.name, T::DTYPE, self.shape())
    }
}
