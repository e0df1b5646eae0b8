//! Differentially private training (DP-SGD, Abadi et al. 2016) of the
//! digits MLP (64-256-10, ReLU) with per-sample gradients:
//!
//! ```sh
//! cargo run --release --example dp_sgd
//! cargo run --release --example dp_sgd -- 20 1.0 1.1   # epochs, clip C, noise σ
//! ```
//!
//! Each step takes a batch of 128 images and
//! 1. computes every sample's gradient (`per_sample_grads`: one backward
//!    pass and an outer product per layer, not 128 backward passes);
//! 2. scales each sample's gradient to a norm of at most `C`
//!    (`clipped_sum`), so no single image can move the model far;
//! 3. adds Gaussian noise of standard deviation `σ·C` to the sum, divides
//!    by the batch size and takes an SGD step.
//!
//! It prints the test accuracy after each epoch, and for comparison that of
//! the same model and schedule trained without clipping or noise. This is
//! the mechanism only: it does no privacy accounting (turning `σ`, the
//! sampling rate and the step count into an `(ε, δ)` guarantee needs an
//! accountant, such as Opacus's RDP one) and draws fixed-size shuffled
//! batches rather than Poisson samples.

use std::time::Instant;

use tapegrad::autograd::Var;
use tapegrad::nn::data::{load_digits, Dataset};
use tapegrad::nn::train::evaluate;
use tapegrad::nn::{per_sample_grads, Objective};
use tapegrad::prelude::*;

const BATCH: usize = 128;
const LR: f64 = 0.2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<f64>());
    let mut next = |default: f64| args.next().transpose().map(|v| v.unwrap_or(default));
    let epochs = next(15.0)? as usize;
    let clip = next(1.0)?;
    let sigma = next(1.1)?;

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let data = load_digits::<f32>(path)?;
    let (train, test) = data.train_test_split(0.2, 0)?;
    println!(
        "DP-SGD on digits: {} training, {} test images; batch {BATCH}, clip C = {clip}, \
         noise σ = {sigma}, lr {LR}, {epochs} epochs",
        train.len(),
        test.len()
    );
    for private in [true, false] {
        let t0 = Instant::now();
        let acc = fit(&train, &test, epochs, private.then_some((clip, sigma)))?;
        println!(
            "{}: test accuracy {acc:.4} ({:.1} s)",
            if private {
                "private (clipped, noised)"
            } else {
                "non-private baseline    "
            },
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Trains a fresh model with SGD, per-sample clipping and noise when
/// `dp = Some((clip, sigma))`; returns the final test accuracy.
fn fit(
    train: &Dataset<f32>,
    test: &Dataset<f32>,
    epochs: usize,
    dp: Option<(f64, f64)>,
) -> tapegrad::nn::Result<f64> {
    use rand::SeedableRng;
    let mut model = Mlp::<f32>::builder(&[64, 256, 10]).seed(1).build()?;
    let mut opt = Sgd::new(LR);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut noise_seed = 1000;
    let mut acc = 0.0;
    for epoch in 1..=epochs {
        for batch in train.batches(BATCH, Some(&mut rng)).collect::<Vec<_>>() {
            let labels = batch.y.classes().unwrap_or(&[]).to_vec();
            let per = per_sample_grads(&model, &batch.x, |out: Var<'_, f32>, rows| {
                out.log_softmax(1)?.gather_rows(&labels[rows])?.neg()
            })?;
            let mut grads = match dp {
                Some((clip, sigma)) => {
                    let mut sum = per.clipped_sum(clip)?;
                    for (_, g) in sum.iter_mut() {
                        noise_seed += 1;
                        let noise = Tensor::<f32>::randn_seeded(g.dims(), noise_seed)
                            .mul_scalar(sigma * clip)?;
                        *g = g.add(&noise)?;
                    }
                    sum
                }
                None => {
                    let mut sum = ParamGrads::new();
                    for (name, g) in per.iter() {
                        sum.insert(name, g.sum(&[0], false)?);
                    }
                    sum
                }
            };
            grads.scale(1.0 / batch.x.dims()[0] as f64)?;
            opt.step(model.parameters_mut(), &grads)?;
        }
        acc = evaluate(&mut model, test, Objective::CrossEntropy)?
            .accuracy
            .unwrap_or(0.0);
        if epoch % 5 == 0 || epoch == epochs {
            println!("  epoch {epoch:>3}: test accuracy {acc:.4}");
        }
    }
    Ok(acc)
}
