//! Handwritten digit recognition with an MLP: the README's main command.
//!
//! ```text
//! cargo run --release --example digits
//! cargo run --release --example digits -- --epochs 40 --out plots --save digits.safetensors
//! ```
//!
//! Data: Optical Recognition of Handwritten Digits, UCI Machine Learning
//! Repository (E. Alpaydin and C. Kaynak, 1998), CC BY 4.0; see
//! `data/README.md`. 1,797 8×8 images, pixels 0..16 (divided by 16 here).
//! A seeded 80/20 split holds out 360 images for the final test accuracy.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tapegrad::nn::data::load_digits;
use tapegrad::nn::{checkpoint, train, Progress};
use tapegrad::prelude::*;

struct Args {
    data: PathBuf,
    epochs: usize,
    batch: usize,
    hidden: usize,
    lr: f64,
    seed: u64,
    out: PathBuf,
    save: Option<PathBuf>,
    progress: bool,
}

const HELP: &str = "\
Train a 64-H-10 ReLU MLP on the UCI handwritten digits and report test accuracy.

Options:
  --data PATH     CSV(.gz) with 64 pixel columns and a label column
                  [default: data/digits.csv.gz in the repository]
  --epochs N      passes over the training data [default: 30]
  --batch N       mini-batch size [default: 32]
  --hidden N      hidden layer width H [default: 256]
  --lr X          Adam learning rate [default: 0.003]
  --seed N        seed for the split, weights and shuffling [default: 0]
  --out DIR       where to write digits_loss.svg [default: .]
  --save PATH     also write the trained weights as safetensors
                  (names as torch.nn.Sequential: 0.weight, 0.bias, 2.weight, 2.bias)
  --no-progress   do not draw the progress bar
  -h, --help      show this help";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz")),
        epochs: 30,
        batch: 32,
        hidden: 256,
        lr: 0.003,
        seed: 0,
        out: PathBuf::from("."),
        save: None,
        progress: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| -> Result<f64, String> {
            v.parse()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--data" => a.data = value()?.into(),
            "--epochs" => a.epochs = num(value()?)? as usize,
            "--batch" => a.batch = num(value()?)? as usize,
            "--hidden" => a.hidden = num(value()?)? as usize,
            "--lr" => a.lr = num(value()?)?,
            "--seed" => a.seed = num(value()?)? as u64,
            "--out" => a.out = value()?.into(),
            "--save" => a.save = Some(value()?.into()),
            "--no-progress" => a.progress = false,
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    Ok(a)
}

fn run(args: Args) -> tapegrad::nn::Result<()> {
    let t0 = Instant::now();
    let data = load_digits::<f32>(&args.data)?;
    let (train_set, test_set) = data.train_test_split(0.2, args.seed)?;
    println!(
        "digits: {} training and {} test images, {} pixels, {} classes",
        train_set.len(),
        test_set.len(),
        data.num_features(),
        data.num_classes().unwrap_or(0)
    );
    let mut model = Mlp::<f32>::builder(&[64, args.hidden, 10])
        .activation(Activation::Relu)
        .seed(args.seed)
        .build()?;
    let mut opt = Adam::new(args.lr);
    let history = Trainer::new(Objective::CrossEntropy)
        .epochs(args.epochs)
        .batch_size(args.batch)
        .seed(args.seed)
        .schedule(LrSchedule::Cosine {
            total_steps: args.epochs * train_set.len().div_ceil(args.batch),
            min_lr: args.lr * 0.05,
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
    let plot = args.out.join("digits_loss.svg");
    history.plot_loss_svg(&plot, "digits: training loss per epoch")?;
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
    let args = match parse_args() {
        Ok(a) => a,
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
