//! `sin` and `cos` on `f32` tensors: the vectorised chunks, the elements
//! they hand back to the standard library, and the strided path.

use tapegrad_tensor::fastmath::TRIG_FAST_MAX;
use tapegrad_tensor::Tensor;

fn check(x: &Tensor<f32>) {
    let (s, c) = (x.sin().unwrap().to_vec(), x.cos().unwrap().to_vec());
    for ((&x, s), c) in x.to_vec().iter().zip(s).zip(c) {
        if x.abs() <= TRIG_FAST_MAX {
            assert!(
                (s as f64 - (x as f64).sin()).abs() < 1.2e-7,
                "sin({x}) = {s}"
            );
            assert!(
                (c as f64 - (x as f64).cos()).abs() < 1.2e-7,
                "cos({x}) = {c}"
            );
        } else {
            // Beyond the fast range: exactly the standard library's result.
            assert_eq!(s.to_bits(), x.sin().to_bits(), "sin({x})");
            assert_eq!(c.to_bits(), x.cos().to_bits(), "cos({x})");
        }
    }
}

#[test]
fn large_tensors_match_f64_and_redo_out_of_range_elements() {
    // Parallel chunks; a few huge, infinite and NaN elements in some of them.
    let mut v = Tensor::<f32>::uniform_seeded(&[300, 400], -50.0, 50.0, 11).to_vec();
    for (i, bad) in [
        (7, 1e6),
        (40_001, -3e9),
        (65_000, f32::INFINITY),
        (119_999, f32::NAN),
    ] {
        v[i] = bad;
    }
    v[5] = TRIG_FAST_MAX;
    v[6] = -TRIG_FAST_MAX * 1.0001;
    check(&Tensor::from_vec(v, &[300, 400]).unwrap());
}

#[test]
fn small_strided_and_single_element_inputs() {
    let x = Tensor::<f32>::uniform_seeded(&[30, 40], -1e3, 1e3, 12);
    check(&x);
    check(&x.t().unwrap());
    check(&Tensor::scalar(2e5f32));
    check(&Tensor::scalar(-0.5f32));
    assert_eq!(
        Tensor::scalar(-0.0f32)
            .sin()
            .unwrap()
            .item()
            .unwrap()
            .to_bits(),
        (-0.0f32).to_bits()
    );
}
