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

#[path = "common/char_lm_recipe.rs"]
mod recipe;

use std::process::ExitCode;

use rand::Rng;
use tapegrad::autograd::Result as TapeResult;
use tapegrad::nn::data::CharText;
use tapegrad::nn::{sample_token, Embedding, LstmState, Module, Param};
use tapegrad::prelude::*;

use recipe::Args;

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

/// Logits `[batch·len, vocab]` from a zero state (the recipe's windows).
fn logits<'t>(
    model: &CharLstm,
    tape: &'t Tape<f32>,
    ids: &[usize],
    batch: usize,
) -> TapeResult<Var<'t, f32>> {
    Ok(model.logits(tape, ids, batch, None)?.0)
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
    let mut model = CharLstm::new(text.vocab_size(), a.seed)?;
    let mut rng = recipe::train("char_lm_lstm", &mut model, logits, &text, a)?;
    if a.sample > 0 {
        let prompt = text.encode("ROMEO:\n")?;
        let ids = generate(&model, &prompt, a.sample, &mut rng)?;
        recipe::print_sample(&text, &ids);
    }
    recipe::print_peak_memory();
    Ok(())
}

fn main() -> ExitCode {
    recipe::main_with("char_lm_lstm", run)
}

#[cfg(test)]
mod tests {
    use super::recipe::parse_args;
    use super::*;

    #[test]
    fn arguments() {
        let a = parse_args(["--steps", "5", "--seed", "2"].map(String::from), "out").unwrap();
        assert_eq!((a.steps, a.seed), (5, 2));
        assert!(parse_args(["--bogus".to_string()], "out").is_err());
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
