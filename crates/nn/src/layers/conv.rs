//! [`Conv1d`] and [`Conv2d`]: convolution layers with PyTorch's weight
//! layout `[out, in / groups, k…]`, bias `[out]` and initialisation.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{Result as TapeResult, Tape, Var};
use tapegrad_tensor::{ConvParams, Element};

use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::layer_error;
use crate::module::Module;
use crate::param::Param;

/// A convolution layer over `D` spatial axes (1 or 2): use the aliases
/// [`Conv1d`] (input `[N, C, L]`) and [`Conv2d`] (input `[N, C, H, W]`).
///
/// Parameters `weight` `[out, in/groups, k…]` and `bias` `[out]`, as in
/// `torch.nn.Conv1d`/`Conv2d`, initialised like PyTorch: both uniform in
/// `±1/√fan_in` with `fan_in = in/groups · Πk`. Stride, padding and
/// dilation are set with the builder methods; for `Conv1d` they apply to
/// the length axis.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Conv2d, Module};
/// use tapegrad_tensor::Tensor;
/// let conv = Conv2d::<f32>::new(3, 8, 3, 0)?.padding(1);
/// let tape = Tape::new();
/// let y = conv.forward(&tape, tape.constant(Tensor::zeros(&[2, 3, 16, 16])))?;
/// assert_eq!(y.shape(), [2, 8, 16, 16]);
/// // The wrong channel count names the layer and the shapes.
/// let err = conv.forward(&tape, tape.constant(Tensor::zeros(&[2, 4, 16, 16]))).unwrap_err();
/// assert!(err.to_string().contains("expected 3 channels"), "{err}");
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Conv<T: Element, const D: usize> {
    weight: Param<T>,
    bias: Option<Param<T>>,
    params: ConvParams,
}

/// 1-d convolution, `[N, C, L]` → `[N, O, L']` (`torch.nn.Conv1d`).
pub type Conv1d<T = f32> = Conv<T, 1>;
/// 2-d convolution, `[N, C, H, W]` → `[N, O, H', W']` (`torch.nn.Conv2d`).
pub type Conv2d<T = f32> = Conv<T, 2>;

impl<T: Element, const D: usize> Conv<T, D> {
    /// A layer with a square (or, in 1-d, length-`kernel_size`) kernel,
    /// stride 1, no padding, one group, a bias, and PyTorch's default
    /// initialisation drawn from a generator seeded with `seed`.
    ///
    /// # Errors
    /// If a size is 0.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::with_options(
            in_channels,
            out_channels,
            [kernel_size; D],
            1,
            true,
            &mut StdRng::seed_from_u64(seed),
        )
    }

    /// A layer with a `kernel` of `D` sizes, `groups` channel groups
    /// (`groups = in = out` is a depthwise convolution), an optional bias,
    /// and PyTorch's default initialisation drawn from `rng` (weight
    /// first).
    ///
    /// # Errors
    /// If a size or `groups` is 0, or `groups` does not divide both
    /// channel counts.
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; D],
        groups: usize,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let name = if D == 1 { "Conv1d" } else { "Conv2d" };
        if in_channels == 0 || out_channels == 0 || kernel.contains(&0) || groups == 0 {
            return Err(Error::invalid(
                name,
                format!(
                    "channels ({in_channels}, {out_channels}), kernel {kernel:?} and groups {groups} must be positive"
                ),
            ));
        }
        if !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
            return Err(Error::invalid(
                name,
                format!(
                    "groups = {groups} must divide in_channels = {in_channels} and out_channels = {out_channels}"
                ),
            ));
        }
        let cg = in_channels / groups;
        let fan_in = cg * kernel.iter().product::<usize>();
        let mut shape = vec![out_channels, cg];
        shape.extend_from_slice(&kernel);
        let fan_out = out_channels / groups * kernel.iter().product::<usize>();
        let w = Init::TorchDefault.tensor(&shape, fan_in, fan_out, rng);
        let b = bias.then(|| Init::TorchDefault.tensor(&[out_channels], fan_in, fan_out, rng));
        Ok(Conv {
            weight: Param::new("weight", w),
            bias: b.map(|b| Param::new("bias", b)),
            params: ConvParams::new().groups(groups),
        })
    }

    /// The same stride along every spatial axis.
    pub fn stride(mut self, s: usize) -> Self {
        self.params.stride = [s, s];
        self
    }

    /// The same zero padding on every side.
    pub fn padding(mut self, p: usize) -> Self {
        self.params.padding = [p, p];
        self
    }

    /// The same dilation along every spatial axis.
    pub fn dilation(mut self, d: usize) -> Self {
        self.params.dilation = [d, d];
        self
    }

    /// The weight, `[out, in/groups, k…]`.
    pub fn weight(&self) -> &Param<T> {
        &self.weight
    }

    /// The bias, `[out]`, if any.
    pub fn bias(&self) -> Option<&Param<T>> {
        self.bias.as_ref()
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.dims()[1] * self.params.groups
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Stride, padding, dilation and groups.
    pub fn conv_params(&self) -> &ConvParams {
        &self.params
    }

    fn fail(&self, msg: String) -> tapegrad_autograd::Error {
        layer_error(Some(self.weight.name()), &self.describe_as(), msg)
    }

    fn describe_as(&self) -> String {
        let k = &self.weight.dims()[2..];
        let pick = |a: [usize; 2]| -> Vec<usize> { a[2 - D..].to_vec() };
        let tuple = |v: Vec<usize>| -> String {
            let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            if v.len() == 1 {
                format!("({},)", s[0])
            } else {
                format!("({})", s.join(", "))
            }
        };
        let mut s = format!(
            "Conv{D}d({}, {}, kernel_size={}, stride={}",
            self.in_channels(),
            self.out_channels(),
            tuple(k.to_vec()),
            tuple(pick(self.params.stride))
        );
        if self.params.padding != [0, 0] {
            s += &format!(", padding={}", tuple(pick(self.params.padding)));
        }
        if self.params.dilation != [1, 1] {
            s += &format!(", dilation={}", tuple(pick(self.params.dilation)));
        }
        if self.params.groups != 1 {
            s += &format!(", groups={}", self.params.groups);
        }
        if self.bias.is_none() {
            s += ", bias=False";
        }
        s + ")"
    }
}

impl<T: Element, const D: usize> Module<T> for Conv<T, D> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let shape = x.shape();
        if shape.len() != D + 2 {
            let want = if D == 1 { "[N, C, L]" } else { "[N, C, H, W]" };
            return Err(self.fail(format!(
                "got input of shape {:?}: expected {want}",
                shape.as_slice()
            )));
        }
        if shape[1] != self.in_channels() {
            return Err(self.fail(format!(
                "got input of shape {:?}: expected {} channels",
                shape.as_slice(),
                self.in_channels()
            )));
        }
        let w = self.weight.var(tape)?;
        // The bias goes into the convolution (one op, added while each
        // image's output is in cache), as PyTorch's conv2d(x, w, b).
        let b = self.bias.as_ref().map(|b| b.var(tape)).transpose()?;
        match (D, b) {
            (1, Some(b)) => x.conv1d_with_bias(w, b, &self.params),
            (1, None) => x.conv1d(w, &self.params),
            (_, Some(b)) => x.conv2d_with_bias(w, b, &self.params),
            (_, None) => x.conv2d(w, &self.params),
        }
        .map_err(|e| {
            self.fail(format!(
                "input of shape {:?}, weight {:?}: {e}",
                shape.as_slice(),
                self.weight.dims()
            ))
        })
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        let mut v = vec![("weight".to_string(), &self.weight)];
        if let Some(b) = &self.bias {
            v.push(("bias".to_string(), b));
        }
        v
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        let mut v = vec![("weight".to_string(), &mut self.weight)];
        if let Some(b) = &mut self.bias {
            v.push(("bias".to_string(), b));
        }
        v
    }

    fn describe(&self) -> String {
        self.describe_as()
    }
}

#[cfg(test)]
mod tests {
    use tapegrad_autograd::{gradcheck, Tape};
    use tapegrad_tensor::Tensor;

    use super::*;

    #[test]
    fn conv_layers_match_the_op_and_check_their_gradients() {
        let conv = Conv2d::<f64>::new(2, 3, 3, 1).unwrap().padding(1).stride(2);
        assert_eq!(conv.weight().dims(), [3, 2, 3, 3]);
        let x = Tensor::<f64>::uniform_seeded(&[2, 2, 5, 5], -1.0, 1.0, 2);
        let (w, b) = (
            conv.weight().value().clone(),
            conv.bias().unwrap().value().clone(),
        );
        let r = gradcheck(
            |_, v| {
                let y = v[0].conv2d(v[1], conv.conv_params())?;
                y.add(v[2].reshape(&[1, 3, 1, 1])?)?.square()
            },
            &[x.clone(), w.clone(), b.clone()],
        )
        .unwrap();
        assert!(r.passed, "{r}");
        let tape = Tape::new();
        let y = conv.forward(&tape, tape.constant(x.clone())).unwrap();
        assert_eq!(y.shape(), [2, 3, 3, 3]);
        // The layer adds its bias inside the convolution: the same values
        // as the convolution plus the broadcast bias.
        let reference = x
            .conv2d(&w, conv.conv_params())
            .unwrap()
            .add(&b.reshape(&[1, 3, 1, 1]).unwrap())
            .unwrap();
        for (a, r) in y.value().to_vec().iter().zip(reference.to_vec()) {
            assert!((a - r).abs() < 1e-12, "{a} vs {r}");
        }

        let c1 = Conv1d::<f64>::new(4, 2, 3, 0).unwrap().dilation(2);
        assert_eq!(
            c1.describe(),
            "Conv1d(4, 2, kernel_size=(3,), stride=(1,), dilation=(2,))"
        );
        let y = c1
            .forward(&tape, tape.constant(Tensor::zeros(&[1, 4, 9])))
            .unwrap();
        assert_eq!(y.shape(), [1, 2, 5]);
    }

    #[test]
    fn conv_errors_name_the_layer_and_shapes() {
        let e = Conv2d::<f32>::with_options(4, 6, [3, 3], 4, true, &mut StdRng::seed_from_u64(0));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("groups = 4 must divide"));
        let conv = Conv2d::<f32>::new(1, 2, 5, 0).unwrap();
        let tape = Tape::new();
        let e = conv
            .forward(&tape, tape.constant(Tensor::zeros(&[1, 1, 3, 3])))
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("Conv2d(1, 2") && msg.contains("larger than the padded input"),
            "{msg}"
        );
        let conv = conv.stride(0);
        let e = conv
            .forward(&tape, tape.constant(Tensor::zeros(&[1, 1, 8, 8])))
            .unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }
}
