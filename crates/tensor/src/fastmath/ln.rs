//! Vectorisable `f32` natural logarithm.
//!
//! Method. `x = 2^k · m` with `m` in `[√2/2, √2)`, read off the bits (a
//! subnormal `x` is first scaled by `2^24`). With `f = m - 1` (exact) and
//! `s = f/(2 + f)`, `ln m = 2·atanh(s) = 2s + (2/3)s³ + (2/5)s⁵ + …`,
//! `|s| ≤ 0.172`, so the odd series to `s⁹` is enough (the next term is
//! below `1e-9` of the sum). Since `2s = f - s·f`, this is
//! `ln m = f - s·(f - R)` with `R = s²·(2/3 + (2/5)s² + (2/7)s⁴ + (2/9)s⁶)`:
//! the leading term `f` is exact and the correction is at most a sixth of
//! it, so its rounding barely shows. Then
//! `ln x = k·ln2_hi + (k·ln2_lo + ln m)`, where `k·ln2_hi` is exact.
//!
//! Accuracy (tested below against `f64` on every 97th positive `f32`, the
//! subnormals included): at most 1 unit in the last place from the
//! correctly rounded result. `ln 0 = -∞` (either sign of zero), `ln(+∞) =
//! +∞`, NaN below zero and for NaN, `ln 1 = 0` exactly.

use super::{ATANH_SERIES, LN2_HI, LN2_LO};

/// Bits of `√2/2` rounded down: mantissas at or above it stay in the
/// binade, those below move up one (`m` in `[√2/2, √2)`).
const SQRT_HALF_BITS: i32 = 0x3f35_04f3;
/// `2^24`, the scale that makes a subnormal `x` normal.
const SUBNORMAL_SCALE: f32 = 16_777_216.0;

/// `(k, m)` with `x = 2^k·m` and `m` in `[√2/2, √2)`, for a positive finite
/// `x` (subnormals included; other inputs give values the callers blend
/// away). Branch-free, on 32-bit integer lanes.
#[inline(always)]
pub(super) fn binade_split(x: f32) -> (i32, f32) {
    let subnormal = x < f32::MIN_POSITIVE;
    let xs = if subnormal { x * SUBNORMAL_SCALE } else { x };
    let k_shift: i32 = if subnormal { -24 } else { 0 };
    // Subtracting the bits of √2/2 makes the exponent field count binades
    // from [√2/2, √2); the mantissa bits, added back, give m there.
    let t = (xs.to_bits() as i32).wrapping_sub(SQRT_HALF_BITS);
    let m = f32::from_bits(((t & 0x007f_ffff) + SQRT_HALF_BITS) as u32);
    ((t >> 23) + k_shift, m)
}

/// Natural logarithm for `f32`, branch-free and vectorisable (see the
/// module docs for the method and the error bound).
///
/// ```
/// use tapegrad_tensor::fastmath::ln_f32;
/// assert!((ln_f32(std::f32::consts::E) - 1.0).abs() < 1e-7);
/// assert_eq!(ln_f32(1.0), 0.0);
/// assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
/// assert!(ln_f32(-1.0).is_nan());
/// ```
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    let (k, m) = binade_split(x);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * ATANH_SERIES[2..]
        .iter()
        .rev()
        .fold(ATANH_SERIES[4], |acc, &a| acc.mul_add(z, a))
        .mul_add(z, ATANH_SERIES[1]);
    let ln_m = (-s).mul_add(f - r, f);
    let kf = k as f32;
    let y = kf.mul_add(LN2_HI, kf.mul_add(LN2_LO, ln_m));
    // The special values, as blends.
    let y = if x == 0.0 { f32::NEG_INFINITY } else { y };
    let y = if x == f32::INFINITY { x } else { y };
    if x < 0.0 || x.is_nan() {
        f32::NAN
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastmath::ulps;

    #[test]
    fn ln_within_one_ulp_everywhere() {
        let mut worst = (0, 0.0f32);
        // Every 97th bit pattern from the smallest subnormal to the largest
        // finite value: 22 million inputs over every binade.
        for bits in (1..0x7f80_0000u32).step_by(97) {
            let x = f32::from_bits(bits);
            let want = (x as f64).ln() as f32;
            let d = ulps(ln_f32(x), want);
            if d > worst.0 {
                worst = (d, x);
            }
        }
        assert!(worst.0 <= 1, "{} ulps at x = {:e}", worst.0, worst.1);
    }

    #[test]
    fn ln_special_values_and_hand_worked_cases() {
        assert_eq!(ln_f32(1.0), 0.0);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32(f32::NEG_INFINITY).is_nan());
        assert!(ln_f32(-1e-30).is_nan());
        assert!(ln_f32(f32::NAN).is_nan());
        // ln 2^k = k·ln 2: powers of two, subnormal ones included.
        for k in -149..128 {
            let x = (k as f64).exp2() as f32;
            let want = (k as f64 * std::f64::consts::LN_2) as f32;
            assert!(ulps(ln_f32(x), want) <= 1, "2^{k}");
        }
        // Just either side of 1, where ln x ≈ x - 1 and relative accuracy
        // is the hard part.
        for x in [1.0 - f32::EPSILON / 2.0, 1.0 + f32::EPSILON, 0.999, 1.001] {
            assert!(ulps(ln_f32(x), (x as f64).ln() as f32) <= 1, "{x}");
        }
    }
}
