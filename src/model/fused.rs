//! The fused training engine: forward, loss and backward of an MLP on flat parameters in dfdx's
//! layout (each layer's weight `out x in`, then its bias), with faer's small-matrix products and
//! the elementwise work (bias, activation, its derivative, the loss gradient) done in place on
//! reused buffers. Any activation per layer: ReLU keeps its mask-on-the-output path; other
//! activations keep their pre-activations for the backward pass. dfdx builds a tape of boxed
//! operations and allocates every tensor on every step; on these tiny layers that overhead is
//! most of the time (BENCHMARKS.md, "What bounds the misses"), so this engine trains the same
//! networks 2–3x faster (BENCHMARKS.md) and is the default; `--engine dfdx` is the reference.
//!
//! It computes the same function and the same gradient as dfdx (tests/fused.rs checks loss,
//! outputs and gradients against dfdx on every preset it serves); only the order of float sums
//! differs, so weights agree to rounding, not bit for bit. Smooth activations are computed in
//! f64 and rounded to f32. The losses are dfdx's definitions (MSE as the mean over all outputs;
//! cross-entropy as the mean over rows of `-Σ y · log_softmax`).

use super::net::{Batch, Net};
use super::{simd, Activation, Arch, Loss};
use crate::{invalid, Result};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Multiply-adds from which a layer's product is split across the current rayon pool: an
/// MNIST-sized layer (a batch of 128 through 784→512: 51 M) is, the presets' (at most 4 M) are
/// not, as splitting them costs more than it saves. Runs train on a pool of one thread, where
/// this changes nothing.
const PARALLEL_FROM: usize = 1 << 23;

fn par(multiply_adds: usize) -> Par {
    if multiply_adds >= PARALLEL_FROM {
        Par::rayon(0)
    } else {
        Par::Seq
    }
}

/// An MLP trained by the fused engine, with its scratch buffers.
pub struct FusedNet {
    widths: Vec<usize>,
    /// Each layer's activation (the last is the outputs', usually the identity).
    activations: Vec<Activation>,
    /// Pre-activations of every layer whose activation is not ReLU or the identity.
    pre: Vec<Vec<f32>>,
    params: Vec<f32>,
    /// Offsets of each layer's weight (`out x in`, row-major) and bias in `params`.
    offsets: Vec<(usize, usize)>,
    /// Post-activation outputs of every layer for the last batch (the last one: the outputs).
    acts: Vec<Vec<f32>>,
    delta: Vec<f32>,
    back: Vec<f32>,
}

impl FusedNet {
    /// A network of `arch` holding `params` (dfdx's order: each layer's weight, then its bias).
    pub fn new(arch: &Arch, params: Vec<f32>) -> Result<FusedNet> {
        FusedNet::with_activations(&arch.widths, &arch.activations(), params)
    }

    /// A network of layers `widths[k] → widths[k+1]` with `activations[k]`, holding `params`.
    pub fn with_activations(
        widths: &[usize],
        activations: &[Activation],
        params: Vec<f32>,
    ) -> Result<FusedNet> {
        if widths.len() < 2 || activations.len() != widths.len() - 1 {
            invalid!(
                "{} activations for the {} layers of {widths:?}",
                activations.len(),
                widths.len().saturating_sub(1)
            );
        }
        let n: usize = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        if params.len() != n {
            invalid!(
                "{} parameters given, the architecture {widths:?} has {n}",
                params.len()
            );
        }
        let mut offsets = Vec::new();
        let mut off = 0;
        for w in widths.windows(2) {
            offsets.push((off, off + w[0] * w[1]));
            off += w[0] * w[1] + w[1];
        }
        Ok(FusedNet {
            widths: widths.to_vec(),
            activations: activations.to_vec(),
            pre: vec![Vec::new(); widths.len() - 1],
            params,
            offsets,
            acts: vec![Vec::new(); widths.len() - 1],
            delta: Vec::new(),
            back: Vec::new(),
        })
    }

    /// Runs the forward pass on `n` rows of `x`, keeping every layer's output in `self.acts`.
    fn forward_keep(&mut self, x: &[f32], n: usize) {
        forward_into(
            (&self.widths, &self.activations),
            &self.offsets,
            &self.params,
            (x, n),
            (&mut self.acts, &mut self.pre),
        );
    }

    /// Sets `self.delta` to the gradient of the mean loss with respect to the outputs and
    /// returns the loss.
    fn loss_delta(&mut self, y: &[f32], n: usize, loss: Loss) -> f32 {
        let out = self.acts.last().expect("layers");
        let d_out = *self.widths.last().expect("widths");
        self.delta.resize(n * d_out, 0.0);
        match loss {
            Loss::Mse => {
                let scale = 1.0 / (n * d_out) as f32;
                let mut sum = 0.0f32;
                for ((d, &o), &t) in self.delta.iter_mut().zip(out).zip(y) {
                    let e = o - t;
                    sum += e * e;
                    *d = 2.0 * e * scale;
                }
                sum * scale
            }
            Loss::CrossEntropy => {
                let scale = 1.0 / n as f32;
                let mut sum = 0.0f32;
                for ((d, o), t) in self
                    .delta
                    .chunks_exact_mut(d_out)
                    .zip(out.chunks_exact(d_out))
                    .zip(y.chunks_exact(d_out))
                {
                    let max = o.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let lse = max + o.iter().map(|&v| (v - max).exp()).sum::<f32>().ln();
                    let mass: f32 = t.iter().sum();
                    for ((di, &oi), &ti) in d.iter_mut().zip(o).zip(t) {
                        sum -= ti * (oi - lse);
                        *di = ((oi - lse).exp() * mass - ti) * scale;
                    }
                }
                sum * scale
            }
        }
    }

    /// Backpropagates `self.delta` through every layer into `grad` (dfdx's order).
    fn backward(&mut self, x: &[f32], n: usize, grad: &mut [f32]) {
        for k in (0..self.widths.len() - 1).rev() {
            let (d_in, d_out) = (self.widths[k], self.widths[k + 1]);
            let (wo, bo) = self.offsets[k];
            let input: &[f32] = if k == 0 { x } else { &self.acts[k - 1] };
            let (gw, gb) = grad[wo..bo + d_out].split_at_mut(d_in * d_out);
            // dW (d_out x d_in) = deltaᵀ · input.
            let delta = &self.delta;
            matmul(
                MatMut::from_row_major_slice_mut(gw, d_out, d_in),
                Accum::Replace,
                MatRef::from_row_major_slice(delta, n, d_out).transpose(),
                MatRef::from_row_major_slice(input, n, d_in),
                1.0f32,
                par(n * d_in * d_out),
            );
            gb.fill(0.0);
            simd(
                #[inline(always)]
                || {
                    for row in delta.chunks_exact(d_out) {
                        gb.iter_mut().zip(row).for_each(|(g, &d)| *g += d);
                    }
                },
            );
            if k == 0 {
                break;
            }
            // The input's gradient (n x d_in) = delta · W, then the activation's derivative.
            self.back.resize(n * d_in, 0.0);
            matmul(
                MatMut::from_row_major_slice_mut(&mut self.back, n, d_in),
                Accum::Replace,
                MatRef::from_row_major_slice(delta, n, d_out),
                MatRef::from_row_major_slice(&self.params[wo..bo], d_out, d_in),
                1.0f32,
                par(n * d_in * d_out),
            );
            let back = &mut self.back;
            match self.activations[k - 1] {
                Activation::Relu => simd(
                    #[inline(always)]
                    || {
                        for (b, &a) in back.iter_mut().zip(input) {
                            *b = if a > 0.0 { *b } else { 0.0 };
                        }
                    },
                ),
                Activation::Identity => {}
                act => {
                    for (b, &z) in back.iter_mut().zip(&self.pre[k - 1]) {
                        *b *= act.derivative(z);
                    }
                }
            }
            std::mem::swap(&mut self.delta, &mut self.back);
        }
    }
}

impl Net for FusedNet {
    fn params(&self) -> Vec<f32> {
        self.params.clone()
    }

    fn set_params(&mut self, p: &[f32]) {
        assert_eq!(p.len(), self.params.len(), "parameter count");
        self.params.copy_from_slice(p);
    }

    fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        let mut acts = vec![Vec::new(); self.widths.len() - 1];
        let mut pre = vec![Vec::new(); self.widths.len() - 1];
        forward_into(
            (&self.widths, &self.activations),
            &self.offsets,
            &self.params,
            (x, n),
            (&mut acts, &mut pre),
        );
        acts.pop().expect("layers")
    }

    fn loss_and_grad(&mut self, b: Batch<'_>, loss: Loss) -> (f32, Vec<f32>, Vec<f32>) {
        let Batch { x, y, n } = b;
        self.forward_keep(x, n);
        let value = self.loss_delta(y, n, loss);
        let mut grad = vec![0.0; self.params.len()];
        self.backward(x, n, &mut grad);
        (value, self.acts.last().expect("layers").clone(), grad)
    }
}

/// The forward pass on `n` rows of `x`: every layer's output (after its activation) into
/// `acts[k]`, and the pre-activations of layers with smooth (or leaky) activations into
/// `pre[k]`, resized as needed.
fn forward_into(
    (widths, activations): (&[usize], &[Activation]),
    offsets: &[(usize, usize)],
    params: &[f32],
    (x, n): (&[f32], usize),
    (acts, pre): (&mut [Vec<f32>], &mut [Vec<f32>]),
) {
    for k in 0..widths.len() - 1 {
        let (d_in, d_out) = (widths[k], widths[k + 1]);
        let (wo, bo) = offsets[k];
        let (w, b) = (&params[wo..bo], &params[bo..bo + d_out]);
        let (done, rest) = acts.split_at_mut(k);
        let input: &[f32] = if k == 0 { x } else { &done[k - 1] };
        let out = &mut rest[0];
        out.resize(n * d_out, 0.0);
        for row in out.chunks_exact_mut(d_out) {
            row.copy_from_slice(b);
        }
        // out (n x d_out) += input (n x d_in) · Wᵀ, W being d_out x d_in row-major.
        matmul(
            MatMut::from_row_major_slice_mut(out, n, d_out),
            Accum::Add,
            MatRef::from_row_major_slice(input, n, d_in),
            MatRef::from_row_major_slice(w, d_out, d_in).transpose(),
            1.0f32,
            par(n * d_in * d_out),
        );
        match activations[k] {
            Activation::Identity => {}
            Activation::Relu => simd(
                #[inline(always)]
                || {
                    out.iter_mut()
                        .for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 })
                },
            ),
            act => {
                pre[k].clear();
                pre[k].extend_from_slice(out);
                // In f32, as dfdx and PyTorch train (the analyses use the same
                // formulas in f64).
                out.iter_mut().for_each(|v| *v = act.apply(*v));
            }
        }
    }
}
