//! [`Linear`]: `y = x·Wᵀ + b`, with `W` stored `[out, in]` like PyTorch.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::init::Init;
use crate::module::Module;
use crate::param::Param;

/// A fully connected layer: `y = x·Wᵀ + b` for `x` of shape `[..., in]`.
///
/// The weight is stored `[out, in]` and the bias `[out]`, the layout of
/// `torch.nn.Linear`, so checkpoints load either way without transposing.
#[derive(Debug, Clone)]
pub struct Linear<T: Element = f32> {
    weight: Param<T>,
    bias: Option<Param<T>>,
}

impl<T: Element> Linear<T> {
    /// A layer with PyTorch's default initialisation (weight and bias
    /// `U(±1/√in)`), drawn from a generator seeded with `seed`.
    pub fn new(in_features: usize, out_features: usize, seed: u64) -> Self {
        Self::with_rng(in_features, out_features, &mut StdRng::seed_from_u64(seed))
    }

    /// A layer with PyTorch's default initialisation drawn from `rng`.
    pub fn with_rng(in_features: usize, out_features: usize, rng: &mut impl Rng) -> Self {
        Self::with_init(
            in_features,
            out_features,
            true,
            Init::TorchDefault,
            Init::TorchDefault,
            rng,
        )
    }

    /// A layer with chosen initialisers (the weight is drawn first, then the
    /// bias) and an optional bias.
    pub fn with_init(
        in_features: usize,
        out_features: usize,
        bias: bool,
        weight_init: Init,
        bias_init: Init,
        rng: &mut impl Rng,
    ) -> Self {
        let w = weight_init.tensor(&[out_features, in_features], in_features, out_features, rng);
        let b = bias.then(|| bias_init.tensor(&[out_features], in_features, out_features, rng));
        Linear {
            weight: Param::new("weight", w),
            bias: b.map(|b| Param::new("bias", b)),
        }
    }

    /// A layer with given values: `weight` `[out, in]`, `bias` `[out]`.
    ///
    /// # Errors
    /// If the weight is not 2-d or the bias length differs from `out`.
    pub fn from_tensors(weight: Tensor<T>, bias: Option<Tensor<T>>) -> Result<Self> {
        if weight.ndim() != 2 {
            return Err(Error::invalid(
                "Linear::from_tensors",
                format!("weight must be [out, in], got {:?}", weight.dims()),
            ));
        }
        if let Some(b) = &bias {
            if b.dims() != [weight.dims()[0]] {
                return Err(Error::invalid(
                    "Linear::from_tensors",
                    format!(
                        "bias of shape {:?} does not match weight {:?}",
                        b.dims(),
                        weight.dims()
                    ),
                ));
            }
        }
        Ok(Linear {
            weight: Param::new("weight", weight),
            bias: bias.map(|b| Param::new("bias", b)),
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The weight, `[out, in]`.
    pub fn weight(&self) -> &Param<T> {
        &self.weight
    }

    /// The bias, `[out]`, if the layer has one.
    pub fn bias(&self) -> Option<&Param<T>> {
        self.bias.as_ref()
    }

    /// The error for an input whose last dimension is not `in_features`,
    /// naming the layer by its place in the model (`0` for `0.weight`).
    fn wrong_features(&self, shape: &[usize]) -> tapegrad_autograd::Error {
        let path = self.weight.name().strip_suffix("weight").unwrap_or("");
        let path = path.strip_suffix('.').unwrap_or(path);
        tapegrad_autograd::Error::InvalidArgument {
            op: if path.is_empty() {
                "Linear".into()
            } else {
                format!("layer {path} (Linear)")
            },
            msg: format!(
                "Linear({} → {}) got inputs of shape {shape:?}: expected {} features",
                self.in_features(),
                self.out_features(),
                self.in_features()
            ),
        }
    }
}

impl<T: Element> Module<T> for Linear<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let shape = x.shape();
        if shape.last() != Some(&self.in_features()) {
            return Err(self.wrong_features(&shape));
        }
        let w = self.weight.var(tape)?;
        let y = x.matmul(w.t()?)?;
        let y = match &self.bias {
            Some(b) => y.add(b.var(tape)?)?,
            None => y,
        };
        // Per-sample gradients' fast path needs the input and output.
        let bias = self.bias.as_ref().map(|b| b.id().key());
        crate::per_sample::note_linear(tape.id(), self.weight.id().key(), bias, x.id(), y.id());
        Ok(y)
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        let mut v = vec![("weight".to_string(), &self.weight)];
        if let Some(b) = &self.bias {
            v.push(("bias".to_string(), b));
        }
        v
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        let mut v = vec![("weight".to_string(), &mut self.weight)];
        if let Some(b) = &mut self.bias {
            v.push(("bias".to_string(), b));
        }
        v
    }

    fn describe(&self) -> String {
        format!(
            "Linear(in_features={}, out_features={}, bias={})",
            self.in_features(),
            self.out_features(),
            self.bias.is_some()
        )
    }
}
