//! Activations, as functions on [`Var`]s and as the [`Activation`] module.
//!
//! All are autograd ops whose backward rules are recorded from
//! differentiable ops, so they differentiate to any order. GELU uses the
//! tanh approximation, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, which
//! is PyTorch's `gelu(approximate="tanh")`; it differs from the exact erf
//! form (`Var::gelu`, what `TransformerBlock` uses) by less than 5e-4.

use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::Element;

use crate::module::Module;

/// `1 / (1 + e^-x)`.
///
/// # Errors
/// Only in anomaly mode.
pub fn sigmoid<T: Element>(x: Var<'_, T>) -> TapeResult<Var<'_, T>> {
    x.sigmoid()
}

/// `tanh x`.
///
/// # Errors
/// Only in anomaly mode.
pub fn tanh<T: Element>(x: Var<'_, T>) -> TapeResult<Var<'_, T>> {
    x.tanh()
}

/// `max(x, 0)`.
///
/// # Errors
/// Only in anomaly mode.
pub fn relu<T: Element>(x: Var<'_, T>) -> TapeResult<Var<'_, T>> {
    x.relu()
}

/// `x` for `x > 0`, else `slope·x`, written `relu(x) − slope·relu(−x)`.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_tensor::Tensor;
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::from_vec(vec![-2.0, 3.0], &[2])?);
/// let y = tapegrad_nn::activation::leaky_relu(x, 0.1)?;
/// assert_eq!(y.value().to_vec(), vec![-0.2, 3.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// Only in anomaly mode.
pub fn leaky_relu<T: Element>(x: Var<'_, T>, slope: f64) -> TapeResult<Var<'_, T>> {
    let neg = x.neg()?.relu()?.mul_scalar(-slope)?;
    x.relu()?.add(neg)
}

/// GELU, tanh approximation (see the module docs).
///
/// # Errors
/// Only in anomaly mode.
pub fn gelu<T: Element>(x: Var<'_, T>) -> TapeResult<Var<'_, T>> {
    // One fused op (one pass forward, one backward) rather than the eight
    // of the formula: forward and backward of 1M f32 took 0.9 ms against
    // 3.9-4.5 ms for the composition (Zen 4, 2 threads).
    x.gelu_tanh()
}

/// Softmax along `axis`.
///
/// # Errors
/// If the axis is out of range.
pub fn softmax<T: Element>(x: Var<'_, T>, axis: usize) -> TapeResult<Var<'_, T>> {
    x.softmax(axis)
}

/// An activation as a parameter-free module.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `x` unchanged.
    Identity,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear unit.
    Relu,
    /// Leaky ReLU with the given negative slope (PyTorch's default is 0.01).
    LeakyRelu(f64),
    /// GELU (tanh approximation).
    Gelu,
    /// Softmax over the last axis.
    Softmax,
}

impl Activation {
    /// Applies the activation.
    ///
    /// # Errors
    /// Only in anomaly mode (or for softmax of a 0-d value).
    pub fn apply<'t, T: Element>(self, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        match self {
            Activation::Identity => Ok(x),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => tanh(x),
            Activation::Relu => relu(x),
            Activation::LeakyRelu(s) => leaky_relu(x, s),
            Activation::Gelu => gelu(x),
            Activation::Softmax => {
                let r = x.shape().len();
                softmax(x, r.saturating_sub(1))
            }
        }
    }
}

impl<T: Element> Module<T> for Activation {
    fn forward<'t>(&self, _tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        self.apply(x)
    }

    fn describe(&self) -> String {
        match self {
            Activation::Identity => "Identity()".into(),
            Activation::Sigmoid => "Sigmoid()".into(),
            Activation::Tanh => "Tanh()".into(),
            Activation::Relu => "ReLU()".into(),
            Activation::LeakyRelu(s) => format!("LeakyReLU(negative_slope={s})"),
            Activation::Gelu => "GELU(approximate='tanh')".into(),
            Activation::Softmax => "Softmax(dim=-1)".into(),
        }
    }
}
