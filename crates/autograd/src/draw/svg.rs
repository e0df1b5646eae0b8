//! A self-contained SVG drawing with a simple layered layout (see the
//! [module docs](super) for the rules). Text is monospace, so box widths
//! can be computed from character counts without a font library.

use std::fmt::Write as _;

use super::{BoxKind, DrawOptions, GBox};

const CHAR_W: f64 = 7.2;
const LINE_H: f64 = 15.0;
const FONT: f64 = 12.0;
const PAD: f64 = 6.0;
const COL_GAP: f64 = 56.0;
const ROW_GAP: f64 = 16.0;
const MARGIN: f64 = 20.0;

/// Escapes text for SVG character data and attribute values.
pub(crate) fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline are not allowed in XML.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Positions of the boxes.
struct Placed {
    x: Vec<f64>,
    y: Vec<f64>,
    w: Vec<f64>,
    h: Vec<f64>,
    width: f64,
    height: f64,
}

fn box_size(b: &GBox) -> (f64, f64) {
    let chars = std::iter::once(b.title())
        .chain(b.lines.iter().cloned())
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1);
    let w = (chars as f64 * CHAR_W + 2.0 * PAD).max(60.0);
    let h = (1 + b.lines.len()) as f64 * LINE_H + 2.0 * PAD + 2.0;
    (w, h)
}

/// The layered layout: columns by depth, leaves next to their first user,
/// rows ordered by the heights of neighbours.
fn layout(boxes: &[GBox], top: f64) -> Placed {
    let n = boxes.len();
    // Depth: longest path from a leaf. Inputs always come earlier in tape
    // order, but compute by memoised recursion so no order is assumed.
    let mut depth = vec![usize::MAX; n];
    fn depth_of(i: usize, boxes: &[GBox], depth: &mut [usize]) -> usize {
        if depth[i] != usize::MAX {
            return depth[i];
        }
        depth[i] = 0; // guards against cycles, which cannot occur
        let d = boxes[i]
            .inputs
            .iter()
            .map(|&j| depth_of(j, boxes, depth) + 1)
            .max()
            .unwrap_or(0);
        depth[i] = d;
        d
    }
    for i in 0..n {
        depth_of(i, boxes, &mut depth);
    }
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, b) in boxes.iter().enumerate() {
        for &j in &b.inputs {
            users[j].push(i);
        }
    }
    // Leaves sit just left of their nearest user.
    for i in 0..n {
        if boxes[i].inputs.is_empty() {
            if let Some(d) = users[i].iter().map(|&u| depth[u]).min() {
                depth[i] = d.saturating_sub(1);
            }
        }
    }
    let ncol = depth.iter().max().map_or(0, |d| d + 1);
    let mut cols: Vec<Vec<usize>> = vec![Vec::new(); ncol];
    for i in 0..n {
        cols[depth[i]].push(i);
    }
    let sizes: Vec<(f64, f64)> = boxes.iter().map(box_size).collect();
    let mut col_x = Vec::with_capacity(ncol);
    let mut x = MARGIN;
    for col in &cols {
        col_x.push(x);
        let w = col.iter().map(|&i| sizes[i].0).fold(0.0, f64::max);
        x += w + COL_GAP;
    }
    let width = x - COL_GAP + MARGIN;
    let mut y = vec![0.0; n];
    // Initial stacking in tape order.
    for col in &cols {
        stack(col, &sizes, &mut y, top, |_| None);
    }
    let center = |y: &[f64], i: usize| y[i] + sizes[i].1 / 2.0;
    let mean = |y: &[f64], ids: &[usize]| -> Option<f64> {
        if ids.is_empty() {
            None
        } else {
            Some(ids.iter().map(|&j| center(y, j)).sum::<f64>() / ids.len() as f64)
        }
    };
    // Sweeps: towards inputs, towards users, towards inputs again.
    for pass in 0..3 {
        let order: Vec<usize> = if pass == 1 {
            (0..ncol).rev().collect()
        } else {
            (0..ncol).collect()
        };
        for c in order {
            let want: Vec<Option<f64>> = (0..n)
                .map(|i| {
                    if depth[i] != c {
                        None
                    } else if pass == 1 {
                        mean(&y, &users[i])
                    } else {
                        mean(&y, &boxes[i].inputs)
                    }
                })
                .collect();
            let mut col = cols[c].clone();
            col.sort_by(|&a, &b| {
                let ka = want[a].unwrap_or(center(&y, a));
                let kb = want[b].unwrap_or(center(&y, b));
                ka.total_cmp(&kb).then(a.cmp(&b))
            });
            stack(&col, &sizes, &mut y, top, |i| {
                want[i].map(|w| w - sizes[i].1 / 2.0)
            });
            cols[c] = col;
        }
    }
    let height = (0..n).map(|i| y[i] + sizes[i].1).fold(top, f64::max) + MARGIN;
    Placed {
        x: (0..n).map(|i| col_x[depth[i]]).collect(),
        y,
        w: sizes.iter().map(|s| s.0).collect(),
        h: sizes.iter().map(|s| s.1).collect(),
        width,
        height,
    }
}

/// Places a column top to bottom, each box at its wanted height if there
/// is room, else just below the previous one.
fn stack(
    col: &[usize],
    sizes: &[(f64, f64)],
    y: &mut [f64],
    top: f64,
    want: impl Fn(usize) -> Option<f64>,
) {
    let mut next = top;
    for &i in col {
        let at = want(i).map_or(next, |w| w.max(next));
        y[i] = at;
        next = at + sizes[i].1 + ROW_GAP;
    }
}

fn fill(kind: BoxKind) -> (&'static str, &'static str) {
    // (body, header band)
    match kind {
        BoxKind::Param => ("#eff6ff", "#bfdbfe"),
        BoxKind::Leaf => ("#f0fdf4", "#bbf7d0"),
        BoxKind::Const => ("#f9fafb", "#e5e7eb"),
        BoxKind::Op => ("#ffffff", "#fde68a"),
        BoxKind::Group => ("#fffbeb", "#fdba74"),
    }
}

pub(crate) fn render(boxes: &[GBox], opts: &DrawOptions) -> String {
    let legend_y = MARGIN + if opts.title.is_some() { 22.0 } else { 0.0 };
    let top = legend_y + 28.0;
    let p = layout(boxes, top);
    let width = p.width.max(560.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" \
         viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" \
         font-size=\"{FONT}\">",
        w = width,
        h = p.height
    );
    s.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#6b7280\"/></marker></defs>\n",
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{:.0}\" fill=\"#ffffff\"/>",
        p.height
    );
    if let Some(t) = &opts.title {
        let _ = writeln!(
            s,
            "<text x=\"{MARGIN}\" y=\"{:.1}\" font-size=\"15\" font-weight=\"bold\">{}</text>",
            MARGIN + 12.0,
            escape_xml(t)
        );
    }
    // Legend.
    let mut lx = MARGIN;
    for (kind, name) in [
        (BoxKind::Param, "param"),
        (BoxKind::Leaf, "leaf (input)"),
        (BoxKind::Const, "const"),
        (BoxKind::Op, "op"),
        (BoxKind::Group, "collapsed ops"),
    ] {
        let (_, band) = fill(kind);
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{legend_y:.1}\" width=\"12\" height=\"12\" fill=\"{band}\" stroke=\"#374151\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
            lx + 16.0,
            legend_y + 10.5
        );
        lx += 16.0 + (name.len() as f64 + 2.0) * CHAR_W;
    }
    // Edges first, so boxes paint over their ends.
    s.push_str("<g fill=\"none\" stroke=\"#6b7280\" stroke-width=\"1.2\">\n");
    for (i, b) in boxes.iter().enumerate() {
        for &j in &b.inputs {
            let (x1, y1) = (p.x[j] + p.w[j], p.y[j] + p.h[j] / 2.0);
            let (x2, y2) = (p.x[i], p.y[i] + p.h[i] / 2.0);
            let dx = ((x2 - x1) / 2.0).max(20.0);
            let _ = writeln!(
                s,
                "<path data-from=\"{j}\" data-to=\"{i}\" d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}\" marker-end=\"url(#arrow)\"/>",
                x1 + dx,
                x2 - dx
            );
        }
    }
    s.push_str("</g>\n");
    for (i, b) in boxes.iter().enumerate() {
        let (x, y, w, h) = (p.x[i], p.y[i], p.w[i], p.h[i]);
        let (body, band) = fill(b.kind);
        let stroke = if b.is_root { "3" } else { "1" };
        // The explorer page finds boxes by these attributes.
        let _ = writeln!(s, "<g class=\"box\" data-box=\"{i}\">");
        let _ = writeln!(s, "<title>{}</title>", escape_xml(&b.tooltip));
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"4\" fill=\"{body}\" stroke=\"#374151\" stroke-width=\"{stroke}\"/>"
        );
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{band}\"/>",
            x + 0.5,
            y + 0.5,
            w - 1.0,
            LINE_H + PAD
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
            x + PAD,
            y + PAD + LINE_H - 3.0,
            escape_xml(&b.title())
        );
        for (k, line) in b.lines.iter().enumerate() {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + PAD,
                y + PAD + (k + 2) as f64 * LINE_H,
                escape_xml(line)
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}
