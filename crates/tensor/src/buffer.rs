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
//! Allocation never aborts the process: the `try_` helpers return an
//! [`AllocError`] (which ops that return `Result` turn into
//! [`Error::TooLarge`]) when the allocator refuses a buffer; only the
//! conversions that stay infallible (`to_vec`, `to_contiguous`, `cast`)
//! panic with its message.
//!
//! Large outputs also start on a 64-byte boundary ([`Data`]). glibc serves
//! large blocks 16 bytes past a page boundary, so without this every other
//! 32-byte (and every 64-byte) vector load and store of a kernel straddled
//! two cache lines. Measured on the reference Zen 4 machine (2 threads,
//! 1M `f32`, same loop, buffers 16 bytes off against aligned): relu
//! 47-48 against 44 µs and add 66-72 against 64-66 µs; through the library,
//! relu, a scalar multiply and a multiply by a 0-d tensor went from 51-55
//! to 47-48 µs. PyTorch aligns its buffers to 64 bytes too.

use std::fmt;
use std::mem::MaybeUninit;

use crate::error::Error;
use crate::Element;

/// A buffer that could not be allocated: more than `isize::MAX` bytes, or
/// refused by the allocator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllocError {
    /// Elements asked for.
    elems: usize,
    /// Their size in bytes (`None` if that overflows `usize`).
    bytes: Option<usize>,
}

impl AllocError {
    /// The error for `n` elements of `U`.
    pub(crate) fn of<U>(n: usize) -> Self {
        AllocError {
            elems: n,
            bytes: n.checked_mul(std::mem::size_of::<U>()),
        }
    }

    /// [`Error::TooLarge`] for `op` making a tensor of `shape`.
    pub(crate) fn at(self, op: &'static str, shape: &[usize]) -> Error {
        match self.bytes {
            Some(b) if b <= isize::MAX as usize => Error::TooLarge {
                op,
                shape: shape.to_vec(),
                refused_bytes: Some(b),
            },
            _ => Error::too_large(op, shape),
        }
    }

    /// Panics with the message (for the infallible conversions).
    #[cold]
    #[track_caller]
    pub(crate) fn fail(self) -> ! {
        panic!("{self}")
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bytes {
            Some(b) => write!(
                f,
                "could not allocate {b} bytes for {} elements",
                self.elems
            ),
            None => write!(f, "{} elements are more than fit in memory", self.elems),
        }
    }
}

/// An empty `Vec` with room for `n` elements, or an [`AllocError`] instead
/// of an abort (for scratch vectors such as row offsets).
pub(crate) fn try_vec<U>(n: usize) -> Result<Vec<U>, AllocError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| AllocError::of::<U>(n))?;
    Ok(v)
}

/// `vec![x; n]`, or an [`AllocError`] instead of an abort.
pub(crate) fn try_vec_of<U: Clone>(n: usize, x: U) -> Result<Vec<U>, AllocError> {
    let mut v = try_vec(n)?;
    v.resize(n, x);
    Ok(v)
}

/// Bytes of alignment for large buffers: one cache line, one AVX-512 vector.
pub(crate) const ALIGN: usize = 64;

/// Smallest buffer (in bytes) that [`try_filled`] aligns. Below it the
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
/// [`ALIGN`]-byte boundary unless it is smaller than [`ALIGN_MIN_BYTES`];
/// an [`AllocError`] (and `fill` is not called) if it cannot be allocated.
///
/// If `fill` panics (a user closure in [`Tensor::map`](crate::Tensor::map),
/// say), the vector is dropped with length 0: nothing uninitialised is ever
/// read, and `T: Copy` has no destructor to run.
///
/// # Safety
/// When `fill` returns normally it must have written every element of the
/// slice it was given (which has length exactly `n`).
#[inline]
pub(crate) unsafe fn try_filled<T: Element>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Result<Data<T>, AllocError> {
    let (mut vec, start) = aligned_capacity::<T>(n)?;
    fill(&mut vec.spare_capacity_mut()[start..start + n]);
    // SAFETY: `aligned_capacity` left room for `start + n` elements and
    // wrote the `start` padding ones; the caller guarantees that `fill`
    // initialised the `n` elements after them (it returned normally).
    unsafe { vec.set_len(start + n) };
    Ok(Data { vec, start })
}

/// An empty vector with room for `n` elements from an [`ALIGN`]-byte
/// boundary (unless smaller than [`ALIGN_MIN_BYTES`]), and the index `start`
/// of that boundary; the `start` elements before it are written (zero).
///
/// Apart from [`try_filled`] so that this part is compiled once per element
/// type, not once per fill closure.
fn aligned_capacity<T: Element>(n: usize) -> Result<(Vec<T>, usize), AllocError> {
    let size = std::mem::size_of::<T>();
    if n.saturating_mul(size) < ALIGN_MIN_BYTES {
        return Ok((vec_capacity(n)?, 0));
    }
    // A recycled large buffer when one fits (see `pool`): no fresh pages.
    let mut vec: Vec<T> = n
        .checked_add(ALIGN / size)
        .and_then(|cap| crate::pool::try_with_capacity(cap).ok())
        .ok_or(AllocError::of::<T>(n))?;
    let start = (ALIGN - vec.as_ptr() as usize % ALIGN) % ALIGN / size;
    vec.spare_capacity_mut()[..start].fill(MaybeUninit::new(T::ZERO));
    Ok((vec, start))
}

/// An empty vector with room for `n` elements (a recycled one when the pool
/// has one), or an [`AllocError`].
fn vec_capacity<T: Element>(n: usize) -> Result<Vec<T>, AllocError> {
    crate::pool::try_with_capacity(n).map_err(|_| AllocError::of::<T>(n))
}

/// [`try_filled`] for infallible callers (only tests need it: every op
/// returns the error).
///
/// # Panics
/// If the buffer cannot be allocated.
///
/// # Safety
/// As for [`try_filled`].
#[cfg(test)]
pub(crate) unsafe fn filled<T: Element>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Data<T> {
    // SAFETY: passed on from the caller.
    match unsafe { try_filled(n, fill) } {
        Ok(d) => d,
        Err(e) => e.fail(),
    }
}

/// [`try_filled`] when `ALIGNED`, else a plain [`try_vec_filled_by`] (for
/// code shared by tensor outputs and results returned as a `Vec`).
///
/// # Safety
/// As for [`try_filled`].
#[inline]
pub(crate) unsafe fn try_filled_as<T: Element, const ALIGNED: bool>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Result<Data<T>, AllocError> {
    if ALIGNED {
        // SAFETY: passed on from the caller.
        unsafe { try_filled(n, fill) }
    } else {
        // SAFETY: passed on from the caller.
        Ok(unsafe { try_vec_filled_by(n, fill) }?.into())
    }
}

/// A `Vec` of length `n` whose elements `fill` writes, for results that
/// leave the library as a `Vec` (see [`try_filled`] for buffers of
/// tensors); an [`AllocError`] if it cannot be allocated.
///
/// If `fill` panics, the vector is dropped with length 0.
///
/// # Safety
/// When `fill` returns normally it must have written every element of the
/// slice it was given (which has length exactly `n`).
#[inline]
pub(crate) unsafe fn try_vec_filled_by<T: Element>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Result<Vec<T>, AllocError> {
    let mut v = vec_capacity::<T>(n)?;
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: the capacity is at least `n`, and the caller guarantees that
    // `fill` initialised all of `v[0..n]` (it returned normally).
    unsafe { v.set_len(n) };
    Ok(v)
}

/// [`try_vec_filled_by`] for infallible callers (only tests need it).
///
/// # Panics
/// If the vector cannot be allocated.
///
/// # Safety
/// As for [`try_vec_filled_by`].
#[cfg(test)]
pub(crate) unsafe fn vec_filled_by<T: Element>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Vec<T> {
    // SAFETY: passed on from the caller.
    match unsafe { try_vec_filled_by(n, fill) } {
        Ok(v) => v,
        Err(e) => e.fail(),
    }
}

/// Zeroes `s` and returns it as a plain slice: for buffers whose parts are
/// zeroed by the threads that then fill them, rather than up front.
#[inline]
pub(crate) fn zeroed<T: Copy + Default>(s: &mut [MaybeUninit<T>]) -> &mut [T] {
    // `Default` is zero for the elements (and for the indices of max
    // pooling, which use this too).
    s.fill(MaybeUninit::new(T::default()));
    // SAFETY: every element was written just above.
    unsafe { assume_init_mut(s) }
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
    fn buffers_too_large_are_errors_and_fill_is_not_called() {
        for n in [usize::MAX, usize::MAX / 8, isize::MAX as usize / 4] {
            // SAFETY: `fill` is never called (and would write everything).
            let e = unsafe { try_filled::<f64>(n, |_| unreachable!()) }.unwrap_err();
            let err = e.at("test", &[n]);
            assert!(matches!(err, Error::TooLarge { op: "test", .. }), "{err}");
            // SAFETY: as above.
            assert!(unsafe { try_vec_filled_by::<f32>(n, |_| unreachable!()) }.is_err());
            assert!(try_vec::<usize>(n).is_err());
        }
        let e = AllocError::of::<f64>(usize::MAX);
        assert_eq!(
            e.at("op", &[usize::MAX]).to_string(),
            format!(
                "op: shape [{}] has more elements than fit in memory",
                usize::MAX
            )
        );
        let e = AllocError::of::<f32>(1 << 60);
        assert_eq!(
            e.at("op", &[1 << 60]).to_string(),
            format!(
                "op: could not allocate {} bytes for shape [{}]",
                1u64 << 62,
                1u64 << 60
            )
        );
        assert_eq!(try_vec_of(3, 1.5f32).unwrap(), vec![1.5; 3]);
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
            t.relu().unwrap().storage_slice().as_ptr() as usize,
            u.storage_slice().as_ptr() as usize,
            u.t().unwrap().to_contiguous().storage_slice().as_ptr() as usize,
        ] {
            assert_eq!(p % ALIGN, 0);
        }
        assert_eq!(t.to_vec(), v);
    }
}
