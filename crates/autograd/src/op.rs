//! The [`Op`] trait: what every differentiable operation implements, built-in
//! or written by a user.

use smallvec::SmallVec;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::var::Var;

/// Gradients an op's backward rule returns, one per input (`None`: no
/// gradient flows to that input).
pub type InputGrads<'t, T> = SmallVec<[Option<Var<'t, T>>; 2]>;

/// An operation on the tape: a forward computation on tensors and, if it is
/// differentiable, a backward rule (a vector-Jacobian product).
///
/// The backward rule is written with [`Var`] operations, so the gradient it
/// produces is itself recorded when higher-order gradients are requested
/// (`create_graph`). Every built-in op implements this same trait.
///
/// ```
/// use tapegrad_autograd::{BackwardCtx, InputGrads, Op, Result, Tape};
/// use tapegrad_tensor::{Element, Tensor};
///
/// /// y = x³, dy/dx = 3x².
/// struct Cube;
/// impl<T: Element> Op<T> for Cube {
///     fn name(&self) -> &str { "cube" }
///     fn formula(&self) -> Option<String> { Some("d x³/dx = 3·x²".into()) }
///     fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
///         Ok(inputs[0].map(|x| x * x * x))
///     }
///     fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
///         let x = cx.inputs[0];
///         let g = cx.grad_output.mul(x.square()?.mul_scalar(3.0)?)?;
///         Ok(InputGrads::from_elem(Some(g), 1))
///     }
/// }
///
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::scalar(2.0));
/// let y = tape.apply(Cube, &[x])?;
/// let g = tape.backward(y)?;
/// assert_eq!(g.get(x).unwrap().item()?, 12.0);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
pub trait Op<T: Element>: Send + 'static {
    /// The op's name, used in printing and error messages.
    fn name(&self) -> &str;

    /// Extra parameters to show when printing (for example `axes=[0]`).
    fn params(&self) -> String {
        String::new()
    }

    /// The local derivative rule in words, shown in backward traces (for
    /// example `d tanh(x)/dx = 1 - tanh(x)²`).
    fn formula(&self) -> Option<String> {
        None
    }

    /// Computes the output from the input values.
    ///
    /// # Errors
    /// Whatever the computation reports (shape errors from the tensor crate
    /// convert with `?`).
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;

    /// The vector-Jacobian product: given the gradient of the loss with
    /// respect to the output (`cx.grad_output`), the gradient with respect to
    /// each input. The default reports the op as forward-only.
    ///
    /// # Errors
    /// [`Error::BackwardNotSupported`] by default.
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Err(Error::BackwardNotSupported {
            op: self.name().to_string(),
            node: cx.output.id(),
        })
    }
}

/// What a backward rule can see: the op's inputs and output as recorded, and
/// the gradient flowing into the output.
#[derive(Debug)]
pub struct BackwardCtx<'t, T: Element> {
    /// The op's inputs.
    pub inputs: SmallVec<[Var<'t, T>; 2]>,
    /// The op's output.
    pub output: Var<'t, T>,
    /// ∂L/∂output, the same shape as the output.
    pub grad_output: Var<'t, T>,
    /// Whether each input needs a gradient (rules may skip the others).
    pub needs_grad: SmallVec<[bool; 2]>,
}
