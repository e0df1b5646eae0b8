//! Printing the tape for people: a numbered table of nodes and a narrated
//! backward pass.
//!
//! - [`Tape`]'s `Display` (also [`Tape::table`]) prints one line per node in
//!   recording order: the id (`%0003`), a marker (`P` parameter, `L` leaf
//!   that needs a gradient, `C` constant, blank for an op result), the name
//!   the user gave it, the op with its parameters, the input ids, the output
//!   shape and a value summary. [`Tape::table_with_grads`] adds the gradient.
//! - [`Tape::format_trace`] narrates a [`BackwardTrace`]: for each step, the
//!   gradient that arrived (and, when several ops used the value, the sum it
//!   is made of), the op's derivative rule, and what was sent to each input,
//!   so that `∂L/∂w = Σ ∂L/∂z · ∂z/∂w` can be followed number by number.
//!
//! Everything printed is deterministic: numbers are shown with four
//! significant digits (see [`fmt_num`]), tensors of at most six elements in
//! full and larger ones as `min … mean … max …` (see [`summarize`]).
//!
//! ```
//! use tapegrad_autograd::Tape;
//! use tapegrad_tensor::Tensor;
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.leaf_named("x", Tensor::scalar(3.0));
//! let y = x.mul(x)?;
//! y.set_label("y");
//! let grads = tape.backward(y)?;
//! assert_eq!(
//!     tape.table_with_grads(&grads),
//!     "\
//! node  k name op   inputs       shape value grad
//! %0000 L x    leaf              []    3     6
//! %0001   y    mul  %0000, %0000 []    9     1
//! "
//! );
//! # Ok::<(), tapegrad_autograd::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use tapegrad_tensor::{Element, Tensor};

use crate::backward::{BackwardTrace, Gradients};
use crate::tape::{NodeInfo, NodeKind, Tape};

/// Tensors with at most this many elements are printed in full.
pub const FULL_VALUES_UP_TO: usize = 6;

/// A number with four significant digits, trailing zeros removed: `0.5`,
/// `-1`, `0.7311`, `1.235e-5` (scientific below `1e-4` and from `1e6`).
///
/// ```
/// use tapegrad_autograd::print::fmt_num;
/// assert_eq!(fmt_num(0.5), "0.5");
/// assert_eq!(fmt_num(-2.0), "-2");
/// assert_eq!(fmt_num(0.731058578630074), "0.7311");
/// assert_eq!(fmt_num(1234567.0), "1.235e6");
/// assert_eq!(fmt_num(-0.0), "0");
/// ```
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if !(1e-4..1e6).contains(&a) {
        return format!("{x:.3e}");
    }
    let mag = a.log10().floor() as i32;
    let decimals = (3 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A short description of a tensor's values: the values themselves for at
/// most [`FULL_VALUES_UP_TO`] elements (nested brackets by axis), otherwise
/// `min … mean … max …`.
///
/// ```
/// use tapegrad_autograd::print::summarize;
/// use tapegrad_tensor::Tensor;
/// let t = Tensor::<f64>::from_vec(vec![1.0, 2.5, -3.0, 4.0], &[2, 2])?;
/// assert_eq!(summarize(&t), "[[1, 2.5], [-3, 4]]");
/// let big = Tensor::<f64>::arange(0.0, 10.0, 1.0)?;
/// assert_eq!(summarize(&big), "min 0 mean 4.5 max 9");
/// # Ok::<(), tapegrad_tensor::Error>(())
/// ```
pub fn summarize<T: Element>(t: &Tensor<T>) -> String {
    let v: Vec<f64> = t.to_vec().into_iter().map(T::to_f64).collect();
    if t.ndim() == 0 {
        return fmt_num(v[0]);
    }
    if v.len() <= FULL_VALUES_UP_TO {
        let mut out = String::new();
        nested(&v, t.dims(), &mut out);
        return out;
    }
    if v.iter().any(|x| x.is_nan()) {
        let nans = v.iter().filter(|x| x.is_nan()).count();
        return format!("{nans} NaN of {}", v.len());
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    format!(
        "min {} mean {} max {}",
        fmt_num(min),
        fmt_num(mean),
        fmt_num(max)
    )
}

pub(crate) fn nested(v: &[f64], shape: &[usize], out: &mut String) {
    if shape.is_empty() {
        out.push_str(&fmt_num(v[0]));
        return;
    }
    out.push('[');
    let n = shape[0];
    let chunk = v.len().checked_div(n).unwrap_or(0);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        nested(&v[i * chunk..(i + 1) * chunk], &shape[1..], out);
    }
    out.push(']');
}

/// `[2, 3]`, or `[]` for a scalar.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// The op column: `name` or `name(params)`.
pub(crate) fn op_text<T: Element>(n: &NodeInfo<T>) -> String {
    if n.params.is_empty() {
        n.op.clone()
    } else {
        format!("{}({})", n.op, n.params)
    }
}

/// The marker column: `P` parameter, `L` leaf, `C` constant, blank for ops.
pub(crate) fn marker(kind: NodeKind) -> char {
    match kind {
        NodeKind::Param => 'P',
        NodeKind::Leaf => 'L',
        NodeKind::Constant => 'C',
        NodeKind::Op => ' ',
    }
}

/// `%0003`.
pub(crate) fn node_id(id: usize) -> String {
    format!("%{id:04}")
}

/// `%0003` or `%0003 name`.
pub(crate) fn node_ref<T: Element>(nodes: &[NodeInfo<T>], id: usize) -> String {
    match nodes.get(id).and_then(|n| n.label.as_deref()) {
        Some(l) => format!("{} {l}", node_id(id)),
        None => node_id(id),
    }
}

/// Lays out rows as left-aligned columns separated by one space, trimming
/// trailing blanks.
fn columns(rows: &[Vec<String>]) -> String {
    let ncol = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0usize; ncol];
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            width[c] = width[c].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c > 0 {
                line.push(' ');
            }
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = width[c] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl<T: Element> Tape<T> {
    /// The tape as a numbered table, one line per node in recording order
    /// (the same text as `Display`). Columns: id, marker (`P` parameter,
    /// `L` leaf, `C` constant, blank for op results), name, op and its
    /// parameters, input ids, output shape, value summary.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let w = tape.param("w", Tensor::from_vec(vec![0.5, -1.0], &[2])?);
    /// let x = tape.constant_named("x", Tensor::from_vec(vec![2.0, 3.0], &[2])?);
    /// let _z = w.mul(x)?.sum_all()?;
    /// assert_eq!(
    ///     tape.table(),
    ///     "\
    /// node  k name op            inputs       shape value
    /// %0000 P w    param                      [2]   [0.5, -1]
    /// %0001 C x    const                      [2]   [2, 3]
    /// %0002        mul           %0000, %0001 [2]   [1, -3]
    /// %0003        sum(axes=[0]) %0002        []    -2
    /// "
    /// );
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    pub fn table(&self) -> String {
        self.render_table(None)
    }

    /// [`table`](Self::table) with a last column for the gradient from
    /// `grads` (`-` where none reached the node).
    pub fn table_with_grads(&self, grads: &Gradients<T>) -> String {
        self.render_table(Some(grads))
    }

    fn render_table(&self, grads: Option<&Gradients<T>>) -> String {
        let nodes = self.nodes();
        let mut rows = Vec::with_capacity(nodes.len() + 1);
        let mut header: Vec<String> = ["node", "k", "name", "op", "inputs", "shape", "value"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if grads.is_some() {
            header.push("grad".into());
        }
        rows.push(header);
        for n in &nodes {
            let inputs = if n.inputs.len() > 4 {
                let first: Vec<String> = n.inputs[..3].iter().map(|&i| node_id(i)).collect();
                format!("{}, … ({} inputs)", first.join(", "), n.inputs.len())
            } else {
                let all: Vec<String> = n.inputs.iter().map(|&i| node_id(i)).collect();
                all.join(", ")
            };
            let mut row = vec![
                node_id(n.id),
                marker(n.kind).to_string(),
                n.label.clone().unwrap_or_default(),
                op_text(n),
                inputs,
                fmt_shape(n.value.dims()),
                summarize(&n.value),
            ];
            if let Some(g) = grads {
                row.push(g.get_id(n.id).map_or_else(|| "-".into(), summarize));
            }
            rows.push(row);
        }
        columns(&rows)
    }

    /// The backward pass in `trace` (from [`Tape::backward_traced`]) told
    /// step by step, with the numbers.
    ///
    /// Each step is one node, in the order backward visited them (reverse
    /// recording order). It shows the gradient `∂L/∂out` that arrived at the
    /// node (as a sum over the ops that used it, when there are several),
    /// the op's declared derivative rule, and the gradient `∂L/∂in` sent to
    /// each input. When the shapes allow, each sent gradient is also written
    /// as the product `∂L/∂out · ∂out/∂in` (the local derivative recovered
    /// by division). A last section lists the gradients that reached the
    /// leaves, which is what `backward` returns.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf_named("x", Tensor::scalar(0.5));
    /// let y = x.tanh()?;
    /// let (_grads, trace) = tape.backward_traced(y)?;
    /// let text = tape.format_trace(&trace);
    /// assert!(text.contains("d tanh(x)/dx = 1 - tanh(x)²"));
    /// assert!(text.contains("∂L/∂%0000 x = 0.7864"));
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    pub fn format_trace(&self, trace: &BackwardTrace<T>) -> String {
        let parts = self.trace_sections(trace);
        let mut out = parts.intro;
        for step in &parts.steps {
            out.push('\n');
            out.push_str(step);
        }
        if let Some(leaves) = parts.leaves {
            out.push('\n');
            out.push_str(&leaves);
        }
        out
    }

    /// The sections of [`format_trace`](Self::format_trace)'s text: the
    /// introduction, one block per step and the leaves' summary; the text is
    /// these joined by blank lines. The explorer page shows the same blocks.
    pub(crate) fn trace_sections(&self, trace: &BackwardTrace<T>) -> TraceSections {
        let nodes = self.nodes();
        let mut intro = String::new();
        let Some(first) = trace.steps.first() else {
            intro.push_str("backward pass: no steps (the root is a leaf or needs no gradient)\n");
            return TraceSections {
                intro,
                steps: Vec::new(),
                leaves: None,
            };
        };
        let _ = writeln!(
            intro,
            "backward pass from {}: {} steps, seed ∂L/∂L = 1",
            node_ref(&nodes, first.node),
            trace.steps.len()
        );
        intro.push_str("each step: ∂L/∂in = ∂L/∂out · ∂out/∂in (chain rule), summed over uses\n");
        let mut steps = Vec::with_capacity(trace.steps.len());
        // What each node received, from which op, in the order it arrived.
        let mut received: BTreeMap<usize, Vec<(usize, Tensor<T>)>> = BTreeMap::new();
        for (k, step) in trace.steps.iter().enumerate() {
            let mut out = String::new();
            let args: Vec<String> = step
                .sent
                .iter()
                .map(|(i, _)| node_ref(&nodes, *i))
                .collect();
            let params = nodes.get(step.node).map(|n| n.params.clone());
            let op = match params.as_deref() {
                Some(p) if !p.is_empty() => format!("{}({})", step.op, p),
                _ => step.op.clone(),
            };
            let _ = writeln!(
                out,
                "[{}] {} = {op} of {}",
                k + 1,
                node_ref(&nodes, step.node),
                args.join(", ")
            );
            let incoming = received.remove(&step.node).unwrap_or_default();
            let _ = writeln!(
                out,
                "    in    ∂L/∂{} = {}",
                node_id(step.node),
                sum_text(&step.grad_output, &incoming)
            );
            match &step.formula {
                Some(f) => {
                    let _ = writeln!(out, "    rule  {f}");
                }
                None => out.push_str("    rule  (the op declares no formula)\n"),
            }
            let targets: Vec<String> = step
                .sent
                .iter()
                .map(|(i, _)| format!("∂L/∂{}", node_ref(&nodes, *i)))
                .collect();
            let w = targets.iter().map(|s| s.chars().count()).max().unwrap_or(0);
            for ((input, g), target) in step.sent.iter().zip(&targets) {
                let pad = " ".repeat(w - target.chars().count());
                match g {
                    Some(g) => {
                        let local = local_factor(&step.grad_output, g)
                            .map(|l| format!("  = {} · {}", factor(&step.grad_output), paren(l)))
                            .unwrap_or_default();
                        let _ = writeln!(out, "    sent  {target}{pad} = {}{local}", summarize(g));
                        received
                            .entry(*input)
                            .or_default()
                            .push((step.node, g.clone()));
                    }
                    None => {
                        let _ = writeln!(out, "    sent  {target}{pad}   (needs no gradient)");
                    }
                }
            }
            steps.push(out);
        }
        let leaves = (!received.is_empty()).then(|| {
            let mut out = String::new();
            out.push_str("at the leaves (what backward returns):\n");
            let rows: Vec<Vec<String>> = received
                .iter()
                .map(|(&id, parts)| {
                    let total = parts
                        .iter()
                        .skip(1)
                        .fold(parts[0].1.clone(), |acc, (_, g)| add_or_keep(&acc, g));
                    vec![
                        format!("    ∂L/∂{}", node_ref(&nodes, id)),
                        format!("= {}", sum_text(&total, parts)),
                    ]
                })
                .collect();
            out.push_str(&columns(&rows));
            out
        });
        TraceSections {
            intro,
            steps,
            leaves,
        }
    }
}

/// [`Tape::format_trace`]'s text in parts (see `trace_sections`).
pub(crate) struct TraceSections {
    /// The first two lines.
    pub intro: String,
    /// One block per backward step, each ending in a newline.
    pub steps: Vec<String>,
    /// The gradients at the leaves, if any reached one.
    pub leaves: Option<String>,
}

/// A factor in a printed product: negative numbers in parentheses.
fn factor<T: Element>(t: &Tensor<T>) -> String {
    paren(summarize(t))
}

fn paren(s: String) -> String {
    if s.starts_with('-') {
        format!("({s})")
    } else {
        s
    }
}

fn add_or_keep<T: Element>(a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    a.add(b).unwrap_or_else(|_| a.clone())
}

/// `total   (from %0005)`, or `a + b = total   (from %0005, %0007)` when
/// the gradient was accumulated from several uses; `(seed)` when nothing
/// was received (the root).
fn sum_text<T: Element>(total: &Tensor<T>, parts: &[(usize, Tensor<T>)]) -> String {
    let from: Vec<String> = parts.iter().map(|(i, _)| node_id(*i)).collect();
    match parts.len() {
        0 => format!("{}   (seed)", summarize(total)),
        1 => format!("{}   (from {})", summarize(total), from[0]),
        _ => {
            let terms: Vec<String> = parts.iter().map(|(_, g)| summarize(g)).collect();
            format!(
                "{} = {}   (from {})",
                terms.join(" + "),
                summarize(total),
                from.join(", ")
            )
        }
    }
}

/// The local derivative `sent / incoming`, elementwise, when that is
/// meaningful: the incoming gradient is one non-zero number, or has the
/// sent gradient's shape with no zeros, and the result is small enough to
/// print in full.
fn local_factor<T: Element>(incoming: &Tensor<T>, sent: &Tensor<T>) -> Option<String> {
    if sent.numel() > FULL_VALUES_UP_TO {
        return None;
    }
    let g: Vec<f64> = incoming.to_vec().into_iter().map(T::to_f64).collect();
    let s: Vec<f64> = sent.to_vec().into_iter().map(T::to_f64).collect();
    let local: Vec<f64> = if g.len() == 1 && g[0] != 0.0 {
        s.iter().map(|x| x / g[0]).collect()
    } else if incoming.dims() == sent.dims() && g.iter().all(|&x| x != 0.0) {
        s.iter().zip(&g).map(|(x, y)| x / y).collect()
    } else {
        return None;
    };
    let t = Tensor::<f64>::from_vec(local, sent.dims()).ok()?;
    Some(summarize(&t))
}

impl<T: Element> fmt::Display for Tape<T> {
    /// The numbered table of [`Tape::table`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let cases = [
            (1.0, "1"),
            (0.1, "0.1"),
            (-0.04, "-0.04"),
            (0.19661193324148185, "0.1966"),
            (12.3456, "12.35"),
            (9999.6, "10000"),
            (0.99996, "1"),
            (1e-5, "1.000e-5"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, s) in cases {
            assert_eq!(fmt_num(x), s, "{x}");
        }
    }

    #[test]
    fn summaries() {
        assert_eq!(summarize(&Tensor::<f32>::scalar(0.25)), "0.25");
        assert_eq!(summarize(&Tensor::<f32>::zeros(&[0])), "[]");
        let t = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 2, 3]).unwrap();
        assert_eq!(summarize(&t), "[[[1, 2, 3], [4, 5, 6]]]");
        let mut v = vec![1.0; 8];
        v[3] = f64::NAN;
        let t = Tensor::<f64>::from_vec(v, &[8]).unwrap();
        assert_eq!(summarize(&t), "1 NaN of 8");
    }
}
