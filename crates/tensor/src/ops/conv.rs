//! Convolution in PyTorch's layout: 2-d on `[N, C, H, W]` with weights
//! `[O, C / groups, kh, kw]`, 1-d as the case of height 1; its transpose,
//! the weight gradient, and `unfold` / `fold` (im2col and its adjoint).
//!
//! Every product goes through the GEMM: for each image and group the input
//! windows are unfolded into a `[C/groups · kh · kw, OH · OW]` matrix
//! (`im2col`) and multiplied by the group's weight rows. Images are split
//! between threads, each running its products serially with its own
//! scratch matrix, so the unfolded buffer is one image's worth per thread
//! and lives only for the call. A 1×1 kernel with stride 1 and no padding
//! skips the unfolding (the input already is the matrix).
//!
//! The three kernels are the three partial derivatives of one bilinear
//! form `B(x, w, g) = ⟨conv(x, w), g⟩`: [`Tensor::conv_transpose2d`] is
//! `∂B/∂x` and [`Tensor::conv2d_weight_grad`] is `∂B/∂w`.

use std::mem::MaybeUninit;

use crate::buffer::{assume_init_mut, try_vec, zeroed, AllocError};
use crate::error::{Error, Result};
use crate::layout::checked_numel;
use crate::ops::matmul::{gemm_serial, gemm_serial_into};
use crate::parallel::{for_each_chunk, thread_count, use_parallel};
use crate::simd::{run_wide, Kernel};
use crate::{Element, Tensor};

/// Stride, zero padding, dilation and groups of a convolution (PyTorch's
/// arguments of the same names). Pairs are `[height, width]`; the 1-d ops
/// use the width entry. The builders set both entries.
///
/// ```
/// use tapegrad_tensor::ConvParams;
/// let p = ConvParams::new().stride(2).padding(1);
/// assert_eq!(p.stride, [2, 2]);
/// assert_eq!(p.output_size([32, 32], [3, 3]), Some([16, 16]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvParams {
    /// Step between windows, `[sh, sw]` (at least 1).
    pub stride: [usize; 2],
    /// Zeros added on each side, `[ph, pw]`.
    pub padding: [usize; 2],
    /// Spacing between kernel taps, `[dh, dw]` (at least 1).
    pub dilation: [usize; 2],
    /// Channel groups; input and output channels must both divide by it.
    pub groups: usize,
}

impl Default for ConvParams {
    fn default() -> Self {
        ConvParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl ConvParams {
    /// Stride 1, no padding, no dilation, one group.
    pub fn new() -> Self {
        Self::default()
    }
    /// The same stride along both axes.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    /// The same padding along both axes.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }
    /// The same dilation along both axes.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    /// The number of groups (the channel count for a depthwise convolution).
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// The output's `[height, width]` for an input of `input` and a kernel
    /// of `kernel`, or `None` if the (dilated) kernel is larger than the
    /// padded input or a stride or dilation is 0.
    pub fn output_size(&self, input: [usize; 2], kernel: [usize; 2]) -> Option<[usize; 2]> {
        let axis = |i: usize| -> Option<usize> {
            let (s, d) = (self.stride[i], self.dilation[i]);
            if s == 0 || d == 0 || kernel[i] == 0 {
                return None;
            }
            let span = d.checked_mul(kernel[i] - 1)?.checked_add(1)?;
            let padded = input[i].checked_add(self.padding[i].checked_mul(2)?)?;
            (span <= padded).then(|| (padded - span) / s + 1)
        };
        Some([axis(0)?, axis(1)?])
    }

    /// The 2-d form of 1-d parameters: the width entries, height untouched.
    pub(crate) fn width_only(&self) -> Self {
        ConvParams {
            stride: [1, self.stride[1]],
            padding: [0, self.padding[1]],
            dilation: [1, self.dilation[1]],
            groups: self.groups,
        }
    }
}

/// The sizes of one convolution, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    groups: usize,
    p: ConvParams,
}

impl Geometry {
    /// Checks the input `[N, C, H, W]` and weight `[O, C/groups, kh, kw]`
    /// shapes against `p`.
    fn new(op: &'static str, x: &[usize], wt: &[usize], p: &ConvParams) -> Result<Self> {
        let bad = |why: String| Error::ShapeMismatch {
            op,
            lhs: x.to_vec(),
            rhs: wt.to_vec(),
            reason: why,
        };
        if x.len() != 4 || wt.len() != 4 {
            return Err(bad(
                "expected input [N, C, H, W] and weight [O, C/groups, kh, kw]".into(),
            ));
        }
        check_params(op, p)?;
        let (g, c, o) = (p.groups, x[1], wt[0]);
        if !c.is_multiple_of(g) || !o.is_multiple_of(g) {
            return Err(bad(format!(
                "groups = {g} does not divide the {c} input and {o} output channels"
            )));
        }
        if wt[1] * g != c {
            return Err(bad(format!(
                "the weight expects {} input channels (groups = {g}), the input has {c}",
                wt[1] * g
            )));
        }
        let [oh, ow] = p.output_size([x[2], x[3]], [wt[2], wt[3]]).ok_or_else(|| {
            bad(format!(
                "kernel {}×{} (dilation {:?}) is larger than the padded input {}×{} (padding {:?})",
                wt[2], wt[3], p.dilation, x[2], x[3], p.padding
            ))
        })?;
        Ok(Geometry {
            n: x[0],
            c,
            h: x[2],
            w: x[3],
            o,
            kh: wt[2],
            kw: wt[3],
            oh,
            ow,
            groups: g,
            p: *p,
        })
    }
    fn cg(&self) -> usize {
        self.c / self.groups
    }
    fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Rows of a group's unfolded matrix: `C/groups · kh · kw`.
    fn ckk(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn ohw(&self) -> usize {
        self.oh * self.ow
    }
    /// A 1×1 kernel, stride 1, no padding: the input is its own im2col.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.p.stride == [1, 1] && self.p.padding == [0, 0]
    }
    /// Multiply-adds of the whole convolution (for the parallel decision).
    fn work(&self) -> usize {
        self.n
            .saturating_mul(self.o)
            .saturating_mul(self.ohw())
            .saturating_mul(self.ckk())
    }
}

/// Rejects stride 0, dilation 0 and groups 0.
fn check_params(op: &'static str, p: &ConvParams) -> Result<()> {
    if p.stride.contains(&0) || p.dilation.contains(&0) || p.groups == 0 {
        return Err(Error::invalid(
            op,
            format!(
                "stride {:?}, dilation {:?} and groups {} must all be at least 1",
                p.stride, p.dilation, p.groups
            ),
        ));
    }
    Ok(())
}

/// The output positions `lo..hi` along an axis whose input coordinate
/// `o·stride + k·dil − pad` lies inside `0..len`, for kernel tap `k`; the
/// others read the zero padding.
#[inline]
fn valid_range(
    k: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    len: usize,
    out: usize,
) -> (usize, usize) {
    let shift = k * dil;
    // o·s ≥ pad − shift
    let lo = pad.saturating_sub(shift).div_ceil(stride).min(out);
    // o·s + shift − pad ≤ len − 1  ⇔  o·s < len + pad − shift
    let hi = (len + pad).saturating_sub(shift).div_ceil(stride).min(out);
    (lo, hi.max(lo))
}

/// Unfolds channels `c0..c0 + cg` of one image (`x`: `[C, H, W]`) into
/// `cols`: row `(c, i, j)` holds, for every output position, the input
/// under kernel tap `(i, j)` of channel `c` (0 in the padding).
///
/// Each channel is first copied into a zero-bordered plane of
/// `(H + 2·ph) × (W + 2·pw)`, so every window reads inside it and each
/// output row of a tap is one run with no zero prefix or suffix: with
/// stride 1 a short copy ([`copy_short`]). Filling the padding per run
/// instead cost a `memset` call for one or two elements, and the copy a
/// `memmove` call, each as dear as the run itself.
///
/// `cols` may be uninitialised: every element is written (the strided
/// copies index, so a window outside the plane panics rather than leaving
/// a hole), and it is returned initialised.
#[inline(always)]
fn im2col_body<'c, T: Element>(
    g: &Geometry,
    x: &[T],
    c0: usize,
    cg: usize,
    cols: &'c mut [MaybeUninit<T>],
) -> &'c mut [T] {
    assert_eq!(cols.len(), cg * g.kh * g.kw * g.ohw());
    let (ohw, p) = (g.ohw(), &g.p);
    let [sy, sx] = p.stride;
    let [dy, dx] = p.dilation;
    let (hp, wp) = (g.h + 2 * p.padding[0], g.w + 2 * p.padding[1]);
    // The border stays zero: only the interior is rewritten per channel.
    let mut padded = vec![T::ZERO; hp * wp];
    let mut rows = cols.chunks_exact_mut(ohw);
    for c in c0..c0 + cg {
        let plane = &x[c * g.hw()..(c + 1) * g.hw()];
        let src: &[T] = if p.padding == [0, 0] {
            plane
        } else {
            pad_plane(g, plane, &mut padded);
            &padded
        };
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = rows.next().expect("cols has C·kh·kw rows");
                for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
                    let line = &src[(oy * sy + i * dy) * wp + j * dx..];
                    if sx == 1 {
                        copy_short(out, uninit(&line[..g.ow]));
                    } else {
                        for (ox, o) in out.iter_mut().enumerate() {
                            *o = MaybeUninit::new(line[ox * sx]);
                        }
                    }
                }
            }
        }
    }
    // SAFETY: the rows are all of `cols` (asserted length, `chunks_exact`),
    // and each row's `oh` runs of `ow` were written above.
    unsafe { assume_init_mut(cols) }
}

/// [`im2col_body`], [`im2row_body`] and [`col2im_body`] compiled for the
/// CPU's widest vectors (see [`run_wide`]). They are short copies and adds
/// (runs of 14 elements in LeNet's second layer): in baseline x86-64 code
/// each block of 8 `f32` is two 4-lane moves, and the unfolding is bound
/// by its stores.
struct Unfold<'a, 'c, T> {
    g: &'a Geometry,
    x: &'a [T],
    c0: usize,
    cg: usize,
    out: &'c mut [MaybeUninit<T>],
    layout: Layout,
}

/// The two layouts of an unfolded image.
#[derive(Clone, Copy)]
enum Layout {
    /// [`im2col_body`]'s `[C·kh·kw, OH·OW]`.
    Cols,
    /// [`im2row_body`]'s `[OH·OW, C·kh·kw]`.
    Rows,
}

impl<'c, T: Element> Kernel for Unfold<'_, 'c, T> {
    type Output = &'c mut [T];
    #[inline(always)]
    fn run(self) -> &'c mut [T] {
        match self.layout {
            Layout::Rows => im2row_body(self.g, self.x, self.c0, self.cg, self.out),
            Layout::Cols => im2col_body(self.g, self.x, self.c0, self.cg, self.out),
        }
    }
}

/// Channels `c0..c0 + cg` of one image unfolded in `layout` into `out`
/// (see [`im2col_body`] and [`im2row_body`]).
fn unfold_image<'c, T: Element>(
    layout: Layout,
    g: &Geometry,
    x: &[T],
    (c0, cg): (usize, usize),
    out: &'c mut [MaybeUninit<T>],
) -> &'c mut [T] {
    run_wide(Unfold {
        g,
        x,
        c0,
        cg,
        out,
        layout,
    })
}

struct Fold<'a, T> {
    g: &'a Geometry,
    cols: &'a [T],
    c0: usize,
    cg: usize,
    x: &'a mut [T],
}

impl<T: Element> Kernel for Fold<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        col2im_body(self.g, self.cols, self.c0, self.cg, self.x)
    }
}

/// See [`col2im_body`].
fn col2im<T: Element>(g: &Geometry, cols: &[T], c0: usize, cg: usize, x: &mut [T]) {
    run_wide(Fold { g, cols, c0, cg, x })
}

/// Copies one `[H, W]` input plane into the interior of `padded`, a
/// `(H + 2·ph) × (W + 2·pw)` plane whose border is left as it is (zero).
#[inline(always)]
fn pad_plane<T: Element>(g: &Geometry, plane: &[T], padded: &mut [T]) {
    let [ph, pw] = g.p.padding;
    let wp = g.w + 2 * pw;
    for (y, line) in plane.chunks_exact(g.w).enumerate() {
        let at = (y + ph) * wp + pw;
        copy_short(&mut padded[at..at + g.w], line);
    }
}

/// `s` viewed as possibly uninitialised values (always sound: every `T`
/// is a valid `MaybeUninit<T>`), to copy from it into uninitialised memory.
fn uninit<T>(s: &[T]) -> &[MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has the layout of `T`, and the view is
    // read-only.
    unsafe { &*(s as *const [T] as *const [MaybeUninit<T>]) }
}

/// `dst.copy_from_slice(src)` for the short runs of [`im2col_body`] (one output
/// row: 14 elements in LeNet's second layer). `copy_from_slice` of a
/// run-time length is a call into `memmove`, whose dispatch costs as much
/// as the copy at this size; copies of a constant 8 elements compile to
/// two vector moves, and the tail reuses the last 8 (overlapping writes of
/// the same values).
#[inline(always)]
fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    const B: usize = 8;
    let n = dst.len();
    let src = &src[..n];
    if n < B {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s;
        }
        return;
    }
    let mut k = 0;
    while k + B <= n {
        dst[k..k + B].copy_from_slice(&src[k..k + B]);
        k += B;
    }
    if k < n {
        dst[n - B..].copy_from_slice(&src[n - B..]);
    }
}

/// `dst += src` for the short runs of [`col2im_body`] (14 elements in LeNet's
/// second layer), in blocks of a constant 8 that compile to vector adds.
/// A plain loop over a run-time length added the last `len % 8` elements
/// one at a time (perf: most of `col2im`'s samples).
///
/// The tail is the last 8 elements again, adding only the lanes past the
/// last whole block. It is loaded together with that block and stored
/// before it (its other lanes still hold the old values, which the whole
/// block's store then overwrites): reading it back after storing the
/// block it overlaps stalled on every run, the load waiting for the store
/// (perf: twice the time of the scalar tail).
#[inline(always)]
fn add_short<T: Element>(dst: &mut [T], src: &[T]) {
    const B: usize = 8;
    let n = dst.len();
    let src = &src[..n];
    if n < B {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
        return;
    }
    let (whole, rem) = (n / B, n % B);
    let paired = if rem == 0 { whole } else { whole - 1 };
    for k in (0..paired * B).step_by(B) {
        let mut d = block(&dst[k..]);
        add_lanes(&mut d, &block(&src[k..]), 0);
        dst[k..k + B].copy_from_slice(&d);
    }
    if rem != 0 {
        let (last, tail_at) = (paired * B, n - B);
        let (mut d, mut t) = (block(&dst[last..]), block(&dst[tail_at..]));
        add_lanes(&mut d, &block(&src[last..]), 0);
        add_lanes(&mut t, &block(&src[tail_at..]), B - rem);
        dst[tail_at..].copy_from_slice(&t);
        dst[last..last + B].copy_from_slice(&d);
    }
}

/// The first 8 elements of `s`, by value.
#[inline(always)]
fn block<T: Element>(s: &[T]) -> [T; 8] {
    s[..8].try_into().expect("a block of 8")
}

/// `d[l] += s[l]` for the lanes `l ≥ skip` (a select keeps the others).
#[inline(always)]
fn add_lanes<T: Element>(d: &mut [T; 8], s: &[T; 8], skip: usize) {
    for l in 0..8 {
        let sum = d[l] + s[l];
        d[l] = if l >= skip { sum } else { d[l] };
    }
}

/// The transpose of [`im2col_body`] for the weight gradient: `rows` is
/// `[OH·OW, C/groups·kh·kw]`, row `p` holding the window under output
/// position `p` (channels `c0..c0 + cg` of `x`, 0 in the padding).
///
/// The weight gradient `G · rows`'s GEMM reads this layout in place, as
/// its column-major left operand. From `im2col`'s layout it had to
/// transpose every image's unfolded matrix while packing it, which cost
/// more than the product itself for LeNet's first layer (perf: `pack_lhs`
/// 6% of `cnn_step`, 20% of `conv2d`).
///
/// `rows` may be uninitialised: it is written entirely and returned
/// initialised.
#[inline(always)]
fn im2row_body<'r, T: Element>(
    g: &Geometry,
    x: &[T],
    c0: usize,
    cg: usize,
    rows: &'r mut [MaybeUninit<T>],
) -> &'r mut [T] {
    let p = &g.p;
    let [sy, sx] = p.stride;
    let [dy, dx] = p.dilation;
    let (hp, wp) = (g.h + 2 * p.padding[0], g.w + 2 * p.padding[1]);
    let plane = hp * wp;
    let mut padded = vec![T::ZERO; cg * plane];
    for (c, dst) in padded.chunks_exact_mut(plane).enumerate() {
        pad_plane(g, &x[(c0 + c) * g.hw()..][..g.hw()], dst);
    }
    // Runs of kw taps, one per (position, channel, kernel row), written in
    // order. A run shorter than 8 is written as a copy of a constant 8
    // elements whose overhang the next run overwrites: a run-time length
    // became a `memmove` call per run (perf: as dear as the rest of the
    // unfolding). The last runs, with no room for the overhang, copy
    // exactly.
    let (kw, total) = (g.kw, rows.len());
    let mut at = 0;
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            for c in 0..cg {
                for i in 0..g.kh {
                    let from = c * plane + (oy * sy + i * dy) * wp + ox * sx;
                    if dx != 1 {
                        for (j, o) in rows[at..at + kw].iter_mut().enumerate() {
                            *o = MaybeUninit::new(padded[from + j * dx]);
                        }
                    } else if kw <= 8 && at + 8 <= total && from + 8 <= padded.len() {
                        rows[at..at + 8].copy_from_slice(uninit(&padded[from..from + 8]));
                    } else {
                        copy_short(&mut rows[at..at + kw], uninit(&padded[from..]));
                    }
                    at += kw;
                }
            }
        }
    }
    assert_eq!(at, total, "im2row: the runs cover the matrix");
    // SAFETY: the runs, `kw` consecutive elements each from 0, cover
    // `rows[..at]` (an overhang was overwritten by the next run), and `at`
    // is its length.
    unsafe { assume_init_mut(rows) }
}

/// The adjoint of [`im2col_body`]: adds every entry of `cols` back onto the
/// input position it was read from (channels `c0..c0 + cg` of `x`).
#[inline(always)]
fn col2im_body<T: Element>(g: &Geometry, cols: &[T], c0: usize, cg: usize, x: &mut [T]) {
    let (ohw, p) = (g.ohw(), &g.p);
    let [sy, sx] = p.stride;
    let mut rows = cols.chunks_exact(ohw);
    for c in c0..c0 + cg {
        let plane = &mut x[c * g.hw()..(c + 1) * g.hw()];
        for i in 0..g.kh {
            let (ylo, yhi) = valid_range(i, sy, p.dilation[0], p.padding[0], g.h, g.oh);
            for j in 0..g.kw {
                let row = rows.next().expect("cols has C·kh·kw rows");
                let (xlo, xhi) = valid_range(j, sx, p.dilation[1], p.padding[1], g.w, g.ow);
                if xlo == xhi {
                    continue;
                }
                for oy in ylo..yhi {
                    let y = oy * sy + i * p.dilation[0] - p.padding[0];
                    let line = &mut plane[y * g.w..(y + 1) * g.w];
                    let src = &row[oy * g.ow + xlo..oy * g.ow + xhi];
                    let first = xlo * sx + j * p.dilation[1] - p.padding[1];
                    if sx == 1 {
                        add_short(&mut line[first..first + src.len()], src);
                    } else {
                        for (d, &v) in line[first..].iter_mut().step_by(sx).zip(src) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

/// One run of images for one thread: its first image, its part of the
/// output, and its scratch matrix (room only; both uninitialised).
struct Job<'a, T> {
    first: usize,
    out: &'a mut [MaybeUninit<T>],
    scratch: Vec<T>,
}

/// An output of `n` images of `per_image` elements, split into runs of
/// whole images on which `f(first_image, out_part, scratch)` is called, in
/// parallel when `work` (multiply-adds) is large; `scratch` has `scratch`
/// elements per run. The output and every scratch buffer are allocated
/// before any work starts, so a refused allocation is an error naming `op`
/// and `shape`, not an abort halfway.
///
/// Both come uninitialised: a product that overwrites them needs no
/// zeroing first, and one that accumulates zeroes its part on the thread
/// that fills it ([`zeroed`]). Zeroing everything up front cost 3% of
/// `cnn_step`'s samples on the calling thread alone, the other waiting,
/// then as much again spread over both.
///
/// # Safety
/// `f` must write every element of the output part it is given (it may
/// leave the scratch as it likes).
unsafe fn for_each_image_run<T: Element>(
    op: &'static str,
    shape: &[usize],
    (n, per_image): (usize, usize),
    scratch: usize,
    work: usize,
    f: impl Fn(usize, &mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) + Sync + Send,
) -> Result<Vec<T>> {
    let numel = n * per_image;
    if numel == 0 {
        return Ok(Vec::new());
    }
    // A recycled buffer when one fits (see `pool`): no fresh pages.
    let mut out: Vec<T> = crate::pool::try_with_capacity(numel)
        .map_err(|_| AllocError::of::<T>(numel).at(op, shape))?;
    let runs = if use_parallel(work / 16) {
        n.min(thread_count() * 2)
    } else {
        1
    };
    let per_run = n.div_ceil(runs);
    let mut jobs = Vec::new();
    let parts = out.spare_capacity_mut()[..numel].chunks_mut(per_run * per_image);
    for (r, part) in parts.enumerate() {
        let scratch = try_vec(scratch).map_err(|e| e.at(op, &[scratch]))?;
        jobs.push(Job {
            first: r * per_run,
            out: part,
            scratch,
        });
    }
    for_each_chunk(&mut jobs, 1, |_, js| {
        for j in js {
            f(
                j.first,
                j.out,
                &mut j.scratch.spare_capacity_mut()[..scratch],
            );
        }
    });
    // SAFETY: the parts cover `out[..numel]` and the caller's `f` wrote
    // every element of each (a panic propagates before this line, leaving
    // the length 0).
    unsafe { out.set_len(numel) };
    Ok(out)
}

/// The contiguous elements of `t` (copied if it is a strided view).
fn contiguous<T: Element>(t: &Tensor<T>, op: &'static str) -> Result<Tensor<T>> {
    t.try_to_contiguous(op)
}

fn slice<T: Element>(t: &Tensor<T>) -> &[T] {
    t.as_slice().expect("a contiguous tensor has a slice")
}

impl<T: Element> Tensor<T> {
    /// 2-d convolution (cross-correlation, as in PyTorch) of `self`
    /// `[N, C, H, W]` with `weight` `[O, C/groups, kh, kw]`: an output of
    /// `[N, O, OH, OW]` with `OH = (H + 2·ph − dh·(kh − 1) − 1) / sh + 1`
    /// (and the same for the width). No bias: add it with broadcasting.
    ///
    /// ```
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// // A 2×2 box sum over a 3×3 image of 0..9.
    /// let x = Tensor::<f32>::arange(0.0, 9.0, 1.0)?.reshape(&[1, 1, 3, 3])?;
    /// let w = Tensor::ones(&[1, 1, 2, 2]);
    /// let y = x.conv2d(&w, &ConvParams::new())?;
    /// assert_eq!(y.shape(), [1, 1, 2, 2]);
    /// assert_eq!(y.to_vec(), vec![8.0, 12.0, 20.0, 24.0]);
    /// // The weight's channel count must match the input's.
    /// let err = x.conv2d(&Tensor::ones(&[1, 2, 2, 2]), &ConvParams::new()).unwrap_err();
    /// assert!(err.to_string().contains("expects 2 input channels"), "{err}");
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the ranks are not 4, the weight's channel count times `groups` is
    /// not `C`, `groups` does not divide `C` and `O`, a stride, dilation or
    /// `groups` is 0, the dilated kernel is larger than the padded input,
    /// or the output is too large.
    pub fn conv2d(&self, weight: &Self, params: &ConvParams) -> Result<Self> {
        self.conv2d_biased("conv2d", weight, None, params)
    }

    /// [`conv2d`](Self::conv2d) plus a bias `[O]` added to every output
    /// channel, as PyTorch's `conv2d(x, w, b)`: the same as adding
    /// `bias.reshape([1, O, 1, 1])` afterwards, but each image's output gets
    /// its bias while it is still in cache, instead of in another pass over
    /// the whole output.
    ///
    /// ```
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// let x = Tensor::<f32>::ones(&[1, 1, 2, 2]);
    /// let w = Tensor::from_vec(vec![1.0, 2.0], &[2, 1, 1, 1])?;
    /// let b = Tensor::from_vec(vec![10.0, -1.0], &[2])?;
    /// let y = x.conv2d_with_bias(&w, &b, &ConvParams::new())?;
    /// assert_eq!(y.to_vec(), vec![11.0, 11.0, 11.0, 11.0, 1.0, 1.0, 1.0, 1.0]);
    /// // The bias needs one value per output channel.
    /// let err = x.conv2d_with_bias(&w, &b.reshape(&[1, 2])?, &ConvParams::new()).unwrap_err();
    /// assert!(err.to_string().contains("bias of shape [1, 2]"), "{err}");
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`conv2d`](Self::conv2d), and if `bias` is not `[O]`.
    pub fn conv2d_with_bias(
        &self,
        weight: &Self,
        bias: &Self,
        params: &ConvParams,
    ) -> Result<Self> {
        self.conv2d_biased("conv2d_with_bias", weight, Some(bias), params)
    }

    /// The convolution with an optional bias; `op` names the call in errors.
    fn conv2d_biased(
        &self,
        op: &'static str,
        weight: &Self,
        bias: Option<&Self>,
        params: &ConvParams,
    ) -> Result<Self> {
        let g = Geometry::new(op, self.dims(), weight.dims(), params)?;
        let bias = match bias {
            Some(b) if b.dims() != [g.o] => {
                return Err(Error::invalid(
                    op,
                    format!(
                        "bias of shape {:?} for weight {:?}: expected [{}], one value per \
                         output channel",
                        b.dims(),
                        weight.dims(),
                        g.o
                    ),
                ))
            }
            Some(b) => Some(contiguous(b, op)?),
            None => None,
        };
        let bias = bias.as_ref().map(slice);
        let shape = [g.n, g.o, g.oh, g.ow];
        checked_numel::<T>(op, &shape)?;
        checked_numel::<T>(op, &[g.ckk(), g.ohw()])?;
        let (x, w) = (contiguous(self, op)?, contiguous(weight, op)?);
        let (xs, ws) = (slice(&x), slice(&w));
        let (ckk, ohw, og, chw) = (g.ckk(), g.ohw(), g.og(), g.c * g.hw());
        let scratch = if g.pointwise() { 0 } else { ckk * ohw };
        let each_run = |first: usize, part: &mut [MaybeUninit<T>], cols: &mut [MaybeUninit<T>]| {
            for (i, y) in part.chunks_exact_mut(g.o * ohw).enumerate() {
                let x_img = &xs[(first + i) * chw..][..chw];
                for grp in 0..g.groups {
                    let c0 = grp * g.cg();
                    let b: &[T] = if g.pointwise() {
                        &x_img[c0 * ohw..(c0 + g.cg()) * ohw]
                    } else {
                        unfold_image(Layout::Cols, &g, x_img, (c0, g.cg()), cols)
                    };
                    let a = &ws[grp * og * ckk..(grp + 1) * og * ckk];
                    let c = &mut y[grp * og * ohw..(grp + 1) * og * ohw];
                    let c = gemm_serial_into(og, ckk, ohw, a, ckk, 1, b, ohw, 1, c);
                    if let Some(bias) = bias {
                        let group_bias = &bias[grp * og..(grp + 1) * og];
                        for (row, &bo) in c.chunks_exact_mut(ohw).zip(group_bias) {
                            row.iter_mut().for_each(|v| *v += bo);
                        }
                    }
                }
            }
        };
        // SAFETY: each image's groups write their `og` output rows, all of
        // the image's `O·OH·OW` elements.
        let out = unsafe {
            for_each_image_run(op, &shape, (g.n, g.o * ohw), scratch, g.work(), each_run)?
        };
        Ok(Tensor::from_parts(out, &shape))
    }

    /// 1-d convolution of `self` `[N, C, L]` with `weight`
    /// `[O, C/groups, k]`, using the width entries of `params`:
    /// `[N, O, (L + 2p − d·(k − 1) − 1) / s + 1]`.
    ///
    /// ```
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 4])?;
    /// let w = Tensor::from_vec(vec![1.0, -1.0], &[1, 1, 2])?;
    /// let y = x.conv1d(&w, &ConvParams::new().padding(1))?;
    /// assert_eq!(y.to_vec(), vec![-1.0, -1.0, -1.0, -1.0, 4.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`conv2d`](Self::conv2d), for rank-3 input and weight.
    pub fn conv1d(&self, weight: &Self, params: &ConvParams) -> Result<Self> {
        let (x, w) = (conv1d_as_2d("conv1d", self, weight)?, weight.unsqueeze(2)?);
        x.conv2d(&w, &params.width_only())?.squeeze(2)
    }

    /// The transpose of [`conv2d`](Self::conv2d) (PyTorch's
    /// `conv_transpose2d`, also called a fractionally strided convolution):
    /// `self` `[N, O, OH, OW]`, `weight` `[O, C/groups, kh, kw]` (the same
    /// weight as the convolution it transposes), output `[N, C, H, W]` with
    /// `H = (OH − 1)·sh − 2·ph + dh·(kh − 1) + 1 + output_padding[0]`.
    /// It is the gradient of `conv2d` with respect to its input.
    ///
    /// ```
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// // Each input value stamps the 2×2 kernel of ones, stride 2.
    /// let g = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[1, 1, 1, 2])?;
    /// let w = Tensor::ones(&[1, 1, 2, 2]);
    /// let x = g.conv_transpose2d(&w, &ConvParams::new().stride(2), [0, 0])?;
    /// assert_eq!(x.shape(), [1, 1, 2, 4]);
    /// assert_eq!(x.to_vec(), vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`conv2d`](Self::conv2d) (the channel checks apply to the
    /// transposed roles), and if an `output_padding` entry is not smaller
    /// than its stride or dilation, or the output size is 0.
    pub fn conv_transpose2d(
        &self,
        weight: &Self,
        params: &ConvParams,
        output_padding: [usize; 2],
    ) -> Result<Self> {
        const OP: &str = "conv_transpose2d";
        check_params(OP, params)?;
        let (gd, wd) = (self.dims(), weight.dims());
        let bad = |why: String| Error::ShapeMismatch {
            op: OP,
            lhs: gd.to_vec(),
            rhs: wd.to_vec(),
            reason: why,
        };
        if gd.len() != 4 || wd.len() != 4 {
            return Err(bad(
                "expected input [N, O, OH, OW] and weight [O, C/groups, kh, kw]".into(),
            ));
        }
        if gd[1] != wd[0] {
            return Err(bad(format!(
                "the weight has {} input channels, the input {}",
                wd[0], gd[1]
            )));
        }
        let mut hw = [0; 2];
        for a in 0..2 {
            let (s, d, p) = (params.stride[a], params.dilation[a], params.padding[a]);
            if output_padding[a] >= s.max(d) {
                return Err(bad(format!(
                    "output_padding {:?} must be smaller than the stride {:?} or the dilation {:?}",
                    output_padding, params.stride, params.dilation
                )));
            }
            let full = gd[2 + a]
                .saturating_sub(1)
                .saturating_mul(s)
                .saturating_add(d.saturating_mul(wd[2 + a].saturating_sub(1)) + 1)
                .saturating_add(output_padding[a]);
            hw[a] = full
                .checked_sub(2 * p)
                .filter(|&h| h > 0 && gd[2 + a] > 0)
                .ok_or_else(|| bad(format!("padding {:?} leaves no output", params.padding)))?;
        }
        let x_shape = [gd[0], wd[1] * params.groups, hw[0], hw[1]];
        let g = Geometry::new(OP, &x_shape, wd, params)?;
        debug_assert_eq!([g.oh, g.ow], [gd[2], gd[3]]);
        conv_input_grad(OP, self, weight, &g)
    }

    /// The gradient of [`conv2d`](Self::conv2d) with respect to its weight:
    /// for `self` the convolution's input `[N, C, H, W]` and `grad` the
    /// gradient of its output `[N, O, OH, OW]`, the `[O, C/groups, kh, kw]`
    /// tensor `Σₙ grad · unfold(input)ᵀ` (PyTorch's
    /// `torch.nn.grad.conv2d_weight`). `kernel` is `[kh, kw]`.
    ///
    /// ```
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// let x = Tensor::<f32>::arange(0.0, 9.0, 1.0)?.reshape(&[1, 1, 3, 3])?;
    /// let g = Tensor::ones(&[1, 1, 2, 2]);
    /// // ∂(Σ y)/∂w_ij is the sum of the inputs under tap (i, j).
    /// let gw = x.conv2d_weight_grad(&g, [2, 2], &ConvParams::new())?;
    /// assert_eq!(gw.to_vec(), vec![8.0, 12.0, 20.0, 24.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`conv2d`](Self::conv2d), and if `grad` does not have the
    /// convolution's output shape.
    pub fn conv2d_weight_grad(
        &self,
        grad: &Self,
        kernel: [usize; 2],
        params: &ConvParams,
    ) -> Result<Self> {
        const OP: &str = "conv2d_weight_grad";
        let (xd, gd) = (self.dims(), grad.dims());
        if xd.len() != 4 || gd.len() != 4 {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: xd.to_vec(),
                rhs: gd.to_vec(),
                reason: "expected input [N, C, H, W] and gradient [N, O, OH, OW]".into(),
            });
        }
        let groups = params.groups.max(1);
        let w_shape = [gd[1], xd[1] / groups, kernel[0], kernel[1]];
        let g = Geometry::new(OP, xd, &w_shape, params)?;
        if gd != [g.n, g.o, g.oh, g.ow] {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: xd.to_vec(),
                rhs: gd.to_vec(),
                reason: format!(
                    "the gradient must have the output's shape {:?}",
                    [g.n, g.o, g.oh, g.ow]
                ),
            });
        }
        let numel = checked_numel::<T>(OP, &w_shape)?;
        checked_numel::<T>(OP, &[g.ckk(), g.ohw()])?;
        if numel == 0 {
            return Ok(Tensor::from_parts(Vec::new(), &w_shape));
        }
        let (x, gr) = (contiguous(self, OP)?, contiguous(grad, OP)?);
        let (xs, gs) = (slice(&x), slice(&gr));
        let (ckk, ohw, og, chw) = (g.ckk(), g.ohw(), g.og(), g.c * g.hw());
        // Partial sums over fixed runs of images, added in run order: the
        // result does not depend on the thread count. Each run's partial
        // sum is its own weight-shaped matrix (or its transpose, see
        // below) followed by its scratch unfolded matrix.
        let runs = g.n.clamp(1, 8);
        let per_run = g.n.div_ceil(runs).max(1);
        let cols_len = if g.pointwise() { 0 } else { ckk * ohw };
        let total = runs * (numel + cols_len);
        let mut partials: Vec<T> =
            try_vec(total).map_err(|e| e.at(OP, &[runs, numel + cols_len]))?;
        let parallel = use_parallel(g.work() / 16);
        let chunk = if parallel {
            numel + cols_len
        } else {
            total.max(1)
        };
        // Two orientations, each letting the GEMM read the unfolded matrix
        // in place. With at least 32 output channels and more unfolded
        // rows than that, sum dWᵀ += cols · Gᵀ from `im2col`'s layout (the
        // GEMM packs only the small gradient). Otherwise the transposed
        // product's rows (the output channels) fill less than two vectors,
        // which starves its register tile: sum dW += G · rows from
        // [`im2row_body`]'s layout instead, dearer to unfold than im2col but
        // cheaper than packing cols (measured on cnn_step and conv2d).
        let transposed = og >= 32 && og < ckk;
        let run_images = |first: usize, acc: &mut [T], cols: &mut [MaybeUninit<T>]| {
            for n in first..(first + per_run).min(g.n) {
                let x_img = &xs[n * chw..][..chw];
                let g_img = &gs[n * g.o * ohw..][..g.o * ohw];
                for grp in 0..g.groups {
                    let c0 = grp * g.cg();
                    let gg = &g_img[grp * og * ohw..(grp + 1) * og * ohw];
                    let c = &mut acc[grp * og * ckk..(grp + 1) * og * ckk];
                    if g.pointwise() {
                        // The input channels are their own im2col.
                        let b = &x_img[c0 * ohw..(c0 + g.cg()) * ohw];
                        if transposed {
                            gemm_serial(ckk, ohw, og, b, ohw, 1, gg, 1, ohw, c, true);
                        } else {
                            gemm_serial(og, ohw, ckk, gg, ohw, 1, b, 1, ohw, c, true);
                        }
                    } else if transposed {
                        let cols = unfold_image(Layout::Cols, &g, x_img, (c0, g.cg()), cols);
                        gemm_serial(ckk, ohw, og, cols, ohw, 1, gg, 1, ohw, c, true);
                    } else {
                        let rows = unfold_image(Layout::Rows, &g, x_img, (c0, g.cg()), cols);
                        gemm_serial(og, ohw, ckk, gg, ohw, 1, rows, ckk, 1, c, true);
                    }
                }
            }
        };
        // Each sum is zeroed by the thread that adds into it, and the
        // scratch is left as it is (see `for_each_image_run`).
        let spare = &mut partials.spare_capacity_mut()[..total];
        for_each_chunk(spare, chunk, |start, part| {
            for (r, run) in part.chunks_exact_mut(numel + cols_len).enumerate() {
                let run_index = start / (numel + cols_len) + r;
                let (acc, cols) = run.split_at_mut(numel);
                run_images(run_index * per_run, zeroed(acc), cols);
            }
        });
        let mut runs_sums = spare.chunks_exact_mut(numel + cols_len).map(|run| {
            // SAFETY: every run's sum was zeroed, then added to, above (a
            // panic propagates before this line).
            unsafe { assume_init_mut(&mut run[..numel]) }
        });
        let mut sum = runs_sums.next().expect("at least one run").to_vec();
        for part in runs_sums {
            for (o, &p) in sum.iter_mut().zip(part.iter()) {
                *o += p;
            }
        }
        if !transposed {
            return Ok(Tensor::from_parts(sum, &w_shape));
        }
        // Each group's sum is `[C/groups·kh·kw, O/groups]`: transpose it
        // into the weight's `[O/groups, C/groups·kh·kw]` rows.
        Tensor::from_parts(sum, &[g.groups, ckk, og])
            .permute(&[0, 2, 1])?
            .to_contiguous()
            .reshape(&w_shape)
    }

    /// Sliding windows as columns (im2col, PyTorch's `unfold` /
    /// `nn.Unfold`): `self` `[N, C, H, W]` becomes `[N, C·kh·kw, L]` with
    /// `L = OH·OW` windows; row `(c, i, j)` holds tap `(i, j)` of channel
    /// `c` for every window, zeros in the padding. `params.groups` must
    /// be 1.
    ///
    /// ```
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// let x = Tensor::<f32>::arange(0.0, 4.0, 1.0)?.reshape(&[1, 1, 2, 2])?;
    /// let cols = x.unfold([1, 2], &ConvParams::new())?;
    /// assert_eq!(cols.shape(), [1, 2, 2]);
    /// assert_eq!(cols.to_vec(), vec![0.0, 2.0, 1.0, 3.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `self` is not 4-d, `groups` is not 1, a stride or dilation is 0,
    /// or the kernel is larger than the padded input.
    pub fn unfold(&self, kernel: [usize; 2], params: &ConvParams) -> Result<Self> {
        const OP: &str = "unfold";
        let g = fold_geometry(OP, self.dims(), kernel, params)?;
        let shape = [g.n, g.ckk(), g.ohw()];
        let numel = checked_numel::<T>(OP, &shape)?;
        let x = contiguous(self, OP)?;
        let xs = slice(&x);
        let (per, chw) = (g.ckk() * g.ohw(), g.c * g.hw());
        let each_run = |first: usize, part: &mut [MaybeUninit<T>], _: &mut [MaybeUninit<T>]| {
            for (i, cols) in part.chunks_exact_mut(per).enumerate() {
                unfold_image(
                    Layout::Cols,
                    &g,
                    &xs[(first + i) * chw..][..chw],
                    (0, g.c),
                    cols,
                );
            }
        };
        // SAFETY: `im2col` writes each image's whole unfolded matrix.
        let out = unsafe { for_each_image_run(OP, &shape, (g.n, per), 0, numel, each_run)? };
        Ok(Tensor::from_parts(out, &shape))
    }

    /// The adjoint of [`unfold`](Self::unfold) (col2im, PyTorch's `fold` /
    /// `nn.Fold`): `self` `[N, C·kh·kw, L]` is summed back into an
    /// `[N, C, H, W]` image of `output_size = [H, W]`; entries of
    /// overlapping windows add up. `params.groups` must be 1.
    ///
    /// ```
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// // Two 1×2 windows over a 1×3 image overlap in the middle.
    /// let cols = Tensor::<f32>::ones(&[1, 2, 2]);
    /// let x = cols.fold([1, 3], [1, 2], &ConvParams::new())?;
    /// assert_eq!(x.to_vec(), vec![1.0, 2.0, 1.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `self` is not 3-d, its second axis does not divide by `kh·kw`,
    /// its window count is not the one `output_size` gives, or as
    /// [`unfold`](Self::unfold).
    pub fn fold(
        &self,
        output_size: [usize; 2],
        kernel: [usize; 2],
        params: &ConvParams,
    ) -> Result<Self> {
        const OP: &str = "fold";
        let d = self.dims();
        let kk = kernel[0] * kernel[1];
        if d.len() != 3 || kk == 0 || !d[1].is_multiple_of(kk) {
            return Err(Error::invalid(
                OP,
                format!("expected [N, C·{kk}, L] for kernel {kernel:?}, got {d:?}"),
            ));
        }
        let x_shape = [d[0], d[1] / kk, output_size[0], output_size[1]];
        let g = fold_geometry(OP, &x_shape, kernel, params)?;
        if d[2] != g.ohw() {
            return Err(Error::invalid(
                OP,
                format!(
                    "{d:?} has {} windows; output size {output_size:?} gives {}",
                    d[2],
                    g.ohw()
                ),
            ));
        }
        let numel = checked_numel::<T>(OP, &x_shape)?;
        let cols = contiguous(self, OP)?;
        let cs = slice(&cols);
        let (per, chw) = (g.ckk() * g.ohw(), g.c * g.hw());
        let each_run = |first: usize, part: &mut [MaybeUninit<T>], _: &mut [MaybeUninit<T>]| {
            for (i, x) in zeroed(part).chunks_exact_mut(chw).enumerate() {
                col2im(&g, &cs[(first + i) * per..][..per], 0, g.c, x);
            }
        };
        // SAFETY: each part is zeroed before the sums.
        let out = unsafe { for_each_image_run(OP, &x_shape, (g.n, chw), 0, numel, each_run)? };
        Ok(Tensor::from_parts(out, &x_shape))
    }
}

/// `x` `[N, C, L]` as `[N, C, 1, L]`, after checking both ranks are 3.
fn conv1d_as_2d<T: Element>(op: &'static str, x: &Tensor<T>, w: &Tensor<T>) -> Result<Tensor<T>> {
    if x.ndim() != 3 || w.ndim() != 3 {
        return Err(Error::ShapeMismatch {
            op,
            lhs: x.dims().to_vec(),
            rhs: w.dims().to_vec(),
            reason: "expected input [N, C, L] and weight [O, C/groups, k]".into(),
        });
    }
    x.unsqueeze(2)
}

/// The geometry of unfolding `x` with a kernel (one group, one "output
/// channel").
fn fold_geometry(
    op: &'static str,
    x: &[usize],
    kernel: [usize; 2],
    p: &ConvParams,
) -> Result<Geometry> {
    if p.groups != 1 {
        return Err(Error::invalid(
            op,
            format!("groups must be 1, got {}", p.groups),
        ));
    }
    if x.len() != 4 {
        return Err(Error::invalid(
            op,
            format!("expected [N, C, H, W], got {x:?}"),
        ));
    }
    Geometry::new(op, x, &[1, x[1], kernel[0], kernel[1]], p)
}

/// `conv_transpose(g, w)`: `xgrad = fold(W_gᵀ · g)` image by image.
fn conv_input_grad<T: Element>(
    op: &'static str,
    grad: &Tensor<T>,
    weight: &Tensor<T>,
    g: &Geometry,
) -> Result<Tensor<T>> {
    let shape = [g.n, g.c, g.h, g.w];
    checked_numel::<T>(op, &shape)?;
    checked_numel::<T>(op, &[g.ckk(), g.ohw()])?;
    let (gr, w) = (contiguous(grad, op)?, contiguous(weight, op)?);
    let (gs, ws) = (slice(&gr), slice(&w));
    let (ckk, ohw, og, chw) = (g.ckk(), g.ohw(), g.og(), g.c * g.hw());
    let scratch = if g.pointwise() { 0 } else { ckk * ohw };
    let each_run = |first: usize, part: &mut [MaybeUninit<T>], cols: &mut [MaybeUninit<T>]| {
        for (i, x) in zeroed(part).chunks_exact_mut(chw).enumerate() {
            let g_img = &gs[(first + i) * g.o * ohw..][..g.o * ohw];
            for grp in 0..g.groups {
                let c0 = grp * g.cg();
                // cols = W_gᵀ · G_g: the weight rows read transposed.
                let a = &ws[grp * og * ckk..(grp + 1) * og * ckk];
                let b = &g_img[grp * og * ohw..(grp + 1) * og * ohw];
                if g.pointwise() {
                    let c = &mut x[c0 * ohw..(c0 + g.cg()) * ohw];
                    gemm_serial(ckk, og, ohw, a, 1, ckk, b, ohw, 1, c, false);
                } else {
                    let cols = gemm_serial_into(ckk, og, ohw, a, 1, ckk, b, ohw, 1, cols);
                    col2im(g, cols, c0, g.cg(), x);
                }
            }
        }
    };
    // SAFETY: each part is zeroed before the sums.
    let out = unsafe { for_each_image_run(op, &shape, (g.n, chw), scratch, g.work(), each_run)? };
    Ok(Tensor::from_parts(out, &shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, one output at a time.
    fn naive(x: &Tensor<f64>, w: &Tensor<f64>, p: &ConvParams) -> Vec<f64> {
        let (xd, wd) = (x.dims().to_vec(), w.dims().to_vec());
        let [oh, ow] = p.output_size([xd[2], xd[3]], [wd[2], wd[3]]).unwrap();
        let (cg, og) = (wd[1], wd[0] / p.groups);
        let mut out = Vec::new();
        for n in 0..xd[0] {
            for o in 0..wd[0] {
                for y in 0..oh {
                    for z in 0..ow {
                        let mut s = 0.0;
                        for c in 0..cg {
                            for i in 0..wd[2] {
                                for j in 0..wd[3] {
                                    let yy = (y * p.stride[0] + i * p.dilation[0]) as isize
                                        - p.padding[0] as isize;
                                    let zz = (z * p.stride[1] + j * p.dilation[1]) as isize
                                        - p.padding[1] as isize;
                                    if yy < 0
                                        || zz < 0
                                        || yy >= xd[2] as isize
                                        || zz >= xd[3] as isize
                                    {
                                        continue;
                                    }
                                    let ci = (o / og) * cg + c;
                                    s += x.get(&[n, ci, yy as usize, zz as usize]).unwrap()
                                        * w.get(&[o, c, i, j]).unwrap();
                                }
                            }
                        }
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-10, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn conv2d_matches_definition() {
        let cases = [
            (
                [2, 4, 7, 6],
                [6, 2, 3, 2],
                ConvParams::new().groups(2).padding(1),
            ),
            (
                [1, 3, 9, 9],
                [4, 3, 3, 3],
                ConvParams::new().stride(2).dilation(2),
            ),
            ([3, 2, 5, 5], [2, 2, 1, 1], ConvParams::new()),
            (
                [2, 4, 5, 6],
                [4, 1, 3, 3],
                ConvParams::new().groups(4).padding(2).stride(3),
            ),
            (
                [1, 2, 6, 5],
                [3, 2, 2, 3],
                ConvParams {
                    stride: [1, 2],
                    padding: [0, 1],
                    dilation: [2, 1],
                    groups: 1,
                },
            ),
        ];
        for (k, (xs, ws, p)) in cases.into_iter().enumerate() {
            let x = Tensor::<f64>::uniform_seeded(&xs, -1.0, 1.0, k as u64);
            let w = Tensor::<f64>::uniform_seeded(&ws, -1.0, 1.0, 100 + k as u64);
            let want = naive(&x, &w, &p);
            close(&x.conv2d(&w, &p).unwrap().to_vec(), &want);
            // With a bias: the same plus bias[o] on every value of channel o
            // (a strided bias, to go through its copy too).
            let o = ws[0];
            let b2 = Tensor::<f64>::uniform_seeded(&[2, o], -1.0, 1.0, 200 + k as u64);
            let bias = b2.select(0, 1).unwrap();
            let biased = x.conv2d_with_bias(&w, &bias, &p).unwrap();
            let plane = want.len() / (xs[0] * o);
            let bv = bias.to_vec();
            let want_biased: Vec<f64> = (want.iter().enumerate())
                .map(|(i, v)| v + bv[i / plane % o])
                .collect();
            close(&biased.to_vec(), &want_biased);
        }
    }

    #[test]
    fn conv2d_bias_must_be_one_value_per_output_channel() {
        let x = Tensor::<f64>::ones(&[1, 2, 4, 4]);
        let w = Tensor::<f64>::ones(&[3, 2, 3, 3]);
        for bad in [&[2][..], &[3, 1], &[]] {
            let b = Tensor::<f64>::zeros(bad);
            let e = x
                .conv2d_with_bias(&w, &b, &ConvParams::new())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("conv2d_with_bias")
                    && e.contains(&format!("bias of shape {bad:?}"))
                    && e.contains("[3, 2, 3, 3]")
                    && e.contains("expected [3]"),
                "{e}"
            );
        }
    }

    #[test]
    fn add_short_adds_every_element_once_at_any_length() {
        for n in 0..40 {
            let src: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
            let mut dst: Vec<f64> = (0..n).map(|i| -(i as f64) * 2.0).collect();
            let want: Vec<f64> = dst.iter().zip(&src).map(|(d, s)| d + s).collect();
            add_short(&mut dst, &src);
            assert_eq!(dst, want, "length {n}");
        }
    }

    #[test]
    fn transpose_and_weight_grad_are_adjoints() {
        // ⟨conv(x, w), g⟩ = ⟨x, convT(g, w)⟩ = ⟨w, wgrad(x, g)⟩.
        let p = ConvParams {
            stride: [2, 1],
            padding: [1, 2],
            dilation: [1, 2],
            groups: 2,
        };
        // The weight gradient's two orientations: by im2row (3 output
        // channels per group; 32 but only 12 unfolded rows) and by im2col
        // (32 output channels per group, 40 unfolded rows).
        for (out, kh, kw) in [(6, 3, 2), (64, 3, 2), (64, 5, 4)] {
            let x = Tensor::<f64>::uniform_seeded(&[2, 4, 7, 8], -1.0, 1.0, 1);
            let w = Tensor::<f64>::uniform_seeded(&[out, 2, kh, kw], -1.0, 1.0, 2);
            let y = x.conv2d(&w, &p).unwrap();
            let g = Tensor::<f64>::uniform_seeded(y.dims(), -1.0, 1.0, 3);
            let dot = |a: &Tensor<f64>, b: &Tensor<f64>| -> f64 {
                a.to_vec().iter().zip(b.to_vec()).map(|(u, v)| u * v).sum()
            };
            let b = dot(&y, &g);
            // Back from the output's size, H = (OH − 1)·2 − 2 + (kh − 1) + 1
            // and W = (OW − 1) − 4 + 2·(kw − 1) + 1 are 7 and 8 again for
            // both kernels: no output padding needed.
            let xt = g.conv_transpose2d(&w, &p, [0, 0]).unwrap();
            assert_eq!(xt.dims(), x.dims());
            assert!((dot(&x, &xt) - b).abs() < 1e-10);
            let wg = x.conv2d_weight_grad(&g, [kh, kw], &p).unwrap();
            assert!((dot(&w, &wg) - b).abs() < 1e-10);
        }
    }

    #[test]
    fn unfold_fold_adjoint_and_errors() {
        let p = ConvParams::new().stride(2).padding(1);
        let x = Tensor::<f64>::uniform_seeded(&[2, 3, 5, 4], -1.0, 1.0, 4);
        let u = x.unfold([3, 2], &p).unwrap();
        let c = Tensor::<f64>::uniform_seeded(u.dims(), -1.0, 1.0, 5);
        let f = c.fold([5, 4], [3, 2], &p).unwrap();
        let dot = |a: &Tensor<f64>, b: &Tensor<f64>| -> f64 {
            a.to_vec().iter().zip(b.to_vec()).map(|(u, v)| u * v).sum()
        };
        assert!((dot(&u, &c) - dot(&x, &f)).abs() < 1e-10);
        let z = Tensor::<f32>::zeros(&[1, 3, 4, 4]);
        let e = z.conv2d(&Tensor::zeros(&[2, 3, 7, 3]), &ConvParams::new().padding(1));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("larger than the padded input"));
        let e = z.conv2d(&Tensor::zeros(&[2, 3, 3, 3]), &ConvParams::new().stride(0));
        assert!(e.unwrap_err().to_string().contains("at least 1"));
        let e = z.conv2d(&Tensor::zeros(&[4, 1, 3, 3]), &ConvParams::new().groups(2));
        assert!(e.unwrap_err().to_string().contains("does not divide"));
    }
}
