//! The distributed checks that need real processes, run by CI under
//! `mpirun` (see `.ci/run`); the same logic with ranks as threads is tested
//! in `crates/distributed/tests/threads.rs` without MPI.
//!
//! ```text
//! cargo build --release --features mpi --example ddp_check
//! mpirun -n 3 --oversubscribe target/release/examples/ddp_check equivalence
//! mpirun -n 2 target/release/examples/ddp_check checkpoint
//! mpirun -n 2 target/release/examples/ddp_check mismatch
//! mpirun -n 2 target/release/examples/ddp_check fail    # must stop the job, naming rank 1
//! mpirun -n 2 target/release/examples/ddp_check panic   # likewise
//! ```
//! Each mode exits 0 when its check holds (`fail` and `panic`: never; the
//! job is stopped by MPI_Abort and CI checks the exit status and message).

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use tapegrad::autograd::{Result as TapeResult, Tape, Var};
use tapegrad::distributed::{
    Buffer, Communicator, DataParallel, DistributedTrainer, Error, Local, MpiComm, ShardSampler,
    Wire,
};
use tapegrad::nn::{checkpoint, Param};
use tapegrad::prelude::*;

/// A seeded regression set: `n` rows of 6 features, 2 targets.
fn regression<T: Wire>(n: usize) -> Dataset<T> {
    let v = |i: usize, k: f64| T::from_f64(((i as f64 * k).sin() * 1.7).fract());
    let x = (0..n * 6).map(|i| v(i, 0.37)).collect();
    let y = (0..n * 2).map(|i| v(i, 1.91)).collect();
    Dataset::new(
        Tensor::from_vec(x, &[n, 6]).expect("shape"),
        Target::Values(Tensor::from_vec(y, &[n, 2]).expect("shape")),
    )
    .expect("rows agree")
}

fn values<T: Wire, M: Module<T> + ?Sized>(m: &M) -> Vec<T> {
    m.parameters()
        .iter()
        .flat_map(|(_, p)| p.value().to_vec())
        .collect()
}

/// Runs `steps` SGD steps by hand on `comm`'s ranks with `batch` rows each
/// and calls `after(step, parameters)` after each.
fn steps<T: Wire, C: Communicator>(
    comm: &C,
    batch: usize,
    steps: usize,
    mut after: impl FnMut(usize, Vec<T>) -> Result<(), String>,
) -> Result<(), String> {
    let data = regression::<T>(29);
    let mut model = Mlp::<T>::builder(&[6, 24, 24, 2])
        .activation(Activation::Tanh)
        .seed(11 + comm.rank() as u64) // rank 0's values win
        .build()
        .map_err(|e| e.to_string())?;
    let dp = DataParallel::new(comm).bucket_bytes(2048);
    dp.prepare(&mut model).map_err(|e| e.to_string())?;
    let sampler = ShardSampler::new(data.len(), comm.size(), 3);
    let per_epoch = sampler.steps_per_epoch(batch);
    let mut opt = Adam::new(0.01);
    for s in 0..steps {
        let rows = sampler.indices(comm.rank(), s / per_epoch + 1);
        let k = s % per_epoch;
        let (lo, hi) = (
            (k * batch).min(rows.len()),
            ((k + 1) * batch).min(rows.len()),
        );
        let tape = Tape::new();
        let grads = if lo == hi {
            dp.backward(&model, None)
        } else {
            let b = data.subset(&rows[lo..hi]).map_err(|e| e.to_string())?;
            let out = model
                .forward(&tape, tape.constant(b.features().clone()))
                .map_err(|e| e.to_string())?;
            let l = Objective::Mse
                .loss(out, b.targets())
                .map_err(|e| e.to_string())?;
            dp.backward(&model, Some((l, hi - lo)))
        }
        .map_err(|e| e.to_string())?;
        drop(tape);
        opt.step(model.parameters_mut(), &grads)
            .map_err(|e| e.to_string())?;
        after(s, values(&model))?;
    }
    Ok(())
}

/// N ranks with batch b against one process with batch N·b, every step,
/// and every rank bit for bit equal to rank 0.
fn equivalence<T: Wire>(comm: &MpiComm, tol: f64) -> Result<(), String> {
    let (batch, n) = (3, 24);
    let mut reference = Vec::new();
    let mut local_model_start = |_: usize, v: Vec<T>| {
        reference.push(v);
        Ok(())
    };
    // The single-process run, with rank 0's starting values (seed 11).
    steps::<T, _>(&Local, comm.size() * batch, n, &mut local_model_start)?;
    steps::<T, _>(comm, batch, n, |s, mine| {
        let mut zeros = T::into_buffer(mine.clone());
        comm.broadcast(&mut zeros, 0).map_err(|e| e.to_string())?;
        let rank0 = T::from_buffer(zeros).expect("same type");
        if rank0 != mine {
            return Err(format!(
                "step {s}: rank {} differs from rank 0",
                comm.rank()
            ));
        }
        let scale = reference[s]
            .iter()
            .map(|v| v.to_f64().abs())
            .fold(0.0, f64::max);
        for (i, (a, b)) in mine.iter().zip(&reference[s]).enumerate() {
            if (a.to_f64() - b.to_f64()).abs() > tol * scale {
                return Err(format!(
                    "step {s}, element {i}: {a:?} with {} ranks, {b:?} in one process",
                    comm.size()
                ));
            }
        }
        Ok(())
    })
}

/// Rank 0 checkpoints every epoch while the others go on; afterwards every
/// rank loads the file and finds its own parameters.
fn checkpoint_check(comm: &MpiComm) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!(
        "tapegrad-ddp-check-{}",
        std::env::var("OMPI_COMM_WORLD_SIZE").unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("checkpoint.safetensors");
    let data = regression::<f32>(200);
    let mut model = Mlp::<f32>::builder(&[6, 256, 256, 2])
        .build()
        .map_err(|e| e.to_string())?;
    DistributedTrainer::new(Objective::Mse)
        .epochs(6)
        .batch_size(8)
        .log(false)
        .checkpoint(&path)
        .fit(comm, &mut model, &mut Sgd::new(0.05), &data, None)
        .map_err(|e| e.to_string())?;
    comm.barrier().map_err(|e| e.to_string())?;
    let mut loaded = Mlp::<f32>::builder(&[6, 256, 256, 2])
        .seed(5)
        .build()
        .map_err(|e| e.to_string())?;
    checkpoint::load(&mut loaded, &path).map_err(|e| e.to_string())?;
    if values(&loaded) != values(&model) {
        return Err(format!(
            "rank {}: the checkpoint differs from the model",
            comm.rank()
        ));
    }
    comm.barrier().map_err(|e| e.to_string())?;
    if comm.rank() == 0 {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}

/// The last rank builds a narrower model: every rank must get the error.
fn mismatch(comm: &MpiComm) -> Result<(), String> {
    let width = if comm.rank() + 1 == comm.size() { 7 } else { 8 };
    let mut model = Mlp::<f32>::builder(&[6, width, 2])
        .build()
        .map_err(|e| e.to_string())?;
    match DataParallel::new(comm).prepare(&mut model) {
        Err(e @ Error::Mismatch { .. }) => {
            println!("rank {}: refused as expected: {e}", comm.rank());
            Ok(())
        }
        other => Err(format!("expected a mismatch error, got {other:?}")),
    }
}

/// A model whose forward pass fails (or panics) on rank 1's fifth call.
struct Faulty {
    inner: Mlp<f32>,
    rank: usize,
    panic: bool,
    calls: AtomicUsize,
}

impl Module<f32> for Faulty {
    fn forward<'t>(&self, tape: &'t Tape<f32>, x: Var<'t, f32>) -> TapeResult<Var<'t, f32>> {
        if self.rank == 1 && self.calls.fetch_add(1, Ordering::Relaxed) == 4 {
            if self.panic {
                panic!("injected panic on rank 1");
            }
            return Err(tapegrad::autograd::Error::InvalidArgument {
                op: "Faulty::forward".into(),
                msg: "injected failure on rank 1".into(),
            });
        }
        self.inner.forward(tape, x)
    }
    fn parameters(&self) -> Vec<(String, &Param<f32>)> {
        self.inner.parameters()
    }
    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<f32>)> {
        self.inner.parameters_mut()
    }
    fn describe(&self) -> String {
        "Faulty".into()
    }
}

fn failing(comm: &MpiComm, panic: bool) -> Result<(), String> {
    let mut model = Faulty {
        inner: Mlp::builder(&[6, 32, 2])
            .build()
            .map_err(|e| e.to_string())?,
        rank: comm.rank(),
        panic,
        calls: AtomicUsize::new(0),
    };
    let data = regression::<f32>(400);
    DistributedTrainer::new(Objective::Mse)
        .epochs(100_000)
        .batch_size(2)
        .log(false)
        .fit(comm, &mut model, &mut Sgd::new(0.01), &data, None)
        .map_err(|e| e.to_string())?;
    Err("training ended although rank 1 failed".into())
}

fn main() -> ExitCode {
    let comm = match MpiComm::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    comm.abort_on_panic();
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "equivalence".into());
    let result = match mode.as_str() {
        "equivalence" => {
            equivalence::<f32>(&comm, 1e-5).and_then(|()| equivalence::<f64>(&comm, 1e-12))
        }
        "checkpoint" => checkpoint_check(&comm),
        "mismatch" => mismatch(&comm),
        "fail" => failing(&comm, false),
        "panic" => failing(&comm, true),
        other => Err(format!("unknown mode {other:?}")),
    };
    // Every rank reports; any failure fails the job.
    let failed = f64::from(u8::from(result.is_err()));
    let total = match comm.all_reduce(Buffer::F64(vec![failed])) {
        Ok(Buffer::F64(v)) => v[0],
        _ => 1.0,
    };
    if let Err(e) = &result {
        eprintln!("rank {}: {mode}: FAILED: {e}", comm.rank());
    }
    if total > 0.0 {
        return ExitCode::FAILURE;
    }
    if comm.rank() == 0 {
        println!("ddp_check {mode}: ok on {} ranks", comm.size());
    }
    ExitCode::SUCCESS
}
