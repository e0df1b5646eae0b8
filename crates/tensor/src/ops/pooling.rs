//! Pooling on `[N, C, H, W]`: max pooling (with the position of each
//! maximum, for its gradient), average pooling, and the flat gather and
//! scatter that route max pooling's gradient.

use crate::buffer::try_vec_of;
use crate::error::{Error, Result};
use crate::layout::checked_numel;
use crate::ops::conv::ConvParams;
use crate::{Element, Tensor};

/// Checks a pooling window against a `[N, C, H, W]` input and returns the
/// output's `[OH, OW]`. PyTorch's rules: stride ≥ 1, padding at most half
/// the kernel (so every window holds at least one input element).
pub(crate) fn pool_output_size(
    op: &'static str,
    dims: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<[usize; 2]> {
    if dims.len() != 4 {
        return Err(Error::invalid(
            op,
            format!("expected [N, C, H, W], got {dims:?}"),
        ));
    }
    if kernel.contains(&0) || stride.contains(&0) {
        return Err(Error::invalid(
            op,
            format!("kernel {kernel:?} and stride {stride:?} must be at least 1"),
        ));
    }
    if padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2 {
        return Err(Error::invalid(
            op,
            format!("padding {padding:?} must be at most half the kernel {kernel:?}"),
        ));
    }
    let p = ConvParams {
        stride,
        padding,
        dilation: [1, 1],
        groups: 1,
    };
    p.output_size([dims[2], dims[3]], kernel).ok_or_else(|| {
        Error::invalid(
            op,
            format!(
                "kernel {kernel:?} is larger than the padded input {:?} (padding {padding:?})",
                &dims[2..]
            ),
        )
    })
}

impl<T: Element> Tensor<T> {
    /// 2-d max pooling of `[N, C, H, W]`, with the position of each
    /// maximum as a flat index into the input's elements in row-major
    /// order (`((n·C + c)·H + y)·W + x`). Padding counts as −∞ (it is
    /// never the maximum).
    ///
    /// **Ties** go to the first maximum in scan order (row by row within
    /// the window), as in PyTorch's CPU kernel; a NaN in a window is its
    /// maximum.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 5.0, 2.0, 5.0], &[1, 1, 2, 2])?;
    /// let (y, at) = x.max_pool2d_with_indices([2, 2], [2, 2], [0, 0])?;
    /// assert_eq!(y.to_vec(), vec![5.0]);
    /// assert_eq!(at, vec![1]); // the first of the two 5s
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `self` is not 4-d, a kernel or stride entry is 0, the padding is
    /// more than half the kernel, or the kernel is larger than the padded
    /// input.
    pub fn max_pool2d_with_indices(
        &self,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<(Self, Vec<usize>)> {
        const OP: &str = "max_pool2d";
        let d = self.dims();
        let [oh, ow] = pool_output_size(OP, d, kernel, stride, padding)?;
        let shape = [d[0], d[1], oh, ow];
        let numel = checked_numel::<T>(OP, &shape)?;
        let x = self.try_to_contiguous(OP)?;
        let xs = x.as_slice().expect("contiguous");
        let (h, w) = (d[2], d[3]);
        let mut at = try_vec_of(numel, 0usize).map_err(|e| e.at(OP, &shape))?;
        // The window's rows and columns clipped to the input, per output
        // row and column, computed once.
        let clip = |o: usize, a: usize, len: usize| -> (usize, usize) {
            let start = o * stride[a];
            let lo = start.max(padding[a]) - padding[a];
            let hi = (start + kernel[a]).saturating_sub(padding[a]).min(len);
            (lo, hi.max(lo + 1).min(len.max(lo + 1)))
        };
        let rows: Vec<(usize, usize)> = (0..oh).map(|o| clip(o, 0, h)).collect();
        let cols: Vec<(usize, usize)> = (0..ow).map(|o| clip(o, 1, w)).collect();
        let plane_out = (oh * ow).max(1);
        let planes_per_chunk = (crate::parallel::CHUNK / plane_out).max(1);
        let parallel = crate::parallel::use_parallel(numel * kernel[0] * kernel[1]);
        let work = |start: usize, part: &mut [usize]| {
            for (k, out_plane) in part.chunks_mut(plane_out).enumerate() {
                let plane = start / plane_out + k;
                let base = plane * h * w;
                for (oy, out_row) in out_plane.chunks_mut(ow.max(1)).enumerate() {
                    let (y0, y1) = rows[oy];
                    for (ox, slot) in out_row.iter_mut().enumerate() {
                        let (x0, x1) = cols[ox];
                        let mut best_at = base + y0 * w + x0;
                        let mut best = xs[best_at];
                        for y in y0..y1 {
                            let line = base + y * w;
                            for (xi, &v) in xs[line + x0..line + x1].iter().enumerate() {
                                // Strictly greater: ties keep the first
                                // maximum; a NaN wins over numbers. Written
                                // as selects, not a branch: on random data
                                // the comparison is a coin toss.
                                let better = (v > best) | (v.is_nan() & !best.is_nan());
                                best = if better { v } else { best };
                                best_at = if better { line + x0 + xi } else { best_at };
                            }
                        }
                        *slot = best_at;
                    }
                }
            }
        };
        if parallel {
            crate::parallel::for_each_chunk(&mut at, planes_per_chunk * plane_out, work);
        } else {
            work(0, &mut at);
        }
        let mut out = try_vec_of(numel, T::ZERO).map_err(|e| e.at(OP, &shape))?;
        for (o, &j) in out.iter_mut().zip(&at) {
            *o = xs[j];
        }
        Ok((Tensor::from_parts(out, &shape), at))
    }

    /// 2-d average pooling of `[N, C, H, W]`: the mean of each window,
    /// padding counted as zeros in the divisor `kh·kw` (PyTorch's default,
    /// `count_include_pad=True`). Computed as a depthwise convolution with
    /// a constant kernel.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 6.0], &[1, 1, 2, 2])?;
    /// let y = x.avg_pool2d([2, 2], [2, 2], [0, 0])?;
    /// assert_eq!(y.to_vec(), vec![3.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`max_pool2d_with_indices`](Self::max_pool2d_with_indices).
    pub fn avg_pool2d(
        &self,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<Self> {
        let (weight, params) = avg_pool_as_conv(self.dims(), kernel, stride, padding)?;
        self.conv2d(&weight, &params)
    }

    /// The elements at flat row-major positions `indices`, as a tensor of
    /// `shape` (max pooling's forward once the maxima are known).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(x.take_flat(&[3, 0], &[2])?.to_vec(), vec![4.0, 1.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If an index is not below `self.numel()` or `shape` does not hold
    /// `indices.len()` elements.
    pub fn take_flat(&self, indices: &[usize], shape: &[usize]) -> Result<Self> {
        const OP: &str = "take_flat";
        let numel = checked_numel::<T>(OP, shape)?;
        if numel != indices.len() {
            return Err(Error::ElementCount {
                op: OP,
                shape: shape.to_vec(),
                expected: numel,
                got: indices.len(),
            });
        }
        let x = self.try_to_contiguous(OP)?;
        let xs = x.as_slice().expect("contiguous");
        check_indices(OP, indices, self.dims())?;
        let mut out = try_vec_of(numel, T::ZERO).map_err(|e| e.at(OP, shape))?;
        for (o, &j) in out.iter_mut().zip(indices) {
            *o = xs[j];
        }
        Ok(Tensor::from_parts(out, shape))
    }

    /// The adjoint of [`take_flat`](Self::take_flat): a zero tensor of
    /// `shape` with each element of `self` added at its flat position in
    /// `indices` (max pooling's gradient: each output's gradient goes to
    /// its maximum).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let g = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0], &[3])?;
    /// let x = g.scatter_add_flat(&[1, 1, 3], &[2, 2])?;
    /// assert_eq!(x.to_vec(), vec![0.0, 3.0, 0.0, 3.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `self` does not have `indices.len()` elements or an index is not
    /// below the element count of `shape`.
    pub fn scatter_add_flat(&self, indices: &[usize], shape: &[usize]) -> Result<Self> {
        const OP: &str = "scatter_add_flat";
        let numel = checked_numel::<T>(OP, shape)?;
        if self.numel() != indices.len() {
            return Err(Error::ElementCount {
                op: OP,
                shape: self.dims().to_vec(),
                expected: indices.len(),
                got: self.numel(),
            });
        }
        check_indices(OP, indices, shape)?;
        let g = self.try_to_contiguous(OP)?;
        let gs = g.as_slice().expect("contiguous");
        let mut out = try_vec_of(numel, T::ZERO).map_err(|e| e.at(OP, shape))?;
        for (&v, &j) in gs.iter().zip(indices) {
            out[j] += v;
        }
        Ok(Tensor::from_parts(out, shape))
    }
}

/// Every index below the element count of `shape`.
fn check_indices(op: &'static str, indices: &[usize], shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    match indices.iter().find(|&&j| j >= n) {
        Some(&j) => Err(Error::IndexOutOfRange {
            op,
            index: j,
            axis: 0,
            shape: vec![n],
        }),
        None => Ok(()),
    }
}

/// Average pooling as a depthwise convolution: a `[C, 1, kh, kw]` kernel of
/// `1/(kh·kw)` with `groups = C`, for an input of shape `dims`
/// (`[N, C, H, W]`). This is how [`Tensor::avg_pool2d`] and its gradient
/// are computed.
///
/// ```
/// use tapegrad_tensor::{avg_pool_as_conv, Tensor};
/// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 6.0], &[1, 1, 2, 2])?;
/// let (w, p) = avg_pool_as_conv::<f32>(x.dims(), [2, 2], [2, 2], [0, 0])?;
/// assert_eq!(w.to_vec(), vec![0.25; 4]);
/// assert_eq!(x.conv2d(&w, &p)?.to_vec(), x.avg_pool2d([2, 2], [2, 2], [0, 0])?.to_vec());
/// # Ok::<(), tapegrad_tensor::Error>(())
/// ```
///
/// # Errors
/// As [`Tensor::max_pool2d_with_indices`].
pub fn avg_pool_as_conv<T: Element>(
    dims: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<(Tensor<T>, ConvParams)> {
    pool_output_size("avg_pool2d", dims, kernel, stride, padding)?;
    let c = dims[1];
    let k = kernel[0] * kernel[1];
    let weight = Tensor::try_full(&[c, 1, kernel[0], kernel[1]], T::from_f64(1.0 / k as f64))?;
    let params = ConvParams {
        stride,
        padding,
        dilation: [1, 1],
        groups: c.max(1),
    };
    Ok((weight, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_padding_and_stride() {
        // 3×3 input 0..9, kernel 2, stride 2, padding 1: windows are
        // {0}, {1, 2}, {3, 6}, {4, 5, 7, 8}.
        let x = Tensor::<f64>::arange(0.0, 9.0, 1.0)
            .unwrap()
            .reshape(&[1, 1, 3, 3])
            .unwrap();
        let (y, at) = x.max_pool2d_with_indices([2, 2], [2, 2], [1, 1]).unwrap();
        assert_eq!(y.to_vec(), vec![0.0, 2.0, 6.0, 8.0]);
        assert_eq!(at, vec![0, 2, 6, 8]);
        let e = x
            .max_pool2d_with_indices([2, 2], [2, 2], [2, 2])
            .unwrap_err();
        assert!(e.to_string().contains("at most half"), "{e}");
        let e = x
            .max_pool2d_with_indices([2, 2], [0, 2], [0, 0])
            .unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }

    #[test]
    fn max_pool_matches_definition() {
        for (k, (dims, kernel, stride, pad)) in [
            ([2, 3, 7, 6], [3, 2], [2, 1], [1, 1]),
            ([1, 2, 5, 5], [2, 2], [2, 2], [0, 0]),
            ([1, 1, 9, 4], [3, 3], [3, 2], [1, 0]),
        ]
        .into_iter()
        .enumerate()
        {
            let x = Tensor::<f64>::uniform_seeded(&dims, -1.0, 1.0, k as u64);
            let (y, at) = x.max_pool2d_with_indices(kernel, stride, pad).unwrap();
            let (oh, ow) = (y.dims()[2], y.dims()[3]);
            let xs = x.to_vec();
            let mut i = 0;
            for plane in 0..dims[0] * dims[1] {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut best = (f64::NEG_INFINITY, 0);
                        for ky in 0..kernel[0] {
                            for kx in 0..kernel[1] {
                                let yy = (oy * stride[0] + ky) as isize - pad[0] as isize;
                                let xx = (ox * stride[1] + kx) as isize - pad[1] as isize;
                                if yy < 0
                                    || xx < 0
                                    || yy >= dims[2] as isize
                                    || xx >= dims[3] as isize
                                {
                                    continue;
                                }
                                let j =
                                    plane * dims[2] * dims[3] + yy as usize * dims[3] + xx as usize;
                                if xs[j] > best.0 {
                                    best = (xs[j], j);
                                }
                            }
                        }
                        assert_eq!((y.to_vec()[i], at[i]), best);
                        i += 1;
                    }
                }
            }
        }
    }

    #[test]
    fn avg_pool_counts_padding() {
        let x = Tensor::<f64>::ones(&[1, 2, 2, 2]);
        let y = x.avg_pool2d([2, 2], [2, 2], [1, 1]).unwrap();
        assert_eq!(y.to_vec(), vec![0.25; 8]);
    }
}
