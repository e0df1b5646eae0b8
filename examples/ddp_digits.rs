//! The digits example on several processes: data-parallel training on MPI.
//!
//! ```text
//! cargo build --release --features mpi --example ddp_digits
//! mpirun -n 2 target/release/examples/ddp_digits
//! mpirun -n 2 target/release/examples/ddp_digits -- --epochs 40 --save digits.safetensors
//! ```
//! (as root, `mpirun` also wants `--allow-run-as-root`; with more processes
//! than cores, `--oversubscribe`.)
//!
//! Every process loads the data and builds the model; rank 0's initial
//! weights are copied to the others; each epoch's shuffled rows are dealt
//! out among the ranks, and every step averages the gradients over them.
//! The global batch (`--batch`, 32 as in the digits example) is split
//! evenly, so 2 processes take the same steps as the single-process example
//! and reach the same test accuracy (about 0.98). Only rank 0 prints and
//! saves.

use std::process::ExitCode;
use std::time::Instant;

use tapegrad::distributed::{Communicator, DistributedTrainer, MpiComm};
use tapegrad::nn::data::load_digits;
use tapegrad::nn::{checkpoint, train};
use tapegrad::prelude::*;

struct Args {
    epochs: usize,
    batch: usize,
    hidden: usize,
    lr: f64,
    seed: u64,
    save: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        epochs: 30,
        batch: 32,
        hidden: 256,
        lr: 0.003,
        seed: 0,
        save: None,
    };
    let mut it = std::env::args().skip(1).filter(|s| s != "--");
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let count = |v: String| match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{flag}: {v:?} is not a whole number of at least 1")),
        };
        match flag.as_str() {
            "--epochs" => a.epochs = count(value()?)?,
            "--batch" => a.batch = count(value()?)?,
            "--hidden" => a.hidden = count(value()?)?,
            "--lr" => {
                let v = value()?;
                a.lr = v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .ok_or_else(|| format!("--lr: {v:?} is not a positive number"))?;
            }
            "--seed" => {
                let v = value()?;
                a.seed = v
                    .parse()
                    .map_err(|_| format!("--seed: {v:?} is not a whole number"))?;
            }
            "--save" => a.save = Some(value()?),
            "-h" | "--help" => {
                return Err(
                    "options: --epochs N --batch N (global) --hidden N --lr X --seed N --save PATH"
                        .into(),
                )
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(a)
}

fn run(comm: &MpiComm, args: &Args) -> Result<(), tapegrad::distributed::Error> {
    let t0 = Instant::now();
    let (rank, size) = (comm.rank(), comm.size());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let data = load_digits::<f32>(path)?;
    let (train_set, test_set) = data.train_test_split(0.2, args.seed)?;
    let per_rank = args.batch.div_ceil(size);
    if rank == 0 {
        println!(
            "digits on {size} processes: {} training and {} test images, batches of {} ({} per process)",
            train_set.len(),
            test_set.len(),
            per_rank * size,
            per_rank
        );
    }
    let mut model = Mlp::<f32>::builder(&[64, args.hidden, 10])
        .activation(Activation::Relu)
        .seed(args.seed)
        .build()?;
    let mut opt = Adam::new(args.lr);
    let steps_per_epoch = train_set.len().div_ceil(size).div_ceil(per_rank);
    let mut trainer = DistributedTrainer::new(Objective::CrossEntropy)
        .epochs(args.epochs)
        .batch_size(per_rank)
        .seed(args.seed)
        .log(false)
        .schedule(LrSchedule::Cosine {
            total_steps: args.epochs * steps_per_epoch,
            min_lr: args.lr * 0.05,
        });
    if let Some(p) = &args.save {
        trainer = trainer.checkpoint(p);
    }
    let history = trainer.fit(comm, &mut model, &mut opt, &train_set, None)?;
    if rank == 0 {
        if let Some(last) = history.last() {
            println!(
                "trained {} epochs ({} steps) in {:.2} s: loss {:.4}, training accuracy {:.4}",
                last.epoch,
                last.steps,
                last.seconds,
                last.train_loss,
                last.train_accuracy.unwrap_or(f64::NAN)
            );
        }
        if let Some(p) = &args.save {
            // Saved after every epoch by the trainer; read it back as a check.
            checkpoint::load(&mut model, p)?;
            println!("checkpoint: {p}");
        }
        let test = train::evaluate(&mut model, &test_set, Objective::CrossEntropy)?;
        println!("total time {:.2} s", t0.elapsed().as_secs_f64());
        println!("test accuracy: {:.4}", test.accuracy.unwrap_or(0.0));
    }
    Ok(())
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
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if comm.rank() == 0 {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    match run(&comm, &args) {
        Ok(()) => ExitCode::SUCCESS,
        // Errors before training are the same on every rank; later ones stop the job.
        Err(e) => {
            eprintln!("rank {}: error: {e}", comm.rank());
            ExitCode::FAILURE
        }
    }
}
