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
    assert!(msg.contains("row has 2 fields but line 1 has 3"), "{msg}");
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

fn tmp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A digits row: 64 pixels (all `pixel`, but `bad` at 0-based `at`) and a label.
fn digits_row(at: usize, bad: &str, label: &str) -> String {
    let mut f: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
    f[at] = bad.to_string();
    f.push(label.to_string());
    f.join(",")
}

// Issue 11, §3.5: a label out of range in the digits data had no line
// number, and NaN pixels trained silently.
#[test]
fn digits_errors_name_file_line_and_field() {
    let text = [
        digits_row(0, "0", "3"),
        digits_row(0, "0", "9"),
        digits_row(0, "0", "12"),
    ]
    .join("\n");
    let path = tmp_file("digits_label.csv", &text);
    let err = tapegrad_nn::data::load_digits::<f32>(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3:65: class label 12 is out of range for 10 classes (0 to 9)",
            path.display()
        )
    );
    let text = [digits_row(0, "0", "3"), digits_row(4, "nan", "1")].join("\n");
    let path = tmp_file("digits_nan.csv", &text);
    let err = tapegrad_nn::data::load_digits::<f32>(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2:5: \"nan\" is not a finite number", path.display())
    );
    let path = tmp_file("digits_narrow.csv", "1,2,3\n4,5,6\n");
    let err = tapegrad_nn::data::load_digits::<f32>(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "load_digits: {}: rows have 3 fields, expected 65 (64 pixels, then the label)",
            path.display()
        )
    );
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn csv_rejects_non_finite_values_and_labels_out_of_range() {
    for (text, at, shown) in [
        (
            "a,b,y\n1,2,0\n3,NaN,1\n",
            (3, 2),
            "\"NaN\" is not a finite number",
        ),
        ("a,b,y\n1,inf,0\n", (2, 2), "\"inf\" is not a finite number"),
        (
            "a,b,y\n-infinity,1,0\n",
            (2, 1),
            "\"-infinity\" is not a finite number",
        ),
        ("a,b,y\n1e39,1,0\n", (2, 1), "\"1e39\" is too large for f32"),
    ] {
        let (line, col, _, msg) = csv_err(text, &CsvOptions::classification());
        assert_eq!((line, col), at, "{msg}");
        assert!(msg.ends_with(shown), "{msg}");
    }
    // A regression target must be finite too.
    let (line, col, name, msg) = csv_err("a,y\n1,2\n2,nan\n", &CsvOptions::regression());
    assert_eq!((line, col, name.as_deref()), (3, 2, Some("y")));
    assert!(msg.ends_with("\"nan\" is not a finite number"), "{msg}");
    let (line, col, _, msg) = csv_err(
        "1,2,0\n3,4,5\n",
        &CsvOptions::classification().num_classes(3),
    );
    assert_eq!((line, col), (2, 3));
    assert!(
        msg.ends_with("class label 5 is out of range for 3 classes (0 to 2)"),
        "{msg}"
    );
    let ds = parse_csv::<f32>(
        "1,2,0\n3,4,1\n",
        "t.csv",
        &CsvOptions::classification().num_classes(3),
    )
    .unwrap();
    assert_eq!(ds.num_classes(), Some(3));
}

#[test]
fn dataset_new_rejects_non_finite_features_naming_row_and_column() {
    let x = Tensor::from_vec(vec![0.0, 1.0, 2.0, f64::NAN, 4.0, 5.0], &[3, 2]).unwrap();
    let err = Dataset::new(x, Target::Classes(vec![0, 1, 0])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Dataset::new: feature at row 1, column 1 (counting from 0) is NaN; \
         features must be finite"
    );
    let x = Tensor::from_vec(vec![0.0, 1.0], &[2, 1]).unwrap();
    let y = Tensor::from_vec(vec![1.0, f64::INFINITY], &[2, 1]).unwrap();
    let err = Dataset::new(x.clone(), Target::Values(y)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Dataset::new: target value at row 1, column 0 (counting from 0) is inf; \
         targets must be finite"
    );
    let ds = Dataset::new(x, Target::Classes(vec![0, 1])).unwrap();
    let bad = Tensor::from_vec(vec![0.0, f64::NEG_INFINITY], &[2, 1]).unwrap();
    let err = ds.with_features(bad).unwrap_err();
    assert!(err.to_string().contains("row 1, column 0"), "{err}");
}

// Issue 11, §3.6: scikit-learn's bundled CSVs start with a row such as
// `569,30,malignant,benign` (rows, features, class names), then rows of
// 31 fields with no names row.
#[test]
fn sklearn_layout_first_row_with_other_field_count_is_a_skipped_header() {
    let text = "4,3,setosa,versicolor,virginica\n\
                5.1,3.5,1.4,0\n\
                4.9,3.0,1.4,0\n\
                7.0,3.2,4.7,1\n\
                6.4,3.2,4.5,1\n";
    for opts in [
        CsvOptions::classification(),
        CsvOptions::classification().header(true),
    ] {
        let ds = parse_csv::<f64>(text, "iris.csv", &opts).unwrap();
        assert_eq!((ds.len(), ds.num_features()), (4, 3));
        assert_eq!(ds.features().to_vec()[..3], [5.1, 3.5, 1.4]);
        assert_eq!(ds.targets(), &Target::Classes(vec![0, 0, 1, 1]));
        // The header does not name the columns, so they get default names.
        assert_eq!(ds.feature_names(), ["x0", "x1", "x2"]);
    }
    // Errors still point at true line numbers.
    let bad = text.replace("4.9,3.0", "4.9,oops");
    let (line, col, name, _) = csv_err(&bad, &CsvOptions::classification());
    assert_eq!((line, col, name), (3, 2, None));
    // Said to have no header, the first row is data, and ragged.
    let (line, _, _, msg) = csv_err(text, &CsvOptions::classification().header(false));
    assert_eq!(line, 1, "{msg}");
    // A header whose count differs from a row that is itself ragged is not
    // taken for scikit-learn's layout: the ragged row is reported.
    let (line, _, _, msg) = csv_err("a,b,y\n1,2\n3,4,0\n", &CsvOptions::classification());
    assert_eq!(line, 2);
    assert!(msg.contains("row has 2 fields but line 1 has 3"), "{msg}");
}

#[test]
fn skip_rows_skips_leading_lines() {
    // Boston-style: a count row, then a names row, then data.
    let text = "3,2\nrm,age,price\n6.5,65,24\n6.4,78,21\n7.1,61,34\n";
    let ds = parse_csv::<f64>(text, "b.csv", &CsvOptions::regression().skip_rows(1)).unwrap();
    assert_eq!((ds.len(), ds.num_features()), (3, 2));
    assert_eq!(ds.feature_names(), ["rm", "age"]);
    // Skipped lines still count for line numbers.
    let text = "# comment\n# more, comment\n1,2,0\n3,x,1\n";
    let (line, col, _, _) = csv_err(text, &CsvOptions::classification().skip_rows(2));
    assert_eq!((line, col), (4, 2));
    let err =
        parse_csv::<f64>("1,2\n", "s.csv", &CsvOptions::regression().skip_rows(5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "parse_csv: s.csv: no data rows (after skipping 5 lines)"
    );
}
