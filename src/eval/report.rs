//! One evaluation of a model's graph, its figures as a report a person reads, and the
//! structure figures that emergence follows over checkpoints.

use super::ablation::{Ablation, Baselines};
use super::chance::{self, Chance};
use super::recovery::node_auc;
use super::stability::{stability, Stability};
use super::{
    circuit_auc, disentanglement, faithfulness, interventions, learned, Disentanglement,
    Faithfulness, Interventions, Learned, CHANCE_DRAWS, FRACTIONS, MIN_GAIN,
};
use crate::data::TaskData;
use crate::graph::build::EXAMPLE_CHUNK;
use crate::graph::{build, CircuitGraph, GraphSpec, Node};
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::probe::census::{census_streamed, CensusConfig};
use crate::Result;

/// Everything `circuitscope eval` measures on one model.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// The graph that was evaluated.
    pub graph: CircuitGraph,
    /// Whether the model learned its tasks on held-out data: the gate of every figure.
    pub learned: Learned,
    /// The figures; `None` when the model has not learned (every figure is undefined).
    pub figures: Option<Figures>,
}

/// The figures of a model that learned its tasks, each with its chance level.
#[derive(Debug, Clone)]
pub struct Figures {
    pub faithfulness: Faithfulness,
    pub disentanglement: Disentanglement,
    pub stability: Stability,
    /// Modularity of the graph's communities on graphs with shuffled weights.
    pub modularity_chance: Chance,
    pub interventions: Interventions,
    /// Per task, AUC of circuit recovery against a planted model's blocks (planted presets).
    pub planted_auc: Option<Vec<f64>>,
    /// Per task, AUC of the first layer's edges (mean |IG| per task) against the known
    /// inputs of each task.
    pub first_layer_auc: Vec<f64>,
    /// Per task, AUC of the input nodes' own IG against the same truth: paths that cancel
    /// cancel here, so an input a task ignores scores about 0 however much its edges carry.
    pub input_auc: Vec<f64>,
    /// The structure figures, in the order of [`STRUCTURE`].
    pub structure: [f64; 7],
}

impl EvalReport {
    /// The structure figures (all NaN when the model has not learned).
    pub fn structure(&self) -> [f64; 7] {
        self.figures.as_ref().map_or([f64::NAN; 7], |f| f.structure)
    }
}

/// Builds the graph of `model` on `data`'s validation split (`spec`), then, when the model has
/// learned its tasks there, measures faithfulness under `kind`, disentanglement, stability and
/// interventions, each beside its chance level. `planted` gives, for a planted network, the
/// task block of every unit of every layer (the truth for circuit recovery).
pub fn evaluate(
    model: &RuntimeModel,
    data: &TaskData,
    spec: &Valid<GraphSpec>,
    kind: Ablation,
    planted: Option<&[Vec<usize>]>,
) -> Result<EvalReport> {
    let g = build(model, &data.val, &data.tasks, spec)?;
    let verdict = learned(model, &data.val, &data.tasks)?;
    if !verdict.learned {
        return Ok(EvalReport {
            graph: g,
            learned: verdict,
            figures: None,
        });
    }
    let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
    let base = Baselines::streamed(model, &x, kind, spec.seed)?;
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
    let iv = interventions(model, &g, &data.val, &data.tasks, &base)?;
    // Planted: every unit at both ends lies in the task's block and fires on some example
    // (a unit dead on the whole data set computes nothing, for any task). First layer (any
    // model): the edge leaves an input the task reads.
    // Liveness is read only to score a planted network's circuits.
    let alive = if planted.is_some() {
        live_units(model, &x)?
    } else {
        vec![]
    };
    let live = |layer: usize, u: usize| {
        if layer == 0 || layer == model.layers.len() {
            return true;
        }
        alive[layer - 1][u]
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
    let reads = |n: &Node, t: usize| {
        n.units
            .iter()
            .all(|&u| data.tasks.tasks[t].inputs.contains(&u))
    };
    let first_layer_auc = circuit_auc(&g, 0..1, &|src, _, t| reads(src, t));
    let input_auc = node_auc(&g, 0, &reads);
    let c = census_streamed(model, &x, &CensusConfig::default(), EXAMPLE_CHUNK)?;
    let structure = structure_figures(&f, &d, &g, c[0].gradients_combined);
    Ok(EvalReport {
        figures: Some(Figures {
            stability: stability(model, &data.val, &data.tasks, spec, &g)?,
            modularity_chance: chance::modularity(&g)?,
            faithfulness: f,
            disentanglement: d,
            interventions: iv,
            planted_auc,
            first_layer_auc,
            input_auc,
            structure,
        }),
        graph: g,
        learned: verdict,
    })
}

/// Per hidden layer, whether each unit's pre-activation is positive on some example of `x`,
/// streamed over chunks of examples.
fn live_units(model: &RuntimeModel, x: &[f64]) -> Result<Vec<Vec<bool>>> {
    let n = model.check_input(x)?;
    let d_in = model.layers[0].d_in;
    let mut alive: Vec<Vec<bool>> = model.layers[..model.layers.len() - 1]
        .iter()
        .map(|l| vec![false; l.d_out])
        .collect();
    for start in (0..n).step_by(EXAMPLE_CHUNK) {
        let end = (start + EXAMPLE_CHUNK).min(n);
        let trace = model.trace(&x[start * d_in..end * d_in])?;
        for (k, a) in alive.iter_mut().enumerate() {
            let d = a.len();
            for i in 0..trace.n {
                for (u, on) in a.iter_mut().enumerate() {
                    *on |= trace.pre[k][i * d + u] > 0.0;
                }
            }
        }
    }
    Ok(alive)
}

/// What live analysis measures on one checkpoint: its graph, the learned verdict and, once the
/// model has learned, the faithfulness curve (no chance curve: no random draws), the
/// interventions and the structure figures.
#[derive(Debug, Clone)]
pub struct CheckpointFigures {
    pub graph: CircuitGraph,
    pub learned: Learned,
    /// `None` while the model has not learned its tasks.
    pub faithfulness: Option<Faithfulness>,
    pub interventions: Option<Interventions>,
    /// In the order of [`STRUCTURE`]; all NaN while the model has not learned.
    pub structure: [f64; 7],
    /// With `with_chance`: the chance level of CPR and of faithfulness at 10% (random edge
    /// sets of the same sizes), of ARI (label permutations) and of modularity (the graph with
    /// its weights shuffled within layers); NaN where undefined.
    pub chance: Option<ChanceLevels>,
}

/// The chance levels beside live analysis's headline figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChanceLevels {
    pub cpr: f64,
    pub faithfulness_at_10pct: f64,
    pub ari: f64,
    pub modularity: f64,
}

/// Analyses one checkpoint of a run (`model`) on `data`'s validation split; interventions only
/// when `with_interventions`, chance levels only when `with_chance`.
pub fn analyse_checkpoint(
    model: &RuntimeModel,
    data: &TaskData,
    spec: &Valid<GraphSpec>,
    kind: Ablation,
    with_interventions: bool,
    with_chance: bool,
) -> Result<CheckpointFigures> {
    let verdict = learned(model, &data.val, &data.tasks)?;
    let g = build(model, &data.val, &data.tasks, spec)?;
    if !verdict.learned {
        return Ok(CheckpointFigures {
            graph: g,
            learned: verdict,
            faithfulness: None,
            interventions: None,
            structure: [f64::NAN; 7],
            chance: None,
        });
    }
    let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
    let base = Baselines::streamed(model, &x, kind, spec.seed)?;
    let draws = if with_chance { CHANCE_DRAWS } else { 0 };
    let f = faithfulness(model, &g, &data.val, &data.tasks, &base, &FRACTIONS, draws)?;
    let d = disentanglement(&g)?;
    let iv = if with_interventions {
        Some(interventions(model, &g, &data.val, &data.tasks, &base)?)
    } else {
        None
    };
    let c = census_streamed(model, &x, &CensusConfig::default(), EXAMPLE_CHUNK)?;
    let structure = structure_figures(&f, &d, &g, c[0].gradients_combined);
    let chance = if with_chance {
        let at_10 = f
            .points
            .iter()
            .find(|p| (p.kept - 0.1).abs() < 1e-12)
            .map_or(f64::NAN, |p| p.chance);
        Some(ChanceLevels {
            cpr: if f.defined { f.chance_cpr } else { f64::NAN },
            faithfulness_at_10pct: at_10,
            ari: d.chance[0].mean,
            modularity: chance::modularity(&g)?.mean,
        })
    } else {
        None
    };
    Ok(CheckpointFigures {
        graph: g,
        learned: verdict,
        faithfulness: Some(f),
        interventions: iv,
        structure,
        chance,
    })
}

/// The structure figures of `model` (one checkpoint of a run): its graph's faithfulness (no
/// chance curve), disentanglement and modularity, and the census's distinct input gradients;
/// all NaN while the model has not learned its tasks.
pub fn structure_at(
    model: &RuntimeModel,
    data: &TaskData,
    spec: &Valid<GraphSpec>,
    kind: Ablation,
) -> Result<[f64; 7]> {
    if !learned(model, &data.val, &data.tasks)?.learned {
        return Ok([f64::NAN; 7]);
    }
    Ok(analyse_checkpoint(model, data, spec, kind, false, false)?.structure)
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

/// `x.xxxx (chance y.yyyy)`, or `undefined (why)`.
fn with_chance(value: f64, chance: f64) -> String {
    if value.is_nan() {
        "undefined".into()
    } else {
        format!("{value:.4} (chance {chance:.4})")
    }
}

/// ROC AUCs, `undefined` where a task's truth has no negatives (or no positives).
fn aucs(a: &[f64]) -> String {
    a.iter()
        .map(|v| {
            if v.is_nan() {
                "undefined".to_string()
            } else {
                format!("{v:.4}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The headline figures as a few lines, with the curve as a sparkline; every structure figure
/// with its chance level, and the communities with their stability.
pub fn summary(r: &EvalReport) -> String {
    let mut s = format!(
        "model: {}: {}\n",
        if r.learned.learned {
            "learned"
        } else {
            "not learned"
        },
        r.learned.reason()
    );
    let Some(fig) = &r.figures else {
        let why = format!("undefined (not learned: {})", r.learned.reason());
        for name in [
            "faithfulness curve, CPR and CMD",
            "ARI, NMI and purity of the communities",
            "ARI, NMI and purity merged to as many communities as tasks",
            "stability of the communities",
            "modularity",
            "intervention Spearman ρ",
            "circuit recovery ROC AUC",
            "loss ratios",
        ] {
            s.push_str(&format!("{name}: {why}; chance: {why}\n"));
        }
        return s;
    };
    let f = &fig.faithfulness;
    let spark = sparkline(&f.points.iter().map(|p| p.faithfulness).collect::<Vec<_>>());
    s.push_str(&format!(
        "faithfulness ({:?} ablation) over {:?} of edges kept: {spark}\n",
        f.ablation,
        f.points.iter().map(|p| p.kept).collect::<Vec<_>>()
    ));
    if !f.defined {
        s.push_str(&format!(
            "  undefined: the model removes {:+.1}% of its fully ablated self's loss (full {:.3e}, none {:.3e}; at least {:.0}% needed), so there is no computation for a graph to be faithful to; chance: undefined\n",
            100.0 * f.gain,
            f.m_full,
            f.m_none,
            100.0 * MIN_GAIN
        ));
    } else {
        s.push_str(&format!(
            "  CPR {}  CMD {}  (loss full {:.3e}, none {:.3e}; chance: random edge sets of the same size)\n",
            with_chance(f.cpr, f.chance_cpr),
            with_chance(f.cmd, f.chance_cmd),
            f.m_full,
            f.m_none
        ));
        for p in &f.points {
            s.push_str(&format!(
                "  {:>6.1}% kept: faithfulness {}\n",
                100.0 * p.kept,
                with_chance(p.faithfulness, p.chance)
            ));
        }
    }
    let d = &fig.disentanglement;
    let k = &d.at_task_count;
    if r.graph.tasks.len() < 2 {
        s.push_str("communities vs task labels: undefined (one task: nothing to disentangle); chance: undefined\n");
    } else {
        s.push_str(&format!(
            "communities vs task labels ({} labelled nodes, {} communities; stability {:.4}): ARI {}  NMI {}  purity {}\n",
            d.nodes,
            d.communities,
            fig.stability.communities,
            with_chance(d.ari, d.chance[0].mean),
            with_chance(d.nmi, d.chance[1].mean),
            with_chance(d.purity, d.chance[2].mean)
        ));
        let from = if k.resolution == 1.0 {
            String::new()
        } else {
            format!(", from Leiden at resolution {:.3}", k.resolution)
        };
        s.push_str(&format!(
            "  merged to as many communities as tasks ({} communities{from}; stability {:.4}): ARI {}  NMI {}  purity {}\n",
            k.communities,
            fig.stability.at_task_count,
            with_chance(k.ari, k.chance[0].mean),
            with_chance(k.nmi, k.chance[1].mean),
            with_chance(k.purity, k.chance[2].mean)
        ));
    }
    s.push_str(&format!(
        "  stability: the mean adjusted Rand index between the communities found with 3 Leiden seeds and with the hidden units permuted\nmodularity {:.4} (chance {:.4}: each layer pair's weights shuffled)\n",
        r.graph.modularity, fig.modularity_chance.mean
    ));
    let iv = &fig.interventions;
    s.push_str(&format!(
        "interventions: Spearman ρ (predicted vs observed) {} over {} points, 95% of shuffles below {:.4}{}\n",
        with_chance(iv.rho, iv.chance.mean),
        iv.points.len(),
        iv.chance.p95,
        if iv.left_out.is_empty() {
            String::new()
        } else {
            format!(
                "; {} left out (their edges carry no attribution: {})",
                iv.left_out.len(),
                first_of(&iv.left_out, LISTED)
            )
        }
    ));
    if let Some(a) = &fig.planted_auc {
        s.push_str(&format!(
            "planted-circuit recovery, ROC AUC per task: {} (chance 0.5)\n",
            aucs(a)
        ));
    }
    s.push_str(&format!(
        "first-layer circuit recovery, ROC AUC per task: edges {}; inputs by their own IG {} (chance 0.5)\n",
        aucs(&fig.first_layer_auc),
        aucs(&fig.input_auc)
    ));
    // Each input's own IG as a share of the task's input attribution (paths that cancel
    // cancel here, unlike the sum of its edges' |IG|).
    let inputs: Vec<&crate::graph::Node> = r
        .graph
        .graph
        .node_weights()
        .filter(|n| n.layer == 0 && n.units.len() == 1)
        .collect();
    let shares: Vec<String> = (0..r.graph.tasks.len())
        .map(|t| {
            let total: f64 = inputs.iter().filter_map(|n| n.attribution.get(t)).sum();
            let mut each: Vec<(usize, f64)> = inputs
                .iter()
                .map(|n| {
                    let v = n.attribution.get(t).copied().unwrap_or(0.0);
                    (n.units[0], if total > 0.0 { v / total } else { 0.0 })
                })
                .collect();
            // Many inputs (an image): the largest shares, said so.
            let note = if each.len() > LISTED {
                each.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let n = each.len();
                each.truncate(LISTED);
                format!(" (the {LISTED} largest of {n} inputs)")
            } else {
                String::new()
            };
            let each: Vec<String> = each.iter().map(|(u, v)| format!("{u} {v:.4}")).collect();
            format!("{}: {}{note}", r.graph.tasks[t], each.join(" "))
        })
        .collect();
    s.push_str(&format!(
        "  inputs' own IG, share of each task's input attribution (input: share): {}\n",
        shares.join(" | ")
    ));
    for i in iv
        .points
        .iter()
        .filter(|i| i.target.starts_with("task subgraph"))
    {
        let t = r.graph.tasks.iter().position(|n| *n == i.task).unwrap_or(0);
        s.push_str(&format!(
            "  ablate {:<18} -> {} loss x{:.2} (ceiling x{:.2}: every edge ablated)\n",
            i.target,
            i.task,
            i.loss_ratio,
            iv.ceiling.get(t).copied().unwrap_or(f64::NAN)
        ));
    }
    s
}

/// How many names a report line lists before it counts the rest.
const LISTED: usize = 16;

/// The first `max` of `names`, then how many more there are.
fn first_of(names: &[String], max: usize) -> String {
    if names.len() <= max {
        names.join(", ")
    } else {
        format!(
            "{}, … and {} more",
            names[..max].join(", "),
            names.len() - max
        )
    }
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
/// communities among the nodes that carry attribution (dead units' one-node communities are
/// not counted), and the number of distinct input gradients (from the census).
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
        d.communities as f64,
        input_gradients as f64,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_name_the_first_and_count_the_rest() {
        let names: Vec<String> = (0..20).map(|i| format!("community {i}")).collect();
        assert_eq!(
            first_of(&names[..3], 16),
            "community 0, community 1, community 2"
        );
        assert_eq!(first_of(&names[..16], 16), names[..16].join(", "));
        let long = first_of(&names, 16);
        assert!(long.starts_with("community 0, community 1,"), "{long}");
        assert!(long.ends_with("community 15, … and 4 more"), "{long}");
    }
}
