//! Output buffers that kernels fill without zeroing them first, starting
//! on a cache-line boundary.
//!
//! Every kernel writes each element of its fresh output exactly once, so the
//! `vec![T::ZERO; n]` they used to start from was a wasted pass over memory
//! (and, for large outputs, page faults on pages touched twice). The helper
//! here hands a kernel the spare capacity of a `Vec` as `MaybeUninit<T>`
//! and sets the length only afterwards. Large buffers come from the
//! [`pool`](crate::pool) of recycled ones.
//!
//! Large outputs also start on a 64-byte boundary ([`Data`]). glibc serves
//! large blocks 16 bytes past a page boundary, so without this every other
//! 32-byte (and every 64-byte) vector load and store of a kernel straddled
//! two cache lines. Measured on the reference Zen 4 machine (2 threads,
//! 1M `f32`, same loop, buffers 16 bytes off against aligned): relu
//! 47-48 against 44 µs and add 66-72 against 64-66 µs; through the library,
//! relu, a scalar multiply and a multiply by a 0-d tensor went from 51-55
//! to 47-48 µs. PyTorch aligns its buffers to 64 bytes too.

use std::mem::MaybeUninit;

use crate::Element;

/// Bytes of alignment for large buffers: one cache line, one AVX-512 vector.
pub(crate) const ALIGN: usize = 64;

/// Smallest buffer (in bytes) that [`filled`] aligns. Below it the
/// padding would be a noticeable share of the allocation, and a buffer
/// that small sits in L1 cache, where a split access costs little.
const ALIGN_MIN_BYTES: usize = 1024;

/// The elements of a tensor buffer: `vec[start..]`, where `start` puts the
/// first element on an [`ALIGN`]-byte boundary for buffers the library
/// allocates (a `Vec` cannot carry a larger alignment itself: it must be
/// freed with the layout of `T`). The `start` elements before it are
/// padding, set to zero.
#[derive(Debug)]
pub(crate) struct Data<T> {
    vec: Vec<T>,
    start: usize,
}

impl<T> Default for Data<T> {
    fn default() -> Self {
        Vec::new().into()
    }
}

impl<T> Data<T> {
    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.vec[self.start..]
    }

    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.vec[self.start..]
    }

    /// The whole allocation, padding included (for the pool to reuse).
    pub(crate) fn into_raw_vec(self) -> Vec<T> {
        self.vec
    }
}

impl<T> From<Vec<T>> for Data<T> {
    /// A caller's vector as it is: no copy, and no alignment beyond `T`'s.
    #[inline]
    fn from(vec: Vec<T>) -> Self {
        Data { vec, start: 0 }
    }
}

/// A buffer of `n` elements whose elements `fill` writes, starting on an
/// [`ALIGN`]-byte boundary unless it is smaller than [`ALIGN_MIN_BYTES`].
///
/// If `fill` panics (a user closure in [`Tensor::map`](crate::Tensor::map),
/// say), the vector is dropped with length 0: nothing uninitialised is ever
/// read, and `T: Copy` has no destructor to run.
///
/// # Safety
/// When `fill` returns normally it must have written every element of the
/// slice it was given (which has length exactly `n`).
#[inline]
pub(crate) unsafe fn filled<T: Element>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Data<T> {
    let size = std::mem::size_of::<T>();
    if n * size < ALIGN_MIN_BYTES {
        // SAFETY: passed on from the caller.
        return unsafe { vec_filled_by(n, fill) }.into();
    }
    // A recycled large buffer when one fits (see `pool`): no fresh pages.
    let mut vec: Vec<T> = crate::pool::with_capacity(n + ALIGN / size);
    let start = (ALIGN - vec.as_ptr() as usize % ALIGN) % ALIGN / size;
    let spare = vec.spare_capacity_mut();
    spare[..start].fill(MaybeUninit::new(T::ZERO));
    fill(&mut spare[start..start + n]);
    // SAFETY: the capacity is at least `n + start` (`start < ALIGN / size`);
    // the padding was written above, and the caller guarantees that `fill`
    // initialised the `n` elements after it (it returned normally).
    unsafe { vec.set_len(start + n) };
    Data { vec, start }
}

/// [`filled`] when `ALIGNED`, else a plain [`vec_filled_by`] (for code
/// shared by tensor outputs and results returned as a `Vec`).
///
/// # Safety
/// As for [`filled`].
#[inline]
pub(crate) unsafe fn filled_as<T: Element, const ALIGNED: bool>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Data<T> {
    if ALIGNED {
        // SAFETY: passed on from the caller.
        unsafe { filled(n, fill) }
    } else {
        // SAFETY: passed on from the caller.
        unsafe { vec_filled_by(n, fill) }.into()
    }
}

/// A `Vec` of length `n` whose elements `fill` writes, for results that
/// leave the library as a `Vec` (see [`filled`] for buffers of tensors).
///
/// If `fill` panics, the vector is dropped with length 0.
///
/// # Safety
/// When `fill` returns normally it must have written every element of the
/// slice it was given (which has length exactly `n`).
#[inline]
pub(crate) unsafe fn vec_filled_by<T: Element>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Vec<T> {
    let mut v: Vec<T> = crate::pool::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: the capacity is at least `n`, and the caller guarantees that
    // `fill` initialised all of `v[0..n]` (it returned normally).
    unsafe { v.set_len(n) };
    v
}

/// Views an initialised `MaybeUninit` slice as a plain slice.
///
/// # Safety
/// Every element of `s` must be initialised.
#[inline]
pub(crate) unsafe fn assume_init_mut<T: Copy>(s: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: `MaybeUninit<T>` has the layout of `T`, and the caller
    // guarantees that every element is initialised.
    unsafe { &mut *(s as *mut [MaybeUninit<T>] as *mut [T]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_survives_a_panicking_filler() {
        // SAFETY: the closure writes all 5 elements.
        let v = unsafe {
            vec_filled_by::<f32>(5, |s| {
                for (i, o) in s.iter_mut().enumerate() {
                    *o = MaybeUninit::new(i as f32);
                }
            })
        };
        assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        // SAFETY: the closure panics before returning (nothing is required).
        let r = std::panic::catch_unwind(|| unsafe {
            vec_filled_by::<f64>(1000, |s| {
                s[0] = MaybeUninit::new(1.0);
                panic!("a user closure failed");
            })
        });
        assert!(r.is_err());
        // SAFETY: nothing to write for n = 0.
        let e = unsafe { vec_filled_by::<f32>(0, |_| {}) };
        assert!(e.is_empty());
    }

    #[test]
    fn large_buffers_start_on_a_cache_line_and_keep_their_values() {
        for n in [
            ALIGN_MIN_BYTES / 4,
            1000,
            crate::pool::MIN_BYTES / 4,
            1 << 20,
            (1 << 20) + 3,
        ] {
            for _ in 0..3 {
                // SAFETY: the closure writes all `n` elements.
                let d = unsafe {
                    filled::<f32>(n, |s| {
                        for (i, o) in s.iter_mut().enumerate() {
                            *o = MaybeUninit::new(i as f32);
                        }
                    })
                };
                let s = d.as_slice();
                assert_eq!(s.as_ptr() as usize % ALIGN, 0, "n {n}");
                assert_eq!(s.len(), n);
                assert!(s.iter().enumerate().all(|(i, &x)| x == i as f32));
                // Back to the pool, so the next round may start elsewhere.
                crate::pool::give(d.into_raw_vec());
            }
        }
        // Small buffers are a plain vector, padding-free.
        // SAFETY: the closure writes both elements.
        let d = unsafe { filled::<f64>(2, |s| s.fill(MaybeUninit::new(1.0))) };
        assert_eq!(d.as_slice(), &[1.0, 1.0]);
        assert_eq!(Data::from(vec![2.0f32; 3]).as_slice(), &[2.0; 3]);
        // Constructors and kernel outputs of tensors land aligned too.
        let v: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        let t = crate::Tensor::from_slice(&v, &[100_000]).unwrap();
        let u = crate::Tensor::<f64>::uniform_seeded(&[300, 300], -1.0, 1.0, 1);
        for p in [
            t.storage_slice().as_ptr() as usize,
            t.relu().storage_slice().as_ptr() as usize,
            u.storage_slice().as_ptr() as usize,
            u.t().unwrap().to_contiguous().storage_slice().as_ptr() as usize,
        ] {
            assert_eq!(p % ALIGN, 0);
        }
        assert_eq!(t.to_vec(), v);
    }
}
