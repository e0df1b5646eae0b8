//! [`Var`]: a handle to a value recorded on a [`Tape`], with one method per
//! differentiable op. Each method is a thin wrapper over [`Tape::apply`].

use smallvec::SmallVec;
use tapegrad_tensor::{Element, Shape, Tensor};

use crate::error::{Error, Result};
use crate::ops::{activation, arith, index, math, matmul, reduce, shape, softmax};
use crate::tape::Tape;

/// A value on a tape: a tape position plus a reference to the tape. It is
/// `Copy` (two words), so models pass values around freely.
///
/// Every op returns a [`Result`]: shape errors carry the tape position and the
/// tensor crate's message, and anomaly mode can stop at the first NaN.
#[derive(Clone, Copy)]
pub struct Var<'t, T: Element = f32> {
    tape: &'t Tape<T>,
    id: usize,
}

/// A recorded value named without borrowing its tape (see
/// [`Var::var_id`]): the tape's [`id`](Tape::id) and the tape position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VarId {
    pub(crate) tape_id: u64,
    pub(crate) id: usize,
}

impl VarId {
    /// The tape position.
    pub fn position(&self) -> usize {
        self.id
    }
}

impl<T: Element> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var(%{:04}, shape {:?})", self.id, self.shape())
    }
}

impl<'t, T: Element> Var<'t, T> {
    pub(crate) fn new(tape: &'t Tape<T>, id: usize) -> Self {
        Var { tape, id }
    }

    /// The tape position.
    pub fn id(&self) -> usize {
        self.id
    }

    /// This value's name detached from the tape's borrow, for the calls
    /// that take the tape mutably ([`Tape::backward_and_clear`]), where no
    /// `Var` may be held.
    pub fn var_id(&self) -> VarId {
        VarId {
            tape_id: self.tape.id(),
            id: self.id,
        }
    }

    /// The tape this value lives on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// The value (a cheap shared handle to the recorded tensor).
    pub fn value(&self) -> Tensor<T> {
        self.tape.value_of(self.id)
    }

    /// The shape of the value: the same owned [`Shape`] as
    /// [`Tensor::shape`] returns, and compared, printed and indexed the same
    /// way.
    ///
    /// There is no `Var::dims` (the borrowed [`Tensor::dims`]): the value
    /// lives inside the tape, which cannot lend out a borrow of it past this
    /// call. A `Shape` of up to four dimensions is copied inline, without
    /// allocating.
    ///
    /// # Examples
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// let t = Tensor::zeros(&[2, 3]);
    /// let x = tape.leaf(t.clone());
    /// assert_eq!(x.shape(), t.shape());
    /// assert_eq!(x.shape(), [2, 3]);
    /// assert_eq!(x.shape()[1], 3);
    /// ```
    pub fn shape(&self) -> Shape {
        self.tape.shape_of(self.id)
    }

    /// The value of a one-element result.
    ///
    /// # Errors
    /// If the value has more than one element.
    pub fn item(&self) -> Result<T> {
        Ok(self.value().item()?)
    }

    /// Whether gradients flow to this value.
    pub fn requires_grad(&self) -> bool {
        self.tape.requires_grad_of(self.id)
    }

    /// Names the value in printed tapes and graphs.
    pub fn set_label(&self, label: &str) {
        self.tape.set_label(self.id, label);
    }

    /// The same value as a new constant: gradients stop here.
    pub fn detach(&self) -> Var<'t, T> {
        self.tape.constant(self.value())
    }

    fn un<O: crate::Op<T>>(self, op: O) -> Result<Var<'t, T>> {
        self.tape.apply(op, &[self])
    }

    fn bin<O: crate::Op<T>>(self, op: O, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(op, &[self, other])
    }

    /// Records a constant tensor on this value's tape (for mixing data into
    /// a computation).
    pub fn constant(&self, t: Tensor<T>) -> Var<'t, T> {
        self.tape.constant(t)
    }

    // ----- arithmetic -----------------------------------------------------

    /// `self + other`, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast or `other` is from another tape.
    pub fn add(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.bin(arith::Add, other)
    }
    /// `self - other`, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn sub(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.bin(arith::Sub, other)
    }
    /// `self · other` elementwise, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn mul(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.bin(arith::Mul, other)
    }
    /// `self / other` elementwise, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn div(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.bin(arith::Div, other)
    }
    /// `self ^ other` elementwise, broadcasting.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn pow(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.bin(arith::Pow, other)
    }
    /// `-self`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn neg(self) -> Result<Var<'t, T>> {
        self.un(arith::Neg)
    }
    /// `self + c`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn add_scalar(self, c: f64) -> Result<Var<'t, T>> {
        self.un(arith::AddScalar(c))
    }
    /// `self - c`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn sub_scalar(self, c: f64) -> Result<Var<'t, T>> {
        self.un(arith::AddScalar(-c))
    }
    /// `self · c`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn mul_scalar(self, c: f64) -> Result<Var<'t, T>> {
        self.un(arith::MulScalar(c))
    }
    /// `self / c`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn div_scalar(self, c: f64) -> Result<Var<'t, T>> {
        self.un(arith::MulScalar(1.0 / c))
    }
    /// `c - self`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn rsub_scalar(self, c: f64) -> Result<Var<'t, T>> {
        self.neg()?.add_scalar(c)
    }

    // ----- elementwise functions -------------------------------------------

    /// `e^self`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn exp(self) -> Result<Var<'t, T>> {
        self.un(math::Exp)
    }
    /// Natural logarithm.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn ln(self) -> Result<Var<'t, T>> {
        self.un(math::Ln)
    }
    /// Square root.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn sqrt(self) -> Result<Var<'t, T>> {
        self.un(math::Sqrt)
    }
    /// `self^e` for a constant exponent.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn powf(self, e: f64) -> Result<Var<'t, T>> {
        self.un(math::Powf(e))
    }
    /// `self²`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn square(self) -> Result<Var<'t, T>> {
        self.powf(2.0)
    }
    /// `1 / self`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn recip(self) -> Result<Var<'t, T>> {
        self.powf(-1.0)
    }
    /// Sine.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn sin(self) -> Result<Var<'t, T>> {
        self.un(math::Sin)
    }
    /// Cosine.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn cos(self) -> Result<Var<'t, T>> {
        self.un(math::Cos)
    }
    /// Hyperbolic tangent.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn tanh(self) -> Result<Var<'t, T>> {
        self.un(activation::Tanh)
    }
    /// Logistic sigmoid.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn sigmoid(self) -> Result<Var<'t, T>> {
        self.un(activation::Sigmoid)
    }
    /// `max(self, 0)`; its derivative at 0 is taken as 0.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn relu(self) -> Result<Var<'t, T>> {
        self.un(activation::Relu)
    }
    /// `|self|`; its derivative at 0 is taken as 0.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn abs(self) -> Result<Var<'t, T>> {
        self.un(activation::Abs)
    }
    /// Limits to `[lo, hi]`; the gradient passes where `lo ≤ x ≤ hi`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn clamp(self, lo: f64, hi: f64) -> Result<Var<'t, T>> {
        self.un(activation::Clamp { lo, hi })
    }
    /// `ln(1 + e^self)`.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn softplus(self) -> Result<Var<'t, T>> {
        self.un(activation::Softplus)
    }
    /// Elementwise maximum; on ties the gradient is split evenly.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn maximum(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.bin(activation::Maximum, other)
    }
    /// Elementwise minimum; on ties the gradient is split evenly.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn minimum(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.bin(activation::Minimum, other)
    }

    // ----- reductions -------------------------------------------------------

    /// Sum over `axes`.
    ///
    /// # Errors
    /// If an axis is out of range or repeated.
    pub fn sum(self, axes: &[usize], keepdim: bool) -> Result<Var<'t, T>> {
        self.un(reduce::Sum {
            axes: axes.to_vec(),
            keepdim,
        })
    }
    /// Sum of all elements (a 0-d value).
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn sum_all(self) -> Result<Var<'t, T>> {
        let axes: Vec<usize> = (0..self.shape().len()).collect();
        self.sum(&axes, false)
    }
    /// Mean over `axes`.
    ///
    /// # Errors
    /// If an axis is out of range or repeated.
    pub fn mean(self, axes: &[usize], keepdim: bool) -> Result<Var<'t, T>> {
        let n = self.reduced_count("mean", axes)?;
        self.sum(axes, keepdim)?.mul_scalar(1.0 / n as f64)
    }

    /// How many elements a reduction over `axes` combines into each output.
    /// An error names the tape position the op would have taken, as the
    /// errors of recorded ops do.
    fn reduced_count(self, op: &'static str, axes: &[usize]) -> Result<usize> {
        let shape = self.shape();
        axes.iter().try_fold(1usize, |n, &a| match shape.get(a) {
            Some(&d) => Ok(n * d),
            None => Err(crate::backward::op_error(
                self.tape.len(),
                op,
                Error::from(tapegrad_tensor::Error::AxisOutOfRange {
                    op,
                    axis: a,
                    shape: shape.to_vec(),
                }),
            )),
        })
    }
    /// Mean of all elements (a 0-d value).
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn mean_all(self) -> Result<Var<'t, T>> {
        let n = self.shape().iter().product::<usize>();
        self.sum_all()?.mul_scalar(1.0 / n as f64)
    }
    /// Maximum over `axes`; the gradient is split evenly among ties.
    ///
    /// # Errors
    /// If an axis is out of range or repeated.
    pub fn max(self, axes: &[usize], keepdim: bool) -> Result<Var<'t, T>> {
        self.un(reduce::Extreme {
            axes: axes.to_vec(),
            keepdim,
            max: true,
        })
    }
    /// Minimum over `axes`; the gradient is split evenly among ties.
    ///
    /// # Errors
    /// If an axis is out of range or repeated.
    pub fn min(self, axes: &[usize], keepdim: bool) -> Result<Var<'t, T>> {
        self.un(reduce::Extreme {
            axes: axes.to_vec(),
            keepdim,
            max: false,
        })
    }
    /// Variance over `axes` with `correction` (0: population, 1: unbiased).
    ///
    /// # Errors
    /// If an axis is out of range or repeated.
    pub fn var(self, axes: &[usize], keepdim: bool, correction: usize) -> Result<Var<'t, T>> {
        let n = self.reduced_count("var", axes)?;
        let d = self.sub(self.mean(axes, true)?)?;
        d.square()?
            .sum(axes, keepdim)?
            .mul_scalar(1.0 / n.saturating_sub(correction) as f64)
    }
    /// Sums broadcast axes away so the result has `shape` (the adjoint of
    /// broadcasting). Returns `self` unchanged when the shapes match.
    ///
    /// # Errors
    /// If `shape` does not broadcast to `self`'s shape.
    pub fn sum_to(self, shape: &[usize]) -> Result<Var<'t, T>> {
        if self.tape.has_shape(self.id, shape) {
            return Ok(self);
        }
        self.un(reduce::SumTo {
            shape: shape.to_vec(),
        })
    }
    /// [`sum_to`](Self::sum_to) the shape of `like`, without copying the
    /// shape when it already matches (the common case in backward rules).
    pub(crate) fn sum_to_like(self, like: Var<'t, T>) -> Result<Var<'t, T>> {
        if self.tape.same_shape(self.id, like.id) {
            return Ok(self);
        }
        self.sum_to(&like.shape())
    }
    /// Broadcasts to `shape` (NumPy rules).
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    pub fn broadcast_to(self, shape: &[usize]) -> Result<Var<'t, T>> {
        if self.tape.has_shape(self.id, shape) {
            return Ok(self);
        }
        self.un(reduce::BroadcastTo {
            shape: shape.to_vec(),
        })
    }
    /// `log Σ exp` over `axes`, stable.
    ///
    /// # Errors
    /// If an axis is out of range or repeated.
    pub fn logsumexp(self, axes: &[usize], keepdim: bool) -> Result<Var<'t, T>> {
        self.un(softmax::LogSumExp {
            axes: axes.to_vec(),
            keepdim,
        })
    }
    /// Softmax along `axis`.
    ///
    /// # Errors
    /// If the axis is out of range.
    pub fn softmax(self, axis: usize) -> Result<Var<'t, T>> {
        self.un(softmax::Softmax { axis })
    }
    /// Log-softmax along `axis`.
    ///
    /// # Errors
    /// If the axis is out of range.
    pub fn log_softmax(self, axis: usize) -> Result<Var<'t, T>> {
        self.un(softmax::LogSoftmax { axis })
    }

    // ----- matmul -------------------------------------------------------------

    /// Matrix product with `torch.matmul` semantics (vectors, matrices,
    /// batches with broadcast batch axes).
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let w = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let x = tape.constant(Tensor::from_vec(vec![1.0, 1.0], &[2])?);
    /// let y = w.matmul(x)?.sum_all()?;          // y = Σ_i Σ_j w_ij x_j
    /// let g = tape.backward(y)?;
    /// assert_eq!(g.get(w).unwrap().to_vec(), vec![1.0, 1.0, 1.0, 1.0]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If an operand is 0-d, the inner dimensions differ, or the batch axes
    /// do not broadcast.
    pub fn matmul(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        let (ra, rb) = (self.shape().len(), other.shape().len());
        if ra == 0 || rb == 0 {
            // Let the tensor op produce its error message.
            return self.bin(matmul::Matmul, other);
        }
        if ra > 2 && rb == 2 {
            // `[..., m, k]·[k, n]` (a Linear layer on a batch of
            // sequences): one `[(...·m), k]·[k, n]` product instead of one
            // per batch element, and a single product for the weight's
            // gradient instead of per-batch products summed afterwards.
            let sa = self.shape();
            let (k, n) = (sa[ra - 1], other.shape()[1]);
            if other.shape()[0] == k {
                let rows: usize = sa[..ra - 1].iter().product();
                let mut out = sa[..ra - 1].to_vec();
                out.push(n);
                return self.reshape(&[rows, k])?.matmul(other)?.reshape(&out);
            }
        }
        let a = if ra == 1 { self.unsqueeze(0)? } else { self };
        let b = if rb == 1 { other.unsqueeze(1)? } else { other };
        let c = a.bin(matmul::Matmul, b)?;
        let r = c.shape().len();
        let c = if rb == 1 { c.squeeze(r - 1)? } else { c };
        if ra == 1 {
            let r = c.shape().len();
            c.squeeze(r - if rb == 1 { 1 } else { 2 })
        } else {
            Ok(c)
        }
    }

    // ----- views ---------------------------------------------------------------

    /// Same elements, new shape.
    ///
    /// # Errors
    /// If the element counts differ.
    pub fn reshape(self, shape: &[usize]) -> Result<Var<'t, T>> {
        if self.tape.has_shape(self.id, shape) {
            return Ok(self);
        }
        self.un(shape::Reshape {
            shape: shape.to_vec(),
        })
    }
    /// Flattens to one axis.
    ///
    /// # Errors
    /// Only in anomaly mode.
    pub fn flatten(self) -> Result<Var<'t, T>> {
        let n = self.shape().iter().product();
        self.reshape(&[n])
    }
    /// Reorders axes.
    ///
    /// # Errors
    /// If `perm` is not a permutation of the axes.
    pub fn permute(self, perm: &[usize]) -> Result<Var<'t, T>> {
        self.un(shape::Permute {
            perm: perm.to_vec(),
        })
    }
    /// Swaps two axes.
    ///
    /// # Errors
    /// If an axis is out of range.
    pub fn transpose(self, a: usize, b: usize) -> Result<Var<'t, T>> {
        let n = self.shape().len();
        if a >= n || b >= n {
            return Err(Error::from(tapegrad_tensor::Error::AxisOutOfRange {
                op: "transpose",
                axis: a.max(b),
                shape: self.shape().to_vec(),
            }));
        }
        let mut perm: SmallVec<[usize; 6]> = (0..n).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }
    /// Swaps the last two axes.
    ///
    /// # Errors
    /// If there are fewer than two axes.
    pub fn t(self) -> Result<Var<'t, T>> {
        let n = self.shape().len();
        if n < 2 {
            return Err(Error::from(tapegrad_tensor::Error::InvalidArgument {
                op: "t",
                msg: format!(
                    "needs at least 2 axes, shape is {:?}",
                    self.shape().as_slice()
                ),
            }));
        }
        self.transpose(n - 2, n - 1)
    }
    /// Positions `start, start+step, …` below `end` along `axis`.
    ///
    /// # Errors
    /// If the axis or range is out of bounds or `step` is 0.
    pub fn slice(self, axis: usize, start: usize, end: usize, step: usize) -> Result<Var<'t, T>> {
        self.un(shape::Slice {
            axis,
            start,
            end,
            step,
        })
    }
    /// `len` positions from `start` along `axis`.
    ///
    /// # Errors
    /// If the axis or range is out of bounds.
    pub fn narrow(self, axis: usize, start: usize, len: usize) -> Result<Var<'t, T>> {
        self.slice(axis, start, start.saturating_add(len), 1)
    }
    /// Position `index` along `axis`, removing the axis.
    ///
    /// # Errors
    /// If the axis or index is out of range.
    pub fn select(self, axis: usize, index: usize) -> Result<Var<'t, T>> {
        self.narrow(axis, index, 1)?.squeeze(axis)
    }
    /// Inserts a length-1 axis at `axis`.
    ///
    /// # Errors
    /// If `axis > ndim`.
    pub fn unsqueeze(self, axis: usize) -> Result<Var<'t, T>> {
        let s = self.value().unsqueeze(axis)?.shape();
        self.reshape(&s)
    }
    /// Removes a length-1 axis.
    ///
    /// # Errors
    /// If the axis is out of range or not of length 1.
    pub fn squeeze(self, axis: usize) -> Result<Var<'t, T>> {
        let s = self.value().squeeze(axis)?.shape();
        self.reshape(&s)
    }
    /// Joins values along an existing axis.
    ///
    /// # Errors
    /// If the list is empty or the shapes disagree off the axis.
    pub fn concat(vars: &[Var<'t, T>], axis: usize) -> Result<Var<'t, T>> {
        let first = vars.first().ok_or_else(|| Error::InvalidArgument {
            op: "concat".into(),
            msg: "needs at least one value".into(),
        })?;
        first.tape.apply(shape::Concat { axis }, vars)
    }
    /// Stacks equally shaped values along a new axis.
    ///
    /// # Errors
    /// If the list is empty or the shapes differ.
    pub fn stack(vars: &[Var<'t, T>], axis: usize) -> Result<Var<'t, T>> {
        if vars.is_empty() {
            return Err(Error::InvalidArgument {
                op: "stack".into(),
                msg: "needs at least one value".into(),
            });
        }
        let parts = vars
            .iter()
            .map(|v| v.unsqueeze(axis))
            .collect::<Result<Vec<_>>>()?;
        Var::concat(&parts, axis)
    }

    // ----- indexing -------------------------------------------------------------

    /// Slices at `indices` along `axis`.
    ///
    /// # Errors
    /// If the axis is out of range or an index out of bounds.
    pub fn index_select(self, axis: usize, indices: &[usize]) -> Result<Var<'t, T>> {
        self.un(index::IndexSelect {
            axis,
            indices: indices.to_vec(),
        })
    }
    /// For a `[n, c]` value, element `indices[r]` of each row (the score of
    /// each sample's label), giving `[n]`.
    ///
    /// # Errors
    /// If the value is not 2-d, the counts differ or an index is out of range.
    pub fn gather_rows(self, indices: &[usize]) -> Result<Var<'t, T>> {
        self.un(index::GatherRows {
            indices: indices.to_vec(),
        })
    }
    /// `self` where `cond` is non-zero, `other` elsewhere (all broadcast).
    ///
    /// # Errors
    /// If the three shapes do not broadcast together.
    pub fn where_cond(self, cond: &Tensor<T>, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.bin(index::Where { cond: cond.clone() }, other)
    }
}
