//! A 2-4-1 sigmoid MLP learns XOR with plain gradient descent on the MSE
//! loss, the textbook setting.
//!
//! ```text
//! cargo run --release --example xor
//! ```

use tapegrad::nn::train::predict;
use tapegrad::prelude::*;

fn main() -> tapegrad::nn::Result<()> {
    let x = Tensor::<f64>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2])?;
    let y = Tensor::<f64>::from_vec(vec![0., 1., 1., 0.], &[4, 1])?;
    // Hidden layer: sigmoid. Output: a sigmoid on the last (linear) layer,
    // so the prediction is a probability-like value in (0, 1).
    let mut model = Sequential::new()
        .add(
            Mlp::<f64>::builder(&[2, 4, 1])
                .activation(Activation::Sigmoid)
                .weight_init(Init::xavier_uniform())
                .seed(7)
                .build()?,
        )
        .add(Activation::Sigmoid);
    let mut opt = Sgd::new(2.0); // θ ← θ − α∇L, nothing else
    for epoch in 0..=5000 {
        let tape = Tape::new();
        let pred = model.forward(&tape, tape.constant(x.clone()))?;
        let l = loss::mse(pred, tape.constant(y.clone()))?;
        let grads = model.grads(&tape.backward(l)?); // ∂L/∂θ for each parameter, by name
        opt.step(model.parameters_mut(), &grads)?;
        if epoch % 1000 == 0 {
            println!("epoch {epoch:5}: loss {:.6}", l.item()?);
        }
    }
    let p = predict(&mut model, &x)?.to_vec();
    let inputs = x.to_vec();
    for (i, p) in p.iter().enumerate() {
        println!(
            "{} xor {} = {:.0}  (predicted {p:.4})",
            inputs[2 * i],
            inputs[2 * i + 1],
            y.to_vec()[i]
        );
    }
    let ok = p.iter().zip(y.to_vec()).all(|(p, t)| (p - t).abs() < 0.5);
    println!(
        "{}",
        if ok {
            "learned XOR"
        } else {
            "did not learn XOR"
        }
    );
    Ok(())
}
