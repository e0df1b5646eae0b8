//! The [`Tensor`] type: constructors, accessors and copies.

use std::mem::MaybeUninit;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::buffer::{try_filled, Data};
use crate::error::{Error, Result};
use crate::layout::{checked_numel, Layout};
use crate::shape::Shape;
use crate::storage::Storage;
use crate::Element;

/// A strided, immutable N-d array of `f32` or `f64`.
///
/// Cloning is cheap (it shares the buffer), and so are views: `reshape`,
/// `permute`, `slice`, `broadcast_to` and friends return tensors that read the
/// same storage through a new [`Layout`]. Kernels always write fresh,
/// contiguous outputs, so the values a tensor shows never change after
/// creation; that is why `Tensor` is `Send + Sync` without any lock. The one
/// way to write into a tensor, [`make_mut_slice`](Self::make_mut_slice),
/// takes `&mut self` and copies first unless this handle is the buffer's only
/// owner (copy-on-write), so no clone or view ever sees the change.
///
/// ```
/// use tapegrad_tensor::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let t = a.t()?; // a zero-copy transpose
/// assert_eq!(t.shape(), &[3, 2]);
/// assert_eq!(t.to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// # Ok::<(), tapegrad_tensor::Error>(())
/// ```
pub struct Tensor<T: Element = f32> {
    pub(crate) storage: Storage<T>,
    pub(crate) layout: Layout,
}

impl<T: Element> Clone for Tensor<T> {
    #[inline]
    fn clone(&self) -> Self {
        // A 0-d tensor with its value inline (every value on a scalar
        // tape) is a plain copy; the general path matches on the storage
        // and copies both dims lists.
        if let (Storage::Scalar([v]), true) = (&self.storage, self.is_0d()) {
            // A one-element buffer is only ever read at offset 0.
            debug_assert_eq!(self.layout.offset, 0);
            return Tensor::scalar(*v);
        }
        self.clone_shared()
    }
}

impl<T: Element> Tensor<T> {
    /// The general [`clone`](Clone::clone), out of line so that the 0-d
    /// copy inlines into its callers.
    #[inline(never)]
    fn clone_shared(&self) -> Self {
        Tensor {
            storage: self.storage.clone(),
            layout: self.layout.clone(),
        }
    }
}

impl<T: Element> Tensor<T> {
    // ----- construction -------------------------------------------------

    /// Wraps `data` (row-major) as a tensor of `shape`, without copying it.
    ///
    /// The library's own buffers (kernel outputs, the other constructors)
    /// start on a 64-byte boundary, which memory-bound kernels run up to 10%
    /// faster on; `data` keeps the start its allocator gave it. For a large
    /// input used many times, `Tensor::from_slice` makes an aligned copy.
    ///
    /// # Errors
    /// [`Error::ElementCount`] if `data.len()` differs from the product of
    /// `shape` (an empty `shape` needs exactly one element), or
    /// [`Error::TooLarge`] if `shape` is too large for memory (see there).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::{Error, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(a.shape(), &[2, 3]);
    /// assert_eq!(a.get(&[1, 0])?, 4.0);
    /// assert_eq!(Tensor::from_slice(&[1.0f64, 2.0], &[2, 1])?.shape(), &[2, 1]);
    ///
    /// let err = Tensor::from_vec(vec![1.0f32, 2.0], &[2, 3]).unwrap_err();
    /// assert!(matches!(err, Error::ElementCount { expected: 6, got: 2, .. }));
    /// assert_eq!(err.to_string(), "from_vec: shape [2, 3] needs 6 elements, got 2");
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        check_element_count::<T>("from_vec", shape, data.len())?;
        Ok(Self::from_parts(data, shape))
    }

    /// Like [`from_vec`](Self::from_vec) for a borrowed slice (copies it,
    /// into an aligned buffer).
    ///
    /// # Errors
    /// [`Error::ElementCount`] if `data.len()` differs from the product of
    /// `shape`, or [`Error::TooLarge`] if `shape` is too large for memory
    /// or the copy cannot be allocated.
    pub fn from_slice(data: &[T], shape: &[usize]) -> Result<Self> {
        const OP: &str = "from_slice";
        check_element_count::<T>(OP, shape, data.len())?;
        // SAFETY: the loop writes every element (`o` and `data` have the
        // same length).
        let copy = unsafe {
            try_filled(data.len(), |o| {
                for (o, &x) in o.iter_mut().zip(data) {
                    *o = MaybeUninit::new(x);
                }
            })
        };
        Ok(Self::from_parts(copy.map_err(|e| e.at(OP, shape))?, shape))
    }

    /// Internal: a contiguous tensor from data known to match `shape`
    /// (which, as the data exists, passes [`checked_numel`]).
    pub(crate) fn from_parts(data: impl Into<Data<T>>, shape: &[usize]) -> Self {
        let data = data.into();
        debug_assert_eq!(
            checked_numel::<T>("from_parts", shape),
            Ok(data.as_slice().len())
        );
        Tensor {
            storage: Storage::from_data(data),
            layout: Layout::contiguous_unchecked(shape),
        }
    }

    /// Internal: a contiguous tensor of `shape` whose `n` elements `fill`
    /// writes, or [`Error::TooLarge`] naming `op` if the shape is over the
    /// size limit or the buffer cannot be allocated (then `fill` is not
    /// called).
    ///
    /// # Safety
    /// When `fill` returns normally it must have written every element of
    /// the slice it was given.
    pub(crate) unsafe fn try_filled_shape(
        op: &'static str,
        shape: &[usize],
        fill: impl FnOnce(&mut [MaybeUninit<T>]),
    ) -> Result<Self> {
        let n = checked_numel::<T>(op, shape)?;
        // SAFETY: passed on from the caller.
        let data = unsafe { try_filled(n, fill) }.map_err(|e| e.at(op, shape))?;
        Ok(Self::from_parts(data, shape))
    }

    /// Internal: a one-element tensor of `shape` (all ones, any rank) held
    /// inline, without allocating.
    #[inline]
    pub(crate) fn scalar_shaped(v: T, shape: &[usize]) -> Self {
        debug_assert_eq!(checked_numel::<T>("scalar_shaped", shape), Ok(1));
        if shape.is_empty() {
            return Self::scalar(v);
        }
        Tensor {
            storage: Storage::Scalar([v]),
            layout: Layout::contiguous_unchecked(shape),
        }
    }

    /// Internal: the first element in row-major order.
    ///
    /// # Panics
    /// If the tensor is empty.
    #[inline]
    pub(crate) fn first(&self) -> T {
        self.storage.as_slice()[self.layout.offset]
    }

    /// A 0-d tensor holding `v`.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let s = Tensor::scalar(2.5f32);
    /// assert_eq!((s.ndim(), s.numel()), (0, 1));
    /// assert_eq!(s.item()?, 2.5);
    /// // A 0-d tensor broadcasts against any shape.
    /// let v = Tensor::from_slice_1d(&[1.0f32, 2.0]);
    /// assert_eq!(v.mul(&s)?.to_vec(), vec![2.5, 5.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    #[inline]
    pub fn scalar(v: T) -> Self {
        Tensor {
            storage: Storage::Scalar([v]),
            layout: Layout::scalar(),
        }
    }

    /// Internal: whether this is a 0-d tensor (its value is [`first`](Self::first)).
    #[inline]
    pub(crate) fn is_0d(&self) -> bool {
        self.layout.shape.is_empty()
    }

    /// A 1-d tensor copied from a slice.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let v = Tensor::from_slice_1d(&[1.0f64, 2.0, 3.0]);
    /// assert_eq!(v.shape(), &[3]);
    /// assert_eq!(v.to_vec(), vec![1.0, 2.0, 3.0]);
    /// ```
    pub fn from_slice_1d(data: &[T]) -> Self {
        Self::from_parts(data.to_vec(), &[data.len()])
    }

    /// A tensor of `shape` filled with `v`.
    ///
    /// # Panics
    /// If `shape` is too large for memory or its buffer cannot be allocated
    /// (see [`Error::TooLarge`]); [`try_full`](Self::try_full) returns that
    /// as an error instead.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::full(&[2, 2], 7.0f32);
    /// assert_eq!(a.to_vec(), vec![7.0; 4]);
    /// // An empty shape is a 0-d tensor; a zero-length axis gives no elements.
    /// assert_eq!(Tensor::full(&[], 1.0f32).numel(), 1);
    /// assert_eq!(Tensor::full(&[3, 0], 1.0f32).numel(), 0);
    /// ```
    #[track_caller]
    pub fn full(shape: &[usize], v: T) -> Self {
        Self::try_full(shape, v).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`full`](Self::full), with a shape too large for memory as an error.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"full"`) if `shape` is over the size limit or
    /// its buffer cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::{Error, Tensor};
    /// assert_eq!(Tensor::try_full(&[2], 0.5f32)?.to_vec(), vec![0.5, 0.5]);
    /// let err = Tensor::try_full(&[1 << 40, 1 << 40], 0.0f32).unwrap_err();
    /// assert!(matches!(err, Error::TooLarge { op: "full", .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "full: shape [1099511627776, 1099511627776] has more elements than fit in memory"
    /// );
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn try_full(shape: &[usize], v: T) -> Result<Self> {
        // SAFETY: `fill` writes every element.
        unsafe { Self::try_filled_shape("full", shape, |o| o.fill(MaybeUninit::new(v))) }
    }

    /// A tensor of zeros.
    ///
    /// # Panics
    /// As [`full`](Self::full); [`try_zeros`](Self::try_zeros) is the
    /// fallible version.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let z = Tensor::<f32>::zeros(&[2, 3]);
    /// assert_eq!(z.shape(), &[2, 3]);
    /// assert!(z.to_vec().iter().all(|&x| x == 0.0));
    /// ```
    #[track_caller]
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::ZERO)
    }

    /// [`zeros`](Self::zeros), with a shape too large for memory as an error.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"full"`), as [`try_full`](Self::try_full).
    pub fn try_zeros(shape: &[usize]) -> Result<Self> {
        Self::try_full(shape, T::ZERO)
    }

    /// A tensor of ones.
    ///
    /// # Panics
    /// As [`full`](Self::full); [`try_ones`](Self::try_ones) is the
    /// fallible version.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let o = Tensor::<f64>::ones(&[3]);
    /// assert_eq!(o.to_vec(), vec![1.0, 1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::ONE)
    }

    /// [`ones`](Self::ones), with a shape too large for memory as an error.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"full"`), as [`try_full`](Self::try_full).
    pub fn try_ones(shape: &[usize]) -> Result<Self> {
        Self::try_full(shape, T::ONE)
    }

    /// `start, start + step, …` up to but excluding `end` (like `numpy.arange`).
    /// The values are computed as `start + i·step` in `f64`, then converted.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `step` is zero or not finite, or has the
    /// wrong sign to go from `start` towards `end`. (`start == end` is fine and
    /// gives an empty tensor.) [`Error::TooLarge`] if the element count is too
    /// large for memory or its buffer cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::{Error, Tensor};
    /// assert_eq!(Tensor::<f32>::arange(0.0, 4.0, 1.0)?.to_vec(), vec![0.0, 1.0, 2.0, 3.0]);
    /// assert_eq!(Tensor::<f64>::arange(1.0, 0.0, -0.25)?.to_vec(), vec![1.0, 0.75, 0.5, 0.25]);
    /// assert_eq!(Tensor::<f32>::arange(2.0, 2.0, 1.0)?.shape(), &[0]);
    /// assert!(Tensor::<f32>::arange(0.0, 4.0, -1.0).is_err()); // wrong direction
    /// assert!(Tensor::<f32>::arange(0.0, 4.0, 0.0).is_err());
    /// let err = Tensor::<f32>::arange(0.0, 1e300, 1.0).unwrap_err();
    /// assert!(matches!(err, Error::TooLarge { op: "arange", .. }));
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn arange(start: f64, end: f64, step: f64) -> Result<Self> {
        if step == 0.0
            || !step.is_finite()
            || !start.is_finite()
            || !end.is_finite()
            || (end - start) * step < 0.0
        {
            return Err(Error::invalid(
                "arange",
                format!("cannot step from {start} to {end} by {step}"),
            ));
        }
        // Saturates at `usize::MAX` (say for `end - start` beyond `f64`),
        // which the size check rejects.
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        // SAFETY: the loop writes every element.
        unsafe {
            Self::try_filled_shape("arange", &[n], |o| {
                for (i, x) in o.iter_mut().enumerate() {
                    *x = MaybeUninit::new(T::from_f64(start + i as f64 * step));
                }
            })
        }
    }

    /// `n` evenly spaced values from `start` to `end`, both included
    /// (`[start]` when `n == 1`, empty when `n == 0`).
    ///
    /// # Panics
    /// If `n` elements are too large for memory or cannot be allocated;
    /// [`try_linspace`](Self::try_linspace) is the fallible version.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// assert_eq!(Tensor::<f64>::linspace(0.0, 1.0, 5).to_vec(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    /// assert_eq!(Tensor::<f32>::linspace(3.0, 9.0, 1).to_vec(), vec![3.0]);
    /// assert_eq!(Tensor::<f32>::linspace(0.0, 1.0, 0).numel(), 0);
    /// ```
    #[track_caller]
    pub fn linspace(start: f64, end: f64, n: usize) -> Self {
        Self::try_linspace(start, end, n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`linspace`](Self::linspace), with a count too large for memory as an
    /// error.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"linspace"`) if `n` elements are too large for
    /// memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// assert_eq!(Tensor::<f32>::try_linspace(0.0, 1.0, 3)?.to_vec(), vec![0.0, 0.5, 1.0]);
    /// assert!(Tensor::<f32>::try_linspace(0.0, 1.0, usize::MAX).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn try_linspace(start: f64, end: f64, n: usize) -> Result<Self> {
        // SAFETY: the loop writes every element.
        unsafe {
            Self::try_filled_shape("linspace", &[n], |o| {
                for (i, x) in o.iter_mut().enumerate() {
                    *x = MaybeUninit::new(if n == 1 {
                        T::from_f64(start)
                    } else {
                        T::from_f64(start + (end - start) * i as f64 / (n - 1) as f64)
                    });
                }
            })
        }
    }

    /// The `n × n` identity matrix.
    ///
    /// # Panics
    /// If `n · n` elements are too large for memory or cannot be allocated;
    /// [`try_eye`](Self::try_eye) is the fallible version.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let i = Tensor::<f32>::eye(3);
    /// assert_eq!(i.shape(), &[3, 3]);
    /// assert_eq!(i.to_vec(), vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0)?.reshape(&[2, 3])?;
    /// assert_eq!(a.matmul(&i)?, a);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    #[track_caller]
    pub fn eye(n: usize) -> Self {
        Self::try_eye(n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`eye`](Self::eye), with a size too large for memory as an error.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"eye"`) if `n · n` elements are too large for
    /// memory or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// assert_eq!(Tensor::<f64>::try_eye(2)?.to_vec(), vec![1.0, 0.0, 0.0, 1.0]);
    /// assert!(Tensor::<f64>::try_eye(1 << 32).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn try_eye(n: usize) -> Result<Self> {
        // SAFETY: the loop writes every element (row `i` is `n` elements,
        // a 1 at column `i`).
        unsafe {
            Self::try_filled_shape("eye", &[n, n], |o| {
                for (i, row) in o.chunks_mut(n.max(1)).enumerate() {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = MaybeUninit::new(if i == j { T::ONE } else { T::ZERO });
                    }
                }
            })
        }
    }

    /// Uniform samples in `[low, high)` drawn from `rng` (same seed, same
    /// values). Samples are drawn in `f64`, then converted (so an `f32`
    /// sample can round up to `high`).
    ///
    /// # Panics
    /// If `shape` is too large for memory or cannot be allocated, or if the
    /// shape has at least one element and the range is invalid: `low >=
    /// high`, either bound NaN, or `high - low` not finite.
    /// [`try_uniform`](Self::try_uniform) returns these as errors.
    ///
    /// # Examples
    /// ```
    /// use rand::SeedableRng;
    /// use tapegrad_tensor::Tensor;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    /// let a = Tensor::<f64>::uniform(&[2, 2], -1.0, 1.0, &mut rng);
    /// assert!(a.to_vec().iter().all(|v| (-1.0..1.0).contains(v)));
    /// ```
    #[track_caller]
    pub fn uniform(shape: &[usize], low: f64, high: f64, rng: &mut impl Rng) -> Self {
        Self::try_uniform(shape, low, high, rng).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`uniform`](Self::uniform), with a bad shape or range as an error.
    /// Nothing is drawn from `rng` when it fails.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"uniform"`) if `shape` is too large for memory
    /// or cannot be allocated; [`Error::InvalidArgument`] if the shape has at
    /// least one element and `low >= high`, a bound is NaN, or `high - low`
    /// is not finite.
    ///
    /// # Examples
    /// ```
    /// use rand::SeedableRng;
    /// use tapegrad_tensor::Tensor;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    /// assert_eq!(Tensor::<f32>::try_uniform(&[3], 0.0, 1.0, &mut rng)?.shape(), &[3]);
    /// assert!(Tensor::<f32>::try_uniform(&[3], 1.0, 0.0, &mut rng).is_err());
    /// assert!(Tensor::<f32>::try_uniform(&[1 << 62, 4], 0.0, 1.0, &mut rng).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn try_uniform(shape: &[usize], low: f64, high: f64, rng: &mut impl Rng) -> Result<Self> {
        const OP: &str = "uniform";
        let n = checked_numel::<T>(OP, shape)?;
        // The conditions under which `rand`'s `gen_range` panics.
        if n > 0 && !(low < high && (high - low).is_finite()) {
            return Err(Error::invalid(
                OP,
                format!("cannot sample [{low}, {high}) for shape {shape:?}"),
            ));
        }
        // SAFETY: the loop writes every element.
        unsafe {
            Self::try_filled_shape(OP, shape, |o| {
                for x in o {
                    *x = MaybeUninit::new(T::from_f64(rng.gen_range(low..high)));
                }
            })
        }
    }

    /// Normal samples with the given mean and standard deviation, drawn from
    /// `rng`. A negative `std` is not rejected (it mirrors the samples about
    /// `mean`).
    ///
    /// # Panics
    /// If `shape` is too large for memory or cannot be allocated;
    /// [`try_normal`](Self::try_normal) is the fallible version.
    ///
    /// # Examples
    /// ```
    /// use rand::SeedableRng;
    /// use tapegrad_tensor::Tensor;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let w = Tensor::<f32>::normal(&[100, 10], 5.0, 0.1, &mut rng);
    /// assert_eq!(w.shape(), &[100, 10]);
    /// let m = w.mean_all()?.item()?;
    /// assert!((m - 5.0).abs() < 0.05);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    #[track_caller]
    pub fn normal(shape: &[usize], mean: f64, std: f64, rng: &mut impl Rng) -> Self {
        Self::try_normal(shape, mean, std, rng).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`normal`](Self::normal), with a shape too large for memory as an
    /// error. Nothing is drawn from `rng` when it fails.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"normal"`) if `shape` is too large for memory
    /// or cannot be allocated.
    pub fn try_normal(shape: &[usize], mean: f64, std: f64, rng: &mut impl Rng) -> Result<Self> {
        // SAFETY: the loop writes every element.
        unsafe {
            Self::try_filled_shape("normal", shape, |o| {
                for x in o {
                    let z: f64 = StandardNormal.sample(rng);
                    *x = MaybeUninit::new(T::from_f64(mean + std * z));
                }
            })
        }
    }

    /// Uniform samples in `[low, high)` from a fresh generator seeded with
    /// `seed`: the same arguments always give the same tensor.
    ///
    /// # Panics
    /// As [`uniform`](Self::uniform): if `shape` is too large for memory, or
    /// if the shape has at least one element and `low >= high`, a bound is
    /// NaN, or `high - low` is not finite.
    /// [`try_uniform_seeded`](Self::try_uniform_seeded) is the fallible
    /// version.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::uniform_seeded(&[3, 4], -0.5, 0.5, 42);
    /// assert!(a.to_vec().iter().all(|v| (-0.5..=0.5).contains(v)));
    /// assert_eq!(a, Tensor::uniform_seeded(&[3, 4], -0.5, 0.5, 42));
    /// assert_ne!(a, Tensor::uniform_seeded(&[3, 4], -0.5, 0.5, 43));
    /// ```
    #[track_caller]
    pub fn uniform_seeded(shape: &[usize], low: f64, high: f64, seed: u64) -> Self {
        Self::try_uniform_seeded(shape, low, high, seed).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`uniform_seeded`](Self::uniform_seeded), with a bad shape or range as
    /// an error.
    ///
    /// # Errors
    /// As [`try_uniform`](Self::try_uniform).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::{Error, Tensor};
    /// let err = Tensor::<f32>::try_uniform_seeded(&[1 << 63, 2], -1.0, 1.0, 0).unwrap_err();
    /// assert!(matches!(err, Error::TooLarge { op: "uniform", .. }));
    /// ```
    pub fn try_uniform_seeded(shape: &[usize], low: f64, high: f64, seed: u64) -> Result<Self> {
        use rand::SeedableRng;
        Self::try_uniform(
            shape,
            low,
            high,
            &mut rand::rngs::StdRng::seed_from_u64(seed),
        )
    }

    /// Standard-normal samples from a fresh generator seeded with `seed`: the
    /// same arguments always give the same tensor.
    ///
    /// # Panics
    /// If `shape` is too large for memory or cannot be allocated;
    /// [`try_randn_seeded`](Self::try_randn_seeded) is the fallible version.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f64>::randn_seeded(&[2, 3], 1);
    /// assert_eq!(a.shape(), &[2, 3]);
    /// assert_eq!(a, Tensor::randn_seeded(&[2, 3], 1));
    /// ```
    #[track_caller]
    pub fn randn_seeded(shape: &[usize], seed: u64) -> Self {
        Self::try_randn_seeded(shape, seed).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`randn_seeded`](Self::randn_seeded), with a shape too large for
    /// memory as an error.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (op `"normal"`) if `shape` is too large for memory
    /// or cannot be allocated.
    pub fn try_randn_seeded(shape: &[usize], seed: u64) -> Result<Self> {
        use rand::SeedableRng;
        Self::try_normal(
            shape,
            0.0,
            1.0,
            &mut rand::rngs::StdRng::seed_from_u64(seed),
        )
    }

    // ----- accessors ----------------------------------------------------

    /// The dimensions, as an owned [`Shape`]: the same type as `Var::shape`
    /// (in `tapegrad-autograd`) returns, so a shape reads the same on a
    /// tensor and on a value. Up to four dimensions it is built inline,
    /// without allocating; [`dims`](Self::dims) is the zero-copy borrow,
    /// for hot paths.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::zeros(&[2, 3]);
    /// assert_eq!(a.shape(), [2, 3]);
    /// assert_eq!(a.shape(), a.dims());
    /// assert_eq!(format!("{:?}", a.shape()), "[2, 3]");
    /// let b = Tensor::<f32>::ones(&a.shape()); // a `&Shape` is a `&[usize]`
    /// assert_eq!(b.shape(), a.shape());
    /// ```
    #[inline]
    pub fn shape(&self) -> Shape {
        Shape::of(&self.layout.shape)
    }

    /// The dimensions, borrowed: [`shape`](Self::shape) without the copy.
    /// (A `Var` has no `dims`: its value lives on the tape, which cannot lend
    /// out a borrow, so `Var::shape` is the one accessor there.)
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::zeros(&[2, 3]);
    /// let z = Tensor::<f32>::zeros(a.dims());
    /// assert_eq!(z.dims(), &[2, 3]);
    /// ```
    #[inline]
    pub fn dims(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Strides in elements (0 on broadcast axes).
    pub fn strides(&self) -> &[usize] {
        &self.layout.strides
    }

    /// The full layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.layout.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// Whether the elements are row-major and gap-free.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The elements as a slice, if the tensor is contiguous (`None` for a
    /// strided view; [`to_vec`](Self::to_vec) always works).
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(a.as_slice(), Some(&[1.0, 2.0, 3.0, 4.0][..]));
    /// let t = a.t()?;
    /// assert_eq!(t.as_slice(), None);
    /// assert_eq!(t.to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
    /// assert_eq!(t.to_contiguous().as_slice(), Some(&[1.0, 3.0, 2.0, 4.0][..]));
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn as_slice(&self) -> Option<&[T]> {
        let n = self.numel();
        if n == 0 {
            Some(&[])
        } else if self.is_contiguous() {
            let o = self.layout.offset;
            Some(&self.storage.as_slice()[o..o + n])
        } else {
            None
        }
    }

    /// The elements in row-major order, for writing in place
    /// (copy-on-write, like [`Arc::make_mut`](std::sync::Arc::make_mut)).
    ///
    /// If the tensor is contiguous and this handle is the only one on its
    /// buffer, the slice is that buffer itself: nothing is allocated or
    /// copied. Otherwise (the buffer is shared with a clone or a view, or the
    /// tensor is a strided or broadcast view) the elements are first copied
    /// into a fresh contiguous buffer that only `self` owns, so the other
    /// handles keep their values. Either way the tensor is contiguous
    /// afterwards, and a second call does not copy again.
    ///
    /// Optimisers use this to update parameters without allocating a new
    /// tensor per step. One-element tensors are stored inline and never
    /// shared, so they are always written in place.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let mut a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
    /// let before = a.clone(); // shares a's buffer
    /// a.make_mut_slice()[0] = 10.0; // shared: a copies first
    /// assert_eq!(a.to_vec(), vec![10.0, 2.0, 3.0]);
    /// assert_eq!(before.to_vec(), vec![1.0, 2.0, 3.0]);
    ///
    /// // `a` is now the only handle on its buffer: written in place.
    /// let ptr = a.as_slice().unwrap().as_ptr();
    /// a.make_mut_slice().iter_mut().for_each(|x| *x *= 2.0);
    /// assert_eq!(a.as_slice().unwrap().as_ptr(), ptr);
    /// assert_eq!(a.to_vec(), vec![20.0, 4.0, 6.0]);
    ///
    /// // A strided view becomes contiguous; its slice is in row-major order.
    /// let mut t = Tensor::<f64>::arange(0.0, 4.0, 1.0)?.reshape(&[2, 2])?.t()?;
    /// t.make_mut_slice()[1] = -1.0;
    /// assert_eq!(t.to_vec(), vec![0.0, -1.0, 1.0, 3.0]);
    /// assert!(t.is_contiguous());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn make_mut_slice(&mut self) -> &mut [T] {
        let n = self.numel();
        if n == 0 {
            return &mut [];
        }
        if !(self.is_contiguous() && self.storage.unique_mut().is_some()) {
            // A recycled, aligned buffer when one fits, as kernel outputs use.
            let data = self.to_data();
            let shape = self.dims();
            *self = Self::from_parts(data, shape);
        }
        let o = self.layout.offset;
        match self.storage.unique_mut() {
            Some(buf) => &mut buf[o..o + n],
            // Either checked above or just made: a fresh buffer has one owner.
            None => unreachable!("make_mut_slice: a fresh buffer is not shared"),
        }
    }

    /// The underlying buffer (all of it, as shared by every view).
    pub fn storage_slice(&self) -> &[T] {
        self.storage.as_slice()
    }

    /// Whether `self` and `other` read the same buffer.
    pub fn shares_storage_with(&self, other: &Self) -> bool {
        self.storage.same_buffer(&other.storage)
    }

    /// Internal: the elements in row-major order as a fresh tensor buffer
    /// (aligned, from the pool when large; see `buffer::try_filled`).
    pub(crate) fn to_data(&self) -> Data<T> {
        self.map_to_data::<true>(&|x| x)
    }

    /// Internal: [`to_data`](Self::to_data), or [`Error::TooLarge`] naming
    /// `op` if the buffer cannot be allocated.
    pub(crate) fn try_to_data(&self, op: &'static str) -> Result<Data<T>> {
        self.try_map_to_data::<true>(&|x| x)
            .map_err(|e| e.at(op, self.dims()))
    }

    /// Internal: [`to_vec`](Self::to_vec), or [`Error::TooLarge`] naming
    /// `op` if the vector cannot be allocated.
    pub(crate) fn try_to_vec(&self, op: &'static str) -> Result<Vec<T>> {
        let d = self
            .try_map_to_data::<false>(&|x| x)
            .map_err(|e| e.at(op, self.dims()))?;
        Ok(d.into_raw_vec())
    }

    /// Copies the elements out in row-major order. A conversion, not an op,
    /// so it returns no `Result` (see the crate docs).
    ///
    /// # Panics
    /// If the vector cannot be allocated (a broadcast view can be far larger
    /// than its buffer).
    pub fn to_vec(&self) -> Vec<T> {
        if let Some(s) = self.as_slice() {
            return s.to_vec();
        }
        // Unaligned, so the buffer is the `Vec` itself (no padding).
        self.map_to_data::<false>(&|x| x).into_raw_vec()
    }

    /// The value of a one-element tensor (any rank).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the tensor does not hold exactly one
    /// element.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
    /// assert_eq!(a.sum_all()?.item()?, 6.0);
    /// assert_eq!(Tensor::full(&[1, 1], 4.0f32).item()?, 4.0);
    /// assert!(a.item().is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn item(&self) -> Result<T> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "item",
                format!(
                    "tensor of shape {:?} has {} elements, not 1",
                    self.dims(),
                    self.numel()
                ),
            ));
        }
        Ok(self.storage.as_slice()[self.layout.offset])
    }

    /// The element at a multi-index (one entry per axis; `&[]` for a 0-d
    /// tensor).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `index.len()` is not the rank, or
    /// [`Error::IndexOutOfRange`] if an entry is not below its axis length.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0)?.reshape(&[2, 3])?;
    /// assert_eq!(a.get(&[1, 2])?, 5.0);
    /// assert_eq!(a.t()?.get(&[2, 1])?, 5.0); // views index their own shape
    /// assert!(a.get(&[2, 0]).is_err());
    /// assert!(a.get(&[1]).is_err());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn get(&self, index: &[usize]) -> Result<T> {
        if index.len() != self.ndim() {
            return Err(Error::invalid(
                "get",
                format!(
                    "index {index:?} has {} axes but the shape {:?} has {}",
                    index.len(),
                    self.dims(),
                    self.ndim()
                ),
            ));
        }
        for (axis, (&i, &d)) in index.iter().zip(self.dims()).enumerate() {
            if i >= d {
                return Err(Error::IndexOutOfRange {
                    op: "get",
                    index: i,
                    axis,
                    shape: self.dims().to_vec(),
                });
            }
        }
        Ok(self.storage.as_slice()[self.layout.offset_of(index)])
    }

    /// A contiguous tensor with the same values: `self` (a cheap clone) if it
    /// is contiguous already, else a copy. A conversion, not an op, so it
    /// returns no `Result` (see the crate docs).
    ///
    /// # Panics
    /// If the copy cannot be allocated (a broadcast view can be far larger
    /// than its buffer).
    pub fn to_contiguous(&self) -> Self {
        if self.is_contiguous() {
            return self.clone();
        }
        Self::from_parts(self.to_data(), self.dims())
    }

    /// Internal: [`to_contiguous`](Self::to_contiguous), or
    /// [`Error::TooLarge`] naming `op` if the copy cannot be allocated.
    pub(crate) fn try_to_contiguous(&self, op: &'static str) -> Result<Self> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        Ok(Self::from_parts(self.try_to_data(op)?, self.dims()))
    }

    /// Internal: a view with another layout over the same storage.
    pub(crate) fn with_layout(&self, layout: Layout) -> Self {
        Tensor {
            storage: self.storage.clone(),
            layout,
        }
    }

    /// Converts the element type (for example to `f64` for a gradient check).
    /// Going to `f32` rounds, and values beyond `f32`'s range become `±inf`.
    /// A conversion, not an op, so it returns no `Result` (see the crate
    /// docs).
    ///
    /// # Panics
    /// As [`to_vec`](Self::to_vec), if the copy cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![0.1f32, 2.0], &[2])?;
    /// let b: Tensor<f64> = a.cast();
    /// assert_eq!(b.to_vec(), vec![0.1f32 as f64, 2.0]);
    /// assert_eq!(Tensor::scalar(1e40f64).cast::<f32>().item()?, f32::INFINITY);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        let v = self
            .to_vec()
            .into_iter()
            .map(|x| U::from_f64(x.to_f64()))
            .collect::<Vec<U>>();
        Tensor::<U>::from_parts(v, self.dims())
    }
}

impl<T: Element> std::fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor<{}>{:?} ", T::DTYPE, self.dims())?;
        std::fmt::Display::fmt(self, f)
    }
}

impl<T: Element> PartialEq for Tensor<T> {
    /// Same shape and same values (not the same storage).
    fn eq(&self, other: &Self) -> bool {
        self.dims() == other.dims() && self.to_vec() == other.to_vec()
    }
}

/// `Ok` if `shape` holds exactly `got` elements, else the error naming `op`.
fn check_element_count<T>(op: &'static str, shape: &[usize], got: usize) -> Result<()> {
    let expected = checked_numel::<T>(op, shape)?;
    if got != expected {
        return Err(Error::ElementCount {
            op,
            shape: shape.to_vec(),
            expected,
            got,
        });
    }
    Ok(())
}
