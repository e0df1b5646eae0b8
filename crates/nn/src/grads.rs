//! [`ParamGrads`]: one gradient per parameter, by name, as a value.
//!
//! This is what travels from a backward pass to an optimiser. It is an
//! ordinary value, detached from any tape: read it, print it, scale or clip
//! it, add the next micro-batch's gradients to it, send it to other
//! processes, and then hand it to [`Optimizer::step`](crate::Optimizer::step).
//! Running the model again meanwhile, on any tape, cannot change it.
//!
//! ```
//! use tapegrad_autograd::Tape;
//! use tapegrad_nn::{loss, Linear, Module, Optimizer, Sgd};
//! use tapegrad_tensor::Tensor;
//! let mut model = Linear::<f64>::new(2, 1, 0);
//! let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let y = Tensor::from_vec(vec![1.0, 2.0], &[2, 1])?;
//!
//! let tape = Tape::new();
//! let l = loss::mse(model.forward(&tape, tape.constant(x.clone()))?, tape.constant(y))?;
//! let mut grads = model.grads(&tape.backward(l)?);
//! assert_eq!(grads.names().collect::<Vec<_>>(), ["weight", "bias"]);
//!
//! let norm = grads.clip_norm(0.5)?;            // returns the norm before clipping
//! assert!(grads.global_norm() <= 0.5 + 1e-9 && norm > 0.0);
//! let _ = tapegrad_nn::train::predict(&mut model, &x)?; // another tape: no effect
//! let report = Sgd::new(0.1).step(model.parameters_mut(), &grads)?;
//! assert_eq!(report.updated, ["weight", "bias"]);
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```

use std::fmt;

use indexmap::IndexMap;
use tapegrad_autograd::Gradients;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::optim::{contiguous, sum_sq};
use crate::param::{Param, ParamId};

/// One parameter's gradient and, when it came from a backward pass, the
/// parameter it was computed for.
#[derive(Clone, Debug)]
struct Entry<T: Element> {
    owner: Option<ParamId>,
    grad: Tensor<T>,
}

/// Gradients by parameter name, in the model's parameter order.
///
/// Each gradient collected by [`Module::grads`](crate::Module::grads)
/// remembers the [`ParamId`] it belongs to, and an optimiser refuses to
/// apply it to any other parameter (gradients of one model instance cannot
/// step another by accident). Gradients [`insert`](Self::insert)ed by hand
/// carry no id and match by name alone.
#[derive(Clone, Debug)]
pub struct ParamGrads<T: Element = f32> {
    entries: IndexMap<String, Entry<T>>,
}

impl<T: Element> Default for ParamGrads<T> {
    fn default() -> Self {
        ParamGrads {
            entries: IndexMap::new(),
        }
    }
}

impl<T: Element> ParamGrads<T> {
    /// No gradients.
    pub fn new() -> Self {
        Self::default()
    }

    /// The gradients in `grads` of the parameters `params` (name and
    /// parameter, as [`Module::parameters`](crate::Module::parameters) lists
    /// them). A parameter the root does not depend on gets no entry.
    pub fn collect(params: &[(String, &Param<T>)], grads: &Gradients<T>) -> Self {
        let entries = params
            .iter()
            .filter_map(|(name, p)| {
                let grad = p.grad(grads)?;
                Some((
                    name.clone(),
                    Entry {
                        owner: Some(p.id()),
                        grad,
                    },
                ))
            })
            .collect();
        ParamGrads { entries }
    }

    /// Sets the gradient of `name` by hand (no owner: it matches whichever
    /// parameter has that name), returning the one it replaces.
    pub fn insert(&mut self, name: impl Into<String>, grad: Tensor<T>) -> Option<Tensor<T>> {
        let old = self
            .entries
            .insert(name.into(), Entry { owner: None, grad });
        old.map(|e| e.grad)
    }

    /// The gradient of `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.entries.get(name).map(|e| &e.grad)
    }

    /// The gradient of `name`, to change in place (an all-reduce writes
    /// here). Keep its shape: a step checks it against the parameter's.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        self.entries.get_mut(name).map(|e| &mut e.grad)
    }

    /// The parameter the gradient of `name` was computed for (`None` for
    /// one set by hand).
    pub fn owner(&self, name: &str) -> Option<ParamId> {
        self.entries.get(name).and_then(|e| e.owner)
    }

    /// Removes the gradient of `name` (its parameter is then skipped by a
    /// step, as a frozen one).
    pub fn remove(&mut self, name: &str) -> Option<Tensor<T>> {
        self.entries.shift_remove(name).map(|e| e.grad)
    }

    /// Keeps only the gradients for which `keep(name, grad)` is true
    /// (freezing a part of the model: `grads.retain(|n, _| n.starts_with("head."))`).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Tensor<T>) -> bool) {
        self.entries.retain(|n, e| keep(n, &e.grad));
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// `(name, gradient)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<T>)> {
        self.entries.iter().map(|(n, e)| (n.as_str(), &e.grad))
    }

    /// `(name, gradient)` pairs to change in place, in order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Tensor<T>)> {
        self.entries
            .iter_mut()
            .map(|(n, e)| (n.as_str(), &mut e.grad))
    }

    /// Number of gradients.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of gradient elements.
    pub fn numel(&self) -> usize {
        self.entries.values().map(|e| e.grad.numel()).sum()
    }

    /// The global L2 norm `√(Σ_p Σ_i g_pi²)`, accumulated in `f64`.
    pub fn global_norm(&self) -> f64 {
        self.entries
            .values()
            .map(|e| sum_sq(&contiguous(&e.grad)))
            .sum::<f64>()
            .sqrt()
    }

    /// Multiplies every gradient by `factor` (e.g. `1 / k` after adding up
    /// `k` micro-batches).
    ///
    /// # Errors
    /// If `factor` is not finite.
    pub fn scale(&mut self, factor: f64) -> Result<()> {
        if !factor.is_finite() {
            return Err(Error::invalid(
                "ParamGrads::scale",
                format!("the factor must be finite, got {factor}"),
            ));
        }
        for e in self.entries.values_mut() {
            e.grad = e.grad.mul_scalar(factor)?;
        }
        Ok(())
    }

    /// Scales all gradients together so that their global norm is at most
    /// `max_norm`, by `max_norm / (norm + 1e-6)` when that is below 1 (as
    /// PyTorch's `clip_grad_norm_`). Returns the norm before clipping.
    ///
    /// # Errors
    /// If `max_norm` is not a finite number above 0.
    pub fn clip_norm(&mut self, max_norm: f64) -> Result<f64> {
        check_positive("ParamGrads::clip_norm", "max_norm", max_norm)?;
        let norm = self.global_norm();
        let coef = norm_clip_factor(norm, max_norm);
        if coef < 1.0 {
            for e in self.entries.values_mut() {
                e.grad = e.grad.mul_scalar(coef)?;
            }
        }
        Ok(norm)
    }

    /// Clamps every gradient element to `[-limit, limit]` (PyTorch's
    /// `clip_grad_value_`).
    ///
    /// # Errors
    /// If `limit` is not a finite number above 0.
    pub fn clip_value(&mut self, limit: f64) -> Result<()> {
        check_positive("ParamGrads::clip_value", "limit", limit)?;
        for e in self.entries.values_mut() {
            e.grad = e.grad.clamp(-limit, limit)?;
        }
        Ok(())
    }

    /// Adds `other`'s gradients to these (gradient accumulation over
    /// micro-batches); a name only `other` has is copied in. Everything is
    /// checked before anything changes.
    ///
    /// ```
    /// use tapegrad_nn::ParamGrads;
    /// use tapegrad_tensor::Tensor;
    /// let mut total = ParamGrads::<f64>::new();
    /// for g in [1.0, 3.0] {
    ///     let mut micro = ParamGrads::new();
    ///     micro.insert("w", Tensor::from_vec(vec![g, -g], &[2])?);
    ///     total.accumulate(&micro)?;
    /// }
    /// total.scale(0.5)?; // the mean over the two micro-batches
    /// assert_eq!(total.get("w").unwrap().to_vec(), vec![2.0, -2.0]);
    /// # Ok::<(), tapegrad_nn::Error>(())
    /// ```
    ///
    /// # Errors
    /// If a name has gradients of different shapes, or gradients computed
    /// for two different parameters.
    pub fn accumulate(&mut self, other: &ParamGrads<T>) -> Result<()> {
        for (name, theirs) in &other.entries {
            let Some(mine) = self.entries.get(name) else {
                continue;
            };
            if let (Some(a), Some(b)) = (mine.owner, theirs.owner) {
                if a != b {
                    return Err(Error::invalid(
                        "ParamGrads::accumulate",
                        format!(
                            "gradients of {name:?} belong to two different parameters \
                             ({a} and {b}): were they computed on two copies of the model?"
                        ),
                    ));
                }
            }
            if mine.grad.dims() != theirs.grad.dims() {
                return Err(Error::invalid(
                    "ParamGrads::accumulate",
                    format!(
                        "gradient of {name:?} has shape {:?} here but {:?} in the one added",
                        mine.grad.dims(),
                        theirs.grad.dims()
                    ),
                ));
            }
        }
        for (name, theirs) in &other.entries {
            match self.entries.get_mut(name) {
                Some(mine) => {
                    // Shapes were checked above: the add cannot fail.
                    mine.grad = mine.grad.add(&theirs.grad)?;
                    mine.owner = mine.owner.or(theirs.owner);
                }
                None => {
                    self.entries.insert(name.clone(), theirs.clone());
                }
            }
        }
        Ok(())
    }

    /// The gradients as plain tensors by name (to save with
    /// [`checkpoint`](crate::checkpoint), say).
    pub fn to_tensors(&self) -> IndexMap<String, Tensor<T>> {
        self.iter()
            .map(|(n, g)| (n.to_string(), g.clone()))
            .collect()
    }

    /// The entry of `name` with its owner, for the optimiser's checks.
    pub(crate) fn entry(&self, name: &str) -> Option<(Option<ParamId>, &Tensor<T>)> {
        self.entries.get(name).map(|e| (e.owner, &e.grad))
    }
}

/// Prints one line per gradient: name, shape, L2 norm and largest `|g|`,
/// then the global norm.
///
/// ```text
/// 0.weight  [8, 2]  ‖g‖ 0.4123  max|g| 0.1902
/// 0.bias    [8]     ‖g‖ 0.2011  max|g| 0.1200
/// global norm 0.4587 over 2 gradients (24 elements)
/// ```
impl<T: Element> fmt::Display for ParamGrads<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shapes: Vec<String> = self
            .entries
            .values()
            .map(|e| format!("{:?}", e.grad.dims()))
            .collect();
        let wn = self.entries.keys().map(|n| n.chars().count()).max();
        let ws = shapes.iter().map(String::len).max();
        for ((name, e), shape) in self.entries.iter().zip(&shapes) {
            let g = contiguous(&e.grad);
            let max = g.iter().map(|x| x.to_f64().abs()).fold(0.0, f64::max);
            writeln!(
                f,
                "{name:wn$}  {shape:ws$}  ‖g‖ {:.4e}  max|g| {max:.4e}",
                sum_sq(&g).sqrt(),
                wn = wn.unwrap_or(0),
                ws = ws.unwrap_or(0),
            )?;
        }
        write!(
            f,
            "global norm {:.4e} over {} gradients ({} elements)",
            self.global_norm(),
            self.len(),
            self.numel()
        )
    }
}

/// `max / (norm + 1e-6)` when that is below 1, else 1: the factor that
/// clips a global norm (PyTorch's `clip_grad_norm_`).
pub(crate) fn norm_clip_factor(norm: f64, max: f64) -> f64 {
    (max / (norm + 1e-6)).min(1.0)
}

/// Refuses anything but a finite number above 0.
pub(crate) fn check_positive(op: &'static str, what: &str, x: f64) -> Result<()> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("{what} must be a finite number above 0, got {x}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grads(pairs: &[(&str, &[f64])]) -> ParamGrads<f64> {
        let mut g = ParamGrads::new();
        for (n, v) in pairs {
            g.insert(*n, Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap());
        }
        g
    }

    #[test]
    fn clip_norm_by_hand() {
        // ‖(3, 4)‖ = 5; clipped to 1 the factor is 1 / (5 + 1e-6).
        let mut g = grads(&[("a", &[3.0]), ("b", &[4.0])]);
        assert_eq!(g.clip_norm(1.0).unwrap(), 5.0);
        let f = 1.0 / (5.0 + 1e-6);
        assert_eq!(g.get("a").unwrap().to_vec(), vec![3.0 * f]);
        assert_eq!(g.get("b").unwrap().to_vec(), vec![4.0 * f]);
        // Below the limit nothing changes.
        let mut g = grads(&[("a", &[0.3])]);
        assert_eq!(g.clip_norm(1.0).unwrap(), 0.3);
        assert_eq!(g.get("a").unwrap().to_vec(), vec![0.3]);
        assert!(g.clip_norm(f64::NAN).is_err());
        assert!(g.clip_norm(0.0).is_err());
    }

    #[test]
    fn clip_value_scale_and_accumulate() {
        let mut g = grads(&[("a", &[-3.0, 0.5, 2.0])]);
        g.clip_value(1.0).unwrap();
        assert_eq!(g.get("a").unwrap().to_vec(), vec![-1.0, 0.5, 1.0]);
        g.scale(2.0).unwrap();
        assert_eq!(g.get("a").unwrap().to_vec(), vec![-2.0, 1.0, 2.0]);
        assert!(g.scale(f64::INFINITY).is_err());
        g.accumulate(&grads(&[("a", &[1.0, 1.0, 1.0]), ("b", &[7.0])]))
            .unwrap();
        assert_eq!(g.get("a").unwrap().to_vec(), vec![-1.0, 2.0, 3.0]);
        assert_eq!(g.get("b").unwrap().to_vec(), vec![7.0]);
        let err = g.accumulate(&grads(&[("a", &[1.0])])).unwrap_err();
        assert!(err.to_string().contains("shape [3]"), "{err}");
    }

    #[test]
    fn prints_a_line_per_gradient() {
        let text = grads(&[("w", &[3.0, -4.0]), ("bias", &[0.0])]).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("w     [2]"), "{text}");
        assert!(lines[0].contains("‖g‖ 5.0000e0"), "{text}");
        assert!(lines[2].contains("over 2 gradients (3 elements)"), "{text}");
    }
}
