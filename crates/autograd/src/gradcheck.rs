//! Checking analytic gradients against finite differences.
//!
//! [`gradcheck`] evaluates a function of several `f64` tensors on a fresh
//! tape, projects its output to a scalar `L = Σ out·r` with a fixed
//! pseudo-random `r` (so every output element is checked, not just their
//! sum), and compares `∂L/∂x` from `backward` with the central difference
//! `(L(x + ε) − L(x − ε)) / 2ε`, element by element.
//! The analytic gradient is computed twice, by the ops' value rules (what
//! `backward` uses) and by their recorded rules (what `grad_graph` uses), and
//! the two must agree to `1e-9·(1 + |g|)`.
//! [`gradcheck_second_order`] does the same for the gradient itself
//! (recorded with `create_graph`), which checks every backward rule's own
//! backward rule.

use std::fmt;

use tapegrad_tensor::Tensor;

use crate::error::Result;
use crate::tape::Tape;
use crate::var::Var;

/// Tolerances and step for [`gradcheck_with`].
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
        }
    }
}

/// The outcome of a gradient check.
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    /// Whether every element is within `atol + rtol·|numeric|`.
    pub passed: bool,
    /// Largest `|analytic − numeric|`.
    pub max_abs_error: f64,
    /// Largest `|analytic − numeric| / max(|numeric|, 1e-12)`, among elements
    /// whose numeric gradient is not tiny.
    pub max_rel_error: f64,
    /// Where the worst element (by tolerance ratio) is: input number and
    /// flat element index.
    pub worst: Option<(usize, usize)>,
    /// Largest difference between the gradient from the ops' value rules
    /// ([`Op::backward_value`](crate::Op::backward_value), used by
    /// `backward`) and from their recorded rules (used by `grad_graph`).
    /// The check fails if it exceeds `1e-9·(1 + |g|)` anywhere.
    pub max_rule_mismatch: f64,
    /// The analytic gradient of each input.
    pub analytic: Vec<Tensor<f64>>,
    /// The finite-difference gradient of each input.
    pub numeric: Vec<Tensor<f64>>,
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck {}: max abs error {:.3e}, max rel error {:.3e}",
            if self.passed { "passed" } else { "FAILED" },
            self.max_abs_error,
            self.max_rel_error
        )?;
        if self.max_rule_mismatch > 0.0 {
            write!(
                f,
                "; value and recorded backward rules differ by up to {:.3e}",
                self.max_rule_mismatch
            )?;
        }
        if let Some((i, j)) = self.worst {
            let a = self.analytic[i].to_vec()[j];
            let n = self.numeric[i].to_vec()[j];
            write!(
                f,
                "; worst at input {i}, element {j}: analytic {a:.9e}, numeric {n:.9e}"
            )?;
        }
        Ok(())
    }
}

/// A deterministic projection vector: values in [0.5, 1.5) with varying
/// signs, so no output element is weighted zero.
fn projection(n: usize, salt: u64) -> Vec<f64> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ salt;
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 40) as f64 / (1u64 << 24) as f64;
            let sign = if i % 3 == 2 { -1.0 } else { 1.0 };
            sign * (0.5 + u)
        })
        .collect()
}

fn project<'t>(out: Var<'t, f64>, salt: u64) -> Result<Var<'t, f64>> {
    let shape = out.shape();
    let r = Tensor::from_vec(projection(shape.iter().product(), salt), &shape)?;
    out.mul(out.constant(r))?.sum_all()
}

/// Checks `f`'s gradients at `inputs` with the default options
/// (`eps = 1e-6`, `atol = 1e-5`, `rtol = 1e-3`).
///
/// ```
/// use tapegrad_autograd::gradcheck;
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3])?;
/// let report = gradcheck(|_tape, v| v[0].tanh()?.mul(v[0]), &[x])?;
/// assert!(report.passed, "{report}");
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// Whatever `f` returns, or a backward failure.
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<GradcheckReport>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradcheck`] with explicit options.
///
/// # Errors
/// Whatever `f` returns, or a backward failure.
pub fn gradcheck_with<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: GradcheckOptions,
) -> Result<GradcheckReport>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    let inputs: Vec<Tensor<f64>> = inputs.iter().map(Tensor::to_contiguous).collect();
    let eval = |xs: &[Tensor<f64>]| -> Result<f64> {
        let tape = Tape::<f64>::new();
        let vars: Vec<Var<'_, f64>> = xs.iter().map(|x| tape.leaf(x.clone())).collect();
        let l = project(f(&tape, &vars)?, 0)?;
        l.item()
    };
    // Analytic.
    let tape = Tape::<f64>::new();
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let l = project(f(&tape, &vars)?, 0)?;
    let grads = tape.backward(l)?;
    let analytic: Vec<Tensor<f64>> = vars.iter().map(|&v| grads.get_or_zeros(v)).collect();
    let recorded = tape.grad_graph(&[l], &vars)?;
    let mut max_rule_mismatch = 0.0f64;
    let mut rules_agree = true;
    for (a, r) in analytic.iter().zip(&recorded) {
        let r = r.map_or_else(|| Tensor::zeros(a.dims()), |r| r.value());
        for (x, y) in a.to_vec().into_iter().zip(r.to_vec()) {
            let d = (x - y).abs();
            // NaN on both sides is agreement; NaN on one is not.
            let d = if x.is_nan() && y.is_nan() {
                0.0
            } else if d.is_nan() {
                f64::INFINITY
            } else {
                d
            };
            max_rule_mismatch = max_rule_mismatch.max(d);
            rules_agree &= d <= 1e-9 * (1.0 + y.abs());
        }
    }
    // Numeric, one element at a time.
    let mut numeric = Vec::with_capacity(inputs.len());
    for i in 0..inputs.len() {
        let base = inputs[i].to_vec();
        let mut g = vec![0.0; base.len()];
        for j in 0..base.len() {
            let mut xs = inputs.clone();
            let mut v = base.clone();
            v[j] = base[j] + opts.eps;
            xs[i] = Tensor::from_vec(v.clone(), inputs[i].dims())?;
            let up = eval(&xs)?;
            v[j] = base[j] - opts.eps;
            xs[i] = Tensor::from_vec(v, inputs[i].dims())?;
            let down = eval(&xs)?;
            g[j] = (up - down) / (2.0 * opts.eps);
        }
        numeric.push(Tensor::from_vec(g, inputs[i].dims())?);
    }
    // Compare.
    let mut report = GradcheckReport {
        passed: rules_agree,
        max_rule_mismatch,
        max_abs_error: 0.0,
        max_rel_error: 0.0,
        worst: None,
        analytic,
        numeric,
    };
    let mut worst_ratio = -1.0;
    for i in 0..inputs.len() {
        let (a, n) = (report.analytic[i].to_vec(), report.numeric[i].to_vec());
        for j in 0..a.len() {
            let err = (a[j] - n[j]).abs();
            let err = if err.is_nan() { f64::INFINITY } else { err };
            let tol = opts.atol + opts.rtol * n[j].abs();
            report.max_abs_error = report.max_abs_error.max(err);
            if n[j].abs() > opts.atol {
                report.max_rel_error = report.max_rel_error.max(err / n[j].abs());
            }
            if err > tol {
                report.passed = false;
            }
            let ratio = err / tol;
            if ratio > worst_ratio {
                worst_ratio = ratio;
                report.worst = Some((i, j));
            }
        }
    }
    Ok(report)
}

/// Checks the gradients of `f`'s gradients (second order): the gradient
/// `∇L` is recorded with `create_graph`, projected to a scalar, and that
/// scalar is checked with [`gradcheck`]. This exercises every backward rule's
/// own backward rule.
///
/// ```
/// use tapegrad_autograd::gradcheck_second_order;
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::from_vec(vec![0.3, -0.7], &[2])?;
/// let report = gradcheck_second_order(|_t, v| v[0].sigmoid(), &[x])?;
/// assert!(report.passed, "{report}");
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
///
/// # Errors
/// Whatever `f` returns, or a backward failure.
pub fn gradcheck_second_order<F>(f: F, inputs: &[Tensor<f64>]) -> Result<GradcheckReport>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    gradcheck(
        |tape, vars| {
            let l = project(f(tape, vars)?, 0)?;
            let grads = tape.grad_graph(&[l], vars)?;
            let mut total: Option<Var<'_, f64>> = None;
            for (k, g) in grads.into_iter().enumerate() {
                if let Some(g) = g {
                    let term = project(g, 1 + k as u64)?;
                    total = Some(match total {
                        None => term,
                        Some(t) => t.add(term)?,
                    });
                }
            }
            Ok(total.unwrap_or_else(|| tape.constant(Tensor::scalar(0.0))))
        },
        inputs,
    )
}
