//! The tape: an arena of recorded nodes in the order they were computed.
//!
//! Recording order is a topological order, so the backward pass is a plain
//! reverse loop over the arena; no graph search is needed and printing is
//! deterministic. Values are handles ([`Var`]) that borrow the tape, which
//! lets the compiler reject a value used after [`Tape::clear`] and keeps
//! each handle two words and `Copy`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use smallvec::SmallVec;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::op::Op;
use crate::var::Var;

/// How a node entered the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A leaf that needs a gradient (an input or a parameter).
    Leaf,
    /// A model parameter (a leaf that needs a gradient, marked for printing).
    Param,
    /// A value that needs no gradient.
    Constant,
    /// The result of an op.
    Op,
}

/// One recorded value: how it was made, from what, and its value.
pub struct Node<T: Element> {
    pub(crate) op: Option<Box<dyn Op<T>>>,
    pub(crate) inputs: SmallVec<[usize; 2]>,
    pub(crate) value: Tensor<T>,
    pub(crate) requires_grad: bool,
    pub(crate) kind: NodeKind,
}

impl<T: Element> std::fmt::Debug for Node<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("op", &self.op.as_ref().map(|o| o.name().to_string()))
            .field("inputs", &self.inputs)
            .field("shape", &self.value.dims())
            .field("requires_grad", &self.requires_grad)
            .field("kind", &self.kind)
            .finish()
    }
}

/// A read-only snapshot of one node, for printers and tools.
#[derive(Clone, Debug)]
pub struct NodeInfo<T: Element> {
    /// Tape position.
    pub id: usize,
    /// Op name (`"leaf"`, `"param"` or `"const"` for nodes without an op).
    pub op: String,
    /// The op's extra parameters (see [`Op::params`]).
    pub params: String,
    /// The op's derivative rule, if it declares one.
    pub formula: Option<String>,
    /// Tape positions of the inputs.
    pub inputs: Vec<usize>,
    /// The value (a cheap shared handle).
    pub value: Tensor<T>,
    /// Whether a gradient flows to this node.
    pub requires_grad: bool,
    /// How the node entered the tape.
    pub kind: NodeKind,
    /// A user-given name, if any.
    pub label: Option<String>,
}

/// The record of a computation, for reverse-mode differentiation.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_tensor::Tensor;
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::scalar(3.0));
/// let y = x.mul(x)?.add_scalar(1.0)?; // y = x² + 1
/// let grads = tape.backward(y)?;
/// assert_eq!(grads.get(x).unwrap().item()?, 6.0); // dy/dx = 2x
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// A tape is `Send`: each thread can build and differentiate its own.
pub struct Tape<T: Element = f32> {
    pub(crate) nodes: RefCell<Vec<Node<T>>>,
    /// User-given names by tape position. Kept beside the nodes, not in
    /// them: few nodes have one, and every byte of a node is copied when it
    /// is recorded.
    labels: RefCell<HashMap<usize, Box<str>>>,
    /// `(tape position, key)` of every parameter recorded with
    /// [`param_with_key`](Tape::param_with_key), in recording order: how a
    /// backward pass tells which gradients belong to which parameter object.
    /// Beside the nodes for the same reason as the labels.
    param_keys: RefCell<Vec<(usize, u64)>>,
    /// Forward-mode tangents by tape position (see `forward.rs`), filled
    /// only once [`dual`](Tape::dual) turns `forward_mode` on.
    pub(crate) tangents: crate::forward::Tangents<T>,
    pub(crate) forward_mode: Cell<bool>,
    /// Parameters bound to a recorded value (see `checkpoint.rs`).
    pub(crate) bound_params: RefCell<Vec<(u64, usize)>>,
    id: u64,
    grad_enabled: Cell<bool>,
    anomaly: Cell<bool>,
}

impl<T: Element> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Drop for Tape<T> {
    fn drop(&mut self) {
        crate::arena::give(std::mem::take(self.nodes.get_mut()));
    }
}

impl<T: Element> std::fmt::Debug for Tape<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape")
            .field("len", &self.len())
            .field("grad_enabled", &self.grad_enabled.get())
            .field("anomaly", &self.anomaly.get())
            .finish()
    }
}

impl<T: Element> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape {
            nodes: RefCell::new(crate::arena::take()),
            labels: RefCell::default(),
            param_keys: RefCell::default(),
            tangents: RefCell::default(),
            forward_mode: Cell::new(false),
            bound_params: RefCell::default(),
            id: next_tape_id(),
            grad_enabled: Cell::new(true),
            anomaly: Cell::new(false),
        }
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every node (and the values it saved). Taking `&mut self` means
    /// no [`Var`] of this tape can still be alive.
    pub fn clear(&mut self) {
        self.nodes.get_mut().clear();
        self.labels.get_mut().clear();
        self.param_keys.get_mut().clear();
        self.tangents.get_mut().clear();
        self.forward_mode.set(false);
        self.bound_params.get_mut().clear();
        self.id = next_tape_id();
    }

    /// A number identifying this tape (and this recording: [`clear`](Self::clear)
    /// gives a new one). Unique within the process; layers use it to know
    /// whether their parameters are already on this tape.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn push(&self, node: Node<T>) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(node);
        nodes.len() - 1
    }

    fn push_leaf(&self, value: Tensor<T>, kind: NodeKind) -> Var<'_, T> {
        let id = self.push(Node {
            op: None,
            inputs: SmallVec::new(),
            value,
            requires_grad: kind != NodeKind::Constant,
            kind,
        });
        Var::new(self, id)
    }

    fn push_named(&self, value: Tensor<T>, kind: NodeKind, name: &str) -> Var<'_, T> {
        let v = self.push_leaf(value, kind);
        self.set_label(v.id(), name);
        v
    }

    /// Records a leaf that needs a gradient (an input to differentiate
    /// with respect to).
    pub fn leaf(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push_leaf(value, NodeKind::Leaf)
    }

    /// Records a named leaf that needs a gradient (the name shows in printed
    /// tapes and graphs).
    pub fn leaf_named(&self, name: &str, value: Tensor<T>) -> Var<'_, T> {
        self.push_named(value, NodeKind::Leaf, name)
    }

    /// Records a model parameter: a named leaf that needs a gradient.
    pub fn param(&self, name: &str, value: Tensor<T>) -> Var<'_, T> {
        self.push_named(value, NodeKind::Param, name)
    }

    /// Records a model parameter that belongs to the parameter object
    /// identified by `key` (a number unique to that object, such as
    /// `tapegrad_nn::Param::id`). The same key may be recorded any number of
    /// times (a layer applied twice, shared weights);
    /// [`Gradients::param`](crate::Gradients::param) sums the gradients of
    /// all its nodes.
    ///
    /// # Errors
    /// If `key` is already on this tape with a value of another shape (the
    /// parameter was resized between two uses): their gradients could not
    /// be summed.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let w1 = tape.param_with_key("w", Tensor::scalar(3.0), 7)?;
    /// let w2 = tape.param_with_key("w", Tensor::scalar(3.0), 7)?;
    /// let grads = tape.backward(w1.mul(w2)?)?; // w², through two nodes
    /// assert_eq!(grads.param(7).unwrap().item()?, 6.0);
    /// assert!(grads.param(8).is_none());
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    pub fn param_with_key(&self, name: &str, value: Tensor<T>, key: u64) -> Result<Var<'_, T>> {
        if let Some(v) = self.bound_param(key) {
            return Ok(v);
        }
        let earlier = self
            .param_keys
            .borrow()
            .iter()
            .find(|&&(_, k)| k == key)
            .map(|&(id, _)| id);
        if let Some(id) = earlier {
            if !self.has_shape(id, value.dims()) {
                return Err(Error::InvalidArgument {
                    op: "param".into(),
                    msg: format!(
                        "parameter {name:?} is already on this tape at %{id:04} with shape {:?}; \
                         it cannot be recorded again with shape {:?}",
                        self.shape_of(id).as_slice(),
                        value.dims()
                    ),
                });
            }
        }
        let v = self.push_named(value, NodeKind::Param, name);
        self.param_keys.borrow_mut().push((v.id(), key));
        Ok(v)
    }

    /// Every node recorded for the parameter `key` with
    /// [`param_with_key`](Self::param_with_key), in recording order (for
    /// higher-order work: pass them to [`grad`](Self::grad)).
    pub fn param_vars(&self, key: u64) -> Vec<Var<'_, T>> {
        self.param_keys
            .borrow()
            .iter()
            .filter(|&&(_, k)| k == key)
            .map(|&(id, _)| Var::new(self, id))
            .collect()
    }

    /// `(tape position, key)` of every keyed parameter node.
    pub(crate) fn param_keys(&self) -> Vec<(usize, u64)> {
        self.param_keys.borrow().clone()
    }

    /// Records a value that needs no gradient (data, labels, masks).
    pub fn constant(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push_leaf(value, NodeKind::Constant)
    }

    /// Records a named value that needs no gradient.
    pub fn constant_named(&self, name: &str, value: Tensor<T>) -> Var<'_, T> {
        self.push_named(value, NodeKind::Constant, name)
    }

    /// Whether new ops are recorded for differentiation (false inside
    /// [`no_grad`](Self::no_grad)).
    pub fn is_grad_enabled(&self) -> bool {
        self.grad_enabled.get()
    }

    /// Runs `f` with gradient recording off: values computed inside need no
    /// gradient and the ops they came from are not differentiated through.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// let w = tape.leaf(Tensor::scalar(2.0));
    /// let y = tape.no_grad(|| w.mul_scalar(3.0))?;
    /// assert!(!y.requires_grad());
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = self.grad_enabled.replace(false);
        let r = f();
        self.grad_enabled.set(was);
        r
    }

    pub(crate) fn set_grad_enabled(&self, on: bool) -> bool {
        self.grad_enabled.replace(on)
    }

    /// Turns anomaly detection on or off. When on, the first op whose
    /// forward result or backward gradient holds a NaN or an infinity fails
    /// with [`Error::Anomaly`], naming the op, its tape position and input
    /// shapes. It costs one scan of every value.
    pub fn set_anomaly_detection(&self, on: bool) {
        self.anomaly.set(on);
    }

    /// Whether anomaly detection is on.
    pub fn anomaly_detection(&self) -> bool {
        self.anomaly.get()
    }

    /// Applies `op` to `inputs`, recording the result. This is the one entry
    /// point every op goes through, built-in or custom.
    ///
    /// # Errors
    /// If an input belongs to another tape, the forward computation fails
    /// (the error carries the tape position), or anomaly mode finds a
    /// non-finite result.
    pub fn apply<'t, O: Op<T>>(&'t self, op: O, inputs: &[Var<'t, T>]) -> Result<Var<'t, T>> {
        self.apply_boxed(Box::new(op), inputs)
    }

    /// [`apply`](Self::apply) for an op that is already boxed.
    ///
    /// # Errors
    /// As for [`apply`](Self::apply).
    pub fn apply_boxed<'t>(
        &'t self,
        op: Box<dyn Op<T>>,
        inputs: &[Var<'t, T>],
    ) -> Result<Var<'t, T>> {
        if inputs.iter().any(|v| !std::ptr::eq(v.tape(), self)) {
            return Err(Error::ForeignVar {
                op: op.name().to_string(),
            });
        }
        let ids: SmallVec<[usize; 2]> =
            crate::backward::small2(inputs.len(), 0, |k| inputs[k].id());
        // The forward pass reads the inputs in place: `Op::forward` sees only
        // tensors, never the tape, so holding the borrow is safe. One
        // mutable borrow covers the forward pass and the push.
        let mut nodes = self.nodes.borrow_mut();
        let node = nodes.len();
        let (value, any_grad) = {
            let nodes = &*nodes;
            // Up to two inputs (nearly every op) go in an array, not through
            // `SmallVec`'s `collect`.
            let pair: [&Tensor<T>; 2];
            let long: SmallVec<[&Tensor<T>; 3]>;
            // Read through `inputs`, a plain slice: each use of the
            // `SmallVec` of ids tests whether it spilled to the heap.
            let (refs, any_grad): (&[&Tensor<T>], bool) = match inputs.len() {
                1 | 2 => {
                    let (a, b) = (
                        &nodes[inputs[0].id()],
                        &nodes[inputs[inputs.len() - 1].id()],
                    );
                    pair = [&a.value, &b.value];
                    (&pair[..inputs.len()], a.requires_grad || b.requires_grad)
                }
                _ => {
                    long = ids.iter().map(|&i| &nodes[i].value).collect();
                    (&long, ids.iter().any(|&i| nodes[i].requires_grad))
                }
            };
            let value = match op.forward(refs) {
                Ok(value) => value,
                Err(e) => return Err(crate::backward::op_error(node, op.name(), e)),
            };
            if self.anomaly.get() && !all_finite(&value) {
                return Err(Error::Anomaly {
                    op: op.name().to_string(),
                    node,
                    phase: "forward",
                    input_shapes: refs.iter().map(|v| v.dims().to_vec()).collect(),
                });
            }
            (value, any_grad)
        };
        let requires_grad = any_grad && self.grad_enabled.get();
        nodes.push(Node {
            op: Some(op),
            inputs: ids,
            value,
            requires_grad,
            kind: NodeKind::Op,
        });
        drop(nodes);
        if self.forward_mode.get() {
            self.carry_tangent(node)?;
        }
        Ok(Var::new(self, node))
    }

    /// A snapshot of node `id` (op name, inputs, value, flags).
    ///
    /// # Panics
    /// If `id` is not below [`len`](Self::len).
    #[track_caller]
    pub fn node(&self, id: usize) -> NodeInfo<T> {
        let nodes = self.nodes.borrow();
        let n = &nodes[id];
        NodeInfo {
            id,
            op: match (&n.op, n.kind) {
                (Some(op), _) => op.name().to_string(),
                (None, NodeKind::Param) => "param".into(),
                (None, NodeKind::Constant) => "const".into(),
                (None, _) => "leaf".into(),
            },
            params: n.op.as_ref().map(|o| o.params()).unwrap_or_default(),
            formula: n.op.as_ref().and_then(|o| o.formula()),
            inputs: n.inputs.to_vec(),
            value: n.value.clone(),
            requires_grad: n.requires_grad,
            kind: n.kind,
            label: self.labels.borrow().get(&id).map(|l| l.to_string()),
        }
    }

    /// Snapshots of every node, in recording order.
    pub fn nodes(&self) -> Vec<NodeInfo<T>> {
        (0..self.len()).map(|i| self.node(i)).collect()
    }

    pub(crate) fn value_of(&self, id: usize) -> Tensor<T> {
        self.nodes.borrow()[id].value.clone()
    }

    pub(crate) fn shape_of(&self, id: usize) -> tapegrad_tensor::Shape {
        self.nodes.borrow()[id].value.shape()
    }

    pub(crate) fn has_shape(&self, id: usize, shape: &[usize]) -> bool {
        crate::backward::same_dims(self.nodes.borrow()[id].value.dims(), shape)
    }

    pub(crate) fn same_shape(&self, a: usize, b: usize) -> bool {
        let nodes = self.nodes.borrow();
        a == b || crate::backward::same_dims(nodes[a].value.dims(), nodes[b].value.dims())
    }

    pub(crate) fn requires_grad_of(&self, id: usize) -> bool {
        self.nodes.borrow()[id].requires_grad
    }

    pub(crate) fn set_label(&self, id: usize, label: &str) {
        self.labels.borrow_mut().insert(id, label.into());
    }

    pub(crate) fn truncate(&self, len: usize) {
        // Drop the removed nodes outside the borrow (an op's drop is user
        // code), without `split_off`, which would copy the whole tail into a
        // new allocation first: take the vector out, truncate, put it back.
        let mut nodes = std::mem::take(&mut *self.nodes.borrow_mut());
        nodes.truncate(len);
        let mut slot = self.nodes.borrow_mut();
        // Anything recorded by a drop meanwhile would be lost; ops cannot
        // reach the tape, so the slot is still empty.
        debug_assert!(slot.is_empty());
        *slot = nodes;
        drop(slot);
        self.labels.borrow_mut().retain(|&id, _| id < len);
        self.truncate_tangents(len);
        self.param_keys.borrow_mut().retain(|&(id, _)| id < len);
    }
}

fn next_tape_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn all_finite<T: Element>(t: &Tensor<T>) -> bool {
    match t.as_slice() {
        Some(s) => s.iter().all(|x| x.is_finite()),
        None => t.to_vec().iter().all(|x| x.is_finite()),
    }
}
