//! Handwritten digits with a small convolutional network: the same data
//! and held-out split as the `digits` example (seeded 80/20, 359 test
//! images), images of 1×8×8.
//!
//! ```text
//! cargo run --release --example cnn_digits
//! cargo run --release --example cnn_digits -- --epochs 30 --out plots --save cnn.safetensors
//! ```
//!
//! The checkpoint uses `torch.nn.Sequential`'s names for the same layers
//! (`1.weight`, `2.running_mean`, ...), so PyTorch loads it with
//! `load_state_dict(strict=True)`; `tests/torch/cnn_roundtrip.py` shows how.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tapegrad::nn::data::load_digits;
use tapegrad::nn::{checkpoint, train, Progress};
use tapegrad::prelude::*;

const HELP: &str = "\
Train a small CNN (conv 32, conv 32, pool, conv 64, pool, linear) on the UCI digits.

Options:
  --data PATH     digits CSV(.gz) [default: data/digits.csv.gz in the repository]
  --epochs N      passes over the training data [default: 30]
  --batch N       mini-batch size [default: 32]
  --lr X          Adam learning rate [default: 0.002]
  --seed N        seed for the split, weights and shuffling [default: 0]
  --out DIR       where to write cnn_digits_loss.svg [default: .]
  --save PATH     also write the trained model as safetensors (torch.nn names)
  --no-progress   do not draw the progress bar
  -h, --help      show this help";

struct Args {
    data: PathBuf,
    epochs: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    out: PathBuf,
    save: Option<PathBuf>,
    progress: bool,
}

/// The arguments, or a message naming the bad flag (`Ok(None)`: help).
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz")),
        epochs: 30,
        batch: 32,
        lr: 0.002,
        seed: 0,
        out: PathBuf::from("."),
        save: None,
        progress: true,
    };
    fn number<N: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<N, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.trim()
            .parse()
            .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
    }
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--data" => a.data = it.next().ok_or("--data needs a value")?.into(),
            "--out" => a.out = it.next().ok_or("--out needs a value")?.into(),
            "--save" => a.save = Some(it.next().ok_or("--save needs a value")?.into()),
            "--epochs" => a.epochs = number(&flag, it.next())?,
            "--batch" => a.batch = number(&flag, it.next())?,
            "--lr" => a.lr = number(&flag, it.next())?,
            "--seed" => a.seed = number(&flag, it.next())?,
            "--no-progress" => a.progress = false,
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    if a.epochs == 0 || a.batch == 0 || !(a.lr.is_finite() && a.lr > 0.0) {
        return Err("--epochs and --batch must be at least 1, --lr positive".into());
    }
    Ok(Some(a))
}

/// The network, as a `torch.nn.Sequential` of the same layers would be:
/// 8×8 → conv 3×3 (32) → conv 3×3 (32) → pool → 4×4 → conv 3×3 (64) →
/// pool → 2×2 → linear.
fn model(seed: u64) -> tapegrad::nn::Result<Sequential<f32>> {
    Ok(Sequential::new()
        .add(Unflatten::new(&[1, 8, 8])) // 0
        .add(Conv2d::new(1, 32, 3, seed)?.padding(1)) // 1
        .add(BatchNorm2d::new(32)) // 2
        .add(Activation::Relu) // 3
        .add(Conv2d::new(32, 32, 3, seed + 1)?.padding(1)) // 4
        .add(BatchNorm2d::new(32)) // 5
        .add(Activation::Relu) // 6
        .add(MaxPool2d::new(2)) // 7
        .add(Conv2d::new(32, 64, 3, seed + 2)?.padding(1)) // 8
        .add(BatchNorm2d::new(64)) // 9
        .add(Activation::Relu) // 10
        .add(MaxPool2d::new(2)) // 11
        .add(Flatten) // 12
        .add(Linear::new(64 * 2 * 2, 10, seed + 3))) // 13
}

fn run(args: Args) -> tapegrad::nn::Result<()> {
    let t0 = Instant::now();
    let data = load_digits::<f32>(&args.data)?;
    let (train_set, test_set) = data.train_test_split(0.2, args.seed)?;
    println!(
        "digits: {} training and {} test images of 1×8×8",
        train_set.len(),
        test_set.len()
    );
    let mut model = model(args.seed)?;
    println!("{}", model.describe());
    let mut opt = Adam::new(args.lr);
    let steps = args
        .epochs
        .saturating_mul(train_set.len().div_ceil(args.batch));
    let history = Trainer::new(Objective::CrossEntropy)
        .epochs(args.epochs)
        .batch_size(args.batch)
        .seed(args.seed)
        .schedule(LrSchedule::Cosine {
            total_steps: steps,
            min_lr: args.lr * 0.02,
        })
        .progress(if args.progress {
            Progress::Auto
        } else {
            Progress::Never
        })
        .fit(&mut model, &mut opt, &train_set, None)?;
    if let Some(last) = history.last() {
        println!(
            "trained {} epochs ({} steps) in {:.2} s: loss {:.4}, training accuracy {:.4}",
            last.epoch,
            last.steps,
            last.seconds,
            last.train_loss,
            last.train_accuracy.unwrap_or(f64::NAN)
        );
    }
    std::fs::create_dir_all(&args.out).map_err(|e| tapegrad::nn::Error::Io {
        path: args.out.clone(),
        source: e,
    })?;
    let plot = args.out.join("cnn_digits_loss.svg");
    history.plot_loss_svg(&plot, "cnn_digits: training loss per epoch")?;
    println!("loss curve: {}", plot.display());
    if let Some(path) = &args.save {
        checkpoint::save(&model, path)?;
        println!("checkpoint: {}", path.display());
    }
    let test = train::evaluate(&mut model, &test_set, Objective::CrossEntropy)?;
    println!("total time {:.2} s", t0.elapsed().as_secs_f64());
    println!("test accuracy: {:.4}", test.accuracy.unwrap_or(0.0));
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
