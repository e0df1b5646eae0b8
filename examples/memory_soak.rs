//! Resident memory over a long training run: the digits MLP of
//! `examples/digits.rs` (64-256-10, ReLU, Adam, batches of 32) trained by
//! `Trainer::fit` for 1,000 steps, then 9,000 more in a second call, with
//! the process's resident memory (`VmRSS`) and its peak so far (`VmHWM`,
//! which includes everything allocated during a call) after each. Memory
//! that stays flat shows that nothing (the tape, gradients, optimiser state,
//! buffer pools) grows with the number of steps.
//!
//! ```sh
//! cargo run --release --example memory_soak            # 1,000 then 10,000 steps
//! cargo run --release --example memory_soak -- 300 3000
//! ```
//!
//! Linux only (it reads `/proc/self/status`). `tests/memory.rs` asserts the
//! same on a shorter run.

#[path = "../tests/common/memory.rs"]
mod memory;
#[path = "../tests/common/soak.rs"]
mod soak;

use std::time::Instant;

use memory::{mib, resident_bytes};
use soak::Soak;

fn main() -> tapegrad::nn::Result<()> {
    let arg = |i: usize, default: usize| -> usize {
        std::env::args()
            .nth(i)
            .map(|s| s.parse().expect("step counts are whole numbers"))
            .unwrap_or(default)
    };
    let (first, total) = (arg(1, 1_000), arg(2, 10_000));
    assert!(first <= total, "the first count must not exceed the total");
    let Some((rss0, hwm0)) = resident_bytes() else {
        eprintln!("no /proc/self/status here: this example reads memory figures from Linux");
        std::process::exit(2);
    };
    let mut soak = Soak::new()?;
    println!(
        "digits MLP 64-256-10, Adam, batches of 32; before training: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        mib(rss0),
        mib(hwm0)
    );
    let mut at = Vec::new();
    for steps in [first, total - first] {
        let t = Instant::now();
        let loss = soak.train(steps)?;
        let (rss, hwm) = resident_bytes().expect("read above");
        println!(
            "after {:>6} steps: VmRSS {:6.1} MiB, VmHWM {:6.1} MiB, loss {loss:.4}, {:.2} s for {steps} steps",
            soak.steps(),
            mib(rss),
            mib(hwm),
            t.elapsed().as_secs_f64()
        );
        at.push((rss, hwm));
    }
    let growth = |a: u64, b: u64| mib(b) - mib(a);
    println!(
        "growth from {first} to {total} steps: VmRSS {:+.2} MiB, VmHWM {:+.2} MiB",
        growth(at[0].0, at[1].0),
        growth(at[0].1, at[1].1)
    );
    Ok(())
}
