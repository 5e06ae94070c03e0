//! Per-task gradient subspaces and how much tasks interfere, in two ways that separate the
//! network from the method (the research notes' open question):
//!
//! A task's *gradient subspace* at layer `h_k` is spanned by the top principal components of
//! its gradients there, uncentred (the gradients' mean direction is part of what they say), as
//! many as explain `share` (default 90%) of their energy, at most `max_k`.
//!
//! For tasks A and B at layer `h_k`, with `g_A(x)` the gradient of A's outputs at `h_k` for
//! example `x` and `P_B` the projection onto B's gradient subspace:
//! - `interference_pca` = mean of cos²(θ_i) over the min(k_A, k_B) principal angles between the
//!   two subspaces: 0 for orthogonal subspaces, 1 when one lies inside the other. What PCA sees.
//! - `share_a_in_b` = Σ_x ‖P_B g_A(x)‖² / Σ_x ‖g_A(x)‖²: the share of A's exact gradient energy
//!   inside B's PCA subspace.
//! - `interference_exact` = Σ_x (g_A(x)·g_B(x))² / Σ_x ‖g_A(x)‖²‖g_B(x)‖²: the energy-weighted
//!   cos² between the two tasks' gradients *at the same example*, with no PCA at all. What the
//!   network does.
//!
//! Tasks with several outputs contribute one gradient per output; `interference_exact` pairs
//! every output of A with every output of B. [`TaskSubspaces`] streams: it is fed each chunk's
//! Jacobians and keeps per layer and task a [`Factor`] of the gradients (`R` with `RᵀR = GᵀG`:
//! the uncentred PCA, and `Σ_x ‖P_B g_A(x)‖² = ‖R_A P_Bᵀ‖²`) and the exact sums, never every
//! example's gradient. This module only measures.

use super::jacobian::OutputJacobians;
use crate::data::TaskStructure;
use crate::numeric::linalg::{principal_cosines, Factor, Pca};
use crate::Result;

/// Angles and interference between two tasks at one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPair {
    pub layer: usize,
    pub task_a: String,
    pub task_b: String,
    /// Dimensions of the two tasks' subspaces.
    pub k_a: usize,
    pub k_b: usize,
    /// Cosines of the principal angles, largest first.
    pub cosines: Vec<f64>,
    pub interference_pca: f64,
    pub share_a_in_b: f64,
    pub share_b_in_a: f64,
    pub interference_exact: f64,
}

/// Each task's gradients at layer `layer`: `rows x d_k`.
fn task_gradients(jac: &OutputJacobians, layer: usize, outputs: &[usize]) -> Vec<f64> {
    let s = &jac.per_layer[layer];
    (0..s.index.len())
        .flat_map(|i| {
            outputs
                .iter()
                .flat_map(move |&o| s.of(i)[o * s.cols..(o + 1) * s.cols].iter().copied())
        })
        .collect()
}

/// `(Σ ‖P g‖², Σ ‖g‖²)` over the rows a factor has seen, `P` the projection onto the `k`
/// orthonormal rows of `basis`.
fn energy_in(f: &Factor, basis: &[f64], k: usize, d: usize) -> (f64, f64) {
    let r = f.r();
    let (mut inside, mut total) = (0.0, 0.0);
    for i in 0..r.nrows() {
        let row: Vec<f64> = (0..d).map(|j| r[(i, j)]).collect();
        total += row.iter().map(|v| v * v).sum::<f64>();
        for c in 0..k {
            let p: f64 = basis[c * d..(c + 1) * d]
                .iter()
                .zip(&row)
                .map(|(a, b)| a * b)
                .sum();
            inside += p * p;
        }
    }
    (inside, total)
}

/// How task gradient subspaces are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubspaceConfig {
    /// Share of a task's gradient energy its subspace must explain.
    pub share: f64,
    /// Largest subspace dimension.
    pub max_k: usize,
}

impl Default for SubspaceConfig {
    fn default() -> Self {
        SubspaceConfig {
            share: 0.9,
            max_k: 8,
        }
    }
}

/// One task's gradient subspace at one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpace {
    pub k: usize,
    /// `k x d` orthonormal rows.
    pub basis: Vec<f64>,
    /// Explained-energy ratios of every component of the task's gradients (uncentred PCA).
    pub ratios: Vec<f64>,
}

/// Every task's gradients at every layer, streamed: feed each chunk's Jacobians to
/// [`TaskSubspaces::push`], then read [`TaskSubspaces::spaces`] and [`TaskSubspaces::pairs`].
pub struct TaskSubspaces {
    tasks: TaskStructure,
    /// `[layer][task]`: an uncentred factor of the task's gradients at the layer.
    factors: Vec<Vec<Factor>>,
    /// `[layer][pair]` (pairs `a < b` in order): `Σ (g_A·g_B)²` and `Σ ‖g_A‖²‖g_B‖²`.
    exact: Vec<Vec<(f64, f64)>>,
}

impl TaskSubspaces {
    /// For Jacobians shaped like `jac` (any chunk's: only its layer widths are read).
    pub fn new(jac: &OutputJacobians, tasks: &TaskStructure) -> TaskSubspaces {
        let t = tasks.tasks.len();
        TaskSubspaces {
            tasks: tasks.clone(),
            factors: jac
                .per_layer
                .iter()
                .map(|s| (0..t).map(|_| Factor::uncentred(s.cols)).collect())
                .collect(),
            exact: jac
                .per_layer
                .iter()
                .map(|_| vec![(0.0, 0.0); t * t.saturating_sub(1) / 2])
                .collect(),
        }
    }

    /// Folds in one chunk's Jacobians.
    pub fn push(&mut self, jac: &OutputJacobians) {
        let tasks = &self.tasks.tasks;
        for (layer, (factors, exact)) in self.factors.iter_mut().zip(&mut self.exact).enumerate() {
            let d = jac.per_layer[layer].cols;
            let n = jac.per_layer[layer].index.len();
            let grads: Vec<Vec<f64>> = tasks
                .iter()
                .map(|t| task_gradients(jac, layer, &t.outputs))
                .collect();
            for (f, g) in factors.iter_mut().zip(&grads) {
                f.push(g);
            }
            let mut pair = 0;
            for a in 0..tasks.len() {
                for b in a + 1..tasks.len() {
                    let (oa, ob) = (tasks[a].outputs.len(), tasks[b].outputs.len());
                    let (num, den) = &mut exact[pair];
                    for i in 0..n {
                        for p in 0..oa {
                            let ga = &grads[a][(i * oa + p) * d..(i * oa + p + 1) * d];
                            for q in 0..ob {
                                let gb = &grads[b][(i * ob + q) * d..(i * ob + q + 1) * d];
                                let dot: f64 = ga.iter().zip(gb).map(|(x, y)| x * y).sum();
                                *num += dot * dot;
                                *den += ga.iter().map(|x| x * x).sum::<f64>()
                                    * gb.iter().map(|x| x * x).sum::<f64>();
                            }
                        }
                    }
                    pair += 1;
                }
            }
        }
    }

    /// Every task's gradient subspace at every layer: `[layer][task]`.
    pub fn spaces(&self, cfg: &SubspaceConfig) -> Result<Vec<Vec<TaskSpace>>> {
        self.factors
            .iter()
            .map(|layer| {
                layer
                    .iter()
                    .map(|f| {
                        let pca = Pca::from_factor(f)?;
                        let k = pca.components_for(cfg.share).min(cfg.max_k).min(pca.d);
                        Ok(TaskSpace {
                            k,
                            basis: pca.top(k).to_vec(),
                            ratios: pca.ratios,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Angles and interference for every pair of tasks at every layer.
    pub fn pairs(&self, spaces: &[Vec<TaskSpace>]) -> Result<Vec<TaskPair>> {
        let tasks = &self.tasks.tasks;
        let mut out = Vec::new();
        for (layer, sp) in spaces.iter().enumerate() {
            let f = &self.factors[layer];
            let mut pair = 0;
            for a in 0..tasks.len() {
                for b in a + 1..tasks.len() {
                    let d = f[a].r().ncols();
                    let (ka, kb) = (sp[a].k, sp[b].k);
                    let cosines = principal_cosines(&sp[a].basis, ka, &sp[b].basis, kb, d)?;
                    let interference_pca =
                        cosines.iter().map(|c| c * c).sum::<f64>() / ka.min(kb).max(1) as f64;
                    let (ia, ta) = energy_in(&f[a], &sp[b].basis, kb, d);
                    let (ib, tb) = energy_in(&f[b], &sp[a].basis, ka, d);
                    let (num, den) = self.exact[layer][pair];
                    pair += 1;
                    out.push(TaskPair {
                        layer,
                        task_a: tasks[a].name.clone(),
                        task_b: tasks[b].name.clone(),
                        k_a: ka,
                        k_b: kb,
                        cosines,
                        interference_pca,
                        share_a_in_b: if ta > 0.0 { ia / ta } else { 0.0 },
                        share_b_in_a: if tb > 0.0 { ib / tb } else { 0.0 },
                        interference_exact: if den > 0.0 { num / den } else { 0.0 },
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Every task's gradient subspace at every layer, from one batch's Jacobians: `[layer][task]`.
pub fn task_spaces(
    jac: &OutputJacobians,
    tasks: &TaskStructure,
    cfg: &SubspaceConfig,
) -> Result<Vec<Vec<TaskSpace>>> {
    let mut s = TaskSubspaces::new(jac, tasks);
    s.push(jac);
    s.spaces(cfg)
}

/// Angles and interference for every pair of tasks at every layer, from one batch's Jacobians.
pub fn task_pairs(
    jac: &OutputJacobians,
    tasks: &TaskStructure,
    spaces: &[Vec<TaskSpace>],
) -> Result<Vec<TaskPair>> {
    let mut s = TaskSubspaces::new(jac, tasks);
    s.push(jac);
    s.pairs(spaces)
}
