//! Checkpoints: round trip, PyTorch interop (a fixture written by PyTorch),
//! and every failure mode, each leaving the model unchanged.

use std::path::{Path, PathBuf};

use tapegrad_autograd::Tape;
use tapegrad_nn::{checkpoint, Activation, CheckpointError, Error, Mlp, Module};
use tapegrad_tensor::{Element, Tensor};

fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapegrad-ckpt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mlp<T: Element>(seed: u64) -> Mlp<T> {
    Mlp::builder(&[4, 8, 3])
        .activation(Activation::Tanh)
        .seed(seed)
        .build()
        .unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn check_torch_fixture<T: Element>(stem: &str, tol: f64) {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("{stem}_expected.json"))).unwrap(),
    )
    .unwrap();
    let flat = |key: &str| -> Vec<T> {
        expected[key]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter())
            .map(|v| T::from_f64(v.as_f64().unwrap()))
            .collect()
    };
    let x = Tensor::from_vec(flat("x"), &[5, 4]).unwrap();
    let y = flat("y");
    let mut model = mlp::<T>(123);
    checkpoint::load(&mut model, fixture(&format!("{stem}.safetensors"))).unwrap();
    let tape = Tape::new();
    let out = model
        .forward(&tape, tape.constant(x))
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(out.len(), y.len());
    for (a, b) in out.iter().zip(&y) {
        assert!((a.to_f64() - b.to_f64()).abs() < tol, "{a} vs {b} ({stem})");
    }
}

#[test]
fn loads_pytorch_checkpoint_f32() {
    // Sequential(Linear(4,8), Tanh(), Linear(8,3)) written by PyTorch
    // (tests/fixtures/make_torch_fixture.py).
    check_torch_fixture::<f32>("torch_mlp", 1e-5);
}

#[test]
fn loads_pytorch_checkpoint_f64() {
    check_torch_fixture::<f64>("torch_mlp_f64", 1e-12);
}

#[test]
fn round_trip_is_exact_and_names_match_torch() {
    let dir = tmp_dir("rt");
    let path = dir.join("m.safetensors");
    let a = mlp::<f32>(1);
    checkpoint::save(&a, &path).unwrap();
    let names: Vec<String> = checkpoint::load_tensors::<f32>(&path)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["0.bias", "0.weight", "2.bias", "2.weight"]);
    let mut b = mlp::<f32>(2);
    assert_ne!(a.state_dict(), b.state_dict());
    checkpoint::load(&mut b, &path).unwrap();
    assert_eq!(a.state_dict(), b.state_dict());
    assert_eq!(b.state_dict()["0.weight"].shape(), &[8, 4]);
    // Saving again over an existing file replaces it atomically and leaves
    // no temporary file behind.
    checkpoint::save(&b, &path).unwrap();
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// Loads `bytes` into a fresh model and returns the error, checking the
/// model is unchanged.
fn load_err(bytes: &[u8], tag: &str) -> CheckpointError {
    let dir = tmp_dir(tag);
    let path = dir.join("bad.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let mut m = mlp::<f32>(5);
    let before = m.state_dict();
    let err = checkpoint::load(&mut m, &path).unwrap_err();
    assert_eq!(m.state_dict(), before, "a failed load changed the model");
    let msg = err.to_string();
    assert!(
        msg.contains("bad.safetensors"),
        "error does not name the file: {msg}"
    );
    std::fs::remove_dir_all(&dir).ok();
    match err {
        Error::Checkpoint { kind, .. } => kind,
        other => panic!("unexpected error {other}"),
    }
}

fn saved_bytes<T: Element>(state: &indexmap::IndexMap<String, Tensor<T>>, tag: &str) -> Vec<u8> {
    let dir = tmp_dir(tag);
    let path = dir.join("x.safetensors");
    checkpoint::save_tensors(state, &path).unwrap();
    let b = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    b
}

#[test]
fn missing_tensor() {
    let mut s = mlp::<f32>(1).state_dict();
    s.shift_remove("2.bias");
    let k = load_err(&saved_bytes(&s, "m1"), "m2");
    assert_eq!(
        k,
        CheckpointError::Missing {
            name: "2.bias".into()
        }
    );
    assert!(k.to_string().contains("\"2.bias\" is missing"));
}

#[test]
fn unexpected_tensor() {
    let mut s = mlp::<f32>(1).state_dict();
    s.insert("4.weight".into(), Tensor::zeros(&[2, 3]));
    let k = load_err(&saved_bytes(&s, "u1"), "u2");
    assert_eq!(
        k,
        CheckpointError::Unexpected {
            name: "4.weight".into()
        }
    );
}

#[test]
fn mis_shaped_tensor() {
    let mut s = mlp::<f32>(1).state_dict();
    s.insert("0.weight".into(), Tensor::zeros(&[4, 8])); // transposed
    let k = load_err(&saved_bytes(&s, "s1"), "s2");
    assert_eq!(
        k,
        CheckpointError::Shape {
            name: "0.weight".into(),
            expected: vec![8, 4],
            got: vec![4, 8]
        }
    );
}

#[test]
fn wrong_dtype() {
    let s = mlp::<f64>(1).state_dict();
    let k = load_err(&saved_bytes(&s, "d1"), "d2");
    assert!(
        matches!(&k, CheckpointError::Dtype { expected, got, .. } if expected == "F32" && got == "F64"),
        "{k:?}"
    );
}

#[test]
fn truncated_file() {
    let bytes = saved_bytes(&mlp::<f32>(1).state_dict(), "t1");
    // Cut in the data, in the header, and inside the length prefix.
    for cut in [bytes.len() - 10, 20, 5] {
        let k = load_err(&bytes[..cut], "t2");
        assert!(
            matches!(k, CheckpointError::Truncated { .. }),
            "cut {cut}: {k:?}"
        );
    }
}

#[test]
fn corrupt_header() {
    let mut bytes = saved_bytes(&mlp::<f32>(1).state_dict(), "c1");
    bytes[9] = b'#'; // inside the JSON header
    let k = load_err(&bytes, "c2");
    assert!(matches!(k, CheckpointError::Corrupt { .. }), "{k:?}");
    let k = load_err(b"this is not a checkpoint at all", "c3");
    assert!(
        matches!(
            k,
            CheckpointError::Corrupt { .. } | CheckpointError::Truncated { .. }
        ),
        "{k:?}"
    );
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let mut m = mlp::<f32>(1);
    let err = checkpoint::load(&mut m, "/nonexistent/dir/m.safetensors").unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/dir/m.safetensors"));
}

#[test]
fn failed_save_keeps_the_previous_checkpoint() {
    // Saving into a folder that does not exist fails without touching
    // anything; a good save then a failing one leaves the good file.
    let dir = tmp_dir("keep");
    let path = dir.join("m.safetensors");
    let a = mlp::<f32>(1);
    checkpoint::save(&a, &path).unwrap();
    let good = std::fs::read(&path).unwrap();
    assert!(checkpoint::save(&a, dir.join("no/such/dir/m.safetensors")).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), good);
    std::fs::remove_dir_all(&dir).ok();
}

// Issue 11, §3.1: two threads saving to one path shared a temporary name, so
// one rename failed ("No such file or directory") and the file could mix the
// two models.
#[test]
fn concurrent_saves_to_one_path_all_succeed_and_leave_one_whole_model() {
    let dir = tmp_dir("race");
    let path = dir.join("m.safetensors");
    let models: Vec<Mlp<f32>> = (0..4).map(|s| mlp::<f32>(10 + s)).collect();
    let states: Vec<_> = models.iter().map(|m| m.state_dict()).collect();
    checkpoint::save(&models[0], &path).unwrap();
    std::thread::scope(|s| {
        for m in &models {
            let path = &path;
            s.spawn(move || {
                for _ in 0..25 {
                    checkpoint::save(m, path).unwrap();
                }
            });
        }
        // A reader during the race always sees one whole model.
        let (path, states) = (&path, &states);
        s.spawn(move || {
            for _ in 0..50 {
                let got = checkpoint::load_tensors::<f32>(path).unwrap();
                assert!(states.contains(&got), "a load saw a mixed model");
            }
        });
    });
    let got = checkpoint::load_tensors::<f32>(&path).unwrap();
    assert!(states.contains(&got));
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
    std::fs::remove_dir_all(&dir).ok();
}

// Issue 11, §3.1: a crash mid-save must not leave a temporary file forever.
#[test]
fn next_save_removes_stale_temporary_files_of_ours_only() {
    let dir = tmp_dir("stale");
    let path = dir.join("m.safetensors");
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    let make = |name: &str, old: bool| {
        let f = std::fs::File::create(dir.join(name)).unwrap();
        if old {
            f.set_modified(two_hours_ago).unwrap();
        }
    };
    // Ours, left by crashed saves (this target and another one): removed.
    make(".m.safetensors.4242-7.tapegrad-tmp", true);
    make(".other.bin.1-0.tapegrad-tmp", true);
    // Ours but recent: possibly a save in progress elsewhere, kept.
    make(".m.safetensors.4243-0.tapegrad-tmp", false);
    // Not ours, however old: kept.
    make(".m.safetensors.tmp-4242", true);
    make(".m.safetensors.x-7.tapegrad-tmp", true);
    make("notes.tapegrad-tmp", true);
    checkpoint::save(&mlp::<f32>(1), &path).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".m.safetensors.4243-0.tapegrad-tmp",
            ".m.safetensors.tmp-4242",
            ".m.safetensors.x-7.tapegrad-tmp",
            "m.safetensors",
            "notes.tapegrad-tmp",
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A safetensors file by hand: the 8-byte little-endian header length, the
/// header bytes, then `data` bytes of zeros.
fn raw_file(header: &[u8], data: usize) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.resize(b.len() + data, 0);
    b
}

fn corrupt_msg(k: CheckpointError) -> String {
    let msg = k.to_string();
    assert!(
        matches!(k, CheckpointError::Corrupt { .. }),
        "not Corrupt: {k:?}"
    );
    assert!(
        !msg.contains("Invalid") && !msg.contains("Overflow"),
        "{msg}"
    );
    msg
}

// Issue 11, §3.2: the safetensors crate's errors were shown as raw enum
// names (`HeaderTooLarge`, `InvalidHeaderDeserialization`, ...).
#[test]
fn header_too_large_says_so_in_words() {
    let mut bytes = 200_000_000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let msg = corrupt_msg(load_err(&bytes, "e1"));
    assert_eq!(
        msg,
        "not a valid safetensors file: the first 8 bytes give a header length of \
         200000000 bytes, above the format's limit of 100000000 (is this a safetensors file?)"
    );
}

#[test]
fn header_not_utf8_names_the_byte() {
    let msg = corrupt_msg(load_err(&raw_file(b"{\"a\xff\":1}", 0), "e2"));
    assert_eq!(
        msg,
        "not a valid safetensors file: the 8-byte header is not UTF-8 text \
         (invalid byte 0xff at file offset 11)"
    );
}

#[test]
fn header_not_json_says_where() {
    let msg = corrupt_msg(load_err(&raw_file(b"{\"0.weight\": {\"dtype\"", 0), "e3"));
    assert!(
        msg.starts_with("not a valid safetensors file: the header is not the expected JSON ("),
        "{msg}"
    );
    assert!(msg.contains("line 1 column"), "{msg}");
    // Valid JSON, but not a safetensors header: the reason names the field.
    let h = br#"{"0.weight":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}"#;
    let msg = corrupt_msg(load_err(&raw_file(h, 4), "e4"));
    assert!(msg.contains("F17"), "{msg}");
}

#[test]
fn tensor_size_mismatch_names_the_tensor() {
    let h = br#"{"0.weight":{"dtype":"F32","shape":[8,4],"data_offsets":[0,100]}}"#;
    let msg = corrupt_msg(load_err(&raw_file(h, 100), "e5"));
    assert_eq!(
        msg,
        "not a valid safetensors file: tensor \"0.weight\" (F32, shape [8, 4]) needs \
         128 bytes, but its data_offsets [0, 100] span 100"
    );
}

#[test]
fn overflowing_shape_names_the_tensor() {
    let h = br#"{"0.bias":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,4]}}"#;
    let msg = corrupt_msg(load_err(&raw_file(h, 4), "e6"));
    assert_eq!(
        msg,
        "not a valid safetensors file: tensor \"0.bias\" has shape \
         [18446744073709551615, 2], too large to address (its size overflows)"
    );
}

#[test]
fn gap_between_tensors_names_the_tensor() {
    let h = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    let msg = corrupt_msg(load_err(&raw_file(h, 12), "e7"));
    assert_eq!(
        msg,
        "not a valid safetensors file: tensor \"b\" has data_offsets [8, 12], but must \
         start at 4, where the previous tensor ends"
    );
}

#[test]
fn extra_bytes_after_the_data_are_not_truncation() {
    let mut bytes = saved_bytes(&mlp::<f32>(1).state_dict(), "x1");
    let good = bytes.len();
    bytes.extend_from_slice(b"junk");
    let msg = corrupt_msg(load_err(&bytes, "x2"));
    assert!(
        msg.contains("4 extra bytes after the end of the tensor data")
            && msg.contains(&format!("{} bytes", good + 4))
            && !msg.contains("truncated"),
        "{msg}"
    );
    // And a file cut inside its data says it is truncated, with the counts.
    let k = load_err(&bytes[..good - 6], "x3");
    let msg = k.to_string();
    assert!(matches!(k, CheckpointError::Truncated { .. }), "{k:?}");
    assert!(msg.contains("6 bytes short"), "{msg}");
}
