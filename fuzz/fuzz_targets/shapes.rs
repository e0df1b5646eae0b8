//! Shapes, views and kernels of `tapegrad-tensor` on arbitrary shapes,
//! strides, axes and ranges, including zero and huge sizes.
//!
//! An input is decoded (with `arbitrary`) into a starting tensor and a list
//! of ops applied one after another to a small pool of tensors. Every call
//! that returns `Result` is made with whatever the input says, so a bad
//! argument must come back as an error; calls documented to panic (`zeros`
//! or `full` of a shape whose product overflows) are not made. Ops that
//! write a result proportional to its size are only made when that size is
//! at most [`CAP`] elements, so a valid but huge request does not just run
//! the process out of memory; views of any size are always made.
//!
//! Oracles, checked after every op that returned a tensor:
//! - the shape's element count fits in `usize` and the layout stays inside
//!   its buffer (the invariants at the top of `layout.rs`);
//! - small tensors (at most [`CAP`] elements): `to_vec`, `to_contiguous`,
//!   `get` and `sum_all` agree with each other, exactly (the data are small
//!   whole numbers, so sums are exact in `f32`).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tapegrad_tensor::Tensor;

/// Most elements an op may read or write.
const CAP: usize = 1 << 12;
/// Tensors kept at once.
const POOL: usize = 4;
/// Longest shape, index list or op list decoded.
const MAX_RANK: usize = 10;
const MAX_OPS: usize = 24;

const HUGE: [usize; 16] = [
    usize::MAX,
    usize::MAX - 1,
    usize::MAX / 2,
    usize::MAX / 2 + 1,
    usize::MAX / 3 + 1,
    1 << 63,
    1 << 62,
    1 << 48,
    1 << 40,
    (1 << 32) + 1,
    1 << 32,
    u32::MAX as usize,
    1 << 31,
    65_537,
    1 << 16,
    4_097,
];

/// A length, index or step: mostly 0..8, sometimes up to 64, sometimes one
/// of the [`HUGE`] values.
#[derive(Clone, Copy)]
struct Dim(usize);

impl std::fmt::Debug for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'a> Arbitrary<'a> for Dim {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let b = u8::arbitrary(u)?;
        Ok(Dim(match b {
            0..=207 => usize::from(b % 8),
            208..=223 => u.int_in_range(8..=64)?,
            _ => HUGE[usize::from(b - 224) % HUGE.len()],
        }))
    }
}

/// A `reshape_infer` entry: mostly a [`Dim`], sometimes -1 or below.
#[derive(Clone, Copy)]
struct SDim(isize);

impl std::fmt::Debug for SDim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'a> Arbitrary<'a> for SDim {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(SDim(match u8::arbitrary(u)? {
            0..=39 => -1,
            40..=43 => -2,
            44..=45 => isize::MIN,
            _ => Dim::arbitrary(u)?.0 as isize,
        }))
    }
}

fn dims(v: &[Dim]) -> Vec<usize> {
    v.iter().take(MAX_RANK).map(|d| d.0).collect()
}

fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Set `FUZZ_AVOID_KNOWN=1` to skip inputs that hit the open bugs listed
/// in `fuzz/README.md`, so that a long run explores past them instead of
/// crashing on them again and again. CI leaves it unset.
fn avoid_known() -> bool {
    static AVOID: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVOID.get_or_init(|| std::env::var_os("FUZZ_AVOID_KNOWN").is_some_and(|v| v == "1"))
}

/// Open bugs: a shape whose element count overflows `usize` (accepted by
/// `reshape` and `broadcast_to`), or an empty shape whose nonzero
/// dimensions' product overflows (contiguous strides, and
/// `Layout::numel`'s product before it reaches the 0). Whether `shape` is
/// one (always false unless avoiding known bugs).
fn known_bad(shape: &[usize]) -> bool {
    avoid_known()
        && shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d.max(1)))
            .is_none()
}

fn small(shape: &[usize]) -> bool {
    numel(shape).is_some_and(|n| n <= CAP)
}

#[derive(Arbitrary, Debug)]
enum Start {
    FromVec { shape: Vec<Dim>, extra: u8 },
    FromSlice { shape: Vec<Dim>, extra: u8 },
    Zeros(Vec<Dim>),
    Scalar(i8),
    Arange(u8),
    Eye(u8),
    Linspace(u16),
    OneHot { labels: Vec<Dim>, classes: Dim },
}

#[derive(Arbitrary, Debug)]
enum Op {
    New(Start),
    Use(u8),
    Reshape(Vec<Dim>),
    ReshapeInfer(Vec<SDim>),
    Flatten,
    BroadcastTo(Vec<Dim>),
    Permute(Vec<Dim>),
    Transpose(Dim, Dim),
    T,
    Narrow(Dim, Dim, Dim),
    Slice(Dim, Dim, Dim, Dim),
    Select(Dim, Dim),
    Unsqueeze(Dim),
    Squeeze(Dim),
    SqueezeAll,
    Reduce {
        kind: u8,
        axes: Vec<Dim>,
        keepdim: bool,
    },
    ArgReduce {
        max: bool,
        axis: Dim,
        keepdim: bool,
    },
    Softmax {
        log: bool,
        axis: Dim,
    },
    Binary {
        kind: u8,
        other: u8,
    },
    Where {
        cond: u8,
        other: u8,
    },
    Matmul {
        other: u8,
        swap: bool,
    },
    Concat {
        others: Vec<u8>,
        axis: Dim,
        stack: bool,
    },
    IndexSelect {
        axis: Dim,
        indices: Vec<Dim>,
    },
    GatherRows(Vec<Dim>),
    Gather {
        axis: Dim,
        index: u8,
    },
    Get(Vec<Dim>),
    Item,
    Unary(u8),
    MakeMut,
    Cast,
    Display,
}

#[derive(Arbitrary, Debug)]
struct Input {
    start: Start,
    ops: Vec<Op>,
}

/// Whole numbers in -3..=3, so sums and products stay exact in `f32`.
fn values(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i % 7) as f32 - 3.0).collect()
}

fn start(s: &Start) -> Option<Tensor<f32>> {
    let made = match s {
        Start::FromVec { shape, extra } | Start::FromSlice { shape, extra } => {
            let shape = dims(shape);
            if known_bad(&shape) {
                return None;
            }
            // The right length when that is small; otherwise (or on request)
            // a wrong one, which must be an error.
            let len = match numel(&shape) {
                Some(n) if n <= CAP && extra % 8 != 7 => n,
                Some(n) if n < CAP => n + 1,
                _ => usize::from(*extra % 4),
            };
            if matches!(s, Start::FromVec { .. }) {
                Tensor::from_vec(values(len), &shape)
            } else {
                Tensor::from_slice(&values(len), &shape)
            }
        }
        // `zeros` is documented to panic on a shape too large for memory;
        // `try_zeros` is the fallible one, so any shape goes.
        Start::Zeros(shape) => {
            let shape = dims(shape);
            // Shapes that fit are kept small (a real buffer is allocated);
            // those whose size overflows must be refused with an error.
            if known_bad(&shape) || numel(&shape).is_some_and(|n| n > CAP) {
                return None;
            }
            Tensor::try_zeros(&shape)
        }
        Start::Scalar(v) => Ok(Tensor::scalar(f32::from(*v))),
        Start::Arange(n) => Tensor::arange(0.0, f64::from(*n), 1.0),
        Start::Eye(n) => Ok(Tensor::eye(usize::from(*n % 64))),
        Start::Linspace(n) => Ok(Tensor::linspace(-1.0, 1.0, usize::from(*n) % CAP)),
        Start::OneHot { labels, classes } => {
            let labels = dims(labels);
            if known_bad(&[labels.len(), classes.0]) {
                return None;
            }
            // A product that overflows must be an error; a valid huge one
            // would only run out of memory.
            match labels.len().checked_mul(classes.0) {
                Some(n) if n > CAP => return None,
                _ => Tensor::one_hot(&labels, classes.0),
            }
        }
    };
    made.ok().inspect(|t| check(t, s))
}

/// The layout invariants, and for small tensors agreement between the ways
/// of reading the elements.
fn check(t: &Tensor<f32>, op: &dyn std::fmt::Debug) {
    let shape = t.dims();
    let n = numel(shape).unwrap_or_else(|| {
        panic!("{op:?} returned shape {shape:?}, whose element count overflows usize")
    });
    assert_eq!(t.numel(), n, "{op:?}: numel of {shape:?}");
    assert_eq!(
        t.strides().len(),
        shape.len(),
        "{op:?}: rank of the strides"
    );
    let buf = t.storage_slice().len();
    if n == 0 {
        assert_eq!(t.layout().offset(), 0, "{op:?}: empty view with an offset");
    } else {
        let last = shape
            .iter()
            .zip(t.strides())
            .try_fold(t.layout().offset(), |acc, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
            });
        assert!(
            last.is_some_and(|l| l < buf),
            "{op:?}: view {shape:?} strides {:?} offset {} reaches past its buffer of {buf}",
            t.strides(),
            t.layout().offset()
        );
    }
    if n > CAP {
        return;
    }
    let v = t.to_vec();
    assert_eq!(v.len(), n, "{op:?}: to_vec length");
    let c = t.to_contiguous();
    assert!(c.is_contiguous());
    let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&c.to_vec()), bits(&v), "{op:?}: to_contiguous differs");
    if n > 0 {
        // The last element through `get`, by its multi-index.
        let index: Vec<usize> = shape.iter().map(|&d| d - 1).collect();
        let got = t.get(&index).expect("an index inside the shape");
        assert_eq!(
            got.to_bits(),
            v[n - 1].to_bits(),
            "{op:?}: get of the last element"
        );
    }
    if v.iter().all(|x| x.fract() == 0.0 && x.abs() <= 64.0) {
        let exact: f64 = v.iter().map(|&x| f64::from(x)).sum();
        assert_eq!(
            f64::from(
                t.sum_all()
                    .expect("sum_all of a valid tensor")
                    .item()
                    .expect("0-d")
            ),
            exact,
            "{op:?}: sum_all"
        );
    }
}

fn pick(pool: &[Tensor<f32>], i: u8) -> &Tensor<f32> {
    &pool[usize::from(i) % pool.len()]
}

/// Open bug: joining or index-selecting an empty tensor loops over the
/// product of the axes before `axis`, which can be huge when another axis
/// is 0. Whether `t` would hit it (always false unless avoiding known bugs).
fn empty_loop(t: &Tensor<f32>, axis: usize) -> bool {
    let mut before = t.dims().iter().take(axis);
    let outer = before.try_fold(1usize, |a, &d| a.checked_mul(d.max(1)));
    avoid_known() && numel(t.dims()) == Some(0) && outer.is_none_or(|n| n > CAP)
}

/// Whether reducing `shape` over `axes` gives at most [`CAP`] elements. An
/// empty input can have a huge result (`max` over the empty axis of a
/// `[0, 2^40]` tensor is 2^40 `-inf`s, as documented). Axes that are out of
/// range or repeated count as small: the call must fail.
fn reduced_small(shape: &[usize], axes: &[usize]) -> bool {
    let kept: Vec<usize> = (0..shape.len())
        .filter(|i| !axes.contains(i))
        .map(|i| shape[i])
        .collect();
    small(&kept)
}

/// Whether `Display` visits at most [`CAP`] positions: it walks every index
/// of each axis in turn (at most 7 when summarised), so an empty `[2^40, 0]`
/// tensor would print 2^40 empty rows (an open bug; a non-empty tensor of
/// at most [`CAP`] elements never visits more).
fn printed_small(shape: &[usize]) -> bool {
    let summarised = numel(shape).is_none_or(|n| n > 1000);
    let mut visited = 1usize;
    shape.iter().all(|&d| {
        let d = if summarised && d > 6 { 7 } else { d };
        visited = visited.saturating_mul(d.max(1));
        visited <= CAP
    })
}

/// Whether every element is a whole number small enough for products and
/// sums of up to [`CAP`] of them to be exact in `f32`.
fn exact(t: &Tensor<f32>) -> bool {
    t.to_vec()
        .iter()
        .all(|x| x.fract() == 0.0 && x.abs() <= 16.0)
}

/// Naive matmul of two small 2-d tensors, for the oracle.
fn matmul_2d(a: &Tensor<f32>, b: &Tensor<f32>) -> Vec<f32> {
    let (m, k, n) = (a.dims()[0], a.dims()[1], b.dims()[1]);
    let (av, bv) = (a.to_vec(), b.to_vec());
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| av[i * k + p] * bv[p * n + j]).sum();
        }
    }
    out
}

/// Elements a matmul would write times its inner length, or `None` when
/// the shapes do not multiply (so the call must fail) or the count
/// overflows.
fn matmul_work(a: &[usize], b: &[usize]) -> Option<usize> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (m, k) = if a.len() == 1 {
        (1, a[0])
    } else {
        (a[a.len() - 2], a[a.len() - 1])
    };
    let (k2, n) = if b.len() == 1 {
        (b[0], 1)
    } else {
        (b[b.len() - 2], b[b.len() - 1])
    };
    if k != k2 {
        return None;
    }
    let (ba, bb) = (
        &a[..a.len().saturating_sub(2)],
        &b[..b.len().saturating_sub(2)],
    );
    let batch = tapegrad_tensor::broadcast_shapes("fuzz", ba, bb).ok()?;
    numel(&batch)?
        .checked_mul(m)?
        .checked_mul(n)?
        .checked_mul(k.max(1))
}

/// Applies `op` to `cur` (and the pool); `None` when the op made no tensor.
fn apply(op: &Op, cur: &Tensor<f32>, pool: &mut Vec<Tensor<f32>>) -> Option<Tensor<f32>> {
    let n = numel(cur.dims());
    let fits = n.is_some_and(|n| n <= CAP);
    let r = match op {
        Op::New(s) => {
            let t = start(s)?;
            if pool.len() < POOL {
                pool.push(t.clone());
            } else {
                let i = pool.len() - 1;
                pool[i] = t.clone();
            }
            return Some(t);
        }
        Op::Use(i) => return Some(pick(pool, *i).clone()),
        Op::Reshape(shape) => {
            let shape = dims(shape);
            if known_bad(&shape) {
                return None;
            }
            // Equal counts on a large view that is not contiguous would copy.
            if !fits && !cur.is_contiguous() && numel(&shape) == n {
                return None;
            }
            cur.reshape(&shape)
        }
        Op::ReshapeInfer(shape) => {
            let shape: Vec<isize> = shape.iter().take(MAX_RANK).map(|d| d.0).collect();
            // Open bug: the product of the known axes is not checked.
            let mut known = shape.iter().filter(|&&d| d != -1);
            if avoid_known() && known.try_fold(1isize, |a, &d| a.checked_mul(d)).is_none() {
                return None;
            }
            if known_bad(&shape.iter().map(|&d| d.max(0) as usize).collect::<Vec<_>>()) {
                return None;
            }
            if !fits && !cur.is_contiguous() {
                return None;
            }
            cur.reshape_infer(&shape)
        }
        Op::Flatten if fits || cur.is_contiguous() => cur.flatten(),
        Op::BroadcastTo(shape) if !known_bad(&dims(shape)) => cur.broadcast_to(&dims(shape)),
        Op::Permute(p) => cur.permute(&dims(p)),
        Op::Transpose(a, b) => cur.transpose(a.0, b.0),
        Op::T => cur.t(),
        Op::Narrow(a, s, l) => cur.narrow(a.0, s.0, l.0),
        Op::Slice(a, s, e, st) => {
            // Open bug: the new stride `stride * step` is not checked.
            let stride = cur.strides().get(a.0).copied().unwrap_or(0);
            if avoid_known() && stride.checked_mul(st.0).is_none() {
                return None;
            }
            cur.slice(a.0, s.0, e.0, st.0)
        }
        Op::Select(a, i) => cur.select(a.0, i.0),
        Op::Unsqueeze(a) => cur.unsqueeze(a.0),
        Op::Squeeze(a) => cur.squeeze(a.0),
        Op::SqueezeAll => cur.squeeze_all(),
        Op::Reduce {
            kind,
            axes,
            keepdim,
        } if fits && reduced_small(cur.dims(), &dims(axes)) => {
            let (axes, k) = (dims(axes), *keepdim);
            match kind % 6 {
                0 => cur.sum(&axes, k),
                1 => cur.mean(&axes, k),
                2 => cur.max(&axes, k),
                3 => cur.min(&axes, k),
                4 => cur.var(&axes, k, usize::from(kind / 6 % 3)),
                _ => cur.logsumexp(&axes, k),
            }
        }
        Op::ArgReduce { max, axis, keepdim } if fits && reduced_small(cur.dims(), &[axis.0]) => {
            match max {
                true => cur.argmax(axis.0, *keepdim),
                false => cur.argmin(axis.0, *keepdim),
            }
        }
        Op::Softmax { log, axis } if fits => match log {
            true => cur.log_softmax(axis.0),
            false => cur.softmax(axis.0),
        },
        Op::Binary { kind, other } => {
            let o = pick(pool, *other);
            let out = tapegrad_tensor::broadcast_shapes("fuzz", cur.dims(), o.dims());
            // A mismatch must be an error; a valid result must be small.
            if out.is_ok_and(|s| !small(&s) || known_bad(&s)) {
                return None;
            }
            match kind % 6 {
                0 => cur.add(o),
                1 => cur.sub(o),
                2 => cur.mul(o),
                3 => cur.div(o),
                4 => cur.maximum(o),
                _ => cur.lt_mask(o),
            }
        }
        Op::Where { cond, other } => {
            let (c, o) = (pick(pool, *cond), pick(pool, *other));
            let out = tapegrad_tensor::broadcast_shapes("fuzz", c.dims(), cur.dims())
                .and_then(|s| tapegrad_tensor::broadcast_shapes("fuzz", &s, o.dims()));
            if out.is_ok_and(|s| !small(&s) || known_bad(&s)) {
                return None;
            }
            c.where_cond(cur, o)
        }
        Op::Matmul { other, swap } => {
            let o = pick(pool, *other).clone();
            let (a, b) = if *swap { (&o, cur) } else { (cur, &o) };
            // Open bugs: the result's element count is not checked, and an
            // empty result with huge axes overflows its strides.
            if known_bad(&[a.dims(), b.dims()].concat()) {
                return None;
            }
            match matmul_work(a.dims(), b.dims()) {
                Some(w) if w <= 16 * CAP => {}
                // Shapes that do not multiply must give an error.
                None if small(a.dims()) && small(b.dims()) => {}
                _ => return None,
            }
            let r = a.matmul(b);
            if let Ok(c) = &r {
                if a.ndim() == 2 && b.ndim() == 2 && exact(a) && exact(b) {
                    let want = matmul_2d(a, b);
                    assert_eq!(
                        c.to_vec(),
                        want,
                        "matmul of {:?} by {:?}",
                        a.dims(),
                        b.dims()
                    );
                }
            }
            r
        }
        Op::Concat {
            others,
            axis,
            stack,
        } => {
            let mut ts = vec![cur];
            ts.extend(others.iter().take(3).map(|&i| pick(pool, i)));
            if !ts.iter().all(|t| small(t.dims())) {
                return None;
            }
            // Open bugs: the joined length and the result's size are not
            // checked for overflow.
            let grown = |t: &&Tensor<f32>| {
                let mut dims = t.dims().iter();
                dims.try_fold(ts.len(), |a, &d| a.checked_mul(d.max(1)))
                    .is_none()
            };
            if avoid_known() && ts.iter().any(|t| empty_loop(t, axis.0) || grown(t)) {
                return None;
            }
            match stack {
                true => Tensor::stack(&ts, axis.0),
                false => Tensor::concat(&ts, axis.0),
            }
        }
        Op::IndexSelect { axis, indices }
            if fits && !(avoid_known() && empty_loop(cur, axis.0)) =>
        {
            cur.index_select(axis.0, &dims(indices))
        }
        Op::GatherRows(indices) if fits => cur.gather_rows(&dims(indices)),
        Op::Gather { axis, index } if fits => {
            let index = pick(pool, *index);
            if !small(index.dims()) {
                return None;
            }
            cur.gather(axis.0, index)
        }
        Op::Get(index) => {
            let index = dims(index);
            if let Ok(v) = cur.get(&index) {
                assert_eq!(index.len(), cur.ndim(), "get with a wrong-length index");
                assert!(index.iter().zip(cur.dims()).all(|(i, d)| i < d));
                let _ = v;
            }
            return None;
        }
        Op::Item => {
            assert_eq!(cur.item().is_ok(), n == Some(1), "item of {:?}", cur.dims());
            return None;
        }
        Op::Unary(k) if fits => match k % 6 {
            0 => cur.tanh(),
            1 => cur.exp(),
            2 => cur.relu(),
            3 => cur.neg(),
            4 => cur.sigmoid(),
            _ => cur.clamp(-1.0, 1.0),
        },
        Op::MakeMut if fits => {
            let mut t = cur.clone();
            let len = t.make_mut_slice().len();
            assert_eq!(len, cur.numel(), "make_mut_slice length");
            Ok(t)
        }
        Op::Cast if fits => Ok(cur.cast::<f64>().cast::<f32>()),
        Op::Display if fits && (!avoid_known() || printed_small(cur.dims())) => {
            let s = format!("{cur:.2}");
            assert!(!s.is_empty());
            return None;
        }
        _ => return None,
    };
    r.ok()
}

fuzz_target!(|input: Input| {
    let Some(first) = start(&input.start) else {
        return;
    };
    let mut pool = vec![first.clone()];
    let mut cur = first;
    for op in input.ops.iter().take(MAX_OPS) {
        if let Some(t) = apply(op, &cur, &mut pool) {
            check(&t, op);
            cur = t;
        }
    }
});
