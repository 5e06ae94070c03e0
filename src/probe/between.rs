//! Between layers: how one layer's activations map onto the next, the research notes' "Layer
//! correlations" chapter. Layers are `h_1 .. h_{L-1}` (hidden activations); `pair(k)` is
//! `h_k → h_{k+1}`.
//!
//! - [`pc_correlations`]: correlations between the top principal-component scores of two layers.
//! - [`pls_pair`]: PLS2 from `h_k` to the top PC scores of `h_{k+1}`; how each PLS direction in
//!   `h_k` overlaps `h_k`'s own PCs.
//! - [`component_sets`]: the notes' two component sets per layer — *output-space* components
//!   (what the previous layer's PLS predicts in this layer) and *input-space* components (the
//!   PLS directions this layer offers the next) — and the intra-layer weights between them.
//! - [`scaffold`]: a temporary linear readout of `h_{k+1}`'s PCs; per-example gradients of each
//!   component with respect to `h_k`, their PCA and their number of distinct directions.
//!
//! Every probe here streams over the examples: [`Layers`] (layer statistics and each layer's
//! PCA) is fed every chunk's trace in a first pass, [`Between`] (correlations, PLS, scaffold;
//! it needs the PCAs) in a second, and each keeps `width²`-sized factors ([`Factor`]) and
//! counts, never an array of every example.
//!
//! Everything here reads activations and weights; it must never change a model.

use super::census::Grouper;
use crate::model::{RuntimeModel, Trace};
use crate::numeric::linalg::{Factor, Pca, Pls};
use crate::Result;

/// One correlation between PC `a` of layer `k` and PC `b` of layer `k + 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct PcCorrelation {
    pub layer: usize,
    pub pc_a: usize,
    pub pc_b: usize,
    pub correlation: f64,
}

/// PLS from `h_k` to `h_{k+1}`'s top PC scores.
#[derive(Debug, Clone, PartialEq)]
pub struct PlsPair {
    pub layer: usize,
    pub pls: Pls,
    /// R² of the PLS prediction of the next layer's PC scores.
    pub r2: f64,
    /// `components x d_k`: |cos| between PLS direction `c` and `h_k`'s PC `j`.
    pub overlap: Vec<f64>,
}

impl PlsPair {
    /// For PLS direction `c`: the best-matching PC of `h_k` and its |cos|.
    pub fn best_pc(&self, c: usize) -> (usize, f64) {
        let d = self.pls.dx;
        let row = &self.overlap[c * d..(c + 1) * d];
        row.iter().enumerate().fold(
            (0, 0.0),
            |best, (j, &v)| if v > best.1 { (j, v) } else { best },
        )
    }
}

/// The notes' two component sets of layer `k` and the weights between them.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSets {
    pub layer: usize,
    /// Output-space components (unit rows in `h_k`): `h_k`'s PCs weighted by the previous PLS's
    /// Y loadings, i.e. the directions of `h_k` that `h_{k-1}` predicts.
    pub output_space: Vec<Vec<f64>>,
    /// Input-space components (unit rows in `h_k`): the X weights of the PLS to `h_{k+1}`.
    pub input_space: Vec<Vec<f64>>,
    /// `output x input` cosines: the intra-layer weights.
    pub weights: Vec<f64>,
}

fn unit(v: Vec<f64>) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
    v.into_iter().map(|x| x / n).collect()
}

/// Component sets for every layer with a layer on each side.
pub fn component_sets(pairs: &[PlsPair], pcas: &[Pca]) -> Vec<ComponentSets> {
    let mut out = Vec::new();
    for w in pairs.windows(2) {
        let (before, after) = (&w[0], &w[1]);
        let k = after.layer;
        let pca = &pcas[k - 1];
        let qy = before.pls.dy;
        let output_space: Vec<Vec<f64>> = (0..before.pls.components)
            .map(|c| {
                let mut v = vec![0.0; pca.d];
                for p in 0..qy {
                    let load = before.pls.y_loadings[p * before.pls.components + c];
                    pca.component(p)
                        .iter()
                        .zip(v.iter_mut())
                        .for_each(|(a, b)| *b += load * a);
                }
                unit(v)
            })
            .collect();
        let input_space: Vec<Vec<f64>> = (0..after.pls.components)
            .map(|c| unit(after.pls.x_weight(c)))
            .collect();
        let weights = output_space
            .iter()
            .flat_map(|o| {
                input_space
                    .iter()
                    .map(move |i| o.iter().zip(i).map(|(a, b)| a * b).sum::<f64>())
            })
            .collect();
        out.push(ComponentSets {
            layer: k,
            output_space,
            input_space,
            weights,
        });
    }
    out
}

/// The scaffold of one PC of `h_{k+1}` read back to `h_k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaffold {
    /// `k`: gradients are taken at `h_k` (0 = input).
    pub layer: usize,
    pub component: usize,
    /// Distinct gradient directions (cosine ≥ `cosine`).
    pub distinct_directions: usize,
    /// Explained-variance ratios of the PCA of the gradients.
    pub gradient_pca: Vec<f64>,
}

/// Per hidden unit: share of examples where it is active, and its mean activation.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStats {
    pub layer: usize,
    pub width: usize,
    pub mean_activation: f64,
    /// Mean over units of the share of examples in which the unit is active (`z > 0`).
    pub active_share: f64,
    /// Units never active on this data (dead).
    pub dead: usize,
    /// Units active on every example (linear on this data).
    pub always_on: usize,
}

/// The first pass over a split: per hidden layer `h_k`, how often each unit is active and a
/// [`Factor`] of its centred activations (for its PCA).
pub struct Layers {
    active: Vec<Vec<usize>>,
    factors: Vec<Factor>,
    n: usize,
}

impl Layers {
    pub fn new(model: &RuntimeModel) -> Layers {
        let widths: Vec<usize> = model.layers[..model.layers.len() - 1]
            .iter()
            .map(|l| l.d_out)
            .collect();
        Layers {
            active: widths.iter().map(|&d| vec![0; d]).collect(),
            factors: widths.iter().map(|&d| Factor::centred(d)).collect(),
            n: 0,
        }
    }

    /// Folds in one chunk's trace.
    pub fn push(&mut self, trace: &Trace) {
        for (k, (active, f)) in self.active.iter_mut().zip(&mut self.factors).enumerate() {
            let d = active.len();
            for row in trace.pre[k].chunks(d.max(1)) {
                for (c, z) in active.iter_mut().zip(row) {
                    *c += (*z > 0.0) as usize;
                }
            }
            f.push(&trace.post[k]);
        }
        self.n += trace.n;
    }

    /// Statistics of every hidden layer `h_1..h_{L-1}` and its PCA.
    pub fn finish(self) -> Result<(Vec<LayerStats>, Vec<Pca>)> {
        let n = self.n;
        let stats = self
            .active
            .iter()
            .zip(&self.factors)
            .enumerate()
            .map(|(k, (counts, f))| {
                let d = counts.len();
                LayerStats {
                    layer: k + 1,
                    width: d,
                    mean_activation: f.mean().iter().sum::<f64>() / d as f64,
                    active_share: counts.iter().sum::<usize>() as f64 / (d * n).max(1) as f64,
                    dead: counts.iter().filter(|&&c| c == 0).count(),
                    always_on: counts.iter().filter(|&&c| c == n).count(),
                }
            })
            .collect();
        let pcas = self
            .factors
            .iter()
            .map(Pca::from_factor)
            .collect::<Result<_>>()?;
        Ok((stats, pcas))
    }
}

/// The second pass over the first split, given every hidden layer's PCA (`pcas[k - 1]` is
/// `h_k`'s): per pair `h_k → h_{k+1}`, a [`Factor`] of the rows `[h_k, top q PC scores of
/// h_{k+1}]` (PLS and PC correlations), and per PC readout of `h_{k+1}`, its scaffold gradients
/// at `h_k` (grouped by direction as they come, and factored for their PCA).
pub struct Between<'a> {
    model: &'a RuntimeModel,
    pcas: &'a [Pca],
    q: usize,
    pairs: Vec<Factor>,
    /// `[k][c]`: readout `c` of `h_{k+1}` read back to `h_k` (`k = 0` is the input).
    scaffolds: Vec<Vec<(Grouper, Factor)>>,
}

/// Everything [`Between`] measures.
#[derive(Debug, Clone)]
pub struct BetweenLayers {
    pub correlations: Vec<PcCorrelation>,
    pub pls: Vec<PlsPair>,
    pub scaffolds: Vec<Scaffold>,
}

impl<'a> Between<'a> {
    /// `q` PCs per layer; scaffold directions are distinct below a cosine of `cosine`.
    pub fn new(model: &'a RuntimeModel, pcas: &'a [Pca], q: usize, cosine: f64) -> Between<'a> {
        let pairs = (1..model.layers.len().saturating_sub(1))
            .map(|k| Factor::centred(pcas[k - 1].d + q.min(pcas[k].d)))
            .collect();
        let scaffolds = pcas
            .iter()
            .enumerate()
            .map(|(k, next)| {
                let dk = model.layers[k].d_in;
                (0..q.min(next.d))
                    .map(|_| (Grouper::new(true, 0.0, cosine), Factor::centred(dk)))
                    .collect()
            })
            .collect();
        Between {
            model,
            pcas,
            q,
            pairs,
            scaffolds,
        }
    }

    /// Folds in one chunk's trace.
    pub fn push(&mut self, trace: &Trace) {
        let n = trace.n;
        for (i, f) in self.pairs.iter_mut().enumerate() {
            let k = i + 1;
            let (dx, next) = (self.pcas[k - 1].d, &self.pcas[k]);
            let qy = self.q.min(next.d);
            let y = next.transform(&trace.post[k], n, qy);
            let rows: Vec<f64> = (0..n)
                .flat_map(|r| {
                    trace.post[k - 1][r * dx..(r + 1) * dx]
                        .iter()
                        .chain(&y[r * qy..(r + 1) * qy])
                        .copied()
                })
                .collect();
            f.push(&rows);
        }
        // The readout of PC `p_c` of h_{k+1} has the gradient `(p_c ⊙ act_k'(z_k))ᵀ W_k` at h_k.
        for (k, readouts) in self.scaffolds.iter_mut().enumerate() {
            let l = &self.model.layers[k];
            let (dk, dk1) = (l.d_in, l.d_out);
            let derivs: Vec<f64> = trace.pre[k]
                .iter()
                .map(|&z| l.activation.derivative_f64(z))
                .collect();
            for (c, (grouper, f)) in readouts.iter_mut().enumerate() {
                let p = self.pcas[k].component(c);
                let mut grads = vec![0.0; n * dk];
                for i in 0..n {
                    let g = &mut grads[i * dk..(i + 1) * dk];
                    for j in 0..dk1 {
                        let s = p[j] * derivs[i * dk1 + j];
                        if s != 0.0 {
                            g.iter_mut()
                                .zip(&l.weight[j * dk..(j + 1) * dk])
                                .for_each(|(gi, &w)| *gi += s * w as f64);
                        }
                    }
                }
                grouper.assign_all(&grads, dk);
                f.push(&grads);
            }
        }
    }

    pub fn finish(self) -> Result<BetweenLayers> {
        let mut correlations = Vec::new();
        let mut pls = Vec::new();
        for (i, f) in self.pairs.iter().enumerate() {
            let k = i + 1;
            let (this, next) = (&self.pcas[k - 1], &self.pcas[k]);
            let (dx, qy) = (this.d, self.q.min(next.d));
            correlations.extend(pc_correlations(f, this, next, k, self.q));
            let fit = Pls::fit_factor(f, dx, qy, self.q.min(dx))?;
            let r2 = fit.r2_factor(f);
            let mut overlap = Vec::with_capacity(fit.components * dx);
            for c in 0..fit.components {
                let w = fit.x_weight(c);
                let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
                for j in 0..dx {
                    let pc = this.component(j);
                    overlap.push((pc.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / norm).abs());
                }
            }
            pls.push(PlsPair {
                layer: k,
                pls: fit,
                r2,
                overlap,
            });
        }
        let mut scaffolds = Vec::new();
        for (k, readouts) in self.scaffolds.iter().enumerate() {
            for (c, (grouper, f)) in readouts.iter().enumerate() {
                scaffolds.push(Scaffold {
                    layer: k,
                    component: c,
                    distinct_directions: grouper.distinct(),
                    gradient_pca: Pca::from_factor(f)?.ratios,
                });
            }
        }
        Ok(BetweenLayers {
            correlations,
            pls,
            scaffolds,
        })
    }
}

/// Correlations between the top `q` PC scores of `h_k` (PCA `this`) and of `h_{k+1}` (`next`),
/// from the pair's factor of `[h_k, scores of h_{k+1}]`: the scores of `h_k` are its centred
/// rows times a component, so every covariance is an inner product of `R`'s columns. A PC with
/// no variance (a layer with fewer than `q` live directions) correlates 0, not rounding noise.
fn pc_correlations(f: &Factor, this: &Pca, next: &Pca, k: usize, q: usize) -> Vec<PcCorrelation> {
    let (r, dx) = (f.r(), this.d);
    let (qa, qb) = (q.min(this.d), q.min(next.d));
    let rows = r.nrows();
    let score_a = |a: usize| -> Vec<f64> {
        let v = this.component(a);
        (0..rows)
            .map(|i| (0..dx).map(|j| r[(i, j)] * v[j]).sum())
            .collect()
    };
    let col_b = |b: usize| -> Vec<f64> { (0..rows).map(|i| r[(i, dx + b)]).collect() };
    let live = |p: &Pca, c: usize| {
        let total: f64 = p.variances.iter().sum();
        p.variances[c] > 1e-12 * total
    };
    let mut out = Vec::new();
    for a in 0..qa {
        let sa = score_a(a);
        let saa: f64 = sa.iter().map(|v| v * v).sum();
        for b in 0..qb {
            let sb = col_b(b);
            let sbb: f64 = sb.iter().map(|v| v * v).sum();
            let sab: f64 = sa.iter().zip(&sb).map(|(x, y)| x * y).sum();
            let correlation = if !live(this, a) || !live(next, b) || saa == 0.0 || sbb == 0.0 {
                0.0
            } else {
                sab / (saa * sbb).sqrt()
            };
            out.push(PcCorrelation {
                layer: k,
                pc_a: a,
                pc_b: b,
                correlation,
            });
        }
    }
    out
}
