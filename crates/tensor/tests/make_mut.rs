//! `Tensor::make_mut_slice`: copy-on-write access for in-place updates.
//! A write through one handle must never show through another (a clone, a
//! view, the tensor a view was taken from), and a handle that owns its
//! contiguous buffer alone must be written without a copy.

mod common;

use common::{config, strided, values};
use proptest::prelude::*;
use tapegrad_tensor::Tensor;

fn ptr<T: tapegrad_tensor::Element>(t: &Tensor<T>) -> *const T {
    t.storage_slice().as_ptr()
}

#[test]
fn sole_owner_is_written_in_place() {
    let mut a = Tensor::from_vec(values(64 * 1024, 1), &[256, 256]).unwrap();
    let p = ptr(&a);
    let s = a.make_mut_slice();
    assert_eq!(s.len(), 256 * 256);
    s[7] = 42.0;
    assert_eq!(ptr(&a), p, "no copy for the only handle");
    assert_eq!(a.get(&[0, 7]).unwrap(), 42.0);
    // And again: still the same buffer.
    a.make_mut_slice()[8] = 43.0;
    assert_eq!(ptr(&a), p);
}

#[test]
fn a_clone_taken_before_keeps_its_values() {
    let data = values(1000, 2);
    let mut a = Tensor::from_vec(data.clone(), &[10, 100]).unwrap();
    let snapshot = a.clone();
    assert!(a.shares_storage_with(&snapshot));
    a.make_mut_slice().iter_mut().for_each(|x| *x = -1.0);
    assert!(!a.shares_storage_with(&snapshot));
    assert_eq!(snapshot.to_vec(), data);
    assert!(a.to_vec().iter().all(|&x| x == -1.0));
    // Once the copy is made, `a` owns it: the next write is in place.
    let p = ptr(&a);
    a.make_mut_slice()[0] = 5.0;
    assert_eq!(ptr(&a), p);
    assert_eq!(snapshot.to_vec(), data);
}

#[test]
fn the_clone_can_write_too_and_the_original_keeps_its_values() {
    let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4]).unwrap();
    let mut b = a.clone();
    b.make_mut_slice()[3] = 40.0;
    assert_eq!(a.to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(b.to_vec(), vec![1.0, 2.0, 3.0, 40.0]);
}

#[test]
fn views_and_their_base_stay_apart() {
    let base = Tensor::from_vec((0..12).map(f64::from).collect(), &[3, 4]).unwrap();
    // A contiguous view with an offset (row 1) of a shared buffer.
    let mut row = base.select(0, 1).unwrap();
    assert!(row.is_contiguous());
    row.make_mut_slice()
        .copy_from_slice(&[-4.0, -5.0, -6.0, -7.0]);
    assert_eq!(row.to_vec(), vec![-4.0, -5.0, -6.0, -7.0]);
    assert_eq!(base.to_vec(), (0..12).map(f64::from).collect::<Vec<_>>());
    // Writing the base leaves an earlier view alone.
    let col = base.select(1, 2).unwrap();
    let mut base = base;
    base.make_mut_slice()[2] = 100.0;
    assert_eq!(col.to_vec(), vec![2.0, 6.0, 10.0]);
    assert_eq!(base.get(&[0, 2]).unwrap(), 100.0);
}

#[test]
fn a_view_that_owns_its_buffer_alone_writes_at_its_offset() {
    let base = Tensor::from_vec((0..12).map(f64::from).collect(), &[3, 4]).unwrap();
    let mut row = base.select(0, 2).unwrap();
    drop(base);
    let p = ptr(&row);
    row.make_mut_slice()[0] = -8.0;
    assert_eq!(ptr(&row), p, "sole owner of a contiguous view: no copy");
    assert_eq!(row.to_vec(), vec![-8.0, 9.0, 10.0, 11.0]);
}

#[test]
fn strided_and_broadcast_views_become_contiguous_copies() {
    let a = Tensor::from_vec((0..6).map(f64::from).collect(), &[2, 3]).unwrap();
    let mut t = a.t().unwrap();
    t.make_mut_slice()[0] = 9.0;
    assert!(t.is_contiguous());
    assert_eq!(t.shape(), &[3, 2]);
    assert_eq!(t.to_vec(), vec![9.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(a.to_vec(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);

    // A 0-d scalar broadcast to many elements: one buffer slot per element
    // after the copy, so writing one leaves the others alone.
    let s = Tensor::scalar(1.5f32);
    let mut b = s.broadcast_to(&[2, 2]).unwrap();
    b.make_mut_slice()[3] = 0.0;
    assert_eq!(b.to_vec(), vec![1.5, 1.5, 1.5, 0.0]);
    assert_eq!(s.item().unwrap(), 1.5);
}

#[test]
fn inline_scalars_and_empty_tensors() {
    let mut s = Tensor::scalar(2.0f64);
    let copy = s.clone();
    s.make_mut_slice()[0] = 3.0;
    assert_eq!(s.item().unwrap(), 3.0);
    assert_eq!(
        copy.item().unwrap(),
        2.0,
        "inline storage is copied by clone"
    );
    let mut one = Tensor::from_vec(vec![7.0f32], &[1, 1]).unwrap();
    one.make_mut_slice()[0] = 8.0;
    assert_eq!(one.to_vec(), vec![8.0]);
    let mut e = Tensor::<f32>::zeros(&[3, 0]);
    assert!(e.make_mut_slice().is_empty());
    assert_eq!(e.shape(), &[3, 0]);
}

proptest! {
    #![proptest_config(config())]

    /// On any strided view (with offsets, steps, permutations, zero-size
    /// axes): the slice holds the view's values in row-major order, writes
    /// land at those positions, and a clone taken before keeps its values.
    #[test]
    fn any_view_reads_in_order_and_copies_on_write(c in strided(4, 5)) {
        let before = c.t.clone();
        let mut t = c.t;
        let s = t.make_mut_slice();
        prop_assert_eq!(s.to_vec(), c.want.data.clone());
        s.iter_mut().for_each(|x| *x = -*x - 1.0);
        prop_assert!(t.is_contiguous());
        prop_assert_eq!(t.shape(), &c.want.shape[..]);
        let want: Vec<f64> = c.want.data.iter().map(|x| -x - 1.0).collect();
        prop_assert_eq!(t.to_vec(), want);
        prop_assert_eq!(before.to_vec(), c.want.data);
    }
}
