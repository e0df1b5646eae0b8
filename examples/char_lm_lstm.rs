//! `char_lm` with an LSTM in place of the transformer: a character-level
//! language model on Tiny Shakespeare, embedding(65, 64) → LSTM(64, 256) →
//! Linear(256, 65), trained with `char_lm`'s recipe.
//!
//! ```text
//! cargo run --release --example char_lm_lstm                  # 2,000 steps, seed 0
//! cargo run --release --example char_lm_lstm -- --steps 500 --seed 1 --out char_lm_lstm_out
//! ```
//!
//! Recipe (the same as `char_lm`'s): the first 90% of the text trains, the
//! last 10% validates; batches of 16 random windows of 65 characters (64
//! inputs, 64 next-character targets), every window starting from a zero
//! state; AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.01), gradient norm
//! clipped to 1. Validation loss: mean cross-entropy over every
//! non-overlapping 64-character window of the validation text, in nats per
//! character. `benches/char_lm_lstm_torch.py` is the same model and recipe
//! in PyTorch.
//!
//! It shows a progress bar with the training loss, prints the validation
//! loss, writes the loss curve (`loss.svg`) and a checkpoint
//! (`char_lm_lstm.safetensors`; its names, `embed.weight`,
//! `lstm.weight_ih_l0`, ..., `head.bias`, are those of a PyTorch module with
//! attributes `embed`, `lstm` and `head`) into `--out`, then generates a
//! passage one character at a time, carrying the LSTM's state.

#[path = "../tests/common/memory.rs"]
mod memory;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad::autograd::Result as TapeResult;
use tapegrad::nn::data::CharText;
use tapegrad::nn::{
    checkpoint, loss, plot, sample_token, Adam, Embedding, LstmState, Module, Optimizer, Param,
};
use tapegrad::prelude::*;

const BATCH: usize = 16;
const BLOCK: usize = 64;
const EMBED: usize = 64;
const HIDDEN: usize = 256;

/// Embedding → LSTM (batch first) → Linear, over token ids.
struct CharLstm {
    embed: Embedding<f32>,
    lstm: Lstm<f32>,
    head: Linear<f32>,
}

impl CharLstm {
    fn new(vocab: usize, seed: u64) -> Result<Self, Box<dyn std::error::Error>> {
        let opts = RecurrentOptions::new().batch_first(true).seed(seed + 1);
        let mut m = CharLstm {
            embed: Embedding::new(vocab, EMBED, seed),
            lstm: Lstm::with_options(EMBED, HIDDEN, opts)?,
            head: Linear::new(HIDDEN, vocab, seed + 2),
        };
        for (n, p) in m.parameters_mut() {
            p.set_name(n); // full paths on printed tapes and in errors
        }
        Ok(m)
    }

    /// Logits `[batch·len, vocab]` for `ids` (`batch` rows of `len`), from
    /// `state` (zeros when `None`), and the state after the last position.
    fn logits<'t>(
        &self,
        tape: &'t Tape<f32>,
        ids: &[usize],
        batch: usize,
        state: Option<LstmState<'t, f32>>,
    ) -> TapeResult<(Var<'t, f32>, LstmState<'t, f32>)> {
        let len = ids.len() / batch;
        let x = self.embed.lookup(tape, ids, &[batch, len])?;
        let (h, state) = self.lstm.forward_with_state(tape, x, state)?;
        let y = self
            .head
            .forward(tape, h.reshape(&[batch * len, HIDDEN])?)?;
        Ok((y, state))
    }
}

/// Names as `torch.nn` would give them: `embed.`, `lstm.`, `head.`.
fn prefixed<'a>(
    prefix: &str,
    ps: Vec<(String, &'a Param<f32>)>,
) -> impl Iterator<Item = (String, &'a Param<f32>)> + 'a {
    let prefix = prefix.to_string();
    ps.into_iter()
        .map(move |(n, p)| (format!("{prefix}.{n}"), p))
}

impl Module<f32> for CharLstm {
    /// `x`: token ids as numbers, `[batch, len]`; returns logits `[batch·len, vocab]`.
    fn forward<'t>(&self, tape: &'t Tape<f32>, x: Var<'t, f32>) -> TapeResult<Var<'t, f32>> {
        let shape = x.shape();
        let ids: Vec<usize> = x.value().to_vec().iter().map(|&v| v as usize).collect();
        Ok(self.logits(tape, &ids, shape[0], None)?.0)
    }
    fn parameters(&self) -> Vec<(String, &Param<f32>)> {
        prefixed("embed", self.embed.parameters())
            .chain(prefixed("lstm", self.lstm.parameters()))
            .chain(prefixed("head", self.head.parameters()))
            .collect()
    }
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<f32>)> {
        let mut v = Vec::new();
        for (prefix, ps) in [
            ("embed", self.embed.parameters_mut()),
            ("lstm", self.lstm.parameters_mut()),
            ("head", self.head.parameters_mut()),
        ] {
            v.extend(ps.into_iter().map(|(n, p)| (format!("{prefix}.{n}"), p)));
        }
        v
    }
    fn describe(&self) -> String {
        format!(
            "CharLstm({} → {} → {})",
            self.embed.describe(),
            self.lstm.describe(),
            self.head.describe()
        )
    }
}

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
        out: PathBuf::from("char_lm_lstm_out"),
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
/// `tokens` (each from a zero state), 64 windows per forward pass.
fn validation_loss(model: &CharLstm, tokens: &[usize]) -> Result<f64, Box<dyn std::error::Error>> {
    let windows = CharText::windows(tokens, BLOCK);
    let mut total = 0.0;
    for group in windows.chunks(64) {
        let x: Vec<usize> = group.iter().flat_map(|w| w.0.iter().copied()).collect();
        let y: Vec<usize> = group.iter().flat_map(|w| w.1.iter().copied()).collect();
        let tape = Tape::new();
        let (logits, _) = model.logits(&tape, &x, group.len(), None)?;
        total += f64::from(loss::cross_entropy(logits, &y)?.item()?) * y.len() as f64;
    }
    Ok(total / (windows.len() * BLOCK) as f64)
}

/// `len` characters after `prompt`, one at a time: each step reads the
/// new characters from the state the previous one left (carried as values,
/// so every step records on a fresh, short tape).
fn generate(
    model: &CharLstm,
    prompt: &[usize],
    len: usize,
    rng: &mut impl Rng,
) -> Result<Vec<usize>, Box<dyn std::error::Error>> {
    let mut out = prompt.to_vec();
    let mut input = prompt.to_vec();
    let mut state: Option<(Tensor<f32>, Tensor<f32>)> = None;
    for _ in 0..len {
        let tape = Tape::new();
        let carried = state
            .take()
            .map(|(h, c)| (tape.constant(h), tape.constant(c)));
        let (logits, (h, c)) = model.logits(&tape, &input, 1, carried)?;
        let last = logits.select(0, input.len() - 1)?.value().to_vec();
        let next = sample_token(&last, 0.8, Some(20), rng)?;
        out.push(next);
        state = Some((h.value(), c.value()));
        input = vec![next];
    }
    Ok(out)
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let text = CharText::load(&a.data)?;
    let (train, val) = text.split(0.9);
    let mut model = CharLstm::new(text.vocab_size(), a.seed)?;
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
        let (logits, _) = model.logits(&tape, &x, BATCH, None)?;
        let l = loss::cross_entropy(logits, &y)?;
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
        "char_lm_lstm tapegrad: steps {} seed {} val loss {val_loss:.4} nats/char, training {train_s:.1} s",
        a.steps, a.seed
    );
    std::fs::create_dir_all(&a.out)?;
    let curve = a.out.join("loss.svg");
    plot::line_chart_svg(
        &curve,
        "char_lm_lstm: training loss (nats/char)",
        "step",
        &[("train", &losses)],
    )?;
    let ckpt = a.out.join("char_lm_lstm.safetensors");
    checkpoint::save(&model, &ckpt)?;
    println!(
        "loss curve: {}; checkpoint: {}",
        curve.display(),
        ckpt.display()
    );
    if a.sample > 0 {
        let prompt = text.encode("ROMEO:\n")?;
        let ids = generate(&model, &prompt, a.sample, &mut rng)?;
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
            eprintln!("char_lm_lstm: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("char_lm_lstm: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let a = parse_args(["--steps", "5", "--seed", "2"].map(String::from)).unwrap();
        assert_eq!((a.steps, a.seed), (5, 2));
        assert!(parse_args(["--bogus".to_string()]).is_err());
    }

    #[test]
    fn torch_names() {
        let m = CharLstm::new(65, 0).unwrap();
        let names: Vec<String> = m.parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "embed.weight",
                "lstm.weight_ih_l0",
                "lstm.weight_hh_l0",
                "lstm.bias_ih_l0",
                "lstm.bias_hh_l0",
                "head.weight",
                "head.bias"
            ]
        );
    }
}
