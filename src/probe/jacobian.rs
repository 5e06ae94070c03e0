//! Per-example Jacobians of a runtime model, exact: output-to-layer in f64, adjacent-layer in
//! f32 (exact for ReLU; see [`adjacent_jacobians`]).
//!
//! Notation: `h_0 = x`, `z_k = W_k h_k + b_k`, `h_{k+1} = act_k(z_k)`, `y = h_L`. The
//! *output-to-layer* Jacobian `∂y/∂h_k` (`d_out x d_k`, `k = 0..L-1`, so `∂y/∂x` included) obeys
//! `∂y/∂h_k = (∂y/∂h_{k+1} ⊙ act_k'(z_k)) W_k`; stacking every example's rows turns each step
//! into one matrix product. The *adjacent-layer* Jacobian `∂h_{k+1}/∂h_k = diag(act_k'(z_k)) W_k`.
//!
//! For ReLU networks a Jacobian depends only on the activation pattern, so with
//! [`Reuse::Patterns`] each distinct pattern is computed once and examples point to it. Smooth
//! activations use the same formulas with their analytic derivatives (no reuse possible).
//! This is the one Jacobian routine: everything else in circuitscope calls it.

use crate::model::{RuntimeModel, Trace};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::collections::HashMap;

/// Whether to compute each distinct activation pattern once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Group examples by pattern (ReLU networks; ignored for smooth activations).
    Patterns,
    /// Compute every example's Jacobian separately.
    Off,
}

/// Blocks shared by examples: `index[i]` is example `i`'s block in `blocks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shared<T = f64> {
    /// Rows and columns of each block.
    pub rows: usize,
    pub cols: usize,
    /// `index.len()` examples, each naming a block.
    pub index: Vec<usize>,
    /// `count x rows x cols`, row-major per block.
    pub blocks: Vec<T>,
}

impl<T: Copy> Shared<T> {
    pub fn count(&self) -> usize {
        self.blocks.len() / (self.rows * self.cols).max(1)
    }

    /// Example `i`'s block.
    pub fn of(&self, i: usize) -> &[T] {
        let s = self.rows * self.cols;
        &self.blocks[self.index[i] * s..(self.index[i] + 1) * s]
    }

    /// Every example's block, expanded (`n x rows x cols`).
    pub fn expand(&self) -> Vec<T> {
        (0..self.index.len())
            .flat_map(|i| self.of(i).iter().copied())
            .collect()
    }
}

/// `act_k'(z_k)` for every example and layer: `n x d_{k+1}` each.
pub fn derivatives(model: &RuntimeModel, trace: &Trace) -> Vec<Vec<f64>> {
    model
        .layers
        .iter()
        .zip(&trace.pre)
        .map(|(l, z)| z.iter().map(|&v| l.activation.derivative_f64(v)).collect())
        .collect()
}

/// Groups examples by their activation pattern over `layers` (sign of `z > 0`): returns each
/// example's group and one representative example per group, in order of first appearance.
pub fn group_by_pattern(trace: &Trace, layers: std::ops::Range<usize>) -> (Vec<usize>, Vec<usize>) {
    let mut ids: HashMap<Vec<u64>, usize> = HashMap::new();
    let mut index = Vec::with_capacity(trace.n);
    let mut reps = Vec::new();
    for i in 0..trace.n {
        let mut key = Vec::new();
        for k in layers.clone() {
            let d = trace.pre[k].len() / trace.n;
            let row = &trace.pre[k][i * d..(i + 1) * d];
            for chunk in row.chunks(64) {
                key.push(
                    chunk
                        .iter()
                        .enumerate()
                        .fold(0u64, |acc, (b, &z)| acc | (((z > 0.0) as u64) << b)),
                );
            }
        }
        let next = reps.len();
        let id = *ids.entry(key).or_insert_with(|| {
            reps.push(i);
            next
        });
        index.push(id);
    }
    (index, reps)
}

/// `∂y/∂h_k` for every layer `k = 0..L-1`, sharing one block per distinct downstream pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputJacobians {
    /// `per_layer[k]`: blocks of `d_out x d_k`.
    pub per_layer: Vec<Shared>,
}

/// Computes every example's output-to-layer Jacobians for all layers.
pub fn output_jacobians(model: &RuntimeModel, trace: &Trace, reuse: Reuse) -> OutputJacobians {
    let n_layers = model.layers.len();
    let d_out = model.d_out();
    let derivs = derivatives(model, trace);
    let (index, reps): (Vec<usize>, Vec<usize>) =
        if reuse == Reuse::Patterns && model.is_piecewise_linear() {
            group_by_pattern(trace, 0..n_layers.saturating_sub(1))
        } else {
            ((0..trace.n).collect(), (0..trace.n).collect())
        };
    let m = reps.len();
    // G = ∂y/∂h_{k+1} for every representative, stacked: (m·d_out) x d_{k+1}. Start at y itself.
    let mut g = vec![0.0; m * d_out * d_out];
    for r in 0..m {
        for o in 0..d_out {
            g[(r * d_out + o) * d_out + o] = 1.0;
        }
    }
    let mut per_layer: Vec<Option<Shared>> = vec![None; n_layers];
    for k in (0..n_layers).rev() {
        let l = &model.layers[k];
        let (dk, dk1) = (l.d_in, l.d_out);
        // M = G ⊙ act'(z_k), row block of each representative scaled by its derivatives (G is
        // the previous layer's blocks, read in place).
        if let Some(prev) = &per_layer.get(k + 1).and_then(|s| s.as_ref()) {
            g.par_chunks_mut(d_out * dk1)
                .zip(prev.blocks.par_chunks(d_out * dk1))
                .zip(reps.par_iter())
                .for_each(|((out, src), &ex)| {
                    let d = &derivs[k][ex * dk1..(ex + 1) * dk1];
                    for (orow, srow) in out.chunks_mut(dk1).zip(src.chunks(dk1)) {
                        orow.iter_mut()
                            .zip(srow.iter().zip(d))
                            .for_each(|(v, (a, s))| *v = a * s);
                    }
                });
        } else {
            for (r, &ex) in reps.iter().enumerate() {
                let d = &derivs[k][ex * dk1..(ex + 1) * dk1];
                for o in 0..d_out {
                    let row = &mut g[(r * d_out + o) * dk1..(r * d_out + o + 1) * dk1];
                    row.iter_mut().zip(d).for_each(|(v, s)| *v *= s);
                }
            }
        }
        let w: Vec<f64> = l.weight.iter().map(|&v| v as f64).collect();
        let mut next = vec![0.0; m * d_out * dk];
        matmul(
            MatMut::from_row_major_slice_mut(&mut next, m * d_out, dk),
            Accum::Replace,
            MatRef::from_row_major_slice(&g, m * d_out, dk1),
            MatRef::from_row_major_slice(&w, dk1, dk),
            1.0,
            Par::rayon(0),
        );
        per_layer[k] = Some(Shared {
            rows: d_out,
            cols: dk,
            index: index.clone(),
            blocks: next,
        });
        // The next round's scaled G has this layer's shape.
        g = vec![0.0; m * d_out * dk];
    }
    OutputJacobians {
        per_layer: per_layer
            .into_iter()
            .map(|s| s.expect("every layer computed"))
            .collect(),
    }
}

/// `∂h_{k+1}/∂h_k` (`d_{k+1} x d_k`) for every example, one block per distinct pattern of layer
/// `k`'s units when reuse is on. The blocks are `act_k'(z_k)` times the f32 weights, stored in
/// f32: exact for ReLU layers (every entry is a weight or 0), rounded once for smooth
/// activations. Half the memory of f64 blocks, and these are the probes' largest arrays (one
/// `d_{k+1} x d_k` block per pattern).
pub fn adjacent_jacobians(
    model: &RuntimeModel,
    trace: &Trace,
    k: usize,
    reuse: Reuse,
) -> Shared<f32> {
    let l = &model.layers[k];
    let (dk, dk1) = (l.d_in, l.d_out);
    let derivs: Vec<f64> = trace.pre[k]
        .iter()
        .map(|&z| l.activation.derivative_f64(z))
        .collect();
    let (index, reps) = if reuse == Reuse::Patterns && model.is_piecewise_linear() {
        group_by_pattern(trace, k..k + 1)
    } else {
        ((0..trace.n).collect(), (0..trace.n).collect())
    };
    let mut blocks = vec![0.0f32; reps.len() * dk1 * dk];
    blocks
        .par_chunks_mut((dk1 * dk).max(1))
        .zip(reps.par_iter())
        .for_each(|(block, &ex)| {
            for (j, row) in block.chunks_mut(dk.max(1)).enumerate() {
                let s = derivs[ex * dk1 + j];
                row.iter_mut()
                    .zip(&l.weight[j * dk..(j + 1) * dk])
                    .for_each(|(v, &w)| *v = (s * w as f64) as f32);
            }
        });
    Shared {
        rows: dk1,
        cols: dk,
        index,
        blocks,
    }
}
