//! Loading what a run holds: its settings, its final model as a runtime view and its data
//! (regenerated from `run.json`) — what every stage after training starts from — and reading
//! and writing checkpoint files.

use super::dir::{write_atomic, RunDir};
use super::info::RunInfo;
use super::preset::preset_data;
use crate::data::TaskData;
use crate::model::checkpoint::Checkpoint;
use crate::model::{Preset, RuntimeModel};
use crate::{Error, Result};
use std::path::Path;

/// Writes a checkpoint file atomically.
pub fn save_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    write_atomic(path, &checkpoint.to_bytes(path)?)
}

/// Reads a checkpoint file; with `expect`, the stored shapes must be that preset's.
pub fn read_checkpoint(path: &Path, expect: Option<Preset>) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read checkpoint", e))?;
    Checkpoint::from_bytes(&bytes, path, expect)
}

/// A finished run, loaded: its directory, settings, final model and data.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub run: RunDir,
    pub info: RunInfo,
    pub model: RuntimeModel,
    pub data: TaskData,
}

impl LoadedRun {
    /// Opens the run at `root` and loads its final model and data.
    pub fn open(root: &Path) -> Result<LoadedRun> {
        let run = RunDir::open(root)?;
        let info = RunInfo::read(&run)?;
        let path = run.model();
        if !path.exists() {
            return Err(Error::bad_file(&path, "missing: the run has no final model (did training finish? resume it with `train --resume`)"));
        }
        let model = read_checkpoint(&path, Some(info.preset))?.view()?;
        let data = preset_data(&info.config)?;
        Ok(LoadedRun {
            run,
            info,
            model,
            data,
        })
    }

    /// The model stored in one of the run's checkpoints.
    pub fn checkpoint_model(&self, path: &Path) -> Result<RuntimeModel> {
        read_checkpoint(path, Some(self.info.preset))?.view()
    }

    /// The run's parts: its directory, settings, final model and data.
    pub fn into_parts(self) -> (RunDir, RunInfo, RuntimeModel, TaskData) {
        (self.run, self.info, self.model, self.data)
    }

    /// The preset's name, as the log's segments record it.
    pub fn name(&self) -> &'static str {
        self.info.preset.name()
    }
}
