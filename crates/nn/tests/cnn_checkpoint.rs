//! A convolutional model's checkpoint has `torch.nn.Sequential`'s layout:
//! the names, shapes and dtypes PyTorch's `state_dict` has for the same
//! layers (buffers included, `num_batches_tracked` as `I64`), and it loads
//! back to identical outputs. The check against PyTorch itself is
//! `tests/torch/cnn_roundtrip.py` at the repository root (needs torch).

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use tapegrad_autograd::Tape;
use tapegrad_nn::{
    checkpoint, loss, Activation, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Flatten, Linear,
    MaxPool2d, Module, Optimizer, Sequential, Sgd,
};
use tapegrad_tensor::Tensor;

fn cnn(seed: u64) -> Sequential<f32> {
    Sequential::new()
        .add(Conv2d::new(2, 4, 3, seed).unwrap().padding(1))
        .add(BatchNorm2d::new(4))
        .add(Activation::Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten)
        .add(Linear::new(4 * 3 * 3, 5, seed + 1))
        .add(BatchNorm1d::new(5))
}

#[test]
fn cnn_checkpoint_has_torch_layout_and_round_trips() {
    let mut a = cnn(1);
    // Two training steps, so weights and running statistics have moved.
    let mut opt = Sgd::new(0.1);
    for s in 0..2 {
        let tape = Tape::new();
        let x = Tensor::randn_seeded(&[6, 2, 6, 6], s);
        let l = loss::mse(
            a.forward(&tape, tape.constant(x)).unwrap(),
            tape.constant(Tensor::zeros(&[6, 5])),
        )
        .unwrap();
        let g = a.grads(&tape.backward(l).unwrap());
        opt.step(a.parameters_mut(), &g).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("tapegrad-cnn-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cnn.safetensors");
    checkpoint::save(&a, &path).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut got: Vec<(String, Dtype, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec()))
        .collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    let f = Dtype::F32;
    let want = vec![
        ("0.bias", f, vec![4]),
        ("0.weight", f, vec![4, 2, 3, 3]),
        ("1.bias", f, vec![4]),
        ("1.num_batches_tracked", Dtype::I64, vec![]),
        ("1.running_mean", f, vec![4]),
        ("1.running_var", f, vec![4]),
        ("1.weight", f, vec![4]),
        ("5.bias", f, vec![5]),
        ("5.weight", f, vec![5, 36]),
        ("6.bias", f, vec![5]),
        ("6.num_batches_tracked", Dtype::I64, vec![]),
        ("6.running_mean", f, vec![5]),
        ("6.running_var", f, vec![5]),
        ("6.weight", f, vec![5]),
    ];
    let want: Vec<(String, Dtype, Vec<usize>)> = want
        .into_iter()
        .map(|(n, d, s)| (n.to_string(), d, s))
        .collect();
    assert_eq!(got, want);
    let count = st.tensor("1.num_batches_tracked").unwrap();
    assert_eq!(count.data(), 2i64.to_le_bytes());

    // Load into a differently initialised model: same state, same outputs
    // in evaluation mode (which reads the running statistics).
    let mut b = cnn(9);
    checkpoint::load(&mut b, &path).unwrap();
    assert_eq!(a.state_dict(), b.state_dict());
    a.eval();
    b.eval();
    let x = Tensor::randn_seeded(&[3, 2, 6, 6], 5);
    let tape = Tape::new();
    let ya = a
        .forward(&tape, tape.constant(x.clone()))
        .unwrap()
        .value()
        .to_vec();
    let yb = b.forward(&tape, tape.constant(x)).unwrap().value().to_vec();
    assert_eq!(ya, yb);
    std::fs::remove_dir_all(&dir).ok();

    // A wrong buffer shape is refused before anything changes.
    let mut state = a.state_dict();
    state.insert("1.running_mean".into(), Tensor::zeros(&[3]));
    let before = b.state_dict();
    assert!(b
        .load_state_dict(&state)
        .unwrap_err()
        .to_string()
        .contains("running_mean"));
    assert_eq!(b.state_dict(), before);
}

#[test]
fn conv1d_names_and_shapes() {
    let m = Sequential::<f32>::new().add(Conv1d::new(3, 4, 5, 0).unwrap());
    let names: Vec<(String, Vec<usize>)> = m
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, t.dims().to_vec()))
        .collect();
    assert_eq!(
        names,
        [
            ("0.weight".to_string(), vec![4, 3, 5]),
            ("0.bias".to_string(), vec![4])
        ]
    );
}
