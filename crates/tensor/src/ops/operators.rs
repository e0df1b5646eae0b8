//! `+ - * /` and unary `-` on tensors, so formulas read like their maths.
//!
//! Every operator calls the named method (`a + b` is [`Tensor::add`],
//! `a * 2.0` is [`Tensor::mul_scalar`], `2.0 / a` is
//! [`Tensor::rdiv_scalar`]) and, like it and like every op (see the crate
//! docs), returns a [`Result`]: shapes may not broadcast, and a huge
//! broadcast view may not fit in memory. So that chains need one `?` at the
//! end, an operator also takes a `Result` on either side. The values on a
//! tape have the same operators, with the same rules: see
//! `tapegrad_autograd::operators`.
//!
//! ```
//! use tapegrad_tensor::Tensor;
//! let x = Tensor::from_vec(vec![1.0f64, 2.0], &[1, 2])?;
//! let w = Tensor::from_vec(vec![0.5, -0.5], &[2, 1])?;
//! let b = Tensor::scalar(0.25);
//! let y = (x.matmul(&w)? + &b)?.tanh()?;     // tanh(x·w + b) = tanh(−0.25)
//! let z = ((&y * &y)? + 1.0)?;               // Result + scalar needs the `?` first
//! let l = (2.0 * z - &y)?.sum_all()?;        // a plain number on the left works too
//! let t = (-0.25f64).tanh();
//! assert!((l.item()? - (2.0 * (1.0 + t * t) - t)).abs() < 1e-12);
//! # Ok::<(), tapegrad_tensor::Error>(())
//! ```
//!
//! What Rust's orphan rule allows, and so what compiles (`t` a [`Tensor`]
//! or `&Tensor`, `r` a `Result<Tensor>`, `c` a number of the tensor's
//! element type):
//!
//! | left \ right | `t` | `r` | `c` |
//! | --- | --- | --- | --- |
//! | `t` | yes | yes | yes |
//! | `r` | yes | no: write `(r? + r)` | no: write `(r? + c)` |
//! | `c` (`f32` or `f64`) | yes | no | n/a |
//!
//! and `-t` (not `-r`). An operator reads its operands and never writes
//! into them, so an owned `Tensor` operand is only dropped (a cheap handle);
//! pass `&t` to keep using `t`. The named methods stay: `a.add(&b)?` is the
//! same op.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::error::Result;
use crate::{Element, Tensor};

/// Implements one binary operator for every pairing of `Tensor`, `&Tensor`
/// and `Result<Tensor>` the orphan rule allows, and for `Tensor ∘ scalar`,
/// all by the named methods.
macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $tensor_method:ident, $scalar_method:ident) => {
        impl<T: Element> $Trait<Tensor<T>> for Tensor<T> {
            type Output = Result<Tensor<T>>;
            fn $method(self, rhs: Tensor<T>) -> Self::Output {
                Tensor::$tensor_method(&self, &rhs)
            }
        }

        impl<T: Element> $Trait<&Tensor<T>> for Tensor<T> {
            type Output = Result<Tensor<T>>;
            fn $method(self, rhs: &Tensor<T>) -> Self::Output {
                Tensor::$tensor_method(&self, rhs)
            }
        }

        impl<T: Element> $Trait<Tensor<T>> for &Tensor<T> {
            type Output = Result<Tensor<T>>;
            fn $method(self, rhs: Tensor<T>) -> Self::Output {
                Tensor::$tensor_method(self, &rhs)
            }
        }

        impl<T: Element> $Trait<&Tensor<T>> for &Tensor<T> {
            type Output = Result<Tensor<T>>;
            fn $method(self, rhs: &Tensor<T>) -> Self::Output {
                Tensor::$tensor_method(self, rhs)
            }
        }

        impl<T: Element> $Trait<Result<Tensor<T>>> for Tensor<T> {
            type Output = Result<Tensor<T>>;
            fn $method(self, rhs: Result<Tensor<T>>) -> Self::Output {
                Tensor::$tensor_method(&self, &rhs?)
            }
        }

        impl<T: Element> $Trait<Result<Tensor<T>>> for &Tensor<T> {
            type Output = Result<Tensor<T>>;
            fn $method(self, rhs: Result<Tensor<T>>) -> Self::Output {
                Tensor::$tensor_method(self, &rhs?)
            }
        }

        impl<T: Element> $Trait<Tensor<T>> for Result<Tensor<T>> {
            type Output = Result<Tensor<T>>;
            fn $method(self, rhs: Tensor<T>) -> Self::Output {
                Tensor::$tensor_method(&self?, &rhs)
            }
        }

        impl<T: Element> $Trait<&Tensor<T>> for Result<Tensor<T>> {
            type Output = Result<Tensor<T>>;
            fn $method(self, rhs: &Tensor<T>) -> Self::Output {
                Tensor::$tensor_method(&self?, rhs)
            }
        }

        impl<T: Element> $Trait<T> for Tensor<T> {
            type Output = Result<Tensor<T>>;
            fn $method(self, c: T) -> Self::Output {
                self.$scalar_method(c.to_f64())
            }
        }

        impl<T: Element> $Trait<T> for &Tensor<T> {
            type Output = Result<Tensor<T>>;
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

/// Implements `c ∘ Tensor` and `c ∘ &Tensor` for one concrete element type
/// (a generic `T` on the left is not allowed by the orphan rule).
macro_rules! scalar_on_the_left {
    ($t:ty, $Trait:ident, $method:ident, $scalar_method:ident) => {
        impl $Trait<Tensor<$t>> for $t {
            type Output = Result<Tensor<$t>>;
            fn $method(self, t: Tensor<$t>) -> Self::Output {
                t.$scalar_method(self as f64)
            }
        }

        impl $Trait<&Tensor<$t>> for $t {
            type Output = Result<Tensor<$t>>;
            fn $method(self, t: &Tensor<$t>) -> Self::Output {
                t.$scalar_method(self as f64)
            }
        }
    };
    ($t:ty) => {
        scalar_on_the_left!($t, Add, add, add_scalar);
        scalar_on_the_left!($t, Sub, sub, rsub_scalar);
        scalar_on_the_left!($t, Mul, mul, mul_scalar);
        scalar_on_the_left!($t, Div, div, rdiv_scalar);
    };
}

scalar_on_the_left!(f32);
scalar_on_the_left!(f64);

impl<T: Element> Neg for Tensor<T> {
    type Output = Result<Tensor<T>>;
    fn neg(self) -> Self::Output {
        Tensor::neg(&self)
    }
}

impl<T: Element> Neg for &Tensor<T> {
    type Output = Result<Tensor<T>>;
    fn neg(self) -> Self::Output {
        Tensor::neg(self)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Error, Result, Tensor};

    fn t(v: &[f64], shape: &[usize]) -> Tensor<f64> {
        Tensor::from_vec(v.to_vec(), shape).unwrap()
    }

    /// Bit-for-bit equality of two results (values and shapes).
    #[track_caller]
    fn same(got: Result<Tensor<f64>>, want: Result<Tensor<f64>>) {
        let (got, want) = (got.unwrap(), want.unwrap());
        assert_eq!(got.shape(), want.shape());
        let bits = |t: &Tensor<f64>| t.to_vec().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }

    /// Each pairing of `Tensor`, `&Tensor` and `Result<Tensor>` for one
    /// operator, against the named method.
    macro_rules! every_pairing {
        ($a:ident $op:tt $b:ident, $named:ident) => {{
            let want = || $a.$named(&$b);
            let ok = || Ok::<_, Error>($b.clone());
            same($a.clone() $op $b.clone(), want());
            same(&$a $op &$b, want());
            same($a.clone() $op &$b, want());
            same(&$a $op $b.clone(), want());
            same($a.clone() $op ok(), want());
            same(&$a $op ok(), want());
            same(Ok::<_, Error>($a.clone()) $op $b.clone(), want());
            same(Ok::<_, Error>($a.clone()) $op &$b, want());
        }};
    }

    #[test]
    fn every_operator_equals_its_named_method() {
        // [2, 3] against [3]: every pairing broadcasts.
        let a = t(&[1.5, -2.0, 0.25, 3.0, -0.5, 7.0], &[2, 3]);
        let b = t(&[0.5, 4.0, -3.0], &[3]);
        every_pairing!(a + b, add);
        every_pairing!(a - b, sub);
        every_pairing!(a * b, mul);
        every_pairing!(a / b, div);
        // With a number, on either side.
        same(&a + 2.5, a.add_scalar(2.5));
        same(&a - 2.5, a.sub_scalar(2.5));
        same(&a * 2.5, a.mul_scalar(2.5));
        same(&a / 2.5, a.div_scalar(2.5));
        same(a.clone() + 2.5, a.add_scalar(2.5));
        same(a.clone() / 2.5, a.div_scalar(2.5));
        same(2.5 + &a, a.add_scalar(2.5));
        same(2.5 - &a, a.rsub_scalar(2.5));
        same(2.5 * &a, a.mul_scalar(2.5));
        same(2.5 / &a, a.rdiv_scalar(2.5));
        same(2.5 - a.clone(), a.rsub_scalar(2.5));
        same(2.5 / a.clone(), a.rdiv_scalar(2.5));
        same(-&a, a.neg());
        same(-a.clone(), a.neg());
    }

    #[test]
    fn scalars_on_either_side_in_f32() {
        let a = Tensor::from_vec(vec![2.0f32, -4.0], &[2]).unwrap();
        let v = |r: Result<Tensor<f32>>| r.unwrap().to_vec();
        assert_eq!(v(&a + 1.0), [3.0, -3.0]);
        assert_eq!(v(&a - 1.0), [1.0, -5.0]);
        assert_eq!(v(&a * 3.0), [6.0, -12.0]);
        assert_eq!(v(&a / 4.0), [0.5, -1.0]);
        assert_eq!(v(1.0 + &a), [3.0, -3.0]);
        assert_eq!(v(1.0 - &a), [-1.0, 5.0]);
        assert_eq!(v(3.0 * &a), [6.0, -12.0]);
        assert_eq!(v(1.0 / &a), [0.5, -0.25]);
        assert_eq!(v(-&a), [-2.0, 4.0]);
    }

    #[test]
    fn a_formula_by_hand() {
        // (a·b + a) / b − 3a + 2 − (−b) at a = 1.5, b = 0.5:
        // (0.75 + 1.5) / 0.5 − 4.5 + 2 + 0.5 = 2.5; at a = −2, b = 4:
        // (−8 − 2) / 4 + 6 + 2 + 4 = 9.5.
        let a = t(&[1.5, -2.0], &[2]);
        let b = t(&[0.5, 4.0], &[2]);
        let f = || (((((&a * &b) + &a) / &b)? - (3.0 * &a)?)? + 2.0)? - (-&b)?;
        assert_eq!(f().unwrap().to_vec(), [2.5, 9.5]);
        let named = a
            .mul(&b)
            .and_then(|x| x.add(&a))
            .and_then(|x| x.div(&b))
            .and_then(|x| x.sub(&a.mul_scalar(3.0)?))
            .and_then(|x| x.add_scalar(2.0))
            .and_then(|x| x.sub(&b.neg()?));
        same(f(), named);
    }

    #[test]
    fn an_error_on_either_side_passes_through() {
        let a = Tensor::<f64>::zeros(&[2]);
        let b = Tensor::<f64>::zeros(&[3]);
        let err = (&a + &b).unwrap_err();
        assert_eq!(err.to_string(), a.add(&b).unwrap_err().to_string());
        assert!(matches!(err, Error::ShapeMismatch { op: "add", .. }));
        let msg = err.to_string();
        assert!(msg.contains("[2]") && msg.contains("[3]"), "{msg}");
        // The first error is the one reported, wherever it sits.
        let e = ((&a / &b) + &a).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { op: "div", .. }), "{e}");
        let e = (&a * (&a - &b)).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { op: "sub", .. }), "{e}");
        // A huge broadcast view: the allocation error, named by the op.
        let huge = Tensor::scalar(1.0f32).broadcast_to(&[1 << 58, 2]).unwrap();
        for (e, op) in [
            ((&huge + 1.0).unwrap_err(), "add_scalar"),
            ((1.0 / &huge).unwrap_err(), "rdiv_scalar"),
            ((-&huge).unwrap_err(), "neg"),
        ] {
            assert!(matches!(e, Error::TooLarge { op: o, .. } if o == op), "{e}");
        }
    }

    #[test]
    fn operands_broadcast() {
        let col = t(&[1.0, 2.0], &[2, 1]);
        let row = t(&[10.0, 20.0, 30.0], &[3]);
        let s = (&col * &row).unwrap();
        assert_eq!(s.shape(), [2, 3]);
        assert_eq!(s.to_vec(), [10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
        let d = (&row - &col).unwrap();
        assert_eq!(d.to_vec(), [9.0, 19.0, 29.0, 8.0, 18.0, 28.0]);
        // A 0-d tensor broadcasts against anything, like a number.
        same(&row * Tensor::scalar(2.0), &row * 2.0);
    }
}
