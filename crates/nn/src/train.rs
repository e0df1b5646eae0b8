//! A training loop helper: epochs of shuffled mini-batches, a live progress
//! bar, stopping rules, early stopping and a metrics history.
//!
//! The loop it runs is the one a user would write by hand:
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use tapegrad_autograd::Tape;
//! use tapegrad_nn::{data::{Dataset, Target}, loss, Adam, Mlp, Module, Optimizer};
//! use tapegrad_tensor::Tensor;
//! let x = Tensor::<f32>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2])?;
//! let data = Dataset::new(x, Target::Classes(vec![0, 1, 1, 0]))?;
//! let mut model = Mlp::<f32>::builder(&[2, 8, 2]).seed(3).build()?;
//! let mut opt = Adam::new(0.05);
//! let mut rng = StdRng::seed_from_u64(0);
//! for _epoch in 0..300 {
//!     for batch in data.batches(4, Some(&mut rng)) {
//!         let tape = Tape::new();
//!         let logits = model.forward(&tape, tape.constant(batch.x))?;
//!         let l = loss::cross_entropy(logits, batch.y.classes().unwrap())?;
//!         let grads = model.grads(&tape.backward(l)?);
//!         opt.step(model.parameters_mut(), &grads)?;
//!     }
//! }
//! let acc = tapegrad_nn::train::evaluate(&mut model, &data, tapegrad_nn::Objective::CrossEntropy)?;
//! assert_eq!(acc.accuracy, Some(1.0));
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use indexmap::IndexMap;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::data::{gaussian_noise, mixup, Batch, Dataset, Target};
use crate::error::{Error, Result};
use crate::grads::ParamGrads;
use crate::loss;
use crate::module::Module;
use crate::optim::{LrSchedule, Optimizer};
use crate::record::TrainingRecorder;

/// The loss to train with; it also decides how accuracy is measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// Cross-entropy from logits with class targets (soft targets after
    /// mixup); accuracy is the argmax hit rate.
    CrossEntropy,
    /// Binary cross-entropy from logits against 0/1 values; accuracy
    /// thresholds the logit at 0.
    BceWithLogits,
    /// Mean squared error against values.
    Mse,
    /// Mean absolute error against values.
    L1,
    /// Huber loss with this threshold against values.
    Huber(f64),
}

impl Objective {
    /// The loss of `out` against a batch's targets.
    ///
    /// # Errors
    /// If the target kind does not fit the objective or the shapes differ.
    pub fn loss<'t, T: Element>(self, out: Var<'t, T>, y: &Target<T>) -> TapeResult<Var<'t, T>> {
        let tape = out.tape();
        match (self, y) {
            (Objective::CrossEntropy, Target::Classes(c)) => loss::cross_entropy(out, c),
            (Objective::CrossEntropy, Target::Values(v)) => {
                loss::soft_cross_entropy(out, tape.constant(v.clone()))
            }
            (_, Target::Classes(_)) => Err(tapegrad_autograd::Error::InvalidArgument {
                op: "Objective::loss".into(),
                msg: format!("{self:?} needs real-valued targets, not classes"),
            }),
            (Objective::BceWithLogits, Target::Values(v)) => {
                loss::bce_with_logits(out, tape.constant(v.clone()))
            }
            (Objective::Mse, Target::Values(v)) => loss::mse(out, tape.constant(v.clone())),
            (Objective::L1, Target::Values(v)) => loss::l1(out, tape.constant(v.clone())),
            (Objective::Huber(d), Target::Values(v)) => {
                loss::huber(out, tape.constant(v.clone()), d)
            }
        }
    }

    /// Number of correct predictions in `out` (`None` for regression).
    pub fn correct<T: Element>(self, out: &Tensor<T>, y: &Target<T>) -> Option<usize> {
        match self {
            Objective::CrossEntropy => {
                let pred = out.argmax(1, false).ok()?.to_vec();
                let truth: Vec<usize> = match y {
                    Target::Classes(c) => c.clone(),
                    Target::Values(v) => v
                        .argmax(1, false)
                        .ok()?
                        .to_vec()
                        .iter()
                        .map(|x| x.to_f64() as usize)
                        .collect(),
                };
                Some(
                    pred.iter()
                        .zip(&truth)
                        .filter(|(p, t)| p.to_f64() as usize == **t)
                        .count(),
                )
            }
            Objective::BceWithLogits => {
                let Target::Values(v) = y else { return None };
                Some(
                    out.to_vec()
                        .iter()
                        .zip(v.to_vec())
                        .filter(|(o, t)| (o.to_f64() > 0.0) == (t.to_f64() > 0.5))
                        .count(),
                )
            }
            _ => None,
        }
    }
}

/// Whether to draw a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Draw on standard error when it is a terminal (the default).
    Auto,
    /// Never draw.
    Never,
    /// Always draw on standard error.
    Always,
}

/// Why training stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// All epochs ran.
    Epochs,
    /// The epoch's training loss reached the target.
    TargetLoss,
    /// The maximum number of optimiser steps was reached.
    MaxSteps,
    /// The validation loss stopped improving (best weights restored).
    EarlyStopping,
}

/// Metrics of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (weighted by size).
    pub train_loss: f64,
    /// Training accuracy, for classification.
    pub train_accuracy: Option<f64>,
    /// Validation loss, if a validation set was given.
    pub val_loss: Option<f64>,
    /// Validation accuracy, for classification.
    pub val_accuracy: Option<f64>,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Optimiser steps so far.
    pub steps: usize,
    /// Seconds since training began.
    pub seconds: f64,
}

/// What a training run did, epoch by epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// Per-epoch metrics.
    pub epochs: Vec<EpochMetrics>,
    /// The loss of every optimiser step.
    pub step_losses: Vec<f64>,
    /// Why the run ended.
    pub stop: StopReason,
    /// The epoch whose weights the model ends with when early stopping
    /// restored them.
    pub best_epoch: Option<usize>,
}

impl History {
    /// The last epoch's metrics.
    pub fn last(&self) -> Option<&EpochMetrics> {
        self.epochs.last()
    }

    /// Writes the training (and validation) loss per epoch as an SVG line
    /// chart.
    ///
    /// # Errors
    /// If the file cannot be written or there is nothing to plot.
    pub fn plot_loss_svg(&self, path: impl AsRef<Path>, title: &str) -> Result<()> {
        let train: Vec<f64> = self.epochs.iter().map(|e| e.train_loss).collect();
        let val: Vec<f64> = self
            .epochs
            .iter()
            .map(|e| e.val_loss.unwrap_or(f64::NAN))
            .collect();
        let mut series: Vec<(&str, &[f64])> = vec![("train", &train)];
        if val.iter().any(|v| v.is_finite()) {
            series.push(("validation", &val));
        }
        crate::plot::line_chart_svg(path, title, "epoch", &series)
    }
}

/// Loss and accuracy on a data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss.
    pub loss: f64,
    /// Accuracy, for classification.
    pub accuracy: Option<f64>,
}

/// Evaluates `model` on `data` in evaluation mode (dropout off) without
/// recording gradients; the mode is restored afterwards.
///
/// # Errors
/// If the model or loss fails on the data's shapes.
pub fn evaluate<T: Element, M: Module<T> + ?Sized>(
    model: &mut M,
    data: &Dataset<T>,
    objective: Objective,
) -> Result<Evaluation> {
    let was = model.is_training();
    model.train(false);
    let r = evaluate_inner(&*model, data, objective);
    model.train(was);
    r
}

fn evaluate_inner<T: Element, M: Module<T> + ?Sized>(
    model: &M,
    data: &Dataset<T>,
    objective: Objective,
) -> Result<Evaluation> {
    let (mut loss_sum, mut correct, mut n, mut has_acc) = (0.0, 0usize, 0usize, false);
    let mut tape = Tape::<T>::new();
    for batch in data.batches(1024, None) {
        tape.clear();
        let l = tape.no_grad(|| -> TapeResult<(f64, Tensor<T>)> {
            let out = model.forward(&tape, tape.constant(batch.x.clone()))?;
            let l = objective.loss(out, &batch.y)?;
            Ok((l.item()?.to_f64(), out.value()))
        })?;
        loss_sum += l.0 * batch.len() as f64;
        if let Some(c) = objective.correct(&l.1, &batch.y) {
            correct += c;
            has_acc = true;
        }
        n += batch.len();
    }
    if n == 0 {
        return Err(Error::invalid("evaluate", "the data set is empty"));
    }
    Ok(Evaluation {
        loss: loss_sum / n as f64,
        accuracy: has_acc.then(|| correct as f64 / n as f64),
    })
}

/// Runs `model` on `x` in evaluation mode without recording gradients.
///
/// # Errors
/// If the model fails on `x`'s shape.
pub fn predict<T: Element, M: Module<T> + ?Sized>(
    model: &mut M,
    x: &Tensor<T>,
) -> Result<Tensor<T>> {
    let was = model.is_training();
    model.train(false);
    let tape = Tape::<T>::new();
    let r = tape.no_grad(|| {
        model
            .forward(&tape, tape.constant(x.clone()))
            .map(|v| v.value())
    });
    model.train(was);
    Ok(r?)
}

/// Where training is, for the hook of [`Trainer::fit_with_hook`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepContext {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Optimiser step about to run, from 1.
    pub step: usize,
    /// This step's training loss.
    pub loss: f64,
}

/// The error for a loss that is NaN or infinite, saying whether the batch's
/// inputs were to blame.
fn non_finite_loss<T: Element>(l: f64, epoch: usize, step: usize, x: &Tensor<T>) -> Error {
    let cols = x.dims().last().copied().unwrap_or(1).max(1);
    let culprit = x.to_vec().iter().position(|v| !v.is_finite());
    let cause = match culprit {
        Some(i) => format!(
            "the batch's inputs hold a non-finite value (row {} of the batch, column {}): \
             check the data",
            i / cols + 1,
            i % cols + 1
        ),
        None => "the batch's inputs are all finite, so the model diverged: \
                 try a lower learning rate or gradient clipping"
            .to_string(),
    };
    Error::invalid(
        "Trainer::fit",
        format!("the loss is {l} at epoch {epoch}, step {step}; {cause}"),
    )
}

/// Options for a training run; [`fit`](Trainer::fit) runs it.
///
/// ```
/// use tapegrad_nn::{data::{Dataset, Target}, Adam, Mlp, Objective, Trainer};
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::<f32>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2])?;
/// let data = Dataset::new(x, Target::Classes(vec![0, 1, 1, 0]))?;
/// let mut model = Mlp::builder(&[2, 8, 2]).seed(3).build()?;
/// let history = Trainer::new(Objective::CrossEntropy)
///     .epochs(500)
///     .batch_size(4)
///     .target_loss(0.01)
///     .progress(tapegrad_nn::Progress::Never)
///     .fit(&mut model, &mut Adam::new(0.05), &data, None)?;
/// assert!(history.last().unwrap().train_loss <= 0.01);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trainer {
    objective: Objective,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    target_loss: Option<f64>,
    max_steps: Option<usize>,
    patience: Option<usize>,
    progress: Progress,
    schedule: LrSchedule,
    noise: Option<f64>,
    mixup: Option<f64>,
}

impl Trainer {
    /// A trainer for `objective`: 10 epochs, batches of 32, seed 0, no
    /// stopping rules, a progress bar when on a terminal.
    pub fn new(objective: Objective) -> Self {
        Trainer {
            objective,
            epochs: 10,
            batch_size: 32,
            seed: 0,
            target_loss: None,
            max_steps: None,
            patience: None,
            progress: Progress::Auto,
            schedule: LrSchedule::Constant,
            noise: None,
            mixup: None,
        }
    }

    /// Number of passes over the training data.
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }

    /// Rows per mini-batch (at least 1: [`fit`](Self::fit) refuses 0).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Seed for shuffling and augmentation.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    /// Stop once an epoch's mean training loss is at most `l` (the
    /// article's stopping rule).
    pub fn target_loss(mut self, l: f64) -> Self {
        self.target_loss = Some(l);
        self
    }

    /// Stop after this many optimiser steps.
    pub fn max_steps(mut self, n: usize) -> Self {
        self.max_steps = Some(n);
        self
    }

    /// Early stopping: stop when the validation loss has not improved for
    /// `epochs` epochs, and restore the best weights.
    pub fn early_stopping(mut self, epochs: usize) -> Self {
        self.patience = Some(epochs);
        self
    }

    /// Progress bar policy.
    pub fn progress(mut self, p: Progress) -> Self {
        self.progress = p;
        self
    }

    /// Learning-rate schedule, applied per step to the optimiser's initial
    /// rate.
    pub fn schedule(mut self, s: LrSchedule) -> Self {
        self.schedule = s;
        self
    }

    /// Adds Gaussian noise of this standard deviation to each training
    /// batch's features.
    pub fn gaussian_noise(mut self, std: f64) -> Self {
        self.noise = Some(std);
        self
    }

    /// Applies mixup with `Beta(α, α)` to each training batch.
    pub fn mixup(mut self, alpha: f64) -> Self {
        self.mixup = Some(alpha);
        self
    }

    fn bar(&self, total: u64) -> ProgressBar {
        let draw = match self.progress {
            Progress::Never => false,
            Progress::Always => true,
            Progress::Auto => std::io::stderr().is_terminal(),
        };
        if !draw {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed_precise} {msg}")
        {
            bar.set_style(style);
        }
        bar
    }

    /// Checks every setting, naming the one that is wrong.
    fn check(&self) -> Result<()> {
        let bad =
            |what: &str, msg: String| Err(Error::invalid("Trainer::fit", format!("{what}: {msg}")));
        if self.batch_size == 0 {
            return bad("batch_size(0)", "a batch needs at least one row".into());
        }
        if let Some(std) = self.noise {
            if !(std.is_finite() && std >= 0.0) {
                return bad(
                    &format!("gaussian_noise({std})"),
                    "the standard deviation must be a finite number ≥ 0".into(),
                );
            }
        }
        if let Some(a) = self.mixup {
            if !(a.is_finite() && a > 0.0) {
                return bad(
                    &format!("mixup({a})"),
                    "α must be a finite number above 0".into(),
                );
            }
        }
        if let Some(t) = self.target_loss {
            if t.is_nan() {
                return bad("target_loss(NaN)", "the target must be a number".into());
            }
        }
        if self.patience == Some(0) {
            return bad(
                "early_stopping(0)",
                "patience must be at least one epoch".into(),
            );
        }
        if let Objective::Huber(d) = self.objective {
            if !(d.is_finite() && d > 0.0) {
                return bad(
                    &format!("Objective::Huber({d})"),
                    "δ must be a finite number above 0".into(),
                );
            }
        }
        Ok(())
    }

    /// Trains `model` on `train`, evaluating on `val` after each epoch.
    /// Same seed, same data and same thread count: the same losses, bit for
    /// bit.
    ///
    /// # Errors
    /// Before training: if a setting is invalid (a batch size of 0, a
    /// negative noise level, ...), or the training set is empty. During
    /// training: if the model or loss fails on the data's shapes, the loss
    /// becomes NaN or infinite (the error names the step and whether the
    /// batch's inputs were finite), or the optimiser refuses a step (a
    /// learning rate that is NaN, infinite or negative, say).
    pub fn fit<T: Element, M: Module<T> + ?Sized>(
        &self,
        model: &mut M,
        opt: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        val: Option<&Dataset<T>>,
    ) -> Result<History> {
        self.fit_with_hook(model, opt, train, val, |_, _| Ok(()))
    }

    /// [`fit`](Self::fit), calling `hook` between each backward pass and
    /// its optimiser step with the step's gradients (one per parameter, by
    /// name) and where training is. The hook may read, print, scale, clip
    /// or replace them (an all-reduce across processes plugs in here); the
    /// step uses them as the hook leaves them.
    ///
    /// ```
    /// use tapegrad_nn::{data::{Dataset, Target}, Mlp, Objective, Progress, Sgd, Trainer};
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2])?;
    /// let data = Dataset::new(x, Target::Classes(vec![0, 1, 1, 0]))?;
    /// let mut model = Mlp::builder(&[2, 8, 2]).seed(3).build()?;
    /// let mut norms = Vec::new();
    /// Trainer::new(Objective::CrossEntropy)
    ///     .epochs(3)
    ///     .batch_size(2)
    ///     .progress(Progress::Never)
    ///     .fit_with_hook(&mut model, &mut Sgd::new(0.1), &data, None, |grads, at| {
    ///         norms.push((at.step, grads.clip_norm(1.0)?));
    ///         Ok(())
    ///     })?;
    /// assert_eq!(norms.len(), 6);
    /// # Ok::<(), tapegrad_nn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`fit`](Self::fit), and whatever the hook returns.
    pub fn fit_with_hook<T: Element, M: Module<T> + ?Sized>(
        &self,
        model: &mut M,
        opt: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        val: Option<&Dataset<T>>,
        hook: impl FnMut(&mut ParamGrads<T>, &StepContext) -> Result<()>,
    ) -> Result<History> {
        self.run(model, opt, train, val, hook, None)
    }

    /// [`fit`](Self::fit), filling `recorder` with per-layer gradient norms,
    /// update / weight ratios and dead or saturated shares at each step it
    /// records (see [`record`](crate::record)); write its page with
    /// [`TrainingRecorder::write_html`].
    ///
    /// # Errors
    /// As [`fit`](Self::fit).
    pub fn fit_recorded<T: Element, M: Module<T> + ?Sized>(
        &self,
        model: &mut M,
        opt: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        val: Option<&Dataset<T>>,
        recorder: &mut TrainingRecorder,
    ) -> Result<History> {
        self.run(model, opt, train, val, |_, _| Ok(()), Some(recorder))
    }

    /// [`fit_with_hook`](Self::fit_with_hook) and
    /// [`fit_recorded`](Self::fit_recorded) together: the recorder sees the
    /// gradients as the hook leaves them.
    ///
    /// # Errors
    /// As [`fit_with_hook`](Self::fit_with_hook).
    pub fn fit_recorded_with_hook<T: Element, M: Module<T> + ?Sized>(
        &self,
        model: &mut M,
        opt: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        val: Option<&Dataset<T>>,
        recorder: &mut TrainingRecorder,
        hook: impl FnMut(&mut ParamGrads<T>, &StepContext) -> Result<()>,
    ) -> Result<History> {
        self.run(model, opt, train, val, hook, Some(recorder))
    }

    fn run<T: Element, M: Module<T> + ?Sized>(
        &self,
        model: &mut M,
        opt: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        val: Option<&Dataset<T>>,
        mut hook: impl FnMut(&mut ParamGrads<T>, &StepContext) -> Result<()>,
        mut recorder: Option<&mut TrainingRecorder>,
    ) -> Result<History> {
        self.check()?;
        if train.is_empty() {
            return Err(Error::invalid("Trainer::fit", "the training set is empty"));
        }
        let classes = train.num_classes().unwrap_or(0);
        let base_lr = opt.lr();
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut aug_rng = StdRng::seed_from_u64(self.seed.wrapping_add(0x9e37_79b9));
        let steps_per_epoch = train.len().div_ceil(self.batch_size);
        let total = (steps_per_epoch * self.epochs)
            .min(self.max_steps.unwrap_or(usize::MAX))
            .max(1) as u64;
        let bar = self.bar(total);
        let start = Instant::now();
        let mut history = History {
            epochs: Vec::new(),
            step_losses: Vec::new(),
            stop: StopReason::Epochs,
            best_epoch: None,
        };
        let mut best: Option<(f64, usize, IndexMap<String, Tensor<T>>)> = None;
        let mut tape = Tape::<T>::new();
        let mut step = 0usize;
        model.train(true);
        'epochs: for epoch in 1..=self.epochs {
            let (mut loss_sum, mut correct, mut seen, mut has_acc) = (0.0, 0, 0, false);
            let batches: Vec<Batch<T>> = train.batches(self.batch_size, Some(&mut rng)).collect();
            for mut batch in batches {
                if let Some(max) = self.max_steps {
                    if step >= max {
                        history.stop = StopReason::MaxSteps;
                        break;
                    }
                }
                if let Some(std) = self.noise {
                    batch.x = gaussian_noise(&batch.x, std, &mut aug_rng)?;
                }
                if let Some(alpha) = self.mixup {
                    batch = mixup(&batch, alpha, classes, &mut aug_rng)?;
                }
                opt.set_lr(self.schedule.lr(base_lr, step));
                tape.clear();
                let mut rec = recorder.as_deref_mut().filter(|r| r.wants(step + 1));
                let (l, out, mut grads) = {
                    let out = model.forward(&tape, tape.constant(batch.x.clone()))?;
                    let l = self.objective.loss(out, &batch.y)?;
                    let (lv, outv) = (l.item()?.to_f64(), out.value());
                    // The recorder reads the activations after the pass, so
                    // on its steps the tape is kept; otherwise the pass frees
                    // each activation and intermediate gradient once used.
                    let grads = if rec.is_some() {
                        tape.backward(l)?
                    } else {
                        tape.backward_and_clear(l.var_id())?
                    };
                    (lv, outv, model.grads(&grads))
                };
                if let Some(r) = rec.as_deref_mut() {
                    r.observe_tape(&tape);
                }
                // The tape's nodes share the parameters' buffers; dropping
                // them first lets the optimiser update in place (else each
                // parameter is copied once, copy-on-write).
                tape.clear();
                if !l.is_finite() {
                    return Err(non_finite_loss(l, epoch, step + 1, &batch.x));
                }
                let at = StepContext {
                    epoch,
                    step: step + 1,
                    loss: l,
                };
                hook(&mut grads, &at)?;
                if let Some(r) = rec.as_deref_mut() {
                    r.before_step(&*model);
                }
                opt.step(model.parameters_mut(), &grads)?;
                if let Some(r) = rec {
                    r.after_step(&*model, &grads, step + 1, l);
                }
                step += 1;
                history.step_losses.push(l);
                loss_sum += l * batch.len() as f64;
                seen += batch.len();
                if let Some(c) = self.objective.correct(&out, &batch.y) {
                    correct += c;
                    has_acc = true;
                }
                bar.inc(1);
                if step.is_multiple_of(8) || step == 1 {
                    let acc = if has_acc {
                        format!(" acc {:.3}", correct as f64 / seen as f64)
                    } else {
                        String::new()
                    };
                    bar.set_message(format!(
                        "epoch {epoch}/{} loss {:.4}{acc}",
                        self.epochs,
                        loss_sum / seen as f64
                    ));
                }
            }
            if seen == 0 {
                break;
            }
            let (val_loss, val_accuracy) = match val {
                Some(v) if !v.is_empty() => {
                    let e = evaluate(model, v, self.objective)?;
                    (Some(e.loss), e.accuracy)
                }
                _ => (None, None),
            };
            let m = EpochMetrics {
                epoch,
                train_loss: loss_sum / seen as f64,
                train_accuracy: has_acc.then(|| correct as f64 / seen as f64),
                val_loss,
                val_accuracy,
                lr: opt.lr(),
                steps: step,
                seconds: start.elapsed().as_secs_f64(),
            };
            bar.set_message(format!(
                "epoch {epoch}/{} loss {:.4}{}{}",
                self.epochs,
                m.train_loss,
                m.train_accuracy
                    .map_or(String::new(), |a| format!(" acc {a:.3}")),
                m.val_loss.map_or(String::new(), |v| format!(" val {v:.4}")),
            ));
            let train_loss = m.train_loss;
            history.epochs.push(m);
            if history.stop == StopReason::MaxSteps {
                break;
            }
            if let (Some(patience), Some(vl)) = (self.patience, val_loss) {
                let improved = best.as_ref().is_none_or(|(b, _, _)| vl < *b);
                if improved {
                    best = Some((vl, epoch, model.state_dict()));
                } else if best.as_ref().is_some_and(|(_, e, _)| epoch - e >= patience) {
                    history.stop = StopReason::EarlyStopping;
                    break 'epochs;
                }
            }
            if self.target_loss.is_some_and(|t| train_loss <= t) {
                history.stop = StopReason::TargetLoss;
                break;
            }
        }
        if history.stop == StopReason::EarlyStopping {
            if let Some((_, e, state)) = best {
                model.load_state_dict(&state)?;
                history.best_epoch = Some(e);
            }
        }
        opt.set_lr(base_lr);
        bar.finish_and_clear();
        Ok(history)
    }
}
