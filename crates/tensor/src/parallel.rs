//! When and how kernels split work across threads.
//!
//! Work is cut into fixed-size chunks that do not depend on the number of
//! threads, and partial results (of reductions) are combined in chunk order,
//! so a result is bit-for-bit the same from run to run and for any thread
//! count. Below [`PAR_THRESHOLD`] elements everything runs on the calling
//! thread: small tensors never pay for waking the pool.

use rayon::prelude::*;

/// Element count below which kernels stay serial.
pub const PAR_THRESHOLD: usize = 1 << 15;

/// Elements per parallel chunk. Fixed, so that how work (and rounding) is
/// split does not depend on the number of threads.
pub const CHUNK: usize = 1 << 14;

/// Whether a job of `n` elements should use the thread pool: at least
/// [`PAR_THRESHOLD`] elements and more than one thread. Other crates of the
/// workspace (the optimisers in `tapegrad-nn`) follow the same rule.
#[inline]
pub fn use_parallel(n: usize) -> bool {
    n >= PAR_THRESHOLD && rayon::current_num_threads() > 1
}

/// Fills `out` by calling `f(start, chunk)` on fixed-size chunks, in
/// parallel when large.
pub(crate) fn fill_chunks<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if use_parallel(out.len()) {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, c)| f(i * CHUNK, c));
    } else {
        f(0, out);
    }
}

/// Fills `out`, seen as rows of length `row`, by calling `f(r, c, seg)` on
/// pieces `seg = out[r·row + c ..][..seg.len()]` that each lie inside one
/// row. The pieces come from cutting `out` at fixed [`CHUNK`] boundaries, so
/// a single long row (a tensor plus a 0-d scalar, say) is split across
/// threads as well as many short ones are; below [`PAR_THRESHOLD`] it all
/// runs on the calling thread.
pub(crate) fn fill_segments<T: Send>(
    out: &mut [T],
    row: usize,
    f: impl Fn(usize, usize, &mut [T]) + Sync + Send,
) {
    if row == 0 || out.is_empty() {
        return;
    }
    let walk = |start: usize, chunk: &mut [T]| {
        let mut pos = 0;
        while pos < chunk.len() {
            let g = start + pos;
            let (r, c) = (g / row, g % row);
            let len = (row - c).min(chunk.len() - pos);
            f(r, c, &mut chunk[pos..pos + len]);
            pos += len;
        }
    };
    if use_parallel(out.len()) {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, c)| walk(i * CHUNK, c));
    } else {
        walk(0, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_every_element_once_and_stay_inside_rows() {
        for (n, row) in [(10, 3), (1 << 17, 1 << 17), (1 << 17, 5), (70_000, 40_000)] {
            let mut out = vec![(usize::MAX, usize::MAX); n];
            fill_segments(&mut out, row, |r, c, seg| {
                assert!(c + seg.len() <= row);
                for (i, o) in seg.iter_mut().enumerate() {
                    *o = (r, c + i);
                }
            });
            for (g, &(r, c)) in out.iter().enumerate() {
                assert_eq!((r, c), (g / row, g % row));
            }
        }
    }
}
