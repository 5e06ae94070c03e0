//! `circuitscope bench eval`: the README's evaluation table. Every model family is trained with
//! its default settings on several seeds and evaluated (mean ablation, neuron and ROI graphs);
//! each figure is printed as the mean over seeds with its range, beside its chance level.
//! Minutes of training: a benchmark, never part of the test command.

use crate::eval::ablation::Ablation;
use crate::eval::{evaluate, EvalReport};
use crate::graph::{GraphSpec, NodeKind};
use crate::model::train::TrainConfig;
use crate::model::Preset;
use crate::runlog::spec::SpecText;
use crate::runlog::spec_train::{train_spec, SpecTrainOptions};
use crate::runlog::{train, LoadedRun};
use crate::Result;
use std::fmt::Write;
use std::path::Path;

/// What a family trains: a preset, or a spec (its file name and text, built in).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    Preset(Preset),
    Spec {
        name: &'static str,
        file: &'static str,
        text: &'static str,
    },
}

/// The three-task spec of README "Your own model" (`(a*b, c*d, e*f)`, 6 → 32³ → 3, ReLU).
pub const PRODUCTS3: Source = Source::Spec {
    name: "products3",
    file: "examples/specs/products3.json",
    text: include_str!("../../examples/specs/products3.json"),
};

/// One model family of the table: a preset or a spec, optionally with an L1 penalty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    pub source: Source,
    pub l1: f64,
}

impl Family {
    pub(crate) fn name(&self) -> String {
        let base = match self.source {
            Source::Preset(p) => p.to_string(),
            Source::Spec { file, .. } => format!("--spec {file}"),
        };
        if self.l1 > 0.0 {
            format!("`{base} --l1 {:e}`", self.l1)
        } else {
            format!("`{base}`")
        }
    }

    fn dir_name(&self) -> String {
        match self.source {
            Source::Preset(p) => p.to_string(),
            Source::Spec { name, .. } => format!("spec-{name}"),
        }
    }
}

impl Family {
    /// A preset trained with its defaults and the L1 penalty `l1`.
    pub fn preset(preset: Preset, l1: f64) -> Family {
        Family {
            source: Source::Preset(preset),
            l1,
        }
    }
}

/// The families of the README's table.
pub fn families() -> Vec<Family> {
    let f = Family::preset;
    vec![
        f(Preset::Products, 0.0),
        Family {
            source: PRODUCTS3,
            l1: 0.0,
        },
        f(Preset::ProductsPlanted, 0.0),
        f(Preset::Products, 1e-4),
        f(Preset::Products, 3e-4),
        f(Preset::ProductsPlanted, 1e-4),
        f(Preset::ProductsShared, 0.0),
        f(Preset::ProductsGelu, 0.0),
        f(Preset::Digits, 0.0),
    ]
}

/// `mean (lo–hi)` of the finite values, or `undefined`.
pub(crate) fn spread(v: &[f64], digits: usize) -> String {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return "undefined".into();
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if hi - lo < 0.5 * 10f64.powi(-(digits as i32)) {
        format!("{mean:.digits$}")
    } else {
        format!("{mean:.digits$} ({lo:.digits$}–{hi:.digits$})")
    }
}

/// `figure [chance c]` for one column: the figures and their chance levels over seeds.
fn cell(values: &[(f64, f64)], digits: usize) -> String {
    let (v, c): (Vec<f64>, Vec<f64>) = values.iter().copied().unzip();
    let figure = spread(&v, digits);
    if figure == "undefined" {
        return figure;
    }
    let c: Vec<f64> = c.into_iter().filter(|x| x.is_finite()).collect();
    if c.is_empty() {
        return figure;
    }
    format!(
        "{figure} [{:.digits$}]",
        c.iter().sum::<f64>() / c.len() as f64
    )
}

/// Trains `family` on `seed` in `dir` (reusing a finished run there) and evaluates it.
fn report(dir: &Path, family: Family, seed: u64, nodes: NodeKind) -> Result<(EvalReport, f64)> {
    let root = trained(dir, family, seed)?;
    let l = LoadedRun::open(&root)?;
    let spec = GraphSpec {
        nodes,
        ..Default::default()
    }
    .check()?;
    let blocks = l.planted_blocks();
    let r = evaluate(&l.model, &l.data, &spec, Ablation::Mean, blocks.as_deref())?;
    Ok((r.clone(), r.learned.score))
}

/// The run of `family` on `seed` in `dir`: trained with its defaults, or the finished run
/// already there.
pub(crate) fn trained(dir: &Path, family: Family, seed: u64) -> Result<std::path::PathBuf> {
    let root = dir.join(format!("{}-l1-{}-{seed}", family.dir_name(), family.l1));
    if !root.join("model.safetensors").exists() {
        let _ = std::fs::remove_dir_all(&root);
        match family.source {
            Source::Preset(preset) => {
                let cfg = TrainConfig {
                    seed,
                    l1: family.l1,
                    log_every: 1000,
                    ..TrainConfig::defaults(preset)
                }
                .check()?;
                train::train(&root, &cfg, &mut |_| {})?;
            }
            Source::Spec { file, text, .. } => {
                let o = SpecTrainOptions {
                    spec: SpecText {
                        origin: file.into(),
                        text: text.into(),
                    },
                    seed: Some(seed),
                    l1: Some(family.l1),
                    log_every: Some(1000),
                    ..Default::default()
                };
                train_spec(&root, &o, &mut |_| {})?;
            }
        }
    }
    Ok(root)
}

/// The table, as markdown, for `seeds` seeds of every family; runs go to `dir`.
pub fn table(dir: &Path, seeds: u64) -> Result<String> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| model, nodes | learned (held-out R² or accuracy) | CPR [chance] | faithfulness at 10% of edges [chance] | ARI: communities [chance] | stability | ARI merged to the task count [chance] | intervention ρ [chance] (points) | planted AUC | first-layer AUC: edges / inputs' own IG | own-task loss ratio [ceiling] | other task's loss ratio |"
    );
    let _ = writeln!(s, "|{}", " --- |".repeat(12));
    for family in families() {
        for nodes in [NodeKind::Neuron, NodeKind::Roi] {
            let mut rows = Vec::new();
            for seed in 0..seeds {
                rows.push(report(dir, family, seed, nodes)?);
                eprintln!(
                    "bench eval: {} {} seed {seed}",
                    family.name(),
                    nodes_name(nodes)
                );
            }
            let _ = writeln!(s, "{}", row(family, nodes, &rows));
        }
    }
    Ok(s)
}

fn nodes_name(nodes: NodeKind) -> &'static str {
    match nodes {
        NodeKind::Roi => "ROIs",
        _ => "neurons",
    }
}

fn row(family: Family, nodes: NodeKind, rows: &[(EvalReport, f64)]) -> String {
    let learned: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let figs: Vec<_> = rows.iter().filter_map(|r| r.0.figures.as_ref()).collect();
    let col = |f: &dyn Fn(&crate::eval::Figures) -> (f64, f64)| -> Vec<(f64, f64)> {
        figs.iter().map(|x| f(x)).collect()
    };
    let at10 = |x: &crate::eval::Figures| {
        x.faithfulness
            .points
            .iter()
            .find(|p| (p.kept - 0.1).abs() < 1e-12)
            .map_or((f64::NAN, f64::NAN), |p| (p.faithfulness, p.chance))
    };
    let mean = |v: &[f64]| {
        let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let one_task = rows.first().is_some_and(|r| r.0.graph.tasks.len() < 2);
    let (ari, merged) = if one_task {
        (
            "undefined (one task)".to_string(),
            "undefined (one task)".to_string(),
        )
    } else {
        let counts: Vec<String> = figs
            .iter()
            .map(|x| x.disentanglement.communities.to_string())
            .collect();
        (
            format!(
                "{} ({})",
                cell(
                    &col(&|x| (x.disentanglement.ari, x.disentanglement.chance[0].mean)),
                    3
                ),
                counts.join(", ")
            ),
            cell(
                &col(&|x| {
                    let k = &x.disentanglement.at_task_count;
                    (k.ari, k.chance[0].mean)
                }),
                3,
            ),
        )
    };
    let points: Vec<String> = figs
        .iter()
        .map(|x| x.interventions.points.len().to_string())
        .collect();
    // Task-subgraph ablations: own task's loss ratio (with its ceiling) and the other tasks'.
    let (mut own, mut other) = (Vec::new(), Vec::new());
    for x in &figs {
        let iv = &x.interventions;
        for p in iv
            .points
            .iter()
            .filter(|p| p.target.starts_with("task subgraph"))
        {
            let t = rows[0]
                .0
                .graph
                .tasks
                .iter()
                .position(|n| *n == p.task)
                .unwrap_or(0);
            if p.target.ends_with(&format!(" {}", p.task)) {
                own.push((p.loss_ratio, iv.ceiling.get(t).copied().unwrap_or(f64::NAN)));
            } else {
                other.push(p.loss_ratio);
            }
        }
    }
    let ratio = |v: f64| {
        if v >= 100.0 {
            format!("x{v:.0}")
        } else {
            format!("x{v:.2}")
        }
    };
    let own_cell = if own.is_empty() {
        "–".into()
    } else {
        let lo = own.iter().map(|o| o.0).fold(f64::INFINITY, f64::min);
        format!(
            "≥ {} [{}]",
            ratio(lo),
            ratio(mean(&own.iter().map(|o| o.1).collect::<Vec<_>>()))
        )
    };
    let other_cell = if other.is_empty() || one_task {
        "–".into()
    } else {
        format!("up to {}", ratio(other.iter().copied().fold(0.0, f64::max)))
    };
    let planted: Vec<f64> = figs
        .iter()
        .filter_map(|x| x.planted_auc.as_ref().map(|a| mean(a)))
        .collect();
    let first: Vec<f64> = figs.iter().map(|x| mean(&x.first_layer_auc)).collect();
    let inputs: Vec<f64> = figs.iter().map(|x| mean(&x.input_auc)).collect();
    format!(
        "| {}, {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} / {} | {own_cell} | {other_cell} |",
        family.name(),
        nodes_name(nodes),
        spread(&learned, 4),
        cell(&col(&|x| (x.faithfulness.cpr, x.faithfulness.chance_cpr)), 3),
        cell(&col(&at10), 3),
        ari,
        spread(&figs.iter().map(|x| x.stability.communities).collect::<Vec<_>>(), 3),
        merged,
        cell(&col(&|x| (x.interventions.rho, x.interventions.chance.mean)), 3),
        points.join(", "),
        if planted.is_empty() { "–".into() } else { spread(&planted, 3) },
        spread(&first, 3),
        spread(&inputs, 3),
    )
}
