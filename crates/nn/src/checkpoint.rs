//! Checkpoints in the safetensors format, readable by PyTorch.
//!
//! A file is an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets}}`, then the raw little-endian data.
//! A model saves under its [`Module::parameters`] names, which for
//! [`Mlp`](crate::Mlp) and [`Sequential`](crate::Sequential) are exactly
//! `torch.nn.Sequential`'s `state_dict` keys, with weights `[out, in]`:
//! in PyTorch, `model.load_state_dict(safetensors.torch.load_file(path))`
//! works, and the other way round with [`load`].
//!
//! Parsing uses the `safetensors` crate (the format's reference
//! implementation, which validates offsets, overlaps and header size);
//! this module adds the model-level checks and the atomic write.
//!
//! ```
//! use tapegrad_nn::{checkpoint, Mlp, Module};
//! let dir = std::env::temp_dir().join(format!("tapegrad-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("mlp.safetensors");
//! let a = Mlp::<f32>::builder(&[4, 8, 3]).seed(1).build()?;
//! checkpoint::save(&a, &path)?;
//! let mut b = Mlp::<f32>::builder(&[4, 8, 3]).seed(2).build()?;
//! checkpoint::load(&mut b, &path)?;
//! assert_eq!(a.state_dict(), b.state_dict());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use indexmap::IndexMap;
use safetensors::tensor::{Dtype, Metadata, SafeTensorError, SafeTensors, TensorInfo, View};
use tapegrad_tensor::{Element, Tensor};

use crate::error::{CheckpointError, Error, Result};
use crate::module::{assign_state, check_state_dict, expected_entries, Module};

struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of<T: Element>() -> Dtype {
    if T::DTYPE == "f64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

fn to_bytes<T: Element>(t: &Tensor<T>) -> Vec<u8> {
    let v = t.to_vec();
    if T::DTYPE == "f64" {
        v.iter().flat_map(|x| x.to_f64().to_le_bytes()).collect()
    } else {
        v.iter()
            .flat_map(|x| (x.to_f64() as f32).to_le_bytes())
            .collect()
    }
}

fn from_bytes<T: Element>(b: &[u8]) -> Vec<T> {
    if T::DTYPE == "f64" {
        b.chunks_exact(8)
            .map(|c| T::from_f64(f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))))
            .collect()
    } else {
        b.chunks_exact(4)
            .map(|c| T::from_f64(f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64))
            .collect()
    }
}

fn ck(path: &Path, kind: CheckpointError) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        kind,
    }
}

/// Saves named tensors to `path` atomically: the bytes go to a temporary
/// file in the same folder (named `.{file}.{pid}-{n}.tapegrad-tmp`, unique
/// to the call), which is synced and then renamed over `path`, so a crash
/// mid-save leaves the previous file intact and concurrent saves to one
/// path (from threads or processes) all succeed, the file holding one
/// whole model, the last one renamed. A temporary file of ours older than
/// an hour in that folder is left from a crashed save and is removed.
///
/// # Errors
/// [`Error::Io`] if the folder is not writable.
pub fn save_tensors<T: Element>(
    tensors: &IndexMap<String, Tensor<T>>,
    path: impl AsRef<Path>,
) -> Result<()> {
    save_with_integers(tensors, &[], path.as_ref())
}

/// [`save_tensors`], writing the tensors named in `integers` as `I64`
/// (their values rounded), the dtype PyTorch gives `num_batches_tracked`.
fn save_with_integers<T: Element>(
    tensors: &IndexMap<String, Tensor<T>>,
    integers: &[String],
    path: &Path,
) -> Result<()> {
    let raws: Vec<(String, Raw)> = tensors
        .iter()
        .map(|(n, t)| {
            let raw = if integers.contains(n) {
                Raw {
                    dtype: Dtype::I64,
                    shape: t.dims().to_vec(),
                    bytes: t
                        .to_vec()
                        .iter()
                        .flat_map(|x| (x.to_f64().round() as i64).to_le_bytes())
                        .collect(),
                }
            } else {
                Raw {
                    dtype: dtype_of::<T>(),
                    shape: t.dims().to_vec(),
                    bytes: to_bytes(t),
                }
            };
            (n.clone(), raw)
        })
        .collect();
    let meta = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    let bytes = safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), &meta)
        .map_err(|e| ck(path, CheckpointError::Corrupt { msg: e.to_string() }))?;
    write_atomic(path, &bytes)
}

/// Suffix of our temporary files, whose full name is
/// `.{target}.{pid}-{n}.tapegrad-tmp`: hidden, next to the target (a rename
/// is only atomic within one file system), and recognisable by
/// [`is_our_temp`] so that stale ones can be removed.
const TEMP_SUFFIX: &str = ".tapegrad-tmp";

/// A temporary file of ours whose last write is older than this is left
/// over from a save that crashed, and the next save to its folder removes it.
///
/// Why age and not "the pid in its name is dead": std cannot ask whether a
/// pid is alive without `unsafe` FFI (this crate forbids it) or a
/// Linux-only `/proc` probe; a pid says nothing when the folder is shared
/// over a network file system with another machine, whose pids are not
/// ours; and pids are reused. The file's modification time works
/// everywhere: a save creates its temporary file and writes all the bytes
/// at once, so a save still in progress has written to it within the time
/// one `write_all` + `fsync` takes, far less than an hour even for a
/// multi-gigabyte model on a slow disk. A crash leaves at most one stale file
/// per interrupted save, and it goes an hour later at the latest, on the
/// next save to that folder.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Makes temporary names unique per call across the threads of a process
/// (the pid separates processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name(target: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{target}.{}-{n}{TEMP_SUFFIX}", std::process::id())
}

/// Whether `file_name` has the shape of [`temp_name`]'s names:
/// `.{anything}.{digits}-{digits}.tapegrad-tmp`.
fn is_our_temp(file_name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    file_name
        .strip_prefix('.')
        .and_then(|s| s.strip_suffix(TEMP_SUFFIX))
        .and_then(|s| s.rsplit_once('.'))
        .and_then(|(_, tag)| tag.split_once('-'))
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Best effort: removes our temporary files in `dir` last written more
/// than [`STALE_TEMP_AGE`] ago. Errors (a file another process removed
/// first, an unreadable folder) are ignored: the save itself reports any
/// real problem with the folder.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(is_our_temp) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if old && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to a temporary file unique to this call in `path`'s
/// folder, syncs it and renames it over `path`. A rename within a folder
/// is atomic, so readers (and concurrent saves, of this process or others)
/// see the old file or one whole new one, never a mix; with concurrent
/// saves the last rename wins.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    remove_stale_temps(&dir);
    // `create_new` so that we never write into someone else's file; a
    // leftover with our exact name (a dead process that had our pid) just
    // moves us on to the next counter value.
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let tmp = dir.join(temp_name(&name));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(Error::io(path, e)),
        }
    };
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    // Make the rename itself durable (Unix; on Windows a folder cannot be
    // opened as a file, and the rename is already flushed by the OS).
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Saves a model's parameters and buffers (its [`Module::state_dict`]);
/// integer buffers such as `num_batches_tracked` are written as `I64`, as
/// PyTorch stores them.
///
/// # Errors
/// As [`save_tensors`].
pub fn save<T: Element, M: Module<T> + ?Sized>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    let integers: Vec<String> = model
        .buffers()
        .into_iter()
        .filter(|(_, b)| b.integer)
        .map(|(n, _)| n)
        .collect();
    save_with_integers(&model.state_dict(), &integers, path.as_ref())
}

/// Reads every tensor of a safetensors file, in file order. Every tensor
/// must have the element type `T` (`F32` for `f32`, `F64` for `f64`).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Checkpoint`] if it is
/// truncated, corrupt, or holds a tensor of another dtype (named).
pub fn load_tensors<T: Element>(path: impl AsRef<Path>) -> Result<IndexMap<String, Tensor<T>>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_tensors(&bytes, path)
}

fn parse_tensors<T: Element>(bytes: &[u8], path: &Path) -> Result<IndexMap<String, Tensor<T>>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| ck(path, classify(e, bytes)))?;
    let mut named = st.tensors();
    // Keep the file's data order (stable, and what PyTorch wrote).
    named.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    let mut out = IndexMap::new();
    for (name, view) in named {
        if view.dtype() == Dtype::I64 {
            // An integer tensor (PyTorch's `num_batches_tracked`): counts,
            // exact in floating point up to 2⁵³.
            let v: Vec<T> = view
                .data()
                .chunks_exact(8)
                .map(|c| T::from_f64(i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64))
                .collect();
            out.insert(name, Tensor::from_vec(v, view.shape())?);
            continue;
        }
        if view.dtype() != dtype_of::<T>() {
            return Err(ck(
                path,
                CheckpointError::Dtype {
                    name,
                    expected: format!("{:?}", dtype_of::<T>()),
                    got: format!("{:?}", view.dtype()),
                },
            ));
        }
        let t = Tensor::from_vec(from_bytes::<T>(view.data()), view.shape())?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Turns the `safetensors` crate's error (whose `Display` is only the
/// variant's name) into words, re-reading the header where that helps to
/// name the tensor at fault.
fn classify(e: SafeTensorError, bytes: &[u8]) -> CheckpointError {
    let len = bytes.len();
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .unwrap_or(0);
    let header = usize::try_from(header_len)
        .ok()
        .and_then(|n| bytes.get(8..n.checked_add(8)?))
        .unwrap_or(&[]);
    let corrupt = |msg: String| CheckpointError::Corrupt { msg };
    // The tensors in data order with their names, as the parser checks them.
    let table = || -> Vec<(String, TensorInfo)> {
        let Some(meta) = std::str::from_utf8(header)
            .ok()
            .and_then(|h| serde_json::from_str::<Metadata>(h).ok())
        else {
            return Vec::new();
        };
        let mut t: Vec<(String, TensorInfo)> = meta
            .tensors()
            .into_iter()
            .map(|(n, i)| (n, i.clone()))
            .collect();
        t.sort_by(|a, b| (a.1.data_offsets, &a.0).cmp(&(b.1.data_offsets, &b.0)));
        t
    };
    let bytes_of = |i: &TensorInfo| -> Option<usize> {
        i.shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))?
            .checked_mul(i.dtype.size())
    };
    match e {
        SafeTensorError::HeaderTooSmall => CheckpointError::Truncated {
            what: format!("{len} bytes is too short for the 8-byte header length"),
        },
        SafeTensorError::HeaderTooLarge => corrupt(format!(
            "the first 8 bytes give a header length of {header_len} bytes, above the \
             format's limit of 100000000 (is this a safetensors file?)"
        )),
        SafeTensorError::InvalidHeaderLength => CheckpointError::Truncated {
            what: format!(
                "the header length ({header_len} bytes) points past the end of the \
                 {len}-byte file"
            ),
        },
        SafeTensorError::InvalidHeader => {
            let at = std::str::from_utf8(header)
                .err()
                .map(|e| e.valid_up_to())
                .unwrap_or(0);
            corrupt(format!(
                "the {}-byte header is not UTF-8 text (invalid byte {:#04x} at file offset {})",
                header.len(),
                header.get(at).copied().unwrap_or(0),
                8 + at
            ))
        }
        SafeTensorError::InvalidHeaderStart => {
            corrupt("the header does not start with '{' (it must be a JSON object)".into())
        }
        SafeTensorError::InvalidHeaderDeserialization => {
            let why = std::str::from_utf8(header)
                .map_err(|e| e.to_string())
                .and_then(|h| serde_json::from_str::<Metadata>(h).map_err(|e| e.to_string()))
                .err()
                .unwrap_or_else(|| "rejected by the safetensors parser".into());
            corrupt(format!("the header is not the expected JSON ({why})"))
        }
        SafeTensorError::JsonError(e) => {
            corrupt(format!("the header is not the expected JSON ({e})"))
        }
        SafeTensorError::InvalidOffset(name) => {
            let t = table();
            let k = t.iter().position(|(n, _)| *n == name);
            match k {
                Some(k) => {
                    let (s, e) = t[k].1.data_offsets;
                    let start = if k == 0 { 0 } else { t[k - 1].1.data_offsets.1 };
                    corrupt(if e < s {
                        format!("tensor {name:?} has data_offsets [{s}, {e}], which end before they start")
                    } else {
                        format!(
                            "tensor {name:?} has data_offsets [{s}, {e}], but must start at \
                             {start}, where the previous tensor ends"
                        )
                    })
                }
                None => corrupt(format!(
                    "tensor {name:?}'s data_offsets overlap another tensor or leave a gap"
                )),
            }
        }
        SafeTensorError::TensorInvalidInfo => {
            let bad = table().into_iter().find(|(_, i)| {
                let (s, e) = i.data_offsets;
                bytes_of(i).is_some_and(|b| e.checked_sub(s) != Some(b))
            });
            corrupt(match bad {
                Some((name, i)) => {
                    let (s, e) = i.data_offsets;
                    format!(
                        "tensor {name:?} ({:?}, shape {:?}) needs {} bytes, but its \
                         data_offsets [{s}, {e}] span {}",
                        i.dtype,
                        i.shape,
                        bytes_of(&i).unwrap_or(0),
                        e.saturating_sub(s)
                    )
                }
                None => "a tensor's data_offsets do not match its dtype and shape".into(),
            })
        }
        SafeTensorError::ValidationOverflow => corrupt(
            match table().into_iter().find(|(_, i)| bytes_of(i).is_none()) {
                Some((name, i)) => format!(
                    "tensor {name:?} has shape {:?}, too large to address (its size overflows)",
                    i.shape
                ),
                None => "a tensor's shape is too large to address (its size overflows)".into(),
            },
        ),
        SafeTensorError::MetadataIncompleteBuffer => {
            // The parser's check is `8 + header + data end == file length`,
            // which fails both for a cut file and for bytes after the data.
            let data_end = table().last().map_or(0, |(_, i)| i.data_offsets.1);
            let follow = len.saturating_sub(8 + header.len());
            let expected = 8 + header.len() + data_end;
            if follow < data_end {
                CheckpointError::Truncated {
                    what: format!(
                        "the header describes {data_end} bytes of tensor data but only \
                         {follow} follow it ({} bytes short)",
                        data_end - follow
                    ),
                }
            } else {
                corrupt(format!(
                    "{} extra bytes after the end of the tensor data (the header describes \
                     a {expected}-byte file; this one has {len} bytes): something was \
                     appended, or the header is wrong",
                    follow - data_end
                ))
            }
        }
        SafeTensorError::TensorNotFound(name) => {
            corrupt(format!("tensor {name:?} is named but not in the file"))
        }
        SafeTensorError::InvalidTensorView(dtype, shape, n) => corrupt(format!(
            "a tensor of dtype {dtype:?} and shape {shape:?} cannot be read from {n} bytes"
        )),
        SafeTensorError::IoError(e) => corrupt(e.to_string()),
    }
}

/// Loads a checkpoint into `model`. Everything is checked before anything
/// is assigned: the file must parse, hold exactly the model's parameter
/// names with the model's shapes and dtype. On any error the model is
/// unchanged.
///
/// # Errors
/// [`Error::Io`], or [`Error::Checkpoint`] naming the missing, unexpected,
/// mis-shaped or mis-typed tensor, or saying the file is truncated or
/// corrupt.
pub fn load<T: Element, M: Module<T> + ?Sized>(
    model: &mut M,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let state = load_tensors::<T>(path)?;
    check_state_dict(&expected_entries(model), &state).map_err(|k| ck(path, k))?;
    assign_state(model, &state)
}
