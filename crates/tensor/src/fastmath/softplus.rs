//! Vectorisable `f32` softplus, `ln(1 + e^x)`.
//!
//! `softplus(x) = max(x, 0) + ln(1 + y)` with `y = e^{-|x|}` in `(0, 1]`
//! ([`exp_f32`]), so nothing overflows. For `ln(1 + y)`: `u = 1 + y` is
//! rounded, and the rounding error `c = y - (u - 1)` is exact (Fast2Sum,
//! as `1 ≥ y`), so `ln(1 + y) = ln u + c/u` to first order. Then
//! `u = 2^k · m` with `m` in `[√2/2, √2]` (`k` is 0 or 1), and
//! `ln m = 2·atanh(s)`, `s = (m - 1)/(m + 1)`, `|s| ≤ 0.172`, by its odd
//! series to `s^9` (truncation below `1e-9` relative).
//!
//! Accuracy (tested below against `f64`): relative error below `3e-7` over
//! `[-87, 100]`; below `-87` the result is subnormal and within one
//! subnormal step (`2^-149`) of the true value, reaching `0` near `-104`;
//! for large `x` it is `x`, NaN gives NaN.

use super::{exp_f32, ATANH_SERIES, LN2_HI, LN2_LO};

/// `ln(1 + y)` for `y` in `[0, 1]`, branch-free.
#[inline(always)]
fn ln_1p_unit(y: f32) -> f32 {
    let u = 1.0 + y;
    let c = y - (u - 1.0);
    let big = u > std::f32::consts::SQRT_2;
    let k: f32 = if big { 1.0 } else { 0.0 };
    let m = if big { u * 0.5 } else { u };
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let series = ATANH_SERIES[..4]
        .iter()
        .rev()
        .fold(ATANH_SERIES[4], |acc, &a| acc.mul_add(z, a));
    let ln_m = s * series;
    k.mul_add(LN2_HI, k.mul_add(LN2_LO, ln_m)) + c / u
}

/// `ln(1 + e^x)` for `f32`, branch-free, vectorisable and overflow-free
/// (see the module docs for the error bound).
///
/// ```
/// use tapegrad_tensor::fastmath::softplus_f32;
/// assert!((softplus_f32(0.0) - 2f32.ln()).abs() < 1e-7);
/// assert_eq!(softplus_f32(100.0), 100.0);
/// assert!(softplus_f32(-100.0) > 0.0);
/// ```
#[inline(always)]
pub fn softplus_f32(x: f32) -> f32 {
    let y = exp_f32(-x.abs());
    let r = x.max(0.0) + ln_1p_unit(y);
    if x.is_nan() {
        x
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    #[test]
    fn softplus_relative_error() {
        let n = 4_000_000;
        let worst = (0..=n)
            .map(|i| -87.0 + 187.0 * (i as f32 / n as f32))
            .map(|x| {
                (
                    ((softplus_f32(x) as f64 - want(x as f64)) / want(x as f64)).abs(),
                    x,
                )
            })
            .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
        assert!(worst.0 < 3e-7, "error {:e} at {}", worst.0, worst.1);
    }

    #[test]
    fn softplus_extremes() {
        assert_eq!(softplus_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(softplus_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(softplus_f32(-200.0), 0.0);
        assert_eq!(softplus_f32(1e30), 1e30);
        assert!(softplus_f32(f32::NAN).is_nan());
        assert!((softplus_f32(-20.0) as f64 - want(-20.0)).abs() / want(-20.0) < 3e-7);
        for i in 0..=17_000 {
            let x = -87.0 - i as f32 * 1e-3;
            let step = f32::from_bits(1) as f64;
            assert!(
                (softplus_f32(x) as f64 - want(x as f64)).abs() <= step,
                "{x}"
            );
        }
    }
}
