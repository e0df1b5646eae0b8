//! The [`Op`] trait: what every differentiable operation implements, built-in
//! or written by a user.

use smallvec::SmallVec;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::var::Var;

/// Gradients an op's backward rule returns, one per input (`None`: no
/// gradient flows to that input).
pub type InputGrads<'t, T> = SmallVec<[Option<Var<'t, T>>; 2]>;

/// Gradients an op's value rule ([`Op::backward_value`]) returns, one per
/// input (`None`: no gradient flows to that input).
pub type TensorGrads<T> = SmallVec<[Option<Tensor<T>>; 2]>;

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
///         Ok(inputs[0].map(|x| x * x * x)?)
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

    /// Optional: the same vector-Jacobian product as
    /// [`backward`](Self::backward), computed directly on tensors.
    ///
    /// When the gradient will not be differentiated again (`backward`,
    /// `grad`; not `grad_graph`), the engine calls this first and skips
    /// recording the rule's own ops, which is most of the cost of a backward
    /// pass on small values. Return `None` (the default) to have the engine
    /// run [`backward`](Self::backward) instead. Both rules must give the
    /// same numbers; [`gradcheck`](crate::gradcheck()) compares them.
    ///
    /// ```
    /// use tapegrad_autograd::{BackwardCtx, InputGrads, Op, Result, Tape, TensorGrads, ValueCtx};
    /// use tapegrad_tensor::{Element, Tensor};
    ///
    /// /// y = 2x, with both rules.
    /// struct Double;
    /// impl<T: Element> Op<T> for Double {
    ///     fn name(&self) -> &str { "double" }
    ///     fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
    ///         Ok(inputs[0].mul_scalar(2.0)?)
    ///     }
    ///     fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
    ///         Ok(InputGrads::from_elem(Some(cx.grad_output.mul_scalar(2.0)?), 1))
    ///     }
    ///     fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
    ///         let g = cx.grad_output.mul_scalar(2.0);
    ///         Some(g.map(|g| TensorGrads::from_elem(Some(g), 1)).map_err(Into::into))
    ///     }
    /// }
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::scalar(3.0));
    /// let y = tape.apply(Double, &[x])?;
    /// assert_eq!(tape.backward(y)?.get(x).unwrap().item()?, 2.0);
    /// // The check runs both rules and compares them too.
    /// let report = tapegrad_autograd::gradcheck(
    ///     |tape, v| tape.apply(Double, &[v[0]]),
    ///     &[Tensor::from_vec(vec![1.0, -2.0], &[2])?],
    /// )?;
    /// assert!(report.passed, "{report}");
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let _ = cx;
        None
    }
}

/// What a value rule ([`Op::backward_value`]) can see: the recorded input
/// and output values and the gradient flowing into the output, as tensors.
#[derive(Debug)]
pub struct ValueCtx<'a, T: Element> {
    /// The op's input values.
    pub inputs: &'a [&'a Tensor<T>],
    /// The op's output value.
    pub output: &'a Tensor<T>,
    /// ∂L/∂output, the same shape as the output.
    pub grad_output: &'a Tensor<T>,
    /// Whether each input needs a gradient (rules may skip the others).
    pub needs_grad: &'a [bool],
}

impl<T: Element> ValueCtx<'_, T> {
    /// `g` summed down to input `k`'s shape (the adjoint of broadcasting);
    /// `g` itself when the shapes already match.
    ///
    /// # Errors
    /// If input `k`'s shape does not broadcast to `g`'s.
    #[inline]
    pub fn sum_to_input(&self, g: Tensor<T>, k: usize) -> Result<Tensor<T>> {
        crate::ops::reduce::sum_to_shape(g, self.inputs[k].dims())
    }

    /// Whether input `k` has the output's shape (was not broadcast), so its
    /// gradient needs no summing.
    #[inline]
    pub(crate) fn same_shape_as_output(&self, k: usize) -> bool {
        crate::backward::same_dims(self.inputs[k].dims(), self.output.dims())
    }

    /// `Some(f())` if input `k` needs a gradient, else `None`: the usual
    /// shape of one input's entry in a value rule.
    ///
    /// # Errors
    /// Whatever `f` returns.
    #[inline]
    pub fn grad_for(
        &self,
        k: usize,
        f: impl FnOnce() -> Result<Tensor<T>>,
    ) -> Result<Option<Tensor<T>>> {
        if self.needs_grad[k] {
            f().map(Some)
        } else {
            Ok(None)
        }
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
