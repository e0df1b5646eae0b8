//! Gradients reach the parameters they belong to, whatever happens between
//! the backward pass and the step. Each test is one way it used to go wrong
//! (a step that returned `Ok(())` and changed nothing) or a rule of the
//! shared step (clipping, decay, checks) that must hold for every optimiser.

use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_nn::data::{Dataset, Target};
use tapegrad_nn::{
    loss, train, Adam, Linear, Mlp, Module, Objective, Optimizer, Param, ParamGrads, Progress,
    Sequential, Sgd, Trainer,
};
use tapegrad_tensor::Tensor;

fn data() -> (Tensor<f64>, Tensor<f64>) {
    let x = Tensor::<f64>::uniform_seeded(&[8, 3], -1.0, 1.0, 1);
    let y = Tensor::<f64>::uniform_seeded(&[8, 2], -1.0, 1.0, 2);
    (x, y)
}

fn model() -> Mlp<f64> {
    Mlp::builder(&[3, 4, 2]).seed(5).build().unwrap()
}

fn grads_of<M: Module<f64>>(m: &M, x: &Tensor<f64>, y: &Tensor<f64>) -> ParamGrads<f64> {
    let tape = Tape::new();
    let out = m.forward(&tape, tape.constant(x.clone())).unwrap();
    let l = loss::mse(out, tape.constant(y.clone())).unwrap();
    m.grads(&tape.backward(l).unwrap())
}

fn values<M: Module<f64>>(m: &M) -> Vec<Vec<f64>> {
    m.parameters()
        .iter()
        .map(|(_, p)| p.value().to_vec())
        .collect()
}

/// θ − α·g for every parameter: what plain SGD must produce.
fn sgd_by_hand<M: Module<f64>>(m: &M, g: &ParamGrads<f64>, lr: f64) -> Vec<Vec<f64>> {
    m.parameters()
        .iter()
        .map(|(n, p)| {
            let g = g.get(n).unwrap().to_vec();
            p.value()
                .to_vec()
                .iter()
                .zip(g)
                .map(|(t, g)| t - lr * g)
                .collect()
        })
        .collect()
}

#[test]
fn other_passes_between_backward_and_step_change_nothing() {
    let (x, y) = data();
    let mut m = model();
    let grads = grads_of(&m, &x, &y);
    let want = sgd_by_hand(&m, &grads, 0.1);
    // Everything a user might do in between: a prediction, an evaluation,
    // another forward and backward on a third tape.
    train::predict(&mut m, &x).unwrap();
    let val = Dataset::new(x.clone(), Target::Values(y.clone())).unwrap();
    train::evaluate(&mut m, &val, Objective::Mse).unwrap();
    let other = grads_of(
        &m,
        &y.narrow(1, 0, 1).unwrap().broadcast_to(&[8, 3]).unwrap(),
        &y,
    );
    assert!(!other.is_empty());
    let report = Sgd::new(0.1).step(m.parameters_mut(), &grads).unwrap();
    assert_eq!(report.updated.len(), 4);
    assert_eq!(values(&m), want);
}

#[test]
fn gradients_of_another_copy_of_the_model_are_refused() {
    let (x, y) = data();
    let a = model();
    let mut b = model(); // same seed: same names, shapes and values
    let before = values(&b);
    let err = Sgd::new(0.1)
        .step(b.parameters_mut(), &grads_of(&a, &x, &y))
        .unwrap_err()
        .to_string();
    assert!(err.contains("another parameter"), "{err}");
    assert_eq!(values(&b), before);
    // A clone is another copy too.
    let layer = Linear::<f64>::new(3, 2, 0);
    let mut copy = layer.clone();
    let err = Sgd::new(0.1).step(copy.parameters_mut(), &grads_of(&layer, &x, &y));
    assert!(err.is_err());
}

#[test]
fn gradients_that_reach_no_parameter_are_an_error() {
    let mut m = model();
    let before = values(&m);
    // A backward pass of a tape the model was never on.
    let tape = Tape::<f64>::new();
    let z = tape.leaf(Tensor::scalar(2.0)).square().unwrap();
    let grads = m.grads(&tape.backward(z).unwrap());
    assert!(grads.is_empty());
    let err = Adam::new(0.1)
        .step(m.parameters_mut(), &grads)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no gradients") && err.contains("0.weight"),
        "{err}"
    );
    // Gradients whose names match nothing.
    let mut stray = ParamGrads::new();
    stray.insert("encoder.weight", Tensor::<f64>::zeros(&[4, 3]));
    let err = Sgd::new(0.1)
        .step(m.parameters_mut(), &stray)
        .unwrap_err()
        .to_string();
    assert!(err.contains("encoder.weight"), "{err}");
    assert_eq!(values(&m), before);
}

#[test]
fn parameters_without_a_gradient_are_skipped_and_reported() {
    let (x, y) = data();
    let mut m = model();
    let mut grads = grads_of(&m, &x, &y);
    grads.retain(|name, _| name.starts_with("2.")); // freeze the first layer
    let before = values(&m);
    let report = Sgd::new(0.1).step(m.parameters_mut(), &grads).unwrap();
    assert_eq!(report.updated, ["2.weight", "2.bias"]);
    assert_eq!(report.skipped, ["0.weight", "0.bias"]);
    let after = values(&m);
    assert_eq!(after[..2], before[..2]);
    assert_ne!(after[2], before[2]);
    assert!(report
        .to_string()
        .contains("skipped (no gradient): 0.weight, 0.bias"));
}

/// Two layers built by hand, both holding parameters named "weight" and
/// "bias": identities keep their gradients apart.
struct TwoLayers {
    enc: Linear<f64>,
    dec: Linear<f64>,
}

impl Module<f64> for TwoLayers {
    fn forward<'t>(&self, tape: &'t Tape<f64>, x: Var<'t, f64>) -> TapeResult<Var<'t, f64>> {
        let h = self.enc.forward(tape, x)?.tanh()?;
        self.dec.forward(tape, h)
    }
    fn parameters(&self) -> Vec<(String, &Param<f64>)> {
        let enc = self
            .enc
            .parameters()
            .into_iter()
            .map(|(n, p)| (format!("enc.{n}"), p));
        let dec = self
            .dec
            .parameters()
            .into_iter()
            .map(|(n, p)| (format!("dec.{n}"), p));
        enc.chain(dec).collect()
    }
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<f64>)> {
        let enc = self
            .enc
            .parameters_mut()
            .into_iter()
            .map(|(n, p)| (format!("enc.{n}"), p));
        let dec = self
            .dec
            .parameters_mut()
            .into_iter()
            .map(|(n, p)| (format!("dec.{n}"), p));
        enc.chain(dec).collect()
    }
    fn describe(&self) -> String {
        "TwoLayers".into()
    }
}

#[test]
fn same_named_parameters_of_two_layers_stay_apart() {
    let (x, y) = data();
    let m = TwoLayers {
        enc: Linear::new(3, 3, 1),
        dec: Linear::new(3, 2, 2),
    };
    let grads = grads_of(&m, &x, &y);
    let names: Vec<&str> = grads.names().collect();
    assert_eq!(names, ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]);
    // The decoder's bias gradient by hand: d mean((o − y)²)/do summed over rows.
    let tape = Tape::new();
    let out = m
        .forward(&tape, tape.constant(x.clone()))
        .unwrap()
        .value()
        .to_vec();
    let yv = y.to_vec();
    let mut want = [0.0; 2];
    for (i, (o, t)) in out.iter().zip(&yv).enumerate() {
        want[i % 2] += 2.0 * (o - t) / 16.0;
    }
    let got = grads.get("dec.bias").unwrap().to_vec();
    assert!((got[0] - want[0]).abs() < 1e-12 && (got[1] - want[1]).abs() < 1e-12);
    assert_eq!(grads.get("enc.bias").unwrap().shape(), &[3]);
}

#[test]
fn accumulated_half_batches_equal_the_full_batch() {
    let (x, y) = data();
    let m = model();
    let full = grads_of(&m, &x, &y);
    let mut acc = ParamGrads::new();
    for half in 0..2 {
        let xs = x.narrow(0, 4 * half, 4).unwrap();
        let ys = y.narrow(0, 4 * half, 4).unwrap();
        acc.accumulate(&grads_of(&m, &xs, &ys)).unwrap();
    }
    acc.scale(0.5).unwrap();
    for (name, g) in full.iter() {
        let a = acc.get(name).unwrap().to_vec();
        for (u, v) in g.to_vec().iter().zip(&a) {
            assert!((u - v).abs() < 1e-12, "{name}");
        }
    }
    // The accumulated gradients still know their parameters.
    let mut m = m;
    assert!(Sgd::new(0.1).step(m.parameters_mut(), &acc).is_ok());
}

#[test]
fn clipping_is_the_same_for_every_optimiser() {
    // An optimiser that clips equals the same optimiser given gradients
    // clipped by hand, bit for bit: the clipping is one piece of code.
    let (x, y) = data();
    type Make = fn(bool) -> Box<dyn Optimizer<f64>>;
    let makes: [(&str, Make); 3] = [
        ("sgd", |clip| {
            let o = Sgd::new(0.3).momentum(0.9);
            Box::new(if clip {
                o.max_grad_norm(0.05).clip_value(0.02)
            } else {
                o
            })
        }),
        ("adam", |clip| {
            let o = Adam::new(0.01);
            Box::new(if clip {
                o.max_grad_norm(0.05).clip_value(0.02)
            } else {
                o
            })
        }),
        ("adamw", |clip| {
            let o = Adam::adamw(0.01, 0.1);
            Box::new(if clip {
                o.max_grad_norm(0.05).clip_value(0.02)
            } else {
                o
            })
        }),
    ];
    for (name, make) in makes {
        let (mut a, mut b) = (model(), model());
        let (mut oa, mut ob) = (make(true), make(false));
        for _ in 0..3 {
            let ga = grads_of(&a, &x, &y);
            let mut gb = grads_of(&b, &x, &y);
            gb.clip_value(0.02).unwrap();
            let norm = gb.clip_norm(0.05).unwrap();
            let ra = oa.step(a.parameters_mut(), &ga).unwrap();
            ob.step(b.parameters_mut(), &gb).unwrap();
            assert_eq!(ra.grad_norm, Some(norm), "{name}");
        }
        assert_eq!(values(&a), values(&b), "{name}");
    }
}

#[test]
fn weight_decay_is_the_same_for_every_optimiser() {
    // L2 decay λ equals adding λθ to the gradient by hand.
    let (x, y) = data();
    for adam in [false, true] {
        let (mut a, mut b) = (model(), model());
        let make = |wd: f64| -> Box<dyn Optimizer<f64>> {
            if adam {
                Box::new(Adam::new(0.01).weight_decay(wd))
            } else {
                Box::new(Sgd::new(0.1).momentum(0.5).weight_decay(wd))
            }
        };
        let (mut oa, mut ob) = (make(0.3), make(0.0));
        for _ in 0..2 {
            let ga = grads_of(&a, &x, &y);
            let gb = grads_of(&b, &x, &y);
            let mut decayed = ParamGrads::new();
            for ((name, g), (_, p)) in gb.iter().zip(b.parameters()) {
                decayed.insert(name, g.add(&p.value().mul_scalar(0.3).unwrap()).unwrap());
            }
            oa.step(a.parameters_mut(), &ga).unwrap();
            ob.step(b.parameters_mut(), &decayed).unwrap();
        }
        let (va, vb) = (values(&a), values(&b));
        for (u, v) in va.iter().flatten().zip(vb.iter().flatten()) {
            assert!((u - v).abs() < 1e-15, "adam = {adam}: {u} vs {v}");
        }
    }
}

#[test]
fn bad_hyperparameters_are_errors_before_anything_changes() {
    let (x, y) = data();
    let cases: Vec<(Box<dyn Optimizer<f64>>, &str)> = vec![
        (
            Box::new(Sgd::new(f64::NAN)),
            "learning rate must be a finite number ≥ 0, got NaN",
        ),
        (Box::new(Sgd::new(-0.1)), "Sgd: learning rate"),
        (Box::new(Adam::new(f64::INFINITY)), "Adam: learning rate"),
        (Box::new(Sgd::new(0.1).momentum(-0.5)), "momentum"),
        (Box::new(Sgd::new(0.1).nesterov(true)), "Nesterov"),
        (
            Box::new(Adam::new(0.1).betas(0.9, 1.0)),
            "beta2 must be in [0, 1), got 1",
        ),
        (Box::new(Adam::new(0.1).eps(f64::NAN)), "eps"),
        (Box::new(Sgd::new(0.1).max_grad_norm(0.0)), "max_grad_norm"),
        (Box::new(Sgd::new(0.1).clip_value(-1.0)), "clip_value"),
        (Box::new(Adam::adamw(0.1, f64::NAN)), "AdamW: weight_decay"),
    ];
    for (mut opt, want) in cases {
        let mut m = model();
        let before = values(&m);
        let g = grads_of(&m, &x, &y);
        let err = opt.step(m.parameters_mut(), &g).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        assert_eq!(values(&m), before);
    }
    // A schedule that sets a bad rate is caught the same way.
    let mut opt = Sgd::new(0.1);
    Optimizer::<f64>::set_lr(&mut opt, f64::NAN);
    let mut m = model();
    let g = grads_of(&m, &x, &y);
    assert!(opt.step(m.parameters_mut(), &g).is_err());
}

#[test]
fn a_gradient_of_the_wrong_shape_is_an_error() {
    let mut m = model();
    let mut g = ParamGrads::new();
    g.insert("0.bias", Tensor::<f64>::zeros(&[5]));
    let err = Sgd::new(0.1)
        .step(m.parameters_mut(), &g)
        .unwrap_err()
        .to_string();
    assert!(err.contains("shape [5]") && err.contains("[4]"), "{err}");
}

#[test]
fn threads_sharing_a_model_each_get_their_own_gradients() {
    let (x, y) = data();
    let m = model();
    let want = grads_of(&m, &x, &y).to_tensors();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| grads_of(&m, &x, &y).to_tensors()))
            .collect();
        for h in handles {
            let got = h.join().unwrap();
            for (name, g) in &want {
                assert_eq!(got[name].to_vec(), g.to_vec(), "{name}");
            }
        }
    });
}

#[test]
fn a_resized_parameter_cannot_share_a_tape_with_its_old_self() {
    let mut p = Param::new("w", Tensor::<f64>::zeros(&[2]));
    let tape = Tape::new();
    p.var(&tape).unwrap();
    p.set_value(Tensor::zeros(&[3]));
    let err = p.var(&tape).unwrap_err().to_string();
    assert!(
        err.contains("\"w\"") && err.contains("[2]") && err.contains("[3]"),
        "{err}"
    );
    // On a new tape it is fine.
    assert!(p.var(&Tape::new()).is_ok());
}

#[test]
fn a_linear_layer_names_itself_and_its_sizes() {
    let layer = Linear::<f32>::new(3, 2, 0);
    let tape = Tape::new();
    let err = layer
        .forward(&tape, tape.constant(Tensor::zeros(&[4, 5])))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Linear(3 → 2) got inputs of shape [4, 5]: expected 3 features"),
        "{err}"
    );
    let seq = Sequential::<f32>::new()
        .add(Linear::new(5, 4, 0))
        .add(Linear::new(3, 2, 0));
    let err = seq
        .forward(&tape, tape.constant(Tensor::zeros(&[4, 5])))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("layer 1 (Linear)") && err.contains("Linear(3 → 2)"),
        "{err}"
    );
}

fn tiny_data() -> Dataset<f64> {
    let x = Tensor::<f64>::uniform_seeded(&[6, 3], -1.0, 1.0, 3);
    Dataset::new(x, Target::Classes(vec![0, 1, 0, 1, 1, 0])).unwrap()
}

#[test]
fn the_trainer_refuses_bad_settings_by_name() {
    let data = tiny_data();
    let quiet = || Trainer::new(Objective::CrossEntropy).progress(Progress::Never);
    let cases = [
        (quiet().batch_size(0), "batch_size(0)"),
        (quiet().gaussian_noise(-1.0), "gaussian_noise(-1)"),
        (quiet().mixup(f64::NAN), "mixup(NaN)"),
        (quiet().early_stopping(0), "early_stopping(0)"),
    ];
    for (trainer, want) in cases {
        let mut m = model();
        let before = values(&m);
        let err = trainer
            .fit(&mut m, &mut Sgd::new(0.1), &data, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
        assert_eq!(values(&m), before);
    }
    let err = quiet()
        .fit(&mut model(), &mut Sgd::new(f64::NAN), &data, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("learning rate"), "{err}");
}

#[test]
fn the_trainer_hook_sees_and_shapes_every_step() {
    let data = tiny_data();
    let mut m = model();
    let before = values(&m);
    let mut seen = Vec::new();
    // Zeroed gradients: SGD without momentum or decay leaves θ alone.
    Trainer::new(Objective::CrossEntropy)
        .epochs(2)
        .batch_size(4)
        .progress(Progress::Never)
        .fit_with_hook(&mut m, &mut Sgd::new(0.5), &data, None, |g, at| {
            seen.push((at.epoch, at.step, g.len()));
            g.scale(0.0)
        })
        .unwrap();
    assert_eq!(seen, [(1, 1, 4), (1, 2, 4), (2, 3, 4), (2, 4, 4)]);
    assert_eq!(values(&m), before);
    // A hook's error stops training.
    let err = Trainer::new(Objective::CrossEntropy)
        .progress(Progress::Never)
        .fit_with_hook(&mut m, &mut Sgd::new(0.5), &data, None, |_, _| {
            Err(tapegrad_nn::Error::InvalidArgument {
                op: "my hook",
                msg: "stop".into(),
            })
        })
        .unwrap_err();
    assert!(err.to_string().contains("my hook"));
}

#[test]
fn a_diverging_loss_is_an_error_that_says_why() {
    let mut x = Tensor::<f64>::uniform_seeded(&[6, 3], -1.0, 1.0, 3).to_vec();
    x[4] = f64::NAN; // row 2, column 2
    let data = Dataset::new(
        Tensor::from_vec(x, &[6, 3]).unwrap(),
        Target::Classes(vec![0, 1, 0, 1, 1, 0]),
    );
    // Data sets may refuse NaN outright; if this one is accepted, the
    // trainer must say where the NaN came from.
    if let Ok(data) = data {
        let err = Trainer::new(Objective::CrossEntropy)
            .batch_size(6)
            .progress(Progress::Never)
            .fit(&mut model(), &mut Sgd::new(0.1), &data, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("non-finite value"), "{err}");
    }
    let err = Trainer::new(Objective::Mse)
        .progress(Progress::Never)
        .fit(
            &mut model(),
            &mut Sgd::new(1e200),
            &Dataset::new(
                Tensor::<f64>::uniform_seeded(&[6, 3], -1.0, 1.0, 3),
                Target::Values(Tensor::<f64>::uniform_seeded(&[6, 2], -1.0, 1.0, 4)),
            )
            .unwrap(),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("the model diverged"), "{err}");
}
