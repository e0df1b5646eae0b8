//! Resident memory stays flat over a long training run: after ten times
//! as many `Trainer::fit` steps of the digits MLP, the process's resident
//! memory (`VmRSS`) and its peak (`VmHWM`) have grown by less than
//! [`LIMIT_MIB`]. Alone in its test binary, so no other test allocates at
//! the same time.
//!
//! Release builds (CI's `cargo test --release`) run 1,000 then 10,000
//! steps, about 3 s. Debug builds are some 25 times slower per step, so
//! they run 100 then 1,000. `cargo run --release --example memory_soak`
//! prints the same figures.

#[path = "common/memory.rs"]
mod memory;
#[path = "common/soak.rs"]
mod soak;

use memory::{mib, resident_bytes};
use soak::Soak;

/// Allowed growth. Measured: +0.2 MiB from 1,000 to 10,000 steps, on a
/// process of about 7 MiB.
const LIMIT_MIB: f64 = 3.0;

#[cfg(not(debug_assertions))]
const STEPS: (usize, usize) = (1_000, 10_000);
#[cfg(debug_assertions)]
const STEPS: (usize, usize) = (100, 1_000);

#[test]
fn resident_memory_is_flat_over_ten_times_the_steps() -> tapegrad::nn::Result<()> {
    if resident_bytes().is_none() {
        eprintln!("skipped: no /proc/self/status on this system");
        return Ok(());
    }
    let (first, total) = STEPS;
    let mut soak = Soak::new()?;
    let first_loss = soak.train(first)?;
    let (rss1, hwm1) = resident_bytes().expect("read above");
    let last_loss = soak.train(total - first)?;
    let (rss2, hwm2) = resident_bytes().expect("read above");
    assert_eq!(soak.steps(), total);
    let report = format!(
        "after {first} steps: VmRSS {:.2} MiB, VmHWM {:.2} MiB; after {total}: VmRSS {:.2} MiB, VmHWM {:.2} MiB",
        mib(rss1),
        mib(hwm1),
        mib(rss2),
        mib(hwm2)
    );
    println!("{report}");
    assert!(
        last_loss < first_loss,
        "the model trained ({first_loss} -> {last_loss})"
    );
    assert!(mib(rss2) - mib(rss1) < LIMIT_MIB, "VmRSS grew: {report}");
    assert!(mib(hwm2) - mib(hwm1) < LIMIT_MIB, "VmHWM grew: {report}");
    Ok(())
}
