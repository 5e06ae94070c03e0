//! Learned edge masks (in the manner of Edge Pruning, Bhaskar et al. 2024): a mask
//! `m = sigmoid(θ)` per edge of the model, the edge's source replaced in proportion to `1 − m`
//! by its ablation baseline exactly as [`super::ablation::forward_ablated`] replaces a removed
//! edge's (`z_j = b_j + Σ_i w_ji (a'_i + m_ji (a_i − a'_i))`), trained by full-batch Adam to
//! keep the full model's outputs (their mean squared difference, as a share of the fully
//! ablated model's) plus `λ` times the mean mask. Deterministic: every mask starts at the same
//! value and every step sees every example. It must never change the model's weights.

use super::ablation::{forward_ablated, Baselines, EdgeMask};
use super::discover::{metric, DiscoverOptions};
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::Result;

/// The masks' starting logit (m = 0.95: every edge kept).
const START: f64 = 3.0;
/// Adam's step size on the logits.
const LR: f64 = 0.1;

/// The trained masks for each penalty of the ladder (`[rung][layer][j * d_in + i]`).
pub fn masks(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    opts: &Valid<DiscoverOptions>,
) -> Result<Vec<Vec<Vec<f64>>>> {
    let full = forward_ablated(model, x, &EdgeMask::all(model, true), base)?;
    let none = metric(
        &forward_ablated(model, x, &EdgeMask::all(model, false), base)?,
        &full,
    )
    .max(f64::MIN_POSITIVE);
    opts.lambdas
        .iter()
        .map(|&lambda| train(model, x, base, &full, none, lambda, opts.mask_steps))
        .collect()
}

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

/// The masked forward pass: every layer's input `a` and pre-activation `z` (`n` rows each).
fn forward(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    m: &[Vec<f64>],
    n: usize,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut a = vec![x.to_vec()];
    let mut z = Vec::with_capacity(model.layers.len());
    for (k, layer) in model.layers.iter().enumerate() {
        let (dk, dk1) = (layer.d_in, layer.d_out);
        let b = base.layer(k);
        let h = &a[k];
        let mut zk = vec![0.0; n * dk1];
        for r in 0..n {
            for j in 0..dk1 {
                let mut s = layer.bias[j] as f64;
                for i in 0..dk {
                    let e = j * dk + i;
                    let (ai, bi) = (h[r * dk + i], b[r * dk + i]);
                    s += layer.weight[e] as f64 * (bi + m[k][e] * (ai - bi));
                }
                zk[r * dk1 + j] = s;
            }
        }
        let next: Vec<f64> = zk.iter().map(|&v| layer.activation.apply_f64(v)).collect();
        z.push(zk);
        a.push(next);
    }
    (a, z)
}

/// Trains the masks for one penalty; returns them (`[layer][j * d_in + i]`).
fn train(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    full: &[f64],
    none: f64,
    lambda: f64,
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let n = model.check_input(x)?;
    let edges: usize = model.layers.iter().map(|l| l.d_in * l.d_out).sum();
    let mut theta: Vec<Vec<f64>> = model
        .layers
        .iter()
        .map(|l| vec![START; l.d_in * l.d_out])
        .collect();
    let mut mom: Vec<Vec<f64>> = theta.iter().map(|t| vec![0.0; t.len()]).collect();
    let mut vel = mom.clone();
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    for step in 1..=steps {
        let m: Vec<Vec<f64>> = theta
            .iter()
            .map(|t| t.iter().map(|&v| sigmoid(v)).collect())
            .collect();
        let (a, z) = forward(model, x, base, &m, n);
        let y = a.last().expect("output");
        // dL/dh of the output, then back through each layer.
        let scale = 2.0 / (y.len() as f64 * none);
        let mut dh: Vec<f64> = y.iter().zip(full).map(|(y, f)| scale * (y - f)).collect();
        for (k, layer) in model.layers.iter().enumerate().rev() {
            let (dk, dk1) = (layer.d_in, layer.d_out);
            let delta: Vec<f64> = dh
                .iter()
                .zip(&z[k])
                .map(|(g, &zz)| g * layer.activation.derivative_f64(zz))
                .collect();
            let b = base.layer(k);
            let mut grad = vec![lambda / edges as f64; dk * dk1];
            let mut below = vec![0.0; n * dk];
            for r in 0..n {
                for j in 0..dk1 {
                    let d = delta[r * dk1 + j];
                    if d == 0.0 {
                        continue;
                    }
                    for i in 0..dk {
                        let e = j * dk + i;
                        let w = layer.weight[e] as f64;
                        let (ai, bi) = (a[k][r * dk + i], b[r * dk + i]);
                        grad[e] += d * w * (ai - bi);
                        below[r * dk + i] += d * w * m[k][e];
                    }
                }
            }
            for e in 0..dk * dk1 {
                let g = grad[e] * m[k][e] * (1.0 - m[k][e]);
                mom[k][e] = b1 * mom[k][e] + (1.0 - b1) * g;
                vel[k][e] = b2 * vel[k][e] + (1.0 - b2) * g * g;
                let mh = mom[k][e] / (1.0 - b1.powi(step as i32));
                let vh = vel[k][e] / (1.0 - b2.powi(step as i32));
                theta[k][e] -= LR * mh / (vh.sqrt() + eps);
            }
            dh = below;
        }
    }
    Ok(theta
        .iter()
        .map(|t| t.iter().map(|&v| sigmoid(v)).collect())
        .collect())
}
