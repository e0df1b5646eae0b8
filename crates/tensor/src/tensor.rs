//! The [`Tensor`] type: constructors, accessors and copies.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};
use crate::layout::{Layout, Shape};
use crate::storage::Storage;
use crate::Element;

/// A strided, immutable N-d array of `f32` or `f64`.
///
/// Cloning is cheap (it shares the buffer), and so are views: `reshape`,
/// `permute`, `slice`, `broadcast_to` and friends return tensors that read the
/// same storage through a new [`Layout`]. Kernels always write fresh,
/// contiguous outputs, so a tensor's data never changes after creation; that
/// is why `Tensor` is `Send + Sync` without any lock.
///
/// ```
/// use tapegrad_tensor::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let t = a.t()?; // a zero-copy transpose
/// assert_eq!(t.shape(), &[3, 2]);
/// assert_eq!(t.to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// # Ok::<(), tapegrad_tensor::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor<T: Element = f32> {
    pub(crate) storage: Storage<T>,
    pub(crate) layout: Layout,
}

impl<T: Element> Tensor<T> {
    // ----- construction -------------------------------------------------

    /// Wraps `data` (row-major) as a tensor of `shape`.
    ///
    /// # Errors
    /// If `data.len()` differs from the product of `shape`.
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(Error::ElementCount {
                op: "from_vec",
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(Self::from_parts(data, shape))
    }

    /// Like [`from_vec`](Self::from_vec) for a borrowed slice (copies it).
    ///
    /// # Errors
    /// If `data.len()` differs from the product of `shape`.
    pub fn from_slice(data: &[T], shape: &[usize]) -> Result<Self> {
        Self::from_vec(data.to_vec(), shape)
    }

    /// Internal: a contiguous tensor from data known to match `shape`.
    pub(crate) fn from_parts(data: Vec<T>, shape: &[usize]) -> Self {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Tensor {
            storage: Storage::from_vec(data),
            layout: Layout::contiguous(shape),
        }
    }

    /// Internal: a one-element tensor of `shape` (all ones, any rank) held
    /// inline, without allocating.
    #[inline]
    pub(crate) fn scalar_shaped(v: T, shape: &[usize]) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), 1);
        Tensor {
            storage: Storage::Scalar([v]),
            layout: Layout::contiguous(shape),
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
    pub fn scalar(v: T) -> Self {
        Tensor {
            storage: Storage::Scalar([v]),
            layout: Layout::contiguous(&[]),
        }
    }

    /// A 1-d tensor copied from a slice.
    pub fn from_slice_1d(data: &[T]) -> Self {
        Self::from_parts(data.to_vec(), &[data.len()])
    }

    /// A tensor of `shape` filled with `v`.
    pub fn full(shape: &[usize], v: T) -> Self {
        Self::from_parts(vec![v; shape.iter().product()], shape)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::ZERO)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::ONE)
    }

    /// `start, start + step, …` up to but excluding `end` (like `numpy.arange`).
    ///
    /// # Errors
    /// If `step` is zero or not finite, or has the wrong sign to reach `end`.
    pub fn arange(start: f64, end: f64, step: f64) -> Result<Self> {
        if step == 0.0 || !step.is_finite() || (end - start) * step < 0.0 {
            return Err(Error::invalid(
                "arange",
                format!("cannot step from {start} to {end} by {step}"),
            ));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v = (0..n)
            .map(|i| T::from_f64(start + i as f64 * step))
            .collect::<Vec<_>>();
        Ok(Self::from_parts(v, &[n]))
    }

    /// `n` evenly spaced values from `start` to `end`, both included.
    pub fn linspace(start: f64, end: f64, n: usize) -> Self {
        let v = (0..n)
            .map(|i| {
                if n == 1 {
                    T::from_f64(start)
                } else {
                    T::from_f64(start + (end - start) * i as f64 / (n - 1) as f64)
                }
            })
            .collect::<Vec<_>>();
        Self::from_parts(v, &[n])
    }

    /// The `n × n` identity matrix.
    pub fn eye(n: usize) -> Self {
        let mut v = vec![T::ZERO; n * n];
        for i in 0..n {
            v[i * n + i] = T::ONE;
        }
        Self::from_parts(v, &[n, n])
    }

    /// Uniform samples in `[low, high)` drawn from `rng` (same seed, same
    /// values).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use tapegrad_tensor::Tensor;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    /// let a = Tensor::<f64>::uniform(&[2, 2], -1.0, 1.0, &mut rng);
    /// assert!(a.to_vec().iter().all(|v| (-1.0..1.0).contains(v)));
    /// ```
    pub fn uniform(shape: &[usize], low: f64, high: f64, rng: &mut impl Rng) -> Self {
        let v = (0..shape.iter().product::<usize>())
            .map(|_| T::from_f64(rng.gen_range(low..high)))
            .collect();
        Self::from_parts(v, shape)
    }

    /// Normal samples with the given mean and standard deviation.
    pub fn normal(shape: &[usize], mean: f64, std: f64, rng: &mut impl Rng) -> Self {
        let v = (0..shape.iter().product::<usize>())
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                T::from_f64(mean + std * z)
            })
            .collect();
        Self::from_parts(v, shape)
    }

    /// Uniform samples from a fresh generator seeded with `seed`.
    pub fn uniform_seeded(shape: &[usize], low: f64, high: f64, seed: u64) -> Self {
        use rand::SeedableRng;
        Self::uniform(
            shape,
            low,
            high,
            &mut rand::rngs::StdRng::seed_from_u64(seed),
        )
    }

    /// Standard-normal samples from a fresh generator seeded with `seed`.
    pub fn randn_seeded(shape: &[usize], seed: u64) -> Self {
        use rand::SeedableRng;
        Self::normal(
            shape,
            0.0,
            1.0,
            &mut rand::rngs::StdRng::seed_from_u64(seed),
        )
    }

    // ----- accessors ----------------------------------------------------

    /// Dimensions.
    pub fn shape(&self) -> &[usize] {
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

    /// The elements as a slice, if the tensor is contiguous.
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

    /// The underlying buffer (all of it, as shared by every view).
    pub fn storage_slice(&self) -> &[T] {
        self.storage.as_slice()
    }

    /// Whether `self` and `other` read the same buffer.
    pub fn shares_storage_with(&self, other: &Self) -> bool {
        self.storage.same_buffer(&other.storage)
    }

    /// Copies the elements out in row-major order.
    pub fn to_vec(&self) -> Vec<T> {
        if let Some(s) = self.as_slice() {
            return s.to_vec();
        }
        self.map_to_vec(&|x| x)
    }

    /// The value of a one-element tensor (any rank).
    ///
    /// # Errors
    /// If the tensor does not hold exactly one element.
    pub fn item(&self) -> Result<T> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "item",
                format!(
                    "tensor of shape {:?} has {} elements, not 1",
                    self.shape(),
                    self.numel()
                ),
            ));
        }
        Ok(self.storage.as_slice()[self.layout.offset])
    }

    /// The element at a multi-index.
    ///
    /// # Errors
    /// If the index has the wrong length or is out of range.
    pub fn get(&self, index: &[usize]) -> Result<T> {
        if index.len() != self.ndim() {
            return Err(Error::invalid(
                "get",
                format!(
                    "index {index:?} has {} axes but the shape {:?} has {}",
                    index.len(),
                    self.shape(),
                    self.ndim()
                ),
            ));
        }
        for (axis, (&i, &d)) in index.iter().zip(self.shape()).enumerate() {
            if i >= d {
                return Err(Error::IndexOutOfRange {
                    op: "get",
                    index: i,
                    axis,
                    shape: self.shape().to_vec(),
                });
            }
        }
        Ok(self.storage.as_slice()[self.layout.offset_of(index)])
    }

    /// A contiguous tensor with the same values: `self` (a cheap clone) if it
    /// is contiguous already, else a copy.
    pub fn to_contiguous(&self) -> Self {
        if self.is_contiguous() {
            return self.clone();
        }
        Self::from_parts(self.to_vec(), self.shape())
    }

    /// Internal: a view with another layout over the same storage.
    pub(crate) fn with_layout(&self, layout: Layout) -> Self {
        Tensor {
            storage: self.storage.clone(),
            layout,
        }
    }

    /// Converts the element type (for example to `f64` for a gradient check).
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        let v = self
            .to_vec()
            .into_iter()
            .map(|x| U::from_f64(x.to_f64()))
            .collect();
        Tensor::<U>::from_parts(v, self.shape())
    }

    /// The shape as an owned small vector.
    pub fn dims(&self) -> Shape {
        crate::layout::shape_of(&self.layout.shape)
    }
}

impl<T: Element> std::fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor<{}>{:?} ", T::DTYPE, self.shape())?;
        std::fmt::Display::fmt(self, f)
    }
}

impl<T: Element> PartialEq for Tensor<T> {
    /// Same shape and same values (not the same storage).
    fn eq(&self, other: &Self) -> bool {
        self.shape() == other.shape() && self.to_vec() == other.to_vec()
    }
}
