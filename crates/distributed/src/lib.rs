//! Data-parallel training of tapegrad models across processes and
//! machines, on MPI: PyTorch's `DistributedDataParallel` for tapegrad.
//!
//! Every process (a *rank*) holds a full replica of the model and trains on
//! its own share of each batch; after every backward pass the gradients are
//! averaged over all ranks, so every replica takes the same step and they
//! stay identical. Started with `mpirun`, the same program runs on one
//! machine over loopback or shared memory, or on a cluster with a hostfile.
//!
//! - [`Communicator`]: rank, size and the collectives (all-reduce started
//!   without blocking, broadcast, barrier, abort). [`MpiComm`] (feature
//!   `mpi`) is MPI's world; [`Local`] is a job of one process;
//!   [`ThreadGroup`] runs ranks as threads of one process (tests, trying
//!   things out).
//! - [`DataParallel`]: the parts for a custom loop: replicas checked and
//!   made identical, gradients averaged in buckets whose all-reduce starts
//!   during the backward pass.
//! - [`ShardSampler`]: each epoch's shuffle, the same on every rank, dealt
//!   out so that every row is used exactly once.
//! - [`DistributedTrainer`]: all of it in one call, with metrics averaged
//!   over ranks and printing and checkpoints from rank 0 only.
//!
//! **Why a crate, and why MPI behind a feature.** Only this crate knows
//! about processes; `nn` stays a single-process library and plugs in
//! through its gradient values ([`ParamGrads`](tapegrad_nn::ParamGrads))
//! and the autograd hook that hands out each parameter's gradient as soon
//! as it is final (`Tape::backward_with_param_hook`). Linking MPI needs MPI
//! installed (`apt-get install openmpi-bin libopenmpi-dev libclang-dev`),
//! which a fresh machine does not have, so [`MpiComm`] sits behind the
//! `mpi` cargo feature, off by default: the workspace builds and tests
//! without MPI, and everything except `MpiComm` (the sampler, the buckets,
//! the averaging, the trainer) is tested there with [`ThreadGroup`]. Build
//! with `cargo build --release --features mpi` (in the root crate:
//! `--features tapegrad/mpi`) and run with
//! `mpirun -n 2 target/release/examples/ddp_digits`.
//!
//! **What can panic.** [`ThreadGroup::new`] and [`ShardSampler::new`] with
//! a size of 0. [`Communicator::abort`] ends the job (with
//! [`ThreadGroup`], it panics this rank's thread after telling the others).

mod comm;
mod ddp;
mod error;
#[cfg(feature = "mpi")]
mod mpi_comm;
mod sampler;
mod trainer;

pub use comm::{Buffer, Communicator, Local, PendingReduce, ThreadGroup, Wire};
pub use ddp::{DataParallel, DEFAULT_BUCKET_BYTES, FIRST_BUCKET_BYTES};
pub use error::{Error, Result};
#[cfg(feature = "mpi")]
pub use mpi_comm::MpiComm;
pub use sampler::ShardSampler;
pub use trainer::DistributedTrainer;
