//! Gradient checkpointing for models: [`checkpoint`] (a closure segment)
//! and [`CheckpointedSequential`] (a deep [`Sequential`] cut into segments
//! of `k` layers), built on
//! [`Tape::checkpoint`](tapegrad_autograd::Tape::checkpoint).
//!
//! **Dropout draws the same mask when a segment is recomputed.** The first
//! run of a segment (its forward pass) records, for every [`Dropout`] call
//! inside it, in order, a copy of that layer's generator state just before
//! it drew its mask (a few hundred bytes each, not the mask). Every
//! recomputation replays those states in the same order: each dropout draws
//! from its saved copy and leaves its own generator alone, so the masks are
//! bit for bit those of the forward pass and the generator advances once,
//! as without checkpointing.
//!
//! [`Dropout`]: crate::Dropout

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use tapegrad_autograd::{Error as TapeError, Result as TapeResult, Tape, Var};
use tapegrad_tensor::Element;

use crate::error::{Error, Result};
use crate::module::Module;
use crate::param::Param;
use crate::sequential::Sequential;

/// What dropout layers do on this thread while a checkpointed segment runs.
enum DropoutLog {
    /// The segment's first run: save each generator state before it draws.
    Record(Vec<StdRng>),
    /// A recomputation: draw from the saved states, in order.
    Replay(VecDeque<StdRng>),
    /// A segment inside another one: replay cannot be kept in step.
    Nested,
}

thread_local! {
    static DROPOUT_LOG: RefCell<Option<DropoutLog>> = const { RefCell::new(None) };
}

/// The generator a dropout layer should draw its next mask from: `None` for
/// its own (outside checkpointed segments, and while recording, after
/// saving its state), or the saved state to replay.
pub(crate) fn dropout_generator(own: &StdRng) -> TapeResult<Option<StdRng>> {
    DROPOUT_LOG.with(|log| match log.borrow_mut().as_mut() {
        None => Ok(None),
        Some(DropoutLog::Record(saved)) => {
            saved.push(own.clone());
            Ok(None)
        }
        Some(DropoutLog::Replay(saved)) => saved.pop_front().map(Some).ok_or_else(|| {
            invalid(
                "the segment drew more dropout masks when recomputed than in its forward pass; \
                 a checkpointed segment must run the same layers each time",
            )
        }),
        Some(DropoutLog::Nested) => Err(invalid(
            "dropout inside a checkpointed segment nested in another one is not supported \
             (its masks could not be replayed); checkpoint the outer segment only",
        )),
    })
}

fn invalid(msg: &str) -> TapeError {
    TapeError::InvalidArgument {
        op: "checkpoint".into(),
        msg: msg.into(),
    }
}

/// Runs `f` with the thread's dropout log set to `log`, returning `f`'s
/// result and the log as `f` left it.
fn with_log<R>(log: DropoutLog, f: impl FnOnce() -> R) -> (R, Option<DropoutLog>) {
    let outer = DROPOUT_LOG.with(|l| l.replace(Some(log)));
    let r = f();
    let left = DROPOUT_LOG.with(|l| l.replace(outer));
    (r, left)
}

/// [`Tape::checkpoint`] for model code: records `f(inputs)` as one node whose
/// intermediate values are recomputed in the backward pass, with
/// [`Dropout`](crate::Dropout) inside `f` drawing the same masks each time
/// (see the module docs). Gradients of every order equal those of `f`
/// recorded directly.
///
/// Parameters used in `f` must be in `inputs` (`param.var(tape)?`); inside
/// `f`, a layer recording that parameter gets the input back.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Linear, Module};
/// use tapegrad_tensor::Tensor;
/// use std::sync::Arc;
///
/// let layer = Arc::new(Linear::<f64>::new(3, 2, 0));
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::ones(&[4, 3]));
/// let (w, b) = (layer.weight().var(&tape)?, layer.bias().unwrap().var(&tape)?);
/// let l2 = Arc::clone(&layer);
/// let y = tapegrad_nn::checkpoint(&tape, &[x, w, b], move |t, v| l2.forward(t, v[0])?.tanh())?;
/// let grads = layer.grads(&tape.backward(y.sum_all()?)?);
/// assert_eq!(grads.get("weight").unwrap().dims(), [2, 3]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// As [`Tape::checkpoint`]; and, from the backward pass, if the segment
/// draws a different number of dropout masks when recomputed, or has
/// dropout inside a nested checkpointed segment.
pub fn checkpoint<'t, T, F>(
    tape: &'t Tape<T>,
    inputs: &[Var<'t, T>],
    f: F,
) -> TapeResult<Var<'t, T>>
where
    T: Element,
    F: for<'s> Fn(&'s Tape<T>, &[Var<'s, T>]) -> TapeResult<Var<'s, T>> + Send + Sync + 'static,
{
    // `None` until the forward pass has run and saved its states.
    let saved: Mutex<Option<Vec<StdRng>>> = Mutex::new(None);
    tape.checkpoint(inputs, move |t, v| {
        let nested = DROPOUT_LOG.with(|l| l.borrow().is_some());
        if nested {
            let (y, _) = with_log(DropoutLog::Nested, || f(t, v));
            return y;
        }
        let mut saved = saved.lock().unwrap_or_else(|e| e.into_inner());
        match saved.as_ref() {
            None => {
                let (y, log) = with_log(DropoutLog::Record(Vec::new()), || f(t, v));
                if let Some(DropoutLog::Record(states)) = log {
                    *saved = Some(states);
                }
                y
            }
            Some(states) => {
                let replay = DropoutLog::Replay(states.iter().cloned().collect());
                let (y, log) = with_log(replay, || f(t, v));
                match log {
                    Some(DropoutLog::Replay(left)) if !left.is_empty() => Err(invalid(
                        "the segment drew fewer dropout masks when recomputed than in its \
                         forward pass; a checkpointed segment must run the same layers each time",
                    )),
                    _ => y,
                }
            }
        }
    })
}

/// Consecutive layers of a [`CheckpointedSequential`], `first` being the
/// position of the first one in the original [`Sequential`].
struct Block<T: Element> {
    layers: Vec<Box<dyn Module<T>>>,
    first: usize,
}

impl<T: Element> Block<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        self.layers.iter().try_fold(x, |x, m| m.forward(tape, x))
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        let first = self.first;
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                m.parameters()
                    .into_iter()
                    .map(move |(n, p)| (format!("{}.{n}", first + i), p))
            })
            .collect()
    }
}

/// A [`Sequential`] whose layers run in segments of `k`, each segment but
/// the last checkpointed ([`checkpoint`]): during training only the
/// segments' boundary values stay on the tape, and each segment is run
/// again in the backward pass (PyTorch's `checkpoint_sequential`). Made by
/// [`Sequential::checkpointed`]. Parameter names, `state_dict` and
/// gradients are those of the original `Sequential`.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Activation, Linear, Module, Sequential};
/// use tapegrad_tensor::Tensor;
///
/// let mut net = Sequential::<f64>::new();
/// for i in 0..4 {
///     net = net.add(Linear::new(8, 8, i)).add(Activation::Tanh);
/// }
/// let plain_grads = {
///     let tape = Tape::new();
///     let y = net.forward(&tape, tape.constant(Tensor::ones(&[2, 8])))?;
///     net.grads(&tape.backward(y.sum_all()?)?)
/// };
/// let net = net.checkpointed(4)?; // two segments of Linear, Tanh, Linear, Tanh
/// let tape = Tape::new();
/// let y = net.forward(&tape, tape.constant(Tensor::ones(&[2, 8])))?;
/// let grads = net.grads(&tape.backward(y.sum_all()?)?);
/// let (a, b) = (grads.get("2.weight").unwrap(), plain_grads.get("2.weight").unwrap());
/// assert!(a.sub(b)?.abs()?.max_all()?.item()? < 1e-12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CheckpointedSequential<T: Element = f32> {
    /// Shared with the checkpoint nodes of tapes still alive, which run
    /// them again in their backward passes.
    blocks: Vec<Arc<Block<T>>>,
    every: usize,
    training: bool,
}

impl<T: Element> Sequential<T> {
    /// This model with its layers run in checkpointed segments of `every`
    /// layers (the last segment, which the loss needs at once, is not
    /// checkpointed). Layers count as the `Sequential` does: a `Linear`
    /// and its activation are two.
    ///
    /// # Errors
    /// If `every` is 0.
    pub fn checkpointed(self, every: usize) -> Result<CheckpointedSequential<T>> {
        if every == 0 {
            return Err(Error::invalid(
                "Sequential::checkpointed",
                "segments need at least one layer (every = 0)",
            ));
        }
        let training = self.is_training();
        let mut blocks = Vec::new();
        let mut layers = self.into_layers().into_iter().peekable();
        let mut first = 0;
        while layers.peek().is_some() {
            let chunk: Vec<_> = layers.by_ref().take(every).collect();
            let n = chunk.len();
            blocks.push(Arc::new(Block {
                layers: chunk,
                first,
            }));
            first += n;
        }
        Ok(CheckpointedSequential {
            blocks,
            every,
            training,
        })
    }
}

impl<T: Element> CheckpointedSequential<T> {
    /// Layers per segment.
    pub fn every(&self) -> usize {
        self.every
    }

    /// Number of segments (the last one is not checkpointed).
    pub fn segments(&self) -> usize {
        self.blocks.len()
    }

    /// The segments for changing: each is shared with the checkpoint nodes of
    /// any tape still holding a forward pass of this model.
    ///
    /// # Panics
    /// If such a tape is still alive: it would recompute with the changed
    /// layers. Clear or drop the tape first (the [`Trainer`] does).
    ///
    /// [`Trainer`]: crate::Trainer
    fn blocks_mut(&mut self) -> impl Iterator<Item = &mut Block<T>> {
        self.blocks.iter_mut().map(|b| {
            Arc::get_mut(b).expect(
                "CheckpointedSequential: a tape holding a forward pass of this model is still \
                 alive (its checkpoint nodes share the layers); clear or drop it before changing \
                 the model",
            )
        })
    }
}

impl<T: Element> std::fmt::Debug for CheckpointedSequential<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl<T: Element> Module<T> for CheckpointedSequential<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let last = self.blocks.len().saturating_sub(1);
        let mut x = x;
        for (i, block) in self.blocks.iter().enumerate() {
            if i == last || !tape.is_grad_enabled() {
                x = block.forward(tape, x)?;
                continue;
            }
            let mut inputs = vec![x];
            for (_, p) in block.parameters() {
                inputs.push(p.var(tape)?);
            }
            let block = Arc::clone(block);
            x = checkpoint(tape, &inputs, move |t, v| block.forward(t, v[0]))?;
        }
        Ok(x)
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        self.blocks.iter().flat_map(|b| b.parameters()).collect()
    }

    /// # Panics
    /// If a tape holding a forward pass of this model is still alive (see
    /// [`CheckpointedSequential`]); clear or drop it before the optimiser
    /// step.
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        self.blocks_mut()
            .flat_map(|b| {
                let first = b.first;
                b.layers.iter_mut().enumerate().flat_map(move |(i, m)| {
                    m.parameters_mut()
                        .into_iter()
                        .map(move |(n, p)| (format!("{}.{n}", first + i), p))
                })
            })
            .collect()
    }

    /// # Panics
    /// As [`parameters_mut`](Self::parameters_mut).
    fn train(&mut self, on: bool) {
        self.training = on;
        for b in self.blocks_mut() {
            for m in &mut b.layers {
                m.train(on);
            }
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self) -> String {
        let mut s = format!("CheckpointedSequential(every={},\n", self.every);
        for b in &self.blocks {
            for (i, m) in b.layers.iter().enumerate() {
                let inner = m.describe().replace('\n', "\n  ");
                s.push_str(&format!("  ({}): {inner}\n", b.first + i));
            }
        }
        s.push(')');
        s
    }
}
