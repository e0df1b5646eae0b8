//! Joining and indexing: concat, stack, index_select, gather, one_hot.

use crate::buffer::{try_vec, try_vec_of};
use crate::error::{Error, Result};
use crate::layout::checked_numel;
use crate::{Element, Tensor};

impl<T: Element> Tensor<T> {
    /// Joins tensors along an existing `axis`; all other axes must agree.
    /// Always copies into a new contiguous tensor.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `tensors` is empty,
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank (so 0-d
    /// tensors cannot be joined; [`stack`](Self::stack) them), or
    /// [`Error::ShapeMismatch`] if a tensor's rank or any other axis differs
    /// from the first tensor's, or [`Error::TooLarge`] if the result is too
    /// large for memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::ones(&[2, 1]);
    /// let b = Tensor::<f32>::zeros(&[2, 2]);
    /// let c = Tensor::concat(&[&a, &b], 1)?;
    /// assert_eq!(c.shape(), &[2, 3]);
    /// assert_eq!(c.to_vec(), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    /// assert!(Tensor::concat(&[&a, &b], 0).is_err()); // axis 1 differs
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn concat(tensors: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
        first.layout.check_axis("concat", axis)?;
        for t in &tensors[1..] {
            let same = t.ndim() == first.ndim()
                && (0..first.ndim()).all(|i| i == axis || t.dims()[i] == first.dims()[i]);
            if !same {
                return Err(Error::ShapeMismatch {
                    op: "concat",
                    lhs: first.dims().to_vec(),
                    rhs: t.dims().to_vec(),
                    reason: format!("shapes must agree on every axis but {axis}"),
                });
            }
        }
        const OP: &str = "concat";
        let mut shape = first.shape();
        // A saturated sum is over the size limit, so the check below fails.
        shape[axis] = tensors
            .iter()
            .fold(0usize, |acc, t| acc.saturating_add(t.dims()[axis]));
        let n = checked_numel::<T>(OP, &shape)?;
        let outer: usize = shape[..axis].iter().product();
        let mut out = try_vec(n).map_err(|e| e.at(OP, &shape))?;
        let parts = tensors
            .iter()
            .map(|t| t.try_to_contiguous(OP))
            .collect::<Result<Vec<_>>>()?;
        for o in 0..outer {
            for p in &parts {
                let block: usize = p.dims()[axis..].iter().product();
                out.extend_from_slice(
                    &p.as_slice().expect("contiguous")[o * block..(o + 1) * block],
                );
            }
        }
        Ok(Tensor::from_parts(out, &shape))
    }

    /// Stacks equally shaped tensors along a new `axis` (`0..=ndim`).
    /// Always copies into a new contiguous tensor.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `tensors` is empty,
    /// [`Error::AxisOutOfRange`] if `axis > ndim`,
    /// [`Error::ShapeMismatch`] if the shapes are not all the same, or
    /// [`Error::TooLarge`] (op `"concat"`) if the result is too large for
    /// memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
    /// let b = Tensor::from_vec(vec![3.0f32, 4.0], &[2])?;
    /// assert_eq!(Tensor::stack(&[&a, &b], 0)?.to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    /// let cols = Tensor::stack(&[&a, &b], 1)?;
    /// assert_eq!(cols.shape(), &[2, 2]);
    /// assert_eq!(cols.to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
    /// let s = Tensor::stack(&[&Tensor::scalar(1.0f32), &Tensor::scalar(2.0)], 0)?;
    /// assert_eq!(s.shape(), &[2]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn stack(tensors: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        if axis > first.ndim() {
            return Err(Error::axis("stack", axis, first.dims()));
        }
        for t in &tensors[1..] {
            if t.dims() != first.dims() {
                return Err(Error::ShapeMismatch {
                    op: "stack",
                    lhs: first.dims().to_vec(),
                    rhs: t.dims().to_vec(),
                    reason: "all tensors must have the same shape".into(),
                });
            }
        }
        let views = tensors
            .iter()
            .map(|t| t.unsqueeze(axis))
            .collect::<Result<Vec<_>>>()?;
        Tensor::concat(&views.iter().collect::<Vec<_>>(), axis)
    }

    /// Picks the slices at `indices` along `axis` (rows of an embedding
    /// table, for instance). The result has `indices.len()` there; indices
    /// may repeat and come in any order. Always copies.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank,
    /// [`Error::IndexOutOfRange`] if an index is not below the axis length,
    /// or [`Error::TooLarge`] (op `"concat"`) if the result is too large for
    /// memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let table = Tensor::<f32>::arange(0.0, 6.0, 1.0)?.reshape(&[3, 2])?;
    /// let rows = table.index_select(0, &[2, 0, 2])?;
    /// assert_eq!(rows.shape(), &[3, 2]);
    /// assert_eq!(rows.to_vec(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
    /// assert_eq!(table.index_select(1, &[1])?.to_vec(), vec![1.0, 3.0, 5.0]);
    /// assert!(table.index_select(0, &[3]).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Result<Tensor<T>> {
        self.layout.check_axis("index_select", axis)?;
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.dims()[axis]) {
            return Err(Error::IndexOutOfRange {
                op: "index_select",
                index: bad,
                axis,
                shape: self.dims().to_vec(),
            });
        }
        let views = indices
            .iter()
            .map(|&i| self.narrow(axis, i, 1))
            .collect::<Result<Vec<_>>>()?;
        if views.is_empty() {
            let mut shape = self.shape();
            shape[axis] = 0;
            return Ok(Tensor::from_parts(vec![], &shape));
        }
        Tensor::concat(&views.iter().collect::<Vec<_>>(), axis)
    }

    /// For a 2-d `[n, c]` tensor, picks element `indices[i]` of row `i`
    /// (the log-probability of each sample's label), giving `[n]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the tensor is not 2-d or
    /// `indices.len()` differs from its number of rows, or
    /// [`Error::IndexOutOfRange`] if an index is not below the number of
    /// columns.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let logp = Tensor::from_vec(vec![0.1f32, 0.9, 0.7, 0.3], &[2, 2])?;
    /// assert_eq!(logp.gather_rows(&[1, 0])?.to_vec(), vec![0.9, 0.7]);
    /// assert!(logp.gather_rows(&[1]).is_err()); // one index per row
    /// assert!(logp.gather_rows(&[0, 2]).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn gather_rows(&self, indices: &[usize]) -> Result<Tensor<T>> {
        if self.ndim() != 2 || self.dims()[0] != indices.len() {
            return Err(Error::invalid(
                "gather_rows",
                format!(
                    "needs a [n, c] tensor and n indices, got shape {:?} and {} indices",
                    self.dims(),
                    indices.len()
                ),
            ));
        }
        let c = self.dims()[1];
        let mut out = try_vec(indices.len()).map_err(|e| e.at("gather_rows", &[indices.len()]))?;
        for (r, &i) in indices.iter().enumerate() {
            if i >= c {
                return Err(Error::IndexOutOfRange {
                    op: "gather_rows",
                    index: i,
                    axis: 1,
                    shape: self.dims().to_vec(),
                });
            }
            out.push(self.get(&[r, i])?);
        }
        Ok(Tensor::from_parts(out, &[indices.len()]))
    }

    /// One-hot rows: `[labels.len(), classes]` with a 1 at each label.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a label is not below `classes`, or
    /// [`Error::TooLarge`] if `[labels.len(), classes]` is too large for
    /// memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let y = Tensor::<f32>::one_hot(&[2, 0], 3)?;
    /// assert_eq!(y.shape(), &[2, 3]);
    /// assert_eq!(y.to_vec(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    /// assert_eq!(y.argmax(1, false)?.to_vec(), vec![2.0, 0.0]);
    /// assert!(Tensor::<f32>::one_hot(&[3], 3).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn one_hot(labels: &[usize], classes: usize) -> Result<Tensor<T>> {
        let shape = [labels.len(), classes];
        let n = checked_numel::<T>("one_hot", &shape)?;
        let mut out = try_vec_of(n, T::ZERO).map_err(|e| e.at("one_hot", &shape))?;
        for (r, &l) in labels.iter().enumerate() {
            if l >= classes {
                return Err(Error::invalid(
                    "one_hot",
                    format!("label {l} at position {r} is not below the class count {classes}"),
                ));
            }
            out[r * classes + l] = T::ONE;
        }
        Ok(Tensor::from_parts(out, &[labels.len(), classes]))
    }

    /// PyTorch's `gather`: `out[i][j][k] = self[index[i][j][k]][j][k]` for
    /// `axis = 0` (and likewise for other axes). `index` holds whole numbers
    /// (as floats, like [`argmax`](Self::argmax) returns them), has the same
    /// rank as `self`, and may be shorter than `self` on every axis but
    /// `axis`. The result has `index`'s shape.
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] if `axis` is not below the rank;
    /// [`Error::ShapeMismatch`] if the ranks differ or `index` is longer than
    /// `self` on another axis; [`Error::InvalidArgument`] if an index is
    /// negative, fractional, NaN or not below the length of `axis`;
    /// [`Error::TooLarge`] if the result cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let idx = Tensor::from_vec(vec![2.0f32, 0.0], &[2, 1])?;
    /// assert_eq!(x.gather(1, &idx)?.to_vec(), vec![3.0, 4.0]);
    /// // Along axis 0: pick a row for each column.
    /// let rows = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[1, 3])?;
    /// assert_eq!(x.gather(0, &rows)?.to_vec(), vec![4.0, 2.0, 6.0]);
    /// assert!(x.gather(1, &Tensor::from_vec(vec![0.5f32], &[1, 1])?).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn gather(&self, axis: usize, index: &Tensor<T>) -> Result<Tensor<T>> {
        const OP: &str = "gather";
        self.layout.check_axis(OP, axis)?;
        let fits = index.ndim() == self.ndim()
            && (0..self.ndim()).all(|d| d == axis || index.dims()[d] <= self.dims()[d]);
        if !fits {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.dims().to_vec(),
                rhs: index.dims().to_vec(),
                reason: format!(
                    "the index needs the same rank and may be no longer on any axis but {axis}"
                ),
            });
        }
        let len = self.dims()[axis];
        let src = self.storage.as_slice();
        let mut out = try_vec(index.numel()).map_err(|e| e.at(OP, index.dims()))?;
        let mut pos: Vec<usize> = vec![0; index.ndim()];
        for v in index.try_to_vec(OP)? {
            let i = v.to_f64();
            if !(i >= 0.0 && i.fract() == 0.0 && i < len as f64) {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "index {v} at {pos:?} of the index tensor {:?} is not a whole number \
                         below {len} (axis {axis} of shape {:?})",
                        index.dims(),
                        self.dims()
                    ),
                ));
            }
            let mut at = pos.clone();
            at[axis] = i as usize;
            out.push(src[self.layout.offset_of(&at)]);
            // Advance the multi-index over `index`'s shape (row-major).
            for d in (0..pos.len()).rev() {
                pos[d] += 1;
                if pos[d] < index.dims()[d] {
                    break;
                }
                pos[d] = 0;
            }
        }
        Ok(Tensor::from_parts(out, index.dims()))
    }
}
