//! A user-defined op, outside the library: softplus with its own derivative,
//! checked with gradcheck to first and second order; a straight-through
//! estimator; and what happens when a forward-only op is differentiated.
//!
//! Run with `cargo run --release --example custom_op`.

use tapegrad::autograd::{
    gradcheck, gradcheck_second_order, BackwardCtx, InputGrads, Op, Result, Tape, TensorGrads,
    ValueCtx,
};
use tapegrad::tensor::{Element, Tensor};

/// softplus(x) = ln(1 + eˣ); d/dx = σ(x) = 1 / (1 + e⁻ˣ).
///
/// The forward works on plain tensors. The backward is written with `Var`
/// ops, so the tape records it when a second derivative is asked for. The
/// optional value rule computes the same gradient straight on tensors, which
/// `backward` prefers (nothing recorded); gradcheck checks the two agree.
struct Softplus;

impl<T: Element> Op<T> for Softplus {
    fn name(&self) -> &str {
        "my_softplus"
    }
    fn formula(&self) -> Option<String> {
        Some("d softplus(x)/dx = 1 / (1 + e^-x)".into())
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        // max(x, 0) + ln(1 + e^−|x|) never overflows.
        Ok(inputs[0].map(|x| x.max_val(T::ZERO) + (-x.abs()).exp().ln_1p())?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let sigmoid = cx.inputs[0].neg()?.exp()?.add_scalar(1.0)?.recip()?;
        Ok(InputGrads::from_elem(Some(cx.grad_output.mul(sigmoid)?), 1))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let grad = cx.inputs[0].sigmoid().and_then(|s| cx.grad_output.mul(&s));
        Some(
            grad.map(|g| TensorGrads::from_elem(Some(g), 1))
                .map_err(Into::into),
        )
    }
}

/// Rounds forward, identity backward: the straight-through estimator used
/// to train quantised models.
struct RoundSte;

impl<T: Element> Op<T> for RoundSte {
    fn name(&self) -> &str {
        "round_ste"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(inputs[0].map(|x| T::from_f64(x.to_f64().round()))?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(InputGrads::from_elem(Some(cx.grad_output), 1))
    }
}

/// A forward-only op: it keeps the default `backward`.
struct Floor;

impl<T: Element> Op<T> for Floor {
    fn name(&self) -> &str {
        "floor"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(inputs[0].map(|x| T::from_f64(x.to_f64().floor()))?)
    }
}

fn main() -> Result<()> {
    // 1. Use it like any built-in op.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![-2.0, 0.0, 3.0], &[3])?);
    let y = tape.apply(Softplus, &[x])?;
    let grads = tape.backward(y.sum_all()?)?;
    println!("x              = {:?}", x.value().to_vec());
    println!("softplus(x)    = {:?}", y.value().to_vec());
    println!("d/dx (= σ(x))  = {:?}", grads.get(x).unwrap().to_vec());

    // 2. Check the derivative against finite differences, then the
    //    derivative of the derivative.
    let inputs = [Tensor::uniform_seeded(&[2, 3], -4.0, 4.0, 7)];
    let first = gradcheck(|tape, v| tape.apply(Softplus, &[v[0]]), &inputs)?;
    println!("first order:  {first}");
    let second = gradcheck_second_order(|tape, v| tape.apply(Softplus, &[v[0]]), &inputs)?;
    println!("second order: {second}");
    assert!(first.passed && second.passed);

    // 3. A straight-through estimator: rounded forward, identity gradient.
    let tape = Tape::<f32>::new();
    let w = tape.leaf(Tensor::from_vec(vec![0.3f32, 1.7, -0.6], &[3])?);
    let q = tape.apply(RoundSte, &[w])?;
    let g = tape.backward(q.mul_scalar(2.0)?.sum_all()?)?;
    println!(
        "round_ste(w)   = {:?}, d/dw = {:?}",
        q.value().to_vec(),
        g.get(w).unwrap().to_vec()
    );

    // 4. A forward-only op runs forward; only a gradient through it fails.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.5, -0.5], &[2])?);
    let f = tape.apply(Floor, &[x])?;
    println!("floor(x)       = {:?}", f.value().to_vec());
    match tape.backward(f.sum_all()?) {
        Ok(_) => unreachable!("floor has no backward rule"),
        Err(e) => println!("backward through floor: {e}"),
    }
    Ok(())
}
