//! Tests of the graph drawings (issue 5): DOT text pinned for a tiny graph,
//! SVG checked to be well-formed XML, and large graphs collapsed.

use tapegrad_autograd::{DrawOptions, Result, Tape, Var};
use tapegrad_tensor::Tensor;

/// A minimal XML well-formedness check: every tag is closed in order,
/// attributes are quoted, entities are known, and there is one root.
fn check_xml(s: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s.trim();
    let mut roots = 0;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix('<') {
            let end = tail.find('>').expect("unclosed '<'");
            let tag = &tail[..end];
            rest = &tail[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().expect("close without open");
                assert_eq!(open, name.trim(), "mismatched tag");
                continue;
            }
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "bad tag name {name:?}"
            );
            // Attributes: name="value" pairs, values free of '<' and raw '&'.
            let mut attrs = body[name.len()..].trim();
            while !attrs.is_empty() {
                let eq = attrs.find('=').expect("attribute without '='");
                let (key, after) = (attrs[..eq].trim(), &attrs[eq + 1..]);
                assert!(
                    !key.is_empty() && !key.contains(' '),
                    "bad attribute {key:?}"
                );
                let after = after.strip_prefix('"').expect("unquoted attribute");
                let close = after.find('"').expect("unterminated attribute");
                check_text(&after[..close]);
                attrs = after[close + 1..].trim();
            }
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            assert!(!stack.is_empty(), "text outside the root");
            check_text(&rest[..end]);
            rest = &rest[end..];
        }
    }
    assert!(stack.is_empty(), "unclosed tags {stack:?}");
    assert_eq!(roots, 1);
}

fn check_text(t: &str) {
    assert!(!t.contains('<') && !t.contains('>'), "raw bracket in {t:?}");
    let mut parts = t.split('&');
    parts.next();
    for p in parts {
        let ent = &p[..p.find(';').expect("'&' without ';'")];
        assert!(
            ["amp", "lt", "gt", "quot", "#39"].contains(&ent),
            "unknown entity {ent}"
        );
    }
}

fn tiny(tape: &Tape<f64>) -> Result<Var<'_, f64>> {
    let w = tape.param("w<1>", Tensor::from_vec(vec![0.5, -1.0], &[2])?);
    let x = tape.constant_named("x & \"y\"", Tensor::from_vec(vec![2.0, 3.0], &[2])?);
    let y = w.mul(x)?.sum_all()?.tanh()?;
    y.set_label("out|{1}");
    Ok(y)
}

#[test]
fn dot_for_a_tiny_graph() {
    let tape = Tape::<f64>::new();
    let y = tiny(&tape).unwrap();
    let grads = tape.backward(y).unwrap();
    let dot = tape.to_dot_with_grads(&grads);
    let expected = r##"digraph tape {
  rankdir=LR;
  node [fontname="monospace", fontsize=10];
  n0 [shape=record, style=filled, fillcolor="#dbeafe", label="{ w\<1\> (param) | %0000 [2] | data [0.5, -1] | grad [0.1413, 0.212] }"];
  n1 [shape=record, style=filled, fillcolor="#f3f4f6", label="{ x & \"y\" (const) | %0001 [2] | data [2, 3] | grad - }"];
  n2 [shape=record, style=filled, fillcolor="#ffffff", label="{ %0002 [2] | data [1, -3] | grad [0.07065, 0.07065] }"];
  n2_op [shape=ellipse, label="mul", tooltip="mul: d(a·b)/da = b, d(a·b)/db = a"];
  n2_op -> n2;
  n0 -> n2_op;
  n1 -> n2_op;
  n3 [shape=record, style=filled, fillcolor="#ffffff", label="{ %0003 [] | data -2 | grad 0.07065 }"];
  n3_op [shape=ellipse, label="sum(axes=[0])", tooltip="sum(axes=[0]): d Σx/dx_i = 1 (g is copied to every summed element)"];
  n3_op -> n3;
  n2 -> n3_op;
  n4 [shape=record, style=filled, fillcolor="#ffffff", penwidth=2, label="{ out\|\{1\} | %0004 [] | data -0.964 | grad 1 }"];
  n4_op [shape=ellipse, label="tanh", tooltip="tanh: d tanh(x)/dx = 1 - tanh(x)²"];
  n4_op -> n4;
  n3 -> n4_op;
}
"##;
    assert_eq!(dot, expected);
}

#[test]
fn svg_is_well_formed_and_escaped() {
    let tape = Tape::<f64>::new();
    let y = tiny(&tape).unwrap();
    let grads = tape.backward(y).unwrap();
    let svg = tape.to_svg_with(
        Some(&grads),
        &DrawOptions {
            title: Some("a <tiny> & 'odd' graph".into()),
            ..DrawOptions::default()
        },
    );
    check_xml(&svg);
    assert!(svg.contains("w&lt;1&gt; (param)"));
    assert!(svg.contains("x &amp; &quot;y&quot; (const)"));
    assert!(svg.contains("a &lt;tiny&gt; &amp; &#39;odd&#39; graph"));
    // One box (a <g> with a <title>) per node, one edge per input.
    assert_eq!(svg.matches("<title>").count(), 5);
    assert_eq!(svg.matches("marker-end").count(), 4);
    if let Some(dir) = std::env::var_os("TAPEGRAD_DRAW_DIR") {
        std::fs::write(std::path::Path::new(&dir).join("tiny.svg"), &svg).unwrap();
    }
}

/// A deep MLP on a batch: `depth` layers of matmul → add → tanh.
fn deep_mlp(tape: &Tape<f64>, depth: usize) -> Result<Var<'_, f64>> {
    let mut h = tape.constant_named("x", Tensor::uniform_seeded(&[4, 3], -1.0, 1.0, 1));
    for l in 0..depth {
        let fan_in = if l == 0 { 3 } else { 5 };
        let w = tape.param(
            &format!("w{l}"),
            Tensor::uniform_seeded(&[fan_in, 5], -0.5, 0.5, 10 + l as u64),
        );
        let b = tape.param(&format!("b{l}"), Tensor::zeros(&[5]));
        h = h.matmul(w)?.add(b)?.tanh()?;
    }
    let loss = h.square()?.mean_all()?;
    loss.set_label("loss");
    Ok(loss)
}

#[test]
fn large_graphs_collapse_repeated_layers() {
    let tape = Tape::<f64>::new();
    let loss = deep_mlp(&tape, 40).unwrap();
    assert!(tape.len() > 200, "{}", tape.len());
    let grads = tape.backward(loss).unwrap();
    let svg = tape.to_svg_with_grads(&grads);
    check_xml(&svg);
    let boxes = svg.matches("<title>").count();
    if let Some(dir) = std::env::var_os("TAPEGRAD_DRAW_DIR") {
        std::fs::write(std::path::Path::new(&dir).join("deep.svg"), &svg).unwrap();
    }
    assert!(boxes <= 10, "{boxes} boxes");
    assert!(svg.contains("×39 matmul → add → tanh"), "{svg}");
    if let Some(dir) = std::env::var_os("TAPEGRAD_DRAW_DIR") {
        std::fs::write(std::path::Path::new(&dir).join("deep.svg"), &svg).unwrap();
    }
    // Below the threshold nothing is collapsed.
    let small = Tape::<f64>::new();
    let loss = deep_mlp(&small, 3).unwrap();
    let svg = small.to_svg_with(None, &DrawOptions::default());
    assert_eq!(svg.matches("<title>").count(), small.len());
    let _ = loss;
    // The DOT text collapses the same way.
    let dot = tape.to_dot_with_grads(&grads);
    assert!(dot.contains("×39 matmul → add → tanh"));
}
