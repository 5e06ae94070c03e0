//! `discover` on a run: its graph (neurons or ROIs), one circuit-discovery method's ranking of
//! the graph's edges or hidden nodes (discovered on the graph's examples), that ranking scored
//! on the whole validation split by the same faithfulness code as `eval` (with its chance
//! curve), the circuit at the budget (its faithfulness beside chance, and its completeness),
//! the planted-circuit ROC AUC (the mean over tasks of each task's own discovery) where the run
//! has a truth; `graph/circuit-METHOD[-node].json` and a `discover` segment of events (the
//! curve as `faithfulness_point`s named by the method).

use super::dir::write_json;
use super::events::Event;
use super::load::LoadedRun;
use super::log::segment;
use crate::eval::ablation::{Ablation, Baselines};
use crate::eval::{
    completeness, completeness_nodes, discover, faithfulness_nodes, faithfulness_of, learned,
    Circuit, DiscoverOptions, FaithPoint, Faithfulness, Learned, Level, Method, CHANCE_DRAWS,
    FRACTIONS,
};
use crate::graph::{build, CircuitGraph, GraphSpec};
use crate::model::RuntimeModel;
use crate::numeric::score;
use crate::params::{Choice, Valid};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `discover` found and how it scored.
#[derive(Debug, Clone)]
pub struct DiscoverReport {
    pub method: Method,
    pub ablation: Ablation,
    pub learned: Learned,
    pub level: Level,
    /// `neuron` or `roi`.
    pub nodes: &'static str,
    /// The graph's edges and the examples the method saw.
    pub edges: usize,
    /// The items ranked: graph edges, or hidden nodes.
    pub items: usize,
    pub examples: usize,
    /// The ranking's faithfulness curve on the validation split (None: not learned).
    pub faithfulness: Option<Faithfulness>,
    /// The items the budget keeps, and that circuit's faithfulness (with its chance level).
    pub budget: crate::eval::discover::Budget,
    pub kept: usize,
    pub at_budget: Option<FaithPoint>,
    /// Faithfulness of the model with the circuit at the budget removed (ideal 0).
    pub completeness: f64,
    /// ROC AUC of each task's own discovery against that task's planted circuit, and their
    /// mean (planted presets).
    pub planted_auc: Option<f64>,
    pub planted_per_task: Vec<(String, f64)>,
    /// Seconds the method took (discovery only, not the scoring).
    pub seconds: f64,
    pub file: Option<PathBuf>,
}

#[derive(Serialize)]
struct CircuitFile<'a> {
    method: &'a str,
    level: &'a str,
    nodes: &'a str,
    ablation: &'a str,
    examples: usize,
    seconds: f64,
    cpr: f64,
    chance_cpr: f64,
    budget: String,
    /// The circuit at the budget: its size, faithfulness, chance, completeness.
    circuit_items: usize,
    faithfulness_at_budget: f64,
    chance_at_budget: f64,
    completeness: f64,
    planted_auc: Option<f64>,
    planted_auc_per_task: Vec<(String, f64)>,
    curve: Vec<(f64, f64, f64)>,
    /// Every edge (from, to, score), or every hidden node (name, "", score), best first; the
    /// first `circuit_items` are the circuit.
    ranked: Vec<(String, String, f64)>,
}

/// Runs `opts.method` on the run's graph (`spec`: neurons or ROIs) under `kind` ablation.
pub fn discover_run(
    root: &Path,
    spec: &Valid<GraphSpec>,
    kind: Ablation,
    opts: &Valid<DiscoverOptions>,
) -> Result<DiscoverReport> {
    crate::eval::check_nodes(spec.nodes)?;
    let loaded = LoadedRun::open(root)?;
    let (run, model, data) = (&loaded.run, &loaded.model, &loaded.data);
    spec.fits(model, &data.val)?;
    if let Some(t) = opts.task {
        crate::eval::discover::outputs_of(model, &data.tasks, Some(t))?;
    }
    let config = serde_json::json!({ "ablation": kind, "graph": &**spec, "discover": &**opts });
    segment(run, "discover", Some(loaded.name()), config, |log| {
        let g = build(model, &data.val, &data.tasks, spec)?;
        let verdict = learned(model, &data.val, &data.tasks)?;
        let mut report = DiscoverReport {
            method: opts.method,
            level: opts.level,
            nodes: spec.nodes.key(),
            ablation: kind,
            learned: verdict.clone(),
            edges: g.graph.edge_count(),
            items: 0,
            examples: g.examples,
            faithfulness: None,
            budget: opts.budget,
            kept: 0,
            at_budget: None,
            completeness: f64::NAN,
            planted_auc: None,
            planted_per_task: Vec::new(),
            seconds: 0.0,
            file: None,
        };
        if !verdict.learned {
            log.emit(
                None,
                Event::Note {
                    text: format!(
                        "discover {}: undefined (not learned: {})",
                        opts.method.key(),
                        verdict.reason()
                    ),
                },
            )?;
            return Ok(report);
        }
        // Discovered on the graph's examples, scored on the whole validation split.
        let all: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
        let seen = &all[..g.examples * data.val.d_in];
        let t0 = std::time::Instant::now();
        let base_seen = Baselines::new(model, seen, kind, spec.seed)?;
        let circuit = discover(model, &g, &data.tasks, seen, &base_seen, opts)?;
        report.seconds = t0.elapsed().as_secs_f64();
        let base = Baselines::new(model, &all, kind, spec.seed)?;
        report.items = circuit.items.len();
        report.kept = opts.budget.of(report.items);
        let share = report.kept as f64 / report.items.max(1) as f64;
        let label = |n: petgraph::graph::NodeIndex| g.graph[n].label.clone();
        let ranking = circuit.ranking();
        // The curve, the circuit at the budget, its completeness, and every item ranked.
        let (f, at, ranked_items) = match opts.level {
            Level::Edge => {
                let ranked = circuit.ranked_edges();
                let score = |fractions: &[f64], draws| {
                    faithfulness_of(
                        model,
                        &g,
                        &data.val,
                        &data.tasks,
                        &base,
                        &ranked,
                        fractions,
                        draws,
                    )
                };
                let f = score(&FRACTIONS, CHANCE_DRAWS)?;
                let at = score(&[share], CHANCE_DRAWS)?;
                report.completeness =
                    completeness(model, &g, &data.val, &data.tasks, &base, &f, &ranked, share)?;
                let items = ranking
                    .iter()
                    .map(|&t| {
                        let (a, b) = g
                            .graph
                            .edge_endpoints(circuit.items.edges[t])
                            .expect("edge");
                        (label(a), label(b), circuit.scores[t])
                    })
                    .collect();
                (f, at, items)
            }
            Level::Node => {
                let ranked = circuit.ranked_nodes(&g);
                let score = |fractions: &[f64], draws| {
                    faithfulness_nodes(
                        model,
                        &data.val,
                        &data.tasks,
                        &base,
                        &ranked,
                        fractions,
                        draws,
                    )
                };
                let f = score(&FRACTIONS, CHANCE_DRAWS)?;
                let at = score(&[share], CHANCE_DRAWS)?;
                report.completeness =
                    completeness_nodes(model, &data.val, &data.tasks, &base, &f, &ranked, share)?;
                let items = ranking
                    .iter()
                    .map(|&t| {
                        (
                            label(circuit.items.nodes[t]),
                            String::new(),
                            circuit.scores[t],
                        )
                    })
                    .collect();
                (f, at, items)
            }
        };
        if let Some(blocks) = loaded.planted_blocks() {
            // Each task's own discovery (its outputs alone) against its own planted circuit.
            let live = live_units(model, &all)?;
            for (t, task) in data.tasks.tasks.iter().enumerate() {
                let one = DiscoverOptions {
                    task: Some(t),
                    ..(**opts).clone()
                }
                .check()?;
                let c = discover(model, &g, &data.tasks, seen, &base_seen, &one)?;
                let block = blocks
                    .last()
                    .and_then(|b| task.outputs.first().map(|&o| b[o]));
                let auc = block.map_or(Ok(f64::NAN), |block| {
                    planted_auc(model, &g, &live, &blocks, block, &c)
                })?;
                report.planted_per_task.push((task.name.clone(), auc));
            }
            let v: Vec<f64> = report.planted_per_task.iter().map(|p| p.1).collect();
            report.planted_auc = Some(v.iter().sum::<f64>() / v.len().max(1) as f64);
        }
        if f.defined {
            for p in &f.points {
                log.emit(
                    None,
                    Event::FaithfulnessPoint {
                        graph: curve_name(opts),
                        ablation: kind.key().into(),
                        edges_kept: p.kept,
                        faithfulness: p.faithfulness,
                    },
                )?;
            }
        }
        let at = at.defined.then(|| at.points[0].clone());
        let file = root
            .join("graph")
            .join(format!("circuit-{}.json", curve_name(opts)));
        write_json(
            &file,
            &CircuitFile {
                method: opts.method.key(),
                level: opts.level.key(),
                nodes: spec.nodes.key(),
                ablation: kind.key(),
                examples: g.examples,
                seconds: report.seconds,
                cpr: f.cpr,
                chance_cpr: f.chance_cpr,
                budget: opts.budget.to_string(),
                circuit_items: report.kept,
                faithfulness_at_budget: at.as_ref().map_or(f64::NAN, |p| p.faithfulness),
                chance_at_budget: at.as_ref().map_or(f64::NAN, |p| p.chance),
                completeness: report.completeness,
                planted_auc: report.planted_auc,
                planted_auc_per_task: report.planted_per_task.clone(),
                curve: f
                    .points
                    .iter()
                    .map(|p| (p.kept, p.faithfulness, p.chance))
                    .collect(),
                ranked: ranked_items,
            },
        )?;
        log.emit(
            None,
            Event::Note {
                text: format!(
                    "discover {}: CPR {:.4} (chance {:.4}), circuit of {} ({}) faithfulness {:.4}, completeness {:.4}{}, {:.2} s",
                    curve_name(opts),
                    f.cpr,
                    f.chance_cpr,
                    report.kept,
                    opts.budget,
                    at.as_ref().map_or(f64::NAN, |p| p.faithfulness),
                    report.completeness,
                    report
                        .planted_auc
                        .map(|a| format!(", planted AUC {a:.4}"))
                        .unwrap_or_default(),
                    report.seconds
                ),
            },
        )?;
        report.faithfulness = Some(f);
        report.at_budget = at;
        report.file = Some(file);
        Ok(report)
    })
}

/// The name of a method's curve and file: `acdc`, or `acdc-node` for a circuit of nodes.
fn curve_name(opts: &DiscoverOptions) -> String {
    match opts.level {
        Level::Edge => opts.method.key().to_string(),
        Level::Node => format!("{}-node", opts.method.key()),
    }
}

/// Per layer (inputs … outputs) and unit, whether it fires on some example of `x` (inputs and
/// outputs always count as live).
fn live_units(model: &RuntimeModel, x: &[f64]) -> Result<Vec<Vec<bool>>> {
    let trace = model.trace(x)?;
    let widths = model.widths();
    let last = widths.len() - 1;
    Ok(widths
        .iter()
        .enumerate()
        .map(|(layer, &d)| {
            (0..d)
                .map(|u| {
                    layer == 0
                        || layer == last
                        || (0..trace.n).any(|r| trace.post[layer - 1][r * d + u] != 0.0)
                })
                .collect()
        })
        .collect())
}

/// ROC AUC of a circuit's item scores against the planted circuit of the task whose block is
/// `block`. A model edge is in that circuit when both its units sit in the block and are live
/// (a unit that never fires computes nothing for any task); an item (a graph edge, or a hidden
/// node) is in it when most of its model edges (or, for a node, of its units) are.
fn planted_auc(
    model: &RuntimeModel,
    g: &CircuitGraph,
    live: &[Vec<bool>],
    blocks: &[Vec<usize>],
    block: usize,
    circuit: &Circuit,
) -> Result<f64> {
    let ours = |layer: usize, u: usize| blocks[layer][u] == block && live[layer][u];
    let items = &circuit.items;
    let truth: Vec<bool> = match items.level {
        Level::Edge => items
            .members
            .iter()
            .map(|(k, members)| {
                let d = model.layers[*k].d_in;
                let inside = members
                    .iter()
                    .filter(|&&e| ours(*k, e % d) && ours(*k + 1, e / d))
                    .count();
                2 * inside > members.len()
            })
            .collect(),
        Level::Node => items
            .units(g)
            .iter()
            .map(|units| 2 * units.iter().filter(|&&(l, u)| ours(l, u)).count() > units.len())
            .collect(),
    };
    Ok(score::roc_auc(&circuit.scores, &truth))
}

/// What `inspect` reads back of a saved circuit.
#[derive(Deserialize)]
struct SavedCircuit {
    method: String,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    nodes: Option<String>,
    cpr: f64,
    chance_cpr: f64,
    #[serde(default)]
    budget: Option<String>,
    #[serde(default)]
    circuit_items: Option<usize>,
    #[serde(default)]
    faithfulness_at_budget: Option<f64>,
    #[serde(default)]
    chance_at_budget: Option<f64>,
    #[serde(alias = "completeness_at_10pct")]
    completeness: f64,
    planted_auc: Option<f64>,
    curve: Vec<(f64, f64, f64)>,
}

/// One line per circuit `discover` saved in the run (`graph/circuit-*.json`), in name order:
/// its CPR beside chance, faithfulness at 10%, the circuit at its budget (faithfulness and
/// completeness) and the planted AUC.
pub fn circuits_of_run(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("graph");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("circuit-") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).map_err(|e| crate::Error::io(p, "cannot read", e))?;
            let c: SavedCircuit = serde_json::from_str(&text)
                .map_err(|e| crate::Error::bad_file(p, format!("not a saved circuit: {e}")))?;
            let at10 = c
                .curve
                .iter()
                .find(|p| p.0 == 0.1)
                .map_or("-".into(), |p| format!("{:.4}", p.1));
            let kind = match (c.level.as_deref(), c.nodes.as_deref()) {
                (Some("node"), Some("roi")) => " (ROIs)",
                (Some("node"), _) => " (neurons)",
                (_, Some("roi")) => " (ROI edges)",
                _ => "",
            };
            let circuit = match (&c.budget, c.circuit_items, c.faithfulness_at_budget) {
                (Some(b), Some(k), Some(f)) => format!(
                    "circuit of {k} ({b}): faithfulness {f:.4} (chance {:.4}), completeness {:.4}",
                    c.chance_at_budget.unwrap_or(f64::NAN),
                    c.completeness
                ),
                _ => format!("completeness at 10% {:.4}", c.completeness),
            };
            Ok(format!(
                "circuit {}{kind}: CPR {:.4} (chance {:.4}), at 10% {at10}, {circuit}{} ({})",
                c.method,
                c.cpr,
                c.chance_cpr,
                c.planted_auc
                    .map(|a| format!(", planted AUC {a:.4}"))
                    .unwrap_or_default(),
                p.display()
            ))
        })
        .collect()
}

/// What `discover` prints.
pub fn summary(r: &DiscoverReport) -> String {
    let roi = r.nodes == "roi";
    let (what, unit) = match (r.level, roi) {
        (Level::Edge, false) => (format!("{} edges", r.edges), "edges"),
        (Level::Edge, true) => (format!("{} edges between ROIs", r.edges), "edges"),
        (Level::Node, false) => (
            format!("a circuit of neurons: {} hidden neurons", r.items),
            "neurons",
        ),
        (Level::Node, true) => (
            format!("a circuit of ROIs: {} hidden ROIs", r.items),
            "ROIs",
        ),
    };
    let mut s = format!(
        "{} ({what}, {} ablation; discovered on {} examples, scored on the validation split)\n",
        r.method.key(),
        r.ablation.key(),
        r.examples
    );
    let Some(f) = &r.faithfulness else {
        s.push_str(&format!(
            "every figure undefined (not learned: {})\n",
            r.learned.reason()
        ));
        return s;
    };
    if !f.defined {
        s.push_str(&format!(
            "faithfulness undefined (the model removes {:.1}% of its ablated self's loss)\n",
            100.0 * f.gain
        ));
    } else {
        s.push_str(&format!(
            "faithfulness: CPR {:.4} (chance {:.4})  CMD {:.4} (chance {:.4})\n",
            f.cpr, f.chance_cpr, f.cmd, f.chance_cmd
        ));
        for p in f
            .points
            .iter()
            .filter(|p| [0.01, 0.02, 0.05, 0.1].contains(&p.kept))
        {
            s.push_str(&format!(
                "  at {:>4.1}% of {unit}: faithfulness {:.4} (chance {:.4})\n",
                100.0 * p.kept,
                p.faithfulness,
                p.chance
            ));
        }
        if let Some(p) = &r.at_budget {
            s.push_str(&format!(
                "circuit (budget {}): {} of {} {unit}, faithfulness {:.4} (chance {:.4}), completeness {:.4} (the model with the circuit removed; ideal 0)\n",
                r.budget, r.kept, r.items, p.faithfulness, p.chance, r.completeness
            ));
        }
    }
    if let Some(a) = r.planted_auc {
        let per: Vec<String> = r
            .planted_per_task
            .iter()
            .map(|(t, a)| format!("{t} {a:.4}"))
            .collect();
        s.push_str(&format!(
            "planted AUC {a:.4} (the mean over tasks of each task's own discovery: {}; chance 0.5)\n",
            per.join(", ")
        ));
    }
    s.push_str(&format!("wall time {:.2} s (discovery)\n", r.seconds));
    if let Some(p) = &r.file {
        s.push_str(&format!("circuit: {}\n", p.display()));
    }
    s
}
