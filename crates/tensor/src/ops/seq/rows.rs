//! The row kernels of the sequence ops (masked softmax and its backward,
//! layer norm forward and backward), run in the widest instruction set.
//!
//! Why a module of its own: these loops ran as plain closures compiled for
//! baseline x86-64, where `exp_fast` calls the C library's `fmaf` and the
//! `f64` sums ran one element at a time (~10% of a `transformer_step`).
//! Here each block of rows is a [`Kernel`] run through
//! [`simd::run_wide`](crate::simd::run_wide), so the loops get AVX-512 lanes
//! and hardware FMA. Sums use [`LANES`] interleaved accumulators: a single
//! running sum is a dependency chain that LLVM may not reorder, so it would
//! stay scalar. The association order is fixed by this source, so results
//! do not depend on the instruction set or the thread count.

use crate::parallel::{for_each_chunk, use_parallel};
#[cfg(doc)]
use crate::simd::run_wide;
use crate::simd::Kernel;
use crate::Element;

/// Interleaved accumulators per reduction.
const LANES: usize = 8;

/// Elements per block of rows handed to one task.
const BLOCK: usize = 16_384;

/// `Σ f(j)` for `j < n`, with [`LANES`] interleaved partial sums added
/// pairwise at the end.
#[inline(always)]
fn lane_sum<S: Element>(n: usize, f: impl Fn(usize) -> S) -> S {
    let mut acc = [S::ZERO; LANES];
    let whole = n - n % LANES;
    for base in (0..whole).step_by(LANES) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(base + l);
        }
    }
    for (l, j) in (whole..n).enumerate() {
        acc[l] += f(j);
    }
    let [a, b, c, d, e, g, h, i] = acc;
    ((a + b) + (c + d)) + ((e + g) + (h + i))
}

/// The largest `f(j)` for `j < n` (`-inf` for none), with [`LANES`]
/// interleaved maxima.
#[inline(always)]
fn lane_max<T: Element>(n: usize, f: impl Fn(usize) -> T) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let whole = n - n % LANES;
    for base in (0..whole).step_by(LANES) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a = a.max_val(f(base + l));
        }
    }
    for (l, j) in (whole..n).enumerate() {
        acc[l] = acc[l].max_val(f(j));
    }
    acc.iter().fold(T::NEG_INFINITY, |m, &v| m.max_val(v))
}

/// Runs `block(first_row, rows_out)` over blocks of whole rows (width `d`)
/// of `out`, on the thread pool when large; `block` should hand one of the
/// kernels below to [`run_wide`]. Each row's result depends only
/// on that row, so the cut does not change the result.
pub(super) fn for_row_blocks<T: Element>(
    d: usize,
    out: &mut [T],
    block: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if d > 0 && use_parallel(out.len()) {
        let rows_per_block = (BLOCK / d).max(1);
        for_each_chunk(out, rows_per_block * d, |start, part| {
            block(start / d, part)
        });
    } else if d > 0 {
        block(0, out);
    }
}

/// [`for_row_blocks`] for a kernel that also writes one `S` per row into
/// `per_row` (`out` has `per_row.len()` rows of width `d`).
pub(super) fn for_row_blocks_with<T: Element, S: Send>(
    d: usize,
    out: &mut [T],
    per_row: &mut [S],
    block: impl Fn(usize, &mut [T], &mut [S]) + Sync + Send,
) {
    if d == 0 {
        return;
    }
    if !use_parallel(out.len()) {
        block(0, out, per_row);
        return;
    }
    let rows_per_block = (BLOCK / d).max(1);
    let mut blocks: Vec<(&mut [T], &mut [S])> = out
        .chunks_mut(rows_per_block * d)
        .zip(per_row.chunks_mut(rows_per_block))
        .collect();
    for_each_chunk(&mut blocks, 1, |b, one| {
        for (o, s) in one.iter_mut() {
            block(b * rows_per_block, o, s);
        }
    });
}

/// Softmax over each row of `out` among the positions where the keep mask
/// is non-zero (0 elsewhere; a row with nothing kept, or whose kept scores
/// are all `-inf`, stays 0). Row `r` of the block reads scores row
/// `first + r` and mask row `(first + r) mod mask_rows`.
pub(super) struct SoftmaxMasked<'a, T> {
    pub xs: &'a [T],
    pub keep: &'a [T],
    pub mask_rows: usize,
    pub d: usize,
    pub first: usize,
    pub out: &'a mut [T],
}

impl<T: Element> Kernel for SoftmaxMasked<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let d = self.d;
        for (r, o) in self.out.chunks_exact_mut(d).enumerate() {
            let row = self.first + r;
            let x = &self.xs[row * d..][..d];
            let k = &self.keep[(row % self.mask_rows) * d..][..d];
            let kept = |j: usize| k[j] != T::ZERO;
            let m = lane_max(d, |j| if kept(j) { x[j] } else { T::NEG_INFINITY });
            if m == T::NEG_INFINITY {
                o.fill(T::ZERO);
                continue;
            }
            // Both sides of the select are computed (a blend, not a branch).
            for j in 0..d {
                let e = (x[j] - m).exp_fast();
                o[j] = if kept(j) { e } else { T::ZERO };
            }
            let inv = T::ONE / lane_sum(d, |j| o[j]);
            for v in o.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// The softmax backward pass over rows: `o = y·(g − Σ g·y)` per row, for
/// output `y` and its gradient `g` (masked positions have `y = 0`, so they
/// get 0).
pub(super) struct SoftmaxBackward<'a, T> {
    pub ys: &'a [T],
    pub gs: &'a [T],
    pub d: usize,
    pub first: usize,
    pub out: &'a mut [T],
}

impl<T: Element> Kernel for SoftmaxBackward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let d = self.d;
        for (r, o) in self.out.chunks_exact_mut(d).enumerate() {
            let row = self.first + r;
            let (y, g) = (&self.ys[row * d..][..d], &self.gs[row * d..][..d]);
            let dot = lane_sum(d, |j| g[j] * y[j]);
            for j in 0..d {
                o[j] = y[j] * (g[j] - dot);
            }
        }
    }
}

/// Mean and `1/√(var + eps)` of one row, in `f64` (two passes: the
/// variance of `x − mean`, which does not cancel for rows far from 0).
#[inline(always)]
pub(super) fn row_stats<T: Element>(row: &[T], eps: f64) -> (f64, f64) {
    let d = row.len();
    let mean = lane_sum(d, |j| row[j].to_f64()) / d as f64;
    let var = lane_sum(d, |j| {
        let c = row[j].to_f64() - mean;
        c * c
    }) / d as f64;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Layer norm of each row: `x̂·w + b` with `x̂ = (x − mean)·rstd`. Pass
/// `w = 1`, `b = −0` for no affine part (`v·1 + (−0) = v` for every `v`,
/// the sign of zero included).
pub(super) struct LayerNorm<'a, T> {
    pub xs: &'a [T],
    pub w: &'a [T],
    pub b: &'a [T],
    pub eps: f64,
    pub first: usize,
    pub out: &'a mut [T],
}

impl<T: Element> Kernel for LayerNorm<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let d = self.w.len();
        for (r, o) in self.out.chunks_exact_mut(d).enumerate() {
            let x = &self.xs[(self.first + r) * d..][..d];
            let (mean, rstd) = row_stats(x, self.eps);
            for j in 0..d {
                let v = T::from_f64((x[j].to_f64() - mean) * rstd);
                o[j] = v * self.w[j] + self.b[j];
            }
        }
    }
}

/// The layer norm backward pass for the input, per row: with `ĝ = g·w`,
/// `dx = (ĝ − mean ĝ − x̂·mean(ĝ·x̂))·rstd`; also stores each row's
/// `(mean, rstd)` in `stats` for the parameter gradients.
pub(super) struct LayerNormBackward<'a, T> {
    pub xs: &'a [T],
    pub gs: &'a [T],
    pub w: &'a [f64],
    pub eps: f64,
    pub first: usize,
    pub dx: &'a mut [T],
    pub stats: &'a mut [(f64, f64)],
}

impl<T: Element> Kernel for LayerNormBackward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (d, w) = (self.w.len(), self.w);
        let rows = self.dx.chunks_exact_mut(d).zip(self.stats.iter_mut());
        for (r, (o, st)) in rows.enumerate() {
            let row = self.first + r;
            let (x, g) = (&self.xs[row * d..][..d], &self.gs[row * d..][..d]);
            let (mean, rstd) = row_stats(x, self.eps);
            *st = (mean, rstd);
            let xhat = |j: usize| (x[j].to_f64() - mean) * rstd;
            let m_g = lane_sum(d, |j| g[j].to_f64() * w[j]) / d as f64;
            let m_gx = lane_sum(d, |j| g[j].to_f64() * w[j] * xhat(j)) / d as f64;
            for j in 0..d {
                let gh = g[j].to_f64() * w[j];
                o[j] = T::from_f64((gh - m_g - xhat(j) * m_gx) * rstd);
            }
        }
    }
}

/// The layer norm parameter gradients, column sums over all rows in `f64`:
/// `dw += g·x̂`, `db += g`, from the rows' stored `(mean, rstd)`. Rows are
/// added in order, so the sums do not depend on the thread count.
pub(super) struct LayerNormParamGrads<'a, T> {
    pub xs: &'a [T],
    pub gs: &'a [T],
    pub stats: &'a [(f64, f64)],
    pub dw: &'a mut [f64],
    pub db: &'a mut [f64],
}

impl<T: Element> Kernel for LayerNormParamGrads<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let d = self.dw.len();
        for (r, &(mean, rstd)) in self.stats.iter().enumerate() {
            let (x, g) = (&self.xs[r * d..][..d], &self.gs[r * d..][..d]);
            for j in 0..d {
                let gv = g[j].to_f64();
                self.dw[j] += gv * ((x[j].to_f64() - mean) * rstd);
                self.db[j] += gv;
            }
        }
    }
}
