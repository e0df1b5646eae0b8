//! Kernel families, one module each. Every kernel writes a fresh contiguous
//! output; none mutates its inputs.

pub(crate) mod binary;
pub(crate) mod conv;
pub(crate) mod index;
pub(crate) mod matmul;
pub(crate) mod movement;
pub mod operators;
pub(crate) mod pooling;
pub mod recurrent;
pub(crate) mod reduce;
pub(crate) mod seq;
pub(crate) mod strided;
pub(crate) mod unary;
