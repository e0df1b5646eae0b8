//! A first look at tapegrad tensors: views, broadcasting, reductions, matmul.
//!
//! Run with `cargo run --release --example tensor_basics`.

use tapegrad::tensor::{Result, Tensor};

fn main() -> Result<()> {
    let x = Tensor::<f32>::arange(0.0, 6.0, 1.0)?.reshape(&[2, 3])?;
    println!("x =\n{x}");
    // Views share storage: no copy for a transpose or a strided slice.
    let xt = x.t()?;
    println!("x.t() = (strides {:?})\n{xt}", xt.strides());
    // Broadcasting: a row vector against a column vector.
    let col = Tensor::from_vec(vec![10.0f32, 20.0], &[2, 1])?;
    println!("x + col =\n{}", x.add(&col)?);
    println!("sum over axis 0 = {}", x.sum(&[0], false)?);
    println!("softmax over axis 1 =\n{:.3}", x.softmax(1)?);
    let w = Tensor::<f32>::uniform_seeded(&[3, 4], -1.0, 1.0, 42);
    println!("x @ w =\n{:.3}", x.matmul(&w)?);
    // A shape mistake is an error value naming the op and the shapes.
    if let Err(e) = x.matmul(&x) {
        println!("error: {e}");
    }
    Ok(())
}
