//! The loss chart: what it says when there is nothing to draw.

use tapegrad_nn::plot::line_chart_svg;

// Issue 11, §3.5: "nothing finite to plot" did not say which series or
// epochs were the problem.
#[test]
fn nothing_finite_names_the_series_and_epochs() {
    let path = std::env::temp_dir().join("tapegrad-never-written.svg");
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let train = [nan, nan, nan, inf, nan, -inf];
    let val: [f64; 0] = [];
    let err = line_chart_svg(
        &path,
        "t",
        "epoch",
        &[("train", &train), ("validation", &val)],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line_chart_svg: nothing finite to plot: \"train\" is NaN at epochs 1-3, 5, \
         inf at epoch 4 and -inf at epoch 6; \"validation\" has no points"
    );
    assert!(!path.exists());
    let err = line_chart_svg(&path, "t", "step", &[("loss", &[nan])]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line_chart_svg: nothing finite to plot: \"loss\" is NaN at step 1"
    );
    let err = line_chart_svg(&path, "t", "step", &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line_chart_svg: nothing finite to plot: no series given"
    );
    // A long series is summarised, not listed in full.
    let alternating: Vec<f64> = (0..100)
        .map(|i| if i % 2 == 0 { nan } else { inf })
        .collect();
    let msg = line_chart_svg(&path, "t", "epoch", &[("train", &alternating)])
        .unwrap_err()
        .to_string();
    assert!(msg.len() < 200, "{msg}");
    assert!(
        msg.contains("NaN at epochs 1, 3, 5") && msg.contains("..."),
        "{msg}"
    );
}
