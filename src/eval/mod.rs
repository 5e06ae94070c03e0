//! Evaluating graphs: is a graph faithful to the model, sparse, and split along the tasks the
//! network really does?
//!
//! - [`faithfulness`]: keep the top-k edges of a graph (by mean |value|), ablate every other
//!   edge in the real forward pass ([`ablation`]), and score `(m(kept) − m(none)) / (m(full) −
//!   m(none))` with the task loss as `m`, for a sweep of k; CPR is the area under that curve and
//!   CMD the area between it and 1 (x = share of edges kept). Beside it, the chance curve: the
//!   same score for random edge sets of the same size. The score is only defined for a model
//!   that does clearly better than its fully ablated self ([`MIN_GAIN`]); an untrained network
//!   does not, and its curve is reported as undefined rather than as noise over a near-zero gap.
//! - [`disentanglement`]: nodes labelled by the task with the largest share of their attribution;
//!   ARI and NMI between those labels and the graph's communities, and again with the
//!   communities merged down to as many as there are tasks (the count, never the labels).
//! - [`interventions`]: ablate each community, and each task's subgraph, and compare the
//!   predicted per-task effect (the attribution the ablated edges carry for that task) with the
//!   observed change in each task's loss: Spearman ρ over all (intervention, task) pairs, and the
//!   selectivity of each task subgraph.
//!
//! Evaluation runs models with edges ablated; it must never change a model's weights.

pub mod ablation;
pub mod atypical;

use crate::data::{Dataset, TaskStructure};
use crate::graph::{CircuitGraph, NodeKind};
use crate::model::RuntimeModel;
use crate::numeric::score;
use crate::{invalid, Result};
use ablation::{forward_ablated, Baselines, EdgeMask};
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

/// Sets every neuron edge covered by the given graph edges to `keep`.
fn mark(g: &CircuitGraph, edges: &[EdgeIndex], mask: &mut EdgeMask, keep: bool) {
    for &e in edges {
        let (a, b) = g.graph.edge_endpoints(e).expect("edge exists");
        let (src, dst) = (&g.graph[a], &g.graph[b]);
        let d_in = g.widths[src.layer];
        for &j in &dst.units {
            for &i in &src.units {
                mask.kept[src.layer][j * d_in + i] = keep;
            }
        }
    }
}

/// Every edge with an end in community `c` (what ablating the community removes).
fn community_edges(g: &CircuitGraph, c: usize) -> Vec<EdgeIndex> {
    g.graph
        .edge_indices()
        .filter(|&e| {
            let (a, b) = g.graph.edge_endpoints(e).expect("edge");
            g.graph[a].community == c || g.graph[b].community == c
        })
        .collect()
}

fn check_ablatable(g: &CircuitGraph) -> Result<()> {
    if g.spec.nodes == NodeKind::Component {
        invalid!("evaluation ablates units; component graphs are read-only views (build a neuron or ROI graph)");
    }
    Ok(())
}

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
    pub ablation: ablation::Ablation,
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
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Sweeps the share of edges kept over `fractions` (sorted ascending, within [0, 1]), scoring
/// `chance_draws` random edge sets of each size beside the ranked one (0: no chance curve).
pub fn faithfulness(
    model: &RuntimeModel,
    g: &CircuitGraph,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
    fractions: &[f64],
    chance_draws: usize,
) -> Result<Faithfulness> {
    check_ablatable(g)?;
    if fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
        invalid!("faithfulness: edge shares must lie in [0, 1]");
    }
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let d_out = model.d_out();
    let loss_of = |mask: &EdgeMask| -> Result<(f64, Vec<f64>)> {
        let out = forward_ablated(model, &x, mask, base)?;
        let t = tasks.mse(&out, &data.y, d_out);
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
    let mut ranked: Vec<EdgeIndex> = g.graph.edge_indices().collect();
    ranked.sort_by(|&a, &b| g.graph[b].mean_abs.total_cmp(&g.graph[a].mean_abs));
    let mut shuffled = ranked.clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut points = Vec::new();
    for &f in fractions {
        let k = ((f * ranked.len() as f64).ceil() as usize).min(ranked.len());
        let mut mask = EdgeMask::all(model, false);
        mark(g, &ranked[..k], &mut mask, true);
        let (loss, task_losses) = loss_of(&mask)?;
        let chance = if !defined || chance_draws == 0 {
            f64::NAN
        } else if k == 0 || k == ranked.len() {
            score(loss)
        } else {
            let mut sum = 0.0;
            for _ in 0..chance_draws {
                shuffled.shuffle(&mut rng);
                let mut mask = EdgeMask::all(model, false);
                mark(g, &shuffled[..k], &mut mask, true);
                sum += score(loss_of(&mask)?.0);
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
        points,
    })
}

/// How well the graph's communities follow the tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disentanglement {
    /// Nodes with a task label (those carrying any attribution).
    pub nodes: usize,
    pub ari: f64,
    pub nmi: f64,
    /// Share of labelled nodes in their community's majority task: with `communities`, tells a
    /// community that mixes tasks (low purity) from a task split over several pure communities
    /// (high purity, more communities than tasks), which ARI and NMI both mark down.
    pub purity: f64,
    /// Communities among the labelled nodes.
    pub communities: usize,
    /// The same scores for a partition into as many communities as tasks.
    pub at_task_count: AtTaskCount,
}

/// Disentanglement of a partition into as many communities as the network has tasks (the
/// graph's Leiden communities merged by least modularity loss, see
/// [`crate::graph::community::leiden_with_count`]): separates "the communities are too fine"
/// from "the communities mix the tasks". Only the task count is used, never the labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtTaskCount {
    pub ari: f64,
    pub nmi: f64,
    pub purity: f64,
    /// Communities among the labelled nodes (the task count, unless Leiden finds fewer even at
    /// resolution 10).
    pub communities: usize,
    /// The resolution of the Leiden partition they were merged from (1 unless it was raised).
    pub resolution: f64,
}

/// ARI and NMI between communities and task labels (hidden-layer nodes with attribution), for
/// the graph's own communities and for a partition into as many communities as tasks.
pub fn disentanglement(g: &CircuitGraph) -> Result<Disentanglement> {
    let last = g.widths.len() - 1;
    let (mut labels, mut comms, mut who) = (Vec::new(), Vec::new(), Vec::new());
    for (i, n) in g.graph.node_weights().enumerate() {
        if n.layer == 0 || n.layer == last {
            continue;
        }
        let total: f64 = n.task_share.iter().sum();
        if total > 0.0 {
            let best = (0..n.task_share.len())
                .max_by(|&a, &b| n.task_share[a].total_cmp(&n.task_share[b]))
                .unwrap_or(0);
            labels.push(best);
            comms.push(n.community);
            who.push(i);
        }
    }
    let edges: Vec<(usize, usize, f64)> = g
        .graph
        .edge_indices()
        .map(|e| {
            let (a, b) = g.graph.edge_endpoints(e).expect("edge exists");
            (a.index(), b.index(), g.graph[e].mean_abs)
        })
        .collect();
    let mut counted = vec![false; g.graph.node_count()];
    for &i in &who {
        counted[i] = true;
    }
    let tasks = g
        .graph
        .node_weights()
        .next()
        .map_or(1, |n| n.task_share.len());
    let (at_k, gamma) = crate::graph::community::leiden_with_count(
        g.graph.node_count(),
        &edges,
        g.spec.seed,
        tasks,
        &counted,
    )?;
    let comms_k: Vec<usize> = who.iter().map(|&i| at_k.membership[i]).collect();
    let distinct = |c: &[usize]| c.iter().collect::<std::collections::HashSet<_>>().len();
    Ok(Disentanglement {
        nodes: labels.len(),
        ari: score::ari(&labels, &comms),
        nmi: score::nmi(&labels, &comms),
        purity: score::purity(&labels, &comms),
        communities: distinct(&comms),
        at_task_count: AtTaskCount {
            ari: score::ari(&labels, &comms_k),
            nmi: score::nmi(&labels, &comms_k),
            purity: score::purity(&labels, &comms_k),
            communities: distinct(&comms_k),
            resolution: gamma,
        },
    })
}

/// Relative size below which a change in a task's loss is rounding, not an effect.
pub const LOSS_ROUNDING: f64 = 1e-9;

/// `change` if it is an effect, 0 if it is rounding: an ablation that leaves every path to a
/// task intact still sums the task's forward pass in another order, and moves its loss by
/// 1e-21 to 1e-19 (seen on planted models, losses near 1e-5), which Spearman ρ would otherwise
/// rank as if it were an effect.
fn rounded_to_zero(change: f64, loss: f64) -> f64 {
    if change.abs() <= LOSS_ROUNDING * loss.abs() {
        0.0
    } else {
        change
    }
}

/// One intervention's predicted and observed effect on one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    /// `community N` or `task subgraph NAME`.
    pub target: String,
    pub task: String,
    /// Attribution to the task carried by the ablated edges (sum of their mean |value| for it).
    pub predicted: f64,
    /// Change in the task's loss when those edges are ablated (0 where it is below
    /// [`LOSS_ROUNDING`] of the loss: rounding).
    pub observed: f64,
    /// The task's loss after ablation over its loss before.
    pub loss_ratio: f64,
}

/// Interventions on every community and every task subgraph (the edges whose largest
/// per-task attribution is that task's), with Spearman ρ between predicted and observed.
pub fn interventions(
    model: &RuntimeModel,
    g: &CircuitGraph,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
) -> Result<(Vec<Intervention>, f64)> {
    check_ablatable(g)?;
    if g.tasks.is_empty()
        || g.graph
            .edge_weights()
            .next()
            .is_none_or(|e| e.per_task.len() != g.tasks.len())
    {
        invalid!("interventions need a graph with per-task attributions (build it with --edges ig --target task)");
    }
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let d_out = model.d_out();
    let full = tasks.mse(
        &forward_ablated(model, &x, &EdgeMask::all(model, true), base)?,
        &data.y,
        d_out,
    );
    let mut groups: Vec<(String, Vec<EdgeIndex>)> = Vec::new();
    for c in 0..g.communities {
        groups.push((format!("community {c}"), community_edges(g, c)));
    }
    for (t, name) in g.tasks.iter().enumerate() {
        let edges = g
            .graph
            .edge_indices()
            .filter(|&e| {
                let p = &g.graph[e].per_task;
                p[t] > 0.0 && (0..p.len()).all(|u| p[t] >= p[u])
            })
            .collect();
        groups.push((format!("task subgraph {name}"), edges));
    }
    let mut out = Vec::new();
    for (target, edges) in groups {
        let mut mask = EdgeMask::all(model, true);
        mark(g, &edges, &mut mask, false);
        let losses = tasks.mse(&forward_ablated(model, &x, &mask, base)?, &data.y, d_out);
        for (t, name) in g.tasks.iter().enumerate() {
            let predicted = edges.iter().map(|&e| g.graph[e].per_task[t]).sum();
            out.push(Intervention {
                target: target.clone(),
                task: name.clone(),
                predicted,
                observed: rounded_to_zero(losses[t] - full[t], full[t]),
                loss_ratio: if full[t] > 0.0 {
                    losses[t] / full[t]
                } else {
                    f64::INFINITY
                },
            });
        }
    }
    let rho = score::spearman(
        &out.iter().map(|i| i.predicted).collect::<Vec<_>>(),
        &out.iter().map(|i| i.observed).collect::<Vec<_>>(),
    );
    Ok((out, rho))
}

/// For a classifier: each community ablated in turn (every edge touching it, baselines
/// `base`), the accuracy on each class before and after, as a table with columns
/// `community`, `class`, `examples`, `accuracy`, `ablated_accuracy`, `drop`.
pub fn community_class_accuracy(
    model: &RuntimeModel,
    g: &CircuitGraph,
    data: &Dataset,
    base: &Baselines,
) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::{Column, DataFrame};
    check_ablatable(g)?;
    let Some(labels) = &data.labels else {
        invalid!(
            "{}: per-class accuracy needs a classification data set",
            data.name
        );
    };
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let d_out = model.d_out();
    let classes = d_out;
    let per_class = |out: &[f64]| -> Vec<(usize, f64)> {
        let mut right = vec![0usize; classes];
        let mut seen = vec![0usize; classes];
        for (r, &label) in labels.iter().enumerate() {
            let row = &out[r * d_out..(r + 1) * d_out];
            let guess = (0..d_out)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .expect("outputs");
            seen[label] += 1;
            right[label] += (guess == label) as usize;
        }
        (0..classes)
            .map(|c| (seen[c], right[c] as f64 / seen[c].max(1) as f64))
            .collect()
    };
    let clean = per_class(&forward_ablated(
        model,
        &x,
        &EdgeMask::all(model, true),
        base,
    )?);
    let (mut com, mut cls, mut n, mut acc, mut ablated) = (vec![], vec![], vec![], vec![], vec![]);
    for c in 0..g.communities {
        let edges = community_edges(g, c);
        let mut mask = EdgeMask::all(model, true);
        mark(g, &edges, &mut mask, false);
        let after = per_class(&forward_ablated(model, &x, &mask, base)?);
        for k in 0..classes {
            com.push(c as u32);
            cls.push(k as u32);
            n.push(clean[k].0 as u32);
            acc.push(clean[k].1);
            ablated.push(after[k].1);
        }
    }
    let drop: Vec<f64> = acc.iter().zip(&ablated).map(|(a, b)| a - b).collect();
    DataFrame::new(vec![
        Column::new("community".into(), com),
        Column::new("class".into(), cls),
        Column::new("examples".into(), n),
        Column::new("accuracy".into(), acc),
        Column::new("ablated_accuracy".into(), ablated),
        Column::new("drop".into(), drop),
    ])
    .map_err(|e| crate::Error::Data(format!("community accuracy table: {e}")))
}

/// Circuit recovery: for each task `t`, the ROC AUC of the edges' attribution to `t` against
/// the truth `belongs(src, dst, t)`, over the edges leaving layers in `layers`.
pub fn circuit_auc(
    g: &CircuitGraph,
    layers: std::ops::Range<usize>,
    belongs: &dyn Fn(&crate::graph::Node, &crate::graph::Node, usize) -> bool,
) -> Vec<f64> {
    (0..g.tasks.len())
        .map(|t| {
            let (mut scores, mut truth) = (Vec::new(), Vec::new());
            for e in g.graph.edge_indices() {
                let (a, b) = g.graph.edge_endpoints(e).expect("edge");
                if layers.contains(&g.graph[a].layer) {
                    scores.push(g.graph[e].per_task.get(t).copied().unwrap_or(0.0));
                    truth.push(belongs(&g.graph[a], &g.graph[b], t));
                }
            }
            score::roc_auc(&scores, &truth)
        })
        .collect()
}

/// Everything `circuitscope eval` measures on one run.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// Per task, AUC of circuit recovery against a planted model's blocks (planted presets).
    pub planted_auc: Option<Vec<f64>>,
    /// Per task, AUC on the first layer, where the input-to-task truth is known.
    pub first_layer_auc: Vec<f64>,
    pub faithfulness: Faithfulness,
    pub disentanglement: Disentanglement,
    pub interventions: Vec<Intervention>,
    pub spearman: f64,
}

/// Builds the run's graph (per-task exact IG, `spec`), then measures faithfulness under
/// `ablation`, disentanglement and interventions on the validation split; writes the tables
/// `eval_faithfulness` and `eval_interventions` and logs an `eval` segment
/// (`faithfulness_point`, `intervention`, `note` events).
pub fn eval_run(
    root: &std::path::Path,
    spec: &crate::graph::GraphSpec,
    kind: ablation::Ablation,
) -> Result<EvalReport> {
    use crate::runlog::{segment, Event, RunDir};
    use polars::prelude::{Column, DataFrame};
    let run = RunDir::open(root)?;
    let (info, model, data) = crate::model::train::load_trained(&run)?;
    if info.preset.loss() != crate::model::Loss::Mse {
        invalid!(
            "eval: preset `{}` is a classifier; evaluation currently scores regression tasks (MSE)",
            info.preset
        );
    }
    spec.validate(&model, &data.val)?;
    let config = serde_json::json!({ "ablation": kind, "graph": spec });
    segment(&run, "eval", Some(info.preset.name()), config, |log| {
        let g = crate::graph::build(&model, &data.val, &data.tasks, spec)?;
        let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
        let base = Baselines::new(&model, &x, kind, spec.seed)?;
        let f = faithfulness(
            &model,
            &g,
            &data.val,
            &data.tasks,
            &base,
            &FRACTIONS,
            CHANCE_DRAWS,
        )?;
        let d = disentanglement(&g)?;
        let (iv, rho) = interventions(&model, &g, &data.val, &data.tasks, &base)?;
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
        let planted_auc = info.preset.planted_blocks().map(|blocks| {
            let in_block = |n: &crate::graph::Node, t: usize| {
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
        let graph_name = format!("{:?}", spec.nodes).to_lowercase();
        let ab = format!("{kind:?}").to_lowercase();
        for p in f.points.iter().filter(|_| f.defined) {
            log.emit(
                None,
                Event::FaithfulnessPoint {
                    graph: graph_name.clone(),
                    ablation: ab.clone(),
                    edges_kept: p.kept,
                    faithfulness: p.faithfulness,
                },
            )?;
        }
        for i in &iv {
            log.emit(
                None,
                Event::Intervention {
                    target: i.target.clone(),
                    task: i.task.clone(),
                    predicted: i.predicted,
                    observed: i.observed,
                },
            )?;
        }
        log.emit(
            None,
            Event::Note {
                text: format!(
                    "eval: CPR {}, CMD {}, ARI {:.4}, NMI {:.4}, purity {:.4} ({} communities), at the task count ARI {:.4} ({} communities), intervention Spearman {:.4}",
                    if f.defined { format!("{:.4} (random edges {:.4})", f.cpr, f.chance_cpr) } else { format!("undefined (the model removes {:.1}% of its ablated self's loss)", 100.0 * f.gain) },
                    if f.defined { format!("{:.4}", f.cmd) } else { "undefined".into() },
                    d.ari, d.nmi, d.purity, d.communities, d.at_task_count.ari, d.at_task_count.communities, rho
                ),
            },
        )?;
        let err = |e: polars::prelude::PolarsError| crate::Error::Data(format!("eval table: {e}"));
        let mut ft = DataFrame::new(vec![
            Column::new(
                "kept".into(),
                f.points.iter().map(|p| p.kept).collect::<Vec<_>>(),
            ),
            Column::new(
                "loss".into(),
                f.points.iter().map(|p| p.loss).collect::<Vec<_>>(),
            ),
            Column::new(
                "faithfulness".into(),
                f.points.iter().map(|p| p.faithfulness).collect::<Vec<_>>(),
            ),
            Column::new(
                "chance".into(),
                f.points.iter().map(|p| p.chance).collect::<Vec<_>>(),
            ),
        ])
        .map_err(err)?;
        run.write_table("eval_faithfulness", &mut ft)?;
        let mut it = DataFrame::new(vec![
            Column::new(
                "target".into(),
                iv.iter().map(|i| i.target.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "task".into(),
                iv.iter().map(|i| i.task.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "predicted".into(),
                iv.iter().map(|i| i.predicted).collect::<Vec<_>>(),
            ),
            Column::new(
                "observed".into(),
                iv.iter().map(|i| i.observed).collect::<Vec<_>>(),
            ),
            Column::new(
                "loss_ratio".into(),
                iv.iter().map(|i| i.loss_ratio).collect::<Vec<_>>(),
            ),
        ])
        .map_err(err)?;
        run.write_table("eval_interventions", &mut it)?;
        if let Some(a) = &planted_auc {
            log.emit(
                None,
                Event::Note {
                    text: format!("eval: planted-circuit ROC AUC per task {a:?}"),
                },
            )?;
        }
        // The final model's structure figures, tagged with its width: the width series.
        let jac = crate::probe::jacobian::output_jacobians(
            &model,
            &trace,
            crate::probe::jacobian::Reuse::Patterns,
        );
        let c = crate::probe::census::census(&model, &trace, &jac, &Default::default());
        let figs = structure_figures(&f, &d, &g, c[0].gradients_combined);
        let step = run.latest_checkpoint()?.map_or(0, |(s, _)| s);
        let figures = finite_figures(&figs);
        log.emit(
            Some(step),
            Event::Emergence {
                checkpoint_step: step,
                width: info.arch.widths[1],
                figures,
            },
        )?;
        Ok(EvalReport {
            planted_auc,
            first_layer_auc,
            faithfulness: f,
            disentanglement: d,
            interventions: iv,
            spearman: rho,
        })
    })
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

/// The last `eval`'s faithfulness curve of a run as a sparkline line, if it has one.
pub fn sparkline_of_run(run: &crate::runlog::RunDir) -> Result<Option<String>> {
    if !run.table("eval_faithfulness").exists() {
        return Ok(None);
    }
    let df = run.read_table("eval_faithfulness")?;
    let col = |name: &str| -> Result<Vec<f64>> {
        df.column(name)
            .and_then(|c| c.f64().map(|v| v.into_no_null_iter().collect()))
            .map_err(|e| crate::Error::Data(format!("eval_faithfulness table: {e}")))
    };
    let (kept, faith) = (col("kept")?, col("faithfulness")?);
    if faith.iter().all(|f| f.is_nan()) {
        return Ok(Some(format!(
            "faithfulness: undefined (the model removes less than {:.0}% of its fully ablated self's loss)",
            100.0 * MIN_GAIN
        )));
    }
    let at = |share: f64| {
        faith
            .iter()
            .zip(&kept)
            .find(|(_, &k)| (k - share).abs() < 1e-12)
            .map(|(f, _)| format!("{f:.3}"))
            .unwrap_or_else(|| "-".into())
    };
    Ok(Some(format!(
        "faithfulness vs edges kept (0% … 100%): {}  (10% kept: {}, 100%: {})",
        sparkline(&faith),
        at(0.1),
        at(1.0)
    )))
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

/// The structure figures as an event's map; undefined ones (NaN) are left out, since the event
/// log is JSON and has no NaN.
fn finite_figures(figs: &[f64; 7]) -> std::collections::BTreeMap<String, f64> {
    STRUCTURE
        .iter()
        .zip(figs)
        .filter(|(_, v)| v.is_finite())
        .map(|(n, &v)| (n.to_string(), v))
        .collect()
}

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

/// Structure over training: for every checkpoint of a run (every `every`-th, and the last),
/// the graph's faithfulness (CPR, and at 10% of edges), ARI and NMI against task labels,
/// modularity and communities, and the census's distinct input gradients on the validation
/// split. Writes `tables/eval_emergence.parquet` and one `emergence` event per checkpoint.
pub fn emergence_run(
    root: &std::path::Path,
    spec: &crate::graph::GraphSpec,
    kind: ablation::Ablation,
    every: usize,
) -> Result<polars::prelude::DataFrame> {
    use crate::model::checkpoint::Checkpoint;
    use crate::probe::census::{census, CensusConfig};
    use crate::probe::jacobian::{output_jacobians, Reuse};
    use crate::runlog::{segment, Event, RunDir};
    use polars::prelude::{Column, DataFrame};
    let run = RunDir::open(root)?;
    let (info, _, data) = crate::model::train::load_trained(&run)?;
    let steps = run.checkpoint_steps()?;
    if steps.is_empty() {
        invalid!("{}: no checkpoints to follow", run.checkpoints().display());
    }
    let every = every.max(1);
    let last = steps.len() - 1;
    let chosen: Vec<(u64, std::path::PathBuf)> = steps
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i == last)
        .map(|(_, s)| s)
        .collect();
    let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
    let width = info.arch.widths.get(1).copied().unwrap_or(0);
    segment(
        &run,
        "emergence",
        Some(info.preset.name()),
        serde_json::json!({ "ablation": kind, "every": every }),
        |log| {
            let mut rows: Vec<(u64, [f64; 7])> = Vec::new();
            for (step, path) in &chosen {
                let model = Checkpoint::load(path, Some(info.preset))?.view()?;
                let g = crate::graph::build(&model, &data.val, &data.tasks, spec)?;
                let base = Baselines::new(&model, &x, kind, spec.seed)?;
                // The emergence figures do not use the chance curve: no random draws.
                let f = faithfulness(&model, &g, &data.val, &data.tasks, &base, &FRACTIONS, 0)?;
                let d = disentanglement(&g)?;
                let trace = model.trace(&x)?;
                let c = census(
                    &model,
                    &trace,
                    &output_jacobians(&model, &trace, Reuse::Patterns),
                    &CensusConfig::default(),
                );
                let figs = structure_figures(&f, &d, &g, c[0].gradients_combined);
                log.emit(
                    Some(*step),
                    Event::Emergence {
                        checkpoint_step: *step,
                        width,
                        figures: finite_figures(&figs),
                    },
                )?;
                rows.push((*step, figs));
            }
            let col = |k: usize| rows.iter().map(|r| r.1[k]).collect::<Vec<f64>>();
            let mut df = DataFrame::new(vec![
                Column::new("step".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new("cpr".into(), col(0)),
                Column::new("faithfulness_at_10pct".into(), col(1)),
                Column::new("ari".into(), col(2)),
                Column::new("nmi".into(), col(3)),
                Column::new("modularity".into(), col(4)),
                Column::new("communities".into(), col(5)),
                Column::new("input_gradients".into(), col(6)),
            ])
            .map_err(|e| crate::Error::Data(format!("emergence table: {e}")))?;
            run.write_table("eval_emergence", &mut df)?;
            Ok(df)
        },
    )
}
