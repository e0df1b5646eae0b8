//! Stochastic gradient descent, with optional momentum, Nesterov momentum
//! and L2 weight decay (PyTorch's `torch.optim.SGD` without dampening).

use indexmap::IndexMap;
use tapegrad_autograd::Gradients;
use tapegrad_tensor::Element;

use super::{gather_grads, state_mismatch, write_param, Optimizer};
use crate::error::Result;
use crate::param::Param;

/// SGD. With default options it is exactly the article's rule
/// `θ ← θ − α·∇L`. Options, applied in this order to each gradient `g`:
/// - weight decay `λ` (L2 regularisation): `g ← g + λθ`;
/// - momentum `μ`: `b ← μb + g` (`b = g` on the first step), then the step
///   direction is `b`, or `g + μb` with Nesterov;
/// - `θ ← θ − α·direction`.
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    max_grad_norm: Option<f64>,
    buffers: IndexMap<String, Vec<f64>>,
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
            buffers: IndexMap::new(),
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
        let gs = gather_grads(&params, grads, self.max_grad_norm);
        for ((name, p), g) in params.iter_mut().zip(gs) {
            let Some(mut g) = g else { continue };
            let theta: Vec<f64> = p.value().to_vec().iter().map(|v| v.to_f64()).collect();
            if self.weight_decay != 0.0 {
                g.iter_mut()
                    .zip(&theta)
                    .for_each(|(g, t)| *g += self.weight_decay * t);
            }
            let dir = if self.momentum != 0.0 {
                let mu = self.momentum;
                let buf = match self.buffers.get_mut(name.as_str()) {
                    Some(b) => {
                        if b.len() != g.len() {
                            return Err(state_mismatch(name, b.len(), g.len()));
                        }
                        b.iter_mut().zip(&g).for_each(|(b, g)| *b = mu * *b + g);
                        b
                    }
                    None => self.buffers.entry(name.clone()).or_insert(g.clone()),
                };
                if self.nesterov {
                    g.iter().zip(buf.iter()).map(|(g, b)| g + mu * b).collect()
                } else {
                    buf.clone()
                }
            } else {
                g
            };
            let new = theta
                .iter()
                .zip(&dir)
                .map(|(t, d)| t - self.lr * d)
                .collect();
            write_param(p, new)?;
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
