//! Stochastic gradient descent, with optional momentum, Nesterov momentum
//! and L2 weight decay (PyTorch's `torch.optim.SGD` without dampening).

use tapegrad_autograd::Gradients;
use tapegrad_tensor::Element;

use super::state::StateMap;
use super::Optimizer;
use super::{contiguous, for_each_piece, grad_mismatch, grads_and_scale, state_mismatch};
use crate::error::Result;
use crate::param::Param;

/// SGD. With default options it is exactly the article's rule
/// `θ ← θ − α·∇L`. Options, applied in this order to each gradient `g`:
/// - weight decay `λ` (L2 regularisation): `g ← g + λθ`;
/// - momentum `μ`: `b ← μb + g` (`b = g` on the first step), then the step
///   direction is `b`, or `g + μb` with Nesterov;
/// - `θ ← θ − α·direction`.
///
/// The update runs in place in the parameters' element type (as PyTorch
/// does); the momentum buffers `b` are kept in that type too.
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    max_grad_norm: Option<f64>,
    /// Momentum buffer `b` of each parameter, a `Vec<T>`.
    buffers: StateMap,
}

impl Sgd {
    /// Plain gradient descent with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            max_grad_norm: None,
            buffers: StateMap::default(),
        }
    }

    /// Momentum factor `μ` (e.g. 0.9).
    pub fn momentum(mut self, mu: f64) -> Self {
        self.momentum = mu;
        self
    }

    /// Use Nesterov momentum (needs a non-zero momentum).
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }

    /// L2 weight decay `λ` (adds `λθ` to each gradient).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }

    /// Clip the gradients' global norm to `max` before each step.
    pub fn max_grad_norm(mut self, max: f64) -> Self {
        self.max_grad_norm = Some(max);
        self
    }
}

impl<T: Element> Optimizer<T> for Sgd {
    fn step(
        &mut self,
        mut params: Vec<(String, &mut Param<T>)>,
        grads: &Gradients<T>,
    ) -> Result<()> {
        let (gs, scale) = grads_and_scale(&params, grads, self.max_grad_norm);
        // The scalars in T, once per step (PyTorch's casts of Python floats).
        let scale = T::from_f64(scale);
        let lr = T::from_f64(self.lr);
        let (decay, wd) = (self.weight_decay != 0.0, T::from_f64(self.weight_decay));
        let (mu, nesterov) = (T::from_f64(self.momentum), self.nesterov);
        for ((name, p), g) in params.iter_mut().zip(&gs) {
            let Some(g) = g else { continue };
            let g = contiguous(g);
            let n = p.numel();
            if g.len() != n {
                return Err(grad_mismatch(name, n, g.len()));
            }
            // g ← scale·g (+ λθ): the clipped, decayed gradient.
            let grad = move |g: T, t: T| {
                let g = g * scale;
                if decay {
                    g + wd * t
                } else {
                    g
                }
            };
            // The kernels below are `move` closures that copy what they use
            // into locals first: read through a captured reference, each
            // scalar was reloaded per element (the stores to θ might alias
            // it), which kept the loops from vectorising.
            if self.momentum == 0.0 {
                for_each_piece(p.make_mut_slice(), &g, [], move |th, gp, []| {
                    let (grad, lr) = (grad, lr);
                    for (t, &g) in th.iter_mut().zip(gp) {
                        *t -= lr * grad(g, *t);
                    }
                });
                continue;
            }
            let (buf, first) = self.buffers.get_or_insert_with(name, || vec![T::ZERO; n])?;
            if buf.len() != n {
                return Err(state_mismatch(name, buf.len(), n));
            }
            let state = [&mut buf[..]];
            for_each_piece(p.make_mut_slice(), &g, state, move |th, gp, [bp]| {
                let (grad, lr, mu, first, nesterov) = (grad, lr, mu, first, nesterov);
                for ((t, &g), b) in th.iter_mut().zip(gp).zip(bp.iter_mut()) {
                    let d = grad(g, *t);
                    *b = if first { d } else { mu * *b + d };
                    *t -= lr * if nesterov { d + mu * *b } else { *b };
                }
            });
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}
