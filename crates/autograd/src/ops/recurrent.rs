//! A whole recurrent sequence (RNN, LSTM or GRU) as one op.
//!
//! Inputs: `xg = x·W_ihᵀ + b_ih` for every step (`[seq, batch, gates·hidden]`,
//! or `[batch, seq, …]` with `batch_first`), `W_hh`, `b_hh`, `h0` and, for the
//! LSTM, `c0`. Output: every step's state (`h`, and for the LSTM `h` then `c`
//! in each row). The cells and their gate order are PyTorch's; the table is in
//! [`tapegrad_tensor::recurrent`].
//!
//! Why one op for the whole sequence rather than one per step: a step's
//! input slice of `xg` would cost a full-size zero gradient per step in
//! backward (slicing's adjoint), and each step's `∂L/∂W_hh` would be a
//! separate small GEMM plus an accumulation. The op's value rule runs
//! backpropagation through time in one kernel (fused gate arithmetic, one
//! GEMM per step for `∂L/∂h`, one GEMM over all steps for `∂L/∂W_hh`).
//!
//! Backward, per step in reverse, with `dh = g_h + (∂L/∂h from step t+1)`:
//!
//! | cell | pre-activation gradients | to the previous state |
//! | --- | --- | --- |
//! | RNN tanh | `dh·(1 − h²)` | `dpre·W_hh` |
//! | LSTM | `dc = g_c + dc₊ + dh·o·(1 − tanh²c)`; `di = dc·g·i(1−i)`, `df = dc·c₋·f(1−f)`, `dg = dc·i·(1−g²)`, `do = dh·tanh c·o(1−o)` | `dpre·W_hh`; `dc₋ = dc·f` |
//! | GRU | `dn = dh·(1−z)(1−n²)`, `dz = dh·(h₋ − n)·z(1−z)`, `dr = dn·hn·r(1−r)`; the `h` side of n gets `dn·r` | `dpre_h·W_hh + dh·z` |
//!
//! `∂L/∂W_hh = Σ_t dpre_hᵀ·h₋`, `∂L/∂b_hh = Σ_t dpre_h`, `∂L/∂xg = dpre`.
//!
//! The recorded rule (for higher orders) recomputes the sequence with
//! differentiable ops and writes the same formulas with them, so second
//! derivatives work; the value rule is the fused kernel.

use std::sync::Mutex;

use tapegrad_tensor::recurrent::{self, CellKind, SeqForward};
use tapegrad_tensor::{Element, Tensor};

use crate::error::Result;
use crate::op::{BackwardCtx, InputGrads, Op, TensorGrads, ValueCtx};
use crate::ops::activation::{ReluBackward, SigmoidBackward, TanhBackward};
use crate::var::Var;

/// A recurrent sequence: see the [module docs](self).
#[derive(Debug)]
pub struct Recurrence<T: Element> {
    /// The cell.
    pub kind: CellKind,
    /// Whether `xg` and the output are `[batch, seq, …]`.
    pub batch_first: bool,
    /// The gate activations of the last forward, for the value rule.
    saved: Mutex<Option<SeqForward<T>>>,
}

impl<T: Element> Recurrence<T> {
    /// The op for `kind` in the given layout.
    pub fn new(kind: CellKind, batch_first: bool) -> Self {
        Recurrence {
            kind,
            batch_first,
            saved: Mutex::new(None),
        }
    }

    /// The forward result matching `output`: the saved one, or recomputed
    /// if the op was run again since.
    fn forward_result(&self, x: &[&Tensor<T>], output: &Tensor<T>) -> Result<SeqForward<T>> {
        let saved = self.saved.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match saved {
            Some(f) if f.output.shares_storage_with(output) => Ok(f),
            _ => self.run(x),
        }
    }

    fn run(&self, x: &[&Tensor<T>]) -> Result<SeqForward<T>> {
        Ok(recurrent::forward(
            self.kind,
            self.batch_first,
            x[0],
            x[1],
            x[2],
            x[3],
            x.get(4).copied(),
        )?)
    }
}

impl<T: Element> Op<T> for Recurrence<T> {
    fn name(&self) -> &str {
        match self.kind {
            CellKind::RnnTanh => "rnn_tanh_sequence",
            CellKind::RnnRelu => "rnn_relu_sequence",
            CellKind::Lstm => "lstm_sequence",
            CellKind::Gru => "gru_sequence",
        }
    }
    fn params(&self) -> String {
        format!("batch_first={}", self.batch_first)
    }
    fn formula(&self) -> Option<String> {
        Some("backpropagation through time: per step dpre from the gates, dh₋ = dpre·W_hh; dW_hh = Σ dpreᵀ·h₋".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let f = self.run(x)?;
        let out = f.output.clone();
        *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
        Ok(out)
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some((|| {
            let x = cx.inputs;
            let fwd = self.forward_result(x, cx.output)?;
            let g = recurrent::backward(
                self.kind,
                self.batch_first,
                x[0],
                x[1],
                x[2],
                x[3],
                x.get(4).copied(),
                &fwd,
                cx.grad_output,
            )?;
            let mut out: TensorGrads<T> = [Some(g.xg), Some(g.w_hh), Some(g.b_hh), Some(g.h0)]
                .into_iter()
                .collect();
            if let Some(c0) = g.c0 {
                out.push(Some(c0));
            }
            for (k, slot) in out.iter_mut().enumerate() {
                if !cx.needs_grad[k] {
                    *slot = None;
                }
            }
            Ok(out)
        })())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        recorded_bptt(self.kind, self.batch_first, &cx.inputs, cx.grad_output)
    }
}

/// One step's states and gate activations, recomputed with recorded ops.
struct Step<'t, T: Element> {
    /// State entering the step.
    h_prev: Var<'t, T>,
    c_prev: Option<Var<'t, T>>,
    /// State leaving it.
    h: Var<'t, T>,
    c: Option<Var<'t, T>>,
    /// LSTM: i, f, g, o; GRU: r, z, n, hn.
    gates: Vec<Var<'t, T>>,
}

/// The sequence recomputed step by step from plain differentiable ops (the
/// reference the fused kernel is tested against), in time order.
fn compose_steps<'t, T: Element>(
    kind: CellKind,
    batch_first: bool,
    inputs: &[Var<'t, T>],
) -> Result<Vec<Step<'t, T>>> {
    let (xg, w, bias) = (inputs[0], inputs[1], inputs[2]);
    let time_axis = usize::from(batch_first);
    let hid = w.shape()[1];
    let seq = xg.shape()[time_axis];
    let (mut h, mut c) = (inputs[3], inputs.get(4).copied());
    let mut steps = Vec::with_capacity(seq);
    let block = |v: Var<'t, T>, k: usize| v.narrow(1, k * hid, hid);
    for t in 0..seq {
        let x = xg.select(time_axis, t)?;
        let hg = h.matmul(w.t()?)?.add(bias)?;
        let (h_new, c_new, gates) = match kind {
            CellKind::RnnTanh => (x.add(hg)?.tanh()?, None, vec![]),
            CellKind::RnnRelu => (x.add(hg)?.relu()?, None, vec![]),
            CellKind::Lstm => {
                let pre = x.add(hg)?;
                let i = block(pre, 0)?.sigmoid()?;
                let f = block(pre, 1)?.sigmoid()?;
                let g = block(pre, 2)?.tanh()?;
                let o = block(pre, 3)?.sigmoid()?;
                let cp = c.expect("the LSTM has a cell state");
                let c_new = f.mul(cp)?.add(i.mul(g)?)?;
                (o.mul(c_new.tanh()?)?, Some(c_new), vec![i, f, g, o])
            }
            CellKind::Gru => {
                let r = block(x, 0)?.add(block(hg, 0)?)?.sigmoid()?;
                let z = block(x, 1)?.add(block(hg, 1)?)?.sigmoid()?;
                let hn = block(hg, 2)?;
                let n = block(x, 2)?.add(r.mul(hn)?)?.tanh()?;
                let h_new = z.rsub_scalar(1.0)?.mul(n)?.add(z.mul(h)?)?;
                (h_new, None, vec![r, z, n, hn])
            }
        };
        steps.push(Step {
            h_prev: h,
            c_prev: c,
            h: h_new,
            c: c_new,
            gates,
        });
        (h, c) = (h_new, c_new);
    }
    Ok(steps)
}

/// The output [`Recurrence`] gives, composed from plain ops: every step's
/// `h` (and `c`) joined along the time axis.
pub fn compose_sequence<'t, T: Element>(
    kind: CellKind,
    batch_first: bool,
    inputs: &[Var<'t, T>],
) -> Result<Var<'t, T>> {
    let steps = compose_steps(kind, batch_first, inputs)?;
    let rows = steps
        .iter()
        .map(|s| match s.c {
            Some(c) => Var::concat(&[s.h, c], 1),
            None => Ok(s.h),
        })
        .collect::<Result<Vec<_>>>()?;
    Var::stack(&rows, usize::from(batch_first))
}

/// The recorded (differentiable) backward rule: the module table's formulas
/// written with tape ops on a recomputed sequence.
fn recorded_bptt<'t, T: Element>(
    kind: CellKind,
    batch_first: bool,
    inputs: &[Var<'t, T>],
    grad_output: Var<'t, T>,
) -> Result<InputGrads<'t, T>> {
    let w = inputs[1];
    let tape = w.tape();
    let hid = w.shape()[1];
    let time_axis = usize::from(batch_first);
    let steps = compose_steps(kind, batch_first, inputs)?;
    let add = |a: Option<Var<'t, T>>, b: Var<'t, T>| match a {
        Some(a) => a.add(b),
        None => Ok(b),
    };
    let sig_back = |g: Var<'t, T>, y: Var<'t, T>| tape.apply(SigmoidBackward, &[g, y]);
    let tanh_back = |g: Var<'t, T>, y: Var<'t, T>| tape.apply(TanhBackward, &[g, y]);
    let (mut dh_next, mut dc_next) = (None, None);
    let (mut dw, mut db) = (None, None);
    let mut dxs = Vec::with_capacity(steps.len());
    for (t, s) in steps.iter().enumerate().rev() {
        let go = grad_output.select(time_axis, t)?;
        let dh = add(dh_next, go.narrow(1, 0, hid)?)?;
        let (dx, dh_side, direct) = match kind {
            CellKind::RnnTanh => {
                let d = tanh_back(dh, s.h)?;
                (d, d, None)
            }
            CellKind::RnnRelu => {
                let d = tape.apply(ReluBackward, &[dh, s.h])?;
                (d, d, None)
            }
            CellKind::Lstm => {
                let (i, f, g, o) = (s.gates[0], s.gates[1], s.gates[2], s.gates[3]);
                let c = s.c.expect("LSTM step has c");
                let tc = c.tanh()?;
                let dc = add(dc_next, go.narrow(1, hid, hid)?)?.add(tanh_back(dh.mul(o)?, tc)?)?;
                let c_prev = s.c_prev.expect("LSTM step has c");
                let d = Var::concat(
                    &[
                        sig_back(dc.mul(g)?, i)?,
                        sig_back(dc.mul(c_prev)?, f)?,
                        tanh_back(dc.mul(i)?, g)?,
                        sig_back(dh.mul(tc)?, o)?,
                    ],
                    1,
                )?;
                dc_next = Some(dc.mul(f)?);
                (d, d, None)
            }
            CellKind::Gru => {
                let (r, z, n, hn) = (s.gates[0], s.gates[1], s.gates[2], s.gates[3]);
                let dn = tanh_back(dh.mul(z.rsub_scalar(1.0)?)?, n)?;
                let dz = sig_back(dh.mul(s.h_prev.sub(n)?)?, z)?;
                let dr = sig_back(dn.mul(hn)?, r)?;
                let dx = Var::concat(&[dr, dz, dn], 1)?;
                let dh_side = Var::concat(&[dr, dz, dn.mul(r)?], 1)?;
                (dx, dh_side, Some(dh.mul(z)?))
            }
        };
        dxs.push(dx);
        let to_prev = dh_side.matmul(w)?;
        dh_next = Some(match direct {
            Some(d) => to_prev.add(d)?,
            None => to_prev,
        });
        dw = Some(add(dw, dh_side.t()?.matmul(s.h_prev)?)?);
        db = Some(add(db, dh_side.sum(&[0], false)?)?);
    }
    dxs.reverse();
    let mut out: InputGrads<'t, T> = [Some(Var::stack(&dxs, time_axis)?), dw, db, dh_next]
        .into_iter()
        .collect();
    if kind == CellKind::Lstm {
        out.push(dc_next);
    }
    Ok(out)
}

impl<'t, T: Element> Var<'t, T> {
    /// Runs a recurrent sequence (see [`Recurrence`]) with `self` as `xg =
    /// x·W_ihᵀ + b_ih` for every step: `[seq, batch, gates·hidden]`, or
    /// `[batch, seq, gates·hidden]` when `batch_first`. Returns every step's
    /// state in the same layout, `h` (and for the LSTM `h` then `c`) in each
    /// row. Most users want the layers `Rnn`, `Lstm` and `Gru` of
    /// `tapegrad-nn`, which compute `xg` and split the result.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::{recurrent::CellKind, Tensor};
    /// let tape = Tape::<f64>::new();
    /// // One step of a 1-wide tanh RNN: h = tanh(xg + w·h0 + b).
    /// let xg = tape.leaf(Tensor::from_vec(vec![0.5], &[1, 1, 1])?);
    /// let w = tape.leaf(Tensor::from_vec(vec![2.0], &[1, 1])?);
    /// let b = tape.leaf(Tensor::from_vec(vec![0.0], &[1])?);
    /// let h0 = tape.leaf(Tensor::from_vec(vec![0.25], &[1, 1])?);
    /// let h = xg.recurrent_sequence(CellKind::RnnTanh, false, w, b, h0, None)?;
    /// assert_eq!(h.value().to_vec(), vec![1f64.tanh()]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// If a shape does not fit (the message names the cell and every
    /// shape), `c0` is missing for the LSTM or given for another cell, or
    /// the sequence is empty.
    pub fn recurrent_sequence(
        self,
        kind: CellKind,
        batch_first: bool,
        w_hh: Var<'t, T>,
        b_hh: Var<'t, T>,
        h0: Var<'t, T>,
        c0: Option<Var<'t, T>>,
    ) -> Result<Var<'t, T>> {
        let mut inputs = vec![self, w_hh, b_hh, h0];
        inputs.extend(c0);
        self.tape()
            .apply(Recurrence::new(kind, batch_first), &inputs)
    }
}

#[cfg(test)]
mod tests {
    use tapegrad_tensor::recurrent::CellKind;

    use super::compose_sequence;
    use crate::ops::testutil::*;
    use crate::{Result, Tape, Var};

    const KINDS: [CellKind; 4] = CellKind::ALL;

    /// Operands for `kind`: seq 3, batch 2, hidden 2, scaled so the gates
    /// sit in their curved range.
    fn operands(kind: CellKind, batch_first: bool, seed: u64) -> Vec<tapegrad_tensor::Tensor<f64>> {
        operands_of(kind, batch_first, 2, seed)
    }

    fn operands_of(
        kind: CellKind,
        batch_first: bool,
        batch: usize,
        seed: u64,
    ) -> Vec<tapegrad_tensor::Tensor<f64>> {
        let (seq, hid) = (3, 2);
        let gh = kind.gates() * hid;
        let xg_shape = if batch_first {
            [batch, seq, gh]
        } else {
            [seq, batch, gh]
        };
        let mut v = vec![
            rnd(&xg_shape, seed),
            rnd(&[gh, hid], seed + 1),
            rnd(&[gh], seed + 2).mul_scalar(0.5).unwrap(),
            rnd(&[batch, hid], seed + 3),
        ];
        if kind == CellKind::Lstm {
            v.push(rnd(&[batch, hid], seed + 4));
        }
        v
    }

    fn fused<'t>(kind: CellKind, bf: bool, v: &[Var<'t, f64>]) -> Result<Var<'t, f64>> {
        v[0].recurrent_sequence(kind, bf, v[1], v[2], v[3], v.get(4).copied())
    }

    /// The fused op's outputs and gradients (of their sum) against the
    /// composition of plain ops.
    fn assert_matches_composition(kind: CellKind, bf: bool, x: &[tapegrad_tensor::Tensor<f64>]) {
        let (y, g) = grads_of_sum(|_, v| fused(kind, bf, v), x);
        let (y_ref, g_ref) = grads_of_sum(|_, v| compose_sequence(kind, bf, v), x);
        for (a, b) in y
            .iter()
            .zip(&y_ref)
            .chain(g.iter().flatten().zip(g_ref.iter().flatten()))
        {
            assert!((a - b).abs() < 1e-11, "{kind:?} bf={bf}: {a} vs {b}");
        }
    }

    #[test]
    fn matches_the_composition() {
        for kind in KINDS {
            for bf in [false, true] {
                assert_matches_composition(kind, bf, &operands(kind, bf, 10));
            }
        }
    }

    #[test]
    fn a_batch_in_several_parts_matches_the_composition() {
        // Batch 37: the kernel cuts it into two parts of 18 and 19
        // sequences, run on different threads.
        for kind in KINDS {
            for bf in [false, true] {
                assert_matches_composition(kind, bf, &operands_of(kind, bf, 37, 50));
            }
        }
    }

    #[test]
    fn gradcheck_every_cell() {
        for kind in KINDS {
            for bf in [false, true] {
                check(move |_, v| fused(kind, bf, v), &operands(kind, bf, 20));
            }
        }
    }

    #[test]
    fn second_order_gradcheck() {
        for kind in KINDS {
            check2(
                move |_, v| fused(kind, false, v),
                &operands(kind, false, 30),
            );
        }
        check2(
            |_, v| fused(CellKind::Lstm, true, v),
            &operands(CellKind::Lstm, true, 40),
        );
    }

    #[test]
    fn lstm_one_step_by_hand() {
        // Hidden 1, all gate pre-activations 0 and c0 = 2: i = f = o = ½,
        // g = 0, so c = f·c0 = 1 and h = ½·tanh 1.
        // ∂h/∂c0 = o·(1 − tanh²1)·f; ∂c/∂c0 = f = ½ (seed on h and c).
        let x = [
            t(&[0., 0., 0., 0.], &[1, 1, 4]),
            t(&[0., 0., 0., 0.], &[4, 1]),
            t(&[0., 0., 0., 0.], &[4]),
            t(&[0.], &[1, 1]),
            t(&[2.], &[1, 1]),
        ];
        let (y, g) = grads_of_sum(|_, v| fused(CellKind::Lstm, false, v), &x);
        let th = 1f64.tanh();
        assert_close(&y, &[0.5 * th, 1.0]);
        assert_close(&g[4], &[0.25 * (1. - th * th) + 0.5]);
        // ∂/∂g_pre = i·(1 − g²)·(∂L/∂c) with ∂L/∂c = 1 + o·(1 − tanh²c).
        let dc = 1. + 0.5 * (1. - th * th);
        assert_close(&[g[0][2]], &[0.5 * dc]);
        // ∂/∂o_pre = tanh c · o(1 − o) = tanh 1 / 4.
        assert_close(&[g[0][3]], &[th / 4.]);
    }

    #[test]
    fn rnn_two_steps_by_hand() {
        // h1 = tanh(a), h2 = tanh(b + w·h1) with w = ½, h0 = 0. Seed only on
        // h2: ∂h2/∂a = (1 − h2²)·w·(1 − h1²).
        let (a, b) = (0.3, -0.2);
        let x = [
            t(&[a, b], &[2, 1, 1]),
            t(&[0.5], &[1, 1]),
            t(&[0.], &[1]),
            t(&[0.], &[1, 1]),
        ];
        let (y, g) = vjp(
            |_, v| fused(CellKind::RnnTanh, false, v),
            &x,
            Some(&[0., 1.]),
        );
        let h1 = f64::tanh(a);
        let h2 = f64::tanh(b + 0.5 * h1);
        assert_close(&y, &[h1, h2]);
        assert_close(
            &g[0],
            &[(1. - h2 * h2) * 0.5 * (1. - h1 * h1), 1. - h2 * h2],
        );
        // ∂h2/∂w = (1 − h2²)·h1.
        assert_close(&g[1], &[(1. - h2 * h2) * h1]);
    }

    #[test]
    fn bad_shapes_name_the_cell_and_shapes() {
        let tape = Tape::<f64>::new();
        let x = operands(CellKind::Gru, false, 1);
        let v: Vec<_> = x.iter().map(|t| tape.leaf(t.clone())).collect();
        let h_wrong = tape.leaf(rnd(&[2, 3], 5));
        let e = v[0]
            .recurrent_sequence(CellKind::Gru, false, v[1], v[2], h_wrong, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("GRU") && e.contains("h0 must be [2, 2]") && e.contains("[2, 3]"),
            "{e}"
        );
        let e = v[0]
            .recurrent_sequence(CellKind::Lstm, false, v[1], v[2], v[3], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("LSTM"), "{e}");
    }
}
