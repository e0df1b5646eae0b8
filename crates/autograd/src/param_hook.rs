//! A backward pass that hands out each parameter's gradient as soon as it
//! is final, while the rest of the pass still runs.
//!
//! The reverse sweep visits tape positions from the root down to 0. Every
//! op that uses a node sits after it on the tape, so once the sweep reaches
//! a node, nothing can add to its gradient any more. A parameter recorded
//! several times (with [`Tape::param_with_key`]) is final once the sweep
//! reaches its first recording. Data-parallel training starts sending a
//! layer's gradients to the other processes at that moment, overlapping the
//! communication with the backward pass of the layers before it.

use std::collections::HashMap;

use tapegrad_tensor::{Element, Tensor};

use crate::backward::Gradients;
use crate::error::Result;
use crate::tape::Tape;
use crate::var::Var;

impl<T: Element> Tape<T> {
    /// [`backward`](Self::backward), calling `hook(key, gradient)` for each
    /// keyed parameter (see [`Tape::param_with_key`]) the moment its
    /// gradient is final: the sum over every node recorded for it, as
    /// [`Gradients::param`] would return it. Parameters come in reverse
    /// order of their first recording (the last layer first), each once;
    /// a parameter the root does not depend on is skipped.
    ///
    /// The hook runs inside the pass, so it must not record on this tape
    /// (that panics: the tape is borrowed).
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let w1 = tape.param_with_key("w1", Tensor::scalar(2.0), 1)?;
    /// let w2 = tape.param_with_key("w2", Tensor::scalar(3.0), 2)?;
    /// let y = w1.mul(w2)?.mul(w2)?;            // w1·w2²
    /// let mut seen = Vec::new();
    /// let grads = tape.backward_with_param_hook(y, |key, g| seen.push((key, g.item().unwrap())))?;
    /// assert_eq!(seen, [(2, 12.0), (1, 9.0)]);   // w2 first: recorded last
    /// assert_eq!(grads.param(1).unwrap().item()?, 9.0);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`backward`](Self::backward). The hook may already have run for
    /// some parameters when a later rule fails.
    pub fn backward_with_param_hook(
        &self,
        root: Var<'_, T>,
        mut hook: impl FnMut(u64, Tensor<T>),
    ) -> Result<Gradients<T>> {
        let seed = self.scalar_seed(root)?;
        // Every position of each key, and the key of each first position.
        let mut positions: HashMap<u64, Vec<usize>> = HashMap::new();
        for (pos, key) in self.param_keys() {
            positions.entry(key).or_default().push(pos);
        }
        let first: HashMap<usize, u64> =
            positions.iter().map(|(&key, pos)| (pos[0], key)).collect();
        let mut reached = |i: usize, final_grads: &[Option<Tensor<T>>]| {
            let Some(&key) = first.get(&i) else { return };
            let mut total: Option<Tensor<T>> = None;
            for &p in &positions[&key] {
                let Some(g) = final_grads.get(p - i).and_then(Option::as_ref) else {
                    continue;
                };
                total = Some(match total {
                    None => g.clone(),
                    // One key has one shape (`param_with_key` checks it).
                    Some(t) => t.add(g).unwrap_or(t),
                });
            }
            if let Some(g) = total {
                hook(key, g);
            }
        };
        self.backward_impl(root, seed, None, Some(&mut reached))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hook's gradients equal `Gradients::param`'s, each key comes once,
    /// and each arrives before the sweep reaches any earlier node: the hook
    /// for the last layer runs while the first layer's rule has not run.
    #[test]
    fn hook_gives_final_gradients_in_reverse_order() -> Result<()> {
        let tape = Tape::<f64>::new();
        let x = tape.constant(Tensor::from_vec(vec![1.0, -2.0, 0.5, 3.0], &[2, 2])?);
        let w1 = tape.param_with_key(
            "w1",
            Tensor::from_vec(vec![0.3, -0.1, 0.7, 0.2], &[2, 2])?,
            10,
        )?;
        let h = x.matmul(w1)?.tanh()?;
        let w2 = tape.param_with_key("w2", Tensor::from_vec(vec![1.5, -0.4], &[2, 1])?, 20)?;
        let shared = tape.param_with_key("w1", w1.value(), 10)?; // w1 again, later
        let y = h.matmul(w2)?.sum_all()?.add(shared.sum_all()?)?;
        let mut seen = Vec::new();
        let grads = tape.backward_with_param_hook(y, |k, g| seen.push((k, g)))?;
        let keys: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(keys, [20, 10]);
        for (k, g) in &seen {
            assert_eq!(g.to_vec(), grads.param(*k).unwrap().to_vec());
        }
        Ok(())
    }

    /// A parameter the root does not use gets no call.
    #[test]
    fn unused_parameter_is_skipped() -> Result<()> {
        let tape = Tape::<f32>::new();
        let a = tape.param_with_key("a", Tensor::scalar(2.0), 1)?;
        let _unused = tape.param_with_key("b", Tensor::scalar(2.0), 2)?;
        let y = a.mul(a)?;
        let mut seen = Vec::new();
        tape.backward_with_param_hook(y, |k, g| seen.push((k, g.item().unwrap())))?;
        assert_eq!(seen, [(1, 4.0)]);
        Ok(())
    }
}
