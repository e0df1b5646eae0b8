//! Gradient-based attribution: which inputs drove a model's output.
//!
//! A model is any closure `f(tape, x) -> scalar` built from tape ops (for
//! example the logit of the chosen class). Each function here records `f`
//! on fresh tapes and reads `∂f/∂x`:
//!
//! - [`saliency`]: `|∂f/∂x|`, how sensitive the output is to each input;
//! - [`input_x_gradient`]: `x · ∂f/∂x`, the first-order contribution of
//!   each input (exact for a linear model without bias);
//! - [`integrated_gradients`]: `(x − b) · ∫₀¹ ∂f/∂x(b + α(x − b)) dα`, the
//!   gradient averaged along the straight path from a baseline `b` to `x`.
//!   Its attributions add up to `f(x) − f(b)` (*completeness*); the result
//!   reports how far the numerical integral is from that.
//!
//! ```
//! use tapegrad_autograd::explain::{integrated_gradients, model, saliency};
//! use tapegrad_tensor::Tensor;
//!
//! // f(x) = tanh(w·x) with w = [2, -1, 0]: the third input does not matter.
//! let f = model(|tape, x| {
//!     let w = tape.constant(Tensor::from_vec(vec![2.0, -1.0, 0.0], &[3])?);
//!     x.mul(w)?.sum_all()?.tanh()
//! });
//! let x = Tensor::<f64>::from_vec(vec![0.3, 0.2, 5.0], &[3])?;
//! let s = saliency(&f, &x)?;
//! assert_eq!(s.to_vec()[2], 0.0);
//! let ig = integrated_gradients(&f, &x, &Tensor::zeros(&[3]), 64)?;
//! assert!(ig.relative_gap() < 1e-3, "{}", ig.gap);
//! # Ok::<(), tapegrad_autograd::Error>(())
//! ```

use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::tape::Tape;
use crate::var::Var;

/// Returns `f` unchanged, typed as a model: a closure stored in a `let`
/// needs this (or an explicit `fn`) for Rust to see that it works on every
/// tape lifetime. Closures passed straight to the functions below do not.
///
/// ```
/// use tapegrad_autograd::explain::{model, saliency};
/// use tapegrad_tensor::Tensor;
/// let f = model(|_tape, x| x.square()?.sum_all());
/// let s = saliency(&f, &Tensor::<f64>::from_vec(vec![1.0, -2.0], &[2])?)?;
/// assert_eq!(s.to_vec(), vec![2.0, 4.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
pub fn model<T, F>(f: F) -> F
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    f
}

/// The value `f(x)` and the gradient `∂f/∂x`, from one fresh tape.
///
/// # Errors
/// Whatever `f` returns; [`Error::NonScalarRoot`] if its output is not a
/// single number.
pub fn value_and_grad<T, F>(f: &F, x: &Tensor<T>) -> Result<(T, Tensor<T>)>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    let tape = Tape::<T>::new();
    let xv = tape.leaf_named("x", x.clone());
    let out = f(&tape, xv)?;
    let grads = tape.backward(out)?;
    Ok((out.item()?, grads.get_or_zeros(xv)))
}

/// Saliency: `|∂f/∂x|`, element by element.
///
/// ```
/// use tapegrad_autograd::explain::saliency;
/// use tapegrad_tensor::Tensor;
/// // f(x) = x₀² − 3·x₁ at x = (1, 5): |∂f/∂x| = (2, 3).
/// let x = Tensor::<f64>::from_vec(vec![1.0, 5.0], &[2])?;
/// let s = saliency(
///     &|_tape, x| x.select(0, 0)?.square()?.sub(x.select(0, 1)?.mul_scalar(3.0)?),
///     &x,
/// )?;
/// assert_eq!(s.to_vec(), vec![2.0, 3.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// As [`value_and_grad`].
pub fn saliency<T, F>(f: &F, x: &Tensor<T>) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    Ok(value_and_grad(f, x)?.1.abs()?)
}

/// Input × gradient: `x · ∂f/∂x`, element by element.
///
/// ```
/// use tapegrad_autograd::explain::{input_x_gradient, model};
/// use tapegrad_tensor::Tensor;
/// // f(x) = 2·x₀ − x₁ at (3, 4): contributions (6, −4), which sum to f(x).
/// let f = model(|tape, x| {
///     x.mul(tape.constant(Tensor::from_vec(vec![2.0, -1.0], &[2])?))?.sum_all()
/// });
/// let a = input_x_gradient(&f, &Tensor::<f64>::from_vec(vec![3.0, 4.0], &[2])?)?;
/// assert_eq!(a.to_vec(), vec![6.0, -4.0]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// As [`value_and_grad`].
pub fn input_x_gradient<T, F>(f: &F, x: &Tensor<T>) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    let g = value_and_grad(f, x)?.1;
    Ok(x.mul(&g)?)
}

/// The result of [`integrated_gradients`].
#[derive(Clone, Debug)]
pub struct IntegratedGradients<T: Element> {
    /// One attribution per input element, in `x`'s shape.
    pub attributions: Tensor<T>,
    /// `f(x)`.
    pub output: f64,
    /// `f(baseline)`.
    pub baseline_output: f64,
    /// The completeness gap `Σ attributions − (f(x) − f(baseline))`: zero for
    /// the exact integral; the error of the trapezoid rule otherwise.
    pub gap: f64,
    /// Number of intervals used on the path.
    pub steps: usize,
}

impl<T: Element> IntegratedGradients<T> {
    /// `|gap| / max(|f(x) − f(baseline)|, 1e-12)`.
    ///
    /// For a model that is smooth along the path (tanh, sigmoid, softmax),
    /// the trapezoid rule's error falls as `1/steps²`: a few dozen steps
    /// usually give a relative gap below `1e-3`, which is the tolerance the
    /// tests use. With ReLU kinks on the path it falls only as `1/steps`;
    /// use a few hundred steps, or check the gap before trusting small
    /// attributions. In `f32`, rounding limits the gap to about `1e-5`.
    pub fn relative_gap(&self) -> f64 {
        self.gap.abs() / (self.output - self.baseline_output).abs().max(1e-12)
    }

    /// Whether completeness holds within `rtol` (relative to the output
    /// difference) or `atol` (absolute), whichever is larger.
    pub fn is_complete(&self, rtol: f64, atol: f64) -> bool {
        self.gap.abs() <= atol.max(rtol * (self.output - self.baseline_output).abs())
    }
}

/// Integrated gradients from `baseline` to `x` with `steps` intervals
/// (`steps + 1` gradient evaluations, trapezoid rule):
///
/// `IGᵢ = (xᵢ − bᵢ) · Σₖ wₖ ∂f/∂xᵢ(b + αₖ(x − b))`, `αₖ = k/steps`,
/// `wₖ = 1/steps` except `1/(2·steps)` at both ends.
///
/// The result carries the completeness gap (see
/// [`IntegratedGradients::relative_gap`] for what to expect). For a linear
/// model the gradient is constant on the path and the result is exactly
/// `(x − b)·w`.
///
/// # Errors
/// [`Error::InvalidArgument`] if `steps` is 0 or the shapes of `x` and
/// `baseline` differ; otherwise as [`value_and_grad`].
pub fn integrated_gradients<T, F>(
    f: &F,
    x: &Tensor<T>,
    baseline: &Tensor<T>,
    steps: usize,
) -> Result<IntegratedGradients<T>>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Result<Var<'t, T>>,
{
    if steps == 0 {
        return Err(Error::InvalidArgument {
            op: "integrated_gradients".into(),
            msg: "steps must be at least 1".into(),
        });
    }
    if x.dims() != baseline.dims() {
        return Err(Error::InvalidArgument {
            op: "integrated_gradients".into(),
            msg: format!(
                "x has shape {:?} but the baseline has shape {:?}",
                x.dims(),
                baseline.dims()
            ),
        });
    }
    let xs: Vec<f64> = x.to_vec().into_iter().map(T::to_f64).collect();
    let bs: Vec<f64> = baseline.to_vec().into_iter().map(T::to_f64).collect();
    let mut avg = vec![0.0f64; xs.len()];
    let (mut output, mut baseline_output) = (0.0, 0.0);
    for k in 0..=steps {
        let alpha = k as f64 / steps as f64;
        let point: Vec<T> = xs
            .iter()
            .zip(&bs)
            .map(|(&xi, &bi)| T::from_f64(bi + alpha * (xi - bi)))
            .collect();
        let point = Tensor::from_vec(point, x.dims())?;
        let (value, grad) = value_and_grad(f, &point)?;
        if k == 0 {
            baseline_output = value.to_f64();
        }
        if k == steps {
            output = value.to_f64();
        }
        let w = if k == 0 || k == steps { 0.5 } else { 1.0 } / steps as f64;
        for (a, g) in avg.iter_mut().zip(grad.to_vec()) {
            *a += w * g.to_f64();
        }
    }
    let attr: Vec<f64> = avg
        .iter()
        .zip(xs.iter().zip(&bs))
        .map(|(a, (xi, bi))| (xi - bi) * a)
        .collect();
    let gap = attr.iter().sum::<f64>() - (output - baseline_output);
    Ok(IntegratedGradients {
        attributions: Tensor::from_vec(attr.into_iter().map(T::from_f64).collect(), x.dims())?,
        output,
        baseline_output,
        gap,
        steps,
    })
}

/// Input positions (flat indices) ordered by `|attribution|`, largest
/// first, with their attributions; ties keep index order.
///
/// ```
/// use tapegrad_autograd::explain::rank_features;
/// use tapegrad_tensor::Tensor;
/// let a = Tensor::<f64>::from_vec(vec![0.1, -3.0, 2.0], &[3])?;
/// assert_eq!(rank_features(&a), vec![(1, -3.0), (2, 2.0), (0, 0.1)]);
/// # Ok::<(), tapegrad_tensor::Error>(())
/// ```
pub fn rank_features<T: Element>(attributions: &Tensor<T>) -> Vec<(usize, T)> {
    let mut v: Vec<(usize, T)> = attributions.to_vec().into_iter().enumerate().collect();
    v.sort_by(|a, b| {
        b.1.to_f64()
            .abs()
            .total_cmp(&a.1.to_f64().abs())
            .then(a.0.cmp(&b.0))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear<'t>(tape: &'t Tape<f64>, x: Var<'t, f64>) -> Result<Var<'t, f64>> {
        let w = tape.constant(Tensor::from_vec(vec![0.5, -2.0, 3.0, 0.0], &[4])?);
        x.mul(w)?.sum_all()?.add_scalar(0.7)
    }

    #[test]
    fn ig_is_exact_on_a_linear_model() {
        let x = Tensor::from_vec(vec![1.0, 2.0, -1.0, 4.0], &[4]).unwrap();
        let b = Tensor::from_vec(vec![0.5, 0.0, 1.0, -1.0], &[4]).unwrap();
        let ig = integrated_gradients(&linear, &x, &b, 1).unwrap();
        // (x − b)·w = (0.5·0.5, 2·−2, −2·3, 5·0)
        let want = [0.25, -4.0, -6.0, 0.0];
        for (a, w) in ig.attributions.to_vec().iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{a} vs {w}");
        }
        assert!(ig.gap.abs() < 1e-12);
        assert!(ig.is_complete(0.0, 1e-12));
    }

    fn tanh_model<'t>(tape: &'t Tape<f64>, x: Var<'t, f64>) -> Result<Var<'t, f64>> {
        // A 3-4-1 tanh network with fixed weights.
        let w1 = tape.constant(Tensor::uniform_seeded(&[3, 4], -1.5, 1.5, 7));
        let w2 = tape.constant(Tensor::uniform_seeded(&[4], -1.5, 1.5, 8));
        x.matmul(w1)?.tanh()?.mul(w2)?.sum_all()?.tanh()
    }

    #[test]
    fn ig_completeness_on_a_tanh_model() {
        let x = Tensor::from_vec(vec![0.9, -1.3, 2.0], &[3]).unwrap();
        let b = Tensor::zeros(&[3]);
        let coarse = integrated_gradients(&tanh_model, &x, &b, 4).unwrap();
        let fine = integrated_gradients(&tanh_model, &x, &b, 100).unwrap();
        assert!(fine.relative_gap() < 1e-3, "{}", fine.relative_gap());
        assert!(fine.is_complete(1e-3, 0.0));
        assert!(fine.relative_gap() < coarse.relative_gap());
        // Completeness in f32 too.
        let f32_model = model(|tape: &Tape<f32>, x| {
            let w1 = tape.constant(Tensor::uniform_seeded(&[3, 4], -1.5, 1.5, 7));
            let w2 = tape.constant(Tensor::uniform_seeded(&[4], -1.5, 1.5, 8));
            x.matmul(w1)?.tanh()?.mul(w2)?.sum_all()?.tanh()
        });
        let ig = integrated_gradients(&f32_model, &x.cast::<f32>(), &b.cast(), 100).unwrap();
        assert!(ig.relative_gap() < 1e-3, "{}", ig.relative_gap());
    }

    #[test]
    fn saliency_and_input_x_gradient() {
        let x = Tensor::from_vec(vec![1.0, 2.0, -1.0, 4.0], &[4]).unwrap();
        assert_eq!(
            saliency(&linear, &x).unwrap().to_vec(),
            vec![0.5, 2.0, 3.0, 0.0]
        );
        assert_eq!(
            input_x_gradient(&linear, &x).unwrap().to_vec(),
            vec![0.5, -4.0, -3.0, 0.0]
        );
    }

    #[test]
    fn errors_are_values() {
        let x = Tensor::<f64>::zeros(&[4]);
        assert!(integrated_gradients(&linear, &x, &x, 0).is_err());
        assert!(integrated_gradients(&linear, &x, &Tensor::zeros(&[3]), 5).is_err());
        // A non-scalar model output.
        let vector = model(|_t: &Tape<f64>, x| x.tanh());
        assert!(saliency(&vector, &x).is_err());
    }
}
