//! Explaining a [`Module`]'s predictions with the attribution methods of
//! [`tapegrad_autograd::explain`] (saliency, input × gradient, integrated
//! gradients).
//!
//! Those methods take a model as a closure from one input to a scalar;
//! [`output`] makes that closure from a module and an output index (for a
//! classifier, the logit of a class). [`feature_importance`] averages
//! `|integrated gradients|` over many rows of a table to rank its columns.
//!
//! ```
//! use tapegrad_autograd::explain::{integrated_gradients, saliency};
//! use tapegrad_nn::{explain, Activation, Mlp};
//! use tapegrad_tensor::Tensor;
//!
//! let mlp = Mlp::<f64>::builder(&[3, 8, 2]).activation(Activation::Tanh).seed(1).build()?;
//! let x = Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3])?;
//! let class = explain::predicted_class(&mlp, &x)?;
//! let logit = explain::output(&mlp, class);
//! assert_eq!(saliency(&logit, &x)?.shape(), &[3]);
//! let ig = integrated_gradients(&logit, &x, &Tensor::zeros(&[3]), 64)?;
//! assert!(ig.relative_gap() < 1e-3); // completeness: Σ IG ≈ f(x) − f(0)
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```
//!
//! Dropout makes a forward pass random, so put the model in evaluation
//! mode ([`Module::eval`]) before explaining it.

use tapegrad_autograd::explain::integrated_gradients;
use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::module::Module;

/// The scalar model "output `index` of `model` on one sample", as the
/// closure the functions of [`tapegrad_autograd::explain`] take.
///
/// The sample `x` may have any shape with `d` elements (a `[d]` row, an
/// `[8, 8]` image); it is fed to the module as a `[1, d]` batch, and the
/// result is element `index` of the flattened output (for a classifier,
/// the logit of class `index`; for a one-output regression, use 0).
///
/// # Errors (of the closure)
/// If the module rejects a `[1, d]` input or `index` is out of range.
pub fn output<'m, T, M>(
    model: &'m M,
    index: usize,
) -> impl for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> TapeResult<Var<'t, T>> + 'm
where
    T: Element,
    M: Module<T> + ?Sized,
{
    move |tape, x| {
        let d = x.shape().iter().product::<usize>();
        model
            .forward(tape, x.reshape(&[1, d])?)?
            .flatten()?
            .select(0, index)
    }
}

/// The model's outputs on one sample (any shape, fed as a `[1, d]` batch),
/// computed without recording gradients.
///
/// # Errors
/// If the module rejects a `[1, d]` input.
pub fn outputs<T: Element, M: Module<T> + ?Sized>(model: &M, x: &Tensor<T>) -> Result<Vec<T>> {
    let tape = Tape::<T>::new();
    let out = tape.no_grad(|| {
        model
            .forward(&tape, tape.constant(x.reshape(&[1, x.numel()])?))
            .map(|v| v.value())
    })?;
    Ok(out.to_vec())
}

/// The index of the largest output on one sample (the predicted class of a
/// classifier; the first one on ties).
///
/// # Errors
/// As [`outputs`]; also if the model has no outputs.
pub fn predicted_class<T: Element, M: Module<T> + ?Sized>(
    model: &M,
    x: &Tensor<T>,
) -> Result<usize> {
    let out = outputs(model, x)?;
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in out.iter().enumerate() {
        let v = v.to_f64();
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
        .ok_or_else(|| Error::invalid("predicted_class", "the model has no outputs"))
}

/// Global feature importance of a table: the mean over rows of
/// `|integrated gradients|` per column, from [`feature_importance`].
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureImportance {
    /// Mean `|IG|` per feature (column).
    pub mean_abs: Vec<f64>,
    /// The largest relative completeness gap over the rows (see
    /// [`IntegratedGradients::relative_gap`](tapegrad_autograd::explain::IntegratedGradients::relative_gap)).
    pub max_relative_gap: f64,
    /// The largest absolute completeness gap over the rows.
    pub max_gap: f64,
    /// Number of rows averaged.
    pub rows: usize,
}

impl FeatureImportance {
    /// Feature indices with their importance, most important first (ties
    /// keep index order).
    pub fn ranking(&self) -> Vec<(usize, f64)> {
        let mut v: Vec<(usize, f64)> = self.mean_abs.iter().copied().enumerate().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// Ranks the columns of `rows` (`[n, d]`) by the mean of
/// `|integrated gradients|` of the scalar model `f` over the rows, each
/// from `baseline` (`[d]`, for example the column means, or zeros for
/// standardised data) with `steps` intervals.
///
/// ```
/// use tapegrad_autograd::explain::model;
/// use tapegrad_nn::explain::feature_importance;
/// use tapegrad_tensor::Tensor;
/// // f(x) = 3·x₂ − x₀: column 2 matters most, column 1 not at all.
/// let f = model(|_tape, x| x.select(0, 2)?.mul_scalar(3.0)?.sub(x.select(0, 0)?));
/// let rows = Tensor::<f64>::randn_seeded(&[50, 3], 0);
/// let imp = feature_importance(&f, &rows, &Tensor::zeros(&[3]), 1)?;
/// let order: Vec<usize> = imp.ranking().iter().map(|&(i, _)| i).collect();
/// assert_eq!(order, [2, 0, 1]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
///
/// # Errors
/// If `rows` is not `[n, d]` with `n > 0`, `baseline` is not `[d]`, or as
/// [`integrated_gradients`].
pub fn feature_importance<T, F>(
    f: &F,
    rows: &Tensor<T>,
    baseline: &Tensor<T>,
    steps: usize,
) -> Result<FeatureImportance>
where
    T: Element,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> TapeResult<Var<'t, T>>,
{
    let (n, d) = match rows.dims() {
        [n, d] if *n > 0 => (*n, *d),
        s => {
            return Err(Error::invalid(
                "feature_importance",
                format!("rows must be [n, d] with n > 0, got {s:?}"),
            ))
        }
    };
    if baseline.dims() != [d] {
        return Err(Error::invalid(
            "feature_importance",
            format!("the baseline must be [{d}], got {:?}", baseline.dims()),
        ));
    }
    let mut sum = vec![0.0f64; d];
    let (mut max_gap, mut max_rel) = (0.0f64, 0.0f64);
    for i in 0..n {
        let ig = integrated_gradients(f, &rows.select(0, i)?, baseline, steps)?;
        for (s, a) in sum.iter_mut().zip(ig.attributions.to_vec()) {
            *s += a.to_f64().abs();
        }
        max_gap = max_gap.max(ig.gap.abs());
        max_rel = max_rel.max(ig.relative_gap());
    }
    Ok(FeatureImportance {
        mean_abs: sum.into_iter().map(|s| s / n as f64).collect(),
        max_relative_gap: max_rel,
        max_gap,
        rows: n,
    })
}
