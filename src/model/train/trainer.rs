//! The training loop of a preset, written once over [`Net`] as a small [`Trainer`] type.
//!
//! Shuffle with a ChaCha8 RNG, minibatches, Adam with state we own, per-task losses, validation
//! every epoch, a checkpoint at every epoch end (and every `checkpoint_every` steps). A
//! checkpoint holds the weights, Adam's moments, the step and the RNG state at the start of its
//! epoch, so a trainer started from it redraws the same shuffle, skips the batches already done
//! and reaches the same final weights bit for bit. The trainer reports what happens to a
//! [`TrainSink`] and returns the final parameters; it never touches a file or writes an event
//! (the run layer's sink does).

use super::config::{Schedule, TrainConfig};
use super::metrics::{batch_task_losses, evaluate, TaskMetrics};
use crate::data::TaskData;
use crate::model::adam::{AdamConfig, AdamState};
use crate::model::checkpoint::{Checkpoint, Layout, Progress};
use crate::model::net::{Batch, Net};
use crate::model::Loss;
use crate::params::Valid;
use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// One optimiser step, as the trainer reports it.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub step: u64,
    pub total: u64,
    pub epoch: usize,
    /// The batch's loss (the task loss: the L1 penalty is not in it).
    pub loss: f64,
    pub lr: f64,
    pub examples_per_s: f64,
    pub eta_s: f64,
    /// Per-task losses of the batch, on logging steps (every `log_every` steps and each
    /// epoch's last step); `None` on the others.
    pub task_losses: Option<Vec<f64>>,
}

/// The end of an epoch, as the trainer reports it.
#[derive(Debug, Clone)]
pub struct EpochReport<'a> {
    pub epoch: usize,
    pub epochs: usize,
    pub step: u64,
    /// The name of the validation split.
    pub split: &'a str,
    pub val: &'a [TaskMetrics],
}

/// Receives what a [`Trainer`] does, in order; an error stops training.
pub trait TrainSink {
    /// After every optimiser step.
    fn step(&mut self, r: &StepReport) -> Result<()>;
    /// After each epoch's last step, with the validation figures.
    fn epoch(&mut self, e: &EpochReport) -> Result<()>;
    /// A training checkpoint (epoch ends, and every `checkpoint_every` steps) of `epoch`.
    fn checkpoint(&mut self, epoch: usize, checkpoint: &Checkpoint) -> Result<()>;
    /// The loss became NaN or infinite at `step`; training stops with `message` as its error.
    fn diverged(&mut self, step: u64, message: &str) -> Result<()>;
}

/// What a finished [`Trainer::run`] gives back.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The final parameters (flat, dfdx's order).
    pub params: Vec<f32>,
    pub steps: u64,
    /// The last validation figures.
    pub val: Vec<TaskMetrics>,
    /// Training examples per second in this process (steps resumed past are not counted).
    pub examples_per_s: f64,
    /// The step a resumed trainer started from.
    pub resumed_from: Option<u64>,
}

/// What a [`Trainer`] trains: the network's layout and loss, the optimiser's settings, and the
/// weights held at exactly zero (planted presets). Made from a preset's checked
/// [`TrainConfig`] ([`TrainConfig::plan`]) or from a model spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub layout: Layout,
    pub loss: Loss,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub schedule: Schedule,
    /// Seeds the shuffling (and, for a fresh network, its caller's initial weights).
    pub seed: u64,
    pub log_every: usize,
    pub checkpoint_every: usize,
    pub l1: f64,
    /// `false` for every parameter held at zero.
    pub held: Option<Vec<bool>>,
}

impl Plan {
    fn lr_at(&self, step: u64, total: u64) -> f64 {
        self.schedule.lr_at(self.lr, step, total)
    }
}

impl TrainConfig {
    /// The plan of a checked preset configuration.
    pub fn plan(cfg: &Valid<TrainConfig>) -> Plan {
        Plan {
            layout: Layout::Preset(cfg.preset),
            loss: cfg.preset.loss(),
            epochs: cfg.epochs,
            batch: cfg.batch,
            lr: cfg.lr,
            schedule: cfg.schedule,
            seed: cfg.seed,
            log_every: cfg.log_every,
            checkpoint_every: cfg.checkpoint_every,
            l1: cfg.l1,
            held: cfg.preset.planted_mask(),
        }
    }
}

/// A network, its optimiser and where training stands.
pub struct Trainer<'a> {
    cfg: &'a Plan,
    data: &'a TaskData,
    net: Box<dyn Net>,
    params: Vec<f32>,
    adam: AdamState,
    step: u64,
    epoch: usize,
    skip: usize,
    rng: ChaCha8Rng,
    resumed_from: Option<u64>,
    /// Planted presets: `false` for the cross-block weights, held at exactly zero.
    planted: Option<Vec<bool>>,
    /// With an L1 penalty: which parameters are weights (the penalty's domain).
    weights: Option<Vec<bool>>,
}

impl<'a> Trainer<'a> {
    /// A trainer of `net` at the start of training (from `net`'s own weights), or at `from`
    /// (a training checkpoint) when resuming.
    pub fn new(
        cfg: &'a Plan,
        data: &'a TaskData,
        mut net: Box<dyn Net>,
        from: Option<Checkpoint>,
    ) -> Result<Trainer<'a>> {
        let (mut params, adam, step, epoch, skip, rng) = match from {
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
                AdamState::new(cfg.layout.n_params()),
                0,
                0,
                0,
                ChaCha8Rng::seed_from_u64(cfg.seed),
            ),
        };
        let planted = cfg.held.clone();
        hold(&planted, &mut params);
        net.set_params(&params);
        let weights = (cfg.l1 > 0.0).then(|| {
            cfg.layout
                .widths()
                .windows(2)
                .flat_map(|w| {
                    std::iter::repeat_n(true, w[0] * w[1]).chain(std::iter::repeat_n(false, w[1]))
                })
                .collect()
        });
        Ok(Trainer {
            cfg,
            data,
            net,
            params,
            adam,
            resumed_from: (step > 0 || epoch > 0).then_some(step),
            step,
            epoch,
            skip,
            rng,
            planted,
            weights,
        })
    }

    /// Trains to the last epoch, reporting to `sink`.
    pub fn run(mut self, sink: &mut dyn TrainSink) -> Result<Trained> {
        let (cfg, data) = (self.cfg, self.data);
        let loss_kind = cfg.loss;
        let adam_cfg = AdamConfig::default();
        let train = &data.train;
        let n = train.n;
        let batches = n.div_ceil(cfg.batch);
        let total = (batches * cfg.epochs) as u64;
        let started = Instant::now();
        let mut examples_done = 0usize;
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        let mut val = Vec::new();
        while self.epoch < cfg.epochs {
            let rng_epoch_start = self.rng.clone();
            let mut perm: Vec<usize> = (0..n).collect();
            perm.shuffle(&mut self.rng);
            for b in self.skip..batches {
                let rows = batch_rows(&perm, b, cfg.batch);
                gather(train, rows, &mut xb, &mut yb);
                let lr = cfg.lr_at(self.step, total);
                let (loss, out, mut grad) = self.net.loss_and_grad(
                    Batch {
                        x: &xb,
                        y: &yb,
                        n: rows.len(),
                    },
                    loss_kind,
                );
                if let Some(w) = &self.weights {
                    let l1 = cfg.l1 as f32;
                    for ((g, &p), &is_weight) in grad.iter_mut().zip(&self.params).zip(w) {
                        if is_weight && p != 0.0 {
                            *g += l1 * p.signum();
                        }
                    }
                }
                self.adam
                    .update(&adam_cfg, lr as f32, &mut self.params, &grad);
                hold(&self.planted, &mut self.params);
                self.net.set_params(&self.params);
                self.step += 1;
                examples_done += rows.len();
                if !loss.is_finite() {
                    let msg = format!(
                        "training diverged: loss is {loss} at step {}; try a smaller learning rate `lr` (now {})",
                        self.step, cfg.lr
                    );
                    sink.diverged(self.step, &msg)?;
                    return Err(Error::Invalid(msg));
                }
                let last_of_epoch = b + 1 == batches;
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                let eps = examples_done as f64 / secs;
                let logging = self.step.is_multiple_of(cfg.log_every as u64) || last_of_epoch;
                sink.step(&StepReport {
                    step: self.step,
                    total,
                    epoch: self.epoch,
                    loss: loss as f64,
                    lr,
                    examples_per_s: eps,
                    eta_s: (total - self.step) as f64 * cfg.batch as f64 / eps.max(1e-9),
                    task_losses: logging.then(|| {
                        batch_task_losses(&out, &yb, rows.len(), loss_kind, &data.tasks, loss)
                    }),
                })?;
                let (next_epoch, next_batch, next_rng) = if last_of_epoch {
                    (self.epoch + 1, 0, &self.rng)
                } else {
                    (self.epoch, b + 1, &rng_epoch_start)
                };
                if last_of_epoch
                    || (cfg.checkpoint_every > 0
                        && self.step.is_multiple_of(cfg.checkpoint_every as u64))
                {
                    if last_of_epoch {
                        val = evaluate(self.net.as_ref(), &data.val, &data.tasks, loss_kind);
                        sink.epoch(&EpochReport {
                            epoch: self.epoch,
                            epochs: cfg.epochs,
                            step: self.step,
                            split: &data.val.name,
                            val: &val,
                        })?;
                    }
                    let checkpoint = Checkpoint {
                        layout: cfg.layout.clone(),
                        params: self.params.clone(),
                        adam: Some(self.adam.clone()),
                        progress: Some(Progress {
                            step: self.step,
                            epoch: next_epoch,
                            batch: next_batch,
                            rng_epoch_start: next_rng.clone(),
                        }),
                    };
                    sink.checkpoint(self.epoch, &checkpoint)?;
                }
            }
            self.skip = 0;
            self.epoch += 1;
        }
        if val.is_empty() {
            val = evaluate(self.net.as_ref(), &data.val, &data.tasks, loss_kind);
        }
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        Ok(Trained {
            params: self.params,
            steps: self.step,
            val,
            examples_per_s: examples_done as f64 / secs,
            resumed_from: self.resumed_from,
        })
    }
}

/// Zeroes the held (cross-block) weights of a planted preset.
fn hold(planted: &Option<Vec<bool>>, p: &mut [f32]) {
    if let Some(mask) = planted {
        p.iter_mut()
            .zip(mask)
            .filter(|(_, &keep)| !keep)
            .for_each(|(v, _)| *v = 0.0);
    }
}

/// The rows of batch `b` in the epoch's permutation.
pub(crate) fn batch_rows(perm: &[usize], b: usize, batch: usize) -> &[usize] {
    &perm[b * batch..((b + 1) * batch).min(perm.len())]
}

/// Copies `rows` of `data` into the batch buffers.
pub(crate) fn gather(
    data: &crate::data::Dataset,
    rows: &[usize],
    xb: &mut Vec<f32>,
    yb: &mut Vec<f32>,
) {
    xb.clear();
    yb.clear();
    for &i in rows {
        xb.extend_from_slice(data.input(i));
        yb.extend_from_slice(data.target(i));
    }
}
