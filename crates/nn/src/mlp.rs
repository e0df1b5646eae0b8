//! [`Mlp`]: a multi-layer perceptron built from layer sizes.

use std::marker::PhantomData;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::Element;

use crate::activation::Activation;
use crate::dropout::Dropout;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::linear::Linear;
use crate::module::Module;
use crate::param::Param;
use crate::sequential::Sequential;

/// A multi-layer perceptron: `Linear, act, [Dropout,] Linear, act, ...,
/// Linear`. The last layer is linear (no activation), as in micrograd and as
/// losses from logits expect.
///
/// Its parameter names are those of the equivalent `torch.nn.Sequential`:
/// with sizes `[4, 8, 3]` and tanh they are `0.weight`, `0.bias`,
/// `2.weight`, `2.bias` (the activation takes index 1; a dropout after it
/// would take index 2 and push the next layer to 3).
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Activation, Mlp, Module};
/// use tapegrad_tensor::Tensor;
/// let mlp = Mlp::<f32>::builder(&[4, 8, 3]).activation(Activation::Tanh).seed(0).build()?;
/// let names: Vec<String> = mlp.parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// let tape = Tape::new();
/// let y = mlp.forward(&tape, tape.constant(Tensor::zeros(&[5, 4])))?;
/// assert_eq!(y.shape().as_slice(), &[5, 3]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug)]
pub struct Mlp<T: Element = f32> {
    net: Sequential<T>,
    sizes: Vec<usize>,
}

/// Options for an [`Mlp`]; see [`Mlp::builder`].
#[derive(Clone, Debug)]
pub struct MlpBuilder<T: Element = f32> {
    sizes: Vec<usize>,
    activation: Activation,
    weight_init: Init,
    bias_init: Init,
    bias: bool,
    dropout: f64,
    seed: u64,
    _elem: PhantomData<T>,
}

impl<T: Element> MlpBuilder<T> {
    /// The activation between layers (default ReLU).
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// The weight initialiser (default PyTorch's `U(±1/√fan_in)`).
    pub fn weight_init(mut self, init: Init) -> Self {
        self.weight_init = init;
        self
    }

    /// The bias initialiser (default PyTorch's `U(±1/√fan_in)`).
    pub fn bias_init(mut self, init: Init) -> Self {
        self.bias_init = init;
        self
    }

    /// Whether layers have biases (default true).
    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }

    /// Dropout probability after each hidden activation (default 0: none).
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// The seed for weights and dropout masks (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Builds the network. Layers draw their weights in order from one
    /// generator seeded with the seed.
    ///
    /// # Errors
    /// If fewer than two sizes are given or a size is zero.
    pub fn build(self) -> Result<Mlp<T>> {
        if self.sizes.len() < 2 || self.sizes.contains(&0) {
            return Err(Error::invalid(
                "Mlp::build",
                format!(
                    "need at least two non-zero layer sizes (input and output), got {:?}",
                    self.sizes
                ),
            ));
        }
        // Checked here too, so a bad value is refused even when there is
        // no hidden layer to put a dropout after.
        if self.dropout != 0.0 {
            Dropout::new(self.dropout, 0)?;
        }
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut net = Sequential::new();
        let n = self.sizes.len() - 1;
        for (k, w) in self.sizes.windows(2).enumerate() {
            net.push(Box::new(Linear::<T>::with_init(
                w[0],
                w[1],
                self.bias,
                self.weight_init,
                self.bias_init,
                &mut rng,
            )));
            if k + 1 < n {
                net.push(Box::new(self.activation));
                if self.dropout != 0.0 {
                    net.push(Box::new(Dropout::new(
                        self.dropout,
                        self.seed.wrapping_add(1 + k as u64),
                    )?));
                }
            }
        }
        Ok(Mlp {
            net,
            sizes: self.sizes,
        })
    }
}

impl<T: Element> Mlp<T> {
    /// Starts building an MLP with these layer widths (input first, output
    /// last).
    pub fn builder(sizes: &[usize]) -> MlpBuilder<T> {
        MlpBuilder {
            sizes: sizes.to_vec(),
            activation: Activation::Relu,
            weight_init: Init::TorchDefault,
            bias_init: Init::TorchDefault,
            bias: true,
            dropout: 0.0,
            seed: 0,
            _elem: PhantomData,
        }
    }

    /// The layer widths.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The underlying chain.
    pub fn as_sequential(&self) -> &Sequential<T> {
        &self.net
    }
}

impl<T: Element> Module<T> for Mlp<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        self.net.forward(tape, x)
    }
    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        self.net.parameters()
    }
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        self.net.parameters_mut()
    }
    fn train(&mut self, on: bool) {
        self.net.train(on)
    }
    fn is_training(&self) -> bool {
        self.net.is_training()
    }
    fn describe(&self) -> String {
        self.net.describe()
    }
}
