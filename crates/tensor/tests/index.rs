//! Property tests: concat, stack, index_select, gather, gather_rows,
//! one_hot on strided inputs; thread-count independence; pinned error text.

mod common;

use common::{assert_close, config, strided, strided_with_shape, Case, Naive};
use proptest::prelude::*;
use tapegrad_tensor::Tensor;

/// Two to three strided tensors that agree on every axis but `axis`.
fn concat_parts() -> impl Strategy<Value = (Vec<Case>, usize)> {
    (
        common::shape(3, 3).prop_filter("rank >= 1", |s| !s.is_empty()),
        0usize..3,
    )
        .prop_flat_map(|(s, axis)| {
            let axis = axis % s.len();
            let parts = proptest::collection::vec(0usize..4, 2..4).prop_flat_map(move |lens| {
                lens.into_iter()
                    .map(|l| {
                        let mut t = s.clone();
                        t[axis] = l;
                        strided_with_shape(t)
                    })
                    .collect::<Vec<_>>()
            });
            (parts, Just(axis))
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn concat_and_stack_match((parts, axis) in concat_parts()) {
        let ts: Vec<&Tensor<f64>> = parts.iter().map(|c| &c.t).collect();
        let got = Tensor::concat(&ts, axis).unwrap();
        let mut shape = parts[0].want.shape.clone();
        shape[axis] = parts.iter().map(|c| c.want.shape[axis]).sum();
        let want = Naive::from_fn(&shape, |j| {
            let mut i = j[axis];
            for c in &parts {
                if i < c.want.shape[axis] {
                    let mut k = j.to_vec();
                    k[axis] = i;
                    return c.want.get(&k);
                }
                i -= c.want.shape[axis];
            }
            unreachable!()
        });
        assert_close(&got, &want, 0.0);
        // stack: equal shapes only, new axis anywhere in 0..=ndim.
        let same: Vec<&Tensor<f64>> = vec![&parts[0].t, &parts[0].t];
        for ax in 0..=parts[0].t.ndim() {
            let s = Tensor::stack(&same, ax).unwrap();
            let w = &parts[0].want;
            let mut shape = w.shape.clone();
            shape.insert(ax, 2);
            let want = Naive::from_fn(&shape, |j| {
                let mut k = j.to_vec();
                k.remove(ax);
                w.get(&k)
            });
            assert_close(&s, &want, 0.0);
        }
    }

    #[test]
    fn index_select_and_gather_match(
        c in strided(3, 4).prop_filter("rank >= 1", |c| c.t.ndim() > 0),
        axis in 0usize..3,
        picks in proptest::collection::vec(0usize..8, 0..6),
    ) {
        let axis = axis % c.t.ndim();
        let len = c.t.shape()[axis];
        let idx: Vec<usize> = if len == 0 { vec![] } else { picks.iter().map(|p| p % len).collect() };
        let got = c.t.index_select(axis, &idx).unwrap();
        let mut shape = c.want.shape.clone();
        shape[axis] = idx.len();
        let want = Naive::from_fn(&shape, |j| {
            let mut k = j.to_vec();
            k[axis] = idx[j[axis]];
            c.want.get(&k)
        });
        assert_close(&got, &want, 0.0);
        // gather with an index tensor of the same shape whose entries are
        // picked by position: out[j] = x[j with axis -> ix[j]].
        if len > 0 {
            let ix = Naive::from_fn(&c.want.shape, |j| ((j.iter().sum::<usize>() * 7 + 3) % len) as f64);
            let got = c.t.gather(axis, &ix.tensor()).unwrap();
            let want = Naive::from_fn(&c.want.shape, |j| {
                let mut k = j.to_vec();
                k[axis] = ix.get(j) as usize;
                c.want.get(&k)
            });
            assert_close(&got, &want, 0.0);
            let mut bad = ix.clone();
            if let Some(v) = bad.data.first_mut() {
                *v = len as f64;
                prop_assert!(c.t.gather(axis, &bad.tensor()).is_err());
            }
        }
        prop_assert!(c.t.index_select(axis, &[len]).is_err());
    }
}

#[test]
fn gather_rows_one_hot_where() {
    let x = Tensor::from_vec(vec![0.1f64, 0.2, 0.3, 0.4, 0.5, 0.6], &[3, 2]).unwrap();
    let xt = x.t().unwrap().t().unwrap();
    assert_eq!(
        xt.gather_rows(&[1, 0, 1]).unwrap().to_vec(),
        vec![0.2, 0.3, 0.6]
    );
    assert!(x.gather_rows(&[2, 0, 0]).is_err());
    let oh = Tensor::<f32>::one_hot(&[2, 0], 3).unwrap();
    assert_eq!(oh.to_vec(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!(
        Tensor::<f32>::one_hot(&[3], 3).unwrap_err().to_string(),
        "one_hot: label 3 at position 0 is not below the class count 3"
    );
    assert_eq!(Tensor::<f32>::one_hot(&[], 4).unwrap().shape(), &[0, 4]);
}

/// Results are bit-identical for 1 and 2 threads (fixed chunking, fixed
/// combination order), on sizes above the parallel threshold.
#[test]
fn one_and_two_threads_give_identical_bits() {
    let run = || {
        let a = Tensor::<f32>::uniform_seeded(&[512, 700], -3.0, 3.0, 11);
        let b = Tensor::<f32>::uniform_seeded(&[700], -3.0, 3.0, 12);
        let at = a.t().unwrap();
        vec![
            a.sum_all().unwrap().to_vec(),
            at.sum_all().unwrap().to_vec(),
            a.sum(&[0], false).unwrap().to_vec(),
            a.sum(&[1], false).unwrap().to_vec(),
            at.mean(&[0], true).unwrap().to_vec(),
            a.var(&[1], false, 1).unwrap().to_vec(),
            a.max(&[0, 1], false).unwrap().to_vec(),
            a.tanh().unwrap().to_vec(),
            at.exp().unwrap().to_vec(),
            a.add(&b).unwrap().sigmoid().unwrap().to_vec(),
            a.softmax(1).unwrap().to_vec(),
            a.matmul(&at).unwrap().sum(&[1], false).unwrap().to_vec(),
        ]
    };
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let one = pool(1).install(run);
    let two = pool(2).install(run);
    let again = pool(2).install(run);
    for (i, ((x, y), z)) in one.iter().zip(&two).zip(&again).enumerate() {
        let bits = |v: &Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(x),
            bits(y),
            "result {i} differs between 1 and 2 threads"
        );
        assert_eq!(bits(y), bits(z), "result {i} differs between runs");
    }
}

/// Error messages name the op and the shapes; these texts are pinned.
#[test]
fn error_messages_are_pinned() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    let cases: Vec<(tapegrad_tensor::Error, &str)> = vec![
        (Tensor::<f32>::from_vec(vec![1.0; 5], &[2, 3]).unwrap_err(),
         "from_vec: shape [2, 3] needs 6 elements, got 5"),
        (a.reshape(&[4, 2]).unwrap_err(), "reshape: shape [4, 2] needs 8 elements, got 6"),
        (a.permute(&[0, 0]).unwrap_err(), "permute: [0, 0] is not a permutation of the axes of shape [2, 3]"),
        (a.transpose(0, 2).unwrap_err(), "transpose: axis 2 is out of range for shape [2, 3] (rank 2)"),
        (a.select(1, 3).unwrap_err(), "select: index 3 is out of range for axis 1 of length 3 (shape [2, 3])"),
        (a.slice(1, 1, 5, 1).unwrap_err(), "slice: range 1..5 does not fit axis 1 of length 3 (shape [2, 3])"),
        (a.squeeze(0).unwrap_err(), "squeeze: axis 0 of shape [2, 3] has length 2, not 1"),
        (a.broadcast_to(&[3, 3]).unwrap_err(),
         "broadcast_to of [2, 3] by [3, 3]: each dimension must equal the target's or be 1"),
        (Tensor::concat(&[&a, &Tensor::zeros(&[3, 3])], 1).unwrap_err(),
         "concat of [2, 3] by [3, 3]: shapes must agree on every axis but 1"),
        (a.gather(1, &Tensor::zeros(&[3, 3])).unwrap_err(),
         "gather of [2, 3] by [3, 3]: the index needs the same rank and may be no longer on any axis but 1"),
        (a.item().unwrap_err(), "item: tensor of shape [2, 3] has 6 elements, not 1"),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
        assert!(want.starts_with(e.op()));
    }
}

/// Shapes whose element count overflows `usize` are errors, not wrapped
/// counts that index out of bounds later (found in the documentation audit).
#[test]
fn overflowing_shapes_are_rejected() {
    let e = Tensor::<f32>::from_vec(vec![], &[1 << 32, 1 << 32]).unwrap_err();
    assert!(e.to_string().starts_with("from_vec: shape"), "{e}");
    assert!(Tensor::<f32>::one_hot(&[0, 1], usize::MAX).is_err());
    assert!(Tensor::<f32>::arange(f64::NAN, 3.0, 1.0).is_err());
    let l = tapegrad_tensor::Layout::contiguous(&[2, 3]);
    assert!(l.reshape_view(&[100]).is_none());
    assert!(l.reshape_view(&[3, 2]).is_some());
}
