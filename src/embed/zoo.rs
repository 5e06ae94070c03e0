//! Model zoos: `functions x seeds` small `poly` MLPs, each trained on one member of a `poly1d`
//! family, on all cores, resumable and shardable.
//!
//! A zoo directory holds `zoo.json` (the configuration and the family's coefficients, which
//! every shard and every merge must agree on), `models/fFFF-sSSSS.safetensors` with a
//! `.json` record beside it (written after the weights, so a record means a finished model),
//! `events.jsonl` and `tables/manifest.parquet`. Every file is written atomically: after a
//! crash or Ctrl-C, running the same command again trains only what is missing. Models whose
//! R² on their polynomial is under [`R2_BAR`] are kept on disk but flagged in the manifest.
//! This module trains and stores models; it must never read a model it has not checked.

use crate::data::poly1d::{self, FamilyConfig, Poly};
use crate::model::checkpoint::Checkpoint;
use crate::model::net::Engine;
use crate::model::train::fit_params;
use crate::model::{Preset, RuntimeModel};
use crate::numeric::linalg::r2_score;
use crate::probe::jacobian::{group_by_pattern, output_jacobians, Reuse};
use crate::runlog::{write_atomic, Event, EventLog, RunDir};
use crate::{invalid, Error, Result};
use polars::prelude::{Column, DataFrame};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The quality bar: a model whose R² on its polynomial is below this is flagged.
pub const R2_BAR: f64 = 0.99;
/// Points of the validation sample each model is judged on.
const VAL_POINTS: usize = 2048;
/// Points of the dense grid on which a model's linear pieces are counted.
const PIECE_GRID: usize = 4096;
const FORMAT: &str = "circuitscope-zoo/1";

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
    #[serde(default)]
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
            engine: Engine::Dfdx,
        }
    }
}

impl ZooConfig {
    pub fn validate(&self) -> Result<()> {
        if self.functions < 2 {
            invalid!(
                "--functions must be at least 2 (got {}): one function gives nothing to tell apart",
                self.functions
            );
        }
        if self.seeds < 2 {
            invalid!("--seeds must be at least 2 (got {})", self.seeds);
        }
        if self.epochs == 0 || self.batch == 0 || self.n_train == 0 {
            invalid!("--epochs, --batch and --n-train must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            invalid!("--lr must be a positive finite number, got {}", self.lr);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.functions * self.seeds
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The family sampler of a zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
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
    pub fn new(config: ZooConfig) -> Result<ZooSpec> {
        config.validate()?;
        let family = match config.family {
            FamilyKind::Maxmin => poly1d::family(&FamilyConfig {
                members: config.functions,
                seed: config.family_seed,
                ..FamilyConfig::default()
            }),
            FamilyKind::Naive => poly1d::naive_family(config.functions, config.family_seed),
        };
        Ok(ZooSpec {
            format: FORMAT.into(),
            config,
            family,
        })
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
        let bad = || {
            Error::Invalid(format!(
                "--shard `{s}`: expected `i/n` with 0 <= i < n, e.g. `0/4` for the first of four"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            invalid!(
                "--shard {index}/{count} is out of range: the index must be 0..{} for {count} shards",
                count.saturating_sub(1)
            );
        }
        Ok(Shard { index, count })
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

/// A zoo directory.
#[derive(Debug, Clone)]
pub struct Zoo {
    pub root: PathBuf,
    pub spec: ZooSpec,
}

impl Zoo {
    fn spec_path(root: &Path) -> PathBuf {
        root.join("zoo.json")
    }

    /// Creates the zoo at `root`, or opens the one there if it has the same configuration
    /// (resuming it); a different zoo there is an error.
    pub fn create_or_open(root: &Path, config: ZooConfig) -> Result<Zoo> {
        let spec = ZooSpec::new(config)?;
        let path = Self::spec_path(root);
        if path.exists() {
            let zoo = Zoo::open(root)?;
            if zoo.spec != spec {
                invalid!(
                    "{} holds a different zoo ({}); choose another --out or pass the same options (stored: {})",
                    root.display(),
                    describe(&spec.config),
                    describe(&zoo.spec.config)
                );
            }
            return Ok(zoo);
        }
        if root.join("run.json").exists() {
            invalid!(
                "{} holds a training run, not a zoo; choose another --out",
                root.display()
            );
        }
        write_atomic(
            &path,
            serde_json::to_string_pretty(&spec)
                .expect("serialises")
                .as_bytes(),
        )?;
        Ok(Zoo {
            root: root.to_path_buf(),
            spec,
        })
    }

    /// Opens an existing zoo.
    pub fn open(root: &Path) -> Result<Zoo> {
        let path = Self::spec_path(root);
        if !root.is_dir() {
            invalid!("{}: no such zoo directory", root.display());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::bad_file(
                    &path,
                    "missing: this is not a zoo (make one with `circuitscope zoo --out DIR`)",
                )
            } else {
                Error::io(&path, "cannot read", e)
            }
        })?;
        let spec: ZooSpec = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&path, format!("not a zoo description: {e}")))?;
        if spec.format != FORMAT {
            return Err(Error::bad_file(
                &path,
                format!("format `{}`, this build reads `{FORMAT}`", spec.format),
            ));
        }
        spec.config.validate()?;
        if spec.family.len() != spec.config.functions {
            return Err(Error::bad_file(
                &path,
                format!(
                    "{} polynomials for {} functions",
                    spec.family.len(),
                    spec.config.functions
                ),
            ));
        }
        Ok(Zoo {
            root: root.to_path_buf(),
            spec,
        })
    }

    /// The run directory view of the zoo (events and tables).
    pub fn run(&self) -> RunDir {
        RunDir {
            root: self.root.clone(),
        }
    }

    pub fn name(function: usize, seed: usize) -> String {
        format!("f{function:03}-s{seed:04}")
    }

    pub fn model_path(&self, function: usize, seed: usize) -> PathBuf {
        self.root
            .join("models")
            .join(format!("{}.safetensors", Self::name(function, seed)))
    }

    pub fn record_path(&self, function: usize, seed: usize) -> PathBuf {
        self.root
            .join("models")
            .join(format!("{}.json", Self::name(function, seed)))
    }

    /// Every model slot in index order `(function, seed)`.
    pub fn slots(&self) -> Vec<(usize, usize)> {
        let c = &self.spec.config;
        (0..c.functions)
            .flat_map(|f| (0..c.seeds).map(move |s| (f, s)))
            .collect()
    }

    /// The record of a finished model; `None` when it has not been trained.
    pub fn record(&self, function: usize, seed: usize) -> Result<Option<ModelRecord>> {
        let path = self.record_path(function, seed);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, "cannot read", e)),
        };
        let r: ModelRecord = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&path, format!("not a model record: {e}")))?;
        if (r.function, r.seed) != (function, seed) {
            return Err(Error::bad_file(
                &path,
                format!(
                    "records function {} seed {}, expected {function} and {seed}",
                    r.function, r.seed
                ),
            ));
        }
        Ok(Some(r))
    }

    /// Loads a finished model's weights, checked against the `poly` preset.
    pub fn load(&self, function: usize, seed: usize) -> Result<RuntimeModel> {
        let path = self.model_path(function, seed);
        if !path.exists() {
            return Err(Error::bad_file(
                &path,
                format!(
                    "model {} is missing; run `circuitscope zoo --out {}` with the zoo's options to train what is missing",
                    Self::name(function, seed),
                    self.root.display()
                ),
            ));
        }
        Checkpoint::load(&path, Some(Preset::Poly))?.view()
    }

    /// Every model's record, in slot order; an error names the first missing or unreadable
    /// one, so a partial or damaged zoo is never analysed as if whole.
    pub fn complete_records(&self) -> Result<Vec<ModelRecord>> {
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (f, s) in self.slots() {
            match self.record(f, s)? {
                Some(r) if self.model_path(f, s).exists() => out.push(r),
                _ => missing.push(Self::name(f, s)),
            }
        }
        if !missing.is_empty() {
            invalid!(
                "{}: {} of {} models are missing ({}{}); run `circuitscope zoo --out {}` with the same options to finish it",
                self.root.display(),
                missing.len(),
                self.spec.config.len(),
                missing[..missing.len().min(3)].join(", "),
                if missing.len() > 3 { ", ..." } else { "" },
                self.root.display()
            );
        }
        Ok(out)
    }

    /// The manifest of finished models as a table: function, seed, r2, grad_r2, pieces,
    /// flagged, train_s.
    pub fn manifest(&self) -> Result<DataFrame> {
        let mut recs = Vec::new();
        for (f, s) in self.slots() {
            if let Some(r) = self.record(f, s)? {
                recs.push(r);
            }
        }
        manifest_table(&recs)
    }
}

fn describe(c: &ZooConfig) -> String {
    format!(
        "{} functions x {} seeds, {:?} family seed {}, {} epochs of {} points, batch {}, lr {}",
        c.functions, c.seeds, c.family, c.family_seed, c.epochs, c.n_train, c.batch, c.lr
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

/// Progress of a zoo run, for a progress bar.
#[derive(Debug, Clone)]
pub struct ZooUpdate {
    pub done: usize,
    pub total: usize,
    pub record: ModelRecord,
}

/// What one `zoo` command did.
#[derive(Debug, Clone)]
pub struct ZooOutcome {
    /// Models of this shard trained now.
    pub trained: usize,
    /// Models of this shard that were already finished (resume).
    pub skipped: usize,
    /// Models of this shard flagged below the bar (trained now or before).
    pub flagged: Vec<String>,
    pub seconds: f64,
    /// Models trained per second by this command.
    pub models_per_s: f64,
}

/// Trains every model of `shard` that is not finished yet, in parallel on the current rayon
/// pool, writing each model's files as soon as it is done. Events go to `log`.
pub fn train_zoo(
    zoo: &Zoo,
    shard: Shard,
    log: &mut EventLog,
    observe: &(dyn Fn(&ZooUpdate) + Sync),
) -> Result<ZooOutcome> {
    let slots: Vec<(usize, (usize, usize))> = zoo
        .slots()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.holds(*i))
        .collect();
    let mut pending = Vec::new();
    let mut flagged = Vec::new();
    for &(_, (f, s)) in &slots {
        let ready = match zoo.record(f, s) {
            Ok(Some(r)) => match zoo.load(f, s) {
                Ok(_) => {
                    if r.flagged {
                        flagged.push(Zoo::name(f, s));
                    }
                    true
                }
                Err(e) => {
                    log.emit(
                        None,
                        Event::Note {
                            text: format!(
                                "{}: retraining, the stored model is unusable: {e}",
                                Zoo::name(f, s)
                            ),
                        },
                    )?;
                    false
                }
            },
            Ok(None) => false,
            Err(e) => {
                log.emit(
                    None,
                    Event::Note {
                        text: format!(
                            "{}: retraining, the stored record is unusable: {e}",
                            Zoo::name(f, s)
                        ),
                    },
                )?;
                false
            }
        };
        if !ready {
            pending.push((f, s));
        }
    }
    let skipped = slots.len() - pending.len();
    let total = slots.len();
    let started = Instant::now();
    let shared = Mutex::new((log, skipped, Vec::<String>::new()));
    pending.par_iter().try_for_each(|&(f, s)| -> Result<()> {
        let (params, record) = train_model(&zoo.spec, f, s)?;
        Checkpoint {
            preset: Preset::Poly,
            params,
            adam: None,
            progress: None,
        }
        .save(&zoo.model_path(f, s))?;
        write_atomic(
            &zoo.record_path(f, s),
            serde_json::to_string_pretty(&record)
                .expect("serialises")
                .as_bytes(),
        )?;
        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
        let (log, done, flagged_now) = &mut *guard;
        *done += 1;
        log.emit(
            None,
            Event::ZooProgress {
                done: *done,
                total,
                model: Zoo::name(f, s),
                r2: record.r2,
            },
        )?;
        if record.flagged {
            flagged_now.push(Zoo::name(f, s));
            log.emit(
                None,
                Event::Note {
                    text: format!(
                        "{} flagged: R² {:.4} is below the bar {R2_BAR}",
                        Zoo::name(f, s),
                        record.r2
                    ),
                },
            )?;
        }
        observe(&ZooUpdate {
            done: *done,
            total,
            record,
        });
        Ok(())
    })?;
    let (_, _, flagged_now) = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    flagged.extend(flagged_now);
    flagged.sort();
    let seconds = started.elapsed().as_secs_f64();
    let mut manifest = zoo.manifest()?;
    zoo.run().write_table("manifest", &mut manifest)?;
    Ok(ZooOutcome {
        trained: pending.len(),
        skipped,
        flagged,
        seconds,
        models_per_s: pending.len() as f64 / seconds.max(1e-9),
    })
}

/// Merges shard directories of one zoo into `out` (created, or an existing part of the same
/// zoo). Every part must have the same `zoo.json`; a model present in several parts is taken
/// from the first. Returns the merged zoo.
pub fn merge(out: &Path, parts: &[PathBuf]) -> Result<Zoo> {
    if parts.is_empty() {
        invalid!("zoo merge needs at least one shard directory");
    }
    let zoos: Vec<Zoo> = parts.iter().map(|p| Zoo::open(p)).collect::<Result<_>>()?;
    let first = &zoos[0];
    for z in &zoos[1..] {
        if z.spec != first.spec {
            invalid!(
                "{} and {} are shards of different zoos ({} vs {}{}); only shards of one zoo can be merged",
                first.root.display(),
                z.root.display(),
                describe(&first.spec.config),
                describe(&z.spec.config),
                if z.spec.config == first.spec.config { ", different function families" } else { "" }
            );
        }
    }
    let merged = Zoo::create_or_open(out, first.spec.config.clone())?;
    if merged.spec != first.spec {
        invalid!(
            "{}: the merged zoo's family differs from the shards'",
            out.display()
        );
    }
    for (f, s) in merged.slots() {
        if merged.record(f, s)?.is_some() {
            continue;
        }
        for z in &zoos {
            if let Some(r) = z.record(f, s)? {
                z.load(f, s)?;
                let model = std::fs::read(z.model_path(f, s))
                    .map_err(|e| Error::io(z.model_path(f, s), "cannot read", e))?;
                write_atomic(&merged.model_path(f, s), &model)?;
                write_atomic(
                    &merged.record_path(f, s),
                    serde_json::to_string_pretty(&r)
                        .expect("serialises")
                        .as_bytes(),
                )?;
                break;
            }
        }
    }
    let mut manifest = merged.manifest()?;
    merged.run().write_table("manifest", &mut manifest)?;
    Ok(merged)
}
