//! When and how kernels split work across threads.
//!
//! Large jobs are dealt out statically, one contiguous run of chunks per
//! thread, the same way every call (see [`for_each_chunk`]). Reductions fold fixed-size
//! chunks whose boundaries do not depend on the number of threads and
//! combine the partial results in chunk order, so a result is bit-for-bit
//! the same from run to run and for any thread count; elementwise results
//! do not depend on the split at all. Below [`PAR_THRESHOLD`] elements
//! everything runs on the calling thread: small tensors never pay for
//! waking the pool.
//!
//! Which threads: a job started outside rayon's pool goes to a small team
//! of helper threads that spin for a moment between jobs, as OpenMP's do
//! (see the `team` module: waking a sleeping rayon worker took longer than
//! half a 1M-element add on the reference machine). The team has as many
//! threads as rayon's pool, so `RAYON_NUM_THREADS` sets both. A job started
//! on a rayon worker, nested in another job, or while another thread holds
//! the team runs on rayon as before. Matrix products go to rayon through
//! the `gemm` crate and tell the team's helpers to yield their cores.

use std::sync::atomic::{AtomicU64, Ordering};

use smallvec::SmallVec;

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

/// Fills `out` by calling `f(start, part)` on disjoint parts that together
/// are all of `out`, in parallel when large (see [`for_each_chunk`]).
/// Elementwise results do not depend on how the work is cut.
pub(crate) fn fill_chunks<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if use_parallel(out.len()) {
        for_each_chunk(out, CHUNK, f);
    } else {
        f(0, out);
    }
}

/// `f(c)` for every chunk index `c` in `0..chunks`, returned in chunk order
/// (so partial results combined left to right give the same bits for any
/// thread count); in parallel when `parallel`.
///
/// ```
/// use tapegrad_tensor::parallel::{map_chunks, CHUNK};
/// let xs = vec![1.0f64; 3 * CHUNK + 5];
/// let parts = map_chunks(xs.len().div_ceil(CHUNK), true, |c| {
///     xs[c * CHUNK..xs.len().min((c + 1) * CHUNK)].iter().sum::<f64>()
/// });
/// assert_eq!(parts, vec![CHUNK as f64, CHUNK as f64, CHUNK as f64, 5.0]);
/// ```
pub fn map_chunks<R: Send>(
    chunks: usize,
    parallel: bool,
    f: impl Fn(usize) -> R + Sync + Send,
) -> Vec<R> {
    if !parallel {
        return (0..chunks).map(f).collect();
    }
    let mut out: Vec<Option<R>> = (0..chunks).map(|_| None).collect();
    for_each_chunk(&mut out, 1, |start, part| {
        for (i, o) in part.iter_mut().enumerate() {
            *o = Some(f(start + i));
        }
    });
    out.into_iter()
        .map(|r| r.expect("for_each_chunk runs every chunk"))
        .collect()
}

/// How many threads [`for_each_chunk`] would use from here: the team's
/// outside rayon's pool, the pool's inside it.
pub(crate) fn thread_count() -> usize {
    if rayon::current_thread_index().is_none() {
        crate::team::size()
    } else {
        rayon::current_num_threads()
    }
}

/// Calls `f(start, chunk)` on every `chunk`-long piece of `out` (the last
/// may be shorter), on the calling thread and the team's or the pool's
/// (see the [module docs](self)).
///
/// Scheduling is static first: the pieces are dealt out as one contiguous
/// run per thread, the calling thread takes the first run itself, and each
/// thread works through its own run in order. A kernel called in a loop then
/// finds its run of the operands still in its core's cache from the last
/// call; with work stealing any thread took any piece, and the caller slept
/// while the pool worked. A thread that finishes early then takes the
/// remaining pieces of the others from their far end, so a core slowed by
/// other work is not waited for.
///
/// ```
/// use tapegrad_tensor::parallel::for_each_chunk;
/// let mut squares = vec![0usize; 100_000];
/// for_each_chunk(&mut squares, 4096, |start, piece| {
///     for (i, s) in piece.iter_mut().enumerate() {
///         *s = (start + i) * (start + i);
///     }
/// });
/// assert_eq!(squares[300], 90_000);
/// ```
///
/// # Panics
/// If `f` panics (the panic is passed on once every thread has stopped).
pub fn for_each_chunk<T: Send>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let chunk = chunk.max(1);
    let len = out.len();
    let base = SharedMut(out.as_mut_ptr());
    let run_chunk = |i: usize| {
        let start = i * chunk;
        let piece_len = chunk.min(len - start);
        // SAFETY: `run_indices` calls this with each `i < len.div_ceil(chunk)`
        // exactly once, so the piece lies inside `out`, which this call
        // borrows mutably until every participant has finished, and no two
        // pieces overlap. `T: Send` allows handing the piece to another
        // thread.
        let piece = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), piece_len) };
        f(start, piece);
    };
    run_indices(len.div_ceil(chunk), &run_chunk);
}

/// Calls `f(i)` once for every `i` in `0..n`, on the calling thread and the
/// team's or the pool's (the scheduling [`for_each_chunk`] describes).
///
/// Not generic, so the scheduling is compiled once, here, rather than once
/// per kernel closure in every crate that calls a kernel (it was a tenth of
/// the code an example built); the indirect call costs once per chunk.
fn run_indices(n: usize, f: &(dyn Fn(usize) + Sync)) {
    let threads = thread_count().clamp(1, n.max(1));
    // Runs count chunks in 32 bits; four billion chunks would be a
    // misuse (chunks of one element over 16 GiB), run them in order.
    if threads == 1 || n > u32::MAX as usize {
        (0..n).for_each(f);
        return;
    }
    let runs: SmallVec<[Run; 4]> = (0..threads)
        .map(|k| Run::new(n * k / threads, n * (k + 1) / threads))
        .collect();
    let work = |k: usize| {
        while let Some(i) = runs[k].take_front() {
            f(i);
        }
        // Done with its own run: help the others from their far ends,
        // the next thread's first.
        for j in (1..threads).map(|d| (k + d) % threads) {
            while let Some(i) = runs[j].take_back() {
                f(i);
            }
        }
    };
    // Outside rayon's pool the job goes to the spinning team, which starts
    // it without waking sleeping threads (see `team`); inside the pool (a
    // kernel called from a rayon task), or when the team is taken, rayon
    // runs it.
    let outside_pool = rayon::current_thread_index().is_none();
    if outside_pool && crate::team::run(threads, &work) {
        return;
    }
    let work = &work;
    rayon::in_place_scope(|scope| {
        for k in 1..threads {
            scope.spawn(move |_| work(k));
        }
        work(0);
    });
}

/// One thread's run of chunk indices, `front..end`, in one atomic word
/// (front in the low half, end in the high half): its owner takes chunks
/// from the front, threads that ran out of work take them from the end.
/// Every take is a compare-and-swap that moves one bound past one index,
/// so each index is handed out once. A thread that finds its own run
/// empty reads each other run once more per chunk it steals; the old
/// per-chunk locks made it touch every chunk's lock, about 3 µs of cache
/// traffic per 1M-element kernel on the reference machine.
#[repr(align(128))] // its own cache lines (and their adjacent-line prefetch)
struct Run(AtomicU64);

impl Run {
    fn new(front: usize, end: usize) -> Run {
        Run(AtomicU64::new(((end as u64) << 32) | front as u64))
    }

    #[inline]
    fn take_front(&self) -> Option<usize> {
        self.take(|front, end| (front, Run::word(front + 1, end)))
    }

    #[inline]
    fn take_back(&self) -> Option<usize> {
        self.take(|front, end| (end - 1, Run::word(front, end - 1)))
    }

    #[inline]
    fn word(front: u64, end: u64) -> u64 {
        (end << 32) | front
    }

    /// Takes the index `step(front, end)` picks, with the word it leaves.
    #[inline]
    fn take(&self, step: impl Fn(u64, u64) -> (u64, u64)) -> Option<usize> {
        let mut w = self.0.load(Ordering::Acquire);
        loop {
            let (front, end) = (w & u64::from(u32::MAX), w >> 32);
            if front >= end {
                return None;
            }
            let (i, next) = step(front, end);
            match self
                .0
                .compare_exchange_weak(w, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(i as usize),
                Err(now) => w = now,
            }
        }
    }
}

/// The base pointer of the slice [`for_each_chunk`] cuts up, shared with
/// the threads that write its pieces.
struct SharedMut<T>(*mut T);

impl<T> SharedMut<T> {
    /// A method, so closures capture the whole wrapper (and its `Sync`),
    /// not the raw pointer field.
    #[inline]
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: the pointer is only used to make disjoint pieces, each handed to
// one thread (see `for_each_chunk`), and `T: Send` lets them move.
unsafe impl<T: Send> Sync for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SharedMut<T> {}

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
    let walk = |start: usize, chunk: &mut [T]| walk_segments(row, start, chunk, &f);
    if use_parallel(out.len()) {
        for_each_chunk(out, CHUNK, walk);
    } else {
        walk(0, out);
    }
}

/// Calls `f(r, c, seg)` on the pieces of `chunk` (which starts at element
/// `start` of an output seen as rows of length `row`) that each lie inside
/// one row, in order (`simd::zip_rows` walks the same way).
#[inline]
pub(crate) fn walk_segments<T>(
    row: usize,
    start: usize,
    chunk: &mut [T],
    f: &impl Fn(usize, usize, &mut [T]),
) {
    // One division per chunk, then step along (a division per row showed
    // up on short rows).
    let (mut r, mut c) = (start / row, start % row);
    let mut pos = 0;
    while pos < chunk.len() {
        let len = (row - c).min(chunk.len() - pos);
        f(r, c, &mut chunk[pos..pos + len]);
        pos += len;
        c += len;
        if c == row {
            (r, c) = (r + 1, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_element_once_on_any_pool() {
        for threads in [1, 2, 3, 5] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for (n, chunk) in [(0, 4), (1, 4), (10, 3), (100, 7), (64, 64), (1000, 1)] {
                    let mut out = vec![usize::MAX; n];
                    for_each_chunk(&mut out, chunk, |start, piece| {
                        assert!(start % chunk == 0 && piece.len() <= chunk);
                        for (i, o) in piece.iter_mut().enumerate() {
                            assert_eq!(*o, usize::MAX, "written twice");
                            *o = start + i;
                        }
                    });
                    assert_eq!(out, (0..n).collect::<Vec<_>>(), "{threads} threads, n {n}");
                    let squares = map_chunks(n, true, |c| c * c);
                    assert_eq!(squares, (0..n).map(|c| c * c).collect::<Vec<_>>());
                }
            });
        }
    }

    #[test]
    fn a_run_hands_out_each_index_once_to_its_owner_and_thieves() {
        let run = Run::new(3, 20_003);
        let (front, back) = std::thread::scope(|s| {
            let thief = s.spawn(|| std::iter::from_fn(|| run.take_back()).collect::<Vec<_>>());
            let own: Vec<usize> = std::iter::from_fn(|| run.take_front()).collect();
            (own, thief.join().unwrap())
        });
        // The owner goes up from the front, the thief down from the end.
        assert!(front.windows(2).all(|w| w[0] + 1 == w[1]));
        assert!(back.windows(2).all(|w| w[0] == w[1] + 1));
        let mut all: Vec<usize> = front.into_iter().chain(back).collect();
        all.sort_unstable();
        assert_eq!(all, (3..20_003).collect::<Vec<_>>());
        assert_eq!((run.take_front(), run.take_back()), (None, None));
    }

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
