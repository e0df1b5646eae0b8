//! Views: ops that change only the layout, never the data.

use crate::error::{Error, Result};
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
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0)?;
    /// let b = a.reshape(&[2, 3])?;
    /// assert!(b.shares_storage_with(&a) || a.numel() == 1);
    /// assert_eq!(b.get(&[1, 0])?, 3.0);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        let n: usize = shape.iter().product();
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
            None => Ok(Tensor::from_parts(self.to_vec(), shape)),
        }
    }

    /// Like [`reshape`](Self::reshape), with at most one axis given as `-1`
    /// and inferred from the element count.
    ///
    /// # Errors
    /// If more than one axis is `-1`, an axis is negative otherwise, or the
    /// counts cannot match.
    pub fn reshape_infer(&self, shape: &[isize]) -> Result<Self> {
        let known: isize = shape.iter().filter(|&&d| d != -1).product();
        let unknown = shape.iter().filter(|&&d| d == -1).count();
        let bad = || {
            Error::invalid(
                "reshape",
                format!("cannot reshape {:?} into {shape:?}", self.shape()),
            )
        };
        if unknown > 1 || shape.iter().any(|&d| d < -1) {
            return Err(bad());
        }
        let dims: Vec<usize> = if unknown == 1 {
            if known == 0 || !self.numel().is_multiple_of(known as usize) {
                return Err(bad());
            }
            let inferred = self.numel() / known as usize;
            shape
                .iter()
                .map(|&d| if d == -1 { inferred } else { d as usize })
                .collect()
        } else {
            shape.iter().map(|&d| d as usize).collect()
        };
        self.reshape(&dims)
    }

    /// Flattens to one dimension (a view when contiguous).
    pub fn flatten(&self) -> Self {
        self.reshape(&[self.numel()])
            .expect("flatten keeps the element count")
    }

    /// Reorders axes: axis `i` of the result is axis `perm[i]` of `self`.
    /// Zero-copy.
    ///
    /// # Errors
    /// If `perm` is not a permutation of `0..ndim`.
    pub fn permute(&self, perm: &[usize]) -> Result<Self> {
        Ok(self.with_layout(self.layout.permute(perm)?))
    }

    /// Swaps two axes. Zero-copy.
    ///
    /// # Errors
    /// If either axis is out of range.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.transpose(a, b)?))
    }

    /// Swaps the last two axes (the matrix transpose). Zero-copy.
    ///
    /// # Errors
    /// If the tensor has fewer than two axes.
    pub fn t(&self) -> Result<Self> {
        let n = self.ndim();
        if n < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs at least 2 axes, shape is {:?}", self.shape()),
            ));
        }
        self.transpose(n - 2, n - 1)
    }

    /// Keeps `len` positions from `start` along `axis`. Zero-copy.
    ///
    /// # Errors
    /// If the axis or the range is out of bounds.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Self> {
        self.slice(axis, start, start.saturating_add(len), 1)
    }

    /// Keeps positions `start, start+step, …` below `end` along `axis`
    /// (Python's `a[start:end:step]`). Zero-copy.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f64>::arange(0.0, 10.0, 1.0)?;
    /// assert_eq!(a.slice(0, 1, 10, 3)?.to_vec(), vec![1.0, 4.0, 7.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the axis or range is out of bounds or `step` is 0.
    pub fn slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.slice(axis, start, end, step)?))
    }

    /// Removes `axis`, keeping position `index`. Zero-copy.
    ///
    /// # Errors
    /// If the axis or index is out of range.
    pub fn select(&self, axis: usize, index: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.select(axis, index)?))
    }

    /// Inserts a length-1 axis at `axis` (`0..=ndim`). Zero-copy.
    ///
    /// # Errors
    /// If `axis > ndim`.
    pub fn unsqueeze(&self, axis: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.unsqueeze(axis)?))
    }

    /// Removes a length-1 axis. Zero-copy.
    ///
    /// # Errors
    /// If the axis is out of range or its length is not 1.
    pub fn squeeze(&self, axis: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.squeeze(axis)?))
    }

    /// Removes every length-1 axis. Zero-copy.
    pub fn squeeze_all(&self) -> Self {
        let mut l = self.layout.clone();
        let keep: Vec<usize> = (0..self.ndim()).filter(|&i| self.shape()[i] != 1).collect();
        l.shape = keep.iter().map(|&i| self.layout.shape[i]).collect();
        l.strides = keep.iter().map(|&i| self.layout.strides[i]).collect();
        self.with_layout(l)
    }

    /// Broadcasts to `shape` (NumPy rules) with zero strides. Zero-copy.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?.broadcast_to(&[3, 2])?;
    /// assert_eq!(b.strides(), &[0, 1]);
    /// assert_eq!(b.to_vec(), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Self> {
        Ok(self.with_layout(self.layout.broadcast_to(shape)?))
    }

    /// Alias of [`broadcast_to`](Self::broadcast_to) (PyTorch's name).
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn expand(&self, shape: &[usize]) -> Result<Self> {
        self.broadcast_to(shape)
    }
}
