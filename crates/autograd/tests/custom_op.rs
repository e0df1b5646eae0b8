//! User-defined ops through the public `Op` trait: with a backward rule
//! (checked to second order), forward-only, and with broken backward rules.

use tapegrad_autograd::{
    gradcheck, gradcheck_second_order, BackwardCtx, Error, InputGrads, Op, Result, Tape,
    TensorGrads, ValueCtx,
};
use tapegrad_tensor::{Element, Tensor};

/// softplus(x) = ln(1 + eˣ), written outside the library. Its derivative
/// σ(x) = 1/(1 + e⁻ˣ) is built from Var ops, so it has a derivative too.
struct MySoftplus;
impl<T: Element> Op<T> for MySoftplus {
    fn name(&self) -> &str {
        "my_softplus"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        // max(x, 0) + ln(1 + e^−|x|): no overflow for large |x|.
        Ok(x[0].map(|v| v.max_val(T::ZERO) + (-v.abs()).exp().ln_1p())?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let sig = cx.inputs[0].neg()?.exp()?.add_scalar(1.0)?.recip()?;
        Ok(InputGrads::from_elem(Some(cx.grad_output.mul(sig)?), 1))
    }
}

/// Rounds in the forward pass; passes the gradient straight through
/// (straight-through estimator).
struct RoundSte;
impl<T: Element> Op<T> for RoundSte {
    fn name(&self) -> &str {
        "round_ste"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].map(|v| T::from_f64(v.to_f64().round()))?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(InputGrads::from_elem(Some(cx.grad_output), 1))
    }
}

/// Forward only: the default backward.
struct Floor;
impl<T: Element> Op<T> for Floor {
    fn name(&self) -> &str {
        "floor"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].map(|v| T::from_f64(v.to_f64().floor()))?)
    }
}

/// Returns a gradient summed to a scalar: the wrong shape.
struct BadShape;
impl<T: Element> Op<T> for BadShape {
    fn name(&self) -> &str {
        "bad_shape"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].clone())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(InputGrads::from_elem(Some(cx.grad_output.sum_all()?), 1))
    }
}

/// Returns two gradients for one input.
struct BadCount;
impl<T: Element> Op<T> for BadCount {
    fn name(&self) -> &str {
        "bad_count"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].clone())
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(InputGrads::from_elem(Some(cx.grad_output), 2))
    }
}

/// A forward that fails with a tensor error.
struct NeedsMatrix;
impl<T: Element> Op<T> for NeedsMatrix {
    fn name(&self) -> &str {
        "needs_matrix"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].t()?)
    }
}

#[test]
fn custom_softplus_passes_gradcheck_to_second_order() {
    let x = Tensor::uniform_seeded(&[2, 3], -3.0, 3.0, 1);
    let r = gradcheck(
        |tape, v| tape.apply(MySoftplus, &[v[0]]),
        std::slice::from_ref(&x),
    )
    .unwrap();
    assert!(r.passed, "{r}");
    let r = gradcheck_second_order(|tape, v| tape.apply(MySoftplus, &[v[0]]), &[x]).unwrap();
    assert!(r.passed, "{r}");
}

#[test]
fn custom_softplus_matches_the_builtin() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![-100.0, -1.0, 0.0, 2.0, 100.0], &[5]).unwrap());
    let mine = tape.apply(MySoftplus, &[x]).unwrap();
    let builtin = x.softplus().unwrap();
    assert_eq!(mine.value().to_vec(), builtin.value().to_vec());
    let g_mine = tape.grad(&[mine.sum_all().unwrap()], &[x]).unwrap()[0]
        .clone()
        .unwrap();
    let g_builtin = tape.grad(&[builtin.sum_all().unwrap()], &[x]).unwrap()[0]
        .clone()
        .unwrap();
    for (a, b) in g_mine.to_vec().iter().zip(g_builtin.to_vec()) {
        assert!((a - b).abs() < 1e-15, "{a} vs {b}");
    }
    // softplus'(0) = ½ by hand.
    assert_eq!(g_mine.to_vec()[2], 0.5);
    // And it prints under its own name.
    assert_eq!(tape.node(mine.id()).op, "my_softplus");
}

#[test]
fn straight_through_estimator() {
    // Forward rounds; backward treats it as the identity, so
    // d(Σ 3·round(x))/dx = 3 everywhere.
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::from_vec(vec![0.4f32, 1.6, -2.5], &[3]).unwrap());
    let q = tape.apply(RoundSte, &[x]).unwrap();
    assert_eq!(q.value().to_vec(), [0.0, 2.0, -3.0]);
    let y = q.mul_scalar(3.0).unwrap().sum_all().unwrap();
    assert_eq!(tape.backward(y).unwrap().get(x).unwrap().to_vec(), [3.0; 3]);
}

#[test]
fn forward_only_op_errors_only_when_differentiated_through() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.5, -0.5], &[2]).unwrap());
    let f = tape.apply(Floor, &[x]).unwrap();
    assert_eq!(f.value().to_vec(), [1.0, -1.0]);
    // Not on the path to the root: fine.
    let y = x.square().unwrap().sum_all().unwrap();
    assert_eq!(
        tape.backward(y).unwrap().get(x).unwrap().to_vec(),
        [3.0, -1.0]
    );
    // On a constant (nothing needs a gradient): fine.
    let c = tape.apply(Floor, &[x.detach()]).unwrap();
    let y2 = x.mul(c).unwrap().sum_all().unwrap();
    assert_eq!(
        tape.backward(y2).unwrap().get(x).unwrap().to_vec(),
        [1.0, -1.0]
    );
    // Through it: an error naming the op and its tape position.
    let z = f.sum_all().unwrap();
    let e = tape.backward(z).unwrap_err();
    assert_eq!(
        e,
        Error::BackwardNotSupported {
            op: "floor".into(),
            node: f.id()
        }
    );
    assert_eq!(
        e.to_string(),
        "at tape node %0001: op floor is forward-only and cannot be differentiated"
    );
    assert!(matches!(
        tape.grad(&[z], &[x]),
        Err(Error::BackwardNotSupported { .. })
    ));
}

#[test]
fn wrong_gradient_shape_names_the_op() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::ones(&[2, 3]));
    let y = tape.apply(BadShape, &[x]).unwrap().sum_all().unwrap();
    let e = tape.backward(y).unwrap_err();
    assert_eq!(
        e,
        Error::GradShape {
            op: "bad_shape".into(),
            node: 1,
            input: 0,
            expected: vec![2, 3],
            got: vec![],
        }
    );
    assert_eq!(
        e.to_string(),
        "at tape node %0001: backward of bad_shape gave input 0 a gradient of shape [], expected [2, 3]"
    );
}

#[test]
fn wrong_gradient_count_is_reported() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::ones(&[2]));
    let y = tape.apply(BadCount, &[x]).unwrap().sum_all().unwrap();
    let e = tape.backward(y).unwrap_err();
    assert_eq!(
        e,
        Error::GradCount {
            op: "bad_count".into(),
            node: 1,
            expected: 1,
            got: 2,
        }
    );
    assert!(e
        .to_string()
        .contains("backward of bad_count returned 2 gradients for 1 inputs"));
}

#[test]
fn custom_forward_error_carries_the_tape_position() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::ones(&[3]));
    let e = tape.apply(NeedsMatrix, &[x]).unwrap_err();
    assert!(
        matches!(&e, Error::Op { node: 1, op, .. } if op == "needs_matrix"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("at tape node %0001 (needs_matrix): "),
        "{e}"
    );
}

/// y = 3x with a recorded rule and a value rule; `value_factor` is what the
/// value rule multiplies by (3 when it is right), and `value_count` how many
/// gradients it returns.
struct Triple {
    value_factor: f64,
    value_count: usize,
    value_shape_scalar: bool,
}
impl Triple {
    fn right() -> Self {
        Triple {
            value_factor: 3.0,
            value_count: 1,
            value_shape_scalar: false,
        }
    }
}
impl<T: Element> Op<T> for Triple {
    fn name(&self) -> &str {
        "triple"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].mul_scalar(3.0)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(InputGrads::from_elem(
            Some(cx.grad_output.mul_scalar(3.0)?),
            1,
        ))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some((|| {
            let mut g = cx.grad_output.mul_scalar(self.value_factor)?;
            if self.value_shape_scalar {
                g = g.sum_all()?;
            }
            Ok(TensorGrads::from_elem(Some(g), self.value_count))
        })())
    }
}

#[test]
fn value_rule_is_used_by_backward_and_agrees_with_the_recorded_rule() {
    let x = Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3]).unwrap();
    let report = gradcheck(|tape, v| tape.apply(Triple::right(), &[v[0]]), &[x]).unwrap();
    assert!(report.passed, "{report}");
    assert_eq!(report.max_rule_mismatch, 0.0);
}

#[test]
fn gradcheck_catches_a_value_rule_that_disagrees() {
    // Finite differences only see the recorded rule through `grad_graph`;
    // `backward` uses the value rule. A wrong value rule must fail the check
    // even though the recorded rule is right.
    let wrong = || Triple {
        value_factor: 2.0,
        ..Triple::right()
    };
    // Backward really takes the value rule: d(2x... )/dx comes out as 2.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::scalar(1.0));
    let y = tape.apply(wrong(), &[x]).unwrap();
    assert_eq!(
        tape.backward(y).unwrap().get(x).unwrap().item().unwrap(),
        2.0
    );
    // And grad_graph takes the recorded one.
    let g = tape.grad_graph(&[y], &[x]).unwrap()[0].unwrap();
    assert_eq!(g.item().unwrap(), 3.0);

    let xs = Tensor::from_vec(vec![0.5, -1.0], &[2]).unwrap();
    let report = gradcheck(|tape, v| tape.apply(wrong(), &[v[0]]), &[xs]).unwrap();
    assert!(!report.passed);
    assert!(report.max_rule_mismatch > 0.1, "{report}");
    assert!(
        report
            .to_string()
            .contains("value and recorded backward rules differ"),
        "{report}"
    );
}

#[test]
fn value_rule_with_the_wrong_shape_or_count_names_the_op() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
    let bad_shape = Triple {
        value_shape_scalar: true,
        ..Triple::right()
    };
    let y = tape.apply(bad_shape, &[x]).unwrap().sum_all().unwrap();
    match tape.backward(y).unwrap_err() {
        Error::GradShape {
            op, expected, got, ..
        } => {
            assert_eq!(op, "triple");
            assert_eq!((expected, got), (vec![2], vec![]));
        }
        other => panic!("expected GradShape, got {other}"),
    }
    let bad_count = Triple {
        value_count: 2,
        ..Triple::right()
    };
    let y = tape.apply(bad_count, &[x]).unwrap().sum_all().unwrap();
    match tape.backward(y).unwrap_err() {
        Error::GradCount {
            op, expected, got, ..
        } => assert_eq!((op.as_str(), expected, got), ("triple", 1, 2)),
        other => panic!("expected GradCount, got {other}"),
    }
}
