//! Circuit discovery: methods that rank (or select) the edges of a neuron graph for a circuit,
//! each scored afterwards by the same faithfulness code, ablation and examples.
//!
//! - [`Method::Ig`]: the graph's own exact Integrated Gradients on edges (mean |IG|).
//! - [`Method::Eap`]: edge attribution patching, one backward pass: an edge `i → j` scores the
//!   mean over examples of `Σ_o |∂y_o/∂z_j · w_ji · (a_i − a'_i)|`, the first-order change of
//!   every output when the edge's source is replaced by its ablation baseline `a'_i`.
//! - [`Method::EapIg`]: the same with `∂y_o/∂z_j` averaged over `steps` midpoints of the
//!   straight line from the ablation's input baseline to the example.
//! - [`Method::Acdc`]: greedy pruning with real ablations, edges visited from the outputs back:
//!   an edge leaves the circuit for good when removing it raises the metric (mean squared
//!   difference to the full model's outputs, as a share of the fully ablated model's) by less
//!   than `τ`; run for every `τ` of a ladder.
//! - [`Method::Mask`]: a sigmoid mask per edge, trained by Adam through the real ablated forward
//!   pass to keep the full model's outputs (the same metric) plus `λ` times the mean mask, for
//!   every `λ` of a ladder ([`super::mask`]).
//!
//! The selecting methods rank edges by how many rungs of ACDC's ladder keep them, or by their
//! mask averaged over the penalties (ties broken by the edge's IG), so every method gives a
//! ranking that one faithfulness curve can score.
//!
//! At the node level ([`Level::Node`], in [`super::nodes`]) the same five methods rank hidden
//! neurons, each kept or ablated with all its edges.
//!
//! Discovery runs models with edges ablated; it must never change a model's weights.

use super::ablation::{forward_ablated, Baselines, EdgeMask};
use super::mask::masked_pre;
use crate::graph::{CircuitGraph, NodeKind};
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::probe::jacobian::{derivatives, output_jacobians, Reuse};
use crate::{invalid, Result};
use petgraph::graph::EdgeIndex;
use serde::{Deserialize, Serialize};

/// A circuit-discovery method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Ig,
    Eap,
    EapIg,
    Acdc,
    Mask,
}

crate::choices!(Method {
    Ig => "ig": "exact Integrated Gradients on edges (the graph's own ranking)",
    Eap => "eap": "edge attribution patching: activation difference times gradient, one backward pass",
    EapIg => "eap-ig": "EAP with gradients averaged along the path from the ablation's baseline",
    Acdc => "acdc": "greedy pruning with real ablations, swept over thresholds",
    Mask => "mask": "learned edge masks through the ablated forward pass, swept over penalties",
});

/// What a circuit is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Edge,
    Node,
}

crate::choices!(Level {
    Edge => "edge": "a circuit of edges",
    Node => "node": "a circuit of neurons, each kept or ablated with all its edges",
});

/// Options of a discovery method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoverOptions {
    pub method: Method,
    pub level: Level,
    /// EAP-IG's midpoint steps.
    pub steps: usize,
    /// ACDC's thresholds: the largest rise of the metric, as a share of the fully ablated
    /// model's, for which an edge is removed.
    pub taus: Vec<f64>,
    /// The mask's sparsity penalties.
    pub lambdas: Vec<f64>,
    /// Adam steps of each mask optimisation.
    pub mask_steps: usize,
}

impl DiscoverOptions {
    pub fn new(method: Method) -> DiscoverOptions {
        DiscoverOptions {
            method,
            level: Level::Edge,
            steps: 16,
            taus: vec![1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
            lambdas: vec![0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
            mask_steps: 300,
        }
    }

    /// Checks the options once.
    pub fn check(self) -> Result<Valid<DiscoverOptions>> {
        if self.steps == 0 {
            crate::param!(steps, "must be at least 1");
        }
        if self.mask_steps == 0 {
            crate::param!(mask_steps, "must be at least 1");
        }
        let bad = |v: &[f64]| v.is_empty() || v.iter().any(|x| !x.is_finite() || *x < 0.0);
        if bad(&self.taus) {
            crate::param!(taus, "must be one or more finite numbers >= 0");
        }
        if bad(&self.lambdas) {
            crate::param!(lambdas, "must be one or more finite numbers >= 0");
        }
        Ok(Valid::checked(self))
    }
}

/// A method's verdict, higher kept first: at the edge level one score per model edge
/// (`[layer][j * d_in + i]`, as [`EdgeMask`]); at the node level one per layer input
/// (`[layer][unit]`; layer 0, the inputs, is never ablated and scores 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Circuit {
    pub method: Method,
    pub level: Level,
    pub scores: Vec<Vec<f64>>,
}

impl Circuit {
    /// The hidden neurons `(layer, unit)`, best first (ties in network order); node level.
    pub fn node_ranking(&self) -> Vec<(usize, usize)> {
        let mut nodes: Vec<((usize, usize), f64)> = (1..self.scores.len())
            .flat_map(|l| (0..self.scores[l].len()).map(move |u| (l, u)))
            .map(|(l, u)| ((l, u), self.scores[l][u]))
            .collect();
        nodes.sort_by(|a, b| b.1.total_cmp(&a.1));
        nodes.into_iter().map(|(n, _)| n).collect()
    }

    /// The graph's edges, best first (ties in graph order).
    pub fn ranking(&self, g: &CircuitGraph) -> Vec<EdgeIndex> {
        let mut edges: Vec<(EdgeIndex, f64)> = g
            .graph
            .edge_indices()
            .map(|e| (e, self.edge_score(g, e)))
            .collect();
        edges.sort_by(|a, b| b.1.total_cmp(&a.1));
        edges.into_iter().map(|(e, _)| e).collect()
    }

    /// A graph edge's score: the sum over the model edges it stands for.
    pub fn edge_score(&self, g: &CircuitGraph, e: EdgeIndex) -> f64 {
        let (a, b) = g.graph.edge_endpoints(e).expect("edge");
        let (src, dst) = (&g.graph[a], &g.graph[b]);
        let d_in = g.widths[src.layer];
        dst.units
            .iter()
            .flat_map(|&j| src.units.iter().map(move |&i| j * d_in + i))
            .map(|k| self.scores[src.layer][k])
            .sum()
    }
}

/// Runs `opts.method` on the examples `x` (`n x d_in`, those `base` was made for) of `model`,
/// whose neuron graph `g` (built on the same examples) gives IG and the edges.
pub fn discover(
    model: &RuntimeModel,
    g: &CircuitGraph,
    x: &[f64],
    base: &Baselines,
    opts: &Valid<DiscoverOptions>,
) -> Result<Circuit> {
    if g.spec.nodes != NodeKind::Neuron {
        invalid!(
            "discovery works on neuron graphs (--nodes neuron); ROI graphs are not yet supported"
        );
    }
    if opts.level == Level::Node {
        return Ok(Circuit {
            method: opts.method,
            level: Level::Node,
            scores: super::nodes::discover_nodes(model, g, x, base, opts)?,
        });
    }
    let ig = ig_scores(model, g);
    let scores = match opts.method {
        Method::Ig => ig,
        Method::Eap => eap(model, x, base, 0)?,
        Method::EapIg => eap(model, x, base, opts.steps)?,
        Method::Acdc => with_ties(acdc(model, x, base, &opts.taus)?, &ig),
        Method::Mask => with_ties(
            mean_mask(super::mask::masks(model, x, base, opts, false)?),
            &ig,
        ),
    };
    Ok(Circuit {
        method: opts.method,
        level: Level::Edge,
        scores,
    })
}

/// The graph's mean |IG| per model edge.
fn ig_scores(model: &RuntimeModel, g: &CircuitGraph) -> Vec<Vec<f64>> {
    let mut s: Vec<Vec<f64>> = model
        .layers
        .iter()
        .map(|l| vec![0.0; l.d_in * l.d_out])
        .collect();
    for e in g.graph.edge_indices() {
        let (a, b) = g.graph.edge_endpoints(e).expect("edge");
        let (src, dst) = (&g.graph[a], &g.graph[b]);
        let d_in = g.widths[src.layer];
        s[src.layer][dst.units[0] * d_in + src.units[0]] = g.graph[e].mean_abs;
    }
    s
}

/// Each edge's mask averaged over the penalties: an edge dropped at a small penalty scores
/// low, one kept at every penalty near 1.
pub(crate) fn mean_mask(rungs: Vec<Vec<Vec<f64>>>) -> Vec<Vec<f64>> {
    let k = rungs.len().max(1) as f64;
    let mut sum = rungs[0].clone();
    for r in &rungs[1..] {
        for (s, m) in sum.iter_mut().zip(r) {
            for (s, &m) in s.iter_mut().zip(m) {
                *s += m;
            }
        }
    }
    sum.iter_mut().flatten().for_each(|s| *s /= k);
    sum
}

/// Scores (counts of ladder rungs, or mean masks) with the edge's IG, scaled below the
/// smallest step that matters, as tie-break.
pub(crate) fn with_ties(counts: Vec<Vec<f64>>, ig: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let max = ig.iter().flatten().fold(0.0f64, |m, &v| m.max(v));
    counts
        .into_iter()
        .zip(ig)
        .map(|(c, g)| {
            c.into_iter()
                .zip(g)
                .map(|(c, &g)| c + if max > 0.0 { 1e-6 * g / max } else { 0.0 })
                .collect()
        })
        .collect()
}

/// What EAP reads: `∂y_o/∂z_kj` for every layer `k`, example, output and unit (averaged over
/// the path's points for EAP-IG), and the clean layer inputs.
pub(crate) struct Gradients {
    pub dz: Vec<Vec<f64>>,
    pub acts: Vec<Vec<f64>>,
}

/// EAP (`steps` 0: gradients at the example) or EAP-IG (`steps` midpoints from the input
/// baseline to the example), per edge.
fn eap(model: &RuntimeModel, x: &[f64], base: &Baselines, steps: usize) -> Result<Vec<Vec<f64>>> {
    let n = model.check_input(x)?;
    let d_out = model.d_out();
    let Gradients { dz, acts } = gradients(model, x, base, steps)?;
    let mut out = Vec::with_capacity(model.layers.len());
    for (k, layer) in model.layers.iter().enumerate() {
        let (dk, dk1) = (layer.d_in, layer.d_out);
        let b = base.layer(k);
        let mut s = vec![0.0; dk * dk1];
        for r in 0..n {
            for j in 0..dk1 {
                for i in 0..dk {
                    let delta =
                        layer.weight[j * dk + i] as f64 * (acts[k][r * dk + i] - b[r * dk + i]);
                    let mut sum = 0.0;
                    for o in 0..d_out {
                        sum += (dz[k][(r * d_out + o) * dk1 + j] * delta).abs();
                    }
                    s[j * dk + i] += sum / n as f64;
                }
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// The gradients EAP and EAP-IG read (`steps` 0: at the example).
pub(crate) fn gradients(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    steps: usize,
) -> Result<Gradients> {
    let n = model.check_input(x)?;
    let clean = model.trace(x)?;
    let d_out = model.d_out();
    let n_layers = model.layers.len();
    // ∂y_o/∂z_j for every layer, example, output and unit, averaged over the path's points.
    let points: Vec<f64> = if steps == 0 {
        vec![1.0]
    } else {
        (0..steps)
            .map(|s| (s as f64 + 0.5) / steps as f64)
            .collect()
    };
    let mut dz: Vec<Vec<f64>> = model
        .layers
        .iter()
        .map(|l| vec![0.0; n * d_out * l.d_out])
        .collect();
    let x0 = base.layer(0);
    for &alpha in &points {
        let xa: Vec<f64> = x
            .iter()
            .zip(x0)
            .map(|(&v, &b)| b + alpha * (v - b))
            .collect();
        let trace = model.trace(&xa)?;
        let jac = output_jacobians(model, &trace, Reuse::Off);
        let deriv = derivatives(model, &trace);
        for k in 0..n_layers {
            let dk1 = model.layers[k].d_out;
            for r in 0..n {
                for o in 0..d_out {
                    for j in 0..dk1 {
                        // ∂y_o/∂z_kj = ∂y_o/∂h_{k+1,j} · act'(z_kj); the output layer's h is y.
                        let dh = if k + 1 < n_layers {
                            jac.per_layer[k + 1].of(r)[o * dk1 + j]
                        } else {
                            f64::from(u8::from(o == j))
                        };
                        dz[k][(r * d_out + o) * dk1 + j] +=
                            dh * deriv[k][r * dk1 + j] / points.len() as f64;
                    }
                }
            }
        }
    }
    let mut acts = vec![x.to_vec()];
    acts.extend(clean.post.iter().take(n_layers - 1).cloned());
    Ok(Gradients { dz, acts })
}

/// The metric the selecting methods keep small: mean squared difference between `y` and the
/// full model's outputs `full`.
pub(crate) fn metric(y: &[f64], full: &[f64]) -> f64 {
    y.iter()
        .zip(full)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / y.len().max(1) as f64
}

/// What the selecting methods measure against: the full model's outputs on `x`, and the
/// metric of the fully ablated model (every edge carrying its baseline).
pub(crate) fn reference(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
) -> Result<(Vec<f64>, f64)> {
    let full = forward_ablated(model, x, &EdgeMask::all(model, true), base)?;
    let none = metric(
        &forward_ablated(model, x, &EdgeMask::all(model, false), base)?,
        &full,
    );
    Ok((full, none))
}

/// ACDC over the ladder `taus`: per model edge, the number of thresholds whose circuit keeps it.
fn acdc(model: &RuntimeModel, x: &[f64], base: &Baselines, taus: &[f64]) -> Result<Vec<Vec<f64>>> {
    let (full, none) = reference(model, x, base)?;
    let mut counts: Vec<Vec<f64>> = model
        .layers
        .iter()
        .map(|l| vec![0.0; l.d_in * l.d_out])
        .collect();
    for &tau in taus {
        let mask = acdc_circuit(model, x, base, &full, tau * none)?;
        for (c, k) in counts.iter_mut().zip(&mask.kept) {
            for (c, &k) in c.iter_mut().zip(k) {
                *c += f64::from(u8::from(k));
            }
        }
    }
    Ok(counts)
}

/// One ACDC pass: from the output layer back, each unit's incoming edges in turn; an edge is
/// removed for good when that raises the metric by less than `threshold`. Each trial changes
/// one unit's pre-activation and reruns only the layers after it (the layers before are the
/// current circuit's, kept).
pub fn acdc_circuit(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    full: &[f64],
    threshold: f64,
) -> Result<EdgeMask> {
    let n = model.check_input(x)?;
    let n_layers = model.layers.len();
    let mut mask = EdgeMask::all(model, true);
    // The current circuit's layer inputs `a[k]` and pre-activations `z[k]`.
    let mut a = vec![x.to_vec()];
    let mut z = Vec::with_capacity(n_layers);
    for k in 0..n_layers {
        let kept = &mask.kept[k];
        let zk = masked_pre(&model.layers[k], &a[k], base.layer(k), n, |e, a, b| {
            if kept[e] {
                a
            } else {
                b
            }
        });
        a.push(
            zk.iter()
                .map(|&v| model.layers[k].activation.apply_f64(v))
                .collect(),
        );
        z.push(zk);
    }
    let mut current = metric(&a[n_layers], full);
    for k in (0..n_layers).rev() {
        let layer = &model.layers[k];
        let (dk, dk1) = (layer.d_in, layer.d_out);
        let b = base.layer(k);
        for j in (0..dk1).rev() {
            for i in (0..dk).rev() {
                let e = j * dk + i;
                let w = layer.weight[e] as f64;
                // The trial: unit j of layer k without the edge, the later layers rerun.
                let mut zk = z[k].clone();
                let mut h = a[k + 1].clone();
                for r in 0..n {
                    zk[r * dk1 + j] -= w * (a[k][r * dk + i] - b[r * dk + i]);
                    h[r * dk1 + j] = layer.activation.apply_f64(zk[r * dk1 + j]);
                }
                let mut later = vec![(zk, h)];
                for l in k + 1..n_layers {
                    let kept = &mask.kept[l];
                    let zl = masked_pre(
                        &model.layers[l],
                        &later.last().expect("layer").1,
                        base.layer(l),
                        n,
                        |e, a, b| if kept[e] { a } else { b },
                    );
                    let hl = zl
                        .iter()
                        .map(|&v| model.layers[l].activation.apply_f64(v))
                        .collect();
                    later.push((zl, hl));
                }
                let m = metric(&later.last().expect("output").1, full);
                if m - current < threshold {
                    mask.kept[k][e] = false;
                    current = m;
                    for (off, (zl, hl)) in later.into_iter().enumerate() {
                        z[k + off] = zl;
                        a[k + off + 1] = hl;
                    }
                }
            }
        }
    }
    Ok(mask)
}
