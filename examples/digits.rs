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
//! A seeded 80/20 split holds out 359 images for the final test accuracy.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tapegrad::nn::data::load_digits;
use tapegrad::nn::{checkpoint, train, Progress};
use tapegrad::prelude::*;

#[derive(Debug)]
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

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Run(Args),
    Help,
}

/// Parses the arguments after the program name. Every bad value is an
/// error message naming the flag and the value (printed by `main` with exit
/// status 2), never a panic further on: `--batch 0` used to divide by zero
/// in the schedule.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
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
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let flag = flag
            .into_string()
            .map_err(|f| format!("unknown option {f:?} (try --help)"))?;
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        // Paths may be any OS string; numbers must be text.
        let path = |v: OsString| -> Result<PathBuf, String> {
            if v.is_empty() {
                return Err(format!("{flag}: the path is empty"));
            }
            Ok(v.into())
        };
        let text = |v: OsString| -> Result<String, String> {
            v.into_string()
                .map_err(|v| format!("{flag}: {v:?} is not valid UTF-8"))
        };
        let count = |v: OsString| -> Result<usize, String> {
            let v = text(v)?;
            match v.trim().parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("{flag}: {v:?} is not a whole number of at least 1")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--data" => a.data = path(value()?)?,
            "--epochs" => a.epochs = count(value()?)?,
            "--batch" => a.batch = count(value()?)?,
            "--hidden" => a.hidden = count(value()?)?,
            "--lr" => {
                let v = text(value()?)?;
                a.lr = match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() && x > 0.0 => x,
                    _ => return Err(format!("--lr: {v:?} is not a positive number")),
                }
            }
            "--seed" => {
                let v = text(value()?)?;
                a.seed = v.trim().parse::<u64>().map_err(|_| {
                    format!("--seed: {v:?} is not a whole number from 0 to {}", u64::MAX)
                })?
            }
            "--out" => a.out = path(value()?)?,
            "--save" => a.save = Some(path(value()?)?),
            "--no-progress" => a.progress = false,
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    Ok(Command::Run(a))
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
            // `parse_args` keeps the batch at least 1; saturate rather than
            // overflow for an absurd epoch count.
            total_steps: args
                .epochs
                .saturating_mul(train_set.len().div_ceil(args.batch)),
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
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Help) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(OsString::from))
    }

    fn err(args: &[&str]) -> String {
        parse(args).expect_err("should be refused")
    }

    // Issue 11, §3.7: `--batch 0` panicked (a division by zero) instead of
    // saying what is wrong.
    #[test]
    fn every_bad_value_is_a_message_naming_flag_and_value() {
        for flag in ["--epochs", "--batch", "--hidden"] {
            for bad in ["0", "-3", "1.5", "ten", "", "99999999999999999999999"] {
                assert_eq!(
                    err(&[flag, bad]),
                    format!("{flag}: {bad:?} is not a whole number of at least 1")
                );
            }
        }
        for bad in ["0", "-0.1", "nan", "inf", "fast"] {
            assert_eq!(
                err(&["--lr", bad]),
                format!("--lr: {bad:?} is not a positive number")
            );
        }
        for bad in ["-1", "1.5", "x"] {
            assert!(err(&["--seed", bad]).starts_with(&format!("--seed: {bad:?} is not")));
        }
        for flag in ["--data", "--out", "--save"] {
            assert_eq!(err(&[flag, ""]), format!("{flag}: the path is empty"));
        }
        for flag in [
            "--data", "--epochs", "--batch", "--hidden", "--lr", "--seed", "--out", "--save",
        ] {
            assert_eq!(
                err(&["--no-progress", flag]),
                format!("{flag} needs a value")
            );
        }
        assert_eq!(
            err(&["--bach", "4"]),
            "unknown option \"--bach\" (try --help)"
        );
    }

    #[test]
    fn good_values_parse() {
        let Command::Run(a) = parse(&[
            "--epochs",
            "2",
            "--batch",
            "1",
            "--hidden",
            "8",
            "--lr",
            "1e-2",
            "--seed",
            "7",
            "--out",
            "plots",
            "--save",
            "m.safetensors",
            "--no-progress",
        ])
        .unwrap() else {
            panic!("expected a run")
        };
        assert_eq!(
            (a.epochs, a.batch, a.hidden, a.lr, a.seed),
            (2, 1, 8, 0.01, 7)
        );
        assert_eq!(a.out, PathBuf::from("plots"));
        assert_eq!(a.save, Some(PathBuf::from("m.safetensors")));
        assert!(!a.progress);
        assert!(matches!(parse(&["--help"]).unwrap(), Command::Help));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_arguments_are_messages_too() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'4', 0xff]);
        let e = parse_args([OsString::from("--batch"), bad.clone()]).unwrap_err();
        assert!(
            e.starts_with("--batch: ") && e.contains("not valid UTF-8"),
            "{e}"
        );
        assert!(parse_args([bad.clone()])
            .unwrap_err()
            .starts_with("unknown option"));
        // A path need not be UTF-8.
        assert!(parse_args([OsString::from("--data"), bad]).is_ok());
    }
}
