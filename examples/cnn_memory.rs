//! Peak resident memory of 200 `cnn_step` iterations (the LeNet-style CNN of
//! `../shared/bench/README.md`, batch 64), beside PyTorch's
//! (`python benches/torch_workloads.py memory/cnn_step`):
//!
//! ```sh
//! cargo run --release --example cnn_memory
//! ```
//!
//! It prints its own peak resident memory (`VmHWM` from `/proc/self/status`)
//! on Linux.

#[path = "../benches/common/cnn.rs"]
mod cnn;
#[path = "../tests/common/memory.rs"]
mod memory;

fn main() -> tapegrad::nn::Result<()> {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the step count must be a number"))
        .unwrap_or(200);
    let mut model = cnn::lenet(7);
    let mut opt = tapegrad::nn::Sgd::new(0.01);
    let (x, y) = cnn::cnn_batch();
    let mut last = 0.0;
    for _ in 0..steps {
        last = cnn::cnn_step(&mut model, &mut opt, &x, &y)?;
    }
    println!("ran {steps} steps of the LeNet-style CNN (batch 64), last loss {last:.4}");
    match memory::resident_bytes() {
        Some((_, peak)) => println!("peak resident memory (VmHWM): {:.1} MiB", memory::mib(peak)),
        None => println!("peak resident memory: not available (no /proc/self/status)"),
    }
    Ok(())
}
