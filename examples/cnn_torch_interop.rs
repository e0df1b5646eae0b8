//! The Rust half of the PyTorch checkpoint round trip for convolutional
//! networks (run by `tests/torch/cnn_roundtrip.py`, which needs PyTorch).
//!
//! ```text
//! cargo run --release --example cnn_torch_interop -- save DIR   # model.safetensors, io.safetensors
//! cargo run --release --example cnn_torch_interop -- load DIR   # torch_model.safetensors -> rust_out.safetensors
//! ```
//!
//! `save` trains the model for a few steps (so the BatchNorm buffers are
//! not their initial values), then writes the checkpoint, a fixed input
//! and the model's output on it in evaluation mode. `load` reads a
//! checkpoint PyTorch wrote into a fresh model and writes its output on the
//! same input.

use std::path::Path;

use indexmap::IndexMap;
use tapegrad::nn::{checkpoint, loss};
use tapegrad::prelude::*;

/// `torch.nn.Sequential` of the same layers: see `cnn_roundtrip.py`.
fn model() -> tapegrad::nn::Result<Sequential<f32>> {
    let rng = &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    Ok(Sequential::new()
        .add(Conv2d::new(3, 8, 3, 1)?.padding(1).stride(2)) // 0
        .add(BatchNorm2d::new(8)) // 1
        .add(Activation::Relu) // 2
        .add(MaxPool2d::new(2)) // 3
        .add(
            Conv2d::with_options(8, 8, [3, 3], 2, false, rng)?
                .padding(2)
                .dilation(2),
        ) // 4
        .add(AvgPool2d::new(2)) // 5
        .add(Flatten) // 6
        .add(Linear::new(8 * 2 * 2, 6, 2)) // 7
        .add(BatchNorm1d::new(6))) // 8
}

fn main() -> tapegrad::nn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, dir) = match args.as_slice() {
        [m, d] if m == "save" || m == "load" => (m.as_str(), Path::new(d)),
        _ => {
            eprintln!("usage: cnn_torch_interop save|load DIR");
            std::process::exit(2);
        }
    };
    let x = Tensor::<f32>::randn_seeded(&[4, 3, 16, 16], 3);
    let mut m = model()?;
    if mode == "save" {
        let mut opt = Sgd::new(0.05);
        for step in 0..3 {
            let tape = Tape::new();
            let xb = Tensor::<f32>::randn_seeded(&[8, 3, 16, 16], 10 + step);
            let y = m.forward(&tape, tape.constant(xb))?;
            let l = loss::mse(y, tape.constant(Tensor::zeros(&[8, 6])))?;
            let g = m.grads(&tape.backward(l)?);
            opt.step(m.parameters_mut(), &g)?;
        }
        m.eval();
        checkpoint::save(&m, dir.join("model.safetensors"))?;
        let tape = Tape::new();
        let y = m.forward(&tape, tape.constant(x.clone()))?.value();
        let io = IndexMap::from([("input".to_string(), x), ("output".to_string(), y)]);
        checkpoint::save_tensors(&io, dir.join("io.safetensors"))?;
    } else {
        checkpoint::load(&mut m, dir.join("torch_model.safetensors"))?;
        m.eval();
        let tape = Tape::new();
        let y = m.forward(&tape, tape.constant(x))?.value();
        let out = IndexMap::from([("output".to_string(), y)]);
        checkpoint::save_tensors(&out, dir.join("rust_out.safetensors"))?;
    }
    println!("{mode}: done in {}", dir.display());
    Ok(())
}
