//! An empty library: this package exists for its benchmark target,
//! `workloads.rs` (run `RAYON_NUM_THREADS=2 cargo bench --bench workloads`).
