//! Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as in
//! `torch.optim.Adam` / `AdamW`.

use tapegrad_tensor::Element;

use super::state::{StateEntry, StateMap};
use super::{for_each_piece, state_mismatch, GradPolicy, GradPrep, Optimizer};
use crate::error::{Error, Result};

/// One parameter's step count and moment estimates, in its element type.
#[derive(Debug, Clone)]
struct Moments<T> {
    step: u64,
    m: Vec<T>,
    v: Vec<T>,
}

impl<T: Element> StateEntry for Moments<T> {}

/// Adam, or AdamW when built with [`Adam::adamw`]. For each parameter with
/// gradient `g` (after the shared clipping and weight decay of
/// [`GradPolicy`]: Adam's `weight_decay` is L2, `g ← g + λθ`; AdamW's is
/// decoupled, `θ ← θ − αλθ` before the update), at its step `t` (from 1):
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
    policy: GradPolicy,
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
            policy: GradPolicy::default(),
            state: StateMap::default(),
        }
    }

    /// AdamW: Adam with decoupled weight decay `weight_decay` (PyTorch's
    /// default is 0.01).
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Adam::new(lr).decoupled_weight_decay(weight_decay)
    }

    /// The moment decay rates β₁ and β₂ (each in [0, 1)).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// The denominator's ε (finite and at least 0).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    super::policy_setters!();
}

impl<T: Element> Optimizer<T> for Adam {
    fn update(&mut self, name: &str, theta: &mut [T], g: &[T], prep: GradPrep<T>) -> Result<()> {
        let n = theta.len();
        let (b1, b2, lr) = (self.beta1, self.beta2, self.lr);
        // Scalars in T, once per step.
        let (b1_t, one_b1) = (T::from_f64(b1), T::from_f64(1.0 - b1));
        let (b2_t, one_b2) = (T::from_f64(b2), T::from_f64(1.0 - b2));
        let eps = T::from_f64(self.eps);
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
        for_each_piece(theta, g, state, move |th, gp, [mp, vp]| {
            let (prep, eps, step_size, bc2_sqrt) = (prep, eps, step_size, bc2_sqrt);
            let (b1_t, one_b1, b2_t, one_b2) = (b1_t, one_b1, b2_t, one_b2);
            let it = th.iter_mut().zip(gp).zip(mp.iter_mut().zip(vp.iter_mut()));
            for ((t, &g), (m, v)) in it {
                let g = prep.grad(g, *t);
                *t = prep.decay(*t);
                *m = b1_t * *m + one_b1 * g;
                *v = b2_t * *v + one_b2 * g * g;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *t -= step_size * (*m / denom);
            }
        });
        Ok(())
    }

    fn name(&self) -> &str {
        if self.policy.decoupled {
            "AdamW"
        } else {
            "Adam"
        }
    }

    fn check(&self) -> Result<()> {
        let name = <Self as Optimizer<T>>::name(self);
        for (what, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::invalid(
                    "Optimizer::step",
                    format!("{name}: {what} must be in [0, 1), got {b}"),
                ));
            }
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(Error::invalid(
                "Optimizer::step",
                format!("{name}: eps must be a finite number ≥ 0, got {}", self.eps),
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
