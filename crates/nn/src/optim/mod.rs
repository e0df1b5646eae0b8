//! Optimisers, learning-rate schedules and gradient clipping.
//!
//! An optimiser takes the model's parameters (names and mutable access, from
//! [`Module::parameters_mut`](crate::Module::parameters_mut)) and a
//! [`ParamGrads`] (from [`Module::grads`](crate::Module::grads)), and
//! updates each parameter that has a gradient. Per-parameter state
//! (momentum, Adam's moments) is kept by name, in the parameters' element
//! type, so the same optimiser must be used with the same model.
//!
//! Every optimiser runs the same [`step`](Optimizer::step), written once
//! here:
//! 1. check the hyperparameters (a learning rate that is NaN, infinite or
//!    negative is an error, not a model full of NaN);
//! 2. match each parameter to its gradient by name, checking that the
//!    gradient was computed for this very parameter and has its shape; a
//!    parameter without one is skipped (and listed in the [`StepReport`]),
//!    and gradients that match no parameter at all are an error;
//! 3. apply the [`GradPolicy`]: clip by value, clip by global norm, weight
//!    decay (L2 or decoupled);
//! 4. call the optimiser's own rule, [`Optimizer::update`], once per
//!    parameter.
//!
//! Nothing changes unless every check passes. Each update runs in place,
//! in the parameter's element type, in one fused loop (the policy's scale
//! and decay are folded into it through [`GradPrep`]); large parameters are
//! split across threads in fixed-size chunks, so results do not depend on
//! the thread count. The write goes through [`Param::make_mut_slice`], which
//! is copy-on-write: if a tape still shares the parameter's buffer, the
//! parameter is copied once first. Dropping or
//! [clearing](tapegrad_autograd::Tape::clear) the tape before `step`, as
//! [`Trainer`](crate::Trainer) does, saves that copy.
//!
//! ```
//! use tapegrad_autograd::Tape;
//! use tapegrad_nn::{Linear, Module, Optimizer, Sgd, loss};
//! use tapegrad_tensor::Tensor;
//! let mut model = Linear::<f64>::new(1, 1, 0);
//! let mut opt = Sgd::new(0.1);
//! let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3, 1])?;
//! let y = Tensor::from_vec(vec![2.0, 4.0, 6.0], &[3, 1])?;
//! for _ in 0..200 {
//!     let tape = Tape::new();
//!     let l = loss::mse(model.forward(&tape, tape.constant(x.clone()))?, tape.constant(y.clone()))?;
//!     let grads = model.grads(&tape.backward(l)?);
//!     opt.step(model.parameters_mut(), &grads)?;
//! }
//! assert!((model.parameters()[0].1.value().item()? - 2.0).abs() < 1e-2);
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```
//!
//! A new optimiser implements [`Optimizer::update`] (its rule for one
//! parameter), [`policy`](Optimizer::policy), [`lr`](Optimizer::lr) and
//! [`set_lr`](Optimizer::set_lr); clipping and weight decay come with the
//! shared step.

/// The builder methods that set an optimiser's [`GradPolicy`] (a field
/// named `policy`): one definition for every optimiser.
macro_rules! policy_setters {
    () => {
        /// Clip the gradients' global L2 norm to `max` before each step
        /// (PyTorch's `clip_grad_norm_`). See [`GradPolicy`].
        pub fn max_grad_norm(mut self, max: f64) -> Self {
            self.policy.max_grad_norm = Some(max);
            self
        }

        /// Clamp each gradient element to `[-limit, limit]` before each
        /// step (PyTorch's `clip_grad_value_`). See [`GradPolicy`].
        pub fn clip_value(mut self, limit: f64) -> Self {
            self.policy.clip_value = Some(limit);
            self
        }

        /// L2 weight decay `λ`: adds `λθ` to each gradient (L2
        /// regularisation, the `weight_decay` of PyTorch's SGD and Adam).
        pub fn weight_decay(mut self, wd: f64) -> Self {
            self.policy.weight_decay = wd;
            self.policy.decoupled = false;
            self
        }

        /// Decoupled weight decay `λ`: `θ ← θ·(1 − αλ)` before each update
        /// (AdamW's; SGDW with [`Sgd`](crate::Sgd)).
        pub fn decoupled_weight_decay(mut self, wd: f64) -> Self {
            self.policy.weight_decay = wd;
            self.policy.decoupled = true;
            self
        }

        /// The gradient policy (clipping and weight decay) in force.
        pub fn grad_policy(&self) -> &GradPolicy {
            &self.policy
        }
    };
}
use policy_setters;

mod adam;
mod policy;
mod schedule;
mod sgd;
mod state;

pub use adam::Adam;
pub use policy::{GradPolicy, GradPrep, StepReport};
pub use schedule::LrSchedule;
pub use sgd::Sgd;

use std::borrow::Cow;

use tapegrad_tensor::parallel::{for_each_chunk, map_chunks, use_parallel, CHUNK};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::grads::ParamGrads;
use crate::param::Param;

/// Something that updates parameters from their gradients.
pub trait Optimizer<T: Element = f32>: Send {
    /// One update of every parameter that has a gradient in `grads`; the
    /// shared step described in the [module docs](self). Returns which
    /// parameters were updated and which were skipped.
    ///
    /// # Errors
    /// Before anything changes: if a hyperparameter is invalid (NaN,
    /// infinite, out of range), if `grads` match none of `params` (empty,
    /// or from another model), if a gradient was computed for another
    /// parameter of the same name or has another shape, if a parameter's
    /// shape changed since the optimiser last saw it, or if the same
    /// optimiser stepped parameters of another element type under the same
    /// name before.
    fn step(
        &mut self,
        params: Vec<(String, &mut Param<T>)>,
        grads: &ParamGrads<T>,
    ) -> Result<StepReport> {
        policy::run_step(self, params, grads)
    }

    /// The optimiser's own rule for one parameter: update `theta` (the
    /// parameter named `name`, row-major) from its gradient `grad`, reading
    /// each element's gradient as `prep.grad(g, θ)` and decaying `θ` with
    /// `prep.decay(θ)` first (see [`GradPrep`]).
    ///
    /// # Errors
    /// If the optimiser's state for `name` does not fit (another length or
    /// element type).
    fn update(&mut self, name: &str, theta: &mut [T], grad: &[T], prep: GradPrep<T>) -> Result<()>;

    /// The optimiser's name in error messages (`"Sgd"`, `"Adam"`, ...).
    fn name(&self) -> &str {
        "Optimizer"
    }

    /// Checks the optimiser's own hyperparameters (momentum, betas, ...);
    /// the learning rate and the [`GradPolicy`] are checked by the step.
    ///
    /// # Errors
    /// Naming the setting and its value.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// What the step does to gradients before [`update`](Self::update).
    fn policy(&self) -> &GradPolicy;

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (schedules call this). An invalid rate is
    /// refused by the next [`step`](Self::step).
    fn set_lr(&mut self, lr: f64);
}

/// A tensor's elements in row-major order: borrowed when it is contiguous
/// (as the step makes every gradient), else copied.
pub(crate) fn contiguous<T: Element>(t: &Tensor<T>) -> Cow<'_, [T]> {
    match t.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_vec()),
    }
}

/// `Σ x²` in `f64`. Partial sums over fixed [`CHUNK`]s, each with eight
/// running sums (so the adds overlap and vectorise), are added in chunk
/// order: the same result serially and on any number of threads.
pub(crate) fn sum_sq<T: Element>(xs: &[T]) -> f64 {
    fn chunk<T: Element>(xs: &[T]) -> f64 {
        let mut acc = [0.0f64; 8];
        let mut blocks = xs.chunks_exact(8);
        for b in &mut blocks {
            for (a, &x) in acc.iter_mut().zip(b) {
                let x = x.to_f64();
                *a += x * x;
            }
        }
        let tail: f64 = blocks.remainder().iter().map(|&x| x.to_f64().powi(2)).sum();
        acc.iter().sum::<f64>() + tail
    }
    let piece = |c: usize| chunk(&xs[c * CHUNK..xs.len().min((c + 1) * CHUNK)]);
    map_chunks(xs.len().div_ceil(CHUNK), use_parallel(xs.len()), piece)
        .iter()
        .sum()
}

/// Runs a fused update `f(θ, g, state)` over a parameter `theta`, its
/// gradient `g` and `K` state buffers of the same length. Large parameters
/// (see [`use_parallel`]) are cut into [`CHUNK`]-element pieces, the same
/// pieces of every buffer, updated on the thread pool; the update of an
/// element depends only on that element, so the result is the same either
/// way.
pub(crate) fn for_each_piece<T: Element, const K: usize>(
    theta: &mut [T],
    g: &[T],
    state: [&mut [T]; K],
    f: impl Fn(&mut [T], &[T], [&mut [T]; K]) + Sync,
) {
    debug_assert!(g.len() == theta.len() && state.iter().all(|s| s.len() == theta.len()));
    if !use_parallel(theta.len()) {
        f(theta, g, state);
        return;
    }
    let mut pieces = Vec::with_capacity(theta.len().div_ceil(CHUNK));
    let (mut theta, mut g, mut state) = (theta, g, state);
    while !theta.is_empty() {
        let k = CHUNK.min(theta.len());
        let (t0, t1) = std::mem::take(&mut theta).split_at_mut(k);
        let (g0, g1) = g.split_at(k);
        let s0 = state.each_mut().map(|s| {
            let (a, b) = std::mem::take(s).split_at_mut(k);
            *s = b;
            a
        });
        pieces.push((t0, g0, s0));
        (theta, g) = (t1, g1);
    }
    // One piece per task, on the tensor kernels' threads.
    for_each_chunk(&mut pieces, 1, |_, one| {
        for (t, g, s) in one.iter_mut() {
            f(t, g, s.each_mut().map(|x| &mut **x));
        }
    });
}

pub(crate) fn state_mismatch(name: &str, had: usize, now: usize) -> Error {
    Error::invalid(
        "Optimizer::step",
        format!("parameter {name:?} had {had} elements in the optimiser state but now has {now}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimisers_stay_send_sync_clone_debug() {
        // Their state is type-erased now; the auto traits must survive it.
        fn check<O: Send + Sync + Clone + std::fmt::Debug>() {}
        check::<Sgd>();
        check::<Adam>();
    }

    #[test]
    fn sum_sq_matches_a_plain_sum_at_every_size() {
        for n in [0, 1, 7, 8, 9, CHUNK - 1, CHUNK + 3, 3 * CHUNK + 5] {
            let xs: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 0.25).collect();
            let want: f64 = xs.iter().map(|&x| (x as f64) * (x as f64)).sum();
            // Every term is a multiple of 1/16 well under 2^40: sums are exact.
            assert_eq!(sum_sq(&xs), want, "n = {n}");
        }
    }

    #[test]
    fn pieces_cover_every_element_once_with_matching_state() {
        for n in [0, 5, CHUNK, 2 * CHUNK + 17, (1 << 15) + 1] {
            let mut theta: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let g: Vec<f64> = (0..n).map(|i| 2.0 * i as f64).collect();
            let mut m = vec![0.0f64; n];
            for_each_piece(&mut theta, &g, [&mut m[..]], |t, g, [m]| {
                for ((t, &g), m) in t.iter_mut().zip(g).zip(m.iter_mut()) {
                    assert_eq!(g, 2.0 * *t, "pieces line up");
                    *m += 1.0;
                    *t = -*t;
                }
            });
            assert!(m.iter().all(|&c| c == 1.0), "n = {n}");
            assert!(theta.iter().enumerate().all(|(i, &t)| t == -(i as f64)));
        }
    }
}
