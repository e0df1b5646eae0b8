//! The tensor crate's error type: every variant names the op and the
//! shapes, axes or indices involved.

use std::fmt;

/// A shape, written like `[2, 3]` in messages.
pub(crate) fn fmt_shape(s: &[usize]) -> String {
    format!("{s:?}")
}

/// What went wrong in a tensor op. The `Display` text always starts with the
/// op's name.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree (or broadcast) do not.
    ShapeMismatch {
        /// The op that failed.
        op: &'static str,
        /// Left operand's shape.
        lhs: Vec<usize>,
        /// Right operand's shape.
        rhs: Vec<usize>,
        /// Why they are incompatible.
        reason: String,
    },
    /// An axis is not below the rank.
    AxisOutOfRange {
        /// The op that failed.
        op: &'static str,
        /// The offending axis.
        axis: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// An index is out of bounds along an axis.
    IndexOutOfRange {
        /// The op that failed.
        op: &'static str,
        /// The offending index.
        index: usize,
        /// The axis it indexes.
        axis: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// A data length does not match the element count of a shape.
    ElementCount {
        /// The op that failed.
        op: &'static str,
        /// The requested shape.
        shape: Vec<usize>,
        /// Number of elements the shape needs.
        expected: usize,
        /// Number of elements given.
        got: usize,
    },
    /// A shape too large for memory, or a buffer the allocator refused.
    ///
    /// A shape is too large when a buffer holding it in `f64` would take
    /// more than `isize::MAX` bytes (Rust's limit for one allocation), counting
    /// zero-length axes as 1: this covers every shape whose element count
    /// overflows `usize`, and keeps row-major strides from overflowing.
    /// Views and layouts (no buffer of their own) are held to the same
    /// limit, so any tensor could be copied out.
    TooLarge {
        /// The op that failed.
        op: &'static str,
        /// The requested shape.
        shape: Vec<usize>,
        /// `None` when the shape is over the limit (nothing was allocated);
        /// else the size in bytes of the buffer the allocator refused.
        refused_bytes: Option<usize>,
    },
    /// Any other invalid argument, described in words with the shapes.
    InvalidArgument {
        /// The op that failed.
        op: &'static str,
        /// What was wrong, naming the shapes or values involved.
        msg: String,
    },
}

impl Error {
    /// The name of the op that failed.
    pub fn op(&self) -> &'static str {
        match self {
            Error::ShapeMismatch { op, .. }
            | Error::AxisOutOfRange { op, .. }
            | Error::IndexOutOfRange { op, .. }
            | Error::ElementCount { op, .. }
            | Error::TooLarge { op, .. }
            | Error::InvalidArgument { op, .. } => op,
        }
    }

    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            msg: msg.into(),
        }
    }

    /// [`Error::TooLarge`] for a shape over the size limit.
    pub(crate) fn too_large(op: &'static str, shape: &[usize]) -> Self {
        Error::TooLarge {
            op,
            shape: shape.to_vec(),
            refused_bytes: None,
        }
    }

    pub(crate) fn axis(op: &'static str, axis: usize, shape: &[usize]) -> Self {
        Error::AxisOutOfRange {
            op,
            axis,
            shape: shape.to_vec(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch {
                op,
                lhs,
                rhs,
                reason,
            } => write!(
                f,
                "{op} of {} by {}: {reason}",
                fmt_shape(lhs),
                fmt_shape(rhs)
            ),
            Error::AxisOutOfRange { op, axis, shape } => write!(
                f,
                "{op}: axis {axis} is out of range for shape {} (rank {})",
                fmt_shape(shape),
                shape.len()
            ),
            Error::IndexOutOfRange {
                op,
                index,
                axis,
                shape,
            } => write!(
                f,
                "{op}: index {index} is out of range for axis {axis} of length {} (shape {})",
                shape.get(*axis).copied().unwrap_or(0),
                fmt_shape(shape)
            ),
            Error::ElementCount {
                op,
                shape,
                expected,
                got,
            } => write!(
                f,
                "{op}: shape {} needs {expected} elements, got {got}",
                fmt_shape(shape)
            ),
            Error::TooLarge {
                op,
                shape,
                refused_bytes: None,
            } => write!(
                f,
                "{op}: shape {} has more elements than fit in memory",
                fmt_shape(shape)
            ),
            Error::TooLarge {
                op,
                shape,
                refused_bytes: Some(bytes),
            } => write!(
                f,
                "{op}: could not allocate {bytes} bytes for shape {}",
                fmt_shape(shape)
            ),
            Error::InvalidArgument { op, msg } => write!(f, "{op}: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// The tensor crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
