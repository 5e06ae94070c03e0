//! Training a preset into a run directory, and resuming it: `run.json`, the event log, a
//! checkpoint file per checkpoint, `model.safetensors` and `tables/history.parquet` around the
//! model's [`Trainer`]. Events that the log already holds (steps, evaluations and checkpoints at
//! or before what it records) are not written again on resume. Training never touches an
//! existing run's files except through resume.

use super::dir::RunDir;
use super::events::{Event, RunStatus};
use super::follow;
use super::info::RunInfo;
use super::load::{read_checkpoint, save_checkpoint};
use super::log::EventLog;
use super::preset::preset_data;
use crate::data::TaskData;
use crate::model::checkpoint::{Checkpoint, Layout};
use crate::model::net::{self, Net};
use crate::model::train::{
    one_thread, EpochReport, Plan, StepReport, TaskMetrics, TrainConfig, TrainSink, Trained,
    Trainer,
};
use crate::model::{Preset, RuntimeModel};
use crate::params::Valid;
use crate::{invalid, Error, Result};
use std::path::Path;

/// Progress reported to whoever drives training (a progress bar, plain lines).
#[derive(Debug, Clone)]
pub enum Update<'a> {
    Step {
        step: u64,
        total: u64,
        loss: f64,
    },
    Epoch {
        epoch: usize,
        epochs: usize,
        val: &'a [TaskMetrics],
    },
}

/// The result of a finished training run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run: RunDir,
    pub steps: u64,
    pub val: Vec<TaskMetrics>,
    /// Training examples per second in this process (steps resumed past are not counted).
    pub examples_per_s: f64,
    pub resumed_from: Option<u64>,
}

/// Trains `cfg` into a new run directory at `root`.
pub fn train(
    root: &Path,
    cfg: &Valid<TrainConfig>,
    observe: &mut (dyn FnMut(Update) + Send),
) -> Result<TrainOutcome> {
    let data = preset_data(cfg)?;
    let run = RunDir::create(root)?;
    RunInfo::new(cfg, &data.tasks).write(&run)?;
    let mut log = EventLog::open(&run.events())?;
    log.emit(
        None,
        Event::RunStart {
            command: "train".into(),
            preset: Some(cfg.preset.name().into()),
            config: serde_json::to_value(&**cfg).expect("serialises"),
        },
    )?;
    let (preset, seed, engine) = (cfg.preset, cfg.seed, cfg.engine);
    let build = move || net::build_with(preset, seed, engine);
    finish(
        run,
        &TrainConfig::plan(cfg),
        &data,
        build,
        None,
        log,
        Logged::default(),
        observe,
    )
}

/// Continues the run at `root` from its newest checkpoint with its stored configuration.
pub fn resume(root: &Path, observe: &mut (dyn FnMut(Update) + Send)) -> Result<TrainOutcome> {
    let run = RunDir::open(root)?;
    let text = std::fs::read_to_string(run.run_json())
        .map_err(|e| Error::io(run.run_json(), "cannot read", e))?;
    if text.contains(super::spec::SPEC_RUN_FORMAT) {
        if let Ok(info) = serde_json::from_str::<super::spec::SpecInfo>(&text) {
            return super::spec_train::resume_spec(run, info, observe);
        }
    }
    let cfg = RunInfo::read(&run)?.config.check()?;
    let logged = Logged::read(&run.events())?;
    if logged.completed {
        invalid!(
            "{}: the run already completed; nothing to resume",
            root.display()
        );
    }
    let data = preset_data(&cfg)?;
    let checkpoint = match run.latest_checkpoint()? {
        Some((_, path)) => Some(read_checkpoint(&path, Some(&Layout::Preset(cfg.preset)))?),
        None => None,
    };
    let log = log_resumed(&run, checkpoint.as_ref())?;
    let (preset, seed, engine) = (cfg.preset, cfg.seed, cfg.engine);
    let build = move || net::build_with(preset, seed, engine);
    finish(
        run,
        &TrainConfig::plan(&cfg),
        &data,
        build,
        checkpoint,
        log,
        logged,
        observe,
    )
}

/// Runs the trainer on one thread with the run's sink, then writes the final model, the
/// history table and `run_end`.
/// `build` makes the network on the training thread (dfdx's are not `Send`).
/// Opens a resumed run's log and logs where training resumes: the step of `checkpoint` (0
/// without one).
pub(crate) fn log_resumed(run: &RunDir, checkpoint: Option<&Checkpoint>) -> Result<EventLog> {
    let mut log = EventLog::open(&run.events())?;
    let from = checkpoint
        .and_then(|c| c.progress.as_ref())
        .map_or(0, |p| p.step);
    log.emit(Some(from), Event::Resumed { from_step: from })?;
    Ok(log)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn finish(
    run: RunDir,
    plan: &Plan,
    data: &TaskData,
    build: impl FnOnce() -> Result<Box<dyn Net>> + Send,
    from: Option<Checkpoint>,
    log: EventLog,
    logged: Logged,
    observe: &mut (dyn FnMut(Update) + Send),
) -> Result<TrainOutcome> {
    let mut sink = RunSink {
        run: &run,
        log,
        logged,
        observe,
    };
    let trained: Trained = one_thread(|| Trainer::new(plan, data, build()?, from)?.run(&mut sink))?;
    save_checkpoint(
        &run.model(),
        &Checkpoint {
            layout: plan.layout.clone(),
            params: trained.params,
            adam: None,
            progress: None,
        },
    )?;
    write_history(&run)?;
    sink.log.emit(
        Some(trained.steps),
        Event::RunEnd {
            status: RunStatus::Completed,
            message: None,
        },
    )?;
    Ok(TrainOutcome {
        run,
        steps: trained.steps,
        val: trained.val,
        examples_per_s: trained.examples_per_s,
        resumed_from: trained.resumed_from,
    })
}

/// What an existing log already records, so a resumed run writes nothing twice.
#[derive(Debug, Default)]
pub(crate) struct Logged {
    last_step: Option<u64>,
    last_eval_epoch: Option<usize>,
    last_checkpoint_step: Option<u64>,
    pub(crate) completed: bool,
}

impl Logged {
    pub(crate) fn read(path: &Path) -> Result<Logged> {
        let mut l = Logged::default();
        if !path.exists() {
            return Ok(l);
        }
        for e in follow::read_all(path)? {
            match e.event {
                Event::TrainStep { .. } => l.last_step = l.last_step.max(e.step),
                Event::Eval { epoch, .. } => l.last_eval_epoch = l.last_eval_epoch.max(Some(epoch)),
                Event::Checkpoint { .. } => {
                    l.last_checkpoint_step = l.last_checkpoint_step.max(e.step)
                }
                Event::RunEnd { status, .. } => l.completed = status == RunStatus::Completed,
                Event::Resumed { .. } => l.completed = false,
                _ => {}
            }
        }
        Ok(l)
    }
}

/// The run layer's side of training: events, checkpoint files and progress updates.
struct RunSink<'a, 'o> {
    run: &'a RunDir,
    log: EventLog,
    logged: Logged,
    observe: &'o mut (dyn FnMut(Update) + Send),
}

impl TrainSink for RunSink<'_, '_> {
    fn step(&mut self, r: &StepReport) -> Result<()> {
        if let Some(losses) = &r.task_losses {
            if self.logged.last_step.is_none_or(|s| r.step > s) {
                self.log.emit(
                    Some(r.step),
                    Event::TrainStep {
                        epoch: r.epoch,
                        losses: losses.clone(),
                        loss: r.loss,
                        lr: r.lr,
                        examples_per_s: r.examples_per_s,
                        eta_s: r.eta_s,
                    },
                )?;
            }
        }
        (self.observe)(Update::Step {
            step: r.step,
            total: r.total,
            loss: r.loss,
        });
        Ok(())
    }

    fn epoch(&mut self, e: &EpochReport) -> Result<()> {
        if self.logged.last_eval_epoch.is_none_or(|l| e.epoch > l) {
            self.log.emit(
                Some(e.step),
                Event::Eval {
                    epoch: e.epoch,
                    split: e.split.to_string(),
                    tasks: e.val.to_vec(),
                },
            )?;
        }
        (self.observe)(Update::Epoch {
            epoch: e.epoch,
            epochs: e.epochs,
            val: e.val,
        });
        Ok(())
    }

    fn checkpoint(&mut self, epoch: usize, c: &Checkpoint) -> Result<()> {
        let step = c.progress.as_ref().map_or(0, |p| p.step);
        save_checkpoint(&self.run.checkpoint(step), c)?;
        if self.logged.last_checkpoint_step.is_none_or(|s| step > s) {
            self.log.emit(
                Some(step),
                Event::Checkpoint {
                    path: format!("checkpoints/step-{step}.safetensors"),
                    epoch,
                },
            )?;
        }
        Ok(())
    }

    fn diverged(&mut self, step: u64, message: &str) -> Result<()> {
        self.log.emit(
            Some(step),
            Event::RunEnd {
                status: RunStatus::Failed,
                message: Some(message.to_string()),
            },
        )
    }
}

/// Writes `tables/history.parquet`: one row per evaluation and task, from the event log (so a
/// resumed run's history includes the evaluations of earlier processes).
pub fn write_history(run: &RunDir) -> Result<()> {
    use polars::prelude::{Column, DataFrame};
    let (mut step, mut epoch, mut task, mut loss, mut r2, mut acc) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for e in follow::read_all(&run.events())? {
        if let Event::Eval {
            epoch: ep, tasks, ..
        } = e.event
        {
            for t in tasks {
                step.push(e.step.unwrap_or(0));
                epoch.push(ep as u64);
                task.push(t.task);
                loss.push(t.loss);
                r2.push(t.r2);
                acc.push(t.accuracy);
            }
        }
    }
    let mut df = DataFrame::new(vec![
        Column::new("step".into(), step),
        Column::new("epoch".into(), epoch),
        Column::new("task".into(), task),
        Column::new("loss".into(), loss),
        Column::new("r2".into(), r2),
        Column::new("accuracy".into(), acc),
    ])
    .map_err(|e| Error::Data(format!("history table: {e}")))?;
    run.write_table("history", &mut df)?;
    Ok(())
}

/// Trains `preset` with its default settings in a temporary directory (removed afterwards) and
/// returns the final model: the fixed model the benchmarks measure.
pub fn train_default_view(preset: Preset) -> Result<RuntimeModel> {
    let dir = std::env::temp_dir().join(format!(
        "circuitscope-default-{}-{}",
        preset,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let model = TrainConfig::defaults(preset)
        .check()
        .and_then(|cfg| train(&dir, &cfg, &mut |_| {}))
        .and_then(|o| read_checkpoint(&o.run.model(), Some(&Layout::Preset(preset)))?.view());
    let _ = std::fs::remove_dir_all(&dir);
    model
}
