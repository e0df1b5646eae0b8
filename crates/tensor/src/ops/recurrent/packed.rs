//! The recurrent kernels' per-step product `c = a·b`, where `b` is the same
//! weight matrix at every step (`W_hhᵀ` forward, `W_hh` backward) and `a`
//! has only a part's few rows (16 or so).
//!
//! Why not the general GEMM: it packs `b` into its cache-friendly panels on
//! every call, and at 16 rows × hidden 128 that packing was as much work as
//! a quarter of the product itself, paid twice per time step. Here `b` is
//! packed once per sequence and every step reuses it.
//!
//! Layout: `b` `[k, n]` is cut into column panels [`NR`] wide; panel `q`
//! holds `b[p][q·NR + j]` at `(q·k + p)·NR + j`, the last panel padded with
//! zeros. A tile of [`MR`] rows of `a` against one panel keeps its `MR × NR`
//! sums in vector registers while it walks `k`.

use crate::simd::Kernel;
use crate::{Element, Tensor};

/// Columns of one panel: two AVX-512 vectors of `f32`.
const NR: usize = 32;

/// Rows of `a` per tile.
const MR: usize = 4;

/// A `[k, n]` matrix packed into column panels (see the [module
/// docs](self)).
#[derive(Debug)]
pub(super) struct PackedB<T: Element> {
    k: usize,
    n: usize,
    /// A tensor only for its buffer, which comes from (and goes back to)
    /// the pool of large buffers: no fresh pages per sequence.
    panels: Tensor<T>,
}

impl<T: Element> PackedB<T> {
    /// Packs `b[p][j] = b[p·b_rs + j·b_cs]` for `p < k`, `j < n`.
    ///
    /// # Panics
    /// If `b` is too short for those strides.
    pub(super) fn new(k: usize, n: usize, b: &[T], b_rs: usize, b_cs: usize) -> Self {
        let count = n.div_ceil(NR);
        // About the size of `b`, which exists, so this allocation fits.
        let mut panels = Tensor::zeros(&[count * k * NR]);
        // `max(1)`: with k = 0 there is nothing to pack (and no chunk).
        for (q, panel) in panels
            .make_mut_slice()
            .chunks_exact_mut((k * NR).max(1))
            .enumerate()
        {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (j, v) in row.iter_mut().enumerate().take(n - q * NR) {
                    *v = b[p * b_rs + (q * NR + j) * b_cs];
                }
            }
        }
        PackedB { k, n, panels }
    }

    /// `c[m×n] = a[m×k]·b`, where row `i` of `a` is `a[i·a_rs..][..k]` and
    /// `c` is row-major; `c` is overwritten.
    ///
    /// # Panics
    /// If `a` or `c` is too short.
    pub(super) fn mul_into(&self, m: usize, a: &[T], a_rs: usize, c: &mut [T]) {
        let c = &mut c[..m * self.n];
        if m == 0 || self.n == 0 {
            return;
        }
        assert!(
            a.len() >= (m - 1) * a_rs + self.k,
            "packed product: a too short"
        );
        crate::simd::run_wide(Product {
            b: self,
            m,
            a,
            a_rs,
            c,
        });
    }
}

/// One [`PackedB::mul_into`], run in the wide-vector copy of the code.
struct Product<'a, T: Element> {
    b: &'a PackedB<T>,
    m: usize,
    a: &'a [T],
    a_rs: usize,
    c: &'a mut [T],
}

impl<T: Element> Kernel for Product<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Product { b, m, a, a_rs, c } = self;
        let k = b.k;
        if k == 0 {
            c.fill(T::ZERO);
            return;
        }
        let panels = b.panels.as_slice().expect("a fresh tensor is contiguous");
        for (q, panel) in panels.chunks_exact(k * NR).enumerate() {
            let cols = q * NR..b.n.min((q + 1) * NR);
            let mut i = 0;
            while i + MR <= m {
                tile::<T, MR>(k, a, a_rs, i, panel, c, b.n, cols.clone());
                i += MR;
            }
            while i < m {
                tile::<T, 1>(k, a, a_rs, i, panel, c, b.n, cols.clone());
                i += 1;
            }
        }
    }
}

/// Rows `i0..i0 + R` of `c`, columns `cols` (within one panel): the sums
/// stay in registers for the whole walk over `k`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tile<T: Element, const R: usize>(
    k: usize,
    a: &[T],
    a_rs: usize,
    i0: usize,
    panel: &[T],
    c: &mut [T],
    n: usize,
    cols: std::ops::Range<usize>,
) {
    let rows: [&[T]; R] = std::array::from_fn(|r| &a[(i0 + r) * a_rs..][..k]);
    let mut acc = [[T::ZERO; NR]; R];
    // Fixed-size arrays throughout, so the compiler sees whole vectors: the
    // sums stay in registers and each row's update is a few vector
    // multiply-adds.
    for (p, bp) in panel.chunks_exact(NR).take(k).enumerate() {
        let bp: &[T; NR] = bp.try_into().expect("chunks are NR long");
        let xs: [T; R] = std::array::from_fn(|r| rows[r][p]);
        for (sums, &x) in acc.iter_mut().zip(&xs) {
            add_scaled(sums, x, bp);
        }
    }
    for (r, sums) in acc.iter().enumerate() {
        c[(i0 + r) * n + cols.start..][..cols.len()].copy_from_slice(&sums[..cols.len()]);
    }
}

/// `sums += x·b`, one row of a tile. A function of its own: written inline
/// in the tile's loop over rows, the same loop was compiled to scalar code.
/// Fused multiply-adds: `sums[j] += x * b[j]` compiled to a multiply and a
/// dependent add, twice the instructions and latency on the hot path.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // the zip form vectorised less reliably
fn add_scaled<T: Element>(sums: &mut [T; NR], x: T, b: &[T; NR]) {
    for j in 0..NR {
        sums[j] = x.mul_add(b[j], sums[j]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a naive triple loop, over sizes that leave partial tiles and
    /// partial panels, with a strided `b` and spaced rows of `a`.
    #[test]
    fn matches_the_naive_product() {
        let value = |i: usize| ((i * 37 + 11) % 23) as f64 / 7.0 - 1.5;
        for (m, k, n) in [
            (1, 1, 1),
            (5, 3, 33),
            (16, 7, 64),
            (7, 40, 31),
            (3, 0, 5),
            (0, 4, 4),
        ] {
            let a_rs = k + 3;
            let a: Vec<f64> = (0..m * a_rs + 1).map(value).collect();
            // b stored transposed: b[p][j] at j·k + p.
            let b: Vec<f64> = (0..k * n).map(|i| value(i + 5)).collect();
            let packed = PackedB::new(k, n, &b, 1, k);
            let mut c = vec![f64::NAN; m * n];
            packed.mul_into(m, &a, a_rs, &mut c);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|p| a[i * a_rs + p] * b[j * k + p]).sum();
                    let got = c[i * n + j];
                    assert!(
                        (got - want).abs() < 1e-12,
                        "{m}x{k}x{n} [{i},{j}]: {got} vs {want}"
                    );
                }
            }
        }
    }
}
