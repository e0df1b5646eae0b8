//! Kernels for sequence models: GELU in its exact (erf) and tanh forms with
//! their derivatives, layer normalisation over the last axis (forward and
//! backward in one pass per row), embedding gather and its scatter-add
//! adjoint, triangular masks and `masked_fill`.
//!
//! Statistics of a row (mean, variance) are accumulated in `f64` whatever
//! the element type, so an `f32` layer norm over wide rows does not lose
//! digits to the running sum.

use crate::error::{Error, Result};
use crate::{Element, Tensor};

mod rows;
use crate::simd::run_wide;
use rows::{for_row_blocks, for_row_blocks_with};

/// `erf x` in the element's own precision: for `f32` the vectorisable
/// [`erf_f32`](crate::fastmath::erf_f32) (relative error below `1.2e-7`;
/// `libm::erff`, one call per element, was 10% of a transformer step), for
/// `f64` `libm::erf` (accurate to the last bits, as gradchecks need).
#[inline(always)]
fn erf<T: Element>(x: T) -> T {
    if std::mem::size_of::<T>() == 4 {
        // `f32 → f64 → f32` round trips are exact and compile away.
        T::from_f64(f64::from(crate::fastmath::erf_f32(x.to_f64() as f32)))
    } else {
        T::from_f64(libm::erf(x.to_f64()))
    }
}

/// `d/dx ½x(1 + tanh u)`, `u = √(2/π)(x + 0.044715x³)`:
/// `½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)`, `t = tanh u`.
#[inline(always)]
fn gelu_tanh_derivative<T: Element>(x: T) -> T {
    let c = T::from_f64(SQRT_2_OVER_PI);
    let a = T::from_f64(GELU_CUBIC);
    let h = T::from_f64(0.5);
    let t = (c * (x + a * x * x * x)).tanh_fast();
    let du = c * (T::ONE + T::from_f64(3.0) * a * x * x);
    h * (T::ONE + t) + h * x * (T::ONE - t * t) * du
}

/// The exact GELU's derivative `Φ(x) + x·φ(x)` at one element.
#[inline(always)]
fn gelu_derivative<T: Element>(x: T) -> T {
    let h = T::from_f64(0.5);
    let cdf = h * (T::ONE + erf(x * T::from_f64(FRAC_1_SQRT_2)));
    let pdf = T::from_f64(INV_SQRT_2PI) * (-h * x * x).exp_fast();
    cdf + x * pdf
}

const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// `1/√(2π)`, the standard normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// `√(2/π)`, the tanh form's scale.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The tanh form's cubic coefficient.
const GELU_CUBIC: f64 = 0.044_715;

/// `out = g·gelu'(x)` elementwise. A [`Kernel`](crate::simd::Kernel)
/// rather than a closure handed to `zip_with`: the closure, with the erf
/// and exp inlined into it, was too big for LLVM to inline into the wide
/// copies, and ran as baseline code calling the library `fmaf` (half of a
/// transformer step).
struct GeluBackward<'a, T> {
    xs: &'a [T],
    gs: &'a [T],
    out: &'a mut [T],
}

impl<T: Element> crate::simd::Kernel for GeluBackward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let n = self.out.len();
        let (xs, gs) = (&self.xs[..n], &self.gs[..n]);
        for ((o, &x), &g) in self.out.iter_mut().zip(xs).zip(gs) {
            *o = g * gelu_derivative(x);
        }
    }
}

impl<T: Element> Tensor<T> {
    /// GELU, exact form: `x·Φ(x) = ½x(1 + erf(x/√2))` (PyTorch's
    /// `gelu(approximate='none')`).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let y = Tensor::from_vec(vec![0.0f64, 1.0], &[2])?.gelu()?;
    /// assert_eq!(y.to_vec()[0], 0.0);
    /// assert!((y.to_vec()[1] - 0.841_344_746_068_543).abs() < 1e-15);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the result cannot be allocated.
    pub fn gelu(&self) -> Result<Self> {
        self.map_named("gelu", |x| {
            let h = T::from_f64(0.5);
            h * x * (T::ONE + erf(x * T::from_f64(FRAC_1_SQRT_2)))
        })
    }

    /// The derivative of the exact GELU: `Φ(x) + x·φ(x)`, with `φ` the
    /// standard normal density.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the result cannot be allocated.
    pub fn gelu_grad(&self) -> Result<Self> {
        self.map_named("gelu_grad", gelu_derivative)
    }

    /// The exact GELU's backward pass for gradient `g`: `g·(Φ(x) + x·φ(x))`
    /// in one pass, without the derivative as a tensor of its own (what
    /// `gelu_grad` followed by `mul` would allocate and read back).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![0.0f64, 1.0], &[2])?;
    /// let g = Tensor::from_vec(vec![2.0, 3.0], &[2])?;
    /// let want = x.gelu_grad()?.mul(&g)?;
    /// assert_eq!(x.gelu_backward(&g)?.to_vec(), want.to_vec());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `g`'s shape differs from `self`'s;
    /// [`Error::TooLarge`] if the result cannot be allocated.
    pub fn gelu_backward(&self, g: &Self) -> Result<Self> {
        check_grad_shape("gelu_backward", self, g)?;
        let n = crate::layout::checked_numel::<T>("gelu_backward", self.dims())?;
        let (x, g) = (self.to_contiguous(), g.to_contiguous());
        let (xs, gs) = (
            x.as_slice().expect("contiguous"),
            g.as_slice().expect("contiguous"),
        );
        let mut out = vec![T::ZERO; n];
        // Blocks of "rows" of one element: plain elementwise chunks.
        for_row_blocks(1, &mut out, |first, out| {
            run_wide(GeluBackward {
                xs: &xs[first..],
                gs: &gs[first..],
                out,
            })
        });
        Tensor::from_vec(out, self.dims())
    }

    /// GELU, tanh form: `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (PyTorch's
    /// `gelu(approximate='tanh')`).
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the result cannot be allocated.
    pub fn gelu_tanh(&self) -> Result<Self> {
        self.map_named(
            "gelu_tanh",
            #[inline(always)]
            |x| {
                let u = T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(GELU_CUBIC) * x * x * x);
                T::from_f64(0.5) * x * (T::ONE + u.tanh_fast())
            },
        )
    }

    /// The derivative of the tanh-form GELU:
    /// `½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)`, `t = tanh(u)`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the result cannot be allocated.
    pub fn gelu_tanh_grad(&self) -> Result<Self> {
        self.map_named("gelu_tanh_grad", gelu_tanh_derivative)
    }

    /// The tanh-form GELU's backward pass for gradient `g`, in one pass
    /// (as [`gelu_backward`](Self::gelu_backward) for the exact form).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0f64, 0.0, 2.0], &[3])?;
    /// let g = Tensor::from_vec(vec![2.0, 3.0, 4.0], &[3])?;
    /// let want = x.gelu_tanh_grad()?.mul(&g)?;
    /// assert_eq!(x.gelu_tanh_backward(&g)?.to_vec(), want.to_vec());
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `g`'s shape differs from `self`'s;
    /// [`Error::TooLarge`] if the result cannot be allocated.
    pub fn gelu_tanh_backward(&self, g: &Self) -> Result<Self> {
        check_grad_shape("gelu_tanh_backward", self, g)?;
        self.zip_with(
            g,
            "gelu_tanh_backward",
            #[inline(always)]
            |x, g| g * gelu_tanh_derivative(x),
        )
    }

    /// Layer normalisation over the last axis: each row `x` becomes
    /// `(x − mean)/√(var + eps)·weight + bias`, with the biased variance
    /// (PyTorch's `layer_norm` over `normalized_shape = [d]`).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0], &[1, 2])?;
    /// let y = x.layer_norm(None, None, 0.0)?;
    /// assert_eq!(y.to_vec(), vec![-1.0, 1.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `self` is 0-d, `weight` or `bias` is
    /// not `[d]`, or `eps` is negative or not finite.
    pub fn layer_norm(&self, weight: Option<&Self>, bias: Option<&Self>, eps: f64) -> Result<Self> {
        let d = check_layer_norm("layer_norm", self, weight, bias, eps)?;
        let x = self.to_contiguous();
        let xs = x.as_slice().expect("contiguous");
        // No weight is 1 and no bias is -0: `v·1 + (-0) = v` exactly.
        let w = weight.map_or_else(|| vec![T::ONE; d], Tensor::to_vec);
        let b = bias.map_or_else(|| vec![T::from_f64(-0.0); d], Tensor::to_vec);
        let mut out = vec![T::ZERO; xs.len()];
        for_row_blocks(d, &mut out, |first, out| {
            run_wide(rows::LayerNorm {
                xs,
                w: &w,
                b: &b,
                eps,
                first,
                out,
            })
        });
        Tensor::from_vec(out, self.dims())
    }

    /// The backward pass of [`layer_norm`](Self::layer_norm) for gradient
    /// `g` (the output's shape), in one pass per row: returns `(∂L/∂x,
    /// ∂L/∂weight, ∂L/∂bias)`, where with `x̂` the normalised row and
    /// `ĝ = g·weight`,
    /// `∂L/∂x = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))/√(var + eps)`,
    /// `∂L/∂weight = Σ_rows g·x̂`, `∂L/∂bias = Σ_rows g`.
    ///
    /// # Errors
    /// As [`layer_norm`](Self::layer_norm), and [`Error::ShapeMismatch`] if
    /// `g`'s shape differs from `self`'s.
    pub fn layer_norm_backward(
        &self,
        weight: Option<&Self>,
        g: &Self,
        eps: f64,
    ) -> Result<(Self, Self, Self)> {
        let d = check_layer_norm("layer_norm_backward", self, weight, None, eps)?;
        check_grad_shape("layer_norm_backward", self, g)?;
        let x = self.to_contiguous();
        let gc = g.to_contiguous();
        let (xs, gs) = (
            x.as_slice().expect("contiguous"),
            gc.as_slice().expect("contiguous"),
        );
        let w: Vec<f64> = match weight {
            Some(w) => w.to_vec().iter().map(|v| v.to_f64()).collect(),
            None => vec![1.0; d],
        };
        let rows = xs.len().checked_div(d).unwrap_or(0);
        let mut dx = vec![T::ZERO; xs.len()];
        let mut stats = vec![(0.0, 0.0); rows];
        for_row_blocks_with(d, &mut dx, &mut stats, |first, dx, stats| {
            run_wide(rows::LayerNormBackward {
                xs,
                gs,
                w: &w,
                eps,
                first,
                dx,
                stats,
            })
        });
        // Parameter gradients: column sums over rows, accumulated in f64.
        let (mut dw, mut db) = (vec![0.0f64; d], vec![0.0f64; d]);
        run_wide(rows::LayerNormParamGrads {
            xs,
            gs,
            stats: &stats,
            dw: &mut dw,
            db: &mut db,
        });
        let cast = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
        Ok((
            Tensor::from_vec(dx, self.dims())?,
            Tensor::from_vec(cast(dw), &[d])?,
            Tensor::from_vec(cast(db), &[d])?,
        ))
    }

    /// Embedding lookup: for a table `[vocab, d]`, row `ids[i]` for each
    /// `i`, giving `[ids.len(), d]`.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let table = Tensor::from_vec(vec![0.0f32, 1.0, 10.0, 11.0], &[2, 2])?;
    /// assert_eq!(table.embedding(&[1, 1, 0])?.to_vec(), vec![10.0, 11.0, 10.0, 11.0, 0.0, 1.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the table is not 2-d;
    /// [`Error::IndexOutOfRange`] for an id `≥ vocab`.
    pub fn embedding(&self, ids: &[usize]) -> Result<Self> {
        let (vocab, d) = table_dims("embedding", self.dims())?;
        check_ids("embedding", ids, vocab, self.dims())?;
        let table = self.to_contiguous();
        let ts = table.as_slice().expect("contiguous");
        let n = crate::layout::checked_numel::<T>("embedding", &[ids.len(), d])?;
        let mut out = Vec::with_capacity(n);
        for &i in ids {
            out.extend_from_slice(&ts[i * d..][..d]);
        }
        Tensor::from_vec(out, &[ids.len(), d])
    }

    /// The adjoint of [`embedding`](Self::embedding): a `[vocab, d]` zero
    /// table with row `i` of `self` (`[ids.len(), d]`) added at `ids[i]`;
    /// repeated ids accumulate.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `self` is not `[ids.len(), d]`;
    /// [`Error::IndexOutOfRange`] for an id `≥ vocab`.
    pub fn embedding_backward(&self, ids: &[usize], vocab: usize) -> Result<Self> {
        let (n, d) = table_dims("embedding_backward", self.dims())?;
        if n != ids.len() {
            return Err(Error::InvalidArgument {
                op: "embedding_backward",
                msg: format!("gradient {:?} for {} ids", self.dims(), ids.len()),
            });
        }
        check_ids("embedding_backward", ids, vocab, &[vocab, d])?;
        let g = self.to_contiguous();
        let gs = g.as_slice().expect("contiguous");
        let mut out = Tensor::try_zeros(&[vocab, d])?;
        let os = out.make_mut_slice();
        for (k, &i) in ids.iter().enumerate() {
            for (o, &v) in os[i * d..][..d].iter_mut().zip(&gs[k * d..][..d]) {
                *o += v;
            }
        }
        Ok(out)
    }

    /// A `[rows, cols]` mask with 1 on and below diagonal `diagonal` (0 is
    /// the main diagonal, positive moves it up, negative down) and 0 above:
    /// `torch.ones(rows, cols).tril(diagonal)`. With `diagonal = 0` and
    /// `rows = cols` this is the causal mask (position `i` sees `j ≤ i`).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let m = Tensor::<f32>::tril_mask(2, 3, 0)?;
    /// assert_eq!(m.to_vec(), vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the mask is too large.
    pub fn tril_mask(rows: usize, cols: usize, diagonal: isize) -> Result<Self> {
        Self::triangle(rows, cols, |i, j| j as isize - i as isize <= diagonal)
    }

    /// A `[rows, cols]` mask with 1 on and above diagonal `diagonal` and 0
    /// below: `torch.ones(rows, cols).triu(diagonal)`. `triu_mask(n, n, 1)`
    /// marks the future positions a causal model must not see.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let m = Tensor::<f32>::triu_mask(2, 2, 1)?;
    /// assert_eq!(m.to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the mask is too large.
    pub fn triu_mask(rows: usize, cols: usize, diagonal: isize) -> Result<Self> {
        Self::triangle(rows, cols, |i, j| j as isize - i as isize >= diagonal)
    }

    fn triangle(rows: usize, cols: usize, on: impl Fn(usize, usize) -> bool) -> Result<Self> {
        let n = crate::layout::checked_numel::<T>("triangular mask", &[rows, cols])?;
        let mut out = Vec::with_capacity(n);
        for i in 0..rows {
            out.extend((0..cols).map(|j| if on(i, j) { T::ONE } else { T::ZERO }));
        }
        Tensor::from_vec(out, &[rows, cols])
    }

    /// `value` where `mask` is non-zero, `self` elsewhere; `mask`
    /// broadcasts to `self`'s shape (`Tensor.masked_fill` in PyTorch).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
    /// let m = Tensor::from_vec(vec![0.0, 1.0, 0.0], &[3])?;
    /// assert_eq!(x.masked_fill(&m, -9.0)?.to_vec(), vec![1.0, -9.0, 3.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the mask does not broadcast to `self`'s
    /// shape (the result keeps `self`'s shape).
    pub fn masked_fill(&self, mask: &Self, value: f64) -> Result<Self> {
        let m = mask
            .broadcast_to(self.dims())
            .map_err(|_| Error::ShapeMismatch {
                op: "masked_fill",
                lhs: self.dims().to_vec(),
                rhs: mask.dims().to_vec(),
                reason: "the mask must broadcast to the value's shape".into(),
            })?;
        let v = T::from_f64(value);
        m.zip_with(
            self,
            "masked_fill",
            move |m, x| if m != T::ZERO { v } else { x },
        )
    }
}

impl<T: Element> Tensor<T> {
    /// Softmax over the last axis among the positions where `keep` is
    /// non-zero; the others get exactly 0. A row with no kept position
    /// gives all zeros (not NaN, not a uniform row): it attends to nothing.
    /// `keep` broadcasts to `self`'s shape.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![0.0f64, 5.0, 0.0, 1.0], &[2, 2])?;
    /// let keep = Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.0], &[2, 2])?;
    /// assert_eq!(x.softmax_masked(&keep)?.to_vec(), vec![1.0, 0.0, 0.0, 0.0]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `self` is 0-d; [`Error::ShapeMismatch`]
    /// if `keep` does not broadcast to `self`'s shape.
    pub fn softmax_masked(&self, keep: &Self) -> Result<Self> {
        let dims = self.dims();
        let d = *dims.last().ok_or_else(|| Error::InvalidArgument {
            op: "softmax_masked",
            msg: "needs at least one axis, got a 0-d value".into(),
        })?;
        let mismatch = || Error::ShapeMismatch {
            op: "softmax_masked",
            lhs: dims.to_vec(),
            rhs: keep.dims().to_vec(),
            reason: "the mask must broadcast to the scores' shape".into(),
        };
        keep.broadcast_to(dims).map_err(|_| mismatch())?;
        // A mask whose shape is a suffix of the scores' (a causal [L, S]
        // under [B, H, L, S]) is used as is, row r reading mask row
        // r mod its row count; any other broadcast is made explicit once.
        let kd = keep.dims();
        let strip = kd.iter().take_while(|&&n| n == 1).count();
        let keep = if kd.len() - strip <= dims.len() && dims.ends_with(&kd[strip..]) {
            keep.to_contiguous()
        } else {
            keep.broadcast_to(dims)?.to_contiguous()
        };
        let ks = keep.as_slice().expect("contiguous");
        let mask_rows = ks.len().checked_div(d).unwrap_or(1).max(1);
        let x = self.to_contiguous();
        let xs = x.as_slice().expect("contiguous");
        let mut out = vec![T::ZERO; xs.len()];
        for_row_blocks(d, &mut out, |first, out| {
            run_wide(rows::SoftmaxMasked {
                xs,
                keep: ks,
                mask_rows,
                d,
                first,
                out,
            })
        });
        Tensor::from_vec(out, dims)
    }

    /// The backward pass of a softmax over the last axis, `self` being its
    /// output `y` and `g` the gradient of `y`: `y·(g − Σ g·y)` per row, in
    /// one pass per row (the composition takes four passes and three
    /// temporaries). Positions where `y = 0` (masked out by
    /// [`softmax_masked`](Self::softmax_masked)) get 0.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let y = Tensor::from_vec(vec![0.25f64, 0.75], &[1, 2])?;
    /// let g = Tensor::from_vec(vec![1.0, 0.0], &[1, 2])?;
    /// // Σ g·y = 0.25: dx = (0.25·0.75, 0.75·(−0.25)).
    /// assert_eq!(y.softmax_backward(&g)?.to_vec(), vec![0.1875, -0.1875]);
    /// # Ok::<(), tapegrad_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `self` is 0-d;
    /// [`Error::ShapeMismatch`] if `g`'s shape differs from `self`'s.
    pub fn softmax_backward(&self, g: &Self) -> Result<Self> {
        let dims = self.dims();
        let d = *dims.last().ok_or_else(|| Error::InvalidArgument {
            op: "softmax_backward",
            msg: "needs at least one axis, got a 0-d value".into(),
        })?;
        check_grad_shape("softmax_backward", self, g)?;
        let (y, g) = (self.to_contiguous(), g.to_contiguous());
        let (ys, gs) = (
            y.as_slice().expect("contiguous"),
            g.as_slice().expect("contiguous"),
        );
        let mut out = vec![T::ZERO; ys.len()];
        for_row_blocks(d, &mut out, |first, out| {
            run_wide(rows::SoftmaxBackward {
                ys,
                gs,
                d,
                first,
                out,
            })
        });
        Tensor::from_vec(out, dims)
    }
}

/// An error unless the gradient `g` has the shape of `x` (the backward
/// kernels do not broadcast it).
fn check_grad_shape<T: Element>(op: &'static str, x: &Tensor<T>, g: &Tensor<T>) -> Result<()> {
    if g.dims() == x.dims() {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        lhs: x.dims().to_vec(),
        rhs: g.dims().to_vec(),
        reason: "the gradient must have the input's shape".into(),
    })
}

/// The width `d` of a layer norm over `x`'s last axis, after checking the
/// affine parameters and `eps`.
fn check_layer_norm<T: Element>(
    op: &'static str,
    x: &Tensor<T>,
    weight: Option<&Tensor<T>>,
    bias: Option<&Tensor<T>>,
    eps: f64,
) -> Result<usize> {
    let d = *x.dims().last().ok_or_else(|| Error::InvalidArgument {
        op,
        msg: "needs at least one axis, got a 0-d value".into(),
    })?;
    for (what, p) in [("weight", weight), ("bias", bias)] {
        if let Some(p) = p {
            if p.dims() != [d] {
                return Err(Error::InvalidArgument {
                    op,
                    msg: format!(
                        "{what} of shape {:?} for input {:?}: expected [{d}]",
                        p.dims(),
                        x.dims()
                    ),
                });
            }
        }
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::InvalidArgument {
            op,
            msg: format!("eps must be finite and ≥ 0, got {eps}"),
        });
    }
    Ok(d)
}

fn table_dims(op: &'static str, dims: &[usize]) -> Result<(usize, usize)> {
    match *dims {
        [a, b] => Ok((a, b)),
        _ => Err(Error::InvalidArgument {
            op,
            msg: format!("expected a 2-d [rows, width] value, got {dims:?}"),
        }),
    }
}

fn check_ids(op: &'static str, ids: &[usize], vocab: usize, shape: &[usize]) -> Result<()> {
    match ids.iter().find(|&&i| i >= vocab) {
        Some(&index) => Err(Error::IndexOutOfRange {
            op,
            index,
            axis: 0,
            shape: shape.to_vec(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn gelu_matches_known_values() {
        // PyTorch: gelu(-1) = -0.15865525393145707, gelu_tanh(1) = 0.8411919906082768.
        let x = Tensor::from_vec(vec![-1.0f64, 1.0], &[2]).unwrap();
        let y = x.gelu().unwrap().to_vec();
        assert!((y[0] + 0.158_655_253_931_457_07).abs() < 1e-15);
        let yt = x.gelu_tanh().unwrap().to_vec();
        assert!((yt[1] - 0.841_191_990_608_276_8).abs() < 1e-15);
        // The derivatives against central differences.
        for (f, df) in [
            (
                Tensor::gelu as fn(&Tensor<f64>) -> _,
                Tensor::gelu_grad as fn(&Tensor<f64>) -> _,
            ),
            (Tensor::gelu_tanh, Tensor::gelu_tanh_grad),
        ] {
            for x0 in [-3.0, -0.7, 0.0, 0.4, 2.5] {
                let h = 1e-6;
                let at = |v: f64| f(&Tensor::scalar(v)).unwrap().item().unwrap();
                let num = (at(x0 + h) - at(x0 - h)) / (2.0 * h);
                let ana = df(&Tensor::scalar(x0)).unwrap().item().unwrap();
                assert!((num - ana).abs() < 1e-8, "{x0}: {num} vs {ana}");
            }
        }
    }

    #[test]
    fn gelu_f32_matches_f64() {
        // The f32 kernels (vectorised erf and exp) against the f64 ones
        // (libm), over the range where GELU is neither 0 nor x; absolute
        // error scaled by max(1, |x|), as GELU grows like x.
        let xs: Vec<f32> = (0..=40_000).map(|i| -12.0 + i as f32 * 6e-4).collect();
        let x32 = Tensor::from_vec(xs.clone(), &[xs.len()]).unwrap();
        let x64 =
            Tensor::from_vec(xs.iter().map(|&v| f64::from(v)).collect(), &[xs.len()]).unwrap();
        let g64 = x64.map(|v| 1.0 + v.sin()).unwrap();
        let g32 = Tensor::from_vec(
            g64.to_vec().iter().map(|&v| v as f32).collect(),
            &[xs.len()],
        )
        .unwrap();
        let pairs = [
            (x32.gelu().unwrap(), x64.gelu().unwrap()),
            (x32.gelu_grad().unwrap(), x64.gelu_grad().unwrap()),
            (
                x32.gelu_backward(&g32).unwrap(),
                x64.gelu_backward(&g64).unwrap(),
            ),
        ];
        for (k, (got, want)) in pairs.iter().enumerate() {
            for ((&a, &b), &x) in got.to_vec().iter().zip(&want.to_vec()).zip(&xs) {
                let err = (f64::from(a) - b).abs() / f64::from(x.abs()).max(1.0);
                assert!(err < 4e-7, "kernel {k} at {x}: {a} vs {b}");
            }
        }
        // The fused backward is exactly the derivative times g.
        let two = x32.gelu_grad().unwrap().mul(&g32).unwrap();
        assert_eq!(x32.gelu_backward(&g32).unwrap().to_vec(), two.to_vec());
        let err = x32
            .gelu_backward(&x32.narrow(0, 0, 3).unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("gelu_backward"), "{err}");
    }

    #[test]
    fn layer_norm_rows_and_errors() {
        let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 4.0, 4.0], &[2, 3]).unwrap();
        let w = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).unwrap();
        let b = Tensor::from_vec(vec![0.5, 0.0, 0.0], &[3]).unwrap();
        let y = x.layer_norm(Some(&w), Some(&b), 0.0).unwrap().to_vec();
        let s = (1.5f64).sqrt(); // 1/√(2/3)
        let want = [0.5 - s, 0.0, 3.0 * s, 0.5, 0.0, 0.0];
        for (a, e) in y[..3].iter().zip(&want[..3]) {
            assert!((a - e).abs() < 1e-12, "{y:?}");
        }
        // A constant row with eps > 0 normalises to 0 (then + bias).
        let y = x.layer_norm(Some(&w), Some(&b), 1e-5).unwrap().to_vec();
        assert_eq!(&y[3..], &[0.5, 0.0, 0.0]);
        let err = x
            .layer_norm(Some(&b.narrow(0, 0, 2).unwrap()), None, 1e-5)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer_norm: weight of shape [2] for input [2, 3]: expected [3]"
        );
    }

    /// Naive per-row references in f64 for the row kernels, over widths
    /// that are and are not multiples of the accumulator count, and sizes
    /// below and above the parallel threshold.
    #[test]
    fn row_kernels_match_naive_references() {
        for &(rows, d) in &[
            (3usize, 1usize),
            (5, 7),
            (4, 8),
            (9, 13),
            (700, 65),
            (600, 128),
        ] {
            let x = Tensor::<f32>::randn_seeded(&[rows, d], 1)
                .mul_scalar(3.0)
                .unwrap();
            let g = Tensor::<f32>::randn_seeded(&[rows, d], 2);
            let w = Tensor::<f32>::randn_seeded(&[d], 3);
            let b = Tensor::<f32>::randn_seeded(&[d], 4);
            let keep = Tensor::<f32>::uniform_seeded(&[rows, d], 0.0, 1.0, 5)
                .gt_scalar(0.3)
                .unwrap();
            let (xv, gv, wv, bv, kv) = (
                x.to_vec(),
                g.to_vec(),
                w.to_vec(),
                b.to_vec(),
                keep.to_vec(),
            );
            let f = |v: f32| f64::from(v);
            let close = |got: &[f32], want: &[f64], tol: f64, what: &str| {
                for (i, (&a, &e)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (f(a) - e).abs() <= tol * (1.0 + e.abs()),
                        "{what} [{rows}, {d}] at {i}: {a} vs {e}"
                    );
                }
            };
            let (mut sm, mut smb, mut ln, mut dx) = (vec![], vec![], vec![], vec![]);
            let (mut dw, mut db) = (vec![0.0; d], vec![0.0; d]);
            for r in 0..rows {
                let xr = &xv[r * d..][..d];
                let (gr, kr) = (&gv[r * d..][..d], &kv[r * d..][..d]);
                // Masked softmax.
                let m = (0..d)
                    .filter(|&j| kr[j] != 0.0)
                    .map(|j| f(xr[j]))
                    .fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = (0..d)
                    .map(|j| {
                        if kr[j] != 0.0 {
                            (f(xr[j]) - m).exp()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let z: f64 = e.iter().sum();
                let y: Vec<f64> = e
                    .iter()
                    .map(|v| if z > 0.0 { v / z } else { 0.0 })
                    .collect();
                let dot: f64 = (0..d).map(|j| f(gr[j]) * y[j]).sum();
                smb.extend((0..d).map(|j| y[j] * (f(gr[j]) - dot)));
                sm.extend(y);
                // Layer norm.
                let mean = xr.iter().map(|&v| f(v)).sum::<f64>() / d as f64;
                let var = xr.iter().map(|&v| (f(v) - mean).powi(2)).sum::<f64>() / d as f64;
                let rstd = 1.0 / (var + 1e-5).sqrt();
                let xh: Vec<f64> = xr.iter().map(|&v| (f(v) - mean) * rstd).collect();
                ln.extend((0..d).map(|j| xh[j] * f(wv[j]) + f(bv[j])));
                let gh: Vec<f64> = (0..d).map(|j| f(gr[j]) * f(wv[j])).collect();
                let m1 = gh.iter().sum::<f64>() / d as f64;
                let m2 = (0..d).map(|j| gh[j] * xh[j]).sum::<f64>() / d as f64;
                dx.extend((0..d).map(|j| (gh[j] - m1 - xh[j] * m2) * rstd));
                for j in 0..d {
                    dw[j] += f(gr[j]) * xh[j];
                    db[j] += f(gr[j]);
                }
            }
            let y = x.softmax_masked(&keep).unwrap();
            close(&y.to_vec(), &sm, 1e-6, "softmax_masked");
            // The backward kernel from the f32 softmax output.
            let yd: Vec<f64> = y.to_vec().iter().map(|&v| f(v)).collect();
            let want: Vec<f64> = (0..rows)
                .flat_map(|r| {
                    let (yr, gr) = (&yd[r * d..][..d], &gv[r * d..][..d]);
                    let dot: f64 = (0..d).map(|j| f(gr[j]) * yr[j]).sum();
                    (0..d)
                        .map(move |j| yr[j] * (f(gr[j]) - dot))
                        .collect::<Vec<_>>()
                })
                .collect();
            close(
                &y.softmax_backward(&g).unwrap().to_vec(),
                &want,
                2e-6,
                "softmax_backward",
            );
            close(
                &y.softmax_backward(&g).unwrap().to_vec(),
                &smb,
                1e-5,
                "softmax_backward",
            );
            close(
                &x.layer_norm(Some(&w), Some(&b), 1e-5).unwrap().to_vec(),
                &ln,
                1e-6,
                "layer_norm",
            );
            let (gx, gw, gb) = x.layer_norm_backward(Some(&w), &g, 1e-5).unwrap();
            close(&gx.to_vec(), &dx, 1e-5, "layer_norm_backward dx");
            close(&gw.to_vec(), &dw, 1e-5, "layer_norm_backward dw");
            close(&gb.to_vec(), &db, 1e-5, "layer_norm_backward db");
        }
        let y = Tensor::<f64>::zeros(&[2, 3]);
        assert!(y.softmax_backward(&Tensor::zeros(&[3, 2])).is_err());
        assert!(Tensor::<f64>::scalar(1.0)
            .softmax_backward(&Tensor::scalar(1.0))
            .is_err());
    }

    #[test]
    fn embedding_and_adjoint() {
        let table = Tensor::from_vec((0..6).map(f64::from).collect(), &[3, 2]).unwrap();
        let y = table.embedding(&[2, 0, 2]).unwrap();
        assert_eq!(y.to_vec(), [4., 5., 0., 1., 4., 5.]);
        let back = Tensor::<f64>::ones(&[3, 2])
            .embedding_backward(&[2, 0, 2], 3)
            .unwrap();
        assert_eq!(back.to_vec(), [1., 1., 0., 0., 2., 2.]);
        assert!(table.embedding(&[3]).is_err());
    }

    #[test]
    fn softmax_masked_rows() {
        // Causal [3, 3] mask under a [2, 3, 3] batch: row 0 keeps one
        // position (probability 1); a fully masked row is all zeros.
        let x = Tensor::<f64>::zeros(&[2, 3, 3]);
        let causal = Tensor::<f64>::tril_mask(3, 3, 0).unwrap();
        let y = x.softmax_masked(&causal).unwrap().to_vec();
        assert_eq!(&y[..3], &[1.0, 0.0, 0.0]);
        assert_eq!(&y[3..6], &[0.5, 0.5, 0.0]);
        assert_eq!(&y[9..12], &[1.0, 0.0, 0.0]);
        let none = Tensor::<f64>::zeros(&[3]);
        assert_eq!(x.softmax_masked(&none).unwrap().to_vec(), vec![0.0; 18]);
        // A mask that only broadcasts (not a suffix) is expanded.
        let col = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3, 1]).unwrap();
        let y = x.softmax_masked(&col).unwrap().to_vec();
        assert_eq!(&y[..6], &[1. / 3., 1. / 3., 1. / 3., 0., 0., 0.]);
        assert!(x.softmax_masked(&Tensor::zeros(&[2])).is_err());
    }

    #[test]
    fn triangles_and_masked_fill() {
        let l = Tensor::<f64>::tril_mask(3, 3, -1).unwrap();
        assert_eq!(l.to_vec(), [0., 0., 0., 1., 0., 0., 1., 1., 0.]);
        let u = Tensor::<f64>::triu_mask(2, 3, 1).unwrap();
        assert_eq!(u.to_vec(), [0., 1., 1., 0., 0., 1.]);
        let x = Tensor::<f64>::zeros(&[2, 2, 3]);
        let y = x.masked_fill(&u, 7.0).unwrap();
        assert_eq!(y.to_vec(), [0., 7., 7., 0., 0., 7., 0., 7., 7., 0., 0., 7.]);
        assert!(x.masked_fill(&Tensor::zeros(&[2]), 1.0).is_err());
    }
}
