//! Convolution, its transpose, unfold / fold, and pooling.
//!
//! All three convolution ops are partial derivatives of one bilinear form,
//! `B(x, w, g) = ⟨conv(x, w), g⟩`, so each one's backward rule is written
//! with the other two and gradients of any order stay on the tape:
//!
//! | op | forward | ∂/∂ first input (h = ∂L/∂y) | ∂/∂ second input |
//! | --- | --- | --- | --- |
//! | conv2d(x, w) | y = x ⋆ w | convT(h, w) | wgrad(x, h) |
//! | convT(g, w) | ∂B/∂x | conv2d(h, w) | wgrad(h, g) |
//! | wgrad(x, g) | ∂B/∂w | convT(g, h) | conv2d(x, h) |
//! | unfold(x) | im2col | fold(h) | |
//! | fold(c) | col2im | unfold(h) | |
//! | max_pool2d(x) | max per window, idx = argmax | scatter(h) | |
//! | take_flat(x) | x[idx] | scatter(h) | |
//! | scatter(g) | Σ g at idx | take_flat(h) | |
//!
//! Max pooling finds each window's maximum and its position in one pass
//! and keeps the positions: the gradient goes to the maximum (the first
//! one in scan order on ties, like PyTorch) through `scatter`, whose own
//! derivative is `take_flat`, so the second derivative is zero almost
//! everywhere, as it should be. Average pooling
//! is a depthwise convolution with a constant kernel; global average
//! pooling is a mean over the two spatial axes. Nothing is saved but the
//! inputs themselves (the unfolded matrix lives only inside each kernel
//! call) and, for max pooling, one index per output.

use std::sync::{Arc, OnceLock};

use tapegrad_tensor::{avg_pool_as_conv, ConvParams, Element, Tensor};

use crate::error::{Error, Result};
use crate::op::{BackwardCtx, InputGrads, Op, TensorGrads, ValueCtx};
use crate::ops::arith::{pair, single, tpair, tsingle};
use crate::var::Var;

fn conv_params(p: &ConvParams) -> String {
    format!(
        "stride={:?} padding={:?} dilation={:?} groups={}",
        p.stride, p.padding, p.dilation, p.groups
    )
}

/// The `output_padding` that makes the transposed convolution of an
/// `[.., oh, ow]` gradient come out `[h, w]`.
fn output_padding(
    p: &ConvParams,
    out: [usize; 2],
    kernel: [usize; 2],
    input: [usize; 2],
) -> [usize; 2] {
    let mut op = [0; 2];
    for a in 0..2 {
        let reached = (out[a].max(1) - 1) * p.stride[a] + p.dilation[a] * (kernel[a] - 1) + 1;
        op[a] = (input[a] + 2 * p.padding[a]).saturating_sub(reached);
    }
    op
}

fn hw(s: &[usize]) -> [usize; 2] {
    [s[2], s[3]]
}

/// `conv2d(x, w)` (no bias).
#[derive(Debug, Clone, Copy)]
pub struct Conv2d {
    /// Stride, padding, dilation, groups.
    pub params: ConvParams,
}
impl<T: Element> Op<T> for Conv2d {
    fn name(&self) -> &str {
        "conv2d"
    }
    fn params(&self) -> String {
        conv_params(&self.params)
    }
    fn formula(&self) -> Option<String> {
        Some(
            "d(x⋆w)/dx = conv_transpose(g, w), d(x⋆w)/dw = Σₙ g·unfold(x)ᵀ, \
             d(x⋆w + b)/db = Σ over n, h, w of g"
                .into(),
        )
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(match x {
            [x, w] => x.conv2d(w, &self.params)?,
            [x, w, b] => x.conv2d_with_bias(w, b, &self.params)?,
            _ => unreachable!("conv2d is recorded with 2 or 3 inputs"),
        })
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (h, x, w) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let (xs, ws) = (x.shape(), w.shape());
        let gx = if cx.needs_grad[0] {
            Some(conv_transpose_to(h, w, &self.params, hw(&xs))?)
        } else {
            None
        };
        let gw = if cx.needs_grad[1] {
            Some(weight_grad(x, h, &self.params, hw(&ws))?)
        } else {
            None
        };
        let mut grads = pair(gx, gw);
        if cx.inputs.len() == 3 {
            // y = conv(x, w) + b[o] everywhere in channel o: ∂L/∂b[o] sums
            // the gradient over images and positions.
            let gb = if cx.needs_grad[2] {
                Some(h.sum(&[0, 2, 3], false)?)
            } else {
                None
            };
            grads.push(gb);
        }
        Ok(grads)
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let (x, w) = (cx.inputs[0], cx.inputs[1]);
        // Both products read the gradient contiguous: copy a strided or
        // broadcast one (the gradient of a sum) once, not once each.
        let h = &cx.grad_output.to_contiguous();
        Some((|| {
            let gx = cx.grad_for(0, || {
                let op = output_padding(&self.params, hw(h.dims()), hw(w.dims()), hw(x.dims()));
                Ok(h.conv_transpose2d(w, &self.params, op)?)
            })?;
            let gw = cx.grad_for(1, || {
                Ok(x.conv2d_weight_grad(h, hw(w.dims()), &self.params)?)
            })?;
            let mut grads = tpair(gx, gw);
            if cx.inputs.len() == 3 {
                grads.push(cx.grad_for(2, || Ok(h.sum(&[0, 2, 3], false)?))?);
            }
            Ok(grads)
        })())
    }
}

/// `conv_transpose2d(g, w)` to a given output size (the input size of the
/// convolution it transposes).
#[derive(Debug, Clone, Copy)]
pub struct ConvTranspose2d {
    /// Stride, padding, dilation, groups of the convolution transposed.
    pub params: ConvParams,
    /// Extra rows and columns at the end of the output.
    pub output_padding: [usize; 2],
}
impl<T: Element> Op<T> for ConvTranspose2d {
    fn name(&self) -> &str {
        "conv_transpose2d"
    }
    fn params(&self) -> String {
        format!(
            "{} output_padding={:?}",
            conv_params(&self.params),
            self.output_padding
        )
    }
    fn formula(&self) -> Option<String> {
        Some("d convT(g, w)/dg = conv(h, w), d convT(g, w)/dw = Σₙ g·unfold(h)ᵀ".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].conv_transpose2d(x[1], &self.params, self.output_padding)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (h, g, w) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let gg = if cx.needs_grad[0] {
            Some(h.conv2d(w, &self.params)?)
        } else {
            None
        };
        let gw = if cx.needs_grad[1] {
            Some(weight_grad(h, g, &self.params, hw(&w.shape()))?)
        } else {
            None
        };
        Ok(pair(gg, gw))
    }
}

/// The weight gradient of a convolution, `wgrad(x, g)`.
#[derive(Debug, Clone, Copy)]
pub struct ConvWeightGrad {
    /// Stride, padding, dilation, groups of the convolution.
    pub params: ConvParams,
    /// The kernel's `[kh, kw]`.
    pub kernel: [usize; 2],
}
impl<T: Element> Op<T> for ConvWeightGrad {
    fn name(&self) -> &str {
        "conv2d_weight_grad"
    }
    fn params(&self) -> String {
        format!("{} kernel={:?}", conv_params(&self.params), self.kernel)
    }
    fn formula(&self) -> Option<String> {
        Some("d wgrad(x, g)/dx = convT(g, h), d wgrad(x, g)/dg = conv(x, h)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].conv2d_weight_grad(x[1], self.kernel, &self.params)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let (h, x, g) = (cx.grad_output, cx.inputs[0], cx.inputs[1]);
        let gx = if cx.needs_grad[0] {
            Some(conv_transpose_to(g, h, &self.params, hw(&x.shape()))?)
        } else {
            None
        };
        let gg = if cx.needs_grad[1] {
            Some(x.conv2d(h, &self.params)?)
        } else {
            None
        };
        Ok(pair(gx, gg))
    }
}

/// `convT(g, w)` sized to an `[h, w]` output.
fn conv_transpose_to<'t, T: Element>(
    g: Var<'t, T>,
    w: Var<'t, T>,
    params: &ConvParams,
    size: [usize; 2],
) -> Result<Var<'t, T>> {
    let op = output_padding(params, hw(&g.shape()), hw(&w.shape()), size);
    g.tape().apply(
        ConvTranspose2d {
            params: *params,
            output_padding: op,
        },
        &[g, w],
    )
}

/// `wgrad(x, g)` for a kernel of `kernel`.
fn weight_grad<'t, T: Element>(
    x: Var<'t, T>,
    g: Var<'t, T>,
    params: &ConvParams,
    kernel: [usize; 2],
) -> Result<Var<'t, T>> {
    x.tape().apply(
        ConvWeightGrad {
            params: *params,
            kernel,
        },
        &[x, g],
    )
}

/// `unfold(x)`: im2col.
#[derive(Debug, Clone, Copy)]
pub struct Unfold {
    /// The window's `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride, padding, dilation (groups 1).
    pub params: ConvParams,
}
impl<T: Element> Op<T> for Unfold {
    fn name(&self) -> &str {
        "unfold"
    }
    fn params(&self) -> String {
        format!("kernel={:?} {}", self.kernel, conv_params(&self.params))
    }
    fn formula(&self) -> Option<String> {
        Some("d unfold(x)/dx = fold(g)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].unfold(self.kernel, &self.params)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let size = hw(&cx.inputs[0].shape());
        Ok(single(cx.grad_output.fold(
            size,
            self.kernel,
            &self.params,
        )?))
    }
}

/// `fold(c)`: col2im.
#[derive(Debug, Clone, Copy)]
pub struct Fold {
    /// The image's `[H, W]`.
    pub output_size: [usize; 2],
    /// The window's `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride, padding, dilation (groups 1).
    pub params: ConvParams,
}
impl<T: Element> Op<T> for Fold {
    fn name(&self) -> &str {
        "fold"
    }
    fn params(&self) -> String {
        format!(
            "output_size={:?} kernel={:?} {}",
            self.output_size,
            self.kernel,
            conv_params(&self.params)
        )
    }
    fn formula(&self) -> Option<String> {
        Some("d fold(c)/dc = unfold(g)".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].fold(self.output_size, self.kernel, &self.params)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        Ok(single(cx.grad_output.unfold(self.kernel, &self.params)?))
    }
}

/// 2-d max pooling. The forward pass finds each window's maximum and keeps
/// its flat position (one index per output, the only thing saved); the
/// gradient scatters `h` back to those positions ([`ScatterFlat`], whose
/// own gradient is [`TakeFlat`], so higher orders stay on the tape).
#[derive(Debug)]
pub struct MaxPool2d {
    /// The window's `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Rows and columns of −∞ on each side.
    pub padding: [usize; 2],
    /// Where each output's maximum is, set by the forward pass.
    argmax: OnceLock<Arc<Vec<usize>>>,
}
impl MaxPool2d {
    /// Max pooling with this window, stride and padding.
    pub fn new(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Self {
        MaxPool2d {
            kernel,
            stride,
            padding,
            argmax: OnceLock::new(),
        }
    }
    fn argmax(&self) -> Result<&Arc<Vec<usize>>> {
        self.argmax.get().ok_or_else(|| Error::InvalidArgument {
            op: "max_pool2d".into(),
            msg: "the gradient was asked for before the forward pass ran".into(),
        })
    }
}
impl<T: Element> Op<T> for MaxPool2d {
    fn name(&self) -> &str {
        "max_pool2d"
    }
    fn params(&self) -> String {
        format!(
            "kernel={:?} stride={:?} padding={:?}",
            self.kernel, self.stride, self.padding
        )
    }
    fn formula(&self) -> Option<String> {
        Some("d maxpool(x)/dx = g added at each window's argmax".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let (y, at) = x[0].max_pool2d_with_indices(self.kernel, self.stride, self.padding)?;
        // The tape runs an op's forward pass once; a second run (same
        // input, same positions) would find the cell full and keep it.
        let _ = self.argmax.set(Arc::new(at));
        Ok(y)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let g = cx.grad_output;
        let op = ScatterFlat {
            indices: self.argmax()?.clone(),
            input_shape: g.shape().to_vec(),
            output_shape: cx.inputs[0].shape().to_vec(),
        };
        Ok(single(g.tape().apply(op, &[g])?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        Some((|| {
            let g = cx
                .grad_output
                .scatter_add_flat(self.argmax()?, cx.inputs[0].dims())?;
            Ok(tsingle(g))
        })())
    }
}

/// The elements at fixed flat positions (max pooling's forward).
#[derive(Debug, Clone)]
pub struct TakeFlat {
    /// Flat row-major positions in the input.
    pub indices: Arc<Vec<usize>>,
    /// The input's shape.
    pub input_shape: Vec<usize>,
    /// The output's shape (`indices.len()` elements).
    pub output_shape: Vec<usize>,
}
impl<T: Element> Op<T> for TakeFlat {
    fn name(&self) -> &str {
        "take_flat"
    }
    fn params(&self) -> String {
        format!("{} positions", self.indices.len())
    }
    fn formula(&self) -> Option<String> {
        Some("d x[idx]/dx = g added at idx".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].take_flat(&self.indices, &self.output_shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let g = cx.grad_output;
        let op = ScatterFlat {
            indices: self.indices.clone(),
            input_shape: self.output_shape.clone(),
            output_shape: self.input_shape.clone(),
        };
        Ok(single(g.tape().apply(op, &[g])?))
    }
    fn backward_value(&self, cx: &ValueCtx<'_, T>) -> Option<Result<TensorGrads<T>>> {
        let g = cx
            .grad_output
            .scatter_add_flat(&self.indices, &self.input_shape);
        Some(g.map(tsingle).map_err(Into::into))
    }
}

/// Values added at fixed flat positions of a zero tensor (max pooling's
/// backward).
#[derive(Debug, Clone)]
pub struct ScatterFlat {
    /// Flat row-major positions in the output.
    pub indices: Arc<Vec<usize>>,
    /// The input's shape (`indices.len()` elements).
    pub input_shape: Vec<usize>,
    /// The output's shape.
    pub output_shape: Vec<usize>,
}
impl<T: Element> Op<T> for ScatterFlat {
    fn name(&self) -> &str {
        "scatter_add_flat"
    }
    fn params(&self) -> String {
        format!("{} positions", self.indices.len())
    }
    fn formula(&self) -> Option<String> {
        Some("d scatter(g)/dg = h[idx]".into())
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].scatter_add_flat(&self.indices, &self.output_shape)?)
    }
    fn backward<'t>(&self, cx: &BackwardCtx<'t, T>) -> Result<InputGrads<'t, T>> {
        let h = cx.grad_output;
        let op = TakeFlat {
            indices: self.indices.clone(),
            input_shape: self.output_shape.clone(),
            output_shape: self.input_shape.clone(),
        };
        Ok(single(h.tape().apply(op, &[h])?))
    }
}

/// Convolution and pooling on values.
impl<'t, T: Element> Var<'t, T> {
    /// 2-d convolution of `[N, C, H, W]` with a weight `[O, C/groups, kh,
    /// kw]` (see [`Tensor::conv2d`]); differentiable in both, to any order.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::arange(0.0, 9.0, 1.0)?.reshape(&[1, 1, 3, 3])?);
    /// let w = tape.leaf(Tensor::ones(&[1, 1, 2, 2]));
    /// let y = x.conv2d(w, &ConvParams::new())?.sum_all()?;
    /// let g = tape.backward(y)?;
    /// // The centre pixel is under all four windows, the corners under one.
    /// assert_eq!(g.get(x).unwrap().to_vec(), vec![1., 2., 1., 2., 4., 2., 1., 2., 1.]);
    /// assert_eq!(g.get(w).unwrap().to_vec(), vec![8., 12., 20., 24.]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::conv2d`] (wrong channel count, kernel larger than the
    /// padded input, stride 0, groups not dividing the channels).
    pub fn conv2d(self, weight: Var<'t, T>, params: &ConvParams) -> Result<Var<'t, T>> {
        self.tape()
            .apply(Conv2d { params: *params }, &[self, weight])
    }

    /// [`conv2d`](Self::conv2d) plus a bias `[O]` on every output channel,
    /// as PyTorch's `conv2d(x, w, b)`, recorded as one op (see
    /// [`Tensor::conv2d_with_bias`]): the bias is added while each image's
    /// output is in cache, and its gradient is the output gradient summed
    /// over images and positions.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::{ConvParams, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::ones(&[2, 1, 3, 3]));
    /// let w = tape.leaf(Tensor::ones(&[1, 1, 2, 2]));
    /// let b = tape.leaf(Tensor::from_vec(vec![0.5], &[1])?);
    /// let y = x.conv2d_with_bias(w, b, &ConvParams::new())?;
    /// assert_eq!(y.value().to_vec(), vec![4.5; 8]);
    /// let g = tape.backward(y.sum_all()?)?;
    /// // Two images of 2×2 outputs: the bias is under all eight.
    /// assert_eq!(g.get(b).unwrap().to_vec(), vec![8.0]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::conv2d_with_bias`].
    pub fn conv2d_with_bias(
        self,
        weight: Var<'t, T>,
        bias: Var<'t, T>,
        params: &ConvParams,
    ) -> Result<Var<'t, T>> {
        self.tape()
            .apply(Conv2d { params: *params }, &[self, weight, bias])
    }

    /// 1-d convolution of `[N, C, L]` with a weight `[O, C/groups, k]`,
    /// using the width entries of `params` (see [`Tensor::conv1d`]).
    ///
    /// # Errors
    /// As [`Tensor::conv1d`].
    pub fn conv1d(self, weight: Var<'t, T>, params: &ConvParams) -> Result<Var<'t, T>> {
        self.conv1d_biased(weight, None, params)
    }

    /// [`conv1d`](Self::conv1d) plus a bias `[O]` on every output channel,
    /// recorded as one op (see [`conv2d_with_bias`](Self::conv2d_with_bias)).
    ///
    /// # Errors
    /// As [`Tensor::conv1d`], and if `bias` is not `[O]`.
    pub fn conv1d_with_bias(
        self,
        weight: Var<'t, T>,
        bias: Var<'t, T>,
        params: &ConvParams,
    ) -> Result<Var<'t, T>> {
        self.conv1d_biased(weight, Some(bias), params)
    }

    fn conv1d_biased(
        self,
        weight: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        params: &ConvParams,
    ) -> Result<Var<'t, T>> {
        let (xs, ws) = (self.shape(), weight.shape());
        if xs.len() != 3 || ws.len() != 3 {
            return Err(Error::InvalidArgument {
                op: "conv1d".into(),
                msg: format!(
                    "expected input [N, C, L] and weight [O, C/groups, k], got {:?} and {:?}",
                    xs.as_slice(),
                    ws.as_slice()
                ),
            });
        }
        let p = ConvParams {
            stride: [1, params.stride[1]],
            padding: [0, params.padding[1]],
            dilation: [1, params.dilation[1]],
            groups: params.groups,
        };
        let (x, w) = (self.unsqueeze(2)?, weight.unsqueeze(2)?);
        match bias {
            Some(b) => x.conv2d_with_bias(w, b, &p)?,
            None => x.conv2d(w, &p)?,
        }
        .squeeze(2)
    }

    /// The transposed convolution (see [`Tensor::conv_transpose2d`]).
    ///
    /// # Errors
    /// As [`Tensor::conv_transpose2d`].
    pub fn conv_transpose2d(
        self,
        weight: Var<'t, T>,
        params: &ConvParams,
        output_padding: [usize; 2],
    ) -> Result<Var<'t, T>> {
        let op = ConvTranspose2d {
            params: *params,
            output_padding,
        };
        self.tape().apply(op, &[self, weight])
    }

    /// Sliding windows as columns, `[N, C·kh·kw, L]` (see
    /// [`Tensor::unfold`]).
    ///
    /// # Errors
    /// As [`Tensor::unfold`].
    pub fn unfold(self, kernel: [usize; 2], params: &ConvParams) -> Result<Var<'t, T>> {
        let op = Unfold {
            kernel,
            params: *params,
        };
        self.tape().apply(op, &[self])
    }

    /// Columns summed back into an image (see [`Tensor::fold`]).
    ///
    /// # Errors
    /// As [`Tensor::fold`].
    pub fn fold(
        self,
        output_size: [usize; 2],
        kernel: [usize; 2],
        params: &ConvParams,
    ) -> Result<Var<'t, T>> {
        let op = Fold {
            output_size,
            kernel,
            params: *params,
        };
        self.tape().apply(op, &[self])
    }

    /// 2-d max pooling of `[N, C, H, W]` (see
    /// [`Tensor::max_pool2d_with_indices`]). The gradient of each output
    /// goes to its window's maximum; on ties, to the first maximum in scan
    /// order (row by row), as in PyTorch.
    ///
    /// ```
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 5.0, 2.0, 5.0], &[1, 1, 2, 2])?);
    /// let y = x.max_pool2d([2, 2], [2, 2], [0, 0])?;
    /// let g = tape.backward(y.sum_all()?)?;
    /// assert_eq!(g.get(x).unwrap().to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), tapegrad_autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::max_pool2d_with_indices`].
    pub fn max_pool2d(
        self,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<Var<'t, T>> {
        self.tape()
            .apply(MaxPool2d::new(kernel, stride, padding), &[self])
    }

    /// 2-d average pooling (see [`Tensor::avg_pool2d`]): a depthwise
    /// convolution with a constant `1/(kh·kw)` kernel.
    ///
    /// # Errors
    /// As [`Tensor::avg_pool2d`].
    pub fn avg_pool2d(
        self,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<Var<'t, T>> {
        let (w, p) = avg_pool_as_conv(&self.shape(), kernel, stride, padding).map_err(|e| {
            Error::InvalidArgument {
                op: "avg_pool2d".into(),
                msg: e.to_string(),
            }
        })?;
        self.conv2d(self.tape().constant(w), &p)
    }

    /// Global average pooling: `[N, C, H, W]` → `[N, C]`, the mean over the
    /// spatial axes (PyTorch's `AdaptiveAvgPool2d(1)` followed by a
    /// flatten).
    ///
    /// # Errors
    /// If the input is not 4-d.
    pub fn global_avg_pool2d(self) -> Result<Var<'t, T>> {
        let s = self.shape();
        if s.len() != 4 {
            return Err(Error::InvalidArgument {
                op: "global_avg_pool2d".into(),
                msg: format!("expected [N, C, H, W], got {:?}", s.as_slice()),
            });
        }
        self.mean(&[2, 3], false)
    }
}

#[cfg(test)]
mod tests {
    use tapegrad_tensor::ConvParams;

    use crate::ops::testutil::*;

    #[test]
    fn conv2d_gradcheck() {
        let p = ConvParams::new().padding(1);
        check(
            |_, v| v[0].conv2d(v[1], &p),
            &[rnd(&[2, 2, 4, 3], 1), rnd(&[3, 2, 3, 2], 2)],
        );
        let p = ConvParams {
            stride: [2, 1],
            padding: [1, 0],
            dilation: [1, 2],
            groups: 2,
        };
        check(
            |_, v| v[0].conv2d(v[1], &p),
            &[rnd(&[1, 4, 5, 5], 3), rnd(&[2, 2, 2, 2], 4)],
        );
        // A strided (transposed) input and a broadcast weight.
        check(
            |_, v| {
                v[0].transpose(2, 3)?
                    .conv2d(v[1].broadcast_to(&[2, 1, 2, 2])?, &ConvParams::new())
            },
            &[rnd(&[1, 1, 3, 4], 5), rnd(&[1, 1, 2, 2], 6)],
        );
        // Second order through conv, convT and wgrad (the square makes the
        // second derivative non-zero).
        let p = ConvParams::new().stride(2).padding(1);
        check2(
            |_, v| v[0].conv2d(v[1], &p)?.square(),
            &[rnd(&[1, 2, 4, 4], 7), rnd(&[2, 2, 3, 3], 8)],
        );
    }

    #[test]
    fn conv_with_bias_gradcheck() {
        let p = ConvParams {
            stride: [2, 1],
            padding: [1, 1],
            dilation: [1, 2],
            groups: 2,
        };
        check(
            |_, v| v[0].conv2d_with_bias(v[1], v[2], &p),
            &[rnd(&[2, 4, 5, 5], 1), rnd(&[4, 2, 2, 2], 2), rnd(&[4], 3)],
        );
        // Second order: through the bias's sum as well (the square makes
        // the output's second derivative depend on the bias).
        check2(
            |_, v| v[0].conv2d_with_bias(v[1], v[2], &p)?.square(),
            &[rnd(&[1, 2, 3, 3], 4), rnd(&[2, 1, 2, 2], 5), rnd(&[2], 6)],
        );
        // A strided bias (a column of a matrix).
        check(
            |_, v| v[0].conv2d_with_bias(v[1], v[2].select(1, 0)?, &ConvParams::new()),
            &[
                rnd(&[1, 1, 3, 3], 7),
                rnd(&[3, 1, 2, 2], 8),
                rnd(&[3, 2], 9),
            ],
        );
        check2(
            |_, v| {
                v[0].conv1d_with_bias(v[1], v[2], &ConvParams::new().padding(1))?
                    .square()
            },
            &[rnd(&[2, 2, 4], 10), rnd(&[3, 2, 3], 11), rnd(&[3], 12)],
        );
    }

    #[test]
    fn conv_with_bias_is_conv_plus_broadcast_bias() {
        // By hand: a 1×1 kernel of 2 on a 1×2 image [1, 3], bias -1: the
        // output is [1, 5]; with L = Σ y², ∂L/∂b = Σ 2y = 12.
        let tape = crate::Tape::<f64>::new();
        let x =
            tape.leaf(tapegrad_tensor::Tensor::from_vec(vec![1.0, 3.0], &[1, 1, 1, 2]).unwrap());
        let w = tape.leaf(tapegrad_tensor::Tensor::from_vec(vec![2.0], &[1, 1, 1, 1]).unwrap());
        let b = tape.leaf(tapegrad_tensor::Tensor::from_vec(vec![-1.0], &[1]).unwrap());
        let y = x.conv2d_with_bias(w, b, &ConvParams::new()).unwrap();
        assert_eq!(y.value().to_vec(), vec![1.0, 5.0]);
        let g = tape
            .backward(y.square().unwrap().sum_all().unwrap())
            .unwrap();
        assert_eq!(g.get(b).unwrap().to_vec(), vec![12.0]);
        // ∂L/∂w = Σ 2y·x = 2·1·1 + 2·5·3 = 32; ∂L/∂x = 2y·w = [4, 20].
        assert_eq!(g.get(w).unwrap().to_vec(), vec![32.0]);
        assert_eq!(g.get(x).unwrap().to_vec(), vec![4.0, 20.0]);
        // A wrong bias names the op and both shapes.
        let bad = tape.leaf(tapegrad_tensor::Tensor::zeros(&[2]));
        let e = x
            .conv2d_with_bias(w, bad, &ConvParams::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("conv2d_with_bias") && e.contains("[2]") && e.contains("[1, 1, 1, 1]"),
            "{e}"
        );
    }

    #[test]
    fn conv_transpose_and_conv1d_gradcheck() {
        let p = ConvParams::new().stride(2).padding(1);
        check(
            |_, v| v[0].conv_transpose2d(v[1], &p, [1, 0]),
            &[rnd(&[1, 2, 3, 3], 1), rnd(&[2, 1, 3, 2], 2)],
        );
        check2(
            |_, v| v[0].conv_transpose2d(v[1], &p, [0, 1])?.square(),
            &[rnd(&[1, 2, 2, 2], 3), rnd(&[2, 2, 2, 2], 4)],
        );
        let p1 = ConvParams::new().padding(1).dilation(2);
        check(
            |_, v| v[0].conv1d(v[1], &p1),
            &[rnd(&[2, 2, 6], 5), rnd(&[3, 2, 3], 6)],
        );
        check2(
            |_, v| v[0].conv1d(v[1], &ConvParams::new().groups(2))?.square(),
            &[rnd(&[1, 2, 4], 7), rnd(&[2, 1, 2], 8)],
        );
    }

    #[test]
    fn unfold_fold_gradcheck() {
        let p = ConvParams::new().stride(2).padding(1);
        check(
            |_, v| v[0].unfold([2, 3], &p)?.square(),
            &[rnd(&[1, 2, 4, 5], 1)],
        );
        check(
            |_, v| v[0].fold([4, 5], [2, 3], &p)?.square(),
            &[rnd(&[1, 12, 9], 2)],
        );
        check2(
            |_, v| v[0].unfold([2, 2], &p)?.square(),
            &[rnd(&[1, 1, 3, 3], 3)],
        );
    }

    #[test]
    fn pooling_gradcheck() {
        // Random values have no ties, so max pooling is differentiable
        // there.
        check(
            |_, v| v[0].max_pool2d([2, 2], [2, 2], [0, 0]),
            &[rnd(&[2, 2, 4, 5], 1)],
        );
        check(
            |_, v| v[0].max_pool2d([3, 3], [2, 2], [1, 1])?.square(),
            &[rnd(&[1, 2, 5, 5], 2)],
        );
        check2(
            |_, v| v[0].max_pool2d([2, 2], [1, 1], [1, 1])?.square(),
            &[rnd(&[1, 1, 3, 3], 3)],
        );
        check(
            |_, v| v[0].avg_pool2d([3, 2], [2, 1], [1, 1]),
            &[rnd(&[2, 3, 5, 4], 4)],
        );
        check2(
            |_, v| v[0].avg_pool2d([2, 2], [2, 2], [0, 0])?.square(),
            &[rnd(&[1, 2, 4, 4], 5)],
        );
        check(
            |_, v| v[0].global_avg_pool2d()?.square(),
            &[rnd(&[2, 3, 2, 2], 6)],
        );
    }

    #[test]
    fn conv2d_by_hand() {
        // x = [[1, 2], [3, 4]], w = [[1, 0], [0, −1]], padding 0: one
        // output, 1 − 4 = −3. ∂y/∂x = w, ∂y/∂w = x.
        let (y, g) = grads_of_sum(
            |_, v| v[0].conv2d(v[1], &ConvParams::new()),
            &[
                t(&[1., 2., 3., 4.], &[1, 1, 2, 2]),
                t(&[1., 0., 0., -1.], &[1, 1, 2, 2]),
            ],
        );
        assert_eq!(y, [-3.]);
        assert_eq!(g, [vec![1., 0., 0., -1.], vec![1., 2., 3., 4.]]);
    }

    #[test]
    fn max_pool_ties_go_to_the_first_maximum() {
        // Two windows of a 1×4 row, both all equal: each gradient lands on
        // its window's first element.
        let (y, g) = grads_of_sum(
            |_, v| v[0].max_pool2d([1, 2], [1, 2], [0, 0]),
            &[t(&[7., 7., 3., 3.], &[1, 1, 1, 4])],
        );
        assert_eq!(y, [7., 3.]);
        assert_eq!(g[0], [1., 0., 1., 0.]);
    }

    #[test]
    fn avg_pool_by_hand() {
        // The mean of a 2×2 window: each input gets ¼ of the gradient.
        let (y, g) = grads_of_sum(
            |_, v| v[0].avg_pool2d([2, 2], [2, 2], [0, 0]),
            &[t(&[1., 2., 3., 6.], &[1, 1, 2, 2])],
        );
        assert_eq!(y, [3.]);
        assert_eq!(g[0], [0.25; 4]);
    }
}
