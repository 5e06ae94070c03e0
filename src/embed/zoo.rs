//! Model zoos: `functions x seeds` small `poly` MLPs, each trained on one member of a `poly1d`
//! family, on all cores, resumable and shardable.
//!
//! This module defines a zoo and trains and judges one model of it; the run layer
//! (`runlog::zoo`) owns the directory. A zoo directory holds `zoo.json` (the configuration and the family's coefficients, which
//! every shard and every merge must agree on), `models/fFFF-sSSSS.safetensors` with a
//! `.json` record beside it (written after the weights, so a record means a finished model),
//! `events.jsonl` and `tables/manifest.parquet`. Every file is written atomically: after a
//! crash or Ctrl-C, running the same command again trains only what is missing. Models whose
//! R² on their polynomial is under [`R2_BAR`] are kept on disk but flagged in the manifest.
//! It must never judge a model on the points it was trained on.

use crate::data::poly1d::{self, FamilyConfig, Poly};
use crate::model::net::Engine;
use crate::model::train::fit_params;
use crate::model::{Preset, RuntimeModel};
use crate::numeric::linalg::r2_score;
use crate::params::Valid;
use crate::probe::jacobian::{group_by_pattern, output_jacobians, Reuse};
use crate::{param, Error, Result};
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The quality bar: a model whose R² on its polynomial is below this is flagged.
pub const R2_BAR: f64 = 0.99;
/// Points of the validation sample each model is judged on.
const VAL_POINTS: usize = 2048;
/// Points of the dense grid on which a model's linear pieces are counted.
const PIECE_GRID: usize = 4096;
/// The format tag of `zoo.json`.
pub const ZOO_FORMAT: &str = "circuitscope-zoo/1";

/// What a zoo is: its functions, seeds and how each model is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooConfig {
    /// Members of the `poly1d` family, one function each.
    pub functions: usize,
    /// Models (training seeds) per function.
    pub seeds: usize,
    /// Seeds the family of polynomials.
    pub family_seed: u64,
    /// How the family is drawn: `maxmin` (roots, greedy max-min spread) or `naive` (uniform
    /// coefficients, the sampler the research notes found too alike).
    #[serde(default)]
    pub family: FamilyKind,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    /// Training points per model (fresh per model, uniform on [-1, 1]).
    pub n_train: usize,
    /// Which code trains the models (zoos from before engines existed used dfdx).
    #[serde(default = "Engine::legacy")]
    pub engine: Engine,
}

impl Default for ZooConfig {
    fn default() -> Self {
        ZooConfig {
            functions: 10,
            seeds: 50,
            family_seed: 0,
            family: FamilyKind::Maxmin,
            epochs: 40,
            batch: 64,
            lr: 3e-3,
            n_train: 4096,
            engine: Engine::default(),
        }
    }
}

impl ZooConfig {
    /// Rejects a zoo that cannot be trained or told apart, before any work starts.
    pub fn check(self) -> Result<Valid<ZooConfig>> {
        if self.functions < 2 {
            param!(
                functions,
                "must be at least 2 (got {}): one function gives nothing to tell apart",
                self.functions
            );
        }
        if self.seeds < 2 {
            param!(seeds, "must be at least 2 (got {})", self.seeds);
        }
        if self.epochs == 0 {
            param!(epochs, "must be at least 1");
        }
        if self.batch == 0 {
            param!(batch, "must be at least 1");
        }
        if self.n_train == 0 {
            param!(n_train, "must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            param!(lr, "must be a positive finite number, got {}", self.lr);
        }
        Ok(Valid::checked(self))
    }

    pub fn len(&self) -> usize {
        self.functions * self.seeds
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The family sampler of a zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyKind {
    #[default]
    Maxmin,
    Naive,
}

/// `zoo.json`: the configuration and the family it was drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooSpec {
    pub format: String,
    pub config: ZooConfig,
    pub family: Vec<Poly>,
}

impl ZooSpec {
    pub fn new(config: Valid<ZooConfig>) -> ZooSpec {
        let config = config.into_inner();
        let family = match config.family {
            FamilyKind::Maxmin => poly1d::family(&FamilyConfig {
                members: config.functions,
                seed: config.family_seed,
                ..FamilyConfig::default()
            }),
            FamilyKind::Naive => poly1d::naive_family(config.functions, config.family_seed),
        };
        ZooSpec {
            format: ZOO_FORMAT.into(),
            config,
            family,
        }
    }
}

/// One slice of a zoo for one machine: models whose index `function * seeds + seed` is
/// `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n` with `0 <= i < n`.
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || Error::Param {
            name: "shard",
            problem: format!(
                "`{s}`: expected `i/n` with 0 <= i < n, e.g. `0/4` for the first of four"
            ),
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            param!(
                shard,
                "{index}/{count} is out of range: the index must be 0..{} for {count} shards",
                count.saturating_sub(1)
            );
        }
        Ok(Shard { index, count })
    }

    /// The shard of a Slurm array task (`--shard auto`), from the values of
    /// `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT` and `SLURM_ARRAY_TASK_MIN` (an array may
    /// start at 1: the shard is the task's place in the array).
    pub fn from_slurm(id: Option<&str>, count: Option<&str>, min: Option<&str>) -> Result<Shard> {
        let (Some(id), Some(count)) = (id, count) else {
            param!(
                shard,
                "auto reads a Slurm array task's SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, and they are not set (outside Slurm, give --shard i/n)"
            );
        };
        let num = |name: &str, v: &str| -> Result<usize> {
            v.trim().parse().map_err(|_| Error::Param {
                name: "shard",
                problem: format!("auto: {name}=`{v}` is not a whole number"),
            })
        };
        let (id, count) = (
            num("SLURM_ARRAY_TASK_ID", id)?,
            num("SLURM_ARRAY_TASK_COUNT", count)?,
        );
        let min = min.map_or(Ok(0), |m| num("SLURM_ARRAY_TASK_MIN", m))?;
        if id < min || id - min >= count {
            param!(
                shard,
                "auto: task {id} is not among the {count} tasks of an array starting at {min} (an array with a step other than 1? give --shard i/n)"
            );
        }
        Ok(Shard {
            index: id - min,
            count,
        })
    }

    pub fn holds(&self, model_index: usize) -> bool {
        model_index % self.count == self.index
    }
}

/// What the zoo knows about one trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub function: usize,
    pub seed: usize,
    /// R² of the model's outputs against its polynomial on fresh points.
    pub r2: f64,
    /// R² of its input gradient against the polynomial's analytic derivative, same points.
    pub grad_r2: f64,
    /// Distinct linear pieces (ReLU patterns) on a dense grid of [-1, 1].
    pub pieces: usize,
    /// Below [`R2_BAR`]: kept on disk, left out of embedding unless asked.
    pub flagged: bool,
    pub train_s: f64,
}

/// A zoo configuration in a few words, for messages.
pub fn describe(c: &ZooConfig) -> String {
    format!(
        "{} functions x {} seeds, {:?} family seed {}, {} epochs of {} points, batch {}, lr {}, engine {}",
        c.functions,
        c.seeds,
        c.family,
        c.family_seed,
        c.epochs,
        c.n_train,
        c.batch,
        c.lr,
        c.engine.name()
    )
}

/// The manifest as a table.
pub fn manifest_table(recs: &[ModelRecord]) -> Result<DataFrame> {
    DataFrame::new(vec![
        Column::new(
            "function".into(),
            recs.iter().map(|r| r.function as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "seed".into(),
            recs.iter().map(|r| r.seed as u32).collect::<Vec<_>>(),
        ),
        Column::new("r2".into(), recs.iter().map(|r| r.r2).collect::<Vec<_>>()),
        Column::new(
            "grad_r2".into(),
            recs.iter().map(|r| r.grad_r2).collect::<Vec<_>>(),
        ),
        Column::new(
            "pieces".into(),
            recs.iter().map(|r| r.pieces as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "flagged".into(),
            recs.iter().map(|r| r.flagged).collect::<Vec<_>>(),
        ),
        Column::new(
            "train_s".into(),
            recs.iter().map(|r| r.train_s).collect::<Vec<_>>(),
        ),
    ])
    .map_err(|e| Error::Data(format!("manifest table: {e}")))
}

/// Seeds of one model: weights and data differ across seeds and functions.
fn model_seed(function: usize, seed: usize) -> u64 {
    ((function as u64) << 32) | seed as u64
}

/// Input gradient and piece id of a 1-D model at each of `x`, exactly (f64).
pub fn gradients(model: &RuntimeModel, x: &[f64]) -> Result<(Vec<f64>, Vec<usize>)> {
    let trace = model.trace(x)?;
    let hidden = model.layers.len().saturating_sub(1);
    let (piece, _) = group_by_pattern(&trace, 0..hidden);
    let jac = output_jacobians(model, &trace, Reuse::Patterns);
    Ok((jac.per_layer[0].expand(), piece))
}

/// Trains and judges one model; the caller writes its files.
pub fn train_model(
    spec: &ZooSpec,
    function: usize,
    seed: usize,
) -> Result<(Vec<f32>, ModelRecord)> {
    let c = &spec.config;
    let p = &spec.family[function];
    let started = Instant::now();
    let s = model_seed(function, seed);
    let data = poly1d::dataset(p, &format!("poly1d/{function}"), c.n_train, s, 0)?;
    let params = fit_params(Preset::Poly, s, &data, (c.epochs, c.batch, c.lr), c.engine)?;
    let train_s = started.elapsed().as_secs_f64();
    let view = Preset::Poly.arch().view(&params)?;
    let record = judge(&view, p, function, seed, s, train_s)?;
    Ok((params, record))
}

fn judge(
    view: &RuntimeModel,
    p: &Poly,
    function: usize,
    seed: usize,
    s: u64,
    train_s: f64,
) -> Result<ModelRecord> {
    let val = poly1d::dataset(p, "val", VAL_POINTS, s, 1)?;
    let x: Vec<f64> = val.x.iter().map(|&v| v as f64).collect();
    let out = view.forward(&x)?;
    let y: Vec<f64> = x.iter().map(|&v| p.eval(v)).collect();
    let (g, _) = gradients(view, &x)?;
    let dp = p.derivative();
    let dy: Vec<f64> = x.iter().map(|&v| dp.eval(v)).collect();
    let grid: Vec<f64> = (0..PIECE_GRID)
        .map(|i| -1.0 + 2.0 * i as f64 / (PIECE_GRID - 1) as f64)
        .collect();
    let (_, pieces) = gradients(view, &grid)?;
    let r2 = r2_score(&y, &out, y.len(), 1);
    Ok(ModelRecord {
        function,
        seed,
        r2,
        grad_r2: r2_score(&dy, &g, dy.len(), 1),
        pieces: pieces.iter().max().map_or(0, |m| m + 1),
        flagged: r2.is_nan() || r2 < R2_BAR,
        train_s,
    })
}

crate::choices!(FamilyKind {
    Maxmin => "maxmin": "roots drawn for a greedy max-min spread of the family",
    Naive => "naive": "uniform coefficients (members look alike)",
});
