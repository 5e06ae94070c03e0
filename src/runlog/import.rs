//! `import`: a PyTorch-trained MLP (a safetensors state dict and a model spec, or a plain
//! `nn.Sequential` named by flags) and its data made into a spec run that every command reads
//! like one of circuitscope's own. Everything is checked before anything is written: the
//! tensors, the data's columns and values, and — with `expect` — the outputs PyTorch computed.

use super::dir::{write_atomic, RunDir};
use super::events::Event;
use super::log::segment;
use super::spec::{
    absolute, complete_outputs, write_val, DataSource, SpecInfo, SpecText, SPEC_RUN_FORMAT,
};
use crate::data::table::Table;
use crate::model::checkpoint::Checkpoint;
use crate::model::import::{build_model, check_expected, read_state_dict, sequential_layers};
use crate::model::spec::{LayerSpec, ModelSpec, TaskSpec, SPEC_FORMAT, SPEC_VERSION};
use crate::{invalid, Error, Result};
use std::path::PathBuf;

/// A plain `nn.Sequential` described by flags instead of a spec file.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequential {
    /// One per Linear layer (activations are not in a state dict).
    pub activations: Vec<String>,
    /// The data's input columns.
    pub inputs: Vec<String>,
    /// Regression target columns, one task (and output) each, in output order.
    pub tasks: Vec<String>,
    /// Or: a classifier's integer class column (one task owning every output).
    pub classify: Option<String>,
}

/// What `import` reads and where it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    pub weights: PathBuf,
    /// The spec (from `--spec`), or a plain `nn.Sequential` described by flags.
    pub spec: std::result::Result<SpecText, Sequential>,
    pub data: PathBuf,
    pub val_data: Option<PathBuf>,
    pub val_fraction: f64,
    pub split_seed: u64,
    pub expect: Option<PathBuf>,
    pub out: PathBuf,
}

/// What an import found.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub run: RunDir,
    pub widths: Vec<usize>,
    pub activations: Vec<String>,
    pub dtypes: Vec<String>,
    pub train_rows: usize,
    pub val_rows: usize,
    /// With `expect`: the largest output difference, relative to its column's scale.
    pub expect_error: Option<f64>,
}

/// The import-form spec of a plain `nn.Sequential`.
fn sequential_spec(s: &Sequential, names: Vec<(String, Option<String>)>) -> Result<ModelSpec> {
    if s.activations.len() != names.len() {
        invalid!(
            "--activations names {} activations, but the state dict holds {} Linear layers ({}): give one per layer, the last usually `identity`",
            s.activations.len(),
            names.len(),
            names
                .iter()
                .map(|n| n.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if s.inputs.is_empty() {
        invalid!("--inputs: a model without a spec needs its input columns named, in the model's input order");
    }
    let layers = names
        .into_iter()
        .zip(&s.activations)
        .map(|((weight, bias), a)| {
            let (activation, slope) = match a.split_once(':') {
                Some((n, slope)) => (
                    n.to_string(),
                    Some(slope.parse::<f64>().map_err(|_| {
                        Error::Invalid(format!("activation `{a}`: `{slope}` is not a slope"))
                    })?),
                ),
                None => (a.clone(), None),
            };
            Ok(LayerSpec {
                weight,
                bias,
                activation,
                slope,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tasks = match (&s.classify, s.tasks.is_empty()) {
        (Some(c), true) => vec![TaskSpec {
            name: c.clone(),
            outputs: None,
            target: Some(c.clone()),
            expr: None,
            loss: Some("cross_entropy".into()),
            uses: None,
        }],
        (None, false) => s
            .tasks
            .iter()
            .map(|t| TaskSpec {
                name: t.clone(),
                outputs: None,
                target: Some(t.clone()),
                expr: None,
                loss: None,
                uses: None,
            })
            .collect(),
        _ => invalid!("a model without a spec needs its target columns named (regression tasks) or one class column (a classifier), not both"),
    };
    Ok(ModelSpec {
        format: SPEC_FORMAT.into(),
        version: SPEC_VERSION,
        inputs: s.inputs.clone(),
        layers: Some(layers),
        hidden: None,
        activation: None,
        slope: None,
        tasks,
        synthetic: None,
        epochs: None,
        batch: None,
        lr: None,
        seed: None,
    })
}

/// Imports a model and its data into a new spec run at `o.out`.
pub fn import_run(o: &ImportOptions) -> Result<ImportReport> {
    let bytes = std::fs::read(&o.weights).map_err(|e| Error::io(&o.weights, "cannot read", e))?;
    let sd = read_state_dict(&bytes, &o.weights)?;
    let spec = match &o.spec {
        Ok(text) => text.parse()?,
        Err(seq) => sequential_spec(seq, sequential_layers(&sd, &o.weights)?)?,
    };
    let (spec, mut r) = spec.check()?;
    if spec.layers.is_none() {
        invalid!("import needs the import form of a spec (`layers` naming each layer's tensors); `hidden` describes a model to train (`train --spec`)");
    }
    let names = spec.tensor_names(r.activations.len());
    let model = build_model(&sd, &names, &r.activations, spec.inputs.len(), &o.weights)?;
    let d_out = model.d_out();
    complete_outputs(&mut r, d_out);
    if let Some(t) = r
        .tasks
        .tasks
        .iter()
        .find(|t| t.outputs.iter().any(|&o| o >= d_out))
    {
        invalid!(
            "task `{}` owns outputs {:?}, but the model has {d_out} outputs",
            t.name,
            t.outputs
        );
    }
    let src = DataSource {
        file: absolute(&o.data),
        val_file: o.val_data.as_deref().map(absolute),
        val_fraction: o.val_fraction,
        split_seed: o.split_seed,
    };
    let train = super::spec::train_rows(&spec, &r, &src, d_out)?;
    let val = super::spec::val_rows(&spec, &r, &src, d_out)?;
    let expect_error = match &o.expect {
        None => None,
        Some(path) => {
            let table = Table::read(path)?;
            let mut x = vec![0.0; table.rows * spec.inputs.len()];
            for (i, name) in spec.inputs.iter().enumerate() {
                for (row, v) in table.column(name)?.into_iter().enumerate() {
                    x[row * spec.inputs.len() + i] = v;
                }
            }
            let expected = (0..d_out)
                .map(|k| table.column(&format!("output_{k}")))
                .collect::<Result<Vec<_>>>()?;
            Some(
                check_expected(&model, &x, &expected, &|r| table.row_name(r)).map_err(
                    |e| match e {
                        Error::Data(m) => Error::bad_file(path, m),
                        other => other,
                    },
                )?,
            )
        }
    };
    let run = RunDir::create(&o.out)?;
    SpecInfo {
        format: SPEC_RUN_FORMAT.into(),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        origin: "import".into(),
        spec: (*spec).clone(),
        training: None,
        data: Some(src),
    }
    .write(&run)?;
    write_val(&run, &spec, &r, &val)?;
    write_atomic(
        &run.model(),
        &Checkpoint::of(&model, names).to_bytes(&run.model())?,
    )?;
    let activations: Vec<String> = r
        .activations
        .iter()
        .map(|a| match a.spec_name() {
            (n, Some(s)) => format!("{n}({s})"),
            (n, None) => n.to_string(),
        })
        .collect();
    let report = ImportReport {
        widths: model.widths(),
        activations,
        dtypes: sd.dtypes.clone(),
        train_rows: train.n,
        val_rows: val.n,
        expect_error,
        run: run.clone(),
    };
    let config = serde_json::json!({
        "weights": o.weights, "data": o.data, "val_data": o.val_data, "expect": o.expect,
    });
    segment(&run, "import", Some("spec"), config, |log| {
        log.emit(
            None,
            Event::Note {
                text: format!(
                    "import: widths {:?}, activations {}, weights {}, {} training and {} validation rows{}",
                    report.widths,
                    report.activations.join(", "),
                    report.dtypes.join("/"),
                    report.train_rows,
                    report.val_rows,
                    report
                        .expect_error
                        .map(|e| format!(", outputs equal PyTorch's within {e:.1e} of each column's scale"))
                        .unwrap_or_default()
                ),
            },
        )
    })?;
    Ok(report)
}
