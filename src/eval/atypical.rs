//! Atypical subgraphs (the research notes' idea about adversarial inputs): how unusual is the
//! part of the network an example uses, compared with the training data?
//!
//! An edge `i → j` is *active* for an example when its source carries signal (`h_{l,i} ≠ 0`) and
//! its target is on (`z_j > 0`; output units always are): the example's activated subgraph. Over
//! the training examples each edge is active with frequency `p_e` (Laplace-smoothed). An
//! example's *atypicality* is the negative log-likelihood of its activated subgraph under
//! independent edges, per edge: `−(1/E) Σ_e [a_e ln p_e + (1 − a_e) ln(1 − p_e)]`.
//! [`fgsm`] makes fast-gradient-sign adversarial inputs to test whether atypicality flags them.
//! This module only scores; it never changes a model.

use crate::model::RuntimeModel;
use crate::numeric::score::roc_auc;
use crate::probe::jacobian::{output_jacobians, Reuse};
use crate::Result;

/// Whether each edge of the layers from `first` on is active, per example: `n` rows of flags
/// (layer by layer, row `j` of each layer's `d_out x d_in` block). `first = 1` leaves out the
/// input layer, whose activity only mirrors which inputs are non-zero.
pub fn activity(model: &RuntimeModel, x: &[f64], first: usize) -> Result<Vec<Vec<bool>>> {
    let trace = model.trace(x)?;
    let n = trace.n;
    let last = model.layers.len() - 1;
    Ok((0..n)
        .map(|r| {
            let mut flags = Vec::new();
            for (l, layer) in model.layers.iter().enumerate().skip(first) {
                let h: &[f64] = if l == 0 {
                    &x[r * layer.d_in..(r + 1) * layer.d_in]
                } else {
                    &trace.post[l - 1][r * layer.d_in..(r + 1) * layer.d_in]
                };
                let z = &trace.pre[l][r * layer.d_out..(r + 1) * layer.d_out];
                for &zj in z {
                    let on = l == last || zj > 0.0;
                    flags.extend(h.iter().map(|&hi| on && hi != 0.0));
                }
            }
            flags
        })
        .collect())
}

/// Edge-activity frequencies over a reference set, Laplace-smoothed: `(count + 1) / (n + 2)`.
pub fn frequencies(reference: &[Vec<bool>]) -> Vec<f64> {
    let n = reference.len() as f64;
    let e = reference.first().map_or(0, Vec::len);
    let mut count = vec![0.0; e];
    for flags in reference {
        flags
            .iter()
            .zip(count.iter_mut())
            .filter(|(a, _)| **a)
            .for_each(|(_, c)| *c += 1.0);
    }
    count.into_iter().map(|c| (c + 1.0) / (n + 2.0)).collect()
}

/// Atypicality of each example's activated subgraph under the reference frequencies.
pub fn atypicality(flags: &[Vec<bool>], freq: &[f64]) -> Vec<f64> {
    flags
        .iter()
        .map(|f| {
            -f.iter()
                .zip(freq)
                .map(|(&a, &p)| if a { p.ln() } else { (1.0 - p).ln() })
                .sum::<f64>()
                / freq.len().max(1) as f64
        })
        .collect()
}

/// Fast gradient sign method: `x + ε · sign(∇_x CE(softmax(f(x)), label))`, clipped to
/// `[lo, hi]`.
pub fn fgsm(
    model: &RuntimeModel,
    x: &[f64],
    labels: &[usize],
    epsilon: f64,
    lo: f64,
    hi: f64,
) -> Result<Vec<f64>> {
    let trace = model.trace(x)?;
    let jac = output_jacobians(model, &trace, Reuse::Patterns);
    let (d_in, d_out) = (model.d_in(), model.d_out());
    let logits = trace.post.last().expect("a layer");
    let mut out = x.to_vec();
    for (r, &label) in labels.iter().enumerate() {
        let row = &logits[r * d_out..(r + 1) * d_out];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
        let j = jac.per_layer[0].of(r);
        for i in 0..d_in {
            let g: f64 = (0..d_out)
                .map(|o| {
                    (((row[o] - m).exp() / z) - if o == label { 1.0 } else { 0.0 })
                        * j[o * d_in + i]
                })
                .sum();
            let v = &mut out[r * d_in + i];
            *v = (*v + epsilon * g.signum() * (g != 0.0) as u8 as f64).clamp(lo, hi);
        }
    }
    Ok(out)
}

/// What [`atypical`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct AtypicalReport {
    pub epsilon: f64,
    pub examples: usize,
    pub clean_accuracy: f64,
    pub adversarial_accuracy: f64,
    /// ROC AUC of atypicality at telling FGSM inputs (positives) from clean ones, over all edges.
    pub auroc: f64,
    /// The same over the hidden-layer edges only (the input layer's activity just mirrors which
    /// pixels are non-zero, and FGSM lights up the blank background).
    pub auroc_hidden: f64,
    pub mean_clean: f64,
    pub mean_adversarial: f64,
    /// Per example, clean test inputs first and their FGSM copies after: atypicality over all
    /// edges and over the hidden-layer edges.
    pub scores: Vec<f64>,
    pub scores_hidden: Vec<f64>,
}

fn accuracy(model: &RuntimeModel, x: &[f64], labels: &[usize]) -> Result<f64> {
    let out = model.forward(x)?;
    let d = model.d_out();
    let correct = labels
        .iter()
        .enumerate()
        .filter(|(r, &l)| {
            (0..d).max_by(|&a, &b| out[r * d + a].total_cmp(&out[r * d + b])) == Some(l)
        })
        .count();
    Ok(correct as f64 / labels.len().max(1) as f64)
}

/// For a classifier: edge frequencies from `train`, then the atypicality of `test`'s inputs,
/// clean and FGSM-perturbed (inputs clipped to [0, 1]), and the AUROC between them.
pub fn atypical(
    model: &RuntimeModel,
    train: &crate::data::Dataset,
    test: &crate::data::Dataset,
    epsilon: f64,
) -> Result<AtypicalReport> {
    check_epsilon(epsilon)?;
    let (Some(labels), Some(_)) = (test.labels.as_ref(), train.labels.as_ref()) else {
        crate::invalid!(
            "atypical: `{}` is not a classification data set; FGSM needs class labels",
            test.name
        );
    };
    let train_x: Vec<f64> = train.x.iter().map(|&v| v as f64).collect();
    let clean: Vec<f64> = test.x.iter().map(|&v| v as f64).collect();
    let adv = fgsm(model, &clean, labels, epsilon, 0.0, 1.0)?;
    let truth: Vec<bool> = (0..labels.len())
        .map(|_| false)
        .chain((0..labels.len()).map(|_| true))
        .collect();
    let score = |first: usize| -> Result<(Vec<f64>, Vec<f64>)> {
        let freq = frequencies(&activity(model, &train_x, first)?);
        Ok((
            atypicality(&activity(model, &clean, first)?, &freq),
            atypicality(&activity(model, &adv, first)?, &freq),
        ))
    };
    let (sc, sa) = score(0)?;
    let (hc, ha) = score(1)?;
    let scores: Vec<f64> = sc.iter().chain(&sa).copied().collect();
    let hidden: Vec<f64> = hc.iter().chain(&ha).copied().collect();
    Ok(AtypicalReport {
        epsilon,
        examples: labels.len(),
        clean_accuracy: accuracy(model, &clean, labels)?,
        adversarial_accuracy: accuracy(model, &adv, labels)?,
        auroc: roc_auc(&scores, &truth),
        auroc_hidden: roc_auc(&hidden, &truth),
        mean_clean: sc.iter().sum::<f64>() / sc.len().max(1) as f64,
        mean_adversarial: sa.iter().sum::<f64>() / sa.len().max(1) as f64,
        scores,
        scores_hidden: hidden,
    })
}

/// The FGSM step must be a positive finite number.
pub fn check_epsilon(epsilon: f64) -> Result<()> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        crate::param!(epsilon, "must be a positive finite number, got {epsilon}");
    }
    Ok(())
}
