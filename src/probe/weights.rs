//! Weight SVD per layer and the block structure of its singular vectors — the notes' link to
//! "branch specialization": a layer that keeps tasks apart has singular vectors that each live
//! in one task's subspace.
//!
//! For layer `k` (`W_k`: `h_k → z_k`) every right singular vector `v_i` (a direction in `h_k`)
//! is projected onto each task's gradient subspace at `h_k` (see [`super::subspace`]); its
//! *purity* is the largest task's share of that projected mass. This module only measures.

use super::subspace::TaskSpace;
use crate::model::RuntimeModel;
use crate::numeric::linalg::svd;
use crate::Result;

/// One singular triple of one layer with its task masses.
#[derive(Debug, Clone, PartialEq)]
pub struct Singular {
    pub layer: usize,
    pub index: usize,
    pub value: f64,
    /// `‖P_t v_i‖²` for each task `t`.
    pub task_mass: Vec<f64>,
    /// Largest task mass over the total (1/T for no structure, 1 for one task only).
    pub purity: f64,
}

/// The SVD of every layer's weight matrix; `spaces[k][t]` is task `t`'s gradient subspace at
/// `h_k` (empty: no task masses).
pub fn weight_svd(model: &RuntimeModel, spaces: &[Vec<TaskSpace>]) -> Result<Vec<Singular>> {
    let mut out = Vec::new();
    for (k, l) in model.layers.iter().enumerate() {
        let w: Vec<f64> = l.weight.iter().map(|&v| v as f64).collect();
        let (_, s, v) = svd(&w, l.d_out, l.d_in)?;
        let r = s.len();
        for (i, &value) in s.iter().enumerate() {
            let vi: Vec<f64> = (0..l.d_in).map(|j| v[j * r + i]).collect();
            let task_mass: Vec<f64> = spaces
                .get(k)
                .map(|tasks| {
                    tasks
                        .iter()
                        .map(|t| {
                            t.basis
                                .chunks(l.d_in)
                                .map(|b| b.iter().zip(&vi).map(|(a, b)| a * b).sum::<f64>().powi(2))
                                .sum()
                        })
                        .collect()
                })
                .unwrap_or_default();
            let total: f64 = task_mass.iter().sum();
            let purity = if total > 0.0 {
                task_mass.iter().cloned().fold(0.0, f64::max) / total
            } else {
                0.0
            };
            out.push(Singular {
                layer: k,
                index: i,
                value,
                task_mass,
                purity,
            });
        }
    }
    Ok(out)
}
