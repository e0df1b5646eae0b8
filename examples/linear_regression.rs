//! Linear regression by gradient descent, done right: the update is
//! θ ← θ − α·∇L (the article's sample code adds the gradient, which climbs
//! the loss instead of descending it).
//!
//! Data: y = 3·x₁ − 2·x₂ + 0.5 + noise, 200 samples. The model recovers the
//! coefficients.
//!
//! ```text
//! cargo run --release --example linear_regression -- --out plots
//! ```

use rand::{rngs::StdRng, SeedableRng};
use tapegrad::prelude::*;

fn main() -> tapegrad::nn::Result<()> {
    let mut out = std::path::PathBuf::from(".");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().unwrap_or_else(|| ".".into()).into(),
            "-h" | "--help" => {
                println!("Options:\n  --out DIR   where to write linear_regression_loss.svg [default: .]");
                return Ok(());
            }
            other => {
                eprintln!("unknown option {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    let (true_w, true_b) = ([3.0, -2.0], 0.5);
    let mut rng = StdRng::seed_from_u64(42);
    let x = Tensor::<f64>::uniform(&[200, 2], -1.0, 1.0, &mut rng);
    let noise = Tensor::<f64>::normal(&[200, 1], 0.0, 0.05, &mut rng);
    let w = Tensor::from_vec(true_w.to_vec(), &[2, 1])?;
    let y = x.matmul(&w)?.add_scalar(true_b)?.add(&noise)?;

    // θ = (w, b); L(θ) = mean((x·w + b − y)²).
    let mut model = Linear::<f64>::new(2, 1, 0);
    let alpha = 0.1;
    let mut losses = Vec::new();
    for step in 0..500 {
        let tape = Tape::new();
        let pred = model.forward(&tape, tape.constant(x.clone()))?;
        let l = loss::mse(pred, tape.constant(y.clone()))?;
        let grads = tape.backward(l)?;
        // The update written out: θ ← θ − α∇L (Sgd::new(alpha) does the same).
        for (_, p) in model.parameters_mut() {
            let g = p.grad(&grads).expect("the loss depends on every parameter");
            let new = p.value().sub(&g.mul_scalar(alpha)?)?;
            p.set_value(new);
        }
        losses.push(l.item()?);
        if step % 100 == 0 {
            println!("step {step:3}: loss {:.6}", l.item()?);
        }
    }
    let w = model.weight().value().to_vec();
    let b = model.bias().map(|b| b.value().to_vec()[0]).unwrap_or(0.0);
    println!("recovered w = [{:.3}, {:.3}], b = {:.3}", w[0], w[1], b);
    println!(
        "true      w = [{:.3}, {:.3}], b = {:.3}",
        true_w[0], true_w[1], true_b
    );
    std::fs::create_dir_all(&out).map_err(|e| tapegrad::nn::Error::Io {
        path: out.clone(),
        source: e,
    })?;
    let path = out.join("linear_regression_loss.svg");
    tapegrad::nn::plot::line_chart_svg(
        &path,
        "linear regression: MSE per step",
        "step",
        &[("train", &losses)],
    )?;
    println!("loss curve: {}", path.display());
    Ok(())
}
