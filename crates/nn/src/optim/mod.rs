//! Optimisers, learning-rate schedules and gradient clipping.
//!
//! An optimiser takes the model's parameters (names and mutable access, from
//! [`Module::parameters_mut`](crate::Module::parameters_mut)) and the
//! gradients of one backward pass, and updates each parameter that has a
//! gradient. Per-parameter state (momentum, Adam's moments) is kept by name,
//! so the same optimiser must be used with the same model.
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
//!     let grads = tape.backward(l)?;
//!     opt.step(model.parameters_mut(), &grads)?;
//! }
//! assert!((model.parameters()[0].1.value().item()? - 2.0).abs() < 1e-2);
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```

mod adam;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use schedule::LrSchedule;
pub use sgd::Sgd;

use tapegrad_autograd::Gradients;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::param::Param;

/// Something that updates parameters from their gradients.
pub trait Optimizer<T: Element = f32>: Send {
    /// One update of every parameter that has a gradient in `grads`
    /// (parameters the loss does not depend on are left alone).
    ///
    /// # Errors
    /// If a parameter's shape changed since the optimiser last saw it.
    fn step(&mut self, params: Vec<(String, &mut Param<T>)>, grads: &Gradients<T>) -> Result<()>;

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (schedules call this).
    fn set_lr(&mut self, lr: f64);
}

/// The global L2 norm of all the parameters' gradients,
/// `√(Σ_p Σ_i g_pi²)`.
pub fn global_grad_norm<T: Element>(params: &[(String, &Param<T>)], grads: &Gradients<T>) -> f64 {
    params
        .iter()
        .filter_map(|(_, p)| p.grad(grads))
        .map(|g| g.to_vec().iter().map(|v| v.to_f64().powi(2)).sum::<f64>())
        .sum::<f64>()
        .sqrt()
}

/// Each parameter's gradient as `f64`s, scaled so that the global norm is
/// at most `max_norm` (PyTorch's `clip_grad_norm_`: factor
/// `max_norm / (norm + 1e-6)` when that is below 1).
pub(crate) fn gather_grads<T: Element>(
    params: &[(String, &mut Param<T>)],
    grads: &Gradients<T>,
    max_norm: Option<f64>,
) -> Vec<Option<Vec<f64>>> {
    let mut gs: Vec<Option<Vec<f64>>> = params
        .iter()
        .map(|(_, p)| {
            p.grad(grads)
                .map(|g| g.to_vec().into_iter().map(|v| v.to_f64()).collect())
        })
        .collect();
    if let Some(max) = max_norm {
        let norm = gs
            .iter()
            .flatten()
            .map(|g| g.iter().map(|v| v * v).sum::<f64>())
            .sum::<f64>()
            .sqrt();
        let coef = max / (norm + 1e-6);
        if coef < 1.0 {
            for g in gs.iter_mut().flatten() {
                g.iter_mut().for_each(|v| *v *= coef);
            }
        }
    }
    gs
}

/// Writes `new` (as `f64`s) into `p`, keeping its shape.
pub(crate) fn write_param<T: Element>(p: &mut Param<T>, new: Vec<f64>) -> Result<()> {
    let shape = p.shape().to_vec();
    let t = Tensor::from_vec(new.into_iter().map(T::from_f64).collect(), &shape)?;
    p.set_value(t);
    Ok(())
}

pub(crate) fn state_mismatch(name: &str, had: usize, now: usize) -> Error {
    Error::invalid(
        "Optimizer::step",
        format!("parameter {name:?} had {had} elements in the optimiser state but now has {now}"),
    )
}
