//! The attribution pipeline of `examples/saliency.rs` on small trained
//! models: integrated-gradients completeness on the digits MLP, attributions
//! that point at the pixels that matter, and the feature ranking of a
//! tabular model.

use tapegrad::autograd::explain::{input_x_gradient, integrated_gradients, saliency};
use tapegrad::nn::data::load_digits;
use tapegrad::nn::{explain, train, Progress};
use tapegrad::prelude::*;

fn trained_digits_mlp() -> (Mlp<f32>, Dataset<f32>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let data = load_digits::<f32>(path).unwrap();
    let (train_set, test_set) = data.train_test_split(0.2, 0).unwrap();
    let mut model = Mlp::<f32>::builder(&[64, 32, 10])
        .activation(Activation::Relu)
        .seed(0)
        .build()
        .unwrap();
    Trainer::new(Objective::CrossEntropy)
        .epochs(8)
        .batch_size(32)
        .seed(0)
        .progress(Progress::Never)
        .fit(&mut model, &mut Adam::new(0.01), &train_set, None)
        .unwrap();
    model.eval();
    let acc = train::evaluate(&mut model, &test_set, Objective::CrossEntropy)
        .unwrap()
        .accuracy
        .unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");
    (model, test_set)
}

#[test]
fn digits_attributions_are_complete_and_point_at_the_ink() {
    let (model, test_set) = trained_digits_mlp();
    let blank = Tensor::<f32>::zeros(&[64]);
    for index in [0, 1, 2, 3] {
        let x = test_set.features().select(0, index).unwrap();
        let pixels = x.to_vec();
        let class = explain::predicted_class(&model, &x).unwrap();
        let f = explain::output(&model, class);
        let logits = explain::outputs(&model, &x).unwrap();

        // Completeness: Σ IG = f(x) − f(blank), within 1 % (ReLU kinks).
        let ig = integrated_gradients(&f, &x, &blank, 256).unwrap();
        assert!((ig.output - f64::from(logits[class])).abs() < 1e-4);
        assert!(
            ig.is_complete(1e-2, 1e-3),
            "image {index}: gap {} of {}",
            ig.gap,
            ig.output - ig.baseline_output
        );
        let total: f64 = ig.attributions.to_vec().iter().map(|&a| f64::from(a)).sum();
        assert!((total - (ig.output - ig.baseline_output) - ig.gap).abs() < 1e-3);

        // Blank pixels get no input-based attribution; saliency is |grad|.
        let sal = saliency(&f, &x).unwrap().to_vec();
        let ixg = input_x_gradient(&f, &x).unwrap().to_vec();
        let igv = ig.attributions.to_vec();
        for i in 0..64 {
            assert!(sal[i] >= 0.0);
            if pixels[i] == 0.0 {
                assert_eq!((ixg[i], igv[i]), (0.0, 0.0), "pixel {i}");
            } else {
                assert!((ixg[i].abs() - pixels[i] * sal[i]).abs() < 1e-5);
            }
        }

        // Erasing the 8 pixels with the largest IG lowers the logit; erasing
        // the 8 with the smallest (most negative) IG does not lower it as much.
        let mut order: Vec<usize> = (0..64).filter(|&i| pixels[i] > 0.0).collect();
        order.sort_by(|&a, &b| igv[b].total_cmp(&igv[a]));
        let erase = |idx: &[usize]| {
            let mut p = pixels.clone();
            for &i in idx {
                p[i] = 0.0;
            }
            explain::outputs(&model, &Tensor::from_vec(p, &[64]).unwrap()).unwrap()[class]
        };
        let top = erase(&order[..8]);
        let bottom = erase(&order[order.len() - 8..]);
        assert!(
            top < logits[class] && top < bottom,
            "image {index}: logit {} → {top} (top 8 erased) vs {bottom} (bottom 8)",
            logits[class]
        );
    }
}

/// 8 standard-normal columns; the target depends strongly on 0 and 3,
/// weakly on 5, not at all on the rest.
fn table(rows: usize, seed: u64) -> Dataset<f64> {
    let x = Tensor::<f64>::randn_seeded(&[rows, 8], seed);
    let xs = x.to_vec();
    let y: Vec<f64> = xs
        .chunks(8)
        .map(|r| 2.0 * r[0] - 1.5 * r[3] + 0.5 * r[0] * r[3] + 0.3 * r[5])
        .collect();
    Dataset::new(x, Target::Values(Tensor::from_vec(y, &[rows, 1]).unwrap())).unwrap()
}

#[test]
fn tabular_feature_ranking_finds_the_columns_that_matter() {
    let (train_set, test_set) = table(400, 11).train_test_split(0.25, 0).unwrap();
    let mut model = Mlp::<f64>::builder(&[8, 16, 1])
        .activation(Activation::Tanh)
        .seed(1)
        .build()
        .unwrap();
    Trainer::new(Objective::Mse)
        .epochs(60)
        .batch_size(32)
        .seed(1)
        .progress(Progress::Never)
        .fit(&mut model, &mut Adam::new(0.01), &train_set, None)
        .unwrap();
    let mse = train::evaluate(&mut model, &test_set, Objective::Mse)
        .unwrap()
        .loss;
    assert!(mse < 0.1, "test MSE {mse}");

    let f = explain::output(&model, 0);
    let imp =
        explain::feature_importance(&f, test_set.features(), &Tensor::zeros(&[8]), 64).unwrap();
    assert_eq!(imp.rows, 100);
    assert!(imp.max_gap < 1e-3, "worst completeness gap {}", imp.max_gap);
    let ranking = imp.ranking();
    let order: Vec<usize> = ranking.iter().map(|&(i, _)| i).collect();
    assert!(
        order[..2] == [0, 3] || order[..2] == [3, 0],
        "ranking {ranking:?}"
    );
    assert_eq!(order[2], 5, "ranking {ranking:?}");
    // The unused columns are far behind the weak one.
    let weak = ranking[2].1;
    for &(i, v) in &ranking[3..] {
        assert!(v < 0.5 * weak, "unused x{i}: {v} vs x5: {weak}");
    }
}
