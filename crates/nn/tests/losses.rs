//! Every loss against finite differences (f64, central differences), and the
//! fused cross-entropy against the plain composition.

use approx::assert_abs_diff_eq;
use tapegrad_autograd::{gradcheck, gradcheck_second_order, Tape};
use tapegrad_nn::loss;
use tapegrad_tensor::Tensor;

fn t(seed: u64, shape: &[usize]) -> Tensor<f64> {
    Tensor::randn_seeded(shape, seed)
}

fn assert_passes(r: tapegrad_autograd::Result<tapegrad_autograd::GradcheckReport>) {
    let r = r.unwrap();
    assert!(r.passed, "{r}");
}

#[test]
fn mse_gradcheck() {
    assert_passes(gradcheck(
        |_, v| loss::mse(v[0], v[1]),
        &[t(1, &[4, 3]), t(2, &[4, 3])],
    ));
}

#[test]
fn l1_gradcheck() {
    // Away from the kink at pred = target.
    assert_passes(gradcheck(
        |_, v| loss::l1(v[0], v[1]),
        &[t(3, &[5, 2]), t(4, &[5, 2])],
    ));
}

#[test]
fn huber_gradcheck_both_regions() {
    // randn·3 puts some |d| below δ = 1 and some above.
    let p = t(5, &[6, 2]).mul_scalar(3.0).unwrap();
    let y = t(6, &[6, 2]);
    assert_passes(gradcheck(|_, v| loss::huber(v[0], v[1], 1.0), &[p, y]));
}

#[test]
fn huber_values() {
    let tape = Tape::<f64>::new();
    let p = tape.leaf(Tensor::from_vec(vec![0.5, 3.0], &[2]).unwrap());
    let y = tape.constant(Tensor::zeros(&[2]));
    // ½·0.25 = 0.125 and 1·(3 − 0.5) = 2.5; mean 1.3125.
    assert_abs_diff_eq!(loss::huber(p, y, 1.0).unwrap().item().unwrap(), 1.3125);
}

#[test]
fn cross_entropy_gradcheck_first_and_second_order() {
    let labels = [2usize, 0, 1, 2];
    assert_passes(gradcheck(
        |_, v| loss::cross_entropy(v[0], &labels),
        &[t(7, &[4, 3])],
    ));
    assert_passes(gradcheck_second_order(
        |_, v| loss::cross_entropy(v[0], &labels),
        &[t(8, &[4, 3])],
    ));
}

#[test]
fn fused_cross_entropy_matches_composition() {
    // A small batch, and one large enough (42,000 logits) for the
    // multi-threaded reductions.
    for (rows, classes) in [(6usize, 5usize), (600, 70)] {
        let x = t(9, &[rows, classes]).mul_scalar(4.0).unwrap();
        let labels: Vec<usize> = (0..rows).map(|r| (r * 7 + 3) % classes).collect();
        let tape = Tape::<f64>::new();
        let a = tape.leaf(x.clone());
        let fused = loss::cross_entropy(a, &labels).unwrap();
        let plain = loss::cross_entropy_unfused(a, &labels).unwrap();
        assert_abs_diff_eq!(
            fused.item().unwrap(),
            plain.item().unwrap(),
            epsilon = 1e-12
        );
        let g1 = tape.grad(&[fused], &[a]).unwrap()[0].clone().unwrap();
        let g2 = tape.grad(&[plain], &[a]).unwrap()[0].clone().unwrap();
        for (u, v) in g1.to_vec().iter().zip(g2.to_vec()) {
            assert_abs_diff_eq!(*u, v, epsilon = 1e-12);
        }
        // The recorded first-order rule too (it is what a second pass
        // differentiates).
        let g3 = tape.backward(fused).unwrap().get(a).unwrap().clone();
        for (u, v) in g3.to_vec().iter().zip(g1.to_vec()) {
            assert_abs_diff_eq!(*u, v, epsilon = 1e-12);
        }
    }
}

#[test]
fn cross_entropy_is_stable_and_checks_labels() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::from_vec(vec![1e4f32, -1e4, 0.0, 0.0], &[2, 2]).unwrap());
    let l = loss::cross_entropy(x, &[1, 0]).unwrap();
    assert!(l.item().unwrap().is_finite());
    let g = tape.backward(l).unwrap();
    assert!(g.get(x).unwrap().to_vec().iter().all(|v| v.is_finite()));
    let err = loss::cross_entropy(x, &[0, 2]).unwrap_err().to_string();
    assert!(
        err.contains("label 2 at row 1 is out of range for 2 classes"),
        "{err}"
    );
    let err = loss::cross_entropy(x, &[0]).unwrap_err().to_string();
    assert!(err.contains("1 labels"), "{err}");
}

#[test]
fn soft_cross_entropy_gradcheck_and_hard_labels_agree() {
    let q = Tensor::<f64>::one_hot(&[1, 0, 2], 3).unwrap();
    assert_passes(gradcheck(
        |tape, v| loss::soft_cross_entropy(v[0], tape.constant(q.clone())),
        &[t(10, &[3, 3])],
    ));
    let tape = Tape::<f64>::new();
    let x = tape.leaf(t(11, &[3, 3]));
    let soft = loss::soft_cross_entropy(x, tape.constant(q.clone())).unwrap();
    let hard = loss::cross_entropy(x, &[1, 0, 2]).unwrap();
    assert_abs_diff_eq!(soft.item().unwrap(), hard.item().unwrap(), epsilon = 1e-12);
}

#[test]
fn bce_with_logits_gradcheck_both_inputs() {
    let y = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.3, 0.9], &[6]).unwrap();
    assert_passes(gradcheck(
        |_, v| loss::bce_with_logits(v[0], v[1]),
        &[t(12, &[6]).mul_scalar(3.0).unwrap(), y],
    ));
    assert_passes(gradcheck_second_order(
        |_, v| loss::bce_with_logits(v[0], v[1]),
        &[t(13, &[6]), Tensor::full(&[6], 0.25)],
    ));
}

#[test]
fn bce_with_logits_matches_naive_formula_and_is_stable() {
    let xs = [-3.0f64, -0.5, 0.0, 0.7, 4.0];
    let ys = [0.0f64, 1.0, 0.5, 1.0, 0.0];
    let naive: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| {
            let p = 1.0 / (1.0 + (-x).exp());
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / 5.0;
    let tape = Tape::<f64>::new();
    let l = loss::bce_with_logits(
        tape.leaf(Tensor::from_slice_1d(&xs)),
        tape.constant(Tensor::from_slice_1d(&ys)),
    )
    .unwrap();
    assert_abs_diff_eq!(l.item().unwrap(), naive, epsilon = 1e-12);
    // Huge logits: the naive form gives inf/NaN, this one the exact answer.
    let l = loss::bce_with_logits(
        tape.leaf(Tensor::from_slice_1d(&[1000.0, -1000.0])),
        tape.constant(Tensor::from_slice_1d(&[0.0, 0.0])),
    )
    .unwrap();
    assert_abs_diff_eq!(l.item().unwrap(), 500.0, epsilon = 1e-9);
}

#[test]
fn shape_mismatch_is_an_error_not_a_broadcast() {
    let tape = Tape::<f32>::new();
    let p = tape.leaf(Tensor::zeros(&[4, 1]));
    let y = tape.constant(Tensor::zeros(&[4]));
    let err = loss::mse(p, y).unwrap_err().to_string();
    assert!(err.contains("[4, 1]") && err.contains("[4]"), "{err}");
}

#[test]
fn activations_gradcheck() {
    use tapegrad_nn::activation as act;
    let x = t(14, &[3, 4]).mul_scalar(2.0).unwrap();
    assert_passes(gradcheck(|_, v| act::gelu(v[0]), std::slice::from_ref(&x)));
    assert_passes(gradcheck(
        |_, v| act::leaky_relu(v[0], 0.1),
        std::slice::from_ref(&x),
    ));
    assert_passes(gradcheck(|_, v| act::softmax(v[0], 1), &[x]));
    // GELU (tanh form) at a few points: x·Φ(x) approximated to < 5e-4.
    let tape = Tape::<f64>::new();
    let y = act::gelu(tape.leaf(Tensor::from_slice_1d(&[-1.0, 0.0, 1.0, 2.0]))).unwrap();
    let exact = [-0.158655, 0.0, 0.841345, 1.954500];
    for (a, b) in y.value().to_vec().iter().zip(exact) {
        assert_abs_diff_eq!(*a, b, epsilon = 5e-4);
    }
    // And it is the tanh formula itself (now one fused op), to rounding.
    let c = (2.0 / std::f64::consts::PI).sqrt();
    for (a, x) in y.value().to_vec().iter().zip([-1.0f64, 0.0, 1.0, 2.0]) {
        let formula = 0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh());
        assert_abs_diff_eq!(*a, formula, epsilon = 1e-12);
    }
}

// Issue 11, §3.4: cross-entropy of an empty batch was 0 and MSE NaN. One
// rule for every loss: no elements is an error naming the loss and shape.
#[test]
fn every_loss_refuses_an_empty_batch_naming_itself_and_the_shape() {
    let tape = Tape::<f64>::new();
    let empty = |shape: &[usize]| tape.leaf(Tensor::zeros(shape));
    let cases: Vec<(&str, tapegrad_autograd::Result<_>)> = vec![
        ("mse", loss::mse(empty(&[0, 3]), empty(&[0, 3]))),
        ("l1", loss::l1(empty(&[0, 3]), empty(&[0, 3]))),
        ("huber", loss::huber(empty(&[0, 3]), empty(&[0, 3]), 1.0)),
        ("cross_entropy", loss::cross_entropy(empty(&[0, 3]), &[])),
        (
            "cross_entropy_unfused",
            loss::cross_entropy_unfused(empty(&[0, 3]), &[]),
        ),
        (
            "soft_cross_entropy",
            loss::soft_cross_entropy(empty(&[0, 3]), empty(&[0, 3])),
        ),
        (
            "bce_with_logits",
            loss::bce_with_logits(empty(&[0, 3]), empty(&[0, 3])),
        ),
    ];
    for (name, r) in cases {
        let err = r.map(|v| v.item()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{name}: ")) && err.contains("shape [0, 3]"),
            "{name}: {err}"
        );
        assert!(err.contains("mean over zero"), "{name}: {err}");
    }
    // Zero columns are empty too (zero elements, or zero classes).
    let err = loss::mse(empty(&[4, 0]), empty(&[4, 0])).unwrap_err();
    assert!(err.to_string().contains("shape [4, 0]"), "{err}");
    let err = loss::cross_entropy(empty(&[2, 0]), &[0, 0]).unwrap_err();
    assert!(err.to_string().contains("shape [2, 0]"), "{err}");
    // The fused op refuses it too when applied directly.
    let err = tape
        .apply(loss::BceWithLogits, &[empty(&[0]), empty(&[0])])
        .unwrap_err();
    assert!(err.to_string().starts_with("bce_with_logits: "), "{err}");
}

#[test]
fn huber_refuses_a_delta_that_is_not_positive() {
    let tape = Tape::<f64>::new();
    let a = tape.leaf(Tensor::zeros(&[2]));
    for d in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = loss::huber(a, a, d).unwrap_err().to_string();
        assert!(err.contains("huber") && err.contains("delta"), "{err}");
    }
}
