//! Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as in
//! `torch.optim.Adam` / `AdamW`.

use indexmap::IndexMap;
use tapegrad_autograd::Gradients;
use tapegrad_tensor::Element;

use super::{gather_grads, state_mismatch, write_param, Optimizer};
use crate::error::Result;
use crate::param::Param;

#[derive(Debug, Clone)]
struct Moments {
    step: u64,
    m: Vec<f64>,
    v: Vec<f64>,
}

/// Adam, or AdamW when built with [`Adam::adamw`]. For each parameter with
/// gradient `g`, at its step `t` (from 1):
/// - Adam's weight decay is L2: `g ← g + λθ`; AdamW's is decoupled:
///   `θ ← θ − αλθ` before the update;
/// - `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`;
/// - `θ ← θ − α · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)`.
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    max_grad_norm: Option<f64>,
    state: IndexMap<String, Moments>,
}

impl Adam {
    /// Adam with learning rate `lr`, β = (0.9, 0.999), ε = 1e-8, no decay.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            max_grad_norm: None,
            state: IndexMap::new(),
        }
    }

    /// AdamW: Adam with decoupled weight decay `weight_decay` (PyTorch's
    /// default is 0.01).
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Adam {
            weight_decay,
            decoupled: true,
            ..Adam::new(lr)
        }
    }

    /// The moment decay rates β₁ and β₂.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// The denominator's ε.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Weight decay `λ` (L2 for Adam, decoupled for AdamW).
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

impl<T: Element> Optimizer<T> for Adam {
    fn step(
        &mut self,
        mut params: Vec<(String, &mut Param<T>)>,
        grads: &Gradients<T>,
    ) -> Result<()> {
        let gs = gather_grads(&params, grads, self.max_grad_norm);
        let (b1, b2, lr, wd) = (self.beta1, self.beta2, self.lr, self.weight_decay);
        for ((name, p), g) in params.iter_mut().zip(gs) {
            let Some(mut g) = g else { continue };
            let mut theta: Vec<f64> = p.value().to_vec().iter().map(|v| v.to_f64()).collect();
            if wd != 0.0 {
                if self.decoupled {
                    theta.iter_mut().for_each(|t| *t *= 1.0 - lr * wd);
                } else {
                    g.iter_mut().zip(&theta).for_each(|(g, t)| *g += wd * t);
                }
            }
            let st = self.state.entry(name.clone()).or_insert_with(|| Moments {
                step: 0,
                m: vec![0.0; g.len()],
                v: vec![0.0; g.len()],
            });
            if st.m.len() != g.len() {
                return Err(state_mismatch(name, st.m.len(), g.len()));
            }
            st.step += 1;
            let bc1 = 1.0 - b1.powi(st.step as i32);
            let bc2 = 1.0 - b2.powi(st.step as i32);
            for i in 0..g.len() {
                st.m[i] = b1 * st.m[i] + (1.0 - b1) * g[i];
                st.v[i] = b2 * st.v[i] + (1.0 - b2) * g[i] * g[i];
                let denom = (st.v[i] / bc2).sqrt() + self.eps;
                theta[i] -= lr * (st.m[i] / bc1) / denom;
            }
            write_param(p, theta)?;
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
