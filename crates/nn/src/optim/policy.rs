//! The part of a step every optimiser shares: checks, matching gradients to
//! parameters, clipping and weight decay.

use std::fmt;

use tapegrad_tensor::{Element, Tensor};

use super::{contiguous, sum_sq, Optimizer};
use crate::error::{Error, Result};
use crate::grads::{check_positive, norm_clip_factor, ParamGrads};
use crate::param::Param;

/// What a step does to the gradients before the optimiser's own rule, the
/// same for every optimiser. Set it with the optimisers' builder methods
/// (`max_grad_norm`, `clip_value`, `weight_decay`,
/// `decoupled_weight_decay`), applied in this order:
/// 1. clip each element to `[-clip_value, clip_value]`;
/// 2. scale all gradients together to a global L2 norm of at most
///    `max_grad_norm` (PyTorch's `clip_grad_norm_`);
/// 3. weight decay `λ`: L2 adds `λθ` to each gradient (SGD's and Adam's
///    `weight_decay`); decoupled multiplies `θ` by `1 − αλ` before the
///    update (AdamW's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GradPolicy {
    /// Largest global gradient norm, if clipping by norm.
    pub max_grad_norm: Option<f64>,
    /// Largest `|g|` per element, if clipping by value.
    pub clip_value: Option<f64>,
    /// Weight decay `λ` (0 for none).
    pub weight_decay: f64,
    /// Whether the decay is decoupled from the gradient (AdamW) rather than
    /// L2.
    pub decoupled: bool,
}

impl GradPolicy {
    /// Checks every setting.
    ///
    /// # Errors
    /// Naming the setting and its value: clipping limits must be finite and
    /// above 0, weight decay finite and at least 0.
    pub fn check(&self, optimizer: &str) -> Result<()> {
        let op = "Optimizer::step";
        if let Some(m) = self.max_grad_norm {
            check_positive(op, &format!("{optimizer}: max_grad_norm"), m)?;
        }
        if let Some(v) = self.clip_value {
            check_positive(op, &format!("{optimizer}: clip_value"), v)?;
        }
        check_rate(op, &format!("{optimizer}: weight_decay"), self.weight_decay)
    }
}

/// The per-step scalars of a [`GradPolicy`], in the element type, that an
/// optimiser's [`update`](Optimizer::update) folds into its loop.
#[derive(Clone, Copy, Debug)]
pub struct GradPrep<T: Element> {
    scale: T,
    l2: Option<T>,
    keep: Option<T>,
}

impl<T: Element> GradPrep<T> {
    /// No clipping and no decay: `grad(g, θ) = g`, `decay(θ) = θ`.
    pub fn identity() -> Self {
        GradPrep {
            scale: T::ONE,
            l2: None,
            keep: None,
        }
    }

    /// The gradient the rule should use for an element with raw gradient
    /// `g` and value `theta`: `scale·g`, plus `λθ` with L2 decay.
    #[inline(always)]
    pub fn grad(self, g: T, theta: T) -> T {
        let g = g * self.scale;
        match self.l2 {
            Some(wd) => g + wd * theta,
            None => g,
        }
    }

    /// `θ` after decoupled decay (`θ·(1 − αλ)`), or `θ` unchanged without it.
    #[inline(always)]
    pub fn decay(self, theta: T) -> T {
        match self.keep {
            Some(k) => theta * k,
            None => theta,
        }
    }
}

/// What a step did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    /// Parameters updated, in the order given.
    pub updated: Vec<String>,
    /// Parameters that had no gradient and were left alone (PyTorch skips
    /// them too): frozen ones, or ones the loss does not depend on.
    pub skipped: Vec<String>,
    /// Gradients whose name matched none of the parameters given (a step
    /// on part of a model leaves the rest here).
    pub unused: Vec<String>,
    /// The global gradient norm before clipping, when clipping by norm.
    pub grad_norm: Option<f64>,
}

impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "updated {} parameters", self.updated.len())?;
        if !self.skipped.is_empty() {
            write!(f, "; skipped (no gradient): {}", self.skipped.join(", "))?;
        }
        if !self.unused.is_empty() {
            write!(f, "; unused gradients: {}", self.unused.join(", "))?;
        }
        if let Some(n) = self.grad_norm {
            write!(f, "; gradient norm {n:.4e} before clipping")?;
        }
        Ok(())
    }
}

/// A learning rate or decay: finite and at least 0.
fn check_rate(op: &'static str, what: &str, x: f64) -> Result<()> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("{what} must be a finite number ≥ 0, got {x}"),
        ))
    }
}

/// The shared step of every optimiser; see the [module docs](super).
pub(super) fn run_step<T: Element, O: Optimizer<T> + ?Sized>(
    opt: &mut O,
    params: Vec<(String, &mut Param<T>)>,
    grads: &ParamGrads<T>,
) -> Result<StepReport> {
    let op = "Optimizer::step";
    let name = opt.name().to_string();
    check_rate(op, &format!("{name}: learning rate"), opt.lr())?;
    opt.policy().check(&name)?;
    opt.check()?;
    let policy = opt.policy().clone();

    // Match, and check everything before the first write.
    let mut report = StepReport::default();
    let mut matched: Vec<(String, &mut Param<T>, Tensor<T>)> = Vec::new();
    for (pname, p) in params {
        let Some((owner, g)) = grads.entry(&pname) else {
            report.skipped.push(pname);
            continue;
        };
        if owner.is_some_and(|o| o != p.id()) {
            return Err(Error::invalid(
                op,
                format!(
                    "the gradient of {pname:?} was computed for another parameter ({}) than \
                     the one given ({}): were the gradients collected from another copy of \
                     the model?",
                    owner.map_or(String::new(), |o| o.to_string()),
                    p.id()
                ),
            ));
        }
        if g.dims() != p.dims() {
            return Err(Error::invalid(
                op,
                format!(
                    "the gradient of {pname:?} has shape {:?} but the parameter has shape {:?}",
                    g.dims(),
                    p.dims()
                ),
            ));
        }
        // Strided gradients (a `Linear` weight's arrives transposed) are
        // copied once, here, for the norm and the update alike.
        let g = match policy.clip_value {
            Some(v) => g.clamp(-v, v)?,
            None => g.to_contiguous(),
        };
        matched.push((pname, p, g));
    }
    report.unused = grads
        .names()
        .filter(|n| !matched.iter().any(|(m, _, _)| m == n))
        .map(str::to_string)
        .collect();
    if matched.is_empty() {
        return Err(no_match(&name, grads, &report.skipped));
    }

    let mut scale = 1.0;
    if let Some(max) = policy.max_grad_norm {
        let norm = matched
            .iter()
            .map(|(_, _, g)| sum_sq(&contiguous(g)))
            .sum::<f64>()
            .sqrt();
        scale = norm_clip_factor(norm, max);
        report.grad_norm = Some(norm);
    }
    let wd = policy.weight_decay;
    let prep = GradPrep {
        scale: T::from_f64(scale),
        l2: (wd != 0.0 && !policy.decoupled).then(|| T::from_f64(wd)),
        keep: (wd != 0.0 && policy.decoupled).then(|| T::from_f64(1.0 - opt.lr() * wd)),
    };
    for (pname, p, g) in matched {
        opt.update(&pname, p.make_mut_slice(), &contiguous(&g), prep)?;
        report.updated.push(pname);
    }
    Ok(report)
}

/// The error for gradients that reach none of the parameters given.
fn no_match<T: Element>(optimizer: &str, grads: &ParamGrads<T>, params: &[String]) -> Error {
    let list = |names: Vec<&str>| {
        let n = names.len();
        let mut s = names.into_iter().take(6).collect::<Vec<_>>().join(", ");
        if n > 6 {
            s.push_str(&format!(", … ({n} in all)"));
        }
        s
    };
    let msg = if grads.is_empty() {
        format!(
            "{optimizer}: no gradients to apply. The backward pass reached none of the \
             parameters ({}); was the loss computed from this model, on the tape that was \
             differentiated?",
            list(params.iter().map(String::as_str).collect())
        )
    } else {
        format!(
            "{optimizer}: none of the gradients ({}) is for a parameter given ({})",
            list(grads.names().collect()),
            list(params.iter().map(String::as_str).collect())
        )
    };
    Error::invalid("Optimizer::step", msg)
}
