//! Spec runs: the run directory of a model described by a [`ModelSpec`] — imported from PyTorch
//! (`import`), trained from a spec (`train --spec`) or written by the Python logger. One format
//! for all three:
//!
//! - `run.json`: `{"format": "circuitscope-run/2", "origin": …, "spec": {…}, "training": …,
//!   "data": …}` — the spec itself, how the model was trained (when circuitscope trained it)
//!   and where its training data lives (a file and its split; absent for synthetic data, which
//!   the spec regenerates, and for runs that only have a validation set);
//! - `data/val.csv`: the validation split, the spec's input columns and each task's target
//!   column (CSV, so a writer with only a standard library can produce it);
//! - `model.safetensors` and `checkpoints/step-N.safetensors`: the weights under the spec's
//!   tensor names (`[out, in]` weights, PyTorch loads them as they are);
//! - `events.jsonl`: the same event log as every run.

use super::dir::{write_atomic, write_json, RunDir};
use crate::data::table::{to_csv, Table};
use crate::data::{Dataset, TaskData};
use crate::model::import::{build_model, read_state_dict};
use crate::model::spec::{ModelSpec, Resolved};
use crate::model::spec_data;
use crate::model::{Loss, RuntimeModel};
use crate::params::Valid;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format tag of a spec run's `run.json`.
pub const SPEC_RUN_FORMAT: &str = "circuitscope-run/2";

/// A spec run's `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecInfo {
    pub format: String,
    pub crate_version: String,
    /// `import`, `train` or `python`.
    pub origin: String,
    pub spec: ModelSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<Training>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSource>,
}

/// How circuitscope trained a spec model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub schedule: crate::model::train::Schedule,
    pub seed: u64,
    pub log_every: usize,
    pub checkpoint_every: usize,
    pub l1: f64,
}

/// `path` made absolute against the current directory (as given when it cannot be): a run
/// records its data files so, and later commands find them from any directory.
pub fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Where a spec run's training rows come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// The data file (CSV or Parquet), absolute (runs before 2026-12-03: as given).
    pub file: PathBuf,
    /// A separate validation file; without one, the validation rows are a seeded share of
    /// `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_file: Option<PathBuf>,
    pub val_fraction: f64,
    pub split_seed: u64,
}

impl SpecInfo {
    pub fn write(&self, run: &RunDir) -> Result<()> {
        write_json(&run.run_json(), self)
    }
}

/// The columns `data/val.csv` holds: the inputs, then each task's target column.
fn columns(spec: &ModelSpec, r: &Resolved, ds: &Dataset) -> Vec<(String, Vec<f64>)> {
    let mut cols: Vec<(String, Vec<f64>)> = spec
        .inputs
        .iter()
        .enumerate()
        .map(|(i, name)| {
            (
                name.clone(),
                (0..ds.n).map(|row| ds.input(row)[i] as f64).collect(),
            )
        })
        .collect();
    for (t, task) in spec.tasks.iter().enumerate() {
        let name = task.target.clone().unwrap_or_else(|| task.name.clone());
        let values = match (&ds.labels, r.loss) {
            (Some(labels), Loss::CrossEntropy) => labels.iter().map(|&l| l as f64).collect(),
            _ => {
                let o = r.tasks.tasks[t].outputs[0];
                (0..ds.n).map(|row| ds.target(row)[o] as f64).collect()
            }
        };
        cols.push((name, values));
    }
    cols
}

/// The spec a validation CSV is read back with: expression tasks (synthetic data) become
/// target columns named after the task, as `data/val.csv` stores them.
fn as_stored(spec: &ModelSpec) -> ModelSpec {
    let mut s = spec.clone();
    s.synthetic = None;
    for t in &mut s.tasks {
        if t.expr.take().is_some() {
            t.target = Some(t.name.clone());
        }
    }
    s
}

/// A spec's JSON text and the file it came from, which its errors name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpecText {
    pub origin: PathBuf,
    pub text: String,
}

impl SpecText {
    /// Reads a spec file.
    pub fn read(path: &Path) -> Result<SpecText> {
        Ok(SpecText {
            origin: path.to_path_buf(),
            text: std::fs::read_to_string(path).map_err(|e| Error::io(path, "cannot read", e))?,
        })
    }

    /// Parses and validates the spec; every error names the file (`SPEC.json: layer 0: unknown
    /// activation ...`).
    pub fn parse(&self) -> Result<ModelSpec> {
        self.checked(self.parse_unchecked()?)
    }

    /// Parses the spec without validating it (the caller completes it, then [`Self::checked`]).
    pub fn parse_unchecked(&self) -> Result<ModelSpec> {
        ModelSpec::parse(&self.text).map_err(|e| self.in_file(e))
    }

    /// Validates `spec` (read from this file), naming the file in errors.
    pub fn checked(&self, spec: ModelSpec) -> Result<ModelSpec> {
        spec.clone().check().map_err(|e| self.in_file(e))?;
        Ok(spec)
    }

    fn in_file(&self, e: Error) -> Error {
        match e {
            Error::Data(m) | Error::Invalid(m) => Error::bad_file(
                &self.origin,
                m.strip_prefix("spec: ").unwrap_or(&m).to_string(),
            ),
            other => other,
        }
    }
}

/// Writes `data/val.csv`.
pub fn write_val(run: &RunDir, spec: &ModelSpec, r: &Resolved, val: &Dataset) -> Result<()> {
    write_atomic(
        &run.root.join("data/val.csv"),
        to_csv(&columns(spec, r, val)).as_bytes(),
    )
}

/// The classifier's one task owns every output of a model with `d_out` of them when the spec
/// leaves `outputs` out.
pub fn complete_outputs(r: &mut Resolved, d_out: usize) {
    if r.loss == Loss::CrossEntropy && r.tasks.tasks[0].outputs.is_empty() {
        r.tasks.tasks[0].outputs = (0..d_out).collect();
        r.outputs = d_out;
    }
}

/// A spec run, loaded: its `run.json`, checked spec, final model and data.
#[derive(Debug, Clone)]
pub struct SpecRun {
    pub info: SpecInfo,
    pub spec: Valid<ModelSpec>,
    pub resolved: Resolved,
    pub model: RuntimeModel,
    pub data: TaskData,
}

/// The model stored in a spec run's `file` (the final model or a checkpoint).
pub fn spec_model(spec: &ModelSpec, r: &Resolved, file: &Path) -> Result<RuntimeModel> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, "cannot read", e))?;
    let sd = read_state_dict(&bytes, file)?;
    let names = spec.tensor_names(r.activations.len());
    build_model(&sd, &names, &r.activations, spec.inputs.len(), file)
}

/// Loads the spec run in `run` (whose `run.json` holds `text`), with the model in `model_file`
/// (`None`: the final model).
pub fn load(run: &RunDir, text: &str, model_file: Option<&Path>) -> Result<SpecRun> {
    let path = run.run_json();
    let info: SpecInfo = serde_json::from_str(text)
        .map_err(|e| Error::bad_file(&path, format!("not a circuitscope spec run.json: {e}")))?;
    let (spec, mut r) = info
        .spec
        .clone()
        .check()
        .map_err(|e| Error::bad_file(&path, e.to_string()))?;
    let file = model_file.map_or_else(|| run.model(), Path::to_path_buf);
    if !file.exists() {
        return Err(Error::bad_file(
            &file,
            "missing: the run has no final model (did training finish? resume it with `train --resume`)",
        ));
    }
    let model = spec_model(&spec, &r, &file)?;
    complete_outputs(&mut r, model.d_out());
    let d_out = model.d_out();
    let stored = as_stored(&spec);
    let val_path = run.root.join("data/val.csv");
    let val = spec_data::dataset(&stored, &r, &Table::read(&val_path)?, d_out, "val")?;
    let train = match (&info.data, &spec.synthetic) {
        (Some(src), _) => train_rows(&spec, &r, src, d_out)?,
        (None, Some(_)) => spec_data::synthetic(&spec, &r)?.train,
        (None, None) => empty(&val),
    };
    Ok(SpecRun {
        data: TaskData {
            train,
            val,
            per_task: vec![],
            tasks: r.tasks.clone(),
        },
        info,
        spec,
        resolved: r,
        model,
    })
}

/// No rows, the shape of `like`.
fn empty(like: &Dataset) -> Dataset {
    like.subset(&[], "train (not stored)")
}

/// The training rows of a data source: all of `file` when a separate validation file was
/// given, else the rows the seeded split did not hold out.
pub fn train_rows(
    spec: &ModelSpec,
    r: &Resolved,
    src: &DataSource,
    d_out: usize,
) -> Result<Dataset> {
    let table = Table::read(&src.file)?;
    let table = match src.val_file {
        Some(_) => table,
        None => {
            let (train, _) = spec_data::split(table.rows, src.val_fraction, src.split_seed)?;
            table.rows_at(&train)?
        }
    };
    spec_data::dataset(spec, r, &table, d_out, "train")
}

/// The validation rows of a data source.
pub fn val_rows(spec: &ModelSpec, r: &Resolved, src: &DataSource, d_out: usize) -> Result<Dataset> {
    let table = match &src.val_file {
        Some(v) => Table::read(v)?,
        None => {
            let table = Table::read(&src.file)?;
            let (_, val) = spec_data::split(table.rows, src.val_fraction, src.split_seed)?;
            table.rows_at(&val)?
        }
    };
    spec_data::dataset(spec, r, &table, d_out, "val")
}
