//! Neural networks on the tapegrad tape: layers, losses, optimisers, data
//! handling, a training loop and PyTorch-compatible checkpoints.
//!
//! Train a two-layer MLP on XOR in a few lines:
//!
//! ```
//! use tapegrad_autograd::Tape;
//! use tapegrad_nn::{loss, Activation, Mlp, Module, Optimizer, Sgd};
//! use tapegrad_tensor::Tensor;
//!
//! let x = Tensor::<f64>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2])?;
//! let y = Tensor::<f64>::from_vec(vec![0., 1., 1., 0.], &[4, 1])?;
//! let mut model = Mlp::builder(&[2, 8, 1]).activation(Activation::Tanh).seed(1).build()?;
//! let mut opt = Sgd::new(0.2).momentum(0.9);
//! for _ in 0..500 {
//!     let tape = Tape::new();
//!     let pred = model.forward(&tape, tape.constant(x.clone()))?;
//!     let l = loss::mse(pred, tape.constant(y.clone()))?; // the article's loss
//!     let grads = model.grads(&tape.backward(l)?);   // one gradient per parameter, by name
//!     opt.step(model.parameters_mut(), &grads)?;        // θ ← θ − α∇L (+ momentum)
//! }
//! let out = tapegrad_nn::train::predict(&mut model, &x)?.to_vec();
//! assert!(out[0] < 0.2 && out[1] > 0.8 && out[2] > 0.8 && out[3] < 0.2);
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```
//!
//! - Models: [`Module`], [`Linear`], [`Sequential`], [`Mlp`], [`Dropout`],
//!   [`Activation`] (and the functions in [`activation`]), recurrent layers
//!   [`Rnn`], [`Lstm`] and [`Gru`], initialisers in
//!   [`Init`]. Parameters are [`Param`]s with PyTorch's `state_dict` names.
//! - Convolutional networks ([`layers`]): [`Conv1d`], [`Conv2d`],
//!   [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`], [`Flatten`],
//!   [`Unflatten`], [`BatchNorm1d`], [`BatchNorm2d`]; state that is saved
//!   but not trained (running statistics) is a module's
//!   [`buffers`](Module::buffers), in checkpoints under PyTorch's names.
//! - Gradients: [`Module::grads`] turns a backward pass into a
//!   [`ParamGrads`], one gradient per parameter by name, to print, clip,
//!   accumulate or send before [`Optimizer::step`]; [`Param`]'s docs
//!   follow one weight from creation to update.
//! - Losses in [`loss`]; optimisers [`Sgd`] and [`Adam`] (AdamW via
//!   [`Adam::adamw`]) behind the [`Optimizer`] trait, [`LrSchedule`], global
//!   norm clipping.
//! - Data in [`data`]: CSV (also gzip), the UCI digits, splits, mini-batches,
//!   standardisation, noise and mixup augmentation.
//! - [`explain`]: which inputs drove a prediction (saliency, integrated
//!   gradients) and which columns of a table matter most.
//! - [`Trainer`] for the whole loop with a progress bar, stopping rules and
//!   a [`History`] that plots itself; [`checkpoint`] for safetensors files.
//! - [`TrainingRecorder`] ([`record`]): per-layer gradient norms, update /
//!   weight ratios and dead or saturated activations over training steps,
//!   written as an HTML page of curves.
//!
//! Errors: functions that record on a tape (forward passes, activations,
//! losses) return [`tapegrad_autograd::Result`] like every tape op; the rest
//! (files, data, optimisers, training) return this crate's [`Result`], and
//! `?` converts the former into the latter.

#![forbid(unsafe_code)]

pub mod activation;
mod attention;
pub mod checkpoint;
pub mod data;
mod dropout;
mod embedding;
mod error;
pub mod explain;
mod grads;
mod init;
mod layer_norm;
pub mod layers;
mod linear;
pub mod loss;
mod mlp;
mod module;
pub mod optim;
mod param;
mod per_sample;
pub mod plot;
mod recompute;
pub mod record;
mod recurrent;
mod sampling;
mod sequential;
pub mod train;
mod transformer;

pub use activation::Activation;
pub use attention::MultiheadAttention;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use error::{CheckpointError, Error, Result};
pub use grads::ParamGrads;
pub use init::{gain, Init};
pub use layer_norm::LayerNorm;
pub use layers::{
    AvgPool2d, BatchNorm, BatchNorm1d, BatchNorm2d, Conv, Conv1d, Conv2d, Flatten, GlobalAvgPool2d,
    MaxPool2d, Unflatten,
};
pub use linear::Linear;
pub use mlp::{Mlp, MlpBuilder};
pub use module::{Buffer, Module};
pub use optim::{Adam, GradPolicy, LrSchedule, Optimizer, Sgd, StepReport};
pub use param::{Param, ParamId};
pub use per_sample::{per_sample_grads, PerSampleGrads, PerSampleMethod};
pub use recompute::{checkpoint, CheckpointedSequential};
pub use record::{LayerStats, TrainingRecorder};
pub use recurrent::{Gru, Lstm, LstmState, Nonlinearity, RecurrentOptions, Rnn};
pub use sampling::sample_token;
pub use sequential::Sequential;
pub use train::{
    EpochMetrics, Evaluation, History, Objective, Progress, StepContext, StopReason, Trainer,
};
pub use transformer::{Gpt, GptConfig, TransformerBlock};
