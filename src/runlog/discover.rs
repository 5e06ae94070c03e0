//! `discover` on a run: its neuron graph, one circuit-discovery method's ranking of the edges
//! (discovered on the graph's examples), that ranking scored on the whole validation split by
//! the same faithfulness code as `eval` (with its chance curve), the circuit's completeness,
//! the planted-circuit ROC AUC where the run has a truth; `graph/circuit-METHOD.json` and a
//! `discover` segment of events (the curve as `faithfulness_point`s named by the method).

use super::dir::write_json;
use super::events::Event;
use super::load::LoadedRun;
use super::log::segment;
use crate::eval::ablation::{Ablation, Baselines};
use crate::eval::{
    completeness, completeness_nodes, discover, faithfulness_nodes, faithfulness_of, learned,
    Circuit, DiscoverOptions, Faithfulness, Learned, Level, Method, CHANCE_DRAWS, FRACTIONS,
};
use crate::graph::{build, GraphSpec};
use crate::numeric::score;
use crate::params::{Choice, Valid};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The share of edges completeness is measured at.
pub const COMPLETENESS_AT: f64 = 0.1;

/// What `discover` found and how it scored.
#[derive(Debug, Clone)]
pub struct DiscoverReport {
    pub method: Method,
    pub ablation: Ablation,
    pub learned: Learned,
    pub level: Level,
    /// The graph's edges and the examples the method saw.
    pub edges: usize,
    /// The items ranked: edges, or hidden neurons.
    pub items: usize,
    pub examples: usize,
    /// The ranking's faithfulness curve on the validation split (None: not learned).
    pub faithfulness: Option<Faithfulness>,
    /// Faithfulness of the model with the top 10% of the ranking removed (ideal 0).
    pub completeness: f64,
    /// ROC AUC of the edge scores against the planted circuits (planted presets).
    pub planted_auc: Option<f64>,
    /// Seconds the method took (discovery only, not the scoring).
    pub seconds: f64,
    pub file: Option<PathBuf>,
}

#[derive(Serialize)]
struct CircuitFile<'a> {
    method: &'a str,
    level: &'a str,
    ablation: &'a str,
    examples: usize,
    seconds: f64,
    cpr: f64,
    chance_cpr: f64,
    completeness_at_10pct: f64,
    planted_auc: Option<f64>,
    curve: Vec<(f64, f64, f64)>,
    /// Every edge (from, to, score), or every hidden neuron (name, "", score), best first.
    ranked: Vec<(String, String, f64)>,
}

/// Runs `opts.method` on the run's neuron graph (`spec`) under `kind` ablation.
pub fn discover_run(
    root: &Path,
    spec: &Valid<GraphSpec>,
    kind: Ablation,
    opts: &Valid<DiscoverOptions>,
) -> Result<DiscoverReport> {
    if spec.nodes != crate::graph::NodeKind::Neuron {
        crate::invalid!(
            "discovery works on neuron graphs (--nodes neuron); ROI graphs are not yet supported"
        );
    }
    let loaded = LoadedRun::open(root)?;
    let (run, model, data) = (&loaded.run, &loaded.model, &loaded.data);
    spec.fits(model, &data.val)?;
    let config = serde_json::json!({ "ablation": kind, "graph": &**spec, "discover": &**opts });
    segment(run, "discover", Some(loaded.name()), config, |log| {
        let g = build(model, &data.val, &data.tasks, spec)?;
        let verdict = learned(model, &data.val, &data.tasks)?;
        let mut report = DiscoverReport {
            method: opts.method,
            level: opts.level,
            ablation: kind,
            learned: verdict.clone(),
            edges: g.graph.edge_count(),
            items: 0,
            examples: g.examples,
            faithfulness: None,
            completeness: f64::NAN,
            planted_auc: None,
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
        let circuit = discover(model, &g, seen, &base_seen, opts)?;
        report.seconds = t0.elapsed().as_secs_f64();
        let base = Baselines::new(model, &all, kind, spec.seed)?;
        let label = |n: petgraph::graph::NodeIndex| g.graph[n].label.clone();
        // The curve, completeness and every item ranked with its score: edges, or neurons.
        let (f, ranked_items): (Faithfulness, Vec<(String, String, f64)>) = match opts.level {
            Level::Edge => {
                let ranked = circuit.ranking(&g);
                let f = faithfulness_of(
                    model,
                    &g,
                    &data.val,
                    &data.tasks,
                    &base,
                    &ranked,
                    &FRACTIONS,
                    CHANCE_DRAWS,
                )?;
                report.completeness = completeness(
                    model,
                    &g,
                    &data.val,
                    &data.tasks,
                    &base,
                    &f,
                    &ranked,
                    COMPLETENESS_AT,
                )?;
                if let Some(blocks) = loaded.planted_blocks() {
                    report.planted_auc = Some(planted_auc(model, &g, &all, &blocks, &circuit)?);
                }
                let items = ranked
                    .iter()
                    .map(|&e| {
                        let (a, b) = g.graph.edge_endpoints(e).expect("edge");
                        (label(a), label(b), circuit.edge_score(&g, e))
                    })
                    .collect();
                (f, items)
            }
            Level::Node => {
                let ranked = circuit.node_ranking();
                let f = faithfulness_nodes(
                    model,
                    &data.val,
                    &data.tasks,
                    &base,
                    &ranked,
                    &FRACTIONS,
                    CHANCE_DRAWS,
                )?;
                report.completeness = completeness_nodes(
                    model,
                    &data.val,
                    &data.tasks,
                    &base,
                    &f,
                    &ranked,
                    COMPLETENESS_AT,
                )?;
                let name = |l: usize, u: usize| {
                    g.graph
                        .node_weights()
                        .find(|n| n.layer == l && n.units == [u])
                        .map_or_else(|| format!("h{l}:{u}"), |n| n.label.clone())
                };
                let items = ranked
                    .iter()
                    .map(|&(l, u)| (name(l, u), String::new(), circuit.scores[l][u]))
                    .collect();
                (f, items)
            }
        };
        report.items = ranked_items.len();
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
        let file = root
            .join("graph")
            .join(format!("circuit-{}.json", curve_name(opts)));
        write_json(
            &file,
            &CircuitFile {
                method: opts.method.key(),
                level: opts.level.key(),
                ablation: kind.key(),
                examples: g.examples,
                seconds: report.seconds,
                cpr: f.cpr,
                chance_cpr: f.chance_cpr,
                completeness_at_10pct: report.completeness,
                planted_auc: report.planted_auc,
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
                    "discover {}: CPR {:.4} (chance {:.4}), completeness at 10% {:.4}{}, {:.2} s",
                    curve_name(opts),
                    f.cpr,
                    f.chance_cpr,
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
        report.file = Some(file);
        Ok(report)
    })
}

/// The name of a method's curve and file: `acdc`, or `acdc-node` for a neuron circuit.
fn curve_name(opts: &DiscoverOptions) -> String {
    match opts.level {
        Level::Edge => opts.method.key().to_string(),
        Level::Node => format!("{}-node", opts.method.key()),
    }
}

/// ROC AUC of the circuit's edge scores against the planted circuits: an edge is in one when
/// both its units sit in the same task's block and fire on some example (a dead unit computes
/// nothing for any task).
fn planted_auc(
    model: &crate::model::RuntimeModel,
    g: &crate::graph::CircuitGraph,
    x: &[f64],
    blocks: &[Vec<usize>],
    circuit: &Circuit,
) -> Result<f64> {
    let trace = model.trace(x)?;
    let live = |layer: usize, u: usize| {
        layer == 0
            || layer == model.layers.len()
            || (0..trace.n)
                .any(|i| trace.pre[layer - 1][i * model.layers[layer - 1].d_out + u] > 0.0)
    };
    let (mut scores, mut truth) = (Vec::new(), Vec::new());
    for e in g.graph.edge_indices() {
        let (a, b) = g.graph.edge_endpoints(e).expect("edge");
        let (src, dst) = (&g.graph[a], &g.graph[b]);
        let (i, j) = (src.units[0], dst.units[0]);
        scores.push(circuit.edge_score(g, e));
        truth.push(
            blocks[src.layer][i] == blocks[dst.layer][j]
                && live(src.layer, i)
                && live(dst.layer, j),
        );
    }
    Ok(score::roc_auc(&scores, &truth))
}

/// What `inspect` reads back of a saved circuit.
#[derive(Deserialize)]
struct SavedCircuit {
    method: String,
    #[serde(default)]
    level: Option<String>,
    cpr: f64,
    chance_cpr: f64,
    completeness_at_10pct: f64,
    planted_auc: Option<f64>,
    curve: Vec<(f64, f64, f64)>,
}

/// One line per circuit `discover` saved in the run (`graph/circuit-*.json`), in name order:
/// its CPR beside chance, faithfulness at 10%, completeness and planted AUC.
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
            let text = std::fs::read_to_string(p).map_err(|e| crate::Error::io(p, "cannot read", e))?;
            let c: SavedCircuit = serde_json::from_str(&text)
                .map_err(|e| crate::Error::bad_file(p, format!("not a saved circuit: {e}")))?;
            let at10 = c
                .curve
                .iter()
                .find(|p| p.0 == 0.1)
                .map_or("-".into(), |p| format!("{:.4}", p.1));
            Ok(format!(
                "circuit {}{}: CPR {:.4} (chance {:.4}), at 10% {at10}, completeness at 10% {:.4}{} ({})",
                c.method,
                c.level.filter(|l| l == "node").map_or(String::new(), |_| " (neurons)".into()),
                c.cpr,
                c.chance_cpr,
                c.completeness_at_10pct,
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
    let (what, unit) = match r.level {
        Level::Edge => (format!("{} edges", r.edges), "edges"),
        Level::Node => (
            format!("a circuit of neurons: {} hidden neurons", r.items),
            "neurons",
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
        s.push_str(&format!(
            "completeness at 10% of {unit}: {:.4} (the model with the circuit removed; ideal 0)\n",
            r.completeness
        ));
    }
    if let Some(a) = r.planted_auc {
        s.push_str(&format!("planted AUC {a:.4} (chance 0.5)\n"));
    }
    s.push_str(&format!("wall time {:.2} s (discovery)\n", r.seconds));
    if let Some(p) = &r.file {
        s.push_str(&format!("circuit: {}\n", p.display()));
    }
    s
}
