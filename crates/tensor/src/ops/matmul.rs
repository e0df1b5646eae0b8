//! Matrix products: vector, matrix and batched, with broadcast batch axes.
//! Strided operands (a transposed matrix, a slice) are read in place; the
//! kernel gets row and column strides rather than a copy.

use std::any::TypeId;
use std::mem::MaybeUninit;

use gemm_common::Parallelism;
use smallvec::SmallVec;

use crate::buffer::{assume_init_mut, try_filled, try_vec, try_vec_of, AllocError};
use crate::error::{Error, Result};
use crate::layout::{broadcast_shapes, checked_numel};
use crate::parallel::{for_each_chunk, use_parallel, CHUNK};
use crate::shape::Shape;
use crate::{Element, Tensor};

/// Below this many multiply-adds the simple kernel wins: the GEMM crate's
/// packing and dispatch cost more than the product itself (small MLPs).
const SMALL_GEMM: usize = 16 * 1024;

/// Chooses the kernel for `c[m×n] = a[m×k]·b[k×n]` (see [`gemm_generic`]
/// for the argument convention); `c` is overwritten. This is what
/// [`Element::gemm`] calls.
pub(crate) fn gemm_dispatch<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [T],
) {
    // SAFETY: `MaybeUninit<T>` has the layout of `T`, and `gemm_into` only
    // ever stores initialised values through the view, so `c` stays
    // initialised.
    let c = unsafe { &mut *(c as *mut [T] as *mut [MaybeUninit<T>]) };
    gemm_into(m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c)
}

/// `c[m×n] = a[m×k]·b[k×n]` into possibly uninitialised `c`: when it
/// returns, every element of `c[..m·n]` has been written (and nothing was
/// read from `c` before being written).
///
/// # Panics
/// If `c` is shorter than `m·n` or an operand slice is too short for its
/// strides.
pub(crate) fn gemm_into<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [MaybeUninit<T>],
) {
    if m == 0 || n == 0 {
        return;
    }
    let c = &mut c[..m * n];
    if k == 0 {
        c.fill(MaybeUninit::new(T::ZERO));
        return;
    }
    // Saturating: `m·n` fits (it is `c`'s length) but `k` can be the
    // length of a huge broadcast axis.
    let work = (m * n).saturating_mul(k);
    if work < SMALL_GEMM {
        return gemm_generic(m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c);
    }
    // A transposed right operand (the weight of `x·Wᵀ` in every `Linear`
    // forward) is the kernel's left one in its column-major view, and one
    // it cannot read in place: it packed it by gathering one element per
    // cache line, on every call (perf: most of the kernel's packing time,
    // 13-16% of an MLP step). The tiled transpose copies it row-major
    // several times faster, and the kernel then reads the copy in place.
    // Not for a few rows of `a`, where the kernel takes paths that do not
    // pack and the copy would be most of the work.
    if b_rs == 1 && b_cs != 1 && k > 1 && m >= 16 && k * n >= TRANSPOSE_B_MIN {
        let copy = crate::ops::unary::transposed_map::<T, true>(b, 0, k, n, b_cs, &|x| x);
        if let Ok(copy) = copy {
            let b = copy.as_slice();
            return gemm_into(m, k, n, a, a_rs, a_cs, b, n, 1, c);
        }
        // No room for the copy: the kernel packs it as before.
    }
    let threads = if use_parallel(work / 64) {
        crate::parallel::thread_count()
    } else {
        1
    };
    if threads > 1 {
        return gemm_split(m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c, threads);
    }
    gemm_kernel(m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c);
}

/// Elements of a transposed right operand worth copying row-major before a
/// product (see [`gemm_into`]); below it the kernel's packing is cheap.
const TRANSPOSE_B_MIN: usize = 1 << 16;

/// `c = a·b` (as [`gemm_into`]) cut into one product per thread, each run
/// by the single-threaded kernel on the thread team (or rayon's pool from
/// inside it) through [`for_each_chunk`].
///
/// Why not the kernel's own threading: it runs on rayon's pool, whose
/// workers sleep in the kernel between products and spin (yielding) after
/// them, while the team's helpers spin for the elementwise kernels between
/// products; on 2 cores the two sets of threads took turns through the
/// scheduler (sched_yield, futex wake-ups: ~15% of the MLP step). With
/// the products on the team, one set of threads does everything.
///
/// The cut is along the output's rows (`m`) or columns (`n`), whichever
/// makes each thread re-pack the smaller operand: every piece packs all of
/// the operand it is not cut along (`b` for a row cut, `a` for a column cut).
#[allow(clippy::too_many_arguments)]
fn gemm_split<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [MaybeUninit<T>],
    threads: usize,
) {
    if m >= n {
        // Whole rows per piece: contiguous parts of `c`.
        let rows = m.div_ceil(threads);
        for_each_chunk(c, rows * n, |start, part| {
            let i0 = start / n;
            gemm_kernel(
                part.len() / n,
                k,
                n,
                &a[i0 * a_rs..],
                a_rs,
                a_cs,
                b,
                b_rs,
                b_cs,
                part,
            );
        });
        return;
    }
    // Column blocks, a multiple of 64 wide where possible (the kernel's
    // register tile is 4 vectors of up to 16 lanes along `n`).
    let cols = n.div_ceil(threads).next_multiple_of(64).min(n);
    let pieces = n.div_ceil(cols);
    let a_extent = (m - 1) * a_rs + (k - 1) * a_cs;
    let b_extent = (k - 1) * b_rs + (n - 1) * b_cs;
    assert!(a_extent < a.len() && b_extent < b.len() && c.len() == m * n);
    let dst = SharedMut(c.as_mut_ptr().cast::<T>());
    // One (zero-sized) slot per piece: `for_each_chunk` deals the pieces
    // out to the threads.
    let mut slots = vec![(); pieces];
    for_each_chunk(&mut slots, 1, |p, _| {
        let j0 = p * cols;
        let width = cols.min(n - j0);
        // SAFETY: the assert above bounds every index of `a` and of `b`'s
        // columns `j0..j0 + width`; piece `p` writes only the columns
        // `j0..j0 + width` of the row-major `m×n` `c` (all of them), so the
        // pieces are disjoint, and `for_each_chunk` runs each piece once
        // while `c` is borrowed mutably by this function.
        unsafe {
            raw_gemm(
                m,
                width,
                k,
                dst.get().add(j0),
                n,
                false,
                a.as_ptr(),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr().add(j0 * b_cs),
                b_cs as isize,
                b_rs as isize,
                T::ZERO,
                T::ONE,
            )
        }
    });
}

/// The output pointer the pieces of [`gemm_split`] write through.
struct SharedMut<T>(*mut T);

impl<T> SharedMut<T> {
    /// A method, so closures capture the whole wrapper (and its `Sync`).
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: the pieces that share the pointer write disjoint elements (see
// `gemm_split`), and `T: Element` is `Send`.
unsafe impl<T: Send> Sync for SharedMut<T> {}

/// The `gemm` crate's kernel on `c[m×n] = a[m×k]·b[k×n]`, `k ≥ 1`, `m, n ≥ 1`.
#[allow(clippy::too_many_arguments)]
fn gemm_kernel<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [MaybeUninit<T>],
) {
    // Every element the kernel reads or writes must lie inside the slices:
    // this is the whole safety argument for the call below, so check it
    // always (it costs nothing next to the product).
    let a_extent = (m - 1) * a_rs + (k - 1) * a_cs;
    let b_extent = (k - 1) * b_rs + (n - 1) * b_cs;
    assert!(a_extent < a.len() && b_extent < b.len() && c.len() == m * n);
    // SAFETY: `a`, `b` and `c` are live slices for the duration of the call;
    // the assert above shows every strided index the kernel forms
    // (`i*rs + j*cs` for i < rows, j < cols) is in bounds of its slice; `c`
    // is written row-major (row stride n, column stride 1), all m·n of its
    // elements, and does not alias `a` or `b` (it is a `&mut`).
    // `read_dst = false` makes the kernel ignore c's old contents: gemm then
    // sets alpha to 0 and its microkernels take the store-only path
    // (`alpha_status == 0`), so the uninitialised `c` is only written.
    unsafe {
        raw_gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<T>(),
            n,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            T::ZERO,
            T::ONE,
        )
    }
}

/// Portable kernel: `c[m×n] = a[m×k]·b[k×n]` with `c` row-major, for
/// `k ≥ 1` and `c.len() == m·n`; writes all of `c`.
///
/// Each output row is an accumulation of rows of `b` scaled by one element
/// of `a`, which streams `b` in order and vectorises when `b`'s rows are
/// contiguous (`b_cs == 1`); otherwise `b` is packed once first.
pub(crate) fn gemm_generic<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [MaybeUninit<T>],
) {
    assert!(k > 0 && n > 0 && c.len() == m * n);
    // A narrow output (a regression head, a matrix-vector product): one dot
    // product per element, in the same order of operations as the row form
    // below, and no packing of `b`.
    if n <= 4 {
        for (idx, out) in c.iter_mut().enumerate() {
            let (i, j) = (idx / n, idx % n);
            let mut acc = T::ZERO;
            for p in 0..k {
                acc += a[i * a_rs + p * a_cs] * b[p * b_rs + j * b_cs];
            }
            *out = MaybeUninit::new(acc);
        }
        return;
    }
    let packed;
    let (b, b_rs) = if b_cs == 1 {
        (b, b_rs)
    } else {
        let mut p = Vec::with_capacity(k * n);
        for p_ in 0..k {
            for j in 0..n {
                p.push(b[p_ * b_rs + j * b_cs]);
            }
        }
        packed = p;
        (&packed[..], n)
    };
    let row = |i: usize, crow: &mut [MaybeUninit<T>]| {
        // The first term initialises the row (`0 + x` keeps the bits of the
        // former zero-fill-then-accumulate loop, signed zeros included).
        // Zipped iterators (not indexing) so the loops vectorise.
        let a0 = a[i * a_rs];
        for (c, &bj) in crow.iter_mut().zip(&b[..n]) {
            *c = MaybeUninit::new(T::ZERO + a0 * bj);
        }
        // SAFETY: `crow` has length n (a chunk of c) and the loop above
        // wrote all of it.
        let crow = unsafe { assume_init_mut(crow) };
        for p in 1..k {
            let aip = a[i * a_rs + p * a_cs];
            for (c, &bj) in crow.iter_mut().zip(&b[p * b_rs..p * b_rs + n]) {
                *c += aip * bj;
            }
        }
    };
    // `chunks_mut(n)` of the m·n-long `c` gives exactly the m rows, each
    // of length n, so every element is written by `row`.
    if use_parallel((m * n).saturating_mul(k) / 8) {
        // Whole rows per chunk: the start of each is a multiple of n.
        let rows_per_chunk = (CHUNK / n.saturating_mul(k).max(1)).max(1);
        for_each_chunk(c, rows_per_chunk * n, |start, rows| {
            for (r, crow) in rows.chunks_mut(n).enumerate() {
                row(start / n + r, crow);
            }
        });
    } else {
        for (i, crow) in c.chunks_mut(n).enumerate() {
            row(i, crow);
        }
    }
}

impl<T: Element> Tensor<T> {
    /// Matrix product with NumPy/PyTorch `matmul` semantics:
    /// - `[k]·[k]` gives a 0-d dot product;
    /// - `[m, k]·[k]` gives `[m]`, `[k]·[k, n]` gives `[n]`;
    /// - `[..., m, k]·[..., k, n]` gives `[..., m, n]`, the batch axes
    ///   broadcasting (`[2, 1, m, k]·[3, k, n]` gives `[2, 3, m, n]`).
    ///
    /// Transposed or sliced operands are used in place, without a copy.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if either operand is 0-d, the inner
    /// dimensions differ, or the batch axes do not broadcast;
    /// [`Error::TooLarge`] if the result is too large for memory or cannot be
    /// allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let b = Tensor::from_vec(vec![5.0f32, 6.0], &[2])?;
    /// assert_eq!(a.matmul(&b)?.to_vec(), vec![17.0, 39.0]);
    /// assert_eq!(b.matmul(&b)?.item()?, 61.0); // a 0-d dot product
    /// assert_eq!(a.matmul(&a.t()?)?.to_vec(), vec![5.0, 11.0, 11.0, 25.0]);
    /// let batch = Tensor::<f32>::ones(&[4, 1, 2, 3]).matmul(&Tensor::ones(&[5, 3, 6]))?;
    /// assert_eq!(batch.shape(), &[4, 5, 2, 6]);
    /// let err = Tensor::<f32>::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5])).unwrap_err();
    /// assert_eq!(err.to_string(), "matmul of [2, 3] by [4, 5]: inner dimensions 3 and 4 differ");
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn matmul(&self, other: &Self) -> Result<Self> {
        let (a_shape, b_shape) = (self.dims(), other.dims());
        if a_shape.is_empty() || b_shape.is_empty() {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: a_shape.to_vec(),
                rhs: b_shape.to_vec(),
                reason: "both operands need at least one axis".into(),
            });
        }
        // Promote vectors to matrices, remembering which axes to drop after.
        let a = if self.ndim() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if other.ndim() == 1 {
            other.unsqueeze(1)?
        } else {
            other.clone()
        };
        let (ar, br) = (a.ndim(), b.ndim());
        let (m, k) = (a.dims()[ar - 2], a.dims()[ar - 1]);
        let (k2, n) = (b.dims()[br - 2], b.dims()[br - 1]);
        if k != k2 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: a_shape.to_vec(),
                rhs: b_shape.to_vec(),
                reason: format!("inner dimensions {k} and {k2} differ"),
            });
        }
        if ar == 2 && br == 2 {
            // No batch axes (the small-MLP case): skip the batch planning.
            let shape: &[usize] = match (self.ndim(), other.ndim()) {
                (1, 1) => &[],
                (1, _) => &[n],
                (_, 1) => &[m],
                _ => &[m, n],
            };
            // `m·n` elements: the shape drops only `m` or `n` when it is 1.
            checked_numel::<T>("matmul", shape)?;
            let oom = |e: AllocError| e.at("matmul", shape);
            let out = if m * n == 0 || k == 0 {
                try_vec_of(m * n, T::ZERO).map_err(oom)?.into()
            } else {
                let (la, lb) = (&a.layout, &b.layout);
                let (sa, sb) = (a.storage.as_slice(), b.storage.as_slice());
                // SAFETY: `gemm_into` writes all m·n elements (or panics).
                unsafe {
                    try_filled(m * n, |c| {
                        gemm_into(
                            m,
                            k,
                            n,
                            &sa[la.offset..],
                            la.strides[0],
                            la.strides[1],
                            &sb[lb.offset..],
                            lb.strides[0],
                            lb.strides[1],
                            c,
                        )
                    })
                }
                .map_err(oom)?
            };
            return Ok(Tensor::from_parts(out, shape));
        }
        let batch =
            broadcast_shapes("matmul", &a.dims()[..ar - 2], &b.dims()[..br - 2]).map_err(|_| {
                Error::ShapeMismatch {
                    op: "matmul",
                    lhs: a_shape.to_vec(),
                    rhs: b_shape.to_vec(),
                    reason: "batch dimensions do not broadcast".into(),
                }
            })?;
        let mut full_a: Shape = batch.clone();
        full_a.0.extend_from_slice(&[m, k]);
        let mut full_b: Shape = batch.clone();
        full_b.0.extend_from_slice(&[k, n]);
        let mut shape: SmallVec<[usize; 6]> = batch.iter().copied().collect();
        if self.ndim() > 1 {
            shape.push(m);
        }
        if other.ndim() > 1 {
            shape.push(n);
        }
        // `nb·m·n` elements: the shape drops only `m` or `n` when it is 1.
        checked_numel::<T>("matmul", &shape)?;
        // The shapes broadcast, so only the size check can fail here (a
        // huge `k` with many batches): report it as this op's.
        let view = |l: &crate::Layout, full: &Shape| {
            l.broadcast_to(full)
                .map_err(|_| Error::too_large("matmul", full))
        };
        let la = view(&a.layout, &full_a)?;
        let lb = view(&b.layout, &full_b)?;
        let oom = |e: AllocError| e.at("matmul", &shape);
        let nb: usize = batch.iter().product();
        let (sa, sb) = (a.storage.as_slice(), b.storage.as_slice());
        let r = batch.len();
        let (a_rs, a_cs, b_rs, b_cs) = (
            la.strides[r],
            la.strides[r + 1],
            lb.strides[r],
            lb.strides[r + 1],
        );
        let total = nb * m * n;
        let out = if total == 0 || k == 0 {
            // With k = 0 the product is all zeros and the operands are empty
            // (their buffers may be too), so the kernel is not called.
            try_vec_of(total, T::ZERO).map_err(oom)?.into()
        } else {
            // Offsets of each batch's matrices.
            let mut bl_a = la.clone();
            bl_a.shape.truncate(r);
            bl_a.strides.truncate(r);
            let mut bl_b = lb.clone();
            bl_b.shape.truncate(r);
            bl_b.strides.truncate(r);
            let mut offs_a = try_vec(nb).map_err(oom)?;
            bl_a.for_each_offset(|o| offs_a.push(o));
            let mut offs_b = try_vec(nb).map_err(oom)?;
            bl_b.for_each_offset(|o| offs_b.push(o));
            let one = |bi: usize, c: &mut [MaybeUninit<T>]| {
                gemm_into(
                    m,
                    k,
                    n,
                    &sa[offs_a[bi]..],
                    a_rs,
                    a_cs,
                    &sb[offs_b[bi]..],
                    b_rs,
                    b_cs,
                    c,
                )
            };
            // SAFETY: `chunks_mut(m·n)` cuts the nb·m·n-long buffer into
            // exactly nb pieces of m·n, and `gemm_into` writes all m·n
            // elements of each (or panics).
            unsafe {
                try_filled(total, |out| {
                    let work = (m * n).saturating_mul(k);
                    if nb > 1 && use_parallel(nb.saturating_mul(work) / 8) && work < (1 << 18) {
                        // Many small matrices: one batch element per task.
                        for_each_chunk(out, m * n, |start, c| one(start / (m * n), c));
                    } else {
                        for (bi, c) in out.chunks_mut(m * n).enumerate() {
                            one(bi, c);
                        }
                    }
                })
            }
            .map_err(oom)?
        };
        Ok(Tensor::from_parts(out, &shape))
    }
}

/// `c = a·b`, or `c += a·b` when `accumulate`, on the calling thread only
/// (see [`gemm_generic`] for the argument convention; `c` is row-major
/// `m×n`). For kernels that split their own work between threads, such as
/// convolution, which runs one product per image.
///
/// # Panics
/// If `c` is not `m·n` long or an operand slice is too short for its
/// strides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_serial<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [T],
    accumulate: bool,
) {
    assert_eq!(c.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::ZERO);
        }
        return;
    }
    let a_extent = (m - 1) * a_rs + (k - 1) * a_cs;
    let b_extent = (k - 1) * b_rs + (n - 1) * b_cs;
    assert!(a_extent < a.len() && b_extent < b.len());
    // SAFETY: as in `gemm_kernel`: the assert shows every strided index is
    // inside its slice, `c` is an initialised row-major `m×n` slice that
    // does not alias `a` or `b`. With `read_dst` the kernel computes
    // `c = 1·c + 1·a·b`; without it `c`'s old contents are ignored.
    unsafe {
        raw_gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            n,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            if accumulate { T::ONE } else { T::ZERO },
            T::ONE,
        )
    }
}

/// [`gemm_serial`] without accumulating, into a possibly uninitialised
/// `c` (row-major `m×n`), which it writes entirely: returned initialised.
/// For outputs and scratch that the product overwrites, so that nobody
/// zeroes them first.
///
/// # Panics
/// As [`gemm_serial`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_serial_into<'c, T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &'c mut [MaybeUninit<T>],
) -> &'c mut [T] {
    assert_eq!(c.len(), m * n);
    if m > 0 && n > 0 {
        if k == 0 {
            c.fill(MaybeUninit::new(T::ZERO));
        } else {
            gemm_kernel(m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c);
        }
    }
    // SAFETY: all `m·n` elements were written above (`gemm_kernel` writes
    // every element of its row-major output), or there are none.
    unsafe { assume_init_mut(c) }
}

/// `dst = alpha·dst + beta·lhs·rhs` (`dst` read only when `read_dst`) with
/// the `gemm-f32` / `gemm-f64` kernels, for a row-major `m×n` destination
/// with row stride `dst_rs` and operands given by column then row stride,
/// as `gemm::gemm` takes them.
///
/// This is the part of the `gemm` umbrella crate we used: its kernels want
/// a column-major destination, so a row-major product is handed over
/// transposed (`Cᵀ = Bᵀ·Aᵀ`: swap the operands, their strides and `m`/`n`).
/// Depending on the real-number crates directly keeps the complex kernels
/// out of the build. Our strides are never negative, so the umbrella's
/// sign normalisation is not needed.
///
/// # Safety
/// As for `gemm::gemm`: every `row·rs + col·cs` index the product forms is
/// inside its live allocation, `dst` does not alias `lhs` or `rhs`, and when
/// `read_dst` is false `dst` may be uninitialised (it is only written).
#[allow(clippy::too_many_arguments)]
unsafe fn raw_gemm<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: usize,
    read_dst: bool,
    lhs: *const T,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const T,
    rhs_cs: isize,
    rhs_rs: isize,
    alpha: T,
    beta: T,
) {
    // A one-column destination is already column-major (its column stride
    // does not matter): no transpose, as in the umbrella crate.
    let transpose = dst_rs > 1;
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if transpose {
        (
            n,
            m,
            dst_rs as isize,
            1,
            rhs,
            rhs_rs,
            rhs_cs,
            lhs,
            lhs_rs,
            lhs_cs,
        )
    } else {
        (
            m,
            n,
            1,
            dst_rs as isize,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
        )
    };
    // One call per element type: the gemm crates are separate per type, so
    // the same call is spelled once here and instantiated for each.
    macro_rules! call_gemm {
        ($float:ty, $kernels:path) => {{
            let cast = |x: T| -> $float {
                // SAFETY: T is $float (the TypeId check below).
                unsafe { std::mem::transmute_copy(&x) }
            };
            // SAFETY: the caller's contract, with the layout swapped as the
            // kernels expect; the pointers are the same memory viewed as
            // $float.
            unsafe {
                $kernels()(
                    m,
                    n,
                    k,
                    dst.cast(),
                    dst_cs,
                    dst_rs,
                    read_dst,
                    lhs.cast(),
                    lhs_cs,
                    lhs_rs,
                    rhs.cast(),
                    rhs_cs,
                    rhs_rs,
                    cast(alpha),
                    cast(beta),
                    false,
                    false,
                    false,
                    Parallelism::None,
                )
            }
        }};
    }
    // `Element` is only implemented for f32 and f64, so one branch is taken
    // and the casts are identities.
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        call_gemm!(f32, gemm_f32::gemm::f32::get_gemm_fn)
    } else if TypeId::of::<T>() == TypeId::of::<f64>() {
        call_gemm!(f64, gemm_f64::gemm::f64::get_gemm_fn)
    } else {
        unreachable!("Element is implemented for f32 and f64 only")
    }
}
