//! A character-level transformer language model on Tiny Shakespeare: the
//! `transformer_step` model (vocabulary 65, context 64, width 128, 4 heads,
//! 2 pre-norm blocks, exact GELU) trained with the recipe of
//! `char_lm_torch.py` (see `benches/torch_workloads.py` and the shared
//! bench README).
//!
//! ```text
//! cargo run --release --example char_lm                      # 2,000 steps, seed 0
//! cargo run --release --example char_lm -- --steps 500 --seed 1 --out char_lm_out
//! ```
//!
//! Recipe: the first 90% of the text trains, the last 10% validates;
//! batches of 16 random windows of 65 characters (64 inputs, 64 next-character
//! targets); AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.01), gradient
//! norm clipped to 1; no schedule. Validation loss: mean cross-entropy over
//! every non-overlapping 64-character window of the validation text, in
//! nats per character (a uniform guess costs ln 65 = 4.17).
//!
//! It shows a progress bar with the training loss, prints the validation
//! loss, writes the loss curve (`loss.svg`) and a checkpoint
//! (`char_lm.safetensors`, the names of `torch.nn` modules: see
//! `tests/torch/gpt_roundtrip.py`) into `--out`, prints a generated passage
//! and its peak resident memory.
//!
//! Data: Tiny Shakespeare (Karpathy's char-rnn, MIT; the plays are public
//! domain), `data/tinyshakespeare.txt.gz`; see `data/README.md`.

#[path = "../tests/common/memory.rs"]
mod memory;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tapegrad::nn::data::CharText;
use tapegrad::nn::{checkpoint, loss, plot, Adam, Gpt, GptConfig, Module, Optimizer};
use tapegrad::prelude::*;

/// The reference recipe's sizes.
const BATCH: usize = 16;
const BLOCK: usize = 64;

#[derive(Debug)]
struct Args {
    data: PathBuf,
    steps: usize,
    seed: u64,
    out: PathBuf,
    sample: usize,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        data: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/tinyshakespeare.txt.gz"
        )),
        steps: 2000,
        seed: 0,
        out: PathBuf::from("char_lm_out"),
        sample: 400,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => a.data = value()?.into(),
            "--steps" => a.steps = value()?.parse().map_err(|e| format!("--steps: {e}"))?,
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--out" => a.out = value()?.into(),
            "--sample" => a.sample = value()?.parse().map_err(|e| format!("--sample: {e}"))?,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (use --data, --steps, --seed, --out, --sample)"
                ))
            }
        }
    }
    Ok(a)
}

/// Mean next-character cross-entropy over every non-overlapping window of
/// `tokens`, 64 windows per forward pass.
fn validation_loss(model: &Gpt<f32>, tokens: &[usize]) -> Result<f64, Box<dyn std::error::Error>> {
    let windows = CharText::windows(tokens, BLOCK);
    let mut total = 0.0;
    for group in windows.chunks(64) {
        let x: Vec<usize> = group.iter().flat_map(|w| w.0.iter().copied()).collect();
        let y: Vec<usize> = group.iter().flat_map(|w| w.1.iter().copied()).collect();
        let tape = Tape::new();
        let logits = model.forward_ids(&tape, &x, group.len())?;
        let vocab = model.config().vocab;
        let l = loss::cross_entropy(logits.reshape(&[y.len(), vocab])?, &y)?;
        total += f64::from(l.item()?) * y.len() as f64;
    }
    Ok(total / (windows.len() * BLOCK) as f64)
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let text = CharText::load(&a.data)?;
    let (train, val) = text.split(0.9);
    let config = GptConfig::new(text.vocab_size(), BLOCK, 128, 4, 2);
    let mut model = config.build::<f32>(a.seed)?;
    println!(
        "{} ({} parameters); {} training and {} validation characters",
        model.describe(),
        model.num_parameters(),
        train.len(),
        val.len()
    );
    let mut opt = Adam::adamw(1e-3, 0.01).betas(0.9, 0.99).max_grad_norm(1.0);
    let mut rng = StdRng::seed_from_u64(a.seed);
    let bar = ProgressBar::with_draw_target(Some(a.steps as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps {msg} [{elapsed} < {eta}]")
            .map_err(|e| e.to_string())?,
    );
    let mut losses = Vec::with_capacity(a.steps);
    let t0 = Instant::now();
    for step in 0..a.steps {
        let (x, y) = CharText::sample_windows(train, BATCH, BLOCK, &mut rng)?;
        let tape = Tape::new();
        let logits = model.forward_ids(&tape, &x, BATCH)?;
        let l = loss::cross_entropy(logits.reshape(&[BATCH * BLOCK, config.vocab])?, &y)?;
        let grads = model.grads(&tape.backward(l)?);
        opt.step(model.parameters_mut(), &grads)?;
        let v = f64::from(l.item()?);
        losses.push(v);
        bar.set_position(step as u64 + 1);
        if step % 10 == 0 {
            bar.set_message(format!("train loss {v:.4}"));
        }
        if step % 500 == 0 {
            bar.println(format!("step {step} train loss {v:.4}"));
        }
    }
    bar.finish_and_clear();
    let train_s = t0.elapsed().as_secs_f64();
    let val_loss = validation_loss(&model, val)?;
    println!(
        "char_lm tapegrad: steps {} seed {} val loss {val_loss:.4} nats/char, training {train_s:.1} s",
        a.steps, a.seed
    );
    std::fs::create_dir_all(&a.out)?;
    let curve = a.out.join("loss.svg");
    plot::line_chart_svg(
        &curve,
        "char_lm: training loss (nats/char)",
        "step",
        &[("train", &losses)],
    )?;
    let ckpt = a.out.join("char_lm.safetensors");
    checkpoint::save(&model, &ckpt)?;
    println!(
        "loss curve: {}; checkpoint: {}",
        curve.display(),
        ckpt.display()
    );
    if a.sample > 0 {
        let prompt = text.encode("ROMEO:\n")?;
        let ids = model.generate(&prompt, a.sample, 0.8, Some(20), &mut rng)?;
        println!(
            "--- generated (temperature 0.8, top-20) ---\n{}\n---",
            text.decode(&ids)
        );
    }
    match memory::resident_bytes() {
        Some((_, peak)) => println!("peak resident memory (VmHWM): {:.1} MiB", memory::mib(peak)),
        None => println!("peak resident memory: not available (no /proc/self/status)"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("char_lm: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("char_lm: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    #[test]
    fn arguments() {
        let a = parse_args(["--steps", "5", "--seed", "2"].map(String::from)).unwrap();
        assert_eq!((a.steps, a.seed), (5, 2));
        assert!(parse_args(["--steps".to_string()]).is_err());
        assert!(parse_args(["--bogus".to_string()]).is_err());
    }
}
