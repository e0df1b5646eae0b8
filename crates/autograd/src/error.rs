//! The autograd error type. Every variant names the op and, where there is
//! one, the tape position (`node`) so a failure points at a line of the
//! printed tape.

use std::fmt;

use tapegrad_tensor as tensor;

/// What went wrong while recording or differentiating.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A tensor op failed while recording node `node`; `source` is the tensor
    /// crate's error (it names the shapes).
    Op {
        /// Tape position the op would have taken.
        node: usize,
        /// The op's name.
        op: String,
        /// The underlying error.
        source: tensor::Error,
    },
    /// A tensor error outside recording (for example in gradcheck).
    Tensor(tensor::Error),
    /// A gradient was requested through an op that has no backward rule.
    BackwardNotSupported {
        /// The op's name.
        op: String,
        /// Its tape position.
        node: usize,
    },
    /// An op's backward rule returned a gradient of the wrong shape.
    GradShape {
        /// The op's name.
        op: String,
        /// Its tape position.
        node: usize,
        /// Which input the gradient is for.
        input: usize,
        /// The input's shape.
        expected: Vec<usize>,
        /// The gradient's shape.
        got: Vec<usize>,
    },
    /// An op's backward rule returned the wrong number of gradients.
    GradCount {
        /// The op's name.
        op: String,
        /// Its tape position.
        node: usize,
        /// Number of inputs.
        expected: usize,
        /// Number of gradients returned.
        got: usize,
    },
    /// `backward` on a non-scalar value without a seed gradient.
    NonScalarRoot {
        /// The root's tape position.
        node: usize,
        /// The root's shape.
        shape: Vec<usize>,
    },
    /// A seed gradient whose shape differs from its root's.
    SeedShape {
        /// The root's tape position.
        node: usize,
        /// The root's shape.
        expected: Vec<usize>,
        /// The seed's shape.
        got: Vec<usize>,
    },
    /// A value recorded on another tape was passed to this one.
    ForeignVar {
        /// The op (or call) that received it.
        op: String,
    },
    /// Anomaly mode found a NaN or an infinity.
    Anomaly {
        /// The op that produced it.
        op: String,
        /// Its tape position.
        node: usize,
        /// `"forward"` or `"backward"`.
        phase: &'static str,
        /// Shapes of the op's inputs.
        input_shapes: Vec<Vec<usize>>,
    },
    /// Any other invalid argument, described in words.
    InvalidArgument {
        /// The call that failed.
        op: String,
        /// What was wrong.
        msg: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Op { node, op, source } => {
                write!(f, "at tape node %{node:04} ({op}): {source}")
            }
            Error::Tensor(e) => write!(f, "{e}"),
            Error::BackwardNotSupported { op, node } => write!(
                f,
                "at tape node %{node:04}: op {op} is forward-only and cannot be differentiated"
            ),
            Error::GradShape {
                op,
                node,
                input,
                expected,
                got,
            } => write!(
                f,
                "at tape node %{node:04}: backward of {op} gave input {input} a gradient of shape {got:?}, expected {expected:?}"
            ),
            Error::GradCount {
                op,
                node,
                expected,
                got,
            } => write!(
                f,
                "at tape node %{node:04}: backward of {op} returned {got} gradients for {expected} inputs"
            ),
            Error::NonScalarRoot { node, shape } => write!(
                f,
                "backward from node %{node:04} of shape {shape:?}: a non-scalar root needs a seed gradient (use backward_with_seed)"
            ),
            Error::SeedShape {
                node,
                expected,
                got,
            } => write!(
                f,
                "backward from node %{node:04}: seed of shape {got:?} does not match the root's shape {expected:?}"
            ),
            Error::ForeignVar { op } => {
                write!(f, "{op}: a value from another tape was used on this tape")
            }
            Error::Anomaly {
                op,
                node,
                phase,
                input_shapes,
            } => write!(
                f,
                "anomaly: {op} at tape node %{node:04} produced a NaN or infinity in the {phase} pass (input shapes {input_shapes:?})"
            ),
            Error::InvalidArgument { op, msg } => write!(f, "{op}: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Op { source, .. } => Some(source),
            Error::Tensor(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tensor::Error> for Error {
    fn from(e: tensor::Error) -> Self {
        Error::Tensor(e)
    }
}

/// The autograd crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
