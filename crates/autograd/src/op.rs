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

    /// Optional: the forward-mode tangent rule, the Jacobian-vector product
    /// `ẏ = Σ_k ∂y/∂x_k · ẋ_k` given the inputs' tangents `ẋ_k`
    /// (`cx.tangents`, `None` for a zero tangent). Used by
    /// [`jvp`](crate::jvp), forward-mode [`jacobian`](crate::jacobian) and
    /// [`hvp_forward_over_reverse`](crate::hvp_forward_over_reverse).
    ///
    /// Return `None` (the default) and the engine falls back to reverse
    /// mode: it records this op's [`backward`](Self::backward) rule on a
    /// scratch tape with a zero output gradient `u` and differentiates
    /// `⟨backward(u), ẋ⟩` with respect to `u` (the backward rule is linear in
    /// `u`, so that derivative is `J·ẋ`). That costs one recorded backward
    /// rule plus one backward pass through it, about three times the op's
    /// own backward, every time a tangent crosses the op; an op with neither
    /// rule cannot carry tangents ([`Error::BackwardNotSupported`]).
    ///
    /// ```
    /// use tapegrad_autograd::{jvp, BackwardCtx, InputGrads, Op, Result, TangentCtx};
    /// use tapegrad_tensor::{Element, Tensor};
    ///
    /// /// y = x³ with both rules: ẏ = 3x²·ẋ.
    /// struct Cube;
    /// impl<T: Element> Op<T> for Cube {
    ///     fn name(&self) -> &str { "cube" }
    ///     fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
    ///         Ok(inputs[0].map(|x| x * x * x)?)
    ///     }
    ///     fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
    ///         let g = cx.grad_output.mul(cx.inputs[0].square()?.mul_scalar(3.0)?)?;
    ///         Ok(InputGrads::from_elem(Some(g), 1))
    ///     }
    ///     fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
    ///         let (x, dx) = (cx.inputs[0], cx.tangents[0]?);
    ///         Some(x.square().and_then(|x2| x2.mul_scalar(3.0)?.mul(dx)).map_err(Into::into))
    ///     }
    /// }
    ///
    /// let x = Tensor::from_vec(vec![1.0, 2.0], &[2])?;
    /// let v = Tensor::from_vec(vec![1.0, 0.5], &[2])?;
    /// let (y, dy) = jvp(|tape, x| tape.apply(Cube, &[x[0]]), &[x], &[v])?;
    /// assert_eq!(y.to_vec(), vec![1.0, 8.0]);
    /// assert_eq!(dy.to_vec(), vec![3.0, 6.0]); // 3·1²·1, 3·2²·0.5
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    fn tangent(&self, cx: &TangentCtx<'_, T>) -> Option<Result<Tensor<T>>> {
        let _ = cx;
        None
    }
}

/// What a tangent rule ([`Op::tangent`]) can see: the recorded input and
/// output values and the inputs' tangents.
#[derive(Debug)]
pub struct TangentCtx<'a, T: Element> {
    /// The op's input values.
    pub inputs: &'a [&'a Tensor<T>],
    /// The op's output value.
    pub output: &'a Tensor<T>,
    /// Each input's tangent, of that input's shape; `None` where it is zero
    /// (a constant, or a value the seeded inputs do not reach). At least
    /// one is `Some`.
    pub tangents: &'a [Option<&'a Tensor<T>>],
}

impl<T: Element> TangentCtx<'_, T> {
    /// Input `k`'s tangent, or zeros of its shape.
    pub fn tangent_or_zeros(&self, k: usize) -> Tensor<T> {
        match self.tangents[k] {
            Some(t) => t.clone(),
            None => Tensor::zeros(self.inputs[k].dims()),
        }
    }

    /// The sum of the terms `f(k, ẋ_k)` over the inputs whose tangent is
    /// not zero, broadcast to the output's shape: the usual shape of a
    /// tangent rule, `ẏ = Σ_k (∂y/∂x_k)·ẋ_k`.
    ///
    /// # Errors
    /// Whatever `f` returns, or a term that does not broadcast to the
    /// output.
    pub fn sum_terms(
        &self,
        mut f: impl FnMut(usize, &Tensor<T>) -> Result<Tensor<T>>,
    ) -> Result<Tensor<T>> {
        let mut total: Option<Tensor<T>> = None;
        for (k, t) in self.tangents.iter().enumerate() {
            let Some(t) = t else { continue };
            let term = f(k, t)?;
            total = Some(match total {
                None => term,
                Some(acc) => acc.add(&term)?,
            });
        }
        let total = total.unwrap_or_else(|| Tensor::zeros(self.output.dims()));
        if crate::backward::same_dims(total.dims(), self.output.dims()) {
            Ok(total)
        } else {
            Ok(total.broadcast_to(self.output.dims())?.to_contiguous())
        }
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
