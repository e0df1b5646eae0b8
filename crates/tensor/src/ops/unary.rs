//! Elementwise maps over one strided input, and the named unary ops.

use crate::ops::strided::{coalesce, Rows};
use crate::parallel::{fill_chunks, fill_rows};
use crate::{Element, Tensor};

impl<T: Element> Tensor<T> {
    /// Applies `f` to every element, giving a new contiguous tensor of the
    /// same shape. Runs on several threads for large tensors, so `f` must be
    /// `Sync`. This is the building block for custom elementwise ops.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f64, -2.0], &[2])?;
    /// assert_eq!(a.map(|x| 3.0 * x).to_vec(), vec![3.0, -6.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn map(&self, f: impl Fn(T) -> T + Sync + Send) -> Tensor<T> {
        let n = self.numel();
        let mut out = vec![T::ZERO; n];
        let src = self.storage.as_slice();
        if let Some(a) = self.as_slice() {
            fill_chunks(&mut out, |start, chunk| {
                let n = chunk.len();
                for (o, &x) in chunk.iter_mut().zip(&a[start..start + n]) {
                    *o = f(x);
                }
            });
        } else {
            let [l] = coalesce([&self.layout]);
            let rows = Rows::of(&l);
            fill_rows(&mut out, rows.len, |first_row, chunk| {
                for (r, orow) in chunk.chunks_mut(rows.len).enumerate() {
                    let base = rows.bases[first_row + r];
                    for (i, o) in orow.iter_mut().enumerate() {
                        *o = f(src[base + i * rows.stride]);
                    }
                }
            });
        }
        Tensor::from_parts(out, self.shape())
    }

    /// `-x`.
    pub fn neg(&self) -> Self {
        self.map(|x| -x)
    }
    /// `e^x`.
    pub fn exp(&self) -> Self {
        self.map(T::exp)
    }
    /// Natural logarithm (`-inf` at 0, NaN below).
    pub fn ln(&self) -> Self {
        self.map(T::ln)
    }
    /// Square root (NaN below 0).
    pub fn sqrt(&self) -> Self {
        self.map(T::sqrt)
    }
    /// `|x|`.
    pub fn abs(&self) -> Self {
        self.map(T::abs)
    }
    /// `x^e` for a scalar exponent.
    pub fn powf(&self, e: f64) -> Self {
        let e = T::from_f64(e);
        self.map(move |x| x.powf(e))
    }
    /// `x²`.
    pub fn square(&self) -> Self {
        self.map(|x| x * x)
    }
    /// `1 / x`.
    pub fn recip(&self) -> Self {
        self.map(|x| T::ONE / x)
    }
    /// `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
    pub fn sigmoid(&self) -> Self {
        self.map(sigmoid_scalar)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Self {
        self.map(T::tanh)
    }
    /// `max(x, 0)`.
    pub fn relu(&self) -> Self {
        self.map(|x| if x > T::ZERO { x } else { T::ZERO })
    }
    /// Sine.
    pub fn sin(&self) -> Self {
        self.map(T::sin)
    }
    /// Cosine.
    pub fn cos(&self) -> Self {
        self.map(T::cos)
    }
    /// `ln(1 + e^x)`, without overflow for large `x`.
    pub fn softplus(&self) -> Self {
        self.map(softplus_scalar)
    }
    /// Limits every element to `[min, max]`.
    pub fn clamp(&self, min: f64, max: f64) -> Self {
        let (lo, hi) = (T::from_f64(min), T::from_f64(max));
        self.map(move |x| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        })
    }
    /// `x + c`.
    pub fn add_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| x + c)
    }
    /// `x · c`.
    pub fn mul_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| x * c)
    }
    /// `x - c`.
    pub fn sub_scalar(&self, c: f64) -> Self {
        self.add_scalar(-c)
    }
    /// `x / c`.
    pub fn div_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| x / c)
    }
    /// `c - x`.
    pub fn rsub_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| c - x)
    }
}

/// Sigmoid that never evaluates `e^{large}`: for negative `x` it uses
/// `e^x / (1 + e^x)`.
#[inline]
pub fn sigmoid_scalar<T: Element>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// `ln(1 + e^x) = max(x, 0) + ln(1 + e^{-|x|})`, stable for any `x`.
#[inline]
pub fn softplus_scalar<T: Element>(x: T) -> T {
    x.max_val(T::ZERO) + (-x.abs()).exp().ln_1p()
}
