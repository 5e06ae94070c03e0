//! Probes: the measuring instrument. Every experiment of the research notes' "Layer
//! correlations" and "Computational graph" chapters as one exact call on a [`RuntimeModel`].
//!
//! Probes only read a model and data; they must never train, change weights or write files
//! (the caller writes the [`report::ProbeReport`]'s tables).

pub mod between;
pub mod census;
pub mod jacobian;
pub mod report;
pub mod subspace;
pub mod timing;
pub mod weights;

pub use crate::model::RuntimeModel;

pub use report::{probe, ProbeConfig, ProbeReport};

use crate::model::train::load_trained;
use crate::runlog::{segment, RunDir};
use crate::Result;
use std::path::Path;

/// Probes a finished training run: its final model on its validation split and per-task
/// splits (regenerated from `run.json`), writes `tables/probe_*.parquet` and appends a `probe`
/// segment (`run_start` … `probe_summary` … `run_end`) to its event log.
pub fn probe_run(root: &Path, cfg: &ProbeConfig) -> Result<ProbeReport> {
    let run = RunDir::open(root)?;
    let (info, model, data) = load_trained(&run)?;
    let mut splits = vec![("mixed".to_string(), &data.val)];
    splits.extend(
        data.per_task
            .iter()
            .enumerate()
            .map(|(t, ds)| (format!("task{t}"), ds)),
    );
    segment(
        &run,
        "probe",
        Some(info.preset.name()),
        serde_json::json!({ "pcs": cfg.pcs }),
        |log| {
            let mut report = probe(&model, &splits, &data.tasks, cfg)?;
            report.write(&run)?;
            for e in &report.summaries {
                log.emit(None, e.clone())?;
            }
            Ok(report)
        },
    )
}
