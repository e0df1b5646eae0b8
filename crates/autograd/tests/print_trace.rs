//! Exact-text tests of the tape table and the backward trace (issue 5).

use tapegrad_autograd::{BackwardCtx, InputGrads, Op, Result, Tape};
use tapegrad_tensor::{Element, Tensor};

/// y = sigmoid(w·x + b), L = (y − t)², with w = [0.8, −0.4], x = [1.5, 0.5],
/// b = 0.1, t = 1.
fn neuron(tape: &Tape<f64>) -> Result<tapegrad_autograd::Var<'_, f64>> {
    let w = tape.param("w", Tensor::from_vec(vec![0.8, -0.4], &[2])?);
    let b = tape.param("b", Tensor::scalar(0.1));
    let x = tape.constant_named("x", Tensor::from_vec(vec![1.5, 0.5], &[2])?);
    let t = tape.constant_named("t", Tensor::scalar(1.0));
    let z = w.mul(x)?.sum_all()?.add(b)?;
    z.set_label("z");
    let y = z.sigmoid()?;
    y.set_label("y");
    let loss = y.sub(t)?.square()?;
    loss.set_label("L");
    Ok(loss)
}

#[test]
fn neuron_table_and_trace() {
    let tape = Tape::<f64>::new();
    let loss = neuron(&tape).unwrap();
    let (grads, trace) = tape.backward_traced(loss).unwrap();
    assert_eq!(tape.table_with_grads(&grads), NEURON_TABLE.trim_start());
    assert_eq!(tape.format_trace(&trace), NEURON_TRACE.trim_start());
}

/// y = x³ with a declared rule.
struct Cube;
impl<T: Element> Op<T> for Cube {
    fn name(&self) -> &str {
        "cube"
    }
    fn formula(&self) -> Option<String> {
        Some("d x³/dx = 3·x²".into())
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(inputs[0].map(|x| x * x * x)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let g = cx
            .grad_output
            .mul(cx.inputs[0].square()?.mul_scalar(3.0)?)?;
        Ok(InputGrads::from_elem(Some(g), 1))
    }
}

#[test]
fn custom_op_and_reuse_in_trace() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf_named("x", Tensor::scalar(2.0));
    let c = tape.apply(Cube, &[x]).unwrap();
    let y = c.add(x).unwrap();
    let (_, trace) = tape.backward_traced(y).unwrap();
    assert_eq!(tape.format_trace(&trace), CUSTOM_TRACE.trim_start());
}

const NEURON_TABLE: &str = r#"
node  k name op            inputs       shape value       grad
%0000 P w    param                      [2]   [0.8, -0.4] [-0.1404, -0.04679]
%0001 P b    param                      []    0.1         -0.09359
%0002 C x    const                      [2]   [1.5, 0.5]  -
%0003 C t    const                      []    1           -
%0004        mul           %0000, %0002 [2]   [1.2, -0.2] [-0.09359, -0.09359]
%0005        sum(axes=[0]) %0004        []    1           -0.09359
%0006   z    add           %0005, %0001 []    1.1         -0.09359
%0007   y    sigmoid       %0006        []    0.7503      -0.4995
%0008        sub           %0007, %0003 []    -0.2497     -0.4995
%0009   L    powf(e=2)     %0008        []    0.06237     1
"#;

const NEURON_TRACE: &str = r#"
backward pass from %0009 L: 6 steps, seed ∂L/∂L = 1
each step: ∂L/∂in = ∂L/∂out · ∂out/∂in (chain rule), summed over uses

[1] %0009 L = powf(e=2) of %0008
    in    ∂L/∂%0009 = 1   (seed)
    rule  d x^2/dx = 2·x^1
    sent  ∂L/∂%0008 = -0.4995  = 1 · (-0.4995)

[2] %0008 = sub of %0007 y, %0003 t
    in    ∂L/∂%0008 = -0.4995   (from %0009)
    rule  d(a - b)/da = 1, d(a - b)/db = -1
    sent  ∂L/∂%0007 y = -0.4995  = (-0.4995) · 1
    sent  ∂L/∂%0003 t   (needs no gradient)

[3] %0007 y = sigmoid of %0006 z
    in    ∂L/∂%0007 = -0.4995   (from %0008)
    rule  d σ(x)/dx = σ(x)·(1 - σ(x))
    sent  ∂L/∂%0006 z = -0.09359  = (-0.4995) · 0.1874

[4] %0006 z = add of %0005, %0001 b
    in    ∂L/∂%0006 = -0.09359   (from %0007)
    rule  d(a + b)/da = 1, d(a + b)/db = 1
    sent  ∂L/∂%0005   = -0.09359  = (-0.09359) · 1
    sent  ∂L/∂%0001 b = -0.09359  = (-0.09359) · 1

[5] %0005 = sum(axes=[0]) of %0004
    in    ∂L/∂%0005 = -0.09359   (from %0006)
    rule  d Σx/dx_i = 1 (g is copied to every summed element)
    sent  ∂L/∂%0004 = [-0.09359, -0.09359]  = (-0.09359) · [1, 1]

[6] %0004 = mul of %0000 w, %0002 x
    in    ∂L/∂%0004 = [-0.09359, -0.09359]   (from %0005)
    rule  d(a·b)/da = b, d(a·b)/db = a
    sent  ∂L/∂%0000 w = [-0.1404, -0.04679]  = [-0.09359, -0.09359] · [1.5, 0.5]
    sent  ∂L/∂%0002 x   (needs no gradient)

at the leaves (what backward returns):
    ∂L/∂%0000 w = [-0.1404, -0.04679]   (from %0004)
    ∂L/∂%0001 b = -0.09359   (from %0006)
"#;

const CUSTOM_TRACE: &str = r#"
backward pass from %0002: 2 steps, seed ∂L/∂L = 1
each step: ∂L/∂in = ∂L/∂out · ∂out/∂in (chain rule), summed over uses

[1] %0002 = add of %0001, %0000 x
    in    ∂L/∂%0002 = 1   (seed)
    rule  d(a + b)/da = 1, d(a + b)/db = 1
    sent  ∂L/∂%0001   = 1  = 1 · 1
    sent  ∂L/∂%0000 x = 1  = 1 · 1

[2] %0001 = cube of %0000 x
    in    ∂L/∂%0001 = 1   (from %0002)
    rule  d x³/dx = 3·x²
    sent  ∂L/∂%0000 x = 12  = 1 · 12

at the leaves (what backward returns):
    ∂L/∂%0000 x = 1 + 12 = 13   (from %0002, %0001)
"#;

#[test]
fn display_is_the_table_and_big_values_are_summarised() {
    let tape = Tape::<f32>::new();
    let w = tape.param("w", Tensor::arange(0.0, 12.0, 1.0).unwrap());
    let _s = w.tanh().unwrap().sum_all().unwrap();
    assert_eq!(format!("{tape}"), tape.table());
    assert_eq!(
        tape.table(),
        "\
node  k name op            inputs shape value
%0000 P w    param                [12]  min 0 mean 5.5 max 11
%0001        tanh          %0000  [12]  min 0 mean 0.8933 max 1
%0002        sum(axes=[0]) %0001  []    10.72
"
    );
}
