//! A pre-norm transformer block and a decoder-only language model built
//! from them ([`Gpt`], configured by [`GptConfig`]).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{Error as TapeError, Result as TapeResult, Tape, Var};
use tapegrad_tensor::Element;

use crate::attention::MultiheadAttention;
use crate::embedding::{ids_of, Embedding};
use crate::layer_norm::LayerNorm;
use crate::linear::Linear;
use crate::module::Module;
use crate::param::Param;
use crate::sampling::sample_token;

/// `(name, param)` pairs of a child module under `prefix`.
fn under<'a, T: Element>(prefix: &str, m: &'a dyn Module<T>) -> Vec<(String, &'a Param<T>)> {
    m.parameters()
        .into_iter()
        .map(|(n, p)| (format!("{prefix}.{n}"), p))
        .collect()
}

fn under_mut<'a, T: Element>(
    prefix: &str,
    m: &'a mut dyn Module<T>,
) -> Vec<(String, &'a mut Param<T>)> {
    m.parameters_mut()
        .into_iter()
        .map(|(n, p)| (format!("{prefix}.{n}"), p))
        .collect()
}

/// Gives every parameter its full path as its name (shown on tapes and in
/// error messages).
fn name_params<T: Element>(m: &mut dyn Module<T>) {
    for (n, p) in m.parameters_mut() {
        p.set_name(n);
    }
}

/// A pre-LayerNorm transformer block, GPT style:
/// `h = x + attn(ln1(x))`, `y = h + out(gelu(fc(ln2(h))))`, exact GELU,
/// no dropout. Parameters: `ln1.*`, `attn.in_proj_weight`,
/// `attn.in_proj_bias`, `attn.out_proj.*`, `ln2.*`, `fc.*` (`d → ratio·d`),
/// `out.*` (`ratio·d → d`).
#[derive(Debug, Clone)]
pub struct TransformerBlock<T: Element = f32> {
    ln1: LayerNorm<T>,
    attn: MultiheadAttention<T>,
    ln2: LayerNorm<T>,
    fc: Linear<T>,
    out: Linear<T>,
}

impl<T: Element> TransformerBlock<T> {
    /// A block of width `d` with `heads` heads and an MLP of `mlp_ratio·d`
    /// hidden units, every linear map initialised like `torch.nn.Linear`.
    ///
    /// # Errors
    /// If `heads` is 0 or does not divide `d`.
    pub fn new(
        d: usize,
        heads: usize,
        mlp_ratio: usize,
        causal: bool,
        rng: &mut impl Rng,
    ) -> crate::Result<Self> {
        let ln1 = LayerNorm::new(d);
        let attn = MultiheadAttention::linear_init(d, heads, rng)?.causal(causal);
        let ln2 = LayerNorm::new(d);
        let fc = Linear::with_rng(d, mlp_ratio * d, rng);
        let out = Linear::with_rng(mlp_ratio * d, d, rng);
        let mut block = TransformerBlock {
            ln1,
            attn,
            ln2,
            fc,
            out,
        };
        name_params(&mut block);
        Ok(block)
    }
}

impl<T: Element> Module<T> for TransformerBlock<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let h = x.add(self.attn.forward(tape, self.ln1.forward(tape, x)?)?)?;
        let m = self.fc.forward(tape, self.ln2.forward(tape, h)?)?.gelu()?;
        h.add(self.out.forward(tape, m)?)
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        let mut v = under("ln1", &self.ln1);
        v.extend(under("attn", &self.attn));
        v.extend(under("ln2", &self.ln2));
        v.extend(under("fc", &self.fc));
        v.extend(under("out", &self.out));
        v
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        let mut v = under_mut("ln1", &mut self.ln1);
        v.extend(under_mut("attn", &mut self.attn));
        v.extend(under_mut("ln2", &mut self.ln2));
        v.extend(under_mut("fc", &mut self.fc));
        v.extend(under_mut("out", &mut self.out));
        v
    }

    fn describe(&self) -> String {
        format!(
            "TransformerBlock(pre-norm, {}, mlp {} → {} → {}, GELU)",
            self.attn.describe(),
            self.fc.in_features(),
            self.fc.out_features(),
            self.out.out_features()
        )
    }
}

/// The shape of a decoder-only transformer ([`Gpt`]).
///
/// ```
/// use tapegrad_nn::{GptConfig, Module};
/// // The `transformer_step` benchmark's model: 65 tokens, context 64,
/// // width 128, 4 heads, 2 blocks.
/// let model = GptConfig::new(65, 64, 128, 4, 2).build::<f32>(0)?;
/// assert_eq!(model.num_parameters(), 421_697); // as torch counts bench_torch.Gpt
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptConfig {
    /// Number of distinct tokens.
    pub vocab: usize,
    /// Longest sequence (rows of the positional table).
    pub context: usize,
    /// Model width.
    pub width: usize,
    /// Attention heads per block (must divide `width`).
    pub heads: usize,
    /// Number of blocks.
    pub layers: usize,
    /// Hidden width of each block's MLP, as a multiple of `width` (4).
    pub mlp_ratio: usize,
}

impl GptConfig {
    /// A configuration with the usual MLP ratio of 4.
    pub fn new(vocab: usize, context: usize, width: usize, heads: usize, layers: usize) -> Self {
        GptConfig {
            vocab,
            context,
            width,
            heads,
            layers,
            mlp_ratio: 4,
        }
    }

    /// Builds the model with weights drawn from a generator seeded with
    /// `seed`.
    ///
    /// # Errors
    /// If a size is 0 or `heads` does not divide `width`.
    pub fn build<T: Element>(&self, seed: u64) -> crate::Result<Gpt<T>> {
        let c = *self;
        if [c.vocab, c.context, c.width, c.heads, c.mlp_ratio].contains(&0) {
            return Err(crate::Error::invalid(
                "GptConfig::build",
                format!("every size must be at least 1, got {c:?}"),
            ));
        }
        let rng = &mut StdRng::seed_from_u64(seed);
        let tok = Embedding::with_rng(c.vocab, c.width, rng);
        let pos = Embedding::with_rng(c.context, c.width, rng);
        let blocks = (0..c.layers)
            .map(|_| TransformerBlock::new(c.width, c.heads, c.mlp_ratio, true, rng))
            .collect::<crate::Result<Vec<_>>>()?;
        let ln = LayerNorm::new(c.width);
        let head = Linear::with_rng(c.width, c.vocab, rng);
        let mut model = Gpt {
            config: c,
            tok,
            pos,
            blocks,
            ln,
            head,
        };
        name_params(&mut model);
        Ok(model)
    }
}

/// A decoder-only transformer language model: token and learned position
/// embeddings, pre-norm causal [`TransformerBlock`]s, a final LayerNorm and
/// an untied output head giving next-token logits. No dropout.
///
/// Parameter names: `tok.weight`, `pos.weight`, `blocks.{i}.…` (see
/// [`TransformerBlock`]), `ln.weight`, `ln.bias`, `head.weight`,
/// `head.bias`, with `torch.nn`'s layouts.
///
/// As a [`Module`] the input is a `[batch, positions]` (or `[positions]`)
/// value of token ids and the output `[batch, positions, vocab]` logits.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{GptConfig, Module};
/// let model = GptConfig::new(10, 8, 16, 2, 1).build::<f32>(0)?;
/// let tape = Tape::new();
/// let logits = model.forward_ids(&tape, &[1, 2, 3, 4, 5, 6], 2)?;
/// assert_eq!(logits.shape().as_slice(), &[2, 3, 10]);
/// let err = model.forward_ids(&tape, &[0; 18], 2).unwrap_err();
/// assert!(err.to_string().contains("9 positions but the positional table has 8"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Gpt<T: Element = f32> {
    config: GptConfig,
    tok: Embedding<T>,
    pos: Embedding<T>,
    blocks: Vec<TransformerBlock<T>>,
    ln: LayerNorm<T>,
    head: Linear<T>,
}

impl<T: Element> Gpt<T> {
    /// The model's configuration.
    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    /// Logits `[batch, positions, vocab]` for `ids`, `batch` sequences laid
    /// end to end (`ids.len() / batch` positions each).
    ///
    /// # Errors
    /// An error naming the model and the shapes if `batch` is 0 or does not
    /// divide `ids.len()`, or a sequence is longer than the positional
    /// table; one naming `tok` for an id beyond the vocabulary.
    pub fn forward_ids<'t>(
        &self,
        tape: &'t Tape<T>,
        ids: &[usize],
        batch: usize,
    ) -> TapeResult<Var<'t, T>> {
        if batch == 0 || ids.len() % batch != 0 {
            return Err(self.error(format!(
                "{} ids do not split into {batch} sequences",
                ids.len()
            )));
        }
        let t = ids.len() / batch;
        if t > self.config.context {
            return Err(self.error(format!(
                "sequences of {t} positions but the positional table has {} (input [{batch}, {t}])",
                self.config.context
            )));
        }
        let positions: Vec<usize> = (0..t).collect();
        let x = self.tok.lookup(tape, ids, &[batch, t])?;
        let mut h = x.add(self.pos.lookup(tape, &positions, &[t])?)?;
        for b in &self.blocks {
            h = b.forward(tape, h)?;
        }
        self.head.forward(tape, self.ln.forward(tape, h)?)
    }

    /// Continues `prompt` by `new_tokens` tokens, each drawn from the
    /// model's next-token distribution with [`sample_token`] (temperature,
    /// optional top-k; temperature 0 picks the most likely token). Only the
    /// last `context` tokens are fed back.
    ///
    /// # Errors
    /// If the prompt is empty or holds an id beyond the vocabulary, or the
    /// temperature is negative or not finite.
    pub fn generate(
        &self,
        prompt: &[usize],
        new_tokens: usize,
        temperature: f64,
        top_k: Option<usize>,
        rng: &mut impl Rng,
    ) -> TapeResult<Vec<usize>> {
        if prompt.is_empty() {
            return Err(self.error("generate needs a prompt of at least one token".into()));
        }
        let mut out = prompt.to_vec();
        for _ in 0..new_tokens {
            let window = &out[out.len().saturating_sub(self.config.context)..];
            let tape = Tape::new();
            let logits = self.forward_ids(&tape, window, 1)?.value();
            let v = self.config.vocab;
            let last = logits.to_vec().split_off((window.len() - 1) * v);
            let next = sample_token(&last, temperature, top_k, rng).map_err(|m| self.error(m))?;
            out.push(next);
        }
        Ok(out)
    }

    fn error(&self, msg: String) -> TapeError {
        TapeError::InvalidArgument {
            op: "Gpt".into(),
            msg,
        }
    }
}

impl<T: Element> Module<T> for Gpt<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let shape = x.shape();
        let ids = ids_of(&x.value()).map_err(|m| self.error(m))?;
        match *shape.as_slice() {
            [b, _] => self.forward_ids(tape, &ids, b),
            [t] => {
                let y = self.forward_ids(tape, &ids, 1)?;
                y.reshape(&[t, self.config.vocab])
            }
            _ => Err(self.error(format!(
                "expected token ids of shape [batch, positions] or [positions], got {shape:?}"
            ))),
        }
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        let mut v = under("tok", &self.tok);
        v.extend(under("pos", &self.pos));
        for (i, b) in self.blocks.iter().enumerate() {
            v.extend(under(&format!("blocks.{i}"), b));
        }
        v.extend(under("ln", &self.ln));
        v.extend(under("head", &self.head));
        v
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        let mut v = under_mut("tok", &mut self.tok);
        v.extend(under_mut("pos", &mut self.pos));
        for (i, b) in self.blocks.iter_mut().enumerate() {
            v.extend(under_mut(&format!("blocks.{i}"), b));
        }
        v.extend(under_mut("ln", &mut self.ln));
        v.extend(under_mut("head", &mut self.head));
        v
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "Gpt(vocab={}, context={}, width={}, heads={}, layers={}, mlp_ratio={})",
            c.vocab, c.context, c.width, c.heads, c.layers, c.mlp_ratio
        )
    }
}
