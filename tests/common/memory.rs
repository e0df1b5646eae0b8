//! This process's resident memory, from `/proc/self/status` (Linux).
//! Shared by `tests/memory.rs`, `examples/memory_soak.rs` and
//! `examples/mlp_memory.rs`.

/// Resident memory now (`VmRSS`) and at its peak so far (`VmHWM`), in
/// bytes; `None` where `/proc/self/status` does not exist.
pub fn resident_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |field: &str| -> Option<u64> {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(field)?.trim();
            value.strip_suffix("kB")?.trim().parse::<u64>().ok()
        })
    };
    Some((kib("VmRSS:")? * 1024, kib("VmHWM:")? * 1024))
}

/// Bytes as MiB, for printing.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
