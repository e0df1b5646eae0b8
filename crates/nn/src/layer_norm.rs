//! [`LayerNorm`]: normalisation over the last axis with a learned scale and
//! shift.

use tapegrad_autograd::{Error as TapeError, Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::module::Module;
use crate::param::Param;

/// `torch.nn.LayerNorm(d)`: each row of the last axis becomes
/// `(x − mean)/√(var + eps)·weight + bias` (biased variance), with `weight`
/// initialised to 1 and `bias` to 0, both `[d]`. One fused op on the tape
/// (see `tapegrad_autograd::ops::norm`).
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{LayerNorm, Module};
/// use tapegrad_tensor::Tensor;
/// let ln = LayerNorm::<f64>::new(2);
/// let tape = Tape::new();
/// let y = ln.forward(&tape, tape.constant(Tensor::from_vec(vec![1.0, 3.0], &[1, 2])?))?;
/// assert!((y.value().to_vec()[1] - 1.0).abs() < 1e-5);
/// assert!(ln.forward(&tape, tape.constant(Tensor::zeros(&[1, 3]))).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LayerNorm<T: Element = f32> {
    weight: Param<T>,
    bias: Param<T>,
    eps: f64,
}

impl<T: Element> LayerNorm<T> {
    /// A layer over width `d` with PyTorch's defaults (`eps = 1e-5`).
    pub fn new(d: usize) -> Self {
        LayerNorm {
            weight: Param::new("weight", Tensor::ones(&[d])),
            bias: Param::new("bias", Tensor::zeros(&[d])),
            eps: 1e-5,
        }
    }

    /// The same with another `eps`.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// The normalised width.
    pub fn normalized_shape(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl<T: Element> Module<T> for LayerNorm<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let shape = x.shape();
        let d = self.normalized_shape();
        if shape.last() != Some(&d) {
            let path = self.weight.name().strip_suffix("weight").unwrap_or("");
            let path = path.strip_suffix('.').unwrap_or(path);
            return Err(TapeError::InvalidArgument {
                op: if path.is_empty() {
                    "LayerNorm".into()
                } else {
                    format!("layer {path} (LayerNorm)")
                },
                msg: format!(
                    "LayerNorm({d}) got inputs of shape {shape:?}: the last axis must be {d}"
                ),
            });
        }
        x.layer_norm(
            Some(self.weight.var(tape)?),
            Some(self.bias.var(tape)?),
            self.eps,
        )
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        vec![("weight".into(), &self.weight), ("bias".into(), &self.bias)]
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        vec![
            ("weight".into(), &mut self.weight),
            ("bias".into(), &mut self.bias),
        ]
    }

    fn describe(&self) -> String {
        format!(
            "LayerNorm(({},), eps={})",
            self.normalized_shape(),
            self.eps
        )
    }
}
