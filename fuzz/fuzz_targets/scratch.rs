//! A per-process scratch file for targets whose API reads a path.

use std::path::PathBuf;

/// `<dir>/tapegrad-fuzz-<pid>-<name>`, in `/dev/shm` when there is one (no
/// disk traffic), else the temporary folder.
pub fn path(name: &str) -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("tapegrad-fuzz-{}-{name}", std::process::id()))
}

/// Writes `bytes` to the scratch file `name` and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = path(name);
    std::fs::write(&p, bytes).expect("the scratch folder is writable");
    p
}
