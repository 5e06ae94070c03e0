//! `probe` on a run: every probe on its final model, on its validation (*mixed*) split and
//! each per-task split, stored as `tables/probe_*.parquet` and `probe_summary` events.

use super::events::Event;
use super::load::LoadedRun;
use super::log::segment;
use crate::params::Valid;
use crate::probe::{probe, ProbeConfig, ProbeReport};
use crate::Result;
use std::path::{Path, PathBuf};

/// Probes a finished training run (its data regenerated from `run.json`), writes
/// `tables/probe_*.parquet` and appends a `probe` segment (`run_start` … `probe_summary` …
/// `run_end`) to its event log.
pub fn probe_run(root: &Path, cfg: &Valid<ProbeConfig>) -> Result<ProbeReport> {
    let loaded = LoadedRun::open(root)?;
    let (run, model, data) = (&loaded.run, &loaded.model, &loaded.data);
    let mut splits = vec![("mixed".to_string(), &data.val)];
    splits.extend(
        data.per_task
            .iter()
            .enumerate()
            .map(|(t, ds)| (format!("task{t}"), ds)),
    );
    segment(
        run,
        "probe",
        Some(loaded.name()),
        serde_json::json!({ "pcs": cfg.pcs }),
        |log| {
            let mut report = probe(model, &splits, &data.tasks, cfg)?;
            if data.per_task.is_empty() {
                report.notes.push(
                    "no per-task splits: every probe ran on the validation (mixed) split only"
                        .into(),
                );
            }
            write_report(run, &mut report)?;
            for s in &report.summaries {
                log.emit(
                    None,
                    Event::ProbeSummary {
                        probe: s.probe.clone(),
                        layer: s.layer,
                        figures: s.figures.clone(),
                    },
                )?;
            }
            Ok(report)
        },
    )
}

/// Writes every table of a probe report as `tables/probe_<name>.parquet`.
pub fn write_report(run: &super::RunDir, report: &mut ProbeReport) -> Result<Vec<PathBuf>> {
    report
        .tables()
        .into_iter()
        .map(|(name, df)| run.write_table(&format!("probe_{name}"), df))
        .collect()
}
