//! A guided tour of the tape: one neuron, one gradient-descent step, a
//! finite-difference check, and a small MLP drawn as a graph.
//!
//! ```sh
//! cargo run --release --example tape_tour -- --out pictures
//! ```
//!
//! Pictures (`neuron.svg`, `mlp.svg`, and Graphviz `.dot` files) and the
//! tape explorer pages (`neuron.html`, `mlp.html`: open them in a browser
//! to step through both passes) go to
//! `--out DIR` (default: the current directory). The walk-through in
//! `docs/tutorial.md` explains every number printed here.

use std::path::PathBuf;

use tapegrad::autograd::print::fmt_num;
use tapegrad::autograd::{gradcheck, DrawOptions, Result, Tape, Var};
use tapegrad::nn::{loss, Activation, Linear, Module, Sequential};
use tapegrad::tensor::Tensor;

/// The neuron's loss: y = σ(w·x + b), L = (y − t)² (MSE on one sample).
fn neuron_loss<'t>(w: Var<'t, f64>, b: Var<'t, f64>) -> Result<Var<'t, f64>> {
    let tape = w.tape();
    let x = tape.constant_named("x", Tensor::from_vec(vec![1.5, 0.5], &[2])?);
    let t = tape.constant_named("t", Tensor::scalar(1.0));
    let z = w.mul(x)?.sum_all()?.add(b)?;
    z.set_label("z");
    let y = z.sigmoid()?;
    y.set_label("y");
    let loss = y.sub(t)?.square()?;
    loss.set_label("L");
    Ok(loss)
}

fn values(t: &Tensor<f64>) -> String {
    tapegrad::autograd::print::summarize(t)
}

fn part1(out: &std::path::Path) -> Result<(Tensor<f64>, Tensor<f64>)> {
    println!("== 1. One neuron: y = sigmoid(w·x + b), L = (y - t)², one gradient step\n");
    let tape = Tape::<f64>::new();
    let w = tape.param("w", Tensor::from_vec(vec![0.8, -0.4], &[2])?);
    let b = tape.param("b", Tensor::scalar(0.1));
    let loss = neuron_loss(w, b)?;
    println!("The forward pass, as recorded on the tape:\n");
    print!("{tape}");
    let (grads, trace) = tape.backward_traced(loss)?;
    println!("\nThe backward pass, one chain-rule step at a time:\n");
    print!("{}", tape.format_trace(&trace));
    println!("\nThe tape with gradients:\n");
    print!("{}", tape.table_with_grads(&grads));

    let lr = 0.5;
    let gw = grads.get_or_zeros(w);
    let gb = grads.get_or_zeros(b);
    let w_new = w.value().sub(&gw.mul_scalar(lr)?)?;
    let b_new = b.value().sub(&gb.mul_scalar(lr)?)?;
    println!("\nOne step of gradient descent, θ ← θ − α·∂L/∂θ with α = {lr}:");
    println!(
        "  w ← {} − {lr}·{} = {}",
        values(&w.value()),
        values(&gw),
        values(&w_new)
    );
    println!(
        "  b ← {} − {lr}·({}) = {}",
        values(&b.value()),
        values(&gb),
        values(&b_new)
    );
    let after = Tape::<f64>::new();
    let l2 = neuron_loss(
        after.param("w", w_new.clone()),
        after.param("b", b_new.clone()),
    )?;
    println!(
        "  loss before {} → after {}",
        fmt_num(loss.item()?),
        fmt_num(l2.item()?)
    );
    write(out, "neuron.svg", &tape.to_svg_with_grads(&grads));
    write(out, "neuron.dot", &tape.to_dot_with_grads(&grads));
    // The explorer: step through both passes in a browser, click any node.
    let opts = DrawOptions {
        title: Some("one neuron: y = sigmoid(w·x + b), L = (y − t)²".into()),
        ..DrawOptions::default()
    };
    write(
        out,
        "neuron.html",
        &tape.explorer_html(&grads, &trace, &opts),
    );
    Ok((w.value(), b.value()))
}

fn part2(w: &Tensor<f64>, b: &Tensor<f64>) -> Result<()> {
    println!("\n== 2. The same gradients by finite differences\n");
    let loss_at = |w: &Tensor<f64>, b: &Tensor<f64>| -> Result<f64> {
        let tape = Tape::<f64>::new();
        neuron_loss(tape.param("w", w.clone()), tape.param("b", b.clone()))?.item()
    };
    let tape = Tape::<f64>::new();
    let (wv, bv) = (tape.param("w", w.clone()), tape.param("b", b.clone()));
    let grads = tape.backward(neuron_loss(wv, bv)?)?;
    let eps = 1e-6;
    println!("  slope (L(θ+ε) − L(θ−ε)) / 2ε with ε = {eps}, next to the chain rule:");
    println!(
        "  {:<6} {:>14} {:>14} {:>10}",
        "θ", "chain rule", "numeric", "|diff|"
    );
    let names = ["w[0]", "w[1]", "b"];
    for (k, name) in names.iter().enumerate() {
        let (mut wp, mut wm, mut bp, mut bm) = (w.to_vec(), w.to_vec(), b.to_vec(), b.to_vec());
        let analytic = if k < 2 {
            wp[k] += eps;
            wm[k] -= eps;
            grads.get_or_zeros(wv).to_vec()[k]
        } else {
            bp[0] += eps;
            bm[0] -= eps;
            grads.get_or_zeros(bv).item()?
        };
        let up = loss_at(&Tensor::from_vec(wp, &[2])?, &Tensor::from_vec(bp, &[])?)?;
        let down = loss_at(&Tensor::from_vec(wm, &[2])?, &Tensor::from_vec(bm, &[])?)?;
        let numeric = (up - down) / (2.0 * eps);
        println!(
            "  {name:<6} {analytic:>14.9} {numeric:>14.9} {:>10.1e}",
            (analytic - numeric).abs()
        );
    }
    let report = gradcheck(|_tape, v| neuron_loss(v[0], v[1]), &[w.clone(), b.clone()])?;
    println!("\n  gradcheck does this for every element, with tolerances:");
    println!("  {report}");
    Ok(())
}

/// The MLP of part 3, from `tapegrad::nn` layers: Linear, tanh, Linear,
/// ReLU, Linear. Parameters get PyTorch's `Sequential` names (`0.weight`,
/// `0.bias`, `2.weight`, ...) and its default initialisation, seeded.
fn tour_mlp() -> Sequential<f64> {
    Sequential::new()
        .add(Linear::new(2, 4, 1))
        .add(Activation::Tanh)
        .add(Linear::new(4, 4, 2))
        .add(Activation::Relu)
        .add(Linear::new(4, 1, 3))
}

fn part3(out: &std::path::Path) -> Result<()> {
    println!("\n== 3. A small MLP: 2 → 4 (tanh) → 4 (ReLU) → 1, MSE on 4 samples\n");
    let mlp = tour_mlp();
    println!("{}\n", mlp.describe());
    let tape = Tape::<f64>::new();
    let x = tape.constant_named(
        "x",
        Tensor::from_vec(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2])?,
    );
    let target = tape.constant_named("t", Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0], &[4, 1])?);
    let y = mlp.forward(&tape, x)?;
    y.set_label("y");
    let loss = loss::mse(y, target)?;
    loss.set_label("L");
    let (grads, trace) = tape.backward_traced(loss)?;
    print!("{}", tape.table_with_grads(&grads));
    println!("\nThe first steps of the backward pass (the rest follow the same pattern):\n");
    let text = tape.format_trace(&trace);
    let first: Vec<&str> = text.split("\n\n").take(6).collect();
    println!("{}", first.join("\n\n"));
    let opts = DrawOptions {
        title: Some("2-4-4-1 MLP (tapegrad::nn), one forward and backward pass".into()),
        ..DrawOptions::default()
    };
    write(out, "mlp.svg", &tape.to_svg_with(Some(&grads), &opts));
    write(out, "mlp.dot", &tape.to_dot_with(Some(&grads), &opts));
    write(out, "mlp.html", &tape.explorer_html(&grads, &trace, &opts));
    Ok(())
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let path = dir.join(name);
    match std::fs::write(&path, text) {
        Ok(()) => println!("  wrote {}", path.display()),
        Err(e) => eprintln!("  could not write {}: {e}", path.display()),
    }
}

fn main() -> Result<()> {
    let mut out = PathBuf::from(".");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(args.next().expect("--out needs a directory")),
            other => {
                eprintln!("unknown argument {other}; usage: tape_tour [--out DIR]");
                std::process::exit(2);
            }
        }
    }
    std::fs::create_dir_all(&out).expect("cannot create the --out directory");
    let (w, b) = part1(&out)?;
    part2(&w, &b)?;
    part3(&out)?;
    Ok(())
}
