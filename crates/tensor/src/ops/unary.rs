//! Elementwise maps over one strided input, and the named unary ops.

use std::mem::MaybeUninit;

use crate::buffer::{try_filled, try_filled_as, AllocError, Data};
use crate::error::Result;
use crate::ops::strided::{coalesce, fill_rows, inner, Rows};
use crate::parallel::{fill_chunks, fill_segments, for_each_chunk, use_parallel};
use crate::simd;
use crate::{Element, Tensor};

/// Output rows per block of [`transposed_map`].
const TILE_ROWS: usize = 16;

/// `Some((rows, cols, column stride))` if a coalesced layout is a matrix
/// whose rows are strided but whose columns are contiguous in the buffer
/// (a transposed matrix), else `None`.
fn transposed(l: &crate::Layout) -> Option<(usize, usize, usize)> {
    match (&l.shape[..], &l.strides[..]) {
        (&[rows, cols], &[1, col_stride]) if col_stride != 1 => Some((rows, cols, col_stride)),
        _ => None,
    }
}

/// `f` over a transposed matrix (see [`transposed`]) at `offset` in `src`,
/// in row-major order.
///
/// Why not row by row: each output row walks down a buffer column, one
/// cache line per element, and with hundreds of rows those lines are gone
/// before the next row could reuse them (the strided copy of a `Linear`
/// weight's gradient, which arrives transposed, was most of an SGD step).
/// Here blocks of [`TILE_ROWS`] output rows are filled eight columns at a
/// time: each column piece is contiguous in `src`, so every source cache
/// line is read once, and the block's output lines stay in L1 while it
/// fills. Sixteen rows, not 32: rows of 512 `f32`s are 2 KiB apart, so 32
/// of them fall into two L1 sets and evict each other. Measured (one
/// thread, `to_contiguous` of a transposed 784 × 512 `f32`): 675 µs before,
/// 119 µs tiled. Blocks run on the thread pool when large; each element is
/// computed alone, so the result does not depend on the thread count.
pub(crate) fn transposed_map<T: Element, const ALIGNED: bool>(
    src: &[T],
    offset: usize,
    rows: usize,
    cols: usize,
    col_stride: usize,
    f: &(impl Fn(T) -> T + Sync + Send),
) -> std::result::Result<Data<T>, AllocError> {
    let block = |r0: usize, out: &mut [MaybeUninit<T>]| {
        let nr = out.len() / cols;
        let piece = |c: usize| &src[offset + c * col_stride + r0..][..nr];
        let mut c = 0;
        // Eight columns at a time: eight contiguous source pieces, and each
        // output row gets a run of eight consecutive elements.
        while c + 8 <= cols {
            let ps: [&[T]; 8] = std::array::from_fn(|k| piece(c + k));
            for i in 0..nr {
                let o = &mut out[i * cols + c..][..8];
                for k in 0..8 {
                    o[k] = MaybeUninit::new(f(ps[k][i]));
                }
            }
            c += 8;
        }
        for c in c..cols {
            for (i, &x) in piece(c).iter().enumerate() {
                out[i * cols + c] = MaybeUninit::new(f(x));
            }
        }
    };
    let n = rows * cols;
    let step = TILE_ROWS * cols;
    // SAFETY: the blocks are `out` cut into pieces of whole rows (the last
    // may be shorter), and `block` writes every element of each: for each
    // of its `nr` rows `i` and each column `c`, `out[i·cols + c]`.
    unsafe {
        try_filled_as::<T, ALIGNED>(n, |out| {
            if use_parallel(n) {
                // `start` is a multiple of `step`: block `start / step`.
                for_each_chunk(out, step, |start, o| block(start / cols, o));
            } else {
                for (b, o) in out.chunks_mut(step).enumerate() {
                    block(b * TILE_ROWS, o);
                }
            }
        })
    }
}

impl<T: Element> Tensor<T> {
    /// Applies `f` to every element, giving a new contiguous tensor of the
    /// same shape. Runs on several threads for large tensors, so `f` must be
    /// `Sync`. This is the building block for custom elementwise ops.
    ///
    /// # Errors
    /// [`Error::TooLarge`](crate::Error::TooLarge) (op `"map"`) if the output
    /// cannot be allocated, which only a huge broadcast view can cause (see
    /// the crate docs on sizes). The named unary ops below return the same
    /// error under their own names.
    ///
    /// # Panics
    /// If `f` panics.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f64, -2.0], &[2])?;
    /// assert_eq!(a.map(|x| 3.0 * x)?.to_vec(), vec![3.0, -6.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn map(&self, f: impl Fn(T) -> T + Sync + Send) -> Result<Tensor<T>> {
        self.map_named("map", f)
    }

    /// Internal: [`map`](Self::map), naming `op` in the error if the output
    /// cannot be allocated.
    pub(crate) fn map_named(
        &self,
        op: &'static str,
        f: impl Fn(T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        // Scalar tapes: no buffer, no layout walk. The one element still
        // goes through the dispatched kernels, so `fastmath` functions use
        // hardware FMA rather than library calls (see `simd::map_one`).
        if self.is_0d() {
            return Ok(Tensor::scalar(simd::map_one(self.first(), &f)));
        }
        if self.numel() == 1 {
            return Ok(Tensor::scalar_shaped(
                simd::map_one(self.first(), &f),
                self.dims(),
            ));
        }
        let out = self
            .try_map_to_data::<true>(&f)
            .map_err(|e| e.at(op, self.dims()))?;
        Ok(Tensor::from_parts(out, self.dims()))
    }

    /// `f` applied to every element, in row-major order: a tensor buffer
    /// (see `buffer::try_filled`) when `ALIGNED`, else a plain `Vec` in
    /// [`Data`] (for [`to_vec`](Self::to_vec)).
    ///
    /// # Panics
    /// If the buffer cannot be allocated (see
    /// [`try_map_to_data`](Self::try_map_to_data)).
    pub(crate) fn map_to_data<const ALIGNED: bool>(
        &self,
        f: &(impl Fn(T) -> T + Sync + Send),
    ) -> Data<T> {
        match self.try_map_to_data::<ALIGNED>(f) {
            Ok(d) => d,
            Err(e) => e.fail(),
        }
    }

    /// [`map_to_data`](Self::map_to_data), or an [`AllocError`] if the
    /// output (or the list of row starts) cannot be allocated.
    pub(crate) fn try_map_to_data<const ALIGNED: bool>(
        &self,
        f: &(impl Fn(T) -> T + Sync + Send),
    ) -> std::result::Result<Data<T>, AllocError> {
        let n = self.numel();
        let src = self.storage.as_slice();
        if let Some(a) = self.as_slice() {
            // SAFETY: `fill_chunks` passes disjoint chunks that together are
            // all of `out`, and `simd::map` writes every element of each
            // chunk (or panics).
            return unsafe {
                try_filled_as::<T, ALIGNED>(n, |out| {
                    fill_chunks(out, |start, chunk| simd::map(&a[start..], chunk, f))
                })
            };
        }
        let [l] = coalesce([&self.layout]);
        if let Some((rows, cols, col_stride)) = transposed(&l) {
            return transposed_map::<T, ALIGNED>(src, l.offset, rows, cols, col_stride, f);
        }
        let (len, stride) = inner(&l);
        let row = |base: usize, seg: &mut [MaybeUninit<T>]| {
            if stride == 1 {
                simd::map(&src[base..], seg, f);
            } else {
                simd::map_strided(&src[base..], stride, seg, f);
            }
        };
        if !use_parallel(n) {
            // SAFETY: `fill_rows` hands out row pieces that tile `out` (it
            // panics otherwise) and `row` writes every element of each.
            return unsafe {
                try_filled_as::<T, ALIGNED>(n, |out| fill_rows(out, [&l], |[b], seg| row(b, seg)))
            };
        }
        let rows = Rows::try_of(&l)?;
        // SAFETY: `fill_segments` passes pieces that together are all of
        // `out` (it cuts `out` into chunks and each chunk into row pieces),
        // and `row` writes every element of each.
        unsafe {
            try_filled_as::<T, ALIGNED>(n, |out| {
                fill_segments(out, len, |r, c, seg| row(rows.bases[r] + c * stride, seg))
            })
        }
    }

    /// `-x`.
    ///
    /// The named unary ops ([`exp`](Self::exp), [`ln`](Self::ln),
    /// [`sqrt`](Self::sqrt), [`tanh`](Self::tanh), …) and the scalar
    /// arithmetic ([`add_scalar`](Self::add_scalar),
    /// [`mul_scalar`](Self::mul_scalar), …) all map elementwise like this and
    /// return a new contiguous tensor of the same shape.
    ///
    /// # Errors
    /// [`Error::TooLarge`](crate::Error::TooLarge), naming the op, if the
    /// output cannot be allocated; only a huge broadcast view can cause
    /// this. The same holds for every named unary op and scalar op.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0f64, 0.0, 4.0], &[3])?;
    /// assert_eq!(x.neg()?.to_vec(), vec![1.0, -0.0, -4.0]);
    /// assert_eq!(x.abs()?.sqrt()?.to_vec(), vec![1.0, 0.0, 2.0]);
    /// assert_eq!(x.square()?.mul_scalar(0.5)?.add_scalar(1.0)?.to_vec(), vec![1.5, 1.0, 9.0]);
    /// assert_eq!(x.rsub_scalar(1.0)?.to_vec(), vec![2.0, 1.0, -3.0]);
    /// assert_eq!(x.exp()?.ln()?.sub(&x)?.abs()?.max_all()?.item()?, 0.0);
    /// assert_eq!(x.sigmoid()?.get(&[1])?, 0.5);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn neg(&self) -> Result<Self> {
        self.map_named("neg", |x| -x)
    }
    /// `e^x`. For `f32` this uses the vectorised
    /// [`fastmath::exp_f32`](crate::fastmath::exp_f32) (relative error about
    /// `1e-7`; `0` below `-104`, `+inf` above `88.72`).
    pub fn exp(&self) -> Result<Self> {
        self.map_named("exp", T::exp_fast)
    }
    /// Natural logarithm (`-inf` at 0, NaN below). For `f32` this uses the
    /// vectorised [`fastmath::ln_f32`](crate::fastmath::ln_f32) (within one
    /// unit in the last place of the exact result).
    pub fn ln(&self) -> Result<Self> {
        self.map_named("ln", T::ln_fast)
    }
    /// Square root (NaN below 0).
    pub fn sqrt(&self) -> Result<Self> {
        self.map_named("sqrt", T::sqrt)
    }
    /// `|x|`.
    pub fn abs(&self) -> Result<Self> {
        self.map_named("abs", T::abs)
    }
    /// `x^e` for a scalar exponent.
    ///
    /// The exponents 0, ±½, ±1, ±2 and 3 (squares in every MSE loss, the
    /// cube in GELU's tanh form, `recip`'s derivative) take the short forms
    /// `1`, `√x`, `1/√x`, `x`, `1/x`, `x·x`, `(1/x)²` and `x·x·x`, as
    /// PyTorch's `pow` does: the library's `powf` is a scalar call that ran
    /// 90 times slower than `x·x` on 1M `f32`. Other exponents use
    /// [`fastmath::pow_f32`](crate::fastmath::pow_f32) for `f32` (vectorised,
    /// within one unit in the last place) and the library's `powf` for
    /// `f64`. The special values (zeros of either sign, infinities, NaN)
    /// come out as `powf` gives them; finite results may differ from
    /// `powf`'s in the last bit (`x·x`, `1/x` and `√x` are correctly
    /// rounded, the two-step forms within two units in the last place).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-2.0f32, 0.0, 3.0], &[3])?;
    /// assert_eq!(x.powf(2.0)?.to_vec(), vec![4.0, 0.0, 9.0]);
    /// assert_eq!(x.powf(-1.0)?.to_vec(), vec![-0.5, f32::INFINITY, 1.0 / 3.0]);
    /// assert!(x.powf(0.5)?.to_vec()[0].is_nan());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn powf(&self, e: f64) -> Result<Self> {
        let e = T::from_f64(e);
        let is = |v: f64| e == T::from_f64(v);
        if is(2.0) {
            self.map_named("powf", |x| x * x)
        } else if is(1.0) {
            self.map_named("powf", |x| x)
        } else if is(0.0) {
            // x⁰ = 1 for every x, NaN included.
            self.map_named("powf", |_| T::ONE)
        } else if is(-1.0) {
            self.map_named("powf", |x| T::ONE / x)
        } else if is(-2.0) {
            // (1/x)², not 1/(x·x): x·x overflows for |x| > 1.8e19 in f32,
            // where x⁻² is still a (subnormal) number.
            self.map_named("powf", |x| {
                let r = T::ONE / x;
                r * r
            })
        } else if is(3.0) {
            self.map_named("powf", |x| x * x * x)
        } else if is(0.5) {
            self.map_named("powf", pow_half)
        } else if is(-0.5) {
            self.map_named("powf", |x| T::ONE / pow_half(x))
        } else {
            self.map_named(
                "powf",
                #[inline(always)]
                move |x| x.powf_fast(e),
            )
        }
    }
    /// `x²`.
    pub fn square(&self) -> Result<Self> {
        self.map_named("square", |x| x * x)
    }
    /// `1 / x`.
    pub fn recip(&self) -> Result<Self> {
        self.map_named("recip", |x| T::ONE / x)
    }
    /// `1 / (1 + e^-x)`, computed without overflow for large `|x|` (for
    /// `f32` by the vectorised
    /// [`fastmath::sigmoid_f32`](crate::fastmath::sigmoid_f32)).
    pub fn sigmoid(&self) -> Result<Self> {
        self.map_named("sigmoid", T::sigmoid_fast)
    }
    /// Hyperbolic tangent (for `f32` by the vectorised
    /// [`fastmath::tanh_f32`](crate::fastmath::tanh_f32), relative error
    /// about `1.4e-7`).
    pub fn tanh(&self) -> Result<Self> {
        self.map_named("tanh", T::tanh_fast)
    }
    /// `max(x, 0)`. NaN stays NaN (as in PyTorch and
    /// [`maximum_scalar`](Self::maximum_scalar)): a NaN hidden as 0 would
    /// let a diverged model train on silently.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-2.0f32, 0.0, 3.0, f32::NAN], &[4])?;
    /// let y = x.relu()?.to_vec();
    /// assert_eq!(y[..3], [0.0, 0.0, 3.0]);
    /// assert!(y[3].is_nan());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn relu(&self) -> Result<Self> {
        // `!(x <= 0)` is true for positive x and for NaN.
        self.map_named("relu", |x| if x <= T::ZERO { T::ZERO } else { x })
    }
    /// Sine. For `f32`, vectorised (see
    /// [`fastmath::sin_f32`](crate::fastmath::sin_f32) for its accuracy).
    pub fn sin(&self) -> Result<Self> {
        self.sin_or_cos("sin", 0)
    }
    /// Cosine, as [`sin`](Self::sin).
    pub fn cos(&self) -> Result<Self> {
        self.sin_or_cos("cos", 1)
    }

    /// Sine (`quadrant_shift = 0`) or cosine (`1`): the branch-free kernel
    /// over whole chunks, then the standard library function for the rare
    /// elements beyond its range (huge arguments, NaN, infinities), so one
    /// such element does not take its chunk off the vector path.
    fn sin_or_cos(&self, op: &'static str, quadrant_shift: u32) -> Result<Self> {
        let exact = move |x: T| {
            if quadrant_shift == 0 {
                x.sin()
            } else {
                x.cos()
            }
        };
        let one = move |x: T| {
            if x.trig_fast_ok() {
                x.sin_cos_fast(quadrant_shift)
            } else {
                exact(x)
            }
        };
        let Some(a) = self.as_slice().filter(|a| a.len() > 1) else {
            // One element or a strided view: per element, still correct.
            return self.map_named(op, one);
        };
        let fast = move |x: T| x.sin_cos_fast(quadrant_shift);
        let outside = |x: T| if x.trig_fast_ok() { T::ZERO } else { T::ONE };
        // SAFETY: `fill_chunks` passes disjoint chunks that together are all
        // of `out`; `simd::map` writes every element of each chunk, and the
        // fix-up below only overwrites some of them.
        let out = unsafe {
            try_filled(a.len(), |out| {
                fill_chunks(out, |start, chunk| {
                    let src = &a[start..start + chunk.len()];
                    simd::map(src, chunk, &fast);
                    if simd::map_fold(src, T::ZERO, &outside, &T::max_val) != T::ZERO {
                        for (o, &x) in chunk.iter_mut().zip(src) {
                            if !x.trig_fast_ok() {
                                *o = MaybeUninit::new(exact(x));
                            }
                        }
                    }
                })
            })
        };
        Ok(Tensor::from_parts(
            out.map_err(|e| e.at(op, self.dims()))?,
            self.dims(),
        ))
    }
    /// `ln(1 + e^x)`, without overflow for large `x`. For `f32`,
    /// vectorised (see [`fastmath::softplus_f32`](crate::fastmath::softplus_f32)
    /// for its accuracy).
    pub fn softplus(&self) -> Result<Self> {
        self.map_named("softplus", T::softplus_fast)
    }
    /// Limits every element to `[min, max]`, as `min(max(x, min), max)`;
    /// NaN stays NaN. When `min > max` every element becomes `max`, as in
    /// PyTorch (unlike [`f64::clamp`], which panics).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-2.0f32, 0.5, 3.0], &[3])?;
    /// assert_eq!(x.clamp(0.0, 1.0)?.to_vec(), vec![0.0, 0.5, 1.0]);
    /// assert_eq!(x.clamp(2.0, 1.0)?.to_vec(), vec![1.0, 1.0, 1.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn clamp(&self, min: f64, max: f64) -> Result<Self> {
        let (lo, hi) = (T::from_f64(min), T::from_f64(max));
        self.map_named("clamp", move |x| {
            let y = if x < lo { lo } else { x };
            if y > hi {
                hi
            } else {
                y
            }
        })
    }
    /// `x + c`.
    pub fn add_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("add_scalar", move |x| x + c)
    }
    /// `x · c`.
    pub fn mul_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("mul_scalar", move |x| x * c)
    }
    /// `x - c`.
    pub fn sub_scalar(&self, c: f64) -> Result<Self> {
        // `x + (-c)`, as `sub_scalar` has always computed it.
        let c = T::from_f64(-c);
        self.map_named("sub_scalar", move |x| x + c)
    }
    /// `x / c`.
    pub fn div_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("div_scalar", move |x| x / c)
    }
    /// `c - x`.
    pub fn rsub_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("rsub_scalar", move |x| c - x)
    }
    /// `c / x` (what `c / t` computes for a number `c`).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![2.0f32, -4.0, 0.0], &[3])?;
    /// assert_eq!(x.rdiv_scalar(1.0)?.to_vec(), vec![0.5, -0.25, f32::INFINITY]);
    /// assert_eq!((1.0 / &x)?, x.rdiv_scalar(1.0)?);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn rdiv_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("rdiv_scalar", move |x| c / x)
    }
}

/// `x^½` as `powf` defines it, from `√x`: `powf(-0, ½)` is `+0` where
/// `√-0` is `-0` (adding `+0` turns `-0` into `+0` and changes nothing
/// else), and `powf(-∞, ½)` is `+∞` where `√-∞` is NaN.
#[inline]
fn pow_half<T: Element>(x: T) -> T {
    if x == T::NEG_INFINITY {
        T::INFINITY
    } else {
        x.sqrt() + T::ZERO
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

#[cfg(test)]
mod tests {
    use crate::fastmath::ulps;
    use crate::Tensor;

    /// The short forms of `powf` against the library's `powf`: the same
    /// special values bit for bit, finite results within two units in the
    /// last place of the exact power (computed in f64, where every short
    /// form's f32 result is exact to far more than one f32 unit).
    #[test]
    fn powf_short_forms_match_the_general_power() {
        let mut xs = vec![
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0,
            -1.0,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-40,
            3e38,
            -3e38,
            1e20,
            6e-20,
        ];
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            // xorshift: magnitudes from 1e-30 to 1e30, both signs
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mant = (state % 10_000) as f32 / 1000.0 + 0.01;
            let exp = (state >> 16) % 61;
            let sign = if state & 1 == 0 { 1.0 } else { -1.0 };
            xs.push(sign * mant * 10f32.powi(exp as i32 - 30));
        }
        let t = Tensor::from_vec(xs.clone(), &[xs.len()]).unwrap();
        for e in [2.0f32, 1.0, 0.0, -1.0, -2.0, 3.0, 0.5, -0.5] {
            let got = t.powf(e as f64).unwrap().to_vec();
            for (&x, &y) in xs.iter().zip(&got) {
                let want = x.powf(e);
                let exact = (x as f64).powf(e as f64) as f32;
                let ok = if want.is_nan() || exact.is_nan() {
                    y.is_nan() && want.is_nan()
                } else if !want.is_finite() || want == 0.0 || !exact.is_normal() {
                    // Infinities, zeros and subnormal results: the same
                    // value as powf's (a subnormal within two of its units).
                    y == want || (y.is_finite() && (y - want).abs() <= 2.0 * 1e-45)
                } else {
                    y.is_sign_negative() == want.is_sign_negative() && ulps(y, exact) <= 2
                };
                assert!(
                    ok,
                    "x = {x:e}, e = {e}: got {y:e}, powf gives {want:e}, exact {exact:e}"
                );
                if want == 0.0 {
                    assert_eq!(
                        y.is_sign_negative(),
                        want.is_sign_negative(),
                        "sign of zero, x = {x:e}, e = {e}"
                    );
                }
            }
        }
    }

    /// Hand-worked: the values a reader can check in their head.
    #[test]
    fn powf_by_hand() {
        let t = Tensor::from_vec(vec![4.0f64, -0.0, 0.25], &[3]).unwrap();
        assert_eq!(t.powf(2.0).unwrap().to_vec(), vec![16.0, 0.0, 0.0625]);
        assert_eq!(t.powf(0.5).unwrap().to_vec(), vec![2.0, 0.0, 0.5]);
        assert!(t.powf(0.5).unwrap().to_vec()[1].is_sign_positive());
        assert_eq!(
            t.powf(-0.5).unwrap().to_vec(),
            vec![0.5, f64::INFINITY, 2.0]
        );
        assert_eq!(
            t.powf(-2.0).unwrap().to_vec(),
            vec![0.0625, f64::INFINITY, 16.0]
        );
        assert_eq!(t.powf(3.0).unwrap().to_vec()[..2], [64.0, -0.0]);
        assert!(t.powf(3.0).unwrap().to_vec()[1].is_sign_negative());
        assert_eq!(t.powf(1.5).unwrap().to_vec(), vec![8.0, 0.0, 0.125]);
    }
}
