//! The activation-region census: "unique gradients" and "gradient splintering".
//!
//! For every layer `h_k` (`k = 0` is the input) it counts, over one data set:
//! - `layer_patterns`: distinct on/off patterns of `h_k`'s own units (hidden layers only);
//! - `adjacent_patterns`: distinct adjacent Jacobians `∂h_{k+1}/∂h_k`, i.e. patterns of the next
//!   layer's units — splintering *layer by layer*;
//! - `downstream_patterns`: distinct patterns of every layer after `h_k`, and
//!   `gradients_per_output` / `gradients_combined`: distinct `∂y_o/∂h_k` per output and distinct
//!   whole `∂y/∂h_k` — splintering *from the outputs*;
//! - `appear_together`: the notes' claim that gradients from different outputs "always appear
//!   together", i.e. every output has as many distinct gradients as there are distinct
//!   combinations across outputs. Computed, never assumed.
//!
//! Examples with a pre-activation within `zero_tol` of zero in a layer that matters are where
//! float noise decides the pattern: they are counted separately (`ambiguous`) and left out of
//! every other count. For smooth activations gradients are "distinct" up to a cosine of
//! `cosine` (greedy leader clustering) and nothing is ambiguous.

use super::jacobian::OutputJacobians;
use crate::model::{RuntimeModel, Trace};
use std::collections::{HashMap, HashSet};

/// Census settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CensusConfig {
    pub zero_tol: f64,
    pub cosine: f64,
}

impl Default for CensusConfig {
    fn default() -> Self {
        CensusConfig {
            zero_tol: 1e-6,
            cosine: 0.999,
        }
    }
}

/// The census of one layer on one data set.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCensus {
    /// `k`: the layer `h_k` the gradients are taken at (0 = input).
    pub layer: usize,
    pub width: usize,
    /// Examples counted (not ambiguous).
    pub examples: usize,
    pub ambiguous: usize,
    pub layer_patterns: Option<usize>,
    pub adjacent_patterns: usize,
    pub downstream_patterns: usize,
    pub gradients_per_output: Vec<usize>,
    pub gradients_combined: usize,
    pub appear_together: bool,
    /// Share of the counted examples in the largest region (by distinct `∂y/∂h_k`).
    pub top_region_share: f64,
    /// Fewest regions that hold 90% of the counted examples.
    pub regions_for_90pct: usize,
    /// Share of the counted examples in each region (by distinct `∂y/∂h_k`), largest first.
    pub region_shares: Vec<f64>,
}

fn pattern_key(trace: &Trace, layers: std::ops::Range<usize>, i: usize) -> Vec<bool> {
    layers
        .flat_map(|k| {
            let d = trace.pre[k].len() / trace.n;
            trace.pre[k][i * d..(i + 1) * d]
                .iter()
                .map(|&z| z > 0.0)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn near_zero(trace: &Trace, layers: std::ops::Range<usize>, i: usize, tol: f64) -> bool {
    layers.into_iter().any(|k| {
        let d = trace.pre[k].len() / trace.n;
        trace.pre[k][i * d..(i + 1) * d]
            .iter()
            .any(|z| z.abs() < tol)
    })
}

/// Quantised values, so that gradients equal up to rounding share a key.
fn grad_key(v: &[f64], scale: f64) -> Vec<i64> {
    v.iter()
        .map(|x| (x / scale * 1e10).round() as i64)
        .collect()
}

/// Assigns each vector to a group: exact (quantised) for piecewise-linear networks, greedy
/// leader clustering by cosine otherwise. Returns the group of each vector.
pub(crate) fn group(vectors: &[&[f64]], smooth: bool, cosine: f64) -> Vec<usize> {
    if smooth {
        let mut leaders: Vec<(&[f64], f64)> = Vec::new();
        vectors
            .iter()
            .map(|v| {
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                let found = leaders.iter().position(|(l, ln)| {
                    let dot: f64 = l.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
                    if norm == 0.0 || *ln == 0.0 {
                        norm == *ln
                    } else {
                        dot / (norm * ln) >= cosine
                    }
                });
                found.unwrap_or_else(|| {
                    leaders.push((v, norm));
                    leaders.len() - 1
                })
            })
            .collect()
    } else {
        let scale = vectors
            .iter()
            .flat_map(|v| v.iter())
            .fold(0.0f64, |a, b| a.max(b.abs()))
            .max(1e-300);
        let mut ids: HashMap<Vec<i64>, usize> = HashMap::new();
        vectors
            .iter()
            .map(|v| {
                let next = ids.len();
                *ids.entry(grad_key(v, scale)).or_insert(next)
            })
            .collect()
    }
}

fn distinct(groups: &[usize]) -> usize {
    groups.iter().collect::<HashSet<_>>().len()
}

/// The census of every layer of `model` on the examples of `trace`.
pub fn census(
    model: &RuntimeModel,
    trace: &Trace,
    jac: &OutputJacobians,
    cfg: &CensusConfig,
) -> Vec<LayerCensus> {
    let n_layers = model.layers.len();
    let hidden = n_layers - 1; // pre-activations z_0..z_{L-2} have patterns
    let smooth = model
        .layers
        .iter()
        .any(|l| !l.activation.is_piecewise_linear());
    let d_out = model.d_out();
    (0..n_layers)
        .map(|k| {
            let own = k.saturating_sub(1)..hidden; // h_k's own units (k ≥ 1) and everything after
            let clean: Vec<usize> = (0..trace.n)
                .filter(|&i| smooth || !near_zero(trace, own.clone(), i, cfg.zero_tol))
                .collect();
            let count_patterns = |layers: std::ops::Range<usize>| {
                clean
                    .iter()
                    .map(|&i| pattern_key(trace, layers.clone(), i))
                    .collect::<HashSet<_>>()
                    .len()
            };
            let layer_patterns = (k >= 1).then(|| count_patterns(k - 1..k));
            let adjacent_patterns = if k < hidden {
                count_patterns(k..k + 1)
            } else {
                1
            };
            let downstream_patterns = if k < hidden {
                count_patterns(k..hidden)
            } else {
                1
            };
            let shared = &jac.per_layer[k];
            let dk = shared.cols;
            let rows: Vec<&[f64]> = clean.iter().map(|&i| shared.of(i)).collect();
            let gradients_per_output: Vec<usize> = (0..d_out)
                .map(|o| {
                    let v: Vec<&[f64]> = rows.iter().map(|b| &b[o * dk..(o + 1) * dk]).collect();
                    distinct(&group(&v, smooth, cfg.cosine))
                })
                .collect();
            let combined = group(&rows, smooth, cfg.cosine);
            let gradients_combined = distinct(&combined);
            let mut sizes: Vec<usize> = {
                let mut m: HashMap<usize, usize> = HashMap::new();
                combined.iter().for_each(|g| *m.entry(*g).or_default() += 1);
                m.into_values().collect()
            };
            sizes.sort_unstable_by(|a, b| b.cmp(a));
            let total = clean.len().max(1) as f64;
            let mut acc = 0usize;
            let regions_for_90pct = sizes
                .iter()
                .position(|&s| {
                    acc += s;
                    acc as f64 >= 0.9 * total
                })
                .map_or(0, |p| p + 1);
            LayerCensus {
                layer: k,
                width: dk,
                examples: clean.len(),
                ambiguous: trace.n - clean.len(),
                layer_patterns,
                adjacent_patterns,
                downstream_patterns,
                appear_together: gradients_per_output
                    .iter()
                    .all(|&g| g == gradients_combined),
                gradients_per_output,
                gradients_combined,
                top_region_share: sizes.first().map_or(0.0, |&s| s as f64 / total),
                regions_for_90pct,
                region_shares: sizes.iter().map(|&s| s as f64 / total).collect(),
            }
        })
        .collect()
}
