//! What determines a training run of a preset: [`TrainConfig`], checked once into a
//! [`Valid<TrainConfig>`] before any work starts, and the learning-rate [`Schedule`].

use crate::model::net::Engine;
use crate::model::Preset;
use crate::params::Valid;
use crate::{param, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How the learning rate changes over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Cosine decay from `lr` to `lr / 100` over all steps.
    Cosine,
}

impl Schedule {
    /// The learning rate at `step` of `total` for a base rate `lr`.
    pub fn lr_at(self, lr: f64, step: u64, total: u64) -> f64 {
        match self {
            Schedule::Constant => lr,
            Schedule::Cosine => {
                let p = step as f64 / total.max(1) as f64;
                lr * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
            }
        }
    }
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
    #[serde(default = "Engine::legacy")]
    pub engine: Engine,
    /// L1 penalty on the weights (not the biases): training minimises the task loss plus
    /// `l1 · Σ|w|`, which concentrates the computation on fewer edges. 0 for none. Logged losses
    /// are the task loss alone.
    #[serde(default)]
    pub l1: f64,
}

/// Members of the `poly1d` family that `poly` models are drawn from.
pub const POLY_MEMBERS: usize = 10;

/// The settings every training shares (a preset's or a spec's), checked the same way.
pub fn check_settings(
    epochs: usize,
    batch: usize,
    lr: f64,
    log_every: usize,
    l1: f64,
) -> Result<()> {
    if epochs == 0 {
        param!(epochs, "must be at least 1");
    }
    if batch == 0 {
        param!(batch, "must be at least 1");
    }
    if !(lr.is_finite() && lr > 0.0) {
        param!(lr, "must be a positive finite number, got {}", lr);
    }
    if log_every == 0 {
        param!(log_every, "must be at least 1");
    }
    if !(l1.is_finite() && l1 >= 0.0) {
        param!(l1, "must be a finite number >= 0, got {}", l1);
    }
    Ok(())
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
            engine: Engine::default(),
            l1: 0.0,
        }
    }

    /// Rejects options that cannot train, before any work starts.
    pub fn check(self) -> Result<Valid<TrainConfig>> {
        check_settings(self.epochs, self.batch, self.lr, self.log_every, self.l1)?;
        // Digits and MNIST have fixed splits (n_train is unused there); the generated sets
        // need at least one example.
        if self.n_train == 0 && !matches!(self.preset, Preset::Digits | Preset::Mnist) {
            param!(n_train, "must be at least 1");
        }
        if self.data_dir.is_some() && !matches!(self.preset, Preset::Digits | Preset::Mnist) {
            param!(
                data_dir,
                "is not read by preset `{}`: it generates its own data (only `digits`, a CSV file, and `mnist`, a folder of IDX files, read data)",
                self.preset
            );
        }
        if self.preset == Preset::Mnist && self.data_dir.is_none() {
            param!(data_dir, "is needed by preset `mnist`: a folder with the MNIST IDX files (train-images-idx3-ubyte, ...)");
        }
        if self.preset == Preset::Poly && self.member >= POLY_MEMBERS {
            param!(
                member,
                "{} is out of range: the poly1d family has {POLY_MEMBERS} members (0..{})",
                self.member,
                POLY_MEMBERS - 1
            );
        }
        Ok(Valid::checked(self))
    }

    /// The learning rate at `step` of `total`.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        self.schedule.lr_at(self.lr, step, total)
    }
}

crate::choices!(Schedule {
    Constant => "constant": "the same learning rate at every step",
    Cosine => "cosine": "cosine decay from lr to lr/100 over all steps",
});
