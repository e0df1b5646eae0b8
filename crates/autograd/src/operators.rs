//! `+ - * /` and unary `-` on values, so models read like their maths.
//!
//! Every operator records the same op as the named method (`a + b` is
//! [`Var::add`], `a * 2.0` is [`Var::mul_scalar`]) and, like it, returns a
//! [`Result`]: shapes may not broadcast, and anomaly mode may stop at a
//! NaN. So that chains need one `?` at the end, an operator also takes a
//! `Result` on either side:
//!
//! ```
//! use tapegrad_autograd::Tape;
//! use tapegrad_tensor::Tensor;
//! let tape = Tape::<f64>::new();
//! let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0], &[1, 2])?);
//! let w = tape.param("w", Tensor::from_vec(vec![0.5, -0.5], &[2, 1])?);
//! let b = tape.param("b", Tensor::scalar(0.25));
//! let y = (x.matmul(w)? + b)?.tanh()?;          // tanh(x·w + b) = tanh(−0.25)
//! let z = ((y * y)? + 1.0)?;                    // Result + scalar needs the `?` first
//! let l = (2.0 * z - y)?.sum_all()?;            // a plain number on the left works too
//! let t = (-0.25f64).tanh();
//! assert!((l.item()? - (2.0 * (1.0 + t * t) - t)).abs() < 1e-12);
//! # Ok::<(), tapegrad_autograd::Error>(())
//! ```
//!
//! What Rust's orphan rule allows, and so what compiles (`v` a [`Var`],
//! `r` a `Result<Var>`, `c` a number of the tape's element type):
//!
//! | left \ right | `v` | `r` | `c` |
//! | --- | --- | --- | --- |
//! | `v` | yes | yes | yes |
//! | `r` | yes | no: write `(r? + r)` | no: write `(r? + c)` |
//! | `c` (`f32` or `f64`) | yes | no | n/a |
//!
//! and `-v` (not `-r`). The named methods stay: `a.add(b)?` is the same op.
//!
//! Tensors have the same operators, with the same rules (and `&Tensor`
//! operands too, as a tensor is not `Copy`): see
//! [`tapegrad_tensor::operators`].

use std::ops::{Add, Div, Mul, Neg, Sub};

use tapegrad_tensor::Element;

use crate::error::Result;
use crate::var::Var;

/// Implements one binary operator for `Var ∘ Var`, `Var ∘ Result<Var>`,
/// `Result<Var> ∘ Var` and `Var ∘ scalar`, by the named methods.
macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $var_method:ident, $scalar_method:ident) => {
        impl<'t, T: Element> $Trait<Var<'t, T>> for Var<'t, T> {
            type Output = Result<Var<'t, T>>;
            fn $method(self, rhs: Var<'t, T>) -> Self::Output {
                self.$var_method(rhs)
            }
        }

        impl<'t, T: Element> $Trait<Result<Var<'t, T>>> for Var<'t, T> {
            type Output = Result<Var<'t, T>>;
            fn $method(self, rhs: Result<Var<'t, T>>) -> Self::Output {
                self.$var_method(rhs?)
            }
        }

        impl<'t, T: Element> $Trait<Var<'t, T>> for Result<Var<'t, T>> {
            type Output = Result<Var<'t, T>>;
            fn $method(self, rhs: Var<'t, T>) -> Self::Output {
                self?.$var_method(rhs)
            }
        }

        impl<'t, T: Element> $Trait<T> for Var<'t, T> {
            type Output = Result<Var<'t, T>>;
            fn $method(self, c: T) -> Self::Output {
                self.$scalar_method(c.to_f64())
            }
        }
    };
}

binary_operator!(Add, add, add, add_scalar);
binary_operator!(Sub, sub, sub, sub_scalar);
binary_operator!(Mul, mul, mul, mul_scalar);
binary_operator!(Div, div, div, div_scalar);

/// Implements `c ∘ Var` for one concrete element type (a generic `T` on the
/// left is not allowed by the orphan rule).
// `#[inline]`: these are not generic (only over a lifetime), so without it
// this crate would compile them, and through them every op they reach, for
// both element types, whether or not a program uses them (a third of its
// build).
macro_rules! scalar_on_the_left {
    ($t:ty) => {
        impl<'t> Add<Var<'t, $t>> for $t {
            type Output = Result<Var<'t, $t>>;
            #[inline]
            fn add(self, v: Var<'t, $t>) -> Self::Output {
                v.add_scalar(self as f64)
            }
        }

        impl<'t> Sub<Var<'t, $t>> for $t {
            type Output = Result<Var<'t, $t>>;
            #[inline]
            fn sub(self, v: Var<'t, $t>) -> Self::Output {
                v.rsub_scalar(self as f64)
            }
        }

        impl<'t> Mul<Var<'t, $t>> for $t {
            type Output = Result<Var<'t, $t>>;
            #[inline]
            fn mul(self, v: Var<'t, $t>) -> Self::Output {
                v.mul_scalar(self as f64)
            }
        }

        impl<'t> Div<Var<'t, $t>> for $t {
            type Output = Result<Var<'t, $t>>;
            /// `c / v` as `c · v⁻¹`.
            #[inline]
            fn div(self, v: Var<'t, $t>) -> Self::Output {
                v.recip()?.mul_scalar(self as f64)
            }
        }
    };
}

scalar_on_the_left!(f32);
scalar_on_the_left!(f64);

impl<'t, T: Element> Neg for Var<'t, T> {
    type Output = Result<Var<'t, T>>;
    fn neg(self) -> Self::Output {
        Var::neg(self)
    }
}

#[cfg(test)]
mod tests {
    use tapegrad_tensor::Tensor;

    use crate::gradcheck::gradcheck;
    use crate::tape::Tape;

    #[test]
    fn operators_record_the_named_ops() {
        // f(a, b) = (a·b + a) / b − 3a + 2 − (−b): each operator once, checked
        // against the same expression written with the named methods.
        let tape = Tape::<f64>::new();
        let a = tape.leaf(Tensor::from_vec(vec![1.5, -2.0], &[2]).unwrap());
        let b = tape.leaf(Tensor::from_vec(vec![0.5, 4.0], &[2]).unwrap());
        let ops = || (((((a * b) + a) / b)? - (3.0 * a)?)? + 2.0)? - (-b)?;
        let ops = ops().unwrap();
        let named = a
            .mul(b)
            .unwrap()
            .add(a)
            .unwrap()
            .div(b)
            .unwrap()
            .sub(a.mul_scalar(3.0).unwrap())
            .unwrap()
            .add_scalar(2.0)
            .unwrap()
            .sub(b.neg().unwrap())
            .unwrap();
        assert_eq!(ops.value().to_vec(), named.value().to_vec());
        // By hand: a = 1.5, b = 0.5: (0.75 + 1.5)/0.5 − 4.5 + 2 + 0.5 = 2.5.
        assert_eq!(ops.value().to_vec()[0], 2.5);
    }

    #[test]
    fn scalars_on_either_side() {
        let tape = Tape::<f32>::new();
        let x = tape.leaf(Tensor::from_vec(vec![2.0f32], &[1]).unwrap());
        let v = |r: crate::Result<crate::Var<'_, f32>>| r.unwrap().value().to_vec()[0];
        assert_eq!(v(x + 1.0), 3.0);
        assert_eq!(v(x - 1.0), 1.0);
        assert_eq!(v(x * 3.0), 6.0);
        assert_eq!(v(x / 4.0), 0.5);
        assert_eq!(v(1.0 + x), 3.0);
        assert_eq!(v(1.0 - x), -1.0);
        assert_eq!(v(3.0 * x), 6.0);
        assert_eq!(v(1.0 / x), 0.5);
        assert_eq!(v(-x), -2.0);
    }

    #[test]
    fn an_error_on_either_side_passes_through() {
        let tape = Tape::<f64>::new();
        let a = tape.leaf(Tensor::zeros(&[2]));
        let b = tape.leaf(Tensor::zeros(&[3]));
        let err = (a + b).unwrap_err().to_string();
        assert!(err.contains("[2]") && err.contains("[3]"), "{err}");
        assert!(((a + b) + a).is_err());
        assert!((a * (a + b)).is_err());
    }

    #[test]
    fn gradients_through_operators_match_finite_differences() {
        let x = Tensor::from_vec(vec![0.7, -1.3, 2.1], &[3]).unwrap();
        let y = Tensor::from_vec(vec![1.1, 0.4, -0.9], &[3]).unwrap();
        let report = gradcheck(
            |_, v| ((((v[0] * v[1]) + v[0])? / ((2.0 * v[1])? + 5.0)?) - (-v[0])?)?.sum_all(),
            &[x, y],
        )
        .unwrap();
        assert!(report.passed, "{report:?}");
    }
}
