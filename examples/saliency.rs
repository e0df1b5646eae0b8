//! What did the model look at? Gradient attributions for the digits MLP and
//! feature importance for a tabular model.
//!
//! ```text
//! cargo run --release --example saliency -- --out pictures
//! cargo run --release --example digits -- --save digits.safetensors
//! cargo run --release --example saliency -- --load digits.safetensors --out pictures
//! ```
//!
//! Part 1 trains the digits MLP (the recipe of `examples/digits.rs`) or loads
//! a checkpoint written by `digits --save`. For one test image of each of a
//! few classes it explains the logit of the predicted class with saliency
//! `|∂f/∂x|`, input × gradient `x·∂f/∂x` and integrated gradients from an
//! all-zero (blank) image, checks completeness (the integrated gradients add
//! up to `f(x) − f(blank)`), and draws `saliency.svg` into `--out DIR`: each
//! image next to its three attribution maps.
//!
//! Part 2 trains a small regression MLP on a synthetic table whose target
//! depends strongly on columns 0 and 3, weakly on 5 and not at all on the
//! others, and ranks the columns by mean |integrated gradients|.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use tapegrad::autograd::explain::{input_x_gradient, integrated_gradients, saliency};
use tapegrad::nn::data::{load_digits, DIGITS_SIDE};
use tapegrad::nn::{checkpoint, explain, train, Error, Progress, Result};
use tapegrad::prelude::*;

const HELP: &str = "\
Explain the digits MLP's predictions (saliency, input × gradient, integrated
gradients) and rank the features of a tabular model.

Options:
  --data PATH      digits CSV(.gz) [default: data/digits.csv.gz in the repository]
  --load PATH      explain this checkpoint (written by `digits --save PATH`)
                   instead of training; the layer sizes are read from it
  --out DIR        where to write saliency.svg [default: .]
  --classes LIST   comma-separated classes; one test image of each is
                   explained [default: 0,2,3,4,7,9]
  --steps N        integrated-gradients intervals [default: 256]
  --epochs N       training epochs when not loading [default: 30]
  --hidden N       hidden width when not loading [default: 256]
  --seed N         seed for the split, weights and shuffling [default: 0]
  --no-progress    do not draw the progress bar
  -h, --help       show this help";

struct Args {
    data: PathBuf,
    load: Option<PathBuf>,
    out: PathBuf,
    classes: Vec<usize>,
    steps: usize,
    epochs: usize,
    hidden: usize,
    seed: u64,
    progress: bool,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a = Args {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz")),
        load: None,
        out: PathBuf::from("."),
        classes: vec![0, 2, 3, 4, 7, 9],
        steps: 256,
        epochs: 30,
        hidden: 256,
        seed: 0,
        progress: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let int = |v: &str| -> std::result::Result<usize, String> {
            v.trim()
                .parse()
                .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--data" => a.data = value()?.into(),
            "--load" => a.load = Some(value()?.into()),
            "--out" => a.out = value()?.into(),
            "--classes" => {
                a.classes = value()?
                    .split(',')
                    .map(int)
                    .collect::<std::result::Result<_, _>>()?;
                if a.classes.iter().any(|&c| c > 9) {
                    return Err("--classes: digits are 0..9".into());
                }
            }
            "--steps" => a.steps = int(&value()?)?.max(1),
            "--epochs" => a.epochs = int(&value()?)?,
            "--hidden" => a.hidden = int(&value()?)?,
            "--seed" => a.seed = int(&value()?)? as u64,
            "--no-progress" => a.progress = false,
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    Ok(a)
}

/// The digits MLP of `examples/digits.rs`: 64-H-10 with ReLU, Adam with a
/// cosine learning-rate schedule.
fn train_digits(train_set: &Dataset<f32>, args: &Args) -> Result<Mlp<f32>> {
    let (lr, batch) = (0.003, 32);
    let mut model = Mlp::<f32>::builder(&[64, args.hidden, 10])
        .activation(Activation::Relu)
        .seed(args.seed)
        .build()?;
    let history = Trainer::new(Objective::CrossEntropy)
        .epochs(args.epochs)
        .batch_size(batch)
        .seed(args.seed)
        .schedule(LrSchedule::Cosine {
            total_steps: args.epochs * train_set.len().div_ceil(batch),
            min_lr: lr * 0.05,
        })
        .progress(if args.progress {
            Progress::Auto
        } else {
            Progress::Never
        })
        .fit(&mut model, &mut Adam::new(lr), train_set, None)?;
    if let Some(last) = history.last() {
        println!(
            "trained 64-{}-10 ReLU MLP: {} epochs in {:.2} s, loss {:.4}",
            args.hidden, last.epoch, last.seconds, last.train_loss
        );
    }
    Ok(model)
}

/// A ReLU MLP shaped like the checkpoint (`0.weight` is `[H, 64]`, ...),
/// with its weights.
fn load_digits_model(path: &Path) -> Result<Mlp<f32>> {
    let state = checkpoint::load_tensors::<f32>(path)?;
    let mut sizes = Vec::new();
    for (name, t) in &state {
        if name.ends_with(".weight") && t.ndim() == 2 {
            if sizes.is_empty() {
                sizes.push(t.shape()[1]);
            }
            sizes.push(t.shape()[0]);
        }
    }
    let mut model = Mlp::<f32>::builder(&sizes)
        .activation(Activation::Relu)
        .build()?;
    checkpoint::load(&mut model, path)?;
    println!(
        "loaded {} ({} ReLU MLP)",
        path.display(),
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("-")
    );
    Ok(model)
}

/// One explained test image.
struct Explained {
    index: usize,
    label: usize,
    predicted: usize,
    image: Vec<f64>,
    saliency: Vec<f64>,
    input_x_grad: Vec<f64>,
    integrated: Vec<f64>,
}

fn to_f64(t: &Tensor<f32>) -> Vec<f64> {
    t.to_vec().into_iter().map(f64::from).collect()
}

fn explain_digits(args: &Args) -> Result<bool> {
    let data = load_digits::<f32>(&args.data)?;
    let (train_set, test_set) = data.train_test_split(0.2, args.seed)?;
    let mut model = match &args.load {
        Some(path) => load_digits_model(path)?,
        None => train_digits(&train_set, args)?,
    };
    model.eval();
    let test = train::evaluate(&mut model, &test_set, Objective::CrossEntropy)?;
    println!(
        "test accuracy {:.4} on {} images\n",
        test.accuracy.unwrap_or(0.0),
        test_set.len()
    );

    let labels = test_set.targets().classes().unwrap_or(&[]).to_vec();
    let blank = Tensor::<f32>::zeros(&[64]);
    // Integrated gradients through ReLUs converge like 1/steps (kinks on the
    // path), so the tolerance is relative 1% of f(x) − f(blank), absolute 1e-3.
    let (rtol, atol) = (1e-2, 1e-3);
    let mut all_complete = true;
    let mut rows = Vec::new();
    println!(
        "Explaining the predicted class's logit f; integrated gradients from a blank image, {} steps:",
        args.steps
    );
    for &class in &args.classes {
        let Some(index) = labels.iter().position(|&l| l == class) else {
            println!("  (no test image of class {class})");
            continue;
        };
        let x = test_set.features().select(0, index)?;
        let predicted = explain::predicted_class(&model, &x)?;
        let f = explain::output(&model, predicted);
        let sal = saliency(&f, &x)?;
        let ixg = input_x_gradient(&f, &x)?;
        let ig = integrated_gradients(&f, &x, &blank, args.steps)?;
        let total: f64 = to_f64(&ig.attributions).iter().sum();
        let ok = ig.is_complete(rtol, atol);
        all_complete &= ok;
        println!(
            "  test #{index:<3} true {class}, predicted {predicted}: f(x) = {:8.4}, f(blank) = {:8.4}, \
             Σ IG = {total:8.4}, gap {:+.2e} (relative {:.1e}) {}",
            ig.output,
            ig.baseline_output,
            ig.gap,
            ig.relative_gap(),
            if ok { "ok" } else { "OUTSIDE TOLERANCE" }
        );
        rows.push(Explained {
            index,
            label: class,
            predicted,
            image: to_f64(&x),
            saliency: to_f64(&sal),
            input_x_grad: to_f64(&ixg),
            integrated: to_f64(&ig.attributions),
        });
    }
    println!(
        "  completeness tolerance: |Σ IG − (f(x) − f(blank))| ≤ max({rtol}·|f(x) − f(blank)|, {atol}): {}",
        if all_complete {
            "holds for every image"
        } else {
            "FAILS for some image (try more --steps)"
        }
    );
    if !rows.is_empty() {
        std::fs::create_dir_all(&args.out).map_err(|e| Error::Io {
            path: args.out.clone(),
            source: e,
        })?;
        let path = args.out.join("saliency.svg");
        std::fs::write(&path, attribution_svg(&rows)).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        println!("picture: {}", path.display());
    }
    Ok(all_complete)
}

// ---------------------------------------------------------------- drawing

const CELL: f64 = 14.0;
const PANEL: f64 = CELL * DIGITS_SIDE as f64;
const GAP: f64 = 26.0;
const MARGIN: f64 = 20.0;
const ROW_H: f64 = PANEL + 62.0;

fn lerp_stops(stops: &[(f64, [f64; 3])], t: f64) -> String {
    let t = t.clamp(stops[0].0, stops[stops.len() - 1].0);
    let k = stops
        .windows(2)
        .position(|w| t <= w[1].0)
        .unwrap_or(stops.len() - 2);
    let ((t0, a), (t1, b)) = (stops[k], stops[k + 1]);
    let u = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
    let c: Vec<u8> = (0..3)
        .map(|i| (a[i] + u * (b[i] - a[i])).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Ink on paper: 0 white, 1 black.
fn grey(v: f64) -> String {
    lerp_stops(&[(0.0, [255.0; 3]), (1.0, [20.0; 3])], v)
}

/// Sequential white → dark red for non-negative values in [0, 1].
fn reds(v: f64) -> String {
    lerp_stops(
        &[
            (0.0, [255.0, 255.0, 255.0]),
            (0.35, [252.0, 146.0, 114.0]),
            (0.7, [203.0, 24.0, 29.0]),
            (1.0, [103.0, 0.0, 13.0]),
        ],
        v,
    )
}

/// Diverging blue (negative) → white (0) → red (positive), for [-1, 1]
/// (ColorBrewer RdBu, reversed).
fn diverging(v: f64) -> String {
    lerp_stops(
        &[
            (-1.0, [5.0, 48.0, 97.0]),
            (-0.5, [67.0, 147.0, 195.0]),
            (0.0, [247.0, 247.0, 247.0]),
            (0.5, [214.0, 96.0, 77.0]),
            (1.0, [103.0, 0.0, 31.0]),
        ],
        v,
    )
}

fn panel(svg: &mut String, x0: f64, y0: f64, values: &[f64], color: impl Fn(f64) -> String) {
    // The colour of 0 as background, then one unit square per other pixel,
    // scaled up by the group's transform.
    let background = color(0.0);
    let _ = writeln!(
        svg,
        r#"<rect x="{x0:.1}" y="{y0:.1}" width="{PANEL}" height="{PANEL}" fill="{background}"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<g transform="translate({x0:.1} {y0:.1}) scale({CELL})" shape-rendering="crispEdges">"#
    );
    for (i, v) in values.iter().enumerate() {
        let fill = color(*v);
        if fill != background {
            let (r, c) = (i / DIGITS_SIDE, i % DIGITS_SIDE);
            let _ = writeln!(svg, r#"<path d="M{c} {r}h1v1h-1z" fill="{fill}"/>"#);
        }
    }
    let _ = writeln!(svg, "</g>");
    let _ = writeln!(
        svg,
        r##"<rect x="{x0:.1}" y="{y0:.1}" width="{PANEL}" height="{PANEL}" fill="none" stroke="#888" stroke-width="1"/>"##
    );
}

fn text(svg: &mut String, x: f64, y: f64, size: f64, anchor: &str, s: &str) {
    let _ = writeln!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}">{s}</text>"#
    );
}

fn colour_bar(
    svg: &mut String,
    x0: f64,
    y0: f64,
    w: f64,
    labels: [&str; 3],
    f: impl Fn(f64) -> String,
) {
    let n = 40;
    for k in 0..n {
        let t = (k as f64 + 0.5) / n as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{:.2}" y="{y0:.1}" width="{:.2}" height="10" fill="{}"/>"#,
            x0 + k as f64 * w / n as f64,
            w / n as f64 + 0.3,
            f(t)
        );
    }
    text(svg, x0, y0 + 22.0, 10.0, "start", labels[0]);
    text(svg, x0 + w / 2.0, y0 + 22.0, 10.0, "middle", labels[1]);
    text(svg, x0 + w, y0 + 22.0, 10.0, "end", labels[2]);
}

/// The picture: one row per image, the input then its three attribution
/// maps, with captions and colour keys.
fn attribution_svg(rows: &[Explained]) -> String {
    let width = 2.0 * MARGIN + 4.0 * PANEL + 3.0 * GAP;
    let top = 58.0;
    let height = top + rows.len() as f64 * ROW_H + 50.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width}" height="{height}" fill="white"/>"#
    );
    text(
        &mut svg,
        width / 2.0,
        22.0,
        15.0,
        "middle",
        "Which pixels drove the prediction? (f = logit of the predicted class)",
    );
    text(
        &mut svg,
        width / 2.0,
        40.0,
        11.0,
        "middle",
        "red: raises f, blue: lowers it; each row's signed maps share one scale",
    );
    let titles = [
        "input image",
        "saliency |∂f/∂x|",
        "input × gradient",
        "integrated gradients",
    ];
    for (k, row) in rows.iter().enumerate() {
        let y0 = top + k as f64 * ROW_H;
        let status = if row.label == row.predicted {
            String::new()
        } else {
            " (wrong)".to_string()
        };
        text(
            &mut svg,
            MARGIN,
            y0 + 12.0,
            12.0,
            "start",
            &format!(
                "test image #{}: true label {}, predicted {}{status}",
                row.index, row.label, row.predicted
            ),
        );
        let py = y0 + 20.0;
        let max_sal = row.saliency.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
        let max_signed = row
            .input_x_grad
            .iter()
            .chain(&row.integrated)
            .fold(1e-12f64, |m, v| m.max(v.abs()));
        let captions = [
            "pixels 0…1".to_string(),
            format!("max {max_sal:.3}"),
            format!(
                "Σ {:+.3}, scale ±{max_signed:.3}",
                row.input_x_grad.iter().sum::<f64>()
            ),
            format!(
                "Σ {:+.3}, scale ±{max_signed:.3}",
                row.integrated.iter().sum::<f64>()
            ),
        ];
        for (j, title) in titles.iter().enumerate() {
            let px = MARGIN + j as f64 * (PANEL + GAP);
            match j {
                0 => panel(&mut svg, px, py, &row.image, grey),
                1 => panel(&mut svg, px, py, &row.saliency, |v| reds(v / max_sal)),
                2 => panel(&mut svg, px, py, &row.input_x_grad, |v| {
                    diverging(v / max_signed)
                }),
                _ => panel(&mut svg, px, py, &row.integrated, |v| {
                    diverging(v / max_signed)
                }),
            }
            text(
                &mut svg,
                px + PANEL / 2.0,
                py + PANEL + 14.0,
                11.0,
                "middle",
                title,
            );
            text(
                &mut svg,
                px + PANEL / 2.0,
                py + PANEL + 27.0,
                9.5,
                "middle",
                &captions[j],
            );
        }
    }
    let ky = top + rows.len() as f64 * ROW_H + 4.0;
    colour_bar(&mut svg, MARGIN, ky, PANEL, ["0", "", "1"], grey);
    colour_bar(
        &mut svg,
        MARGIN + PANEL + GAP,
        ky,
        PANEL,
        ["0", "", "max"],
        reds,
    );
    let x2 = MARGIN + 2.0 * (PANEL + GAP);
    colour_bar(
        &mut svg,
        x2,
        ky,
        2.0 * PANEL + GAP,
        ["−scale (lowers f)", "0", "+scale (raises f)"],
        |t| diverging(2.0 * t - 1.0),
    );
    svg.push_str("</svg>\n");
    svg
}

// ---------------------------------------------------------------- tabular

/// The synthetic table: 8 standard-normal columns; the target is
/// `2·x₀ − 1.5·x₃ + 0.5·x₀·x₃ + 0.3·x₅ + noise` (so 0 and 3 matter most,
/// 5 a little, the rest not at all).
fn synthetic_table(rows: usize, seed: u64) -> Result<Dataset<f64>> {
    let d = 8;
    let x = Tensor::<f64>::randn_seeded(&[rows, d], seed);
    let noise = Tensor::<f64>::randn_seeded(&[rows], seed + 1).to_vec();
    let xs = x.to_vec();
    let y: Vec<f64> = (0..rows)
        .map(|i| {
            let r = &xs[i * d..(i + 1) * d];
            2.0 * r[0] - 1.5 * r[3] + 0.5 * r[0] * r[3] + 0.3 * r[5] + 0.05 * noise[i]
        })
        .collect();
    Dataset::new(x, Target::Values(Tensor::from_vec(y, &[rows, 1])?))
}

fn rank_tabular(args: &Args) -> Result<bool> {
    println!("\n== Which columns of a table matter?\n");
    println!("target = 2·x0 − 1.5·x3 + 0.5·x0·x3 + 0.3·x5 + noise; x1, x2, x4, x6, x7 are unused");
    let data = synthetic_table(600, args.seed + 100)?;
    let (train_set, test_set) = data.train_test_split(0.2, args.seed)?;
    let mut model = Mlp::<f64>::builder(&[8, 32, 1])
        .activation(Activation::Tanh)
        .seed(args.seed)
        .build()?;
    let history = Trainer::new(Objective::Mse)
        .epochs(100)
        .batch_size(32)
        .seed(args.seed)
        .progress(Progress::Never)
        .fit(&mut model, &mut Adam::new(0.01), &train_set, None)?;
    let test = train::evaluate(&mut model, &test_set, Objective::Mse)?;
    println!(
        "8-32-1 tanh MLP: {} epochs in {:.2} s, test MSE {:.4}",
        history.last().map_or(0, |e| e.epoch),
        history.last().map_or(0.0, |e| e.seconds),
        test.loss
    );
    let f = explain::output(&model, 0);
    // The columns are standardised already, so the all-zero row is the mean.
    let imp = explain::feature_importance(&f, test_set.features(), &Tensor::zeros(&[8]), 64)?;
    println!(
        "mean |integrated gradients| over {} test rows (baseline: the mean row; worst relative completeness gap {:.1e}):",
        imp.rows, imp.max_relative_gap
    );
    let ranking = imp.ranking();
    let top = ranking[0].1.max(1e-12);
    for (rank, (i, v)) in ranking.iter().enumerate() {
        let bar = "█".repeat((v / top * 40.0).round() as usize);
        println!("  {:>2}. x{i}  {v:7.4}  {bar}", rank + 1);
    }
    let order: Vec<usize> = ranking.iter().map(|&(i, _)| i).collect();
    let ok = (order[..2] == [0, 3] || order[..2] == [3, 0]) && order[2] == 5;
    println!(
        "check: x0 and x3 first, x5 third: {}",
        if ok { "yes" } else { "NO" }
    );
    Ok(ok)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let t0 = Instant::now();
    let result = explain_digits(&args).and_then(|a| Ok(a & rank_tabular(&args)?));
    match result {
        Ok(ok) => {
            println!("\ntotal time {:.2} s", t0.elapsed().as_secs_f64());
            if ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("some check failed (see above)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
