//! A runtime model view rebuilt at the scalar level: every weight, bias and activation a node
//! of a [`Tape`], so its gradients can be checked against dfdx's and finite differences.

use super::{Tape, Var};
use crate::model::{Activation, RuntimeModel};

/// The scalar graph of a model on a batch, with a mean-squared-error loss.
pub struct ScalarMlp<'t> {
    /// Every parameter, in the runtime view's flat order (each layer's weight, then bias).
    pub params: Vec<Var<'t>>,
    /// Outputs, `n x d_out`.
    pub outputs: Vec<Var<'t>>,
    /// `mean((y - target)²)` over all outputs of the batch.
    pub loss: Var<'t>,
}

/// Records `model` on `tape` for the batch `x` (`n x d_in`) and the MSE against `y`.
pub fn scalar_mlp<'t>(tape: &'t Tape, model: &RuntimeModel, x: &[f64], y: &[f64]) -> ScalarMlp<'t> {
    let flat: Vec<f64> = model
        .layers
        .iter()
        .flat_map(|l| l.weight.iter().chain(&l.bias).map(|&v| v as f64))
        .collect();
    scalar_mlp_with(tape, model, &flat, x, y)
}

/// Like [`scalar_mlp`] with the parameters given in f64 (flat, in the view's order), so a
/// finite-difference check can perturb them without rounding to f32.
pub fn scalar_mlp_with<'t>(
    tape: &'t Tape,
    model: &RuntimeModel,
    flat: &[f64],
    x: &[f64],
    y: &[f64],
) -> ScalarMlp<'t> {
    let mut params = Vec::new();
    let mut layers: Vec<(Vec<Var<'t>>, Vec<Var<'t>>)> = Vec::new();
    let mut off = 0;
    for (k, l) in model.layers.iter().enumerate() {
        let w: Vec<Var<'t>> = (0..l.d_in * l.d_out)
            .map(|i| {
                tape.input(
                    &format!("W{k}[{},{}]", i / l.d_in, i % l.d_in),
                    flat[off + i],
                )
            })
            .collect();
        off += l.d_in * l.d_out;
        let b: Vec<Var<'t>> = (0..l.d_out)
            .map(|j| tape.input(&format!("b{k}[{j}]"), flat[off + j]))
            .collect();
        off += l.d_out;
        params.extend(w.iter().copied().chain(b.iter().copied()));
        layers.push((w, b));
    }
    let d_in = model.d_in();
    let n = x.len() / d_in;
    let mut outputs = Vec::new();
    for r in 0..n {
        let mut h: Vec<Var<'t>> = x[r * d_in..(r + 1) * d_in]
            .iter()
            .map(|&v| tape.constant(v))
            .collect();
        for (l, (w, b)) in model.layers.iter().zip(&layers) {
            h = (0..l.d_out)
                .map(|j| {
                    let z = (0..l.d_in).fold(b[j], |acc, i| acc + w[j * l.d_in + i] * h[i]);
                    match l.activation {
                        Activation::Identity => z,
                        Activation::Relu => z.relu(),
                        Activation::LeakyRelu { slope } => z.relu() - (-z).relu() * slope,
                        Activation::Tanh => z.tanh(),
                        Activation::Sigmoid => (z * 0.5).tanh() * 0.5 + 0.5,
                        Activation::GeluErf => {
                            z * 0.5 * ((z * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0)
                        }
                        Activation::Gelu => {
                            // 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))
                            let inner =
                                (z + z.powi(3) * 0.044715) * (2.0 / std::f64::consts::PI).sqrt();
                            z * 0.5 * (inner.tanh() + 1.0)
                        }
                        Activation::Silu => z * ((z * 0.5).tanh() * 0.5 + 0.5),
                        Activation::Softplus => z.softplus(),
                    }
                })
                .collect();
        }
        outputs.extend(h);
    }
    let count = outputs.len() as f64;
    let sq = outputs.iter().zip(y).map(|(&o, &t)| (o - t).powi(2));
    let total = sq.fold(tape.constant(0.0), |acc, v| acc + v);
    ScalarMlp {
        params,
        outputs,
        loss: total / count,
    }
}
