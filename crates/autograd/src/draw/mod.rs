//! Drawing the tape as a graph: Graphviz DOT text and a self-contained SVG
//! picture rendered here, in pure Rust (no Graphviz needed).
//!
//! ```
//! use tapegrad_autograd::Tape;
//! use tapegrad_tensor::Tensor;
//! let tape = Tape::<f64>::new();
//! let w = tape.param("w", Tensor::from_vec(vec![0.5, -1.0], &[2])?);
//! let x = tape.constant_named("x", Tensor::from_vec(vec![2.0, 3.0], &[2])?);
//! let y = w.mul(x)?.sum_all()?.tanh()?;
//! let grads = tape.backward(y)?;
//! let dot = tape.to_dot_with_grads(&grads);   // for `dot -Tsvg`
//! let svg = tape.to_svg_with_grads(&grads);   // open in a browser
//! assert!(dot.starts_with("digraph tape {"));
//! assert!(svg.starts_with("<svg"));
//! # let dir = std::env::temp_dir();
//! std::fs::write(dir.join("tape.svg"), svg).unwrap();
//! # Ok::<(), tapegrad_autograd::Error>(())
//! ```
//!
//! # The explorer page
//!
//! [`Tape::explorer_html`] (and [`Tape::write_explorer`]) wrap the SVG
//! drawing in one self-contained HTML page that steps through the forward
//! pass and then the backward pass one chain-rule step at a time, with the
//! numbers of [`Tape::format_trace`], and shows any node's value, gradient
//! and derivative rule on a click. Nothing is fetched: the script and style
//! are inline, written for this crate.
//!
//! # What is drawn
//!
//! One box per tape node, in the style of micrograd's drawing: the op (or
//! `param`/`leaf`/`const` and the node's name), the id and shape, the value
//! (`data`) and, when gradients are given, the gradient (`grad`), with
//! tensors summarised as in [`print`](crate::print). Edges go from inputs
//! to the op that used them.
//!
//! # Large graphs
//!
//! When the tape has more than [`DrawOptions::max_nodes`] nodes (60 by
//! default), repeated structure is collapsed, in two passes, so that graphs
//! of a few hundred nodes stay readable:
//!
//! 1. **Chains.** An op joins the box of its input when that input is its
//!    only op input and has no other user, unless the op is a `matmul` (which
//!    starts a new box: in a network, one box per layer). Parameters and
//!    constants used only inside one box are folded into it and listed under
//!    `uses`. A box shows its op sequence (`matmul → add → tanh`), its id
//!    range and the value and gradient of its last node.
//! 2. **Repeats.** Then a box that is the only user of the previous box and
//!    has the same op sequence and shapes is merged into it, and the box
//!    shows `×k` (k identical layers in a row).
//!
//! Boxes never merge across a node used by several ops, so the drawing
//! keeps every branch of the graph. A graph with more than `max_nodes` boxes
//! after both passes is drawn as it is.
//!
//! # Layout (SVG)
//!
//! A node's column is its depth, the longest path from a leaf; leaves are
//! moved right, next to their first user. Within a column, boxes are sorted
//! to sit near the mean height of their inputs (then of their users, then of
//! their inputs again), and edges are cubic curves from the right side of an
//! input to the left side of its user.

mod dot;
mod html;
pub use html::MAX_DRAWN_BOXES;
mod svg;

use std::collections::BTreeSet;

use tapegrad_tensor::Element;

use crate::backward::Gradients;
use crate::print::{fmt_shape, node_id, op_text, summarize};
use crate::tape::{NodeInfo, NodeKind, Tape};

/// Options for [`Tape::to_dot_with`] and [`Tape::to_svg_with`].
#[derive(Clone, Debug)]
pub struct DrawOptions {
    /// Above this many nodes, collapse chains and repeated layers (see the
    /// [module docs](self)). Default 60.
    pub max_nodes: usize,
    /// A title written above the graph. Default none.
    pub title: Option<String>,
    /// Longest text line in a box, in characters; longer lines are cut with
    /// `…`. Default 44.
    pub max_line: usize,
}

impl Default for DrawOptions {
    fn default() -> Self {
        DrawOptions {
            max_nodes: 60,
            title: None,
            max_line: 44,
        }
    }
}

/// What a box stands for (decides its colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BoxKind {
    Param,
    Leaf,
    Const,
    Op,
    Group,
}

/// One drawn box: one node, or several collapsed into one.
#[derive(Clone, Debug)]
pub(crate) struct GBox {
    pub kind: BoxKind,
    /// The op part (`tanh`, `matmul → add`, `×3 matmul → add → tanh`), or
    /// for leaves `param`/`leaf`/`const`.
    pub op: String,
    /// The name (label) of the output node, if any.
    pub name: Option<String>,
    /// Lines under the title: ids and shape, uses, data, grad.
    pub lines: Vec<String>,
    /// Longer text for the SVG tooltip (formula, full op list).
    pub tooltip: String,
    /// Boxes whose output this box uses (sorted, no duplicates).
    pub inputs: Vec<usize>,
    /// Whether this box holds the last node of the tape.
    pub is_root: bool,
    /// The tape nodes this box stands for (ops, then folded leaves).
    pub members: Vec<usize>,
}

impl GBox {
    /// `name = op`, `op` or `name (param)`.
    pub fn title(&self) -> String {
        match (&self.name, self.kind) {
            (Some(n), BoxKind::Param | BoxKind::Leaf | BoxKind::Const) => {
                format!("{n} ({})", self.op)
            }
            (Some(n), _) => format!("{n} = {}", self.op),
            (None, _) => self.op.clone(),
        }
    }
}

/// A unit while collapsing: the nodes it holds (in id order), its op
/// sequence, and how many identical layers it stands for.
struct Unit {
    members: Vec<usize>,
    folded: Vec<usize>,
    seq: Vec<String>,
    shapes: Vec<Vec<usize>>,
    repeat: usize,
}

/// Builds the boxes for `nodes`, collapsing as described in the module
/// docs when there are more than `opts.max_nodes`.
pub(crate) fn build_boxes<T: Element>(
    nodes: &[NodeInfo<T>],
    grads: Option<&Gradients<T>>,
    opts: &DrawOptions,
) -> Vec<GBox> {
    let n = nodes.len();
    let mut users: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for v in nodes {
        for &i in &v.inputs {
            users[i].insert(v.id);
        }
    }
    // unit[id] = index of the unit holding node id.
    let mut unit_of: Vec<usize> = (0..n).collect();
    let mut units: Vec<Option<Unit>> = nodes
        .iter()
        .map(|v| {
            Some(Unit {
                members: vec![v.id],
                folded: Vec::new(),
                seq: vec![v.op.clone()],
                shapes: vec![v.value.dims().to_vec()],
                repeat: 1,
            })
        })
        .collect();
    let collapse = n > opts.max_nodes;
    if collapse {
        // Pass 1: chains.
        for v in nodes {
            if v.kind != NodeKind::Op || v.op == "matmul" {
                continue;
            }
            let op_inputs: BTreeSet<usize> = v
                .inputs
                .iter()
                .copied()
                .filter(|&i| nodes[i].kind == NodeKind::Op)
                .collect();
            if op_inputs.len() != 1 {
                continue;
            }
            let u = *op_inputs.iter().next().expect("one element");
            if users[u].len() != 1 {
                continue;
            }
            let (from, to) = (unit_of[v.id], unit_of[u]);
            let moved = units[from].take().expect("live unit");
            let dest = units[to].as_mut().expect("live unit");
            dest.members.extend(moved.members);
            dest.seq.extend(moved.seq);
            dest.shapes.extend(moved.shapes);
            unit_of[v.id] = to;
        }
        // Fold parameters and constants used only inside one unit.
        for v in nodes {
            if !matches!(v.kind, NodeKind::Param | NodeKind::Constant) || users[v.id].is_empty() {
                continue;
            }
            let owners: BTreeSet<usize> = users[v.id].iter().map(|&u| unit_of[u]).collect();
            if owners.len() != 1 {
                continue;
            }
            let to = *owners.iter().next().expect("one element");
            if units[to].as_ref().is_some_and(|u| u.members.len() > 1) {
                units[v.id] = None;
                units[to].as_mut().expect("live unit").folded.push(v.id);
                unit_of[v.id] = to;
            }
        }
        merge_repeats(nodes, &users, &mut units, &mut unit_of);
    }
    // Number the live units and make boxes.
    let mut index = vec![usize::MAX; n];
    let mut k = 0;
    for (i, u) in units.iter().enumerate() {
        if u.is_some() {
            index[i] = k;
            k += 1;
        }
    }
    let box_of = |id: usize| index[unit_of[id]];
    units
        .iter()
        .flatten()
        .map(|u| make_box(nodes, grads, u, &box_of, opts))
        .collect()
}

/// A layer's op sequence and output shapes.
type Signature = (Vec<String>, Vec<Vec<usize>>);

/// Pass 2: merges a unit into the previous one when it is that unit's only
/// user, its only producer, and has the same op sequence and shapes.
fn merge_repeats<T: Element>(
    nodes: &[NodeInfo<T>],
    users: &[BTreeSet<usize>],
    units: &mut [Option<Unit>],
    unit_of: &mut [usize],
) {
    let ids: Vec<usize> = (0..units.len()).filter(|&i| units[i].is_some()).collect();
    // The first (prototype) layer's signature for each run.
    let mut proto: Vec<Option<Signature>> = vec![None; units.len()];
    for &i in &ids {
        let u = units[i].as_ref().expect("live");
        proto[i] = Some((u.seq.clone(), u.shapes.clone()));
    }
    for &b in &ids {
        let Some(ub) = units[b].as_ref() else {
            continue;
        };
        // Units feeding b (other than b itself).
        let mut feeders = BTreeSet::new();
        for &m in &ub.members {
            for &i in &nodes[m].inputs {
                if unit_of[i] != b {
                    feeders.insert(unit_of[i]);
                }
            }
        }
        let op_feeders: Vec<usize> = feeders
            .iter()
            .copied()
            .filter(|&f| {
                units[f]
                    .as_ref()
                    .is_some_and(|u| u.members.iter().any(|&m| nodes[m].kind == NodeKind::Op))
            })
            .collect();
        if op_feeders.len() != 1 {
            continue;
        }
        let a = op_feeders[0];
        // Every user of a's nodes outside a must be in b.
        let ua = units[a].as_ref().expect("live");
        let only_b = ua
            .members
            .iter()
            .flat_map(|&m| users[m].iter())
            .all(|&x| unit_of[x] == a || unit_of[x] == b);
        let same = proto[a].as_ref() == proto[b].as_ref();
        if !only_b || !same {
            continue;
        }
        let moved = units[b].take().expect("live");
        for &m in moved.members.iter().chain(&moved.folded) {
            unit_of[m] = a;
        }
        // Ids already pointing at b (merged earlier) now point at a too.
        for x in unit_of.iter_mut() {
            if *x == b {
                *x = a;
            }
        }
        let dest = units[a].as_mut().expect("live");
        dest.members.extend(moved.members);
        dest.folded.extend(moved.folded);
        dest.repeat += moved.repeat;
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn make_box<T: Element>(
    nodes: &[NodeInfo<T>],
    grads: Option<&Gradients<T>>,
    u: &Unit,
    box_of: &dyn Fn(usize) -> usize,
    opts: &DrawOptions,
) -> GBox {
    let out = *u.members.last().expect("a unit has a member");
    let node = &nodes[out];
    let me = box_of(out);
    let mut inputs: Vec<usize> = u
        .members
        .iter()
        .flat_map(|&m| nodes[m].inputs.iter().map(|&i| box_of(i)))
        .filter(|&b| b != me)
        .collect();
    inputs.sort_unstable();
    inputs.dedup();
    let single = u.members.len() == 1 && u.folded.is_empty();
    let kind = if !single {
        BoxKind::Group
    } else {
        match node.kind {
            NodeKind::Param => BoxKind::Param,
            NodeKind::Leaf => BoxKind::Leaf,
            NodeKind::Constant => BoxKind::Const,
            NodeKind::Op => BoxKind::Op,
        }
    };
    let shape = fmt_shape(node.value.dims());
    let mut lines = Vec::new();
    let (op, tooltip) = if single {
        lines.push(format!("{} {shape}", node_id(out)));
        let tip = match &node.formula {
            Some(f) => format!("{}: {f}", op_text(node)),
            None => op_text(node),
        };
        (op_text(node), tip)
    } else {
        let per_layer = u.seq.join(" → ");
        let op = if u.repeat > 1 {
            format!("×{} {per_layer}", u.repeat)
        } else {
            per_layer.clone()
        };
        let first = u.members[0];
        lines.push(format!(
            "{}…{} ({} ops) {shape}",
            node_id(first),
            node_id(out),
            u.members.len()
        ));
        if !u.folded.is_empty() {
            let names: Vec<String> = u
                .folded
                .iter()
                .map(|&f| {
                    let v = &nodes[f];
                    let name = v.label.clone().unwrap_or_else(|| node_id(f));
                    format!("{name}{}", fmt_shape(v.value.dims()))
                })
                .collect();
            lines.push(format!("uses {}", names.join(" ")));
        }
        let tip = u
            .members
            .iter()
            .map(|&m| format!("{} {}", node_id(m), op_text(&nodes[m])))
            .collect::<Vec<_>>()
            .join("\n");
        (op, tip)
    };
    lines.push(format!("data {}", summarize(&node.value)));
    if let Some(g) = grads {
        let gs = g.get_id(out).map_or_else(|| "-".into(), summarize);
        lines.push(format!("grad {gs}"));
    }
    let lines = lines.iter().map(|l| cut(l, opts.max_line)).collect();
    GBox {
        kind,
        op: cut(&op, opts.max_line),
        name: node.label.clone(),
        lines,
        tooltip,
        inputs,
        is_root: out + 1 == nodes.len(),
        members: u.members.iter().chain(&u.folded).copied().collect(),
    }
}

impl<T: Element> Tape<T> {
    /// The tape as Graphviz DOT text (render with `dot -Tsvg`): value
    /// records with the data, op nodes between them.
    pub fn to_dot(&self) -> String {
        self.to_dot_with(None, &DrawOptions::default())
    }

    /// [`to_dot`](Self::to_dot) with each value's gradient.
    pub fn to_dot_with_grads(&self, grads: &Gradients<T>) -> String {
        self.to_dot_with(Some(grads), &DrawOptions::default())
    }

    /// DOT text with explicit options (collapsing large graphs, title).
    pub fn to_dot_with(&self, grads: Option<&Gradients<T>>, opts: &DrawOptions) -> String {
        let boxes = build_boxes(&self.nodes(), grads, opts);
        dot::render(&boxes, opts)
    }

    /// The tape as a standalone SVG picture (see the [module docs](crate::draw)
    /// for the layout); write it to a `.svg` file and open it in a browser.
    pub fn to_svg(&self) -> String {
        self.to_svg_with(None, &DrawOptions::default())
    }

    /// [`to_svg`](Self::to_svg) with each value's gradient.
    pub fn to_svg_with_grads(&self, grads: &Gradients<T>) -> String {
        self.to_svg_with(Some(grads), &DrawOptions::default())
    }

    /// SVG with explicit options (collapsing large graphs, title).
    pub fn to_svg_with(&self, grads: Option<&Gradients<T>>, opts: &DrawOptions) -> String {
        let boxes = build_boxes(&self.nodes(), grads, opts);
        svg::render(&boxes, opts)
    }
}
