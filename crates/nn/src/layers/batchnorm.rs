//! [`BatchNorm1d`] and [`BatchNorm2d`]: batch normalisation with running
//! statistics, PyTorch's names, defaults and momentum rule.
//!
//! Training mode, per channel c over the batch (and length or pixels):
//! `μ = mean(x)`, `σ² = mean((x − μ)²)` (biased), and
//! `y = (x − μ)/√(σ² + ε) · γ + β`. The backward pass runs through μ and σ²
//! as recorded ops (the gradient of every output reaches every input of its
//! channel), so it is the exact gradient, to any order. Afterwards the
//! running statistics move towards the batch's:
//! `running ← (1 − momentum)·running + momentum·batch`, with the unbiased
//! variance `σ²·n/(n − 1)` for `running_var`, and `num_batches_tracked`
//! counts the steps. Evaluation mode uses the running statistics as
//! constants.

use std::sync::Mutex;

use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::layers::layer_error;
use crate::module::{Buffer, Module};
use crate::param::Param;

/// The running statistics, behind a mutex: the forward pass takes `&self`
/// (models are shared between threads) but updates them in training mode.
#[derive(Debug, Clone)]
struct Running<T: Element> {
    mean: Tensor<T>,
    var: Tensor<T>,
    batches: u64,
}

/// Batch normalisation over `D` spatial axes: use the aliases
/// [`BatchNorm1d`] (input `[N, C]` or `[N, C, L]`) and [`BatchNorm2d`]
/// (input `[N, C, H, W]`).
///
/// Parameters `weight` (γ, ones) and `bias` (β, zeros), buffers
/// `running_mean` (zeros), `running_var` (ones) and `num_batches_tracked`
/// (0, saved as `int64`), as in `torch.nn.BatchNorm2d`; `eps = 1e-5`,
/// `momentum = 0.1`. See the [module docs](self) for the maths.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{BatchNorm2d, Module};
/// use tapegrad_tensor::Tensor;
/// let mut bn = BatchNorm2d::<f32>::new(2);
/// let tape = Tape::new();
/// let x = Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[2, 2, 1, 1])?;
/// let y = bn.forward(&tape, tape.constant(x))?;
/// // Channel 0 holds 1 and 10, channel 1 holds 3 and 30: each becomes ∓1.
/// let y = y.value().to_vec();
/// assert!((y[0] + 1.0).abs() < 1e-3 && (y[2] - 1.0).abs() < 1e-3);
/// // The running mean moved a tenth of the way to the batch mean.
/// let names: Vec<String> = bn.buffers().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["running_mean", "running_var", "num_batches_tracked"]);
/// assert_eq!(bn.buffers()[0].1.value.to_vec(), vec![0.55, 1.65]);
/// bn.eval(); // from now on the running statistics are used
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug)]
pub struct BatchNorm<T: Element, const D: usize> {
    weight: Param<T>,
    bias: Param<T>,
    running: Mutex<Running<T>>,
    eps: f64,
    momentum: f64,
    training: bool,
}

/// Batch normalisation of `[N, C]` or `[N, C, L]` (`torch.nn.BatchNorm1d`).
pub type BatchNorm1d<T = f32> = BatchNorm<T, 1>;
/// Batch normalisation of `[N, C, H, W]` (`torch.nn.BatchNorm2d`).
pub type BatchNorm2d<T = f32> = BatchNorm<T, 2>;

impl<T: Element, const D: usize> BatchNorm<T, D> {
    /// A layer for `num_features` channels with PyTorch's defaults, in
    /// training mode.
    pub fn new(num_features: usize) -> Self {
        BatchNorm {
            weight: Param::new("weight", Tensor::ones(&[num_features])),
            bias: Param::new("bias", Tensor::zeros(&[num_features])),
            running: Mutex::new(Running {
                mean: Tensor::zeros(&[num_features]),
                var: Tensor::ones(&[num_features]),
                batches: 0,
            }),
            eps: 1e-5,
            momentum: 0.1,
            training: true,
        }
    }

    /// Sets ε, added to the variance.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the momentum of the running statistics.
    ///
    /// # Errors
    /// If `momentum` is not in `[0, 1]`.
    pub fn momentum(mut self, momentum: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::invalid(
                "BatchNorm::momentum",
                format!("momentum {momentum} is not in [0, 1]"),
            ));
        }
        self.momentum = momentum;
        Ok(self)
    }

    /// The number of channels.
    pub fn num_features(&self) -> usize {
        self.weight.dims()[0]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running<T>> {
        // A panic elsewhere while holding the lock leaves consistent
        // tensors (each is replaced whole), so a poisoned lock is usable.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, msg: String) -> tapegrad_autograd::Error {
        layer_error(Some(self.weight.name()), &self.describe_as(), msg)
    }

    fn describe_as(&self) -> String {
        format!(
            "BatchNorm{D}d({}, eps={}, momentum={}, affine=True, track_running_stats=True)",
            self.num_features(),
            self.eps,
            self.momentum
        )
    }

    /// Moves the running statistics towards a batch's mean and biased
    /// variance (`n` values per channel).
    fn update_running(&self, mean: &Tensor<T>, var: &Tensor<T>, n: usize) -> TapeResult<()> {
        let c = self.num_features();
        let m = self.momentum;
        let unbiased = var.reshape(&[c])?.mul_scalar(n as f64 / (n - 1) as f64)?;
        let mut r = self.lock();
        r.mean = r
            .mean
            .mul_scalar(1.0 - m)?
            .add(&mean.reshape(&[c])?.mul_scalar(m)?)?;
        r.var = r.var.mul_scalar(1.0 - m)?.add(&unbiased.mul_scalar(m)?)?;
        r.batches += 1;
        Ok(())
    }
}

impl<T: Element, const D: usize> Module<T> for BatchNorm<T, D> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let s = x.shape();
        let ok_rank = if D == 1 {
            s.len() == 2 || s.len() == 3
        } else {
            s.len() == 4
        };
        let c = self.num_features();
        if !ok_rank || s[1] != c {
            let want = if D == 1 {
                "[N, C] or [N, C, L]"
            } else {
                "[N, C, H, W]"
            };
            return Err(self.fail(format!(
                "got input of shape {:?}: expected {want} with C = {c}",
                s.as_slice()
            )));
        }
        let axes: Vec<usize> = std::iter::once(0).chain(2..s.len()).collect();
        let mut bshape = vec![1, c];
        bshape.resize(s.len(), 1);
        let (mean, var) = if self.training {
            let n = s.iter().product::<usize>() / c.max(1);
            if n <= 1 {
                return Err(self.fail(format!(
                    "got input of shape {:?}: training needs more than one value per channel",
                    s.as_slice()
                )));
            }
            let mean = x.mean(&axes, true)?;
            let var = x.var(&axes, true, 0)?;
            self.update_running(&mean.value(), &var.value(), n)?;
            (mean, var)
        } else {
            let r = self.lock().clone();
            (
                tape.constant(r.mean.reshape(&bshape)?),
                tape.constant(r.var.reshape(&bshape)?),
            )
        };
        let xhat = x.sub(mean)?.div(var.add_scalar(self.eps)?.sqrt()?)?;
        let w = self.weight.var(tape)?.reshape(&bshape)?;
        let b = self.bias.var(tape)?.reshape(&bshape)?;
        xhat.mul(w)?.add(b)
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        vec![
            ("weight".to_string(), &self.weight),
            ("bias".to_string(), &self.bias),
        ]
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        vec![
            ("weight".to_string(), &mut self.weight),
            ("bias".to_string(), &mut self.bias),
        ]
    }

    fn buffers(&self) -> Vec<(String, Buffer<T>)> {
        let r = self.lock().clone();
        let b = |value, integer| Buffer { value, integer };
        vec![
            ("running_mean".into(), b(r.mean, false)),
            ("running_var".into(), b(r.var, false)),
            (
                "num_batches_tracked".into(),
                b(Tensor::scalar(T::from_f64(r.batches as f64)), true),
            ),
        ]
    }

    fn set_buffer(&mut self, name: &str, value: Tensor<T>) -> Result<()> {
        let c = self.num_features();
        let expected: &[usize] = if name == "num_batches_tracked" {
            &[]
        } else {
            &[c]
        };
        let bad = |msg: String| Error::invalid("BatchNorm::set_buffer", msg);
        if !matches!(name, "running_mean" | "running_var" | "num_batches_tracked") {
            return Err(bad(format!("no buffer named {name:?}")));
        }
        if value.dims() != expected {
            return Err(bad(format!(
                "{name} must have shape {expected:?}, got {:?}",
                value.dims()
            )));
        }
        let r = self.running.get_mut().unwrap_or_else(|p| p.into_inner());
        match name {
            "running_mean" => r.mean = value,
            "running_var" => r.var = value,
            _ => r.batches = value.item()?.to_f64().max(0.0).round() as u64,
        }
        Ok(())
    }

    fn train(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self) -> String {
        self.describe_as()
    }
}

#[cfg(test)]
mod tests {
    use tapegrad_autograd::{gradcheck, gradcheck_second_order};

    use super::*;

    #[test]
    fn batchnorm_training_gradients_through_mean_and_variance() {
        let bn = BatchNorm2d::<f64>::new(3);
        let x = Tensor::<f64>::uniform_seeded(&[2, 3, 2, 2], -1.0, 1.0, 1);
        let seed = Tensor::<f64>::uniform_seeded(&[2, 3, 2, 2], -1.0, 1.0, 2);
        // Σ y·s: without the seed Σ y is constant (the output of each
        // channel sums to 0), which would check nothing.
        fn f<'t>(
            bn: &BatchNorm2d<f64>,
            seed: &Tensor<f64>,
            tape: &'t Tape<f64>,
            v: &[Var<'t, f64>],
        ) -> TapeResult<Var<'t, f64>> {
            bn.forward(tape, v[0])?.mul(tape.constant(seed.clone()))
        }
        let r = gradcheck(|t, v| f(&bn, &seed, t, v), std::slice::from_ref(&x)).unwrap();
        assert!(r.passed, "{r}");
        let r = gradcheck_second_order(|t, v| f(&bn, &seed, t, v), &[x]).unwrap();
        assert!(r.passed, "{r}");
        let bn1 = BatchNorm1d::<f64>::new(2);
        let r = gradcheck(
            |t, v| bn1.forward(t, v[0])?.square(),
            &[Tensor::uniform_seeded(&[4, 2], -1.0, 1.0, 3)],
        )
        .unwrap();
        assert!(r.passed, "{r}");
    }

    #[test]
    fn running_statistics_follow_pytorch() {
        // One channel, batch (1, 2, 3, 6): mean 3, biased variance 3.5,
        // unbiased 14/3. After one step: 0.9·0 + 0.1·3 = 0.3 and
        // 0.9·1 + 0.1·14/3 = 1.3667.
        let mut bn = BatchNorm1d::<f64>::new(1);
        let tape = Tape::new();
        let x = Tensor::from_vec(vec![1., 2., 3., 6.], &[4, 1]).unwrap();
        bn.forward(&tape, tape.constant(x.clone())).unwrap();
        let b = bn.buffers();
        assert!((b[0].1.value.to_vec()[0] - 0.3).abs() < 1e-12);
        assert!((b[1].1.value.to_vec()[0] - (0.9 + 0.1 * 14.0 / 3.0)).abs() < 1e-12);
        assert_eq!(b[2].1.value.item().unwrap(), 1.0);
        // Evaluation: (x − 0.3)/√(1.3667 + 1e-5), and no update.
        bn.eval();
        let y = bn
            .forward(&tape, tape.constant(x))
            .unwrap()
            .value()
            .to_vec();
        let v = 0.9 + 0.1 * 14.0 / 3.0;
        assert!((y[0] - (1.0 - 0.3) / (v + 1e-5f64).sqrt()).abs() < 1e-12);
        assert_eq!(bn.buffers()[2].1.value.item().unwrap(), 1.0);
        // Wrong channels name the layer.
        let e = bn
            .forward(&tape, tape.constant(Tensor::zeros(&[2, 3])))
            .unwrap_err();
        assert!(e.to_string().contains("BatchNorm1d(1"), "{e}");
    }
}
