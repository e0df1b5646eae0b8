//! The memory soak shared by `tests/memory.rs` and
//! `examples/memory_soak.rs`: the digits MLP of `examples/digits.rs`
//! (64-256-10, ReLU, Adam 0.003, batches of 32) trained by `Trainer::fit`.

use tapegrad::nn::data::{load_digits, Dataset};
use tapegrad::nn::{Progress, Result};
use tapegrad::prelude::*;

/// The model, its optimiser and the training split, carried across runs.
pub struct Soak {
    model: Mlp<f32>,
    opt: Adam,
    train: Dataset<f32>,
    steps: usize,
}

impl Soak {
    /// Loads `data/digits.csv.gz` and builds the model.
    pub fn new() -> Result<Self> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
        let (train, _test) = load_digits::<f32>(path)?.train_test_split(0.2, 0)?;
        let model = Mlp::<f32>::builder(&[64, 256, 10])
            .activation(Activation::Relu)
            .seed(0)
            .build()?;
        Ok(Soak {
            model,
            opt: Adam::new(0.003),
            train,
            steps: 0,
        })
    }

    /// Trains `steps` more optimiser steps in one `Trainer::fit` call;
    /// returns the last step's loss.
    pub fn train(&mut self, steps: usize) -> Result<f64> {
        let history = Trainer::new(Objective::CrossEntropy)
            .epochs(steps) // at least one step per epoch: max_steps ends it
            .max_steps(steps)
            .batch_size(32)
            .seed(self.steps as u64)
            .progress(Progress::Never)
            .fit(&mut self.model, &mut self.opt, &self.train, None)?;
        assert_eq!(history.step_losses.len(), steps, "fit ran every step");
        self.steps += steps;
        Ok(history.step_losses.last().copied().unwrap_or(f64::NAN))
    }

    /// Steps trained so far.
    pub fn steps(&self) -> usize {
        self.steps
    }
}
