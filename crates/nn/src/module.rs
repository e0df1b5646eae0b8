//! The [`Module`] trait: a forward pass on the tape plus named parameters.

use indexmap::IndexMap;
use tapegrad_autograd::{Gradients, Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{CheckpointError, Error, Result};
use crate::grads::ParamGrads;
use crate::param::Param;

/// A layer or a whole model.
///
/// Parameters are listed in a stable order with the names PyTorch's
/// `state_dict` would use (`0.weight`, `0.bias`, `2.weight`, ...), so
/// checkpoints interoperate. Models are `Send + Sync`: one can be shared by
/// threads that each record on their own tape.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Linear, Module};
/// use tapegrad_tensor::Tensor;
/// let layer = Linear::<f32>::new(3, 2, 0);
/// let names: Vec<String> = layer.parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias"]);
/// let tape = Tape::new();
/// let y = layer.forward(&tape, tape.constant(Tensor::ones(&[4, 3])))?;
/// assert_eq!(y.shape().as_slice(), &[4, 2]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
pub trait Module<T: Element = f32>: Send + Sync {
    /// Applies the module to `x`, recording on `tape`.
    ///
    /// # Errors
    /// If `x` has the wrong shape (the error names the op and shapes).
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>>;

    /// The parameters with their full names, in a stable order.
    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        Vec::new()
    }

    /// Mutable access to the parameters, same names and order as
    /// [`parameters`](Self::parameters) (for optimisers and loading).
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        Vec::new()
    }

    /// This model's gradients from a backward pass, one per parameter, by
    /// the names of [`parameters`](Self::parameters) (the checkpoint's):
    /// the value to clip, accumulate, print or send, and then hand to
    /// [`Optimizer::step`](crate::Optimizer::step). A parameter the loss
    /// does not depend on gets no entry.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_nn::{Linear, Module};
    /// use tapegrad_tensor::Tensor;
    /// let layer = Linear::<f64>::new(3, 2, 0);
    /// let tape = Tape::new();
    /// let y = layer.forward(&tape, tape.constant(Tensor::ones(&[4, 3])))?;
    /// let grads = layer.grads(&tape.backward(y.sum_all()?)?);
    /// assert_eq!(grads.get("bias").unwrap().to_vec(), vec![4.0, 4.0]); // d(Σy)/db = batch size
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    fn grads(&self, grads: &Gradients<T>) -> ParamGrads<T> {
        ParamGrads::collect(&self.parameters(), grads)
    }

    /// Switches training mode (dropout active) on or off.
    fn train(&mut self, _on: bool) {}

    /// Whether the module is in training mode. Modules without a mode
    /// report `true`.
    fn is_training(&self) -> bool {
        true
    }

    /// A one-line description, like PyTorch's module repr.
    fn describe(&self) -> String;

    /// Switches to evaluation mode (`train(false)`).
    fn eval(&mut self) {
        self.train(false);
    }

    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|(_, p)| p.numel()).sum()
    }

    /// The module's buffers: state that is saved and loaded with the
    /// parameters but not trained (BatchNorm's `running_mean`,
    /// `running_var` and `num_batches_tracked`), by the names PyTorch's
    /// `state_dict` uses, in a stable order. Optimisers never see them.
    /// Modules without state have none (the default).
    fn buffers(&self) -> Vec<(String, Buffer<T>)> {
        Vec::new()
    }

    /// Replaces the buffer `name` (one of [`buffers`](Self::buffers)'
    /// names) with `value`, of the same shape.
    ///
    /// # Errors
    /// If the module has no buffer of that name or the shape differs.
    fn set_buffer(&mut self, name: &str, value: Tensor<T>) -> Result<()> {
        let _ = value;
        Err(Error::invalid(
            "Module::set_buffer",
            format!("{} has no buffer named {name:?}", self.describe()),
        ))
    }

    /// The parameter values and then the buffers, by name (cheap: tensors
    /// share storage). The keys are those of PyTorch's `state_dict`.
    fn state_dict(&self) -> IndexMap<String, Tensor<T>> {
        let mut state: IndexMap<String, Tensor<T>> = self
            .parameters()
            .into_iter()
            .map(|(n, p)| (n, p.value().clone()))
            .collect();
        state.extend(self.buffers().into_iter().map(|(n, b)| (n, b.value)));
        state
    }

    /// Replaces every parameter's and buffer's value from `state`.
    /// Everything is checked first (each name present, no extra names,
    /// shapes equal), so on error the model is unchanged.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] (with an empty path) naming the first missing,
    /// unexpected or mis-shaped tensor.
    fn load_state_dict(&mut self, state: &IndexMap<String, Tensor<T>>) -> Result<()> {
        check_state_dict(&expected_entries(self), state).map_err(|kind| Error::Checkpoint {
            path: "<state dict>".into(),
            kind,
        })?;
        assign_state(self, state)
    }
}

/// A module's non-trained state tensor (see [`Module::buffers`]).
#[derive(Debug, Clone)]
pub struct Buffer<T: Element = f32> {
    /// The current value.
    pub value: Tensor<T>,
    /// Whether PyTorch stores it as an integer (`num_batches_tracked` is
    /// `int64`): checkpoints then write it as `I64`.
    pub integer: bool,
}

/// Every name a model's state holds (parameters, then buffers) with its
/// shape.
pub(crate) fn expected_entries<T: Element, M: Module<T> + ?Sized>(
    m: &M,
) -> Vec<(String, Vec<usize>)> {
    let mut v: Vec<(String, Vec<usize>)> = m
        .parameters()
        .into_iter()
        .map(|(n, p)| (n, p.dims().to_vec()))
        .collect();
    v.extend(
        m.buffers()
            .into_iter()
            .map(|(n, b)| (n, b.value.dims().to_vec())),
    );
    v
}

/// Assigns a state already checked against [`expected_entries`].
pub(crate) fn assign_state<T: Element, M: Module<T> + ?Sized>(
    m: &mut M,
    state: &IndexMap<String, Tensor<T>>,
) -> Result<()> {
    for (n, p) in m.parameters_mut() {
        p.set_value(state[&n].clone());
    }
    let names: Vec<String> = m.buffers().into_iter().map(|(n, _)| n).collect();
    for n in names {
        m.set_buffer(&n, state[&n].clone())?;
    }
    Ok(())
}

/// Checks that `state` has exactly the expected names and shapes.
pub(crate) fn check_state_dict<T: Element>(
    expected: &[(String, Vec<usize>)],
    state: &IndexMap<String, Tensor<T>>,
) -> std::result::Result<(), CheckpointError> {
    for (n, dims) in expected {
        let t = state
            .get(n)
            .ok_or_else(|| CheckpointError::Missing { name: n.clone() })?;
        if t.dims() != dims.as_slice() {
            return Err(CheckpointError::Shape {
                name: n.clone(),
                expected: dims.clone(),
                got: t.dims().to_vec(),
            });
        }
    }
    for n in state.keys() {
        if !expected.iter().any(|(m, _)| m == n) {
            return Err(CheckpointError::Unexpected { name: n.clone() });
        }
    }
    Ok(())
}

impl<T: Element, M: Module<T> + ?Sized> Module<T> for Box<M> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        (**self).forward(tape, x)
    }
    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        (**self).parameters()
    }
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        (**self).parameters_mut()
    }
    fn train(&mut self, on: bool) {
        (**self).train(on)
    }
    fn is_training(&self) -> bool {
        (**self).is_training()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn buffers(&self) -> Vec<(String, Buffer<T>)> {
        (**self).buffers()
    }
    fn set_buffer(&mut self, name: &str, value: Tensor<T>) -> Result<()> {
        (**self).set_buffer(name, value)
    }
}
