//! In-memory data sets: loading from CSV, splitting, shuffled mini-batches,
//! standardisation and augmentation.
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use tapegrad_nn::data::{parse_csv, CsvOptions};
//! let text = "a,b,label\n0.5,1,0\n1.5,2,1\n2.5,3,1\n3.5,4,0\n";
//! let ds = parse_csv::<f32>(text, "inline.csv", &CsvOptions::classification())?;
//! assert_eq!((ds.len(), ds.num_features(), ds.num_classes()), (4, 2, Some(2)));
//! let (train, test) = ds.train_test_split(0.25, 7)?;
//! assert_eq!((train.len(), test.len()), (3, 1));
//! let mut rng = StdRng::seed_from_u64(0);
//! let sizes: Vec<usize> = train.batches(2, Some(&mut rng)).map(|b| b.len()).collect();
//! assert_eq!(sizes, [2, 1]);
//! # Ok::<(), tapegrad_nn::Error>(())
//! ```

mod augment;
mod csv;
mod digits;
mod text;

pub use augment::{gaussian_noise, mixup};
pub use csv::{load_csv, parse_csv, CsvOptions, TargetColumn, Task};
pub use digits::{load_digits, DIGITS_SIDE};
pub use text::CharText;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tapegrad_tensor::{Element, Tensor};

use crate::error::{Error, Result};

/// What a data set predicts.
#[derive(Clone, Debug, PartialEq)]
pub enum Target<T: Element = f32> {
    /// One class index per row (for cross-entropy).
    Classes(Vec<usize>),
    /// Real values, `[n, k]` (regression, or soft labels after mixup).
    Values(Tensor<T>),
}

impl<T: Element> Target<T> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Target::Classes(c) => c.len(),
            Target::Values(v) => v.dims().first().copied().unwrap_or(0),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class labels, if this is a classification target.
    pub fn classes(&self) -> Option<&[usize]> {
        match self {
            Target::Classes(c) => Some(c),
            Target::Values(_) => None,
        }
    }

    /// The rows at `idx`, in that order.
    ///
    /// # Errors
    /// If an index is out of range.
    pub fn select(&self, idx: &[usize]) -> Result<Self> {
        Ok(match self {
            Target::Classes(c) => Target::Classes(
                idx.iter()
                    .map(|&i| {
                        c.get(i)
                            .copied()
                            .ok_or_else(|| Error::invalid("Target::select", "index out of range"))
                    })
                    .collect::<Result<_>>()?,
            ),
            Target::Values(v) => Target::Values(v.index_select(0, idx)?),
        })
    }

    /// The target as a `[n, k]` tensor: values as they are, classes one-hot
    /// over `classes`.
    ///
    /// # Errors
    /// If a class is not below `classes`.
    pub fn to_tensor(&self, classes: usize) -> Result<Tensor<T>> {
        Ok(match self {
            Target::Classes(c) => Tensor::one_hot(c, classes)?,
            Target::Values(v) => v.clone(),
        })
    }
}

/// A table in memory: features `[n, d]` and a target per row.
#[derive(Clone, Debug)]
pub struct Dataset<T: Element = f32> {
    x: Tensor<T>,
    y: Target<T>,
    classes: Option<usize>,
    feature_names: Vec<String>,
}

/// A mini-batch: a slice of rows of a [`Dataset`].
#[derive(Clone, Debug)]
pub struct Batch<T: Element = f32> {
    /// Features, `[b, d]`.
    pub x: Tensor<T>,
    /// Targets for the same rows.
    pub y: Target<T>,
}

impl<T: Element> Batch<T> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

impl<T: Element> Dataset<T> {
    /// A data set from features `[n, d]` and targets for the same `n` rows.
    /// For class targets, the number of classes is the largest label plus 1
    /// (override with [`with_num_classes`](Self::with_num_classes)).
    ///
    /// # Errors
    /// If `x` is not 2-d, the row counts differ, or a feature or target
    /// value is NaN or infinite (named by row and column): such a value
    /// would train silently into a NaN loss.
    pub fn new(x: Tensor<T>, y: Target<T>) -> Result<Self> {
        if x.ndim() != 2 {
            return Err(Error::invalid(
                "Dataset::new",
                format!("features must be [rows, columns], got {:?}", x.dims()),
            ));
        }
        if x.dims()[0] != y.len() {
            return Err(Error::invalid(
                "Dataset::new",
                format!("{} feature rows but {} targets", x.dims()[0], y.len()),
            ));
        }
        if let Target::Values(v) = &y {
            if v.ndim() != 2 {
                return Err(Error::invalid(
                    "Dataset::new",
                    format!("target values must be [rows, k], got {:?}", v.dims()),
                ));
            }
        }
        let x = x.to_contiguous();
        all_finite("Dataset::new", "feature", "features", &x)?;
        if let Target::Values(v) = &y {
            all_finite("Dataset::new", "target value", "targets", v)?;
        }
        let classes = match y.classes().and_then(|c| c.iter().copied().max()) {
            Some(usize::MAX) => {
                return Err(Error::invalid(
                    "Dataset::new",
                    "a class label of usize::MAX leaves no room for the class count",
                ))
            }
            Some(m) => Some(m + 1),
            None => y.classes().map(|_| 0),
        };
        let d = x.dims()[1];
        Ok(Dataset {
            x,
            y,
            classes,
            feature_names: (0..d).map(|i| format!("x{i}")).collect(),
        })
    }

    /// Sets the number of classes (when some class is absent from this part).
    ///
    /// # Errors
    /// If a label is not below `k`, or the target is not classes.
    pub fn with_num_classes(mut self, k: usize) -> Result<Self> {
        match self.y.classes() {
            Some(c) if c.iter().all(|&l| l < k) => {
                self.classes = Some(k);
                Ok(self)
            }
            _ => Err(Error::invalid(
                "Dataset::with_num_classes",
                format!("labels must be classes below {k}"),
            )),
        }
    }

    /// Names the feature columns (CSV loading uses the header).
    pub fn with_feature_names(mut self, names: Vec<String>) -> Self {
        if names.len() == self.num_features() {
            self.feature_names = names;
        }
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of feature columns.
    pub fn num_features(&self) -> usize {
        self.x.dims()[1]
    }

    /// Number of classes, for a classification target.
    pub fn num_classes(&self) -> Option<usize> {
        self.classes
    }

    /// The features, `[n, d]`.
    pub fn features(&self) -> &Tensor<T> {
        &self.x
    }

    /// The targets.
    pub fn targets(&self) -> &Target<T> {
        &self.y
    }

    /// The feature column names.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The rows at `idx`, in that order.
    ///
    /// # Errors
    /// If an index is out of range.
    pub fn subset(&self, idx: &[usize]) -> Result<Self> {
        Ok(Dataset {
            x: self.x.index_select(0, idx)?,
            y: self.y.select(idx)?,
            classes: self.classes,
            feature_names: self.feature_names.clone(),
        })
    }

    /// The same rows with features replaced (same row count).
    ///
    /// # Errors
    /// If the shape differs or a feature is not finite (as [`new`](Self::new)).
    pub fn with_features(&self, x: Tensor<T>) -> Result<Self> {
        if x.dims() != self.x.dims() {
            return Err(Error::invalid(
                "Dataset::with_features",
                format!("shape {:?} differs from {:?}", x.dims(), self.x.dims()),
            ));
        }
        let x = x.to_contiguous();
        all_finite("Dataset::with_features", "feature", "features", &x)?;
        Ok(Dataset { x, ..self.clone() })
    }

    /// Shuffles the rows with a generator seeded by `seed`, then cuts off
    /// the last `test` fraction: `(train, test)`.
    ///
    /// # Errors
    /// If `test` is not in `[0, 1]`.
    pub fn train_test_split(&self, test: f64, seed: u64) -> Result<(Self, Self)> {
        let (a, _, c) = self.split(0.0, test, seed)?;
        Ok((a, c))
    }

    /// Shuffles the rows with a generator seeded by `seed` and cuts them
    /// into `(train, validation, test)` with the given fractions (rounded to
    /// whole rows; train gets the rest).
    ///
    /// # Errors
    /// If a fraction is negative or they sum to more than 1.
    pub fn split(&self, val: f64, test: f64, seed: u64) -> Result<(Self, Self, Self)> {
        if !(0.0..=1.0).contains(&val) || !(0.0..=1.0).contains(&test) || val + test > 1.0 {
            return Err(Error::invalid(
                "Dataset::split",
                format!("fractions val={val}, test={test} must be in [0, 1] and sum to at most 1"),
            ));
        }
        let n = self.len();
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut StdRng::seed_from_u64(seed));
        let n_test = ((n as f64) * test).round() as usize;
        let n_val = (((n as f64) * val).round() as usize).min(n - n_test);
        let n_train = n - n_test - n_val;
        Ok((
            self.subset(&idx[..n_train])?,
            self.subset(&idx[n_train..n_train + n_val])?,
            self.subset(&idx[n_train + n_val..])?,
        ))
    }

    /// Mini-batches of `batch_size` rows (the last may be smaller), in a
    /// shuffled order when a generator is given.
    pub fn batches<'a>(
        &'a self,
        batch_size: usize,
        rng: Option<&mut StdRng>,
    ) -> impl Iterator<Item = Batch<T>> + 'a {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        if let Some(rng) = rng {
            idx.shuffle(rng);
        }
        let bs = batch_size.max(1);
        let chunks: Vec<Vec<usize>> = idx.chunks(bs).map(<[usize]>::to_vec).collect();
        chunks.into_iter().map(move |c| Batch {
            // Indices come from 0..len, so selection cannot fail.
            x: self
                .x
                .index_select(0, &c)
                .unwrap_or_else(|_| self.x.clone()),
            y: self.y.select(&c).unwrap_or_else(|_| self.y.clone()),
        })
    }

    /// Applies a standardiser to the features.
    ///
    /// # Errors
    /// If the standardiser was fitted on another number of columns.
    pub fn standardized(&self, s: &Standardizer<T>) -> Result<Self> {
        self.with_features(s.transform(&self.x)?)
    }
}

/// An error naming the row and column of the first NaN or infinite
/// element of the 2-d tensor `t`, if there is one.
fn all_finite<T: Element>(op: &'static str, what: &str, plural: &str, t: &Tensor<T>) -> Result<()> {
    let owned;
    let data = match t.as_slice() {
        Some(s) => s,
        None => {
            owned = t.to_vec();
            &owned
        }
    };
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => {
            let cols = t.dims().get(1).copied().unwrap_or(1).max(1);
            Err(Error::invalid(
                op,
                format!(
                    "{what} at row {}, column {} (counting from 0) is {}; {plural} must be finite",
                    i / cols,
                    i % cols,
                    data[i].to_f64()
                ),
            ))
        }
    }
}

/// Per-column standardisation `(x − mean) / std`, fitted on training data
/// and applied to every split (so no test statistics leak into training).
/// Constant columns get `std = 1`.
#[derive(Clone, Debug)]
pub struct Standardizer<T: Element = f32> {
    mean: Tensor<T>,
    std: Tensor<T>,
}

impl<T: Element> Standardizer<T> {
    /// Fits the column means and (population) standard deviations of
    /// `x` `[n, d]`.
    ///
    /// # Errors
    /// If `x` is not 2-d or has no rows.
    pub fn fit(x: &Tensor<T>) -> Result<Self> {
        if x.ndim() != 2 || x.dims()[0] == 0 {
            return Err(Error::invalid(
                "Standardizer::fit",
                format!(
                    "need a non-empty [rows, columns] tensor, got {:?}",
                    x.dims()
                ),
            ));
        }
        let mean = x.mean(&[0], false)?;
        let var = x.var(&[0], false, 0)?;
        let std = var.map(|v| {
            let s = v.sqrt();
            if s > T::from_f64(1e-12) {
                s
            } else {
                T::ONE
            }
        })?;
        Ok(Standardizer { mean, std })
    }

    /// The fitted column means.
    pub fn mean(&self) -> &Tensor<T> {
        &self.mean
    }

    /// The fitted column standard deviations.
    pub fn std(&self) -> &Tensor<T> {
        &self.std
    }

    /// `(x − mean) / std`, column by column.
    ///
    /// # Errors
    /// If the column count differs from the fitted one.
    pub fn transform(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.sub(&self.mean)?.div(&self.std)?)
    }
}
