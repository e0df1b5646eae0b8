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
//! let y = x.matmul(&w)?.add(&Tensor::from_vec(vec![0.5, -0.5], &[2])?)?;
//! assert_eq!(y.to_vec(), vec![3.5, 2.5, 12.5, 11.5]);
//! println!("{y}");
//! # Ok::<(), tapegrad_tensor::Error>(())
//! ```
//!
//! Every fallible call returns [`Result`]; its [`Error`] names the op and the
//! shapes involved. Calls that can panic say so in a `# Panics` section.

mod buffer;
mod display;
mod element;
mod error;
pub mod fastmath;
mod layout;
mod ops;
pub mod parallel;
mod pool;
mod simd;
mod storage;
mod tensor;

pub use element::Element;
pub use error::{Error, Result};
pub use layout::{broadcast_shapes, contiguous_strides, Layout, Shape};
pub use ops::unary::{sigmoid_scalar, softplus_scalar};
pub use tensor::Tensor;
