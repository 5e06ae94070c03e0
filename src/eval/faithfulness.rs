//! Faithfulness versus sparsity: keep the top-k edges of a graph, ablate every other edge in
//! the real forward pass, score the loss between the model's and its fully ablated self's, for
//! a sweep of k, beside random edge sets of the same size.

use super::ablation::{forward_ablated, Baselines, EdgeMask};
use super::loss::task_losses;
use super::{check_ablatable, mark};
use crate::data::{Dataset, TaskStructure};
use crate::graph::CircuitGraph;
use crate::model::RuntimeModel;
use crate::numeric::score;
use crate::{invalid, Result};
use petgraph::graph::EdgeIndex;
use rand::{seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};

/// The default sweep of edge shares kept.
pub const FRACTIONS: [f64; 12] = [
    0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0,
];

/// The least share of its fully ablated self's loss a model must remove,
/// `(m(none) − m(full)) / m(none)`, for faithfulness to be defined. Below it the denominator
/// `m(full) − m(none)` is of the size of sampling noise (untrained `products` models: −1.9% to
/// +5.2% under the three ablations) and the normalised score swings without meaning (values of
/// ±20 were seen).
pub const MIN_GAIN: f64 = 0.1;

/// Random edge sets drawn per point of the chance curve in `eval`.
pub const CHANCE_DRAWS: usize = 8;

/// One point of a faithfulness curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaithPoint {
    /// Share of the graph's edges kept.
    pub kept: f64,
    pub loss: f64,
    pub task_losses: Vec<f64>,
    /// NaN where the curve is undefined (see [`Faithfulness::defined`]).
    pub faithfulness: f64,
    /// Mean faithfulness of random edge sets of the same size (NaN where undefined or not
    /// measured).
    pub chance: f64,
}

/// A faithfulness-versus-sparsity curve and its areas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faithfulness {
    pub ablation: super::ablation::Ablation,
    pub m_full: f64,
    pub m_none: f64,
    /// `(m(none) − m(full)) / m(none)`: how much of its ablated self's loss the model removes.
    pub gain: f64,
    /// Whether `gain` reaches [`MIN_GAIN`]; if not, every score below is NaN.
    pub defined: bool,
    pub points: Vec<FaithPoint>,
    /// Area under the curve (1 for a graph whose every prefix is fully faithful).
    pub cpr: f64,
    /// Area between the curve and 1 (0 is best).
    pub cmd: f64,
    /// Area under the chance curve.
    pub chance_cpr: f64,
    /// Area between the chance curve and 1.
    pub chance_cmd: f64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Sweeps the share of edges kept over `fractions` (sorted ascending, within [0, 1]), the
/// graph's edges ranked by mean |value|, scoring `chance_draws` random edge sets of each size
/// beside the ranked one (0: no chance curve).
pub fn faithfulness(
    model: &RuntimeModel,
    g: &CircuitGraph,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
    fractions: &[f64],
    chance_draws: usize,
) -> Result<Faithfulness> {
    faithfulness_of(
        model,
        g,
        data,
        tasks,
        base,
        &by_mean_abs(g),
        fractions,
        chance_draws,
    )
}

/// The graph's edges by mean |value|, largest first.
fn by_mean_abs(g: &CircuitGraph) -> Vec<EdgeIndex> {
    let mut ranked: Vec<EdgeIndex> = g.graph.edge_indices().collect();
    ranked.sort_by(|&a, &b| g.graph[b].mean_abs.total_cmp(&g.graph[a].mean_abs));
    ranked
}

/// [`faithfulness()`] for the graph's edges in the order `ranked` (every edge once, best
/// first): what a circuit-discovery method's ranking is scored by.
#[allow(clippy::too_many_arguments)]
pub fn faithfulness_of(
    model: &RuntimeModel,
    g: &CircuitGraph,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
    ranked: &[EdgeIndex],
    fractions: &[f64],
    chance_draws: usize,
) -> Result<Faithfulness> {
    check_ablatable(g)?;
    if ranked.len() != g.graph.edge_count() {
        invalid!(
            "faithfulness: a ranking of {} edges for a graph of {}",
            ranked.len(),
            g.graph.edge_count()
        );
    }
    // The random edge sets do not depend on the ranking scored: every method's curve has the
    // same chance curve beside it.
    let keep = |edges: &[EdgeIndex]| {
        let mut mask = EdgeMask::all(model, false);
        mark(g, edges, &mut mask, true);
        mask
    };
    sweep(
        model,
        data,
        tasks,
        base,
        ranked,
        by_mean_abs(g),
        &keep,
        fractions,
        chance_draws,
    )
}

/// [`faithfulness()`] over hidden nodes: each a group of hidden neurons (one neuron, or an
/// ROI) kept with all its edges, or ablated with all of them (its activations replaced by their
/// baselines wherever they are read), in the order `ranked` (best first; the groups cover every
/// hidden neuron `(layer, unit)` once, layer 1 the first hidden layer); x is the share of
/// hidden nodes kept.
pub fn faithfulness_nodes(
    model: &RuntimeModel,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
    ranked: &[Vec<(usize, usize)>],
    fractions: &[f64],
    chance_draws: usize,
) -> Result<Faithfulness> {
    check_cover(model, ranked)?;
    let order: Vec<usize> = (0..ranked.len()).collect();
    // The chance draws shuffle the nodes from network order, whatever the ranking: every
    // method's curve has the same chance curve beside it.
    let mut network_order = order.clone();
    network_order.sort_by_key(|&t| ranked[t].iter().min().copied());
    let keep = |nodes: &[usize]| {
        let units: Vec<(usize, usize)> = nodes
            .iter()
            .flat_map(|&t| ranked[t].iter().copied())
            .collect();
        node_mask(model, &units)
    };
    sweep(
        model,
        data,
        tasks,
        base,
        &order,
        network_order,
        &keep,
        fractions,
        chance_draws,
    )
}

/// Refuses node groups that do not cover every hidden neuron exactly once.
fn check_cover(model: &RuntimeModel, groups: &[Vec<(usize, usize)>]) -> Result<()> {
    let mut units: Vec<(usize, usize)> = groups.iter().flatten().copied().collect();
    units.sort_unstable();
    if units != hidden_units(model) {
        invalid!(
            "faithfulness: {} nodes of {} neurons do not cover the network's {} hidden neurons once each",
            groups.len(),
            units.len(),
            hidden_units(model).len()
        );
    }
    Ok(())
}

/// Every hidden neuron, `(layer, unit)`, layer 1 the first hidden layer.
pub fn hidden_units(model: &RuntimeModel) -> Vec<(usize, usize)> {
    (1..model.layers.len())
        .flat_map(|l| (0..model.layers[l].d_in).map(move |u| (l, u)))
        .collect()
}

/// The edge mask that keeps the neurons `kept` (and the inputs) and ablates every other hidden
/// neuron: all the edges it feeds.
pub fn node_mask(model: &RuntimeModel, kept: &[(usize, usize)]) -> EdgeMask {
    let mut mask = EdgeMask::all(model, true);
    let keep: std::collections::HashSet<&(usize, usize)> = kept.iter().collect();
    for (l, u) in hidden_units(model) {
        if !keep.contains(&(l, u)) {
            let d = model.layers[l].d_in;
            for j in 0..model.layers[l].d_out {
                mask.kept[l][j * d + u] = false;
            }
        }
    }
    mask
}

/// The curve of the items `ranked` (edges or neurons), `keep` turning a set of items into the
/// model's edge mask; chance draws shuffle `start`.
#[allow(clippy::too_many_arguments)]
fn sweep<T: Copy>(
    model: &RuntimeModel,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
    ranked: &[T],
    mut shuffled: Vec<T>,
    keep: &dyn Fn(&[T]) -> EdgeMask,
    fractions: &[f64],
    chance_draws: usize,
) -> Result<Faithfulness> {
    if fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
        invalid!("faithfulness: edge shares must lie in [0, 1]");
    }
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let loss_of = |mask: &EdgeMask| -> Result<(f64, Vec<f64>)> {
        let out = forward_ablated(model, &x, mask, base)?;
        let t = task_losses(&out, data, tasks);
        Ok((mean(&t), t))
    };
    let (m_full, _) = loss_of(&EdgeMask::all(model, true))?;
    let (m_none, _) = loss_of(&EdgeMask::all(model, false))?;
    let gain = if m_none > 0.0 {
        (m_none - m_full) / m_none
    } else {
        0.0
    };
    let defined = gain >= MIN_GAIN;
    let score = |loss: f64| {
        if defined {
            (loss - m_none) / (m_full - m_none)
        } else {
            f64::NAN
        }
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut points = Vec::new();
    for &f in fractions {
        let k = top(ranked.len(), f);
        let (loss, task_losses) = loss_of(&keep(&ranked[..k]))?;
        let chance = if !defined || chance_draws == 0 {
            f64::NAN
        } else if k == 0 || k == ranked.len() {
            score(loss)
        } else {
            let mut sum = 0.0;
            for _ in 0..chance_draws {
                shuffled.shuffle(&mut rng);
                sum += score(loss_of(&keep(&shuffled[..k]))?.0);
            }
            sum / chance_draws as f64
        };
        points.push(FaithPoint {
            kept: f,
            loss,
            task_losses,
            faithfulness: score(loss),
            chance,
        });
    }
    let area = |v: &dyn Fn(&FaithPoint) -> f64| {
        score::area(&points.iter().map(|p| (p.kept, v(p))).collect::<Vec<_>>())
    };
    Ok(Faithfulness {
        ablation: base.kind,
        m_full,
        m_none,
        gain,
        defined,
        cpr: area(&|p| p.faithfulness),
        cmd: area(&|p| (1.0 - p.faithfulness).abs()),
        chance_cpr: area(&|p| p.chance),
        chance_cmd: area(&|p| (1.0 - p.chance).abs()),
        points,
    })
}

/// Completeness of a circuit: the faithfulness score of the model with only the top `share`
/// of `ranked` removed (every other edge kept). 0 is ideal: the circuit was all the model
/// used; NaN where `f` is undefined.
#[allow(clippy::too_many_arguments)]
pub fn completeness(
    model: &RuntimeModel,
    g: &CircuitGraph,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
    f: &Faithfulness,
    ranked: &[EdgeIndex],
    share: f64,
) -> Result<f64> {
    let k = top(ranked.len(), share);
    let mut mask = EdgeMask::all(model, true);
    mark(g, &ranked[..k], &mut mask, false);
    score_of(model, data, tasks, base, f, &mask)
}

/// [`completeness`] for a circuit of hidden nodes: the score of the model with the top
/// `share` of the nodes `ranked` (groups of hidden neurons, as [`faithfulness_nodes`]) ablated,
/// every other node kept.
pub fn completeness_nodes(
    model: &RuntimeModel,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
    f: &Faithfulness,
    ranked: &[Vec<(usize, usize)>],
    share: f64,
) -> Result<f64> {
    check_cover(model, ranked)?;
    let k = top(ranked.len(), share);
    let rest: Vec<(usize, usize)> = ranked[k..].iter().flatten().copied().collect();
    score_of(model, data, tasks, base, f, &node_mask(model, &rest))
}

/// How many of `n` items the share `share` keeps: rounded up, a share that is `k / n` in
/// floating point giving `k`.
pub fn top(n: usize, share: f64) -> usize {
    ((share * n as f64 - 1e-9).ceil().max(0.0) as usize).min(n)
}

/// The faithfulness score of the model run with `mask`, on `f`'s scale (NaN where `f` is
/// undefined).
fn score_of(
    model: &RuntimeModel,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
    f: &Faithfulness,
    mask: &EdgeMask,
) -> Result<f64> {
    if !f.defined {
        return Ok(f64::NAN);
    }
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let out = forward_ablated(model, &x, mask, base)?;
    let loss = mean(&task_losses(&out, data, tasks));
    Ok((loss - f.m_none) / (f.m_full - f.m_none))
}
