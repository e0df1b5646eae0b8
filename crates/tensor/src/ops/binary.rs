//! Broadcasting elementwise ops on two (or three) inputs.

use crate::error::Result;
use crate::layout::broadcast_shapes;
use crate::ops::strided::{coalesce, Rows};
use crate::parallel::{fill_chunks, fill_segments};
use crate::simd;
use crate::{Element, Tensor};

impl<T: Element> Tensor<T> {
    /// Combines `self` and `other` elementwise with NumPy broadcasting, giving
    /// a new contiguous tensor of the broadcast shape. `op` names the call in
    /// errors. This is the building block for custom binary ops.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3, 1])?;
    /// let b = Tensor::from_vec(vec![10.0f32, 20.0], &[2])?;
    /// let c = a.zip_with(&b, "my_op", |x, y| x * y)?;
    /// assert_eq!(c.shape(), &[3, 2]);
    /// assert_eq!(c.to_vec(), vec![10.0, 20.0, 20.0, 40.0, 30.0, 60.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the shapes do not broadcast; the message names `op` and both shapes.
    pub fn zip_with(
        &self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        let shape = if self.shape() == other.shape() {
            self.dims()
        } else {
            broadcast_shapes(op, self.shape(), other.shape())?
        };
        let n: usize = shape.iter().product();
        let mut out = vec![T::ZERO; n];
        if let (Some(a), Some(b), true) = (
            self.as_slice(),
            other.as_slice(),
            self.shape() == other.shape(),
        ) {
            fill_chunks(&mut out, |s, chunk| {
                simd::zip(&a[s..], &b[s..], chunk, &f);
            });
            return Ok(Tensor::from_parts(out, &shape));
        }
        let la = self.layout.broadcast_to(&shape)?;
        let lb = other.layout.broadcast_to(&shape)?;
        let [la, lb] = coalesce([&la, &lb]);
        let (ra, rb) = (Rows::of(&la), Rows::of(&lb));
        let (sa, sb) = (self.storage.as_slice(), other.storage.as_slice());
        fill_segments(&mut out, ra.len, |r, c, seg| {
            let (oa, ob) = (ra.bases[r] + c * ra.stride, rb.bases[r] + c * rb.stride);
            let len = seg.len();
            // Vectorised loops for the common cases: both operands running
            // along the row, or one of them fixed (broadcast) over it.
            match (ra.stride, rb.stride) {
                (1, 1) => simd::zip(&sa[oa..oa + len], &sb[ob..ob + len], seg, &f),
                (1, 0) => simd::zip_rhs(&sa[oa..oa + len], sb[ob], seg, &f),
                (0, 1) => simd::zip_lhs(sa[oa], &sb[ob..ob + len], seg, &f),
                (da, db) => {
                    for (i, o) in seg.iter_mut().enumerate() {
                        *o = f(sa[oa + i * da], sb[ob + i * db]);
                    }
                }
            }
        });
        Ok(Tensor::from_parts(out, &shape))
    }

    /// `self + other`, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn add(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "add", |a, b| a + b)
    }
    /// `self - other`, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "sub", |a, b| a - b)
    }
    /// `self · other` elementwise, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn mul(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "mul", |a, b| a * b)
    }
    /// `self / other` elementwise, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn div(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "div", |a, b| a / b)
    }
    /// `self ^ other` elementwise, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn pow(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "pow", |a, b| a.powf(b))
    }
    /// Elementwise maximum, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn maximum(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "maximum", |a, b| a.max_val(b))
    }
    /// Elementwise minimum, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn minimum(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "minimum", |a, b| a.min_val(b))
    }
    /// Mask (1 where true, 0 elsewhere) of `self == other`.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn eq_mask(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "eq", |a, b| mask(a == b))
    }
    /// Mask of `self != other`.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn ne_mask(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "ne", |a, b| mask(a != b))
    }
    /// Mask of `self < other`.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn lt_mask(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "lt", |a, b| mask(a < b))
    }
    /// Mask of `self <= other`.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn le_mask(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "le", |a, b| mask(a <= b))
    }
    /// Mask of `self > other`.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn gt_mask(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "gt", |a, b| mask(a > b))
    }
    /// Mask of `self >= other`.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn ge_mask(&self, other: &Self) -> Result<Self> {
        self.zip_with(other, "ge", |a, b| mask(a >= b))
    }

    /// Mask of `self > c` for a scalar `c`.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![-1.0f32, 0.0, 2.0], &[3])?;
    /// assert_eq!(a.gt_scalar(0.0).to_vec(), vec![0.0, 0.0, 1.0]);
    /// assert_eq!(a.le_scalar(0.0).to_vec(), vec![1.0, 1.0, 0.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn gt_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| mask(x > c))
    }
    /// Mask of `self >= c`.
    pub fn ge_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| mask(x >= c))
    }
    /// Mask of `self < c`.
    pub fn lt_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| mask(x < c))
    }
    /// Mask of `self <= c`.
    pub fn le_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| mask(x <= c))
    }
    /// Mask of `self == c`.
    pub fn eq_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| mask(x == c))
    }
    /// Mask of `self != c`.
    pub fn ne_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| mask(x != c))
    }
    /// `max(x, c)` elementwise (NaN in `self` stays NaN).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![-1.0f32, 0.5, 2.0], &[3])?;
    /// assert_eq!(a.maximum_scalar(0.0).to_vec(), vec![0.0, 0.5, 2.0]);
    /// assert_eq!(a.minimum_scalar(1.0).to_vec(), vec![-1.0, 0.5, 1.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn maximum_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| x.max_val(c))
    }
    /// `min(x, c)` elementwise (NaN in `self` stays NaN).
    pub fn minimum_scalar(&self, c: f64) -> Self {
        let c = T::from_f64(c);
        self.map(move |x| x.min_val(c))
    }

    /// Picks `on_true` where `self` (the condition) is non-zero and
    /// `on_false` elsewhere; all three broadcast together (`numpy.where`).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let cond = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3])?;
    /// let r = cond.where_cond(&Tensor::ones(&[3]), &Tensor::scalar(-1.0))?;
    /// assert_eq!(r.to_vec(), vec![1.0, -1.0, 1.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the three shapes do not broadcast together.
    pub fn where_cond(&self, on_true: &Self, on_false: &Self) -> Result<Self> {
        let s1 = broadcast_shapes("where", self.shape(), on_true.shape())?;
        let shape = broadcast_shapes("where", &s1, on_false.shape())?;
        let lc = self.layout.broadcast_to(&shape)?;
        let lt = on_true.layout.broadcast_to(&shape)?;
        let lf = on_false.layout.broadcast_to(&shape)?;
        let [lc, lt, lf] = coalesce([&lc, &lt, &lf]);
        let (rc, rt, rf) = (Rows::of(&lc), Rows::of(&lt), Rows::of(&lf));
        let (sc, st, sf) = (
            self.storage.as_slice(),
            on_true.storage.as_slice(),
            on_false.storage.as_slice(),
        );
        let mut out = vec![T::ZERO; shape.iter().product()];
        fill_segments(&mut out, rc.len, |r, c, seg| {
            let (oc, ot, of) = (
                rc.bases[r] + c * rc.stride,
                rt.bases[r] + c * rt.stride,
                rf.bases[r] + c * rf.stride,
            );
            for (i, o) in seg.iter_mut().enumerate() {
                *o = if sc[oc + i * rc.stride] != T::ZERO {
                    st[ot + i * rt.stride]
                } else {
                    sf[of + i * rf.stride]
                };
            }
        });
        Ok(Tensor::from_parts(out, &shape))
    }
}

#[inline]
fn mask<T: Element>(b: bool) -> T {
    if b {
        T::ONE
    } else {
        T::ZERO
    }
}
