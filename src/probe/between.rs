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
//! Everything here reads activations and weights; it must never change a model.

use super::census::group;
use crate::model::{RuntimeModel, Trace};
use crate::numeric::linalg::{column_means, r2_score, Pca, Pls};
use crate::Result;

/// Hidden activations `h_k` (`k = 1..L-1`) of a trace: `post[k - 1]`.
fn hidden(trace: &Trace, k: usize) -> &[f64] {
    &trace.post[k - 1]
}

/// One correlation between PC `a` of layer `k` and PC `b` of layer `k + 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct PcCorrelation {
    pub layer: usize,
    pub pc_a: usize,
    pub pc_b: usize,
    pub correlation: f64,
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Correlations between the top `q` PC scores of `h_k` and of `h_{k+1}`, for every pair.
pub fn pc_correlations(
    model: &RuntimeModel,
    trace: &Trace,
    pcas: &[Pca],
    q: usize,
) -> Vec<PcCorrelation> {
    let mut out = Vec::new();
    for k in 1..model.layers.len().saturating_sub(1) {
        let (da, db) = (model.layers[k - 1].d_out, model.layers[k].d_out);
        let (qa, qb) = (q.min(da), q.min(db));
        let sa = pcas[k - 1].transform(hidden(trace, k), trace.n, qa);
        let sb = pcas[k].transform(hidden(trace, k + 1), trace.n, qb);
        for a in 0..qa {
            let col_a: Vec<f64> = (0..trace.n).map(|i| sa[i * qa + a]).collect();
            for b in 0..qb {
                let col_b: Vec<f64> = (0..trace.n).map(|i| sb[i * qb + b]).collect();
                out.push(PcCorrelation {
                    layer: k,
                    pc_a: a,
                    pc_b: b,
                    correlation: pearson(&col_a, &col_b),
                });
            }
        }
    }
    out
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

/// PLS2 with `q` components from `h_k` to the top `q` PC scores of `h_{k+1}`, for every pair.
pub fn pls_pair(trace: &Trace, pcas: &[Pca], k: usize, q: usize) -> Result<PlsPair> {
    let (x, y_layer) = (hidden(trace, k), hidden(trace, k + 1));
    let dx = pcas[k - 1].d;
    let qy = q.min(pcas[k].d);
    let y = pcas[k].transform(y_layer, trace.n, qy);
    let comps = q.min(dx);
    let pls = Pls::fit(x, &y, trace.n, dx, qy, comps)?;
    let r2 = r2_score(&y, &pls.predict(x, trace.n), trace.n, qy);
    let mut overlap = Vec::with_capacity(comps * dx);
    for c in 0..comps {
        let w = pls.x_weight(c);
        let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
        for j in 0..dx {
            let pc = pcas[k - 1].component(j);
            overlap.push((pc.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / norm).abs());
        }
    }
    Ok(PlsPair {
        layer: k,
        pls,
        r2,
        overlap,
    })
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

/// For each of `h_{k+1}`'s top `q` PCs `p_c`, the gradient of `p_c · h_{k+1}` at `h_k`:
/// `(p_c ⊙ act_k'(z_k))ᵀ W_k`, per example.
pub fn scaffold(
    model: &RuntimeModel,
    trace: &Trace,
    next_pca: &Pca,
    k: usize,
    q: usize,
    cosine: f64,
) -> Result<Vec<Scaffold>> {
    let l = &model.layers[k];
    let (dk, dk1) = (l.d_in, l.d_out);
    let mut out = Vec::new();
    for c in 0..q.min(dk1) {
        let p = next_pca.component(c);
        let mut grads = vec![0.0; trace.n * dk];
        for i in 0..trace.n {
            let z = &trace.pre[k][i * dk1..(i + 1) * dk1];
            let g = &mut grads[i * dk..(i + 1) * dk];
            for j in 0..dk1 {
                let s = p[j] * l.activation.derivative_f64(z[j]);
                if s != 0.0 {
                    g.iter_mut()
                        .zip(&l.weight[j * dk..(j + 1) * dk])
                        .for_each(|(gi, &w)| *gi += s * w as f64);
                }
            }
        }
        let rows: Vec<&[f64]> = grads.chunks(dk).collect();
        let groups = group(&rows, true, cosine);
        let distinct_directions = groups
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        let pca = Pca::fit(&grads, trace.n, dk)?;
        out.push(Scaffold {
            layer: k,
            component: c,
            distinct_directions,
            gradient_pca: pca.ratios.clone(),
        });
    }
    Ok(out)
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

/// Statistics of every hidden layer `h_1..h_{L-1}`.
pub fn layer_stats(model: &RuntimeModel, trace: &Trace) -> Vec<LayerStats> {
    (1..model.layers.len())
        .map(|k| {
            let d = model.layers[k - 1].d_out;
            let z = &trace.pre[k - 1];
            let counts: Vec<usize> = (0..d)
                .map(|j| (0..trace.n).filter(|&i| z[i * d + j] > 0.0).count())
                .collect();
            let means = column_means(hidden(trace, k), trace.n, d);
            LayerStats {
                layer: k,
                width: d,
                mean_activation: means.iter().sum::<f64>() / d as f64,
                active_share: counts.iter().sum::<usize>() as f64 / (d * trace.n) as f64,
                dead: counts.iter().filter(|&&c| c == 0).count(),
                always_on: counts.iter().filter(|&&c| c == trace.n).count(),
            }
        })
        .collect()
}
