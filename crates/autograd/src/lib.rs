//! Reverse-mode automatic differentiation on an explicit, printable tape.
//!
//! Record a computation by applying ops to [`Var`]s (handles to values on a
//! [`Tape`]), then ask for gradients:
//!
//! ```
//! use tapegrad_autograd::Tape;
//! use tapegrad_tensor::Tensor;
//!
//! let tape = Tape::<f64>::new();
//! let w = tape.param("w", Tensor::from_vec(vec![0.5, -1.0], &[2])?);
//! let b = tape.param("b", Tensor::scalar(0.1));
//! let x = tape.constant(Tensor::from_vec(vec![2.0, 3.0], &[2])?);
//! // y = relu(w·x + b)
//! let y = w.mul(x)?.sum_all()?.add(b)?.relu()?;
//! let grads = tape.backward(y)?;
//! // w·x + b = 1 - 3 + 0.1 < 0, so relu is flat there: zero gradients.
//! assert_eq!(grads.get(w).unwrap().to_vec(), vec![0.0, 0.0]);
//! # Ok::<(), tapegrad_autograd::Error>(())
//! ```
//!
//! - Gradients of any order: [`Tape::grad_graph`] records the gradient on the
//!   tape so it can be differentiated again.
//! - `+ - * /` and unary `-` on values, on results and with plain numbers
//!   ([`operators`]), as on tensors.
//! - Custom ops implement the same [`Op`] trait as the built-in ones.
//! - [`gradcheck()`] compares analytic gradients with finite differences.
//! - [`hessian`] and [`hvp`] give second derivatives of a scalar function.
//! - For teaching: `print!("{tape}")` shows the tape as a numbered table,
//!   [`Tape::format_trace`] narrates each chain-rule step of a backward
//!   pass, [`draw`] renders the graph as SVG or DOT (and
//!   [`Tape::explorer_html`] as a page that steps through both passes in a
//!   browser), and [`explain`]
//!   attributes a model's output to its inputs (saliency, integrated
//!   gradients). `docs/tutorial.md` in the repository walks through them.
//!
//! **Which calls return `Result`.** Every op returns `Result`, on a `Tensor`
//! and on a `Var` alike: anything that computes a new tensor or value
//! (elementwise maps and arithmetic, also with plain numbers and through
//! the operators `+ - * /` and unary `-`, reductions, views, matmul,
//! indexing), even where only an allocation can fail, so that `?` works the
//! same on every line and the error names the op. Accessors that cannot
//! fail (`shape`, `ndim`, `numel`, `is_contiguous`, ...) return plain
//! values, and so do conversions and copies (`clone`, `to_vec`,
//! `to_contiguous`, `cast`) and constructors that cannot fail (`scalar`).
//!
//! Here recording can fail too: a [`Var`] from another tape, or anomaly
//! mode stopping at a NaN; the [`Error`] names the tape position.

mod arena;
mod backward;
mod backward_clear;
mod checkpoint;
pub mod draw;
mod error;
pub mod explain;
mod forward;
pub mod gradcheck;
mod higher;
mod jacobian;
mod op;
pub mod operators;
pub mod ops;
mod param_hook;
pub mod print;
mod tape;
mod var;

pub use backward::{BackwardStep, BackwardTrace, Gradients};
pub use checkpoint::Segment;
pub use draw::DrawOptions;
pub use error::{Error, Result};
pub use forward::jvp;
pub use gradcheck::{gradcheck, gradcheck_second_order, GradcheckReport};
pub use higher::{hessian, hvp, hvp_forward_over_reverse, hvp_reverse_over_reverse};
pub use jacobian::{batch_jacobian, jacobian, jacobian_with, JacobianMode};
pub use op::{BackwardCtx, InputGrads, Op, TangentCtx, TensorGrads, ValueCtx};
pub use ops::attention::AttentionMask;
pub use tape::{NodeInfo, NodeKind, Tape};
pub use var::{Var, VarId};
