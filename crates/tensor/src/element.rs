//! The element types a [`Tensor`](crate::Tensor) can hold: `f32` and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point element type: implemented for `f32` and `f64`.
///
/// The trait is sealed in spirit (its `gemm` hook is an implementation
/// detail); it exists so every kernel is written once, generically.
pub trait Element:
    Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + PartialEq
    + Debug
    + Display
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// A short name for messages: `"f32"` or `"f64"`.
    const DTYPE: &'static str;

    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` (exactly).
    fn to_f64(self) -> f64;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `self^e` for a real exponent.
    fn powf(self, e: Self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// `ln(1 + self)`, accurate near 0.
    fn ln_1p(self) -> Self;
    /// The larger of two values (NaN-propagating is not guaranteed).
    fn max_val(self, other: Self) -> Self;
    /// The smaller of two values.
    fn min_val(self, other: Self) -> Self;
    /// `true` unless NaN or infinite.
    fn is_finite(self) -> bool;
    /// `true` if NaN.
    fn is_nan(self) -> bool;
    /// `e^self` by a branch-free, vectorisable method: for `f32`
    /// [`fastmath::exp_f32`](crate::fastmath::exp_f32) (relative error about
    /// `1e-7`), for `f64` the same as [`exp`](Self::exp).
    fn exp_fast(self) -> Self;
    /// `ln(self)` by a branch-free, vectorisable method: for `f32`
    /// [`fastmath::ln_f32`](crate::fastmath::ln_f32) (within one unit in the
    /// last place), for `f64` the same as [`ln`](Self::ln).
    fn ln_fast(self) -> Self;
    /// `self^e` by a branch-free, vectorisable method: for `f32`
    /// [`fastmath::pow_f32`](crate::fastmath::pow_f32) (within one unit in
    /// the last place), for `f64` the same as [`powf`](Self::powf).
    fn powf_fast(self, e: Self) -> Self;
    /// `tanh(self)`, vectorisable: for `f32`
    /// [`fastmath::tanh_f32`](crate::fastmath::tanh_f32), for `f64` the same as
    /// [`tanh`](Self::tanh).
    fn tanh_fast(self) -> Self;
    /// The logistic function, overflow-free and vectorisable: for `f32`
    /// [`fastmath::sigmoid_f32`](crate::fastmath::sigmoid_f32), for `f64`
    /// [`sigmoid_scalar`](crate::sigmoid_scalar).
    fn sigmoid_fast(self) -> Self;
    /// `ln(1 + e^self)`, overflow-free and vectorisable: for `f32`
    /// [`fastmath::softplus_f32`](crate::fastmath::softplus_f32), for `f64`
    /// [`softplus_scalar`](crate::softplus_scalar).
    fn softplus_fast(self) -> Self;
    /// `sin(self)` (`quadrant_shift = 0`) or `cos(self)` (`1`) by the
    /// branch-free, vectorisable method of
    /// [`fastmath::sin_f32`](crate::fastmath::sin_f32), valid where
    /// [`trig_fast_ok`](Self::trig_fast_ok) holds; for `f64` the standard
    /// library functions.
    #[doc(hidden)]
    fn sin_cos_fast(self, quadrant_shift: u32) -> Self;
    /// Whether [`sin_cos_fast`](Self::sin_cos_fast) is valid for `self`
    /// (`|x| ≤ TRIG_FAST_MAX` for `f32`; always for `f64`).
    #[doc(hidden)]
    fn trig_fast_ok(self) -> bool;

    /// Dense matrix product on strided operands: `c[m×n] = a[m×k] · b[k×n]`,
    /// with `c` row-major contiguous and overwritten. Strides are in elements.
    #[doc(hidden)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        a_rs: usize,
        a_cs: usize,
        b: &[Self],
        b_rs: usize,
        b_cs: usize,
        c: &mut [Self],
    );
}

macro_rules! impl_element {
    (
        $t:ty,
        $name:literal,
        $exp:path,
        $ln:path,
        $pow:path,
        $tanh:path,
        $sigmoid:path,
        $softplus:path,
        $sin_cos:path,
        $trig_ok:path
    ) => {
        impl Element for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = <$t>::INFINITY;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const DTYPE: &'static str = $name;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn max_val(self, other: Self) -> Self {
                if self >= other || self.is_nan() {
                    self
                } else {
                    other
                }
            }
            #[inline]
            fn min_val(self, other: Self) -> Self {
                if self <= other || self.is_nan() {
                    self
                } else {
                    other
                }
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn exp_fast(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln_fast(self) -> Self {
                $ln(self)
            }
            #[inline(always)]
            fn powf_fast(self, e: Self) -> Self {
                $pow(self, e)
            }
            #[inline(always)]
            fn tanh_fast(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn sigmoid_fast(self) -> Self {
                $sigmoid(self)
            }
            #[inline(always)]
            fn softplus_fast(self) -> Self {
                $softplus(self)
            }
            #[inline(always)]
            fn sin_cos_fast(self, quadrant_shift: u32) -> Self {
                $sin_cos(self, quadrant_shift)
            }
            #[inline(always)]
            fn trig_fast_ok(self) -> bool {
                $trig_ok(self)
            }
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                a_rs: usize,
                a_cs: usize,
                b: &[Self],
                b_rs: usize,
                b_cs: usize,
                c: &mut [Self],
            ) {
                crate::ops::matmul::gemm_dispatch(m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c)
            }
        }
    };
}

use crate::fastmath::{
    exp_f32, in_fast_range, ln_f32, pow_f32, sigmoid_f32, sin_cos_reduced, softplus_f32, tanh_f32,
};

/// `f64` sine or cosine for [`Element::sin_cos_fast`].
#[inline(always)]
fn sin_cos_f64(x: f64, quadrant_shift: u32) -> f64 {
    if quadrant_shift == 0 {
        x.sin()
    } else {
        x.cos()
    }
}

/// [`Element::trig_fast_ok`] for `f64`: the library functions take any input.
#[inline(always)]
fn always_ok(_: f64) -> bool {
    true
}

impl_element!(
    f32,
    "f32",
    exp_f32,
    ln_f32,
    pow_f32,
    tanh_f32,
    sigmoid_f32,
    softplus_f32,
    sin_cos_reduced,
    in_fast_range
);
impl_element!(
    f64,
    "f64",
    f64::exp,
    f64::ln,
    f64::powf,
    f64::tanh,
    crate::ops::unary::sigmoid_scalar,
    crate::ops::unary::softplus_scalar,
    sin_cos_f64,
    always_ok
);
