//! Training a preset into a run directory, with exact resume.
//!
//! The loop is written once over [`Net`]: shuffle with a ChaCha8 RNG, minibatches, Adam with
//! state we own, per-task losses, validation every epoch, a checkpoint at every epoch end (and
//! every `checkpoint_every` steps). A checkpoint holds the weights, Adam's moments, the step and
//! the RNG state at the start of its epoch, so `resume` redraws the same shuffle, skips the
//! batches already done and reaches the same final weights bit for bit. Events that the log
//! already holds (steps and evaluations at or before what it records) are not written again.
//! Training must never touch an existing run's files except through resume.

use super::adam::{AdamConfig, AdamState};
use super::checkpoint::{Checkpoint, Progress};
use super::net::{self, Engine, Net};
use super::{Loss, Preset};
use crate::data::{
    digits, idx, poly1d, products::ProductsConfig, Dataset, Task, TaskData, TaskStructure,
};
use crate::runlog::events::TaskMetrics;
use crate::runlog::{follow, write_atomic, Event, EventLog, RunDir, RunStatus};
use crate::{invalid, Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the learning rate changes over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Cosine decay from `lr` to `lr / 100` over all steps.
    Cosine,
}

/// Everything that determines a training run. Stored in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub preset: Preset,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub schedule: Schedule,
    /// Seeds the initial weights and the shuffling.
    pub seed: u64,
    /// Seeds the data set (the task, not the training).
    pub data_seed: u64,
    /// Training examples for generated data sets (`products*`, `poly`).
    pub n_train: usize,
    /// Which member of the `poly1d` family a `poly` model learns.
    pub member: usize,
    /// `mnist`: the folder with the IDX files; `digits`: a CSV file of the same layout as the
    /// embedded set, instead of it.
    pub data_dir: Option<PathBuf>,
    /// A `train_step` event every this many steps (and at each epoch's last step).
    pub log_every: usize,
    /// A checkpoint every this many steps besides each epoch end; 0 for epoch ends only.
    pub checkpoint_every: usize,
    /// Which code computes the passes (runs from before engines existed used dfdx).
    #[serde(default)]
    pub engine: Engine,
    /// L1 penalty on the weights (not the biases): training minimises the task loss plus
    /// `l1 · Σ|w|`, which concentrates the computation on fewer edges. 0 for none. Logged losses
    /// are the task loss alone.
    #[serde(default)]
    pub l1: f64,
}

impl TrainConfig {
    /// The preset's defaults: what `train --preset P` uses when no option is given.
    pub fn defaults(preset: Preset) -> TrainConfig {
        let (epochs, batch, lr, n_train) = match preset {
            Preset::Products
            | Preset::Products16
            | Preset::ProductsPlanted
            | Preset::ProductsGelu
            | Preset::ProductsShared => (30, 64, 3e-3, 20_000),
            Preset::Products64 => (20, 256, 1e-3, 20_000),
            Preset::Poly => (100, 64, 3e-3, 4_096),
            Preset::Digits => (60, 32, 1e-3, 0),
            Preset::Mnist => (10, 64, 1e-3, 0),
        };
        TrainConfig {
            preset,
            epochs,
            batch,
            lr,
            schedule: Schedule::Cosine,
            seed: 0,
            data_seed: 0,
            n_train,
            member: 0,
            data_dir: None,
            log_every: 20,
            checkpoint_every: 0,
            engine: Engine::Dfdx,
            l1: 0.0,
        }
    }

    /// Rejects options that cannot train, before any work starts.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            invalid!("--epochs must be at least 1");
        }
        if self.batch == 0 {
            invalid!("--batch must be at least 1");
        }
        // Digits and MNIST have fixed splits (n_train is unused there); the generated sets
        // need at least one example.
        if self.n_train == 0 && !matches!(self.preset, Preset::Digits | Preset::Mnist) {
            invalid!("--n-train must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            invalid!("--lr must be a positive finite number, got {}", self.lr);
        }
        if self.log_every == 0 {
            invalid!("--log-every must be at least 1");
        }
        self.engine.check(self.preset)?;
        if !(self.l1.is_finite() && self.l1 >= 0.0) {
            invalid!("--l1 must be a finite number >= 0, got {}", self.l1);
        }
        if self.preset == Preset::Mnist && self.data_dir.is_none() {
            invalid!("preset `mnist` needs --data DIR with the MNIST IDX files (train-images-idx3-ubyte, ...)");
        }
        if self.preset == Preset::Poly && self.member >= POLY_MEMBERS {
            invalid!(
                "--member {} is out of range: the poly1d family has {POLY_MEMBERS} members (0..{})",
                self.member,
                POLY_MEMBERS - 1
            );
        }
        Ok(())
    }
}

/// Members of the `poly1d` family that `poly` models are drawn from.
pub const POLY_MEMBERS: usize = 10;

/// Makes (or reads) the data a config trains on, and checks it fits the preset's network.
pub fn load_data(cfg: &TrainConfig) -> Result<TaskData> {
    let data = match cfg.preset {
        Preset::Products
        | Preset::ProductsPlanted
        | Preset::ProductsGelu
        | Preset::Products64
        | Preset::Products16
        | Preset::ProductsShared => ProductsConfig {
            shared: cfg.preset == Preset::ProductsShared,
            n_train: cfg.n_train,
            seed: cfg.data_seed,
            ..ProductsConfig::default()
        }
        .generate()?,
        Preset::Poly => {
            let family = poly1d::family(&poly1d::FamilyConfig {
                members: POLY_MEMBERS,
                seed: cfg.data_seed,
                ..Default::default()
            });
            let p = &family[cfg.member];
            let name = format!("poly1d/{}", cfg.member);
            TaskData {
                train: poly1d::dataset(
                    p,
                    &format!("{name}/train"),
                    cfg.n_train,
                    cfg.data_seed,
                    300 + cfg.member as u64,
                )?,
                val: poly1d::dataset(
                    p,
                    &format!("{name}/val"),
                    1024,
                    cfg.data_seed,
                    400 + cfg.member as u64,
                )?,
                per_task: vec![],
                tasks: TaskStructure {
                    tasks: vec![Task {
                        name,
                        inputs: vec![0],
                        outputs: vec![0],
                    }],
                },
            }
        }
        Preset::Digits => {
            let all = match &cfg.data_dir {
                Some(path) => digits::read_csv(path)?,
                None => digits::load_all(),
            };
            let (train, val) = digits::train_test(&all);
            TaskData {
                train,
                val,
                per_task: vec![],
                tasks: classes(64),
            }
        }
        Preset::Mnist => {
            let dir = cfg.data_dir.as_deref().expect("validated");
            let (train, val) = idx::load_mnist(dir)?;
            TaskData {
                train,
                val,
                per_task: vec![],
                tasks: classes(784),
            }
        }
    };
    let w = cfg.preset.arch().widths;
    if data.train.d_in != w[0] || data.train.d_out != *w.last().unwrap() {
        invalid!(
            "{}: {} inputs and {} outputs, but preset `{}` takes {} and gives {}",
            data.train.name,
            data.train.d_in,
            data.train.d_out,
            cfg.preset,
            w[0],
            w.last().unwrap()
        );
    }
    Ok(data)
}

fn classes(d_in: usize) -> TaskStructure {
    TaskStructure {
        tasks: vec![Task {
            name: "class".into(),
            inputs: (0..d_in).collect(),
            outputs: (0..10).collect(),
        }],
    }
}

/// What `run.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub format: String,
    pub crate_version: String,
    pub preset: Preset,
    pub seed: u64,
    pub config: TrainConfig,
    pub arch: super::Arch,
    pub tasks: TaskStructure,
}

impl RunInfo {
    pub fn read(run: &RunDir) -> Result<RunInfo> {
        let path = run.run_json();
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&path, format!("not a circuitscope run.json: {e}")))
    }
}

/// A finished run's settings, final model (as a runtime view) and data, regenerated from
/// `run.json`: what every stage after training starts from.
pub fn load_trained(run: &RunDir) -> Result<(RunInfo, super::RuntimeModel, TaskData)> {
    let info = RunInfo::read(run)?;
    let path = run.model();
    if !path.exists() {
        return Err(Error::bad_file(&path, "missing: the run has no final model (did training finish? resume it with `train --resume`)"));
    }
    let model = Checkpoint::load(&path, Some(info.preset))?.view()?;
    let data = load_data(&info.config)?;
    Ok((info, model, data))
}

/// Trains `preset` with its default settings in a temporary directory (removed afterwards) and
/// returns the final model: the fixed model the benchmarks measure.
pub fn train_default_view(preset: Preset) -> Result<super::RuntimeModel> {
    let dir = std::env::temp_dir().join(format!(
        "circuitscope-default-{}-{}",
        preset,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let model = train(&dir, &TrainConfig::defaults(preset), &mut |_| {})
        .and_then(|o| Checkpoint::load(&o.run.model(), Some(preset))?.view());
    let _ = std::fs::remove_dir_all(&dir);
    model
}

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
    cfg: &TrainConfig,
    observe: &mut (dyn FnMut(Update) + Send),
) -> Result<TrainOutcome> {
    cfg.validate()?;
    let data = load_data(cfg)?;
    let run = RunDir::create(root)?;
    let info = RunInfo {
        format: "circuitscope-run/1".into(),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        preset: cfg.preset,
        seed: cfg.seed,
        config: cfg.clone(),
        arch: cfg.preset.arch(),
        tasks: data.tasks.clone(),
    };
    write_atomic(
        &run.run_json(),
        serde_json::to_string_pretty(&info)
            .expect("serialises")
            .as_bytes(),
    )?;
    let mut log = EventLog::open(&run.events())?;
    log.emit(
        None,
        Event::RunStart {
            command: "train".into(),
            preset: Some(cfg.preset.name().into()),
            config: serde_json::to_value(cfg).expect("serialises"),
        },
    )?;
    one_thread(|| run_loop(run, cfg, &data, None, log, Logged::default(), observe))
}

/// Continues the run at `root` from its newest checkpoint with its stored configuration.
pub fn resume(root: &Path, observe: &mut (dyn FnMut(Update) + Send)) -> Result<TrainOutcome> {
    let run = RunDir::open(root)?;
    let info = RunInfo::read(&run)?;
    let cfg = info.config;
    cfg.validate()?;
    let logged = Logged::read(&run.events())?;
    if logged.completed {
        invalid!(
            "{}: the run already completed; nothing to resume",
            root.display()
        );
    }
    let data = load_data(&cfg)?;
    let ckpt = match run.latest_checkpoint()? {
        Some((_, path)) => Some(Checkpoint::load(&path, Some(cfg.preset))?),
        None => None,
    };
    let mut log = EventLog::open(&run.events())?;
    let from = ckpt
        .as_ref()
        .and_then(|c| c.progress.as_ref())
        .map_or(0, |p| p.step);
    log.emit(Some(from), Event::Resumed { from_step: from })?;
    one_thread(|| run_loop(run, &cfg, &data, ckpt, log, logged, observe))
}

/// What an existing log already records, so a resumed run writes nothing twice.
#[derive(Debug, Default)]
struct Logged {
    last_step: Option<u64>,
    last_eval_epoch: Option<usize>,
    last_checkpoint_step: Option<u64>,
    completed: bool,
}

impl Logged {
    fn read(path: &Path) -> Result<Logged> {
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

/// Runs `f` on a pool of one thread. dfdx splits every matmul across the current rayon pool;
/// for these small layers the split costs more than it saves (products64 at batch 256 trains
/// about twice as fast on one thread as on two, BENCHMARKS.md), and the results are bitwise the
/// same. Many models at once (zoos) are parallel across models instead.
pub fn one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

fn lr_at(cfg: &TrainConfig, step: u64, total: u64) -> f64 {
    match cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Cosine => {
            let p = step as f64 / total.max(1) as f64;
            cfg.lr * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
        }
    }
}

fn run_loop(
    run: RunDir,
    cfg: &TrainConfig,
    data: &TaskData,
    ckpt: Option<Checkpoint>,
    mut log: EventLog,
    logged: Logged,
    observe: &mut (dyn FnMut(Update) + Send),
) -> Result<TrainOutcome> {
    let loss_kind = cfg.preset.loss();
    let mut net = net::build_with(cfg.preset, cfg.seed, cfg.engine)?;
    let n_params = cfg.preset.arch().n_params();
    let adam_cfg = AdamConfig::default();
    let (mut params, mut adam, mut step, mut epoch, mut skip, mut rng) = match ckpt {
        Some(c) => {
            let p = c
                .progress
                .ok_or_else(|| Error::Invalid("checkpoint has no training progress".into()))?;
            let adam = c
                .adam
                .ok_or_else(|| Error::Invalid("checkpoint has no optimiser state".into()))?;
            (c.params, adam, p.step, p.epoch, p.batch, p.rng_epoch_start)
        }
        None => (
            net.params(),
            AdamState::new(n_params),
            0,
            0,
            0,
            ChaCha8Rng::seed_from_u64(cfg.seed),
        ),
    };
    let resumed_from = (step > 0 || epoch > 0).then_some(step);
    // Planted presets: cross-block weights are exactly zero from the start and after every step.
    let planted = cfg.preset.planted_mask();
    let hold = |p: &mut [f32]| {
        if let Some(mask) = &planted {
            p.iter_mut()
                .zip(mask)
                .filter(|(_, &keep)| !keep)
                .for_each(|(v, _)| *v = 0.0);
        }
    };
    hold(&mut params);
    net.set_params(&params);
    // Which parameters are weights (the L1 penalty's domain), when there is a penalty.
    let weights: Option<Vec<bool>> = (cfg.l1 > 0.0).then(|| {
        cfg.preset
            .arch()
            .widths
            .windows(2)
            .flat_map(|w| {
                std::iter::repeat_n(true, w[0] * w[1]).chain(std::iter::repeat_n(false, w[1]))
            })
            .collect()
    });
    let train = &data.train;
    let n = train.n;
    let batches = n.div_ceil(cfg.batch);
    let total = (batches * cfg.epochs) as u64;
    let started = Instant::now();
    let mut examples_done = 0usize;
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    let mut val = Vec::new();
    while epoch < cfg.epochs {
        let rng_epoch_start = rng.clone();
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut rng);
        for b in skip..batches {
            let rows = &perm[b * cfg.batch..((b + 1) * cfg.batch).min(n)];
            xb.clear();
            yb.clear();
            for &i in rows {
                xb.extend_from_slice(train.input(i));
                yb.extend_from_slice(train.target(i));
            }
            let lr = lr_at(cfg, step, total);
            let (loss, out, mut grad) = net.loss_and_grad(&xb, &yb, rows.len(), loss_kind);
            if let Some(w) = &weights {
                let l1 = cfg.l1 as f32;
                for ((g, &p), &is_weight) in grad.iter_mut().zip(&params).zip(w) {
                    if is_weight && p != 0.0 {
                        *g += l1 * p.signum();
                    }
                }
            }
            adam.update(&adam_cfg, lr as f32, &mut params, &grad);
            hold(&mut params);
            net.set_params(&params);
            step += 1;
            examples_done += rows.len();
            if !loss.is_finite() {
                let msg = format!(
                    "training diverged: loss is {loss} at step {step}; try a smaller --lr (now {})",
                    cfg.lr
                );
                log.emit(
                    Some(step),
                    Event::RunEnd {
                        status: RunStatus::Failed,
                        message: Some(msg.clone()),
                    },
                )?;
                return Err(Error::Invalid(msg));
            }
            let last_of_epoch = b + 1 == batches;
            if (step % cfg.log_every as u64 == 0 || last_of_epoch)
                && logged.last_step.is_none_or(|s| step > s)
            {
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                let eps = examples_done as f64 / secs;
                let losses = batch_task_losses(&out, &yb, rows.len(), loss_kind, &data.tasks, loss);
                let eta_s = (total - step) as f64 * cfg.batch as f64 / eps.max(1e-9);
                log.emit(
                    Some(step),
                    Event::TrainStep {
                        epoch,
                        losses,
                        loss: loss as f64,
                        lr,
                        examples_per_s: eps,
                        eta_s,
                    },
                )?;
            }
            observe(Update::Step {
                step,
                total,
                loss: loss as f64,
            });
            let (next_epoch, next_batch, next_rng) = if last_of_epoch {
                (epoch + 1, 0, &rng)
            } else {
                (epoch, b + 1, &rng_epoch_start)
            };
            if last_of_epoch
                || (cfg.checkpoint_every > 0 && step % cfg.checkpoint_every as u64 == 0)
            {
                if last_of_epoch {
                    val = evaluate(net.as_ref(), &data.val, &data.tasks, loss_kind);
                    if logged.last_eval_epoch.is_none_or(|e| epoch > e) {
                        log.emit(
                            Some(step),
                            Event::Eval {
                                epoch,
                                split: data.val.name.clone(),
                                tasks: val.clone(),
                            },
                        )?;
                    }
                    observe(Update::Epoch {
                        epoch,
                        epochs: cfg.epochs,
                        val: &val,
                    });
                }
                let path = run.checkpoint(step);
                Checkpoint {
                    preset: cfg.preset,
                    params: params.clone(),
                    adam: Some(adam.clone()),
                    progress: Some(Progress {
                        step,
                        epoch: next_epoch,
                        batch: next_batch,
                        rng_epoch_start: next_rng.clone(),
                    }),
                }
                .save(&path)?;
                if logged.last_checkpoint_step.is_none_or(|s| step > s) {
                    log.emit(
                        Some(step),
                        Event::Checkpoint {
                            path: format!("checkpoints/step-{step}.safetensors"),
                            epoch,
                        },
                    )?;
                }
            }
        }
        skip = 0;
        epoch += 1;
    }
    if val.is_empty() {
        val = evaluate(net.as_ref(), &data.val, &data.tasks, loss_kind);
    }
    Checkpoint {
        preset: cfg.preset,
        params: params.clone(),
        adam: None,
        progress: None,
    }
    .save(&run.model())?;
    write_history(&run)?;
    log.emit(
        Some(step),
        Event::RunEnd {
            status: RunStatus::Completed,
            message: None,
        },
    )?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(TrainOutcome {
        run,
        steps: step,
        val,
        examples_per_s: examples_done as f64 / secs,
        resumed_from,
    })
}

/// Per-task losses of one batch (MSE per task's outputs; one cross-entropy task).
fn batch_task_losses(
    out: &[f32],
    y: &[f32],
    n: usize,
    loss: Loss,
    tasks: &TaskStructure,
    batch_loss: f32,
) -> Vec<f64> {
    match loss {
        Loss::CrossEntropy => vec![batch_loss as f64],
        Loss::Mse => tasks.mse(
            &out.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            y,
            y.len() / n.max(1),
        ),
    }
}

/// Per-task loss and R² (regression) or accuracy (classification) of a model on a data set.
pub fn evaluate(
    net: &dyn Net,
    ds: &Dataset,
    tasks: &TaskStructure,
    loss: Loss,
) -> Vec<TaskMetrics> {
    let mut out = Vec::with_capacity(ds.n * ds.d_out);
    for start in (0..ds.n).step_by(4096) {
        let end = (start + 4096).min(ds.n);
        out.extend(net.forward(&ds.x[start * ds.d_in..end * ds.d_in], end - start));
    }
    metrics(&out, ds, tasks, loss)
}

/// Per-task metrics from a model's outputs `out` (`n x d_out`) on `ds`.
pub fn metrics(out: &[f32], ds: &Dataset, tasks: &TaskStructure, loss: Loss) -> Vec<TaskMetrics> {
    let d = ds.d_out;
    match loss {
        Loss::Mse => tasks
            .tasks
            .iter()
            .map(|t| {
                let (mut sse, mut sum, mut sumsq) = (0.0f64, 0.0f64, 0.0f64);
                for r in 0..ds.n {
                    for &o in &t.outputs {
                        let (p, y) = (out[r * d + o] as f64, ds.y[r * d + o] as f64);
                        sse += (p - y).powi(2);
                        sum += y;
                        sumsq += y * y;
                    }
                }
                let m = (ds.n * t.outputs.len()) as f64;
                let sst = sumsq - sum * sum / m;
                TaskMetrics {
                    task: t.name.clone(),
                    loss: sse / m,
                    r2: Some(1.0 - sse / sst.max(f64::MIN_POSITIVE)),
                    accuracy: None,
                }
            })
            .collect(),
        Loss::CrossEntropy => {
            let labels = ds.labels.as_ref().expect("classification data has labels");
            let (mut ce, mut correct) = (0.0f64, 0usize);
            for r in 0..ds.n {
                let row = &out[r * d..(r + 1) * d];
                let mx = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let lse = mx + row.iter().map(|&v| (v as f64 - mx).exp()).sum::<f64>().ln();
                ce += lse - row[labels[r]] as f64;
                let arg = (0..d)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0);
                correct += (arg == labels[r]) as usize;
            }
            let name = tasks
                .tasks
                .first()
                .map_or("class".to_string(), |t| t.name.clone());
            vec![TaskMetrics {
                task: name,
                loss: ce / ds.n as f64,
                r2: None,
                accuracy: Some(correct as f64 / ds.n as f64),
            }]
        }
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

/// Training throughput of a preset, measured by full training runs in a temporary directory.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub preset: Preset,
    pub batch: usize,
    pub epochs: usize,
    pub n_train: usize,
    /// Examples per second of each repeat, sorted.
    pub rates: Vec<f64>,
}

impl Throughput {
    pub fn median(&self) -> f64 {
        self.rates[self.rates.len() / 2]
    }
}

/// Trains `preset` `repeats` times and records examples/s (the whole loop: batches, Adam,
/// per-epoch validation and checkpoints).
pub fn throughput(
    preset: Preset,
    batch: usize,
    epochs: usize,
    repeats: usize,
    engine: Engine,
) -> Result<Throughput> {
    let cfg = TrainConfig {
        batch,
        epochs,
        engine,
        log_every: usize::MAX,
        ..TrainConfig::defaults(preset)
    };
    cfg.validate()?;
    let dir = std::env::temp_dir().join(format!("circuitscope-bench-{}", std::process::id()));
    let mut rates = Vec::new();
    for r in 0..repeats.max(1) {
        let root = dir.join(format!("r{r}"));
        let outcome = train(&root, &cfg, &mut |_| {});
        let _ = std::fs::remove_dir_all(&root);
        rates.push(outcome?.examples_per_s);
    }
    let _ = std::fs::remove_dir_all(&dir);
    rates.sort_by(f64::total_cmp);
    let n_train = load_data(&cfg)?.train.n;
    Ok(Throughput {
        preset,
        batch,
        epochs,
        n_train,
        rates,
    })
}

/// Trains a fresh `preset` network on `data` in memory and returns its parameters: the same
/// loop as a run (shuffled minibatches, our Adam, cosine schedule from `lr`) without the run
/// directory, checkpoints or events. For many small models at once (zoos), where each model's
/// files are written by the caller when it is done.
pub fn fit_params(
    preset: Preset,
    seed: u64,
    data: &Dataset,
    (epochs, batch, lr): (usize, usize, f64),
    engine: Engine,
) -> Result<Vec<f32>> {
    if epochs == 0 || batch == 0 || !(lr.is_finite() && lr > 0.0) {
        invalid!(
            "epochs and batch must be at least 1 and lr positive (got {epochs}, {batch}, {lr})"
        );
    }
    let arch = preset.arch();
    if data.d_in != arch.widths[0] || data.d_out != *arch.widths.last().expect("widths") {
        invalid!(
            "data set `{}` has {} inputs and {} outputs; preset {} takes {:?}",
            data.name,
            data.d_in,
            data.d_out,
            preset.name(),
            arch.widths
        );
    }
    engine.check(preset)?;
    one_thread(|| fit_loop(preset, seed, data, (epochs, batch, lr), engine))
}

/// The loop of [`fit_params`] once its options are checked: `(epochs, batch, lr)`.
fn fit_loop(
    preset: Preset,
    seed: u64,
    data: &Dataset,
    opts: (usize, usize, f64),
    engine: Engine,
) -> Result<Vec<f32>> {
    let (epochs, batch, lr) = opts;
    let loss_kind = preset.loss();
    let mut net = net::build_with(preset, seed, engine)?;
    let mut params = net.params();
    let mut adam = AdamState::new(params.len());
    let adam_cfg = AdamConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = data.n;
    let batches = n.div_ceil(batch);
    let total = (batches * epochs) as u64;
    let schedule = TrainConfig {
        lr,
        ..TrainConfig::defaults(preset)
    };
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    let mut step = 0u64;
    let mut perm: Vec<usize> = (0..n).collect();
    for _ in 0..epochs {
        perm.shuffle(&mut rng);
        for b in 0..batches {
            let rows = &perm[b * batch..((b + 1) * batch).min(n)];
            xb.clear();
            yb.clear();
            for &i in rows {
                xb.extend_from_slice(data.input(i));
                yb.extend_from_slice(data.target(i));
            }
            let (loss, _, grad) = net.loss_and_grad(&xb, &yb, rows.len(), loss_kind);
            if !loss.is_finite() {
                invalid!(
                    "training diverged: loss is {loss} at step {step}; try a smaller lr (now {lr})"
                );
            }
            adam.update(
                &adam_cfg,
                lr_at(&schedule, step, total) as f32,
                &mut params,
                &grad,
            );
            net.set_params(&params);
            step += 1;
        }
    }
    Ok(params)
}
