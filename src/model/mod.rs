//! Models: the presets (dfdx MLPs with compile-time shapes), training with an optimiser whose
//! state we own, checkpoints, and the [`RuntimeModel`] view that all analysis reads.
//!
//! dfdx is used for the forward and backward passes of training only; everything after
//! training goes through [`RuntimeModel`]. This module must never analyse a model, touch a
//! file or write an event (the run layer does both).

pub mod adam;
pub mod checkpoint;
pub mod fused;
pub mod import;
pub mod net;
pub mod spec;
pub mod spec_data;
pub mod train;
pub mod view;

pub use view::{Layer, RuntimeModel, Trace};

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A layer's elementwise activation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Identity,
    Relu,
    /// `x` for `x > 0`, `slope · x` otherwise (PyTorch's `LeakyReLU(negative_slope)`).
    LeakyRelu {
        slope: f64,
    },
    Tanh,
    Sigmoid,
    /// GELU as PyTorch's `GELU()` computes it: `x · Φ(x)`, with the error function.
    GeluErf,
    /// The tanh approximation of GELU: dfdx's `FastGeLU`, PyTorch's `GELU(approximate='tanh')`.
    /// Named `gelu` in run files written before other GELUs existed (the `products-gelu`
    /// preset). dfdx's `AccurateGeLU` is not used: in dfdx 0.13.0 its backward pass computes
    /// `x·exp(-x²/2)/√π` for the second term where the derivative is `x·exp(-x²/2)/√(2π)`.
    #[serde(rename = "gelu")]
    Gelu,
    /// `x · σ(x)` (PyTorch's `SiLU`).
    Silu,
    /// `ln(1 + eˣ)`, and `x` above 20, as PyTorch's `Softplus()` (beta 1, threshold 20).
    Softplus,
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// The float types activations are computed in: f32 (the fused training engine, as dfdx and
/// PyTorch train) and f64 (every analysis). One formula per activation serves both.
pub trait Real: num_traits::Float {
    /// The error function (libm's `erff` / `erf`).
    fn erf(self) -> Self;
    /// A constant, rounded to this type.
    fn c(x: f64) -> Self;
}

impl Real for f32 {
    fn erf(self) -> f32 {
        libm::erff(self)
    }
    fn c(x: f64) -> f32 {
        x as f32
    }
}

impl Real for f64 {
    fn erf(self) -> f64 {
        libm::erf(self)
    }
    fn c(x: f64) -> f64 {
        x
    }
}

fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

impl Activation {
    /// The names a model spec uses: `relu`, `leaky_relu`, `identity`, `tanh`, `sigmoid`,
    /// `gelu` (erf), `gelu_tanh`, `silu`, `softplus`.
    pub const SPEC_NAMES: [&'static str; 9] = [
        "relu",
        "leaky_relu",
        "identity",
        "tanh",
        "sigmoid",
        "gelu",
        "gelu_tanh",
        "silu",
        "softplus",
    ];

    /// The activation a spec names; `slope` only (and always) with `leaky_relu`.
    pub fn from_spec(name: &str, slope: Option<f64>) -> std::result::Result<Activation, String> {
        let a = match name {
            "relu" => Activation::Relu,
            "leaky_relu" => match slope {
                Some(s) if s.is_finite() => return Ok(Activation::LeakyRelu { slope: s }),
                Some(s) => return Err(format!("leaky_relu slope {s} is not finite")),
                None => return Err("leaky_relu needs a `slope`".into()),
            },
            "identity" => Activation::Identity,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "gelu" => Activation::GeluErf,
            "gelu_tanh" => Activation::Gelu,
            "silu" => Activation::Silu,
            "softplus" => Activation::Softplus,
            other => {
                return Err(format!(
                    "unknown activation `{other}`; known: {}",
                    Activation::SPEC_NAMES.join(", ")
                ))
            }
        };
        if slope.is_some() {
            return Err(format!("`slope` is only for leaky_relu, not {name}"));
        }
        Ok(a)
    }

    /// The spec's name of this activation, and its slope.
    pub fn spec_name(self) -> (&'static str, Option<f64>) {
        match self {
            Activation::Identity => ("identity", None),
            Activation::Relu => ("relu", None),
            Activation::LeakyRelu { slope } => ("leaky_relu", Some(slope)),
            Activation::Tanh => ("tanh", None),
            Activation::Sigmoid => ("sigmoid", None),
            Activation::GeluErf => ("gelu", None),
            Activation::Gelu => ("gelu_tanh", None),
            Activation::Silu => ("silu", None),
            Activation::Softplus => ("softplus", None),
        }
    }

    /// Whether the activation is piecewise linear (its derivative depends only on the sign).
    pub fn is_piecewise_linear(self) -> bool {
        matches!(
            self,
            Activation::Identity | Activation::Relu | Activation::LeakyRelu { .. }
        )
    }

    /// The activation at pre-activation `x`, in f32 or f64.
    pub fn apply<T: Real>(self, x: T) -> T {
        let (half, one) = (T::c(0.5), T::one());
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(T::zero()),
            Activation::LeakyRelu { slope } => {
                if x > T::zero() {
                    x
                } else {
                    T::c(slope) * x
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => sigmoid(x),
            Activation::GeluErf => {
                half * x * (one + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf())
            }
            Activation::Gelu => {
                half * x * (one + (T::c(SQRT_2_OVER_PI) * (x + T::c(0.044715) * x.powi(3))).tanh())
            }
            Activation::Silu => x * sigmoid(x),
            Activation::Softplus => {
                if x > T::c(20.0) {
                    x
                } else {
                    x.exp().ln_1p()
                }
            }
        }
    }

    /// The derivative at pre-activation `x` (for ReLU and leaky ReLU at 0, the left one, as
    /// dfdx and PyTorch take), in f32 or f64.
    pub fn derivative<T: Real>(self, x: T) -> T {
        let (half, one, zero) = (T::c(0.5), T::one(), T::zero());
        match self {
            Activation::Identity => one,
            Activation::Relu => {
                if x > zero {
                    one
                } else {
                    zero
                }
            }
            Activation::LeakyRelu { slope } => {
                if x > zero {
                    one
                } else {
                    T::c(slope)
                }
            }
            Activation::Tanh => one - x.tanh().powi(2),
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (one - s)
            }
            Activation::GeluErf => {
                half * (one + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf())
                    + x * T::c(FRAC_1_SQRT_2PI) * (-half * x * x).exp()
            }
            Activation::Gelu => {
                let k = T::c(SQRT_2_OVER_PI);
                let t = (k * (x + T::c(0.044715) * x.powi(3))).tanh();
                half * (one + t)
                    + half * x * (one - t * t) * k * (one + T::c(3.0 * 0.044715) * x * x)
            }
            Activation::Silu => {
                let s = sigmoid(x);
                s * (one + x * (one - s))
            }
            Activation::Softplus => {
                if x > T::c(20.0) {
                    one
                } else {
                    sigmoid(x)
                }
            }
        }
    }

    /// The activation in f64 (every analysis).
    pub fn apply_f64(self, x: f64) -> f64 {
        self.apply(x)
    }

    /// The derivative in f64 (every analysis).
    pub fn derivative_f64(self, x: f64) -> f64 {
        self.derivative(x)
    }
}

/// What training minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean squared error; each output column is one task.
    Mse,
    /// Softmax cross-entropy over all outputs (one task).
    CrossEntropy,
}

/// A network's shape: widths from input to output, the hidden activation (outputs are linear).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    pub widths: Vec<usize>,
    pub hidden: Activation,
}

impl Arch {
    /// Parameter count: weights and biases of every layer.
    pub fn n_params(&self) -> usize {
        self.widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// Each layer's activation: the hidden one, and the identity for the outputs.
    pub fn activations(&self) -> Vec<Activation> {
        let layers = self.widths.len().saturating_sub(1);
        (0..layers)
            .map(|k| {
                if k + 1 == layers {
                    Activation::Identity
                } else {
                    self.hidden
                }
            })
            .collect()
    }

    /// Splits flat parameters (each layer's weight `out x in`, then its bias, in order: the
    /// order dfdx visits a sequential model's tensors) into a runtime view.
    pub fn view(&self, params: &[f32]) -> Result<RuntimeModel> {
        if params.len() != self.n_params() {
            return Err(Error::Data(format!(
                "{} parameters given, the architecture {:?} has {}",
                params.len(),
                self.widths,
                self.n_params()
            )));
        }
        let mut off = 0;
        let last = self.widths.len() - 2;
        let layers = self
            .widths
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                let (d_in, d_out) = (w[0], w[1]);
                let weight = params[off..off + d_in * d_out].to_vec();
                off += d_in * d_out;
                let bias = params[off..off + d_out].to_vec();
                off += d_out;
                let activation = if k == last {
                    Activation::Identity
                } else {
                    self.hidden
                };
                Layer {
                    d_in,
                    d_out,
                    weight,
                    bias,
                    activation,
                }
            })
            .collect();
        Ok(RuntimeModel { layers })
    }

    /// The inverse of [`Arch::view`].
    pub fn flatten(model: &RuntimeModel) -> Vec<f32> {
        model
            .layers
            .iter()
            .flat_map(|l| l.weight.iter().chain(&l.bias).copied())
            .collect()
    }
}

/// The built-in model presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Products,
    /// `products` with each hidden layer split into one block of units per task and every
    /// cross-task weight held at exactly zero during training: a network whose circuits are
    /// known, for scoring circuit recovery.
    ProductsPlanted,
    ProductsGelu,
    Products64,
    /// `products` at width 16 (4→16→16→16→2): with `products` and `products64`, the width
    /// series for emergence.
    Products16,
    ProductsShared,
    Poly,
    Digits,
    Mnist,
}

impl Preset {
    pub const ALL: [Preset; 9] = [
        Preset::Products,
        Preset::ProductsPlanted,
        Preset::ProductsGelu,
        Preset::Products64,
        Preset::Products16,
        Preset::ProductsShared,
        Preset::Poly,
        Preset::Digits,
        Preset::Mnist,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Products => "products",
            Preset::ProductsPlanted => "products-planted",
            Preset::ProductsGelu => "products-gelu",
            Preset::Products64 => "products64",
            Preset::Products16 => "products16",
            Preset::ProductsShared => "products-shared",
            Preset::Poly => "poly",
            Preset::Digits => "digits",
            Preset::Mnist => "mnist",
        }
    }

    pub fn from_name(s: &str) -> Result<Preset> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                Error::Invalid(format!(
                    "unknown preset `{s}`; known presets: {}",
                    names.join(", ")
                ))
            })
    }

    pub fn arch(self) -> Arch {
        let (widths, hidden): (&[usize], _) = match self {
            Preset::Products | Preset::ProductsPlanted => (&[4, 32, 32, 32, 2], Activation::Relu),
            Preset::ProductsGelu => (&[4, 32, 32, 32, 2], Activation::Gelu),
            Preset::Products64 => (&[4, 64, 64, 64, 2], Activation::Relu),
            Preset::Products16 => (&[4, 16, 16, 16, 2], Activation::Relu),
            Preset::ProductsShared => (&[3, 32, 32, 32, 2], Activation::Relu),
            Preset::Poly => (&[1, 32, 32, 1], Activation::Relu),
            Preset::Digits => (&[64, 64, 32, 10], Activation::Relu),
            Preset::Mnist => (&[784, 128, 64, 10], Activation::Relu),
        };
        Arch {
            widths: widths.to_vec(),
            hidden,
        }
    }

    /// For planted presets, the task block of every unit of every layer (`h_0` inputs …
    /// outputs): a weight is trainable only between units of the same block.
    pub fn planted_blocks(self) -> Option<Vec<Vec<usize>>> {
        match self {
            Preset::ProductsPlanted => {
                let w = self.arch().widths;
                let last = w.len() - 1;
                Some(
                    w.iter()
                        .enumerate()
                        .map(|(k, &d)| {
                            (0..d)
                                .map(|u| match k {
                                    0 => u / 2,          // inputs 2t, 2t+1 feed task t
                                    k if k == last => u, // output t is task t
                                    _ => u * 2 / d,      // first half task 0, second half task 1
                                })
                                .collect()
                        })
                        .collect(),
                )
            }
            _ => None,
        }
    }

    /// The flat parameter mask of a planted preset: `false` for cross-block weights.
    pub fn planted_mask(self) -> Option<Vec<bool>> {
        let blocks = self.planted_blocks()?;
        let mut mask = Vec::with_capacity(self.arch().n_params());
        for k in 0..blocks.len() - 1 {
            let (bi, bo) = (&blocks[k], &blocks[k + 1]);
            for &o in bo {
                mask.extend(bi.iter().map(|&i| i == o));
            }
            mask.extend(std::iter::repeat_n(true, bo.len()));
        }
        Some(mask)
    }

    pub fn loss(self) -> Loss {
        match self {
            Preset::Digits | Preset::Mnist => Loss::CrossEntropy,
            _ => Loss::Mse,
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs `f` compiled for the best vector instructions this CPU has (AVX-512, AVX2, or the
/// baseline), chosen at run time by pulp: plain elementwise loops inside then use the wide
/// registers. The arithmetic is the same on every path (no fused multiply-adds are introduced),
/// so results are bitwise the same whichever path runs.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    struct Op<F>(F);
    impl<R, F: FnOnce() -> R> pulp::WithSimd for Op<F> {
        type Output = R;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> R {
            (self.0)()
        }
    }
    pulp::Arch::new().dispatch(Op(f))
}

impl crate::params::Choice for Preset {
    const ALL: &'static [Self] = &Preset::ALL;
    fn key(self) -> &'static str {
        self.name()
    }
    fn help(self) -> &'static str {
        match self {
            Preset::Products => "(a,b,c,d) -> (a*b, c*d), 4→32→32→32→2 ReLU",
            Preset::ProductsPlanted => {
                "products with one block of units per task, cross-task weights held at zero"
            }
            Preset::ProductsGelu => "products with GELU (tanh) hidden layers",
            Preset::Products64 => "products at width 64 (the benchmark model)",
            Preset::Products16 => "products at width 16",
            Preset::ProductsShared => "(a,b,c) -> (a*b, b*c): tasks that share an input",
            Preset::Poly => "one member of the poly1d family, 1→32→32→1",
            Preset::Digits => "8x8 digit classification, 64→64→32→10 (built-in data)",
            Preset::Mnist => "MNIST classification, 784→128→64→10 (needs --data DIR)",
        }
    }
}
