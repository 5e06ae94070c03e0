//! Loading what a run holds: its settings, its final model as a runtime view and its data
//! (regenerated from `run.json`) — what every stage after training starts from — and reading
//! and writing checkpoint files.

use super::dir::{write_atomic, RunDir};
use super::info::RunInfo;
use super::preset::preset_data;
use super::spec::{self, SpecInfo, SPEC_RUN_FORMAT};
use crate::data::TaskData;
use crate::model::checkpoint::{Checkpoint, Layout};
use crate::model::spec::{ModelSpec, Resolved};
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::{Error, Result};
use std::path::Path;

/// Writes a checkpoint file atomically.
pub fn save_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    write_atomic(path, &checkpoint.to_bytes(path)?)
}

/// Reads a checkpoint file; with `expect`, the stored tensors must have that layout.
pub fn read_checkpoint(path: &Path, expect: Option<&Layout>) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read checkpoint", e))?;
    Checkpoint::from_bytes(&bytes, path, expect)
}

/// What made a run: a preset's `run.json`, or a spec run's.
#[derive(Debug, Clone)]
pub enum RunKind {
    Preset(Box<RunInfo>),
    Spec(Box<SpecParts>),
}

/// A spec run's settings: its `run.json`, checked spec and what it resolves to.
#[derive(Debug, Clone)]
pub struct SpecParts {
    pub info: SpecInfo,
    pub spec: Valid<ModelSpec>,
    pub resolved: Resolved,
}

/// A finished run, loaded: its directory, settings, final model and data.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub run: RunDir,
    pub kind: RunKind,
    pub model: RuntimeModel,
    pub data: TaskData,
}

impl LoadedRun {
    /// Opens the run at `root` and loads its final model and data.
    pub fn open(root: &Path) -> Result<LoadedRun> {
        LoadedRun::open_with(root, None)
    }

    /// Opens the run at `root` with the model in `model_file` (one of its checkpoints; `None`:
    /// the final model), for a run that is still training.
    pub fn open_with(root: &Path, model_file: Option<&Path>) -> Result<LoadedRun> {
        let run = RunDir::open(root)?;
        let path = run.run_json();
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
        let format = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_string));
        if format.as_deref() == Some(SPEC_RUN_FORMAT) {
            let s = spec::load(&run, &text, model_file)?;
            return Ok(LoadedRun {
                run,
                kind: RunKind::Spec(Box::new(SpecParts {
                    info: s.info,
                    spec: s.spec,
                    resolved: s.resolved,
                })),
                model: s.model,
                data: s.data,
            });
        }
        let info = RunInfo::read(&run)?;
        let path = model_file.map_or_else(|| run.model(), Path::to_path_buf);
        if !path.exists() {
            return Err(Error::bad_file(&path, "missing: the run has no final model (did training finish? resume it with `train --resume`)"));
        }
        let model = read_checkpoint(&path, Some(&Layout::Preset(info.preset)))?.view()?;
        let data = preset_data(&info.config)?;
        Ok(LoadedRun {
            run,
            kind: RunKind::Preset(Box::new(info)),
            model,
            data,
        })
    }

    /// The model stored in one of the run's checkpoints.
    pub fn checkpoint_model(&self, path: &Path) -> Result<RuntimeModel> {
        match &self.kind {
            RunKind::Preset(info) => {
                read_checkpoint(path, Some(&Layout::Preset(info.preset)))?.view()
            }
            RunKind::Spec(s) => spec::spec_model(&s.spec, &s.resolved, path),
        }
    }

    /// What the run is, as the log's segments record it: the preset's name, or `spec`.
    pub fn name(&self) -> &'static str {
        match &self.kind {
            RunKind::Preset(info) => info.preset.name(),
            RunKind::Spec(_) => "spec",
        }
    }

    /// For a planted preset, the task block of every unit of every layer.
    pub fn planted_blocks(&self) -> Option<Vec<Vec<usize>>> {
        match &self.kind {
            RunKind::Preset(info) => info.preset.planted_blocks(),
            RunKind::Spec(_) => None,
        }
    }

    /// The first hidden layer's width (the width series of emergence).
    pub fn width(&self) -> usize {
        self.model.widths().get(1).copied().unwrap_or(0)
    }
}
