//! Shapes, strides and the view transforms that only touch them.
//!
//! Invariants of a [`Layout`] that came out of this module:
//! - every offset `offset + Σ idx[i]·strides[i]` with `idx[i] < shape[i]`
//!   lies inside the storage the layout was made for;
//! - a zero stride only comes from broadcasting (or a length-1 axis);
//! - a layout with no elements has offset 0 (views of an empty tensor never
//!   point past the end of its possibly empty buffer);
//! - no transform here copies data: each returns a new layout over the same
//!   storage, or an error naming the op and the shapes.
//!
//! Strides are `usize` (counted in elements): there is no flip op, so a
//! negative stride is never needed.

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::shape::Shape;

/// How a [`Layout`] stores its shape and its strides: inline up to rank 2.
///
/// Why not [`Shape`] (inline up to rank 4): every tensor carries two of
/// these, and a tensor is moved and cloned many times per op on a scalar
/// tape. Two inline slots make `Tensor` 72 bytes instead of 104 (and a tape
/// node small enough to be copied without a `memcpy` call). On the 10k-op
/// tanh chain, rank 3 inline (88-byte tensors) took 1619 to 1549
/// instructions per op and rank 2 a further 1104 to 1045. Rank-3+ layouts
/// keep their dimensions on the heap: no op in this workspace makes them
/// except on rank-3+ inputs (batched matmul), where one small allocation is
/// little next to the work.
pub(crate) type Dims = SmallVec<[usize; 2]>;

/// Shape, strides and starting offset of a view into storage.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    pub(crate) shape: Dims,
    pub(crate) strides: Dims,
    pub(crate) offset: usize,
}

/// A [`Dims`] holding `s` (inline when it fits, without `memcpy`).
#[inline]
pub(crate) fn dims_of(s: &[usize]) -> Dims {
    match *s {
        [] => Dims::new(),
        [a] => Dims::from_buf_and_len([a, 0], 1),
        [a, b] => Dims::from_buf_and_len([a, b], 2),
        _ => Dims::from_slice(s),
    }
}

impl Clone for Layout {
    #[inline]
    fn clone(&self) -> Self {
        Layout {
            shape: dims_of(&self.shape),
            strides: dims_of(&self.strides),
            offset: self.offset,
        }
    }
}

/// The widest element the size limit is computed for (f64). Every type no
/// wider than this shares one limit, so a shape valid for `f32` is valid
/// for `f64` too and [`Tensor::cast`](crate::Tensor::cast) cannot fail.
const WIDEST_ELEMENT_BYTES: usize = 8;

/// The element count of `shape`, if a buffer of 8-byte elements (or of
/// `T`s, if wider) holding it stays within Rust's limit for one allocation
/// (`isize::MAX` bytes), counting zero-length axes as 1 (so that row-major
/// strides, which skip them, fit too); else [`Error::TooLarge`] naming `op`.
///
/// This is the one size check of the crate: every constructor, view and
/// kernel output shape goes through it (with `T = u8` for untyped
/// [`Layout`]s). The limit does not depend on the element type below 8
/// bytes: an empty `f32` tensor of shape `[4097; 5] ++ [0]` would
/// otherwise exist and fail to cast to `f64` (found by the shapes fuzzer).
pub(crate) fn checked_numel<T>(op: &'static str, shape: &[usize]) -> Result<usize> {
    let limit = isize::MAX as usize / std::mem::size_of::<T>().max(WIDEST_ELEMENT_BYTES);
    let mut span = 1usize;
    let mut empty = false;
    for &d in shape {
        if d == 0 {
            empty = true;
            continue;
        }
        span = match span.checked_mul(d) {
            Some(s) if s <= limit => s,
            _ => return Err(Error::too_large(op, shape)),
        };
    }
    Ok(if empty { 0 } else { span })
}

/// Row-major (C order) strides for a shape.
///
/// # Panics
/// If the shape has more than `isize::MAX / 8` elements (zero-length axes
/// counted as 1; see [`Error::TooLarge`]).
/// [`Layout::try_contiguous`] is the fallible version.
///
/// ```
/// use tapegrad_tensor::contiguous_strides;
/// assert_eq!(contiguous_strides(&[2, 3, 4]).as_slice(), &[12, 4, 1]);
/// assert!(contiguous_strides(&[]).is_empty());
/// ```
pub fn contiguous_strides(shape: &[usize]) -> Shape {
    if let Err(e) = checked_numel::<u8>("contiguous_strides", shape) {
        panic!("{e}");
    }
    strides_unchecked(shape)
}

/// [`contiguous_strides`] of a shape already known to pass
/// [`checked_numel`] (so no product overflows).
#[inline]
fn strides_unchecked(shape: &[usize]) -> Shape {
    let n = shape.len();
    if n <= 4 {
        // Build inline without touching the heap or SmallVec's generic paths.
        let mut buf = [0usize; 4];
        let mut acc = 1usize;
        for i in (0..n).rev() {
            buf[i] = acc;
            acc *= shape[i].max(1);
        }
        return Shape(SmallVec::from_buf_and_len(buf, n));
    }
    let mut strides: SmallVec<[usize; 4]> = SmallVec::from_elem(0, n);
    let mut acc = 1usize;
    for i in (0..n).rev() {
        strides[i] = acc;
        acc *= shape[i].max(1);
    }
    Shape(strides)
}

/// The NumPy broadcast of two shapes: align from the right; each pair of
/// dimensions must be equal or one of them 1.
///
/// # Errors
/// [`Error::ShapeMismatch`] naming `op` when a pair differs and neither is 1,
/// or [`Error::TooLarge`] if the result has more than `isize::MAX / 8` elements
/// (zero-length axes counted as 1).
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape> {
    let n = a.len().max(b.len());
    let mut out: SmallVec<[usize; 4]> = SmallVec::from_elem(0, n);
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::ShapeMismatch {
                op,
                lhs: a.to_vec(),
                rhs: b.to_vec(),
                reason: format!(
                    "dimensions {da} and {db} at axis {i} of the broadcast result cannot broadcast"
                ),
            });
        };
    }
    checked_numel::<u8>(op, &out)?;
    Ok(Shape(out))
}

impl Layout {
    /// A row-major layout starting at offset 0.
    ///
    /// # Panics
    /// If the shape has more than `isize::MAX / 8` elements (zero-length axes
    /// counted as 1); [`try_contiguous`](Self::try_contiguous) returns that
    /// as an error instead.
    ///
    /// ```
    /// use tapegrad_tensor::Layout;
    /// let l = Layout::contiguous(&[2, 3]);
    /// assert_eq!((l.shape(), l.strides(), l.offset()), (&[2, 3][..], &[3, 1][..], 0));
    /// assert!(l.is_contiguous());
    /// ```
    #[inline]
    pub fn contiguous(shape: &[usize]) -> Self {
        Self::try_contiguous(shape).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A row-major layout starting at offset 0, or an error for a shape too
    /// large for memory.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"contiguous"`) if the shape has more than
    /// `isize::MAX / 8` elements, zero-length axes counted as 1.
    ///
    /// ```
    /// use tapegrad_tensor::{Error, Layout};
    /// assert_eq!(Layout::try_contiguous(&[2, 0, 3])?.strides(), &[3, 3, 1]);
    /// let err = Layout::try_contiguous(&[1 << 32, 1 << 32]).unwrap_err();
    /// assert!(matches!(err, Error::TooLarge { op: "contiguous", .. }));
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    #[inline]
    pub fn try_contiguous(shape: &[usize]) -> Result<Self> {
        checked_numel::<u8>("contiguous", shape)?;
        Ok(Self::contiguous_unchecked(shape))
    }

    /// [`contiguous`](Self::contiguous) of a shape already checked (for
    /// the element type in use) by [`checked_numel`]: kernel outputs and
    /// constructors, which check before allocating.
    #[inline]
    pub(crate) fn contiguous_unchecked(shape: &[usize]) -> Self {
        debug_assert!(checked_numel::<u8>("contiguous", shape).is_ok());
        if shape.is_empty() {
            return Layout::scalar();
        }
        Layout {
            shape: dims_of(shape),
            strides: dims_of(&strides_unchecked(shape)),
            offset: 0,
        }
    }

    /// The layout of a 0-d tensor (every value on a scalar tape): built
    /// inline at each call site, without `contiguous`'s call and checks.
    #[inline(always)]
    pub(crate) fn scalar() -> Self {
        Layout {
            shape: Dims::new(),
            strides: Dims::new(),
            offset: 0,
        }
    }

    /// Dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Strides in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Offset of the first element in the storage.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether elements are laid out row-major without gaps (so the view is
    /// `storage[offset..offset + numel]`). Length-1 axes may have any stride.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for i in (0..self.shape.len()).rev() {
            if self.shape[i] == 1 {
                continue;
            }
            if self.strides[i] != expected {
                return self.numel() == 0;
            }
            expected *= self.shape[i];
        }
        true
    }

    /// The largest storage offset this layout reaches, plus one (0 when empty).
    pub fn storage_extent(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        self.offset
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(&d, &s)| (d - 1) * s)
                .sum::<usize>()
            + 1
    }

    /// Resets the offset of an empty layout to 0 (see the module invariants).
    fn normalize_empty(mut self) -> Layout {
        if self.numel() == 0 {
            self.offset = 0;
        }
        self
    }

    pub(crate) fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        if axis < self.shape.len() {
            Ok(())
        } else {
            Err(Error::axis(op, axis, &self.shape))
        }
    }

    /// Reorders axes: axis `i` of the result is axis `perm[i]` of `self`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `perm` is not a permutation of
    /// `0..rank` (wrong length, an axis out of range, or an axis repeated).
    pub fn permute(&self, perm: &[usize]) -> Result<Layout> {
        let n = self.shape.len();
        let mut seen: SmallVec<[bool; 8]> = SmallVec::from_elem(false, n);
        if perm.len() != n {
            return Err(Error::invalid(
                "permute",
                format!(
                    "permutation {perm:?} has {} axes but the shape {:?} has {n}",
                    perm.len(),
                    self.shape.as_slice()
                ),
            ));
        }
        for &p in perm {
            if p >= n || seen[p] {
                return Err(Error::invalid(
                    "permute",
                    format!(
                        "{perm:?} is not a permutation of the axes of shape {:?}",
                        self.shape.as_slice()
                    ),
                ));
            }
            seen[p] = true;
        }
        Ok(Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    /// Swaps two axes.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if either axis is not below the rank.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Layout> {
        self.check_axis("transpose", a)?;
        self.check_axis("transpose", b)?;
        let mut l = self.clone();
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        Ok(l)
    }

    /// Keeps indices `start, start + step, …` below `end` along `axis`.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank;
    /// [`Error::InvalidArgument`] if `step` is 0, `start > end`, or `end`
    /// exceeds the axis length.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Layout;
    /// let l = Layout::contiguous(&[4, 5]).slice(1, 1, 5, 2)?;
    /// assert_eq!((l.shape(), l.strides(), l.offset()), (&[4, 2][..], &[5, 2][..], 1));
    /// assert!(!l.is_contiguous());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Result<Layout> {
        self.check_axis("slice", axis)?;
        let dim = self.shape[axis];
        if step == 0 {
            return Err(Error::invalid("slice", "step must be at least 1"));
        }
        if start > end || end > dim {
            return Err(Error::invalid(
                "slice",
                format!(
                    "range {start}..{end} does not fit axis {axis} of length {dim} (shape {:?})",
                    self.shape.as_slice()
                ),
            ));
        }
        let len = (end - start).div_ceil(step);
        let mut l = self.clone();
        l.offset += start * self.strides[axis];
        l.shape[axis] = len;
        // With two or more positions `step < end - start <= dim`, so the
        // product stays below the axis's extent; with one or none the
        // stride means nothing, and `step` may be huge.
        if len > 1 {
            l.strides[axis] = self.strides[axis] * step;
        }
        Ok(l.normalize_empty())
    }

    /// Drops `axis`, keeping only position `index` along it.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank, or
    /// [`Error::IndexOutOfRange`] if `index` is not below its length.
    pub fn select(&self, axis: usize, index: usize) -> Result<Layout> {
        self.check_axis("select", axis)?;
        if index >= self.shape[axis] {
            return Err(Error::IndexOutOfRange {
                op: "select",
                index,
                axis,
                shape: self.shape.to_vec(),
            });
        }
        let mut l = self.clone();
        l.offset += index * self.strides[axis];
        l.shape.remove(axis);
        l.strides.remove(axis);
        Ok(l.normalize_empty())
    }

    /// Inserts a length-1 axis at position `axis` (which may equal the rank).
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is greater than the rank.
    pub fn unsqueeze(&self, axis: usize) -> Result<Layout> {
        if axis > self.shape.len() {
            return Err(Error::axis("unsqueeze", axis, &self.shape));
        }
        let mut l = self.clone();
        let stride = if axis < self.shape.len() {
            self.strides[axis] * self.shape[axis]
        } else {
            1
        };
        l.shape.insert(axis, 1);
        l.strides.insert(axis, stride);
        Ok(l)
    }

    /// Removes a length-1 axis.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank, or
    /// [`Error::InvalidArgument`] if its length is not 1.
    pub fn squeeze(&self, axis: usize) -> Result<Layout> {
        self.check_axis("squeeze", axis)?;
        if self.shape[axis] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!(
                    "axis {axis} of shape {:?} has length {}, not 1",
                    self.shape.as_slice(),
                    self.shape[axis]
                ),
            ));
        }
        let mut l = self.clone();
        l.shape.remove(axis);
        l.strides.remove(axis);
        Ok(l)
    }

    /// Broadcasts to `shape` with NumPy rules (new axes on the left, length-1
    /// axes stretched with stride 0).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if this layout's shape has more axes than
    /// `shape`, or a dimension that is neither 1 nor the target's;
    /// [`Error::TooLarge`] if `shape` has more than `isize::MAX / 8` elements
    /// (zero-length axes counted as 1).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        if self.shape.as_slice() == shape {
            return Ok(self.clone());
        }
        let err = || Error::ShapeMismatch {
            op: "broadcast_to",
            lhs: self.shape.to_vec(),
            rhs: shape.to_vec(),
            reason: "each dimension must equal the target's or be 1".into(),
        };
        if shape.len() < self.shape.len() {
            return Err(err());
        }
        let lead = shape.len() - self.shape.len();
        let mut strides: Dims = SmallVec::from_elem(0, shape.len());
        for i in 0..self.shape.len() {
            let (d, t) = (self.shape[i], shape[lead + i]);
            strides[lead + i] = if d == t {
                self.strides[i]
            } else if d == 1 {
                0
            } else {
                return Err(err());
            };
        }
        checked_numel::<u8>("broadcast_to", shape)?;
        Ok(Layout {
            shape: dims_of(shape),
            strides,
            offset: self.offset,
        }
        .normalize_empty())
    }

    /// A view with the new shape over the same storage, if the strides allow
    /// it without copying; `None` when a copy is needed.
    ///
    /// Also `None` when the element counts differ, so the result never
    /// reaches past the storage the layout was made for, and for a shape
    /// that [`try_contiguous`](Self::try_contiguous) rejects as too large.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Layout;
    /// let l = Layout::contiguous(&[2, 3]);
    /// assert_eq!(l.reshape_view(&[3, 2]).map(|v| v.strides().to_vec()), Some(vec![2, 1]));
    /// // A transposed matrix cannot be flattened without a copy.
    /// assert!(l.permute(&[1, 0])?.reshape_view(&[6]).is_none());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn reshape_view(&self, shape: &[usize]) -> Option<Layout> {
        if checked_numel::<u8>("reshape", shape).ok()? != self.numel() {
            return None;
        }
        if self.is_contiguous() {
            return Some(Layout {
                shape: dims_of(shape),
                strides: dims_of(&strides_unchecked(shape)),
                offset: self.offset,
            });
        }
        // Merge runs of old axes that are contiguous with each other, then
        // split each run into the new axes that cover exactly its extent.
        let old: Vec<(usize, usize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&d, _)| d != 1)
            .map(|(&d, &s)| (d, s))
            .collect();
        let mut strides: Dims = SmallVec::from_elem(0, shape.len());
        let mut oi = 0;
        let mut ni = 0;
        while ni < shape.len() {
            if shape[ni] == 1 {
                strides[ni] = 0;
                ni += 1;
                continue;
            }
            if oi >= old.len() {
                return None;
            }
            // Collect the run of old axes [oi, oj) with contiguous strides whose
            // product equals the product of new axes [ni, nj).
            let mut old_prod = old[oi].0;
            let mut oj = oi + 1;
            let mut new_prod = shape[ni];
            let mut nj = ni + 1;
            while old_prod != new_prod {
                if old_prod < new_prod {
                    if oj >= old.len() || old[oj - 1].1 != old[oj].0 * old[oj].1 {
                        return None;
                    }
                    old_prod *= old[oj].0;
                    oj += 1;
                } else {
                    if nj >= shape.len() {
                        return None;
                    }
                    new_prod *= shape[nj];
                    nj += 1;
                }
            }
            // The run is contiguous with innermost stride old[oj-1].1.
            let mut acc = old[oj - 1].1;
            for k in (ni..nj).rev() {
                strides[k] = acc;
                acc *= shape[k];
            }
            oi = oj;
            ni = nj;
        }
        if oi != old.len() {
            return None;
        }
        Some(Layout {
            shape: dims_of(shape),
            strides,
            offset: self.offset,
        })
    }

    /// Calls `f` with the storage offset of every element, in row-major order
    /// of the layout's index space.
    pub fn for_each_offset(&self, mut f: impl FnMut(usize)) {
        let n = self.numel();
        if n == 0 {
            return;
        }
        let rank = self.shape.len();
        if rank == 0 {
            f(self.offset);
            return;
        }
        let inner = self.shape[rank - 1];
        let inner_stride = self.strides[rank - 1];
        let mut idx: SmallVec<[usize; 8]> = SmallVec::from_elem(0, rank);
        let mut base = self.offset;
        loop {
            for i in 0..inner {
                f(base + i * inner_stride);
            }
            // Advance the outer multi-index (odometer).
            let mut ax = rank - 1;
            loop {
                if ax == 0 {
                    return;
                }
                ax -= 1;
                idx[ax] += 1;
                base += self.strides[ax];
                if idx[ax] < self.shape[ax] {
                    break;
                }
                base -= self.strides[ax] * self.shape[ax];
                idx[ax] = 0;
            }
        }
    }

    /// The storage offset of the element at multi-index `index`.
    pub(crate) fn offset_of(&self, index: &[usize]) -> usize {
        self.offset
            + index
                .iter()
                .zip(&self.strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()
    }

    /// Splits into (outer layout over all axes but the last, inner length,
    /// inner stride). Rank-0 layouts give inner length 1.
    pub(crate) fn split_inner(&self) -> (Layout, usize, usize) {
        match self.shape.len() {
            0 => (self.clone(), 1, 0),
            r => {
                let mut outer = self.clone();
                let len = outer.shape.remove(r - 1);
                let stride = outer.strides.remove(r - 1);
                (outer, len, stride)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranks below, at and above the inline capacity of [`Dims`] give the
    /// same shapes, strides and views.
    #[test]
    fn layouts_of_every_rank_keep_their_dims() {
        for rank in 0..7 {
            let shape: Vec<usize> = (2..2 + rank).collect();
            let l = Layout::contiguous(&shape);
            assert_eq!(l.shape(), &shape[..]);
            assert_eq!(l.strides(), contiguous_strides(&shape).as_slice());
            assert_eq!(l.clone(), l);
            assert_eq!(l.shape.spilled(), rank > 2);
            if rank >= 2 {
                let t = l.transpose(0, rank - 1).unwrap();
                assert_eq!(t.shape()[0], shape[rank - 1]);
                assert_eq!(t.strides()[rank - 1], l.strides()[0]);
                let back = t.transpose(0, rank - 1).unwrap();
                assert_eq!(back, l);
            }
            let u = l.unsqueeze(0).unwrap();
            assert_eq!(u.shape().len(), rank + 1);
            assert_eq!(u.squeeze(0).unwrap(), l);
            let flat = l.reshape_view(&[shape.iter().product()]).unwrap();
            assert_eq!(flat.strides(), &[1]);
        }
    }
}
