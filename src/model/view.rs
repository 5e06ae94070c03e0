//! The runtime model view: layers as plain weight matrices, biases and activations.
//!
//! This is the only form of a model that analysis code sees, so analysis never depends on a
//! compile-time shape. It must never hold training state or call dfdx.

use super::Activation;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// One dense layer: `post = act(W · pre_in + b)` with `W` stored row-major, `d_out x d_in`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub activation: Activation,
}

impl Layer {
    /// Weight from input `i` to output `j`.
    pub fn w(&self, j: usize, i: usize) -> f32 {
        self.weight[j * self.d_in + i]
    }

    /// `z = W h + b` for one example, in f64. Each `z_j` is summed over `i` in order (the same
    /// bits as a plain loop), eight rows at a time so that eight independent sums are in flight
    /// instead of one chain of dependent additions.
    pub fn pre_activation(&self, h: &[f64]) -> Vec<f64> {
        const ROWS: usize = 8;
        let d = self.d_in;
        let h = &h[..d];
        let mut z = Vec::with_capacity(self.d_out);
        let mut rows = self.weight.chunks_exact(ROWS * d.max(1));
        for block in rows.by_ref() {
            let r: [&[f32]; ROWS] = std::array::from_fn(|k| &block[k * d..(k + 1) * d]);
            let mut acc = [-0.0f64; ROWS];
            for i in 0..d {
                let v = h[i];
                for k in 0..ROWS {
                    acc[k] += r[k][i] as f64 * v;
                }
            }
            z.extend(acc);
        }
        for row in rows.remainder().chunks(d.max(1)).take(self.d_out - z.len()) {
            z.push(row.iter().zip(h).map(|(&w, &v)| w as f64 * v).sum::<f64>());
        }
        z.resize(self.d_out, 0.0);
        z.iter_mut()
            .zip(&self.bias)
            .for_each(|(v, &b)| *v += b as f64);
        z
    }
}

/// Rows [`RuntimeModel::forward`] runs at once.
pub const FORWARD_CHUNK: usize = 4096;

/// A feed-forward network as a list of dense layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeModel {
    pub layers: Vec<Layer>,
}

/// Every layer's pre- and post-activations for a batch (`n` rows each), in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub n: usize,
    /// `pre[k]` is `n x d_out(k)` row-major: the pre-activations `z_k = W_k h_k + b_k`.
    pub pre: Vec<Vec<f64>>,
    /// `post[k]` is `n x d_out(k)`: `h_{k+1} = act_k(z_k)` (the last is the output).
    pub post: Vec<Vec<f64>>,
}

impl RuntimeModel {
    pub fn d_in(&self) -> usize {
        self.layers.first().map_or(0, |l| l.d_in)
    }

    pub fn d_out(&self) -> usize {
        self.layers.last().map_or(0, |l| l.d_out)
    }

    /// Layer widths from the input to the output, e.g. `[4, 32, 32, 32, 2]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.d_in()];
        w.extend(self.layers.iter().map(|l| l.d_out));
        w
    }

    /// Whether every activation is piecewise linear (ReLU, identity): then Jacobians depend only
    /// on activation patterns and Integrated Gradients can be computed exactly.
    pub fn is_piecewise_linear(&self) -> bool {
        self.layers
            .iter()
            .all(|l| l.activation.is_piecewise_linear())
    }

    /// Checks that consecutive layers fit and the buffers have the declared sizes.
    pub fn check(&self) -> Result<()> {
        for (k, l) in self.layers.iter().enumerate() {
            if l.weight.len() != l.d_in * l.d_out || l.bias.len() != l.d_out {
                return Err(Error::Data(format!(
                    "layer {k}: weight has {} values and bias {}, expected {}x{} and {}",
                    l.weight.len(),
                    l.bias.len(),
                    l.d_out,
                    l.d_in,
                    l.d_out
                )));
            }
            if k > 0 && self.layers[k - 1].d_out != l.d_in {
                return Err(Error::Data(format!(
                    "layer {k} takes {} inputs but layer {} gives {}",
                    l.d_in,
                    k - 1,
                    self.layers[k - 1].d_out
                )));
            }
        }
        Ok(())
    }

    /// Checks that `x` holds at least one whole row of this model's input width, all finite,
    /// and returns the number of rows.
    pub fn check_input(&self, x: &[f64]) -> Result<usize> {
        let d = self.d_in();
        if x.is_empty() {
            return Err(Error::Data(
                "the data set is empty: no rows to run the model on".into(),
            ));
        }
        if d == 0 || !x.len().is_multiple_of(d) {
            return Err(Error::Data(format!(
                "{} input values are not whole rows of the model's {d} inputs",
                x.len()
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "input row {} column {} is {} (inputs must be finite)",
                i / d,
                i % d,
                x[i]
            )));
        }
        Ok(x.len() / d)
    }

    /// Runs the batch `x` (`n x d_in`, row-major) in f64 and keeps every layer's activations.
    pub fn trace(&self, x: &[f64]) -> Result<Trace> {
        let n = self.check_input(x)?;
        let mut pre = Vec::with_capacity(self.layers.len());
        let mut post: Vec<Vec<f64>> = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let input: &[f64] = post.last().map_or(x, |v| v.as_slice());
            let z = affine(l, input, n);
            post.push(z.iter().map(|&v| l.activation.apply_f64(v)).collect());
            pre.push(z);
        }
        Ok(Trace { n, pre, post })
    }

    /// Each layer's mean activation `h_0..h_L` over `n` examples, streamed over chunks of
    /// [`FORWARD_CHUNK`] rows that `rows` gives in f64 (row-major), summed in row order.
    pub fn mean_activations(
        &self,
        n: usize,
        rows: &dyn Fn(std::ops::Range<usize>) -> Vec<f64>,
    ) -> Result<Vec<Vec<f64>>> {
        let mut sums: Vec<Vec<f64>> = self.widths().iter().map(|&d| vec![0.0; d]).collect();
        for start in (0..n).step_by(FORWARD_CHUNK) {
            let x = rows(start..(start + FORWARD_CHUNK).min(n));
            let trace = self.trace(&x)?;
            let layers = std::iter::once(&x).chain(&trace.post);
            for (sum, h) in sums.iter_mut().zip(layers) {
                for row in h.chunks(sum.len().max(1)) {
                    sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                }
            }
        }
        for s in &mut sums {
            s.iter_mut().for_each(|v| *v /= n.max(1) as f64);
        }
        Ok(sums)
    }

    /// The outputs for the batch `x` (`n x d_out`), computed in f64, [`FORWARD_CHUNK`] rows
    /// at a time (no layer of every row is held at once).
    pub fn forward(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.check_input(x)?;
        let d_in = self.d_in().max(1);
        let mut out = Vec::with_capacity(x.len() / d_in * self.d_out());
        for rows in x.chunks(FORWARD_CHUNK * d_in) {
            out.extend(self.trace(rows)?.post.pop().unwrap_or_default());
        }
        Ok(out)
    }

    /// The same function with the units of each hidden layer renumbered: `perms[k]` lists, for
    /// each new unit of hidden layer `h_{k+1}`, the old unit it is (`perms.len()` = hidden
    /// layers). Each layer's rows and the next layer's columns move together, so the outputs
    /// are unchanged (up to the order of float sums).
    pub fn permute_hidden(&self, perms: &[Vec<usize>]) -> Result<RuntimeModel> {
        let hidden = self.layers.len().saturating_sub(1);
        if perms.len() != hidden {
            return Err(Error::Data(format!(
                "{} permutations for {hidden} hidden layers",
                perms.len()
            )));
        }
        let mut out = self.clone();
        for (k, perm) in perms.iter().enumerate() {
            let d = self.layers[k].d_out;
            let mut seen = vec![false; d];
            if perm.len() != d
                || perm
                    .iter()
                    .any(|&u| u >= d || std::mem::replace(&mut seen[u], true))
            {
                return Err(Error::Data(format!(
                    "hidden layer {}: not a permutation of its {d} units",
                    k + 1
                )));
            }
            // This layer as permuted so far (its columns moved with the layer before).
            let (this, next) = (out.layers[k].clone(), out.layers[k + 1].clone());
            for (i, &u) in perm.iter().enumerate() {
                out.layers[k].weight[i * this.d_in..(i + 1) * this.d_in]
                    .copy_from_slice(&this.weight[u * this.d_in..(u + 1) * this.d_in]);
                out.layers[k].bias[i] = this.bias[u];
                for j in 0..next.d_out {
                    out.layers[k + 1].weight[j * next.d_in + i] = next.weight[j * next.d_in + u];
                }
            }
        }
        Ok(out)
    }

    /// Like [`RuntimeModel::trace`] for f32 inputs (a [`crate::data::Dataset`]'s rows).
    pub fn trace_f32(&self, x: &[f32]) -> Result<Trace> {
        self.trace(&widen(x))
    }
}

/// f32 values as f64.
pub fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// `input · Wᵀ + b` for `n` rows, one matrix product.
fn affine(l: &Layer, input: &[f64], n: usize) -> Vec<f64> {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, MatRef, Par};
    let w = widen(&l.weight);
    let mut z: Vec<f64> = (0..n)
        .flat_map(|_| l.bias.iter().map(|&b| b as f64))
        .collect();
    matmul(
        MatMut::from_row_major_slice_mut(&mut z, n, l.d_out),
        Accum::Add,
        MatRef::from_row_major_slice(input, n, l.d_in),
        MatRef::from_row_major_slice(&w, l.d_out, l.d_in).transpose(),
        1.0,
        Par::Seq,
    );
    z
}
