//! Shapes too large for memory (element counts that overflow `usize`, or
//! buffers over `isize::MAX` bytes) are errors naming the op and the shape,
//! never wrapped counts; allocations the allocator refuses are errors from
//! ops that return `Result`, not aborts.
//!
//! Nothing here allocates much: every too-large request fails before any
//! memory is touched (allocations of 2^61 bytes or more, which no 48- or
//! 57-bit address space can hold, are refused whatever the overcommit
//! setting), and huge views are only printed or reduced when cheap.

mod common;

use common::config;
use proptest::prelude::*;
use tapegrad_tensor::{contiguous_strides, Error, Layout, Tensor};

/// `2^63 + 1`: times 2 it wraps around to 2 in `usize`.
const WRAPS_TO_2: usize = (1 << 63) + 1;

/// The message of a shape over the size limit.
fn too_large(op: &str, shape: &[usize]) -> String {
    format!("{op}: shape {shape:?} has more elements than fit in memory")
}

/// `e` is [`Error::TooLarge`] for `op` with no allocation tried.
#[track_caller]
fn assert_over_limit(e: &Error, op: &str, shape: &[usize]) {
    assert!(
        matches!(e, Error::TooLarge { op: o, shape: s, refused_bytes: None } if *o == op && s == shape),
        "{e:?}"
    );
    assert_eq!(e.to_string(), too_large(op, shape));
}

/// `e` is [`Error::TooLarge`] for `op` after the allocator refused `bytes`.
#[track_caller]
fn assert_refused(e: &Error, op: &str, shape: &[usize], bytes: usize) {
    assert!(
        matches!(e, Error::TooLarge { op: o, shape: s, refused_bytes: Some(b) }
            if *o == op && s == shape && *b == bytes),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("{op}: could not allocate {bytes} bytes for shape {shape:?}")
    );
}

/// The reported bug: the product wrapped to 2, so the reshape succeeded and
/// then `sum_all` answered 0, `sum` hung, `add` panicked and `Display`
/// panicked.
#[test]
fn reshape_whose_count_wraps_is_an_error() {
    let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    let e = a.reshape(&[WRAPS_TO_2, 2]).unwrap_err();
    assert_over_limit(&e, "reshape", &[WRAPS_TO_2, 2]);
    // The same error as `from_vec` (and every other constructor) gives.
    let f = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[WRAPS_TO_2, 2]).unwrap_err();
    assert_eq!(
        f.to_string().replacen("from_vec", "reshape", 1),
        e.to_string()
    );
    // Other wrapping shapes, a wrap to 0, and a zero-size shape whose other
    // axes alone overflow (its strides would).
    for shape in [
        vec![1 << 32, 1 << 32, 2],
        vec![usize::MAX, usize::MAX],
        vec![0, 1 << 63, 4],
        vec![1 << 63, 4, 0],
    ] {
        let src = if shape.contains(&0) {
            Tensor::zeros(&[0])
        } else {
            a.clone()
        };
        assert_over_limit(&src.reshape(&shape).unwrap_err(), "reshape", &shape);
    }
    // More than `isize::MAX` bytes of `f32` without overflowing `usize`.
    let z = Tensor::<f32>::zeros(&[0]);
    assert_over_limit(
        &z.reshape(&[0, 1 << 62]).unwrap_err(),
        "reshape",
        &[0, 1 << 62],
    );
    assert_eq!(z.reshape(&[0, 1 << 59]).unwrap().numel(), 0);
    // A copying reshape (of a transpose) checks too.
    let t = Tensor::<f32>::zeros(&[2, 3]).t().unwrap();
    assert_over_limit(
        &t.reshape(&[WRAPS_TO_2, 6]).unwrap_err(),
        "reshape",
        &[WRAPS_TO_2, 6],
    );
    // The tensor is untouched and every op on it still works.
    assert_eq!(a.sum_all().unwrap().item().unwrap(), 3.0);
    assert_eq!(a.add(&a).unwrap().to_vec(), vec![2.0, 4.0]);
    assert_eq!(a.to_string(), "[1., 2.]");
}

#[test]
fn reshape_infer_with_overflowing_known_axes_is_an_error() {
    let a = Tensor::<f32>::zeros(&[4]);
    for shape in [[-1, 1 << 62, 1 << 62], [1 << 62, -1, 8]] {
        let e = a.reshape_infer(&shape).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("reshape: cannot reshape [4] into {shape:?}")
        );
    }
    let shape = [isize::MAX, isize::MAX];
    let e = a.reshape_infer(&shape).unwrap_err();
    assert_over_limit(&e, "reshape", &[isize::MAX as usize, isize::MAX as usize]);
    assert_eq!(a.reshape_infer(&[-1, 2]).unwrap().shape(), &[2, 2]);
}

#[test]
fn broadcast_to_a_shape_too_large_is_an_error() {
    let s = Tensor::scalar(1.0f32);
    for shape in [
        vec![1 << 32, 1 << 32],
        vec![WRAPS_TO_2, 2],
        vec![0, 1 << 63, 4],
    ] {
        assert_over_limit(&s.broadcast_to(&shape).unwrap_err(), "broadcast_to", &shape);
        assert_over_limit(&s.expand(&shape).unwrap_err(), "broadcast_to", &shape);
        let l = Layout::contiguous(&[]);
        assert_over_limit(&l.broadcast_to(&shape).unwrap_err(), "broadcast_to", &shape);
    }
    // Over `isize::MAX` bytes of `f64` (a copy could never be made), though
    // the count fits in `usize`; a layout of it too (one limit for every
    // element type).
    assert_over_limit(
        &Tensor::scalar(1.0f64).broadcast_to(&[1 << 61]).unwrap_err(),
        "broadcast_to",
        &[1 << 61],
    );
    assert!(Layout::contiguous(&[]).broadcast_to(&[1 << 61]).is_err());
    // The largest views that fit work, and know their size.
    let v = s.broadcast_to(&[1 << 58, 2]).unwrap();
    assert_eq!(v.numel(), 1 << 59);
    let z = Tensor::<f32>::zeros(&[1, 0])
        .broadcast_to(&[1 << 59, 0])
        .unwrap();
    assert_eq!((z.numel(), z.sum_all().unwrap().item().unwrap()), (0, 0.0));
}

#[test]
fn layouts_reject_shapes_too_large() {
    let shape = [1 << 32, 1 << 32];
    assert_over_limit(
        &Layout::try_contiguous(&shape).unwrap_err(),
        "contiguous",
        &shape,
    );
    assert_eq!(
        Layout::try_contiguous(&[1 << 58, 2]).unwrap().strides(),
        &[2, 1]
    );
    let over = [1 << 62, 2]; // 2^63 elements: past the limit of 2^60 - 1
    assert_over_limit(
        &Layout::try_contiguous(&over).unwrap_err(),
        "contiguous",
        &over,
    );
    // A zero-size shape still gets strides that fit.
    assert_eq!(
        Layout::try_contiguous(&[0, 1 << 30, 1 << 29])
            .unwrap()
            .strides(),
        &[1 << 59, 1 << 29, 1]
    );
    let l = Layout::contiguous(&[2]);
    assert!(l.reshape_view(&[WRAPS_TO_2, 2]).is_none());
    assert!(Layout::contiguous(&[0])
        .reshape_view(&[0, 1 << 63, 4])
        .is_none());
    // A step far past the end keeps one element and an unchanged stride
    // (the product would overflow).
    let s = Layout::contiguous(&[3, 5])
        .slice(0, 1, 3, usize::MAX)
        .unwrap();
    assert_eq!(
        (s.shape(), s.strides(), s.offset()),
        (&[1, 5][..], &[5, 1][..], 5)
    );
    let t = Tensor::<f32>::arange(0.0, 15.0, 1.0)
        .unwrap()
        .reshape(&[3, 5])
        .unwrap();
    assert_eq!(
        t.slice(0, 1, 3, usize::MAX).unwrap().to_vec(),
        vec![5.0, 6.0, 7.0, 8.0, 9.0]
    );
}

#[test]
#[should_panic(
    expected = "contiguous: shape [4294967296, 4294967296] has more elements than fit in memory"
)]
fn layout_contiguous_panics_on_a_shape_too_large() {
    Layout::contiguous(&[1 << 32, 1 << 32]);
}

#[test]
#[should_panic(
    expected = "contiguous_strides: shape [0, 9223372036854775808, 4] has more elements"
)]
fn contiguous_strides_panics_on_a_shape_too_large() {
    contiguous_strides(&[0, 1 << 63, 4]);
}

#[test]
#[should_panic(
    expected = "uniform: shape [9223372036854775809, 2] has more elements than fit in memory"
)]
fn uniform_seeded_panics_on_a_shape_that_wraps() {
    // It used to return a 2-element tensor of shape [2^63 + 1, 2].
    Tensor::<f32>::uniform_seeded(&[WRAPS_TO_2, 2], -1.0, 1.0, 0);
}

#[test]
#[should_panic(
    expected = "normal: shape [9223372036854775809, 2] has more elements than fit in memory"
)]
fn randn_seeded_panics_on_a_shape_that_wraps() {
    Tensor::<f32>::randn_seeded(&[WRAPS_TO_2, 2], 0);
}

#[test]
#[should_panic(
    expected = "full: shape [0, 9223372036854775808, 4] has more elements than fit in memory"
)]
fn zeros_panics_on_a_shape_too_large() {
    Tensor::<f32>::zeros(&[0, 1 << 63, 4]);
}

#[test]
#[should_panic(
    expected = "eye: shape [4294967296, 4294967296] has more elements than fit in memory"
)]
fn eye_panics_on_a_size_too_large() {
    Tensor::<f32>::eye(1 << 32);
}

/// Every infallible constructor has a `try_` twin that returns the error.
#[test]
fn try_constructors_return_the_error() {
    let w = [WRAPS_TO_2, 2];
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let errors = [
        ("full", Tensor::<f32>::try_full(&w, 1.0).unwrap_err()),
        ("full", Tensor::<f32>::try_zeros(&w).unwrap_err()),
        ("full", Tensor::<f32>::try_ones(&w).unwrap_err()),
        (
            "uniform",
            Tensor::<f32>::try_uniform(&w, 0.0, 1.0, &mut rng).unwrap_err(),
        ),
        (
            "uniform",
            Tensor::<f32>::try_uniform_seeded(&w, 0.0, 1.0, 0).unwrap_err(),
        ),
        (
            "normal",
            Tensor::<f32>::try_normal(&w, 0.0, 1.0, &mut rng).unwrap_err(),
        ),
        (
            "normal",
            Tensor::<f32>::try_randn_seeded(&w, 0).unwrap_err(),
        ),
    ];
    for (op, e) in &errors {
        assert_over_limit(e, op, &w);
    }
    assert_over_limit(
        &Tensor::<f32>::try_eye(1 << 32).unwrap_err(),
        "eye",
        &[1 << 32, 1 << 32],
    );
    assert_over_limit(
        &Tensor::<f64>::try_linspace(0.0, 1.0, 1 << 61).unwrap_err(),
        "linspace",
        &[1 << 61],
    );
    // A bad range is an error from `try_uniform` too (`uniform` panics).
    assert!(Tensor::<f32>::try_uniform_seeded(&[2], 1.0, 1.0, 0).is_err());
    assert!(Tensor::<f32>::try_uniform_seeded(&[0], 1.0, 1.0, 0).is_ok());
    // And the twins agree with the infallible constructors.
    assert_eq!(
        Tensor::<f32>::try_uniform_seeded(&[3], 0.0, 1.0, 5).unwrap(),
        Tensor::uniform_seeded(&[3], 0.0, 1.0, 5)
    );
    assert_eq!(
        Tensor::<f64>::try_randn_seeded(&[3], 5).unwrap(),
        Tensor::randn_seeded(&[3], 5)
    );
    assert_eq!(Tensor::<f64>::try_eye(3).unwrap(), Tensor::eye(3));
    assert_eq!(
        Tensor::<f32>::try_linspace(0.0, 1.0, 5).unwrap(),
        Tensor::linspace(0.0, 1.0, 5)
    );
    assert_eq!(Tensor::<f32>::try_zeros(&[0, 2]).unwrap().shape(), &[0, 2]);
}

/// `arange(0, 1e15, 1)` used to abort the process on allocation.
#[test]
fn arange_too_large_for_memory_is_an_error() {
    let e = Tensor::<f32>::arange(0.0, 1e15, 1.0).unwrap_err();
    assert_refused(
        &e,
        "arange",
        &[1_000_000_000_000_000],
        4_000_000_000_000_000,
    );
    let e = Tensor::<f64>::arange(0.0, 2e18, 1.0).unwrap_err();
    assert_over_limit(&e, "arange", &[2_000_000_000_000_000_000]);
    // `end - start` overflows `f64`: the count saturates, then fails the check.
    let e = Tensor::<f32>::arange(-f64::MAX, f64::MAX, 1.0).unwrap_err();
    assert_over_limit(&e, "arange", &[usize::MAX]);
}

/// Kernels whose output would be too large for memory, or that the
/// allocator refuses, return the error instead of wrapping or aborting.
#[test]
fn kernel_outputs_too_large_are_errors() {
    let s = Tensor::scalar(1.0f32);
    // Broadcasting two valid views to a shape whose count overflows.
    let col = s.broadcast_to(&[1 << 32, 1]).unwrap();
    let row = s.broadcast_to(&[1, 1 << 32]).unwrap();
    assert_over_limit(&col.add(&row).unwrap_err(), "add", &[1 << 32, 1 << 32]);
    assert_over_limit(
        &col.zip_with(&row, "my_op", |a, _| a).unwrap_err(),
        "my_op",
        &[1 << 32, 1 << 32],
    );
    assert_over_limit(
        &col.where_cond(&row, &s).unwrap_err(),
        "where",
        &[1 << 32, 1 << 32],
    );
    assert_over_limit(
        &col.matmul(&row).unwrap_err(),
        "matmul",
        &[1 << 32, 1 << 32],
    );
    let batch = s.broadcast_to(&[1 << 40, 1, 1]).unwrap();
    let wide = s.broadcast_to(&[1, 1 << 40]).unwrap();
    assert_over_limit(
        &batch.matmul(&wide).unwrap_err(),
        "matmul",
        &[1 << 40, 1, 1 << 40],
    );
    let long = s.broadcast_to(&[1 << 59]).unwrap();
    let n = 3 << 59;
    assert_over_limit(
        &Tensor::concat(&[&long, &long, &long], 0).unwrap_err(),
        "concat",
        &[n],
    );
    let many = vec![&long; 40];
    assert_over_limit(
        &Tensor::concat(&many, 0).unwrap_err(),
        "concat",
        &[usize::MAX],
    );
    assert_over_limit(
        &Tensor::stack(&[&long, &long], 0).unwrap_err(),
        "concat",
        &[2, 1 << 59],
    );
    assert_over_limit(
        &Tensor::<f32>::one_hot(&[0, 1], usize::MAX).unwrap_err(),
        "one_hot",
        &[2, usize::MAX],
    );

    // Valid views whose results no allocator can hold (2^61 bytes and up).
    let v = s.broadcast_to(&[1 << 58, 2]).unwrap();
    assert_refused(&v.add(&s).unwrap_err(), "add", &[1 << 58, 2], 1 << 61);
    assert_refused(&v.mul(&v).unwrap_err(), "mul", &[1 << 58, 2], 1 << 61);
    assert_refused(
        &v.where_cond(&s, &s).unwrap_err(),
        "where",
        &[1 << 58, 2],
        1 << 61,
    );
    let reduced = [1 << 58];
    assert_refused(&v.sum(&[1], false).unwrap_err(), "sum", &reduced, 1 << 60);
    assert_refused(&v.mean(&[1], false).unwrap_err(), "sum", &reduced, 1 << 60);
    assert_refused(&v.max(&[1], false).unwrap_err(), "max", &reduced, 1 << 60);
    assert_refused(
        &v.min(&[1], true).unwrap_err(),
        "min",
        &[1 << 58, 1],
        1 << 60,
    );
    assert!(matches!(
        v.var(&[1], false, 0).unwrap_err(),
        Error::TooLarge { .. }
    ));
    assert!(matches!(
        v.logsumexp(&[1], false).unwrap_err(),
        Error::TooLarge {
            op: "logsumexp",
            ..
        }
    ));
    for e in [
        v.argmax(1, false).unwrap_err(),
        v.softmax(1).unwrap_err(),
        v.log_softmax(0).unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                Error::TooLarge {
                    refused_bytes: Some(_),
                    ..
                }
            ),
            "{e:?}"
        );
    }
    // A reshape that must copy (rows of a broadcast, transposed).
    let pair = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]).unwrap();
    let cols = pair.broadcast_to(&[1 << 58, 2]).unwrap().t().unwrap();
    assert_refused(
        &cols.reshape(&[1 << 59]).unwrap_err(),
        "reshape",
        &[2, 1 << 58],
        1 << 61,
    );
    let m = s.broadcast_to(&[1 << 30, 1]).unwrap();
    let n = s.broadcast_to(&[1, 1 << 29]).unwrap();
    assert_refused(
        &m.matmul(&n).unwrap_err(),
        "matmul",
        &[1 << 30, 1 << 29],
        1 << 61,
    );
    let idx = Tensor::<f32>::zeros(&[1])
        .broadcast_to(&[1 << 58, 2])
        .unwrap();
    assert!(matches!(
        v.gather(1, &idx).unwrap_err(),
        Error::TooLarge { op: "gather", .. }
    ));
    // A huge view still prints (summarised) without touching much.
    assert!(v.to_string().contains("..."));
}

/// Maps (every unary and scalar op) of a huge view return the allocation
/// error, naming the op (issue 11: every op returns `Result`; they used to
/// panic).
#[test]
fn maps_of_huge_views_are_errors() {
    let v = Tensor::scalar(1.0f32).broadcast_to(&[1 << 58, 2]).unwrap();
    let shape = [1 << 58, 2];
    for (e, op) in [
        (v.map(|x| x + 1.0).unwrap_err(), "map"),
        (v.exp().unwrap_err(), "exp"),
        (v.neg().unwrap_err(), "neg"),
        (v.sin().unwrap_err(), "sin"),
        (v.cos().unwrap_err(), "cos"),
        (v.clamp(0.0, 1.0).unwrap_err(), "clamp"),
        (v.add_scalar(1.0).unwrap_err(), "add_scalar"),
        (v.sub_scalar(1.0).unwrap_err(), "sub_scalar"),
        (v.rsub_scalar(1.0).unwrap_err(), "rsub_scalar"),
        (v.gt_scalar(0.0).unwrap_err(), "gt_scalar"),
        (v.maximum_scalar(0.0).unwrap_err(), "maximum_scalar"),
    ] {
        assert_refused(&e, op, &shape, 1 << 61);
    }
    // A flatten that must copy (rows of a broadcast, transposed).
    let pair = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]).unwrap();
    let cols = pair.broadcast_to(&[1 << 58, 2]).unwrap().t().unwrap();
    assert_refused(
        &cols.flatten().unwrap_err(),
        "reshape",
        &[2, 1 << 58],
        1 << 61,
    );
}

/// Conversions that must materialise a huge view (they stay infallible)
/// panic with a message instead of aborting the process.
#[test]
fn infallible_copies_of_huge_views_panic_instead_of_aborting() {
    let v = Tensor::scalar(1.0f32).broadcast_to(&[1 << 58, 2]).unwrap();
    for r in [
        std::panic::catch_unwind(|| drop(v.to_contiguous())),
        std::panic::catch_unwind(|| drop(v.to_vec())),
    ] {
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert_eq!(
            msg,
            &format!(
                "could not allocate {} bytes for {} elements",
                1u64 << 61,
                1u64 << 59
            )
        );
    }
}

/// An empty tensor with a long axis prints a few `[]`, not one per index.
#[test]
fn display_of_empty_tensors_with_long_axes_is_short() {
    let z = Tensor::<f32>::zeros(&[1 << 40, 0]);
    assert_eq!(z.to_string(), "[[],\n [],\n [],\n ...,\n [],\n [],\n []]");
    assert_eq!(Tensor::<f32>::zeros(&[0, 1 << 40]).to_string(), "[]");
    assert_eq!(
        Tensor::<f32>::zeros(&[3, 0]).to_string(),
        "[[],\n [],\n []]"
    );
    assert_eq!(z.sum_all().unwrap().item().unwrap(), 0.0);
    assert_eq!(z.sum(&[0], false).unwrap().shape(), &[0]);
}

/// Dimensions for the property test: small ones, zeros, and huge ones
/// (around the `f32` size limit of `2^61 - 1` elements, and near
/// `usize::MAX`).
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..4,
        1 => Just(0usize),
        1 => (20u32..64).prop_map(|b| 1usize << b),
        1 => (1usize << 59)..(1usize << 62),
        1 => (usize::MAX - 3)..=usize::MAX,
        1 => any::<usize>(),
    ]
}

/// Element count and span (zero axes counted as 1) in `u128`, saturating.
fn counts(shape: &[usize]) -> (u128, u128) {
    let p = shape
        .iter()
        .fold(1u128, |a, &d| a.saturating_mul(d as u128));
    let s = shape
        .iter()
        .fold(1u128, |a, &d| a.saturating_mul(d.max(1) as u128));
    (p, s)
}

/// Whether a shape fits the size limit (that of `f64`, for every type).
fn fits(shape: &[usize]) -> bool {
    counts(shape).1.saturating_mul(8) <= isize::MAX as u128
}

/// The checks every tensor (huge views included) must pass cheaply: its
/// numel is the true count, it prints, and small ones reduce correctly;
/// a reduction whose output no allocator can hold is an error.
fn check_ops(t: &Tensor<f32>, shape: &[usize]) -> Result<(), TestCaseError> {
    let (p, _) = counts(shape);
    prop_assert_eq!(t.numel() as u128, p);
    prop_assert_eq!(t.shape(), shape);
    let _ = t.to_string();
    const CHEAP: usize = 1 << 16;
    if t.numel() <= CHEAP {
        prop_assert_eq!(t.sum_all()?.item().unwrap(), t.numel() as f32);
    }
    for axis in 0..shape.len() {
        let mut out = shape.to_vec();
        out.remove(axis);
        let (out_n, out_span) = counts(&out);
        if t.numel() <= CHEAP && out_span <= CHEAP as u128 {
            let r = t.sum(&[axis], false).unwrap();
            prop_assert_eq!(r.shape(), &out[..]);
            prop_assert_eq!(r.numel() as u128, out_n);
            let want = shape[axis] as f32;
            prop_assert!(r.to_vec().iter().all(|&x| x == want));
        } else if out_n.saturating_mul(4) >= 1 << 61 {
            // Refused by any allocator before the reduction runs. (Other
            // large cases are skipped: they would run for ages or touch
            // much memory.)
            let e = t.sum(&[axis], false).unwrap_err();
            prop_assert!(matches!(e, Error::TooLarge { op: "sum", .. }), "{:?}", e);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// A reshape of a small tensor to any shape errors or gives the true
    /// element count, and the result works.
    #[test]
    fn reshape_errors_or_keeps_the_true_count(
        src in prop::collection::vec(0usize..4, 0..3),
        shape in prop::collection::vec(dim(), 0..5),
    ) {
        let t = Tensor::<f32>::ones(&src);
        let (p, _) = counts(&shape);
        match t.reshape(&shape) {
            Ok(r) => {
                prop_assert!(fits(&shape));
                prop_assert_eq!(p, t.numel() as u128);
                check_ops(&r, &shape)?;
            }
            Err(e @ Error::TooLarge { .. }) => {
                prop_assert!(!fits(&shape));
                prop_assert_eq!(e.to_string(), too_large("reshape", &shape));
            }
            Err(e) => {
                prop_assert!(fits(&shape) && p != t.numel() as u128, "{:?}", e);
                let is_count = matches!(e, Error::ElementCount { op: "reshape", .. });
                prop_assert!(is_count);
            }
        }
    }

    /// A broadcast of a small tensor (with length-1 axes) to any shape
    /// errors or gives the true element count, and the result works.
    #[test]
    fn broadcast_to_errors_or_keeps_the_true_count(
        src in prop::collection::vec(prop_oneof![Just(1usize), 0usize..3], 0..3),
        lead in prop::collection::vec(dim(), 0..3),
        tail in prop::collection::vec(dim(), 0..3),
        keep in any::<bool>(),
    ) {
        let t = Tensor::<f32>::ones(&src);
        // The target: extra leading axes, then `src` with its length-1 axes
        // (or, when `keep` is false, any axis) replaced from `tail`.
        let mut shape = lead.clone();
        for (i, &d) in src.iter().enumerate() {
            let other = tail.get(i).copied();
            shape.push(match other {
                Some(o) if d == 1 || !keep => o,
                _ => d,
            });
        }
        let lead_n = shape.len() - src.len();
        let compatible = src
            .iter()
            .zip(&shape[lead_n..])
            .all(|(&d, &s)| d == s || d == 1);
        match t.broadcast_to(&shape) {
            Ok(b) => {
                prop_assert!(compatible && fits(&shape));
                prop_assert!(b.shares_storage_with(&t) || t.numel() <= 1);
                check_ops(&b, &shape)?;
            }
            Err(e @ Error::TooLarge { .. }) => {
                prop_assert!(compatible && !fits(&shape));
                prop_assert_eq!(e.to_string(), too_large("broadcast_to", &shape));
            }
            Err(e) => {
                prop_assert!(!compatible, "{:?}", e);
                let is_mismatch = matches!(e, Error::ShapeMismatch { op: "broadcast_to", .. });
                prop_assert!(is_mismatch);
            }
        }
    }
}
