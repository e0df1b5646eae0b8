//! Optimisers against hand-computed updates on L(θ) = Σ θ² (so ∇L = 2θ),
//! starting from θ₀ = 1, two steps each; the arithmetic is in the comments.

use approx::assert_abs_diff_eq;
use tapegrad_autograd::{Gradients, Tape};
use tapegrad_nn::{Adam, Optimizer, Param, ParamGrads, Sgd};
use tapegrad_tensor::Tensor;

/// The gradients of named parameters, as a model's `grads` would collect
/// them.
fn by_name<T: tapegrad_tensor::Element>(
    params: &[(&str, &Param<T>)],
    grads: &Gradients<T>,
) -> ParamGrads<T> {
    let named: Vec<(String, &Param<T>)> = params.iter().map(|(n, p)| (n.to_string(), *p)).collect();
    ParamGrads::collect(&named, grads)
}

/// Runs `steps` optimiser steps on L(θ) = Σ θ², returning θ after each.
fn run(opt: &mut dyn Optimizer<f64>, theta0: &[f64], steps: usize) -> Vec<Vec<f64>> {
    let mut p = Param::new(
        "theta",
        Tensor::from_vec(theta0.to_vec(), &[theta0.len()]).unwrap(),
    );
    let mut out = Vec::new();
    for _ in 0..steps {
        let tape = Tape::new();
        let l = p.var(&tape).unwrap().square().unwrap().sum_all().unwrap();
        let grads = by_name(&[("theta", &p)], &tape.backward(l).unwrap());
        opt.step(vec![("theta".into(), &mut p)], &grads).unwrap();
        out.push(p.value().to_vec());
    }
    out
}

#[test]
fn sgd_plain_is_theta_minus_alpha_grad() {
    // θ₀ = 1, g = 2θ, α = 0.1.
    // step 1: θ = 1 − 0.1·2 = 0.8
    // step 2: θ = 0.8 − 0.1·1.6 = 0.64
    let t = run(&mut Sgd::new(0.1), &[1.0], 2);
    assert_abs_diff_eq!(t[0][0], 0.8, epsilon = 1e-15);
    assert_abs_diff_eq!(t[1][0], 0.64, epsilon = 1e-15);
}

#[test]
fn sgd_momentum() {
    // μ = 0.9, α = 0.1.
    // step 1: g = 2, b = 2, θ = 1 − 0.2 = 0.8
    // step 2: g = 1.6, b = 0.9·2 + 1.6 = 3.4, θ = 0.8 − 0.34 = 0.46
    let t = run(&mut Sgd::new(0.1).momentum(0.9), &[1.0], 2);
    assert_abs_diff_eq!(t[0][0], 0.8, epsilon = 1e-15);
    assert_abs_diff_eq!(t[1][0], 0.46, epsilon = 1e-15);
}

#[test]
fn sgd_nesterov() {
    // μ = 0.9, α = 0.1.
    // step 1: g = 2, b = 2, d = g + μb = 3.8, θ = 1 − 0.38 = 0.62
    // step 2: g = 1.24, b = 1.8 + 1.24 = 3.04, d = 1.24 + 2.736 = 3.976,
    //         θ = 0.62 − 0.3976 = 0.2224
    let t = run(&mut Sgd::new(0.1).momentum(0.9).nesterov(true), &[1.0], 2);
    assert_abs_diff_eq!(t[0][0], 0.62, epsilon = 1e-15);
    assert_abs_diff_eq!(t[1][0], 0.2224, epsilon = 1e-14);
}

#[test]
fn sgd_weight_decay_is_l2() {
    // λ = 0.5, α = 0.1: g' = 2θ + 0.5θ = 2.5θ, so θ ← θ·(1 − 0.25) = 0.75θ.
    // step 1: 0.75; step 2: 0.5625
    let t = run(&mut Sgd::new(0.1).weight_decay(0.5), &[1.0], 2);
    assert_abs_diff_eq!(t[0][0], 0.75, epsilon = 1e-15);
    assert_abs_diff_eq!(t[1][0], 0.5625, epsilon = 1e-15);
}

#[test]
fn adam_two_steps() {
    // α = 0.1, β = (0.9, 0.999), ε = 1e-8, θ₀ = 1.
    // step 1: g = 2, m = 0.2, v = 0.004, m̂ = 2, v̂ = 4,
    //         θ = 1 − 0.1·2/(2 + 1e-8) = 0.9000000005
    // step 2: g = 1.800000001, m = 0.18 + 0.1800000001 = 0.3600000001,
    //         v = 0.003996 + 0.001·3.240000003600... = 0.0072360000036,
    //         m̂ = m/0.19, v̂ = v/0.001999,
    //         θ = θ₁ − 0.1·m̂/(√v̂ + 1e-8)
    let t = run(&mut Adam::new(0.1), &[1.0], 2);
    let theta1 = 1.0 - 0.1 * 2.0 / (2.0 + 1e-8);
    assert_abs_diff_eq!(t[0][0], theta1, epsilon = 1e-15);
    let g = 2.0 * theta1;
    let m = 0.9 * 0.2 + 0.1 * g;
    let v = 0.999 * 0.004 + 0.001 * g * g;
    let theta2 = theta1 - 0.1 * (m / 0.19) / ((v / (1.0 - 0.999f64.powi(2))).sqrt() + 1e-8);
    assert_abs_diff_eq!(t[1][0], theta2, epsilon = 1e-15);
    // Numerically: m̂ = 1.894737, v̂ = 3.619810, √v̂ = 1.902580,
    // θ₂ = 0.9 − 0.1·0.995877 = 0.800412 (Adam's first steps are ≈ α each).
    assert_abs_diff_eq!(t[1][0], 0.8004122, epsilon = 1e-7);
}

#[test]
fn adamw_decouples_weight_decay() {
    // α = 0.1, λ = 0.5: θ ← θ(1 − αλ) = 0.95θ first, then the Adam step on
    // the gradient of L alone (g = 2θ at the *old* θ).
    // step 1: g = 2, θ = 0.95 − 0.1·2/(2 + 1e-8) = 0.8500000005
    let t = run(&mut Adam::adamw(0.1, 0.5), &[1.0], 2);
    let theta1 = 0.95 - 0.1 * 2.0 / (2.0 + 1e-8);
    assert_abs_diff_eq!(t[0][0], theta1, epsilon = 1e-15);
    let g = 2.0 * theta1;
    let m = 0.9 * 0.2 + 0.1 * g;
    let v = 0.999 * 0.004 + 0.001 * g * g;
    let theta2 = theta1 * 0.95 - 0.1 * (m / 0.19) / ((v / (1.0 - 0.999f64.powi(2))).sqrt() + 1e-8);
    assert_abs_diff_eq!(t[1][0], theta2, epsilon = 1e-15);
}

#[test]
fn adam_l2_weight_decay_adds_to_gradient() {
    // λ = 0.5: g = 2θ + 0.5θ = 2.5 at θ = 1; m̂ = 2.5, v̂ = 6.25,
    // θ = 1 − 0.1·2.5/(2.5 + 1e-8) = 0.9000000004
    let t = run(&mut Adam::new(0.1).weight_decay(0.5), &[1.0], 1);
    assert_abs_diff_eq!(t[0][0], 1.0 - 0.1 * 2.5 / (2.5 + 1e-8), epsilon = 1e-15);
}

#[test]
fn clipping_scales_by_global_norm() {
    // θ = (3, 4): g = (6, 8), ‖g‖ = 10. Clip to 1: g ← g·1/(10 + 1e-6).
    // SGD α = 1: θ = (3 − 0.6, 4 − 0.8) up to the 1e-6 guard.
    let t = run(&mut Sgd::new(1.0).max_grad_norm(1.0), &[3.0, 4.0], 1);
    let c = 1.0 / (10.0 + 1e-6);
    assert_abs_diff_eq!(t[0][0], 3.0 - 6.0 * c, epsilon = 1e-15);
    assert_abs_diff_eq!(t[0][1], 4.0 - 8.0 * c, epsilon = 1e-15);
    // A norm under the limit is left alone.
    let t = run(&mut Sgd::new(1.0).max_grad_norm(100.0), &[3.0, 4.0], 1);
    assert_eq!(t[0], vec![-3.0, -4.0]);
}

#[test]
fn global_norm_and_unused_params() {
    let p = Param::new("a", Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap());
    let mut unused = Param::new("b", Tensor::from_vec(vec![1.0f64], &[1]).unwrap());
    let tape = Tape::new();
    let _ = unused.var(&tape).unwrap();
    let l = p.var(&tape).unwrap().square().unwrap().sum_all().unwrap();
    let grads = by_name(&[("a", &p), ("b", &unused)], &tape.backward(l).unwrap());
    assert_abs_diff_eq!(grads.global_norm(), 10.0, epsilon = 1e-12);
    assert_eq!(grads.names().collect::<Vec<_>>(), ["a"]);
    // A parameter the loss does not depend on is skipped, and reported.
    let mut p = p;
    let report = Adam::new(0.1)
        .step(
            vec![("a".into(), &mut p), ("b".into(), &mut unused)],
            &grads,
        )
        .unwrap();
    assert_eq!(report.updated, ["a"]);
    assert_eq!(report.skipped, ["b"]);
    assert_eq!(unused.value().to_vec(), vec![1.0]);
    // Stepping it alone is an error: nothing reaches it.
    let err = Adam::new(0.1)
        .step(vec![("b".into(), &mut unused)], &grads)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("none of the gradients (a)") && err.contains("(b)"),
        "{err}"
    );
}

// ----- the in-place, element-type path --------------------------------

/// Every option at once, for the comparisons below.
fn optimisers() -> Vec<(&'static str, MakeOpt)> {
    vec![
        ("sgd", || Box::new(Sgd::new(0.1))),
        ("sgd+wd", || Box::new(Sgd::new(0.1).weight_decay(0.05))),
        ("momentum", || Box::new(Sgd::new(0.1).momentum(0.9))),
        ("nesterov+wd+clip", || {
            Box::new(
                Sgd::new(0.1)
                    .momentum(0.8)
                    .nesterov(true)
                    .weight_decay(0.01)
                    .max_grad_norm(0.5),
            )
        }),
        ("adam", || Box::new(Adam::new(0.01))),
        ("adam+l2+clip", || {
            Box::new(Adam::new(0.01).weight_decay(0.1).max_grad_norm(1.0))
        }),
        ("adamw", || {
            Box::new(Adam::adamw(0.01, 0.1).betas(0.8, 0.99).eps(1e-6))
        }),
    ]
}

/// Builds a fresh optimiser.
type MakeOpt = fn() -> Box<dyn Opt>;

/// An optimiser for both element types.
trait Opt: Optimizer<f32> + Optimizer<f64> {}
impl<O: Optimizer<f32> + Optimizer<f64>> Opt for O {}

/// The documented update rules, written out in `f64`, one element at a time:
/// the oracle for the fused in-place loops. `grads[s][p]` is the gradient of
/// parameter `p` at step `s`.
fn reference(name: &str, theta0: &[Vec<f64>], grads: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let mut theta = theta0.to_vec();
    let mut buf: Vec<Vec<f64>> = theta.iter().map(|t| vec![0.0; t.len()]).collect();
    let mut m = buf.clone();
    let mut v = buf.clone();
    for (s, gs) in grads.iter().enumerate() {
        let t_step = (s + 1) as i32;
        let norm = gs.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
        let clip = |max: f64| (max / (norm + 1e-6)).min(1.0);
        for (p, g) in gs.iter().enumerate() {
            for i in 0..g.len() {
                let th = &mut theta[p][i];
                match name {
                    "sgd" => *th -= 0.1 * g[i],
                    "sgd+wd" => *th -= 0.1 * (g[i] + 0.05 * *th),
                    "momentum" => {
                        let b = &mut buf[p][i];
                        *b = if s == 0 { g[i] } else { 0.9 * *b + g[i] };
                        *th -= 0.1 * *b;
                    }
                    "nesterov+wd+clip" => {
                        let d = g[i] * clip(0.5) + 0.01 * *th;
                        let b = &mut buf[p][i];
                        *b = if s == 0 { d } else { 0.8 * *b + d };
                        *th -= 0.1 * (d + 0.8 * *b);
                    }
                    _ => {
                        let (lr, b1, b2, eps) = match name {
                            "adamw" => (0.01, 0.8, 0.99, 1e-6),
                            _ => (0.01, 0.9, 0.999, 1e-8),
                        };
                        let mut gi = g[i];
                        if name == "adam+l2+clip" {
                            gi = gi * clip(1.0) + 0.1 * *th;
                        }
                        if name == "adamw" {
                            *th *= 1.0 - lr * 0.1;
                        }
                        let (m, v) = (&mut m[p][i], &mut v[p][i]);
                        *m = b1 * *m + (1.0 - b1) * gi;
                        *v = b2 * *v + (1.0 - b2) * gi * gi;
                        let mh = *m / (1.0 - b1.powi(t_step));
                        let vh = *v / (1.0 - b2.powi(t_step));
                        *th -= lr * mh / (vh.sqrt() + eps);
                    }
                }
            }
        }
    }
    theta
}

/// Runs `steps` steps of `opt` on a large weight (45 000 elements, above the
/// parallel threshold, so several pieces) and a small bias, with the loss
/// `Σ (c ⊙ W)² + Σ (b − 1)²`. Returns θ₀, each step's gradients and the
/// final θ, all as `f64`.
#[allow(clippy::type_complexity)]
fn run_model<T: tapegrad_tensor::Element>(
    opt: &mut dyn Optimizer<T>,
    steps: usize,
) -> (Vec<Vec<f64>>, Vec<Vec<Vec<f64>>>, Vec<Vec<f64>>) {
    let f64s = |t: &Tensor<T>| t.to_vec().iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let mut w = Param::new("w", Tensor::<T>::uniform_seeded(&[300, 150], -1.0, 1.0, 5));
    let mut b = Param::new("b", Tensor::<T>::uniform_seeded(&[7], -1.0, 1.0, 6));
    let c = Tensor::<T>::uniform_seeded(&[300, 150], 0.5, 1.5, 7);
    let theta0 = vec![f64s(w.value()), f64s(b.value())];
    let mut seen = Vec::new();
    for _ in 0..steps {
        let grads = {
            let tape = Tape::new();
            let lw = w.var(&tape).unwrap().mul(tape.constant(c.clone())).unwrap();
            let lw = lw.square().unwrap().sum_all().unwrap();
            let one = tape.constant(Tensor::<T>::ones(&[7]));
            let lb = b
                .var(&tape)
                .unwrap()
                .sub(one)
                .unwrap()
                .square()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = tape.backward(lw.add(lb).unwrap()).unwrap();
            by_name(&[("w", &w), ("b", &b)], &grads)
        };
        seen.push(vec![
            f64s(grads.get("w").unwrap()),
            f64s(grads.get("b").unwrap()),
        ]);
        opt.step(vec![("w".into(), &mut w), ("b".into(), &mut b)], &grads)
            .unwrap();
    }
    (theta0, seen, vec![f64s(w.value()), f64s(b.value())])
}

fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn f64_updates_match_the_written_out_rules() {
    // Same arithmetic in the same type: SGD is bit-for-bit the same, Adam
    // within an ulp or two (its denominator is evaluated as PyTorch does,
    // √v/√(1−β₂ᵗ) + ε; measured at most 2.2e-16 here).
    for (name, make) in optimisers() {
        let mut opt = make();
        let (theta0, grads, got) = run_model::<f64>(&mut *opt, 4);
        let want = reference(name, &theta0, &grads);
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-15, "{name}: max difference {d}");
    }
}

#[test]
fn f32_updates_run_in_f32_within_rounding_of_the_f64_rules() {
    // The update now runs in f32 (as PyTorch's does) instead of widening to
    // f64: each step adds an f32 rounding or two (an ulp of |θ| ≤ ~1.5 is at
    // most 1.2e-7; measured at most 2.5e-7 after four steps).
    for (name, make) in optimisers() {
        let mut opt = make();
        let (theta0, grads, got) = run_model::<f32>(&mut *opt, 4);
        let want = reference(name, &theta0, &grads);
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-6, "{name}: max difference {d}");
        assert_ne!(got, theta0, "{name}: the parameters moved");
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    for (name, make) in optimisers() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| run_model::<f32>(&mut *make(), 3).2)
        };
        let one = run(1);
        let bits = |v: &[Vec<f64>]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&run(2)), "{name}");
        assert_eq!(bits(&one), bits(&run(3)), "{name}");
    }
}

#[test]
fn a_clone_taken_before_step_keeps_its_values() {
    for (name, make) in optimisers() {
        let mut opt = make();
        let mut p = Param::new(
            "w",
            Tensor::<f32>::uniform_seeded(&[200, 200], -1.0, 1.0, 1),
        );
        let before = p.value().clone();
        let copy = before.to_vec();
        let tape = Tape::new();
        let node = p.var(&tape).unwrap();
        let l = node.square().unwrap().sum_all().unwrap();
        let grads = by_name(&[("w", &p)], &tape.backward(l).unwrap());
        Optimizer::<f32>::step(&mut *opt, vec![("w".into(), &mut p)], &grads).unwrap();
        // The clone and the tape's node (both share the old buffer) are intact,
        assert_eq!(before.to_vec(), copy, "{name}");
        assert_eq!(node.value().to_vec(), copy, "{name}");
        // the parameter moved, and no longer shares the old buffer.
        assert_ne!(p.value().to_vec(), copy, "{name}");
        assert!(!p.value().shares_storage_with(&before), "{name}");
    }
}

#[test]
fn a_sole_owner_is_updated_in_place_without_a_copy() {
    for (name, make) in optimisers() {
        let mut opt = make();
        let mut p = Param::new(
            "w",
            Tensor::<f32>::uniform_seeded(&[200, 200], -1.0, 1.0, 1),
        );
        let ptr = p.value().storage_slice().as_ptr();
        for _ in 0..3 {
            let grads = {
                let tape = Tape::new();
                let l = p.var(&tape).unwrap().square().unwrap().sum_all().unwrap();
                by_name(&[("w", &p)], &tape.backward(l).unwrap())
            }; // the tape (and its handle on p's buffer) is gone
            Optimizer::<f32>::step(&mut *opt, vec![("w".into(), &mut p)], &grads).unwrap();
            assert_eq!(p.value().storage_slice().as_ptr(), ptr, "{name}");
        }
        // Gradients are values: a step leaves them as they were.
        let tape = Tape::<f32>::new();
        let l = p.var(&tape).unwrap().sum_all().unwrap();
        let grads = tape.backward(l).unwrap();
        let before = p.grad(&grads).unwrap().to_vec();
        let named = by_name(&[("w", &p)], &grads);
        Optimizer::<f32>::step(&mut *opt, vec![("w".into(), &mut p)], &named).unwrap();
        assert_eq!(p.grad(&grads).unwrap().to_vec(), before, "{name}");
    }
}

#[test]
fn a_strided_gradient_is_read_in_order() {
    // L = Σ θ: the gradient is a broadcast of one 1, not a contiguous buffer.
    let mut p = Param::new(
        "w",
        Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap(),
    );
    let tape = Tape::new();
    let l = p.var(&tape).unwrap().sum_all().unwrap();
    let grads = by_name(&[("w", &p)], &tape.backward(l).unwrap());
    Sgd::new(0.5)
        .step(vec![("w".into(), &mut p)], &grads)
        .unwrap();
    assert_eq!(p.value().to_vec(), vec![0.5, 1.5, 2.5, 3.5]);
}

#[test]
fn one_optimiser_for_two_element_types_is_an_error_not_a_mixup() {
    let mut opt = Adam::new(0.1);
    run(&mut opt, &[1.0], 1);
    let mut p = Param::new("theta", Tensor::from_vec(vec![1.0f32], &[1]).unwrap());
    let tape = Tape::new();
    let l = p.var(&tape).unwrap().square().unwrap().sum_all().unwrap();
    let grads = by_name(&[("theta", &p)], &tape.backward(l).unwrap());
    let err = opt
        .step(vec![("theta".into(), &mut p)], &grads)
        .unwrap_err();
    assert!(err.to_string().contains("element type"), "{err}");
}
