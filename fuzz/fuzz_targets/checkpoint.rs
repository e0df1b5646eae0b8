//! Checkpoint loading from arbitrary bytes: `checkpoint::load_tensors` (as
//! `f32` and `f64`) and `checkpoint::load` into a small MLP.
//!
//! The loader only takes a path, so each input is written to a scratch file
//! first. Oracles: no panic; every tensor it returns is readable and has as
//! many elements as its shape says; a failed `load` leaves the model exactly
//! as it was (documented), and a successful one gives the model the file's
//! tensors.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tapegrad_nn::{checkpoint, Mlp, Module};
use tapegrad_tensor::{Element, Tensor};

#[path = "scratch.rs"]
mod scratch;

fn check_tensor<T: Element>(name: &str, t: &Tensor<T>) {
    let n = t.shape().iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    assert_eq!(
        n,
        Some(t.numel()),
        "tensor {name:?} of shape {:?}",
        t.shape()
    );
    assert_eq!(t.to_vec().len(), t.numel(), "tensor {name:?}");
}

/// Same shape and the same bits (NaNs from the file compare equal).
fn same<T: Element>(a: &Tensor<T>, b: &Tensor<T>) -> bool {
    let bits =
        |t: &Tensor<T>| -> Vec<u64> { t.to_vec().iter().map(|x| x.to_f64().to_bits()).collect() };
    a.shape() == b.shape() && bits(a) == bits(b)
}

fn load_all<T: Element>(path: &std::path::Path) {
    if let Ok(map) = checkpoint::load_tensors::<T>(path) {
        for (name, t) in &map {
            check_tensor(name, t);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let path = scratch::write("checkpoint.safetensors", data);
    load_all::<f32>(&path);
    load_all::<f64>(&path);

    // The names of a [2, 3, 1] MLP are 0.weight [3, 2], 0.bias [3],
    // 2.weight [1, 3], 2.bias [1] (the seeds hold such a file).
    let mut model = Mlp::<f32>::builder(&[2, 3, 1])
        .seed(0)
        .build()
        .expect("a fixed, valid MLP");
    let before = model.state_dict();
    match checkpoint::load(&mut model, &path) {
        Ok(()) => {
            let file = checkpoint::load_tensors::<f32>(&path).expect("load succeeded");
            let after = model.state_dict();
            assert_eq!(after.len(), before.len());
            for (name, t) in &after {
                let from_file = file.get(name).expect("load checked the names");
                assert!(
                    same(t, from_file),
                    "parameter {name:?} differs from the file"
                );
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert_eq!(
                model.state_dict(),
                before,
                "a failed load changed the model"
            );
        }
    }
});
