//! `circuitscope bench circuits`: every discovery method on one faithfulness table, for circuits
//! of edges and for circuits of neurons. Each model family is trained with its defaults on
//! several seeds (the runs of `bench eval`, reused), each method run by `discover` (mean
//! ablation, neuron graphs; the planted AUC is the mean over tasks of each task's own
//! discovery), and each figure printed as the mean over seeds with its range. Minutes of work: a benchmark, never part of the test command.

use super::evaluation::{spread, trained, Family, PRODUCTS3};
use crate::eval::ablation::Ablation;
use crate::eval::{DiscoverOptions, Level, Method};
use crate::graph::GraphSpec;
use crate::model::Preset;
use crate::params::Choice;
use crate::runlog::discover::discover_run;
use crate::Result;
use std::fmt::Write;
use std::path::Path;

/// The families of the table: plain, planted, sparse, shared-input, three-task, a classifier.
pub fn families() -> Vec<Family> {
    let f = Family::preset;
    vec![
        f(Preset::Products, 0.0),
        f(Preset::ProductsPlanted, 0.0),
        f(Preset::Products, 1e-4),
        f(Preset::ProductsShared, 0.0),
        Family {
            source: PRODUCTS3,
            l1: 0.0,
        },
        f(Preset::Digits, 0.0),
    ]
}

/// The tables, as markdown, for `seeds` seeds of every family and every method: circuits of
/// edges, then circuits of neurons; runs go to `dir`. `progress` hears of each (level,
/// family, seed, method) as it finishes.
pub fn table(dir: &Path, seeds: u64, progress: &mut dyn FnMut(&str)) -> Result<String> {
    let mut s = String::new();
    for level in [Level::Edge, Level::Node] {
        s.push_str(&level_table(dir, seeds, level, progress)?);
        s.push('\n');
    }
    Ok(s)
}

/// One level's table.
fn level_table(
    dir: &Path,
    seeds: u64,
    level: Level,
    progress: &mut dyn FnMut(&str),
) -> Result<String> {
    let spec = GraphSpec::default().check()?;
    let unit = match level {
        Level::Edge => "edges",
        Level::Node => "neurons",
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| model | method | CPR [chance] | CMD | at 1% | at 2% | at 5% | at 10% of {unit} [chance] | completeness at 10% | planted AUC | time (s) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for family in families() {
        let runs: Vec<std::path::PathBuf> = (0..seeds)
            .map(|seed| trained(dir, family, seed))
            .collect::<Result<_>>()?;
        for method in Method::ALL.iter().copied() {
            let opts = DiscoverOptions {
                level,
                ..DiscoverOptions::new(method)
            }
            .check()?;
            let mut rows = Vec::new();
            for (seed, root) in runs.iter().enumerate() {
                let r = discover_run(root, &spec, Ablation::Mean, &opts)?;
                progress(&format!(
                    "{unit}: {} seed {seed} {}: {:.1} s",
                    family.name(),
                    method.key(),
                    r.seconds
                ));
                rows.push(r);
            }
            let col = |f: &dyn Fn(&crate::runlog::discover::DiscoverReport) -> f64| -> Vec<f64> {
                rows.iter().map(f).collect()
            };
            let curve = |r: &crate::runlog::discover::DiscoverReport, at: f64, chance: bool| {
                r.faithfulness
                    .as_ref()
                    .filter(|f| f.defined)
                    .and_then(|f| f.points.iter().find(|p| p.kept == at))
                    .map_or(f64::NAN, |p| if chance { p.chance } else { p.faithfulness })
            };
            let defined = |r: &crate::runlog::discover::DiscoverReport, v: f64| {
                if r.faithfulness.as_ref().is_some_and(|f| f.defined) {
                    v
                } else {
                    f64::NAN
                }
            };
            let mean = |v: Vec<f64>| -> String {
                let v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
                if v.is_empty() {
                    "–".into()
                } else {
                    format!("{:.3}", v.iter().sum::<f64>() / v.len() as f64)
                }
            };
            let cpr = col(&|r| defined(r, r.faithfulness.as_ref().map_or(f64::NAN, |f| f.cpr)));
            let chance_cpr = col(&|r| {
                defined(
                    r,
                    r.faithfulness.as_ref().map_or(f64::NAN, |f| f.chance_cpr),
                )
            });
            let cmd = col(&|r| defined(r, r.faithfulness.as_ref().map_or(f64::NAN, |f| f.cmd)));
            let planted = col(&|r| r.planted_auc.unwrap_or(f64::NAN));
            let _ = writeln!(
                s,
                "| {} | {} | {} [{}] | {} | {} | {} | {} | {} [{}] | {} | {} | {} |",
                family.name(),
                method.key(),
                spread(&cpr, 3),
                mean(chance_cpr),
                spread(&cmd, 3),
                spread(&col(&|r| curve(r, 0.01, false)), 3),
                spread(&col(&|r| curve(r, 0.02, false)), 3),
                spread(&col(&|r| curve(r, 0.05, false)), 3),
                spread(&col(&|r| curve(r, 0.1, false)), 3),
                mean(col(&|r| curve(r, 0.1, true))),
                spread(&col(&|r| defined(r, r.completeness)), 3),
                if planted.iter().any(|a| a.is_finite()) {
                    spread(&planted, 3)
                } else {
                    "–".into()
                },
                spread(&col(&|r| r.seconds), 2),
            );
        }
    }
    Ok(s)
}
