//! Forward mode (tangent rules, `jvp`), Jacobians and forward-over-reverse
//! Hessian-vector products, checked in f64 against central finite
//! differences and against reverse mode, over every built-in op and over
//! seeded random graphs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{
    batch_jacobian, hessian, hvp, hvp_forward_over_reverse, hvp_reverse_over_reverse, jacobian,
    jacobian_with, jvp, BackwardCtx, InputGrads, JacobianMode, Op, Result, Tape, Var,
};
use tapegrad_tensor::{Element, Tensor};

type F = for<'t> fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>;

fn rnd(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform_seeded(shape, -1.0, 1.0, seed)
}

fn pos(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform_seeded(shape, 0.5, 2.0, seed)
}

/// `f` evaluated on plain values (no tangents), flattened.
fn eval(f: F, x: &[Tensor<f64>]) -> Vec<f64> {
    let tape = Tape::new();
    let v: Vec<_> = x.iter().map(|x| tape.leaf(x.clone())).collect();
    f(&tape, &v).unwrap().value().to_vec()
}

/// Checks `jvp(f, x, v)` against the central difference
/// `(f(x + εv) − f(x − εv)) / 2ε` and against reverse mode by the dot
/// product test `⟨r, J·v⟩ = ⟨Jᵀ·r, v⟩` for a fixed pseudo-random `r`.
#[track_caller]
fn check_jvp(f: F, x: &[Tensor<f64>], seed: u64) {
    let v: Vec<Tensor<f64>> = x
        .iter()
        .enumerate()
        .map(|(k, x)| rnd(x.dims(), seed * 31 + k as u64))
        .collect();
    let (y, dy) = jvp(f, x, &v).unwrap();
    assert_eq!(y.to_vec(), eval(f, x), "jvp changed the value");
    assert_eq!(dy.dims(), y.dims());
    let eps = 1e-6;
    let shifted = |s: f64| -> Vec<Tensor<f64>> {
        x.iter()
            .zip(&v)
            .map(|(x, v)| x.add(&v.mul_scalar(s * eps).unwrap()).unwrap())
            .collect()
    };
    let (plus, minus) = (eval(f, &shifted(1.0)), eval(f, &shifted(-1.0)));
    for (k, d) in dy.to_vec().iter().enumerate() {
        let numeric = (plus[k] - minus[k]) / (2.0 * eps);
        assert!(
            (d - numeric).abs() <= 1e-5 + 1e-4 * numeric.abs(),
            "tangent {k}: forward mode {d}, finite difference {numeric}"
        );
    }
    // Reverse mode: ⟨Jᵀ·r, v⟩.
    let tape = Tape::new();
    let vars: Vec<_> = x.iter().map(|x| tape.leaf(x.clone())).collect();
    let out = f(&tape, &vars).unwrap();
    let r = rnd(out.value().dims(), seed + 999);
    let g = tape.backward_with_seed(out, r.clone()).unwrap();
    let reverse: f64 = vars
        .iter()
        .zip(&v)
        .map(|(&x, v)| {
            g.get_or_zeros(x)
                .mul(v)
                .unwrap()
                .sum_all()
                .unwrap()
                .item()
                .unwrap()
        })
        .sum();
    let forward = r.mul(&dy).unwrap().sum_all().unwrap().item().unwrap();
    assert!(
        (reverse - forward).abs() <= 1e-10 * (1.0 + reverse.abs()),
        "⟨r, J·v⟩ = {forward} but ⟨Jᵀ·r, v⟩ = {reverse}"
    );
}

#[test]
fn every_builtin_op_has_a_tangent_rule_matching_finite_differences_and_reverse_mode() {
    let cases: Vec<(&str, F, Vec<Tensor<f64>>)> = vec![
        (
            "add",
            |_, v| v[0].add(v[1]),
            vec![rnd(&[2, 3], 1), rnd(&[3], 2)],
        ),
        (
            "sub",
            |_, v| v[0].sub(v[1]),
            vec![rnd(&[2, 1], 3), rnd(&[1, 3], 4)],
        ),
        (
            "mul",
            |_, v| v[0].mul(v[1]),
            vec![rnd(&[2, 3], 5), rnd(&[3], 6)],
        ),
        (
            "div",
            |_, v| v[0].div(v[1]),
            vec![rnd(&[2, 3], 7), pos(&[2, 1], 8)],
        ),
        (
            "pow",
            |_, v| v[0].pow(v[1]),
            vec![pos(&[2, 3], 9), rnd(&[3], 10)],
        ),
        ("neg", |_, v| v[0].neg(), vec![rnd(&[4], 11)]),
        (
            "scalars",
            |_, v| v[0].add_scalar(2.0)?.mul_scalar(-1.5),
            vec![rnd(&[4], 12)],
        ),
        ("exp", |_, v| v[0].exp(), vec![rnd(&[4], 13)]),
        ("ln", |_, v| v[0].ln(), vec![pos(&[4], 14)]),
        ("sqrt", |_, v| v[0].sqrt(), vec![pos(&[4], 15)]),
        ("powf", |_, v| v[0].powf(2.5), vec![pos(&[4], 16)]),
        ("sin", |_, v| v[0].sin(), vec![rnd(&[4], 17)]),
        ("cos", |_, v| v[0].cos(), vec![rnd(&[4], 18)]),
        ("tanh", |_, v| v[0].tanh(), vec![rnd(&[4], 19)]),
        ("sigmoid", |_, v| v[0].sigmoid(), vec![rnd(&[4], 20)]),
        ("relu", |_, v| v[0].relu(), vec![rnd(&[6], 21)]),
        ("abs", |_, v| v[0].abs(), vec![rnd(&[6], 22)]),
        ("clamp", |_, v| v[0].clamp(-0.5, 0.5), vec![rnd(&[6], 23)]),
        ("softplus", |_, v| v[0].softplus(), vec![rnd(&[4], 24)]),
        (
            "maximum",
            |_, v| v[0].maximum(v[1]),
            vec![rnd(&[2, 3], 25), rnd(&[3], 26)],
        ),
        (
            "minimum",
            |_, v| v[0].minimum(v[1]),
            vec![rnd(&[2, 3], 27), rnd(&[2, 3], 28)],
        ),
        ("sum", |_, v| v[0].sum(&[1], false), vec![rnd(&[2, 3], 29)]),
        (
            "sum_keep",
            |_, v| v[0].sum(&[0], true),
            vec![rnd(&[2, 3], 30)],
        ),
        (
            "mean",
            |_, v| v[0].mean(&[0, 1], false),
            vec![rnd(&[2, 3], 31)],
        ),
        ("max", |_, v| v[0].max(&[1], false), vec![rnd(&[2, 3], 32)]),
        ("min", |_, v| v[0].min(&[0], true), vec![rnd(&[2, 3], 33)]),
        (
            "var",
            |_, v| v[0].var(&[1], false, 1),
            vec![rnd(&[2, 3], 34)],
        ),
        ("sum_to", |_, v| v[0].sum_to(&[3]), vec![rnd(&[2, 3], 35)]),
        (
            "broadcast",
            |_, v| v[0].broadcast_to(&[2, 3]),
            vec![rnd(&[3], 36)],
        ),
        (
            "logsumexp",
            |_, v| v[0].logsumexp(&[1], false),
            vec![rnd(&[2, 3], 37)],
        ),
        ("softmax", |_, v| v[0].softmax(1), vec![rnd(&[2, 3], 38)]),
        (
            "log_softmax",
            |_, v| v[0].log_softmax(0),
            vec![rnd(&[2, 3], 39)],
        ),
        (
            "matmul",
            |_, v| v[0].matmul(v[1]),
            vec![rnd(&[2, 3], 40), rnd(&[3, 4], 41)],
        ),
        (
            "bmm",
            |_, v| v[0].matmul(v[1]),
            vec![rnd(&[2, 2, 3], 42), rnd(&[3], 43)],
        ),
        (
            "reshape",
            |_, v| v[0].reshape(&[3, 2]),
            vec![rnd(&[2, 3], 44)],
        ),
        (
            "permute",
            |_, v| v[0].permute(&[1, 0]),
            vec![rnd(&[2, 3], 45)],
        ),
        (
            "slice",
            |_, v| v[0].slice(1, 0, 3, 2),
            vec![rnd(&[2, 3], 46)],
        ),
        (
            "concat",
            |_, v| Var::concat(&[v[0], v[1]], 0),
            vec![rnd(&[2, 3], 47), rnd(&[1, 3], 48)],
        ),
        (
            "index_select",
            |_, v| v[0].index_select(0, &[1, 0, 1]),
            vec![rnd(&[2, 3], 49)],
        ),
        (
            "gather_rows",
            |_, v| v[0].gather_rows(&[2, 0]),
            vec![rnd(&[2, 3], 50)],
        ),
        (
            "where",
            |_, v| {
                let cond = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3])?;
                v[0].where_cond(&cond, v[1])
            },
            vec![rnd(&[2, 3], 51), rnd(&[3], 52)],
        ),
    ];
    for (name, f, x) in &cases {
        eprintln!("{name}");
        check_jvp(*f, x, 7);
    }
}

#[test]
fn tangents_of_the_backward_ops_match_finite_differences() {
    // grad_graph records the ops' backward rules (tanh_backward,
    // slice_backward, index_add, scatter_rows, ...); differentiating the
    // gradient in forward mode runs their tangent rules.
    let cases: Vec<(&str, F, Vec<Tensor<f64>>)> = vec![
        (
            "tanh",
            |t, v| grad_of(t, v[0], |x| x.tanh()),
            vec![rnd(&[4], 1)],
        ),
        (
            "sigmoid",
            |t, v| grad_of(t, v[0], |x| x.sigmoid()),
            vec![rnd(&[4], 2)],
        ),
        (
            "relu",
            |t, v| grad_of(t, v[0], |x| x.relu()?.mul(x)),
            vec![rnd(&[6], 3)],
        ),
        (
            "slice",
            |t, v| grad_of(t, v[0], |x| x.slice(0, 1, 4, 2)?.square()),
            vec![rnd(&[5], 4)],
        ),
        (
            "index",
            |t, v| grad_of(t, v[0], |x| x.index_select(0, &[0, 0, 2])?.exp()),
            vec![rnd(&[3], 5)],
        ),
        (
            "gather",
            |t, v| grad_of(t, v[0], |x| x.gather_rows(&[1, 0])?.sin()),
            vec![rnd(&[2, 2], 6)],
        ),
        (
            "softmax",
            |t, v| grad_of(t, v[0], |x| x.softmax(1)?.square()),
            vec![rnd(&[2, 3], 7)],
        ),
    ];
    for (name, f, x) in &cases {
        eprintln!("{name}");
        check_jvp(*f, x, 11);
    }
}

/// The recorded gradient of `Σ g(x)` with respect to `x`.
fn grad_of<'t>(
    tape: &'t Tape<f64>,
    x: Var<'t, f64>,
    g: impl Fn(Var<'t, f64>) -> Result<Var<'t, f64>>,
) -> Result<Var<'t, f64>> {
    // `x` may be a constant when `eval` runs this: differentiate a leaf
    // copy joined to it.
    let y = g(x)?.sum_all()?;
    Ok(tape.grad_graph(&[y], &[x])?[0].unwrap_or(x.mul_scalar(0.0)?))
}

/// y = x³ with a backward rule only: forward mode falls back to reverse.
struct CubeWithoutTangentRule;
impl<T: Element> Op<T> for CubeWithoutTangentRule {
    fn name(&self) -> &str {
        "cube"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].map(|v| v * v * v)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let g = cx
            .grad_output
            .mul(cx.inputs[0].square()?.mul_scalar(3.0)?)?;
        Ok(InputGrads::from_elem(Some(g), 1))
    }
}

/// A forward-only op: no backward rule, no tangent rule.
struct Opaque;
impl<T: Element> Op<T> for Opaque {
    fn name(&self) -> &str {
        "opaque"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].clone())
    }
}

#[test]
fn an_op_without_a_tangent_rule_falls_back_to_reverse_mode() {
    // ẏ = 3x²·ẋ by hand: x = (1, −2), ẋ = (2, 1) gives (6, 12).
    let x = Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap();
    let v = Tensor::from_vec(vec![2.0, 1.0], &[2]).unwrap();
    let (y, dy) = jvp(
        |t, x| t.apply(CubeWithoutTangentRule, &[x[0]])?.mul_scalar(1.0),
        std::slice::from_ref(&x),
        &[v],
    )
    .unwrap();
    assert_eq!(y.to_vec(), vec![1.0, -8.0]);
    assert_eq!(dy.to_vec(), vec![6.0, 12.0]);
    check_jvp(
        |t, x| t.apply(CubeWithoutTangentRule, &[x[0].sin()?])?.exp(),
        &[rnd(&[3], 5)],
        3,
    );
    // Without either rule, the error names the op.
    let err = jvp(
        |t, x| t.apply(Opaque, &[x[0]]),
        std::slice::from_ref(&x),
        std::slice::from_ref(&x),
    )
    .unwrap_err();
    assert!(err.to_string().contains("opaque"), "{err}");
}

#[test]
fn jvp_rejects_mismatched_tangents() {
    let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap();
    let err = jvp(
        |_, x| x[0].exp(),
        std::slice::from_ref(&x),
        &[Tensor::ones(&[3])],
    )
    .unwrap_err();
    assert!(err.to_string().contains("[3]"), "{err}");
    let err = jvp(|_, x| x[0].exp(), std::slice::from_ref(&x), &[]).unwrap_err();
    assert!(err.to_string().contains("1 inputs but 0 tangents"), "{err}");
}

fn mlp<'t>(tape: &'t Tape<f64>, x: Var<'t, f64>) -> Result<Var<'t, f64>> {
    let w1 = tape.constant(rnd(&[2, 5], 70));
    let w2 = tape.constant(rnd(&[5, 3], 71));
    x.matmul(w1)?.tanh()?.matmul(w2)?.softmax(1)
}

#[test]
fn jacobian_modes_agree_with_each_other_and_finite_differences() {
    let x = rnd(&[4, 2], 5);
    let rows = jacobian_with(mlp, &x, JacobianMode::Reverse).unwrap();
    let cols = jacobian_with(mlp, &x, JacobianMode::Forward).unwrap();
    assert_eq!(rows.dims(), [4, 3, 4, 2]);
    let (r, c) = (rows.to_vec(), cols.to_vec());
    for (a, b) in r.iter().zip(&c) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let auto = jacobian(mlp, &x).unwrap().to_vec();
    assert_eq!(auto, c, "8 inputs ≤ 2·12 outputs: forward mode");
    // Finite differences, column by column.
    let eps = 1e-6;
    let f = |x: &Tensor<f64>| {
        let tape = Tape::new();
        mlp(&tape, tape.constant(x.clone()))
            .unwrap()
            .value()
            .to_vec()
    };
    let mut xs = x.to_vec();
    for j in 0..8 {
        xs[j] += eps;
        let plus = f(&Tensor::from_vec(xs.clone(), &[4, 2]).unwrap());
        xs[j] -= 2.0 * eps;
        let minus = f(&Tensor::from_vec(xs.clone(), &[4, 2]).unwrap());
        xs[j] += eps;
        for i in 0..12 {
            let numeric = (plus[i] - minus[i]) / (2.0 * eps);
            assert!((r[i * 8 + j] - numeric).abs() < 1e-6);
        }
    }
    // Per-sample blocks are the diagonal blocks of the full Jacobian.
    for mode in [
        JacobianMode::Reverse,
        JacobianMode::Forward,
        JacobianMode::Auto,
    ] {
        let b = batch_jacobian(mlp, &x, mode).unwrap();
        assert_eq!(b.dims(), [4, 3, 2]);
        let b = b.to_vec();
        for s in 0..4 {
            for i in 0..3 {
                for j in 0..2 {
                    let full = r[((s * 3 + i) * 4 + s) * 2 + j];
                    assert!((b[(s * 3 + i) * 2 + j] - full).abs() < 1e-12);
                }
            }
        }
    }
}

#[test]
fn batch_jacobian_rejects_outputs_without_the_batch_axis() {
    let x = rnd(&[4, 2], 5);
    let err = batch_jacobian(|_, x| x.sum_all(), &x, JacobianMode::Auto).unwrap_err();
    assert!(err.to_string().contains("4 samples"), "{err}");
    let err = batch_jacobian(|_, x| x.exp(), &Tensor::scalar(1.0), JacobianMode::Auto);
    assert!(err.unwrap_err().to_string().contains("0-d"));
}

#[test]
fn hvp_forward_over_reverse_equals_reverse_over_reverse_and_the_hessian() {
    fn f<'t>(_: &'t Tape<f64>, x: Var<'t, f64>) -> Result<Var<'t, f64>> {
        let w = x.constant(rnd(&[3, 4], 80));
        let h = x.unsqueeze(0)?.matmul(w)?.tanh()?;
        h.softplus()?
            .mul(h.sigmoid()?)?
            .sum_all()?
            .add(x.powf(3.0)?.sum_all()?)
    }
    let x = rnd(&[3], 81);
    let v = rnd(&[3], 82);
    let h = hessian(f, &x).unwrap().to_vec();
    let hv_expect: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| h[i * 3 + j] * v.to_vec()[j]).sum())
        .collect();
    for hv in [
        hvp(f, &x, &v).unwrap(),
        hvp_forward_over_reverse(f, &x, &v).unwrap(),
        hvp_reverse_over_reverse(f, &x, &v).unwrap(),
    ] {
        for (a, b) in hv.to_vec().iter().zip(&hv_expect) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
    }
}

/// A seeded random graph over two inputs `[2, 3]` and `[3]`: a chain of
/// unary and binary ops drawn from the smooth built-in ones, each reading
/// one or two earlier values.
fn random_graph<'t>(tape: &'t Tape<f64>, x: &[Var<'t, f64>], seed: u64) -> Result<Var<'t, f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut vals: Vec<Var<'t, f64>> = vec![x[0], x[1].broadcast_to(&[2, 3])?];
    let _ = tape;
    for _ in 0..8 {
        let a = vals[rng.gen_range(0..vals.len())];
        let b = vals[rng.gen_range(0..vals.len())];
        let v = match rng.gen_range(0..12) {
            0 => a.add(b)?,
            1 => a.sub(b)?,
            2 => a.mul(b)?,
            3 => a.div(b.square()?.add_scalar(1.0)?)?,
            4 => a.tanh()?,
            5 => a.sin()?,
            6 => a.sigmoid()?.mul(b)?,
            7 => a.softmax(1)?,
            8 => a.exp()?.mul_scalar(0.5)?,
            9 => a.matmul(b.t()?)?.matmul(b)?.mul_scalar(0.3)?,
            10 => a.sum(&[0], true)?.broadcast_to(&[2, 3])?,
            _ => a.log_softmax(0)?,
        };
        vals.push(v);
    }
    vals.last().unwrap().mul(vals[vals.len() / 2])
}

/// A random graph of one `[2, 3]` input (its column sums as the second).
fn square_graph<'t>(t: &'t Tape<f64>, x: Var<'t, f64>, seed: u64) -> Result<Var<'t, f64>> {
    random_graph(t, &[x, x.sum(&[0], false)?], seed)
}

#[test]
fn random_graphs_forward_and_reverse_agree() {
    for seed in 0..20u64 {
        let f: F = match seed % 4 {
            0 => |t, x| random_graph(t, x, 1000),
            1 => |t, x| random_graph(t, x, 1001),
            2 => |t, x| random_graph(t, x, 1002),
            _ => |t, x| random_graph(t, x, 1003),
        };
        check_jvp(f, &[rnd(&[2, 3], seed), rnd(&[3], seed + 50)], seed);
    }
    // Jacobians of the same graphs, both modes.
    for gseed in 1000..1004u64 {
        let x = rnd(&[2, 3], gseed);
        let r = jacobian_with(|t, x| square_graph(t, x, gseed), &x, JacobianMode::Reverse);
        let c = jacobian_with(|t, x| square_graph(t, x, gseed), &x, JacobianMode::Forward);
        let (r, c) = (r.unwrap().to_vec(), c.unwrap().to_vec());
        for (a, b) in r.iter().zip(&c) {
            assert!((a - b).abs() <= 1e-10 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
}

// ----- checkpointing ------------------------------------------------------

/// A segment: two tanh layers with weights passed as inputs.
fn segment<'s>(_: &'s Tape<f64>, v: &[Var<'s, f64>]) -> Result<Var<'s, f64>> {
    let h = v[0].matmul(v[1])?.tanh()?;
    h.matmul(v[2])?.sin()?.mul(h.sum(&[1], true)?)
}

fn inputs() -> Vec<Tensor<f64>> {
    vec![rnd(&[3, 4], 90), rnd(&[4, 4], 91), rnd(&[4, 4], 92)]
}

#[test]
fn checkpointed_gradients_equal_plain_ones_first_and_second_order() {
    let x = inputs();
    let run = |checkpointed: bool| {
        let tape = Tape::<f64>::new();
        let v: Vec<_> = x.iter().map(|t| tape.leaf(t.clone())).collect();
        let y = if checkpointed {
            tape.checkpoint(&v, segment).unwrap()
        } else {
            segment(&tape, &v).unwrap()
        };
        let l = y.square().unwrap().sum_all().unwrap();
        let first = tape.backward(l).unwrap();
        let first: Vec<Vec<f64>> = v.iter().map(|&v| first.get(v).unwrap().to_vec()).collect();
        // Second order: ∂/∂v ⟨∇_x L, r⟩ through grad_graph.
        let gx = tape.grad_graph(&[l], &[v[0]]).unwrap()[0].unwrap();
        let r = tape.constant(rnd(&[3, 4], 93));
        let s = gx.mul(r).unwrap().sum_all().unwrap();
        let second = tape.grad(&[s], &v).unwrap();
        let second: Vec<Vec<f64>> = second
            .iter()
            .map(|g| g.as_ref().unwrap().to_vec())
            .collect();
        (y.value().to_vec(), first, second, tape.len())
    };
    let (y0, g0, h0, _) = run(false);
    let (y1, g1, h1, _) = run(true);
    assert_eq!(y0, y1);
    for (a, b) in g0.iter().flatten().zip(g1.iter().flatten()) {
        assert!((a - b).abs() < 1e-12, "first order: {a} vs {b}");
    }
    for (a, b) in h0.iter().flatten().zip(h1.iter().flatten()) {
        assert!((a - b).abs() < 1e-12, "second order: {a} vs {b}");
    }
}

#[test]
fn a_checkpointed_segment_keeps_only_its_output_on_the_tape() {
    let x = inputs();
    let tape = Tape::<f64>::new();
    let v: Vec<_> = x.iter().map(|t| tape.leaf(t.clone())).collect();
    let y = tape.checkpoint(&v, segment).unwrap();
    assert_eq!(tape.len(), 4, "three inputs and one checkpoint node");
    assert_eq!(tape.node(y.id()).op, "checkpoint");
    // backward leaves the tape as it was (the recomputation is scratch).
    tape.backward(y.sum_all().unwrap()).unwrap();
    assert_eq!(tape.len(), 5);
}

#[test]
fn checkpoint_passes_gradcheck_and_second_order_gradcheck() {
    let r = tapegrad_autograd::gradcheck(|t, v| t.checkpoint(v, segment), &inputs()).unwrap();
    assert!(r.passed, "{r}");
    let r = tapegrad_autograd::gradcheck_second_order(|t, v| t.checkpoint(v, segment), &inputs())
        .unwrap();
    assert!(r.passed, "{r}");
    // And tangents flow through it.
    check_jvp(|t, v| t.checkpoint(v, segment), &inputs(), 4);
}

#[test]
fn a_parameter_used_inside_but_not_passed_in_is_an_error() {
    let tape = Tape::<f64>::new();
    let w = tape.param_with_key("w", rnd(&[2], 1), 42).unwrap();
    let x = tape.leaf(rnd(&[2], 2));
    // Passed in: the segment's own `param_with_key` resolves to the input.
    let y = tape
        .checkpoint(&[x, w], |t, v| {
            let w = t.param_with_key("w", Tensor::zeros(&[2]), 42)?;
            v[0].mul(w)?.sum_all()
        })
        .unwrap();
    let g = tape.backward(y).unwrap();
    assert_eq!(g.param(42).unwrap().to_vec(), x.value().to_vec());
    // Not passed in: an error naming the parameter.
    let err = tape
        .checkpoint(&[x], |t, v| {
            let w = t.param_with_key("w", Tensor::zeros(&[2]), 42)?;
            v[0].mul(w)?.sum_all()
        })
        .unwrap_err();
    assert!(err.to_string().contains("\"w\""), "{err}");
}
