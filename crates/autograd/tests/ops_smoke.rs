//! A quick first- and second-order gradcheck of every built-in op.

use tapegrad_autograd::{gradcheck, gradcheck_second_order, Result, Tape, Var};
use tapegrad_tensor::Tensor;

fn t(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform_seeded(shape, -1.0, 1.0, seed)
}
fn pos(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform_seeded(shape, 0.5, 2.0, seed)
}

type F = for<'t> fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>;

fn check(name: &str, f: F, inputs: &[Tensor<f64>], second: bool) {
    let r = gradcheck(f, inputs).unwrap();
    assert!(r.passed, "{name}: {r}");
    if second {
        let r = gradcheck_second_order(f, inputs).unwrap();
        assert!(r.passed, "{name} (2nd order): {r}");
    }
}

#[test]
fn every_op_passes_gradcheck() {
    let cases: Vec<(&str, F, Vec<Tensor<f64>>, bool)> = vec![
        (
            "add bcast",
            |_, v| v[0].add(v[1]),
            vec![t(&[2, 3], 1), t(&[3], 2)],
            false,
        ),
        (
            "sub bcast",
            |_, v| v[0].sub(v[1]),
            vec![t(&[2, 1], 1), t(&[1, 3], 2)],
            false,
        ),
        (
            "mul bcast",
            |_, v| v[0].mul(v[1]),
            vec![t(&[2, 3], 1), t(&[2, 1], 2)],
            true,
        ),
        (
            "div",
            |_, v| v[0].div(v[1]),
            vec![t(&[2, 3], 1), pos(&[3], 2)],
            true,
        ),
        (
            "pow",
            |_, v| v[0].pow(v[1]),
            vec![pos(&[2, 3], 1), t(&[3], 2)],
            true,
        ),
        ("neg", |_, v| v[0].neg(), vec![t(&[4], 1)], false),
        (
            "scalars",
            |_, v| v[0].mul_scalar(3.0)?.add_scalar(1.0),
            vec![t(&[4], 1)],
            false,
        ),
        ("exp", |_, v| v[0].exp(), vec![t(&[2, 2], 1)], true),
        ("ln", |_, v| v[0].ln(), vec![pos(&[2, 2], 1)], true),
        ("sqrt", |_, v| v[0].sqrt(), vec![pos(&[3], 1)], true),
        ("powf", |_, v| v[0].powf(3.0), vec![t(&[3], 1)], true),
        ("powf frac", |_, v| v[0].powf(1.5), vec![pos(&[3], 1)], true),
        ("sin", |_, v| v[0].sin(), vec![t(&[3], 1)], true),
        ("cos", |_, v| v[0].cos(), vec![t(&[3], 1)], true),
        ("tanh", |_, v| v[0].tanh(), vec![t(&[2, 3], 1)], true),
        ("sigmoid", |_, v| v[0].sigmoid(), vec![t(&[2, 3], 1)], true),
        ("relu", |_, v| v[0].relu(), vec![t(&[2, 3], 7)], false),
        ("abs", |_, v| v[0].abs(), vec![t(&[2, 3], 7)], false),
        (
            "clamp",
            |_, v| v[0].clamp(-0.5, 0.5),
            vec![t(&[2, 3], 3)],
            false,
        ),
        (
            "softplus",
            |_, v| v[0].softplus(),
            vec![t(&[2, 3], 3)],
            true,
        ),
        (
            "maximum",
            |_, v| v[0].maximum(v[1]),
            vec![t(&[2, 3], 1), t(&[3], 2)],
            false,
        ),
        (
            "minimum",
            |_, v| v[0].minimum(v[1]),
            vec![t(&[2, 3], 1), t(&[3], 2)],
            false,
        ),
        (
            "sum",
            |_, v| v[0].sum(&[0, 2], false)?.square(),
            vec![t(&[2, 3, 2], 1)],
            true,
        ),
        (
            "sum keepdim",
            |_, v| v[0].sum(&[1], true),
            vec![t(&[2, 3], 1)],
            false,
        ),
        (
            "mean",
            |_, v| v[0].mean(&[1], false),
            vec![t(&[2, 3], 1)],
            false,
        ),
        (
            "max",
            |_, v| v[0].max(&[1], false),
            vec![t(&[3, 4], 1)],
            false,
        ),
        (
            "min",
            |_, v| v[0].min(&[0], true),
            vec![t(&[3, 4], 1)],
            false,
        ),
        (
            "var",
            |_, v| v[0].var(&[1], false, 1),
            vec![t(&[3, 4], 1)],
            true,
        ),
        (
            "broadcast_to",
            |_, v| v[0].broadcast_to(&[2, 3])?.square(),
            vec![t(&[3], 1)],
            true,
        ),
        (
            "sum_to",
            |_, v| v[0].sum_to(&[1, 3])?.square(),
            vec![t(&[2, 3], 1)],
            true,
        ),
        (
            "matmul",
            |_, v| v[0].matmul(v[1]),
            vec![t(&[2, 3], 1), t(&[3, 4], 2)],
            true,
        ),
        (
            "matmul vec",
            |_, v| v[0].matmul(v[1]),
            vec![t(&[3], 1), t(&[3, 2], 2)],
            true,
        ),
        (
            "matmul mv",
            |_, v| v[0].matmul(v[1]),
            vec![t(&[2, 3], 1), t(&[3], 2)],
            true,
        ),
        (
            "matmul dot",
            |_, v| v[0].matmul(v[1]),
            vec![t(&[3], 1), t(&[3], 2)],
            true,
        ),
        (
            "matmul batch",
            |_, v| v[0].matmul(v[1]),
            vec![t(&[2, 2, 3], 1), t(&[3, 2], 2)],
            true,
        ),
        (
            "matmul T",
            |_, v| v[0].t()?.matmul(v[1]),
            vec![t(&[3, 2], 1), t(&[3, 2], 2)],
            false,
        ),
        (
            "reshape",
            |_, v| v[0].reshape(&[3, 2])?.square(),
            vec![t(&[2, 3], 1)],
            true,
        ),
        (
            "permute",
            |_, v| v[0].permute(&[2, 0, 1])?.square(),
            vec![t(&[2, 3, 2], 1)],
            true,
        ),
        (
            "slice",
            |_, v| v[0].slice(1, 1, 4, 2)?.square(),
            vec![t(&[2, 5], 1)],
            true,
        ),
        (
            "select",
            |_, v| v[0].select(0, 1),
            vec![t(&[2, 3], 1)],
            false,
        ),
        (
            "unsqueeze",
            |_, v| v[0].unsqueeze(1)?.squeeze(1),
            vec![t(&[2, 3], 1)],
            false,
        ),
        (
            "concat",
            |_, v| Var::concat(&[v[0], v[1]], 1)?.square(),
            vec![t(&[2, 1], 1), t(&[2, 3], 2)],
            true,
        ),
        (
            "stack",
            |_, v| Var::stack(&[v[0], v[1]], 0),
            vec![t(&[2], 1), t(&[2], 2)],
            false,
        ),
        (
            "index_select",
            |_, v| v[0].index_select(0, &[2, 0, 2])?.square(),
            vec![t(&[3, 2], 1)],
            true,
        ),
        (
            "gather_rows",
            |_, v| v[0].gather_rows(&[1, 0])?.square(),
            vec![t(&[2, 3], 1)],
            true,
        ),
        (
            "where",
            |_, v| {
                let c = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3])?;
                v[0].where_cond(&c, v[1])?.square()
            },
            vec![t(&[2, 3], 1), t(&[1], 2)],
            true,
        ),
        ("softmax", |_, v| v[0].softmax(1), vec![t(&[2, 3], 1)], true),
        (
            "log_softmax",
            |_, v| v[0].log_softmax(0),
            vec![t(&[2, 3], 1)],
            true,
        ),
        (
            "logsumexp",
            |_, v| v[0].logsumexp(&[1], false),
            vec![t(&[2, 3], 1)],
            true,
        ),
    ];
    for (name, f, inputs, second) in cases {
        check(name, f, &inputs, second);
    }
}
