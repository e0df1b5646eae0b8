//! Pooling layers and [`Flatten`]; none has parameters.

use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::Element;

use crate::layers::layer_error;
use crate::module::Module;

/// A pooling window: kernel, stride (default: the kernel) and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Window {
    fn square(k: usize) -> Self {
        Window {
            kernel: [k, k],
            stride: [k, k],
            padding: [0, 0],
        }
    }
    fn describe(&self, name: &str) -> String {
        format!(
            "{name}(kernel_size={:?}, stride={:?}, padding={:?})",
            self.kernel, self.stride, self.padding
        )
    }
}

/// The constructor, builder methods and `Module` impl of a pooling layer
/// that wraps a [`Window`] and calls the `Var` pooling op `$op`.
macro_rules! pooling_layer {
    ($name:ident, $op:ident) => {
        impl $name {
            /// A square window of `kernel_size`, the same stride, no padding.
            pub fn new(kernel_size: usize) -> Self {
                $name(Window::square(kernel_size))
            }
            /// The same stride along both axes.
            pub fn stride(mut self, s: usize) -> Self {
                self.0.stride = [s, s];
                self
            }
            /// The same padding on every side (at most half the kernel).
            pub fn padding(mut self, p: usize) -> Self {
                self.0.padding = [p, p];
                self
            }
        }

        impl<T: Element> Module<T> for $name {
            fn forward<'t>(&self, _tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
                let w = self.0;
                x.$op(w.kernel, w.stride, w.padding).map_err(|e| {
                    layer_error(
                        None,
                        &w.describe(stringify!($name)),
                        format!("input of shape {:?}: {e}", x.shape().as_slice()),
                    )
                })
            }
            fn describe(&self) -> String {
                self.0.describe(stringify!($name))
            }
        }
    };
}

/// 2-d max pooling (`torch.nn.MaxPool2d`): the maximum of each window of
/// `[N, C, H, W]`. The stride defaults to the kernel size; padding counts
/// as −∞. The gradient goes to each window's maximum, on ties to the
/// first one in scan order (row by row), as in PyTorch.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{MaxPool2d, Module};
/// use tapegrad_tensor::Tensor;
/// let pool = MaxPool2d::new(2);
/// let tape = Tape::<f32>::new();
/// let y = pool.forward(&tape, tape.constant(Tensor::arange(0.0, 16.0, 1.0)?.reshape(&[1, 1, 4, 4])?))?;
/// assert_eq!(y.value().to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool2d(Window);

pooling_layer!(MaxPool2d, max_pool2d);

/// 2-d average pooling (`torch.nn.AvgPool2d` with its defaults,
/// `count_include_pad=True`): the mean of each window, the divisor always
/// `kh·kw`. The stride defaults to the kernel size.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{AvgPool2d, Module};
/// use tapegrad_tensor::Tensor;
/// let tape = Tape::<f32>::new();
/// let y = AvgPool2d::new(2).forward(&tape, tape.constant(Tensor::ones(&[1, 3, 4, 4])))?;
/// assert_eq!(y.shape(), [1, 3, 2, 2]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2d(Window);

pooling_layer!(AvgPool2d, avg_pool2d);

/// Global average pooling: `[N, C, H, W]` → `[N, C]`, each channel's mean
/// (PyTorch: `nn.AdaptiveAvgPool2d(1)` then `nn.Flatten()`).
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{GlobalAvgPool2d, Module};
/// use tapegrad_tensor::Tensor;
/// let tape = Tape::<f32>::new();
/// let y = GlobalAvgPool2d.forward(&tape, tape.constant(Tensor::ones(&[2, 3, 4, 4])))?;
/// assert_eq!(y.shape(), [2, 3]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GlobalAvgPool2d;

impl<T: Element> Module<T> for GlobalAvgPool2d {
    fn forward<'t>(&self, _tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        x.global_avg_pool2d()
    }
    fn describe(&self) -> String {
        "GlobalAvgPool2d()".into()
    }
}

/// Flattens every axis after the first: `[N, ...]` → `[N, prod(...)]`
/// (`torch.nn.Flatten()` with its defaults).
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Flatten, Module};
/// use tapegrad_tensor::Tensor;
/// let tape = Tape::<f32>::new();
/// let y = Flatten.forward(&tape, tape.constant(Tensor::ones(&[2, 3, 4, 4])))?;
/// assert_eq!(y.shape(), [2, 48]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flatten;

impl<T: Element> Module<T> for Flatten {
    fn forward<'t>(&self, _tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let s = x.shape();
        if s.is_empty() {
            return Err(layer_error(
                None,
                "Flatten()",
                "cannot flatten a 0-d value: expected [N, ...]".into(),
            ));
        }
        let rest: usize = s[1..].iter().product();
        x.reshape(&[s[0], rest])
    }
    fn describe(&self) -> String {
        "Flatten(start_dim=1, end_dim=-1)".into()
    }
}

/// Reshapes the features of each example: `[N, prod(shape)]` →
/// `[N, shape...]` (`torch.nn.Unflatten(1, shape)`), for example flat
/// pixel rows into `[N, 1, 8, 8]` images.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Module, Unflatten};
/// use tapegrad_tensor::Tensor;
/// let tape = Tape::<f32>::new();
/// let y = Unflatten::new(&[1, 8, 8]).forward(&tape, tape.constant(Tensor::ones(&[5, 64])))?;
/// assert_eq!(y.shape(), [5, 1, 8, 8]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unflatten {
    shape: Vec<usize>,
}

impl Unflatten {
    /// Unflattens axis 1 into `shape`.
    pub fn new(shape: &[usize]) -> Self {
        Unflatten {
            shape: shape.to_vec(),
        }
    }
}

impl<T: Element> Module<T> for Unflatten {
    fn forward<'t>(&self, _tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let s = x.shape();
        let want: usize = self.shape.iter().product();
        if s.len() != 2 || s[1] != want {
            return Err(layer_error(
                None,
                &Module::<T>::describe(self),
                format!(
                    "got input of shape {:?}: expected [N, {want}]",
                    s.as_slice()
                ),
            ));
        }
        let mut full = vec![s[0]];
        full.extend_from_slice(&self.shape);
        x.reshape(&full)
    }
    fn describe(&self) -> String {
        format!("Unflatten(dim=1, unflattened_size={:?})", self.shape)
    }
}
