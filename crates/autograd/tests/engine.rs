//! Engine behaviour: accumulation, unused leaves, seeds, no-grad, detach,
//! repeated backward, memory, threads, and the error paths.

use std::sync::Arc;

use tapegrad_autograd::{BackwardCtx, Error, InputGrads, Op, Result, Tape};
use tapegrad_tensor::{Element, Tensor};

fn vec_t(data: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

#[test]
fn reuse_accumulates() {
    // y = x·x: x reaches the product twice, so dy/dx = x + x = 2x.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec_t(&[3.0, -2.0], &[2]));
    let y = x.mul(x).unwrap().sum_all().unwrap();
    let g = tape.backward(y).unwrap();
    assert_eq!(g.get(x).unwrap().to_vec(), [6.0, -4.0]);
    // z = x·x·x: three uses, dz/dx = 3x² = 27 at x = 3.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::scalar(3.0));
    let z = x.mul(x).unwrap().mul(x).unwrap();
    assert_eq!(
        tape.backward(z).unwrap().get(x).unwrap().item().unwrap(),
        27.0
    );
}

#[test]
fn diamond_accumulates_both_branches() {
    // a = 2x feeds b = a² and c = 3a; y = b + c.
    // dy/da = 2a + 3, dy/dx = 2·(2a + 3) = 2·(4x + 3). At x = 1: 14.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::scalar(1.0));
    let a = x.mul_scalar(2.0).unwrap();
    let b = a.square().unwrap();
    let c = a.mul_scalar(3.0).unwrap();
    let y = b.add(c).unwrap();
    let g = tape.backward(y).unwrap();
    assert_eq!(g.get(x).unwrap().item().unwrap(), 14.0);
    // Intermediate values get their gradient too: dy/da = 2a + 3 = 7.
    assert_eq!(g.get(a).unwrap().item().unwrap(), 7.0);
    // The same through grad(), asking for the intermediate value.
    let ga = tape.grad(&[y], &[a, x]).unwrap();
    assert_eq!(ga[0].as_ref().unwrap().item().unwrap(), 7.0);
    assert_eq!(ga[1].as_ref().unwrap().item().unwrap(), 14.0);
}

#[test]
fn unused_leaves_and_constants_have_no_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::scalar(2.0));
    let unused = tape.leaf(vec_t(&[1.0, 2.0, 3.0], &[3]));
    let c = tape.constant(Tensor::scalar(5.0));
    let y = x.mul(c).unwrap();
    let g = tape.grad(&[y], &[x, unused, c]).unwrap();
    assert_eq!(g[0].as_ref().unwrap().item().unwrap(), 5.0);
    assert!(
        g[1].is_none(),
        "a leaf y does not depend on has no gradient"
    );
    assert!(g[2].is_none(), "a constant has no gradient");
    let grads = tape.backward(y).unwrap();
    assert!(grads.get(unused).is_none());
    assert!(grads.get(c).is_none());
    let z = grads.get_or_zeros(unused);
    assert_eq!((z.dims(), z.to_vec()), (&[3][..], vec![0.0; 3]));
    // get_or_zeros gives the real gradient when there is one.
    assert_eq!(grads.get_or_zeros(x).to_vec(), [5.0]);
}

#[test]
fn non_scalar_root_with_explicit_seed() {
    // y = x², seed s: the VJP is s·2x elementwise.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec_t(&[1.0, 2.0, 3.0], &[3]));
    let y = x.square().unwrap();
    let g = tape
        .backward_with_seed(y, vec_t(&[1.0, 0.5, -1.0], &[3]))
        .unwrap();
    assert_eq!(g.get(x).unwrap().to_vec(), [2.0, 2.0, -6.0]);
    // A seed of the wrong shape is an error.
    let e = tape.backward_with_seed(y, Tensor::ones(&[2])).unwrap_err();
    assert!(matches!(e, Error::SeedShape { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "backward from node %0001: seed of shape [2] does not match the root's shape [3]"
    );
    // grad_graph_with_seeds takes a recorded seed.
    let s = tape.constant(vec_t(&[1.0, 1.0, 2.0], &[3]));
    let gx = tape.grad_graph_with_seeds(&[y], &[s], &[x]).unwrap()[0].unwrap();
    assert_eq!(gx.value().to_vec(), [2.0, 4.0, 12.0]);
}

#[test]
fn non_scalar_backward_without_seed_is_an_error() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::ones(&[2, 3]));
    let y = x.mul_scalar(2.0).unwrap();
    let e = tape.backward(y).unwrap_err();
    assert_eq!(
        e,
        Error::NonScalarRoot {
            node: 1,
            shape: vec![2, 3]
        }
    );
    assert_eq!(
        e.to_string(),
        "backward from node %0001 of shape [2, 3]: a non-scalar root needs a seed gradient (use backward_with_seed)"
    );
    let len = tape.len();
    assert!(matches!(
        tape.grad(&[y], &[x]),
        Err(Error::NonScalarRoot { .. })
    ));
    assert_eq!(tape.len(), len);
    // A one-element value of any rank is a scalar root.
    let s = x.sum(&[0, 1], true).unwrap();
    assert_eq!(s.shape().as_slice(), &[1, 1]);
    assert_eq!(tape.backward(s).unwrap().get(x).unwrap().to_vec(), [1.0; 6]);
}

#[test]
fn no_grad_stops_recording_gradients() {
    // y = x² + (3x computed under no_grad): only the first term counts.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::scalar(2.0));
    let k = tape.no_grad(|| x.mul_scalar(3.0)).unwrap();
    assert!(!k.requires_grad());
    assert!(tape.is_grad_enabled(), "no_grad restores the flag");
    let y = x.square().unwrap().add(k).unwrap();
    assert!(y.requires_grad());
    assert_eq!(y.item().unwrap(), 10.0);
    assert_eq!(
        tape.backward(y).unwrap().get(x).unwrap().item().unwrap(),
        4.0
    );
    // Nested no_grad restores the outer state.
    tape.no_grad(|| {
        tape.no_grad(|| ());
        assert!(!tape.is_grad_enabled());
    });
    assert!(tape.is_grad_enabled());
}

#[test]
fn detach_stops_gradients() {
    // y = x · detach(x): the detached factor is a constant, so dy/dx = x
    // (not 2x).
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::scalar(3.0));
    let d = x.detach();
    assert!(!d.requires_grad());
    assert_eq!(d.item().unwrap(), 3.0);
    let y = x.mul(d).unwrap();
    assert_eq!(
        tape.backward(y).unwrap().get(x).unwrap().item().unwrap(),
        3.0
    );
    // Only the detached path: no gradient at all.
    let z = d.square().unwrap();
    assert!(tape.grad(&[z], &[x]).unwrap()[0].is_none());
}

#[test]
fn repeated_backward_gives_the_same_result_and_keeps_the_tape() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec_t(&[0.5, -1.5], &[2]));
    let y = x.tanh().unwrap().mul(x).unwrap().sum_all().unwrap();
    let len = tape.len();
    let g1 = tape.backward(y).unwrap().get(x).unwrap().to_vec();
    assert_eq!(tape.len(), len);
    let g2 = tape.backward(y).unwrap().get(x).unwrap().to_vec();
    assert_eq!(tape.len(), len);
    let g3 = tape.grad(&[y], &[x]).unwrap()[0].clone().unwrap().to_vec();
    assert_eq!(tape.len(), len);
    let (g4, trace) = tape.backward_traced(y).unwrap();
    assert_eq!(tape.len(), len);
    assert_eq!(g1, g2);
    assert_eq!(g1, g3);
    assert_eq!(g1, g4.get(x).unwrap().to_vec());
    // d(x·tanh x)/dx = tanh x + x·(1 − tanh²x).
    let expect: Vec<f64> = [0.5f64, -1.5]
        .iter()
        .map(|&x| x.tanh() + x * (1.0 - x.tanh().powi(2)))
        .collect();
    for (a, b) in g1.iter().zip(&expect) {
        assert!((a - b).abs() < 1e-14);
    }
    // The trace visits the ops in reverse order: sum, mul, tanh.
    let ops: Vec<&str> = trace.steps.iter().map(|s| s.op.as_str()).collect();
    assert_eq!(ops, ["sum", "mul", "tanh"]);
    // grad_graph, unlike the others, keeps its gradient on the tape.
    tape.grad_graph(&[y], &[x]).unwrap();
    assert!(tape.len() > len);
}

#[test]
fn clear_empties_the_tape() {
    let mut tape = Tape::<f64>::new();
    let id = tape.id();
    {
        let x = tape.leaf(Tensor::scalar(1.0));
        x.exp().unwrap();
    }
    assert_eq!(tape.len(), 2);
    tape.clear();
    assert!(tape.is_empty());
    assert_ne!(tape.id(), id, "a cleared tape is a new recording");
    let x = tape.leaf(Tensor::scalar(2.0));
    assert_eq!(x.id(), 0);
    let y = x.square().unwrap();
    assert_eq!(
        tape.backward(y).unwrap().get(x).unwrap().item().unwrap(),
        4.0
    );
}

/// `y = x` that counts how many instances are alive, to watch the tape
/// free what it owns.
struct Counted {
    _alive: Arc<()>,
}
impl<T: Element> Op<T> for Counted {
    fn name(&self) -> &str {
        "counted"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].clone())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(InputGrads::from_elem(Some(cx.grad_output), 1))
    }
}

#[test]
fn training_loop_with_a_fresh_tape_per_step_does_not_grow() {
    // Fit w in y = w·x by gradient descent, one tape per step.
    let alive = Arc::new(());
    let x = vec_t(&[1.0, 2.0, 3.0], &[3]);
    let target = vec_t(&[2.0, 4.0, 6.0], &[3]);
    let mut w = Tensor::scalar(0.0);
    let mut lens = Vec::new();
    for _ in 0..50 {
        let tape = Tape::<f64>::new();
        let wv = tape.param("w", w.clone());
        let wv = tape
            .apply(
                Counted {
                    _alive: alive.clone(),
                },
                &[wv],
            )
            .unwrap();
        let pred = wv.mul(tape.constant(x.clone())).unwrap();
        let loss = pred
            .sub(tape.constant(target.clone()))
            .unwrap()
            .square()
            .unwrap()
            .mean_all()
            .unwrap();
        let g = tape.backward(loss).unwrap();
        w = w
            .sub(&g.get(wv).unwrap().mul_scalar(0.05).unwrap())
            .unwrap();
        lens.push(tape.len());
        assert_eq!(Arc::strong_count(&alive), 2, "one op alive on the tape");
        drop(tape);
        assert_eq!(
            Arc::strong_count(&alive),
            1,
            "dropping the tape frees its ops"
        );
    }
    assert!(lens.iter().all(|&l| l == lens[0]), "{lens:?}");
    assert!((w.item().unwrap() - 2.0).abs() < 1e-6);
    // clear() frees too.
    let mut tape = Tape::<f64>::new();
    {
        let v = tape.leaf(Tensor::scalar(1.0));
        tape.apply(
            Counted {
                _alive: alive.clone(),
            },
            &[v],
        )
        .unwrap();
    }
    assert_eq!(Arc::strong_count(&alive), 2);
    tape.clear();
    assert_eq!(Arc::strong_count(&alive), 1);
}

#[test]
fn tape_is_send() {
    const fn assert_send<S: Send>() {}
    const _: () = assert_send::<Tape<f32>>();
    const _: () = assert_send::<Tape<f64>>();
    // Each thread records and differentiates on its own tape.
    let handles: Vec<_> = (1..=4)
        .map(|k| {
            let tape = Tape::<f32>::new();
            std::thread::spawn(move || {
                let x = tape.leaf(Tensor::scalar(k as f32));
                let y = x.powf(3.0).unwrap();
                tape.backward(y).unwrap().get(x).unwrap().item().unwrap()
            })
        })
        .collect();
    let got: Vec<f32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, [3.0, 12.0, 27.0, 48.0]);
}

#[test]
fn values_from_another_tape_are_rejected() {
    let (t1, t2) = (Tape::<f64>::new(), Tape::<f64>::new());
    let a = t1.leaf(Tensor::scalar(1.0));
    let b = t2.leaf(Tensor::scalar(2.0));
    let e = a.add(b).unwrap_err();
    assert_eq!(e, Error::ForeignVar { op: "add".into() });
    assert_eq!(
        e.to_string(),
        "add: a value from another tape was used on this tape"
    );
    assert_eq!(t1.len(), 1, "nothing recorded");
    assert!(matches!(t1.backward(b), Err(Error::ForeignVar { .. })));
    let y = a.square().unwrap();
    assert!(matches!(t1.grad(&[y], &[b]), Err(Error::ForeignVar { .. })));
    // Gradients from one tape do not answer for another tape's value at
    // the same position.
    let g = t1.backward(y).unwrap();
    assert!(g.get(a).is_some());
    assert_eq!((a.id(), b.id()), (0, 0));
    assert!(g.get(b).is_none());
}

#[test]
fn op_shape_error_carries_the_tape_position() {
    let tape = Tape::<f64>::new();
    let a = tape.leaf(Tensor::ones(&[2, 3]));
    let b = tape.leaf(Tensor::ones(&[4, 5]));
    let _c = a.exp().unwrap();
    let e = a.matmul(b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "at tape node %0003 (matmul): matmul of [2, 3] by [4, 5]: inner dimensions 3 and 4 differ"
    );
    assert!(matches!(e, Error::Op { node: 3, .. }));
    assert!(std::error::Error::source(&e).is_some());
    assert_eq!(tape.len(), 3, "the failed op is not recorded");
    let e = a.add(b).unwrap_err();
    assert!(
        matches!(&e, Error::Op { node: 3, op, .. } if op == "add"),
        "{e}"
    );
}

#[test]
fn anomaly_mode_reports_the_first_nan_in_forward() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec_t(&[1.0, -1.0], &[2]));
    // Off: a NaN flows silently.
    assert!(x.ln().unwrap().value().to_vec()[1].is_nan());
    tape.set_anomaly_detection(true);
    assert!(tape.anomaly_detection());
    let len = tape.len();
    let e = x.exp().unwrap().neg().unwrap().ln().unwrap_err();
    assert_eq!(
        e,
        Error::Anomaly {
            op: "ln".into(),
            node: len + 2,
            phase: "forward",
            input_shapes: vec![vec![2]],
        }
    );
    assert_eq!(
        e.to_string(),
        format!("anomaly: ln at tape node %{:04} produced a NaN or infinity in the forward pass (input shapes [[2]])", len + 2)
    );
}

#[test]
fn anomaly_mode_reports_the_first_infinity_in_backward() {
    // sqrt(0) = 0 is fine, but its gradient 1/(2·sqrt 0) is infinite: the
    // error names sqrt and its tape position, not the helper op inside the
    // backward rule.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec_t(&[0.0, 4.0], &[2]));
    let s = x.sqrt().unwrap(); // %0001
    let y = s.mul_scalar(2.0).unwrap().sum_all().unwrap();
    // Off: an infinite gradient comes back.
    let g = tape.backward(y).unwrap().get(x).unwrap().to_vec();
    assert_eq!(g, [f64::INFINITY, 0.5]);
    tape.set_anomaly_detection(true);
    let len = tape.len();
    let e = tape.backward(y).unwrap_err();
    assert_eq!(
        e,
        Error::Anomaly {
            op: "sqrt".into(),
            node: s.id(),
            phase: "backward",
            input_shapes: vec![vec![2]],
        }
    );
    assert!(
        e.to_string()
            .starts_with("anomaly: sqrt at tape node %0001"),
        "{e}"
    );
    assert!(e.to_string().contains("backward pass"), "{e}");
    assert_eq!(
        tape.len(),
        len,
        "a failed backward leaves the tape as it was"
    );
    // The same through grad_graph (create_graph).
    let e = tape.grad_graph(&[y], &[x]).unwrap_err();
    assert!(
        matches!(&e, Error::Anomaly { op, phase: "backward", .. } if op == "sqrt"),
        "{e}"
    );
}

#[test]
fn gradients_through_broadcasting_have_the_input_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.leaf(Tensor::uniform_seeded(&[2, 3], -1.0, 1.0, 1));
    let b = tape.leaf(Tensor::uniform_seeded(&[3], -1.0, 1.0, 2));
    let c = tape.leaf(Tensor::scalar(0.5));
    let d = tape.leaf(Tensor::uniform_seeded(&[2, 1], -1.0, 1.0, 3));
    let e = tape.leaf(Tensor::uniform_seeded(&[4, 1, 1], -1.0, 1.0, 4));
    let y = a
        .mul(b)
        .unwrap()
        .add(c)
        .unwrap()
        .sub(d)
        .unwrap()
        .div(e.exp().unwrap())
        .unwrap();
    assert_eq!(y.shape().as_slice(), &[4, 2, 3]);
    let g = tape.backward(y.sum_all().unwrap()).unwrap();
    for v in [a, b, c, d, e] {
        assert_eq!(g.get(v).unwrap().shape(), v.shape().as_slice());
    }
    // d(Σ (… + c)/eᵉ)/dc = Σ over all 24 elements of e^(−e_k) = 6·Σ_k e^(−e_k).
    let expect: f64 = e.value().to_vec().iter().map(|v| 6.0 * (-v).exp()).sum();
    assert!((g.get(c).unwrap().item().unwrap() - expect).abs() < 1e-12);
}

#[test]
fn f32_tapes_work_too() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap());
    let y = x.square().unwrap().sum_all().unwrap();
    assert_eq!(
        tape.backward(y).unwrap().get(x).unwrap().to_vec(),
        [2.0f32, 4.0]
    );
}

#[test]
fn stack_and_mean_errors_name_themselves_and_the_tape_position() {
    let tape = Tape::<f64>::new();
    let err = tapegrad_autograd::Var::<f64>::stack(&[], 0)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("stack:"), "{err}");
    let x = tape.leaf(Tensor::zeros(&[2, 3]));
    let _ = x.exp().unwrap(); // %0001
    let err = x.mean(&[2], false).unwrap_err().to_string();
    assert!(err.contains("%0002") && err.contains("mean"), "{err}");
}
