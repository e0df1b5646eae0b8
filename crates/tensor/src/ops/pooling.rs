//! Pooling on `[N, C, H, W]`: max pooling (with the position of each
//! maximum, for its gradient), average pooling, and the flat gather and
//! scatter that route max pooling's gradient.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::buffer::{try_vec, try_vec_of, zeroed, AllocError};
use crate::error::{Error, Result};
use crate::layout::checked_numel;
use crate::ops::conv::ConvParams;
use crate::parallel::{for_each_chunk, use_parallel, CHUNK};
use crate::simd::{run_wide, Kernel};
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
        // The values in a recycled buffer (see `pool`), as every kernel
        // output: a fresh one cost page faults on every call. Both outputs
        // are zeroed by the threads that fill them: zeroing them up front
        // (3.4 MB in `cnn_step`) was 1.7% of the step on the calling
        // thread, the other waiting.
        let mut out: Vec<T> = crate::pool::try_with_capacity(numel)
            .map_err(|_| AllocError::of::<T>(numel).at(OP, &shape))?;
        let mut at: Vec<usize> = try_vec(numel).map_err(|e| e.at(OP, &shape))?;
        let windows = Windows::new([d[2], d[3]], [oh, ow], kernel, stride, padding);
        let plane_out = oh * ow;
        let run =
            |first_plane: usize, vals: &mut [MaybeUninit<T>], idx: &mut [MaybeUninit<usize>]| {
                let (vals, idx) = (zeroed(vals), zeroed(idx));
                for (k, (v, i)) in vals
                    .chunks_exact_mut(plane_out)
                    .zip(idx.chunks_exact_mut(plane_out))
                    .enumerate()
                {
                    windows.pool_plane(xs, first_plane + k, v, i);
                }
            };
        let (vals, idx) = (
            &mut out.spare_capacity_mut()[..numel],
            &mut at.spare_capacity_mut()[..numel],
        );
        if numel == 0 {
            // No planes (and no runs: `chunks_mut` of zero-sized planes).
        } else if crate::parallel::use_parallel(numel * kernel[0] * kernel[1]) {
            // Whole planes per job: each writes its own runs of both outputs.
            let planes_per_job = (crate::parallel::CHUNK / plane_out).max(1);
            let mut jobs: Vec<_> = vals
                .chunks_mut(planes_per_job * plane_out)
                .zip(idx.chunks_mut(planes_per_job * plane_out))
                .enumerate()
                .map(|(j, (v, i))| (j * planes_per_job, v, i))
                .collect();
            crate::parallel::for_each_chunk(&mut jobs, 1, |_, js| {
                for (first, v, i) in js {
                    run(*first, v, i);
                }
            });
        } else {
            run(0, vals, idx);
        }
        // SAFETY: the runs cover both outputs' first `numel` elements and
        // zeroed them before pooling into them (a panic propagates before
        // this line, leaving the lengths 0).
        unsafe {
            out.set_len(numel);
            at.set_len(numel);
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
        let g = self.try_to_contiguous(OP)?;
        let gs = g.as_slice().expect("contiguous");
        // Max pooling's gradient: `[N, C, …]` planes map onto planes.
        let planes = if shape.len() >= 2 {
            shape[0] * shape[1]
        } else {
            1
        };
        if planes > 1 && use_parallel(numel) {
            let by_plane = scatter_by_plane(gs, indices, numel, planes);
            if let Some(out) = by_plane.map_err(|e| e.at(OP, shape))? {
                return Ok(Tensor::from_parts(out, shape));
            }
        }
        check_indices(OP, indices, shape)?;
        let mut out = try_vec_of(numel, T::ZERO).map_err(|e| e.at(OP, shape))?;
        for (&v, &j) in gs.iter().zip(indices) {
            out[j] += v;
        }
        Ok(Tensor::from_parts(out, shape))
    }
}

/// [`Tensor::scatter_add_flat`] when the values and indices split into
/// `planes` equal parts, part `b`'s indices all landing in plane `b` of the
/// output (max pooling: a window never leaves its image and channel).
/// Planes are then independent and run in parallel, each zeroed by the
/// thread that fills it: serially, the scatter and its zeroing were 4-6%
/// of `cnn_step`'s time with the other thread idle. `None` if the parts
/// do not divide evenly or an index lies outside its plane (the caller
/// then takes the general path, which checks every index).
fn scatter_by_plane<T: Element>(
    g: &[T],
    indices: &[usize],
    numel: usize,
    planes: usize,
) -> std::result::Result<Option<Vec<T>>, AllocError> {
    if !indices.len().is_multiple_of(planes) || !numel.is_multiple_of(planes) {
        return Ok(None);
    }
    let (per_in, per_out) = (indices.len() / planes, numel / planes);
    let mut out: Vec<T> =
        crate::pool::try_with_capacity(numel).map_err(|_| AllocError::of::<T>(numel))?;
    let strayed = AtomicBool::new(false);
    let chunk = per_out * (CHUNK / per_out).max(1);
    for_each_chunk(
        &mut out.spare_capacity_mut()[..numel],
        chunk,
        |start, part| {
            let part = zeroed(part);
            for (k, plane) in part.chunks_exact_mut(per_out).enumerate() {
                let b = start / per_out + k;
                let lo = b * per_out;
                let (gb, ib) = (&g[b * per_in..][..per_in], &indices[b * per_in..][..per_in]);
                for (&v, &j) in gb.iter().zip(ib) {
                    // Below `lo` wraps to a huge offset: also outside.
                    match plane.get_mut(j.wrapping_sub(lo)) {
                        Some(x) => *x += v,
                        None => {
                            strayed.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
        },
    );
    // SAFETY: the chunks cover `out[..numel]` and each was zeroed above.
    unsafe { out.set_len(numel) };
    Ok((!strayed.load(Ordering::Relaxed)).then_some(out))
}

/// Whether `v` replaces `best` as a window's maximum in scan order:
/// strictly greater (ties keep the first maximum), and a NaN beats any
/// number (the first NaN stays). Written as one boolean expression so the
/// callers can turn it into selects: on random data it is a coin toss, and
/// a branch would mispredict half the time.
#[inline(always)]
fn wins<T: Element>(v: T, best: T) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// The max-pooling windows of one `[H, W]` plane: each output row's input
/// rows and each output column's input columns, clipped to the input (the
/// padding is never read: it counts as −∞).
struct Windows {
    h: usize,
    w: usize,
    /// `rows[oy] = (y0, y1)`: input rows `y0..y1` of output row `oy`.
    rows: Vec<(usize, usize)>,
    /// `cols[ox] = (x0, x1)`, the same for columns.
    cols: Vec<(usize, usize)>,
    /// A 2×2 window with stride 2 and no padding: every window is whole and
    /// windows do not overlap, which [`MaxPool2x2`] exploits.
    two_by_two: bool,
}

impl Windows {
    fn new(
        input: [usize; 2],
        output: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Self {
        // `pool_output_size` has checked that every window holds at least
        // one input element (padding at most half the kernel).
        let clip = |o: usize, a: usize| -> (usize, usize) {
            let start = o * stride[a];
            let lo = start.saturating_sub(padding[a]).min(input[a] - 1);
            let hi = (start + kernel[a]).saturating_sub(padding[a]).min(input[a]);
            (lo, hi.max(lo + 1))
        };
        Windows {
            h: input[0],
            w: input[1],
            rows: (0..output[0]).map(|o| clip(o, 0)).collect(),
            cols: (0..output[1]).map(|o| clip(o, 1)).collect(),
            two_by_two: kernel == [2, 2] && stride == [2, 2] && padding == [0, 0],
        }
    }

    /// Pools plane `plane` of `xs` (`[.., H, W]` contiguous) into `vals`
    /// and `at` (one plane of the output each); `at` holds flat indices
    /// into `xs`.
    fn pool_plane<T: Element>(&self, xs: &[T], plane: usize, vals: &mut [T], at: &mut [usize]) {
        let base = plane * self.h * self.w;
        let src = &xs[base..base + self.h * self.w];
        if self.two_by_two {
            return run_wide(MaxPool2x2 {
                src,
                base,
                w: self.w,
                vals,
                at,
            });
        }
        let ow = self.cols.len();
        for (oy, &(y0, y1)) in self.rows.iter().enumerate() {
            let (vals, at) = (&mut vals[oy * ow..][..ow], &mut at[oy * ow..][..ow]);
            for (ox, &(x0, x1)) in self.cols.iter().enumerate() {
                let mut best_at = y0 * self.w + x0;
                let mut best = src[best_at];
                for y in y0..y1 {
                    let line = y * self.w;
                    for (xi, &v) in src[line + x0..line + x1].iter().enumerate() {
                        let better = wins(v, best);
                        best = if better { v } else { best };
                        best_at = if better { line + x0 + xi } else { best_at };
                    }
                }
                vals[ox] = best;
                at[ox] = base + best_at;
            }
        }
    }
}

/// 2×2 max pooling with stride 2 and no padding of one `[H, W]` plane
/// `src` whose first element has flat index `base`: output row `oy` reads
/// input rows `2·oy` and `2·oy + 1` (an odd last row or column is never
/// read). No window is clipped, so the loop has no bounds logic and
/// vectorises: run through [`run_wide`] it handles 16 `f32` windows per
/// AVX-512 step (the odd/even deinterleave is a shuffle).
struct MaxPool2x2<'a, T> {
    src: &'a [T],
    base: usize,
    w: usize,
    vals: &'a mut [T],
    at: &'a mut [usize],
}

impl<T: Element> Kernel for MaxPool2x2<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (w, ow) = (self.w, self.w / 2);
        let rows = self
            .vals
            .chunks_exact_mut(ow)
            .zip(self.at.chunks_exact_mut(ow));
        for (oy, (vals, at)) in rows.enumerate() {
            let top = &self.src[2 * oy * w..][..2 * ow];
            let bottom = &self.src[(2 * oy + 1) * w..][..2 * ow];
            let first = self.base + 2 * oy * w;
            // Fixed-width blocks vectorise with no remainder loop (rows
            // are short: 14 outputs in LeNet's first pool). The last block
            // is aligned to the row's end and may overlap the one before:
            // recomputing a window gives the same result.
            match ow {
                16.. => pool_row_blocks::<T, 16>(top, bottom, w, first, vals, at),
                8.. => pool_row_blocks::<T, 8>(top, bottom, w, first, vals, at),
                4.. => pool_row_blocks::<T, 4>(top, bottom, w, first, vals, at),
                _ => pool_row_blocks::<T, 1>(top, bottom, w, first, vals, at),
            }
        }
    }
}

/// One output row of 2×2 pooling in blocks of `L` windows (`L` at most
/// the row's length); see [`MaxPool2x2`].
#[inline(always)]
fn pool_row_blocks<T: Element, const L: usize>(
    top: &[T],
    bottom: &[T],
    w: usize,
    first: usize,
    vals: &mut [T],
    at: &mut [usize],
) {
    let ow = vals.len();
    let mut start = 0;
    loop {
        let x = start.min(ow - L);
        pool_block::<T, L>(
            &top[2 * x..][..2 * L],
            &bottom[2 * x..][..2 * L],
            w,
            first + 2 * x,
            &mut vals[x..][..L],
            &mut at[x..][..L],
        );
        start += L;
        if start >= ow {
            break;
        }
    }
}

/// `L` adjacent 2×2 windows: `top` and `bottom` are their `2·L` input
/// elements of the upper and lower row, `first` the flat index of the
/// first window's top-left element.
#[inline(always)]
fn pool_block<T: Element, const L: usize>(
    top: &[T],
    bottom: &[T],
    w: usize,
    first: usize,
    vals: &mut [T],
    at: &mut [usize],
) {
    let (top, bottom) = (&top[..2 * L], &bottom[..2 * L]);
    let mut best = [T::ZERO; L];
    // The winner's place in its window relative to the top-left element.
    let mut offset = [0usize; L];
    for l in 0..L {
        best[l] = top[2 * l];
    }
    // Scan order: top-left, top-right, bottom-left, bottom-right.
    for (row, dx, off) in [(top, 1, 1), (bottom, 0, w), (bottom, 1, w + 1)] {
        for l in 0..L {
            let cand = row[2 * l + dx];
            let better = wins(cand, best[l]);
            best[l] = if better { cand } else { best[l] };
            offset[l] = if better { off } else { offset[l] };
        }
    }
    for l in 0..L {
        vals[l] = best[l];
        at[l] = first + 2 * l + offset[l];
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
    fn scatter_by_plane_matches_the_serial_scatter() {
        // 32768 elements: enough for the parallel by-plane path.
        let dims = [4, 8, 32, 32];
        let numel = 4 * 8 * 32 * 32;
        let x = Tensor::<f64>::uniform_seeded(&dims, -1.0, 1.0, 5);
        let (y, at) = x.max_pool2d_with_indices([2, 2], [2, 2], [0, 0]).unwrap();
        let g = Tensor::<f64>::uniform_seeded(y.dims(), -1.0, 1.0, 6);
        let serial = |at: &[usize]| {
            let mut r = vec![0.0; numel];
            for (&v, &j) in g.to_vec().iter().zip(at) {
                r[j] += v;
            }
            r
        };
        assert_eq!(
            g.scatter_add_flat(&at, &dims).unwrap().to_vec(),
            serial(&at)
        );
        // Two gradients into one position of the last plane, one of them
        // from the first plane: the general path, the same sums.
        let mut strayed = at.clone();
        strayed[0] = numel - 1;
        *strayed.last_mut().unwrap() = numel - 1;
        let got = g.scatter_add_flat(&strayed, &dims).unwrap().to_vec();
        assert_eq!(got, serial(&strayed));
        // Outside the output: an error naming the index, nothing written.
        strayed[5] = numel;
        let e = g.scatter_add_flat(&strayed, &dims).unwrap_err();
        assert!(e.to_string().contains("32768"), "{e}");
    }

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

    /// Max pooling by its definition: every window scanned row by row,
    /// the first maximum kept, a NaN beating any number.
    fn naive_max_pool(
        xs: &[f64],
        dims: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
    ) -> (Vec<f64>, Vec<usize>) {
        let [oh, ow] = pool_output_size("test", &dims, kernel, stride, pad).unwrap();
        let (mut vals, mut at) = (Vec::new(), Vec::new());
        for plane in 0..dims[0] * dims[1] {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut best: Option<(f64, usize)> = None;
                    for ky in 0..kernel[0] {
                        for kx in 0..kernel[1] {
                            let yy = (oy * stride[0] + ky) as isize - pad[0] as isize;
                            let xx = (ox * stride[1] + kx) as isize - pad[1] as isize;
                            if yy < 0 || xx < 0 || yy >= dims[2] as isize || xx >= dims[3] as isize
                            {
                                continue;
                            }
                            let j = plane * dims[2] * dims[3] + yy as usize * dims[3] + xx as usize;
                            let v = xs[j];
                            let take = match best {
                                None => true,
                                Some((b, _)) => v > b || (v.is_nan() && !b.is_nan()),
                            };
                            if take {
                                best = Some((v, j));
                            }
                        }
                    }
                    let (v, j) = best.expect("every window holds an input element");
                    vals.push(v);
                    at.push(j);
                }
            }
        }
        (vals, at)
    }

    /// Pools `xs` both ways and compares values (NaN equal to NaN) and
    /// indices.
    fn check_against_definition(
        xs: Vec<f64>,
        dims: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
    ) {
        let x = Tensor::from_vec(xs.clone(), &dims).unwrap();
        let (y, at) = x.max_pool2d_with_indices(kernel, stride, pad).unwrap();
        let (want, want_at) = naive_max_pool(&xs, dims, kernel, stride, pad);
        assert_eq!(at, want_at, "{dims:?} k{kernel:?} s{stride:?} p{pad:?}");
        for (a, b) in y.to_vec().iter().zip(&want) {
            assert!(a == b || (a.is_nan() && b.is_nan()), "{a} vs {b}");
        }
    }

    #[test]
    fn max_pool_matches_definition() {
        for (k, (dims, kernel, stride, pad)) in [
            ([2, 3, 7, 6], [3, 2], [2, 1], [1, 1]),
            ([1, 2, 5, 5], [2, 2], [2, 2], [0, 0]),
            ([1, 1, 9, 4], [3, 3], [3, 2], [1, 0]),
            // The 2×2 path's block widths 1, 4, 8 and 16, with the last
            // block overlapping the one before (5, 9 and 20 windows).
            ([2, 3, 8, 6], [2, 2], [2, 2], [0, 0]),
            ([1, 2, 4, 10], [2, 2], [2, 2], [0, 0]),
            ([1, 2, 5, 19], [2, 2], [2, 2], [0, 0]),
            ([1, 2, 6, 40], [2, 2], [2, 2], [0, 0]),
            // Large enough to run in parallel, on both paths.
            ([4, 16, 28, 28], [2, 2], [2, 2], [0, 0]),
            ([4, 16, 27, 29], [3, 3], [2, 2], [1, 1]),
        ]
        .into_iter()
        .enumerate()
        {
            let x = Tensor::<f64>::uniform_seeded(&dims, -1.0, 1.0, k as u64);
            check_against_definition(x.to_vec(), dims, kernel, stride, pad);
        }
    }

    #[test]
    fn max_pool_ties_and_nans_follow_scan_order() {
        // 2×2 fast path and the general path: values from {−1, 0, 1} tie
        // often; every seventh is a NaN.
        for (dims, kernel, stride, pad) in [
            ([2, 2, 6, 8], [2, 2], [2, 2], [0, 0]),
            ([1, 2, 4, 18], [2, 2], [2, 2], [0, 0]),
            ([1, 1, 4, 34], [2, 2], [2, 2], [0, 0]),
            ([2, 2, 6, 8], [2, 3], [1, 2], [1, 1]),
        ] {
            let n: usize = dims.iter().product();
            let xs: Vec<f64> = (0..n)
                .map(|i| {
                    if i % 7 == 3 {
                        f64::NAN
                    } else {
                        ((i * 37 % 11) % 3) as f64 - 1.0
                    }
                })
                .collect();
            check_against_definition(xs, dims, kernel, stride, pad);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Random shapes, windows, strides and padding (valid ones), with
        /// coarse values so ties are common.
        #[test]
        fn max_pool_property(
            n in 1usize..3, c in 1usize..4, h in 1usize..9, w in 1usize..9,
            kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4,
            ph in 0usize..2, pw in 0usize..2, seed in 0u64..1000,
        ) {
            let (kernel, stride) = ([kh.min(h + 2 * ph), kw.min(w + 2 * pw)], [sh, sw]);
            let pad = [ph.min(kernel[0] / 2), pw.min(kernel[1] / 2)];
            let dims = [n, c, h, w];
            proptest::prop_assume!(kernel[0] <= h + 2 * pad[0] && kernel[1] <= w + 2 * pad[1]);
            let xs: Vec<f64> = Tensor::<f64>::uniform_seeded(&dims, -2.0, 2.0, seed)
                .to_vec()
                .into_iter()
                .map(f64::round)
                .collect();
            check_against_definition(xs, dims, kernel, stride, pad);
        }
    }

    #[test]
    fn avg_pool_counts_padding() {
        let x = Tensor::<f64>::ones(&[1, 2, 2, 2]);
        let y = x.avg_pool2d([2, 2], [2, 2], [1, 1]).unwrap();
        assert_eq!(y.to_vec(), vec![0.25; 8]);
    }
}
