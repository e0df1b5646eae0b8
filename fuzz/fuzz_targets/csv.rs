//! CSV loading from arbitrary bytes: `data::parse_csv` on the text, or
//! `data::load_csv` on a gzip file, with options taken from the first byte;
//! then the data-set operations a training run does on what was loaded.
//!
//! Input layout: byte 0 = options (bits 0-1 header, bit 2 task, bits 3-4
//! target column kind, bits 5-6 delimiter, bit 7 gzip), the rest = the file.
//! Oracles: no panic; rows, features and targets agree; a classification
//! data set's class count is its largest label plus one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tapegrad_nn::data::{load_csv, parse_csv, CsvOptions, Dataset, TargetColumn, Task};
use tapegrad_nn::Result;

#[path = "scratch.rs"]
mod scratch;

/// Largest one-hot target the harness builds (rows × classes): a label
/// such as `1e12` is valid, but its one-hot matrix does not fit in memory.
const ONE_HOT_CAP: usize = 1 << 20;

fn options(flags: u8, text: &str) -> CsvOptions {
    let delimiter = [',', ';', '\t', ' '][usize::from(flags >> 5 & 3)];
    let mut o = match flags >> 2 & 1 {
        0 => CsvOptions::classification(),
        _ => CsvOptions::regression(),
    }
    .delimiter(delimiter);
    o.header = match flags & 3 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    o.target = match flags >> 3 & 3 {
        0 => TargetColumn::Last,
        1 => TargetColumn::Index(0),
        2 => TargetColumn::Index(usize::from(flags >> 5)),
        // The first field of the first line, which may or may not be a name.
        _ => TargetColumn::Name(
            text.lines()
                .next()
                .and_then(|l| l.split(delimiter).next())
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
    };
    o
}

fn exercise(ds: &Dataset<f32>, task: Task) -> Result<()> {
    let (n, d) = (ds.len(), ds.num_features());
    assert!(n > 0, "an empty data set loaded without error");
    assert_eq!(ds.features().shape(), &[n, d]);
    assert_eq!(ds.targets().len(), n);
    assert_eq!(ds.feature_names().len(), d);
    match (task, ds.targets().classes()) {
        (Task::Classification, Some(c)) => {
            let max = c.iter().copied().max().expect("n > 0");
            assert_eq!(ds.num_classes(), max.checked_add(1));
        }
        (Task::Regression, None) => assert_eq!(ds.num_classes(), None),
        (task, _) => panic!("a {task:?} file gave the other kind of target"),
    }
    let (train, test) = ds.train_test_split(0.25, 7)?;
    assert_eq!(train.len() + test.len(), n);
    let rows: usize = train.batches(3, None).map(|b| b.len()).sum();
    assert_eq!(rows, train.len());
    let s = tapegrad_nn::data::Standardizer::fit(ds.features())?;
    ds.standardized(&s)?;
    if let Some(k) = ds.num_classes() {
        if n.checked_mul(k).is_some_and(|m| m <= ONE_HOT_CAP) {
            assert_eq!(ds.targets().to_tensor(k)?.shape(), &[n, k]);
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let (loaded, text) = if flags & 0x80 != 0 {
        // Through the file loader: gzip, as the digits data is stored.
        let path = scratch::write("data.csv.gz", body);
        let opts = options(flags, "");
        (load_csv::<f32>(&path, &opts), opts)
    } else {
        let text = String::from_utf8_lossy(body);
        let opts = options(flags, &text);
        (parse_csv::<f32>(&text, "fuzz.csv", &opts), opts)
    };
    match loaded {
        Ok(ds) => {
            if let Err(e) = exercise(&ds, text.task) {
                // Errors are fine (a constant column, say); panics are not.
                assert!(!e.to_string().is_empty());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
