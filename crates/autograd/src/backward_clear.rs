//! A backward pass that frees the tape as it goes, for the usual training
//! step where the tape is thrown away right after (PyTorch's default
//! `retain_graph=False`).
//!
//! The reverse sweep visits positions from the root down to 0, and once it
//! is past a position nothing reads that node again: every op using its
//! value or sending to its gradient sits above it. So the pass pops each
//! node off the tape (its value, and whatever its op saved: masks, indices)
//! right after its rule has run, and drops each intermediate gradient as
//! soon as it has been passed on. What stays is what a training step reads:
//! the gradients of the leaves and parameters. The peak memory of the pass
//! is then about the larger of the activations and the parameter gradients,
//! not their sum plus every intermediate gradient.
//!
//! Because it takes the tape mutably, no [`Var`] of it can be alive
//! afterwards (the compiler checks), so nothing can see a freed value; the
//! root is named by a [`VarId`]. [`Tape::backward`] stays the pass that
//! keeps everything: the printers, traces and the explorer read every
//! node's value and gradient, and a tape can be differentiated again.

use tapegrad_tensor::{Element, Tensor};

use crate::backward::{Frugal, Gradients};
use crate::error::{Error, Result};
use crate::tape::Tape;
use crate::var::{Var, VarId};

impl<T: Element> Tape<T> {
    /// The gradients of the scalar `root` with respect to the leaves and
    /// parameters, freeing the tape during the pass; the tape is empty
    /// afterwards, as after [`clear`](Self::clear), and can record again.
    ///
    /// Read the gradients by parameter ([`Gradients::param`], which
    /// `tapegrad_nn`'s `Module::grads` and `Param::grad` use) or by tape
    /// position ([`Gradients::get_id`] with [`VarId::position`]).
    /// Intermediate values have none. Read any value you need (the loss, the
    /// predictions) before the call. Use [`backward`](Self::backward) to
    /// print the tape with its gradients, to read an intermediate gradient,
    /// or to run a second pass.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let mut tape = Tape::<f64>::new();
    /// let (root, w_at) = {
    ///     let w = tape.param_with_key("w", Tensor::scalar(3.0), 7)?;
    ///     let loss = w.mul(w)?.tanh()?;        // tanh(w²)
    ///     println!("loss {}", loss.item()?);  // values are read first
    ///     (loss.var_id(), w.var_id())
    /// };
    /// let grads = tape.backward_and_clear(root)?;
    /// assert!(tape.is_empty());
    /// let dw = 6.0 * (1.0 - 9f64.tanh().powi(2)); // 2w·(1 - tanh²(w²))
    /// assert!((grads.param(7).unwrap().item()? - dw).abs() < 1e-12);
    /// assert_eq!(grads.get_id(w_at.position()).unwrap().item()?, grads.param(7).unwrap().item()?);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `root` names a value of another tape or recording
    /// ([`Error::ForeignVar`]), is not a scalar, passes through a
    /// forward-only op, or a backward rule fails. The tape is cleared in
    /// every case once the pass has started.
    pub fn backward_and_clear(&mut self, root: VarId) -> Result<Gradients<T>> {
        let seed = self.scalar_seed(self.var_of(root)?)?;
        self.consume(root, seed)
    }

    /// [`backward_and_clear`](Self::backward_and_clear) with an explicit
    /// seed ∂L/∂root of the root's shape.
    pub(crate) fn backward_and_clear_with_seed(
        &mut self,
        root: VarId,
        seed: Tensor<T>,
    ) -> Result<Gradients<T>> {
        self.check_seed(self.var_of(root)?, &seed)?;
        self.consume(root, seed)
    }

    /// The recorded value `v` names, if it is on this tape's current
    /// recording.
    fn var_of(&self, v: VarId) -> Result<Var<'_, T>> {
        if v.tape_id != self.id() || v.id >= self.len() {
            return Err(Error::ForeignVar {
                op: "backward_and_clear".into(),
            });
        }
        Ok(Var::new(self, v.id))
    }

    fn consume(&mut self, root: VarId, seed: Tensor<T>) -> Result<Gradients<T>> {
        let params = self.param_keys();
        let tape_id = self.id();
        let grads = self.run_values(vec![(root.id, seed)], None, None, Frugal::ConsumeTape);
        self.clear();
        Ok(Gradients::new(grads?, params, tape_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::{Op, ValueCtx};

    /// A small net touching a matmul, a broadcast add, a shared
    /// parameter, a reduction and an op without a value rule (`Cube`,
    /// below): the gradients of the leaves equal `backward`'s bit for bit.
    fn net<'t>(tape: &'t Tape<f64>) -> Result<(Var<'t, f64>, [Var<'t, f64>; 3])> {
        let x = tape.leaf(Tensor::from_vec(
            vec![0.3, -1.2, 0.8, 0.5, 2.0, -0.4],
            &[2, 3],
        )?);
        let w = tape.param_with_key(
            "w",
            Tensor::from_vec(vec![0.2, -0.5, 1.1, 0.7, -0.3, 0.4], &[3, 2])?,
            1,
        )?;
        let b = tape.param_with_key("b", Tensor::from_vec(vec![0.1, -0.2], &[2])?, 2)?;
        let h = x.matmul(w)?.add(b)?.tanh()?;
        let again = tape.param_with_key("b", b.value(), 2)?; // b used twice
        let y = tape.apply(Cube, &[h.add(again)?])?.sum_all()?;
        Ok((y, [x, w, b]))
    }

    /// y = x³ with only the recorded rule (no value rule), so the pass
    /// records helper nodes above the node it is freeing.
    struct Cube;
    impl Op<f64> for Cube {
        fn name(&self) -> &str {
            "cube"
        }
        fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
            Ok(x[0].mul(x[0])?.mul(x[0])?)
        }
        fn backward<'t>(
            &self,
            cx: &crate::BackwardCtx<'t, f64>,
        ) -> Result<crate::InputGrads<'t, f64>> {
            let x = cx.inputs[0];
            let g = cx.grad_output.mul(x.square()?.mul_scalar(3.0)?)?;
            Ok(crate::InputGrads::from_elem(Some(g), 1))
        }
        fn backward_value(&self, _: &ValueCtx<'_, f64>) -> Option<Result<crate::TensorGrads<f64>>> {
            None
        }
    }

    #[test]
    fn gradients_of_leaves_equal_those_of_backward() -> Result<()> {
        let kept = Tape::<f64>::new();
        let (y, leaves) = net(&kept)?;
        let expected = kept.backward(y)?;
        let mut tape = Tape::<f64>::new();
        let (root, ids) = {
            let (y, leaves) = net(&tape)?;
            (y.var_id(), leaves.map(|v| v.var_id()))
        };
        let grads = tape.backward_and_clear(root)?;
        assert!(tape.is_empty());
        for (id, v) in ids.iter().zip(leaves) {
            let want = expected.get(v).unwrap().to_vec();
            assert_eq!(grads.get_id(id.position()).unwrap().to_vec(), want);
        }
        for key in [1, 2] {
            assert_eq!(
                grads.param(key).unwrap().to_vec(),
                expected.param(key).unwrap().to_vec()
            );
        }
        assert_eq!(grads.param_keys(), [1, 2]);
        // Intermediate gradients were freed on the way.
        let kept_any_intermediate = (0..grads.len()).any(|i| {
            grads.get_id(i).is_some() && kept.node(i).op != "param" && kept.node(i).op != "leaf"
        });
        assert!(!kept_any_intermediate);
        // And they match finite differences.
        let report = gradcheck(
            |t, v| {
                let h = v[0].matmul(v[1])?.add(v[2])?.tanh()?;
                t.apply(Cube, &[h.add(v[2])?])?.sum_all()
            },
            &leaves.map(|v| v.value()),
        )?;
        assert!(report.passed, "{report:?}");
        Ok(())
    }

    /// The hand-worked case: y = (a·b)², dy/da = 2ab², dy/db = 2a²b.
    #[test]
    fn hand_worked_case() -> Result<()> {
        let mut tape = Tape::<f64>::new();
        let (root, a, b) = {
            let a = tape.leaf(Tensor::scalar(3.0));
            let b = tape.leaf(Tensor::scalar(-2.0));
            (a.mul(b)?.square()?.var_id(), a.var_id(), b.var_id())
        };
        let g = tape.backward_and_clear(root)?;
        assert_eq!(g.get_id(a.position()).unwrap().item()?, 24.0);
        assert_eq!(g.get_id(b.position()).unwrap().item()?, -36.0);
        Ok(())
    }

    #[test]
    fn the_tape_records_again_and_stale_ids_are_refused() -> Result<()> {
        let mut tape = Tape::<f32>::new();
        let root = tape.leaf(Tensor::scalar(2.0)).square()?.var_id();
        tape.backward_and_clear(root)?;
        // The same id names nothing on the new recording.
        assert!(matches!(
            tape.backward_and_clear(root),
            Err(Error::ForeignVar { .. })
        ));
        let other = Tape::<f32>::new();
        let foreign = other.leaf(Tensor::scalar(1.0)).var_id();
        let root = tape.leaf(Tensor::scalar(2.0)).square()?.var_id();
        assert!(matches!(
            tape.backward_and_clear(foreign),
            Err(Error::ForeignVar { .. })
        ));
        assert_eq!(tape.len(), 2, "a refused call leaves the tape alone");
        let g = tape.backward_and_clear(root)?;
        assert_eq!(g.get_id(0).unwrap().item()?, 4.0);
        Ok(())
    }

    #[test]
    fn a_non_scalar_root_is_an_error() -> Result<()> {
        let mut tape = Tape::<f32>::new();
        let root = tape.leaf(Tensor::ones(&[2])).var_id();
        let err = tape.backward_and_clear(root).unwrap_err();
        assert!(matches!(err, Error::NonScalarRoot { .. }), "{err}");
        Ok(())
    }

    /// The nodes are freed during the pass, not after it: a rule low on the
    /// tape sees the nodes above it already gone.
    #[test]
    fn nodes_above_the_running_rule_are_already_freed() -> Result<()> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        /// The identity, reporting how long the tape is when its
        /// recorded rule runs (positions above it included).
        struct Probe(Arc<AtomicUsize>);
        impl Op<f32> for Probe {
            fn name(&self) -> &str {
                "probe"
            }
            fn forward(&self, x: &[&Tensor<f32>]) -> Result<Tensor<f32>> {
                Ok(x[0].clone())
            }
            fn backward<'t>(
                &self,
                cx: &crate::BackwardCtx<'t, f32>,
            ) -> Result<crate::InputGrads<'t, f32>> {
                self.0.store(cx.output.tape().len(), Ordering::SeqCst);
                Ok(crate::InputGrads::from_elem(Some(cx.grad_output), 1))
            }
        }
        let seen = Arc::new(AtomicUsize::new(0));
        let mut tape = Tape::<f32>::new();
        let root = {
            let x = tape.leaf(Tensor::ones(&[4]));
            let p = tape.apply(Probe(seen.clone()), &[x])?; // position 1
            let mut h = p;
            for _ in 0..10 {
                h = h.tanh()?;
            }
            h.sum_all()?.var_id()
        };
        tape.backward_and_clear(root)?;
        // Only the leaf and the probe itself (plus the seed constant its
        // recorded rule adds) were left when its rule ran.
        assert_eq!(seen.load(Ordering::SeqCst), 3);
        Ok(())
    }
}
