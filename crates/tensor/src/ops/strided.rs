//! The planner every elementwise kernel shares: coalesce axes, then walk
//! rows (the innermost axis) with per-row base offsets.

use smallvec::SmallVec;

use crate::buffer::{try_vec, AllocError};
use crate::layout::Layout;

/// Merges adjacent axes that are contiguous with each other in *every* given
/// layout (all of the same shape), and drops length-1 axes, so that kernels
/// run the longest possible inner loops. A `[N, 1]` column or a contiguous
/// `[A, B, C]` becomes one long row.
pub(crate) fn coalesce<const K: usize>(layouts: [&Layout; K]) -> [Layout; K] {
    let shape = layouts[0].shape();
    let mut dims: SmallVec<[usize; 8]> = SmallVec::new();
    let mut strides: [SmallVec<[usize; 8]>; K] = std::array::from_fn(|_| SmallVec::new());
    for ax in 0..shape.len() {
        let d = shape[ax];
        if d == 1 {
            continue;
        }
        let merge = !dims.is_empty()
            && (0..K).all(|k| {
                let last = *strides[k].last().unwrap();
                last == layouts[k].strides()[ax] * d
            });
        if merge {
            *dims.last_mut().unwrap() *= d;
            for k in 0..K {
                *strides[k].last_mut().unwrap() = layouts[k].strides()[ax];
            }
        } else {
            dims.push(d);
            for k in 0..K {
                strides[k].push(layouts[k].strides()[ax]);
            }
        }
    }
    if shape.contains(&0) {
        dims = SmallVec::from_slice(&[0]);
        for s in strides.iter_mut() {
            *s = SmallVec::from_slice(&[1]);
        }
    }
    std::array::from_fn(|k| Layout {
        shape: dims.iter().copied().collect(),
        strides: strides[k].iter().copied().collect(),
        offset: layouts[k].offset(),
    })
}

/// A coalesced layout split into rows: the storage offset where each row
/// starts, the row length and the stride inside a row.
pub(crate) struct Rows {
    pub bases: Vec<usize>,
    pub len: usize,
    pub stride: usize,
}

impl Rows {
    /// The rows of `layout` (only tests need this infallible version).
    ///
    /// # Panics
    /// If the list of row starts cannot be allocated.
    #[cfg(test)]
    pub(crate) fn of(layout: &Layout) -> Rows {
        match Rows::try_of(layout) {
            Ok(r) => r,
            Err(e) => e.fail(),
        }
    }

    /// The rows of `layout`, or an [`AllocError`] if the list of row
    /// starts cannot be allocated.
    pub(crate) fn try_of(layout: &Layout) -> Result<Rows, AllocError> {
        let (outer, len, stride) = layout.split_inner();
        let mut bases = try_vec(outer.numel().max(1))?;
        outer.for_each_offset(|o| bases.push(o));
        Ok(Rows { bases, len, stride })
    }
}

/// Row length and in-row stride of a coalesced layout (a 0-d layout is one
/// row of length 1).
#[inline]
pub(crate) fn inner(l: &Layout) -> (usize, usize) {
    match (l.shape.last(), l.strides.last()) {
        (Some(&len), Some(&stride)) => (len, stride),
        _ => (1, 0),
    }
}

/// Calls `f(bases)` with the storage offsets where each row (the innermost
/// axis) starts, in each of `K` layouts of one shape, in row-major order.
/// Unlike [`Rows::try_of`] it allocates nothing, which matters for the small
/// tensors that run serially anyway. Visits nothing when the shape is empty.
#[inline]
pub(crate) fn for_each_row<const K: usize>(ls: [&Layout; K], mut f: impl FnMut([usize; K])) {
    let shape = ls[0].shape();
    if shape.contains(&0) {
        return;
    }
    let mut base: [usize; K] = std::array::from_fn(|k| ls[k].offset);
    let outer = shape.len().saturating_sub(1);
    let mut idx: SmallVec<[usize; 8]> = SmallVec::from_elem(0, outer);
    loop {
        f(base);
        // Advance the outer multi-index (odometer).
        let mut ax = outer;
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            for k in 0..K {
                base[k] += ls[k].strides[ax];
            }
            if idx[ax] < shape[ax] {
                break;
            }
            for k in 0..K {
                base[k] -= ls[k].strides[ax] * shape[ax];
            }
            idx[ax] = 0;
        }
    }
}

/// Serially fills `out` row by row over `K` coalesced layouts of one shape:
/// `f(bases, seg)` gets each row's starting offsets and the piece of `out`
/// that row produces.
///
/// # Panics
/// Unless the rows tile `out` exactly. A caller whose `f` writes all of each
/// `seg` has therefore written all of `out` when this returns.
pub(crate) fn fill_rows<U, const K: usize>(
    out: &mut [U],
    ls: [&Layout; K],
    mut f: impl FnMut([usize; K], &mut [U]),
) {
    let (len, _) = inner(ls[0]);
    let mut pos = 0;
    for_each_row(ls, |bases| {
        f(bases, &mut out[pos..pos + len]);
        pos += len;
    });
    assert_eq!(pos, out.len(), "rows must tile the output");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_the_allocating_planner() {
        let base = Layout::contiguous(&[3, 4, 5]);
        let views = [
            base.clone(),
            base.permute(&[2, 0, 1]).unwrap(),
            base.slice(1, 1, 4, 2).unwrap(),
            Layout::contiguous(&[4, 1])
                .broadcast_to(&[2, 3, 4, 5])
                .unwrap(),
            Layout::contiguous(&[]),
            Layout::contiguous(&[2, 0, 3]),
        ];
        for v in &views {
            let [c] = coalesce([v]);
            let mut got = Vec::new();
            for_each_row([&c], |[b]| got.push(b));
            let want = if c.numel() == 0 {
                vec![]
            } else {
                Rows::of(&c).bases
            };
            assert_eq!(got, want, "{v:?}");
            let mut out = vec![0usize; c.numel()];
            fill_rows(&mut out, [&c], |[b], seg| seg.fill(b + 1));
            assert!(out.iter().all(|&x| x > 0));
        }
    }
}
