//! The nn crate's error type.
//!
//! Tape-level functions (layers' `forward`, activations, losses) return
//! [`tapegrad_autograd::Result`], like every other op on the tape. Functions
//! that touch files, data or whole training runs return this crate's
//! [`Result`], whose [`Error`] wraps the autograd one (`?` converts).

use std::fmt;
use std::path::PathBuf;

use tapegrad_autograd as autograd;
use tapegrad_tensor as tensor;

/// What went wrong in data loading, checkpointing, optimisation or training.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An error from the tape (a shape mismatch in a layer, a loss, ...).
    Autograd(autograd::Error),
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A CSV file holds something that is not a number, or a row of the
    /// wrong length. `line` and `column` count from 1.
    Csv {
        /// The file (or `"<string>"` for in-memory text).
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// Column number, from 1.
        column: usize,
        /// The header name of the column, when the file has a header.
        column_name: Option<String>,
        /// What is wrong, quoting the offending text.
        msg: String,
    },
    /// A checkpoint could not be saved or loaded; the model is unchanged.
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        kind: CheckpointError,
    },
    /// An invalid argument (an empty data set, a bad split fraction, ...).
    InvalidArgument {
        /// The function that refused it.
        op: &'static str,
        /// What was wrong.
        msg: String,
    },
}

/// The ways a checkpoint can fail to load (or save).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file is shorter than its header says (cut off mid-write).
    Truncated {
        /// What was being read.
        what: String,
    },
    /// The header or layout is not valid safetensors (including extra bytes
    /// after the tensor data, which is not truncation).
    Corrupt {
        /// What is wrong, in words, naming the tensor at fault when one is.
        msg: String,
    },
    /// The model has a parameter the file lacks.
    Missing {
        /// The parameter's name.
        name: String,
    },
    /// The file has a tensor the model lacks.
    Unexpected {
        /// The tensor's name.
        name: String,
    },
    /// A tensor's shape differs from the parameter's.
    Shape {
        /// The tensor's name.
        name: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        got: Vec<usize>,
    },
    /// A tensor's element type differs from the model's.
    Dtype {
        /// The tensor's name.
        name: String,
        /// The model's type (`F32` or `F64`).
        expected: String,
        /// The file's type.
        got: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Truncated { what } => {
                write!(f, "file is truncated: {what}")
            }
            CheckpointError::Corrupt { msg } => write!(f, "not a valid safetensors file: {msg}"),
            CheckpointError::Missing { name } => {
                write!(f, "tensor {name:?} is missing from the file")
            }
            CheckpointError::Unexpected { name } => {
                write!(
                    f,
                    "the file has tensor {name:?}, which the model does not have"
                )
            }
            CheckpointError::Shape {
                name,
                expected,
                got,
            } => write!(
                f,
                "tensor {name:?} has shape {got:?} in the file but {expected:?} in the model"
            ),
            CheckpointError::Dtype {
                name,
                expected,
                got,
            } => write!(
                f,
                "tensor {name:?} has dtype {got} in the file but the model uses {expected}"
            ),
        }
    }
}

impl Error {
    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            msg: msg.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Autograd(e) => write!(f, "{e}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Csv {
                path,
                line,
                column,
                column_name,
                msg,
            } => {
                write!(f, "{}:{line}:{column}: ", path.display())?;
                if let Some(n) = column_name {
                    write!(f, "(column {n:?}) ")?;
                }
                write!(f, "{msg}")
            }
            Error::Checkpoint { path, kind } => {
                write!(f, "checkpoint {}: {kind}", path.display())
            }
            Error::InvalidArgument { op, msg } => write!(f, "{op}: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Autograd(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<autograd::Error> for Error {
    fn from(e: autograd::Error) -> Self {
        Error::Autograd(e)
    }
}

impl From<tensor::Error> for Error {
    fn from(e: tensor::Error) -> Self {
        Error::Autograd(autograd::Error::Tensor(e))
    }
}

/// The nn crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
