//! Joining and indexing: concat, stack, index_select, gather, one_hot.

use crate::error::{Error, Result};
use crate::{Element, Tensor};

impl<T: Element> Tensor<T> {
    /// Joins tensors along an existing `axis`; all other axes must agree.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::ones(&[2, 1]);
    /// let b = Tensor::<f32>::zeros(&[2, 2]);
    /// let c = Tensor::concat(&[&a, &b], 1)?;
    /// assert_eq!(c.to_vec(), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the list is empty, the axis is out of range, or the other axes differ.
    pub fn concat(tensors: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
        first.layout.check_axis("concat", axis)?;
        for t in &tensors[1..] {
            let same = t.ndim() == first.ndim()
                && (0..first.ndim()).all(|i| i == axis || t.shape()[i] == first.shape()[i]);
            if !same {
                return Err(Error::ShapeMismatch {
                    op: "concat",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                    reason: format!("shapes must agree on every axis but {axis}"),
                });
            }
        }
        let mut shape = first.dims();
        shape[axis] = tensors.iter().map(|t| t.shape()[axis]).sum();
        let outer: usize = shape[..axis].iter().product();
        let mut out = Vec::with_capacity(shape.iter().product());
        let parts: Vec<Tensor<T>> = tensors.iter().map(|t| t.to_contiguous()).collect();
        for o in 0..outer {
            for p in &parts {
                let block: usize = p.shape()[axis..].iter().product();
                out.extend_from_slice(
                    &p.as_slice().expect("contiguous")[o * block..(o + 1) * block],
                );
            }
        }
        Ok(Tensor::from_parts(out, &shape))
    }

    /// Stacks equally shaped tensors along a new `axis` (`0..=ndim`).
    ///
    /// # Errors
    /// If the list is empty, the shapes differ, or the axis is out of range.
    pub fn stack(tensors: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        if axis > first.ndim() {
            return Err(Error::axis("stack", axis, first.shape()));
        }
        for t in &tensors[1..] {
            if t.shape() != first.shape() {
                return Err(Error::ShapeMismatch {
                    op: "stack",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
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
    /// table, for instance). The result has `indices.len()` there.
    ///
    /// # Errors
    /// If the axis is out of range or an index is out of bounds.
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Result<Tensor<T>> {
        self.layout.check_axis("index_select", axis)?;
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.shape()[axis]) {
            return Err(Error::IndexOutOfRange {
                op: "index_select",
                index: bad,
                axis,
                shape: self.shape().to_vec(),
            });
        }
        let views = indices
            .iter()
            .map(|&i| self.narrow(axis, i, 1))
            .collect::<Result<Vec<_>>>()?;
        if views.is_empty() {
            let mut shape = self.dims();
            shape[axis] = 0;
            return Ok(Tensor::from_parts(vec![], &shape));
        }
        Tensor::concat(&views.iter().collect::<Vec<_>>(), axis)
    }

    /// For a 2-d `[n, c]` tensor, picks element `indices[i]` of row `i`
    /// (the log-probability of each sample's label), giving `[n]`.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let logp = Tensor::from_vec(vec![0.1f32, 0.9, 0.7, 0.3], &[2, 2])?;
    /// assert_eq!(logp.gather_rows(&[1, 0])?.to_vec(), vec![0.9, 0.7]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the tensor is not 2-d, the counts differ, or an index is out of range.
    pub fn gather_rows(&self, indices: &[usize]) -> Result<Tensor<T>> {
        if self.ndim() != 2 || self.shape()[0] != indices.len() {
            return Err(Error::invalid(
                "gather_rows",
                format!(
                    "needs a [n, c] tensor and n indices, got shape {:?} and {} indices",
                    self.shape(),
                    indices.len()
                ),
            ));
        }
        let c = self.shape()[1];
        let mut out = Vec::with_capacity(indices.len());
        for (r, &i) in indices.iter().enumerate() {
            if i >= c {
                return Err(Error::IndexOutOfRange {
                    op: "gather_rows",
                    index: i,
                    axis: 1,
                    shape: self.shape().to_vec(),
                });
            }
            out.push(self.get(&[r, i])?);
        }
        Ok(Tensor::from_parts(out, &[indices.len()]))
    }

    /// One-hot rows: `[labels.len(), classes]` with a 1 at each label.
    ///
    /// # Errors
    /// If a label is not below `classes`.
    pub fn one_hot(labels: &[usize], classes: usize) -> Result<Tensor<T>> {
        let mut out = vec![T::ZERO; labels.len() * classes];
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
}
