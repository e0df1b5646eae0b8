//! How far apart the machine's first two cores are right now: the round trip
//! of one cache line between two threads, and how fast one thread reads
//! 2 MiB that the other has just written.
//!
//! Why the benchmarks need it: on the shared 2-vCPU virtual machines this
//! project is measured on, the host sometimes places the two vCPUs on cores
//! that share a last-level cache (round trip about 100 ns) and sometimes on
//! cores that do not (about 350-400 ns, and cross-core reads at half the
//! speed), switching every few seconds to minutes. Two-thread workloads
//! that pass data between the threads (a training step: every GEMM reads
//! what both threads wrote in the op before) run slower in the second
//! placement, PyTorch's as well as ours, so a ratio from two runs in
//! different placements says more about the host than about either
//! library. `benches/compare.py` runs this before each side of each pair
//! and prints the placement with the times.
//!
//!     cargo run --release -p tapegrad-benches --example core_latency
//!
//! prints one line such as `round_trip_ns 96 cross_read_gbps 56.1
//! own_read_gbps 56.8`. The two threads are whichever cores the OS gives
//! them: nothing is pinned, as in the benchmarks themselves.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Round trips timed; the median of a few batches is reported.
const ROUND_TRIPS: u64 = 50_000;
/// Words handed from one thread to the other (2 MiB: beyond one core's L2).
const WORDS: usize = 256 * 1024;
const HANDOFFS: usize = 200;

fn main() {
    let trips: Vec<f64> = (0..5).map(|_| round_trip_ns()).collect();
    let (cross, own) = handoff_read_gbps();
    println!(
        "round_trip_ns {:.0} cross_read_gbps {cross:.1} own_read_gbps {own:.1}",
        median(trips)
    );
}

/// Nanoseconds for a value to go to the other thread and back.
fn round_trip_ns() -> f64 {
    let ball = Arc::new(AtomicU64::new(0));
    let other = Arc::clone(&ball);
    let partner = std::thread::spawn(move || {
        for i in 0..ROUND_TRIPS {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let start = Instant::now();
    for i in 0..ROUND_TRIPS {
        ball.store(2 * i + 1, Ordering::Release);
        while ball.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let elapsed = start.elapsed();
    partner.join().expect("the partner thread only spins");
    elapsed.as_nanos() as f64 / ROUND_TRIPS as f64
}

/// Read speed (GB/s) of 2 MiB that the other thread has just written, and
/// of the same 2 MiB written by the reading thread itself.
fn handoff_read_gbps() -> (f64, f64) {
    let words: Arc<Vec<AtomicU64>> = Arc::new((0..WORDS).map(|_| AtomicU64::new(1)).collect());
    let turn = Arc::new(AtomicUsize::new(0));
    let (writer_words, writer_turn) = (Arc::clone(&words), Arc::clone(&turn));
    let writer = std::thread::spawn(move || {
        for round in 0..HANDOFFS {
            while writer_turn.load(Ordering::Acquire) != 2 * round {
                std::hint::spin_loop();
            }
            bump(&writer_words);
            writer_turn.store(2 * round + 1, Ordering::Release);
        }
    });
    let mut cross_ns = 0;
    for round in 0..HANDOFFS {
        while turn.load(Ordering::Acquire) != 2 * round + 1 {
            std::hint::spin_loop();
        }
        let start = Instant::now();
        black_box(sum(&words));
        cross_ns += start.elapsed().as_nanos();
        turn.store(2 * round + 2, Ordering::Release);
    }
    writer.join().expect("the writer thread only writes");
    let mut own_ns = 0;
    for _ in 0..HANDOFFS {
        bump(&words);
        let start = Instant::now();
        black_box(sum(&words));
        own_ns += start.elapsed().as_nanos();
    }
    let bytes = (WORDS * 8 * HANDOFFS) as f64;
    (bytes / cross_ns as f64, bytes / own_ns as f64)
}

fn bump(words: &[AtomicU64]) {
    for w in words {
        w.store(w.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

fn sum(words: &[AtomicU64]) -> u64 {
    words
        .iter()
        .fold(0, |s, w| s.wrapping_add(w.load(Ordering::Relaxed)))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
