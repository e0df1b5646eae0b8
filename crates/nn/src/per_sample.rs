//! Per-sample gradients: the gradient of each example's loss with respect
//! to every parameter, for a whole batch at once (what differentially
//! private training's per-sample clipping needs; `torch.func.vmap(grad)`).
//!
//! **Fast path.** When every parameter of the model belongs to a
//! [`Linear`](crate::Linear) layer used once in the forward pass, one
//! forward and one backward pass of the summed loss are enough: the
//! backward pass gives each layer's output gradient `g` (`[B, out]`), whose
//! row `b` is sample `b`'s own (the samples do not interact), and sample
//! `b`'s weight gradient is the outer product `g_bᵀ·x_b` with the layer's
//! saved input, its bias gradient `g_b`. One batched matrix product per
//! layer replaces `B` backward passes.
//!
//! **Fallback.** Any other model (other parameterised layers, shared
//! weights) gets one forward and backward pass per sample, each on a batch
//! of one.

use std::cell::RefCell;
use std::ops::Range;

use indexmap::IndexMap;
use tapegrad_autograd::{Error as TapeError, Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::grads::ParamGrads;
use crate::module::Module;

/// How [`per_sample_grads`] computed its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerSampleMethod {
    /// One backward pass and an outer product per `Linear` layer.
    OuterProducts,
    /// One backward pass per sample.
    Loop,
}

/// Per-sample gradients by parameter name: each tensor is `[B, ..param]`,
/// row `b` being the gradient of sample `b`'s loss.
#[derive(Clone, Debug)]
pub struct PerSampleGrads<T: Element = f32> {
    grads: IndexMap<String, Tensor<T>>,
    batch: usize,
    method: PerSampleMethod,
}

impl<T: Element> PerSampleGrads<T> {
    /// The per-sample gradients of the parameter `name` (`[B, ..param]`).
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.grads.get(name)
    }

    /// Every parameter's per-sample gradients, in the model's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<T>)> {
        self.grads.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The batch size `B`.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// Which path computed them.
    pub fn method(&self) -> PerSampleMethod {
        self.method
    }

    /// Each sample's gradient norm over all parameters, `[B]`.
    ///
    /// # Errors
    /// Only on allocation failure.
    pub fn norms(&self) -> TapeResult<Vec<f64>> {
        let mut sq = vec![0.0; self.batch];
        for g in self.grads.values() {
            let rows = g.reshape(&[self.batch, g.numel() / self.batch.max(1)])?;
            let per = rows.square()?.sum(&[1], false)?;
            for (s, v) in sq.iter_mut().zip(per.to_vec()) {
                *s += v.to_f64();
            }
        }
        Ok(sq.into_iter().map(f64::sqrt).collect())
    }

    /// The sum over samples of each sample's gradient scaled to a norm of
    /// at most `max_norm` (`g_b · min(1, max_norm/‖g_b‖)`, the norm taken
    /// over all parameters): the clipped sum of DP-SGD, ready for noise.
    ///
    /// # Errors
    /// If `max_norm` is not positive and finite.
    pub fn clipped_sum(&self, max_norm: f64) -> TapeResult<ParamGrads<T>> {
        if !(max_norm > 0.0 && max_norm.is_finite()) {
            return Err(TapeError::InvalidArgument {
                op: "PerSampleGrads::clipped_sum".into(),
                msg: format!("max_norm must be positive and finite, got {max_norm}"),
            });
        }
        let scale: Vec<T> = self
            .norms()?
            .into_iter()
            .map(|n| T::from_f64(if n > max_norm { max_norm / n } else { 1.0 }))
            .collect();
        // Σ_b s_b·g_b for every parameter at once: [1, B]·[B, numel].
        let scale = Tensor::from_vec(scale, &[1, self.batch])?;
        let mut out = ParamGrads::new();
        for (name, g) in &self.grads {
            let rows = g.reshape(&[self.batch, g.numel() / self.batch.max(1)])?;
            let sum = scale.matmul(&rows)?.reshape(&g.dims()[1..])?;
            out.insert(name.clone(), sum);
        }
        Ok(out)
    }
}

/// One `Linear` layer's use in a forward pass, noted for the fast path.
#[derive(Clone, Copy, Debug)]
struct LinearUse {
    tape: u64,
    weight: u64,
    bias: Option<u64>,
    input: usize,
    output: usize,
}

thread_local! {
    /// `Some` while [`per_sample_grads`] records a forward pass.
    static LINEAR_USES: RefCell<Option<Vec<LinearUse>>> = const { RefCell::new(None) };
}

/// Called by `Linear::forward`: notes the layer's parameters, input and
/// output when per-sample gradients are being recorded on this thread.
pub(crate) fn note_linear(tape: u64, weight: u64, bias: Option<u64>, input: usize, output: usize) {
    LINEAR_USES.with(|uses| {
        if let Some(uses) = uses.borrow_mut().as_mut() {
            uses.push(LinearUse {
                tape,
                weight,
                bias,
                input,
                output,
            });
        }
    });
}

/// The gradient of each sample's loss with respect to every parameter of
/// `model`, for the batch `x` (`[B, ..]`).
///
/// `loss(out, samples)` gets the model's output for the samples
/// `samples` (a range of rows of `x`, in order) and returns their losses,
/// one per sample (`[samples.len()]`, unreduced: `cross_entropy`'s mean
/// would scale each gradient by `1/B`).
///
/// The model must treat samples independently (no batch statistics), and
/// sample `b`'s loss must depend on output row `b` only, as for
/// `torch.func.vmap`. Dropout draws one mask for the batch on the fast path
/// and one per sample on the fallback; use eval mode for reproducible
/// gradients. See the module docs for the two paths.
///
/// ```
/// use tapegrad_nn::{per_sample_grads, Mlp, PerSampleMethod};
/// use tapegrad_tensor::Tensor;
///
/// let model = Mlp::<f64>::builder(&[3, 4, 2]).seed(1).build()?;
/// let x = Tensor::uniform_seeded(&[5, 3], -1.0, 1.0, 2);
/// let labels = [0, 1, 1, 0, 1];
/// let g = per_sample_grads(&model, &x, |out, rows| {
///     // −log softmax of each sample's label.
///     out.log_softmax(1)?.gather_rows(&labels[rows])?.neg()
/// })?;
/// assert_eq!(g.method(), PerSampleMethod::OuterProducts);
/// assert_eq!(g.get("0.weight").unwrap().dims(), [5, 4, 3]);
/// assert_eq!(g.get("2.bias").unwrap().dims(), [5, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// If `x` is 0-d, the forward pass or the loss fails, or the loss does not
/// return one value per sample.
pub fn per_sample_grads<T, M, L>(model: &M, x: &Tensor<T>, loss: L) -> TapeResult<PerSampleGrads<T>>
where
    T: Element,
    M: Module<T> + ?Sized,
    L: for<'t> Fn(Var<'t, T>, Range<usize>) -> TapeResult<Var<'t, T>>,
{
    let Some(&batch) = x.dims().first() else {
        return Err(TapeError::InvalidArgument {
            op: "per_sample_grads".into(),
            msg: "the input needs a batch axis, got a 0-d tensor".into(),
        });
    };
    if let Some(g) = outer_products(model, x, batch, &loss)? {
        return Ok(g);
    }
    looped(model, x, batch, &loss)
}

/// The per-sample losses of `out` for `rows`, checked to be `[rows.len()]`.
fn sample_losses<'t, T: Element>(
    loss: &impl for<'s> Fn(Var<'s, T>, Range<usize>) -> TapeResult<Var<'s, T>>,
    out: Var<'t, T>,
    rows: Range<usize>,
) -> TapeResult<Var<'t, T>> {
    let n = rows.len();
    let l = loss(out, rows)?;
    if l.shape() != [n] {
        return Err(TapeError::InvalidArgument {
            op: "per_sample_grads".into(),
            msg: format!(
                "the loss must return one value per sample, shape [{n}], got {:?}",
                l.shape().as_slice()
            ),
        });
    }
    Ok(l)
}

/// The fast path, or `None` when the model has parameters it cannot
/// handle.
fn outer_products<T: Element, M: Module<T> + ?Sized>(
    model: &M,
    x: &Tensor<T>,
    batch: usize,
    loss: &impl for<'s> Fn(Var<'s, T>, Range<usize>) -> TapeResult<Var<'s, T>>,
) -> TapeResult<Option<PerSampleGrads<T>>> {
    let tape = Tape::<T>::new();
    let outer = LINEAR_USES.with(|u| u.replace(Some(Vec::new())));
    let out = model.forward(&tape, tape.constant(x.clone()));
    let uses = LINEAR_USES.with(|u| u.replace(outer)).unwrap_or_default();
    let out = out?;
    let uses: Vec<LinearUse> = uses.into_iter().filter(|u| u.tape == tape.id()).collect();
    // Every parameter: recorded once, by one layer use, whose input keeps
    // the batch axis.
    let params = model.parameters();
    let covered = params.iter().all(|(_, p)| {
        let key = p.id().key();
        let by = uses
            .iter()
            .filter(|u| u.weight == key || u.bias == Some(key))
            .collect::<Vec<_>>();
        by.len() == 1
            && tape.param_vars(key).len() == 1
            && tape.node(by[0].input).value.dims().first() == Some(&batch)
    });
    if !covered {
        return Ok(None);
    }
    let total = sample_losses(loss, out, 0..batch)?.sum_all()?;
    let grads = tape.backward(total)?;
    let mut result = IndexMap::new();
    for (name, p) in &params {
        let key = p.id().key();
        let u = uses
            .iter()
            .find(|u| u.weight == key || u.bias == Some(key))
            .copied()
            .unwrap_or_else(|| unreachable!("checked above"));
        let input = tape.node(u.input).value;
        let out_shape = tape.node(u.output).value.shape();
        let (n_in, n_out) = (
            input.dims()[input.ndim() - 1],
            out_shape[out_shape.len() - 1],
        );
        let rows = input.numel() / (batch * n_in).max(1);
        let g = match grads.get_id(u.output) {
            Some(g) => g.reshape(&[batch, rows, n_out])?,
            None => Tensor::zeros(&[batch, rows, n_out]),
        };
        let t = if u.weight == key {
            // Σ over each sample's rows of g ⊗ x: [B, out, rows]·[B, rows, in].
            let x3 = input.reshape(&[batch, rows, n_in])?;
            g.permute(&[0, 2, 1])?.matmul(&x3)?
        } else {
            g.sum(&[1], false)?
        };
        result.insert(name.clone(), t);
    }
    Ok(Some(PerSampleGrads {
        grads: result,
        batch,
        method: PerSampleMethod::OuterProducts,
    }))
}

/// The fallback: one backward pass per sample.
fn looped<T: Element, M: Module<T> + ?Sized>(
    model: &M,
    x: &Tensor<T>,
    batch: usize,
    loss: &impl for<'s> Fn(Var<'s, T>, Range<usize>) -> TapeResult<Var<'s, T>>,
) -> TapeResult<PerSampleGrads<T>> {
    let params = model.parameters();
    let mut rows: IndexMap<String, Vec<Tensor<T>>> = IndexMap::new();
    for b in 0..batch {
        let tape = Tape::<T>::new();
        let xb = tape.constant(x.narrow(0, b, 1)?.to_contiguous());
        let out = model.forward(&tape, xb)?;
        let l = sample_losses(loss, out, b..b + 1)?.sum_all()?;
        let grads = tape.backward(l)?;
        for (name, p) in &params {
            let g = p.grad(&grads).unwrap_or_else(|| Tensor::zeros(p.dims()));
            rows.entry(name.clone()).or_default().push(g);
        }
    }
    let mut result = IndexMap::new();
    for (name, gs) in rows {
        let refs: Vec<&Tensor<T>> = gs.iter().collect();
        result.insert(name, Tensor::stack(&refs, 0)?);
    }
    Ok(PerSampleGrads {
        grads: result,
        batch,
        method: PerSampleMethod::Loop,
    })
}
