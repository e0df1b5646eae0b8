//! The tape explorer: one self-contained HTML page (inline script and
//! style, nothing fetched) that shows the graph, steps through the forward
//! pass and then the backward pass one chain-rule step at a time, and
//! shows any node's value, gradient and derivative rule on a click.
//!
//! Everything the page prints is computed here, with the same helpers as
//! the printed tape and [`Tape::format_trace`]: the page's script only
//! shows and highlights. Each backward step's panel is exactly that step's
//! block of `format_trace`.
//!
//! Large tapes stay fast: the graph is the collapsed drawing of
//! [`Tape::to_svg_with`] and is left out above [`MAX_DRAWN_BOXES`] boxes;
//! the node list is virtualised (only the rows in view exist in the page);
//! full tensor values are embedded only up to a budget, summaries always.

use std::fmt::Write as _;
use std::path::Path;

use tapegrad_tensor::{Element, Tensor};

use super::{build_boxes, svg, DrawOptions};
use crate::backward::{BackwardTrace, Gradients};
use crate::print::{fmt_shape, nested, node_ref, op_text, summarize};
use crate::tape::{NodeInfo, NodeKind, Tape};

/// Above this many boxes (after collapsing) the page shows no graph, only
/// the node list and the panels: laying out and painting thousands of
/// boxes would make the page slow to open and unreadable anyway.
pub const MAX_DRAWN_BOXES: usize = 400;

/// A tensor's values are embedded in full (for the page's "all values"
/// button) when it has at most this many elements...
const EXPAND_UP_TO: usize = 1024;
/// ...and while the page holds fewer than this many embedded values.
const EXPAND_BUDGET: usize = 200_000;

const STYLE: &str = include_str!("explorer.css");
const SCRIPT: &str = include_str!("explorer.js");

/// A JSON string literal. `<` is escaped too, so that no text can close
/// the `<script>` element the data sits in.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '<' => out.push_str("\\u003c"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".into(), json_str)
}

fn json_ids(ids: &[usize]) -> String {
    let parts: Vec<String> = ids.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// Every value of `t` in nested brackets, or `None` past the limits.
fn full_values<T: Element>(t: &Tensor<T>, budget: &mut usize) -> Option<String> {
    let n = t.numel();
    if n <= crate::print::FULL_VALUES_UP_TO || n > EXPAND_UP_TO || n > *budget {
        return None;
    }
    *budget -= n;
    let v: Vec<f64> = t.to_vec().into_iter().map(T::to_f64).collect();
    let mut out = String::new();
    nested(&v, t.dims(), &mut out);
    Some(out)
}

fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Param => "param",
        NodeKind::Leaf => "leaf",
        NodeKind::Constant => "const",
        NodeKind::Op => "op",
    }
}

/// One forward step's panel text: the op with its inputs' values, then the
/// value it made (summaries as in the printed tape).
fn forward_text<T: Element>(nodes: &[NodeInfo<T>], k: usize, total: usize, n: usize) -> String {
    let v = &nodes[n];
    let args: Vec<String> = v.inputs.iter().map(|&i| node_ref(nodes, i)).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "[{k}/{total}] {} = {} of {}",
        node_ref(nodes, n),
        op_text(v),
        args.join(", ")
    );
    for &i in &v.inputs {
        let _ = writeln!(
            out,
            "    in    {} = {}",
            node_ref(nodes, i),
            summarize(&nodes[i].value)
        );
    }
    let _ = writeln!(
        out,
        "    out   {} = {}   {}",
        node_ref(nodes, n),
        summarize(&v.value),
        fmt_shape(v.value.dims())
    );
    out
}

impl<T: Element> Tape<T> {
    /// The tape explorer for a backward pass: one self-contained HTML page
    /// (no network, no server; open the file in any current browser).
    ///
    /// It shows the graph as [`to_svg_with`](Self::to_svg_with) draws it;
    /// buttons and keys (→/← or n/p, Home, End) step through the forward
    /// pass one op at a time and then through the backward pass one
    /// chain-rule step at a time, highlighting the node and the edges in
    /// play, with the numbers of [`format_trace`](Self::format_trace);
    /// clicking a node (in the graph or the list) shows its op, shape,
    /// value, gradient, derivative rule and inputs.
    ///
    /// `grads` and `trace` come from [`backward_traced`](Self::backward_traced)
    /// on this tape (from another tape, the page's numbers are meaningless,
    /// but nothing panics). Large tensors are summarised; the page embeds
    /// their full values (for its "all values" button) up to 1,024 elements
    /// per tensor and 200,000 in all. Above [`MAX_DRAWN_BOXES`](crate::draw::MAX_DRAWN_BOXES)
    /// boxes after collapsing, the graph is left out and the node list
    /// remains.
    ///
    /// ```
    /// use tapegrad_autograd::{DrawOptions, Tape};
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf_named("x", Tensor::scalar(0.5));
    /// let y = x.mul(x)?.tanh()?;
    /// let (grads, trace) = tape.backward_traced(y)?;
    /// let page = tape.explorer_html(&grads, &trace, &DrawOptions::default());
    /// assert!(page.starts_with("<!DOCTYPE html>"));
    /// assert!(!page.contains("src=\"http")); // nothing is fetched
    /// # let dir = std::env::temp_dir();
    /// std::fs::write(dir.join("explorer.html"), page).unwrap();
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    pub fn explorer_html(
        &self,
        grads: &Gradients<T>,
        trace: &BackwardTrace<T>,
        opts: &DrawOptions,
    ) -> String {
        let nodes = self.nodes();
        let boxes = build_boxes(&nodes, Some(grads), opts);
        let drawn = boxes.len() <= MAX_DRAWN_BOXES;
        let mut box_of = vec![usize::MAX; nodes.len()];
        for (b, gb) in boxes.iter().enumerate() {
            for &m in &gb.members {
                box_of[m] = b;
            }
        }
        let sections = self.trace_sections(trace);
        let mut budget = EXPAND_BUDGET;
        let mut data = String::with_capacity(256 * nodes.len() + 1024);
        data.push('{');
        let title = opts.title.clone().unwrap_or_else(|| "tape explorer".into());
        let _ = write!(data, "\"title\":{},", json_str(&title));
        let _ = write!(data, "\"drawn\":{drawn},\"boxes\":{},", boxes.len());
        data.push_str("\"nodes\":[");
        for (k, v) in nodes.iter().enumerate() {
            if k > 0 {
                data.push(',');
            }
            let grad = grads.get_id(v.id);
            let _ = write!(
                data,
                "{{\"id\":{},\"ref\":{},\"kind\":\"{}\",\"name\":{},\"op\":{},\"formula\":{},\
                 \"inputs\":{},\"shape\":{},\"value\":{},\"grad\":{},\"full_value\":{},\
                 \"full_grad\":{},\"box\":{}}}",
                v.id,
                json_str(&node_ref(&nodes, v.id)),
                kind_name(v.kind),
                json_opt(v.label.as_deref()),
                json_str(&op_text(v)),
                json_opt(v.formula.as_deref()),
                json_ids(&v.inputs),
                json_str(&fmt_shape(v.value.dims())),
                json_str(&summarize(&v.value)),
                json_opt(grad.map(summarize).as_deref()),
                json_opt(full_values(&v.value, &mut budget).as_deref()),
                json_opt(grad.and_then(|g| full_values(g, &mut budget)).as_deref()),
                if drawn && box_of[k] != usize::MAX {
                    box_of[k].to_string()
                } else {
                    "null".into()
                },
            );
        }
        data.push_str("],\"forward\":[");
        let ops: Vec<usize> = nodes
            .iter()
            .filter(|v| v.kind == NodeKind::Op)
            .map(|v| v.id)
            .collect();
        for (k, &n) in ops.iter().enumerate() {
            if k > 0 {
                data.push(',');
            }
            let _ = write!(
                data,
                "{{\"node\":{n},\"inputs\":{},\"text\":{}}}",
                json_ids(&nodes[n].inputs),
                json_str(&forward_text(&nodes, k + 1, ops.len(), n))
            );
        }
        data.push_str("],\"backward\":[");
        for (k, (step, text)) in trace.steps.iter().zip(&sections.steps).enumerate() {
            if k > 0 {
                data.push(',');
            }
            let to: Vec<usize> = step
                .sent
                .iter()
                .filter(|(_, g)| g.is_some())
                .map(|(i, _)| *i)
                .collect();
            let _ = write!(
                data,
                "{{\"node\":{},\"inputs\":{},\"text\":{}}}",
                step.node,
                json_ids(&to),
                json_str(text)
            );
        }
        let _ = write!(
            data,
            "],\"intro\":{},\"leaves\":{}}}",
            json_str(&sections.intro),
            json_opt(sections.leaves.as_deref())
        );
        let graph = if drawn {
            svg::render(
                &boxes,
                &DrawOptions {
                    title: None,
                    ..opts.clone()
                },
            )
        } else {
            format!(
                "<p class=\"note\">The graph has {} boxes after collapsing (more than {}), so it \
                 is not drawn: pick nodes from the list, or step through the passes.</p>",
                boxes.len(),
                MAX_DRAWN_BOXES
            )
        };
        let mut page = String::with_capacity(data.len() + graph.len() + 16_384);
        page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        let _ = writeln!(page, "<title>{}</title>", svg::escape_xml(&title));
        let _ = writeln!(page, "<style>\n{STYLE}</style></head><body>");
        let _ = writeln!(
            page,
            "<header><h1>{}</h1><div class=\"controls\">\
             <button id=\"first\" title=\"Home\">« first</button>\
             <button id=\"prev\" title=\"← or p\">◀ prev</button>\
             <button id=\"next\" title=\"→ or n\">next ▶</button>\
             <button id=\"last\" title=\"End\">last »</button>\
             <span id=\"where\"></span></div>\
             <div class=\"stats\">{} nodes · {} ops · {} backward steps · {} boxes drawn</div></header>",
            svg::escape_xml(&title),
            nodes.len(),
            ops.len(),
            trace.steps.len(),
            if drawn { boxes.len() } else { 0 }
        );
        page.push_str("<main><section id=\"graph\">\n");
        page.push_str(&graph);
        page.push_str(
            "</section>\n<aside><div id=\"step\" class=\"panel\"><h2 id=\"step-title\"></h2>\
             <pre id=\"step-text\"></pre><pre id=\"step-leaves\"></pre></div>\
             <div id=\"node\" class=\"panel\"><h2 id=\"node-title\">click a node</h2>\
             <dl id=\"node-info\"></dl></div>\
             <div class=\"panel\"><h2>nodes</h2><div id=\"list\"><div id=\"list-inner\"></div></div></div>\
             </aside></main>\n",
        );
        let _ = writeln!(
            page,
            "<script type=\"application/json\" id=\"tape-data\">{data}</script>"
        );
        let _ = writeln!(page, "<script>\n{SCRIPT}</script>\n</body></html>");
        page
    }

    /// Writes [`explorer_html`](Self::explorer_html) (default options) to
    /// `path`.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn write_explorer(
        &self,
        path: impl AsRef<Path>,
        grads: &Gradients<T>,
        trace: &BackwardTrace<T>,
    ) -> std::io::Result<()> {
        std::fs::write(
            path,
            self.explorer_html(grads, trace, &DrawOptions::default()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_cannot_close_the_script() {
        assert_eq!(
            json_str("a\"b\\c\n</script>"),
            "\"a\\\"b\\\\c\\n\\u003c/script>\""
        );
        assert_eq!(json_str("\u{1}"), "\"\\u0001\"");
    }

    #[test]
    fn the_page_holds_every_trace_block_and_no_outside_reference() {
        let tape = Tape::<f64>::new();
        let x = tape.leaf_named("x", Tensor::scalar(0.5));
        let y = x.mul(x).unwrap().tanh().unwrap();
        let (grads, trace) = tape.backward_traced(y).unwrap();
        let page = tape.explorer_html(&grads, &trace, &DrawOptions::default());
        let printed = tape.format_trace(&trace);
        for block in printed.split("\n\n").skip(1) {
            // Each step block appears verbatim (JSON-escaped) in the data.
            let escaped = json_str(block.trim_end());
            assert!(
                page.contains(&escaped[1..escaped.len() - 1]),
                "missing {block}"
            );
        }
        assert!(!page.contains("src=\"http") && !page.contains("<link"));
        assert!(page.contains("<svg"));
        assert_eq!(page.matches("<script").count(), 2);
    }

    #[test]
    fn large_graphs_are_listed_not_drawn() {
        // 500 independent products summed in a chain: nothing collapses.
        let tape = Tape::<f32>::new();
        let w = tape.param("w", Tensor::scalar(0.5));
        let mut acc = tape.leaf(Tensor::scalar(0.0));
        for k in 0..500 {
            let c = tape.constant(Tensor::scalar(k as f32));
            acc = acc.add(c.mul(w).unwrap()).unwrap();
        }
        let (grads, trace) = tape.backward_traced(acc).unwrap();
        let page = tape.explorer_html(&grads, &trace, &DrawOptions::default());
        assert!(!page.contains("<svg"));
        assert!(page.contains("is not drawn"));
        assert!(page.contains("\"drawn\":false"));
    }

    #[test]
    fn big_tensors_are_summarised_with_full_values_on_demand() {
        let tape = Tape::<f64>::new();
        let x = tape.leaf_named("x", Tensor::arange(0.0, 10.0, 1.0).unwrap());
        let y = x.square().unwrap().sum_all().unwrap();
        let (grads, trace) = tape.backward_traced(y).unwrap();
        let page = tape.explorer_html(&grads, &trace, &DrawOptions::default());
        assert!(page.contains("\"value\":\"min 0 mean 4.5 max 9\""));
        assert!(page.contains("\"full_value\":\"[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\""));
        assert!(page.contains("\"full_grad\":\"[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]\""));
    }
}
