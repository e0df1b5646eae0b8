//! Branch-free `f32` versions of `exp`, `ln`, `tanh`, `sigmoid`, `softplus`,
//! `erf`, `sin` and `cos` that the compiler can vectorise ([`ln_f32`],
//! [`softplus_f32`], [`erf_f32`], [`sin_f32`] and [`cos_f32`] document their
//! accuracy in their own files).
//!
//! `f32::exp`, `f32::ln` and `f32::tanh` from `std` call the platform's libm one element
//! at a time, so a map over a million elements cannot use SIMD lanes. The
//! functions here use only `+ - * /`, fused multiply-adds, comparisons that
//! become blends, and bit casts, so a loop over a slice compiles to vector
//! code (and, through the run-time dispatch in `crate::simd`, to AVX2 or
//! AVX-512 where the CPU has it).
//!
//! Fused multiply-add ([`f32::mul_add`]) rounds once, so it gives the same
//! bits wherever it runs: as one instruction in the AVX2 and AVX-512 kernels
//! and on ARM64, and as the C library's correctly rounded `fmaf` in code
//! built for baseline x86-64. Results are therefore still bit-identical on
//! every machine and every code path. The library call is slow, which is
//! why the tensor kernels (even for a single element) run these functions
//! in their dispatched copies; call them directly from your own baseline
//! x86-64 code only where speed does not matter. Using FMA made a 1M-element
//! sigmoid 1.46× faster on one AVX-512 core (559 → 382 µs) than the
//! multiply-then-add version.
//!
//! Accuracy (tested in this module against `f64` references):
//! - [`exp_f32`]: max relative error `7.9e-8` (measured; tested `< 2e-7`) for
//!   `x` in `[-87, 88]`; gradual underflow to subnormals and `0`, `+inf`
//!   above `88.72`, NaN in gives NaN.
//! - [`tanh_f32`]: max relative error `1.5e-7` (tested `< 3e-7`) on
//!   `[-20, 20]` and `±1` beyond; exactly
//!   `±1` for `|x| > 9.1`, odd (`tanh(-0) = -0`), NaN in gives NaN.
//! - [`sigmoid_f32`]: max relative error `1.9e-7` (tested `< 3e-7`) for `x` in
//!   `[-87, +inf]`; never overflows (it only evaluates `e^{-|x|}`); below
//!   `-87` the result is subnormal and within one subnormal step (`2^-149`)
//!   of the true value, reaching `0` near `x = -104`.
//!
//! Method. `exp`: `x = n·ln2 + r` with `n = round(x·log2 e)` and
//! `|r| ≤ ln2/2`, where `n·ln2` is subtracted in two parts (a high part with
//! trailing zero bits, so `n·LN2_HI` is exact, and a low correction); `e^r`
//! is its degree-7 Taylor polynomial (truncation error below `6e-9`), and
//! `2^n` is built from the exponent bits in two halves so that results in the
//! subnormal range round correctly instead of flushing to zero. `tanh`: for
//! `|x| < 0.625`, `x + x³·P(x²)` with a degree-4 `P` fitted (weighted least
//! squares, iterated towards minimax) to relative error `2e-8`; above, `1 -
//! 2/(e^{2|x|} + 1)`, where cancellation is mild because `tanh ≥ 0.55`.

mod erf;
mod ln;
mod pow;
mod softplus;
mod trig;

pub use erf::erf_f32;
pub use ln::ln_f32;
pub use pow::pow_f32;
pub use softplus::softplus_f32;

pub use trig::{cos_f32, sin_f32, TRIG_FAST_MAX};
pub(crate) use trig::{in_fast_range, sin_cos_reduced};

/// `2/(2i + 1)` for `i = 0..=4`: the series `ln m = Σ 2·s^{2i+1}/(2i + 1)`
/// (`m = (1 + s)/(1 - s)`), which [`ln_f32`] and [`softplus_f32`] use.
const ATANH_SERIES: [f32; 5] = [2.0, 2.0 / 3.0, 2.0 / 5.0, 2.0 / 7.0, 2.0 / 9.0];

/// `log2(e)`.
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` cut to 12 significant bits (`0.693115234375`), so `n · LN2_HI` is
/// exact.
const LN2_HI: f32 = 2839.0 / 4096.0;
/// `ln 2 - LN2_HI`.
const LN2_LO: f32 = 3.194_618_5e-5;
/// Adding then subtracting `1.5 · 2^23` rounds a float of magnitude below
/// `2^22` to the nearest integer (the integer also sits in the low mantissa
/// bits of the sum).
const ROUND_MAGIC: f32 = 12_582_912.0;
/// Below this `e^x` is zero in `f32` (`e^-104 < 2^-150`).
const EXP_LO: f32 = -104.0;
/// Above this `e^x` is `+inf` in `f32` (overflow happens at 88.72).
const EXP_HI: f32 = 89.0;

/// `1/k!` for `k = 7, 6, ..., 0`: the Taylor coefficients of `e^r`,
/// highest degree first (the order Horner's rule uses them).
const EXP_TAYLOR: [f32; 8] = [
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// Coefficients of `P` in `tanh(x) ≈ x + x³·P(x²)` for `|x| < 0.625`.
const TANH_P: [f32; 5] = [
    -0.333_333_3,
    0.133_327_95,
    -0.053_854_127,
    0.021_010_278,
    -0.006_113_416,
];
/// Below this `|x|` tanh uses the odd polynomial.
const TANH_SMALL: f32 = 0.625;

/// `e^x` for `f32`, branch-free and vectorisable (see the [module
/// docs](self) for the error bound).
///
/// ```
/// use tapegrad_tensor::fastmath::exp_f32;
/// assert!((exp_f32(1.0) - std::f32::consts::E).abs() < 1e-6);
/// assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
/// assert_eq!(exp_f32(100.0), f32::INFINITY);
/// assert!(exp_f32(f32::NAN).is_nan());
/// ```
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Clamp so the exponent arithmetic below stays in range (NaN stays NaN
    // and is returned as such at the end).
    let xc = x.clamp(EXP_LO, EXP_HI);
    let t = xc.mul_add(LOG2E, ROUND_MAGIC);
    let n = t - ROUND_MAGIC;
    // The low mantissa bits of `t` hold `n` as an integer in [-150, 129].
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, xc));
    // Degree-7 Taylor polynomial of e^r on |r| <= ln2/2, by Horner's rule.
    let p = EXP_TAYLOR[1..]
        .iter()
        .fold(EXP_TAYLOR[0], |acc, &c| acc.mul_add(r, c));
    // 2^n as two normal powers of two, so subnormal results round once.
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    let y = p * s1 * s2;
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// Hyperbolic tangent for `f32`, branch-free and vectorisable (see the
/// [module docs](self) for the error bound).
///
/// ```
/// use tapegrad_tensor::fastmath::tanh_f32;
/// assert!((tanh_f32(0.5) - 0.5f32.tanh()).abs() < 1e-7);
/// assert_eq!(tanh_f32(100.0), 1.0);
/// assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
/// ```
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = TANH_P[..4]
        .iter()
        .rev()
        .fold(TANH_P[4], |acc, &c| acc.mul_add(z, c));
    let small = (a * z).mul_add(p, a);
    let e = exp_f32(a + a);
    let big = 1.0 - 2.0 / (e + 1.0);
    // Work on |x| and restore the sign last, so tanh(-0) = -0.
    let y = if a < TANH_SMALL { small } else { big };
    y.copysign(x)
}

/// The logistic function `1 / (1 + e^{-x})` for `f32`, branch-free,
/// vectorisable and overflow-free (see the [module docs](self)).
///
/// ```
/// use tapegrad_tensor::fastmath::sigmoid_f32;
/// assert_eq!(sigmoid_f32(0.0), 0.5);
/// assert_eq!(sigmoid_f32(100.0), 1.0);
/// assert!(sigmoid_f32(-100.0) > 0.0); // 3.7e-44, a subnormal
/// ```
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    // e = e^{-|x|} is at most 1, so nothing overflows; for x < 0 the
    // result is e / (1 + e) = e · s.
    let e = exp_f32(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

/// Units in the last place between two finite `f32`s of the same sign
/// (panics on a sign mismatch): the accuracy measure of this module's tests
/// and of the short forms of `Tensor::powf`.
#[cfg(test)]
pub(crate) fn ulps(a: f32, b: f32) -> u32 {
    assert_eq!(a.is_sign_negative(), b.is_sign_negative(), "{a} vs {b}");
    a.to_bits().abs_diff(b.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel_err(got: f32, want: f64) -> f64 {
        if want == 0.0 {
            (got as f64).abs()
        } else {
            ((got as f64 - want) / want).abs()
        }
    }

    /// Every `step`-th f32 between `lo` and `hi` (inclusive), by bit pattern
    /// on each side of zero, plus the endpoints.
    fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .chain([lo, hi, 0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8])
            .collect()
    }

    #[test]
    fn exp_relative_error() {
        let mut worst = 0.0f64;
        for x in sweep(-87.0, 88.0, 2_000_000) {
            worst = worst.max(rel_err(exp_f32(x), (x as f64).exp()));
        }
        assert!(worst < 2e-7, "exp_f32 worst relative error {worst:e}");
    }

    #[test]
    fn exp_extremes() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(88.8), f32::INFINITY);
        assert!(exp_f32(88.7).is_finite());
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-104.0), 0.0);
        assert_eq!(exp_f32(-1000.0), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        // Subnormal results: e^-100 = 3.72e-44 (about 26 · 2^-149).
        let sub = exp_f32(-100.0) as f64;
        assert!((sub - (-100f64).exp()).abs() <= f32::from_bits(1) as f64);
        // Near the smallest normal.
        assert!(rel_err(exp_f32(-87.3), (-87.3f64).exp()) < 1e-5);
    }

    #[test]
    fn tanh_relative_error() {
        let mut worst = 0.0f64;
        for x in sweep(-20.0, 20.0, 2_000_000)
            .into_iter()
            .chain(sweep(-1.0, 1.0, 200_000))
        {
            worst = worst.max(rel_err(tanh_f32(x), (x as f64).tanh()));
        }
        assert!(worst < 3e-7, "tanh_f32 worst relative error {worst:e}");
    }

    #[test]
    fn tanh_extremes() {
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(100.0), 1.0);
        assert_eq!(tanh_f32(-100.0), -1.0);
        assert_eq!(tanh_f32(f32::MAX), 1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh_f32(1e-30), 1e-30);
        assert_eq!(tanh_f32(f32::from_bits(1)), f32::from_bits(1));
    }

    #[test]
    fn sigmoid_relative_error() {
        let mut worst = 0.0f64;
        for x in sweep(-87.0, 40.0, 1_000_000) {
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            worst = worst.max(rel_err(sigmoid_f32(x), want));
        }
        assert!(worst < 3e-7, "sigmoid_f32 worst relative error {worst:e}");
    }

    #[test]
    fn sigmoid_extremes() {
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid_f32(100.0), 1.0);
        let s = sigmoid_f32(-100.0) as f64;
        let want = (-100f64).exp() / (1.0 + (-100f64).exp());
        assert!(
            (s - want).abs() <= f32::from_bits(1) as f64,
            "{s:e} vs {want:e}"
        );
        assert_eq!(sigmoid_f32(-200.0), 0.0);
        assert!(sigmoid_f32(f32::NAN).is_nan());
        for x in [-100.0f32, -50.0, -10.0, 0.0, 10.0, 50.0, 100.0] {
            let s = sigmoid_f32(x);
            assert!((0.0..=1.0).contains(&s), "sigmoid({x}) = {s}");
        }
    }
}
