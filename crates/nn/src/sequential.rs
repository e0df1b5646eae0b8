//! [`Sequential`]: modules applied one after another, named by position.

use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::module::{Buffer, Module};
use crate::param::Param;

/// A chain of modules. Parameter names are `"{index}.{name}"`, exactly as in
/// `torch.nn.Sequential`, so index 1 of `Linear, ReLU, Linear` is skipped
/// and the second layer's weight is `2.weight`.
///
/// ```
/// use tapegrad_nn::{Activation, Linear, Module, Sequential};
/// let model = Sequential::<f32>::new()
///     .add(Linear::new(4, 8, 0))
///     .add(Activation::Tanh)
///     .add(Linear::new(8, 3, 1));
/// let names: Vec<String> = model.parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// ```
pub struct Sequential<T: Element = f32> {
    layers: Vec<Box<dyn Module<T>>>,
    training: bool,
}

impl<T: Element> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> std::fmt::Debug for Sequential<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl<T: Element> Sequential<T> {
    /// An empty chain (the identity), in training mode.
    pub fn new() -> Self {
        Sequential {
            layers: Vec::new(),
            training: true,
        }
    }

    /// Appends a module (builder style).
    pub fn add(mut self, m: impl Module<T> + 'static) -> Self {
        self.push(Box::new(m));
        self
    }

    /// Appends a boxed module. Its parameters are renamed to their full
    /// paths (shown in printed tapes), and it takes the chain's mode.
    pub fn push(&mut self, mut m: Box<dyn Module<T>>) {
        let i = self.layers.len();
        for (n, p) in m.parameters_mut() {
            p.set_name(format!("{i}.{n}"));
        }
        m.train(self.training);
        self.layers.push(m);
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The module at `index`.
    pub fn get(&self, index: usize) -> Option<&dyn Module<T>> {
        self.layers.get(index).map(|b| &**b)
    }
}

impl<T: Element> Sequential<T> {
    /// The layers, in order (for [`checkpointed`](Self::checkpointed)).
    pub(crate) fn into_layers(self) -> Vec<Box<dyn Module<T>>> {
        self.layers
    }
}

impl<T: Element> Module<T> for Sequential<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        self.layers.iter().try_fold(x, |x, m| m.forward(tape, x))
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                m.parameters()
                    .into_iter()
                    .map(move |(n, p)| (format!("{i}.{n}"), p))
            })
            .collect()
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        self.layers
            .iter_mut()
            .enumerate()
            .flat_map(|(i, m)| {
                m.parameters_mut()
                    .into_iter()
                    .map(move |(n, p)| (format!("{i}.{n}"), p))
            })
            .collect()
    }

    fn buffers(&self) -> Vec<(String, Buffer<T>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                m.buffers()
                    .into_iter()
                    .map(move |(n, b)| (format!("{i}.{n}"), b))
            })
            .collect()
    }

    fn set_buffer(&mut self, name: &str, value: Tensor<T>) -> Result<()> {
        let layer = name
            .split_once('.')
            .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest)));
        match layer {
            Some((i, rest)) if i < self.layers.len() => self.layers[i].set_buffer(rest, value),
            _ => Err(Error::invalid(
                "Sequential::set_buffer",
                format!("no layer holds a buffer named {name:?}"),
            )),
        }
    }

    fn train(&mut self, on: bool) {
        self.training = on;
        for m in &mut self.layers {
            m.train(on);
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self) -> String {
        let mut s = String::from("Sequential(\n");
        for (i, m) in self.layers.iter().enumerate() {
            let inner = m.describe().replace('\n', "\n  ");
            s.push_str(&format!("  ({i}): {inner}\n"));
        }
        s.push(')');
        s
    }
}
