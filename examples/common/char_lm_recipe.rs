//! The character-level language-model recipe shared by the `char_lm`
//! (transformer) and `char_lm_lstm` examples: arguments, the training loop
//! of `char_lm_torch.py` (AdamW, clipping, random windows), the validation
//! loss, the loss curve, the checkpoint and the memory report. Each example
//! brings its model and a function from token ids to logits.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tapegrad::autograd::Result as TapeResult;
use tapegrad::nn::data::CharText;
use tapegrad::nn::{checkpoint, loss, plot, Adam, Module, Optimizer};
use tapegrad::prelude::*;

#[path = "../../tests/common/memory.rs"]
mod memory;

/// The reference recipe's sizes: 16 windows of 64 characters per batch.
pub const BATCH: usize = 16;
pub const BLOCK: usize = 64;

/// The command line both examples take.
#[derive(Debug)]
pub struct Args {
    pub data: PathBuf,
    pub steps: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub sample: usize,
    pub eval_every: usize,
}

/// Parses `--data --steps --seed --out --sample --eval-every`; `out` is the
/// default output folder.
pub fn parse_args(args: impl IntoIterator<Item = String>, out: &str) -> Result<Args, String> {
    let mut a = Args {
        data: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/tinyshakespeare.txt.gz"
        )),
        steps: 2000,
        seed: 0,
        out: PathBuf::from(out),
        sample: 400,
        eval_every: 0,
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
            "--eval-every" => {
                a.eval_every = value()?.parse().map_err(|e| format!("--eval-every: {e}"))?
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (use --data, --steps, --seed, --out, --sample, --eval-every)"
                ))
            }
        }
    }
    Ok(a)
}

/// Logits `[batch·len, vocab]` of a model for `batch` rows of token ids.
pub type LogitsFn<M> = for<'t> fn(&M, &'t Tape<f32>, &[usize], usize) -> TapeResult<Var<'t, f32>>;

/// Mean next-character cross-entropy over every non-overlapping window of
/// `tokens` (each read from the start, no carried state), 64 windows per
/// forward pass.
pub fn validation_loss<M>(
    model: &M,
    logits: LogitsFn<M>,
    tokens: &[usize],
) -> Result<f64, Box<dyn std::error::Error>> {
    let windows = CharText::windows(tokens, BLOCK);
    let mut total = 0.0;
    for group in windows.chunks(64) {
        let x: Vec<usize> = group.iter().flat_map(|w| w.0.iter().copied()).collect();
        let y: Vec<usize> = group.iter().flat_map(|w| w.1.iter().copied()).collect();
        let tape = Tape::new();
        let l = loss::cross_entropy(logits(model, &tape, &x, group.len())?, &y)?;
        total += f64::from(l.item()?) * y.len() as f64;
    }
    Ok(total / (windows.len() * BLOCK) as f64)
}

/// Trains `model` with the recipe, with a progress bar (or progress lines
/// when stderr is not a terminal); prints the validation loss, writes the
/// loss curve and `{name}.safetensors` into `a.out`. Returns the random
/// generator, to go on sampling from.
pub fn train<M: Module<f32>>(
    name: &str,
    model: &mut M,
    logits: LogitsFn<M>,
    text: &CharText,
    a: &Args,
) -> Result<StdRng, Box<dyn std::error::Error>> {
    let (train, val) = text.split(0.9);
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
    // Not a terminal (output to a file): these lines are the progress.
    let say = |line: String| {
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    let mut losses = Vec::with_capacity(a.steps);
    let t0 = Instant::now();
    for step in 0..a.steps {
        let (x, y) = CharText::sample_windows(train, BATCH, BLOCK, &mut rng)?;
        let tape = Tape::new();
        let l = loss::cross_entropy(logits(model, &tape, &x, BATCH)?, &y)?;
        let grads = model.grads(&tape.backward(l)?);
        opt.step(model.parameters_mut(), &grads)?;
        let v = f64::from(l.item()?);
        losses.push(v);
        bar.set_position(step as u64 + 1);
        if step % 10 == 0 {
            bar.set_message(format!("train loss {v:.4}"));
        }
        if step % 500 == 0 || (bar.is_hidden() && step % 100 == 0) {
            say(format!("step {step} train loss {v:.4}"));
        }
        if a.eval_every > 0 && (step + 1) % a.eval_every == 0 && step + 1 < a.steps {
            let v = validation_loss(model, logits, val)?;
            say(format!(
                "after {} steps: val loss {v:.4} nats/char",
                step + 1
            ));
        }
    }
    bar.finish_and_clear();
    let train_s = t0.elapsed().as_secs_f64();
    let val_loss = validation_loss(model, logits, val)?;
    println!(
        "{name} tapegrad: steps {} seed {} val loss {val_loss:.4} nats/char, training {train_s:.1} s",
        a.steps, a.seed
    );
    std::fs::create_dir_all(&a.out)?;
    let curve = a.out.join("loss.svg");
    plot::line_chart_svg(
        &curve,
        &format!("{name}: training loss (nats/char)"),
        "step",
        &[("train", &losses)],
    )?;
    let ckpt = a.out.join(format!("{name}.safetensors"));
    checkpoint::save(&*model, &ckpt)?;
    println!(
        "loss curve: {}; checkpoint: {}",
        curve.display(),
        ckpt.display()
    );
    Ok(rng)
}

/// Prints `ids` as the generated passage.
pub fn print_sample(text: &CharText, ids: &[usize]) {
    println!(
        "--- generated (temperature 0.8, top-20) ---\n{}\n---",
        text.decode(ids)
    );
}

/// Prints this process's peak resident memory.
pub fn print_peak_memory() {
    match memory::resident_bytes() {
        Some((_, peak)) => println!("peak resident memory (VmHWM): {:.1} MiB", memory::mib(peak)),
        None => println!("peak resident memory: not available (no /proc/self/status)"),
    }
}

/// `main`'s body: parse, run, and exit 2 on bad arguments, 1 on failure.
pub fn main_with(
    name: &str,
    run: impl FnOnce(&Args) -> Result<(), Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    let args = match parse_args(std::env::args().skip(1), &format!("{name}_out")) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{name}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
