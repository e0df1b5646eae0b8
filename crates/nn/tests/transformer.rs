//! The transformer layers against PyTorch: a `Gpt` checkpoint written by
//! `torch.nn` modules (fixture made by `tests/torch/gpt_roundtrip.py make`)
//! loads with the same names, shapes and layouts and gives the same logits;
//! our own checkpoint is written for the script's `check` step. Plus the
//! errors that name the layer and the shapes.

use std::path::PathBuf;

use tapegrad_autograd::{AttentionMask, Tape};
use tapegrad_nn::{checkpoint, Embedding, GptConfig, Module, MultiheadAttention};
use tapegrad_tensor::Tensor;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn torch_gpt_checkpoint_loads_and_gives_the_same_logits() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("torch_gpt_expected.json")).unwrap(),
    )
    .unwrap();
    let c = &expected["config"];
    let get = |k: &str| c[k].as_u64().unwrap() as usize;
    let config = GptConfig::new(
        get("vocab"),
        get("context"),
        get("width"),
        get("heads"),
        get("layers"),
    );
    let mut model = config.build::<f64>(1).unwrap();

    // Same names, order and shapes as torch's state_dict.
    let torch_names: Vec<(String, Vec<usize>)> = expected["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let shape = e[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize);
            (e[0].as_str().unwrap().to_string(), shape.collect())
        })
        .collect();
    let ours: Vec<(String, Vec<usize>)> = model
        .parameters()
        .into_iter()
        .map(|(n, p)| (n, p.dims().to_vec()))
        .collect();
    assert_eq!(ours, torch_names);

    checkpoint::load(&mut model, fixtures().join("torch_gpt.safetensors")).unwrap();
    let ids: Vec<usize> = expected["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let batch = expected["batch"].as_u64().unwrap() as usize;
    let tape = Tape::new();
    let logits = model
        .forward_ids(&tape, &ids, batch)
        .unwrap()
        .value()
        .to_vec();
    let want: Vec<f64> = expected["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(logits.len(), want.len());
    let worst = logits
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-10, "largest difference from torch: {worst:e}");

    // The other direction: a fresh model of ours, for the script's `check`.
    let fresh = config.build::<f64>(7).unwrap();
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/gpt_roundtrip");
    std::fs::create_dir_all(&out).unwrap();
    checkpoint::save(&fresh, out.join("rust_gpt.safetensors")).unwrap();
    let tape = Tape::new();
    let logits = fresh
        .forward_ids(&tape, &ids, batch)
        .unwrap()
        .value()
        .to_vec();
    let json = serde_json::json!({ "ids": ids, "logits": logits });
    std::fs::write(out.join("rust_gpt_expected.json"), json.to_string()).unwrap();
    // And our own round trip gives identical values.
    let mut back = config.build::<f64>(8).unwrap();
    checkpoint::load(&mut back, out.join("rust_gpt.safetensors")).unwrap();
    let again = back
        .forward_ids(&Tape::new(), &ids, batch)
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(again, logits);
}

#[test]
fn errors_name_the_layer_and_the_shapes() {
    let model = GptConfig::new(11, 8, 16, 2, 1).build::<f32>(0).unwrap();
    let tape = Tape::new();
    let e = model
        .forward_ids(&tape, &[3, 11], 1)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "layer tok (Embedding(11, 16)): token id 11 is beyond the vocabulary of 11 (ids of shape [1, 2])"
    );
    let e = model
        .forward_ids(&tape, &[0; 9], 1)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Gpt: sequences of 9 positions but the positional table has 8 (input [1, 9])"
    );
    let ids = tape.constant(Tensor::from_vec(vec![1.0, 2.5], &[1, 2]).unwrap());
    assert!(model
        .forward(&tape, ids)
        .unwrap_err()
        .to_string()
        .contains("2.5 is not a token id"));

    let attn = MultiheadAttention::<f32>::new(8, 2, 0);
    let x = tape.constant(Tensor::zeros(&[2, 5, 8]));
    let mask = AttentionMask::Keep(Tensor::ones(&[4, 4]));
    let e = attn
        .forward_masked(&tape, x, Some(&mask))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("MultiheadAttention: MultiheadAttention(embed_dim=8, num_heads=2, causal=false): attention mask of shape [4, 4]")
            && e.contains("[2, 2, 5, 5]"),
        "{e}"
    );
    let e = attn
        .forward(&tape, tape.constant(Tensor::zeros(&[2, 5, 6])))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[2, 5, 6]") && e.contains("expected [batch, positions, 8]"),
        "{e}"
    );
    assert!(MultiheadAttention::<f32>::try_new(10, 3, 0).is_err());

    let emb = Embedding::<f32>::new(5, 3, 0);
    let e = emb.lookup(&tape, &[5], &[1]).unwrap_err().to_string();
    assert_eq!(
        e,
        "Embedding(5, 3): token id 5 is beyond the vocabulary of 5 (ids of shape [1])"
    );
}

#[test]
fn a_tiny_gpt_learns_a_repeating_sequence() {
    // 0 1 2 3 0 1 2 3 ...: after a few dozen AdamW steps the next token is
    // predicted almost surely (the loss falls from ln 4 ≈ 1.39 to < 0.1).
    use tapegrad_nn::{loss, Adam, Optimizer};
    let mut model = GptConfig::new(4, 8, 16, 2, 1).build::<f32>(3).unwrap();
    let mut opt = Adam::adamw(1e-2, 0.0);
    let seq: Vec<usize> = (0..9).map(|i| i % 4).collect();
    let mut last = f32::INFINITY;
    for _ in 0..60 {
        let tape = Tape::new();
        let logits = model.forward_ids(&tape, &seq[..8], 1).unwrap();
        let l = loss::cross_entropy(logits.reshape(&[8, 4]).unwrap(), &seq[1..]).unwrap();
        let grads = model.grads(&tape.backward(l).unwrap());
        opt.step(model.parameters_mut(), &grads).unwrap();
        last = l.item().unwrap();
    }
    assert!(last < 0.1, "loss after 60 steps: {last}");
}
