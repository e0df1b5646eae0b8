//! Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as in
//! `torch.optim.Adam` / `AdamW`.

use tapegrad_autograd::Gradients;
use tapegrad_tensor::Element;

use super::state::{StateEntry, StateMap};
use super::Optimizer;
use super::{contiguous, for_each_piece, grad_mismatch, grads_and_scale, state_mismatch};
use crate::error::Result;
use crate::param::Param;

/// One parameter's step count and moment estimates, in its element type.
#[derive(Debug, Clone)]
struct Moments<T> {
    step: u64,
    m: Vec<T>,
    v: Vec<T>,
}

impl<T: Element> StateEntry for Moments<T> {}

/// Adam, or AdamW when built with [`Adam::adamw`]. For each parameter with
/// gradient `g`, at its step `t` (from 1):
/// - Adam's weight decay is L2: `g ← g + λθ`; AdamW's is decoupled:
///   `θ ← θ − αλθ` before the update;
/// - `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`;
/// - `θ ← θ − α · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)`.
///
/// The update runs in place in the parameters' element type, with `m` and
/// `v` kept in that type, and is evaluated as PyTorch does:
/// `θ ← θ − (α / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)`, the per-step
/// scalars computed in `f64` and rounded to the element type once.
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    max_grad_norm: Option<f64>,
    /// `Moments<T>` of each parameter.
    state: StateMap,
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
            state: StateMap::default(),
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
        let (gs, scale) = grads_and_scale(&params, grads, self.max_grad_norm);
        let (b1, b2, lr, wd) = (self.beta1, self.beta2, self.lr, self.weight_decay);
        let l2 = wd != 0.0 && !self.decoupled;
        let decoupled = wd != 0.0 && self.decoupled;
        // Scalars in T, once per step.
        let scale = T::from_f64(scale);
        let (wd_t, keep) = (T::from_f64(wd), T::from_f64(1.0 - lr * wd));
        let (b1_t, one_b1) = (T::from_f64(b1), T::from_f64(1.0 - b1));
        let (b2_t, one_b2) = (T::from_f64(b2), T::from_f64(1.0 - b2));
        let eps = T::from_f64(self.eps);
        for ((name, p), g) in params.iter_mut().zip(&gs) {
            let Some(g) = g else { continue };
            let g = contiguous(g);
            let n = p.numel();
            if g.len() != n {
                return Err(grad_mismatch(name, n, g.len()));
            }
            let (st, _) = self.state.get_or_insert_with(name, || Moments {
                step: 0,
                m: vec![T::ZERO; n],
                v: vec![T::ZERO; n],
            })?;
            if st.m.len() != n {
                return Err(state_mismatch(name, st.m.len(), n));
            }
            st.step += 1;
            let bc1 = 1.0 - b1.powi(st.step as i32);
            let bc2 = 1.0 - b2.powi(st.step as i32);
            let step_size = T::from_f64(lr / bc1);
            let bc2_sqrt = T::from_f64(bc2.sqrt());
            let state = [&mut st.m[..], &mut st.v[..]];
            // A `move` closure that copies its scalars into locals: see Sgd.
            for_each_piece(p.make_mut_slice(), &g, state, move |th, gp, [mp, vp]| {
                let (scale, keep, wd_t, eps) = (scale, keep, wd_t, eps);
                let (b1_t, one_b1, b2_t, one_b2) = (b1_t, one_b1, b2_t, one_b2);
                let (step_size, bc2_sqrt, decoupled, l2) = (step_size, bc2_sqrt, decoupled, l2);
                let it = th.iter_mut().zip(gp).zip(mp.iter_mut().zip(vp.iter_mut()));
                for ((t, &g), (m, v)) in it {
                    let mut g = g * scale;
                    if decoupled {
                        *t *= keep;
                    } else if l2 {
                        g += wd_t * *t;
                    }
                    *m = b1_t * *m + one_b1 * g;
                    *v = b2_t * *v + one_b2 * g * g;
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *t -= step_size * (*m / denom);
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
