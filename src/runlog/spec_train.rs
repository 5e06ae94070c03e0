//! `train --spec`: any architecture a spec's training form describes, trained with runtime
//! shapes on the fused engine into a spec run — the presets' events, checkpoints, exact
//! resume and dashboard. Initial weights and biases are drawn as PyTorch's `nn.Linear` draws
//! them, uniform in `±1/√fan_in`, from the seed.

use super::dir::RunDir;
use super::events::Event;
use super::load::read_checkpoint;
use super::log::EventLog;
use super::spec::{
    train_rows, val_rows, write_val, DataSource, SpecInfo, SpecText, Training, SPEC_RUN_FORMAT,
};
use super::train::{finish, log_resumed, Logged, TrainOutcome, Update};
use crate::data::table::Table;
use crate::data::TaskData;
use crate::model::checkpoint::Layout;
use crate::model::fused::FusedNet;
use crate::model::net::Net;
use crate::model::spec::{ModelSpec, Resolved};
use crate::model::spec_data;
use crate::model::train::{Plan, Schedule};
use crate::params::Valid;
use crate::{invalid, Result};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// What `train --spec` trains and where: the spec's text, its data (unless synthetic), and
/// settings that override the spec's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpecTrainOptions {
    pub spec: SpecText,
    pub data: Option<PathBuf>,
    pub val_data: Option<PathBuf>,
    pub val_fraction: f64,
    pub split_seed: u64,
    pub epochs: Option<usize>,
    pub batch: Option<usize>,
    pub lr: Option<f64>,
    pub seed: Option<u64>,
    pub schedule: Option<Schedule>,
    pub log_every: Option<usize>,
    pub checkpoint_every: Option<usize>,
    pub l1: Option<f64>,
}

impl Training {
    /// Rejects settings that cannot train.
    pub fn check(self) -> Result<Training> {
        crate::model::train::check_settings(
            self.epochs,
            self.batch,
            self.lr,
            self.log_every,
            self.l1,
        )?;
        Ok(self)
    }
}

/// The spec, its data and the training plan, all checked: what a new run and a resumed one
/// both start from.
struct Setup {
    spec: Valid<ModelSpec>,
    resolved: Resolved,
    data: TaskData,
    source: Option<DataSource>,
    training: Training,
}

fn setup(spec: &ModelSpec, source: Option<DataSource>, training: Training) -> Result<Setup> {
    let (spec, r) = spec.clone().check()?;
    let Some(widths) = r.widths.clone() else {
        invalid!("train --spec needs the training form of a spec (`hidden` and `activation`); `layers` describes a model to import");
    };
    let d_out = *widths.last().expect("widths");
    let data = match (&spec.synthetic, &source) {
        (Some(_), Some(s)) => invalid!(
            "the spec's data is synthetic; {} is not read (drop it, or give the tasks `target` columns instead of `synthetic`)",
            s.file.display()
        ),
        (Some(_), None) => spec_data::synthetic(&spec, &r)?,
        (None, Some(s)) => TaskData {
            train: train_rows(&spec, &r, s, d_out)?,
            val: val_rows(&spec, &r, s, d_out)?,
            per_task: vec![],
            tasks: r.tasks.clone(),
        },
        (None, None) => invalid!(
            "the spec's tasks name target columns: give the data file they are in (or `synthetic` data in the spec)"
        ),
    };
    Ok(Setup {
        training: training.check()?,
        spec,
        resolved: r,
        data,
        source,
    })
}

impl Setup {
    fn layout(&self) -> Layout {
        let widths = self.resolved.widths.clone().expect("training form");
        Layout::Spec {
            names: self.spec.tensor_names(widths.len() - 1),
            widths,
            activations: self.resolved.activations.clone(),
        }
    }

    fn plan(&self) -> Plan {
        let t = &self.training;
        Plan {
            layout: self.layout(),
            loss: self.resolved.loss,
            epochs: t.epochs,
            batch: t.batch,
            lr: t.lr,
            schedule: t.schedule,
            seed: t.seed,
            log_every: t.log_every,
            checkpoint_every: t.checkpoint_every,
            l1: t.l1,
            held: None,
        }
    }
}

/// Initial parameters as `nn.Linear` draws them: weights and biases uniform in `±1/√fan_in`.
pub fn initial_params(widths: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut p = Vec::new();
    for w in widths.windows(2) {
        let bound = 1.0 / (w[0] as f32).sqrt();
        p.extend((0..w[0] * w[1] + w[1]).map(|_| rng.gen_range(-bound..bound)));
    }
    p
}

/// A training-form classifier without `outputs` gets one per class: as many as the largest
/// label in the data (training and validation files) plus one. The completed spec is what
/// `run.json` stores, so a resume needs no data scan.
fn count_classes(spec: &mut ModelSpec, file: &Path, val: Option<&Path>) -> Result<()> {
    let [task] = spec.tasks.as_mut_slice() else {
        return Ok(());
    };
    if spec.hidden.is_none()
        || task.outputs.is_some()
        || task.loss.as_deref() != Some("cross_entropy")
    {
        return Ok(());
    }
    let Some(column) = task.target.clone() else {
        return Ok(());
    };
    let mut largest = 0.0f64;
    for f in std::iter::once(file).chain(val) {
        let values = Table::read(f)?.column(&column)?;
        largest = values.iter().fold(largest, |m, &v| m.max(v));
    }
    // Labels that are not non-negative integers are refused later, naming their row.
    if largest.fract() == 0.0 && (0.0..=65_536.0).contains(&largest) {
        task.outputs = Some((0..=largest as usize).collect());
    }
    Ok(())
}

/// Trains the spec of `o` into a new spec run at `out`.
/// Builds the fused network of `plan` with its seeded initial weights (a fresh run, or the
/// shape a resumed checkpoint's weights go into).
fn fused_build(plan: &Plan, seed: u64) -> impl FnOnce() -> Result<Box<dyn Net>> + Send {
    let (widths, acts) = (plan.layout.widths(), plan.layout.activations());
    move || -> Result<Box<dyn Net>> {
        Ok(Box::new(FusedNet::with_activations(
            &widths,
            &acts,
            initial_params(&widths, seed),
        )?))
    }
}

pub fn train_spec(
    out: &Path,
    o: &SpecTrainOptions,
    observe: &mut (dyn FnMut(Update) + Send),
) -> Result<TrainOutcome> {
    let mut spec = o.spec.parse_unchecked()?;
    if let Some(file) = &o.data {
        count_classes(&mut spec, file, o.val_data.as_deref())?;
    }
    let spec = o.spec.checked(spec)?;
    let defaults = spec.training();
    let training = Training {
        epochs: o.epochs.unwrap_or(defaults.epochs),
        batch: o.batch.unwrap_or(defaults.batch),
        lr: o.lr.unwrap_or(defaults.lr),
        schedule: o.schedule.unwrap_or(Schedule::Cosine),
        seed: o.seed.unwrap_or(defaults.seed),
        log_every: o.log_every.unwrap_or(20),
        checkpoint_every: o.checkpoint_every.unwrap_or(0),
        l1: o.l1.unwrap_or(0.0),
    };
    let source = o.data.as_ref().map(|f| DataSource {
        file: super::spec::absolute(f),
        val_file: o.val_data.as_deref().map(super::spec::absolute),
        val_fraction: o.val_fraction,
        split_seed: o.split_seed,
    });
    let s = setup(&spec, source, training)?;
    let run = RunDir::create(out)?;
    SpecInfo {
        format: SPEC_RUN_FORMAT.into(),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        origin: "train".into(),
        spec: (*s.spec).clone(),
        training: Some(s.training.clone()),
        data: s.source.clone(),
    }
    .write(&run)?;
    write_val(&run, &s.spec, &s.resolved, &s.data.val)?;
    let mut log = EventLog::open(&run.events())?;
    log.emit(
        None,
        Event::RunStart {
            command: "train".into(),
            preset: Some("spec".into()),
            config: serde_json::to_value(&s.training).expect("serialises"),
        },
    )?;
    let plan = s.plan();
    let build = fused_build(&plan, s.training.seed);
    finish(
        run,
        &plan,
        &s.data,
        build,
        None,
        log,
        Logged::default(),
        observe,
    )
}

/// Continues a spec run from its newest checkpoint with its stored settings.
pub fn resume_spec(
    run: RunDir,
    info: SpecInfo,
    observe: &mut (dyn FnMut(Update) + Send),
) -> Result<TrainOutcome> {
    let Some(training) = info.training.clone() else {
        invalid!(
            "{}: this run was {}ed, not trained by circuitscope; there is no training to resume",
            run.root.display(),
            info.origin
        );
    };
    let logged = Logged::read(&run.events())?;
    if logged.completed {
        invalid!(
            "{}: the run already completed; nothing to resume",
            run.root.display()
        );
    }
    let s = setup(&info.spec, info.data.clone(), training)?;
    let plan = s.plan();
    let checkpoint = match run.latest_checkpoint()? {
        Some((_, path)) => Some(read_checkpoint(&path, Some(&plan.layout))?),
        None => None,
    };
    let log = log_resumed(&run, checkpoint.as_ref())?;
    let build = fused_build(&plan, s.training.seed);
    finish(run, &plan, &s.data, build, checkpoint, log, logged, observe)
}
