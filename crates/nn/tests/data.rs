//! CSV loading (errors name file, line and column), splits, batches,
//! standardisation and augmentation.

use rand::{rngs::StdRng, SeedableRng};
use tapegrad_nn::data::{
    gaussian_noise, load_csv, mixup, parse_csv, CsvOptions, Dataset, Standardizer, Target,
    TargetColumn,
};
use tapegrad_nn::Error;
use tapegrad_tensor::Tensor;

fn csv_err(text: &str, opts: &CsvOptions) -> (usize, usize, Option<String>, String) {
    match parse_csv::<f32>(text, "table.csv", opts).unwrap_err() {
        e @ Error::Csv { .. } => {
            let msg = e.to_string();
            let Error::Csv {
                line,
                column,
                column_name,
                ..
            } = e
            else {
                unreachable!()
            };
            (line, column, column_name, msg)
        }
        other => panic!("not a CSV error: {other}"),
    }
}

#[test]
fn header_detection_target_by_name_and_index() {
    let text = "a,label,b\n1,0,2\n3,1,4\n";
    let ds = parse_csv::<f64>(
        text,
        "t.csv",
        &CsvOptions::classification().target(TargetColumn::Name("label".into())),
    )
    .unwrap();
    assert_eq!(ds.features().to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(ds.targets(), &Target::Classes(vec![0, 1]));
    assert_eq!(ds.feature_names(), ["a", "b"]);
    let ds = parse_csv::<f64>(
        "1,2,3\n4,5,6\n",
        "t.csv",
        &CsvOptions::regression().target(TargetColumn::Index(0)),
    )
    .unwrap();
    assert_eq!(ds.features().to_vec(), vec![2.0, 3.0, 5.0, 6.0]);
    assert_eq!(
        ds.targets(),
        &Target::Values(Tensor::from_vec(vec![1.0, 4.0], &[2, 1]).unwrap())
    );
}

#[test]
fn malformed_value_names_file_line_and_column() {
    let text = "x1,x2,y\n1.0,2.0,0\n3.0,abc,1\n";
    let (line, col, name, msg) = csv_err(text, &CsvOptions::classification());
    assert_eq!((line, col, name.as_deref()), (3, 2, Some("x2")));
    assert_eq!(
        msg,
        "table.csv:3:2: (column \"x2\") \"abc\" is not a number"
    );
}

#[test]
fn ragged_row_and_bad_label_are_errors() {
    let (line, _, _, msg) = csv_err("1,2,0\n3,1\n", &CsvOptions::classification());
    assert_eq!(line, 2);
    assert!(
        msg.contains("row has 2 fields but the first row has 3"),
        "{msg}"
    );
    let (line, col, _, msg) = csv_err("1,2,0\n3,4,1.5\n", &CsvOptions::classification());
    assert_eq!((line, col), (2, 3));
    assert!(msg.contains("not a non-negative integer"), "{msg}");
    let (_, _, _, msg) = csv_err(
        "a,b\n1,2\n",
        &CsvOptions::classification().target(TargetColumn::Name("y".into())),
    );
    assert!(msg.contains("no column named \"y\""), "{msg}");
}

#[test]
fn blank_lines_are_skipped_and_line_numbers_stay_true() {
    let (line, _, _, _) = csv_err("1,2,0\n\n\n1,x,0\n", &CsvOptions::classification());
    assert_eq!(line, 4);
}

#[test]
fn loads_gzip_digits() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/digits.csv.gz");
    let ds = load_csv::<f32>(path, &CsvOptions::classification().header(false)).unwrap();
    assert_eq!(
        (ds.len(), ds.num_features(), ds.num_classes()),
        (1797, 64, Some(10))
    );
    let missing = load_csv::<f32>("/no/such/file.csv", &CsvOptions::classification());
    assert!(missing
        .unwrap_err()
        .to_string()
        .starts_with("/no/such/file.csv"));
}

fn toy(n: usize) -> Dataset<f64> {
    let x = Tensor::from_vec((0..n * 2).map(|v| v as f64).collect(), &[n, 2]).unwrap();
    Dataset::new(x, Target::Classes((0..n).map(|i| i % 3).collect())).unwrap()
}

#[test]
fn split_is_seeded_and_disjoint() {
    let ds = toy(100);
    let (a, b, c) = ds.split(0.1, 0.2, 3).unwrap();
    assert_eq!((a.len(), b.len(), c.len()), (70, 10, 20));
    let (a2, _, _) = ds.split(0.1, 0.2, 3).unwrap();
    assert_eq!(a.features(), a2.features());
    let mut firsts: Vec<f64> = [&a, &b, &c]
        .iter()
        .flat_map(|d| d.features().to_vec().into_iter().step_by(2))
        .collect();
    firsts.sort_by(f64::total_cmp);
    firsts.dedup();
    assert_eq!(firsts.len(), 100);
    assert!(ds.split(0.6, 0.6, 0).is_err());
}

#[test]
fn batches_cover_every_row_once() {
    let ds = toy(10);
    let mut rng = StdRng::seed_from_u64(1);
    let batches: Vec<_> = ds.batches(4, Some(&mut rng)).collect();
    assert_eq!(
        batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
        [4, 4, 2]
    );
    let mut rows: Vec<f64> = batches
        .iter()
        .flat_map(|b| b.x.to_vec().into_iter().step_by(2))
        .collect();
    assert_ne!(rows, (0..10).map(|i| (2 * i) as f64).collect::<Vec<_>>());
    rows.sort_by(f64::total_cmp);
    assert_eq!(rows, (0..10).map(|i| (2 * i) as f64).collect::<Vec<_>>());
}

#[test]
fn standardizer_fits_on_train_only() {
    let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 10.0, 5.0, 10.0], &[3, 2]).unwrap();
    let s = Standardizer::fit(&x).unwrap();
    assert_eq!(s.mean().to_vec(), vec![3.0, 10.0]);
    // Constant column: std 1, so it becomes 0 rather than NaN.
    let z = s.transform(&x).unwrap().to_vec();
    let sd = (8.0f64 / 3.0).sqrt();
    assert_eq!(z, vec![-2.0 / sd, 0.0, 0.0, 0.0, 2.0 / sd, 0.0]);
}

#[test]
fn noise_and_mixup() {
    let ds = toy(8);
    let mut rng = StdRng::seed_from_u64(2);
    let x = gaussian_noise(ds.features(), 0.5, &mut rng).unwrap();
    assert_eq!(x.shape(), &[8, 2]);
    assert_ne!(&x, ds.features());
    let batch = ds.batches(8, None).next().unwrap();
    let m = mixup(&batch, 0.4, 3, &mut rng).unwrap();
    let Target::Values(y) = &m.y else {
        panic!("mixup gives soft labels")
    };
    assert_eq!(y.shape(), &[8, 3]);
    // Soft labels are still distributions.
    for row in y.to_vec().chunks(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}

// Issue 11, §3.3: a negative or NaN noise level, or a mixup alpha that is
// not positive, must be an error naming the value.
#[test]
fn bad_noise_std_and_mixup_alpha_are_errors_naming_them() {
    let ds = toy(4);
    let mut rng = StdRng::seed_from_u64(0);
    for (std, shown) in [(-0.1, "-0.1"), (f64::NAN, "NaN"), (f64::INFINITY, "inf")] {
        let err = gaussian_noise(ds.features(), std, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("gaussian_noise: std = {shown} must be finite and non-negative")
        );
    }
    assert_eq!(
        gaussian_noise(ds.features(), 0.0, &mut rng).unwrap(),
        *ds.features()
    );
    let batch = ds.batches(4, None).next().unwrap();
    for (alpha, shown) in [
        (0.0, "0"),
        (-1.0, "-1"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ] {
        let err = mixup(&batch, alpha, 3, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("mixup: alpha = {shown} must be positive and finite (λ ~ Beta(alpha, alpha))")
        );
    }
}
