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
/// Most buffers kept.
const MAX_BUFFERS: usize = 32;
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
    let pos = pool
        .iter()
        .enumerate()
        .filter(|(_, e)| e.ty == ty && e.bytes >= lo && e.bytes <= hi)
        .min_by_key(|(_, e)| e.bytes)
        .map(|(i, _)| i)?;
    let e = pool.swap_remove(pos);
    e.buf.downcast::<Vec<T>>().ok().map(|b| *b)
}

/// Offers a buffer that is no longer used to the cache (dropped if it is
/// small or the cache is full).
pub(crate) fn give<T: Element>(v: Vec<T>) {
    if !big::<T>(v.capacity()) {
        return;
    }
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if let Ok(mut pool) = POOL.lock() {
        let total: usize = pool.iter().map(|e| e.bytes).sum();
        if pool.len() < MAX_BUFFERS && total + bytes <= MAX_BYTES {
            pool.push(Entry {
                ty: TypeId::of::<Vec<T>>(),
                bytes,
                buf: Box::new(v),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
