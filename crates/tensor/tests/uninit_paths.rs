//! Every kernel that writes into an uninitialised output buffer, on each of
//! its paths (single element, contiguous, strided serial, strided parallel,
//! GEMM), checked against a naive index-by-index computation; and user
//! closures that panic part-way through a buffer, which must unwind cleanly.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tapegrad_tensor::Tensor;

/// Large enough for the parallel paths (`PAR_THRESHOLD` is 32768).
const BIG: usize = 256;

fn t(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform_seeded(shape, -2.0, 2.0, seed)
}

/// Every multi-index of `shape` in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &d in shape {
        out = out
            .into_iter()
            .flat_map(|p| {
                (0..d).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    out
}

/// `a[idx]` with `idx` aligned from the right and broadcast.
fn at(a: &Tensor<f64>, idx: &[usize]) -> f64 {
    let lead = idx.len() - a.ndim();
    let i: Vec<usize> = (0..a.ndim())
        .map(|d| if a.shape()[d] == 1 { 0 } else { idx[lead + d] })
        .collect();
    a.get(&i).unwrap()
}

fn check_zip(a: &Tensor<f64>, b: &Tensor<f64>) {
    let c = a.zip_with(b, "test", |x, y| x * 3.0 - y).unwrap();
    for idx in indices(c.dims()) {
        assert_eq!(c.get(&idx).unwrap(), at(a, &idx) * 3.0 - at(b, &idx));
    }
}

fn check_map(a: &Tensor<f64>) {
    let c = a.map(|x| x * x + 1.0).unwrap();
    assert_eq!(c.shape(), a.shape());
    for idx in indices(a.dims()) {
        let x = a.get(&idx).unwrap();
        assert_eq!(c.get(&idx).unwrap(), x * x + 1.0);
    }
}

#[test]
fn map_every_path() {
    check_map(&Tensor::scalar(1.5)); // inline scalar
    check_map(&t(&[1, 1], 1)); // one element, rank 2
    check_map(&t(&[5, 7], 2)); // contiguous
    check_map(&t(&[5, 7], 3).t().unwrap()); // strided, serial
    check_map(&t(&[6, 7], 4).slice(1, 1, 7, 2).unwrap()); // gaps, serial
    check_map(&t(&[BIG, BIG], 5)); // contiguous, parallel
    check_map(&t(&[BIG, BIG], 6).t().unwrap()); // strided, parallel
    check_map(&t(&[0, 3], 7)); // empty
    check_map(&t(&[4, 0], 7).t().unwrap()); // empty, strided
}

#[test]
fn zip_every_path() {
    let s = Tensor::scalar(0.5);
    check_zip(&s, &s);
    check_zip(&t(&[1, 1], 1), &s);
    check_zip(&s, &t(&[1, 1, 1], 1));
    check_zip(&t(&[5, 7], 2), &t(&[5, 7], 3)); // contiguous
    check_zip(&t(&[5, 7], 2), &s); // tensor · scalar
    check_zip(&s, &t(&[5, 7], 2)); // scalar · tensor
    check_zip(&t(&[5, 7], 2), &t(&[7], 3)); // row broadcast, serial
    check_zip(&t(&[5, 1], 2), &t(&[7], 3)); // outer product, serial
    check_zip(&t(&[7, 5], 2).t().unwrap(), &t(&[5, 7], 3)); // strided
    check_zip(&t(&[BIG, BIG], 2), &t(&[BIG, BIG], 3)); // contiguous, parallel
    check_zip(&t(&[BIG, BIG], 2), &s); // scalar rhs, parallel
    check_zip(&s, &t(&[BIG, BIG], 2)); // scalar lhs, parallel
    check_zip(&t(&[BIG, BIG], 2), &t(&[BIG], 3)); // broadcast, parallel
    check_zip(&t(&[BIG, BIG], 2).t().unwrap(), &t(&[BIG, 1], 3)); // strided, parallel
                                                                  // Rank 3 after merging axes (the row starts are listed), parallel, in
                                                                  // both orders and with a sliced operand.
    check_zip(&t(&[4, 130, 70], 2), &t(&[4, 1, 70], 3));
    check_zip(&t(&[4, 1, 70], 3), &t(&[4, 130, 70], 2));
    let sliced = t(&[4, 130, 90], 4).narrow(2, 5, 70).unwrap();
    check_zip(&sliced, &t(&[130, 1], 5));
    check_zip(&t(&[0, 3], 2), &t(&[3], 3)); // empty
}

#[test]
fn where_every_path() {
    for (shape, row) in [
        (vec![1, 1], vec![1]),
        (vec![5, 7], vec![7]),
        (vec![BIG, BIG], vec![BIG]),
    ] {
        let c = t(&shape, 1).gt_scalar(0.0).unwrap();
        let (x, y) = (t(&shape, 2), t(&row, 3));
        let r = c.where_cond(&x, &y).unwrap();
        for idx in indices(r.dims()) {
            let want = if c.get(&idx).unwrap() != 0.0 {
                x.get(&idx).unwrap()
            } else {
                at(&y, &idx)
            };
            assert_eq!(r.get(&idx).unwrap(), want);
        }
    }
}

fn naive_matmul(a: &Tensor<f64>, b: &Tensor<f64>) -> Vec<f64> {
    let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[i * n + j] += a.get(&[i, p]).unwrap() * b.get(&[p, j]).unwrap();
            }
        }
    }
    c
}

#[test]
fn matmul_every_path() {
    let close = |got: Vec<f64>, want: Vec<f64>| {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9 * (1.0 + w.abs()), "{g} vs {w}");
        }
    };
    for (m, k, n) in [
        (3, 4, 5),
        (1, 16, 16),
        (32, 16, 16),
        (64, 64, 64),
        (40, 300, 50),
    ] {
        let (a, b) = (t(&[m, k], 1), t(&[k, n], 2));
        close(a.matmul(&b).unwrap().to_vec(), naive_matmul(&a, &b));
        // Transposed operands: strided reads, packing in the small kernel.
        let (at_, bt) = (t(&[k, m], 3).t().unwrap(), t(&[n, k], 4).t().unwrap());
        close(at_.matmul(&bt).unwrap().to_vec(), naive_matmul(&at_, &bt));
        // Batched, with a broadcast batch axis.
        let a3 = Tensor::stack(&[&a, &at_], 0).unwrap();
        let c = a3.matmul(&b).unwrap();
        let mut want = naive_matmul(&a, &b);
        want.extend(naive_matmul(&at_, &b));
        close(c.to_vec(), want);
    }
    // k = 0 gives zeros.
    let z = t(&[3, 0], 1).matmul(&t(&[0, 4], 2)).unwrap();
    assert_eq!(z.to_vec(), vec![0.0; 12]);
    let z = t(&[2, 3, 0], 1).matmul(&t(&[0, 4], 2)).unwrap();
    assert_eq!(z.to_vec(), vec![0.0; 24]);
    // Vector forms.
    let v = t(&[4], 5);
    let m = t(&[4, 4], 6);
    assert_eq!(v.matmul(&v).unwrap().shape(), &[] as &[usize]);
    assert_eq!(v.matmul(&m).unwrap().shape(), &[4]);
    assert_eq!(m.matmul(&v).unwrap().shape(), &[4]);
}

#[test]
fn row_reductions_every_path() {
    for shape in [
        vec![5, 7],
        vec![3, 4, 5],
        vec![BIG, BIG],
        vec![4, BIG * BIG],
    ] {
        let a = t(&shape, 9);
        let last = shape.len() - 1;
        let s = a.sum(&[last], false).unwrap();
        let want = a.t().unwrap().to_contiguous(); // reference via another path
        let _ = want;
        for idx in indices(s.dims()) {
            let mut tot = 0.0;
            for i in 0..shape[last] {
                let mut full = idx.clone();
                full.push(i);
                tot += a.get(&full).unwrap();
            }
            assert!((s.get(&idx).unwrap() - tot).abs() < 1e-9 * (1.0 + tot.abs()));
        }
    }
    assert_eq!(
        Tensor::scalar(2.0f32).sum_all().unwrap().item().unwrap(),
        2.0
    );
    assert_eq!(
        Tensor::<f32>::ones(&[1, 1])
            .max(&[1], true)
            .unwrap()
            .shape(),
        &[1, 1]
    );
}

/// A closure that panics part-way through the output: the buffer (with
/// length 0, nothing initialised read) is dropped during unwinding.
#[test]
fn panicking_closures_unwind_cleanly() {
    let inputs = [
        t(&[5, 7], 1),
        t(&[5, 7], 1).t().unwrap(),
        t(&[BIG, BIG], 1),
        t(&[BIG, BIG], 1).t().unwrap(),
    ];
    for a in &inputs {
        let r = catch_unwind(AssertUnwindSafe(|| {
            a.map(|x| if x > 1.0 { panic!("boom") } else { x })
        }));
        assert!(r.is_err());
        for b in [a.clone(), Tensor::scalar(1.0), t(&[a.shape()[1]], 2)] {
            let r = catch_unwind(AssertUnwindSafe(|| {
                a.zip_with(
                    &b,
                    "boom",
                    |x, y| if x > 1.0 { panic!("boom") } else { x + y },
                )
            }));
            assert!(r.is_err());
        }
    }
    // And on a single element.
    let r = catch_unwind(|| Tensor::scalar(1.0f32).map(|_| panic!("boom")));
    assert!(r.is_err());
}

/// The fused softmax family on every path (last axis, other axis, serial,
/// parallel) against an `f64` reference, with entries at ±100 and `-inf`.
#[test]
fn fused_softmax_family_every_path() {
    for (shape, axis) in [
        (vec![4, 9], 1),
        (vec![4, 9], 0),
        (vec![3, 5, 7], 1),
        (vec![BIG, BIG], 1),
        (vec![BIG, BIG], 0),
        (vec![2, 0], 1),
    ] {
        let n: usize = shape.iter().product();
        let data: Vec<f64> = (0..n)
            .map(|i| match i % 11 {
                0 => 100.0,
                3 => -100.0,
                5 if i % 3 == 0 => f64::NEG_INFINITY,
                k => k as f64 * 0.37 - 1.5,
            })
            .collect();
        let x64 = Tensor::from_vec(data, &shape).unwrap();
        let x32: Tensor<f32> = x64.cast();
        // Reference: naive per-slice formulas in f64.
        let m = x64.max(&[axis], true).unwrap();
        let e = x64.zip_with(&m, "ref", |v, m| (v - m).exp()).unwrap();
        let s = e.sum(&[axis], true).unwrap();
        let sm = e.div(&s).unwrap();
        let lse = s.ln().unwrap().add(&m).unwrap();
        let lsm = x64.sub(&lse).unwrap();
        let close = |got: Tensor<f32>, want: &Tensor<f64>| {
            assert_eq!(got.shape(), want.shape());
            for (g, w) in got.to_vec().iter().zip(want.to_vec()) {
                let g = *g as f64;
                assert!(
                    g == w || (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{g} vs {w}"
                );
            }
        };
        close(x32.softmax(axis).unwrap(), &sm);
        close(x32.log_softmax(axis).unwrap(), &lsm);
        close(x32.logsumexp(&[axis], true).unwrap(), &lse);
        // Softmax rows sum to 1.
        if n > 0 {
            let tot = x32.softmax(axis).unwrap().sum(&[axis], false).unwrap();
            assert!(tot.to_vec().iter().all(|t| (t - 1.0).abs() < 1e-5));
        }
    }
    // An all -inf slice: logsumexp is -inf.
    let z = Tensor::<f32>::full(&[2, 3], f32::NEG_INFINITY);
    assert!(z
        .logsumexp(&[1], false)
        .unwrap()
        .to_vec()
        .iter()
        .all(|v| *v == f32::NEG_INFINITY));
}
