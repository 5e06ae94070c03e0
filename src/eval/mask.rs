//! Learned edge masks (in the manner of Edge Pruning, Bhaskar et al. 2024): a mask
//! `m = sigmoid(θ)` per edge of the model, the edge's source replaced in proportion to `1 − m`
//! by its ablation baseline exactly as [`super::ablation::forward_ablated`] replaces a removed
//! edge's (`z_j = b_j + Σ_i w_ji (a'_i + m_ji (a_i − a'_i))`), trained by full-batch Adam to
//! keep the full model's outputs (their mean squared difference, as a share of the fully
//! ablated model's) plus `λ` times the mean mask, by the project's Adam ([`AdamState`]).
//! Deterministic: every mask starts at the same value and every step sees every example. It
//! must never change the model's weights.

use super::ablation::{forward_ablated, Baselines, EdgeMask};
use super::discover::{metric, DiscoverOptions};
use crate::model::adam::{AdamConfig, AdamState};
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::Result;

/// The masks' starting logit (m = 0.95: every edge kept).
const START: f64 = 3.0;
/// Adam's step size on the logits.
const LR: f32 = 0.1;

/// The trained masks for each penalty of the ladder (`[rung][layer][j * d_in + i]`). With
/// `per_neuron`, one mask per hidden neuron, shared by every edge it feeds (the inputs' edges
/// keep mask 1): a neuron kept or ablated whole; the result is still one mask per edge.
pub fn masks(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    opts: &Valid<DiscoverOptions>,
    per_neuron: bool,
) -> Result<Vec<Vec<Vec<f64>>>> {
    let full = forward_ablated(model, x, &EdgeMask::all(model, true), base)?;
    let none = metric(
        &forward_ablated(model, x, &EdgeMask::all(model, false), base)?,
        &full,
    )
    .max(f64::MIN_POSITIVE);
    opts.lambdas
        .iter()
        .map(|&lambda| {
            train(
                model,
                x,
                base,
                &full,
                none,
                (lambda, opts.mask_steps),
                per_neuron,
            )
        })
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

/// Which logit each edge's mask reads: per edge, or (`per_neuron`) its source neuron's, with
/// the inputs' edges reading none (mask 1).
struct Logits {
    /// Per layer, per edge: the index into the logits, or None (mask 1).
    of: Vec<Vec<Option<usize>>>,
    count: usize,
}

impl Logits {
    fn new(model: &RuntimeModel, per_neuron: bool) -> Logits {
        let mut count = 0;
        let of = model
            .layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let (dk, dk1) = (l.d_in, l.d_out);
                if !per_neuron {
                    let v = (count..count + dk * dk1).map(Some).collect();
                    count += dk * dk1;
                    v
                } else if k == 0 {
                    vec![None; dk * dk1]
                } else {
                    let first = count;
                    count += dk;
                    (0..dk * dk1).map(|e| Some(first + e % dk)).collect()
                }
            })
            .collect();
        Logits { of, count }
    }

    fn masks(&self, theta: &[f32]) -> Vec<Vec<f64>> {
        self.of
            .iter()
            .map(|l| {
                l.iter()
                    .map(|t| t.map_or(1.0, |t| sigmoid(theta[t] as f64)))
                    .collect()
            })
            .collect()
    }
}

/// Trains the masks for one `(penalty, steps)`; returns them (`[layer][j * d_in + i]`).
fn train(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    full: &[f64],
    none: f64,
    (lambda, steps): (f64, usize),
    per_neuron: bool,
) -> Result<Vec<Vec<f64>>> {
    let n = model.check_input(x)?;
    let logits = Logits::new(model, per_neuron);
    // The logits, stepped by the project's Adam.
    let mut theta = vec![START as f32; logits.count];
    let mut adam = AdamState::new(logits.count);
    let cfg = AdamConfig::default();
    let mut grad = vec![0f64; logits.count];
    let mut grad32 = vec![0f32; logits.count];
    for _ in 0..steps {
        let m = logits.masks(&theta);
        let (a, z) = forward(model, x, base, &m, n);
        let y = a.last().expect("output");
        // dL/dh of the output, then back through each layer; the penalty's share first.
        grad.iter_mut()
            .for_each(|g| *g = lambda / logits.count as f64);
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
            let mut g = vec![0.0; dk * dk1];
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
                        g[e] += d * w * (ai - bi);
                        below[r * dk + i] += d * w * m[k][e];
                    }
                }
            }
            // Through the sigmoid, into the gradient of the logit each edge reads.
            for (e, g) in g.iter().enumerate() {
                if let Some(t) = logits.of[k][e] {
                    grad[t] += g * m[k][e] * (1.0 - m[k][e]);
                }
            }
            dh = below;
        }
        grad32
            .iter_mut()
            .zip(&grad)
            .for_each(|(a, &b)| *a = b as f32);
        adam.update(&cfg, LR, &mut theta, &grad32);
    }
    Ok(logits.masks(&theta))
}
