//! Layers for convolutional networks: [`Conv1d`], [`Conv2d`],
//! [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`], [`Flatten`],
//! [`BatchNorm1d`], [`BatchNorm2d`], with `torch.nn`'s parameter and buffer
//! names and layouts.

mod batchnorm;
mod conv;
mod pool;

pub use batchnorm::{BatchNorm, BatchNorm1d, BatchNorm2d};
pub use conv::{Conv, Conv1d, Conv2d};
pub use pool::{AvgPool2d, Flatten, GlobalAvgPool2d, MaxPool2d, Unflatten};

use tapegrad_autograd::Error as TapeError;

/// The error for a layer's bad input: names the layer by its place in the
/// model (`layer 3 (Conv2d(...))`, from a parameter name such as
/// `3.weight`) and says what was wrong.
pub(crate) fn layer_error(param_name: Option<&str>, describe: &str, msg: String) -> TapeError {
    let path = param_name
        .and_then(|n| n.rsplit_once('.').map(|(p, _)| p.to_string()))
        .unwrap_or_default();
    TapeError::InvalidArgument {
        op: if path.is_empty() {
            describe.to_string()
        } else {
            format!("layer {path} ({describe})")
        },
        msg,
    }
}
