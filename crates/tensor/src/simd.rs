//! Slice kernels compiled for the widest SIMD instruction set the CPU has.
//!
//! The default build targets baseline x86-64 (SSE2), where loops vectorise
//! only four `f32` lanes wide. Each kernel here is written once as an
//! `#[inline(always)]` loop and instantiated three times: plain, inside an
//! AVX2 function and inside an AVX-512 function; the caller picks one at run
//! time (`is_x86_feature_detected!` is a cached load). The element function
//! `f` is inlined into each copy, so a map of
//! [`fastmath::tanh_f32`](crate::fastmath::tanh_f32) becomes 16-lane code on
//! an AVX-512 machine. Measured on this repository's 2-core AVX-512 box: a
//! serial tanh over 1M `f32` takes 2.3 ms with SSE2, 1.2 ms with AVX2 and
//! 0.7 ms with AVX-512.
//!
//! The AVX2 and AVX-512 copies also enable FMA, so the explicit
//! `mul_add`s of [`fastmath`](crate::fastmath) become single instructions
//! (in baseline code they are library calls).
//!
//! Results never depend on the path: kernels use only IEEE `+ - * /`,
//! explicit fused multiply-adds (rounded once on every path), comparisons
//! and bit casts (LLVM never fuses a multiply and an add on its own), and a
//! fold's association order is fixed by the source (eight interleaved
//! accumulators), not by the vector width.
//!
//! `unsafe` is confined to calling the `#[target_feature]` copies; each call
//! is guarded by a run-time feature check (see the SAFETY comments). The
//! tests in this module and every tensor test on an AVX-512 machine reach
//! those calls.

use std::mem::MaybeUninit;

/// Which instruction set to run a kernel with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

#[inline]
fn best_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        // Every CPU with AVX2 or AVX-512 that we know of also has FMA, but
        // the kernels are compiled to use it, so check.
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

/// The instruction set for a cheap, memory-bound kernel (an add, a
/// multiply): AVX2 even where AVX-512 is there. On the reference Zen 4
/// machine the AVX2 copy of a same-shape 1M-element add or multiply ran
/// about 8% faster on 2 threads (72-74 against 78-82 µs, criterion, two
/// alternating rounds) while AVX-512 stays twice as fast for the
/// arithmetic-heavy maps (sigmoid 383 against 695 µs on one core), so
/// only the light binary ops take this path.
#[inline]
fn light_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if best_isa() != Isa::Baseline && std::arch::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

// ----- the kernels, written once -------------------------------------------

// The map and zip kernels write into uninitialised output (see
// `crate::buffer`): each writes every element of `dst`, and slices its
// inputs to `dst.len()` first, so a too-short input panics (before anything
// could be left unwritten) instead of leaving a gap.

#[inline(always)]
fn map_kernel<T: Copy, F: Fn(T) -> T>(src: &[T], dst: &mut [MaybeUninit<T>], f: &F) {
    let src = &src[..dst.len()];
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = MaybeUninit::new(f(x));
    }
}

#[inline(always)]
fn map_strided_kernel<T: Copy, F: Fn(T) -> T>(
    src: &[T],
    stride: usize,
    dst: &mut [MaybeUninit<T>],
    f: &F,
) {
    if stride == 0 && !dst.is_empty() {
        // A broadcast row (the gradient of a sum made contiguous): one
        // value, filled with vector stores; indexing `src[0]` per element
        // kept its bounds check and ran scalar (a seventh of conv2d).
        dst.fill(MaybeUninit::new(f(src[0])));
        return;
    }
    for (i, o) in dst.iter_mut().enumerate() {
        *o = MaybeUninit::new(f(src[i * stride]));
    }
}

#[inline(always)]
fn zip_kernel<T: Copy, F: Fn(T, T) -> T>(a: &[T], b: &[T], dst: &mut [MaybeUninit<T>], f: &F) {
    let n = dst.len();
    let (a, b) = (&a[..n], &b[..n]);
    for i in 0..n {
        dst[i] = MaybeUninit::new(f(a[i], b[i]));
    }
}

#[inline(always)]
fn zip_rhs_kernel<T: Copy, F: Fn(T, T) -> T>(a: &[T], y: T, dst: &mut [MaybeUninit<T>], f: &F) {
    let a = &a[..dst.len()];
    for (o, &x) in dst.iter_mut().zip(a) {
        *o = MaybeUninit::new(f(x, y));
    }
}

#[inline(always)]
fn zip_lhs_kernel<T: Copy, F: Fn(T, T) -> T>(x: T, b: &[T], dst: &mut [MaybeUninit<T>], f: &F) {
    let b = &b[..dst.len()];
    for (o, &y) in dst.iter_mut().zip(b) {
        *o = MaybeUninit::new(f(x, y));
    }
}

/// One operand of [`zip_rows`]: row `r` of it starts at `data[starts.of(r)]`
/// and runs with `step` (1 along the row, 0 for an element repeated over
/// it, anything else for a strided view).
pub(crate) struct RowSource<'a, T> {
    pub data: &'a [T],
    pub starts: RowStarts<'a>,
    pub step: usize,
}

/// Where the rows of a [`RowSource`] start.
#[derive(Clone, Copy)]
pub(crate) enum RowStarts<'a> {
    /// `first + r · stride`: every layout of rank 2 or less, which covers
    /// most broadcasts once their axes are merged. No list to build.
    Every { first: usize, stride: usize },
    /// Listed one by one (higher ranks).
    Listed(&'a [usize]),
}

impl RowStarts<'_> {
    #[inline(always)]
    fn of(self, r: usize) -> usize {
        match self {
            RowStarts::Every { first, stride } => first + r * stride,
            RowStarts::Listed(bases) => bases[r],
        }
    }
}

/// `dst` is the piece of an output starting at element `start`, seen as
/// rows of `row_len`; each element is `f` of the matching elements of `a`
/// and `b`. The rows are walked here, inside the dispatched copy, so a
/// broadcast over many short rows (a bias row added to a batch) pays for
/// one dispatch per chunk instead of one per row.
#[inline(always)]
fn zip_rows_kernel<T: Copy, F: Fn(T, T) -> T>(
    a: &RowSource<'_, T>,
    b: &RowSource<'_, T>,
    row_len: usize,
    start: usize,
    dst: &mut [MaybeUninit<T>],
    f: &F,
) {
    // The walk of `parallel::walk_segments`, written out: a closure here
    // would not be inlined into the dispatched copies, and its loops would
    // run in baseline code.
    let (mut r, mut c) = (start / row_len, start % row_len);
    let mut pos = 0;
    while pos < dst.len() {
        let len = (row_len - c).min(dst.len() - pos);
        let seg = &mut dst[pos..pos + len];
        let (oa, ob) = (a.starts.of(r) + c * a.step, b.starts.of(r) + c * b.step);
        match (a.step, b.step) {
            (1, 1) => zip_kernel(&a.data[oa..], &b.data[ob..], seg, f),
            (1, 0) => zip_rhs_kernel(&a.data[oa..], b.data[ob], seg, f),
            (0, 1) => zip_lhs_kernel(a.data[oa], &b.data[ob..], seg, f),
            (da, db) => {
                for (i, o) in seg.iter_mut().enumerate() {
                    *o = MaybeUninit::new(f(a.data[oa + i * da], b.data[ob + i * db]));
                }
            }
        }
        pos += len;
        c += len;
        if c == row_len {
            (r, c) = (r + 1, 0);
        }
    }
}

/// `dst[i] = if c[i] != zero { t[i] } else { f[i] }`, branch-free (a
/// random mask made the branchy loop mispredict half the time).
#[inline(always)]
fn select_kernel<T: Copy + PartialEq>(
    c: &[T],
    t: &[T],
    f: &[T],
    zero: T,
    dst: &mut [MaybeUninit<T>],
) {
    let n = dst.len();
    let (c, t, f) = (&c[..n], &t[..n], &f[..n]);
    // Both values are read before the choice, so it compiles to a blend
    // (indexing inside the `if` became a masked load per lane).
    for (((o, &c), &t), &f) in dst.iter_mut().zip(c).zip(t).zip(f) {
        *o = MaybeUninit::new(if c != zero { t } else { f });
    }
}

/// Accumulators per fold (a power of two).
const FOLD_LANES: usize = 64;

/// [`FOLD_LANES`] interleaved accumulators (so the loop vectorises and the
/// adds overlap), combined in a fixed tree order, then the tail.
#[inline(always)]
fn fold_kernel<T: Copy, F: Fn(T, T) -> T>(xs: &[T], init: T, f: &F) -> T {
    map_fold_kernel(xs, init, &|x| x, f)
}

/// `dst[i] = f(init, fold(row i))` for consecutive rows of `row_len`
/// elements of `xs`: row sums in one dispatched call instead of one per row
/// (which cost about as much as summing a 1,024-element row).
#[inline(always)]
fn fold_rows_kernel<T: Copy, F: Fn(T, T) -> T>(
    xs: &[T],
    row_len: usize,
    dst: &mut [MaybeUninit<T>],
    init: T,
    f: &F,
) {
    for (i, o) in dst.iter_mut().enumerate() {
        *o = MaybeUninit::new(f(init, fold_kernel(&xs[i * row_len..][..row_len], init, f)));
    }
}

/// Like [`fold_kernel`] on `g(x)` instead of `x`: `g` is applied to each
/// element before it is combined (a sum of exponentials, say).
#[inline(always)]
fn map_fold_kernel<T: Copy, G: Fn(T) -> T, F: Fn(T, T) -> T>(xs: &[T], init: T, g: &G, f: &F) -> T {
    // FOLD_LANES independent accumulators: a floating-point add has a
    // latency of several cycles, so one vector of accumulators would leave
    // the adder idle most of the time; 64 lanes fill 4 AVX-512 (8 AVX2)
    // registers and keep it busy. The lanes are combined in a fixed tree, so
    // every dispatch path gives the same bits.
    let mut acc = [init; FOLD_LANES];
    let mut chunks = xs.chunks_exact(FOLD_LANES);
    for c in &mut chunks {
        for l in 0..FOLD_LANES {
            acc[l] = f(acc[l], g(c[l]));
        }
    }
    let mut r = init;
    for &x in chunks.remainder() {
        r = f(r, g(x));
    }
    let mut width = FOLD_LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] = f(acc[l], acc[l + width]);
        }
        width /= 2;
    }
    f(acc[0], r)
}

/// `dst[i] += src[i]`-style accumulation: `acc[i] = f(acc[i], src[i])`.
#[inline(always)]
fn accumulate_kernel<T: Copy, F: Fn(T, T) -> T>(acc: &mut [T], src: &[T], f: &F) {
    for (o, &x) in acc.iter_mut().zip(src) {
        *o = f(*o, x);
    }
}

/// `xs[i] = f(xs[i])` in place.
#[inline(always)]
fn map_in_place_kernel<T: Copy, F: Fn(T) -> T>(xs: &mut [T], f: &F) {
    for x in xs.iter_mut() {
        *x = f(*x);
    }
}

// ----- feature-enabled copies ----------------------------------------------
//
// Each pair below is the same one-line body under a different
// `target_feature`; they exist only so LLVM compiles the inlined kernel with
// wider vectors.
//
// SAFETY (all of them): the caller must have checked at run time that the
// CPU supports the enabled feature; `dispatch!` below does.

#[cfg(target_arch = "x86_64")]
mod wide {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn run_avx2<K: Kernel>(k: K) -> K::Output {
        k.run()
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn run_avx512<K: Kernel>(k: K) -> K::Output {
        k.run()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn map_avx2<T: Copy, F: Fn(T) -> T>(
        s: &[T],
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        map_kernel(s, d, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn map_avx512<T: Copy, F: Fn(T) -> T>(
        s: &[T],
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        map_kernel(s, d, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn map_strided_avx2<T: Copy, F: Fn(T) -> T>(
        src: &[T],
        stride: usize,
        dst: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        map_strided_kernel(src, stride, dst, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn map_strided_avx512<T: Copy, F: Fn(T) -> T>(
        src: &[T],
        stride: usize,
        dst: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        map_strided_kernel(src, stride, dst, f)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn zip_avx2<T: Copy, F: Fn(T, T) -> T>(
        a: &[T],
        b: &[T],
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        zip_kernel(a, b, d, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn zip_avx512<T: Copy, F: Fn(T, T) -> T>(
        a: &[T],
        b: &[T],
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        zip_kernel(a, b, d, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn zip_rhs_avx2<T: Copy, F: Fn(T, T) -> T>(
        a: &[T],
        y: T,
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        zip_rhs_kernel(a, y, d, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn zip_rhs_avx512<T: Copy, F: Fn(T, T) -> T>(
        a: &[T],
        y: T,
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        zip_rhs_kernel(a, y, d, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn zip_lhs_avx2<T: Copy, F: Fn(T, T) -> T>(
        x: T,
        b: &[T],
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        zip_lhs_kernel(x, b, d, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn zip_lhs_avx512<T: Copy, F: Fn(T, T) -> T>(
        x: T,
        b: &[T],
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        zip_lhs_kernel(x, b, d, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn zip_rows_avx2<T: Copy, F: Fn(T, T) -> T>(
        a: &RowSource<'_, T>,
        b: &RowSource<'_, T>,
        row_len: usize,
        start: usize,
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        zip_rows_kernel(a, b, row_len, start, d, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn zip_rows_avx512<T: Copy, F: Fn(T, T) -> T>(
        a: &RowSource<'_, T>,
        b: &RowSource<'_, T>,
        row_len: usize,
        start: usize,
        d: &mut [MaybeUninit<T>],
        f: &F,
    ) {
        zip_rows_kernel(a, b, row_len, start, d, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn select_avx2<T: Copy + PartialEq>(
        c: &[T],
        t: &[T],
        f: &[T],
        zero: T,
        d: &mut [MaybeUninit<T>],
    ) {
        select_kernel(c, t, f, zero, d)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn select_avx512<T: Copy + PartialEq>(
        c: &[T],
        t: &[T],
        f: &[T],
        zero: T,
        d: &mut [MaybeUninit<T>],
    ) {
        select_kernel(c, t, f, zero, d)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fold_avx2<T: Copy, F: Fn(T, T) -> T>(xs: &[T], init: T, f: &F) -> T {
        fold_kernel(xs, init, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn fold_avx512<T: Copy, F: Fn(T, T) -> T>(xs: &[T], init: T, f: &F) -> T {
        fold_kernel(xs, init, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fold_rows_avx2<T: Copy, F: Fn(T, T) -> T>(
        xs: &[T],
        row_len: usize,
        dst: &mut [MaybeUninit<T>],
        init: T,
        f: &F,
    ) {
        fold_rows_kernel(xs, row_len, dst, init, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn fold_rows_avx512<T: Copy, F: Fn(T, T) -> T>(
        xs: &[T],
        row_len: usize,
        dst: &mut [MaybeUninit<T>],
        init: T,
        f: &F,
    ) {
        fold_rows_kernel(xs, row_len, dst, init, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn map_fold_avx2<T: Copy, G: Fn(T) -> T, F: Fn(T, T) -> T>(
        xs: &[T],
        init: T,
        g: &G,
        f: &F,
    ) -> T {
        map_fold_kernel(xs, init, g, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn map_fold_avx512<T: Copy, G: Fn(T) -> T, F: Fn(T, T) -> T>(
        xs: &[T],
        init: T,
        g: &G,
        f: &F,
    ) -> T {
        map_fold_kernel(xs, init, g, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn map_in_place_avx2<T: Copy, F: Fn(T) -> T>(xs: &mut [T], f: &F) {
        map_in_place_kernel(xs, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn map_in_place_avx512<T: Copy, F: Fn(T) -> T>(xs: &mut [T], f: &F) {
        map_in_place_kernel(xs, f)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn accumulate_avx2<T: Copy, F: Fn(T, T) -> T>(a: &mut [T], s: &[T], f: &F) {
        accumulate_kernel(a, s, f)
    }
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn accumulate_avx512<T: Copy, F: Fn(T, T) -> T>(a: &mut [T], s: &[T], f: &F) {
        accumulate_kernel(a, s, f)
    }
}

/// Calls the baseline kernel or its AVX2 / AVX-512 copy, for the
/// instruction set `best_isa()` (or the one given first) picks.
macro_rules! dispatch {
    ($base:ident, $avx2:ident, $avx512:ident, ($($arg:expr),*)) => {
        dispatch!(best_isa(), $base, $avx2, $avx512, ($($arg),*))
    };
    ($isa:expr, $base:ident, $avx2:ident, $avx512:ident, ($($arg:expr),*)) => {
        match $isa {
            // SAFETY: `best_isa` returned Avx512 only after
            // `is_x86_feature_detected!` for "avx512f" and "fma".
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { wide::$avx512($($arg),*) },
            // SAFETY: `best_isa` and `light_isa` return Avx2 only after
            // `is_x86_feature_detected!` for "avx2" and "fma".
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { wide::$avx2($($arg),*) },
            Isa::Baseline => $base($($arg),*),
        }
    };
}

mod extreme;
pub(crate) use extreme::{arg_extreme_rows, extreme_rows};

/// An ad-hoc fused kernel (the recurrent cells) for [`run_wide`]. Mark
/// `run` `#[inline(always)]`: it must be inlined into the wide copies to be
/// compiled with their instruction set (a closure is not reliably inlined,
/// which is why this is a trait).
pub(crate) trait Kernel {
    /// What the kernel returns.
    type Output;
    /// The kernel's work.
    fn run(self) -> Self::Output;
}

#[inline(always)]
fn run_kernel<K: Kernel>(k: K) -> K::Output {
    k.run()
}

/// Runs `k` inside the AVX2 / AVX-512 copy for this CPU, so its loops get
/// the wide vectors and hardware FMA ([`fastmath`](crate::fastmath)
/// functions in it are not library calls).
#[inline]
pub(crate) fn run_wide<K: Kernel>(k: K) -> K::Output {
    dispatch!(run_kernel, run_avx2, run_avx512, (k))
}

/// `dst[i] = f(src[i])` for every element of `dst` (`src` must be at least as long).
#[inline]
pub(crate) fn map<T: Copy, F: Fn(T) -> T>(src: &[T], dst: &mut [MaybeUninit<T>], f: &F) {
    dispatch!(map_kernel, map_avx2, map_avx512, (src, dst, f))
}

/// `f(x)` for one value, run in the dispatched code like a whole slice, so
/// a function built on [`fastmath`](crate::fastmath) gets hardware FMA here
/// too instead of library calls.
#[inline]
pub(crate) fn map_one<T: Copy, F: Fn(T) -> T>(x: T, f: &F) -> T {
    let mut out = [MaybeUninit::uninit()];
    map(&[x], &mut out, f);
    // SAFETY: `map` writes every element of `dst` (or panics).
    unsafe { out[0].assume_init() }
}

/// `dst[i] = f(src[i · stride])` for every element of `dst`.
#[inline]
pub(crate) fn map_strided<T: Copy, F: Fn(T) -> T>(
    src: &[T],
    stride: usize,
    dst: &mut [MaybeUninit<T>],
    f: &F,
) {
    dispatch!(
        map_strided_kernel,
        map_strided_avx2,
        map_strided_avx512,
        (src, stride, dst, f)
    )
}

/// `dst[i] = f(a[i], b[i])`; `a` and `b` must be at least `dst.len()` long.
#[inline]
pub(crate) fn zip<T: Copy, F: Fn(T, T) -> T>(a: &[T], b: &[T], dst: &mut [MaybeUninit<T>], f: &F) {
    dispatch!(zip_kernel, zip_avx2, zip_avx512, (a, b, dst, f))
}

/// [`zip`] for a cheap `f`, with the instruction set of [`light_isa`].
#[inline]
pub(crate) fn zip_light<T: Copy, F: Fn(T, T) -> T>(
    a: &[T],
    b: &[T],
    dst: &mut [MaybeUninit<T>],
    f: &F,
) {
    dispatch!(
        light_isa(),
        zip_kernel,
        zip_avx2,
        zip_avx512,
        (a, b, dst, f)
    )
}

/// [`zip_rhs`] for a cheap `f`, with the instruction set of [`light_isa`].
#[inline]
pub(crate) fn zip_rhs_light<T: Copy, F: Fn(T, T) -> T>(
    a: &[T],
    y: T,
    dst: &mut [MaybeUninit<T>],
    f: &F,
) {
    dispatch!(
        light_isa(),
        zip_rhs_kernel,
        zip_rhs_avx2,
        zip_rhs_avx512,
        (a, y, dst, f)
    )
}

/// [`zip_lhs`] for a cheap `f`, with the instruction set of [`light_isa`].
#[inline]
pub(crate) fn zip_lhs_light<T: Copy, F: Fn(T, T) -> T>(
    x: T,
    b: &[T],
    dst: &mut [MaybeUninit<T>],
    f: &F,
) {
    dispatch!(
        light_isa(),
        zip_lhs_kernel,
        zip_lhs_avx2,
        zip_lhs_avx512,
        (x, b, dst, f)
    )
}

/// `f` of two operands walked row by row (see [`zip_rows_kernel`]), in
/// the instruction set of [`light_isa`] when `light`, else the widest.
#[inline]
pub(crate) fn zip_rows<T: Copy, F: Fn(T, T) -> T>(
    light: bool,
    a: &RowSource<'_, T>,
    b: &RowSource<'_, T>,
    row_len: usize,
    start: usize,
    dst: &mut [MaybeUninit<T>],
    f: &F,
) {
    let isa = if light { light_isa() } else { best_isa() };
    dispatch!(
        isa,
        zip_rows_kernel,
        zip_rows_avx2,
        zip_rows_avx512,
        (a, b, row_len, start, dst, f)
    )
}

/// `dst[i] = if c[i] != zero { t[i] } else { f[i] }`; the inputs must be
/// at least `dst.len()` long.
#[inline]
pub(crate) fn select<T: Copy + PartialEq>(
    c: &[T],
    t: &[T],
    f: &[T],
    zero: T,
    dst: &mut [MaybeUninit<T>],
) {
    dispatch!(
        light_isa(),
        select_kernel,
        select_avx2,
        select_avx512,
        (c, t, f, zero, dst)
    )
}

/// `dst[i] = f(a[i], y)`.
#[inline]
pub(crate) fn zip_rhs<T: Copy, F: Fn(T, T) -> T>(a: &[T], y: T, dst: &mut [MaybeUninit<T>], f: &F) {
    dispatch!(zip_rhs_kernel, zip_rhs_avx2, zip_rhs_avx512, (a, y, dst, f))
}

/// `dst[i] = f(x, b[i])`.
#[inline]
pub(crate) fn zip_lhs<T: Copy, F: Fn(T, T) -> T>(x: T, b: &[T], dst: &mut [MaybeUninit<T>], f: &F) {
    dispatch!(zip_lhs_kernel, zip_lhs_avx2, zip_lhs_avx512, (x, b, dst, f))
}

/// Folds `xs` with an associative `f` from `init`, in a fixed order.
#[inline]
pub(crate) fn fold<T: Copy, F: Fn(T, T) -> T>(xs: &[T], init: T, f: &F) -> T {
    dispatch!(fold_kernel, fold_avx2, fold_avx512, (xs, init, f))
}

/// `dst[i] = f(init, fold(xs[i·row_len..][..row_len], init, f))` for every
/// element of `dst`.
#[inline]
pub(crate) fn fold_rows<T: Copy, F: Fn(T, T) -> T>(
    xs: &[T],
    row_len: usize,
    dst: &mut [MaybeUninit<T>],
    init: T,
    f: &F,
) {
    dispatch!(
        fold_rows_kernel,
        fold_rows_avx2,
        fold_rows_avx512,
        (xs, row_len, dst, init, f)
    )
}

/// Folds `g(x)` over `xs` with an associative `f` from `init`, in the same
/// fixed order as [`fold`].
#[inline]
pub(crate) fn map_fold<T: Copy, G: Fn(T) -> T, F: Fn(T, T) -> T>(
    xs: &[T],
    init: T,
    g: &G,
    f: &F,
) -> T {
    dispatch!(
        map_fold_kernel,
        map_fold_avx2,
        map_fold_avx512,
        (xs, init, g, f)
    )
}

/// `xs[i] = f(xs[i])` in place.
#[inline]
pub(crate) fn map_in_place<T: Copy, F: Fn(T) -> T>(xs: &mut [T], f: &F) {
    dispatch!(
        map_in_place_kernel,
        map_in_place_avx2,
        map_in_place_avx512,
        (xs, f)
    )
}

/// `acc[i] = f(acc[i], src[i])`.
#[inline]
pub(crate) fn accumulate<T: Copy, F: Fn(T, T) -> T>(acc: &mut [T], src: &[T], f: &F) {
    dispatch!(
        accumulate_kernel,
        accumulate_avx2,
        accumulate_avx512,
        (acc, src, f)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastmath::tanh_f32;

    fn data() -> Vec<f32> {
        (0..1003).map(|i| i as f32 * 0.37 - 180.0).collect()
    }

    /// Every path gives the same bits as the plain scalar loop (this reaches
    /// the `unsafe` calls on any AVX2 or AVX-512 machine).
    /// Runs a kernel into a fresh uninitialised buffer of length `n`.
    fn filled(n: usize, k: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
        // SAFETY: every kernel under test writes all of `dst`.
        unsafe { crate::buffer::vec_filled_by(n, k) }
    }

    /// Every path gives the same bits as the plain scalar loop (this reaches
    /// the `unsafe` calls on any AVX2 or AVX-512 machine).
    #[test]
    fn all_paths_match_the_scalar_loop() {
        let xs = data();
        let n = xs.len();
        let f = |x: f32| tanh_f32(x) * 3.0 + x / 7.0;
        let want: Vec<f32> = xs.iter().map(|&x| f(x)).collect();
        assert_eq!(filled(n, |d| map(&xs, d, &f)), want);
        assert_eq!(filled(n, |d| map_kernel(&xs, d, &f)), want);

        let g = |a: f32, b: f32| a * b - a / (b + 1000.0);
        let want: Vec<f32> = xs.iter().map(|&x| g(x, x + 1.0)).collect();
        let ys: Vec<f32> = xs.iter().map(|x| x + 1.0).collect();
        assert_eq!(filled(n, |d| zip(&xs, &ys, d, &g)), want);
        assert_eq!(filled(n, |d| zip_light(&xs, &ys, d, &g)), want);
        assert_eq!(
            filled(n, |d| zip_rhs_light(&xs, 2.5, d, &g)),
            filled(n, |d| zip_rhs_kernel(&xs, 2.5, d, &g))
        );
        assert_eq!(
            filled(n, |d| zip_lhs_light(2.5, &xs, d, &g)),
            filled(n, |d| zip_lhs_kernel(2.5, &xs, d, &g))
        );
        let strided: Vec<f32> = xs.iter().step_by(3).map(|&x| f(x)).collect();
        assert_eq!(
            filled(strided.len(), |d| map_strided(&xs, 3, d, &f)),
            strided
        );
        assert_eq!(map_one(xs[7], &f), want_one(xs[7], f));
        assert_eq!(
            filled(n, |d| zip_rhs(&xs, 2.5, d, &g)),
            xs.iter().map(|&x| g(x, 2.5)).collect::<Vec<_>>()
        );
        assert_eq!(
            filled(n, |d| zip_lhs(2.5, &xs, d, &g)),
            xs.iter().map(|&x| g(2.5, x)).collect::<Vec<_>>()
        );

        let add = |a: f32, b: f32| a + b;
        assert_eq!(fold(&xs, 0.0, &add), fold_kernel(&xs, 0.0, &add));
        let row_len = 37;
        let rows = n / row_len;
        let want: Vec<f32> = xs
            .chunks_exact(row_len)
            .map(|r| add(0.0, fold_kernel(r, 0.0, &add)))
            .collect();
        assert_eq!(
            filled(rows, |d| fold_rows(&xs, row_len, d, 0.0, &add)),
            want
        );
        let sq = |x: f32| x * x;
        assert_eq!(
            map_fold(&xs, 0.0, &sq, &add),
            map_fold_kernel(&xs, 0.0, &sq, &add)
        );
        assert_eq!(
            map_fold(&xs, 0.0, &|x| x, &add),
            fold(&xs, 0.0, &add),
            "map_fold with the identity is fold"
        );
        let mut acc = xs.clone();
        accumulate(&mut acc, &ys, &add);
        assert_eq!(
            acc,
            xs.iter().zip(&ys).map(|(a, b)| a + b).collect::<Vec<_>>()
        );
        println!(
            "simd path on this machine: {:?} (light kernels: {:?})",
            best_isa(),
            light_isa()
        );
    }

    /// `f(x)` in this (baseline) code, where `mul_add` is a library call.
    fn want_one(x: f32, f: impl Fn(f32) -> f32) -> f32 {
        f(x)
    }

    /// A too-short input panics instead of leaving part of `dst` unwritten.
    #[test]
    #[should_panic]
    fn short_input_panics() {
        let xs = [1.0f32; 3];
        filled(4, |d| map(&xs, d, &|x| x));
    }

    #[test]
    fn fold_handles_short_and_empty_slices() {
        let add = |a: f64, b: f64| a + b;
        assert_eq!(fold(&[], 0.0, &add), 0.0);
        assert_eq!(fold(&[1.0, 2.0, 3.0], 0.0, &add), 6.0);
        let xs: Vec<f64> = (1..=17).map(f64::from).collect();
        assert_eq!(fold(&xs, 0.0, &add), 153.0);
    }
}
