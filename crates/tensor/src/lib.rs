//! Strided dense N-d arrays of `f32` and `f64` for tapegrad.
//!
//! A [`Tensor`] is a shared, immutable buffer plus a [`Layout`] (shape,
//! strides, offset). Views such as [`Tensor::permute`], [`Tensor::slice`] and
//! [`Tensor::broadcast_to`] never copy; kernels (elementwise maps with NumPy
//! broadcasting, reductions, matmul) write fresh contiguous results and use
//! several cores for large inputs (see [`parallel`]).
//!
//! ```
//! use tapegrad_tensor::Tensor;
//! let x = Tensor::<f32>::arange(0.0, 6.0, 1.0)?.reshape(&[2, 3])?;
//! let w = Tensor::<f32>::ones(&[3, 2]);
//! let y = (x.matmul(&w)? + Tensor::from_vec(vec![0.5, -0.5], &[2])?)?;
//! assert_eq!(y.to_vec(), vec![3.5, 2.5, 12.5, 11.5]);
//! assert_eq!(y.shape(), [2, 2]);
//! println!("{y}");
//! # Ok::<(), tapegrad_tensor::Error>(())
//! ```
//!
//! # A tour
//!
//! - **Construction**: [`Tensor::from_vec`], [`Tensor::scalar`],
//!   [`Tensor::zeros`] / [`ones`](Tensor::ones) / [`full`](Tensor::full),
//!   [`arange`](Tensor::arange), [`linspace`](Tensor::linspace),
//!   [`eye`](Tensor::eye), seeded random tensors
//!   ([`uniform_seeded`](Tensor::uniform_seeded),
//!   [`randn_seeded`](Tensor::randn_seeded)); the infallible ones have
//!   `try_` versions (see *Sizes* below).
//! - **Accessors**: [`shape`](Tensor::shape) (an owned [`Shape`], the type
//!   `Var::shape` returns too), [`dims`](Tensor::dims) (the same, borrowed),
//!   [`ndim`](Tensor::ndim), [`numel`](Tensor::numel),
//!   [`as_slice`](Tensor::as_slice), [`to_vec`](Tensor::to_vec).
//! - **Views** (no copy): [`reshape`](Tensor::reshape),
//!   [`permute`](Tensor::permute), [`t`](Tensor::t),
//!   [`slice`](Tensor::slice), [`select`](Tensor::select),
//!   [`unsqueeze`](Tensor::unsqueeze), [`broadcast_to`](Tensor::broadcast_to).
//! - **Elementwise**: [`map`](Tensor::map) and the named unary ops,
//!   [`zip_with`](Tensor::zip_with) and the broadcasting binary ops,
//!   comparison masks, [`where_cond`](Tensor::where_cond); the
//!   [`operators`] `+ - * /` and unary `-` (`(&a * &b + 1.0)?`).
//! - **Reductions**: [`sum`](Tensor::sum), [`mean`](Tensor::mean),
//!   [`max`](Tensor::max), [`min`](Tensor::min), [`var`](Tensor::var),
//!   [`argmax`](Tensor::argmax), and the fused
//!   [`logsumexp`](Tensor::logsumexp), [`softmax`](Tensor::softmax),
//!   [`log_softmax`](Tensor::log_softmax).
//! - **Linear algebra**: [`matmul`](Tensor::matmul) (vectors, matrices,
//!   broadcast batches).
//! - **Convolution and pooling** (PyTorch's `[N, C, H, W]` layout):
//!   [`conv2d`](Tensor::conv2d), [`conv1d`](Tensor::conv1d) with
//!   [`ConvParams`] (stride, padding, dilation, groups),
//!   [`conv_transpose2d`](Tensor::conv_transpose2d),
//!   [`conv2d_weight_grad`](Tensor::conv2d_weight_grad),
//!   [`unfold`](Tensor::unfold) / [`fold`](Tensor::fold) (im2col),
//!   [`max_pool2d_with_indices`](Tensor::max_pool2d_with_indices),
//!   [`avg_pool2d`](Tensor::avg_pool2d).
//! - **Indexing**: [`concat`](Tensor::concat), [`stack`](Tensor::stack),
//!   [`index_select`](Tensor::index_select), [`gather`](Tensor::gather),
//!   [`gather_rows`](Tensor::gather_rows), [`one_hot`](Tensor::one_hot).
//! - **In place**: [`make_mut_slice`](Tensor::make_mut_slice), copy-on-write
//!   access for updates such as an optimiser step (other handles on the
//!   buffer never see the writes).
//!
//! One-element tensors (the nodes of a scalar tape) are stored inline and
//! every kernel has an allocation-free path for them.
//!
//! **Which calls return `Result`.** Every op returns `Result`, on a `Tensor`
//! and on a `Var` alike: anything that computes a new tensor or value
//! (elementwise maps and arithmetic, also with plain numbers and through
//! the operators `+ - * /` and unary `-`, reductions, views, matmul,
//! indexing), even where only an allocation can fail, so that `?` works the
//! same on every line and the error names the op. Accessors that cannot
//! fail (`shape`, `ndim`, `numel`, `is_contiguous`, ...) return plain
//! values, and so do conversions and copies (`clone`, `to_vec`,
//! `to_contiguous`, `cast`) and constructors that cannot fail (`scalar`).
//!
//! Here the [`Error`] names the op and the shapes involved. Calls that can
//! panic say so in a `# Panics` section: the size-only constructors and the
//! conversions (see *Sizes*).
//!
//! **Sizes.** A shape is too large when a buffer of it in `f64` would
//! pass `isize::MAX` bytes, zero-length axes counted as 1 (one limit for
//! `f32` and `f64`, so a cast never fails) (this covers every
//! element count that overflows `usize`). Constructors, views and kernel
//! outputs all check this with one helper: a shape too large, or a buffer
//! the allocator refuses, is [`Error::TooLarge`] naming the op and the shape,
//! never a wrapped count or an abort. Functions that return `Result` return
//! it. The size-only constructors, kept infallible as they are used
//! everywhere ([`zeros`](Tensor::zeros), [`ones`](Tensor::ones),
//! [`full`](Tensor::full), [`eye`](Tensor::eye),
//! [`linspace`](Tensor::linspace), [`uniform`](Tensor::uniform),
//! [`normal`](Tensor::normal) and the seeded ones, [`Layout::contiguous`],
//! [`contiguous_strides`]), panic with it and have `try_` siblings that
//! return it ([`Layout::try_contiguous`] for `contiguous_strides`). Every op
//! returns it, maps included; only the conversions that copy
//! ([`to_vec`](Tensor::to_vec), [`to_contiguous`](Tensor::to_contiguous),
//! [`cast`](Tensor::cast)) panic if the allocator refuses, which only a huge
//! broadcast view can cause.

mod buffer;
mod display;
mod element;
mod error;
pub mod fastmath;
mod layout;
mod ops;
pub mod parallel;
mod pool;
mod shape;
mod simd;
mod storage;
mod team;
mod tensor;

pub use element::Element;
pub use error::{Error, Result};
pub use layout::{broadcast_shapes, contiguous_strides, Layout};
pub use ops::conv::ConvParams;
pub use ops::operators;
pub use ops::pooling::avg_pool_as_conv;
pub use ops::recurrent;
pub use ops::unary::{sigmoid_scalar, softplus_scalar};
pub use shape::Shape;
pub use tensor::Tensor;
