//! The planner every elementwise kernel shares: coalesce axes, then walk
//! rows (the innermost axis) with per-row base offsets.

use smallvec::SmallVec;

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
    pub(crate) fn of(layout: &Layout) -> Rows {
        let (outer, len, stride) = layout.split_inner();
        let mut bases = Vec::with_capacity(outer.numel().max(1));
        outer.for_each_offset(|o| bases.push(o));
        Rows { bases, len, stride }
    }
}
