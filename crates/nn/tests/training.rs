//! Training end to end: reproducibility, the digits pipeline, stopping
//! rules, early stopping, parameter sharing and module plumbing.

use tapegrad_autograd::Tape;
use tapegrad_nn::data::{load_digits, Dataset, Target};
use tapegrad_nn::{
    train, Activation, Adam, Dropout, Linear, LrSchedule, Mlp, Module, Objective, Progress,
    Sequential, Sgd, StopReason, Trainer,
};
use tapegrad_tensor::Tensor;

fn digits() -> (Dataset<f32>, Dataset<f32>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/digits.csv.gz");
    let ds = load_digits::<f32>(path).unwrap();
    ds.train_test_split(0.2, 0).unwrap()
}

fn run_once(seed: u64) -> Vec<f64> {
    let (train_set, _) = digits();
    let train_set = train_set.subset(&(0..400).collect::<Vec<_>>()).unwrap();
    let mut model = Mlp::<f32>::builder(&[64, 32, 10])
        .dropout(0.1)
        .seed(seed)
        .build()
        .unwrap();
    let h = Trainer::new(Objective::CrossEntropy)
        .epochs(3)
        .batch_size(16)
        .seed(seed)
        .gaussian_noise(0.05)
        .progress(Progress::Never)
        .fit(
            &mut model,
            &mut Sgd::new(0.05).momentum(0.9),
            &train_set,
            None,
        )
        .unwrap();
    h.step_losses
}

#[test]
fn training_is_bit_for_bit_reproducible() {
    let a = run_once(11);
    let b = run_once(11);
    assert_eq!(a.len(), 75);
    // Exact equality of every step's loss, not approximate.
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_ne!(a, run_once(12));
}

#[test]
fn digits_pipeline_reaches_95_percent() {
    let (train_set, test_set) = digits();
    let mut model = Mlp::<f32>::builder(&[64, 128, 10]).seed(0).build().unwrap();
    let h = Trainer::new(Objective::CrossEntropy)
        .epochs(15)
        .batch_size(32)
        .progress(Progress::Never)
        .fit(&mut model, &mut Adam::new(0.003), &train_set, None)
        .unwrap();
    assert_eq!(h.stop, StopReason::Epochs);
    let e = train::evaluate(&mut model, &test_set, Objective::CrossEntropy).unwrap();
    assert!(
        e.accuracy.unwrap() >= 0.95,
        "test accuracy {:?}",
        e.accuracy
    );
    // The loss curve goes down.
    assert!(h.epochs.last().unwrap().train_loss < h.epochs[0].train_loss / 3.0);
}

#[test]
fn stops_at_target_loss_and_max_steps() {
    let x = Tensor::<f64>::from_vec(vec![0., 1., 2., 3.], &[4, 1]).unwrap();
    let y = x.mul_scalar(2.0).unwrap().add_scalar(1.0).unwrap();
    let data = Dataset::new(x, Target::Values(y)).unwrap();
    let mut model = Linear::<f64>::new(1, 1, 0);
    let h = Trainer::new(Objective::Mse)
        .epochs(10_000)
        .batch_size(4)
        .target_loss(1e-6)
        .progress(Progress::Never)
        .fit(&mut model, &mut Sgd::new(0.1), &data, None)
        .unwrap();
    assert_eq!(h.stop, StopReason::TargetLoss);
    assert!(h.last().unwrap().train_loss <= 1e-6);
    let mut model = Linear::<f64>::new(1, 1, 0);
    let h = Trainer::new(Objective::Mse)
        .epochs(100)
        .batch_size(1)
        .max_steps(10)
        .schedule(LrSchedule::warmup(3, LrSchedule::Constant))
        .progress(Progress::Never)
        .fit(&mut model, &mut Sgd::new(0.01), &data, None)
        .unwrap();
    assert_eq!((h.stop, h.step_losses.len()), (StopReason::MaxSteps, 10));
}

#[test]
fn early_stopping_restores_best_weights() {
    // A model that can only overfit: random labels, validation on others.
    let n = 64;
    let x = Tensor::<f64>::randn_seeded(&[n, 8], 1);
    let labels: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % 2).collect();
    let data = Dataset::new(x, Target::Classes(labels)).unwrap();
    let (tr, va) = data.train_test_split(0.5, 0).unwrap();
    let mut model = Mlp::<f64>::builder(&[8, 64, 2]).seed(0).build().unwrap();
    let h = Trainer::new(Objective::CrossEntropy)
        .epochs(300)
        .batch_size(8)
        .early_stopping(5)
        .progress(Progress::Never)
        .fit(&mut model, &mut Adam::new(0.01), &tr, Some(&va))
        .unwrap();
    assert_eq!(h.stop, StopReason::EarlyStopping);
    let best = h.best_epoch.unwrap();
    let best_val = h.epochs[best - 1].val_loss.unwrap();
    let now = train::evaluate(&mut model, &va, Objective::CrossEntropy).unwrap();
    assert!(
        (now.loss - best_val).abs() < 1e-12,
        "{} vs {best_val}",
        now.loss
    );
    let dir = std::env::temp_dir().join(format!("tapegrad-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    h.plot_loss_svg(dir.join("loss.svg"), "loss").unwrap();
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("validation"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shared_parameter_gets_summed_gradient() {
    // The same Linear applied twice: y = w·(w·x) = w²x, dy/dw = 2wx.
    let layer =
        Linear::<f64>::from_tensors(Tensor::from_vec(vec![3.0], &[1, 1]).unwrap(), None).unwrap();
    let tape = Tape::new();
    let x = tape.constant(Tensor::from_vec(vec![2.0], &[1, 1]).unwrap());
    let y = layer
        .forward(&tape, layer.forward(&tape, x).unwrap())
        .unwrap();
    let y = y.sum_all().unwrap();
    let g = tape.backward(y).unwrap();
    assert_eq!(layer.weight().grad(&g).unwrap().to_vec(), vec![12.0]);
    // Gradients from another tape are not mistaken for this one's.
    let other = Tape::<f64>::new();
    let z = other.leaf(Tensor::scalar(1.0));
    let g2 = other.backward(z).unwrap();
    assert!(layer.weight().grad(&g2).is_none());
}

#[test]
fn sequential_names_modes_and_send_sync() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let mut m = Sequential::<f32>::new()
        .add(Linear::new(4, 8, 0))
        .add(Activation::Relu)
        .add(Dropout::new(0.5, 0).unwrap())
        .add(Linear::new(8, 2, 1));
    assert_send_sync(&m);
    let names: Vec<String> = m.parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "3.weight", "3.bias"]);
    assert_eq!(m.parameters()[2].1.name(), "3.weight");
    assert_eq!(m.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
    m.eval();
    assert!(!m.is_training());
    let x = Tensor::ones(&[3, 4]);
    let a = train::predict(&mut m, &x).unwrap();
    let b = train::predict(&mut m, &x).unwrap();
    assert_eq!(a, b, "dropout must be off in eval mode");
    assert!(m.describe().contains("(2): Dropout(p=0.5)"));
    let mlp = Mlp::<f32>::builder(&[4, 8, 8, 3])
        .dropout(0.2)
        .build()
        .unwrap();
    let names: Vec<String> = mlp.parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"]
    );
}

#[test]
fn initialisers_are_seeded_and_scaled() {
    use rand::{rngs::StdRng, SeedableRng};
    use tapegrad_nn::Init;
    let draw = |init: Init, seed| {
        init.tensor::<f64>(&[200, 100], 100, 200, &mut StdRng::seed_from_u64(seed))
    };
    assert_eq!(
        draw(Init::kaiming_normal(), 1),
        draw(Init::kaiming_normal(), 1)
    );
    let std = |t: Tensor<f64>| (t.var(&[0, 1], false, 0).unwrap().item().unwrap()).sqrt();
    // He normal: √2/√100 ≈ 0.1414; Xavier normal: √(2/300) ≈ 0.0816.
    assert!((std(draw(Init::kaiming_normal(), 2)) - 0.1414).abs() < 0.005);
    assert!((std(draw(Init::XavierNormal { gain: 1.0 }, 3)) - 0.0816).abs() < 0.003);
    // Uniform bounds.
    let b = 1.0 / 10.0;
    assert!(draw(Init::TorchDefault, 4)
        .to_vec()
        .iter()
        .all(|v| v.abs() <= b));
    let b = (6.0f64 / 300.0).sqrt();
    assert!(draw(Init::xavier_uniform(), 5)
        .to_vec()
        .iter()
        .all(|v| v.abs() <= b));
    let b = 2.0f64.sqrt() * (3.0f64 / 100.0).sqrt();
    assert!(draw(Init::kaiming_uniform(), 6)
        .to_vec()
        .iter()
        .all(|v| v.abs() <= b));
}

#[test]
fn a_state_dict_saved_before_fit_keeps_its_values() {
    // The trainer updates parameters in place; a snapshot shares their
    // buffers, so the first step must copy instead of writing through it.
    let x = Tensor::<f64>::from_vec(vec![0., 1., 2., 3.], &[4, 1]).unwrap();
    let data = Dataset::new(x.clone(), Target::Values(x.mul_scalar(3.0).unwrap())).unwrap();
    let mut model = Linear::<f64>::new(1, 1, 0);
    let before = model.state_dict();
    let values: Vec<Vec<f64>> = before.values().map(|t| t.to_vec()).collect();
    Trainer::new(Objective::Mse)
        .epochs(5)
        .batch_size(2)
        .progress(Progress::Never)
        .fit(&mut model, &mut Adam::new(0.1), &data, None)
        .unwrap();
    let kept: Vec<Vec<f64>> = before.values().map(|t| t.to_vec()).collect();
    assert_eq!(kept, values);
    assert_ne!(model.state_dict(), before);
}
