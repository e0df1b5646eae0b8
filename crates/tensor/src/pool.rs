//! A small cache of large freed buffers, reused by later kernel outputs.
//!
//! Why: a training step or a 1M-element elementwise chain allocates the same
//! large outputs every iteration. glibc serves such sizes with `mmap` and
//! returns them to the kernel on free, so every new output paid for fresh,
//! zeroed pages: page faults and page clearing were 30-40% of the
//! 1M-element forward+backward benchmark. Recycling the buffers in-process
//! removes that cost. Only buffers of at least [`MIN_BYTES`] are kept (smaller
//! ones are cheap for malloc), at most [`MAX_BUFFERS`] of them and
//! [`MAX_BYTES`] in total, so the cache never holds much more than one
//! iteration's worth of memory.

use std::any::{Any, TypeId};
use std::collections::TryReserveError;
use std::sync::Mutex;

use crate::Element;

/// Smallest buffer worth caching.
pub(crate) const MIN_BYTES: usize = 64 * 1024;
/// Most buffers kept. Page faults in 4 s of `perf stat` on the criterion
/// binary (Zen 4) with 32 and with 128 places, both evicting the oldest
/// (see [`give`]): transformer_step 63k / 42k, lstm_step 25k / 57k,
/// cnn_step 13k / 12k, mlp_step 7.7k / 7.7k, a few hundred per step at
/// most either way (before eviction, 32 places: 30k, 0.7M, 26k, 8k). The
/// README's runs since 2026-12-04 21:30 UTC used 128. Scanning the entries
/// costs well under a microsecond per large output.
const MAX_BUFFERS: usize = 128;
/// Most bytes kept.
const MAX_BYTES: usize = 256 * 1024 * 1024;

struct Entry {
    ty: TypeId,
    bytes: usize,
    buf: Box<dyn Any + Send>,
}

static POOL: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn big<T>(n: usize) -> bool {
    n.saturating_mul(std::mem::size_of::<T>()) >= MIN_BYTES
}

/// An empty vector with room for `n` elements, reusing a cached buffer when
/// one of a fitting size is free; an error (not an abort) when `n` elements
/// exceed `isize::MAX` bytes or the allocator refuses them.
pub(crate) fn try_with_capacity<T: Element>(n: usize) -> Result<Vec<T>, TryReserveError> {
    if big::<T>(n) {
        if let Some(mut v) = take::<T>(n) {
            v.clear();
            return Ok(v);
        }
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n)?;
    Ok(v)
}

fn take<T: Element>(n: usize) -> Option<Vec<T>> {
    let mut pool = POOL.lock().ok()?;
    let ty = TypeId::of::<Vec<T>>();
    let size = std::mem::size_of::<T>();
    let lo = n.saturating_mul(size);
    let hi = lo.saturating_mul(2);
    // The smallest buffer that fits and, among buffers of that size, the
    // one given back last: it is the likeliest to be in cache still.
    // (Taking the oldest one instead made the MLP step 5% slower when the
    // host placed the two threads on cores that share no cache, where a
    // write to a line the other core holds costs a cross-core round trip:
    // 2.55-2.60 s against 2.41-2.45 s for 800 steps of `mlp_memory`.)
    let pos = pool
        .iter()
        .enumerate()
        .filter(|(_, e)| e.ty == ty && e.bytes >= lo && e.bytes <= hi)
        .min_by_key(|&(i, e)| (e.bytes, std::cmp::Reverse(i)))
        .map(|(i, _)| i)?;
    // `remove`, not `swap_remove`: the entries stay oldest first.
    let e = pool.remove(pos);
    e.buf.downcast::<Vec<T>>().ok().map(|b| *b)
}

/// Offers a buffer that is no longer used to the cache (dropped if it is
/// small or larger than the whole cache).
///
/// A full cache makes room by dropping its oldest buffers, not the new
/// one. Refusing the newcomer let the cache clog for good with a size
/// nobody asked for again: in `cnn_step`, 32 buffers of one size filled
/// it (each step gave one more than it took), and from then on every
/// other large output missed it and paid for fresh pages (perf: 1,700
/// page faults per step, a fifth of the time in the kernel).
pub(crate) fn give<T: Element>(v: Vec<T>) {
    if !big::<T>(v.capacity()) {
        return;
    }
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes > MAX_BYTES {
        return;
    }
    let mut evicted = Vec::new();
    if let Ok(mut pool) = POOL.lock() {
        let mut total: usize = pool.iter().map(|e| e.bytes).sum();
        while pool.len() >= MAX_BUFFERS || total + bytes > MAX_BYTES {
            let oldest = pool.remove(0);
            total -= oldest.bytes;
            evicted.push(oldest);
        }
        pool.push(Entry {
            ty: TypeId::of::<Vec<T>>(),
            bytes,
            buf: Box::new(v),
        });
    }
    // The evicted buffers are freed here, after the lock is released.
    drop(evicted);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by the tests that depend on which buffers the cache holds:
    /// the eviction test floods it, which would drop another test's
    /// buffers between its `give` and its `take`.
    static CACHE_ORDER: Mutex<()> = Mutex::new(());

    #[test]
    fn buffers_come_back_empty_with_room() {
        let n = MIN_BYTES; // f32: 4 × MIN_BYTES bytes, well above the minimum
        let mut v: Vec<f32> = try_with_capacity(n).unwrap();
        v.resize(n, 7.0);
        give(v);
        let w: Vec<f32> = try_with_capacity(n).unwrap();
        assert!(w.is_empty() && w.capacity() >= n);
        let small: Vec<f64> = try_with_capacity(10).unwrap();
        assert!(small.is_empty() && small.capacity() >= 10);
        // Too large for any allocator: an error, not an abort.
        assert!(try_with_capacity::<f64>(usize::MAX / 4).is_err());
    }

    #[test]
    fn the_buffer_given_back_last_is_taken_first() {
        let _order = CACHE_ORDER.lock().unwrap_or_else(|e| e.into_inner());
        // A size no other test asks for (24 MB of f64; the capacity is
        // reserved, never touched); three buffers of it, then two takes.
        let n = 3_000_001;
        let bufs: Vec<Vec<f64>> = (0..3).map(|_| Vec::with_capacity(n)).collect();
        let ptrs: Vec<*const f64> = bufs.iter().map(|b| b.as_ptr()).collect();
        for b in bufs {
            give(b);
        }
        let first: Vec<f64> = try_with_capacity(n).unwrap();
        let second: Vec<f64> = try_with_capacity(n).unwrap();
        assert_eq!((first.as_ptr(), second.as_ptr()), (ptrs[2], ptrs[1]));
    }

    #[test]
    fn a_full_cache_drops_its_oldest_buffers_for_new_ones() {
        let _order = CACHE_ORDER.lock().unwrap_or_else(|e| e.into_inner());
        // More buffers of one size than the cache holds, never asked for
        // again (sizes no other test uses), then one of another size.
        let stale = MIN_BYTES / 8 + 17;
        for _ in 0..MAX_BUFFERS + 3 {
            give(Vec::<f64>::with_capacity(stale));
        }
        let wanted = 3 * MIN_BYTES / 8 + 5;
        let v = Vec::<f64>::with_capacity(wanted);
        let ptr = v.as_ptr();
        give(v);
        let back: Vec<f64> = try_with_capacity(wanted).unwrap();
        assert_eq!(back.as_ptr(), ptr, "the newest buffer is kept, not refused");
        let total: usize = POOL.lock().unwrap().iter().map(|e| e.bytes).sum();
        assert!(POOL.lock().unwrap().len() <= MAX_BUFFERS && total <= MAX_BYTES);
    }
}
