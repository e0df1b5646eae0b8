//! [`Dropout`]: inverted dropout with a seeded generator.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::module::Module;

/// During training, zeroes each element with probability `p` and scales the
/// rest by `1/(1 − p)`, so the expected value is unchanged and evaluation
/// needs no rescaling; in evaluation mode it is the identity.
///
/// The masks come from a generator seeded at construction, so a training
/// run is reproducible. The generator sits behind a mutex so models stay
/// `Sync`.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Dropout, Module};
/// use tapegrad_tensor::Tensor;
/// let mut d = Dropout::new(0.5, 42)?;
/// let tape = Tape::<f32>::new();
/// let y = d.forward(&tape, tape.constant(Tensor::ones(&[1000])))?;
/// // Kept elements are scaled by 2; about half are kept.
/// let kept = y.value().to_vec().iter().filter(|&&v| v == 2.0).count();
/// assert!((400..600).contains(&kept));
/// d.eval();
/// let z = d.forward(&tape, tape.constant(Tensor::ones(&[3])))?;
/// assert_eq!(z.value().to_vec(), vec![1.0; 3]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    training: bool,
    rng: Mutex<StdRng>,
}

impl Dropout {
    /// Dropout with drop probability `p` and a mask generator seeded with
    /// `seed`. Starts in training mode.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `p` if it is not in `[0, 1)`
    /// (NaN included): `p = 1` would drop everything and make the
    /// `1/(1 − p)` rescaling infinite.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                "Dropout::new",
                format!("drop probability p = {p} is not in [0, 1)"),
            ));
        }
        Ok(Dropout {
            p,
            training: true,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Switches training mode on or off (the same as [`Module::train`],
    /// without naming the element type).
    pub fn train(&mut self, on: bool) {
        self.training = on;
    }

    /// Switches to evaluation mode (identity).
    pub fn eval(&mut self) {
        self.training = false;
    }
}

impl<T: Element> Module<T> for Dropout {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        if !self.training || self.p == 0.0 {
            return Ok(x);
        }
        let shape = x.shape();
        let n: usize = shape.iter().product();
        // `new` keeps p below 1.
        let scale = T::from_f64(1.0 / (1.0 - self.p));
        let mut own = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        // Inside a checkpointed segment, a recomputation replays the state
        // the forward pass drew from (see `recompute.rs`).
        let mut replayed = crate::recompute::dropout_generator(&own)?;
        let rng = replayed.as_mut().unwrap_or(&mut *own);
        let mask: Vec<T> = (0..n)
            .map(|_| {
                if rng.gen::<f64>() < self.p {
                    T::ZERO
                } else {
                    scale
                }
            })
            .collect();
        drop(own);
        let mask = Tensor::from_vec(mask, &shape)?;
        x.mul(tape.constant(mask))
    }

    fn train(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
}
