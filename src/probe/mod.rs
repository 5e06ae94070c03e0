//! Probes: the measuring instrument. Every experiment of the research notes' "Layer
//! correlations" and "Computational graph" chapters as one exact call on a [`RuntimeModel`].
//!
//! Probes only read a model and data; they must never train, change weights or write files
//! (the caller writes the [`report::ProbeReport`]'s tables).

pub mod between;
pub mod census;
pub mod jacobian;
pub mod linalg;
pub mod report;
pub mod subspace;
pub mod timing;
pub mod weights;

pub use crate::model::RuntimeModel;

pub use report::{probe, ProbeConfig, ProbeReport};

use crate::model::checkpoint::Checkpoint;
use crate::model::train::{load_data, RunInfo};
use crate::runlog::{Event, EventLog, RunDir, RunStatus};
use crate::Result;
use std::path::Path;

/// Probes a finished training run: its final model on its validation split and per-task
/// splits (regenerated from `run.json`), writes `tables/probe_*.parquet` and appends a `probe`
/// segment (`run_start` … `probe_summary` … `run_end`) to its event log.
pub fn probe_run(root: &Path, cfg: &ProbeConfig) -> Result<ProbeReport> {
    let run = RunDir::open(root)?;
    let info = RunInfo::read(&run)?;
    let model_path = run.model();
    if !model_path.exists() {
        return Err(crate::Error::bad_file(&model_path, "missing: the run has no final model (did training finish? resume it with `train --resume`)"));
    }
    let model = Checkpoint::load(&model_path, Some(info.preset))?.view()?;
    let data = load_data(&info.config)?;
    let mut splits = vec![("mixed".to_string(), &data.val)];
    splits.extend(
        data.per_task
            .iter()
            .enumerate()
            .map(|(t, ds)| (format!("task{t}"), ds)),
    );
    let mut log = EventLog::open(&run.events())?;
    log.emit(
        None,
        Event::RunStart {
            command: "probe".into(),
            preset: Some(info.preset.name().into()),
            config: serde_json::json!({ "pcs": cfg.pcs }),
        },
    )?;
    let result =
        probe(&model, &splits, &data.tasks, cfg).and_then(|mut r| r.write(&run).map(|_| r));
    match result {
        Ok(report) => {
            for e in &report.summaries {
                log.emit(None, e.clone())?;
            }
            log.emit(
                None,
                Event::RunEnd {
                    status: RunStatus::Completed,
                    message: None,
                },
            )?;
            Ok(report)
        }
        Err(e) => {
            log.emit(
                None,
                Event::RunEnd {
                    status: RunStatus::Failed,
                    message: Some(e.to_string()),
                },
            )?;
            Err(e)
        }
    }
}
