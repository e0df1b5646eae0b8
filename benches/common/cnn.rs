//! The `conv2d` and `cnn_step` reference workloads (`../shared/bench/README.md`),
//! shared by `benches/workloads.rs` and `examples/cnn_memory.rs`.

use tapegrad::nn::{
    loss, Activation, Conv2d, Flatten, Linear, MaxPool2d, Module, Optimizer, Sequential, Sgd,
};
use tapegrad::prelude::{Tape, Tensor};

/// `cnn_step`'s batch size.
pub const CNN_BATCH: usize = 64;

/// LeNet-style: conv 5×5 (16, pad 2), ReLU, pool 2, conv 5×5 (32, pad 2),
/// ReLU, pool 2, flatten (32·7·7), linear to 10; PyTorch's initialisation.
pub fn lenet(seed: u64) -> Sequential<f32> {
    Sequential::new()
        .add(Conv2d::new(1, 16, 5, seed).unwrap().padding(2))
        .add(Activation::Relu)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(16, 32, 5, seed + 1).unwrap().padding(2))
        .add(Activation::Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten)
        .add(Linear::new(32 * 7 * 7, 10, seed + 2))
}

/// Random `[64, 1, 28, 28]` inputs and labels in 0..10.
pub fn cnn_batch() -> (Tensor<f32>, Vec<usize>) {
    let x = Tensor::randn_seeded(&[CNN_BATCH, 1, 28, 28], 1);
    let y = (0..CNN_BATCH).map(|i| (i * 7 + 3) % 10).collect();
    (x, y)
}

/// One step: forward, cross-entropy, backward, plain SGD, the way
/// `nn::train::Trainer` steps: the backward pass frees each activation once
/// used and clears the tape (as PyTorch frees its graph), so the optimiser
/// then owns every parameter's buffer and updates it in place.
pub fn cnn_step(
    model: &mut Sequential<f32>,
    opt: &mut Sgd,
    x: &Tensor<f32>,
    y: &[usize],
) -> tapegrad::nn::Result<f32> {
    let mut tape = Tape::new();
    let (lv, root) = {
        let logits = model.forward(&tape, tape.constant(x.clone()))?;
        let l = loss::cross_entropy(logits, y)?;
        (l.item()?, l.var_id())
    };
    let grads = model.grads(&tape.backward_and_clear(root)?);
    opt.step(model.parameters_mut(), &grads)?;
    Ok(lv)
}
