//! `run.json`: what made a run (the preset, its full training config, the architecture and the
//! task structure), written once when the run is created.

use super::dir::{write_json, RunDir};
use crate::data::TaskStructure;
use crate::model::train::TrainConfig;
use crate::model::{Arch, Preset};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The format tag of a preset run's `run.json`.
pub const RUN_FORMAT: &str = "circuitscope-run/1";

/// What `run.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub format: String,
    pub crate_version: String,
    pub preset: Preset,
    pub seed: u64,
    pub config: TrainConfig,
    pub arch: Arch,
    pub tasks: TaskStructure,
}

impl RunInfo {
    /// The `run.json` of a new run of `cfg` on data with `tasks`.
    pub fn new(cfg: &TrainConfig, tasks: &TaskStructure) -> RunInfo {
        RunInfo {
            format: RUN_FORMAT.into(),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            preset: cfg.preset,
            seed: cfg.seed,
            config: cfg.clone(),
            arch: cfg.preset.arch(),
            tasks: tasks.clone(),
        }
    }

    pub fn read(run: &RunDir) -> Result<RunInfo> {
        let path = run.run_json();
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&path, format!("not a circuitscope run.json: {e}")))
    }

    pub fn write(&self, run: &RunDir) -> Result<()> {
        write_json(&run.run_json(), self)
    }
}
