//! Reading a numeric table from CSV (plain or gzip-compressed).

use std::io::Read;
use std::path::{Path, PathBuf};

use tapegrad_tensor::{Element, Tensor};

use super::{Dataset, Target};
use crate::error::{Error, Result};

/// Which column holds the label or target.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetColumn {
    /// The last column (the default).
    Last,
    /// The column at this 0-based index.
    Index(usize),
    /// The column with this header name (needs a header).
    Name(String),
}

/// Whether the target is a class or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Integer class labels `0, 1, ...` (for cross-entropy).
    Classification,
    /// Real-valued targets (for MSE and friends).
    Regression,
}

/// How to read a CSV file.
///
/// The rows read are those after the first [`skip_rows`](Self::skip_rows)
/// lines, blank lines ignored. The first of them is a header or data:
/// - with `header: Some(false)` it is data;
/// - with `header: Some(true)` it is a header;
/// - with `header: None` (the default) it is a header if one of its fields
///   is not a number, **or** if its field count differs from the next
///   row's while that row and the one after it agree (so a ragged row is
///   still an error, and a first row of numbers can be a header). The latter is the
///   layout of scikit-learn's bundled data sets, whose first row is
///   `n_samples,n_features,class names...` (`569,30,malignant,benign`
///   above rows of 31 fields).
///
/// A header with as many fields as the rows names the columns; one with a
/// different count (scikit-learn's) is skipped and the columns are named
/// `x0, x1, ...`. Line numbers in errors are the file's own, from 1,
/// skipped lines included.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// `Some(true)`: the first row is a header; `Some(false)`: it is data;
    /// `None` (default): detected, as described above.
    pub header: Option<bool>,
    /// The target column.
    pub target: TargetColumn,
    /// The field separator (default `,`).
    pub delimiter: char,
    /// Classification or regression.
    pub task: Task,
    /// Lines to skip at the start of the file, blank or not, before the
    /// header or data (default 0).
    pub skip_rows: usize,
    /// For classification: the number of classes. A label not below it is
    /// an error naming its line, and the data set has this many classes
    /// even if some are absent. `None` (default): the largest label plus 1.
    pub num_classes: Option<usize>,
}

impl CsvOptions {
    /// Integer class labels in the last column, header detected.
    pub fn classification() -> Self {
        CsvOptions {
            header: None,
            target: TargetColumn::Last,
            delimiter: ',',
            task: Task::Classification,
            skip_rows: 0,
            num_classes: None,
        }
    }

    /// A real-valued target in the last column, header detected.
    pub fn regression() -> Self {
        CsvOptions {
            task: Task::Regression,
            ..Self::classification()
        }
    }

    /// Sets the target column.
    pub fn target(mut self, t: TargetColumn) -> Self {
        self.target = t;
        self
    }

    /// Says whether there is a header (instead of detecting it).
    pub fn header(mut self, on: bool) -> Self {
        self.header = Some(on);
        self
    }

    /// Sets the field separator.
    pub fn delimiter(mut self, d: char) -> Self {
        self.delimiter = d;
        self
    }

    /// Skips the first `n` lines of the file (a preamble, comments, a count
    /// row before a names row, ...).
    pub fn skip_rows(mut self, n: usize) -> Self {
        self.skip_rows = n;
        self
    }

    /// Sets the number of classes: labels must be below `k`.
    pub fn num_classes(mut self, k: usize) -> Self {
        self.num_classes = Some(k);
        self
    }
}

/// Loads a CSV file (gzip-compressed if its name ends in `.gz`) as a data
/// set: every column but the target is a numeric feature.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Csv`] naming the file,
/// line and column of the first value that is not a number (or not a
/// class label), or of a row with the wrong number of fields.
pub fn load_csv<T: Element>(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<Dataset<T>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    parse_csv(&text, path, opts)
}

/// The text of the file at `path`, decompressed if its name ends in `.gz`.
/// Not generic, so that the reading and decompressing code is compiled once,
/// here.
fn read_text(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut text = String::new();
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if gz {
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .map_err(|e| Error::io(path, e))?;
    } else {
        std::io::BufReader::new(file)
            .read_to_string(&mut text)
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(text)
}

/// Parses CSV text; `source` names it in errors (a path or a label).
///
/// # Errors
/// As [`load_csv`], minus the file errors.
pub fn parse_csv<T: Element>(
    text: &str,
    source: impl AsRef<Path>,
    opts: &CsvOptions,
) -> Result<Dataset<T>> {
    let source: PathBuf = source.as_ref().to_path_buf();
    let split = |line: &str| -> Vec<String> {
        line.split(opts.delimiter)
            .map(|f| f.trim().trim_matches('"').trim().to_string())
            .collect()
    };
    // (line number from 1, text) of every row read.
    let rows: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .skip(opts.skip_rows)
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let Some(&(first_no, first)) = rows.first() else {
        let skipped = match opts.skip_rows {
            0 => String::new(),
            1 => " (after skipping 1 line)".into(),
            n => format!(" (after skipping {n} lines)"),
        };
        return Err(Error::invalid(
            "parse_csv",
            format!("{}: no data rows{skipped}", source.display()),
        ));
    };
    let first_fields = split(first);
    let count = |k: usize| rows.get(k).map(|(_, l)| split(l).len());
    // scikit-learn's layout: the first row's field count differs from the
    // next row's, and that row agrees with the one after it. Needing the
    // third row keeps a ragged second row (or a two-row file) reported as
    // ragged rather than taken for data under a header.
    let other_count = match (count(1), count(2)) {
        (Some(c), Some(t)) if c != first_fields.len() && t == c => Some(c),
        _ => None,
    };
    let has_header = opts.header.unwrap_or_else(|| {
        other_count.is_some() || first_fields.iter().any(|f| f.parse::<f64>().is_err())
    });
    // The row that sets the field count, and the column names if any.
    let (ncols, ref_line, names) = match (has_header, other_count) {
        (true, Some(c)) => (c, rows[1].0, None),
        (true, None) => (first_fields.len(), first_no, Some(first_fields.clone())),
        (false, _) => (first_fields.len(), first_no, None),
    };
    let err = |line: usize, col: usize, msg: String| Error::Csv {
        path: source.clone(),
        line,
        column: col + 1,
        column_name: names.as_ref().and_then(|n| n.get(col).cloned()),
        msg,
    };
    let target = match &opts.target {
        TargetColumn::Last => ncols.saturating_sub(1),
        TargetColumn::Index(i) if *i < ncols => *i,
        TargetColumn::Index(i) => {
            return Err(err(
                ref_line,
                *i,
                format!(
                    "target column {} does not exist (rows have {ncols} fields)",
                    i + 1
                ),
            ))
        }
        TargetColumn::Name(n) => match names.as_ref().and_then(|h| h.iter().position(|c| c == n)) {
            Some(i) => i,
            None => {
                return Err(Error::Csv {
                    path: source.clone(),
                    line: first_no,
                    column: 1,
                    column_name: None,
                    msg: match (has_header, other_count) {
                        (true, Some(c)) => format!(
                            "target column {n:?} given by name, but the first row has {} \
                             fields and the data rows {c}, so it does not name the columns",
                            first_fields.len()
                        ),
                        (true, None) => {
                            format!("no column named {n:?} in the header {first_fields:?}")
                        }
                        (false, _) => {
                            format!("target column {n:?} given by name but the file has no header")
                        }
                    },
                })
            }
        },
    };
    let data_rows = if has_header { &rows[1..] } else { &rows[..] };
    let mut xs: Vec<T> = Vec::new();
    let mut labels: Vec<usize> = Vec::new();
    let mut values: Vec<T> = Vec::new();
    for &(no, line) in data_rows {
        let fields = split(line);
        if fields.len() != ncols {
            return Err(err(
                no,
                fields.len().min(ncols),
                format!(
                    "row has {} fields but line {ref_line} has {ncols}",
                    fields.len()
                ),
            ));
        }
        for (c, f) in fields.iter().enumerate() {
            let v: f64 = f
                .parse()
                .map_err(|_| err(no, c, format!("{f:?} is not a number")))?;
            if c == target && opts.task == Task::Classification {
                if v < 0.0 || v.fract() != 0.0 || !v.is_finite() {
                    return Err(err(
                        no,
                        c,
                        format!("class label {f:?} is not a non-negative integer"),
                    ));
                }
                if let Some(k) = opts.num_classes.filter(|&k| v >= k as f64) {
                    let range = match k {
                        0 => "none".to_string(),
                        _ => format!("0 to {}", k - 1),
                    };
                    return Err(err(
                        no,
                        c,
                        format!("class label {f} is out of range for {k} classes ({range})"),
                    ));
                }
                labels.push(v as usize);
                continue;
            }
            // "nan" and "inf" parse as f64; a NaN input would train silently
            // into a NaN loss, so every feature and target must be finite.
            if !v.is_finite() {
                return Err(err(no, c, format!("{f:?} is not a finite number")));
            }
            let x = T::from_f64(v);
            if !x.is_finite() {
                return Err(err(no, c, format!("{f:?} is too large for {}", T::DTYPE)));
            }
            if c == target {
                values.push(x);
            } else {
                xs.push(x);
            }
        }
    }
    let rows = data_rows.len();
    if rows == 0 {
        return Err(Error::invalid(
            "parse_csv",
            format!("{}: no data rows", source.display()),
        ));
    }
    let x = Tensor::from_vec(xs, &[rows, ncols - 1])?;
    let y = match opts.task {
        Task::Classification => Target::Classes(labels),
        Task::Regression => Target::Values(Tensor::from_vec(values, &[rows, 1])?),
    };
    let mut ds = Dataset::new(x, y)?;
    if let (Task::Classification, Some(k)) = (opts.task, opts.num_classes) {
        ds = ds.with_num_classes(k)?;
    }
    if let Some(n) = names {
        ds = ds.with_feature_names(
            n.into_iter()
                .enumerate()
                .filter(|(i, _)| *i != target)
                .map(|(_, s)| s)
                .collect(),
        );
    }
    Ok(ds)
}
