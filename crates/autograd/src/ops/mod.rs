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
//! | [`conv`] | conv2d, conv_transpose2d, conv2d_weight_grad, unfold, fold, max_pool2d, take_flat, scatter_add_flat |
//! | [`softmax`] | softmax, log_softmax, logsumexp |
//! | [`recurrent`] | a whole RNN / LSTM / GRU sequence (fused backpropagation through time) |
//! | [`gelu`] | gelu (exact, with `gelu_grad`), gelu_tanh |
//! | [`norm`] | layer_norm (fused) |
//! | [`embedding`] | embedding, embedding_backward |
//! | [`attention`] | masked_fill, softmax_masked; composites scaled_dot_product_attention, split, chunk |
//!
//! Composites have no rule of their own: `mean` is `sum · 1/n`, `square` is
//! `powf(2)`, `transpose` is `permute`, `squeeze`/`unsqueeze` are `reshape`,
//! `stack` is `unsqueeze` + `concat`.

pub mod activation;
pub mod arith;
pub mod attention;
pub mod conv;
pub mod embedding;
pub mod gelu;
pub mod index;
pub mod math;
pub mod matmul;
pub mod norm;
pub mod recurrent;
pub mod reduce;
pub mod shape;
pub mod softmax;

#[cfg(test)]
pub(crate) mod testutil;
