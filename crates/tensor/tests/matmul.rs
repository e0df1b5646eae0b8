//! Property tests: matmul against a naive triple loop on strided
//! (transposed, sliced) and batched / broadcast-batch operands, including
//! the vector cases and zero-size dimensions.

mod common;

use common::{build_case, config, values, Case, Naive};
use proptest::prelude::*;
use tapegrad_tensor::Tensor;

/// An operand of `shape` that is contiguous, transposed (last two axes
/// swapped in memory) or carved out with steps, chosen by `kind`.
fn operand(shape: &[usize], kind: u8, seed: u64) -> Case {
    let r = shape.len();
    let mut perm: Vec<usize> = (0..r).collect();
    let cuts: Vec<(usize, usize, usize)> = match kind % 3 {
        0 => vec![(0, 1, 0); r],
        1 => {
            if r >= 2 {
                perm.swap(r - 2, r - 1);
            }
            vec![(0, 1, 0); r]
        }
        _ => (0..r).map(|a| (a % 2, 1 + a % 2, 1)).collect(),
    };
    build_case(shape, &perm, &cuts, seed)
}

/// `[.., m, k] · [.., k, n]` by the definition, after NumPy's promotion of
/// 1-d operands and broadcasting of batch axes.
fn naive_matmul(a: &Naive, b: &Naive) -> Naive {
    let a2 = if a.shape.len() == 1 {
        Naive {
            shape: vec![1, a.shape[0]],
            data: a.data.clone(),
        }
    } else {
        a.clone()
    };
    let b2 = if b.shape.len() == 1 {
        Naive {
            shape: vec![b.shape[0], 1],
            data: b.data.clone(),
        }
    } else {
        b.clone()
    };
    let (ra, rb) = (a2.shape.len(), b2.shape.len());
    let (m, k, n) = (a2.shape[ra - 2], a2.shape[ra - 1], b2.shape[rb - 1]);
    let (ba, bb) = (&a2.shape[..ra - 2], &b2.shape[..rb - 2]);
    let r = ba.len().max(bb.len());
    let dim = |s: &[usize], d: usize| {
        if d + s.len() >= r {
            s[d + s.len() - r]
        } else {
            1
        }
    };
    let batch: Vec<usize> = (0..r)
        .map(|d| {
            if dim(ba, d) == 1 {
                dim(bb, d)
            } else {
                dim(ba, d)
            }
        })
        .collect();
    let mut full = batch.clone();
    full.extend([m, n]);
    let mut out = Naive::from_fn(&full, |idx| {
        let bi = &idx[..r];
        let pick = |s: &[usize]| -> Vec<usize> {
            (0..s.len())
                .map(|d| if s[d] == 1 { 0 } else { bi[d + r - s.len()] })
                .collect()
        };
        let (mut ia, mut ib) = (pick(ba), pick(bb));
        let (i, j) = (idx[r], idx[r + 1]);
        let mut acc = 0.0;
        for p in 0..k {
            ia.extend([i, p]);
            ib.extend([p, j]);
            acc += a2.get(&ia) * b2.get(&ib);
            ia.truncate(ia.len() - 2);
            ib.truncate(ib.len() - 2);
        }
        acc
    });
    if b.shape.len() == 1 {
        out.shape.remove(out.shape.len() - 1);
    }
    if a.shape.len() == 1 {
        out.shape
            .remove(out.shape.len() - if b.shape.len() == 1 { 1 } else { 2 });
    }
    out
}

/// Shapes for a matmul: optional batch axes on each side (broadcasting),
/// or 1-d vectors.
fn shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (
        0usize..6,
        0usize..6,
        0usize..6,
        proptest::collection::vec((0usize..4, any::<bool>(), any::<bool>()), 0..3),
        0u8..4,
        0u8..4,
    )
        .prop_map(|(m, k, n, batch, va, vb)| {
            let mut a: Vec<usize> = Vec::new();
            let mut b: Vec<usize> = Vec::new();
            for (i, &(d, one_a, one_b)) in batch.iter().enumerate() {
                // Sometimes only one side has the leading axis.
                if i > 0 || !one_a || !one_b {
                    a.push(if one_a { 1 } else { d });
                }
                b.push(if one_b { 1 } else { d });
            }
            if va == 0 {
                a = vec![k];
            } else {
                a.extend([m, k]);
            }
            if vb == 0 {
                b = vec![k];
            } else {
                b.extend([k, n]);
            }
            (a, b)
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matmul_matches_triple_loop((sa, sb) in shapes(), ka in 0u8..3, kb in 0u8..3, seed in any::<u64>()) {
        let a = operand(&sa, ka, seed);
        let b = operand(&sb, kb, seed ^ 0xABCD);
        let want = naive_matmul(&a.want, &b.want);
        let got = a.t.matmul(&b.t).unwrap();
        common::assert_close(&got, &want, 0.0);
        // f32 agrees too (small integers are exact).
        let got32 = a.t.cast::<f32>().matmul(&b.t.cast::<f32>()).unwrap();
        common::assert_close(&got32.cast::<f64>(), &want, 0.0);
    }
}

#[test]
fn larger_strided_products_take_the_parallel_paths() {
    // The last two copy the transposed `b` row-major before the product
    // (at least 2^16 elements and 16 rows of `a`); 257 columns leave a
    // tail after the transpose's blocks of eight.
    for (m, k, n) in [
        (67, 45, 129),
        (128, 128, 128),
        (1, 300, 200),
        (20, 256, 300),
        (33, 300, 257),
    ] {
        let a = Naive {
            shape: vec![k, m],
            data: values(m * k, 1),
        };
        let b = Naive {
            shape: vec![n, k],
            data: values(k * n, 2),
        };
        // a.t() is [m, k] transposed in memory, b.t() is [k, n].
        let (at, bt) = (a.tensor().t().unwrap(), b.tensor().t().unwrap());
        let want = naive_matmul(&a.permute(&[1, 0]), &b.permute(&[1, 0]));
        common::assert_close(&at.matmul(&bt).unwrap(), &want, 0.0);
    }
    // Many small batched products, batch axis broadcast on the right.
    let a = Naive {
        shape: vec![64, 8, 9],
        data: values(64 * 72, 3),
    };
    let b = Naive {
        shape: vec![9, 7],
        data: values(63, 4),
    };
    let want = naive_matmul(&a, &b);
    common::assert_close(&a.tensor().matmul(&b.tensor()).unwrap(), &want, 0.0);
}

#[test]
fn matmul_errors_name_the_shapes() {
    let e = Tensor::<f32>::zeros(&[2, 3])
        .matmul(&Tensor::zeros(&[4, 5]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "matmul of [2, 3] by [4, 5]: inner dimensions 3 and 4 differ"
    );
    let e = Tensor::<f32>::zeros(&[2, 2, 3])
        .matmul(&Tensor::zeros(&[3, 3, 5]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "matmul of [2, 2, 3] by [3, 3, 5]: batch dimensions do not broadcast"
    );
    let e = Tensor::<f32>::scalar(1.0)
        .matmul(&Tensor::zeros(&[3]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "matmul of [] by [3]: both operands need at least one axis"
    );
}
