//! Reference workloads (see ../shared/bench/README.md); filled in by the tensor, autograd and nn work.

fn main() {}
