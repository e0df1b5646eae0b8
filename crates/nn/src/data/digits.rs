//! The UCI handwritten digits (`data/digits.csv.gz` in the repository).

use std::path::Path;

use tapegrad_tensor::Element;

use super::{load_csv, CsvOptions, Dataset};
use crate::error::{Error, Result};

/// Width and height of a digits image.
pub const DIGITS_SIDE: usize = 8;

/// Loads the UCI handwritten digits: a CSV(.gz) file without header, 64
/// pixel columns (an 8×8 image row by row, each 0..16) then the class label
/// 0..9. Pixels are divided by 16, so they lie in `[0, 1]`; the data set has
/// 10 classes even if a file holds fewer.
///
/// ```
/// # fn main() -> tapegrad_nn::Result<()> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/digits.csv.gz");
/// let digits = tapegrad_nn::data::load_digits::<f32>(path)?;
/// assert_eq!((digits.len(), digits.num_features(), digits.num_classes()), (1797, 64, Some(10)));
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`load_csv`]: [`Error::Csv`](crate::Error::Csv) naming the file, line
/// and field of a value that is not a finite number, of a label that is not
/// one of 0..9, or of a ragged row; [`Error::InvalidArgument`](crate::Error::InvalidArgument)
/// naming the file if its rows do not have 65 fields.
pub fn load_digits<T: Element>(path: impl AsRef<Path>) -> Result<Dataset<T>> {
    let path = path.as_ref();
    let opts = CsvOptions::classification().header(false).num_classes(10);
    let ds = load_csv::<T>(path, &opts)?;
    let pixels = DIGITS_SIDE * DIGITS_SIDE;
    if ds.num_features() != pixels {
        return Err(Error::invalid(
            "load_digits",
            format!(
                "{}: rows have {} fields, expected {} ({pixels} pixels, then the label)",
                path.display(),
                ds.num_features() + 1,
                pixels + 1
            ),
        ));
    }
    ds.with_features(ds.features().div_scalar(16.0)?)
}
