//! Property tests: every reduction (sum, mean, max, min, var, argmax,
//! argmin, logsumexp, softmax) over random axis sets, with and without
//! keepdim, on permuted and sliced inputs with zero-size dimensions.

mod common;

use common::{assert_close, config, strided, Case, Naive};
use proptest::prelude::*;
use tapegrad_tensor::Tensor;

/// A strided case and a subset of its axes.
fn with_axes() -> impl Strategy<Value = (Case, Vec<usize>, bool)> {
    strided(4, 4).prop_flat_map(|c| {
        let r = c.t.ndim();
        (
            Just(c),
            proptest::sample::subsequence((0..r).collect::<Vec<_>>(), 0..=r),
            any::<bool>(),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sum_over_broadcast_axes((c, axes, keep) in with_axes(), copies in 1usize..4, reduce_it in any::<bool>()) {
        // A leading axis of stride 0 (a broadcast), reduced or kept: `sum`
        // takes its length times one slice's sum instead of adding it up.
        let mut shape = vec![copies];
        shape.extend_from_slice(c.t.dims());
        let (t, w) = (c.t.broadcast_to(&shape).unwrap(), c.want.broadcast_to(&shape));
        let mut axes: Vec<usize> = axes.iter().map(|a| a + 1).collect();
        if reduce_it {
            axes.push(0);
        }
        assert_close(&t.sum(&axes, keep).unwrap(), &w.reduce(&axes, keep, 0.0, |a, b| a + b), 0.0);
        // Made contiguous (a broadcast row is one value filled).
        assert_close(&t.to_contiguous(), &w, 0.0);
    }

    #[test]
    fn sum_mean_max_min_var((c, axes, keep) in with_axes()) {
        let w = &c.want;
        // Integer data: sums are exact.
        assert_close(&c.t.sum(&axes, keep).unwrap(), &w.reduce(&axes, keep, 0.0, |a, b| a + b), 0.0);
        assert_close(&c.t.max(&axes, keep).unwrap(), &w.reduce(&axes, keep, f64::NEG_INFINITY, f64::max), 0.0);
        assert_close(&c.t.min(&axes, keep).unwrap(), &w.reduce(&axes, keep, f64::INFINITY, f64::min), 0.0);
        let n: usize = axes.iter().map(|&a| w.shape[a]).product();
        let mean = w.reduce(&axes, keep, 0.0, |a, b| a + b).map(|s| s / n as f64);
        assert_close(&c.t.mean(&axes, keep).unwrap(), &mean, 1e-12);
        // Variance as mean of squares minus square of mean, rescaled.
        let sq = w.map(|x| x * x).reduce(&axes, keep, 0.0, |a, b| a + b);
        for corr in [0usize, 1] {
            let var = Naive {
                shape: mean.shape.clone(),
                data: sq.data.iter().zip(&mean.data)
                    .map(|(&s, &m)| (s - n as f64 * m * m) / (n as f64 - corr as f64))
                    .collect(),
            };
            assert_close(&c.t.var(&axes, keep, corr).unwrap(), &var, 1e-9);
        }
        // logsumexp = ln Σ e^x (values are small, so the naive form is fine).
        let lse = w.map(f64::exp).reduce(&axes, keep, 0.0, |a, b| a + b).map(f64::ln);
        assert_close(&c.t.logsumexp(&axes, keep).unwrap(), &lse, 1e-12);
    }

    #[test]
    fn full_reductions_of_views((c, _, _) in with_axes()) {
        let w = &c.want;
        let s: f64 = w.data.iter().sum();
        prop_assert_eq!(c.t.sum_all()?.item().unwrap(), s);
        prop_assert_eq!(c.t.sum_all()?.ndim(), 0);
        let m = w.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert_eq!(c.t.max_all()?.item().unwrap(), m);
        let m = w.data.iter().copied().fold(f64::INFINITY, f64::min);
        prop_assert_eq!(c.t.min_all()?.item().unwrap(), m);
        if w.numel() > 0 {
            let mean = c.t.mean_all()?.item().unwrap();
            prop_assert!((mean - s / w.numel() as f64).abs() < 1e-12);
        }
    }

    #[test]
    fn argmax_argmin_softmax_along_an_axis(c in strided(4, 4), axis in 0usize..4, keep in any::<bool>()) {
        if c.t.ndim() == 0 {
            return Ok(());
        }
        let axis = axis % c.t.ndim();
        let w = &c.want;
        if w.shape[axis] == 0 {
            prop_assert!(c.t.argmax(axis, keep).is_err());
            return Ok(());
        }
        // Reference: first index of the extreme value.
        let arg = |better: fn(f64, f64) -> bool| {
            let mut shape = w.shape.clone();
            shape[axis] = 1;
            let full = Naive::from_fn(&shape, |j| {
                let mut idx = j.to_vec();
                let mut best = 0;
                for i in 0..w.shape[axis] {
                    idx[axis] = i;
                    let x = w.get(&idx);
                    idx[axis] = best;
                    if better(x, w.get(&idx)) {
                        best = i;
                    }
                }
                best as f64
            });
            if keep { full } else {
                shape.remove(axis);
                Naive { shape, data: full.data }
            }
        };
        assert_close(&c.t.argmax(axis, keep).unwrap(), &arg(|x, b| x > b), 0.0);
        assert_close(&c.t.argmin(axis, keep).unwrap(), &arg(|x, b| x < b), 0.0);
        // Softmax: exp / sum of exp along the axis; log_softmax is its log.
        let e = w.map(f64::exp);
        let s = e.reduce(&[axis], true, 0.0, |a, b| a + b);
        let sm = Naive::from_fn(&w.shape, |j| {
            let mut k = j.to_vec();
            k[axis] = 0;
            e.get(j) / s.get(&k)
        });
        assert_close(&c.t.softmax(axis).unwrap(), &sm, 1e-12);
        assert_close(&c.t.log_softmax(axis).unwrap(), &sm.map(f64::ln), 1e-12);
    }
}

#[test]
fn bad_axes_are_errors() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    assert_eq!(
        a.sum(&[2], false).unwrap_err().to_string(),
        "sum: axis 2 is out of range for shape [2, 3] (rank 2)"
    );
    assert_eq!(
        a.max(&[1, 1], false).unwrap_err().to_string(),
        "max: axis 1 is listed twice in [1, 1]"
    );
    assert_eq!(
        Tensor::<f32>::zeros(&[2, 0])
            .argmax(1, false)
            .unwrap_err()
            .to_string(),
        "argmax: axis 1 of shape [2, 0] is empty"
    );
}

#[test]
fn stable_at_plus_minus_100() {
    let x = Tensor::from_vec(vec![-100.0f32, -20.0, 0.0, 20.0, 100.0], &[5]).unwrap();
    for t in [x.sigmoid(), x.softplus(), x.tanh(), x.exp()] {
        let t = t.unwrap();
        assert!(t.to_vec().iter().all(|v| !v.is_nan()), "{t}");
    }
    assert_eq!(x.sigmoid().unwrap().to_vec()[4], 1.0);
    assert!(x.sigmoid().unwrap().to_vec()[0] >= 0.0);
    let sp = x.softplus().unwrap().to_vec();
    assert_eq!(sp[4], 100.0);
    assert!(sp[0] > 0.0 && sp[0] < 1e-40);
    let lse = x.logsumexp(&[0], false).unwrap().item().unwrap();
    assert!((lse - 100.0).abs() < 1e-5, "{lse}");
    let big = Tensor::from_vec(vec![1000.0f64, 1000.0, -1000.0], &[3]).unwrap();
    let lse = big.logsumexp(&[0], false).unwrap().item().unwrap();
    assert!((lse - (1000.0 + 2f64.ln())).abs() < 1e-12);
    let sm = big.softmax(0).unwrap().to_vec();
    assert_eq!(sm, vec![0.5, 0.5, 0.0]);
    // All -inf gives -inf, not NaN.
    let ninf = Tensor::<f64>::full(&[3], f64::NEG_INFINITY);
    assert_eq!(
        ninf.logsumexp(&[0], false).unwrap().item().unwrap(),
        f64::NEG_INFINITY
    );
}
