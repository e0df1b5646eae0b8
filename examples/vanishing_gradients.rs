//! Why sigmoid networks train slowly and ReLU networks do not: the same
//! deep MLP (8 linear layers, 64 → 32 × 7 → 10) on the UCI digits, once
//! with sigmoid and PyTorch's default initialisation, once with ReLU and He
//! (Kaiming) initialisation, both with plain SGD. A [`TrainingRecorder`]
//! keeps each layer's gradient norm, update / weight ratio and dead or
//! saturated share at every step, and writes one page of curves per run.
//!
//! ```sh
//! cargo run --release --example vanishing_gradients -- --out pictures
//! ```
//!
//! It prints, for each network, the mean gradient norm of every layer and
//! the ratio first layer / last layer: the sigmoid network's first layer
//! gets orders of magnitude less gradient than its last (each sigmoid
//! multiplies the backward signal by σ' ≤ 1/4), the ReLU network's about
//! as much. Pages: `vanishing_sigmoid.html` and `vanishing_relu.html` in
//! `--out DIR` (default: the current directory).

use std::path::PathBuf;

use tapegrad::nn::data::load_digits;
use tapegrad::nn::record::TrainingRecorder;
use tapegrad::nn::{Activation, Init, Mlp, Objective, Progress, Result, Sgd, Trainer};

/// 8 linear layers: 64 → 32 → … → 32 → 10.
const SIZES: [usize; 9] = [64, 32, 32, 32, 32, 32, 32, 32, 10];

fn run(
    name: &str,
    activation: Activation,
    init: Init,
    data: &tapegrad::nn::data::Dataset<f32>,
    out: &std::path::Path,
) -> Result<f64> {
    let mut model = Mlp::<f32>::builder(&SIZES)
        .activation(activation)
        .weight_init(init)
        .seed(7)
        .build()?;
    let mut rec = TrainingRecorder::new();
    let history = Trainer::new(Objective::CrossEntropy)
        .epochs(5)
        .batch_size(32)
        .seed(7)
        .progress(Progress::Never)
        .fit_recorded(&mut model, &mut Sgd::new(0.1), data, None, &mut rec)?;
    let last = history.last().expect("at least one epoch ran");
    println!(
        "\n{name}: {} steps, final epoch loss {:.4}, training accuracy {:.3}",
        last.steps,
        last.train_loss,
        last.train_accuracy.unwrap_or(f64::NAN)
    );
    println!("  layer  mean ‖∂L/∂θ‖  mean ‖Δθ‖/‖θ‖  inactive share (last step)");
    for l in rec.layers() {
        let inactive = l.inactive.last().map_or("-".to_string(), |s| {
            format!("{s:.2} ({})", l.activation.as_deref().unwrap_or(""))
        });
        println!(
            "  {:5}  {:11.3e}  {:14.3e}  {inactive}",
            l.name,
            l.mean_grad_norm(),
            l.mean_update_ratio()
        );
    }
    let layers = rec.layers();
    let ratio = layers[0].mean_grad_norm() / layers[layers.len() - 1].mean_grad_norm();
    let page = out.join(format!("vanishing_{name}.html"));
    rec.write_html(
        &page,
        &format!("8-layer {name} MLP on the digits, plain SGD"),
    )?;
    println!("  training page: {}", page.display());
    Ok(ratio)
}

fn main() -> Result<()> {
    let mut out = PathBuf::from(".");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(args.next().expect("--out needs a directory")),
            other => {
                eprintln!("unknown argument {other}; usage: vanishing_gradients [--out DIR]");
                std::process::exit(2);
            }
        }
    }
    std::fs::create_dir_all(&out).map_err(|e| tapegrad::nn::Error::Io {
        path: out.clone(),
        source: e,
    })?;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let data = load_digits::<f32>(path)?;
    println!("8-layer MLP {SIZES:?} on {} digits images", data.len());
    let sigmoid = run(
        "sigmoid",
        Activation::Sigmoid,
        Init::TorchDefault,
        &data,
        &out,
    )?;
    let relu = run(
        "relu",
        Activation::Relu,
        Init::kaiming_uniform(),
        &data,
        &out,
    )?;
    println!("\nfirst-layer / last-layer mean gradient norm:");
    println!("  sigmoid (PyTorch default init): {sigmoid:.3e}");
    println!("  relu (He init):                 {relu:.3e}");
    Ok(())
}
