//! One evaluation of a model's graph, its figures as a report a person reads, and the
//! structure figures that emergence follows over checkpoints.

use super::ablation::{Ablation, Baselines};
use super::{
    circuit_auc, disentanglement, faithfulness, interventions, Disentanglement, Faithfulness,
    Intervention, CHANCE_DRAWS, FRACTIONS, MIN_GAIN,
};
use crate::data::TaskData;
use crate::graph::{build, CircuitGraph, GraphSpec, Node};
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::probe::census::{census, CensusConfig};
use crate::probe::jacobian::{output_jacobians, Reuse};
use crate::Result;

/// Everything `circuitscope eval` measures on one model.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// The graph that was evaluated.
    pub graph: CircuitGraph,
    /// Per task, AUC of circuit recovery against a planted model's blocks (planted presets).
    pub planted_auc: Option<Vec<f64>>,
    /// Per task, AUC on the first layer, where the input-to-task truth is known.
    pub first_layer_auc: Vec<f64>,
    pub faithfulness: Faithfulness,
    pub disentanglement: Disentanglement,
    pub interventions: Vec<Intervention>,
    pub spearman: f64,
    /// The model's structure figures, in the order of [`STRUCTURE`].
    pub structure: [f64; 7],
}

/// Builds the graph of `model` on `data`'s validation split (`spec`), then measures
/// faithfulness under `kind`, disentanglement and interventions there; `planted` gives, for a
/// planted network, the task block of every unit of every layer (the truth for circuit
/// recovery).
pub fn evaluate(
    model: &RuntimeModel,
    data: &TaskData,
    spec: &Valid<GraphSpec>,
    kind: Ablation,
    planted: Option<&[Vec<usize>]>,
) -> Result<EvalReport> {
    let g = build(model, &data.val, &data.tasks, spec)?;
    let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
    let base = Baselines::new(model, &x, kind, spec.seed)?;
    let f = faithfulness(
        model,
        &g,
        &data.val,
        &data.tasks,
        &base,
        &FRACTIONS,
        CHANCE_DRAWS,
    )?;
    let d = disentanglement(&g)?;
    let (iv, rho) = interventions(model, &g, &data.val, &data.tasks, &base)?;
    // Planted: every unit at both ends lies in the task's block and fires on some example
    // (a unit dead on the whole data set computes nothing, for any task). First layer (any
    // model): the edge leaves an input the task reads.
    let trace = model.trace(&x)?;
    let live = |layer: usize, u: usize| {
        if layer == 0 || layer == model.layers.len() {
            return true;
        }
        let d = model.layers[layer - 1].d_out;
        (0..trace.n).any(|i| trace.pre[layer - 1][i * d + u] > 0.0)
    };
    let planted_auc = planted.map(|blocks| {
        let in_block = |n: &Node, t: usize| {
            n.units
                .iter()
                .all(|&u| blocks[n.layer][u] == t && live(n.layer, u))
        };
        circuit_auc(&g, 0..model.layers.len(), &|src, dst, t| {
            in_block(src, t) && in_block(dst, t)
        })
    });
    let first_layer_auc = circuit_auc(&g, 0..1, &|src, _, t| {
        src.units
            .iter()
            .all(|&u| data.tasks.tasks[t].inputs.contains(&u))
    });
    let jac = output_jacobians(model, &trace, Reuse::Patterns);
    let c = census(model, &trace, &jac, &CensusConfig::default());
    let structure = structure_figures(&f, &d, &g, c[0].gradients_combined);
    Ok(EvalReport {
        graph: g,
        planted_auc,
        first_layer_auc,
        faithfulness: f,
        disentanglement: d,
        interventions: iv,
        spearman: rho,
        structure,
    })
}

/// The structure figures of `model` (one checkpoint of a run): its graph's faithfulness (no
/// chance curve), disentanglement and modularity, and the census's distinct input gradients.
pub fn structure_at(
    model: &RuntimeModel,
    data: &TaskData,
    spec: &Valid<GraphSpec>,
    kind: Ablation,
) -> Result<[f64; 7]> {
    let g = build(model, &data.val, &data.tasks, spec)?;
    let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
    let base = Baselines::new(model, &x, kind, spec.seed)?;
    // The emergence figures do not use the chance curve: no random draws.
    let f = faithfulness(model, &g, &data.val, &data.tasks, &base, &FRACTIONS, 0)?;
    let d = disentanglement(&g)?;
    let trace = model.trace(&x)?;
    let c = census(
        model,
        &trace,
        &output_jacobians(model, &trace, Reuse::Patterns),
        &CensusConfig::default(),
    );
    Ok(structure_figures(&f, &d, &g, c[0].gradients_combined))
}

/// A faithfulness curve as one line of block characters (`·` where a value is undefined).
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| {
            if v.is_nan() {
                '·'
            } else {
                BARS[(v.clamp(0.0, 1.0) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// The headline figures as a few lines, with the curve as a sparkline.
pub fn summary(r: &EvalReport) -> String {
    let f = &r.faithfulness;
    let spark = sparkline(&f.points.iter().map(|p| p.faithfulness).collect::<Vec<_>>());
    let mut s = format!(
        "faithfulness ({:?} ablation) over {:?} of edges kept: {spark}\n",
        f.ablation,
        f.points.iter().map(|p| p.kept).collect::<Vec<_>>()
    );
    if !f.defined {
        s.push_str(&format!(
            "  undefined: the model removes {:+.1}% of its fully ablated self's loss (full {:.3e}, none {:.3e}; at least {:.0}% needed), so there is no computation for a graph to be faithful to\n",
            100.0 * f.gain,
            f.m_full,
            f.m_none,
            100.0 * MIN_GAIN
        ));
    } else {
        s.push_str(&format!(
            "  CPR {:.4}  CMD {:.4}  random edges' CPR {:.4}  (loss full {:.3e}, none {:.3e})\n",
            f.cpr, f.cmd, f.chance_cpr, f.m_full, f.m_none
        ));
        for p in &f.points {
            s.push_str(&format!(
                "  {:>6.1}% kept: faithfulness {:.4}  (random edges {:.4})\n",
                100.0 * p.kept,
                p.faithfulness,
                p.chance
            ));
        }
    }
    let d = &r.disentanglement;
    s.push_str(&format!(
        "communities vs task labels ({} nodes): ARI {:.4}  NMI {:.4}  purity {:.4} ({} communities)\n",
        d.nodes, d.ari, d.nmi, d.purity, d.communities
    ));
    let k = &d.at_task_count;
    let from = if k.resolution == 1.0 {
        String::new()
    } else {
        format!(" (from Leiden at resolution {:.3})", k.resolution)
    };
    s.push_str(&format!(
        "  merged to as many communities as tasks{from}: ARI {:.4}  NMI {:.4}  purity {:.4} ({} communities)\n",
        k.ari, k.nmi, k.purity, k.communities
    ));
    s.push_str(&format!(
        "interventions: Spearman ρ (predicted vs observed) {:.4}\n",
        r.spearman
    ));
    let aucs = |a: &[f64]| {
        a.iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(a) = &r.planted_auc {
        s.push_str(&format!(
            "planted-circuit recovery, ROC AUC per task: {}\n",
            aucs(a)
        ));
    }
    s.push_str(&format!(
        "first-layer circuit recovery, ROC AUC per task: {}\n",
        aucs(&r.first_layer_auc)
    ));
    for i in r
        .interventions
        .iter()
        .filter(|i| i.target.starts_with("task subgraph"))
    {
        s.push_str(&format!(
            "  ablate {:<18} -> {} loss x{:.2}\n",
            i.target, i.task, i.loss_ratio
        ));
    }
    s
}

/// The names of the structure figures, in the order of [`structure_figures`].
pub const STRUCTURE: [&str; 7] = [
    "cpr",
    "faithfulness_at_10pct",
    "ari",
    "nmi",
    "modularity",
    "communities",
    "input_gradients",
];

/// A model's structure figures: CPR, faithfulness at 10% of edges, ARI, NMI, modularity,
/// communities, and the number of distinct input gradients (from the census).
pub fn structure_figures(
    f: &Faithfulness,
    d: &Disentanglement,
    g: &CircuitGraph,
    input_gradients: usize,
) -> [f64; 7] {
    let at10 = f
        .points
        .iter()
        .find(|p| (p.kept - 0.1).abs() < 1e-12)
        .map_or(f64::NAN, |p| p.faithfulness);
    [
        f.cpr,
        at10,
        d.ari,
        d.nmi,
        g.modularity,
        g.communities as f64,
        input_gradients as f64,
    ]
}
