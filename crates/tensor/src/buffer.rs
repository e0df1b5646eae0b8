//! Output buffers that kernels fill without zeroing them first.
//!
//! Every kernel writes each element of its fresh output exactly once, so the
//! `vec![T::ZERO; n]` they used to start from was a wasted pass over memory
//! (and, for large outputs, page faults on pages touched twice). The helper
//! here hands a kernel the spare capacity of a `Vec` as `MaybeUninit<T>`
//! and sets the length only afterwards. Large buffers come from the
//! [`pool`](crate::pool) of recycled ones.

use std::mem::MaybeUninit;

/// A `Vec` of length `n` whose elements `fill` writes.
///
/// If `fill` panics (a user closure in [`Tensor::map`](crate::Tensor::map),
/// say), the vector is dropped with length 0: nothing uninitialised is ever
/// read, and `T: Copy` has no destructor to run.
///
/// # Safety
/// When `fill` returns normally it must have written every element of the
/// slice it was given (which has length exactly `n`).
#[inline]
pub(crate) unsafe fn vec_filled_by<T: crate::Element>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Vec<T> {
    // A recycled large buffer when one fits (see `pool`): no fresh pages.
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
}
