//! Broadcasting elementwise ops on two (or three) inputs.

use crate::error::Result;
use crate::layout::{broadcast_shapes, Layout};
use std::mem::MaybeUninit;

use crate::buffer::{try_filled, AllocError};
use crate::layout::checked_numel;
use crate::ops::strided::{coalesce, fill_rows, inner, Rows};
use crate::parallel::{fill_chunks, fill_segments, for_each_chunk, use_parallel, CHUNK};
use crate::simd;
use crate::{Element, Tensor};

/// The row starts of a coalesced layout of rank 3 or more (lower ranks
/// need no list; see [`row_starts`]).
fn listed_rows(l: &Layout) -> std::result::Result<Option<Rows>, AllocError> {
    (l.shape.len() > 2).then(|| Rows::try_of(l)).transpose()
}

/// Where each row of `l` starts, from [`listed_rows`]`(l)`.
fn row_starts<'a>(l: &Layout, listed: &'a Option<Rows>) -> simd::RowStarts<'a> {
    match (listed, l.shape.len()) {
        (Some(rows), _) => simd::RowStarts::Listed(&rows.bases),
        (None, 2) => simd::RowStarts::Every {
            first: l.offset,
            stride: l.strides[0],
        },
        (None, _) => simd::RowStarts::Every {
            first: l.offset,
            stride: 0,
        },
    }
}

impl<T: Element> Tensor<T> {
    /// Combines `self` and `other` elementwise with NumPy broadcasting, giving
    /// a new contiguous tensor of the broadcast shape. `op` names the call in
    /// errors. This is the building block for custom binary ops. `f` may run
    /// on several threads for large outputs.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast; the message names `op` and both shapes.
    /// [`Error::TooLarge`](crate::Error::TooLarge) (naming `op` and the
    /// broadcast shape) if the result is too large for memory or cannot be
    /// allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3, 1])?;
    /// let b = Tensor::from_vec(vec![10.0f32, 20.0], &[2])?;
    /// let c = a.zip_with(&b, "my_op", |x, y| x * y)?;
    /// assert_eq!(c.shape(), &[3, 2]);
    /// assert_eq!(c.to_vec(), vec![10.0, 20.0, 20.0, 40.0, 30.0, 60.0]);
    /// let err = a.zip_with(&Tensor::zeros(&[2, 2]), "my_op", |x, _| x).unwrap_err();
    /// assert_eq!(err.op(), "my_op");
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    #[inline]
    pub fn zip_with(
        &self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        self.zip_impl::<false>(other, op, f)
    }

    /// [`zip_with`](Self::zip_with) for a cheap `f` (add, multiply, compare),
    /// whose whole-row loops run in the instruction set that is fastest for
    /// memory-bound work (see `simd::zip_light`).
    #[inline]
    fn zip_light(
        &self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        self.zip_impl::<true>(other, op, f)
    }

    /// Both entry points: two 0-d operands inline at the call site (on a
    /// scalar tape the whole op is `f`), everything else goes out of line.
    #[inline(always)]
    fn zip_impl<const LIGHT: bool>(
        &self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        if self.is_0d() && other.is_0d() {
            return Ok(Tensor::scalar(f(self.first(), other.first())));
        }
        self.zip_nd::<LIGHT>(other, op, f)
    }

    /// [`zip_with`](Self::zip_with) for operands that are not both 0-d.
    #[inline(never)]
    fn zip_nd<const LIGHT: bool>(
        &self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        // The row kernels, in the instruction set for cheap or costly `f`.
        let zip = |a: &[T], b: &[T], dst: &mut [MaybeUninit<T>]| {
            if LIGHT {
                simd::zip_light(a, b, dst, &f)
            } else {
                simd::zip(a, b, dst, &f)
            }
        };
        let zip_rhs = |a: &[T], y: T, dst: &mut [MaybeUninit<T>]| {
            if LIGHT {
                simd::zip_rhs_light(a, y, dst, &f)
            } else {
                simd::zip_rhs(a, y, dst, &f)
            }
        };
        let zip_lhs = |x: T, b: &[T], dst: &mut [MaybeUninit<T>]| {
            if LIGHT {
                simd::zip_lhs_light(x, b, dst, &f)
            } else {
                simd::zip_lhs(x, b, dst, &f)
            }
        };
        if self.numel() == 1 && other.numel() == 1 {
            // Scalar tapes: both shapes are all ones, so the broadcast shape
            // is the longer one; no buffer, no layout work.
            let shape = if self.ndim() >= other.ndim() {
                self.dims()
            } else {
                other.dims()
            };
            return Ok(Tensor::scalar_shaped(f(self.first(), other.first()), shape));
        }
        let same = self.dims() == other.dims();
        let shape = if same {
            self.shape()
        } else {
            broadcast_shapes(op, self.dims(), other.dims())?
        };
        let n = checked_numel::<T>(op, &shape)?;
        // Contiguous operands of the output's shape, or one of them a single
        // element (a tensor times a 0-d scalar): no layout work at all.
        let (sa, sb) = (self.as_slice(), other.as_slice());
        let fast = match (sa, sb) {
            (Some(a), Some(b)) if same => Some(Fast::Both(a, b)),
            (Some(a), _) if other.numel() == 1 && self.dims() == &shape[..] => {
                Some(Fast::Rhs(a, other.first()))
            }
            (_, Some(b)) if self.numel() == 1 && other.dims() == &shape[..] => {
                Some(Fast::Lhs(self.first(), b))
            }
            _ => None,
        };
        if let Some(fast) = fast {
            // SAFETY: `fill_chunks` passes disjoint chunks that together are
            // all of `out`; each zip kernel writes all of its chunk.
            let out = unsafe {
                try_filled(n, |out| {
                    fill_chunks(out, |s, chunk| match fast {
                        Fast::Both(a, b) => zip(&a[s..], &b[s..], chunk),
                        Fast::Rhs(a, y) => zip_rhs(&a[s..], y, chunk),
                        Fast::Lhs(x, b) => zip_lhs(x, &b[s..], chunk),
                    })
                })
            };
            return Ok(Tensor::from_parts(
                out.map_err(|e| e.at(op, &shape))?,
                &shape,
            ));
        }
        let la = self.layout.broadcast_to(&shape)?;
        let lb = other.layout.broadcast_to(&shape)?;
        let [la, lb] = coalesce([&la, &lb]);
        let ((len, da), (_, db)) = (inner(&la), inner(&lb));
        let (sa, sb) = (self.storage.as_slice(), other.storage.as_slice());
        // Vectorised loops for the common cases: both operands running along
        // the row, or one of them fixed (broadcast) over it.
        let row = |oa: usize, ob: usize, seg: &mut [MaybeUninit<T>]| match (da, db) {
            (1, 1) => zip(&sa[oa..], &sb[ob..], seg),
            (1, 0) => zip_rhs(&sa[oa..], sb[ob], seg),
            (0, 1) => zip_lhs(sa[oa], &sb[ob..], seg),
            (da, db) => {
                for (i, o) in seg.iter_mut().enumerate() {
                    *o = MaybeUninit::new(f(sa[oa + i * da], sb[ob + i * db]));
                }
            }
        };
        let out = if use_parallel(n) {
            let rows = listed_rows(&la).and_then(|ra| Ok((ra, listed_rows(&lb)?)));
            let (ra, rb) = rows.map_err(|e| e.at(op, &shape))?;
            let a = simd::RowSource {
                data: sa,
                starts: row_starts(&la, &ra),
                step: da,
            };
            let b = simd::RowSource {
                data: sb,
                starts: row_starts(&lb, &rb),
                step: db,
            };
            // SAFETY: `for_each_chunk` passes chunks that together are all
            // of `out`; `zip_rows` writes every element of each.
            unsafe {
                try_filled(n, |out| {
                    for_each_chunk(out, CHUNK, |s, chunk| {
                        simd::zip_rows(LIGHT, &a, &b, len, s, chunk, &f)
                    })
                })
            }
        } else {
            // SAFETY: `fill_rows` passes row pieces that tile `out` (or
            // panics); `row` writes every element of each.
            unsafe {
                try_filled(n, |out| {
                    fill_rows(out, [&la, &lb], |[oa, ob], seg| row(oa, ob, seg))
                })
            }
        };
        Ok(Tensor::from_parts(
            out.map_err(|e| e.at(op, &shape))?,
            &shape,
        ))
    }

    /// `self + other`, broadcasting (NumPy rules: shapes are aligned from the
    /// right and each pair of dimensions must be equal or contain a 1).
    ///
    /// [`sub`](Self::sub), [`mul`](Self::mul), [`div`](Self::div),
    /// [`pow`](Self::pow), [`maximum`](Self::maximum) and
    /// [`minimum`](Self::minimum) work the same way.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::{Error, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let row = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], &[3])?;
    /// let col = Tensor::from_vec(vec![1.0f32, 2.0], &[2, 1])?;
    /// assert_eq!(x.add(&row)?.to_vec(), vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    /// assert_eq!(x.sub(&col)?.to_vec(), vec![0.0, 1.0, 2.0, 2.0, 3.0, 4.0]);
    /// assert_eq!(x.mul(&Tensor::scalar(2.0))?.to_vec(), vec![2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
    /// assert_eq!(col.mul(&row)?.shape(), &[2, 3]); // an outer product
    /// assert_eq!(x.div(&col)?.get(&[1, 2])?, 3.0);
    /// assert_eq!(x.pow(&Tensor::scalar(2.0))?.get(&[0, 2])?, 9.0);
    /// assert_eq!(x.maximum(&Tensor::scalar(3.5))?.to_vec(), vec![3.5, 3.5, 3.5, 4.0, 5.0, 6.0]);
    ///
    /// let err = x.add(&Tensor::zeros(&[2])).unwrap_err();
    /// assert!(matches!(err, Error::ShapeMismatch { op: "add", .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "add of [2, 3] by [2]: dimensions 3 and 2 at axis 1 of the broadcast result cannot broadcast"
    /// );
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn add(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "add", |a, b| a + b)
    }
    /// `self - other`, broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "sub", |a, b| a - b)
    }
    /// `self · other` elementwise, broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn mul(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "mul", |a, b| a * b)
    }
    /// `self / other` elementwise, broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn div(&self, other: &Self) -> Result<Self> {
        // Light too: even with a divide, a 1M-element loop is bound by
        // memory, and AVX2 ran it in 67-68 µs against 74-76 for AVX-512 (2
        // threads, alternating in one process).
        self.zip_light(other, "div", |a, b| a / b)
    }
    /// `self ^ other` elementwise, broadcasting. For `f32` this is the
    /// vectorised [`fastmath::pow_f32`](crate::fastmath::pow_f32) (within
    /// one unit in the last place; zeros, infinities and NaN as `powf`).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn pow(&self, other: &Self) -> Result<Self> {
        self.zip_with(
            other,
            "pow",
            #[inline(always)]
            |a, b| a.powf_fast(b),
        )
    }
    /// Elementwise maximum, broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn maximum(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "maximum", |a, b| a.max_val(b))
    }
    /// Elementwise minimum, broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn minimum(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "minimum", |a, b| a.min_val(b))
    }
    /// Mask (1 where true, 0 elsewhere) of `self == other`, broadcasting.
    ///
    /// [`ne_mask`](Self::ne_mask), [`lt_mask`](Self::lt_mask),
    /// [`le_mask`](Self::le_mask), [`gt_mask`](Self::gt_mask) and
    /// [`ge_mask`](Self::ge_mask) work the same way. A NaN compares unequal
    /// to everything, so only `ne_mask` gives 1 for it. For a comparison with
    /// a constant, see [`gt_scalar`](Self::gt_scalar) and friends.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, f32::NAN], &[4])?;
    /// let two = Tensor::scalar(2.0f32);
    /// assert_eq!(a.eq_mask(&two)?.to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    /// assert_eq!(a.ne_mask(&two)?.to_vec(), vec![1.0, 0.0, 1.0, 1.0]);
    /// assert_eq!(a.lt_mask(&two)?.to_vec(), vec![1.0, 0.0, 0.0, 0.0]);
    /// assert_eq!(a.ge_mask(&two)?.to_vec(), vec![0.0, 1.0, 1.0, 0.0]);
    /// // A mask times a tensor keeps the selected entries, but 0 · NaN is
    /// // NaN; `where_cond` drops the NaN as well.
    /// let mask = a.gt_mask(&two)?;
    /// assert!(mask.mul(&a)?.get(&[3])?.is_nan());
    /// let pos = mask.where_cond(&a, &Tensor::scalar(0.0))?;
    /// assert_eq!(pos.to_vec(), vec![0.0, 0.0, 3.0, 0.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn eq_mask(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "eq", |a, b| mask(a == b))
    }
    /// Mask of `self != other`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn ne_mask(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "ne", |a, b| mask(a != b))
    }
    /// Mask of `self < other`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn lt_mask(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "lt", |a, b| mask(a < b))
    }
    /// Mask of `self <= other`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn le_mask(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "le", |a, b| mask(a <= b))
    }
    /// Mask of `self > other`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn gt_mask(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "gt", |a, b| mask(a > b))
    }
    /// Mask of `self >= other`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes do
    /// not broadcast, or [`Error::TooLarge`](crate::Error::TooLarge) if the
    /// result is too large for memory or cannot be allocated.
    pub fn ge_mask(&self, other: &Self) -> Result<Self> {
        self.zip_light(other, "ge", |a, b| mask(a >= b))
    }

    /// Mask of `self > c` for a scalar `c` (1 where true, 0 elsewhere).
    /// `c` is converted to the element type first.
    ///
    /// # Errors
    /// [`Error::TooLarge`](crate::Error::TooLarge) if the output cannot be
    /// allocated (only a huge broadcast view can cause this), as for every
    /// scalar comparison below.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![-1.0f32, 0.0, 2.0], &[3])?;
    /// assert_eq!(a.gt_scalar(0.0)?.to_vec(), vec![0.0, 0.0, 1.0]);
    /// assert_eq!(a.le_scalar(0.0)?.to_vec(), vec![1.0, 1.0, 0.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn gt_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("gt_scalar", move |x| mask(x > c))
    }
    /// Mask of `self >= c`.
    pub fn ge_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("ge_scalar", move |x| mask(x >= c))
    }
    /// Mask of `self < c`.
    pub fn lt_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("lt_scalar", move |x| mask(x < c))
    }
    /// Mask of `self <= c`.
    pub fn le_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("le_scalar", move |x| mask(x <= c))
    }
    /// Mask of `self == c`.
    pub fn eq_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("eq_scalar", move |x| mask(x == c))
    }
    /// Mask of `self != c`.
    pub fn ne_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("ne_scalar", move |x| mask(x != c))
    }
    /// `max(x, c)` elementwise (NaN in `self` stays NaN).
    ///
    /// # Errors
    /// [`Error::TooLarge`](crate::Error::TooLarge) if the output cannot be
    /// allocated (only a huge broadcast view can cause this).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![-1.0f32, 0.5, 2.0], &[3])?;
    /// assert_eq!(a.maximum_scalar(0.0)?.to_vec(), vec![0.0, 0.5, 2.0]);
    /// assert_eq!(a.minimum_scalar(1.0)?.to_vec(), vec![-1.0, 0.5, 1.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn maximum_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("maximum_scalar", move |x| x.max_val(c))
    }
    /// `min(x, c)` elementwise (NaN in `self` stays NaN).
    pub fn minimum_scalar(&self, c: f64) -> Result<Self> {
        let c = T::from_f64(c);
        self.map_named("minimum_scalar", move |x| x.min_val(c))
    }

    /// Picks `on_true` where `self` (the condition) is non-zero and
    /// `on_false` elsewhere; all three broadcast together (`numpy.where`).
    /// NaN counts as non-zero, so it picks `on_true`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) (op `"where"`)
    /// if the three shapes do not broadcast together, or
    /// [`Error::TooLarge`](crate::Error::TooLarge) if the result is too large
    /// for memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let cond = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3])?;
    /// let r = cond.where_cond(&Tensor::ones(&[3]), &Tensor::scalar(-1.0))?;
    /// assert_eq!(r.to_vec(), vec![1.0, -1.0, 1.0]);
    ///
    /// // A ReLU by hand: keep x where x > 0, else 0.
    /// let x = Tensor::from_vec(vec![-2.0f32, 0.5, 3.0, -0.1], &[2, 2])?;
    /// let y = x.gt_scalar(0.0)?.where_cond(&x, &Tensor::scalar(0.0))?;
    /// assert_eq!(y, x.relu()?);
    /// assert!(cond.where_cond(&Tensor::ones(&[2]), &x).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn where_cond(&self, on_true: &Self, on_false: &Self) -> Result<Self> {
        let s1 = broadcast_shapes("where", self.dims(), on_true.dims())?;
        let shape = broadcast_shapes("where", &s1, on_false.dims())?;
        let n = checked_numel::<T>("where", &shape)?;
        let (sc, st, sf) = (
            self.storage.as_slice(),
            on_true.storage.as_slice(),
            on_false.storage.as_slice(),
        );
        if n == 1 {
            let v = if self.first() != T::ZERO {
                on_true.first()
            } else {
                on_false.first()
            };
            return Ok(Tensor::scalar_shaped(v, &shape));
        }
        let lc = self.layout.broadcast_to(&shape)?;
        let lt = on_true.layout.broadcast_to(&shape)?;
        let lf = on_false.layout.broadcast_to(&shape)?;
        let [lc, lt, lf] = coalesce([&lc, &lt, &lf]);
        let ((len, dc), (_, dt), (_, df)) = (inner(&lc), inner(&lt), inner(&lf));
        let row = |oc: usize, ot: usize, of: usize, seg: &mut [MaybeUninit<T>]| {
            if (dc, dt, df) == (1, 1, 1) {
                return simd::select(&sc[oc..], &st[ot..], &sf[of..], T::ZERO, seg);
            }
            for (i, o) in seg.iter_mut().enumerate() {
                *o = MaybeUninit::new(if sc[oc + i * dc] != T::ZERO {
                    st[ot + i * dt]
                } else {
                    sf[of + i * df]
                });
            }
        };
        let rows = |l: &Layout| Rows::try_of(l).map_err(|e| e.at("where", &shape));
        let out = if use_parallel(n) {
            let (rc, rt, rf) = (rows(&lc)?, rows(&lt)?, rows(&lf)?);
            // SAFETY: `fill_segments` passes pieces that together are all
            // of `out`; `row` writes every element of each.
            unsafe {
                try_filled(n, |out| {
                    fill_segments(out, len, |r, c, seg| {
                        row(
                            rc.bases[r] + c * dc,
                            rt.bases[r] + c * dt,
                            rf.bases[r] + c * df,
                            seg,
                        )
                    })
                })
            }
        } else {
            // SAFETY: `fill_rows` passes row pieces that tile `out` (or
            // panics); `row` writes every element of each.
            unsafe {
                try_filled(n, |out| {
                    fill_rows(out, [&lc, &lt, &lf], |[oc, ot, of], seg| {
                        row(oc, ot, of, seg)
                    })
                })
            }
        };
        Ok(Tensor::from_parts(
            out.map_err(|e| e.at("where", &shape))?,
            &shape,
        ))
    }
}

/// The operands of an elementwise op that needs no layout work.
#[derive(Clone, Copy)]
enum Fast<'a, T> {
    Both(&'a [T], &'a [T]),
    Rhs(&'a [T], T),
    Lhs(T, &'a [T]),
}

#[inline]
fn mask<T: Element>(b: bool) -> T {
    if b {
        T::ONE
    } else {
        T::ZERO
    }
}
