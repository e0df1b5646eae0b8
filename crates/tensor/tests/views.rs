//! Property tests: every view (permute, transpose, slice with a step,
//! select, squeeze/unsqueeze, broadcast_to, reshape) against a naive
//! index-by-index reference, on strided inputs with zero-size dimensions.

mod common;

use common::{assert_close, config, strided, Case, Naive};
use proptest::prelude::*;
use tapegrad_tensor::Tensor;

/// A strided case plus a valid axis (needs rank >= 1).
fn with_axis() -> impl Strategy<Value = (Case, usize)> {
    strided(4, 4)
        .prop_filter("needs an axis", |c| c.t.ndim() > 0)
        .prop_flat_map(|c| {
            let r = c.t.ndim();
            (Just(c), 0..r)
        })
}

/// The view never reaches outside its buffer.
fn assert_in_bounds(t: &Tensor<f64>) {
    assert!(t.layout().storage_extent() <= t.storage_slice().len());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn strided_views_read_like_the_reference(c in strided(4, 5)) {
        assert_close(&c.t, &c.want, 0.0);
        assert_in_bounds(&c.t);
        let k = c.t.to_contiguous();
        prop_assert!(k.is_contiguous());
        assert_close(&k, &c.want, 0.0);
        // get() agrees with to_vec() element by element.
        for idx in common::indices(c.t.dims()) {
            prop_assert_eq!(c.t.get(&idx).unwrap(), c.want.get(&idx));
        }
    }

    #[test]
    fn permute_matches(c in strided(4, 4), seed in any::<u64>()) {
        let r = c.t.ndim();
        let mut perm: Vec<usize> = (0..r).collect();
        // A seeded Fisher-Yates shuffle.
        let mut s = seed;
        for i in (1..r).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        let p = c.t.permute(&perm).unwrap();
        assert_close(&p, &c.want.permute(&perm), 0.0);
        prop_assert!(p.shares_storage_with(&c.t) || c.t.numel() <= 1);
        // Permuting back is the identity.
        let mut inv = vec![0; r];
        for (i, &q) in perm.iter().enumerate() {
            inv[q] = i;
        }
        assert_close(&p.permute(&inv).unwrap(), &c.want, 0.0);
    }

    #[test]
    fn transpose_twice_is_identity((c, a) in with_axis(), b in 0usize..4) {
        let b = b % c.t.ndim();
        let t = c.t.transpose(a, b).unwrap();
        let mut perm: Vec<usize> = (0..c.t.ndim()).collect();
        perm.swap(a, b);
        assert_close(&t, &c.want.permute(&perm), 0.0);
        assert_close(&t.transpose(a, b).unwrap(), &c.want, 0.0);
    }

    #[test]
    fn slice_with_step_matches(
        (c, axis) in with_axis(),
        start in 0usize..6, len in 0usize..6, step in 1usize..4,
    ) {
        let dim = c.t.shape()[axis];
        let start = start.min(dim);
        let end = (start + len).min(dim);
        let s = c.t.slice(axis, start, end, step).unwrap();
        assert_close(&s, &c.want.slice(axis, start, end, step), 0.0);
        assert_in_bounds(&s);
        // narrow is slice with step 1.
        let n = c.t.narrow(axis, start, end - start).unwrap();
        assert_close(&n, &c.want.slice(axis, start, end, 1), 0.0);
        // Out-of-range ranges are errors, never panics.
        prop_assert!(c.t.slice(axis, 0, dim + 1, 1).is_err());
        prop_assert!(c.t.slice(axis, 0, dim, 0).is_err());
    }

    #[test]
    fn select_matches((c, axis) in with_axis(), index in 0usize..6) {
        let dim = c.t.shape()[axis];
        if index < dim {
            let s = c.t.select(axis, index).unwrap();
            assert_close(&s, &c.want.select(axis, index), 0.0);
            assert_in_bounds(&s);
        } else {
            prop_assert!(c.t.select(axis, index).is_err());
        }
    }

    #[test]
    fn unsqueeze_then_squeeze_round_trips(c in strided(4, 4), axis in 0usize..5) {
        let axis = axis % (c.t.ndim() + 1);
        let u = c.t.unsqueeze(axis).unwrap();
        let mut shape = c.want.shape.clone();
        shape.insert(axis, 1);
        let want = Naive { shape, data: c.want.data.clone() };
        assert_close(&u, &want, 0.0);
        assert_close(&u.squeeze(axis).unwrap(), &c.want, 0.0);
        prop_assert!(c.t.unsqueeze(c.t.ndim() + 1).is_err());
        // squeeze_all drops every length-1 axis.
        let sq = u.squeeze_all()?;
        prop_assert!(sq.shape().iter().all(|&d| d != 1));
        prop_assert_eq!(sq.to_vec(), c.want.data.clone());
    }

    #[test]
    fn broadcast_to_matches(
        c in common::shape(3, 3)
            .prop_map(|s| s.into_iter().map(|d| if d == 2 { 1 } else { d }).collect::<Vec<_>>())
            .prop_flat_map(common::strided_with_shape),
        lead in proptest::collection::vec(0usize..4, 0..3),
        stretch in proptest::collection::vec(0usize..4, 3),
    ) {
        let mut target = lead.clone();
        for (d, &n) in c.t.shape().iter().enumerate() {
            target.push(if n == 1 { stretch[d] } else { n });
        }
        let b = c.t.broadcast_to(&target).unwrap();
        assert_close(&b, &c.want.broadcast_to(&target), 0.0);
        assert_in_bounds(&b);
        prop_assert!(b.shares_storage_with(&c.t) || c.t.numel() <= 1);
        // Broadcasting a 3-long axis to 4 is an error.
        if let Some(d) = c.t.shape().iter().position(|&n| n > 1) {
            let mut bad = c.t.shape().to_vec();
            bad[d] += 1;
            prop_assert!(c.t.broadcast_to(&bad).is_err());
        }
    }

    #[test]
    fn reshape_keeps_row_major_order(c in strided(4, 4), cuts in proptest::collection::vec(1usize..5, 0..4)) {
        let n = c.t.numel();
        // A new shape with the same element count: peel off factors.
        let mut shape = Vec::new();
        let mut rest = n;
        for d in cuts {
            if rest > 0 && rest % d == 0 {
                shape.push(d);
                rest /= d;
            }
        }
        shape.push(rest);
        if n == 0 {
            shape.push(3);
        }
        let r = c.t.reshape(&shape).unwrap();
        prop_assert_eq!(r.shape(), shape.as_slice());
        prop_assert_eq!(r.to_vec(), c.want.data.clone());
        assert_in_bounds(&r);
        // A contiguous tensor always reshapes without copying.
        let k = c.t.to_contiguous();
        let rk = k.reshape(&shape).unwrap();
        prop_assert!(rk.shares_storage_with(&k) || n <= 1);
        prop_assert_eq!(c.t.flatten()?.to_vec(), c.want.data.clone());
        // reshape_infer with -1 in the last place.
        if n > 0 {
            let mut inf: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
            *inf.last_mut().unwrap() = -1;
            let ri = c.t.reshape_infer(&inf).unwrap();
            prop_assert_eq!(ri.shape(), shape.as_slice());
        }
        prop_assert!(c.t.reshape(&[n + 1]).is_err());
    }
}

#[test]
fn reshape_view_of_a_sliced_matrix_does_not_copy() {
    // Rows 0 and 2 of a [4, 6] matrix, each split into [2, 3]: the strides
    // allow a view.
    let a = Tensor::<f64>::arange(0.0, 24.0, 1.0)
        .unwrap()
        .reshape(&[4, 6])
        .unwrap();
    let s = a.slice(0, 0, 4, 2).unwrap();
    let r = s.reshape(&[2, 2, 3]).unwrap();
    assert!(r.shares_storage_with(&a));
    assert_eq!(
        r.to_vec(),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0]
    );
    // A transposed matrix flattened must copy, and still be right.
    let t = a.t().unwrap();
    let f = t.reshape(&[24]).unwrap();
    assert!(!f.shares_storage_with(&a));
    assert_eq!(f.get(&[1]).unwrap(), 6.0);
}

#[test]
fn transposed_matrices_copy_right_at_every_tile_edge() {
    // The tiled copy of a transposed matrix (blocks of 16 output rows, eight
    // columns at a time): row counts around the block size, column counts
    // with and without a remainder, a view with an offset and a column
    // stride larger than the row count, and one large enough for the
    // parallel path. Checked element by element against `get`.
    for (rows, cols) in [
        (1, 5),
        (15, 9),
        (16, 3),
        (17, 40),
        (45, 13),
        (70, 1),
        (300, 200),
    ] {
        let base = Tensor::<f64>::arange(0.0, ((cols + 2) * (rows + 3)) as f64, 1.0)
            .unwrap()
            .reshape(&[cols + 2, rows + 3])
            .unwrap();
        // [cols, rows] carved out at row 1, column 2, then transposed.
        let view = base
            .slice(0, 1, cols + 1, 1)
            .unwrap()
            .slice(1, 2, rows + 2, 1)
            .unwrap()
            .t()
            .unwrap();
        assert_eq!(view.shape(), &[rows, cols]);
        let want: Vec<f64> = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .map(|(r, c)| view.get(&[r, c]).unwrap())
            .collect();
        assert_eq!(view.to_vec(), want, "{rows}x{cols}");
        let doubled: Vec<f64> = want.iter().map(|x| 2.0 * x + 1.0).collect();
        assert_eq!(
            view.map(|x| 2.0 * x + 1.0).unwrap().to_vec(),
            doubled,
            "{rows}x{cols}"
        );
        let f32s: Tensor<f32> = view.cast();
        assert_eq!(
            f32s.to_vec(),
            want.iter().map(|&x| x as f32).collect::<Vec<_>>()
        );
    }
}
