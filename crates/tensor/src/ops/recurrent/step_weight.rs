//! The recurrent kernels' per-step product `c = a·b`, where `b` is the same
//! weight matrix at every step (`W_hhᵀ` forward, `W_hh` backward) and `a`
//! has only a part's few rows (16 or so).
//!
//! Why a layout of its own: the GEMM wants a row-major product's right
//! side with its columns contiguous (`b` row-major `[k, n]`, which it reads
//! as the column-major left side of `cᵀ = bᵀ·aᵀ`). Given that, with `n` a
//! multiple of the vector width and only a few rows in `a`, it reads `b` in
//! place; given `W_hh` as it is stored it repacked all of it on every call,
//! and at 16 rows × hidden 128 that packing was as much work as a quarter
//! of the product, paid twice per time step. So `b` is laid out once per
//! sequence and every step reuses it.
//!
//! (An earlier register-tiled kernel of our own, written for the same
//! reason, reached about half the GEMM's rate: `lstm_step` took 15–25%
//! longer with it in interleaved runs on AMD Zen 4.)

use crate::error::Result;
use crate::ops::matmul::gemm_serial;
use crate::{Element, Tensor};

/// A `[k, n]` matrix, row-major and contiguous (see the [module
/// docs](self)).
#[derive(Debug)]
pub(super) struct StepWeight<T: Element> {
    rows: Tensor<T>,
}

impl<T: Element> StepWeight<T> {
    /// The 2-d weight `b` (checked by the callers), made contiguous if it
    /// is not: `W_hh.t()` forward, by the tiled transpose into a pooled
    /// buffer; `W_hh` backward, as it is, without a copy.
    ///
    /// # Errors
    /// If the copy cannot be allocated.
    pub(super) fn new(b: &Tensor<T>, op: &'static str) -> Result<Self> {
        debug_assert_eq!(b.ndim(), 2);
        Ok(StepWeight {
            rows: b.try_to_contiguous(op)?,
        })
    }

    /// `c[m×n] = a[m×k]·b`, where row `i` of `a` is `a[i·a_rs..][..k]` and
    /// `c` is row-major; `c` is overwritten. Runs on the calling thread.
    ///
    /// # Panics
    /// If `a` or `c` is too short.
    pub(super) fn mul_into(&self, m: usize, a: &[T], a_rs: usize, c: &mut [T]) {
        let b = self.rows.as_slice().expect("made contiguous");
        let (k, n) = (self.rows.dims()[0], self.rows.dims()[1]);
        gemm_serial(m, k, n, a, a_rs, 1, b, n, 1, &mut c[..m * n], false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a naive triple loop, over sizes with and without a multiple
    /// of the vector width, with a strided `b` and spaced rows of `a`.
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
            let stored = Tensor::from_vec(b.clone(), &[n, k]).unwrap();
            let weight = StepWeight::new(&stored.t().unwrap(), "test").unwrap();
            let mut c = vec![f64::NAN; m * n];
            weight.mul_into(m, &a, a_rs, &mut c);
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
