//! Watching gradients while a model trains: a [`TrainingRecorder`] that
//! [`Trainer::fit_recorded`](crate::Trainer::fit_recorded) fills step by
//! step with per-layer statistics, and that writes them as a
//! self-contained HTML page of curves (no network, no server).
//!
//! Per recorded step, for each layer (the parameters that share a name up
//! to the last dot: `0.weight` and `0.bias` make layer `0`):
//!
//! - **gradient norm** `‖∂L/∂θ‖` over the layer's parameters, as the
//!   optimiser receives them (after the hook of
//!   [`Trainer::fit_with_hook`](crate::Trainer::fit_with_hook), so after
//!   any clipping it does);
//! - **update / weight ratio** `‖θ_after − θ_before‖ / ‖θ_before‖`: how
//!   much one step moves the layer (about `1e-3` is the usual healthy
//!   order; much less means the layer barely learns);
//! - **inactive share** of the activation that follows the layer, read
//!   from the forward pass on the tape: for `relu`, the share of units
//!   (last axis) that are zero for every row of the batch (dead on this
//!   batch); for `sigmoid`, the share of outputs below 0.01 or above 0.99,
//!   where the derivative `σ(1 − σ)` is under 0.01 (saturated); for
//!   `tanh`, the share with `|y| > 0.99` (derivative under 0.02). Layers
//!   without an activation have none.
//!
//! Plus the training loss of every recorded step.
//!
//! ```
//! use tapegrad_nn::{data::{Dataset, Target}, Activation, Mlp, Objective, Progress, Sgd, Trainer};
//! use tapegrad_nn::record::TrainingRecorder;
//! use tapegrad_tensor::Tensor;
//! let x = Tensor::<f32>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2])?;
//! let data = Dataset::new(x, Target::Classes(vec![0, 1, 1, 0]))?;
//! let mut model = Mlp::builder(&[2, 8, 8, 2]).activation(Activation::Sigmoid).seed(3).build()?;
//! let mut rec = TrainingRecorder::new();
//! Trainer::new(Objective::CrossEntropy)
//!     .epochs(5)
//!     .batch_size(2)
//!     .progress(Progress::Never)
//!     .fit_recorded(&mut model, &mut Sgd::new(0.1), &data, None, &mut rec)?;
//! assert_eq!(rec.steps().len(), 10);
//! let names: Vec<&str> = rec.layers().iter().map(|l| l.name.as_str()).collect();
//! assert_eq!(names, ["0", "2", "4"]);
//! assert_eq!(rec.layers()[0].activation.as_deref(), Some("sigmoid"));
//! assert_eq!(rec.layers()[0].grad_norm.len(), 10);
//! # let dir = std::env::temp_dir();
//! rec.write_html(dir.join("training.html"), "XOR, sigmoid")?;
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```

use std::path::Path;

use tapegrad_autograd::{NodeKind, Tape};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::grads::ParamGrads;
use crate::module::Module;

const SCRIPT: &str = include_str!("record.js");

/// One layer's curves, one value per recorded step.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStats {
    /// The parameters' common name prefix (`0` for `0.weight`, `0.bias`).
    pub name: String,
    /// `‖∂L/∂θ‖` over the layer's parameters.
    pub grad_norm: Vec<f64>,
    /// `‖θ_after − θ_before‖ / ‖θ_before‖` (NaN when the layer's weights are
    /// all zero before the step).
    pub update_ratio: Vec<f64>,
    /// The activation seen after this layer on the tape (`relu`, `sigmoid`
    /// or `tanh`), if any.
    pub activation: Option<String>,
    /// Dead (relu) or saturated (sigmoid, tanh) share, in `[0, 1]`; empty
    /// when the layer has no activation. See the [module docs](self).
    pub inactive: Vec<f64>,
}

impl LayerStats {
    /// The mean gradient norm over the recorded steps (NaN if none).
    pub fn mean_grad_norm(&self) -> f64 {
        mean(&self.grad_norm)
    }

    /// The mean update / weight ratio over the recorded steps, ignoring
    /// NaN entries (NaN if none is left).
    pub fn mean_update_ratio(&self) -> f64 {
        let v: Vec<f64> = self
            .update_ratio
            .iter()
            .copied()
            .filter(|x| !x.is_nan())
            .collect();
        mean(&v)
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Per-layer statistics over training steps; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct TrainingRecorder {
    every: usize,
    steps: Vec<usize>,
    loss: Vec<f64>,
    layers: Vec<LayerStats>,
    /// Set between the forward pass and the optimiser step of a recorded
    /// step: activation stats by layer, and the weights before the step.
    pending_activations: Vec<(String, String, f64)>,
    pending_weights: Vec<(String, Vec<f64>)>,
}

impl Default for TrainingRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainingRecorder {
    /// A recorder that records every step.
    pub fn new() -> Self {
        TrainingRecorder {
            every: 1,
            steps: Vec::new(),
            loss: Vec::new(),
            layers: Vec::new(),
            pending_activations: Vec::new(),
            pending_weights: Vec::new(),
        }
    }

    /// Records only steps `1, 1 + n, 1 + 2n, ...` (for long runs: each
    /// recorded step copies the weights once). `n = 0` counts as 1.
    pub fn every(mut self, n: usize) -> Self {
        self.every = n.max(1);
        self
    }

    /// The optimiser steps recorded (from 1).
    pub fn steps(&self) -> &[usize] {
        &self.steps
    }

    /// The training loss at each recorded step.
    pub fn loss(&self) -> &[f64] {
        &self.loss
    }

    /// The layers, in the order the model lists its parameters.
    pub fn layers(&self) -> &[LayerStats] {
        &self.layers
    }

    /// The layer named `name`, if any.
    pub fn layer(&self, name: &str) -> Option<&LayerStats> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Whether step `step` (from 1) is recorded.
    pub(crate) fn wants(&self, step: usize) -> bool {
        (step - 1).is_multiple_of(self.every)
    }

    /// Reads the activations of the forward pass on `tape`, before the
    /// trainer clears it.
    pub(crate) fn observe_tape<T: Element>(&mut self, tape: &Tape<T>) {
        let nodes = tape.nodes();
        self.pending_activations.clear();
        for v in &nodes {
            if !matches!(v.op.as_str(), "relu" | "sigmoid" | "tanh") {
                continue;
            }
            let Some(layer) = producing_layer(&nodes, v.id) else {
                continue;
            };
            let share = inactive_share(&v.op, &v.value);
            self.pending_activations.push((layer, v.op.clone(), share));
        }
    }

    /// Copies the weights before the optimiser step.
    pub(crate) fn before_step<T: Element, M: Module<T> + ?Sized>(&mut self, model: &M) {
        self.pending_weights = model
            .parameters()
            .into_iter()
            .map(|(name, p)| {
                (
                    name,
                    p.value().to_vec().into_iter().map(T::to_f64).collect(),
                )
            })
            .collect();
    }

    /// Adds one recorded step, after the optimiser step.
    pub(crate) fn after_step<T: Element, M: Module<T> + ?Sized>(
        &mut self,
        model: &M,
        grads: &ParamGrads<T>,
        step: usize,
        loss: f64,
    ) {
        // Sums of squares by layer: gradient, update, weight.
        let mut sums: Vec<(String, f64, f64, f64)> = Vec::new();
        let params = model.parameters();
        for ((name, p), (_, before)) in params.iter().zip(&self.pending_weights) {
            let layer = layer_of(name);
            let k = match sums.iter().position(|s| s.0 == layer) {
                Some(k) => k,
                None => {
                    sums.push((layer.to_string(), 0.0, 0.0, 0.0));
                    sums.len() - 1
                }
            };
            if let Some(g) = grads.get(name) {
                sums[k].1 += g.to_vec().iter().map(|x| x.to_f64().powi(2)).sum::<f64>();
            }
            let after = p.value().to_vec();
            for (a, b) in after.iter().zip(before) {
                sums[k].2 += (a.to_f64() - b).powi(2);
                sums[k].3 += b * b;
            }
        }
        for (layer, g2, u2, w2) in sums {
            let k = match self.layers.iter().position(|l| l.name == layer) {
                Some(k) => k,
                None => {
                    // A layer that first appears late starts with NaN
                    // points, so every curve keeps one point per step.
                    let gap = vec![f64::NAN; self.steps.len()];
                    self.layers.push(LayerStats {
                        name: layer,
                        grad_norm: gap.clone(),
                        update_ratio: gap,
                        activation: None,
                        inactive: Vec::new(),
                    });
                    self.layers.len() - 1
                }
            };
            let l = &mut self.layers[k];
            l.grad_norm.push(g2.sqrt());
            l.update_ratio
                .push(if w2 > 0.0 { (u2 / w2).sqrt() } else { f64::NAN });
            let acts: Vec<&(String, String, f64)> = self
                .pending_activations
                .iter()
                .filter(|a| a.0 == l.name)
                .collect();
            if let Some(first) = acts.first() {
                if l.activation.is_none() {
                    l.activation = Some(first.1.clone());
                    l.inactive = vec![f64::NAN; self.steps.len()];
                }
                l.inactive
                    .push(acts.iter().map(|a| a.2).sum::<f64>() / acts.len() as f64);
            } else if l.activation.is_some() {
                l.inactive.push(f64::NAN);
            }
        }
        self.steps.push(step);
        self.loss.push(loss);
        // A layer without a gradient this step still gets a point.
        let n = self.steps.len();
        for l in &mut self.layers {
            for v in [&mut l.grad_norm, &mut l.update_ratio] {
                v.resize(n, f64::NAN);
            }
            if l.activation.is_some() {
                l.inactive.resize(n, f64::NAN);
            }
        }
        self.pending_activations.clear();
        self.pending_weights.clear();
    }

    /// The training page: the loss curve and, per layer, the gradient norm,
    /// the update / weight ratio (both on log scales) and the dead or
    /// saturated share, as one self-contained HTML file.
    pub fn to_html(&self, title: &str) -> String {
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name,
                    "grad_norm": finite_or_null(&l.grad_norm),
                    "update_ratio": finite_or_null(&l.update_ratio),
                    "activation": l.activation,
                    "inactive": finite_or_null(&l.inactive),
                })
            })
            .collect();
        let data = serde_json::json!({
            "title": title,
            "steps": self.steps,
            "loss": finite_or_null(&self.loss),
            "layers": layers,
        });
        // `<\/` keeps any text from closing the script element.
        let data = data.to_string().replace("</", "<\\/");
        let title = escape_html(title);
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
             <title>{title}</title>\n<style>\n{STYLE}</style></head><body>\n\
             <h1>{title}</h1><p id=\"summary\"></p><div id=\"charts\"></div>\n\
             <script type=\"application/json\" id=\"training-data\">{data}</script>\n\
             <script>\n{SCRIPT}</script>\n</body></html>\n"
        )
    }

    /// Writes [`to_html`](Self::to_html) to `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written; an invalid-argument error
    /// if no step was recorded.
    pub fn write_html(&self, path: impl AsRef<Path>, title: &str) -> Result<()> {
        let path = path.as_ref();
        if self.steps.is_empty() {
            return Err(Error::invalid(
                "TrainingRecorder::write_html",
                "no step was recorded: pass the recorder to Trainer::fit_recorded first",
            ));
        }
        std::fs::write(path, self.to_html(title)).map_err(|e| Error::io(path, e))
    }
}

const STYLE: &str = "body { font: 14px system-ui, sans-serif; margin: 16px; color: #111827; }
h1 { font-size: 18px; margin: 0 0 4px; }
h2 { font-size: 14px; margin: 0 0 4px; }
#charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px; }
.legend { font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 12px; max-width: 560px; }
.legend span::before { content: ''; display: inline-block; width: 12px; height: 3px;
  margin-right: 4px; vertical-align: middle; background: var(--c); }
svg text { font-size: 11px; fill: #4b5563; }
";

/// JSON has no NaN or infinity: such points become `null` (a gap).
fn finite_or_null(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().map(|x| x.is_finite().then_some(*x)).collect()
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `0.weight` → `0`; a name without a dot is its own layer.
fn layer_of(param: &str) -> &str {
    param.rsplit_once('.').map_or(param, |(layer, _)| layer)
}

/// The layer whose output feeds the activation at `id`: the nearest
/// parameter found walking back through the inputs (breadth first, within
/// a few ops, so that an activation is never charged to a layer far
/// upstream).
fn producing_layer<T: Element>(
    nodes: &[tapegrad_autograd::NodeInfo<T>],
    id: usize,
) -> Option<String> {
    let mut frontier = vec![id];
    for _ in 0..4 {
        let mut next = Vec::new();
        for &n in &frontier {
            for &i in &nodes[n].inputs {
                let v = &nodes[i];
                if v.kind == NodeKind::Param {
                    return v.label.as_deref().map(|l| layer_of(l).to_string());
                }
                if v.kind == NodeKind::Op && !matches!(v.op.as_str(), "relu" | "sigmoid" | "tanh") {
                    next.push(i);
                }
            }
        }
        frontier = next;
    }
    None
}

/// Dead share (relu: units zero on every row) or saturated share (sigmoid,
/// tanh: outputs where the derivative is nearly zero).
fn inactive_share<T: Element>(op: &str, y: &Tensor<T>) -> f64 {
    let v: Vec<f64> = y.to_vec().into_iter().map(T::to_f64).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    match op {
        "relu" => {
            let units = y.dims().last().copied().unwrap_or(1).max(1);
            let dead = (0..units)
                .filter(|&u| v.iter().skip(u).step_by(units).all(|&x| x <= 0.0))
                .count();
            dead as f64 / units as f64
        }
        "sigmoid" => {
            v.iter().filter(|&&x| !(0.01..=0.99).contains(&x)).count() as f64 / v.len() as f64
        }
        _ => v.iter().filter(|&&x| x.abs() > 0.99).count() as f64 / v.len() as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        // 3 rows × 2 units: unit 1 is zero on every row.
        let y = Tensor::<f64>::from_vec(vec![0.5, 0.0, 0.0, 0.0, 2.0, 0.0], &[3, 2]).unwrap();
        assert_eq!(inactive_share("relu", &y), 0.5);
        let s = Tensor::<f64>::from_vec(vec![0.001, 0.5, 0.995, 0.3], &[2, 2]).unwrap();
        assert_eq!(inactive_share("sigmoid", &s), 0.5);
        let t = Tensor::<f64>::from_vec(vec![-0.999, 0.5, 0.2, 0.3], &[2, 2]).unwrap();
        assert_eq!(inactive_share("tanh", &t), 0.25);
    }

    #[test]
    fn layer_names() {
        assert_eq!(layer_of("0.weight"), "0");
        assert_eq!(layer_of("encoder.3.bias"), "encoder.3");
        assert_eq!(layer_of("w"), "w");
    }

    #[test]
    fn sampled_steps_and_a_vanishing_sigmoid_stack() {
        use crate::data::{Dataset, Target};
        use crate::{Activation, Mlp, Objective, Progress, Sgd, Trainer};
        let x = Tensor::<f64>::uniform_seeded(&[32, 8], -1.0, 1.0, 3);
        let data = Dataset::new(x, Target::Classes((0..32).map(|i| i % 4).collect())).unwrap();
        let mut model = Mlp::<f64>::builder(&[8, 16, 16, 16, 16, 16, 4])
            .activation(Activation::Sigmoid)
            .seed(2)
            .build()
            .unwrap();
        let mut rec = TrainingRecorder::new().every(3);
        Trainer::new(Objective::CrossEntropy)
            .epochs(2)
            .batch_size(8)
            .progress(Progress::Never)
            .fit_recorded(&mut model, &mut Sgd::new(0.1), &data, None, &mut rec)
            .unwrap();
        assert_eq!(rec.steps(), [1, 4, 7]);
        assert_eq!(rec.loss().len(), 3);
        assert_eq!(rec.layers().len(), 6);
        for l in rec.layers() {
            assert_eq!(l.grad_norm.len(), 3, "{}", l.name);
            assert_eq!(l.update_ratio.len(), 3, "{}", l.name);
            assert!(l.grad_norm.iter().all(|g| g.is_finite() && *g > 0.0));
        }
        // Five sigmoids between the first layer and the loss: σ' ≤ 1/4 each.
        let first = rec.layers()[0].mean_grad_norm();
        let last = rec.layers()[5].mean_grad_norm();
        assert!(first / last < 1e-2, "{first} / {last}");
        assert_eq!(
            rec.layer("0").unwrap().activation.as_deref(),
            Some("sigmoid")
        );
        assert!(rec.layer("10").unwrap().activation.is_none());
    }

    #[test]
    fn an_sgd_update_is_lr_times_the_gradient() {
        use crate::data::{Dataset, Target};
        use crate::{Mlp, Module, Objective, Progress, Sgd, Trainer};
        let x = Tensor::<f64>::uniform_seeded(&[6, 3], -1.0, 1.0, 4);
        let data = Dataset::new(x, Target::Classes(vec![0, 1, 0, 1, 1, 0])).unwrap();
        let mut model = Mlp::<f64>::builder(&[3, 5, 2]).seed(1).build().unwrap();
        let norm = |m: &Mlp<f64>, layer: &str| -> f64 {
            m.parameters()
                .iter()
                .filter(|(n, _)| layer_of(n) == layer)
                .map(|(_, p)| p.value().to_vec().iter().map(|v| v * v).sum::<f64>())
                .sum::<f64>()
                .sqrt()
        };
        let before = [norm(&model, "0"), norm(&model, "2")];
        let mut rec = TrainingRecorder::new();
        Trainer::new(Objective::CrossEntropy)
            .max_steps(1)
            .batch_size(6)
            .progress(Progress::Never)
            .fit_recorded(&mut model, &mut Sgd::new(0.1), &data, None, &mut rec)
            .unwrap();
        // Plain SGD: ‖Δθ‖ = 0.1·‖∂L/∂θ‖, so ratio·‖θ‖ = 0.1·norm.
        for (l, b) in rec.layers().iter().zip(before) {
            let moved = l.update_ratio[0] * b;
            assert!(
                (moved - 0.1 * l.grad_norm[0]).abs() < 1e-12 * b.max(1.0),
                "{l:?}"
            );
        }
        assert_eq!(rec.layers()[0].activation.as_deref(), Some("relu"));
        assert_eq!(rec.layers()[0].inactive.len(), 1);
    }

    #[test]
    fn nothing_recorded_is_an_error() {
        let dir = std::env::temp_dir().join("tapegrad-record-empty.html");
        let e = TrainingRecorder::new().write_html(&dir, "t").unwrap_err();
        assert!(e.to_string().contains("fit_recorded"), "{e}");
    }

    #[test]
    fn titles_cannot_break_the_page() {
        let rec = TrainingRecorder::new();
        let page = rec.to_html("</script><b>");
        assert!(!page.contains("</script><b>"));
        assert_eq!(page.matches("</script>").count(), 2);
    }
}
