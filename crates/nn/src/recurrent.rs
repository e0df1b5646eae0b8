//! Recurrent layers: [`Rnn`] (tanh or relu), [`Lstm`] and [`Gru`], with
//! `torch.nn.RNN`/`LSTM`/`GRU`'s gate order, parameter names, shapes and
//! default initialisation, so their checkpoints load either way.
//!
//! Each layer of the stack computes the input projection `x·W_ihᵀ + b_ih` for
//! every step at once (one GEMM), then runs the recurrence as one fused op
//! ([`Recurrence`](tapegrad_autograd::ops::recurrent::Recurrence)): the state
//! GEMM and the gate arithmetic step by step, and backpropagation through
//! time in one kernel.
//!
//! Shapes, as in PyTorch (`L` layers, `B` batch, `T` steps, `H` hidden):
//! input `[T, B, in]` (or `[B, T, in]` with `batch_first`), output `[T, B,
//! H]` (or `[B, T, H]`), states `h`, `c`: `[L, B, H]` whatever the layout.

use rand::rngs::StdRng;
use rand::SeedableRng;
use tapegrad_autograd::{Error as TapeError, Result as TapeResult, Tape, Var};
use tapegrad_tensor::recurrent::CellKind;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};
use crate::init::Init;
use crate::module::Module;
use crate::param::Param;

/// Options shared by [`Rnn`], [`Lstm`] and [`Gru`]; the defaults are
/// PyTorch's (one layer, biases, time-major input) and seed 0.
///
/// ```
/// use tapegrad_nn::{Lstm, Module, RecurrentOptions};
/// let lstm = Lstm::<f32>::with_options(8, 16, RecurrentOptions::new().num_layers(2).batch_first(true))?;
/// assert_eq!(lstm.describe(), "LSTM(8, 16, num_layers=2, batch_first=True)");
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrentOptions {
    /// Stacked layers (each feeds its output sequence to the next).
    pub num_layers: usize,
    /// Whether the layers have `bias_ih_l*` and `bias_hh_l*`.
    pub bias: bool,
    /// Whether inputs and outputs are `[batch, seq, features]`.
    pub batch_first: bool,
    /// Seed of the generator the weights are drawn from.
    pub seed: u64,
}

impl Default for RecurrentOptions {
    fn default() -> Self {
        RecurrentOptions {
            num_layers: 1,
            bias: true,
            batch_first: false,
            seed: 0,
        }
    }
}

impl RecurrentOptions {
    /// PyTorch's defaults: one layer, biases, time-major, seed 0.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the number of stacked layers.
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }
    /// With or without biases.
    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }
    /// `[batch, seq, features]` inputs and outputs.
    pub fn batch_first(mut self, on: bool) -> Self {
        self.batch_first = on;
        self
    }
    /// The weights' seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// One layer's parameters, named as PyTorch names them.
#[derive(Debug, Clone)]
struct LayerParams<T: Element> {
    weight_ih: Param<T>,
    weight_hh: Param<T>,
    bias_ih: Option<Param<T>>,
    bias_hh: Option<Param<T>>,
}

/// What [`Rnn`], [`Lstm`] and [`Gru`] share: the stack of layers and the
/// loop over them.
#[derive(Debug, Clone)]
struct Stack<T: Element> {
    kind: CellKind,
    input_size: usize,
    hidden_size: usize,
    batch_first: bool,
    layers: Vec<LayerParams<T>>,
}

/// The final states of a sequence: `h` and, for the LSTM, `c`.
type Finals<'t, T> = (Var<'t, T>, Option<Var<'t, T>>);

impl<T: Element> Stack<T> {
    fn new(
        kind: CellKind,
        input_size: usize,
        hidden_size: usize,
        opts: RecurrentOptions,
    ) -> Result<Self> {
        let op = match kind {
            CellKind::Lstm => "Lstm::with_options",
            CellKind::Gru => "Gru::with_options",
            _ => "Rnn::with_options",
        };
        if opts.num_layers == 0 || hidden_size == 0 || input_size == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "sizes must be positive: input_size {input_size}, hidden_size {hidden_size}, \
                     num_layers {}",
                    opts.num_layers
                ),
            ));
        }
        // PyTorch draws every weight and bias from U(±1/√hidden).
        let k = 1.0 / (hidden_size as f64).sqrt();
        let init = Init::Uniform { low: -k, high: k };
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let gh = kind.gates() * hidden_size;
        let layers = (0..opts.num_layers)
            .map(|l| {
                let inp = if l == 0 { input_size } else { hidden_size };
                let mut p = |name: &str, shape: &[usize]| {
                    Param::new(
                        format!("{name}_l{l}"),
                        init.tensor(shape, inp, gh, &mut rng),
                    )
                };
                LayerParams {
                    weight_ih: p("weight_ih", &[gh, inp]),
                    weight_hh: p("weight_hh", &[gh, hidden_size]),
                    bias_ih: opts.bias.then(|| p("bias_ih", &[gh])),
                    bias_hh: opts.bias.then(|| p("bias_hh", &[gh])),
                }
            })
            .collect();
        Ok(Stack {
            kind,
            input_size,
            hidden_size,
            batch_first: opts.batch_first,
            layers,
        })
    }

    /// PyTorch's class name, and the layer's place in a model when it has
    /// one (from its parameters' names, as [`Linear`](crate::Linear) does).
    fn label(&self) -> String {
        let class = self.class();
        let name = self.layers[0].weight_ih.name();
        let path = name.strip_suffix("weight_ih_l0").unwrap_or("");
        match path.strip_suffix('.').unwrap_or(path) {
            "" => class.to_string(),
            p => format!("layer {p} ({class})"),
        }
    }

    fn class(&self) -> &'static str {
        self.kind.layer_name()
    }

    fn error(&self, msg: String) -> TapeError {
        TapeError::InvalidArgument {
            op: self.label(),
            msg: format!(
                "{}({}, {}, num_layers={}): {msg}",
                self.class(),
                self.input_size,
                self.hidden_size,
                self.layers.len()
            ),
        }
    }

    /// Checks an initial state against `[layers, batch, hidden]`.
    fn check_state(&self, what: &str, s: Option<Var<'_, T>>, batch: usize) -> TapeResult<()> {
        let want = [self.layers.len(), batch, self.hidden_size];
        match s {
            Some(s) if s.shape().as_slice() != want => Err(self.error(format!(
                "initial {what} of shape {:?} should be {want:?} (layers, batch, hidden)",
                s.shape().as_slice()
            ))),
            _ => Ok(()),
        }
    }

    /// Runs the stack over `x` from states `h0` (and `c0`), each `[layers,
    /// batch, hidden]` or zeros when `None`. Returns the top layer's output
    /// sequence and, if `want_finals`, every layer's final states.
    fn run<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
        c0: Option<Var<'t, T>>,
        want_finals: bool,
    ) -> TapeResult<(Var<'t, T>, Option<Finals<'t, T>>)> {
        let dims = x.shape();
        let (time_axis, batch_axis) = if self.batch_first { (1, 0) } else { (0, 1) };
        let layout = if self.batch_first {
            "[batch, seq, features]"
        } else {
            "[seq, batch, features]"
        };
        if dims.len() != 3 || dims[2] != self.input_size {
            return Err(self.error(format!(
                "input of shape {:?} should be {layout} with {} features",
                dims.as_slice(),
                self.input_size
            )));
        }
        let (seq, batch) = (dims[time_axis], dims[batch_axis]);
        if seq == 0 {
            return Err(self.error(format!(
                "input of shape {:?} has no time steps",
                dims.as_slice()
            )));
        }
        self.check_state("hidden state h0", h0, batch)?;
        let lstm = self.kind == CellKind::Lstm;
        if lstm {
            self.check_state("cell state c0", c0, batch)?;
        }
        let (hid, gh) = (self.hidden_size, self.kind.gates() * self.hidden_size);
        let zeros = |shape: &[usize]| tape.constant(Tensor::zeros(shape));
        let mut input = x;
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for (l, p) in self.layers.iter().enumerate() {
            let width = input.shape()[2];
            let rows = input.reshape(&[seq * batch, width])?;
            let mut xg = rows.matmul(p.weight_ih.var(tape)?.t()?)?;
            if let Some(b) = &p.bias_ih {
                xg = xg.add(b.var(tape)?)?;
            }
            let xg = xg.reshape(&[dims[0], dims[1], gh])?;
            let b_hh = match &p.bias_hh {
                Some(b) => b.var(tape)?,
                None => zeros(&[gh]),
            };
            let state = |s: Option<Var<'t, T>>| match s {
                Some(s) => s.select(0, l),
                None => Ok(zeros(&[batch, hid])),
            };
            let c0_l = if lstm { Some(state(c0)?) } else { None };
            let out = xg.recurrent_sequence(
                self.kind,
                self.batch_first,
                p.weight_hh.var(tape)?,
                b_hh,
                state(h0)?,
                c0_l,
            )?;
            input = if lstm { out.narrow(2, 0, hid)? } else { out };
            if want_finals {
                let last = out.select(time_axis, seq - 1)?;
                h_n.push(last.narrow(1, 0, hid)?);
                if lstm {
                    c_n.push(last.narrow(1, hid, hid)?);
                }
            }
        }
        let finals = if want_finals {
            let c = if lstm {
                Some(Var::stack(&c_n, 0)?)
            } else {
                None
            };
            Some((Var::stack(&h_n, 0)?, c))
        } else {
            None
        };
        Ok((input, finals))
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        let mut v = Vec::new();
        for (l, p) in self.layers.iter().enumerate() {
            v.push((format!("weight_ih_l{l}"), &p.weight_ih));
            v.push((format!("weight_hh_l{l}"), &p.weight_hh));
            if let (Some(bi), Some(bh)) = (&p.bias_ih, &p.bias_hh) {
                v.push((format!("bias_ih_l{l}"), bi));
                v.push((format!("bias_hh_l{l}"), bh));
            }
        }
        v
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        let mut v = Vec::new();
        for (l, p) in self.layers.iter_mut().enumerate() {
            v.push((format!("weight_ih_l{l}"), &mut p.weight_ih));
            v.push((format!("weight_hh_l{l}"), &mut p.weight_hh));
            if let (Some(bi), Some(bh)) = (&mut p.bias_ih, &mut p.bias_hh) {
                v.push((format!("bias_ih_l{l}"), bi));
                v.push((format!("bias_hh_l{l}"), bh));
            }
        }
        v
    }

    /// PyTorch's repr, e.g. `LSTM(8, 16, num_layers=2, batch_first=True)`.
    fn describe(&self) -> String {
        let mut s = format!("{}({}, {}", self.class(), self.input_size, self.hidden_size);
        if self.layers.len() != 1 {
            s += &format!(", num_layers={}", self.layers.len());
        }
        if self.kind == CellKind::RnnRelu {
            s += ", nonlinearity='relu'";
        }
        if self.layers[0].bias_ih.is_none() {
            s += ", bias=False";
        }
        if self.batch_first {
            s += ", batch_first=True";
        }
        s + ")"
    }
}

/// The methods every recurrent layer has, and its [`Module`] impl.
macro_rules! recurrent_layer {
    ($ty:ident) => {
        impl<T: Element> $ty<T> {
            /// Input features.
            pub fn input_size(&self) -> usize {
                self.0.input_size
            }
            /// Hidden (and output) features.
            pub fn hidden_size(&self) -> usize {
                self.0.hidden_size
            }
            /// Stacked layers.
            pub fn num_layers(&self) -> usize {
                self.0.layers.len()
            }
            /// Whether inputs and outputs are `[batch, seq, features]`.
            pub fn batch_first(&self) -> bool {
                self.0.batch_first
            }
        }

        impl<T: Element> Module<T> for $ty<T> {
            /// The top layer's output sequence from zero initial states.
            fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
                Ok(self.0.run(tape, x, None, None, false)?.0)
            }
            fn parameters(&self) -> Vec<(String, &Param<T>)> {
                self.0.parameters()
            }
            fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
                self.0.parameters_mut()
            }
            fn describe(&self) -> String {
                self.0.describe()
            }
        }
    };
}

/// `new` and `with_options` of the gated layers (the RNN's take a
/// nonlinearity too).
macro_rules! gated_constructors {
    ($ty:ident, $kind:expr) => {
        impl<T: Element> $ty<T> {
            /// One time-major layer with PyTorch's initialisation from `seed`.
            ///
            /// # Panics
            /// If `input_size` or `hidden_size` is zero (use
            /// [`with_options`](Self::with_options) for an error instead).
            pub fn new(input_size: usize, hidden_size: usize, seed: u64) -> Self {
                Self::with_options(input_size, hidden_size, RecurrentOptions::new().seed(seed))
                    .unwrap_or_else(|e| panic!("{e}"))
            }

            /// A stack with the given options.
            ///
            /// # Errors
            /// If a size or the layer count is zero.
            pub fn with_options(
                input_size: usize,
                hidden_size: usize,
                opts: RecurrentOptions,
            ) -> Result<Self> {
                Ok($ty(Stack::new($kind, input_size, hidden_size, opts)?))
            }
        }
    };
}

/// An Elman RNN, `h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh)` (or
/// relu), like `torch.nn.RNN`.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Module, Rnn};
/// use tapegrad_tensor::Tensor;
/// let rnn = Rnn::<f32>::new(3, 5, 0);
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::ones(&[7, 2, 3])); // [seq, batch, features]
/// let (out, h_n) = rnn.forward_with_state(&tape, x, None)?;
/// assert_eq!(out.shape().as_slice(), &[7, 2, 5]);
/// assert_eq!(h_n.shape().as_slice(), &[1, 2, 5]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rnn<T: Element = f32>(Stack<T>);

/// The nonlinearity of an [`Rnn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    Tanh,
    /// `max(x, 0)`.
    Relu,
}

impl<T: Element> Rnn<T> {
    /// One tanh layer, time-major, with PyTorch's initialisation from `seed`.
    ///
    /// # Panics
    /// If `input_size` or `hidden_size` is zero (use
    /// [`with_options`](Self::with_options) for an error instead).
    pub fn new(input_size: usize, hidden_size: usize, seed: u64) -> Self {
        let opts = RecurrentOptions::new().seed(seed);
        Self::with_options(input_size, hidden_size, Nonlinearity::Tanh, opts)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A stack with the given nonlinearity and options.
    ///
    /// # Errors
    /// If a size or the layer count is zero.
    pub fn with_options(
        input_size: usize,
        hidden_size: usize,
        nonlinearity: Nonlinearity,
        opts: RecurrentOptions,
    ) -> Result<Self> {
        let kind = match nonlinearity {
            Nonlinearity::Tanh => CellKind::RnnTanh,
            Nonlinearity::Relu => CellKind::RnnRelu,
        };
        Ok(Rnn(Stack::new(kind, input_size, hidden_size, opts)?))
    }

    /// The output sequence and the final hidden state `h_n` `[layers, batch,
    /// hidden]`, starting from `h0` (same shape; zeros when `None`).
    ///
    /// # Errors
    /// If `x` is not 3-d with `input_size` features, has no time steps, or
    /// `h0` has the wrong shape (the message names the layer and shapes).
    pub fn forward_with_state<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
    ) -> TapeResult<(Var<'t, T>, Var<'t, T>)> {
        let (out, finals) = self.0.run(tape, x, h0, None, true)?;
        Ok((out, finals.expect("asked for").0))
    }
}
recurrent_layer!(Rnn);

/// A long short-term memory layer stack, like `torch.nn.LSTM`: gates `i, f,
/// g, o` in that order in `W_ih` `[4·hidden, in]` and `W_hh` `[4·hidden,
/// hidden]`; `c = f⊙c₋ + i⊙g`, `h = o⊙tanh c`.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Lstm, Module, RecurrentOptions};
/// use tapegrad_tensor::Tensor;
/// let lstm = Lstm::<f32>::with_options(3, 4, RecurrentOptions::new().num_layers(2).batch_first(true))?;
/// let names: Vec<String> = lstm.parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(&names[..4], ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]);
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::ones(&[2, 6, 3])); // [batch, seq, features]
/// let (out, (h_n, c_n)) = lstm.forward_with_state(&tape, x, None)?;
/// assert_eq!(out.shape().as_slice(), &[2, 6, 4]);
/// assert_eq!(c_n.shape().as_slice(), &[2, 2, 4]); // [layers, batch, hidden]
/// // Carry the state into the next chunk of the sequence.
/// let more = tape.constant(Tensor::ones(&[2, 3, 3]));
/// let (_, (h2, _)) = lstm.forward_with_state(&tape, more, Some((h_n, c_n)))?;
/// assert_eq!(h2.shape().as_slice(), &[2, 2, 4]);
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Lstm<T: Element = f32>(Stack<T>);

/// An LSTM's state `(h, c)`, each `[layers, batch, hidden]`.
pub type LstmState<'t, T> = (Var<'t, T>, Var<'t, T>);

impl<T: Element> Lstm<T> {
    /// The output sequence and the final states `(h_n, c_n)`, each `[layers,
    /// batch, hidden]`, starting from `state = (h0, c0)` (same shapes; zeros
    /// when `None`).
    ///
    /// # Errors
    /// If `x` is not 3-d with `input_size` features, has no time steps, or
    /// a state has the wrong shape (the message names the layer and shapes).
    pub fn forward_with_state<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        state: Option<LstmState<'t, T>>,
    ) -> TapeResult<(Var<'t, T>, LstmState<'t, T>)> {
        let (h0, c0) = state.unzip();
        let (out, finals) = self.0.run(tape, x, h0, c0, true)?;
        let (h, c) = finals.expect("asked for");
        Ok((out, (h, c.expect("the LSTM has a cell state"))))
    }
}
recurrent_layer!(Lstm);
gated_constructors!(Lstm, CellKind::Lstm);

/// A gated recurrent unit stack, like `torch.nn.GRU`: gates `r, z, n` in
/// that order; `n = tanh(W_in·x + b_in + r⊙(W_hn·h + b_hn))`, `h = (1 −
/// z)⊙n + z⊙h₋`.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Gru, Module};
/// use tapegrad_tensor::Tensor;
/// let gru = Gru::<f64>::new(3, 4, 0);
/// assert_eq!(gru.parameters()[0].1.dims(), &[12, 3]); // weight_ih_l0: [3·hidden, in]
/// let tape = Tape::new();
/// let y = gru.forward(&tape, tape.constant(Tensor::ones(&[5, 2, 3])))?;
/// assert_eq!(y.shape().as_slice(), &[5, 2, 4]);
/// # Ok::<(), tapegrad_autograd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Gru<T: Element = f32>(Stack<T>);

impl<T: Element> Gru<T> {
    /// The output sequence and the final hidden state `h_n` `[layers, batch,
    /// hidden]`, starting from `h0` (same shape; zeros when `None`).
    ///
    /// # Errors
    /// If `x` is not 3-d with `input_size` features, has no time steps, or
    /// `h0` has the wrong shape (the message names the layer and shapes).
    pub fn forward_with_state<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
    ) -> TapeResult<(Var<'t, T>, Var<'t, T>)> {
        let (out, finals) = self.0.run(tape, x, h0, None, true)?;
        Ok((out, finals.expect("asked for").0))
    }
}
recurrent_layer!(Gru);
gated_constructors!(Gru, CellKind::Gru);
