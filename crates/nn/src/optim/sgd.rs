//! Stochastic gradient descent, with optional momentum, Nesterov momentum
//! and L2 weight decay (PyTorch's `torch.optim.SGD` without dampening).

use tapegrad_tensor::Element;

use super::state::StateMap;
use super::{for_each_piece, state_mismatch, GradPolicy, GradPrep, Optimizer};
use crate::error::{Error, Result};

/// SGD. With default options it is exactly the article's rule
/// `θ ← θ − α·∇L`. With momentum `μ`, for each gradient `g` (after the
/// shared clipping and weight decay of [`GradPolicy`]):
/// - `b ← μb + g` (`b = g` on the first step), then the step direction is
///   `b`, or `g + μb` with Nesterov;
/// - `θ ← θ − α·direction`.
///
/// `Sgd::new(lr).weight_decay(λ)` is PyTorch's `SGD(weight_decay=λ)` (L2:
/// `g ← g + λθ`). The update runs in place in the parameters' element type
/// (as PyTorch does); the momentum buffers `b` are kept in that type too.
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: f64,
    momentum: f64,
    nesterov: bool,
    policy: GradPolicy,
    /// Momentum buffer `b` of each parameter, a `Vec<T>`.
    buffers: StateMap,
}

impl Sgd {
    /// Plain gradient descent with learning rate `lr` (checked by each
    /// step: finite and at least 0).
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
            policy: GradPolicy::default(),
            buffers: StateMap::default(),
        }
    }

    /// Momentum factor `μ` (e.g. 0.9; finite and at least 0).
    pub fn momentum(mut self, mu: f64) -> Self {
        self.momentum = mu;
        self
    }

    /// Use Nesterov momentum (needs a momentum above 0).
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }

    super::policy_setters!();
}

impl<T: Element> Optimizer<T> for Sgd {
    fn update(&mut self, name: &str, theta: &mut [T], g: &[T], prep: GradPrep<T>) -> Result<()> {
        let n = theta.len();
        let lr = T::from_f64(self.lr);
        let (mu, nesterov) = (T::from_f64(self.momentum), self.nesterov);
        // The kernels below are `move` closures that copy what they use
        // into locals first: read through a captured reference, each
        // scalar was reloaded per element (the stores to θ might alias
        // it), which kept the loops from vectorising.
        if self.momentum == 0.0 {
            for_each_piece(theta, g, [], move |th, gp, []| {
                let (prep, lr) = (prep, lr);
                for (t, &g) in th.iter_mut().zip(gp) {
                    let d = prep.grad(g, *t);
                    *t = prep.decay(*t) - lr * d;
                }
            });
            return Ok(());
        }
        let (buf, first) = self.buffers.get_or_insert_with(name, || vec![T::ZERO; n])?;
        if buf.len() != n {
            return Err(state_mismatch(name, buf.len(), n));
        }
        for_each_piece(theta, g, [&mut buf[..]], move |th, gp, [bp]| {
            let (prep, lr, mu, first, nesterov) = (prep, lr, mu, first, nesterov);
            for ((t, &g), b) in th.iter_mut().zip(gp).zip(bp.iter_mut()) {
                let d = prep.grad(g, *t);
                *b = if first { d } else { mu * *b + d };
                *t = prep.decay(*t) - lr * if nesterov { d + mu * *b } else { *b };
            }
        });
        Ok(())
    }

    fn name(&self) -> &str {
        "Sgd"
    }

    fn check(&self) -> Result<()> {
        if !(self.momentum.is_finite() && self.momentum >= 0.0) {
            return Err(Error::invalid(
                "Optimizer::step",
                format!(
                    "Sgd: momentum must be a finite number ≥ 0, got {}",
                    self.momentum
                ),
            ));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::invalid(
                "Optimizer::step",
                "Sgd: Nesterov momentum needs a momentum above 0",
            ));
        }
        Ok(())
    }

    fn policy(&self) -> &GradPolicy {
        &self.policy
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}
