//! tapegrad: reverse-mode automatic differentiation in Rust.
//!
//! This facade re-exports the member crates:
//! - [`tensor`]: strided N-d arrays with broadcasting, reductions and matmul;
//! - [`autograd`]: the tape, gradients of any order, custom ops, gradcheck;
//! - [`nn`]: layers, losses, optimizers and training;
//! - [`distributed`]: data-parallel training across processes on MPI (the
//!   MPI part behind the `mpi` feature).
//!
//! The README follows (its code blocks are doctests).
#![doc = include_str!("../README.md")]

pub use tapegrad_autograd as autograd;
pub use tapegrad_distributed as distributed;
pub use tapegrad_nn as nn;
pub use tapegrad_tensor as tensor;

/// The names most programs need.
pub mod prelude {
    pub use tapegrad_autograd::{Tape, Var};
    pub use tapegrad_nn::data::{Dataset, Target};
    pub use tapegrad_nn::{
        loss, Activation, Adam, Dropout, Init, Linear, LrSchedule, Mlp, Module, Objective,
        Optimizer, Param, ParamGrads, Sequential, Sgd, Trainer,
    };
    pub use tapegrad_nn::{
        AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Flatten, GlobalAvgPool2d, MaxPool2d,
        Unflatten,
    };
    pub use tapegrad_nn::{Gru, Lstm, RecurrentOptions, Rnn};
    pub use tapegrad_tensor::{ConvParams, Element, Tensor};
}
