//! `eval` on a run: its graph evaluated on the validation split (`eval_faithfulness` and
//! `eval_interventions` tables; `faithfulness_point`, `intervention`, `note` and `emergence`
//! events), and emergence over its checkpoints (`eval_emergence`).

use super::dir::RunDir;
use super::events::Event;
use super::load::LoadedRun;
use super::log::{segment, EventLog};
use crate::eval::ablation::Ablation;
use crate::eval::report::structure_at;
use crate::eval::{evaluate, sparkline, EvalReport, Figures, FRACTIONS, STRUCTURE};
use crate::graph::GraphSpec;
use crate::params::{Choice, Valid};
use crate::{invalid, Result};
use polars::prelude::{Column, DataFrame};
use std::path::Path;

/// Evaluates the run's graph (`spec`) under `kind` ablation: writes the tables
/// `eval_faithfulness` and `eval_interventions` and logs an `eval` segment. Its
/// `faithfulness_point` and `intervention` events are exactly the curve's points and the
/// points of the printed ρ; a model that has not learned its tasks logs neither.
pub fn eval_run(root: &Path, spec: &Valid<GraphSpec>, kind: Ablation) -> Result<EvalReport> {
    let loaded = LoadedRun::open(root)?;
    let (run, model, data) = (&loaded.run, &loaded.model, &loaded.data);
    spec.fits(model, &data.val)?;
    let config = serde_json::json!({ "ablation": kind, "graph": &**spec });
    segment(run, "eval", Some(loaded.name()), config, |log| {
        let blocks = loaded.planted_blocks();
        let report = evaluate(model, data, spec, kind, blocks.as_deref())?;
        match &report.figures {
            None => log.emit(
                None,
                Event::Note {
                    text: format!(
                        "eval: every structure figure undefined (not learned: {})",
                        report.learned.reason()
                    ),
                },
            )?,
            Some(fig) => log_figures(log, fig, spec, kind)?,
        }
        write_tables(run, report.figures.as_ref())?;
        // The final model's structure figures, tagged with its width: the width series.
        let step = run.latest_checkpoint()?.map_or(0, |(s, _)| s);
        log.emit(
            Some(step),
            Event::Emergence {
                checkpoint_step: step,
                width: loaded.width(),
                figures: finite_figures(&report.structure()),
            },
        )?;
        Ok(report)
    })
}

/// The curve's points, every intervention and a note with the headline figures.
fn log_figures(log: &mut EventLog, fig: &Figures, spec: &GraphSpec, kind: Ablation) -> Result<()> {
    let f = &fig.faithfulness;
    let iv = &fig.interventions;
    log_curve_and_interventions(log, None, spec.nodes.key(), kind, Some(f), &iv.points)?;
    let d = &fig.disentanglement;
    let cpr = if f.defined {
        format!("{:.4} (chance {:.4})", f.cpr, f.chance_cpr)
    } else {
        format!(
            "undefined (the model removes {:.1}% of its ablated self's loss)",
            100.0 * f.gain
        )
    };
    let mut text = format!(
        "eval: CPR {cpr}, ARI {:.4} (chance {:.4}), NMI {:.4} (chance {:.4}), purity {:.4} (chance {:.4}) ({} communities, stability {:.4}), at the task count ARI {:.4} ({} communities, stability {:.4}), intervention Spearman {:.4} (chance {:.4}) over {} points",
        d.ari, d.chance[0].mean, d.nmi, d.chance[1].mean, d.purity, d.chance[2].mean,
        d.communities, fig.stability.communities, d.at_task_count.ari,
        d.at_task_count.communities, fig.stability.at_task_count, iv.rho, iv.chance.mean,
        iv.points.len()
    );
    if let Some(a) = &fig.planted_auc {
        text.push_str(&format!("; planted-circuit ROC AUC per task {a:?}"));
    }
    log.emit(None, Event::Note { text })
}

/// A defined faithfulness curve's points and every intervention, as events (at `step`).
pub(crate) fn log_curve_and_interventions(
    log: &mut EventLog,
    step: Option<u64>,
    graph: &str,
    kind: Ablation,
    curve: Option<&crate::eval::Faithfulness>,
    interventions: &[crate::eval::Intervention],
) -> Result<()> {
    for p in curve.iter().filter(|f| f.defined).flat_map(|f| &f.points) {
        log.emit(
            step,
            Event::FaithfulnessPoint {
                graph: graph.into(),
                ablation: kind.key().into(),
                edges_kept: p.kept,
                faithfulness: p.faithfulness,
            },
        )?;
    }
    for i in interventions {
        log.emit(
            step,
            Event::Intervention {
                target: i.target.clone(),
                task: i.task.clone(),
                predicted: i.predicted,
                observed: i.observed,
            },
        )?;
    }
    Ok(())
}

/// `eval_faithfulness` (kept, loss, faithfulness, chance; NaN where undefined) and
/// `eval_interventions` (empty when the model has not learned).
fn write_tables(run: &RunDir, fig: Option<&Figures>) -> Result<()> {
    let err = |e: polars::prelude::PolarsError| crate::Error::Data(format!("eval table: {e}"));
    let nan = vec![f64::NAN; FRACTIONS.len()];
    let (kept, loss, faith, chance) = match fig {
        Some(f) => {
            let p = &f.faithfulness.points;
            (
                p.iter().map(|p| p.kept).collect::<Vec<_>>(),
                p.iter().map(|p| p.loss).collect::<Vec<_>>(),
                p.iter().map(|p| p.faithfulness).collect::<Vec<_>>(),
                p.iter().map(|p| p.chance).collect::<Vec<_>>(),
            )
        }
        None => (FRACTIONS.to_vec(), nan.clone(), nan.clone(), nan),
    };
    let mut ft = DataFrame::new(vec![
        Column::new("kept".into(), kept),
        Column::new("loss".into(), loss),
        Column::new("faithfulness".into(), faith),
        Column::new("chance".into(), chance),
    ])
    .map_err(err)?;
    run.write_table("eval_faithfulness", &mut ft)?;
    let iv: &[crate::eval::Intervention] = fig.map_or(&[], |f| &f.interventions.points);
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
    Ok(())
}

/// Structure over training: for every checkpoint of a run (every `every`-th, and the last),
/// the structure figures of [`structure_at`] on the validation split. Writes
/// `tables/eval_emergence.parquet` and one `emergence` event per checkpoint.
pub fn emergence_run(
    root: &Path,
    spec: &Valid<GraphSpec>,
    kind: Ablation,
    every: usize,
) -> Result<DataFrame> {
    let loaded = LoadedRun::open(root)?;
    let (run, data) = (&loaded.run, &loaded.data);
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
    let width = loaded.width();
    segment(
        run,
        "emergence",
        Some(loaded.name()),
        serde_json::json!({ "ablation": kind, "every": every }),
        |log| {
            let mut rows: Vec<(u64, [f64; 7])> = Vec::new();
            for (step, path) in &chosen {
                let model = loaded.checkpoint_model(path)?;
                let figs = structure_at(&model, data, spec, kind)?;
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

/// The last `eval`'s faithfulness curve of a run as a sparkline line, if it has one.
pub fn sparkline_of_run(run: &RunDir) -> Result<Option<String>> {
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
        return Ok(Some(
            "faithfulness: undefined (the model has not learned its tasks, or removes too little of its fully ablated self's loss; `eval` says which)".into(),
        ));
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
