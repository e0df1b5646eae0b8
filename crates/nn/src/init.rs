//! Weight initialisers. Every one draws from a caller-supplied generator, so
//! a seeded `StdRng` gives the same weights on every run.
//!
//! Fans follow PyTorch: for a weight of shape `[out, in]`, `fan_in = in` and
//! `fan_out = out`.

use rand::Rng;
use tapegrad_tensor::{Element, Tensor};

use crate::activation::Activation;

/// How to fill a new parameter.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// Every element equal to the value.
    Constant(f64),
    /// `U(low, high)`.
    Uniform {
        /// Lower bound (included).
        low: f64,
        /// Upper bound (excluded).
        high: f64,
    },
    /// `N(mean, std²)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Glorot & Bengio (2010): `U(±gain·√(6 / (fan_in + fan_out)))`.
    XavierUniform {
        /// Scale for the activation that follows (see [`gain`]).
        gain: f64,
    },
    /// Glorot & Bengio (2010): `N(0, gain²·2 / (fan_in + fan_out))`.
    XavierNormal {
        /// Scale for the activation that follows (see [`gain`]).
        gain: f64,
    },
    /// He et al. (2015), fan-in mode: `U(±gain·√(3 / fan_in))`.
    KaimingUniform {
        /// Scale for the activation that follows (`√2` for ReLU).
        gain: f64,
    },
    /// He et al. (2015), fan-in mode: `N(0, gain² / fan_in)`.
    KaimingNormal {
        /// Scale for the activation that follows (`√2` for ReLU).
        gain: f64,
    },
    /// PyTorch's default for `nn.Linear` weights and biases:
    /// `U(±1/√fan_in)`.
    #[default]
    TorchDefault,
}

/// The recommended gain for an activation (PyTorch's
/// `nn.init.calculate_gain`): 1 for identity and sigmoid, 5/3 for tanh, √2
/// for ReLU and GELU, `√(2 / (1 + slope²))` for leaky ReLU.
pub fn gain(act: Activation) -> f64 {
    match act {
        Activation::Tanh => 5.0 / 3.0,
        Activation::Relu | Activation::Gelu => std::f64::consts::SQRT_2,
        Activation::LeakyRelu(s) => (2.0 / (1.0 + s * s)).sqrt(),
        _ => 1.0,
    }
}

impl Init {
    /// Xavier/Glorot uniform with gain 1.
    pub fn xavier_uniform() -> Self {
        Init::XavierUniform { gain: 1.0 }
    }

    /// Kaiming/He uniform for ReLU (gain √2).
    pub fn kaiming_uniform() -> Self {
        Init::KaimingUniform {
            gain: std::f64::consts::SQRT_2,
        }
    }

    /// Kaiming/He normal for ReLU (gain √2).
    pub fn kaiming_normal() -> Self {
        Init::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
        }
    }

    /// A tensor of `shape` for a layer with the given fans.
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use tapegrad_nn::Init;
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let w = Init::xavier_uniform().tensor::<f32>(&[3, 5], 5, 3, &mut rng);
    /// let bound = (6.0f32 / 8.0).sqrt();
    /// assert!(w.to_vec().iter().all(|v| v.abs() <= bound));
    /// ```
    pub fn tensor<T: Element>(
        &self,
        shape: &[usize],
        fan_in: usize,
        fan_out: usize,
        rng: &mut impl Rng,
    ) -> Tensor<T> {
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        let sym = |b: f64, rng: &mut _| {
            if b > 0.0 {
                Tensor::uniform(shape, -b, b, rng)
            } else {
                Tensor::zeros(shape)
            }
        };
        match *self {
            Init::Zeros => Tensor::zeros(shape),
            Init::Constant(c) => Tensor::full(shape, T::from_f64(c)),
            Init::Uniform { low, high } => {
                if high > low {
                    Tensor::uniform(shape, low, high, rng)
                } else {
                    Tensor::full(shape, T::from_f64(low))
                }
            }
            Init::Normal { mean, std } => Tensor::normal(shape, mean, std, rng),
            Init::XavierUniform { gain } => sym(gain * (6.0 / (fi + fo)).sqrt(), rng),
            Init::XavierNormal { gain } => {
                Tensor::normal(shape, 0.0, gain * (2.0 / (fi + fo)).sqrt(), rng)
            }
            Init::KaimingUniform { gain } => sym(gain * (3.0 / fi).sqrt(), rng),
            Init::KaimingNormal { gain } => Tensor::normal(shape, 0.0, gain / fi.sqrt(), rng),
            Init::TorchDefault => sym(1.0 / fi.sqrt(), rng),
        }
    }
}
