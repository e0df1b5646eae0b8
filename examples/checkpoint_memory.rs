//! Gradient checkpointing, measured: training steps of a deep MLP (32
//! `Linear(1024, 1024)` + ReLU layers, batch 256, f32, MSE loss, SGD) with
//! and without checkpointing every 4 layers (`Sequential::checkpointed(8)`:
//! a layer is a `Linear` and its ReLU). Run each mode in its own process,
//! since the peak resident memory is the process's:
//!
//! ```sh
//! cargo build --release --example checkpoint_memory
//! RAYON_NUM_THREADS=2 target/release/examples/checkpoint_memory plain
//! RAYON_NUM_THREADS=2 target/release/examples/checkpoint_memory every4
//! PEERS_THREADS=2 python benches/torch_checkpoint.py plain    # the same in PyTorch
//! PEERS_THREADS=2 python benches/torch_checkpoint.py every4   # checkpoint_sequential
//! ```
//!
//! It prints the median step time over the steps after the first, the peak
//! resident memory (`VmHWM`), and the peak minus the resident memory once
//! the model and data exist: what the steps themselves needed
//! (activations, gradients, the optimiser's work). The backward pass is
//! `Tape::backward_and_clear`, which frees each activation and
//! intermediate gradient as soon as it has been used, as PyTorch's
//! `loss.backward()` does.

#[path = "../tests/common/memory.rs"]
mod memory;

use std::time::Instant;

use tapegrad::nn::loss::mse;
use tapegrad::prelude::*;

const LAYERS: usize = 32;
const WIDTH: usize = 1024;
const BATCH: usize = 256;

/// Bytes of the values the tape's op nodes hold, leaving out views that
/// share a parameter's buffer (the transposed weights).
fn activation_bytes(tape: &Tape<f32>) -> u64 {
    tape.nodes()
        .iter()
        .filter(|n| n.kind == tapegrad::autograd::NodeKind::Op && n.op != "permute")
        .map(|n| (n.value.numel() * std::mem::size_of::<f32>()) as u64)
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(6);
    let mut net = Sequential::<f32>::new();
    for i in 0..LAYERS {
        net = net
            .add(Linear::new(WIDTH, WIDTH, i as u64))
            .add(Activation::Relu);
    }
    let mut model: Box<dyn Module<f32>> = match mode.as_str() {
        "plain" => Box::new(net),
        "every4" => Box::new(net.checkpointed(8)?),
        other => return Err(format!("unknown mode {other:?}: plain or every4").into()),
    };
    let x = Tensor::<f32>::randn_seeded(&[BATCH, WIDTH], 1);
    let y = Tensor::<f32>::randn_seeded(&[BATCH, WIDTH], 2);
    let mut opt = Sgd::new(1e-3);
    let base = memory::resident_bytes().map_or(0, |(rss, _)| rss);
    let mut times = Vec::new();
    for _ in 0..steps {
        let t0 = Instant::now();
        let mut tape = Tape::new();
        let root = {
            let out = model.forward(&tape, tape.constant(x.clone()))?;
            if times.is_empty() {
                println!(
                    "{mode}: activations on the tape after the forward pass: {:.1} MiB",
                    memory::mib(activation_bytes(&tape))
                );
            }
            mse(out, tape.constant(y.clone()))?.var_id()
        };
        // The pass frees each activation and intermediate gradient as soon
        // as it is used, and leaves the tape empty.
        let grads = model.grads(&tape.backward_and_clear(root)?);
        drop(tape);
        if times.is_empty() {
            let hwm = memory::resident_bytes().map_or(0, |(_, peak)| peak);
            println!(
                "{mode}: first step, before the optimiser: peak {:.1} MiB",
                memory::mib(hwm)
            );
        }
        opt.step(model.parameters_mut(), &grads)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    let mut later = times[1.min(times.len() - 1)..].to_vec();
    later.sort_by(f64::total_cmp);
    let median = later[later.len() / 2];
    println!(
        "{mode}: {LAYERS}x{WIDTH} MLP, batch {BATCH}: median step {:.1} ms (min {:.1}, max {:.1}, {} steps after the first)",
        median * 1e3,
        later[0] * 1e3,
        later[later.len() - 1] * 1e3,
        later.len()
    );
    match memory::resident_bytes() {
        Some((_, peak)) => println!(
            "{mode}: peak resident {:.1} MiB, of which the steps {:.1} MiB (resident before them {:.1} MiB)",
            memory::mib(peak),
            memory::mib(peak.saturating_sub(base)),
            memory::mib(base)
        ),
        None => println!("peak resident memory: not available (no /proc/self/status)"),
    }
    Ok(())
}
