//! NumPy-like printing, summarised (with `...`) for large tensors.

use std::fmt;

use crate::{Element, Tensor};

/// Axes longer than this are summarised as first 3, `...`, last 3.
const EDGE: usize = 3;
const SUMMARISE_ABOVE: usize = 1000;

/// NumPy-style text: nested brackets, one row per line, whole numbers
/// written as `3.`, very large or small magnitudes in scientific notation.
/// The precision (`{:.2}`) sets the digits after the point (default 4).
/// Tensors of more than 1000 elements are summarised: axes longer than 6
/// show their first 3 and last 3 entries around `...`. For this count an
/// empty tensor's zero-length axes count as 1, so an empty tensor with a
/// long axis (`[1_000_000, 0]`) prints a few `[]` rather than a million.
///
/// # Examples
/// ```
/// use tapegrad_tensor::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 2.5, -3.0, 0.125], &[2, 2])?;
/// assert_eq!(a.to_string(), "[[1., 2.5000],\n [-3., 0.1250]]");
/// assert_eq!(format!("{a:.1}"), "[[1., 2.5],\n [-3., 0.1]]");
/// assert_eq!(Tensor::scalar(1e-6f64).to_string(), "1.0000e-6");
/// assert_eq!(Tensor::<f32>::zeros(&[0]).to_string(), "[]");
/// assert_eq!(Tensor::<f32>::zeros(&[2, 0]).to_string(), "[[],\n []]");
/// let big = Tensor::<f32>::arange(0.0, 2000.0, 1.0)?;
/// assert_eq!(big.to_string(), "[0., 1., 2., ..., 1997., 1998., 1999.]");
/// # Ok::<(), tapegrad_tensor::Error>(())
/// ```
impl<T: Element> fmt::Display for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The number of entries printed without summarising: the element
        // count, or for an empty tensor the number of `[]` it would print.
        let entries = self
            .dims()
            .iter()
            .fold(1usize, |acc, &d| acc.saturating_mul(d.max(1)));
        let summarise = entries > SUMMARISE_ABOVE;
        let prec = f.precision().unwrap_or(4);
        let mut s = String::new();
        write_axis(self, &mut Vec::new(), summarise, prec, &mut s);
        f.write_str(&s)
    }
}

fn fmt_value<T: Element>(v: T, prec: usize) -> String {
    let x = v.to_f64();
    if x.is_finite() && x == x.trunc() && x.abs() < 1e9 {
        format!("{x:.0}.")
    } else if x.is_finite() && (x.abs() >= 1e5 || (x != 0.0 && x.abs() < 1e-4)) {
        format!("{x:.prec$e}")
    } else {
        format!("{x:.prec$}")
    }
}

fn write_axis<T: Element>(
    t: &Tensor<T>,
    index: &mut Vec<usize>,
    summarise: bool,
    prec: usize,
    out: &mut String,
) {
    let depth = index.len();
    if depth == t.ndim() {
        out.push_str(&fmt_value(t.get(index).expect("index in range"), prec));
        return;
    }
    let len = t.dims()[depth];
    out.push('[');
    let positions: Vec<Option<usize>> = if summarise && len > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((len - EDGE..len).map(Some))
            .collect()
    } else {
        (0..len).map(Some).collect()
    };
    for (n, p) in positions.iter().enumerate() {
        if n > 0 {
            out.push(',');
            if depth + 1 < t.ndim() {
                out.push('\n');
                out.push_str(&" ".repeat(depth + 1));
            } else {
                out.push(' ');
            }
        }
        match p {
            Some(i) => {
                index.push(*i);
                write_axis(t, index, summarise, prec, out);
                index.pop();
            }
            None => out.push_str("..."),
        }
    }
    out.push(']');
}
