//! Edge ablation in the real forward pass.
//!
//! Edge `i → j` from `h_l` to `h_{l+1}` ablated means: in `j`'s pre-activation only, `a_i` is
//! replaced by its baseline value `a'_i`, so `z_j = b_j + Σ_i w_ji · (kept ? a_i : a'_i)`. The
//! activations `a` are those of the ablated run itself (ablation propagates); the baselines come
//! from the clean model: zero, the clean mean over the data, or the clean activations of another
//! example (resample). Nothing else about the model changes. This module only runs models.

use crate::model::RuntimeModel;
use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// How an ablated edge's source activation is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ablation {
    Zero,
    Mean,
    Resample,
}

/// Which edges are kept: `kept[l][j * d_l + i]` for the edge `i → j` of layer `l`.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeMask {
    pub kept: Vec<Vec<bool>>,
}

impl EdgeMask {
    /// Every edge kept (the clean model) or none.
    pub fn all(model: &RuntimeModel, keep: bool) -> EdgeMask {
        EdgeMask {
            kept: model
                .layers
                .iter()
                .map(|l| vec![keep; l.d_in * l.d_out])
                .collect(),
        }
    }
}

/// The clean activations `h_0..h_{L-1}` of every example, and the baselines they give.
#[derive(Debug, Clone)]
pub struct Baselines {
    pub kind: Ablation,
    pub n: usize,
    /// Per layer `l`, `n x d_l`: the value that replaces `a_i` for each example.
    per_layer: Vec<Vec<f64>>,
}

impl Baselines {
    /// Baselines for the examples `x` (`n x d_in`); `seed` fixes the resampling permutation.
    pub fn new(model: &RuntimeModel, x: &[f64], kind: Ablation, seed: u64) -> Result<Baselines> {
        let trace = model.trace(x)?;
        let n = trace.n;
        let mut clean = vec![x.to_vec()];
        clean.extend(trace.post.into_iter().take(model.layers.len() - 1));
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let per_layer = clean
            .iter()
            .map(|h| {
                let d = h.len() / n;
                match kind {
                    Ablation::Zero => vec![0.0; n * d],
                    Ablation::Mean => {
                        let m = crate::numeric::linalg::column_means(h, n, d);
                        (0..n).flat_map(|_| m.iter().copied()).collect()
                    }
                    Ablation::Resample => perm
                        .iter()
                        .flat_map(|&p| h[p * d..(p + 1) * d].iter().copied())
                        .collect(),
                }
            })
            .collect();
        Ok(Baselines { kind, n, per_layer })
    }

    /// Layer `l`'s baselines, `n x d_l` (layer 0: the inputs').
    pub fn layer(&self, l: usize) -> &[f64] {
        &self.per_layer[l]
    }
}

/// The outputs (`n x d_out`) of `model` on `x` with the edges not in `mask` ablated.
pub fn forward_ablated(
    model: &RuntimeModel,
    x: &[f64],
    mask: &EdgeMask,
    base: &Baselines,
) -> Result<Vec<f64>> {
    let n = model.check_input(x)?;
    if n != base.n {
        return Err(Error::Data(format!(
            "ablation: {n} examples but baselines for {}",
            base.n
        )));
    }
    if mask.kept.len() != model.layers.len()
        || mask
            .kept
            .iter()
            .zip(&model.layers)
            .any(|(k, l)| k.len() != l.d_in * l.d_out)
    {
        return Err(Error::Data(
            "ablation: the edge mask does not match the model's layers".into(),
        ));
    }
    let mut h = x.to_vec();
    for (l, layer) in model.layers.iter().enumerate() {
        let (d_in, d_out) = (layer.d_in, layer.d_out);
        let kept = &mask.kept[l];
        let all = kept.iter().all(|&k| k);
        let mut next = vec![0.0; n * d_out];
        for r in 0..n {
            let a = &h[r * d_in..(r + 1) * d_in];
            let b = &base.per_layer[l][r * d_in..(r + 1) * d_in];
            for j in 0..d_out {
                let w = &layer.weight[j * d_in..(j + 1) * d_in];
                let mut z = layer.bias[j] as f64;
                if all {
                    z += w
                        .iter()
                        .zip(a)
                        .map(|(&wi, &ai)| wi as f64 * ai)
                        .sum::<f64>();
                } else {
                    let k = &kept[j * d_in..(j + 1) * d_in];
                    for i in 0..d_in {
                        z += w[i] as f64 * if k[i] { a[i] } else { b[i] };
                    }
                }
                next[r * d_out + j] = layer.activation.apply_f64(z);
            }
        }
        h = next;
    }
    Ok(h)
}

crate::choices!(Ablation {
    Zero => "zero": "an ablated edge carries zero",
    Mean => "mean": "an ablated edge carries its source's mean activation",
    Resample => "resample": "an ablated edge carries its source's activation on another example",
});
