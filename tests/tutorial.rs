//! Keeps docs/tutorial.md in step with the printers: the neuron's tape,
//! trace and gradient table pasted there must be what the code prints.

use tapegrad::autograd::{Result, Tape};
use tapegrad::tensor::Tensor;

#[test]
fn tutorial_output_is_current() -> Result<()> {
    let tutorial = include_str!("../docs/tutorial.md");
    let tape = Tape::<f64>::new();
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
    assert!(tutorial.contains(&tape.table()), "{}", tape.table());
    let (grads, trace) = tape.backward_traced(loss)?;
    let text = tape.format_trace(&trace);
    assert!(tutorial.contains(&text), "{text}");
    let table = tape.table_with_grads(&grads);
    assert!(tutorial.contains(&table), "{table}");
    Ok(())
}
