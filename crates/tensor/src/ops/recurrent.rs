//! Recurrent-layer kernels: a whole sequence of RNN, LSTM or GRU steps
//! forward, and its backward through time, with PyTorch's gate order.
//!
//! The input-to-hidden product `xg = x·W_ihᵀ + b_ih` does not depend on
//! the state, so callers compute it for every step at once (one large GEMM)
//! and pass it in; these kernels run the part that must go step by step:
//! `hg = h·W_hhᵀ` (one GEMM per step, with `W_hh` laid out once for all
//! steps so the GEMM reads it in place: see `step_weight`) and the gate
//! arithmetic with `b_hh`,
//! fused into one pass over each step's rows. The backward pass runs the
//! steps in reverse, keeps the pre-activation gradients of every step, and
//! forms `∂L/∂W_hh` with one GEMM over all steps at the end.
//!
//! Threads: the sequences of a batch are independent, so the batch is cut
//! into parts of whole sequences (how many depends on the batch size alone)
//! and each part runs forward, or backward through time, on one thread
//! from start to end; the parts' shares of `∂L/∂W_hh` and `∂L/∂b_hh` are
//! added up in part order. No thread waits for another between steps.
//!
//! Rows: `xg`, the output and `∂L/∂output` are 3-d row sets `[seq, batch,
//! width]` (time-major) or `[batch, seq, width]` (`batch_first`); row `(t,
//! b)` is `t·batch + b` or `b·seq + t`. The kernels keep their own results
//! sequence-major (`[batch, seq, width]`, each part one contiguous piece);
//! time-major results are transposed once at the end.
//!
//! Cells, with `σ` the logistic function and `⊙` the elementwise product
//! (`x*` from `xg`, `h*` from `hg = h·W_hhᵀ + b_hh`):
//!
//! | kind | gates | step |
//! | --- | --- | --- |
//! | RNN | 1 | `h = tanh(x + h)` or `relu(x + h)` |
//! | LSTM | 4: i, f, g, o | `i, f, o = σ(x* + h*)`, `g = tanh(xg + hg)`, `c = f⊙c₋ + i⊙g`, `h = o⊙tanh c` |
//! | GRU | 3: r, z, n | `r, z = σ(x* + h*)`, `n = tanh(xn + r⊙hn)`, `h = (1 − z)⊙n + z⊙h₋` |

mod step_weight;

use crate::error::{Error, Result};
use crate::simd::Kernel;

use self::step_weight::StepWeight;
use crate::{Element, Tensor};

/// Which recurrent cell a sequence kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// Elman RNN with `tanh`.
    RnnTanh,
    /// Elman RNN with `relu`.
    RnnRelu,
    /// Long short-term memory (gates i, f, g, o).
    Lstm,
    /// Gated recurrent unit (gates r, z, n).
    Gru,
}

impl CellKind {
    /// Every cell, in declaration order.
    pub const ALL: [CellKind; 4] = [
        CellKind::RnnTanh,
        CellKind::RnnRelu,
        CellKind::Lstm,
        CellKind::Gru,
    ];

    /// Number of gate blocks in the weights: `W_ih` is `[gates·hidden, in]`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Width of one output row in units of `hidden`: 2 for the LSTM (its
    /// rows hold `h` then `c`), else 1.
    pub fn state_blocks(self) -> usize {
        if self == CellKind::Lstm {
            2
        } else {
            1
        }
    }

    /// Width of one saved-gates row in units of `hidden`: LSTM saves i, f,
    /// g, o; GRU saves r, z, n and `hn = W_hn·h + b_hn`; RNNs need nothing
    /// beyond their output.
    fn saved_blocks(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 0,
            CellKind::Lstm | CellKind::Gru => 4,
        }
    }

    /// The name PyTorch gives the layer (used in messages).
    pub fn layer_name(self) -> &'static str {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => "RNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }
}

/// Sizes of one recurrent sequence, checked against the tensors given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqDims {
    /// Time steps.
    pub seq: usize,
    /// Sequences in the batch.
    pub batch: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Whether rows are `[batch, seq]` rather than `[seq, batch]`.
    pub batch_first: bool,
}

impl SeqDims {
    /// The row of step `t` of sequence `b`.
    #[inline]
    fn row(&self, t: usize, b: usize) -> usize {
        if self.batch_first {
            b * self.seq + t
        } else {
            t * self.batch + b
        }
    }

    /// The 3-d shape of a row set `width` wide.
    fn shape(&self, width: usize) -> [usize; 3] {
        if self.batch_first {
            [self.batch, self.seq, width]
        } else {
            [self.seq, self.batch, width]
        }
    }
}

/// Checks the operands of a sequence kernel and returns its sizes: `xg`
/// `[seq, batch, gates·hidden]` (or batch first), `w_hh` `[gates·hidden,
/// hidden]`, `b_hh` `[gates·hidden]`, `h0` (and for the LSTM `c0`) `[batch,
/// hidden]`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the layer and every shape when one
/// does not fit, or when the sequence is empty.
pub fn check_operands<T: Element>(
    kind: CellKind,
    batch_first: bool,
    xg: &Tensor<T>,
    w_hh: &Tensor<T>,
    b_hh: &Tensor<T>,
    h0: &Tensor<T>,
    c0: Option<&Tensor<T>>,
) -> Result<SeqDims> {
    let bad = |why: &str| {
        Error::invalid(
            "recurrent",
            format!(
                "{} sequence: {why} (xg {:?}, w_hh {:?}, b_hh {:?}, h0 {:?}{})",
                kind.layer_name(),
                xg.dims(),
                w_hh.dims(),
                b_hh.dims(),
                h0.dims(),
                c0.map(|c| format!(", c0 {:?}", c.dims()))
                    .unwrap_or_default()
            ),
        )
    };
    if w_hh.ndim() != 2 || xg.ndim() != 3 {
        return Err(bad("xg must be 3-d and w_hh 2-d"));
    }
    let hidden = w_hh.dims()[1];
    let gh = kind.gates() * hidden;
    if w_hh.dims()[0] != gh {
        return Err(bad(&format!(
            "w_hh must be [{}·hidden, hidden]",
            kind.gates()
        )));
    }
    let (d0, d1) = (xg.dims()[0], xg.dims()[1]);
    let (seq, batch) = if batch_first { (d1, d0) } else { (d0, d1) };
    if xg.dims()[2] != gh {
        return Err(bad(&format!("xg rows must be {gh} wide")));
    }
    if b_hh.dims() != [gh] {
        return Err(bad(&format!("b_hh must be [{gh}]")));
    }
    if h0.dims() != [batch, hidden] {
        return Err(bad(&format!("h0 must be [{batch}, {hidden}]")));
    }
    match (kind == CellKind::Lstm, c0) {
        (true, Some(c)) if c.dims() == [batch, hidden] => {}
        (true, _) => return Err(bad(&format!("c0 must be [{batch}, {hidden}]"))),
        (false, Some(_)) => return Err(bad("only the LSTM has a cell state")),
        (false, None) => {}
    }
    if seq == 0 {
        return Err(bad("the sequence has no time steps"));
    }
    Ok(SeqDims {
        seq,
        batch,
        hidden,
        batch_first,
    })
}

/// What [`forward`] returns.
#[derive(Debug, Clone)]
pub struct SeqForward<T: Element> {
    /// Every step's state, `[seq, batch, blocks·hidden]` (or batch first):
    /// `h`, and for the LSTM `h` then `c`.
    pub output: Tensor<T>,
    /// The same states sequence by sequence, `[batch, seq, blocks·hidden]`,
    /// the layout the kernels work in (with `batch_first` this is `output`
    /// itself, sharing its storage).
    pub states: Tensor<T>,
    /// Gate activations the backward pass needs, `[batch, seq,
    /// saved·hidden]` (empty for RNNs).
    pub saved: Tensor<T>,
}

/// What [`backward`] returns: the gradients of every operand.
#[derive(Debug, Clone)]
pub struct SeqGrads<T: Element> {
    /// `∂L/∂xg`, shaped like `xg`.
    pub xg: Tensor<T>,
    /// `∂L/∂W_hh`.
    pub w_hh: Tensor<T>,
    /// `∂L/∂b_hh`.
    pub b_hh: Tensor<T>,
    /// `∂L/∂h0`.
    pub h0: Tensor<T>,
    /// `∂L/∂c0` (LSTM only).
    pub c0: Option<Tensor<T>>,
}

/// The first `N` blocks of `width` elements of `s`.
#[inline(always)]
fn blocks<const N: usize, T>(s: &[T], width: usize) -> [&[T]; N] {
    std::array::from_fn(|k| &s[k * width..(k + 1) * width])
}

/// The first `N` blocks of `width` elements of `s`, mutable.
#[inline(always)]
fn blocks_mut<const N: usize, T>(s: &mut [T], width: usize) -> [&mut [T]; N] {
    let mut rest = s;
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(width);
        rest = tail;
        head
    })
}

/// Contiguous elements of `t` (borrowed when already contiguous).
fn dense<T: Element>(t: &Tensor<T>) -> std::borrow::Cow<'_, [T]> {
    match t.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(t.to_vec()),
    }
}

/// Sequences of a batch never meet: each one's steps depend only on its
/// own earlier steps. So the batch is cut into parts of whole sequences and
/// each part runs all its steps on one thread, with no thread waiting for
/// another inside the sequence. (Splitting every step's small product and
/// gate arithmetic across threads instead made them meet twice per step, and
/// at batch 32 × hidden 128 the waiting cost more than the work.)
///
/// A part has at least this many sequences, so its per-step product
/// `[part, hidden]·[hidden, gates·hidden]` is still a real matrix product.
const MIN_PART: usize = 16;

/// At most this many parts.
const MAX_PARTS: usize = 16;

/// How many parts a batch is cut into. It depends on the batch alone, never
/// on the number of threads, so results are the same bits for any thread
/// count; a power of two deals out evenly to 2, 4, 8 or 16 threads.
fn part_count(batch: usize) -> usize {
    let parts = (batch / MIN_PART).clamp(1, MAX_PARTS);
    1 << parts.ilog2()
}

/// The sequences of part `k` of `parts`.
fn part_range(batch: usize, parts: usize, k: usize) -> std::ops::Range<usize> {
    batch * k / parts..batch * (k + 1) / parts
}

/// Cuts `buf`, rows of `row` elements one per sequence-unit, into the
/// parts' pieces: part `k` gets `units(k)·row` elements, in order.
fn split_parts<T>(
    mut buf: &mut [T],
    parts: usize,
    units: impl Fn(usize) -> usize,
) -> Vec<&mut [T]> {
    (0..parts)
        .map(|k| {
            let (head, tail) = std::mem::take(&mut buf).split_at_mut(units(k));
            buf = tail;
            head
        })
        .collect()
}

/// The operands every part of a sequence reads, made contiguous.
struct Operands<'a, T: Element> {
    kind: CellKind,
    d: SeqDims,
    /// `xg` in its own layout (row `d.row(t, b)`).
    xg: &'a [T],
    /// The per-step product's right side, laid out once: `W_hhᵀ` forward,
    /// `W_hh` backward.
    w: StepWeight<T>,
    bias: &'a [T],
    h0: &'a [T],
    /// Empty unless the cell is an LSTM.
    c0: &'a [T],
}

impl<T: Element> Operands<'_, T> {
    fn gh(&self) -> usize {
        self.kind.gates() * self.d.hidden
    }
    fn sw(&self) -> usize {
        self.kind.state_blocks() * self.d.hidden
    }
    fn gw(&self) -> usize {
        self.kind.saved_blocks() * self.d.hidden
    }
}

/// Runs `job` on every part, in parallel when there are several.
fn run_parts<J: Send>(jobs: &mut [J], job: impl Fn(&mut J) + Sync + Send) {
    crate::parallel::for_each_chunk(jobs, 1, |_, js| js.iter_mut().for_each(&job));
}

/// Runs the whole sequence forward from state `h0` (and `c0`).
///
/// # Errors
/// As [`check_operands`]; [`Error::TooLarge`] if the output does not fit.
pub fn forward<T: Element>(
    kind: CellKind,
    batch_first: bool,
    xg: &Tensor<T>,
    w_hh: &Tensor<T>,
    b_hh: &Tensor<T>,
    h0: &Tensor<T>,
    c0: Option<&Tensor<T>>,
) -> Result<SeqForward<T>> {
    let d = check_operands(kind, batch_first, xg, w_hh, b_hh, h0, c0)?;
    forward_in_parts(kind, d, xg, w_hh, b_hh, h0, c0, part_count(d.batch))
}

#[allow(clippy::too_many_arguments)]
fn forward_in_parts<T: Element>(
    kind: CellKind,
    d: SeqDims,
    xg: &Tensor<T>,
    w_hh: &Tensor<T>,
    b_hh: &Tensor<T>,
    h0: &Tensor<T>,
    c0: Option<&Tensor<T>>,
    parts: usize,
) -> Result<SeqForward<T>> {
    let (xg, bias, h0v) = (dense(xg), dense(b_hh), dense(h0));
    let c0v = c0.map(dense).unwrap_or_default();
    let ops = Operands {
        kind,
        d,
        xg: &xg,
        w: StepWeight::new(&w_hh.t()?, "recurrent")?,
        bias: &bias,
        h0: &h0v,
        c0: &c0v,
    };
    let (sw, gw) = (ops.sw(), ops.gw());
    crate::layout::checked_numel::<T>("recurrent", &d.shape(sw.max(gw).max(ops.gh())))?;
    let (seq, batch) = (d.seq, d.batch);
    // Sequence-major, so each part's rows are one contiguous piece.
    // Tensors from the start: their buffers come from the pool of freed
    // large buffers, so a training loop does not fault in fresh pages for
    // them every step.
    let mut states = Tensor::try_zeros(&[batch, seq, sw])?;
    let mut saved = Tensor::try_zeros(&[batch, seq, gw])?;
    let span = |k: usize| part_range(batch, parts, k);
    let mut jobs: Vec<_> =
        split_parts(states.make_mut_slice(), parts, |k| span(k).len() * seq * sw)
            .into_iter()
            .zip(split_parts(saved.make_mut_slice(), parts, |k| {
                span(k).len() * seq * gw
            }))
            .enumerate()
            .map(|(k, (states, saved))| (span(k), states, saved))
            .collect();
    run_parts(&mut jobs, |(seqs, states, saved)| {
        forward_part(&ops, seqs.clone(), states, saved)
    });
    let output = if d.batch_first {
        states.clone()
    } else {
        states.permute(&[1, 0, 2])?.to_contiguous()
    };
    Ok(SeqForward {
        output,
        states,
        saved,
    })
}

/// Every step of sequences `seqs`, writing their rows of the states and
/// saved gates (`states`, `saved`: sequence-major, from `seqs.start`).
fn forward_part<T: Element>(
    ops: &Operands<'_, T>,
    seqs: std::ops::Range<usize>,
    states: &mut [T],
    saved: &mut [T],
) {
    let (hid, gh) = (ops.d.hidden, ops.gh());
    let n = seqs.len();
    // The state entering the current step, one contiguous row per sequence.
    let mut h = ops.h0[seqs.start * hid..seqs.end * hid].to_vec();
    let mut c = if ops.kind == CellKind::Lstm {
        ops.c0[seqs.start * hid..seqs.end * hid].to_vec()
    } else {
        Vec::new()
    };
    let mut hg = vec![T::ZERO; n * gh];
    for t in 0..ops.d.seq {
        // hg = h·W_hhᵀ (the cells add b_hh).
        ops.w.mul_into(n, &h, hid, &mut hg);
        crate::simd::run_wide(ForwardCells {
            ops,
            first: seqs.start,
            t,
            hg: &hg,
            states,
            saved,
            h: &mut h,
            c: &mut c,
        });
    }
}

/// Backpropagation through time: the gradients of every operand of
/// [`forward`], given its result and `grad_output` (`∂L/∂output`, any
/// layout, the output's shape).
///
/// # Errors
/// As [`check_operands`], and if `fwd` or `grad_output` do not have the
/// shapes [`forward`] gives for these operands.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Element>(
    kind: CellKind,
    batch_first: bool,
    xg: &Tensor<T>,
    w_hh: &Tensor<T>,
    b_hh: &Tensor<T>,
    h0: &Tensor<T>,
    c0: Option<&Tensor<T>>,
    fwd: &SeqForward<T>,
    grad_output: &Tensor<T>,
) -> Result<SeqGrads<T>> {
    let d = check_operands(kind, batch_first, xg, w_hh, b_hh, h0, c0)?;
    let hid = d.hidden;
    let (sw, gw) = (kind.state_blocks() * hid, kind.saved_blocks() * hid);
    let (batch, seq) = (d.batch, d.seq);
    if fwd.states.dims() != [batch, seq, sw]
        || fwd.saved.dims() != [batch, seq, gw]
        || grad_output.dims() != d.shape(sw)
    {
        return Err(Error::invalid(
            "recurrent_backward",
            format!(
                "{} sequence of {:?}: states {:?}, saved gates {:?} and gradient {:?} \
                 should be {:?}, {:?} and {:?}",
                kind.layer_name(),
                xg.dims(),
                fwd.states.dims(),
                fwd.saved.dims(),
                grad_output.dims(),
                [batch, seq, sw],
                [batch, seq, gw],
                d.shape(sw)
            ),
        ));
    }
    backward_in_parts(kind, d, w_hh, h0, c0, fwd, grad_output, part_count(batch))
}

#[allow(clippy::too_many_arguments)]
fn backward_in_parts<T: Element>(
    kind: CellKind,
    d: SeqDims,
    w_hh: &Tensor<T>,
    h0: &Tensor<T>,
    c0: Option<&Tensor<T>>,
    fwd: &SeqForward<T>,
    grad_output: &Tensor<T>,
    parts: usize,
) -> Result<SeqGrads<T>> {
    let h0v = dense(h0);
    let c0v = c0.map(dense).unwrap_or_default();
    let (hid, gh) = (d.hidden, kind.gates() * d.hidden);
    let ops = Operands {
        kind,
        d,
        xg: &[],
        w: StepWeight::new(w_hh, "recurrent_backward")?,
        bias: &[],
        h0: &h0v,
        c0: &c0v,
    };
    let (batch, seq) = (d.batch, d.seq);
    // The kernels work sequence-major (see `forward`).
    let gout = if d.batch_first {
        dense(grad_output)
    } else {
        std::borrow::Cow::Owned(grad_output.permute(&[1, 0, 2])?.to_vec())
    };
    let (states, saved) = (dense(&fwd.states), dense(&fwd.saved));
    let reads = BackwardReads {
        ops: &ops,
        states: &states,
        saved: &saved,
        gout: &gout,
    };
    let lstm = kind == CellKind::Lstm;
    let mut dxg = Tensor::try_zeros(&[batch, seq, gh])?;
    let mut dh0 = Tensor::try_zeros(&[batch, hid])?;
    let mut dc0 = Tensor::try_zeros(&[if lstm { batch } else { 0 }, hid])?;
    // Each part's share of ∂L/∂W_hh and ∂L/∂b_hh, added up in part order.
    let mut dw_parts = vec![T::ZERO; parts * gh * hid];
    let mut db_parts = vec![T::ZERO; parts * gh];
    let span = |k: usize| part_range(batch, parts, k);
    let c_units = |k: usize| if lstm { span(k).len() * hid } else { 0 };
    let mut jobs: Vec<BackwardPart<'_, T>> =
        split_parts(dxg.make_mut_slice(), parts, |k| span(k).len() * seq * gh)
            .into_iter()
            .zip(split_parts(dh0.make_mut_slice(), parts, |k| {
                span(k).len() * hid
            }))
            .zip(split_parts(dc0.make_mut_slice(), parts, c_units))
            .zip(split_parts(&mut dw_parts, parts, |_| gh * hid))
            .zip(split_parts(&mut db_parts, parts, |_| gh))
            .enumerate()
            .map(|(k, ((((dxg, dh0), dc0), dw), db))| BackwardPart {
                seqs: span(k),
                dxg,
                dh0,
                dc0,
                dw,
                db,
            })
            .collect();
    run_parts(&mut jobs, |job| backward_part(&reads, job));
    drop(jobs);
    let mut dw = dw_parts[..gh * hid].to_vec();
    for part in dw_parts.chunks_exact(gh * hid).skip(1) {
        dw.iter_mut().zip(part).for_each(|(a, &v)| *a += v);
    }
    let mut db = db_parts[..gh].to_vec();
    for part in db_parts.chunks_exact(gh).skip(1) {
        db.iter_mut().zip(part).for_each(|(a, &v)| *a += v);
    }
    Ok(SeqGrads {
        xg: if d.batch_first {
            dxg
        } else {
            dxg.permute(&[1, 0, 2])?.to_contiguous()
        },
        w_hh: Tensor::from_vec(dw, &[gh, hid])?,
        b_hh: Tensor::from_vec(db, &[gh])?,
        h0: dh0,
        c0: lstm.then_some(dc0),
    })
}

/// A zeroed scratch buffer of `n` elements, from the pool of freed large
/// buffers (returned to it when dropped).
fn scratch<T: Element>(n: usize) -> Tensor<T> {
    // A part's scratch is at most as large as a result already allocated.
    Tensor::zeros(&[n])
}

/// What every part of the backward pass reads: the operands, the forward
/// result and `∂L/∂output`, all sequence-major.
struct BackwardReads<'a, T: Element> {
    ops: &'a Operands<'a, T>,
    states: &'a [T],
    saved: &'a [T],
    gout: &'a [T],
}

/// One part's share of the backward pass: its sequences' rows of `∂L/∂xg`
/// (sequence-major), of `∂L/∂h0` and `∂L/∂c0`, and its own sums for
/// `∂L/∂W_hh` and `∂L/∂b_hh`.
struct BackwardPart<'a, T> {
    seqs: std::ops::Range<usize>,
    dxg: &'a mut [T],
    dh0: &'a mut [T],
    dc0: &'a mut [T],
    dw: &'a mut [T],
    db: &'a mut [T],
}

/// The steps of one part in reverse, then its `∂L/∂W_hh` with one product
/// over all its rows.
fn backward_part<T: Element>(r: &BackwardReads<'_, T>, job: &mut BackwardPart<'_, T>) {
    let ops = r.ops;
    let (kind, seq, hid, gh) = (ops.kind, ops.d.seq, ops.d.hidden, ops.gh());
    let n = job.seqs.len();
    let gru = kind == CellKind::Gru;
    // Pre-activation gradients on the h side: the same as the x side except
    // for the GRU's n gate (`hn` is scaled by r), which gets its own rows.
    let mut dhg_buf = scratch(if gru { n * seq * gh } else { 0 });
    let dhg = dhg_buf.make_mut_slice();
    // ∂L/∂h (and ∂L/∂c) arriving at step t from step t + 1.
    let mut dh_next = vec![T::ZERO; n * hid];
    let mut dc_next = vec![T::ZERO; job.dc0.len()];
    let mut direct = vec![T::ZERO; if gru { n * hid } else { 0 }];
    for t in (0..seq).rev() {
        crate::simd::run_wide(BackwardCells {
            r,
            first: job.seqs.start,
            t,
            dxg: job.dxg,
            dhg,
            dh_next: &dh_next,
            dc_next: &mut dc_next,
            direct: &mut direct,
        });
        // ∂L/∂h entering step t = dhg_t·W_hh (+ the GRU's direct path);
        // the part's rows of step t are `seq` rows apart.
        let side: &[T] = if gru { dhg } else { job.dxg };
        ops.w.mul_into(n, &side[t * gh..], seq * gh, &mut dh_next);
        if gru {
            dh_next.iter_mut().zip(&direct).for_each(|(v, &x)| *v += x);
        }
    }
    job.dh0.copy_from_slice(&dh_next);
    job.dc0.copy_from_slice(&dc_next);
    // ∂L/∂W_hh = Σ_rows dhg[row]ᵀ·h_prev[row] over the part's rows.
    let mut h_prev_buf = scratch(n * seq * hid);
    let h_prev = h_prev_buf.make_mut_slice();
    for (k, b) in job.seqs.clone().enumerate() {
        for t in 0..seq {
            let row = (k * seq + t) * hid;
            h_prev[row..row + hid].copy_from_slice(prev_state(r, b, t));
        }
    }
    let side: &[T] = if gru { dhg } else { job.dxg };
    T::gemm(gh, n * seq, hid, side, 1, gh, h_prev, hid, 1, job.dw);
    for row in side.chunks_exact(gh) {
        job.db.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
}

/// One forward step of one part's sequences: the gate arithmetic on `xg`
/// and `hg`, writing the state and saved rows of step `t` and the new state.
struct ForwardCells<'a, T: Element> {
    ops: &'a Operands<'a, T>,
    /// The part's first sequence in the batch.
    first: usize,
    t: usize,
    /// `h·W_hhᵀ + b_hh`, one row per sequence of the part.
    hg: &'a [T],
    /// The part's states and saved gates, sequence-major.
    states: &'a mut [T],
    saved: &'a mut [T],
    /// The state entering step `t`, replaced by the one leaving it.
    h: &'a mut [T],
    c: &'a mut [T],
}

impl<T: Element> Kernel for ForwardCells<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ForwardCells {
            ops,
            first,
            t,
            hg,
            states,
            saved,
            h,
            c,
        } = self;
        let (kind, d) = (ops.kind, &ops.d);
        let (hid, gh, sw, gw) = (d.hidden, ops.gh(), ops.sw(), ops.gw());
        for k in 0..h.len() / hid {
            let r = d.row(t, first + k);
            let local = k * d.seq + t;
            let x = &ops.xg[r * gh..(r + 1) * gh];
            let hr = &hg[k * gh..(k + 1) * gh];
            let o = &mut states[local * sw..(local + 1) * sw];
            let s = &mut saved[local * gw..(local + 1) * gw];
            let hb = &mut h[k * hid..(k + 1) * hid];
            match kind {
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    for j in 0..hid {
                        let pre = x[j] + (hr[j] + ops.bias[j]);
                        let y = if kind == CellKind::RnnTanh {
                            pre.tanh_fast()
                        } else {
                            pre.max_val(T::ZERO)
                        };
                        o[j] = y;
                        hb[j] = y;
                    }
                }
                CellKind::Lstm => {
                    let cb = &mut c[k * hid..(k + 1) * hid];
                    let [xi, xf, xc, xo] = blocks(x, hid);
                    let [hi, hf, hc, ho] = blocks(hr, hid);
                    let [bi, bf, bc, bo] = blocks(ops.bias, hid);
                    let [si, sf, sg, so] = blocks_mut(s, hid);
                    let [oh, oc] = blocks_mut(o, hid);
                    for j in 0..hid {
                        let i = (xi[j] + (hi[j] + bi[j])).sigmoid_fast();
                        let f = (xf[j] + (hf[j] + bf[j])).sigmoid_fast();
                        let g = (xc[j] + (hc[j] + bc[j])).tanh_fast();
                        let og = (xo[j] + (ho[j] + bo[j])).sigmoid_fast();
                        let cn = f * cb[j] + i * g;
                        let hn = og * cn.tanh_fast();
                        (si[j], sf[j], sg[j], so[j]) = (i, f, g, og);
                        (oh[j], oc[j]) = (hn, cn);
                        (hb[j], cb[j]) = (hn, cn);
                    }
                }
                CellKind::Gru => {
                    let b = ops.bias;
                    for j in 0..hid {
                        let rg = (x[j] + (hr[j] + b[j])).sigmoid_fast();
                        let z = (x[hid + j] + (hr[hid + j] + b[hid + j])).sigmoid_fast();
                        let hn = hr[2 * hid + j] + b[2 * hid + j];
                        let n = (x[2 * hid + j] + rg * hn).tanh_fast();
                        let y = (T::ONE - z) * n + z * hb[j];
                        (s[j], s[hid + j], s[2 * hid + j], s[3 * hid + j]) = (rg, z, n, hn);
                        o[j] = y;
                        hb[j] = y;
                    }
                }
            }
        }
    }
}

/// One backward step of one part's sequences: the pre-activation gradients
/// of step `t` from the output gradient and the gradient arriving from step
/// `t + 1` (`dh_next`, `dc_next`); updates `dc_next` and the GRU's direct
/// path to `h₋`.
struct BackwardCells<'a, T: Element> {
    r: &'a BackwardReads<'a, T>,
    /// The part's first sequence in the batch.
    first: usize,
    t: usize,
    /// The part's pre-activation gradients, sequence-major.
    dxg: &'a mut [T],
    dhg: &'a mut [T],
    dh_next: &'a [T],
    dc_next: &'a mut [T],
    direct: &'a mut [T],
}

impl<T: Element> Kernel for BackwardCells<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let BackwardCells {
            r: reads,
            first,
            t,
            dxg,
            dhg,
            dh_next,
            dc_next,
            direct,
        } = self;
        let ops = reads.ops;
        let (kind, seq) = (ops.kind, ops.d.seq);
        let (hid, gh, sw, gw) = (ops.d.hidden, ops.gh(), ops.sw(), ops.gw());
        for k in 0..dh_next.len() / hid {
            let b = first + k;
            let (r, local) = (b * seq + t, k * seq + t);
            let o = &reads.states[r * sw..(r + 1) * sw];
            let go = &reads.gout[r * sw..(r + 1) * sw];
            let s = &reads.saved[r * gw..(r + 1) * gw];
            let dx = &mut dxg[local * gh..(local + 1) * gh];
            let dhn = &dh_next[k * hid..(k + 1) * hid];
            match kind {
                CellKind::RnnTanh => {
                    for j in 0..hid {
                        dx[j] = (go[j] + dhn[j]) * (T::ONE - o[j] * o[j]);
                    }
                }
                CellKind::RnnRelu => {
                    for j in 0..hid {
                        dx[j] = if o[j] > T::ZERO {
                            go[j] + dhn[j]
                        } else {
                            T::ZERO
                        };
                    }
                }
                CellKind::Lstm => {
                    let c_prev: &[T] = if t == 0 {
                        &ops.c0[b * hid..(b + 1) * hid]
                    } else {
                        &reads.states[(r - 1) * sw + hid..r * sw]
                    };
                    let dcn = &mut dc_next[k * hid..(k + 1) * hid];
                    let [si, sf, sg, so] = blocks(s, hid);
                    let [oc, goh, goc, dhn] = [&o[hid..], &go[..hid], &go[hid..], &dhn[..hid]];
                    let [di, df, dg, dout] = blocks_mut(dx, hid);
                    for j in 0..hid {
                        let (i, f, g, og) = (si[j], sf[j], sg[j], so[j]);
                        let tc = oc[j].tanh_fast();
                        let dh = goh[j] + dhn[j];
                        let dc = goc[j] + dcn[j] + dh * og * (T::ONE - tc * tc);
                        di[j] = dc * g * i * (T::ONE - i);
                        df[j] = dc * c_prev[j] * f * (T::ONE - f);
                        dg[j] = dc * i * (T::ONE - g * g);
                        dout[j] = dh * tc * og * (T::ONE - og);
                        dcn[j] = dc * f;
                    }
                }
                CellKind::Gru => {
                    let hp = prev_state(reads, b, t);
                    let dh_side = &mut dhg[local * gh..(local + 1) * gh];
                    let dir = &mut direct[k * hid..(k + 1) * hid];
                    for j in 0..hid {
                        let (rg, z, n, hn) = (s[j], s[hid + j], s[2 * hid + j], s[3 * hid + j]);
                        let dh = go[j] + dhn[j];
                        let dn = dh * (T::ONE - z) * (T::ONE - n * n);
                        let dz = dh * (hp[j] - n) * z * (T::ONE - z);
                        let dr = dn * hn * rg * (T::ONE - rg);
                        (dx[j], dx[hid + j], dx[2 * hid + j]) = (dr, dz, dn);
                        (dh_side[j], dh_side[hid + j], dh_side[2 * hid + j]) = (dr, dz, dn * rg);
                        dir[j] = dh * z;
                    }
                }
            }
        }
    }
}

/// The hidden state entering step `t` of sequence `b`: `h0`'s row at `t =
/// 0`, else the state row of step `t − 1` (whose first block is `h`).
#[inline(always)]
fn prev_state<'a, T: Element>(r: &BackwardReads<'a, T>, b: usize, t: usize) -> &'a [T] {
    let (hid, sw) = (r.ops.d.hidden, r.ops.sw());
    if t == 0 {
        &r.ops.h0[b * hid..(b + 1) * hid]
    } else {
        let row = (b * r.ops.d.seq + t - 1) * sw;
        &r.states[row..row + hid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [CellKind; 4] = CellKind::ALL;

    /// `xg`, `W_hh`, `b_hh`, `h0`, `c0` for `kind` and a gradient for the
    /// output, seeded.
    fn operands(kind: CellKind, d: SeqDims, seed: u64) -> [Tensor<f64>; 6] {
        let gh = kind.gates() * d.hidden;
        let r = |shape: &[usize], k: u64| Tensor::<f64>::uniform_seeded(shape, -1.0, 1.0, seed + k);
        let c0 = if kind == CellKind::Lstm {
            r(&[d.batch, d.hidden], 4)
        } else {
            Tensor::zeros(&[0])
        };
        [
            r(&d.shape(gh), 0),
            r(&[gh, d.hidden], 1),
            r(&[gh], 2),
            r(&[d.batch, d.hidden], 3),
            c0,
            r(&d.shape(kind.state_blocks() * d.hidden), 5),
        ]
    }

    fn close(a: &Tensor<f64>, b: &Tensor<f64>, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}");
        for (x, y) in a.to_vec().iter().zip(b.to_vec()) {
            assert!(
                (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                "{what}: {x} vs {y}"
            );
        }
    }

    #[test]
    fn cutting_the_batch_into_parts_changes_nothing() {
        // Batch 7 whole, in 2 parts (3 + 4) and in 3 (2 + 2 + 3).
        for kind in KINDS {
            for batch_first in [false, true] {
                let d = SeqDims {
                    seq: 4,
                    batch: 7,
                    hidden: 3,
                    batch_first,
                };
                let [xg, w, b, h0, c0, g] = operands(kind, d, 7);
                let c0 = (kind == CellKind::Lstm).then_some(&c0);
                let run = |parts| {
                    let f = forward_in_parts(kind, d, &xg, &w, &b, &h0, c0, parts).unwrap();
                    let grads = backward_in_parts(kind, d, &w, &h0, c0, &f, &g, parts).unwrap();
                    (f, grads)
                };
                let (f1, g1) = run(1);
                for parts in [2, 3] {
                    let (f, g) = run(parts);
                    let what = format!("{kind:?} batch_first={batch_first} parts={parts}");
                    close(&f.output, &f1.output, &what);
                    close(&f.saved, &f1.saved, &what);
                    close(&g.xg, &g1.xg, &what);
                    close(&g.w_hh, &g1.w_hh, &what);
                    close(&g.b_hh, &g1.b_hh, &what);
                    close(&g.h0, &g1.h0, &what);
                    if let (Some(a), Some(b)) = (&g.c0, &g1.c0) {
                        close(a, b, &what);
                    }
                }
            }
        }
    }

    #[test]
    fn layouts_agree() {
        // The same sequences time-major and batch-first: the outputs and
        // gradients are each other's transposes.
        let t = |x: &Tensor<f64>| x.permute(&[1, 0, 2]).unwrap().to_contiguous();
        for kind in KINDS {
            let d = SeqDims {
                seq: 5,
                batch: 3,
                hidden: 2,
                batch_first: false,
            };
            let [xg, w, b, h0, c0, g] = operands(kind, d, 11);
            let c0 = (kind == CellKind::Lstm).then_some(&c0);
            let tm = forward(kind, false, &xg, &w, &b, &h0, c0).unwrap();
            let bf = forward(kind, true, &t(&xg), &w, &b, &h0, c0).unwrap();
            close(&t(&tm.output), &bf.output, "output");
            let gtm = backward(kind, false, &xg, &w, &b, &h0, c0, &tm, &g).unwrap();
            let gbf = backward(kind, true, &t(&xg), &w, &b, &h0, c0, &bf, &t(&g)).unwrap();
            close(&t(&gtm.xg), &gbf.xg, "xg");
            close(&gtm.w_hh, &gbf.w_hh, "w_hh");
            close(&gtm.h0, &gbf.h0, "h0");
        }
    }

    #[test]
    fn part_count_depends_on_the_batch_alone() {
        let counts: Vec<usize> = [1, 15, 16, 31, 32, 48, 64, 100, 4096]
            .iter()
            .map(|&b| part_count(b))
            .collect();
        assert_eq!(counts, [1, 1, 1, 1, 2, 2, 4, 4, 16]);
        // Parts cover the batch in order with no gaps.
        let spans: Vec<_> = (0..3).map(|k| part_range(7, 3, k)).collect();
        assert_eq!(spans, [0..2, 2..4, 4..7]);
    }
}
