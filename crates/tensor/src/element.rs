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
    /// `tanh(self)`, vectorisable: for `f32`
    /// [`fastmath::tanh_f32`](crate::fastmath::tanh_f32), for `f64` the same as
    /// [`tanh`](Self::tanh).
    fn tanh_fast(self) -> Self;
    /// The logistic function, overflow-free and vectorisable: for `f32`
    /// [`fastmath::sigmoid_f32`](crate::fastmath::sigmoid_f32), for `f64`
    /// [`sigmoid_scalar`](crate::sigmoid_scalar).
    fn sigmoid_fast(self) -> Self;

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
    ($t:ty, $name:literal, $exp:path, $tanh:path, $sigmoid:path) => {
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
            fn tanh_fast(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn sigmoid_fast(self) -> Self {
                $sigmoid(self)
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

use crate::fastmath::{exp_f32, sigmoid_f32, tanh_f32};

impl_element!(f32, "f32", exp_f32, tanh_f32, sigmoid_f32);
impl_element!(
    f64,
    "f64",
    f64::exp,
    f64::tanh,
    crate::ops::unary::sigmoid_scalar
);
