//! Circuit discovery: methods that rank (or select) the items of a graph for a circuit, each
//! scored afterwards by the same faithfulness code, ablation and examples. The items
//! ([`Items`]) are the graph's edges ([`Level::Edge`]) or its hidden nodes ([`Level::Node`],
//! each removed with every edge it feeds), in neuron or ROI graphs alike.
//!
//! - [`Method::Ig`]: the graph's own exact Integrated Gradients (an edge's mean |IG|, a node's
//!   own IG).
//! - [`Method::Eap`]: attribution patching, one backward pass: an item scores the mean over
//!   examples of `Σ_o |Σ_{i→j} ∂y_o/∂z_j · w_ji · (a_i − a'_i)|` over its edges `i → j`, the
//!   first-order change of every output when the item's sources are replaced by their ablation
//!   baselines `a'_i`.
//! - [`Method::EapIg`]: the same with `∂y_o/∂z_j` averaged over `steps` midpoints of the
//!   straight line from the ablation's input baseline to the example.
//! - [`Method::Acdc`]: greedy pruning with real ablations, items visited from the outputs back:
//!   an item leaves the circuit for good when removing it raises the metric (mean squared
//!   difference to the full model's outputs, as a share of the fully ablated model's) by less
//!   than `τ`; run for every `τ` of a ladder.
//! - [`Method::Mask`]: a sigmoid mask per item, trained by Adam through the real ablated
//!   forward pass to keep the full model's outputs (the same metric) plus `λ` times the mean
//!   mask, for every `λ` of a ladder ([`super::mask`]).
//!
//! The selecting methods rank items by how many rungs of ACDC's ladder keep them, or by their
//! mask averaged over the penalties (ties broken by the item's IG), so every method gives a
//! ranking that one faithfulness curve can score. With [`DiscoverOptions::task`] every method
//! reads one task's outputs alone (what a per-task planted-circuit score needs).
//!
//! Discovery runs models with edges ablated; it must never change a model's weights.

use super::ablation::{forward_ablated, Baselines, EdgeMask};
use super::items::Items;
use super::mask::Masked;
use crate::data::TaskStructure;
use crate::graph::CircuitGraph;
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
    Edge => "edge": "a circuit of graph edges",
    Node => "node": "a circuit of hidden nodes (neurons or ROIs), each kept or removed with all its edges",
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
    /// One task's outputs alone (its IG, its gradients, its outputs in the metric), or every
    /// output.
    #[serde(default)]
    pub task: Option<usize>,
    /// The size of the circuit reported and saved: the top items of the ranking.
    #[serde(default)]
    pub budget: Budget,
}

/// How many items a circuit keeps: a share of the items (`10%`) or a count (`50`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    Share(f64),
    Count(usize),
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::Share(0.1)
    }
}

impl Budget {
    /// How many of `n` items the budget keeps.
    pub fn of(self, n: usize) -> usize {
        match self {
            Budget::Share(s) => super::faithfulness::top(n, s),
            Budget::Count(k) => k.min(n),
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Share(s) => write!(f, "{}%", 100.0 * s),
            Budget::Count(k) => write!(f, "{k}"),
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = String;

    /// `P%` (a share of the items, 0 < P <= 100) or `K` (a count, at least 1).
    fn from_str(s: &str) -> std::result::Result<Budget, String> {
        let bad = || format!("`{s}`: a budget is a share such as 10% or a count such as 50");
        if let Some(p) = s.trim().strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!(
                    "`{s}`: a share of the items must lie in (0%, 100%]"
                ));
            }
            Ok(Budget::Share(p / 100.0))
        } else {
            let k: usize = s.trim().parse().map_err(|_| bad())?;
            if k == 0 {
                return Err(format!("`{s}`: a circuit keeps at least 1 item"));
            }
            Ok(Budget::Count(k))
        }
    }
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
            task: None,
            budget: Budget::default(),
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
        match self.budget {
            Budget::Share(s) if !(s > 0.0 && s <= 1.0) => {
                crate::param!(budget, "a share must lie in (0, 1]")
            }
            Budget::Count(0) => crate::param!(budget, "must keep at least 1 item"),
            _ => {}
        }
        Ok(Valid::checked(self))
    }
}

/// A method's verdict on the items of a graph ([`Items`]: its edges, or its hidden nodes), one
/// score per item, higher kept first.
#[derive(Debug, Clone, PartialEq)]
pub struct Circuit {
    pub method: Method,
    pub items: Items,
    pub scores: Vec<f64>,
}

impl Circuit {
    /// The items, best first (ties in item order).
    pub fn ranking(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.scores.len()).collect();
        order.sort_by(|&a, &b| self.scores[b].total_cmp(&self.scores[a]));
        order
    }

    /// The graph's edges, best first (edge level).
    pub fn ranked_edges(&self) -> Vec<EdgeIndex> {
        self.ranking()
            .into_iter()
            .map(|t| self.items.edges[t])
            .collect()
    }

    /// The hidden nodes' units, best node first (node level): what
    /// [`super::faithfulness_nodes`] scores.
    pub fn ranked_nodes(&self, g: &CircuitGraph) -> Vec<Vec<(usize, usize)>> {
        let units = self.items.units(g);
        self.ranking()
            .into_iter()
            .map(|t| units[t].clone())
            .collect()
    }
}

/// The outputs a discovery reads: those of `opts.task`, or every output.
pub fn outputs_of(
    model: &RuntimeModel,
    tasks: &TaskStructure,
    task: Option<usize>,
) -> Result<Vec<usize>> {
    match task {
        None => Ok((0..model.d_out()).collect()),
        Some(t) => match tasks.tasks.get(t) {
            Some(task) => Ok(task.outputs.clone()),
            None => invalid!(
                "discovery: task {t} asked for, the data has {} tasks",
                tasks.tasks.len()
            ),
        },
    }
}

/// Runs `opts.method` on the examples `x` (`n x d_in`, those `base` was made for) of `model`,
/// whose graph `g` (neurons or ROIs, built on the same examples) gives IG and the items; with
/// `opts.task`, for that task's outputs alone.
pub fn discover(
    model: &RuntimeModel,
    g: &CircuitGraph,
    tasks: &TaskStructure,
    x: &[f64],
    base: &Baselines,
    opts: &Valid<DiscoverOptions>,
) -> Result<Circuit> {
    super::check_ablatable(g)?;
    let items = Items::of_graph(model, g, opts.level)?;
    let outputs = outputs_of(model, tasks, opts.task)?;
    let ig = ig_scores(g, &items, opts.task)?;
    let scores = match opts.method {
        Method::Ig => ig,
        Method::Eap => eap(model, &items, x, base, 0, &outputs)?,
        Method::EapIg => eap(model, &items, x, base, opts.steps, &outputs)?,
        Method::Acdc => with_ties(acdc(model, &items, x, base, &opts.taus, &outputs)?, &ig),
        Method::Mask => with_ties(
            kept_rungs(super::mask::masks(model, &items, x, base, opts, &outputs)?),
            &ig,
        ),
    };
    Ok(Circuit {
        method: opts.method,
        items,
        scores,
    })
}

/// The graph's own IG per item: an edge's mean |IG|, a node's own IG (its attribution), for
/// every task together or for `task`.
fn ig_scores(g: &CircuitGraph, items: &Items, task: Option<usize>) -> Result<Vec<f64>> {
    let pick = |all: f64, per_task: &[f64]| -> Result<f64> {
        match task {
            None => Ok(all),
            Some(t) => match per_task.get(t) {
                Some(&v) => Ok(v),
                None => {
                    invalid!("discovery for one task needs a graph of task targets (--target task)")
                }
            },
        }
    };
    match items.level {
        Level::Edge => items
            .edges
            .iter()
            .map(|&e| pick(g.graph[e].mean_abs, &g.graph[e].per_task))
            .collect(),
        Level::Node => items
            .nodes
            .iter()
            .map(|&n| {
                let a = &g.graph[n].attribution;
                pick(a.iter().sum(), a)
            })
            .collect(),
    }
}

/// Per item, the number of penalties whose trained mask keeps it (mask above one half): an
/// item that leaves the circuit at a small penalty scores low, one kept at every penalty
/// scores the ladder's length. Items that leave at the same penalty are ordered by IG (as
/// ACDC's are, [`with_ties`]), not by their mask's size there.
pub(crate) fn kept_rungs(rungs: Vec<Vec<f64>>) -> Vec<f64> {
    let mut count = vec![0.0; rungs.first().map_or(0, Vec::len)];
    for r in &rungs {
        for (c, &m) in count.iter_mut().zip(r) {
            *c += f64::from(u8::from(m > 0.5));
        }
    }
    count
}

/// Scores (counts of ladder rungs, or mean masks) with the item's IG, scaled below the
/// smallest step that matters, as tie-break.
pub(crate) fn with_ties(counts: Vec<f64>, ig: &[f64]) -> Vec<f64> {
    let max = ig.iter().fold(0.0f64, |m, &v| m.max(v));
    counts
        .into_iter()
        .zip(ig)
        .map(|(c, &g)| c + if max > 0.0 { 1e-6 * g / max } else { 0.0 })
        .collect()
}

/// What EAP reads: `∂y_o/∂z_kj` for every layer `k`, example, output and unit (averaged over
/// the path's points for EAP-IG), and the clean layer inputs.
pub(crate) struct Gradients {
    pub dz: Vec<Vec<f64>>,
    pub acts: Vec<Vec<f64>>,
}

/// EAP (`steps` 0: gradients at the example) or EAP-IG (`steps` midpoints from the input
/// baseline to the example), per item: the mean over examples of
/// `Σ_o |Σ_{(i→j) in the item} ∂y_o/∂z_j · w_ji · (a_i − a'_i)|`, `o` over `outputs`.
fn eap(
    model: &RuntimeModel,
    items: &Items,
    x: &[f64],
    base: &Baselines,
    steps: usize,
    outputs: &[usize],
) -> Result<Vec<f64>> {
    let n = model.check_input(x)?;
    let d_out = model.d_out();
    let Gradients { dz, acts } = gradients(model, x, base, steps)?;
    Ok(items
        .members
        .iter()
        .map(|(k, members)| {
            let layer = &model.layers[*k];
            let (dk, dk1) = (layer.d_in, layer.d_out);
            let b = base.layer(*k);
            let mut s = 0.0;
            for r in 0..n {
                for &o in outputs {
                    let row = &dz[*k][(r * d_out + o) * dk1..(r * d_out + o + 1) * dk1];
                    let change: f64 = members
                        .iter()
                        .map(|&e| {
                            let (j, i) = (e / dk, e % dk);
                            row[j] * layer.weight[e] as f64 * (acts[*k][r * dk + i] - b[r * dk + i])
                        })
                        .sum();
                    s += change.abs();
                }
            }
            s / n as f64
        })
        .collect())
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
/// full model's outputs `full` (`n x d_out` each) over the columns `outputs`.
pub(crate) fn metric(y: &[f64], full: &[f64], d_out: usize, outputs: &[usize]) -> f64 {
    let n = y.len() / d_out.max(1);
    let mut s = 0.0;
    for r in 0..n {
        for &o in outputs {
            let d = y[r * d_out + o] - full[r * d_out + o];
            s += d * d;
        }
    }
    s / (n * outputs.len()).max(1) as f64
}

/// What the selecting methods measure against: the full model's outputs on `x`, and the
/// metric (over `outputs`) of the fully ablated model (every edge carrying its baseline).
pub(crate) fn reference(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    outputs: &[usize],
) -> Result<(Vec<f64>, f64)> {
    let full = forward_ablated(model, x, &EdgeMask::all(model, true), base)?;
    let none = metric(
        &forward_ablated(model, x, &EdgeMask::all(model, false), base)?,
        &full,
        model.d_out(),
        outputs,
    );
    Ok((full, none))
}

/// ACDC over the ladder `taus`: per item, the number of thresholds whose circuit keeps it.
fn acdc(
    model: &RuntimeModel,
    items: &Items,
    x: &[f64],
    base: &Baselines,
    taus: &[f64],
    outputs: &[usize],
) -> Result<Vec<f64>> {
    let (full, none) = reference(model, x, base, outputs)?;
    let mut counts = vec![0.0; items.len()];
    for &tau in taus {
        let kept = acdc_items(model, items, x, base, (&full, outputs), tau * none)?;
        for (c, k) in counts.iter_mut().zip(kept) {
            *c += f64::from(u8::from(k));
        }
    }
    Ok(counts)
}

/// One ACDC pass over every model edge (each an item of its own) and every output: the
/// circuit's edge mask.
pub fn acdc_circuit(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    full: &[f64],
    threshold: f64,
) -> Result<EdgeMask> {
    let items = Items::per_edge(model);
    let outputs: Vec<usize> = (0..model.d_out()).collect();
    let kept = acdc_items(model, &items, x, base, (full, &outputs), threshold)?;
    Ok(items.mask(model, |t| kept[t]))
}

/// One ACDC pass: items from the outputs back ([`Items::from_outputs_back`]); an item is
/// removed for good when that raises the metric (over `outputs`, against the full model's
/// outputs `full`) by less than `threshold`. Each trial changes the pre-activations of the one
/// layer the item's edges enter and reruns only the layers after it (the layers before are
/// the current circuit's, kept). Returns, per item, whether the circuit keeps it.
pub fn acdc_items(
    model: &RuntimeModel,
    items: &Items,
    x: &[f64],
    base: &Baselines,
    (full, outputs): (&[f64], &[usize]),
    threshold: f64,
) -> Result<Vec<bool>> {
    let n = model.check_input(x)?;
    let n_layers = model.layers.len();
    let d_out = model.d_out();
    let mut keep = vec![true; items.len()];
    // Each model edge's mask: 1 kept, 0 removed.
    let mut mask: Vec<Vec<f64>> = model
        .layers
        .iter()
        .map(|l| vec![1.0; l.d_in * l.d_out])
        .collect();
    let masked = Masked::new(model, base, n);
    // The current circuit's layer inputs `a[k]` and pre-activations `z[k]`.
    let (mut a, mut z) = masked.forward(x, &mask);
    let mut current = metric(&a[n_layers], full, d_out, outputs);
    for t in items.from_outputs_back() {
        let (k, members) = &items.members[t];
        let k = *k;
        let layer = &model.layers[k];
        let (dk, dk1) = (layer.d_in, layer.d_out);
        let b = base.layer(k);
        // The trial: the units the item's edges enter, without them; the later layers rerun.
        let mut zk = z[k].clone();
        let mut h = a[k + 1].clone();
        let mut touched = Vec::new();
        for &e in members {
            let (j, i) = (e / dk, e % dk);
            let w = layer.weight[e] as f64;
            for r in 0..n {
                zk[r * dk1 + j] -= w * (a[k][r * dk + i] - b[r * dk + i]);
            }
            touched.push(j);
        }
        touched.sort_unstable();
        touched.dedup();
        for &j in &touched {
            for r in 0..n {
                h[r * dk1 + j] = layer.activation.apply_f64(zk[r * dk1 + j]);
            }
        }
        let mut later = vec![(zk, h)];
        for (l, ml) in mask.iter().enumerate().skip(k + 1) {
            let zl = masked.pre(l, &later.last().expect("layer").1, ml);
            let hl = zl
                .iter()
                .map(|&v| model.layers[l].activation.apply_f64(v))
                .collect();
            later.push((zl, hl));
        }
        let m = metric(&later.last().expect("output").1, full, d_out, outputs);
        if m - current < threshold {
            keep[t] = false;
            for &e in members {
                mask[k][e] = 0.0;
            }
            current = m;
            for (off, (zl, hl)) in later.into_iter().enumerate() {
                z[k + off] = zl;
                a[k + off + 1] = hl;
            }
        }
    }
    Ok(keep)
}
