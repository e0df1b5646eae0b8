//! The distributed crate's error type.

use std::fmt;

/// What can go wrong in data-parallel training.
#[derive(Debug)]
pub enum Error {
    /// A model, loss, optimiser or checkpoint error on this rank.
    Nn(tapegrad_nn::Error),
    /// The replicas' models differ; `detail` names the first difference.
    Mismatch {
        /// The rank that found the difference (against rank 0).
        rank: usize,
        /// The first difference, e.g. a name or shape.
        detail: String,
    },
    /// Another rank stopped the job (its error or panic); the group cannot
    /// continue.
    Aborted {
        /// The rank that stopped.
        rank: usize,
        /// Its message.
        message: String,
    },
    /// A bad argument, naming the call.
    Invalid {
        /// The call.
        op: String,
        /// What is wrong.
        msg: String,
    },
}

impl Error {
    pub(crate) fn invalid(op: &str, msg: impl Into<String>) -> Self {
        Error::Invalid {
            op: op.to_string(),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Nn(e) => write!(f, "{e}"),
            Error::Mismatch { rank, detail } => write!(
                f,
                "the replicas' models differ: rank {rank} is the first that differs from rank 0: {detail}"
            ),
            Error::Aborted { rank, message } => {
                write!(f, "rank {rank} stopped the job: {message}")
            }
            Error::Invalid { op, msg } => write!(f, "{op}: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Nn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tapegrad_nn::Error> for Error {
    fn from(e: tapegrad_nn::Error) -> Self {
        Error::Nn(e)
    }
}

impl From<tapegrad_autograd::Error> for Error {
    fn from(e: tapegrad_autograd::Error) -> Self {
        Error::Nn(e.into())
    }
}

impl From<tapegrad_tensor::Error> for Error {
    fn from(e: tapegrad_tensor::Error) -> Self {
        Error::Nn(e.into())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
