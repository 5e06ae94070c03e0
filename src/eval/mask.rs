//! Learned masks (in the manner of Edge Pruning, Bhaskar et al. 2024): a mask `m = sigmoid(θ)`
//! per item of a circuit ([`Items`]: a graph edge, or a hidden node), shared by the model edges
//! the item stands for, each edge's source replaced in proportion to `1 − m` by its ablation
//! baseline exactly as [`super::ablation::forward_ablated`] replaces a removed
//! edge's (`z_j = b_j + Σ_i w_ji (a'_i + m_ji (a_i − a'_i))`), trained by full-batch Adam to
//! keep the full model's outputs (their mean squared difference, as a share of the fully
//! ablated model's) plus `λ` times the mean mask, by the project's Adam ([`AdamState`]).
//! Deterministic: every mask starts at the same value and every step sees every example. It
//! must never change the model's weights.

use super::ablation::Baselines;
use super::discover::{metric, reference, DiscoverOptions};
use super::items::Items;
use crate::model::adam::{AdamConfig, AdamState};
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::Result;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// The masks' starting logit (m = 0.95: every edge kept).
const START: f64 = 3.0;
/// Adam's step size on the logits.
const LR: f32 = 0.1;

/// The trained masks for each penalty of the ladder (`[rung][item]`): one mask per item of
/// `items`, shared by every model edge the item stands for (edges in no item keep mask 1), the
/// metric read on `outputs`.
pub fn masks(
    model: &RuntimeModel,
    items: &Items,
    x: &[f64],
    base: &Baselines,
    opts: &Valid<DiscoverOptions>,
    outputs: &[usize],
) -> Result<Vec<Vec<f64>>> {
    let (full, none) = reference(model, x, base, outputs)?;
    let none = none.max(f64::MIN_POSITIVE);
    opts.lambdas
        .iter()
        .map(|&lambda| {
            let n = model.check_input(x)?;
            let objective = Objective {
                model,
                x,
                masked: Masked::new(model, base, n),
                full: &full,
                outputs,
                none,
                lambda,
                items,
                n,
            };
            Ok(objective.train(opts.mask_steps))
        })
        .collect()
}

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

/// `out (+)= lhs · rhs` in f64 by faer's matrix product, as the fused engine multiplies.
fn product(out: MatMut<'_, f64>, accum: Accum, lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>) {
    matmul(out, accum, lhs, rhs, 1.0f64, Par::Seq);
}

/// The forward pass of `model` on `n` rows with every model edge `i → j` carrying
/// `b_i + m_ji (a_i − b_i)`: its source's activation (`m` 1, kept), its ablation baseline (`m`
/// 0, as [`super::ablation::forward_ablated`] removes an edge) or a blend (a mask). With `W`
/// a layer's weights, `A` its input, `B` its baselines and `M` its edges' masks, the layer's
/// pre-activations are `bias + B·Wᵀ + (A − B)·(W ⊙ M)ᵀ`; the first two terms do not depend
/// on the masks and are computed once, the last is one matrix product (faer, as the fused
/// engine's).
pub(crate) struct Masked<'a> {
    model: &'a RuntimeModel,
    base: &'a Baselines,
    n: usize,
    /// Each layer's weights in f64 (`d_out x d_in`, row-major).
    w: Vec<Vec<f64>>,
    /// Each layer's `bias + B·Wᵀ` (`n x d_out`).
    fixed: Vec<Vec<f64>>,
}

impl<'a> Masked<'a> {
    pub(crate) fn new(model: &'a RuntimeModel, base: &'a Baselines, n: usize) -> Masked<'a> {
        let mut w = Vec::with_capacity(model.layers.len());
        let mut fixed = Vec::with_capacity(model.layers.len());
        for (k, layer) in model.layers.iter().enumerate() {
            let (dk, dk1) = (layer.d_in, layer.d_out);
            let wk: Vec<f64> = layer.weight.iter().map(|&v| v as f64).collect();
            let mut c: Vec<f64> = (0..n)
                .flat_map(|_| layer.bias.iter().map(|&v| v as f64))
                .collect();
            product(
                MatMut::from_row_major_slice_mut(&mut c, n, dk1),
                Accum::Add,
                MatRef::from_row_major_slice(base.layer(k), n, dk),
                MatRef::from_row_major_slice(&wk, dk1, dk).transpose(),
            );
            w.push(wk);
            fixed.push(c);
        }
        Masked {
            model,
            base,
            n,
            w,
            fixed,
        }
    }

    /// `A − B` of layer `k` for its input `a`.
    fn shift(&self, k: usize, a: &[f64]) -> Vec<f64> {
        a.iter()
            .zip(self.base.layer(k))
            .map(|(a, b)| a - b)
            .collect()
    }

    /// Layer `k`'s pre-activations (`n x d_out`) on its input `a` (`n x d_in`) with its edges'
    /// masks `m` (`d_out x d_in`).
    pub(crate) fn pre(&self, k: usize, a: &[f64], m: &[f64]) -> Vec<f64> {
        let layer = &self.model.layers[k];
        let (dk, dk1) = (layer.d_in, layer.d_out);
        let wm: Vec<f64> = self.w[k].iter().zip(m).map(|(w, m)| w * m).collect();
        let d = self.shift(k, a);
        let mut z = self.fixed[k].clone();
        product(
            MatMut::from_row_major_slice_mut(&mut z, self.n, dk1),
            Accum::Add,
            MatRef::from_row_major_slice(&d, self.n, dk),
            MatRef::from_row_major_slice(&wm, dk1, dk).transpose(),
        );
        z
    }

    /// Every layer's input `a` (`a[0]` = `x`, the last the outputs) and pre-activation `z`
    /// under the edge masks `m` (`[layer][j * d_in + i]`).
    pub(crate) fn forward(&self, x: &[f64], m: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut a = vec![x.to_vec()];
        let mut z = Vec::with_capacity(self.model.layers.len());
        for (k, layer) in self.model.layers.iter().enumerate() {
            let zk = self.pre(k, &a[k], &m[k]);
            a.push(zk.iter().map(|&v| layer.activation.apply_f64(v)).collect());
            z.push(zk);
        }
        (a, z)
    }
}

/// What one penalty's objective needs besides the logits.
struct Objective<'a> {
    model: &'a RuntimeModel,
    x: &'a [f64],
    masked: Masked<'a>,
    full: &'a [f64],
    outputs: &'a [usize],
    none: f64,
    lambda: f64,
    items: &'a Items,
    n: usize,
}

impl Objective<'_> {
    /// Each model edge's mask at the logits `theta` (1 for edges in no item).
    fn edge_masks(&self, theta: &[f32]) -> Vec<Vec<f64>> {
        self.items
            .of
            .iter()
            .map(|l| {
                l.iter()
                    .map(|t| t.map_or(1.0, |t| sigmoid(theta[t] as f64)))
                    .collect()
            })
            .collect()
    }

    /// Trains the masks for `steps` Adam steps from the start; returns one per item.
    fn train(&self, steps: usize) -> Vec<f64> {
        let count = self.items.len();
        let mut theta = vec![START as f32; count];
        let mut adam = AdamState::new(count);
        let cfg = AdamConfig::default();
        for _ in 0..steps {
            let (_, grad) = self.value_and_grad(&theta);
            let grad: Vec<f32> = grad.iter().map(|&g| g as f32).collect();
            adam.update(&cfg, LR, &mut theta, &grad);
        }
        theta.iter().map(|&t| sigmoid(t as f64)).collect()
    }

    /// `metric(y, full) / none + λ · mean(m)` at the logits `theta`, and its gradient.
    fn value_and_grad(&self, theta: &[f32]) -> (f64, Vec<f64>) {
        let (model, n, items) = (self.model, self.n, self.items);
        let count = items.len();
        let m = self.edge_masks(theta);
        let (a, z) = self.masked.forward(self.x, &m);
        let y = a.last().expect("output");
        let d_out = model.d_out();
        let mean_m = theta.iter().map(|&t| sigmoid(t as f64)).sum::<f64>() / count as f64;
        let value = metric(y, self.full, d_out, self.outputs) / self.none + self.lambda * mean_m;
        // dL/dh of the output (the metric's columns only), then back through each layer, into
        // the logits' gradient.
        let mut grad = vec![0.0; count];
        let scale = 2.0 / ((n * self.outputs.len()).max(1) as f64 * self.none);
        let mut dh = vec![0.0; y.len()];
        for r in 0..n {
            for &o in self.outputs {
                let k = r * d_out + o;
                dh[k] = scale * (y[k] - self.full[k]);
            }
        }
        for (k, layer) in model.layers.iter().enumerate().rev() {
            let (dk, dk1) = (layer.d_in, layer.d_out);
            let delta: Vec<f64> = dh
                .iter()
                .zip(&z[k])
                .map(|(g, &zz)| g * layer.activation.derivative_f64(zz))
                .collect();
            // The masks' gradient `(δᵀ·(A − B)) ⊙ W` and the input's `δ·(W ⊙ M)`.
            let w = &self.masked.w[k];
            let shift = self.masked.shift(k, &a[k]);
            let mut g = vec![0.0; dk * dk1];
            product(
                MatMut::from_row_major_slice_mut(&mut g, dk1, dk),
                Accum::Replace,
                MatRef::from_row_major_slice(&delta, n, dk1).transpose(),
                MatRef::from_row_major_slice(&shift, n, dk),
            );
            g.iter_mut().zip(w).for_each(|(g, w)| *g *= w);
            let wm: Vec<f64> = w.iter().zip(&m[k]).map(|(w, m)| w * m).collect();
            let mut below = vec![0.0; n * dk];
            product(
                MatMut::from_row_major_slice_mut(&mut below, n, dk),
                Accum::Replace,
                MatRef::from_row_major_slice(&delta, n, dk1),
                MatRef::from_row_major_slice(&wm, dk1, dk),
            );
            // Through the sigmoid, into the gradient of the logit each edge reads.
            for (e, g) in g.iter().enumerate() {
                if let Some(t) = items.of[k][e] {
                    grad[t] += g * m[k][e] * (1.0 - m[k][e]);
                }
            }
            dh = below;
        }
        // The penalty λ · mean(m), through each logit's sigmoid.
        let per = self.lambda / count as f64;
        for (g, &t) in grad.iter_mut().zip(theta) {
            let m = sigmoid(t as f64);
            *g += per * m * (1.0 - m);
        }
        (value, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Layer};

    /// The objective's gradient against central differences, for per-edge and per-neuron
    /// masks and a metric on one output of two, with a penalty, at logits away from the start.
    #[test]
    fn the_masks_gradient_is_the_objectives() {
        let layer = |d_in: usize, d_out: usize, s: f32, activation| Layer {
            d_in,
            d_out,
            weight: (0..d_in * d_out)
                .map(|k| (k as f32 * 0.37 + s).sin())
                .collect(),
            bias: (0..d_out).map(|k| 0.1 * (k as f32 - 1.0)).collect(),
            activation,
        };
        let model = RuntimeModel {
            layers: vec![
                layer(3, 4, 0.3, Activation::Tanh),
                layer(4, 4, 1.1, Activation::Tanh),
                layer(4, 2, 2.0, Activation::Identity),
            ],
        };
        let x: Vec<f64> = (0..8 * 3).map(|k| ((k as f64) * 0.61).cos()).collect();
        let base = Baselines::new(&model, &x, super::super::ablation::Ablation::Mean, 0).unwrap();
        let full = model.forward(&x).unwrap();
        for (items, outputs) in [
            (Items::per_edge(&model), vec![0, 1]),
            (Items::per_neuron(&model), vec![0, 1]),
            (Items::per_edge(&model), vec![1]),
        ] {
            let o = Objective {
                model: &model,
                x: &x,
                masked: Masked::new(&model, &base, 8),
                full: &full,
                outputs: &outputs,
                none: 0.7,
                lambda: 0.3,
                items: &items,
                n: 8,
            };
            let theta: Vec<f32> = (0..items.len())
                .map(|k| (k as f32 * 0.9).sin() * 2.0)
                .collect();
            let (_, grad) = o.value_and_grad(&theta);
            let h = 1e-2f32;
            for t in 0..items.len() {
                let (mut up, mut down) = (theta.clone(), theta.clone());
                up[t] += h;
                down[t] -= h;
                let fd = (o.value_and_grad(&up).0 - o.value_and_grad(&down).0)
                    / (up[t] as f64 - down[t] as f64);
                assert!(
                    (fd - grad[t]).abs() <= 1e-4 * (1.0 + fd.abs()),
                    "{:?} items, outputs {outputs:?}, logit {t}: analytic {} vs central {fd}",
                    items.level,
                    grad[t]
                );
            }
        }
    }
}
