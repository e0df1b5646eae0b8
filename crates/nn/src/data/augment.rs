//! Data augmentation against overfitting: Gaussian input noise and mixup
//! (Zhang et al., 2018). Both work on tabular rows and flattened images.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Beta, Distribution};
use tapegrad_tensor::{Element, Tensor};

use super::{Batch, Target};
use crate::error::{Error, Result};

/// `x + N(0, std²)` elementwise.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::<f32>::zeros(&[100, 4]);
/// let y = tapegrad_nn::data::gaussian_noise(&x, 0.1, &mut StdRng::seed_from_u64(0))?;
/// assert!(y.to_vec().iter().all(|v| v.abs() < 1.0));
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] naming `std` if it is negative, NaN or
/// infinite.
pub fn gaussian_noise<T: Element>(
    x: &Tensor<T>,
    std: f64,
    rng: &mut impl Rng,
) -> Result<Tensor<T>> {
    if !(std.is_finite() && std >= 0.0) {
        return Err(Error::invalid(
            "gaussian_noise",
            format!("std = {std} must be finite and non-negative"),
        ));
    }
    let noise = Tensor::normal(x.dims(), 0.0, std, rng);
    Ok(x.add(&noise)?)
}

/// Mixup: draws `λ ~ Beta(α, α)` and a random pairing of the rows, and
/// returns `λ·x + (1 − λ)·x[perm]` with targets mixed the same way (classes
/// become one-hot over `classes` first, so the result has soft labels for
/// [`soft_cross_entropy`](crate::loss::soft_cross_entropy)).
///
/// # Errors
/// [`Error::InvalidArgument`] naming `alpha` if it is not positive and
/// finite (NaN included); an error if a label is not below `classes`.
pub fn mixup<T: Element>(
    batch: &Batch<T>,
    alpha: f64,
    classes: usize,
    rng: &mut impl Rng,
) -> Result<Batch<T>> {
    let bad_alpha = || {
        Error::invalid(
            "mixup",
            format!("alpha = {alpha} must be positive and finite (λ ~ Beta(alpha, alpha))"),
        )
    };
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(bad_alpha());
    }
    let beta = Beta::new(alpha, alpha).map_err(|_| bad_alpha())?;
    let lam: f64 = beta.sample(rng);
    let mut perm: Vec<usize> = (0..batch.len()).collect();
    perm.shuffle(rng);
    let mix = |a: &Tensor<T>| -> Result<Tensor<T>> {
        let b = a.index_select(0, &perm)?;
        Ok(a.mul_scalar(lam)?.add(&b.mul_scalar(1.0 - lam)?)?)
    };
    let y = batch.y.to_tensor(classes)?;
    Ok(Batch {
        x: mix(&batch.x)?,
        y: Target::Values(mix(&y)?),
    })
}
