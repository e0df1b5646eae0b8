//! The `memory` reference workload: 200 training steps of the 784-512-512-10
//! MLP (batch 128), for measuring the process's peak resident memory:
//!
//! ```sh
//! cargo build --release --example mlp_memory
//! /usr/bin/time -v target/release/examples/mlp_memory 2>&1 | grep 'Maximum resident'
//! ```
//!
//! It prints its own peak resident memory (`VmHWM` from `/proc/self/status`,
//! the figure `time -v` calls "Maximum resident set size") on Linux.
//! `mlp_memory 10000` runs more steps, to check that memory stays flat.

#[path = "../tests/common/memory.rs"]
mod memory;
#[path = "../benches/common/mlp.rs"]
mod mlp;

use tapegrad::tensor::Tensor;

fn main() -> tapegrad::autograd::Result<()> {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the step count must be a number"))
        .unwrap_or(200);
    let mut ps = mlp::mlp_init(&[784, 512, 512, 10], 10);
    let x = Tensor::<f32>::randn_seeded(&[128, 784], 1);
    let y = Tensor::<f32>::randn_seeded(&[128, 10], 2);
    for _ in 0..steps {
        mlp::train_step(&mut ps, &x, &y, |h| h.relu())?;
    }
    println!("ran {steps} steps of the 784-512-512-10 MLP");
    match memory::resident_bytes() {
        Some((_, peak)) => println!("peak resident memory (VmHWM): {:.1} MiB", memory::mib(peak)),
        None => println!("peak resident memory: not available (no /proc/self/status)"),
    }
    Ok(())
}
