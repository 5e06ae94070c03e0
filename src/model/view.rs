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
}

/// A feed-forward network as a list of dense layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeModel {
    pub layers: Vec<Layer>,
}

/// Every layer's pre- and post-activations for a batch (`n` rows each).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub n: usize,
    /// `pre[l]` is `n x d_out(l)`: the pre-activations of layer `l`.
    pub pre: Vec<Vec<f32>>,
    /// `post[l]` is `n x d_out(l)`: the activations of layer `l` (the last is the output).
    pub post: Vec<Vec<f32>>,
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

    /// Checks that `x` holds whole rows of this model's input width, all finite.
    pub fn check_input(&self, x: &[f32]) -> Result<usize> {
        let d = self.d_in();
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

    /// Runs the batch `x` (`n x d_in`, row-major) and keeps every layer's activations.
    pub fn trace(&self, x: &[f32]) -> Result<Trace> {
        let n = self.check_input(x)?;
        let mut pre = Vec::with_capacity(self.layers.len());
        let mut post: Vec<Vec<f32>> = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let input: &[f32] = post.last().map_or(x, |v| v.as_slice());
            let z = affine(l, input, n);
            post.push(z.iter().map(|&v| l.activation.apply(v)).collect());
            pre.push(z);
        }
        Ok(Trace { n, pre, post })
    }

    /// The outputs for the batch `x` (`n x d_out`).
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>> {
        Ok(self.trace(x)?.post.pop().unwrap_or_default())
    }

    /// The outputs in f64 arithmetic (weights widened), for reference checks.
    pub fn forward_f64(&self, x: &[f64]) -> Vec<f64> {
        let n = x.len() / self.d_in().max(1);
        let mut h = x.to_vec();
        for l in &self.layers {
            let mut z = vec![0.0f64; n * l.d_out];
            for r in 0..n {
                for j in 0..l.d_out {
                    let row = &l.weight[j * l.d_in..(j + 1) * l.d_in];
                    let s: f64 = row
                        .iter()
                        .zip(&h[r * l.d_in..(r + 1) * l.d_in])
                        .map(|(&w, &v)| w as f64 * v)
                        .sum();
                    z[r * l.d_out + j] = l.activation.apply_f64(s + l.bias[j] as f64);
                }
            }
            h = z;
        }
        h
    }
}

/// `input · Wᵀ + b` for `n` rows. Accumulates in input order, as a reader would write it.
fn affine(l: &Layer, input: &[f32], n: usize) -> Vec<f32> {
    let mut z = Vec::with_capacity(n * l.d_out);
    for r in 0..n {
        let x = &input[r * l.d_in..(r + 1) * l.d_in];
        for j in 0..l.d_out {
            let w = &l.weight[j * l.d_in..(j + 1) * l.d_in];
            z.push(w.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + l.bias[j]);
        }
    }
    z
}
