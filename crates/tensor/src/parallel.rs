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

/// Elements per parallel chunk.
pub(crate) const CHUNK: usize = 1 << 14;

/// Whether a job of `n` elements should use the thread pool.
#[inline]
pub(crate) fn use_parallel(n: usize) -> bool {
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

/// Fills `out` in parallel chunks of whole rows of length `row` (at least
/// one row per chunk), serially when small.
pub(crate) fn fill_rows<T: Send>(
    out: &mut [T],
    row: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if row == 0 || out.is_empty() {
        return;
    }
    if use_parallel(out.len()) {
        let rows_per_chunk = CHUNK.div_ceil(row).max(1);
        out.par_chunks_mut(rows_per_chunk * row)
            .enumerate()
            .for_each(|(i, c)| f(i * rows_per_chunk, c));
    } else {
        f(0, out);
    }
}
