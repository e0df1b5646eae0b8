//! The backward pass: a reverse loop over the tape that applies each op's
//! vector-Jacobian product and accumulates gradients.
//!
//! Backward rules are written with [`Var`] ops. Without `create_graph` the
//! tape records them as constants (no history), and they are dropped when
//! the pass ends, so the tape is the same length afterwards and backward can
//! run again. With `create_graph` they are recorded like any other op, so the
//! gradients can be differentiated again, to any order.

use smallvec::SmallVec;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::op::BackwardCtx;
use crate::tape::{all_finite, Tape};
use crate::var::Var;

/// Gradients from one backward pass, by tape position.
///
/// Every node the pass reached has one (intermediate values too, which the
/// tape printers show); a node the output does not depend on has none.
#[derive(Clone, Debug)]
pub struct Gradients<T: Element> {
    grads: Vec<Option<Tensor<T>>>,
    tape_id: u64,
}

impl<T: Element> Gradients<T> {
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
        self.backward_impl(root, seed, None)
    }

    /// [`backward`](Self::backward), also returning every chain-rule step
    /// with its numbers (for teaching and debugging).
    ///
    /// # Errors
    /// As [`backward`](Self::backward).
    pub fn backward_traced(&self, root: Var<'_, T>) -> Result<(Gradients<T>, BackwardTrace<T>)> {
        let seed = self.scalar_seed(root)?;
        let mut trace = BackwardTrace { steps: Vec::new() };
        let g = self.backward_impl(root, seed, Some(&mut trace))?;
        Ok((g, trace))
    }

    fn scalar_seed(&self, root: Var<'_, T>) -> Result<Tensor<T>> {
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

    fn backward_impl(
        &self,
        root: Var<'_, T>,
        seed: Tensor<T>,
        trace: Option<&mut BackwardTrace<T>>,
    ) -> Result<Gradients<T>> {
        self.check_own(root, "backward")?;
        if seed.shape() != root.shape().as_slice() {
            return Err(Error::SeedShape {
                node: root.id(),
                expected: root.shape().to_vec(),
                got: seed.shape().to_vec(),
            });
        }
        let start_len = self.len();
        let result = (|| {
            let seed = self.constant(seed);
            let grads = self.run(&[(root.id(), seed)], false, trace)?;
            let nodes = self.nodes.borrow();
            Ok(Gradients {
                grads: grads
                    .into_iter()
                    .map(|g| g.map(|v| nodes[v.id()].value.clone()))
                    .collect(),
                tape_id: self.id(),
            })
        })();
        self.truncate(start_len);
        result
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
        let start_len = self.len();
        let result = (|| {
            let roots = self.scalar_roots(outputs)?;
            let grads = self.run(&roots, false, None)?;
            self.pick(inputs, &grads, |v| v.value())
        })();
        self.truncate(start_len);
        result
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
        let grads = self.run(&roots, true, None)?;
        self.pick(inputs, &grads, |v| v)
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
        let grads = self.run(&roots, true, None)?;
        self.pick(inputs, &grads, |v| v)
    }

    fn scalar_roots<'t>(&'t self, outputs: &[Var<'_, T>]) -> Result<Vec<(usize, Var<'t, T>)>> {
        outputs
            .iter()
            .map(|&o| Ok((o.id(), self.constant(self.scalar_seed(o)?))))
            .collect()
    }

    fn pick<'t, R>(
        &'t self,
        inputs: &[Var<'_, T>],
        grads: &[Option<Var<'t, T>>],
        f: impl Fn(Var<'t, T>) -> R,
    ) -> Result<Vec<Option<R>>> {
        inputs
            .iter()
            .map(|&i| {
                self.check_own(i, "grad")?;
                Ok(grads.get(i.id()).copied().flatten().map(&f))
            })
            .collect()
    }

    /// The reverse loop. Returns, for every position up to the last root,
    /// the accumulated gradient (as a recorded value).
    fn run<'t>(
        &'t self,
        roots: &[(usize, Var<'t, T>)],
        create_graph: bool,
        mut trace: Option<&mut BackwardTrace<T>>,
    ) -> Result<Vec<Option<Var<'t, T>>>> {
        let n = roots.iter().map(|r| r.0 + 1).max().unwrap_or(0);
        let mut grads: Vec<Option<Var<'t, T>>> = vec![None; n];
        let was = self.set_grad_enabled(create_graph);
        let result = (|| {
            for &(id, seed) in roots {
                accumulate(&mut grads[id], seed)?;
            }
            for i in (0..n).rev() {
                let Some(g) = grads[i] else { continue };
                // Take the op out of its node while its rule runs: the rule
                // records new nodes, which needs the tape mutably. One borrow
                // reads everything the context needs.
                let (op, cx) = {
                    let mut nodes = self.nodes.borrow_mut();
                    let node = &mut nodes[i];
                    if !node.requires_grad {
                        continue;
                    }
                    let Some(op) = node.op.take() else { continue };
                    let ids = &nodes[i].inputs;
                    let cx = BackwardCtx {
                        inputs: small2(ids.len(), Var::new(self, 0), |k| Var::new(self, ids[k])),
                        output: Var::new(self, i),
                        grad_output: g,
                        needs_grad: small2(ids.len(), false, |k| nodes[ids[k]].requires_grad),
                    };
                    (op, cx)
                };
                let (inputs, needs) = (cx.inputs.as_slice(), cx.needs_grad.as_slice());
                let input_ids = || inputs.iter().map(|v| v.id());
                let res = op.backward(&cx);
                let (name, formula) = if trace.is_some() {
                    (op.name().to_string(), op.formula())
                } else {
                    (String::new(), None)
                };
                let op_name = || {
                    self.nodes.borrow()[i]
                        .op
                        .as_ref()
                        .map(|o| o.name().to_string())
                        .unwrap_or_default()
                };
                self.nodes.borrow_mut()[i].op = Some(op);
                // A non-finite value inside the rule is caught by anomaly
                // mode as the *forward* of some helper op the rule recorded
                // (a `div` past the end of the tape, say). Report it as the
                // backward of the op whose rule ran, at its tape position.
                let as_backward = |e: Error| match e {
                    Error::Anomaly { .. } => Error::Anomaly {
                        op: op_name(),
                        node: i,
                        phase: "backward",
                        input_shapes: input_ids()
                            .map(|j| self.nodes.borrow()[j].value.shape().to_vec())
                            .collect(),
                    },
                    other => other,
                };
                let in_grads = res.map_err(as_backward)?;
                if in_grads.len() != inputs.len() {
                    return Err(Error::GradCount {
                        op: op_name(),
                        node: i,
                        expected: inputs.len(),
                        got: in_grads.len(),
                    });
                }
                let mut sent = Vec::new();
                for (k, (j, &gj)) in input_ids().zip(in_grads.as_slice()).enumerate() {
                    let gj = if needs[k] { gj } else { None };
                    if let Some(gj) = gj {
                        let same = {
                            let nodes = self.nodes.borrow();
                            same_dims(nodes[gj.id()].value.shape(), nodes[j].value.shape())
                        };
                        if !same {
                            let (expected, got) = (self.shape_of(j), gj.shape());
                            return Err(Error::GradShape {
                                op: op_name(),
                                node: i,
                                input: k,
                                expected: expected.to_vec(),
                                got: got.to_vec(),
                            });
                        }
                        if self.anomaly_detection() && !all_finite(&gj.value()) {
                            return Err(Error::Anomaly {
                                op: op_name(),
                                node: i,
                                phase: "backward",
                                input_shapes: input_ids()
                                    .map(|j| self.nodes.borrow()[j].value.shape().to_vec())
                                    .collect(),
                            });
                        }
                        accumulate(&mut grads[j], gj).map_err(as_backward)?;
                    }
                    if trace.is_some() {
                        sent.push((j, gj.map(|v| v.value())));
                    }
                }
                if let Some(t) = trace.as_deref_mut() {
                    t.steps.push(super::backward::BackwardStep {
                        node: i,
                        op: name,
                        formula,
                        grad_output: g.value(),
                        sent,
                    });
                }
            }
            Ok(())
        })();
        self.set_grad_enabled(was);
        result.map(|()| grads)
    }
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
