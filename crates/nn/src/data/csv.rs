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
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// `Some(true)`: the first line is a header; `Some(false)`: it is data;
    /// `None` (default): a header if any of its fields is not a number.
    pub header: Option<bool>,
    /// The target column.
    pub target: TargetColumn,
    /// The field separator (default `,`).
    pub delimiter: char,
    /// Classification or regression.
    pub task: Task,
}

impl CsvOptions {
    /// Integer class labels in the last column, header detected.
    pub fn classification() -> Self {
        CsvOptions {
            header: None,
            target: TargetColumn::Last,
            delimiter: ',',
            task: Task::Classification,
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
    parse_csv(&text, path, opts)
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
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((first_no, first)) = lines.next() else {
        return Err(Error::invalid(
            "parse_csv",
            format!("{}: no data rows", source.display()),
        ));
    };
    let first_fields = split(first);
    let has_header = opts
        .header
        .unwrap_or_else(|| first_fields.iter().any(|f| f.parse::<f64>().is_err()));
    let ncols = first_fields.len();
    let names: Option<Vec<String>> = has_header.then(|| first_fields.clone());
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
                first_no,
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
                    msg: if has_header {
                        format!("no column named {n:?} in the header {first_fields:?}")
                    } else {
                        format!("target column {n:?} given by name but the file has no header")
                    },
                })
            }
        },
    };
    let data_lines: Box<dyn Iterator<Item = (usize, &str)>> = if has_header {
        Box::new(lines)
    } else {
        Box::new(std::iter::once((first_no, first)).chain(lines))
    };
    let mut xs: Vec<T> = Vec::new();
    let mut labels: Vec<usize> = Vec::new();
    let mut values: Vec<T> = Vec::new();
    let mut rows = 0;
    for (no, line) in data_lines {
        let fields = split(line);
        if fields.len() != ncols {
            return Err(err(
                no,
                fields.len().min(ncols),
                format!(
                    "row has {} fields but the first row has {ncols}",
                    fields.len()
                ),
            ));
        }
        for (c, f) in fields.iter().enumerate() {
            let v: f64 = f
                .parse()
                .map_err(|_| err(no, c, format!("{f:?} is not a number")))?;
            if c == target {
                match opts.task {
                    Task::Classification => {
                        if v < 0.0 || v.fract() != 0.0 || !v.is_finite() {
                            return Err(err(
                                no,
                                c,
                                format!("class label {f:?} is not a non-negative integer"),
                            ));
                        }
                        labels.push(v as usize);
                    }
                    Task::Regression => values.push(T::from_f64(v)),
                }
            } else {
                xs.push(T::from_f64(v));
            }
        }
        rows += 1;
    }
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
