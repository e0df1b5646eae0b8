//! [`DistributedTrainer`]: the whole data-parallel training loop in one
//! call.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use tapegrad_autograd::Tape;
use tapegrad_nn::data::Dataset;
use tapegrad_nn::optim::{LrSchedule, Optimizer};
use tapegrad_nn::train::{evaluate, EpochMetrics, History, Objective, StopReason};
use tapegrad_nn::{checkpoint, Module};

use crate::comm::{Communicator, Wire};
use crate::ddp::{DataParallel, DEFAULT_BUCKET_BYTES};
use crate::error::{Error, Result};
use crate::sampler::ShardSampler;

/// Trains one replica per rank, as `tapegrad_nn::Trainer` trains one model:
/// [`fit`](Self::fit) checks the replicas, gives them rank 0's parameters
/// (or rank 0's checkpoint when resuming), shards each epoch's shuffled
/// rows over the ranks ([`ShardSampler`]), averages every step's gradients
/// over the ranks in overlapped buckets ([`DataParallel`]), and averages
/// the epoch's loss and accuracy over all rows of all ranks. Only rank 0
/// prints (a progress bar on a terminal, a line per epoch when
/// [`log`](Self::log) is on) and writes checkpoints.
///
/// With batches of `b` rows per rank on `N` ranks, each step is the step of
/// one process with batches of `N·b` rows (the same rows, the same mean
/// loss), up to rounding.
///
/// **Failures.** Settings are checked before any communication, the same on
/// every rank, and refused with an error. A failure once training has begun
/// (a model error, a non-finite loss, a checkpoint that cannot be written)
/// on one rank would leave the others waiting in the next all-reduce, so
/// `fit` stops the whole job with [`Communicator::abort`], printing the rank
/// and its error (under MPI: `MPI_Abort`, which ends every process).
///
/// ```
/// use tapegrad_distributed::{DistributedTrainer, Local};
/// use tapegrad_nn::{data::{Dataset, Target}, Adam, Mlp, Objective};
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::<f32>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2])?;
/// let data = Dataset::new(x, Target::Classes(vec![0, 1, 1, 0]))?;
/// let mut model = Mlp::builder(&[2, 8, 2]).seed(3).build()?;
/// let history = DistributedTrainer::new(Objective::CrossEntropy)
///     .epochs(300)
///     .batch_size(2) // per rank
///     .log(false)
///     .fit(&Local, &mut model, &mut Adam::new(0.05), &data, None)?;
/// assert_eq!(history.last().unwrap().train_accuracy, Some(1.0));
/// # Ok::<(), tapegrad_distributed::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DistributedTrainer {
    objective: Objective,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    max_steps: Option<usize>,
    target_loss: Option<f64>,
    schedule: LrSchedule,
    bucket_bytes: usize,
    log: bool,
    progress: bool,
    checkpoint: Option<PathBuf>,
    resume: Option<PathBuf>,
}

impl DistributedTrainer {
    /// A trainer for `objective`: 10 epochs, batches of 32 rows per rank,
    /// seed 0, 25 MiB buckets, a line per epoch from rank 0.
    pub fn new(objective: Objective) -> Self {
        DistributedTrainer {
            objective,
            epochs: 10,
            batch_size: 32,
            seed: 0,
            max_steps: None,
            target_loss: None,
            schedule: LrSchedule::Constant,
            bucket_bytes: DEFAULT_BUCKET_BYTES,
            log: true,
            progress: true,
            checkpoint: None,
            resume: None,
        }
    }

    /// Number of passes over the training data.
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }

    /// Rows per batch on each rank (the global batch is `size` times this).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Seed of the per-epoch shuffle (the same on every rank).
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    /// Stop after this many optimiser steps.
    pub fn max_steps(mut self, n: usize) -> Self {
        self.max_steps = Some(n);
        self
    }

    /// Stop once an epoch's mean training loss (over all ranks) is at most `l`.
    pub fn target_loss(mut self, l: f64) -> Self {
        self.target_loss = Some(l);
        self
    }

    /// Learning-rate schedule, per step, from the optimiser's initial rate.
    pub fn schedule(mut self, s: LrSchedule) -> Self {
        self.schedule = s;
        self
    }

    /// Bytes of gradients per all-reduce bucket (default 25 MiB).
    pub fn bucket_bytes(mut self, bytes: usize) -> Self {
        self.bucket_bytes = bytes;
        self
    }

    /// Whether rank 0 prints a line per epoch (default on).
    pub fn log(mut self, on: bool) -> Self {
        self.log = on;
        self
    }

    /// Whether rank 0 draws a progress bar when its standard error is a
    /// terminal (default on).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Rank 0 saves the model to `path` after every epoch (atomically: a
    /// reader sees the previous file or the new one, never a part).
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    /// Start from the checkpoint at `path`: rank 0 loads it and every rank
    /// receives its values.
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume = Some(path.into());
        self
    }

    fn check<T: Wire>(&self, train: &Dataset<T>) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid(
                "DistributedTrainer::fit",
                "batch_size(0): a batch needs at least one row",
            ));
        }
        if train.is_empty() {
            return Err(Error::invalid(
                "DistributedTrainer::fit",
                "the training set is empty",
            ));
        }
        Ok(())
    }

    /// Trains `model` on `train` (every rank passes the whole data set; each
    /// uses its shard), evaluating on `val` (sharded too) after each epoch.
    /// Every rank returns the same [`History`] except `step_losses`, which
    /// holds this rank's own batch losses.
    ///
    /// # Errors
    /// Before training, on every rank alike: a batch size of 0, an empty
    /// training set, replicas that differ ([`Error::Mismatch`]).
    /// [`Error::Aborted`] when another rank stopped the job (with ranks as
    /// threads; under MPI the process ends). Any other failure stops the
    /// job (see the type's docs).
    pub fn fit<C: Communicator + ?Sized, T: Wire, M: Module<T> + ?Sized>(
        &self,
        comm: &C,
        model: &mut M,
        opt: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        val: Option<&Dataset<T>>,
    ) -> Result<History> {
        self.check(train)?;
        let dp = DataParallel::new(comm).bucket_bytes(self.bucket_bytes);
        dp.check_replicas(model)?;
        match self.run(&dp, model, opt, train, val) {
            Ok(h) => Ok(h),
            Err(e @ Error::Aborted { .. }) => Err(e),
            Err(e) if comm.size() > 1 => comm.abort(1, &e.to_string()),
            Err(e) => Err(e),
        }
    }

    fn run<C: Communicator + ?Sized, T: Wire, M: Module<T> + ?Sized>(
        &self,
        dp: &DataParallel<'_, C>,
        model: &mut M,
        opt: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        val: Option<&Dataset<T>>,
    ) -> Result<History> {
        let comm = dp.comm();
        let (rank, size) = (comm.rank(), comm.size());
        if let (Some(path), 0) = (&self.resume, rank) {
            checkpoint::load(model, path)?;
        }
        dp.broadcast_parameters(model)?;
        let sampler = ShardSampler::new(train.len(), size, self.seed);
        let steps_per_epoch = sampler.steps_per_epoch(self.batch_size);
        let total = (steps_per_epoch * self.epochs).min(self.max_steps.unwrap_or(usize::MAX));
        let bar = self.bar(rank, total as u64);
        let base_lr = opt.lr();
        let start = Instant::now();
        let mut history = History {
            epochs: Vec::new(),
            step_losses: Vec::new(),
            stop: StopReason::Epochs,
            best_epoch: None,
        };
        let mut tape = Tape::<T>::new();
        let mut step = 0usize;
        model.train(true);
        for epoch in 1..=self.epochs {
            let rows = sampler.indices(rank, epoch);
            // loss × rows, correct, rows: summed over ranks at the end.
            let mut sums = [0.0f64; 3];
            let mut has_acc = false;
            for chunk in 0..steps_per_epoch {
                if self.max_steps.is_some_and(|m| step >= m) {
                    history.stop = StopReason::MaxSteps;
                    break;
                }
                opt.set_lr(self.schedule.lr(base_lr, step));
                let lo = (chunk * self.batch_size).min(rows.len());
                let hi = ((chunk + 1) * self.batch_size).min(rows.len());
                tape.clear();
                let grads = if lo == hi {
                    dp.backward(&*model, None)?
                } else {
                    let batch = train.subset(&rows[lo..hi])?;
                    let out = model.forward(&tape, tape.constant(batch.features().clone()))?;
                    let l = self.objective.loss(out, batch.targets())?;
                    let lv = l.item()?.to_f64();
                    if !lv.is_finite() {
                        return Err(Error::invalid(
                            "DistributedTrainer::fit",
                            format!("the loss is {lv} at epoch {epoch}, step {}", step + 1),
                        ));
                    }
                    let grads = dp.backward(&*model, Some((l, hi - lo)))?;
                    if let Some(c) = self.objective.correct(&out.value(), batch.targets()) {
                        sums[1] += c as f64;
                        has_acc = true;
                    }
                    sums[0] += lv * (hi - lo) as f64;
                    sums[2] += (hi - lo) as f64;
                    history.step_losses.push(lv);
                    grads
                };
                tape.clear();
                opt.step(model.parameters_mut(), &grads)?;
                step += 1;
                bar.inc(1);
            }
            let [loss_sum, correct, seen] = dp.sum(&sums)?[..] else {
                unreachable!("three in, three out")
            };
            if seen == 0.0 {
                break;
            }
            let (val_loss, val_accuracy) = match val {
                Some(v) if !v.is_empty() => self.evaluate_sharded(dp, model, v)?,
                _ => (None, None),
            };
            let m = EpochMetrics {
                epoch,
                train_loss: loss_sum / seen,
                train_accuracy: has_acc.then(|| correct / seen),
                val_loss,
                val_accuracy,
                lr: opt.lr(),
                steps: step,
                seconds: start.elapsed().as_secs_f64(),
            };
            if rank == 0 {
                if self.log {
                    bar.suspend(|| println!("{}", epoch_line(&m, self.epochs, size)));
                }
                if let Some(path) = &self.checkpoint {
                    checkpoint::save(&*model, path)?;
                }
            }
            let train_loss = m.train_loss;
            history.epochs.push(m);
            if history.stop == StopReason::MaxSteps {
                break;
            }
            if self.target_loss.is_some_and(|t| train_loss <= t) {
                history.stop = StopReason::TargetLoss;
                break;
            }
        }
        opt.set_lr(base_lr);
        bar.finish_and_clear();
        Ok(history)
    }

    /// Loss and accuracy on `val`, each rank evaluating every `size`-th row.
    fn evaluate_sharded<C: Communicator + ?Sized, T: Wire, M: Module<T> + ?Sized>(
        &self,
        dp: &DataParallel<'_, C>,
        model: &mut M,
        val: &Dataset<T>,
    ) -> Result<(Option<f64>, Option<f64>)> {
        let (rank, size) = (dp.comm().rank(), dp.comm().size());
        let mine: Vec<usize> = (rank..val.len()).step_by(size).collect();
        let mut local = [0.0f64; 4];
        if !mine.is_empty() {
            let e = evaluate(model, &val.subset(&mine)?, self.objective)?;
            let n = mine.len() as f64;
            local = [
                e.loss * n,
                e.accuracy.unwrap_or(0.0) * n,
                n,
                f64::from(u8::from(e.accuracy.is_some())),
            ];
        }
        let [loss, correct, n, has_acc] = dp.sum(&local)?[..] else {
            unreachable!("four in, four out")
        };
        Ok((Some(loss / n), (has_acc > 0.0).then(|| correct / n)))
    }

    fn bar(&self, rank: usize, total: u64) -> indicatif::ProgressBar {
        if rank != 0 || !self.progress || !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed_precise}")
        {
            bar.set_style(style);
        }
        bar
    }
}

/// Rank 0's line for an epoch.
fn epoch_line(m: &EpochMetrics, epochs: usize, size: usize) -> String {
    let mut s = format!("epoch {}/{epochs}: loss {:.4}", m.epoch, m.train_loss);
    if let Some(a) = m.train_accuracy {
        s += &format!(", accuracy {a:.4}");
    }
    if let Some(v) = m.val_loss {
        s += &format!(", validation loss {v:.4}");
    }
    if let Some(a) = m.val_accuracy {
        s += &format!(", validation accuracy {a:.4}");
    }
    s + &format!(" ({} steps, {size} ranks, {:.2} s)", m.steps, m.seconds)
}
