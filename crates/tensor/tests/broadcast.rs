//! Property tests: broadcasting binary ops, comparisons and `where_cond` on
//! strided inputs against a naive reference.

mod common;

use common::{assert_close, config, strided_with_shape, Case, Naive};
use proptest::prelude::*;
use tapegrad_tensor::Tensor;

/// An output shape and `k` input shapes that broadcast to it: each input
/// drops some leading axes and replaces some others by 1.
fn broadcast_cases(k: usize) -> impl Strategy<Value = (Vec<usize>, Vec<Case>)> {
    common::shape(4, 4)
        .prop_flat_map(move |out| {
            let r = out.len();
            let per_input = (0..=r, proptest::collection::vec(any::<bool>(), r));
            (Just(out), proptest::collection::vec(per_input, k))
        })
        .prop_flat_map(|(out, specs)| {
            let cases: Vec<_> = specs
                .into_iter()
                .map(|(drop, ones)| {
                    let s: Vec<usize> = (drop..out.len())
                        .map(|d| if ones[d] { 1 } else { out[d] })
                        .collect();
                    strided_with_shape(s)
                })
                .collect();
            (Just(out), cases)
        })
        .prop_map(|(_, cases)| {
            // The true broadcast shape: the rank is the largest input rank,
            // and an axis every input has as 1 is 1 in the result.
            let r = cases.iter().map(|c| c.t.ndim()).max().unwrap_or(0);
            let eff = (0..r)
                .map(|d| {
                    cases
                        .iter()
                        .filter_map(|c| {
                            let s = c.t.shape();
                            (d + s.len() >= r).then(|| s[d + s.len() - r])
                        })
                        .find(|&n| n != 1)
                        .unwrap_or(1)
                })
                .collect();
            (eff, cases)
        })
}

fn naive_zip(a: &Naive, b: &Naive, out: &[usize], f: impl Fn(f64, f64) -> f64) -> Naive {
    let (a, b) = (a.broadcast_to(out), b.broadcast_to(out));
    Naive {
        shape: out.to_vec(),
        data: a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect(),
    }
}

fn mask(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

type BinOp = fn(&Tensor<f64>, &Tensor<f64>) -> tapegrad_tensor::Result<Tensor<f64>>;
type Reference = fn(f64, f64) -> f64;
type Computed = tapegrad_tensor::Result<Tensor<f64>>;

proptest! {
    #![proptest_config(config())]

    /// The operators are the named methods (issue 11): the same bits on
    /// strided inputs of random broadcastable shapes, in every pairing.
    #[test]
    fn operators_match_the_named_methods((_, cs) in broadcast_cases(2), k in -3i32..4) {
        let (a, b) = (&cs[0].t, &cs[1].t);
        let k = k as f64 + 0.5;
        let pairs: [(Computed, Computed); 18] = [
            (a + b, a.add(b)),
            (a - b, a.sub(b)),
            (a * b, a.mul(b)),
            (a / b, a.div(b)),
            (b / a, b.div(a)),
            (a.clone() - b.clone(), a.sub(b)),
            (a * Ok(b.clone()), a.mul(b)),
            (Ok(a.clone()) / b, a.div(b)),
            (a + k, a.add_scalar(k)),
            (a - k, a.sub_scalar(k)),
            (a * k, a.mul_scalar(k)),
            (a / k, a.div_scalar(k)),
            (k + a, a.add_scalar(k)),
            (k - a, a.rsub_scalar(k)),
            (k * a, a.mul_scalar(k)),
            (k / a, a.rdiv_scalar(k)),
            (-a, a.neg()),
            (-b.clone(), b.neg()),
        ];
        for (i, (x, y)) in pairs.into_iter().enumerate() {
            let (x, y) = (x?, y?);
            prop_assert_eq!(x.shape(), y.shape(), "pair {}", i);
            let bits = |t: &Tensor<f64>| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&x), bits(&y), "pair {}", i);
        }
    }

    #[test]
    fn binary_ops_broadcast_like_numpy((out, cs) in broadcast_cases(2)) {
        let (a, b) = (&cs[0], &cs[1]);
        let ops: [(BinOp, Reference); 13] = [
            (Tensor::add, |x, y| x + y),
            (Tensor::sub, |x, y| x - y),
            (Tensor::mul, |x, y| x * y),
            (Tensor::div, |x, y| x / y),
            (Tensor::maximum, f64::max),
            (Tensor::minimum, f64::min),
            (Tensor::pow, |x, y| x.powf(y)),
            (Tensor::eq_mask, |x, y| mask(x == y)),
            (Tensor::ne_mask, |x, y| mask(x != y)),
            (Tensor::lt_mask, |x, y| mask(x < y)),
            (Tensor::le_mask, |x, y| mask(x <= y)),
            (Tensor::gt_mask, |x, y| mask(x > y)),
            (Tensor::ge_mask, |x, y| mask(x >= y)),
        ];
        for (op, f) in ops {
            let got = op(&a.t, &b.t).unwrap();
            assert_close(&got, &naive_zip(&a.want, &b.want, &out, f), 1e-12);
            // Operand order flips cleanly too.
            let got = op(&b.t, &a.t).unwrap();
            assert_close(&got, &naive_zip(&b.want, &a.want, &out, f), 1e-12);
        }
    }

    #[test]
    fn where_cond_broadcasts_three_ways((out, cs) in broadcast_cases(3)) {
        let cond = cs[0].t.gt_scalar(0.0)?;
        let got = cond.where_cond(&cs[1].t, &cs[2].t).unwrap();
        let c = cs[0].want.broadcast_to(&out);
        let (t, f) = (cs[1].want.broadcast_to(&out), cs[2].want.broadcast_to(&out));
        let want = Naive {
            shape: out.clone(),
            data: (0..c.numel()).map(|i| if c.data[i] > 0.0 { t.data[i] } else { f.data[i] }).collect(),
        };
        assert_close(&got, &want, 0.0);
    }

    #[test]
    fn scalar_forms_match_the_tensor_forms(c in common::strided(4, 4), k in -3i32..4) {
        let k = k as f64;
        let s = Tensor::scalar(k);
        let pairs: [(Tensor<f64>, Tensor<f64>); 12] = [
            (c.t.add_scalar(k).unwrap(), c.t.add(&s).unwrap()),
            (c.t.sub_scalar(k).unwrap(), c.t.sub(&s).unwrap()),
            (c.t.mul_scalar(k).unwrap(), c.t.mul(&s).unwrap()),
            (c.t.div_scalar(k).unwrap(), c.t.div(&s).unwrap()),
            (c.t.rsub_scalar(k).unwrap(), s.sub(&c.t).unwrap()),
            (c.t.maximum_scalar(k).unwrap(), c.t.maximum(&s).unwrap()),
            (c.t.minimum_scalar(k).unwrap(), c.t.minimum(&s).unwrap()),
            (c.t.gt_scalar(k).unwrap(), c.t.gt_mask(&s).unwrap()),
            (c.t.ge_scalar(k).unwrap(), c.t.ge_mask(&s).unwrap()),
            (c.t.lt_scalar(k).unwrap(), c.t.lt_mask(&s).unwrap()),
            (c.t.le_scalar(k).unwrap(), c.t.le_mask(&s).unwrap()),
            (c.t.eq_scalar(k).unwrap(), c.t.eq_mask(&s).unwrap()),
        ];
        for (i, (x, y)) in pairs.iter().enumerate() {
            prop_assert_eq!(x.shape(), y.shape());
            let (xv, yv) = (x.to_vec(), y.to_vec());
            for (p, q) in xv.iter().zip(&yv) {
                prop_assert!(p == q || (p.is_nan() && q.is_nan()), "pair {}: {} vs {}", i, p, q);
            }
        }
        assert_close(&c.t.ne_scalar(k)?, &c.want.map(|x| mask(x != k)), 0.0);
        assert_close(&c.t.clamp(-2.0, 3.0)?, &c.want.map(|x| x.clamp(-2.0, 3.0)), 0.0);
    }

    #[test]
    fn unary_ops_on_strided_inputs(c in common::strided(4, 4)) {
        let w = &c.want;
        assert_close(&c.t.neg()?, &w.map(|x| -x), 0.0);
        assert_close(&c.t.abs()?, &w.map(f64::abs), 0.0);
        assert_close(&c.t.square()?, &w.map(|x| x * x), 0.0);
        assert_close(&c.t.relu()?, &w.map(|x| x.max(0.0)), 0.0);
        assert_close(&c.t.exp()?, &w.map(f64::exp), 1e-15);
        assert_close(&c.t.tanh()?, &w.map(f64::tanh), 1e-15);
        assert_close(&c.t.sigmoid()?, &w.map(|x| 1.0 / (1.0 + (-x).exp())), 1e-15);
        assert_close(&c.t.softplus()?, &w.map(|x| (1.0 + x.exp()).ln()), 1e-12);
        assert_close(&c.t.sin()?, &w.map(f64::sin), 0.0);
        // The f32 kernels (vectorised exp/tanh/sigmoid) on the same views.
        let f = c.t.cast::<f32>();
        for (got, want) in [
            (f.tanh(), w.map(f64::tanh)),
            (f.exp(), w.map(f64::exp)),
            (f.sigmoid(), w.map(|x| 1.0 / (1.0 + (-x).exp()))),
        ] {
            assert_close(&got?.cast::<f64>(), &want, 3e-7);
        }
    }
}

#[test]
fn incompatible_shapes_are_errors_naming_op_and_shapes() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    let b = Tensor::<f32>::zeros(&[4, 3]);
    let e = a.add(&b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "add of [2, 3] by [4, 3]: dimensions 2 and 4 at axis 0 of the broadcast result cannot broadcast"
    );
    assert_eq!(a.mul(&b).unwrap_err().op(), "mul");
    let e = a
        .where_cond(&Tensor::zeros(&[3]), &Tensor::zeros(&[5]))
        .unwrap_err();
    assert_eq!(e.op(), "where");
}

#[test]
fn long_rows_against_scalars_and_rows_match_serial_reference() {
    // Big enough to take the parallel path with one long broadcast row.
    let n = 1 << 17;
    let a = Tensor::<f32>::uniform_seeded(&[n], -2.0, 2.0, 3);
    let s = Tensor::scalar(0.5f32);
    let want: Vec<f32> = a.to_vec().iter().map(|x| x * 0.5).collect();
    assert_eq!(a.mul(&s).unwrap().to_vec(), want);
    assert_eq!(s.mul(&a).unwrap().to_vec(), want);
    let m = a.reshape(&[256, 512]).unwrap();
    let row = Tensor::<f32>::uniform_seeded(&[512], -1.0, 1.0, 4);
    let got = m.t().unwrap().add(&row.unsqueeze(1).unwrap()).unwrap();
    let mv = m.to_vec();
    let rv = row.to_vec();
    for i in (0..512).step_by(37) {
        for j in (0..256).step_by(11) {
            assert_eq!(got.get(&[i, j]).unwrap(), mv[j * 512 + i] + rv[i]);
        }
    }
}
