//! The backward pass: a reverse loop over the tape that applies each op's
//! vector-Jacobian product and accumulates gradients.
//!
//! Two loops share the checks:
//! - `run_values` (for `backward` and `grad`): gradients are plain tensors.
//!   Each op's value rule ([`Op::backward_value`]) runs directly on tensors
//!   and records nothing. An op without one runs its recorded rule with
//!   history off; those helper nodes are dropped when the pass ends, so the
//!   tape is the same length afterwards and backward can run again.
//! - `run_graph` (for `grad_graph`, i.e. `create_graph`): every rule is
//!   written with [`Var`] ops and recorded like any other op, so the
//!   gradients can be differentiated again, to any order.
//!
//! [`Op::backward_value`]: crate::Op::backward_value

use smallvec::SmallVec;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::op::{BackwardCtx, InputGrads, TensorGrads, ValueCtx};
use crate::tape::{all_finite, Node, Tape};
use crate::var::Var;

/// Called by the value sweep as it arrives at a tape position, with the
/// gradients from that position on, which are final by then (see
/// `run_values`).
pub(crate) type Reached<'a, T> = dyn FnMut(usize, &[Option<Tensor<T>>]) + 'a;

/// Gradients from one backward pass, by tape position.
///
/// Every node the pass reached has one (intermediate values too, which the
/// tape printers show); a node the output does not depend on has none.
#[derive(Clone, Debug)]
pub struct Gradients<T: Element> {
    grads: Vec<Option<Tensor<T>>>,
    /// `(tape position, key)` of the keyed parameters on the tape when the
    /// pass ran (see [`Tape::param_with_key`]), so that gradients can be
    /// read by parameter after the tape is cleared or reused.
    params: Vec<(usize, u64)>,
    tape_id: u64,
}

impl<T: Element> Gradients<T> {
    pub(crate) fn new(
        grads: Vec<Option<Tensor<T>>>,
        params: Vec<(usize, u64)>,
        tape_id: u64,
    ) -> Self {
        Gradients {
            grads,
            params,
            tape_id,
        }
    }

    /// The gradient of the root with respect to `v`, or `None` if the root
    /// does not depend on `v` (or `v` needs no gradient).
    /// A `v` from another tape (or an earlier recording of this one) has
    /// none either: its tape position would name an unrelated node.
    pub fn get(&self, v: Var<'_, T>) -> Option<&Tensor<T>> {
        if v.tape().id() != self.tape_id {
            return None;
        }
        self.get_id(v.id())
    }

    /// The gradient for the node at tape position `id`.
    pub fn get_id(&self, id: usize) -> Option<&Tensor<T>> {
        self.grads.get(id).and_then(Option::as_ref)
    }

    /// The gradient for `v`, or zeros of `v`'s shape when there is none.
    pub fn get_or_zeros(&self, v: Var<'_, T>) -> Tensor<T> {
        self.get(v)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(&v.shape()))
    }

    /// The gradient of the parameter recorded with `key` (see
    /// [`Tape::param_with_key`]): the sum over every node recorded for it,
    /// or `None` when the root depends on none of them. It stays readable
    /// after the tape is cleared, and other tapes recording the same
    /// parameter meanwhile do not change it.
    pub fn param(&self, key: u64) -> Option<Tensor<T>> {
        let mut total: Option<Tensor<T>> = None;
        for &(id, _) in self.params.iter().filter(|&&(_, k)| k == key) {
            let Some(g) = self.get_id(id) else { continue };
            total = Some(match total {
                None => g.clone(),
                // `param_with_key` refuses a second shape for one key, so
                // the shapes are equal and the add cannot fail.
                Some(t) => t.add(g).unwrap_or(t),
            });
        }
        total
    }

    /// The keys of the parameters that received a gradient, each once, in
    /// the order they were first recorded.
    pub fn param_keys(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = Vec::new();
        for &(id, k) in &self.params {
            if self.get_id(id).is_some() && !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    /// The [`Tape::id`] of the tape these gradients came from.
    pub fn tape_id(&self) -> u64 {
        self.tape_id
    }

    /// Number of tape positions covered (the root's position plus one).
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether no position is covered.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

/// What a value pass may free as the sweep moves down the tape. Once the
/// sweep is past a position, nothing reads its gradient or (but a printer
/// or a second pass) its value again.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Frugal<'a> {
    /// Nothing: every gradient is returned and the tape is left whole
    /// (`backward`, the printers, the parameter hook).
    KeepAll,
    /// Only the gradients of positions marked `true` are kept (`grad`:
    /// the requested inputs).
    KeepMarked(&'a [bool]),
    /// Only the leaves' gradients are kept (made contiguous), and each node
    /// (its value and what its op saved) is popped off the tape as soon as
    /// its rule has run: for a tape that is cleared right after the pass
    /// ([`Tape::backward_and_clear`]).
    ConsumeTape,
}

/// One step of a recorded backward pass: the chain rule at one node.
#[derive(Clone, Debug)]
pub struct BackwardStep<T: Element> {
    /// The node's tape position.
    pub node: usize,
    /// The op's name.
    pub op: String,
    /// The op's declared derivative rule, if any.
    pub formula: Option<String>,
    /// ∂L/∂(this node's output), as it arrived.
    pub grad_output: Tensor<T>,
    /// For each input: its tape position and the gradient sent to it (`None`
    /// when the input needs none).
    pub sent: Vec<(usize, Option<Tensor<T>>)>,
}

/// The steps of a backward pass in the order they ran (reverse tape order).
#[derive(Clone, Debug, Default)]
pub struct BackwardTrace<T: Element> {
    /// The steps.
    pub steps: Vec<BackwardStep<T>>,
}

impl<T: Element> Tape<T> {
    /// Gradients of the scalar `root` with respect to every node it depends
    /// on (the seed is 1).
    ///
    /// # Errors
    /// If `root` is not a scalar ([`Error::NonScalarRoot`]), belongs to another
    /// tape, passes through a forward-only op, or a backward rule fails.
    pub fn backward(&self, root: Var<'_, T>) -> Result<Gradients<T>> {
        let seed = self.scalar_seed(root)?;
        self.backward_with_seed(root, seed)
    }

    /// Gradients of `root` with an explicit seed ∂L/∂root (of `root`'s shape):
    /// the vector-Jacobian product `seedᵀ·J`.
    ///
    /// # Errors
    /// As [`backward`](Self::backward), and if the seed's shape differs.
    pub fn backward_with_seed(&self, root: Var<'_, T>, seed: Tensor<T>) -> Result<Gradients<T>> {
        self.backward_impl(root, seed, None, None)
    }

    /// [`backward`](Self::backward), also returning every chain-rule step
    /// with its numbers (for teaching and debugging).
    ///
    /// # Errors
    /// As [`backward`](Self::backward).
    pub fn backward_traced(&self, root: Var<'_, T>) -> Result<(Gradients<T>, BackwardTrace<T>)> {
        let seed = self.scalar_seed(root)?;
        let mut trace = BackwardTrace { steps: Vec::new() };
        let g = self.backward_impl(root, seed, Some(&mut trace), None)?;
        Ok((g, trace))
    }

    pub(crate) fn scalar_seed(&self, root: Var<'_, T>) -> Result<Tensor<T>> {
        self.check_own(root, "backward")?;
        let shape = root.shape();
        if shape.iter().product::<usize>() != 1 {
            return Err(Error::NonScalarRoot {
                node: root.id(),
                shape: shape.to_vec(),
            });
        }
        Ok(Tensor::ones(&shape))
    }

    pub(crate) fn check_own(&self, v: Var<'_, T>, op: &str) -> Result<()> {
        if std::ptr::eq(v.tape(), self) {
            Ok(())
        } else {
            Err(Error::ForeignVar { op: op.to_string() })
        }
    }

    pub(crate) fn backward_impl(
        &self,
        root: Var<'_, T>,
        seed: Tensor<T>,
        trace: Option<&mut BackwardTrace<T>>,
        reached: Option<&mut Reached<'_, T>>,
    ) -> Result<Gradients<T>> {
        self.check_seed(root, &seed)?;
        let start_len = self.len();
        let result = self.run_values(vec![(root.id(), seed)], trace, reached, Frugal::KeepAll);
        // Rules without a value form recorded their helper ops; drop them.
        self.truncate(start_len);
        Ok(Gradients::new(result?, self.param_keys(), self.id()))
    }

    /// Checks that `root` is on this tape and `seed` has its shape.
    pub(crate) fn check_seed(&self, root: Var<'_, T>, seed: &Tensor<T>) -> Result<()> {
        self.check_own(root, "backward")?;
        if seed.dims() != root.shape() {
            return Err(Error::SeedShape {
                node: root.id(),
                expected: root.shape().to_vec(),
                got: seed.dims().to_vec(),
            });
        }
        Ok(())
    }

    /// Gradients of `outputs` (each a scalar, seeded with 1, summed) with
    /// respect to `inputs`, like `torch.autograd.grad`. An input the outputs
    /// do not depend on gets `None`. The tape is left as it was.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let (x, unused) = (tape.leaf(Tensor::scalar(2.0)), tape.leaf(Tensor::scalar(5.0)));
    /// let y = x.powf(3.0)?;
    /// let g = tape.grad(&[y], &[x, unused])?;
    /// assert_eq!(g[0].as_ref().unwrap().item()?, 12.0);
    /// assert!(g[1].is_none());
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`backward`](Self::backward).
    pub fn grad(
        &self,
        outputs: &[Var<'_, T>],
        inputs: &[Var<'_, T>],
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let roots = outputs
            .iter()
            .map(|&o| Ok((o.id(), self.scalar_seed(o)?)))
            .collect::<Result<Vec<_>>>()?;
        // Only the inputs' gradients are returned: the others are freed as
        // soon as the sweep is past them.
        let mut wanted = vec![false; self.len()];
        for i in inputs {
            if let Some(w) = wanted.get_mut(i.id()) {
                *w = true;
            }
        }
        let start_len = self.len();
        let grads = self.run_values(roots, None, None, Frugal::KeepMarked(&wanted));
        self.truncate(start_len);
        self.pick(inputs, &grads?, |g| g.clone())
    }

    /// Like [`grad`](Self::grad) but the gradients are recorded on the tape
    /// (`create_graph`), so they can be used in further computation and
    /// differentiated again: Hessians, gradient penalties, physics losses.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::scalar(2.0));
    /// let y = x.powf(3.0)?;                              // y = x³
    /// let dy = tape.grad_graph(&[y], &[x])?[0].unwrap(); // 3x² = 12
    /// let d2y = tape.grad(&[dy], &[x])?[0].clone().unwrap(); // 6x = 12
    /// assert_eq!((dy.item()?, d2y.item()?), (12.0, 12.0));
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`backward`](Self::backward).
    pub fn grad_graph<'t>(
        &'t self,
        outputs: &[Var<'t, T>],
        inputs: &[Var<'t, T>],
    ) -> Result<Vec<Option<Var<'t, T>>>> {
        let roots = self.scalar_roots(outputs)?;
        let grads = self.run_graph(&roots)?;
        self.pick(inputs, &grads, |&v| v)
    }

    /// [`grad_graph`](Self::grad_graph) with explicit seeds (one per output,
    /// of its shape; they may themselves be recorded values).
    ///
    /// # Errors
    /// As [`grad_graph`](Self::grad_graph), and if the counts or shapes of
    /// the seeds differ.
    pub fn grad_graph_with_seeds<'t>(
        &'t self,
        outputs: &[Var<'t, T>],
        seeds: &[Var<'t, T>],
        inputs: &[Var<'t, T>],
    ) -> Result<Vec<Option<Var<'t, T>>>> {
        if seeds.len() != outputs.len() {
            return Err(Error::InvalidArgument {
                op: "grad_graph_with_seeds".into(),
                msg: format!("{} outputs but {} seeds", outputs.len(), seeds.len()),
            });
        }
        let mut roots = Vec::with_capacity(outputs.len());
        for (&o, &s) in outputs.iter().zip(seeds) {
            self.check_own(o, "grad_graph_with_seeds")?;
            self.check_own(s, "grad_graph_with_seeds")?;
            if o.shape() != s.shape() {
                return Err(Error::SeedShape {
                    node: o.id(),
                    expected: o.shape().to_vec(),
                    got: s.shape().to_vec(),
                });
            }
            roots.push((o.id(), s));
        }
        let grads = self.run_graph(&roots)?;
        self.pick(inputs, &grads, |&v| v)
    }

    fn scalar_roots<'t>(&'t self, outputs: &[Var<'_, T>]) -> Result<Vec<(usize, Var<'t, T>)>> {
        outputs
            .iter()
            .map(|&o| Ok((o.id(), self.constant(self.scalar_seed(o)?))))
            .collect()
    }

    fn pick<G, R>(
        &self,
        inputs: &[Var<'_, T>],
        grads: &[Option<G>],
        f: impl Fn(&G) -> R,
    ) -> Result<Vec<Option<R>>> {
        inputs
            .iter()
            .map(|&i| {
                self.check_own(i, "grad")?;
                Ok(grads.get(i.id()).and_then(Option::as_ref).map(&f))
            })
            .collect()
    }

    /// The reverse loop on values, for gradients that will not be
    /// differentiated again. Each op's value rule ([`Op::backward_value`])
    /// runs directly on tensors; an op without one runs its recorded rule,
    /// whose helper ops the caller truncates away afterwards. Returns, for
    /// every position up to the last root, the accumulated gradient.
    ///
    /// `reached(i, final_grads)`, when given, runs as the sweep arrives at
    /// position `i`, before its rule: every op that uses node `i` sits after
    /// it and has already sent its share, so `final_grads[k]` (position
    /// `i + k`) is final. [`backward_with_param_hook`] uses it to hand out
    /// parameter gradients while the rest of the pass still runs.
    ///
    /// [`Op::backward_value`]: crate::Op::backward_value
    /// [`backward_with_param_hook`]: Tape::backward_with_param_hook
    pub(crate) fn run_values(
        &self,
        roots: Vec<(usize, Tensor<T>)>,
        mut trace: Option<&mut BackwardTrace<T>>,
        mut reached: Option<&mut Reached<'_, T>>,
        frugal: Frugal<'_>,
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let n = roots.iter().map(|r| r.0 + 1).max().unwrap_or(0);
        let frees = !matches!(frugal, Frugal::KeepAll);
        let mut grads: Vec<Option<Tensor<T>>> = Vec::with_capacity(n);
        grads.resize_with(n, || None);
        let was = self.set_grad_enabled(false);
        let result = (|| {
            for (id, seed) in roots {
                accumulate_value(&mut grads[id], seed)?;
            }
            // One borrow for the whole pass (value rules never reach the
            // tape); only a recorded rule, which records ops, releases it.
            let mut nodes = self.nodes.borrow();
            for i in (0..n).rev() {
                // Position `i + 1` is done: its rule has run and every
                // consumer of its value and gradient sits above it.
                if frees && i + 1 < n {
                    nodes = self.let_go(i + 1, nodes, &mut grads, frugal);
                }
                // Inputs sit before their op on the tape, so every gradient
                // this step sends lands in `before`.
                let (before, rest) = grads.split_at_mut(i);
                if let Some(f) = reached.as_deref_mut() {
                    f(i, rest);
                }
                let Some(g) = rest[0].as_ref() else { continue };
                let node = &nodes[i];
                let Some(op) = node.op.as_ref().filter(|_| node.requires_grad) else {
                    continue;
                };
                // The value rule is called here rather than through a
                // helper, and its gradients are used where the rule left
                // them: each move of the list copies two tensors.
                let mut found = with_value_ctx(&nodes, node, g, |cx| op.backward_value(cx));
                let mut recorded;
                let in_grads = match &mut found {
                    Some(Ok(in_grads)) => in_grads,
                    Some(Err(_)) => {
                        let Some(Err(e)) = found else { unreachable!() };
                        return Err(op_error(i, op.name(), e));
                    }
                    None => {
                        drop(nodes);
                        recorded = self.recorded_rule_values(i, g)?;
                        nodes = self.nodes.borrow();
                        &mut recorded
                    }
                };
                // A plain slice: each use of the `SmallVec` itself tests
                // whether it spilled to the heap.
                let ids: &[usize] = &nodes[i].inputs;
                if in_grads.len() != ids.len() {
                    let expected = ids.len();
                    drop(nodes);
                    return Err(self.count_error(i, expected, in_grads.len()));
                }
                let mut sent = Vec::new();
                // Checked in place and moved slot to slot: moving the list
                // into an iterator, or a gradient out of its slot first,
                // copies every tensor once more.
                let mut kept = false;
                for (k, slot) in in_grads.iter_mut().enumerate() {
                    let j = ids[k];
                    let Some(gj) = slot.as_ref().filter(|_| nodes[j].requires_grad) else {
                        kept |= slot.is_some();
                        if trace.is_some() {
                            sent.push((j, None));
                        }
                        continue;
                    };
                    if !self.sent_ok(&nodes[j], gj) {
                        let gj = gj.clone();
                        drop(nodes);
                        return Err(self.sent_error(i, k, j, &gj));
                    }
                    if trace.is_some() {
                        sent.push((j, Some(gj.clone())));
                    }
                    match &mut before[j] {
                        Some(prev) => {
                            *prev = prev.add(gj)?;
                            kept = true;
                        }
                        empty => *empty = slot.take(),
                    }
                }
                if !kept && !in_grads.spilled() {
                    // Every slot is `None` now and the list is inline: it
                    // owns nothing, and dropping it would still visit each
                    // slot (a tenth of a scalar op's backward cost).
                    std::mem::forget(found);
                }
                if let Some(t) = trace.as_deref_mut() {
                    let (op, formula) = self.op_name_formula(i);
                    t.steps.push(BackwardStep {
                        node: i,
                        op,
                        formula,
                        grad_output: g.clone(),
                        sent,
                    });
                }
            }
            if frees && n > 0 {
                drop(self.let_go(0, nodes, &mut grads, frugal));
            }
            Ok(())
        })();
        self.set_grad_enabled(was);
        result.map(|()| grads)
    }

    /// Frees what a frugal pass no longer needs once the sweep has gone past
    /// position `pos`: its gradient unless `frugal` keeps it, and with
    /// [`Frugal::ConsumeTape`] the node itself (its value and whatever its
    /// op saved) with any helper nodes a recorded rule left above it.
    /// Takes and gives back the pass's borrow of the nodes.
    #[cold]
    fn let_go<'a>(
        &'a self,
        pos: usize,
        nodes: std::cell::Ref<'a, Vec<Node<T>>>,
        grads: &mut [Option<Tensor<T>>],
        frugal: Frugal<'_>,
    ) -> std::cell::Ref<'a, Vec<Node<T>>> {
        let keep = match frugal {
            Frugal::KeepAll => true,
            Frugal::KeepMarked(marked) => marked.get(pos).copied().unwrap_or(false),
            Frugal::ConsumeTape => nodes[pos].op.is_none(),
        };
        if !keep {
            grads[pos] = None;
        }
        if !matches!(frugal, Frugal::ConsumeTape) {
            return nodes;
        }
        // A leaf's gradient may arrive as a strided view (a `Linear`
        // weight's comes transposed) of a buffer nothing else uses. Made
        // contiguous now, one at a time, the optimiser can read it in
        // place instead of copying every parameter's at once.
        if let Some(g) = grads[pos].as_mut().filter(|g| !g.is_contiguous()) {
            *g = g.to_contiguous();
        }
        drop(nodes);
        // One node at a time, each dropped outside the borrow: an op's
        // destructor is user code.
        loop {
            let popped = {
                let mut nodes = self.nodes.borrow_mut();
                if nodes.len() <= pos {
                    break;
                }
                nodes.pop()
            };
            drop(popped);
        }
        self.nodes.borrow()
    }

    /// The input gradients of node `i` given its output gradient `g`, as
    /// tensors, from the op's recorded rule (for an op without a value
    /// rule). Its helper ops stay on the tape until the caller truncates it.
    fn recorded_rule_values(&self, i: usize, g: &Tensor<T>) -> Result<TensorGrads<T>> {
        let g = self.constant(g.clone());
        let in_grads = self.graph_rule(i, g)?;
        let nodes = self.nodes.borrow();
        Ok(in_grads
            .iter()
            .map(|v| v.map(|v| nodes[v.id()].value.clone()))
            .collect())
    }

    /// The reverse loop with every rule recorded (`create_graph`), so the
    /// gradients can be differentiated again. Returns, for every position up
    /// to the last root, the accumulated gradient as a recorded value.
    fn run_graph<'t>(&'t self, roots: &[(usize, Var<'t, T>)]) -> Result<Vec<Option<Var<'t, T>>>> {
        self.run_graph_above(roots, 0)
    }

    /// [`run_graph`](Self::run_graph) over the positions from `lowest` on
    /// only: gradients stop there instead of flowing on to earlier nodes (a
    /// checkpointed segment's recomputation, which ends at its inputs).
    pub(crate) fn run_graph_above<'t>(
        &'t self,
        roots: &[(usize, Var<'t, T>)],
        lowest: usize,
    ) -> Result<Vec<Option<Var<'t, T>>>> {
        let n = roots.iter().map(|r| r.0 + 1).max().unwrap_or(0);
        let mut grads: Vec<Option<Var<'t, T>>> = vec![None; n];
        let was = self.set_grad_enabled(true);
        let result = (|| {
            for &(id, seed) in roots {
                accumulate(&mut grads[id], seed)?;
            }
            for i in (lowest..n).rev() {
                let Some(g) = grads[i] else { continue };
                if !self.requires_grad_of(i) {
                    continue;
                }
                let in_grads = self.graph_rule(i, g)?;
                let ids = self.inputs_of(i);
                if in_grads.len() != ids.len() {
                    return Err(self.count_error(i, ids.len(), in_grads.len()));
                }
                for (k, (&j, &gj)) in ids.iter().zip(&in_grads).enumerate() {
                    let Some(gj) = gj.filter(|_| self.requires_grad_of(j)) else {
                        continue;
                    };
                    let ok = {
                        let nodes = self.nodes.borrow();
                        self.sent_ok(&nodes[j], &nodes[gj.id()].value)
                    };
                    if !ok {
                        return Err(self.sent_error(i, k, j, &gj.value()));
                    }
                    accumulate(&mut grads[j], gj).map_err(|e| self.as_backward(i, e))?;
                }
            }
            Ok(())
        })();
        self.set_grad_enabled(was);
        result.map(|()| grads)
    }

    /// Runs node `i`'s recorded backward rule with output gradient `g`.
    /// Returns an empty list for a leaf.
    fn graph_rule<'t>(&'t self, i: usize, g: Var<'t, T>) -> Result<InputGrads<'t, T>> {
        // Take the op out of its node while its rule runs: the rule records
        // new nodes, which needs the tape mutably. One borrow reads
        // everything the context needs.
        let (op, cx) = {
            let mut nodes = self.nodes.borrow_mut();
            let Some(op) = nodes[i].op.take() else {
                return Ok(InputGrads::new());
            };
            let ids = &nodes[i].inputs;
            let cx = BackwardCtx {
                inputs: small2(ids.len(), Var::new(self, 0), |k| Var::new(self, ids[k])),
                output: Var::new(self, i),
                grad_output: g,
                needs_grad: small2(ids.len(), false, |k| nodes[ids[k]].requires_grad),
            };
            (op, cx)
        };
        let res = op.backward(&cx);
        self.nodes.borrow_mut()[i].op = Some(op);
        res.map_err(|e| self.as_backward(i, e))
    }

    /// A non-finite value inside a recorded rule is caught by anomaly mode
    /// as the *forward* of some helper op the rule recorded (a `div` past the
    /// end of the tape, say). Report it as the backward of the op whose rule
    /// ran, at its tape position.
    fn as_backward(&self, i: usize, e: Error) -> Error {
        match e {
            Error::Anomaly { .. } => self.backward_anomaly(i),
            other => other,
        }
    }

    fn backward_anomaly(&self, i: usize) -> Error {
        let nodes = self.nodes.borrow();
        Error::Anomaly {
            op: op_name(&nodes[i]),
            node: i,
            phase: "backward",
            input_shapes: nodes[i]
                .inputs
                .iter()
                .map(|&j| nodes[j].value.dims().to_vec())
                .collect(),
        }
    }

    fn inputs_of(&self, i: usize) -> SmallVec<[usize; 2]> {
        let nodes = self.nodes.borrow();
        let ids = &nodes[i].inputs;
        small2(ids.len(), 0, |k| ids[k])
    }

    fn op_name_formula(&self, i: usize) -> (String, Option<String>) {
        let nodes = self.nodes.borrow();
        (
            op_name(&nodes[i]),
            nodes[i].op.as_ref().and_then(|o| o.formula()),
        )
    }

    /// The error for a rule that returned `got` gradients for `expected`
    /// inputs.
    fn count_error(&self, i: usize, expected: usize, got: usize) -> Error {
        Error::GradCount {
            op: op_name(&self.nodes.borrow()[i]),
            node: i,
            expected,
            got,
        }
    }

    /// Whether a gradient sent to `input` has its shape (and, in anomaly
    /// mode, is finite).
    fn sent_ok(&self, input: &Node<T>, g: &Tensor<T>) -> bool {
        same_dims(g.dims(), input.value.dims()) && (!self.anomaly_detection() || all_finite(g))
    }

    /// The error for a gradient `gj` that node `i`'s rule sent to its input
    /// `k` (node `j`) and [`sent_ok`](Self::sent_ok) rejected.
    fn sent_error(&self, i: usize, k: usize, j: usize, gj: &Tensor<T>) -> Error {
        let nodes = self.nodes.borrow();
        if !same_dims(gj.dims(), nodes[j].value.dims()) {
            return Error::GradShape {
                op: op_name(&nodes[i]),
                node: i,
                input: k,
                expected: nodes[j].value.dims().to_vec(),
                got: gj.dims().to_vec(),
            };
        }
        drop(nodes);
        self.backward_anomaly(i)
    }
}

/// Runs `f` with the [`ValueCtx`] of `node` (whose output gradient is `g`).
/// The rule sees only tensors, never the tape, so the borrow of `nodes` may
/// be held while it runs.
#[inline]
fn with_value_ctx<T: Element, R>(
    nodes: &[Node<T>],
    node: &Node<T>,
    g: &Tensor<T>,
    f: impl FnOnce(&ValueCtx<'_, T>) -> R,
) -> R {
    let ids: &[usize] = &node.inputs;
    // Up to two inputs (nearly every op) go in arrays.
    let (pair, needs2);
    let (long, needs_long): (Vec<&Tensor<T>>, Vec<bool>);
    let (inputs, needs): (&[&Tensor<T>], &[bool]) = match ids.len() {
        1 | 2 => {
            let (a, b) = (&nodes[ids[0]], &nodes[ids[ids.len() - 1]]);
            pair = [&a.value, &b.value];
            needs2 = [a.requires_grad, b.requires_grad];
            (&pair[..ids.len()], &needs2[..ids.len()])
        }
        _ => {
            long = ids.iter().map(|&j| &nodes[j].value).collect();
            needs_long = ids.iter().map(|&j| nodes[j].requires_grad).collect();
            (&long, &needs_long)
        }
    };
    f(&ValueCtx {
        inputs,
        output: &node.value,
        grad_output: g,
        needs_grad: needs,
    })
}

/// An op's error (from its forward pass or its value rule), pointing at the
/// op's tape position.
#[cold]
pub(crate) fn op_error(i: usize, op: &str, e: Error) -> Error {
    match e {
        Error::Tensor(source) => Error::Op {
            node: i,
            op: op.to_string(),
            source,
        },
        other => other,
    }
}

fn op_name<T: Element>(node: &Node<T>) -> String {
    node.op
        .as_ref()
        .map(|o| o.name().to_string())
        .unwrap_or_default()
}

#[inline]
fn accumulate_value<T: Element>(slot: &mut Option<Tensor<T>>, g: Tensor<T>) -> Result<()> {
    match slot {
        None => *slot = Some(g),
        Some(prev) => *prev = prev.add(&g)?,
    }
    Ok(())
}

#[inline]
fn accumulate<'t, T: Element>(slot: &mut Option<Var<'t, T>>, g: Var<'t, T>) -> Result<()> {
    *slot = Some(match *slot {
        None => g,
        Some(prev) => prev.add(g)?,
    });
    Ok(())
}

/// A two-slot `SmallVec` of `len` items made by `f`, built in place without
/// going through `SmallVec`'s generic `extend` (which costs more than the
/// rest of a scalar op's bookkeeping); longer lists take the general path.
#[inline]
pub(crate) fn small2<X: Copy>(
    len: usize,
    fill: X,
    mut f: impl FnMut(usize) -> X,
) -> SmallVec<[X; 2]> {
    match len {
        0 => SmallVec::new(),
        1 => SmallVec::from_buf_and_len([f(0), fill], 1),
        2 => SmallVec::from_buf_and_len([f(0), f(1)], 2),
        _ => (0..len).map(f).collect(),
    }
}

/// Shape equality without `memcmp` (shapes are a few words; 0-d ones are
/// empty, where the slice comparison's library call is most of the cost).
#[inline]
pub(crate) fn same_dims(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
