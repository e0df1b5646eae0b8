//! Views: ops that change only the layout, never the data.

use crate::error::{Error, Result};
use crate::layout::checked_numel;
use crate::{Element, Tensor};

impl<T: Element> Tensor<T> {
    /// The same elements in row-major order with a new shape (see
    /// [`reshape_infer`](Self::reshape_infer) for a `-1` axis).
    ///
    /// **Copies** only when the layout forces it: a contiguous tensor, or a
    /// view whose strides can be regrouped into the new shape, is reshaped
    /// without copying; otherwise (for example a transposed matrix flattened)
    /// the data is copied into a new buffer first.
    ///
    /// # Errors
    /// [`Error::ElementCount`] if the product of `shape` differs from
    /// [`numel`](Self::numel); [`Error::TooLarge`] if `shape` is too large
    /// for memory (so its product would overflow), or if a copy is needed
    /// and cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0)?;
    /// let b = a.reshape(&[2, 3])?;
    /// assert!(b.shares_storage_with(&a)); // contiguous: a view
    /// assert_eq!(b.get(&[1, 0])?, 3.0);
    /// // A transposed matrix cannot be regrouped, so this copies.
    /// let c = b.t()?.reshape(&[6])?;
    /// assert!(!c.shares_storage_with(&a));
    /// assert_eq!(c.to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    /// assert!(a.reshape(&[4, 2]).is_err());
    /// // [2^63 + 1, 2] would wrap around to 2 elements: too large instead.
    /// let err = a.slice(0, 0, 2, 1)?.reshape(&[(1 << 63) + 1, 2]).unwrap_err();
    /// assert!(matches!(err, tapegrad_tensor::Error::TooLarge { op: "reshape", .. }));
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        let n = checked_numel::<T>("reshape", shape)?;
        if n != self.numel() {
            return Err(Error::ElementCount {
                op: "reshape",
                shape: shape.to_vec(),
                expected: n,
                got: self.numel(),
            });
        }
        match self.layout.reshape_view(shape) {
            Some(l) => Ok(self.with_layout(l)),
            None => Ok(Tensor::from_parts(self.try_to_data("reshape")?, shape)),
        }
    }

    /// Like [`reshape`](Self::reshape), with at most one axis given as `-1`
    /// and inferred from the element count.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (op `"reshape"`) if more than one axis is
    /// `-1`, an axis is below `-1`, or no size for the `-1` axis makes the
    /// counts match (including when another axis is 0 and when the other
    /// axes alone are too large for memory); otherwise as
    /// [`reshape`](Self::reshape).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::zeros(&[4, 6]);
    /// assert_eq!(a.reshape_infer(&[-1, 3])?.shape(), &[8, 3]);
    /// assert_eq!(a.reshape_infer(&[2, -1, 2])?.shape(), &[2, 6, 2]);
    /// assert!(a.reshape_infer(&[-1, 5]).is_err()); // 24 is not a multiple of 5
    /// assert!(a.reshape_infer(&[-1, -1]).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn reshape_infer(&self, shape: &[isize]) -> Result<Self> {
        let unknown = shape.iter().filter(|&&d| d == -1).count();
        let bad = || {
            Error::invalid(
                "reshape",
                format!("cannot reshape {:?} into {shape:?}", self.dims()),
            )
        };
        if unknown > 1 || shape.iter().any(|&d| d < -1) {
            return Err(bad());
        }
        let dims: Vec<usize> = if unknown == 1 {
            let others: Vec<usize> = shape
                .iter()
                .filter(|&&d| d != -1)
                .map(|&d| d as usize)
                .collect();
            // Too large for memory: more than any tensor holds, so no size
            // for the `-1` axis can match.
            let known = checked_numel::<T>("reshape", &others).map_err(|_| bad())?;
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(bad());
            }
            let inferred = self.numel() / known;
            shape
                .iter()
                .map(|&d| if d == -1 { inferred } else { d as usize })
                .collect()
        } else {
            shape.iter().map(|&d| d as usize).collect()
        };
        self.reshape(&dims)
    }

    /// Flattens to one dimension (a view when contiguous, else a copy; a 0-d
    /// tensor becomes shape `[1]`).
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"reshape"`) if a copy is needed and cannot be
    /// allocated (only a huge broadcast view can cause this).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0)?.reshape(&[2, 3])?;
    /// assert_eq!(a.flatten()?.shape(), &[6]);
    /// assert_eq!(a.t()?.flatten()?.to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    /// assert_eq!(Tensor::scalar(1.0f32).flatten()?.shape(), &[1]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn flatten(&self) -> Result<Self> {
        self.reshape(&[self.numel()])
    }

    /// Reorders axes: axis `i` of the result is axis `perm[i]` of `self`.
    /// Zero-copy.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `perm` is not a permutation of
    /// `0..ndim` (wrong length, an axis out of range, or an axis repeated).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::zeros(&[2, 3, 4]);
    /// let p = a.permute(&[2, 0, 1])?;
    /// assert_eq!(p.shape(), &[4, 2, 3]);
    /// assert_eq!(p.strides(), &[1, 12, 4]);
    /// assert!(p.shares_storage_with(&a));
    /// assert!(a.permute(&[0, 0, 1]).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn permute(&self, perm: &[usize]) -> Result<Self> {
        Ok(self.with_layout(self.layout.permute(perm)?))
    }

    /// Swaps two axes. Zero-copy.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if either axis is not below the rank.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::arange(0.0, 24.0, 1.0)?.reshape(&[2, 3, 4])?;
    /// let b = a.transpose(0, 2)?;
    /// assert_eq!(b.shape(), &[4, 3, 2]);
    /// assert_eq!(b.get(&[3, 1, 0])?, a.get(&[0, 1, 3])?);
    /// assert!(a.transpose(0, 3).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn transpose(&self, a: usize, b: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.transpose(a, b)?))
    }

    /// Swaps the last two axes (the matrix transpose). Zero-copy.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the tensor has fewer than two axes (a
    /// vector has no matrix transpose; use [`unsqueeze`](Self::unsqueeze)
    /// first).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0)?.reshape(&[1, 2, 3])?;
    /// assert_eq!(a.t()?.shape(), &[1, 3, 2]); // only the last two axes swap
    /// assert!(Tensor::<f32>::zeros(&[3]).t().is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn t(&self) -> Result<Self> {
        let n = self.ndim();
        if n < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs at least 2 axes, shape is {:?}", self.dims()),
            ));
        }
        self.transpose(n - 2, n - 1)
    }

    /// Keeps `len` positions from `start` along `axis`. Zero-copy.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank, or
    /// [`Error::InvalidArgument`] (op `"slice"`) if `start + len` exceeds the
    /// axis length.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::arange(0.0, 12.0, 1.0)?.reshape(&[3, 4])?;
    /// let cols = a.narrow(1, 1, 2)?;
    /// assert_eq!(cols.shape(), &[3, 2]);
    /// assert_eq!(cols.to_vec(), vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
    /// assert!(a.narrow(0, 2, 2).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Self> {
        self.slice(axis, start, start.saturating_add(len), 1)
    }

    /// Keeps positions `start, start+step, …` below `end` along `axis`
    /// (Python's `a[start:end:step]`). Zero-copy. Unlike Python, the bounds
    /// are not clamped: `end` must not exceed the axis length.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank;
    /// [`Error::InvalidArgument`] if `step` is 0, `start > end`, or `end`
    /// exceeds the axis length.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f64>::arange(0.0, 10.0, 1.0)?;
    /// assert_eq!(a.slice(0, 1, 10, 3)?.to_vec(), vec![1.0, 4.0, 7.0]);
    /// assert_eq!(a.slice(0, 4, 4, 1)?.numel(), 0);
    /// assert!(a.slice(0, 0, 11, 1).is_err());
    /// assert!(a.slice(0, 0, 10, 0).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.slice(axis, start, end, step)?))
    }

    /// Removes `axis`, keeping position `index`. Zero-copy.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank, or
    /// [`Error::IndexOutOfRange`] if `index` is not below its length.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0)?.reshape(&[2, 3])?;
    /// assert_eq!(a.select(0, 1)?.to_vec(), vec![3.0, 4.0, 5.0]); // row 1
    /// assert_eq!(a.select(1, 2)?.to_vec(), vec![2.0, 5.0]); // column 2
    /// assert_eq!(a.select(0, 1)?.select(0, 0)?.shape(), &[] as &[usize]);
    /// assert!(a.select(0, 2).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn select(&self, axis: usize, index: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.select(axis, index)?))
    }

    /// Inserts a length-1 axis at `axis` (`0..=ndim`). Zero-copy.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis > ndim`.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let v = Tensor::<f32>::zeros(&[3]);
    /// assert_eq!(v.unsqueeze(0)?.shape(), &[1, 3]); // a row
    /// assert_eq!(v.unsqueeze(1)?.shape(), &[3, 1]); // a column
    /// assert!(v.unsqueeze(2).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn unsqueeze(&self, axis: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.unsqueeze(axis)?))
    }

    /// Removes a length-1 axis. Zero-copy.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank, or
    /// [`Error::InvalidArgument`] if its length is not 1.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::zeros(&[1, 3, 1]);
    /// assert_eq!(a.squeeze(2)?.shape(), &[1, 3]);
    /// assert_eq!(a.squeeze_all()?.shape(), &[3]);
    /// assert!(a.squeeze(1).is_err()); // length 3
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn squeeze(&self, axis: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.squeeze(axis)?))
    }

    /// Removes every length-1 axis. Zero-copy.
    ///
    /// # Errors
    /// Never, today; it returns `Result` like every op (see the crate docs).
    pub fn squeeze_all(&self) -> Result<Self> {
        let mut l = self.layout.clone();
        let keep: Vec<usize> = (0..self.ndim()).filter(|&i| self.dims()[i] != 1).collect();
        l.shape = keep.iter().map(|&i| self.layout.shape[i]).collect();
        l.strides = keep.iter().map(|&i| self.layout.strides[i]).collect();
        Ok(self.with_layout(l))
    }

    /// Broadcasts to `shape` (NumPy rules) with zero strides. Zero-copy.
    /// One-directional: `self`'s axes are matched to the right end of
    /// `shape`, and each must equal the target or be 1.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `self`'s shape does not broadcast to
    /// `shape` (more axes than `shape`, or a dimension that is neither 1 nor
    /// the target's); [`Error::TooLarge`] if `shape` is too large for memory
    /// (the view holds no buffer of that size, but a copy of it would).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?.broadcast_to(&[3, 2])?;
    /// assert_eq!(b.strides(), &[0, 1]);
    /// assert_eq!(b.to_vec(), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// assert!(Tensor::<f32>::zeros(&[3]).broadcast_to(&[2, 2]).is_err());
    /// assert!(Tensor::<f32>::zeros(&[2, 2]).broadcast_to(&[2]).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Self> {
        let l = self.layout.broadcast_to(shape)?;
        checked_numel::<T>("broadcast_to", shape)?;
        Ok(self.with_layout(l))
    }

    /// Alias of [`broadcast_to`](Self::broadcast_to) (PyTorch's name).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] (op `"broadcast_to"`) if `self`'s shape does
    /// not broadcast to `shape`, or [`Error::TooLarge`] if `shape` is too
    /// large for memory.
    pub fn expand(&self, shape: &[usize]) -> Result<Self> {
        self.broadcast_to(shape)
    }
}
