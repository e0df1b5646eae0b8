//! Vectorisable `f32` sine and cosine.
//!
//! Method: `x = j·π/2 + r` with `j = round(x·2/π)` and `|r| ≤ π/4` (plus
//! rounding), where `j·π/2` is subtracted in three parts with fused
//! multiply-adds (Cody and Waite's scheme: π/2 split into three `f32`s whose
//! sum carries about 72 bits of it). Then `sin r` and `cos r` come from
//! short odd and even polynomials that are accurate on `[-π/4, π/4]`, and the
//! quadrant `j mod 4` picks one of them and its sign, all without branches.
//!
//! The reduction is exact enough up to [`TRIG_FAST_MAX`]; beyond it (and for
//! NaN and infinities) [`sin_f32`] and [`cos_f32`] call the standard library,
//! which reduces the argument exactly. The tensor ops run the branch-free
//! part over whole chunks and redo only the rare elements past the limit.
//!
//! Accuracy (tested below against `f64`): absolute error below `1.2e-7` for
//! `|x| ≤ TRIG_FAST_MAX`; for `|x| ≤ π/4` (no reduction) relative error below
//! `2e-7`. Near a zero of the sine at large `x` the *relative* error grows
//! (the result is small, the absolute error is not), as in any single
//! precision reduction that does not use extra-precise arithmetic; there,
//! `x` itself is only known to within half an ulp, which moves the sine
//! far more.

/// Largest `|x|` the branch-free reduction handles (`2^17`): `j` stays well
/// inside the exactly representable integers, and the dropped tail of π/2
/// (`1e-23`) times `j` stays negligible.
pub const TRIG_FAST_MAX: f32 = 131_072.0;

/// `2/π`.
const FRAC_2_PI: f32 = std::f32::consts::FRAC_2_PI;
/// π/2 as the sum of three `f32`s: the nearest `f32`, then the nearest `f32`
/// to what is left, twice.
const PIO2_1: f32 = 1.570_796_4;
const PIO2_2: f32 = -4.371_139e-8;
const PIO2_3: f32 = -1.715_124_5e-15;
/// Adding then subtracting `1.5 · 2^23` rounds to the nearest integer (the
/// integer's low bits also land in the low mantissa bits of the sum).
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `sin r = r + r·z·(S1 + z·(S2 + z·S3))`, `z = r²`, on `[-π/4, π/4]`.
const S1: f32 = -1.666_665_5e-1;
const S2: f32 = 8.332_161e-3;
const S3: f32 = -1.951_529_6e-4;
/// `cos r = 1 - z/2 + z²·(C1 + z·(C2 + z·C3))`.
const C1: f32 = 4.166_664_6e-2;
const C2: f32 = -1.388_731_6e-3;
const C3: f32 = 2.443_315_7e-5;

/// `sin(x)` (`quadrant_shift = 0`) or `cos(x) = sin(x + π/2)`
/// (`quadrant_shift = 1`) for `|x| ≤ TRIG_FAST_MAX`, branch-free. Outside
/// that range the result is meaningless; callers redo those elements.
#[inline(always)]
pub(crate) fn sin_cos_reduced(x: f32, quadrant_shift: u32) -> f32 {
    let shifted = x.mul_add(FRAC_2_PI, ROUND_MAGIC);
    let j = shifted - ROUND_MAGIC;
    let quadrant = shifted.to_bits().wrapping_add(quadrant_shift);
    let r = (-j).mul_add(PIO2_1, x);
    let r = (-j).mul_add(PIO2_2, r);
    let r = (-j).mul_add(PIO2_3, r);
    // Adding `±0` products would turn `x = -0` into `+0`; with `j = 0` the
    // reduction is `x` itself.
    let r = if j == 0.0 { x } else { r };
    let z = r * r;
    let sin_r = (r * z).mul_add(z.mul_add(z.mul_add(S3, S2), S1), r);
    // For tiny `r` (`z` underflows) `sin r` is `r`, zero sign included.
    let sin_r = if z == 0.0 { r } else { sin_r };
    let cos_r = (z * z).mul_add(z.mul_add(z.mul_add(C3, C2), C1), (-0.5f32).mul_add(z, 1.0));
    let picked = if quadrant & 1 == 0 { sin_r } else { cos_r };
    // Quadrants 2 and 3 flip the sign.
    f32::from_bits(picked.to_bits() ^ ((quadrant & 2) << 30))
}

/// Whether [`sin_cos_reduced`] is valid for `x` (false for NaN too).
#[inline(always)]
pub(crate) fn in_fast_range(x: f32) -> bool {
    x.abs() <= TRIG_FAST_MAX
}

/// Sine, vectorisable for `|x| ≤ TRIG_FAST_MAX` (see the module docs for
/// accuracy); larger arguments, NaN and infinities go to [`f32::sin`].
#[inline]
pub fn sin_f32(x: f32) -> f32 {
    if in_fast_range(x) {
        sin_cos_reduced(x, 0)
    } else {
        x.sin()
    }
}

/// Cosine, as [`sin_f32`].
#[inline]
pub fn cos_f32(x: f32) -> f32 {
    if in_fast_range(x) {
        sin_cos_reduced(x, 1)
    } else {
        x.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest absolute error of `f` against `want` over `n` points spread
    /// over `[lo, hi]`, with the worst argument.
    fn max_abs_err(
        lo: f32,
        hi: f32,
        n: usize,
        f: fn(f32) -> f32,
        want: fn(f64) -> f64,
    ) -> (f64, f32) {
        (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .map(|x| ((f(x) as f64 - want(x as f64)).abs(), x))
            .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a })
    }

    #[test]
    fn sine_and_cosine_are_accurate_over_the_fast_range() {
        for (lo, hi, n) in [
            (-10.0, 10.0, 2_000_000),
            (-TRIG_FAST_MAX, TRIG_FAST_MAX, 4_000_000),
        ] {
            let (e, x) = max_abs_err(lo, hi, n, sin_f32, f64::sin);
            assert!(e < 1.2e-7, "sin: error {e:e} at {x}");
            let (e, x) = max_abs_err(lo, hi, n, cos_f32, f64::cos);
            assert!(e < 1.2e-7, "cos: error {e:e} at {x}");
        }
    }

    #[test]
    fn small_arguments_keep_their_relative_accuracy() {
        for i in 1..=200_000 {
            let x = i as f32 * (std::f32::consts::FRAC_PI_4 / 200_000.0);
            for x in [x, -x] {
                let (s, want) = (sin_f32(x) as f64, (x as f64).sin());
                assert!(
                    ((s - want) / want).abs() < 2e-7,
                    "sin({x}) = {s}, want {want}"
                );
            }
        }
        assert_eq!(sin_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(sin_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(cos_f32(0.0), 1.0);
    }

    #[test]
    fn large_and_special_arguments_use_the_exact_path() {
        for x in [TRIG_FAST_MAX * 1.5, -1e30, f32::MAX, 3.0e9] {
            assert_eq!(sin_f32(x), x.sin());
            assert_eq!(cos_f32(x), x.cos());
        }
        assert!(sin_f32(f32::NAN).is_nan() && cos_f32(f32::INFINITY).is_nan());
        assert!(!in_fast_range(f32::NAN));
    }
}
