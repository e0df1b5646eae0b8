//! Reductions over one or more axes, softmax and log-sum-exp.

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::shape::Shape;
use std::mem::MaybeUninit;

use crate::buffer::{assume_init_mut, try_filled, try_vec, try_vec_of, AllocError};
use crate::ops::strided::{coalesce, Rows};
use crate::parallel::{for_each_chunk, map_chunks, use_parallel, CHUNK};
use crate::simd;
use crate::{Element, Tensor};

/// Checks and sorts a list of axes; an axis may not repeat.
pub(crate) fn normalize_axes(
    op: &'static str,
    axes: &[usize],
    shape: &[usize],
) -> Result<SmallVec<[usize; 4]>> {
    let mut v: SmallVec<[usize; 4]> = SmallVec::from_slice(axes);
    v.sort_unstable();
    for w in v.windows(2) {
        if w[0] == w[1] {
            return Err(Error::invalid(
                op,
                format!("axis {} is listed twice in {axes:?}", w[0]),
            ));
        }
    }
    if let Some(&a) = v.iter().find(|&&a| a >= shape.len()) {
        return Err(Error::axis(op, a, shape));
    }
    Ok(v)
}

/// The shape after reducing `axes` (kept as length 1 when `keepdim`).
pub(crate) fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Shape {
    let mut out = Shape::default();
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdim {
                out.0.push(1);
            }
        } else {
            out.0.push(d);
        }
    }
    out
}

/// Folds every element of `t` (any layout) in a fixed order that depends
/// only on the layout, never on the thread count.
///
/// Reducing over all axes does not care about element order, so the axes
/// are first sorted by decreasing stride (broadcast axes outermost): a
/// transposed or permuted contiguous tensor then reads its buffer in memory
/// order as one slice, and other views read their longest runs. Slices are
/// cut at fixed [`CHUNK`] boundaries and rows folded one by one; the partial
/// results are combined left to right.
///
/// An [`AllocError`] if the list of row starts cannot be allocated.
fn fold_all<T: Element>(
    t: &Tensor<T>,
    init: T,
    f: &(impl Fn(T, T) -> T + Sync + Send),
) -> std::result::Result<T, AllocError> {
    let fold_slice = |xs: &[T]| -> T {
        let chunk = |c: usize| simd::fold(&xs[c * CHUNK..xs.len().min((c + 1) * CHUNK)], init, f);
        map_chunks(xs.len().div_ceil(CHUNK), use_parallel(xs.len()), chunk)
            .into_iter()
            .fold(init, f)
    };
    // Contiguous: the sorted, coalesced layout below would be this slice.
    if let Some(xs) = t.as_slice() {
        return Ok(fold_slice(xs));
    }
    let l = t.layout();
    let mut order: SmallVec<[usize; 8]> = (0..t.ndim()).collect();
    let key = |a: usize| match l.strides[a] {
        0 => usize::MAX,
        s => s,
    };
    order.sort_by_key(|&a| std::cmp::Reverse(key(a)));
    let p = l.permute(&order).expect("a permutation of the axes");
    let [c] = coalesce([&p]);
    let src = t.storage.as_slice();
    if c.numel() == 0 {
        return Ok(init);
    }
    if c.shape.len() <= 1 && c.strides.first().is_none_or(|&s| s == 1) {
        return Ok(fold_slice(&src[c.offset..c.offset + c.numel()]));
    }
    let rows = Rows::try_of(&c)?;
    let fold_row = |&base: &usize| -> T {
        if rows.stride == 1 {
            fold_slice(&src[base..base + rows.len])
        } else {
            let mut acc = init;
            for i in 0..rows.len {
                acc = f(acc, src[base + i * rows.stride]);
            }
            acc
        }
    };
    Ok(if use_parallel(c.numel()) && rows.bases.len() > 1 {
        // One partial per row, combined in row order whatever the split.
        let mut parts = try_vec_of(rows.bases.len(), init)?;
        let rows_per_chunk = (CHUNK / rows.len.max(1)).max(1);
        for_each_chunk(&mut parts, rows_per_chunk, |start, piece| {
            for (p, base) in piece.iter_mut().zip(&rows.bases[start..]) {
                *p = fold_row(base);
            }
        });
        parts.into_iter().fold(init, f)
    } else {
        rows.bases.iter().map(fold_row).fold(init, f)
    })
}

impl<T: Element> Tensor<T> {
    /// Reduces `axes` with an associative `f` starting from `init` (the
    /// engine behind sum, max and min). Results do not depend on the number
    /// of threads. `axes` may be empty (then each element is folded with
    /// `init` alone) and in any order. `f` may run on several threads for
    /// large inputs, and `init` must be an identity of `f` (it can be folded
    /// in more than once).
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if an axis is not below the rank,
    /// [`Error::InvalidArgument`] if an axis is listed twice, or
    /// [`Error::TooLarge`] if the result (or scratch space proportional to
    /// it) cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let prod = a.fold_axes("prod", &[1], false, 1.0, |x, y| x * y)?;
    /// assert_eq!(prod.to_vec(), vec![6.0, 120.0]);
    /// let err = a.fold_axes("prod", &[2], false, 1.0, |x, y| x * y).unwrap_err();
    /// assert_eq!(err.to_string(), "prod: axis 2 is out of range for shape [2, 3] (rank 2)");
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn fold_axes(
        &self,
        op: &'static str,
        axes: &[usize],
        keepdim: bool,
        init: T,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        let axes = normalize_axes(op, axes, self.dims())?;
        let out_shape = reduced_shape(self.dims(), &axes, keepdim);
        let oom = |e: AllocError| e.at(op, &out_shape);
        let src = self.storage.as_slice();
        if self.numel() == 1 {
            // Scalar tapes: one element, whatever the axes.
            return Ok(Tensor::scalar_shaped(f(init, self.first()), &out_shape));
        }
        if axes.len() < self.ndim() {
            if let Some((dense, order)) = self.in_storage_order() {
                // A transposed (permuted) dense tensor: reduce it in memory
                // order, where the contiguous paths below apply (a column
                // sum of a transpose is a row-streaming sum of the original:
                // 1.7 ms -> 50 µs at 1M), then put the kept axes back.
                let mapped: SmallVec<[usize; 4]> = axes
                    .iter()
                    .map(|a| order.iter().position(|o| o == a).expect("a permutation"))
                    .collect();
                let r = dense.fold_axes(op, &mapped, true, init, f)?;
                let mut back: SmallVec<[usize; 8]> = SmallVec::from_elem(0, order.len());
                for (i, &a) in order.iter().enumerate() {
                    back[a] = i;
                }
                return r
                    .permute(&back)?
                    .reshape(&out_shape)
                    .and_then(|t| t.try_to_contiguous(op));
            }
        }
        if axes.len() == self.ndim() {
            let v = fold_all(self, init, &f).map_err(oom)?;
            return Ok(Tensor::from_parts(vec![v], &out_shape));
        }
        // Put kept axes first and reduced axes last.
        let kept: SmallVec<[usize; 4]> = (0..self.ndim()).filter(|a| !axes.contains(a)).collect();
        let perm: SmallVec<[usize; 8]> = kept.iter().chain(axes.iter()).copied().collect();
        let p = self.layout.permute(&perm)?;
        let n_out: usize = kept.iter().map(|&a| self.dims()[a]).product();
        let n_red: usize = axes.iter().map(|&a| self.dims()[a]).product();
        // Contiguous input reduced over trailing axes (a row sum): fold each
        // output's block as one slice, in the same order as the general case.
        if let (Some(xs), true) = (
            self.as_slice(),
            axes.iter()
                .enumerate()
                .all(|(i, &a)| a == self.ndim() - axes.len() + i),
        ) {
            if n_out > 0 && n_red > 0 {
                let fill = |start: usize, chunk: &mut [MaybeUninit<T>]| {
                    simd::fold_rows(&xs[start * n_red..], n_red, chunk, init, &f)
                };
                // SAFETY: `for_each_chunk` passes disjoint pieces covering
                // all of `out`, and `fill` writes every element of each.
                // Rows are independent, so any split gives the same result.
                let out = if use_parallel(n_out * n_red) {
                    let per = (CHUNK / n_red).max(1);
                    unsafe { try_filled(n_out, |out| for_each_chunk(out, per, fill)) }
                } else {
                    unsafe { try_filled(n_out, |out| fill(0, out)) }
                };
                return Ok(Tensor::from_parts(out.map_err(oom)?, &out_shape));
            }
        }
        let mut out = try_vec_of(n_out, init).map_err(oom)?;
        // Nothing to read (an empty reduced axis gives `init` everywhere):
        // return before computing offsets into a possibly empty buffer.
        if n_out == 0 || n_red == 0 {
            return Ok(Tensor::from_parts(out, &out_shape));
        }
        // Contiguous input reduced over leading axes (a bias gradient, a
        // column sum): accumulate whole rows, which streams memory in order.
        if let Some(xs) = self.as_slice() {
            if axes.iter().enumerate().all(|(i, &a)| i == a) {
                if use_parallel(xs.len()) {
                    // Each output column is summed in row order whatever
                    // the split, so the result does not depend on it.
                    for_each_chunk(&mut out, CHUNK, |s, oc| {
                        for r in 0..n_red {
                            simd::accumulate(oc, &xs[r * n_out + s..], &f);
                        }
                    });
                } else {
                    for r in 0..n_red {
                        simd::accumulate(&mut out, &xs[r * n_out..], &f);
                    }
                }
                return Ok(Tensor::from_parts(out, &out_shape));
            }
        }
        // General case: for each output element, fold its reduced block.
        let mut outer = p.clone();
        outer.shape.truncate(kept.len());
        outer.strides.truncate(kept.len());
        let mut inner = p.clone();
        inner.shape.drain(..kept.len());
        inner.strides.drain(..kept.len());
        inner.offset = 0;
        let [inner] = coalesce([&inner]);
        let inner_rows = Rows::try_of(&inner).map_err(oom)?;
        let mut bases = try_vec(n_out).map_err(oom)?;
        outer.for_each_offset(|o| bases.push(o));
        let fold_one = |base: usize| -> T {
            let mut acc = init;
            for &rb in &inner_rows.bases {
                let start = base + rb;
                if inner_rows.stride == 1 {
                    acc = f(
                        acc,
                        simd::fold(&src[start..start + inner_rows.len], init, &f),
                    );
                } else {
                    for i in 0..inner_rows.len {
                        acc = f(acc, src[start + i * inner_rows.stride]);
                    }
                }
            }
            acc
        };
        if use_parallel(n_out * n_red) {
            let outs_per_chunk = (CHUNK / n_red.max(1)).max(1);
            for_each_chunk(&mut out, outs_per_chunk, |start, piece| {
                for (o, &b) in piece.iter_mut().zip(&bases[start..]) {
                    *o = fold_one(b);
                }
            });
        } else {
            for (o, &b) in out.iter_mut().zip(&bases) {
                *o = fold_one(b);
            }
        }
        Ok(Tensor::from_parts(out, &out_shape))
    }

    /// Sum over `axes` (keeping them as length 1 if `keepdim`). Summing over
    /// every axis gives a 0-d tensor (see [`sum_all`](Self::sum_all)); an
    /// empty axis sums to 0.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if an axis is not below the rank,
    /// [`Error::InvalidArgument`] if an axis is listed twice, or
    /// [`Error::TooLarge`] if the result cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(a.sum(&[0], false)?.to_vec(), vec![5.0, 7.0, 9.0]);
    /// assert_eq!(a.sum(&[1], true)?.shape(), &[2, 1]);
    /// assert_eq!(a.sum(&[1, 0], false)?.shape(), &[] as &[usize]);
    /// assert_eq!(a.sum_all()?.item()?, 21.0);
    /// assert!(a.sum(&[0, 0], false).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn sum(&self, axes: &[usize], keepdim: bool) -> Result<Self> {
        // Along a reduced axis of stride 0 (a broadcast, such as the
        // gradient of `sum` reaching a bias) every slice is the same: the
        // sum is its length times one slice's, not that many additions
        // through the strided path (a tenth of the conv2d benchmark).
        let reduced = normalize_axes("sum", axes, self.dims())?;
        if let Some(&a) = reduced
            .iter()
            .find(|&&a| self.strides()[a] == 0 && self.dims()[a] > 1)
        {
            let copies = self.dims()[a] as f64;
            return self.narrow(a, 0, 1)?.sum(axes, keepdim)?.mul_scalar(copies);
        }
        self.fold_axes("sum", axes, keepdim, T::ZERO, |a, b| a + b)
    }

    /// Sum of all elements, as a 0-d tensor.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if scratch space cannot be allocated; the axes
    /// are always valid.
    pub fn sum_all(&self) -> Result<Self> {
        let all: SmallVec<[usize; 8]> = (0..self.ndim()).collect();
        self.sum(&all, false)
    }

    /// Mean over `axes` (keeping them as length 1 if `keepdim`). The mean
    /// over an empty axis is NaN (0 / 0).
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if an axis is not below the rank,
    /// [`Error::InvalidArgument`] if an axis is listed twice, or
    /// [`Error::TooLarge`] if the result cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(a.mean(&[1], false)?.to_vec(), vec![2.0, 5.0]);
    /// assert_eq!(a.mean(&[0], true)?.to_vec(), vec![2.5, 3.5, 4.5]);
    /// assert_eq!(a.mean_all()?.item()?, 3.5);
    /// assert!(Tensor::<f32>::zeros(&[0]).mean_all()?.item()?.is_nan());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn mean(&self, axes: &[usize], keepdim: bool) -> Result<Self> {
        let n: usize = normalize_axes("mean", axes, self.dims())?
            .iter()
            .map(|&a| self.dims()[a])
            .product();
        let c = T::from_f64(n as f64);
        self.sum(axes, keepdim)?.map_named("mean", move |x| x / c)
    }

    /// Mean of all elements, as a 0-d tensor (NaN when empty).
    ///
    /// # Errors
    /// As [`sum_all`](Self::sum_all).
    pub fn mean_all(&self) -> Result<Self> {
        self.sum_all()?.div_scalar(self.numel() as f64)
    }

    /// Maximum over `axes` (`-inf` for an empty axis). A NaN in a slice
    /// makes its result NaN.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if an axis is not below the rank,
    /// [`Error::InvalidArgument`] if an axis is listed twice, or
    /// [`Error::TooLarge`] if the result cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![3.0f32, -1.0, 4.0, 1.0, -5.0, 9.0], &[2, 3])?;
    /// assert_eq!(a.max(&[1], false)?.to_vec(), vec![4.0, 9.0]);
    /// assert_eq!(a.min(&[0], true)?.to_vec(), vec![1.0, -5.0, 4.0]);
    /// assert_eq!((a.max_all()?.item()?, a.min_all()?.item()?), (9.0, -5.0));
    /// assert_eq!(Tensor::<f32>::zeros(&[0]).max_all()?.item()?, f32::NEG_INFINITY);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn max(&self, axes: &[usize], keepdim: bool) -> Result<Self> {
        if let Some(t) = self.extreme_of_rows::<true>("max", axes, keepdim)? {
            return Ok(t);
        }
        self.fold_axes("max", axes, keepdim, T::NEG_INFINITY, T::max_val)
    }

    /// Minimum over `axes` (`+inf` for an empty axis). A NaN in a slice
    /// makes its result NaN. See [`max`](Self::max) for an example.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if an axis is not below the rank,
    /// [`Error::InvalidArgument`] if an axis is listed twice, or
    /// [`Error::TooLarge`] if the result cannot be allocated.
    pub fn min(&self, axes: &[usize], keepdim: bool) -> Result<Self> {
        if let Some(t) = self.extreme_of_rows::<false>("min", axes, keepdim)? {
            return Ok(t);
        }
        self.fold_axes("min", axes, keepdim, T::INFINITY, T::min_val)
    }

    /// [`max`](Self::max) (`LARGER`) or [`min`](Self::min) by the row
    /// kernels of `simd::extreme_rows`, when the input is contiguous and
    /// the reduced axes are trailing ones (but not all of them, which
    /// `fold_axes` splits across threads instead); `None` otherwise.
    fn extreme_of_rows<const LARGER: bool>(
        &self,
        op: &'static str,
        axes: &[usize],
        keepdim: bool,
    ) -> Result<Option<Self>> {
        let axes = normalize_axes(op, axes, self.dims())?;
        let trailing = axes
            .iter()
            .enumerate()
            .all(|(i, &a)| a == self.ndim() - axes.len() + i);
        let (Some(xs), true) = (self.as_slice(), trailing && axes.len() < self.ndim()) else {
            return Ok(None);
        };
        let n_red: usize = axes.iter().map(|&a| self.dims()[a]).product();
        let n_out = xs.len() / n_red.max(1);
        if n_red == 0 || n_out <= 1 {
            return Ok(None);
        }
        let fill = |start: usize, chunk: &mut [MaybeUninit<T>]| {
            simd::extreme_rows::<T, LARGER>(&xs[start * n_red..], n_red, chunk)
        };
        // SAFETY: `for_each_chunk` passes disjoint pieces covering all of
        // `out`, and `fill` writes every element of each.
        let out = if use_parallel(xs.len()) {
            unsafe {
                try_filled(n_out, |out| {
                    for_each_chunk(out, (CHUNK / n_red).max(1), fill)
                })
            }
        } else {
            unsafe { try_filled(n_out, |out| fill(0, out)) }
        };
        let shape = reduced_shape(self.dims(), &axes, keepdim);
        let out = out.map_err(|e| e.at(op, &shape))?;
        Ok(Some(Tensor::from_parts(out, &shape)))
    }

    /// Largest element, as a 0-d tensor (`-inf` when empty, NaN if any
    /// element is NaN).
    ///
    /// # Errors
    /// As [`sum_all`](Self::sum_all).
    pub fn max_all(&self) -> Result<Self> {
        let all: SmallVec<[usize; 8]> = (0..self.ndim()).collect();
        self.max(&all, false)
    }

    /// Smallest element, as a 0-d tensor (`+inf` when empty, NaN if any
    /// element is NaN).
    ///
    /// # Errors
    /// As [`sum_all`](Self::sum_all).
    pub fn min_all(&self) -> Result<Self> {
        let all: SmallVec<[usize; 8]> = (0..self.ndim()).collect();
        self.min(&all, false)
    }

    /// Variance over `axes` with `correction` subtracted from the count
    /// (0 for the population variance, 1 for the unbiased estimate). When
    /// `correction` is at least the number of elements reduced, the divisor
    /// is 0 and the result is NaN or `inf`; this is not an error.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if an axis is not below the rank,
    /// [`Error::InvalidArgument`] if an axis is listed twice, or
    /// [`Error::TooLarge`] if the result cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 2.0, 6.0], &[2, 3])?;
    /// let pop = a.var(&[1], false, 0)?.to_vec();
    /// assert!((pop[0] - 2.0 / 3.0).abs() < 1e-12 && (pop[1] - 8.0 / 3.0).abs() < 1e-12);
    /// assert_eq!(a.var(&[1], true, 1)?.to_vec(), vec![1.0, 4.0]);
    /// assert!(Tensor::<f64>::ones(&[1]).var(&[0], false, 1)?.item()?.is_nan());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn var(&self, axes: &[usize], keepdim: bool, correction: usize) -> Result<Self> {
        let n: usize = normalize_axes("var", axes, self.dims())?
            .iter()
            .map(|&a| self.dims()[a])
            .product();
        let m = self.mean(axes, true)?;
        let d = self.sub(&m)?.map_named("var", |x| x * x)?;
        let c = T::from_f64(n.saturating_sub(correction) as f64);
        d.sum(axes, keepdim)?.map_named("var", move |x| x / c)
    }

    /// [`argmax`](Self::argmax) (`LARGER`) or [`argmin`](Self::argmin).
    fn arg_reduce<const LARGER: bool>(
        &self,
        op: &'static str,
        axis: usize,
        keepdim: bool,
    ) -> Result<Self> {
        self.layout.check_axis(op, axis)?;
        let len = self.dims()[axis];
        if len == 0 {
            return Err(Error::invalid(
                op,
                format!("axis {axis} of shape {:?} is empty", self.dims()),
            ));
        }
        // Move `axis` last, then scan each row.
        let mut perm: SmallVec<[usize; 8]> = (0..self.ndim()).filter(|&a| a != axis).collect();
        perm.push(axis);
        let p = self.permute(&perm)?.try_to_contiguous(op)?;
        let xs = p.as_slice().expect("contiguous");
        let n_out = xs.len() / len;
        let fill = |start: usize, chunk: &mut [MaybeUninit<T>]| {
            simd::arg_extreme_rows::<T, LARGER>(&xs[start * len..], len, chunk)
        };
        // SAFETY: `for_each_chunk` passes disjoint pieces covering all of
        // `out`, and `fill` writes every element of each.
        let out = if use_parallel(xs.len()) {
            unsafe { try_filled(n_out, |out| for_each_chunk(out, (CHUNK / len).max(1), fill)) }
        } else {
            unsafe { try_filled(n_out, |out| fill(0, out)) }
        };
        let shape = reduced_shape(self.dims(), &[axis], keepdim);
        Ok(Tensor::from_parts(
            out.map_err(|e| e.at(op, &shape))?,
            &shape,
        ))
    }

    /// Index of the largest element along `axis` (the first one on ties),
    /// stored as a float (exact up to 2^24 for `f32`). A NaN counts as
    /// larger than any number, so the first NaN wins. The axis is removed, or
    /// kept as length 1 if `keepdim`.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank,
    /// [`Error::InvalidArgument`] if the axis has length 0, or
    /// [`Error::TooLarge`] if the result (or a copy of `self`) cannot be
    /// allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let logits = Tensor::from_vec(vec![0.1f32, 2.0, 2.0, 5.0, -1.0, 0.0], &[2, 3])?;
    /// assert_eq!(logits.argmax(1, false)?.to_vec(), vec![1.0, 0.0]); // ties: first
    /// assert_eq!(logits.argmin(1, true)?.shape(), &[2, 1]);
    /// assert_eq!(logits.argmin(1, false)?.to_vec(), vec![0.0, 1.0]);
    /// assert_eq!(logits.argmax(0, false)?.to_vec(), vec![1.0, 0.0, 0.0]);
    /// assert!(Tensor::<f32>::zeros(&[2, 0]).argmax(1, false).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn argmax(&self, axis: usize, keepdim: bool) -> Result<Self> {
        self.arg_reduce::<true>("argmax", axis, keepdim)
    }

    /// Index of the smallest element along `axis` (the first one on ties),
    /// stored as a float. A NaN also wins here (as in
    /// [`argmax`](Self::argmax), the first NaN is picked). See `argmax` for
    /// an example.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank,
    /// [`Error::InvalidArgument`] if the axis has length 0, or
    /// [`Error::TooLarge`] if the result (or a copy of `self`) cannot be
    /// allocated.
    pub fn argmin(&self, axis: usize, keepdim: bool) -> Result<Self> {
        self.arg_reduce::<false>("argmin", axis, keepdim)
    }

    /// `log Σ exp(x)` over `axes`, stable for large `|x|` (the maximum is
    /// subtracted first; an all-`-inf` slice gives `-inf`).
    ///
    /// One fused pass per slice: the maximum, then the sum of `exp(x - max)`
    /// (with the vectorised fast `exp` for `f32`); no intermediate tensors.
    /// An empty slice gives `-inf` (the log of an empty sum).
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if an axis is not below the rank,
    /// [`Error::InvalidArgument`] if an axis is listed twice, or
    /// [`Error::TooLarge`] if the result cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![0.0f64, 0.0, 1000.0, 1000.0], &[2, 2])?;
    /// let l = a.logsumexp(&[1], false)?.to_vec();
    /// assert!((l[0] - 2f64.ln()).abs() < 1e-12 && (l[1] - (1000.0 + 2f64.ln())).abs() < 1e-9);
    /// assert_eq!(a.logsumexp(&[0, 1], true)?.shape(), &[1, 1]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn logsumexp(&self, axes: &[usize], keepdim: bool) -> Result<Self> {
        const OP: &str = "logsumexp";
        let axes = normalize_axes(OP, axes, self.dims())?;
        let shape = reduced_shape(self.dims(), &axes, keepdim);
        let oom = |e: AllocError| e.at(OP, &shape);
        let n_out: usize = shape.iter().product();
        let n_red: usize = axes.iter().map(|&a| self.dims()[a]).product();
        if n_red == 0 || n_out == 0 {
            // Σ over nothing is 0, and ln 0 = -inf.
            let out = try_vec_of(n_out, T::NEG_INFINITY).map_err(oom)?;
            return Ok(Tensor::from_parts(out, &shape));
        }
        let (p, _) = self.axes_last(OP, &axes)?;
        let xs = p.as_slice().expect("contiguous");
        let fill = |start: usize, chunk: &mut [MaybeUninit<T>]| {
            for (j, o) in chunk.iter_mut().enumerate() {
                let r = start + j;
                *o = MaybeUninit::new(lse_row(&xs[r * n_red..][..n_red]));
            }
        };
        let out = if use_parallel(xs.len()) {
            let per = (CHUNK / n_red).max(1);
            // SAFETY: `for_each_chunk` cuts `out` into disjoint pieces that
            // cover it, and `fill` writes every element of each.
            unsafe { try_filled(n_out, |out| for_each_chunk(out, per, fill)) }
        } else {
            // SAFETY: `fill` writes every element of `out`.
            unsafe { try_filled(n_out, |out| fill(0, out)) }
        };
        Ok(Tensor::from_parts(out.map_err(oom)?, &shape))
    }

    /// Softmax along `axis`: `exp(x - max) / Σ exp(x - max)`.
    ///
    /// Fused: per slice one pass for the maximum, one writing `exp(x - max)`
    /// (the vectorised fast `exp` for `f32`) and summing it, one dividing;
    /// slices run in parallel on large inputs. The result has `self`'s shape.
    /// A slice whose entries are all `-inf` (or that holds `+inf`) gives NaN.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank, or
    /// [`Error::TooLarge`] if the result (or a copy of `self`) cannot be
    /// allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let p = Tensor::from_vec(vec![1000.0f32, 1000.0], &[2])?.softmax(0)?;
    /// assert_eq!(p.to_vec(), vec![0.5, 0.5]);
    /// // Each row of a [batch, classes] tensor sums to 1.
    /// let logits = Tensor::<f64>::arange(0.0, 6.0, 1.0)?.reshape(&[2, 3])?;
    /// let rows = logits.softmax(1)?.sum(&[1], false)?.to_vec();
    /// assert!(rows.iter().all(|s| (s - 1.0).abs() < 1e-12));
    /// assert!(logits.softmax(2).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn softmax(&self, axis: usize) -> Result<Self> {
        self.layout.check_axis("softmax", axis)?;
        self.map_rows("softmax", axis, |x, out| {
            let m = simd::fold(x, T::NEG_INFINITY, &T::max_val);
            simd::map(x, out, &|v| (v - m).exp_fast());
            // SAFETY: `simd::map` wrote every element of `out`.
            let e = unsafe { assume_init_mut(out) };
            let s = simd::fold(e, T::ZERO, &|a, b| a + b);
            // Dispatched like the passes above: a plain loop here is
            // compiled for baseline x86-64 and its 4-wide divisions were a
            // quarter of the op's time.
            simd::map_in_place(e, &|v| v / s);
        })
    }

    /// `log softmax` along `axis`: `x - logsumexp(x)`, fused like
    /// [`softmax`](Self::softmax) (a pass for the maximum, one summing
    /// `exp(x - max)`, one writing `x - lse`). As with `softmax`, a slice
    /// that is all `-inf` gives NaN.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank, or
    /// [`Error::TooLarge`] if the result (or a copy of `self`) cannot be
    /// allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let l = Tensor::from_vec(vec![0.0f64, f64::NEG_INFINITY], &[2])?.log_softmax(0)?;
    /// assert_eq!(l.to_vec(), vec![0.0, f64::NEG_INFINITY]);
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?;
    /// let direct = x.softmax(0)?.ln();
    /// let fused = x.log_softmax(0)?;
    /// assert!(direct?.sub(&fused)?.abs()?.max_all()?.item()? < 1e-12);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn log_softmax(&self, axis: usize) -> Result<Self> {
        self.layout.check_axis("log_softmax", axis)?;
        self.map_rows("log_softmax", axis, |x, out| {
            let lse = lse_row(x);
            simd::map(x, out, &|v| v - lse);
        })
    }

    /// `self` with `axes` moved last (in order) and made contiguous (a
    /// clone when it already is), and the permutation used.
    /// For a dense but permuted (say transposed) tensor: the same elements
    /// as a contiguous view with the axes in memory order, and that order
    /// (`order[i]` is the axis of `self` at position `i`). `None` for
    /// contiguous tensors and for views with gaps or repeats.
    fn in_storage_order(&self) -> Option<(Tensor<T>, SmallVec<[usize; 8]>)> {
        if self.is_contiguous() || self.numel() == 0 {
            return None;
        }
        let l = &self.layout;
        let mut order: SmallVec<[usize; 8]> = (0..self.ndim()).collect();
        // Largest stride first; length-1 axes, whose stride means nothing,
        // go last (stably, so an already ordered tensor keeps its order).
        order.sort_by_key(|&a| {
            let stride = if l.shape[a] == 1 { 0 } else { l.strides[a] };
            std::cmp::Reverse(stride)
        });
        let view = l.permute(&order).ok()?;
        view.is_contiguous()
            .then(|| (self.with_layout(view), order))
    }

    fn axes_last(
        &self,
        op: &'static str,
        axes: &[usize],
    ) -> Result<(Tensor<T>, SmallVec<[usize; 8]>)> {
        let mut perm: SmallVec<[usize; 8]> =
            (0..self.ndim()).filter(|a| !axes.contains(a)).collect();
        perm.extend_from_slice(axes);
        let p = if perm.iter().enumerate().all(|(i, &a)| i == a) {
            self.try_to_contiguous(op)?
        } else {
            self.permute(&perm)
                .expect("a permutation of the axes")
                .try_to_contiguous(op)?
        };
        Ok((p, perm))
    }

    /// Applies `row(x, out)` to every slice along `axis` (`out` must be
    /// written in full), giving a contiguous tensor of `self`'s shape.
    fn map_rows(
        &self,
        op: &'static str,
        axis: usize,
        row: impl Fn(&[T], &mut [MaybeUninit<T>]) + Sync + Send,
    ) -> Result<Self> {
        let len = self.dims()[axis];
        let (p, perm) = self.axes_last(op, &[axis])?;
        let xs = p.as_slice().expect("contiguous");
        let n = xs.len();
        let rows = |start: usize, out: &mut [MaybeUninit<T>]| {
            for (i, o) in out.chunks_mut(len).enumerate() {
                row(&xs[start + i * len..][..len], o);
            }
        };
        let out = if len == 0 || n == 0 {
            Ok(Vec::new().into())
        } else if use_parallel(n) {
            let per = (CHUNK / len).max(1) * len;
            // SAFETY: `for_each_chunk` cuts `out` into disjoint pieces of
            // whole rows (`per` is a multiple of `len`) that cover it;
            // `rows` cuts each into rows of `len` and `row` writes every
            // element of each.
            unsafe { try_filled(n, |out| for_each_chunk(out, per, rows)) }
        } else {
            // SAFETY: `rows` cuts `out` (n = rows · len) into rows of `len`
            // and `row` writes every element of each.
            unsafe { try_filled(n, |out| rows(0, out)) }
        };
        let out = out.map_err(|e| e.at(op, self.dims()))?;
        let t = Tensor::from_parts(out, p.dims());
        if axis + 1 == self.ndim() {
            return Ok(t);
        }
        // Move the axis back: `perm` sent axis `perm[i]` to position `i`.
        let mut inv: SmallVec<[usize; 8]> = SmallVec::from_elem(0, perm.len());
        for (i, &a) in perm.iter().enumerate() {
            inv[a] = i;
        }
        t.permute(&inv)?.try_to_contiguous(op)
    }
}

/// `ln Σ exp(x - m) + m` with `m` the maximum (0 if it is infinite, so an
/// all-`-inf` row gives `-inf` and a `+inf` entry gives `+inf`).
#[inline]
fn lse_row<T: Element>(x: &[T]) -> T {
    let m = simd::fold(x, T::NEG_INFINITY, &T::max_val);
    let m = if m.is_finite() { m } else { T::ZERO };
    let s = simd::map_fold(x, T::ZERO, &|v| (v - m).exp_fast(), &|a, b| a + b);
    s.ln() + m
}
