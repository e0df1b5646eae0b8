//! Neural networks (in progress).
