//! Vectorisable `f32` error function, for the exact GELU.
//!
//! `libm::erff` branches on the argument and is called once per element,
//! so a GELU over a `[1024, 512]` activation ran at scalar speed (10% of a
//! `transformer_step`). This version evaluates both of its pieces for every
//! element and picks one with a blend, so a loop over a slice compiles to
//! 16-lane AVX-512 code through `crate::simd`.
//!
//! Method, for `a = |x|` (the sign is put back last: `erf` is odd):
//! - `a < 0.875`: `erf x = x + x·p(x²)`, where `p(s) ≈ erf(√s)/√s − 1` is
//!   a degree-6 polynomial. Writing it as a correction to `x` (one fused
//!   multiply-add) keeps the leading term exact, so tiny and subnormal `x`
//!   come out right.
//! - `a ≥ 0.875`: `erf a = 1 − e^{q(a)}`, where `q(a) ≈ ln erfc(a)` is a
//!   degree-9 polynomial on `[0.875, 4]` (smooth there, unlike `erfc`
//!   itself), and `e^q` is [`exp_f32`]. The input is clamped to 4: above
//!   `3.92`, `erfc a < 2^-26` and `1 − erfc a` rounds to 1 in `f32`, which
//!   is what the clamped value gives too.
//!
//! The coefficients were fitted for this file: least squares on 2,000
//! Chebyshev nodes of each interval against 40-digit references (mpmath),
//! reweighted towards minimax (Lawson's iteration), then rounded to `f32`
//! one at a time from the highest degree down, refitting the others after
//! each rounding so they absorb its error. Fit error before evaluation
//! rounding: `1.2e-8` relative for `p`, `1.4e-8` absolute for `q` (which
//! is relative for `erfc`, and shrinks by `erfc/erf < 0.27` in `erf`).
//!
//! Accuracy (tested below against `libm::erf` in `f64`): relative error
//! below `1.2e-7` over the whole line (measured worst `9.2e-8`, at `0.879`,
//! about 1.2 units in the last place; `libm::erff` stays under one);
//! `erf(±inf) = ±1`, `erf(-0) = -0`, NaN gives NaN.

use super::exp_f32;

/// Below this `|x|` the odd polynomial is used; above it, `1 − e^q`.
const SMALL: f32 = 0.875;
/// `q` is evaluated at `min(|x|, CLAMP)`; beyond, `erf` rounds to `±1`.
const CLAMP: f32 = 4.0;

/// `p(s) ≈ erf(√s)/√s − 1` on `s ∈ [0, 0.875²]`, coefficients of `s^0` to
/// `s^6`. (`p(0) = 2/√π − 1`.)
const SMALL_P: [f32; 7] = [
    0.128_379_17,
    -0.376_126_38,
    0.112_837_37,
    -0.026_861_774,
    0.005_207_219,
    -0.000_821_654_74,
    8.698_968e-5,
];

/// `q(a) ≈ ln erfc(a)` on `a ∈ [0.875, 4]`, coefficients of `a^0` to `a^9`.
const LOG_ERFC_Q: [f32; 10] = [
    0.000_304_584,
    -1.130_178_7,
    -0.631_902_6,
    -0.110_027_78,
    0.026_406_173,
    -0.004_761_703_3,
    0.000_599_765_4,
    -4.698_526_8e-5,
    1.769_603_2e-6,
    -7.434_961e-9,
];

/// Horner's rule with fused multiply-adds; `c` lists the coefficients from
/// degree 0 up.
#[inline(always)]
fn horner<const N: usize>(c: &[f32; N], x: f32) -> f32 {
    c[..N - 1]
        .iter()
        .rev()
        .fold(c[N - 1], |acc, &k| acc.mul_add(x, k))
}

/// The error function `erf x = (2/√π)∫₀ˣ e^{−t²} dt` for `f32`,
/// branch-free and vectorisable (see the [module docs](self) for the
/// method; relative error below `1.2e-7`).
///
/// ```
/// use tapegrad_tensor::fastmath::erf_f32;
/// assert!((erf_f32(0.5) - 0.520_499_9).abs() < 1e-7);
/// assert_eq!(erf_f32(-10.0), -1.0);
/// assert_eq!(erf_f32(f32::INFINITY), 1.0);
/// assert!(erf_f32(f32::NAN).is_nan());
/// ```
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let s = x * x;
    let small = x.mul_add(horner(&SMALL_P, s), x);
    // NaN compares false with everything: `min` would pick CLAMP, so the
    // NaN is restored at the end.
    let t = a.min(CLAMP);
    let large = (1.0 - exp_f32(horner(&LOG_ERFC_Q, t))).copysign(x);
    let y = if a < SMALL { small } else { large };
    if x.is_nan() {
        x
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error of `got` against the `f64` reference, counting the
    /// reference's own rounding to `f32` as no error.
    fn rel_err(got: f32, x: f32) -> f64 {
        let want = libm::erf(f64::from(x));
        if want == 0.0 {
            f64::from(got).abs()
        } else {
            ((f64::from(got) - want) / want).abs()
        }
    }

    #[test]
    fn relative_error_over_the_line() {
        let mut worst = (0.0f64, 0.0f32);
        // Dense on [-5, 5] (both pieces and the switch), then by bit
        // pattern across every binade from the smallest normal up to 1e30
        // (subnormals, where only absolute error means anything, are
        // checked in `special_values`).
        let dense = (0..=4_000_000).map(|i| -5.0 + 10.0 * (i as f32 / 4_000_000.0));
        let binades = (0x0080_0000u32..0x7180_0000)
            .step_by(997)
            .map(f32::from_bits);
        for x in dense.chain(binades.clone()).chain(binades.map(|v| -v)) {
            let e = rel_err(erf_f32(x), x);
            if e > worst.0 {
                worst = (e, x);
            }
        }
        assert!(
            worst.0 < 1.2e-7,
            "erf_f32 worst relative error {:e} at {}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn near_the_switch_and_the_clamp() {
        // Every f32 in a window around each boundary.
        for centre in [SMALL, CLAMP, 3.92] {
            let bits = centre.to_bits();
            for b in bits - 20_000..bits + 20_000 {
                let x = f32::from_bits(b);
                assert!(rel_err(erf_f32(x), x) < 1.2e-7, "erf_f32({x})");
                assert!(rel_err(erf_f32(-x), -x) < 1.2e-7, "erf_f32({})", -x);
            }
        }
    }

    #[test]
    fn special_values() {
        assert_eq!(erf_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf_f32(f32::MAX), 1.0);
        assert_eq!(erf_f32(-f32::MAX), -1.0);
        assert_eq!(erf_f32(4.5), 1.0);
        assert!(erf_f32(f32::NAN).is_nan());
        // Subnormal inputs: erf x = (2/√π)·x, to within one subnormal step.
        for b in [1u32, 2, 1000, 0x007f_ffff] {
            let x = f32::from_bits(b);
            let want = 2.0 / std::f64::consts::PI.sqrt() * f64::from(x);
            assert!((f64::from(erf_f32(x)) - want).abs() <= f64::from(f32::from_bits(1)));
        }
        // Odd, bit for bit.
        for x in [0.1f32, 0.874, 0.875, 1.5, 3.0, 3.95] {
            assert_eq!(erf_f32(-x).to_bits(), (-erf_f32(x)).to_bits());
        }
    }
}
