//! The built-in ops, one module per family. Each module's header has a
//! table of forward formula and derivative; each op's `forward` and
//! `backward` sit together, and its tests sit at the bottom of the file or in
//! `tests/ops_*.rs`.
//!
//! | module | ops |
//! | --- | --- |
//! | [`arith`] | add, sub, mul, div, pow, neg, add_scalar, mul_scalar |
//! | [`math`] | exp, ln, sqrt, powf, sin, cos |
//! | [`activation`] | tanh, sigmoid (with fused backward ops), relu, abs, clamp, softplus, maximum, minimum |
//! | [`reduce`] | sum, sum_to, broadcast_to, max, min |
//! | [`shape`] | reshape, permute, slice, concat |
//! | [`index`] | index_select, gather_rows, where |
//! | [`matmul`] | matmul |
//! | [`softmax`] | softmax, log_softmax, logsumexp |
//! | [`recurrent`] | a whole RNN / LSTM / GRU sequence (fused backpropagation through time) |
//!
//! Composites have no rule of their own: `mean` is `sum · 1/n`, `square` is
//! `powf(2)`, `transpose` is `permute`, `squeeze`/`unsqueeze` are `reshape`,
//! `stack` is `unsqueeze` + `concat`.

pub mod activation;
pub mod arith;
pub mod index;
pub mod math;
pub mod matmul;
pub mod recurrent;
pub mod reduce;
pub mod shape;
pub mod softmax;

#[cfg(test)]
pub(crate) mod testutil;
