//! Line charts of training curves, written as SVG with `plotters`.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

/// Draws one or more named series (y values at x = 1, 2, ...) as an SVG
/// line chart at `path`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written; an invalid-argument error if
/// no series has a finite value, saying which values at which `x_label`s
/// (epochs, say) are NaN or infinite.
pub fn line_chart_svg(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    series: &[(&str, &[f64])],
) -> Result<()> {
    draw_line_chart(path.as_ref(), title, x_label, series)
}

/// [`line_chart_svg`] with the path's type fixed, so that the drawing code
/// is compiled once, in this crate, rather than in every program that plots.
fn draw_line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[(&str, &[f64])],
) -> Result<()> {
    let finite = || {
        series
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .filter(|v| v.is_finite())
    };
    let (lo, hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return Err(Error::invalid(
            "line_chart_svg",
            format!("nothing finite to plot: {}", non_finite(x_label, series)),
        ));
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let n = series
        .iter()
        .map(|(_, s)| s.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(1f64..n as f64, (lo - pad).max(0.0_f64.min(lo))..hi + pad)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("loss")
            .draw()?;
        let colors = [&BLUE, &RED, &GREEN, &MAGENTA, &BLACK];
        for (k, (name, ys)) in series.iter().enumerate() {
            let c = colors[k % colors.len()];
            chart
                .draw_series(LineSeries::new(
                    ys.iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(i, &v)| ((i + 1) as f64, v)),
                    c,
                ))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))
}

/// Describes series without a finite value, e.g. `"train" is NaN at epochs
/// 1-3, 5 and inf at epoch 4; "validation" has no points`.
fn non_finite(x_label: &str, series: &[(&str, &[f64])]) -> String {
    // At most this many runs per kind of value, then "...".
    const MAX_RUNS: usize = 6;
    if series.is_empty() {
        return "no series given".into();
    }
    let kind = |v: f64| {
        if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "inf"
        } else {
            "-inf"
        }
    };
    let parts: Vec<String> = series
        .iter()
        .map(|(name, ys)| {
            if ys.is_empty() {
                return format!("{name:?} has no points");
            }
            // Runs of consecutive x (from 1) per kind, kinds in order of
            // first appearance.
            let mut kinds: Vec<(&str, Vec<(usize, usize)>)> = Vec::new();
            for (i, &v) in ys.iter().enumerate() {
                let (k, x) = (kind(v), i + 1);
                let runs = match kinds.iter_mut().find(|(kk, _)| *kk == k) {
                    Some((_, runs)) => runs,
                    None => {
                        kinds.push((k, Vec::new()));
                        &mut kinds.last_mut().expect("just pushed").1
                    }
                };
                match runs.last_mut() {
                    Some((_, last)) if *last + 1 == x => *last = x,
                    _ => runs.push((x, x)),
                }
            }
            let described: Vec<String> = kinds
                .iter()
                .map(|(k, runs)| {
                    let count: usize = runs.iter().map(|(a, b)| b - a + 1).sum();
                    let plural = if count == 1 { "" } else { "s" };
                    let mut list: Vec<String> = runs
                        .iter()
                        .take(MAX_RUNS)
                        .map(|&(a, b)| {
                            if a == b {
                                a.to_string()
                            } else {
                                format!("{a}-{b}")
                            }
                        })
                        .collect();
                    if runs.len() > MAX_RUNS {
                        list.push("...".into());
                    }
                    format!("{k} at {x_label}{plural} {}", list.join(", "))
                })
                .collect();
            let text = match described.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{} and {last}", rest.join(", "))
                }
                _ => described.join(""),
            };
            format!("{name:?} is {text}")
        })
        .collect();
    parts.join("; ")
}
