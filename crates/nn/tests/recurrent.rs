//! Recurrent layers: PyTorch's names, shapes and outputs (fixtures written by
//! `tests/torch/rnn_interop.py`), state carried across calls, layouts,
//! errors, checkpoints, and gradients through a stack.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use tapegrad_autograd::{gradcheck, Tape, Var};
use tapegrad_nn::{checkpoint, Gru, Lstm, Module, Nonlinearity, RecurrentOptions, Rnn, Sequential};
use tapegrad_tensor::{Element, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Output sequence, `h_n` and (LSTM) `c_n` as flat vectors.
type Run<T> = (Vec<T>, Vec<T>, Option<Vec<T>>);

/// Output sequence, `h_n` and (LSTM) `c_n` on the tape.
type RunVars<'t, T> = (Var<'t, T>, Var<'t, T>, Option<Var<'t, T>>);

/// The three layer types behind one call, for table-driven tests.
trait Recurrent<T: Element>: Module<T> {
    fn run<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
        c0: Option<Var<'t, T>>,
    ) -> tapegrad_autograd::Result<RunVars<'t, T>>;

    fn run_values(&self, x: &Tensor<T>, h0: Option<&Tensor<T>>, c0: Option<&Tensor<T>>) -> Run<T> {
        let tape = Tape::new();
        let c = |t: Option<&Tensor<T>>| t.map(|t| tape.constant(t.clone()));
        let (o, h, c) = self
            .run(&tape, tape.constant(x.clone()), c(h0), c(c0))
            .unwrap();
        (
            o.value().to_vec(),
            h.value().to_vec(),
            c.map(|c| c.value().to_vec()),
        )
    }
}

impl<T: Element> Recurrent<T> for Lstm<T> {
    fn run<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
        c0: Option<Var<'t, T>>,
    ) -> tapegrad_autograd::Result<RunVars<'t, T>> {
        let state = h0.zip(c0);
        let (o, (h, c)) = self.forward_with_state(tape, x, state)?;
        Ok((o, h, Some(c)))
    }
}

impl<T: Element> Recurrent<T> for Gru<T> {
    fn run<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
        _: Option<Var<'t, T>>,
    ) -> tapegrad_autograd::Result<RunVars<'t, T>> {
        let (o, h) = self.forward_with_state(tape, x, h0)?;
        Ok((o, h, None))
    }
}

impl<T: Element> Recurrent<T> for Rnn<T> {
    fn run<'t>(
        &self,
        tape: &'t Tape<T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
        _: Option<Var<'t, T>>,
    ) -> tapegrad_autograd::Result<RunVars<'t, T>> {
        let (o, h) = self.forward_with_state(tape, x, h0)?;
        Ok((o, h, None))
    }
}

/// The models of the fixture, built the same way as in `rnn_interop.py`
/// (weights from our own seeds until a checkpoint is loaded).
fn lstm(seed: u64) -> Lstm<f64> {
    let o = RecurrentOptions::new()
        .num_layers(2)
        .batch_first(true)
        .seed(seed);
    Lstm::with_options(3, 4, o).unwrap()
}
fn gru(seed: u64) -> Gru<f64> {
    Gru::with_options(3, 4, RecurrentOptions::new().num_layers(2).seed(seed)).unwrap()
}
fn rnn(seed: u64) -> Rnn<f64> {
    let o = RecurrentOptions::new().batch_first(true).seed(seed);
    Rnn::with_options(3, 4, Nonlinearity::Relu, o).unwrap()
}

/// The tensors under `prefix.`, with the prefix removed.
fn under<T: Element>(
    all: &IndexMap<String, Tensor<T>>,
    prefix: &str,
) -> IndexMap<String, Tensor<T>> {
    all.iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix(&format!("{prefix}."))?.to_string(),
                v.clone(),
            ))
        })
        .collect()
}

fn assert_near<T: Element>(a: &[T], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!((x.to_f64() - y).abs() < tol, "{what}: {x} vs {y}");
    }
}

/// Loads fixture model `name` into `model` (strictly: every name, no extra)
/// and checks its outputs and repr against PyTorch's.
fn check_against_torch<T: Element>(
    model: &mut impl Recurrent<T>,
    name: &str,
    file: &IndexMap<String, Tensor<T>>,
    expected: &serde_json::Value,
    tol: f64,
) {
    model.load_state_dict(&under(file, name)).unwrap();
    let inp = under(file, &format!("input.{name}"));
    let (o, h, c) = model.run_values(&inp["x"], Some(&inp["h0"]), inp.get("c0"));
    let e = &expected[name];
    let list = |k: &str| -> Vec<f64> {
        e[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    // PyTorch's repr leaves out `nonlinearity='relu'`; ours shows it.
    let repr = model.describe().replace(", nonlinearity='relu'", "");
    assert_eq!(repr, e["repr"].as_str().unwrap());
    assert_near(&o, &list("out"), tol, name);
    assert_near(&h, &list("h_n"), tol, name);
    if let Some(c) = c {
        assert_near(&c, &list("c_n"), tol, name);
    }
}

#[test]
fn pytorch_checkpoints_load_strictly_and_give_pytorchs_outputs() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("torch_rnn_expected.json")).unwrap())
            .unwrap();
    let f64s = checkpoint::load_tensors::<f64>(fixture("torch_rnn.safetensors")).unwrap();
    let f32s = checkpoint::load_tensors::<f32>(fixture("torch_rnn_f32.safetensors")).unwrap();
    check_against_torch(&mut lstm(9), "lstm", &f64s, &expected, 1e-12);
    check_against_torch(&mut gru(9), "gru", &f64s, &expected, 1e-12);
    check_against_torch(&mut rnn(9), "rnn", &f64s, &expected, 1e-12);
    check_against_torch(
        &mut Lstm::<f32>::new(3, 4, 9),
        "lstm32",
        &f32s,
        &expected,
        1e-6,
    );
}

/// Writes our own models (their own initialisation), the fixture's inputs
/// and our outputs for `rnn_interop.py check` to load into PyTorch.
#[test]
fn exports_checkpoints_for_pytorch() {
    let dir = std::env::temp_dir().join("tapegrad-rnn-export");
    std::fs::create_dir_all(&dir).unwrap();
    let f64s = checkpoint::load_tensors::<f64>(fixture("torch_rnn.safetensors")).unwrap();
    let f32s = checkpoint::load_tensors::<f32>(fixture("torch_rnn_f32.safetensors")).unwrap();
    let (mut out64, mut out32) = (IndexMap::new(), IndexMap::new());
    let mut outputs = serde_json::Map::new();
    fn export<T: Element>(
        m: &impl Recurrent<T>,
        name: &str,
        inputs: &IndexMap<String, Tensor<T>>,
        file: &mut IndexMap<String, Tensor<T>>,
        outputs: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        for (k, v) in m.state_dict() {
            file.insert(format!("{name}.{k}"), v);
        }
        let inp = under(inputs, &format!("input.{name}"));
        for (k, v) in &inp {
            file.insert(format!("input.{name}.{k}"), v.clone());
        }
        let (o, h, c) = m.run_values(&inp["x"], Some(&inp["h0"]), inp.get("c0"));
        let f = |v: Vec<T>| v.iter().map(|x| x.to_f64()).collect::<Vec<_>>();
        outputs.insert(
            name.into(),
            serde_json::json!({"out": f(o), "h_n": f(h), "c_n": c.map(f)}),
        );
    }
    export(&lstm(21), "lstm", &f64s, &mut out64, &mut outputs);
    export(&gru(22), "gru", &f64s, &mut out64, &mut outputs);
    export(&rnn(23), "rnn", &f64s, &mut out64, &mut outputs);
    export(
        &Lstm::<f32>::new(3, 4, 24),
        "lstm32",
        &f32s,
        &mut out32,
        &mut outputs,
    );
    checkpoint::save_tensors(&out64, dir.join("tapegrad_rnn.safetensors")).unwrap();
    checkpoint::save_tensors(&out32, dir.join("tapegrad_rnn_f32.safetensors")).unwrap();
    let json = serde_json::to_string(&serde_json::Value::Object(outputs)).unwrap();
    std::fs::write(dir.join("tapegrad_rnn_outputs.json"), json).unwrap();
    // And back into a fresh model of ours: identical outputs.
    let mut again = lstm(99);
    again.load_state_dict(&under(&out64, "lstm")).unwrap();
    let x = &f64s["input.lstm.x"];
    assert_eq!(
        again.run_values(x, None, None),
        lstm(21).run_values(x, None, None)
    );
}

#[test]
fn names_and_shapes_are_pytorchs() {
    let shapes = |m: &dyn Module<f32>| -> Vec<(String, Vec<usize>)> {
        m.parameters()
            .into_iter()
            .map(|(n, p)| (n, p.dims().to_vec()))
            .collect()
    };
    let two = RecurrentOptions::new().num_layers(2);
    let lstm = Lstm::<f32>::with_options(3, 5, two).unwrap();
    let want = |g: usize| -> Vec<(String, Vec<usize>)> {
        [
            ("weight_ih_l0", vec![g * 5, 3]),
            ("weight_hh_l0", vec![g * 5, 5]),
            ("bias_ih_l0", vec![g * 5]),
            ("bias_hh_l0", vec![g * 5]),
            ("weight_ih_l1", vec![g * 5, 5]),
            ("weight_hh_l1", vec![g * 5, 5]),
            ("bias_ih_l1", vec![g * 5]),
            ("bias_hh_l1", vec![g * 5]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect()
    };
    assert_eq!(shapes(&lstm), want(4));
    assert_eq!(
        shapes(&Gru::<f32>::with_options(3, 5, two).unwrap()),
        want(3)
    );
    let rnn = Rnn::<f32>::with_options(3, 5, Nonlinearity::Tanh, two).unwrap();
    assert_eq!(shapes(&rnn), want(1));
    let no_bias = Lstm::<f32>::with_options(3, 5, RecurrentOptions::new().bias(false)).unwrap();
    assert_eq!(
        shapes(&no_bias),
        [
            ("weight_ih_l0".to_string(), vec![20, 3]),
            ("weight_hh_l0".to_string(), vec![20, 5])
        ]
    );
    assert_eq!(no_bias.describe(), "LSTM(3, 5, bias=False)");
    // PyTorch's initialisation: U(±1/√hidden) everywhere.
    let bound = 1.0 / 5f32.sqrt();
    let all: Vec<f32> = lstm
        .parameters()
        .iter()
        .flat_map(|(_, p)| p.value().to_vec())
        .collect();
    assert!(all.iter().all(|v| v.abs() <= bound));
    assert!(all.iter().any(|v| v.abs() > 0.8 * bound) && all.iter().any(|v| v.abs() < 0.2 * bound));
}

/// A sequence run in two halves, the state carried over, gives the same
/// outputs and final state as one run.
#[test]
fn state_carries_across_calls() {
    fn halves<T: Element, M: Recurrent<T>>(m: &M, bf: bool, x: &Tensor<T>) {
        let whole = m.run_values(x, None, None);
        let axis = usize::from(bf);
        let tape = Tape::new();
        let xv = tape.constant(x.clone());
        let (o1, h1, c1) = m
            .run(&tape, xv.narrow(axis, 0, 2).unwrap(), None, None)
            .unwrap();
        let (o2, h2, c2) = m
            .run(&tape, xv.narrow(axis, 2, 3).unwrap(), Some(h1), c1)
            .unwrap();
        let joined = Var::concat(&[o1, o2], axis).unwrap().value().to_vec();
        let close = |a: &[T], b: &[T]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x.to_f64() - y.to_f64()).abs() < 1e-12)
                && a.len() == b.len()
        };
        assert!(close(&joined, &whole.0));
        assert!(close(&h2.value().to_vec(), &whole.1));
        if let (Some(c2), Some(c)) = (c2, whole.2) {
            assert!(close(&c2.value().to_vec(), &c));
        }
    }
    let x_bf = Tensor::<f64>::uniform_seeded(&[2, 5, 3], -1.0, 1.0, 7);
    let x_tm = Tensor::<f64>::uniform_seeded(&[5, 2, 3], -1.0, 1.0, 8);
    halves(&lstm(1), true, &x_bf);
    halves(&gru(1), false, &x_tm);
    halves(&rnn(1), true, &x_bf);
}

/// Batch-first and time-major layers with the same weights agree on
/// transposed inputs.
#[test]
fn batch_first_is_a_transpose() {
    let x = Tensor::<f64>::uniform_seeded(&[5, 2, 3], -1.0, 1.0, 3);
    let x_bf = x.permute(&[1, 0, 2]).unwrap().to_contiguous();
    let tm = Gru::<f64>::with_options(3, 4, RecurrentOptions::new().num_layers(2).seed(5)).unwrap();
    let bf_opts = RecurrentOptions::new().num_layers(2).batch_first(true);
    let mut bf = Gru::<f64>::with_options(3, 4, bf_opts).unwrap();
    bf.load_state_dict(&tm.state_dict()).unwrap();
    let (o_tm, h_tm, _) = tm.run_values(&x, None, None);
    let (o_bf, h_bf, _) = bf.run_values(&x_bf, None, None);
    let o_bf_tm = Tensor::from_vec(o_bf, &[2, 5, 4])
        .unwrap()
        .permute(&[1, 0, 2])
        .unwrap();
    assert_eq!(o_bf_tm.to_vec(), o_tm);
    assert_eq!(h_bf, h_tm);
}

#[test]
fn errors_name_the_layer_and_the_shapes() {
    let m = Lstm::<f32>::with_options(3, 4, RecurrentOptions::new().num_layers(2)).unwrap();
    let tape = Tape::new();
    let err = |x: &[usize], h: Option<&[usize]>, c: Option<&[usize]>| {
        let x = tape.constant(Tensor::zeros(x));
        let s = h.map(|h| tape.constant(Tensor::zeros(h)));
        let c = c.map(|c| tape.constant(Tensor::zeros(c)));
        m.run(&tape, x, s, c).unwrap_err().to_string()
    };
    let e = err(&[5, 2, 7], None, None);
    assert!(
        e.contains("LSTM(3, 4, num_layers=2)")
            && e.contains("[5, 2, 7]")
            && e.contains("3 features"),
        "{e}"
    );
    let e = err(&[5, 2, 3], Some(&[2, 2, 5]), Some(&[2, 2, 4]));
    assert!(
        e.contains("initial hidden state h0 of shape [2, 2, 5] should be [2, 2, 4]"),
        "{e}"
    );
    let e = err(&[5, 2, 3], Some(&[2, 2, 4]), Some(&[1, 2, 4]));
    assert!(
        e.contains("cell state c0 of shape [1, 2, 4] should be [2, 2, 4]"),
        "{e}"
    );
    let e = err(&[0, 2, 3], None, None);
    assert!(e.contains("no time steps"), "{e}");
    let e = err(&[2, 3], None, None);
    assert!(
        e.contains("[2, 3]") && e.contains("[seq, batch, features]"),
        "{e}"
    );
    // Inside a model the error says where the layer sits.
    let model = Sequential::new().add(Gru::<f32>::new(3, 4, 0));
    let e = model
        .forward(&tape, tape.constant(Tensor::zeros(&[5, 2, 6])))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("layer 0 (GRU)"), "{e}");
    assert!(Lstm::<f32>::with_options(3, 0, RecurrentOptions::new()).is_err());
    assert!(Gru::<f32>::with_options(3, 4, RecurrentOptions::new().num_layers(0)).is_err());
}

#[test]
fn checkpoint_file_round_trip() {
    let dir = std::env::temp_dir().join(format!("tapegrad-rnn-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lstm.safetensors");
    let a = lstm(3);
    checkpoint::save(&a, &path).unwrap();
    let mut b = lstm(4);
    checkpoint::load(&mut b, &path).unwrap();
    let x = Tensor::<f64>::uniform_seeded(&[2, 5, 3], -1.0, 1.0, 1);
    assert_eq!(a.run_values(&x, None, None), b.run_values(&x, None, None));
    // A GRU checkpoint is not an LSTM's: the shapes differ, named.
    checkpoint::save(&gru(1), &path).unwrap();
    let e = checkpoint::load(&mut b, &path).unwrap_err().to_string();
    assert!(e.contains("weight_ih_l0") && e.contains("[12, 3]"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Gradients with respect to the input and both initial states through a
/// two-layer LSTM (layer stacking, state slicing and the fused op together),
/// checked against finite differences.
#[test]
fn gradients_through_a_stack() {
    let m = Lstm::<f64>::with_options(2, 3, RecurrentOptions::new().num_layers(2).seed(4)).unwrap();
    let inputs = [
        Tensor::uniform_seeded(&[3, 2, 2], -1.0, 1.0, 1),
        Tensor::uniform_seeded(&[2, 2, 3], -1.0, 1.0, 2),
        Tensor::uniform_seeded(&[2, 2, 3], -1.0, 1.0, 3),
    ];
    let report = gradcheck(
        |tape, v| {
            let (o, (h, c)) = m.forward_with_state(tape, v[0], Some((v[1], v[2])))?;
            o.sum_all()?.add(h.mul(c)?.sum_all()?)
        },
        &inputs,
    )
    .unwrap();
    assert!(report.passed, "{report}");
    let g = Gru::<f64>::with_options(
        2,
        3,
        RecurrentOptions::new().num_layers(2).batch_first(true),
    )
    .unwrap();
    let report = gradcheck(
        |tape, v| {
            let (o, h) = g.forward_with_state(tape, v[0], Some(v[1]))?;
            o.square()?.sum_all()?.add(h.sum_all()?)
        },
        // Batch first: x [batch 2, seq 3, 2], h0 [layers 2, batch 2, 3].
        &[
            Tensor::uniform_seeded(&[2, 3, 2], -1.0, 1.0, 4),
            inputs[1].clone(),
        ],
    )
    .unwrap();
    assert!(report.passed, "{report}");
}

/// A one-layer LSTM learns to report the sign of the sum of its inputs.
#[test]
fn an_lstm_learns() {
    use tapegrad_nn::{loss, Adam, Linear, Optimizer};
    let mut lstm =
        Lstm::<f32>::with_options(1, 8, RecurrentOptions::new().batch_first(true)).unwrap();
    let mut head = Linear::<f32>::new(8, 1, 0);
    let x = Tensor::<f32>::uniform_seeded(&[32, 6, 1], -1.0, 1.0, 11);
    let y: Vec<f32> = x
        .to_vec()
        .chunks(6)
        .map(|s| {
            if s.iter().sum::<f32>() > 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let y = Tensor::from_vec(y, &[32, 1]).unwrap();
    let (mut opt_a, mut opt_b) = (Adam::new(0.05), Adam::new(0.05));
    let mut losses = Vec::new();
    for _ in 0..60 {
        let tape = Tape::new();
        let out = lstm.forward(&tape, tape.constant(x.clone())).unwrap();
        let last = out.select(1, 5).unwrap();
        let pred = head.forward(&tape, last).unwrap();
        let l = loss::bce_with_logits(pred, tape.constant(y.clone())).unwrap();
        losses.push(l.item().unwrap());
        let grads = tape.backward(l).unwrap();
        let (ga, gb) = (lstm.grads(&grads), head.grads(&grads));
        opt_a.step(lstm.parameters_mut(), &ga).unwrap();
        opt_b.step(head.parameters_mut(), &gb).unwrap();
    }
    assert!(losses[59] < 0.3 * losses[0], "{:?}", &losses[..]);
}
