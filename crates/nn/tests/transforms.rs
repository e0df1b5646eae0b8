//! Checkpointed models and per-sample gradients, checked in f64 against
//! the plain computations.

use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_nn::{
    checkpoint, per_sample_grads, Activation, Dropout, Linear, Module, Param, ParamGrads,
    PerSampleMethod, Sequential,
};
use tapegrad_tensor::Tensor;

fn deep(dropout: bool) -> Sequential<f64> {
    let mut net = Sequential::new();
    for i in 0..6 {
        net = net.add(Linear::new(5, 5, i)).add(Activation::Tanh);
        if dropout && i % 2 == 0 {
            net = net.add(Dropout::new(0.3, 100 + i).unwrap());
        }
    }
    net.add(Linear::new(5, 3, 99))
}

fn x() -> Tensor<f64> {
    Tensor::uniform_seeded(&[4, 5], -1.0, 1.0, 7)
}

/// Gradients of Σ out², and of the penalty ‖∂L/∂x‖² (second order), by
/// parameter name.
fn grads_of(model: &dyn Module<f64>) -> (ParamGrads<f64>, ParamGrads<f64>) {
    let tape = Tape::new();
    let xv = tape.leaf(x());
    let l = model
        .forward(&tape, xv)
        .unwrap()
        .square()
        .unwrap()
        .sum_all()
        .unwrap();
    let first = model.grads(&tape.backward(l).unwrap());
    let gx = tape.grad_graph(&[l], &[xv]).unwrap()[0].unwrap();
    let penalty = gx.square().unwrap().sum_all().unwrap();
    let second = model.grads(&tape.backward(penalty).unwrap());
    (first, second)
}

#[track_caller]
fn assert_same(a: &ParamGrads<f64>, b: &ParamGrads<f64>) {
    assert_eq!(a.len(), b.len());
    for (name, g) in a.iter() {
        let h = b.get(name).unwrap_or_else(|| panic!("{name} missing"));
        let d = g
            .sub(h)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .item()
            .unwrap();
        assert!(d < 1e-12, "{name}: differs by {d}");
    }
}

#[test]
fn checkpointed_sequential_gives_the_plain_gradients_of_first_and_second_order() {
    let (first, second) = grads_of(&deep(false));
    for every in [1, 3, 4, 100] {
        let net = deep(false).checkpointed(every).unwrap();
        let (f, s) = grads_of(&net);
        assert_same(&first, &f);
        assert_same(&second, &s);
    }
    assert!(deep(false).checkpointed(0).is_err());
}

#[test]
fn checkpointed_segments_keep_only_their_boundaries_on_the_tape() {
    let plain = deep(false);
    let tape = Tape::new();
    plain.forward(&tape, tape.constant(x())).unwrap();
    let plain_len = tape.len();
    let net = deep(false).checkpointed(4).unwrap();
    assert_eq!(net.segments(), 4); // 13 layers: 4 + 4 + 4 + 1
    let tape = Tape::new();
    net.forward(&tape, tape.constant(x())).unwrap();
    // 3 checkpoint nodes + their 12 parameters + the last Linear (2
    // parameters, transpose, matmul, add) + the input.
    assert_eq!(tape.len(), 1 + 3 + 12 + 5);
    assert!(tape.len() * 2 <= plain_len, "{} vs {plain_len}", tape.len());
}

#[test]
fn dropout_in_a_checkpointed_segment_draws_the_same_mask_when_recomputed() {
    // Same seeds: the plain and the checkpointed model draw the same masks
    // in the forward pass. If the recomputation drew new ones, the
    // gradients would differ. Two steps: the generators advance once per
    // forward pass, as without checkpointing.
    let plain = deep(true);
    let net = deep(true).checkpointed(3).unwrap();
    for _ in 0..2 {
        let (f0, s0) = grads_of(&plain);
        let (f1, s1) = grads_of(&net);
        assert_same(&f0, &f1);
        assert_same(&s0, &s1);
    }
}

#[test]
fn the_closure_form_replays_dropout_too() {
    use std::sync::Arc;
    let drop = Arc::new(Dropout::new(0.5, 3).unwrap());
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::uniform_seeded(&[64], 0.5, 1.0, 1));
    let d = Arc::clone(&drop);
    let y = checkpoint(&tape, &[x], move |t, v| d.forward(t, v[0])?.square()).unwrap();
    let g = tape.backward(y.sum_all().unwrap()).unwrap();
    // d(mask·x)²/dx = 2·mask²·x: zero exactly where the forward pass dropped.
    let (yv, gv) = (y.value().to_vec(), g.get(x).unwrap().to_vec());
    assert!(yv.contains(&0.0) && yv.iter().any(|&v| v != 0.0));
    for (a, b) in yv.iter().zip(&gv) {
        assert_eq!(*a == 0.0, *b == 0.0);
    }
}

#[test]
fn changing_a_checkpointed_model_while_its_tape_is_alive_panics_clearly() {
    let mut net = deep(false).checkpointed(4).unwrap();
    let tape = Tape::new();
    net.forward(&tape, tape.constant(x())).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.parameters_mut().len()));
    assert!(r.is_err());
    drop(tape);
    assert_eq!(net.parameters_mut().len(), 14);
}

/// Cross-entropy per sample.
fn ce<'t>(
    labels: &[usize],
) -> impl Fn(Var<'t, f64>, std::ops::Range<usize>) -> TapeResult<Var<'t, f64>> + '_ {
    move |out, rows| out.log_softmax(1)?.gather_rows(&labels[rows])?.neg()
}

/// A model using one Linear twice: the fast path cannot split its
/// gradient, so the fallback runs.
struct Twice(Linear<f64>);
impl Module<f64> for Twice {
    fn forward<'t>(&self, tape: &'t Tape<f64>, x: Var<'t, f64>) -> TapeResult<Var<'t, f64>> {
        let h = self.0.forward(tape, x)?.tanh()?;
        self.0.forward(tape, h)
    }
    fn parameters(&self) -> Vec<(String, &Param<f64>)> {
        self.0.parameters()
    }
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<f64>)> {
        self.0.parameters_mut()
    }
    fn describe(&self) -> String {
        "Twice".into()
    }
}

#[test]
fn per_sample_gradients_match_one_backward_pass_per_sample() {
    let labels = [0, 2, 1, 2];
    let model = deep(false);
    let fast = per_sample_grads(&model, &x(), |o, r| ce(&labels)(o, r)).unwrap();
    assert_eq!(fast.method(), PerSampleMethod::OuterProducts);
    assert_eq!(fast.batch_size(), 4);
    let xs = x();
    for b in 0..4 {
        let tape = Tape::new();
        let out = model
            .forward(&tape, tape.constant(xs.narrow(0, b, 1).unwrap()))
            .unwrap();
        let l = ce(&labels)(out, b..b + 1).unwrap().sum_all().unwrap();
        let g = model.grads(&tape.backward(l).unwrap());
        for (name, per) in fast.iter() {
            let row = per.narrow(0, b, 1).unwrap().squeeze(0).unwrap();
            let d = row.sub(g.get(name).unwrap()).unwrap().abs().unwrap();
            assert!(
                d.max_all().unwrap().item().unwrap() < 1e-12,
                "{name}, sample {b}"
            );
        }
    }
}

#[test]
fn the_fallback_loops_and_agrees_with_the_sum() {
    let model = Twice(Linear::new(5, 5, 3));
    let labels = [0, 4, 1, 2];
    let per = per_sample_grads(&model, &x(), |o, r| ce(&labels)(o, r)).unwrap();
    assert_eq!(per.method(), PerSampleMethod::Loop);
    // The per-sample gradients sum to the batch gradient of the summed loss.
    let tape = Tape::new();
    let out = model.forward(&tape, tape.constant(x())).unwrap();
    let l = ce(&labels)(out, 0..4).unwrap().sum_all().unwrap();
    let g = model.grads(&tape.backward(l).unwrap());
    for (name, p) in per.iter() {
        let d = p
            .sum(&[0], false)
            .unwrap()
            .sub(g.get(name).unwrap())
            .unwrap();
        assert!(d.abs().unwrap().max_all().unwrap().item().unwrap() < 1e-12);
    }
}

#[test]
fn clipped_sum_scales_each_sample_to_the_bound() {
    // One Linear 1 → 1 without bias, loss = w·x per sample: the gradient of
    // sample b is x_b. With x = (3, 0.5) and bound 1: 3 is clipped to 1,
    // 0.5 kept, so the clipped sum is 1.5.
    let model = Linear::<f64>::from_tensors(Tensor::ones(&[1, 1]), None).unwrap();
    let x = Tensor::from_vec(vec![3.0, 0.5], &[2, 1]).unwrap();
    let per = per_sample_grads(&model, &x, |o, _| o.reshape(&[2])).unwrap();
    assert_eq!(per.norms().unwrap(), vec![3.0, 0.5]);
    let sum = per.clipped_sum(1.0).unwrap();
    assert!((sum.get("weight").unwrap().to_vec()[0] - 1.5).abs() < 1e-12);
    assert!(per.clipped_sum(0.0).is_err());
    // A loss that is not per-sample is refused.
    let err = per_sample_grads(&model, &x, |o, _| o.sum_all()).unwrap_err();
    assert!(err.to_string().contains("one value per sample"), "{err}");
}
