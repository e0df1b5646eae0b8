//! Graphviz DOT output: micrograd's drawing as text. Each value is a record
//! `{ title | id shape | data … | grad … }`; a value computed by an op gets
//! a small ellipse with the op's name in front of it.

use std::fmt::Write as _;

use super::{BoxKind, DrawOptions, GBox};

/// Escapes text for a record label: quotes, backslashes and the record
/// syntax characters `{ } | < >`.
pub(crate) fn escape_record(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' | '{' | '}' | '|' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for an ordinary quoted DOT string.
fn escape_str(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) fn render(boxes: &[GBox], opts: &DrawOptions) -> String {
    let mut out = String::new();
    out.push_str("digraph tape {\n");
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [fontname=\"monospace\", fontsize=10];\n");
    if let Some(t) = &opts.title {
        let _ = writeln!(out, "  label=\"{}\";\n  labelloc=t;", escape_str(t));
    }
    for (i, b) in boxes.iter().enumerate() {
        let is_op = matches!(b.kind, BoxKind::Op | BoxKind::Group);
        let title = if is_op {
            b.name.clone().unwrap_or_default()
        } else {
            b.title()
        };
        let mut fields: Vec<String> = Vec::new();
        if !title.is_empty() {
            fields.push(escape_record(&title));
        }
        fields.extend(b.lines.iter().map(|l| escape_record(l)));
        let fill = match b.kind {
            BoxKind::Param => "#dbeafe",
            BoxKind::Leaf => "#dcfce7",
            BoxKind::Const => "#f3f4f6",
            BoxKind::Op => "#ffffff",
            BoxKind::Group => "#fef3c7",
        };
        let pen = if b.is_root { ", penwidth=2" } else { "" };
        let _ = writeln!(
            out,
            "  n{i} [shape=record, style=filled, fillcolor=\"{fill}\"{pen}, label=\"{{ {} }}\"];",
            fields.join(" | ")
        );
        if is_op {
            let _ = writeln!(
                out,
                "  n{i}_op [shape=ellipse, label=\"{}\", tooltip=\"{}\"];",
                escape_str(&b.op),
                escape_str(&b.tooltip)
            );
            let _ = writeln!(out, "  n{i}_op -> n{i};");
            for &j in &b.inputs {
                let _ = writeln!(out, "  n{j} -> n{i}_op;");
            }
        }
    }
    out.push_str("}\n");
    out
}
