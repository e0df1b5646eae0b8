//! A character-level transformer language model on Tiny Shakespeare: the
//! `transformer_step` model (vocabulary 65, context 64, width 128, 4 heads,
//! 2 pre-norm blocks, exact GELU) trained with the recipe of
//! `char_lm_torch.py` (see `benches/torch_workloads.py` and the shared
//! bench README).
//!
//! ```text
//! cargo run --release --example char_lm                      # 2,000 steps, seed 0
//! cargo run --release --example char_lm -- --steps 500 --seed 1 --out char_lm_out
//! cargo run --release --example char_lm -- --eval-every 500   # validation loss along the way
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

#[path = "common/char_lm_recipe.rs"]
mod recipe;

use std::process::ExitCode;

use tapegrad::autograd::Result as TapeResult;
use tapegrad::nn::data::CharText;
use tapegrad::nn::{Gpt, GptConfig};
use tapegrad::prelude::*;

use recipe::{Args, BLOCK};

/// Logits `[batch·len, vocab]` of the transformer.
fn logits<'t>(
    model: &Gpt<f32>,
    tape: &'t Tape<f32>,
    ids: &[usize],
    batch: usize,
) -> TapeResult<Var<'t, f32>> {
    let vocab = model.config().vocab;
    model
        .forward_ids(tape, ids, batch)?
        .reshape(&[ids.len(), vocab])
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let text = CharText::load(&a.data)?;
    let config = GptConfig::new(text.vocab_size(), BLOCK, 128, 4, 2);
    let mut model = config.build::<f32>(a.seed)?;
    let mut rng = recipe::train("char_lm", &mut model, logits, &text, a)?;
    if a.sample > 0 {
        let prompt = text.encode("ROMEO:\n")?;
        let ids = model.generate(&prompt, a.sample, 0.8, Some(20), &mut rng)?;
        recipe::print_sample(&text, &ids);
    }
    recipe::print_peak_memory();
    Ok(())
}

fn main() -> ExitCode {
    recipe::main_with("char_lm", run)
}

#[cfg(test)]
mod tests {
    use super::recipe::parse_args;

    #[test]
    fn arguments() {
        let a = parse_args(["--steps", "5", "--seed", "2"].map(String::from), "out").unwrap();
        assert_eq!((a.steps, a.seed), (5, 2));
        assert!(parse_args(["--steps".to_string()], "out").is_err());
        assert!(parse_args(["--bogus".to_string()], "out").is_err());
    }
}
