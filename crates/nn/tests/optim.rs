//! Optimisers against hand-computed updates on L(θ) = Σ θ² (so ∇L = 2θ),
//! starting from θ₀ = 1, two steps each; the arithmetic is in the comments.

use approx::assert_abs_diff_eq;
use tapegrad_autograd::Tape;
use tapegrad_nn::{global_grad_norm, Adam, Optimizer, Param, Sgd};
use tapegrad_tensor::Tensor;

/// Runs `steps` optimiser steps on L(θ) = Σ θ², returning θ after each.
fn run(opt: &mut dyn Optimizer<f64>, theta0: &[f64], steps: usize) -> Vec<Vec<f64>> {
    let mut p = Param::new(
        "theta",
        Tensor::from_vec(theta0.to_vec(), &[theta0.len()]).unwrap(),
    );
    let mut out = Vec::new();
    for _ in 0..steps {
        let tape = Tape::new();
        let l = p.var(&tape).square().unwrap().sum_all().unwrap();
        let grads = tape.backward(l).unwrap();
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
    let _ = unused.var(&tape);
    let l = p.var(&tape).square().unwrap().sum_all().unwrap();
    let grads = tape.backward(l).unwrap();
    assert_abs_diff_eq!(
        global_grad_norm(&[("a".into(), &p), ("b".into(), &unused)], &grads),
        10.0,
        epsilon = 1e-12
    );
    // A parameter the loss does not depend on is not updated.
    let mut opt = Adam::new(0.1);
    opt.step(vec![("b".into(), &mut unused)], &grads).unwrap();
    assert_eq!(unused.value().to_vec(), vec![1.0]);
}
