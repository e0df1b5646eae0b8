//! Recurrent-layer kernels: a whole sequence of RNN, LSTM or GRU steps
//! forward, and its backward through time, with PyTorch's gate order.
//!
//! The input-to-hidden product `xg = x·W_ihᵀ + b_ih` does not depend on
//! the state, so callers compute it for every step at once (one large GEMM)
//! and pass it in; these kernels run the part that must go step by step:
//! `hg = h·W_hhᵀ + b_hh` (one GEMM per step) and the gate arithmetic, fused
//! into one pass over each step's rows. The backward pass runs the steps in
//! reverse, keeps the pre-activation gradients of every step, and forms
//! `∂L/∂W_hh` with one GEMM over all steps at the end.
//!
//! Rows: `xg`, the output and the saved gates are 2-d row sets `[rows,
//! width]` viewed as `[seq, batch, width]` (time-major) or `[batch, seq,
//! width]` (`batch_first`); row `(t, b)` is `t·batch + b` or `b·seq + t`.
//!
//! Cells, with `σ` the logistic function and `⊙` the elementwise product
//! (`x*` from `xg`, `h*` from `hg`):
//!
//! | kind | gates | step |
//! | --- | --- | --- |
//! | RNN | 1 | `h = tanh(x + h)` or `relu(x + h)` |
//! | LSTM | 4: i, f, g, o | `i, f, o = σ(x* + h*)`, `g = tanh(xg + hg)`, `c = f⊙c₋ + i⊙g`, `h = o⊙tanh c` |
//! | GRU | 3: r, z, n | `r, z = σ(x* + h*)`, `n = tanh(xn + r⊙hn)`, `h = (1 − z)⊙n + z⊙h₋` |

use crate::error::{Error, Result};
use crate::simd::Kernel;
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

    /// Distance between the rows of two consecutive sequences at one step.
    #[inline]
    fn batch_stride_rows(&self) -> usize {
        if self.batch_first {
            self.seq
        } else {
            1
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
    /// Gate activations the backward pass needs (empty for RNNs).
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

/// `hg[b] = h[b]·W_hhᵀ + b_hh` for every sequence `b` of one step.
fn hidden_gates<T: Element>(d: &SeqDims, gh: usize, h: &[T], w: &[T], bias: &[T], hg: &mut [T]) {
    // W_hh is [gh, hidden] row-major, so W_hhᵀ has row stride 1 and column
    // stride `hidden`.
    T::gemm(d.batch, d.hidden, gh, h, d.hidden, 1, w, 1, d.hidden, hg);
    for row in hg.chunks_exact_mut(gh) {
        row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
    }
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
    let (hid, gh) = (d.hidden, kind.gates() * d.hidden);
    let (sw, gw) = (kind.state_blocks() * hid, kind.saved_blocks() * hid);
    let rows = d.seq * d.batch;
    crate::layout::checked_numel::<T>("recurrent", &d.shape(sw.max(gw).max(gh)))?;
    let (xg, w, bias) = (dense(xg), dense(w_hh), dense(b_hh));
    let mut out = vec![T::ZERO; rows * sw];
    let mut saved = vec![T::ZERO; rows * gw];
    // The state entering the current step, one contiguous row per sequence.
    let mut h = h0.to_vec();
    let mut c = c0.map(|c| c.to_vec()).unwrap_or_default();
    let mut hg = vec![T::ZERO; d.batch * gh];
    for t in 0..d.seq {
        hidden_gates(&d, gh, &h, &w, &bias, &mut hg);
        crate::simd::run_wide(ForwardCells {
            kind,
            d: &d,
            t,
            xg: &xg,
            hg: &hg,
            out: &mut out,
            saved: &mut saved,
            h: &mut h,
            c: &mut c,
        });
    }
    Ok(SeqForward {
        output: Tensor::from_vec(out, &d.shape(sw))?,
        saved: Tensor::from_vec(saved, &d.shape(gw))?,
    })
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
    let (hid, gh) = (d.hidden, kind.gates() * d.hidden);
    let (sw, gw) = (kind.state_blocks() * hid, kind.saved_blocks() * hid);
    let rows = d.seq * d.batch;
    if fwd.output.dims() != d.shape(sw)
        || fwd.saved.dims() != d.shape(gw)
        || grad_output.dims() != d.shape(sw)
    {
        return Err(Error::invalid(
            "recurrent_backward",
            format!(
                "{} sequence of {:?}: output {:?}, saved gates {:?} and gradient {:?} \
                 should be {:?}, {:?} and {:?}",
                kind.layer_name(),
                xg.dims(),
                fwd.output.dims(),
                fwd.saved.dims(),
                grad_output.dims(),
                d.shape(sw),
                d.shape(gw),
                d.shape(sw)
            ),
        ));
    }
    let (w, out, saved, gout) = (
        dense(w_hh),
        dense(&fwd.output),
        dense(&fwd.saved),
        dense(grad_output),
    );
    let (h0v, c0v) = (dense(h0), c0.map(dense));
    // Pre-activation gradients on the x side and on the h side; they differ
    // only for the GRU's n gate (`hn` is scaled by r), so the others share.
    let mut dxg = vec![T::ZERO; rows * gh];
    let mut dhg = if kind == CellKind::Gru {
        vec![T::ZERO; rows * gh]
    } else {
        Vec::new()
    };
    // The state entering step t from its predecessor (`h0`, `c0` at t = 0),
    // and its gradient flowing back from step t.
    let prev_h = |t: usize, b: usize| prev_state(&d, &out, &h0v, sw, t, b);
    let mut dh_next = vec![T::ZERO; d.batch * hid];
    let mut dc_next = vec![
        T::ZERO;
        if kind == CellKind::Lstm {
            d.batch * hid
        } else {
            0
        }
    ];
    let mut direct = vec![
        T::ZERO;
        if kind == CellKind::Gru {
            d.batch * hid
        } else {
            0
        }
    ];
    for t in (0..d.seq).rev() {
        crate::simd::run_wide(BackwardCells {
            kind,
            d: &d,
            t,
            out: &out,
            gout: &gout,
            saved: &saved,
            h0v: &h0v,
            c0v: c0v.as_deref(),
            dxg: &mut dxg,
            dhg: &mut dhg,
            dh_next: &dh_next,
            dc_next: &mut dc_next,
            direct: &mut direct,
        });
        // ∂L/∂h entering step t = dhg_t·W_hh (+ the GRU's direct path).
        let side = if kind == CellKind::Gru { &dhg } else { &dxg };
        let first = d.row(t, 0) * gh;
        let a_rs = d.batch_stride_rows() * gh;
        T::gemm(
            d.batch,
            gh,
            hid,
            &side[first..],
            a_rs,
            1,
            &w,
            hid,
            1,
            &mut dh_next,
        );
        if kind == CellKind::Gru {
            dh_next.iter_mut().zip(&direct).for_each(|(v, &x)| *v += x);
        }
    }
    let side = if kind == CellKind::Gru { &dhg } else { &dxg };
    // ∂L/∂W_hh = Σ_rows dhg[row]ᵀ·h_prev[row]: one GEMM over every step.
    let mut h_prev = vec![T::ZERO; rows * hid];
    for t in 0..d.seq {
        for b in 0..d.batch {
            let r = d.row(t, b);
            h_prev[r * hid..(r + 1) * hid].copy_from_slice(prev_h(t, b));
        }
    }
    let mut dw = vec![T::ZERO; gh * hid];
    T::gemm(gh, rows, hid, side, 1, gh, &h_prev, hid, 1, &mut dw);
    let mut db = vec![T::ZERO; gh];
    for row in side.chunks_exact(gh) {
        db.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
    Ok(SeqGrads {
        xg: Tensor::from_vec(dxg, &d.shape(gh))?,
        w_hh: Tensor::from_vec(dw, &[gh, hid])?,
        b_hh: Tensor::from_vec(db, &[gh])?,
        h0: Tensor::from_vec(dh_next, &[d.batch, hid])?,
        c0: if kind == CellKind::Lstm {
            Some(Tensor::from_vec(dc_next, &[d.batch, hid])?)
        } else {
            None
        },
    })
}

/// One forward step of every sequence: the gate arithmetic on `xg` and
/// `hg`, writing the output and saved rows of step `t` and the new state.
struct ForwardCells<'a, T> {
    kind: CellKind,
    d: &'a SeqDims,
    t: usize,
    xg: &'a [T],
    hg: &'a [T],
    out: &'a mut [T],
    saved: &'a mut [T],
    h: &'a mut [T],
    c: &'a mut [T],
}

impl<T: Element> Kernel for ForwardCells<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ForwardCells {
            kind,
            d,
            t,
            xg,
            hg,
            out,
            saved,
            h,
            c,
        } = self;
        let (hid, gh) = (d.hidden, kind.gates() * d.hidden);
        let (sw, gw) = (kind.state_blocks() * hid, kind.saved_blocks() * hid);
        for b in 0..d.batch {
            let r = d.row(t, b);
            let x = &xg[r * gh..(r + 1) * gh];
            let hr = &hg[b * gh..(b + 1) * gh];
            let o = &mut out[r * sw..(r + 1) * sw];
            let s = &mut saved[r * gw..(r + 1) * gw];
            let hb = &mut h[b * hid..(b + 1) * hid];
            match kind {
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    for j in 0..hid {
                        let pre = x[j] + hr[j];
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
                    let cb = &mut c[b * hid..(b + 1) * hid];
                    let [xi, xf, xc, xo] = blocks(x, hid);
                    let [hi, hf, hc, ho] = blocks(hr, hid);
                    let [si, sf, sg, so] = blocks_mut(s, hid);
                    let [oh, oc] = blocks_mut(o, hid);
                    for j in 0..hid {
                        let i = (xi[j] + hi[j]).sigmoid_fast();
                        let f = (xf[j] + hf[j]).sigmoid_fast();
                        let g = (xc[j] + hc[j]).tanh_fast();
                        let og = (xo[j] + ho[j]).sigmoid_fast();
                        let cn = f * cb[j] + i * g;
                        let hn = og * cn.tanh_fast();
                        (si[j], sf[j], sg[j], so[j]) = (i, f, g, og);
                        (oh[j], oc[j]) = (hn, cn);
                        (hb[j], cb[j]) = (hn, cn);
                    }
                }
                CellKind::Gru => {
                    for j in 0..hid {
                        let rg = (x[j] + hr[j]).sigmoid_fast();
                        let z = (x[hid + j] + hr[hid + j]).sigmoid_fast();
                        let hn = hr[2 * hid + j];
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

/// One backward step of every sequence: the pre-activation gradients of
/// step `t` from the output gradient and the gradient arriving from step
/// `t + 1` (`dh_next`, `dc_next`); updates `dc_next` and the GRU's direct
/// path to `h₋`.
struct BackwardCells<'a, T> {
    kind: CellKind,
    d: &'a SeqDims,
    t: usize,
    out: &'a [T],
    gout: &'a [T],
    saved: &'a [T],
    h0v: &'a [T],
    c0v: Option<&'a [T]>,
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
            kind,
            d,
            t,
            out,
            gout,
            saved,
            h0v,
            c0v,
            dxg,
            dhg,
            dh_next,
            dc_next,
            direct,
        } = self;
        let (hid, gh) = (d.hidden, kind.gates() * d.hidden);
        let (sw, gw) = (kind.state_blocks() * hid, kind.saved_blocks() * hid);
        let prev_h = |t: usize, b: usize| prev_state(d, out, h0v, sw, t, b);
        for b in 0..d.batch {
            let r = d.row(t, b);
            let (o, go) = (&out[r * sw..(r + 1) * sw], &gout[r * sw..(r + 1) * sw]);
            let s = &saved[r * gw..(r + 1) * gw];
            let dx = &mut dxg[r * gh..(r + 1) * gh];
            let dhn = &dh_next[b * hid..(b + 1) * hid];
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
                        &c0v.as_ref().expect("checked: the LSTM has c0")[b * hid..(b + 1) * hid]
                    } else {
                        let q = d.row(t - 1, b) * sw;
                        &out[q + hid..q + 2 * hid]
                    };
                    let c_prev = &c_prev[..hid];
                    let dcn = &mut dc_next[b * hid..(b + 1) * hid];
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
                    let hp = prev_h(t, b);
                    let dh_side = &mut dhg[r * gh..(r + 1) * gh];
                    let dir = &mut direct[b * hid..(b + 1) * hid];
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
/// 0`, else the output row of step `t − 1` (whose first block is `h`).
#[inline(always)]
fn prev_state<'a, T>(
    d: &SeqDims,
    out: &'a [T],
    h0: &'a [T],
    sw: usize,
    t: usize,
    b: usize,
) -> &'a [T] {
    let hid = d.hidden;
    if t == 0 {
        &h0[b * hid..(b + 1) * hid]
    } else {
        let r = d.row(t - 1, b) * sw;
        &out[r..r + hid]
    }
}
