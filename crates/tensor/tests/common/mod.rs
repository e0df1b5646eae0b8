//! Shared helpers for the property tests: a naive N-d array that computes
//! everything index by index, and proptest strategies that build strided
//! tensors (sliced with steps, offset, permuted) together with their naive
//! twins.

#![allow(dead_code)]

use proptest::prelude::*;
use tapegrad_tensor::Tensor;

/// Proptest settings shared by the property tests: few enough cases that
/// the suite stays fast in release mode.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A row-major array with the obvious meaning; the test oracle.
#[derive(Clone, Debug, PartialEq)]
pub struct Naive {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Every multi-index of `shape`, in row-major order.
pub fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    for mut k in 0..n {
        let mut idx = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            idx[d] = k % shape[d];
            k /= shape[d];
        }
        out.push(idx);
    }
    out
}

/// Row-major position of `idx` in `shape`.
pub fn flat(shape: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

impl Naive {
    pub fn from_fn(shape: &[usize], mut f: impl FnMut(&[usize]) -> f64) -> Naive {
        let data = indices(shape).iter().map(|i| f(i)).collect();
        Naive {
            shape: shape.to_vec(),
            data,
        }
    }

    pub fn get(&self, idx: &[usize]) -> f64 {
        self.data[flat(&self.shape, idx)]
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    pub fn tensor(&self) -> Tensor<f64> {
        Tensor::from_vec(self.data.clone(), &self.shape).unwrap()
    }

    pub fn permute(&self, perm: &[usize]) -> Naive {
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        Naive::from_fn(&shape, |j| {
            let mut src = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                src[p] = j[i];
            }
            self.get(&src)
        })
    }

    pub fn slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Naive {
        let mut shape = self.shape.clone();
        shape[axis] = (start..end).step_by(step).count();
        Naive::from_fn(&shape, |j| {
            let mut src = j.to_vec();
            src[axis] = start + j[axis] * step;
            self.get(&src)
        })
    }

    pub fn select(&self, axis: usize, index: usize) -> Naive {
        let mut shape = self.shape.clone();
        shape.remove(axis);
        Naive::from_fn(&shape, |j| {
            let mut src = j.to_vec();
            src.insert(axis, index);
            self.get(&src)
        })
    }

    pub fn broadcast_to(&self, shape: &[usize]) -> Naive {
        let lead = shape.len() - self.shape.len();
        Naive::from_fn(shape, |j| {
            let src: Vec<usize> = (0..self.shape.len())
                .map(|d| if self.shape[d] == 1 { 0 } else { j[lead + d] })
                .collect();
            self.get(&src)
        })
    }

    pub fn map(&self, f: impl Fn(f64) -> f64) -> Naive {
        Naive {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&x| f(x)).collect(),
        }
    }

    /// Folds `axes` (sorted or not) with `f` from `init`, optionally keeping
    /// them as length-1 axes.
    pub fn reduce(
        &self,
        axes: &[usize],
        keepdim: bool,
        init: f64,
        f: impl Fn(f64, f64) -> f64,
    ) -> Naive {
        let kept_shape: Vec<usize> = (0..self.shape.len())
            .map(|d| if axes.contains(&d) { 1 } else { self.shape[d] })
            .collect();
        let mut acc = vec![init; kept_shape.iter().product()];
        for idx in indices(&self.shape) {
            let o: Vec<usize> = (0..idx.len())
                .map(|d| if axes.contains(&d) { 0 } else { idx[d] })
                .collect();
            let k = flat(&kept_shape, &o);
            acc[k] = f(acc[k], self.get(&idx));
        }
        let shape = if keepdim {
            kept_shape
        } else {
            (0..self.shape.len())
                .filter(|d| !axes.contains(d))
                .map(|d| self.shape[d])
                .collect()
        };
        Naive { shape, data: acc }
    }
}

/// Integer-valued pseudo-random data, so sums and products are exact in f64.
pub fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n as u64)
        .map(|k| {
            let h = (k.wrapping_add(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 40;
            (h % 41) as f64 - 20.0
        })
        .collect()
}

/// A tensor of exactly `shape` that is (usually) a non-contiguous view: it
/// is carved out of a larger buffer with per-axis offsets and steps, then
/// its axes are permuted. Returned with its naive twin.
#[derive(Clone, Debug)]
pub struct Case {
    pub t: Tensor<f64>,
    pub want: Naive,
}

pub fn strided_with_shape(shape: Vec<usize>) -> impl Strategy<Value = Case> {
    let r = shape.len();
    let perm = Just((0..r).collect::<Vec<usize>>()).prop_shuffle();
    (
        perm,
        proptest::collection::vec((0usize..3, 1usize..4, 0usize..2), r),
        any::<u64>(),
    )
        .prop_map(move |(perm, cuts, seed)| build_case(&shape, &perm, &cuts, seed))
}

/// Builds the case for `strided_with_shape`: axis `i` of the result is axis
/// `perm[i]` of a view that takes `start, start+step, …` along each axis of
/// a base buffer padded by `extra`.
pub fn build_case(
    shape: &[usize],
    perm: &[usize],
    cuts: &[(usize, usize, usize)],
    seed: u64,
) -> Case {
    let r = shape.len();
    // Pre-permutation shape: q[perm[i]] = shape[i].
    let mut q = vec![0; r];
    for i in 0..r {
        q[perm[i]] = shape[i];
    }
    let big: Vec<usize> = (0..r)
        .map(|a| {
            let (start, step, extra) = cuts[a];
            if q[a] == 0 {
                start + extra
            } else {
                start + (q[a] - 1) * step + 1 + extra
            }
        })
        .collect();
    let base = Naive {
        shape: big.clone(),
        data: values(big.iter().product(), seed),
    };
    let mut t = base.tensor();
    let mut want = base.clone();
    for a in 0..r {
        let (start, step, _) = cuts[a];
        let end = if q[a] == 0 {
            start
        } else {
            start + (q[a] - 1) * step + 1
        };
        t = t.slice(a, start, end, step).unwrap();
        want = want.slice(a, start, end, step);
    }
    let t = t.permute(perm).unwrap();
    let want = want.permute(perm);
    assert_eq!(t.shape(), shape);
    Case { t, want }
}

/// A shape of rank `0..=max_rank` with dimensions `0..=max_dim` (zero-size
/// dimensions appear but are rarer than others).
pub fn shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(
        prop_oneof![1 => Just(0usize), 8 => 1..=max_dim],
        0..=max_rank,
    )
}

/// A strided tensor of a random shape.
pub fn strided(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Case> {
    shape(max_rank, max_dim).prop_flat_map(strided_with_shape)
}

/// Checks a tensor against its naive twin: same shape, values equal within
/// `tol` (absolute, scaled by magnitude); NaNs must match.
pub fn assert_close(got: &Tensor<f64>, want: &Naive, tol: f64) {
    assert_eq!(got.shape(), want.shape.as_slice(), "shape");
    for (k, (g, w)) in got.to_vec().iter().zip(&want.data).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tol * (1.0 + w.abs());
        assert!(
            ok,
            "element {k}: got {g}, want {w} (shape {:?})",
            want.shape
        );
    }
}
