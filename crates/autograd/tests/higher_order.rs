//! Gradients of gradients: closed-form second and third derivatives,
//! Hessians, Hessian-vector products and a trained gradient penalty.

use tapegrad_autograd::{gradcheck, hessian, hvp, Result, Tape, Var};
use tapegrad_tensor::Tensor;

const XS: [f64; 5] = [-1.7, -0.4, 0.3, 0.9, 2.2];

/// Elementwise first and second derivatives of `f` at `xs`, through
/// `grad_graph` then `grad` (f acts elementwise, so the gradient of
/// `Σ f'(x)` is `f''(x)` elementwise).
fn d1_d2(xs: &[f64], f: for<'t> fn(Var<'t, f64>) -> Result<Var<'t, f64>>) -> (Vec<f64>, Vec<f64>) {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(xs.to_vec(), &[xs.len()]).unwrap());
    let y = f(x).unwrap().sum_all().unwrap();
    let d1 = tape.grad_graph(&[y], &[x]).unwrap()[0].unwrap();
    let d2 = tape.grad(&[d1.sum_all().unwrap()], &[x]).unwrap()[0]
        .clone()
        .unwrap();
    (d1.value().to_vec(), d2.to_vec())
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn second_derivative_of_tanh() {
    // tanh' = 1 − t², tanh'' = −2t(1 − t²).
    let (d1, d2) = d1_d2(&XS, |x| x.tanh());
    let t: Vec<f64> = XS.iter().map(|x| x.tanh()).collect();
    assert_close(
        &d1,
        &t.iter().map(|t| 1.0 - t * t).collect::<Vec<_>>(),
        1e-14,
    );
    assert_close(
        &d2,
        &t.iter()
            .map(|t| -2.0 * t * (1.0 - t * t))
            .collect::<Vec<_>>(),
        1e-13,
    );
}

#[test]
fn second_derivative_of_sigmoid() {
    // σ' = σ(1 − σ), σ'' = σ(1 − σ)(1 − 2σ).
    let (d1, d2) = d1_d2(&XS, |x| x.sigmoid());
    let s: Vec<f64> = XS.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
    assert_close(
        &d1,
        &s.iter().map(|s| s * (1.0 - s)).collect::<Vec<_>>(),
        1e-14,
    );
    let want: Vec<f64> = s.iter().map(|s| s * (1.0 - s) * (1.0 - 2.0 * s)).collect();
    assert_close(&d2, &want, 1e-13);
}

#[test]
fn second_derivative_of_exp() {
    // exp'' = exp.
    let (d1, d2) = d1_d2(&XS, |x| x.exp());
    let e: Vec<f64> = XS.iter().map(|x| x.exp()).collect();
    assert_close(&d1, &e, 1e-15);
    assert_close(&d2, &e, 1e-15);
}

#[test]
fn second_derivative_of_ln() {
    // ln' = 1/x, ln'' = −1/x².
    let xs = [0.2, 0.7, 1.0, 3.5];
    let (d1, d2) = d1_d2(&xs, |x| x.ln());
    assert_close(&d1, &xs.map(|x| 1.0 / x), 1e-15);
    assert_close(&d2, &xs.map(|x| -1.0 / (x * x)), 1e-14);
}

#[test]
fn second_derivative_of_powf() {
    // (xᵖ)'' = p(p − 1)x^(p−2): p = 3 on any sign, p = 2.5 and −1.5 on x > 0.
    let (_, d2) = d1_d2(&XS, |x| x.powf(3.0));
    assert_close(&d2, &XS.map(|x| 6.0 * x), 1e-14);
    let xs = [0.3, 1.0, 2.5];
    let (d1, d2) = d1_d2(&xs, |x| x.powf(2.5));
    assert_close(&d1, &xs.map(|x| 2.5 * x.powf(1.5)), 1e-14);
    assert_close(&d2, &xs.map(|x| 3.75 * x.powf(0.5)), 1e-14);
    let (_, d2) = d1_d2(&xs, |x| x.powf(-1.5));
    assert_close(&d2, &xs.map(|x| 3.75 * x.powf(-3.5)), 1e-13);
}

#[test]
fn third_derivatives() {
    // tanh''' = −2(1 − t²)(1 − 3t²); (x⁴)''' = 24x; sin''' = −cos.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(XS.to_vec(), &[5]).unwrap());
    let third = |y: Var<'_, f64>| {
        let d1 = tape.grad_graph(&[y.sum_all()?], &[x])?[0].unwrap();
        let d2 = tape.grad_graph(&[d1.sum_all()?], &[x])?[0].unwrap();
        Ok::<_, tapegrad_autograd::Error>(
            tape.grad(&[d2.sum_all()?], &[x])?[0]
                .clone()
                .unwrap()
                .to_vec(),
        )
    };
    let t = XS.map(|x| x.tanh());
    let want = t.map(|t| -2.0 * (1.0 - t * t) * (1.0 - 3.0 * t * t));
    assert_close(&third(x.tanh().unwrap()).unwrap(), &want, 1e-12);
    assert_close(
        &third(x.powf(4.0).unwrap()).unwrap(),
        &XS.map(|x| 24.0 * x),
        1e-13,
    );
    assert_close(
        &third(x.sin().unwrap()).unwrap(),
        &XS.map(|x| -x.cos()),
        1e-14,
    );
}

/// f(x) = ½ xᵀAx + bᵀx for a non-symmetric A.
const A: [f64; 9] = [2.0, 1.0, -3.0, 0.5, 4.0, 1.5, 2.0, -1.0, 1.0];
const B: [f64; 3] = [0.3, -0.2, 1.0];

fn quadratic<'t>(tape: &'t Tape<f64>, x: Var<'t, f64>) -> Result<Var<'t, f64>> {
    let a = tape.constant(Tensor::from_vec(A.to_vec(), &[3, 3])?);
    let b = tape.constant(Tensor::from_vec(B.to_vec(), &[3])?);
    x.matmul(a.matmul(x)?)?.mul_scalar(0.5)?.add(b.matmul(x)?)
}

fn symmetric_part() -> Vec<f64> {
    (0..9)
        .map(|k| 0.5 * (A[k] + A[(k % 3) * 3 + k / 3]))
        .collect()
}

#[test]
fn hessian_of_quadratic_form_row_by_row() {
    // ∇f = ½(A + Aᵀ)x + b, so H = (A + Aᵀ)/2, whatever x is.
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![0.7, -1.2, 2.0], &[3]).unwrap());
    let f = quadratic(&tape, x).unwrap();
    let g = tape.grad_graph(&[f], &[x]).unwrap()[0].unwrap();
    // The gradient itself: ½(A + Aᵀ)x + b.
    let s = symmetric_part();
    let xv = [0.7, -1.2, 2.0];
    let want_g: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| s[i * 3 + j] * xv[j]).sum::<f64>() + B[i])
        .collect();
    assert_close(&g.value().to_vec(), &want_g, 1e-14);
    let mut h = Vec::new();
    for i in 0..3 {
        let gi = g.select(0, i).unwrap();
        h.extend(tape.grad(&[gi], &[x]).unwrap()[0].clone().unwrap().to_vec());
    }
    assert_close(&h, &s, 1e-15);
    // The public helper agrees, at another point.
    let h2 = hessian(
        quadratic,
        &Tensor::from_vec(vec![5.0, 0.0, -3.0], &[3]).unwrap(),
    )
    .unwrap();
    assert_eq!(h2.shape(), &[3, 3]);
    assert_close(&h2.to_vec(), &s, 1e-15);
}

/// A nonlinear f: Σ tanh(W·x) with a fixed W [4, 3].
fn mlp_like<'t>(tape: &'t Tape<f64>, x: Var<'t, f64>) -> Result<Var<'t, f64>> {
    let w = tape.constant(Tensor::uniform_seeded(&[4, 3], -1.5, 1.5, 42));
    w.matmul(x)?.tanh()?.sum_all()
}

fn grad_at(x: &[f64]) -> Vec<f64> {
    let tape = Tape::<f64>::new();
    let xv = tape.leaf(Tensor::from_vec(x.to_vec(), &[3]).unwrap());
    let f = mlp_like(&tape, xv).unwrap();
    tape.backward(f).unwrap().get(xv).unwrap().to_vec()
}

#[test]
fn hessian_vector_product_matches_finite_differences() {
    let x = Tensor::uniform_seeded(&[3], -1.0, 1.0, 7);
    let v = Tensor::uniform_seeded(&[3], -1.0, 1.0, 8);
    // Hv = ∇⟨∇f, v⟩, by hand with grad_graph …
    let tape = Tape::<f64>::new();
    let xv = tape.leaf(x.clone());
    let g = tape
        .grad_graph(&[mlp_like(&tape, xv).unwrap()], &[xv])
        .unwrap()[0]
        .unwrap();
    let gv = g.mul(tape.constant(v.clone())).unwrap().sum_all().unwrap();
    let hv = tape.grad(&[gv], &[xv]).unwrap()[0]
        .clone()
        .unwrap()
        .to_vec();
    // … against (∇f(x + εv) − ∇f(x − εv)) / 2ε.
    let eps = 1e-5;
    let (xs, vs) = (x.to_vec(), v.to_vec());
    let up: Vec<f64> = xs.iter().zip(&vs).map(|(x, v)| x + eps * v).collect();
    let down: Vec<f64> = xs.iter().zip(&vs).map(|(x, v)| x - eps * v).collect();
    let fd: Vec<f64> = grad_at(&up)
        .iter()
        .zip(grad_at(&down))
        .map(|(a, b)| (a - b) / (2.0 * eps))
        .collect();
    assert!(fd.iter().any(|x| x.abs() > 0.1), "a non-trivial Hv: {fd:?}");
    assert_close(&hv, &fd, 1e-7);
    // The helper gives the same vector, and equals the full Hessian times v.
    let hv2 = hvp(mlp_like, &x, &v).unwrap().to_vec();
    assert_close(&hv2, &hv, 1e-14);
    let h = hessian(mlp_like, &x).unwrap().to_vec();
    let hv3: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| h[i * 3 + j] * vs[j]).sum())
        .collect();
    assert_close(&hv3, &hv, 1e-13);
    // A Hessian is symmetric.
    for i in 0..3 {
        for j in 0..3 {
            assert!((h[i * 3 + j] - h[j * 3 + i]).abs() < 1e-14);
        }
    }
    // hvp checks the vector's shape.
    assert!(hvp(mlp_like, &x, &Tensor::ones(&[2])).is_err());
}

/// Data for the gradient-penalty model: 8 points in 3-d, targets in (−1, 1).
fn data() -> (Tensor<f64>, Tensor<f64>) {
    let x = Tensor::uniform_seeded(&[8, 3], -1.0, 1.0, 11);
    let y = Tensor::uniform_seeded(&[8], -0.8, 0.8, 12);
    (x, y)
}

/// total = mean((tanh(X·w + b) − y)²) + λ·mean(‖∂out/∂X‖²), with the input
/// gradient recorded by grad_graph so the penalty is differentiated too.
fn penalised_loss<'t>(
    tape: &'t Tape<f64>,
    w: Var<'t, f64>,
    b: Var<'t, f64>,
) -> Result<Var<'t, f64>> {
    let (x, y) = data();
    let xv = tape.leaf(x);
    let out = xv.matmul(w)?.add(b)?.tanh()?;
    let fit = out.sub(tape.constant(y))?.square()?.mean_all()?;
    let gx = tape.grad_graph(&[out.sum_all()?], &[xv])?[0].unwrap();
    let penalty = gx.square()?.mean_all()?;
    fit.add(penalty.mul_scalar(0.5)?)
}

#[test]
fn gradient_penalty_gradients_are_correct() {
    // The gradient of the penalised loss needs tanh'' and matmul's
    // backward-of-backward; check it against finite differences.
    let r = gradcheck(
        |tape, v| penalised_loss(tape, v[0], v[1]),
        &[
            Tensor::uniform_seeded(&[3], -1.0, 1.0, 3),
            Tensor::scalar(0.1),
        ],
    )
    .unwrap();
    assert!(r.passed, "{r}");
}

#[test]
fn gradient_penalty_trains() {
    let mut w = Tensor::from_vec(vec![1.5, -2.0, 1.0], &[3]).unwrap();
    let mut b = Tensor::scalar(0.5);
    let mut losses = Vec::new();
    for _ in 0..60 {
        let tape = Tape::<f64>::new();
        let (wv, bv) = (tape.param("w", w.clone()), tape.param("b", b.clone()));
        let loss = penalised_loss(&tape, wv, bv).unwrap();
        losses.push(loss.item().unwrap());
        let g = tape.grad(&[loss], &[wv, bv]).unwrap();
        w = w
            .sub(&g[0].as_ref().unwrap().mul_scalar(0.3).unwrap())
            .unwrap();
        b = b
            .sub(&g[1].as_ref().unwrap().mul_scalar(0.3).unwrap())
            .unwrap();
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.5 * first, "{first} → {last}");
    assert!(
        losses.windows(2).all(|p| p[1] <= p[0] + 1e-12),
        "{losses:?}"
    );
}
