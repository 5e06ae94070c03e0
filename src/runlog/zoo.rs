//! A zoo directory: `zoo.json`, `models/fFFF-sSSSS.safetensors` with a `.json` record beside
//! each (written after the weights, so a record means a finished model), `events.jsonl` and
//! `tables/manifest.parquet`. Every file is written atomically: after a crash or Ctrl-C,
//! running the same command again trains only what is missing. It must never read a model it
//! has not checked.

use super::dir::{write_atomic, RunDir};
use super::events::Event;
use super::load::{read_checkpoint, save_checkpoint};
use super::log::EventLog;
use crate::embed::zoo::{
    describe, manifest_table, train_model, ModelRecord, Shard, ZooConfig, ZooSpec, R2_BAR,
    ZOO_FORMAT,
};
use crate::model::checkpoint::{Checkpoint, Layout};
use crate::model::{Preset, RuntimeModel};
use crate::params::Valid;
use crate::{invalid, Error, Result};
use polars::prelude::DataFrame;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

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
    pub fn create_or_open(root: &Path, config: Valid<ZooConfig>) -> Result<Zoo> {
        let spec = ZooSpec::new(config);
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
        if spec.format != ZOO_FORMAT {
            return Err(Error::bad_file(
                &path,
                format!("format `{}`, this build reads `{ZOO_FORMAT}`", spec.format),
            ));
        }
        spec.config.clone().check()?;
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
        read_checkpoint(&path, Some(&Layout::Preset(Preset::Poly)))?.view()
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
        save_checkpoint(
            &zoo.model_path(f, s),
            &Checkpoint {
                layout: Layout::Preset(Preset::Poly),
                params,
                adam: None,
                progress: None,
            },
        )?;
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
    let merged = Zoo::create_or_open(out, first.spec.config.clone().check()?)?;
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
