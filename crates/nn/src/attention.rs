//! [`MultiheadAttention`]: multi-head self-attention with one fused
//! query/key/value projection, `torch.nn.MultiheadAttention`'s parameters.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{AttentionMask, Error as TapeError, Result as TapeResult, Tape, Var};
use tapegrad_tensor::Element;

use crate::init::Init;
use crate::linear::Linear;
use crate::module::Module;
use crate::param::Param;

/// Multi-head self-attention over `[batch, positions, embed_dim]` inputs
/// (batch first), with the parameters of `torch.nn.MultiheadAttention`:
/// `in_proj_weight: [3·d, d]` (query, key and value rows stacked in that
/// order), `in_proj_bias: [3·d]`, `out_proj.weight: [d, d]`,
/// `out_proj.bias: [d]`.
///
/// The query, key and value projections use the row blocks of
/// `in_proj_weight` (views); the head split and the attention products run
/// on views of them (`reshape`, `transpose`: no copies); only the merge of
/// the heads back to `[batch, positions, d]` copies, as it must.
/// Fully masked queries give 0 (see
/// [`Var::scaled_dot_product_attention`]).
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Module, MultiheadAttention};
/// use tapegrad_tensor::Tensor;
/// let attn = MultiheadAttention::<f32>::new(8, 2, 0).causal(true);
/// let names: Vec<String> = attn.parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]);
/// let tape = Tape::new();
/// let y = attn.forward(&tape, tape.constant(Tensor::ones(&[3, 5, 8])))?;
/// assert_eq!(y.shape().as_slice(), &[3, 5, 8]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MultiheadAttention<T: Element = f32> {
    in_proj_weight: Param<T>,
    in_proj_bias: Param<T>,
    out_proj: Linear<T>,
    num_heads: usize,
    causal: bool,
}

impl<T: Element> MultiheadAttention<T> {
    /// A layer with `torch.nn.MultiheadAttention`'s initialisation
    /// (Xavier-uniform `in_proj_weight`, zero biases, `out_proj.weight`
    /// `U(±1/√d)`), seeded.
    ///
    /// # Panics
    /// If `num_heads` is 0 or does not divide `embed_dim` (as PyTorch's
    /// constructor asserts); [`try_new`](Self::try_new) returns the error.
    pub fn new(embed_dim: usize, num_heads: usize, seed: u64) -> Self {
        Self::try_new(embed_dim, num_heads, seed).expect("MultiheadAttention::new")
    }

    /// [`new`](Self::new), with an error for a head count that does not
    /// divide `embed_dim`.
    ///
    /// # Errors
    /// If `num_heads` is 0 or does not divide `embed_dim`.
    pub fn try_new(embed_dim: usize, num_heads: usize, seed: u64) -> crate::Result<Self> {
        check_heads(embed_dim, num_heads)?;
        let rng = &mut StdRng::seed_from_u64(seed);
        let d = embed_dim;
        let w = Init::XavierUniform { gain: 1.0 }.tensor(&[3 * d, d], d, d, rng);
        let out = Linear::with_init(d, d, true, Init::TorchDefault, Init::Zeros, rng);
        Ok(Self::from_parts(
            w,
            Init::Zeros.tensor(&[3 * d], d, 3 * d, rng),
            out,
            num_heads,
        ))
    }

    /// A layer initialised like two `torch.nn.Linear`s (a fused `d → 3d`
    /// projection and `d → d`, weights and biases `U(±1/√d)`), the way
    /// GPT-style models build their attention; drawn from `rng`.
    ///
    /// # Errors
    /// If `num_heads` is 0 or does not divide `embed_dim`.
    pub fn linear_init(
        embed_dim: usize,
        num_heads: usize,
        rng: &mut impl Rng,
    ) -> crate::Result<Self> {
        check_heads(embed_dim, num_heads)?;
        let d = embed_dim;
        let w = Init::TorchDefault.tensor(&[3 * d, d], d, 3 * d, rng);
        let b = Init::TorchDefault.tensor(&[3 * d], d, 3 * d, rng);
        let out = Linear::with_rng(d, d, rng);
        Ok(Self::from_parts(w, b, out, num_heads))
    }

    fn from_parts(
        w: tapegrad_tensor::Tensor<T>,
        b: tapegrad_tensor::Tensor<T>,
        mut out_proj: Linear<T>,
        num_heads: usize,
    ) -> Self {
        for (n, p) in out_proj.parameters_mut() {
            p.set_name(format!("out_proj.{n}"));
        }
        MultiheadAttention {
            in_proj_weight: Param::new("in_proj_weight", w),
            in_proj_bias: Param::new("in_proj_bias", b),
            out_proj,
            num_heads,
            causal: false,
        }
    }

    /// The same layer with the causal flag set: position `i` attends to
    /// positions `j ≤ i` only.
    pub fn causal(mut self, on: bool) -> Self {
        self.causal = on;
        self
    }

    /// Model width.
    pub fn embed_dim(&self) -> usize {
        self.in_proj_weight.dims()[1]
    }

    /// Number of heads.
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// Self-attention of `x: [batch, positions, d]` with an extra mask
    /// (besides the causal flag) that broadcasts to `[batch, heads,
    /// positions, positions]`.
    ///
    /// # Errors
    /// An error naming the layer and the shapes if `x` is not `[batch,
    /// positions, d]` or the mask does not broadcast.
    pub fn forward_masked<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        mask: Option<&AttentionMask<T>>,
    ) -> TapeResult<Var<'t, T>> {
        let shape = x.shape();
        let (d, h) = (self.embed_dim(), self.num_heads);
        let &[b, t, width] = shape.as_slice() else {
            return Err(self.error(format!(
                "got inputs of shape {shape:?}: expected [batch, positions, {d}]"
            )));
        };
        if width != d {
            return Err(self.error(format!(
                "got inputs of shape {shape:?}: expected [batch, positions, {d}]"
            )));
        }
        if let Some(m) = mask {
            let mt = match m {
                AttentionMask::Keep(t) | AttentionMask::Additive(t) => t,
            };
            if mt.broadcast_to(&[b, h, t, t]).is_err() {
                return Err(self.error(format!(
                    "attention mask of shape {:?} does not broadcast to [batch, heads, positions, \
                     positions] = {:?} (inputs {shape:?})",
                    mt.dims(),
                    [b, h, t, t]
                )));
            }
        }
        // Three projections with the row blocks of the fused weight, not one
        // `[.., 3d]` projection cut into three: the cut's backward pads each
        // piece's gradient to the full `[batch, positions, 3d]` and adds the
        // three (4% of a transformer step); cutting the weight instead pads
        // only `[d, d]` blocks. The products and their sums are the same.
        let (w, bias) = (self.in_proj_weight.var(tape)?, self.in_proj_bias.var(tape)?);
        let (ws, bs) = (w.chunk(3, 0)?, bias.chunk(3, 0)?);
        let hd = d / h;
        let heads = |i: usize| -> TapeResult<Var<'t, T>> {
            let z = x.matmul(ws[i].t()?)?.add(bs[i])?;
            z.reshape(&[b, t, h, hd])?.transpose(1, 2)
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let a = q.scaled_dot_product_attention(k, v, mask, self.causal)?;
        let merged = a.transpose(1, 2)?.reshape(&[b, t, d])?;
        self.out_proj.forward(tape, merged)
    }

    fn error(&self, msg: String) -> TapeError {
        let path = self
            .in_proj_weight
            .name()
            .strip_suffix("in_proj_weight")
            .unwrap_or("");
        let path = path.strip_suffix('.').unwrap_or(path);
        TapeError::InvalidArgument {
            op: if path.is_empty() {
                "MultiheadAttention".into()
            } else {
                format!("layer {path} (MultiheadAttention)")
            },
            msg: format!("{}: {msg}", self.describe()),
        }
    }
}

fn check_heads(embed_dim: usize, num_heads: usize) -> crate::Result<()> {
    if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
        return Err(crate::Error::invalid(
            "MultiheadAttention",
            format!("{num_heads} heads do not divide embed_dim {embed_dim}"),
        ));
    }
    Ok(())
}

impl<T: Element> Module<T> for MultiheadAttention<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        self.forward_masked(tape, x, None)
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        let mut v = vec![
            ("in_proj_weight".to_string(), &self.in_proj_weight),
            ("in_proj_bias".to_string(), &self.in_proj_bias),
        ];
        v.extend(
            self.out_proj
                .parameters()
                .into_iter()
                .map(|(n, p)| (format!("out_proj.{n}"), p)),
        );
        v
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        let mut v = vec![
            ("in_proj_weight".to_string(), &mut self.in_proj_weight),
            ("in_proj_bias".to_string(), &mut self.in_proj_bias),
        ];
        v.extend(
            self.out_proj
                .parameters_mut()
                .into_iter()
                .map(|(n, p)| (format!("out_proj.{n}"), p)),
        );
        v
    }

    fn describe(&self) -> String {
        format!(
            "MultiheadAttention(embed_dim={}, num_heads={}, causal={})",
            self.embed_dim(),
            self.num_heads,
            self.causal
        )
    }
}
