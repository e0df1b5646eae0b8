//! The `ddp_step` workload of `benches/README.md`: the mlp_step model
//! (784-512-512-10, ReLU, MSE, plain SGD) on every rank with its own 128
//! rows, gradients averaged over the ranks every step. Rank 0 prints one
//! JSON line, in the units of `benches/ddp_torch.py` (the PyTorch side):
//! the median step time, the same step without the all-reduce, and the
//! bandwidth of a blocking all-reduce of all the gradients.
//!
//! ```text
//! cargo build --release --features mpi --example ddp_step
//! RAYON_NUM_THREADS=1 mpirun -n 2 --bind-to none target/release/examples/ddp_step [BUCKET_MB]
//! ```
//! `BUCKET_MB` defaults to 25 (PyTorch's default bucket size); the whole
//! model's gradients (2.7 MB) then fit in one bucket, which can only start
//! once the first layer's gradient is ready. Smaller buckets start earlier.
//!
//! Timing as in the PyTorch script: 20 warm-up steps, then 7 blocks of 20
//! steps, each block ended by a barrier; the median block is reported.

use std::time::Instant;

use tapegrad::distributed::{Buffer, Communicator, DataParallel, MpiComm};
use tapegrad::prelude::*;

const SIZES: [usize; 4] = [784, 512, 512, 10];
const BATCH: usize = 128;
const LR: f64 = 0.01;

/// Median, min and max seconds per step over 7 blocks of 20 steps.
fn time_blocks(comm: &MpiComm, mut step: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..20 {
        step();
    }
    comm.barrier().expect("barrier");
    let mut blocks: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..20 {
                step();
            }
            comm.barrier().expect("barrier");
            t.elapsed().as_secs_f64() / 20.0
        })
        .collect();
    blocks.sort_by(f64::total_cmp);
    (blocks[3], blocks[0], blocks[6])
}

fn main() -> Result<(), tapegrad::distributed::Error> {
    let comm = MpiComm::init()?;
    comm.abort_on_panic();
    let bucket_mb: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(25.0);
    let mut model = Mlp::<f32>::builder(&SIZES)
        .activation(Activation::Relu)
        .seed(10)
        .build()?;
    let dp = DataParallel::new(&comm).bucket_bytes((bucket_mb * 1024.0 * 1024.0) as usize);
    dp.prepare(&mut model)?;
    let seed = 1 + 2 * comm.rank() as u64;
    let x = Tensor::<f32>::randn_seeded(&[BATCH, SIZES[0]], seed);
    let y = Tensor::<f32>::randn_seeded(&[BATCH, SIZES[3]], seed + 1);
    let mut opt = Sgd::new(LR);
    let mut tape = Tape::<f32>::new();

    let sync = time_blocks(&comm, || {
        tape.clear();
        let out = model
            .forward(&tape, tape.constant(x.clone()))
            .expect("forward");
        let l = loss::mse(out, tape.constant(y.clone())).expect("loss");
        let grads = dp.backward(&model, Some((l, BATCH))).expect("backward");
        tape.clear();
        opt.step(model.parameters_mut(), &grads).expect("step");
    });

    let local = time_blocks(&comm, || {
        tape.clear();
        let out = model
            .forward(&tape, tape.constant(x.clone()))
            .expect("forward");
        let l = loss::mse(out, tape.constant(y.clone())).expect("loss");
        let grads = model.grads(&tape.backward(l).expect("backward"));
        tape.clear();
        opt.step(model.parameters_mut(), &grads).expect("step");
    });

    // A blocking all-reduce of every gradient at once: the transport's
    // bandwidth as NCCL-tests reports it (algorithm bandwidth, bytes / time).
    let numel: usize = model.parameters().iter().map(|(_, p)| p.numel()).sum();
    let reduce = time_blocks(&comm, || {
        comm.all_reduce(Buffer::F32(vec![1.0; numel]))
            .expect("all-reduce");
    });
    if comm.rank() == 0 {
        let ms = |s: f64| (s * 1e6).round() / 1e3;
        println!(
            "{{\"engine\": \"tapegrad\", \"workload\": \"ddp_step\", \"params\": {{\"sizes\": \"784-512-512-10\", \
             \"batch_per_rank\": {BATCH}, \"world\": {}, \"backend\": \"mpi\", \"bucket_mb\": {bucket_mb}}}, \
             \"threads\": \"RAYON_NUM_THREADS per process\", \"unit\": \"ms\", \"median\": {}, \"min\": {}, \"max\": {}, \
             \"no_sync_median\": {}, \"allreduce_ms\": {}, \"allreduce_gb_per_s\": {:.3}}}",
            comm.size(),
            ms(sync.0),
            ms(sync.1),
            ms(sync.2),
            ms(local.0),
            ms(reduce.0),
            (numel * 4) as f64 / reduce.0 / 1e9
        );
    }
    Ok(())
}
