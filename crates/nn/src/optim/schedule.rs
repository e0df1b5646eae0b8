//! Learning-rate schedules: the rate for step `t` (from 0) given a base
//! rate. The training helper applies one per optimiser step; a hand-written
//! loop calls [`LrSchedule::lr`] and [`Optimizer::set_lr`](super::Optimizer::set_lr).

/// A learning-rate schedule.
///
/// ```
/// use tapegrad_nn::LrSchedule;
/// let s = LrSchedule::Step { step_size: 10, gamma: 0.5 };
/// assert_eq!(s.lr(0.1, 25), 0.025);
/// let c = LrSchedule::Cosine { total_steps: 100, min_lr: 0.0 };
/// assert!((c.lr(1.0, 50) - 0.5).abs() < 1e-12);
/// let w = LrSchedule::warmup(5, LrSchedule::Constant);
/// assert_eq!(w.lr(1.0, 0), 0.2);
/// assert_eq!(w.lr(1.0, 7), 1.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `step_size` steps.
    Step {
        /// Steps between decays.
        step_size: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Cosine annealing from the base rate down to `min_lr` over
    /// `total_steps`, then `min_lr`.
    Cosine {
        /// Length of the half cosine.
        total_steps: usize,
        /// The final rate.
        min_lr: f64,
    },
    /// Linear warm-up from `base/warmup_steps` to `base` over the first
    /// `warmup_steps` steps, then `after` (counting from 0 again).
    Warmup {
        /// Length of the warm-up.
        warmup_steps: usize,
        /// The schedule afterwards.
        after: Box<LrSchedule>,
    },
}

impl LrSchedule {
    /// A linear warm-up followed by `after`.
    pub fn warmup(warmup_steps: usize, after: LrSchedule) -> Self {
        LrSchedule::Warmup {
            warmup_steps,
            after: Box::new(after),
        }
    }

    /// The learning rate at step `t` for base rate `base`.
    pub fn lr(&self, base: f64, t: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Step { step_size, gamma } => {
                base * gamma.powi((t / (*step_size).max(1)) as i32)
            }
            LrSchedule::Cosine {
                total_steps,
                min_lr,
            } => {
                let total = (*total_steps).max(1) as f64;
                let frac = (t as f64).min(total) / total;
                min_lr + (base - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
            }
            LrSchedule::Warmup {
                warmup_steps,
                after,
            } => {
                if t < *warmup_steps {
                    base * (t + 1) as f64 / *warmup_steps as f64
                } else {
                    after.lr(base, t - warmup_steps)
                }
            }
        }
    }
}
