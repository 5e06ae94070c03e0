//! `circuitscope bench follow`: does `analyze --follow` keep up with training? A trained run's
//! checkpoints are replayed into a fresh live run directory at a fixed interval (written
//! atomically with their `checkpoint` events, as `train` and the Python logger write them)
//! while [`analyze_run`] follows it exactly as the command does (the same 100 ms poll). It
//! reports how long after being written each checkpoint was analysed, how many were skipped,
//! and — halving the interval until one is skipped — the most checkpoints a second it sustains.
//! Scratch files go to the system's temporary directory and are removed.

use crate::eval::ablation::Ablation;
use crate::graph::GraphSpec;
use crate::model::net::Engine;
use crate::model::train::TrainConfig;
use crate::model::Preset;
use crate::runlog::analyze::{analyze_run, Analysed, AnalyzeOptions};
use crate::runlog::events::{Event, RunStatus};
use crate::runlog::spec::SpecText;
use crate::runlog::spec_train::{train_spec, SpecTrainOptions};
use crate::runlog::train::train;
use crate::runlog::{write_atomic, EventLog, RunDir};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One replay: `checkpoints` written `interval_s` apart.
#[derive(Debug, Clone)]
pub struct Replay {
    pub interval_s: f64,
    pub checkpoints: usize,
    pub analysed: usize,
    pub skipped: usize,
    /// Seconds from each analysed checkpoint's writing to the end of its analysis, sorted (all
    /// but the first, which is there before the analysis starts).
    pub latencies: Vec<f64>,
}

impl Replay {
    fn quantile(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i]
    }
}

impl std::fmt::Display for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "every {:.3} s: {} checkpoints, {} analysed, {} skipped; latency (written to analysed, {} checkpoints) median {:.3} s, p90 {:.3} s, max {:.3} s",
            self.interval_s,
            self.checkpoints,
            self.analysed,
            self.skipped,
            self.latencies.len(),
            self.quantile(0.5),
            self.quantile(0.9),
            self.latencies.last().copied().unwrap_or(f64::NAN)
        )
    }
}

/// A workload's replays: the stated interval first, then the halvings.
#[derive(Debug, Clone)]
pub struct KeepUp {
    pub workload: String,
    pub replays: Vec<Replay>,
}

impl KeepUp {
    /// The highest rate (checkpoints per second) replayed with none skipped.
    pub fn sustained(&self) -> Option<f64> {
        self.replays
            .iter()
            .filter(|r| r.skipped == 0)
            .map(|r| 1.0 / r.interval_s)
            .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.max(r))))
    }
}

impl std::fmt::Display for KeepUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.workload)?;
        for r in &self.replays {
            writeln!(f, "  {r}")?;
        }
        match self.sustained() {
            Some(rate) => write!(f, "  sustains {rate:.2} checkpoints/s with none skipped"),
            None => write!(f, "  skipped checkpoints at every interval tried"),
        }
    }
}

fn scratch(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("circuitscope-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "cannot create", e))?;
    Ok(dir)
}

/// Replays the checkpoints of the finished run `source` into `live` every `interval`, while
/// analysing them live.
fn replay(source: &Path, live: &Path, interval: Duration, examples: usize) -> Result<Replay> {
    let src = RunDir::open(source)?;
    let steps = src.checkpoint_steps()?;
    let _ = std::fs::remove_dir_all(live);
    std::fs::create_dir_all(live.join("checkpoints"))
        .map_err(|e| Error::io(live, "cannot create", e))?;
    std::fs::copy(src.run_json(), live.join("run.json"))
        .map_err(|e| Error::io(live, "cannot copy run.json", e))?;
    if source.join("data/val.csv").exists() {
        std::fs::create_dir_all(live.join("data")).map_err(|e| Error::io(live, "mkdir", e))?;
        std::fs::copy(source.join("data/val.csv"), live.join("data/val.csv"))
            .map_err(|e| Error::io(live, "cannot copy data/val.csv", e))?;
    }
    let run = RunDir {
        root: live.to_path_buf(),
    };
    let mut log = EventLog::open(&run.events())?;
    log.emit(
        None,
        Event::RunStart {
            command: "train".into(),
            preset: None,
            config: serde_json::json!({"replay of": source}),
        },
    )?;
    // The first checkpoint is there before analysis starts (it loads the run from it); the
    // rest follow at the interval.
    let first = std::fs::read(&steps[0].1).map_err(|e| Error::io(&steps[0].1, "read", e))?;
    write_atomic(&run.checkpoint(steps[0].0), &first)?;
    let writer = {
        let (run, steps) = (run.clone(), steps.clone());
        std::thread::spawn(move || -> Result<()> {
            let mut log = EventLog::open(&run.events())?;
            log.emit(
                Some(steps[0].0),
                Event::Checkpoint {
                    path: format!("checkpoints/step-{}.safetensors", steps[0].0),
                    epoch: 0,
                },
            )?;
            let t0 = Instant::now();
            for (i, (step, path)) in steps.iter().enumerate().skip(1) {
                let due = interval * i as u32;
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
                write_atomic(&run.checkpoint(*step), &bytes)?;
                log.emit(
                    Some(*step),
                    Event::Checkpoint {
                        path: format!("checkpoints/step-{step}.safetensors"),
                        epoch: i,
                    },
                )?;
            }
            log.emit(
                None,
                Event::RunEnd {
                    status: RunStatus::Completed,
                    message: None,
                },
            )
        })
    };
    let o = AnalyzeOptions {
        root: live.to_path_buf(),
        follow: true,
        every: 1,
        graph: GraphSpec {
            examples,
            ..Default::default()
        }
        .check()?,
        ablation: Ablation::Mean,
        interventions: true,
        poll: Duration::from_millis(100),
    };
    let (mut latencies, mut skipped) = (Vec::new(), 0usize);
    let analysed = analyze_run(&o, |a| match a {
        Analysed::Done { latency_s, .. } => latencies.extend(*latency_s),
        Analysed::Skipped { .. } => skipped += 1,
    })?;
    writer
        .join()
        .map_err(|_| Error::Invalid("bench follow: the writer panicked".into()))??;
    latencies.sort_by(f64::total_cmp);
    Ok(Replay {
        interval_s: interval.as_secs_f64(),
        checkpoints: steps.len(),
        analysed,
        skipped,
        latencies,
    })
}

/// Keeping up on `source`: a replay at `interval`, then at halved intervals (`halvings` of
/// them), `checkpoints` checkpoints each.
fn keep_up(
    workload: String,
    source: &Path,
    scratch: &Path,
    interval: f64,
    halvings: usize,
    examples: usize,
) -> Result<KeepUp> {
    let mut replays = Vec::new();
    for h in 0..=halvings {
        let every = Duration::from_secs_f64(interval / f64::powi(2.0, h as i32));
        let r = replay(source, &scratch.join(format!("live-{h}")), every, examples)?;
        eprintln!("bench follow: {workload}: {r}");
        let stop = r.skipped > 0;
        replays.push(r);
        if stop {
            break;
        }
    }
    Ok(KeepUp { workload, replays })
}

/// The two workloads of the issue: `products` with a checkpoint every 2 s, and a 6→32→32→3
/// model of three tasks at one a second; each then at halved intervals until one is skipped.
pub fn follow_bench(checkpoints: usize, halvings: usize, examples: usize) -> Result<Vec<KeepUp>> {
    let dir = scratch("follow")?;
    let result = (|| {
        // products, trained with one checkpoint per epoch.
        let products = dir.join("products");
        let cfg = TrainConfig {
            epochs: checkpoints,
            engine: Engine::Fused,
            log_every: usize::MAX,
            ..TrainConfig::defaults(Preset::Products)
        }
        .check()?;
        train(&products, &cfg, &mut |_| {})?;
        let three = dir.join("three");
        let spec = SpecText {
            origin: Path::new("bench follow").into(),
            text: r#"{"format": "circuitscope-spec", "version": 1,
              "inputs": ["a", "b", "c", "d", "e", "f"], "hidden": [32, 32], "activation": "relu",
              "tasks": [{"name": "ab", "expr": "a*b", "uses": ["a", "b"]},
                        {"name": "cd", "expr": "c*d", "uses": ["c", "d"]},
                        {"name": "ef", "expr": "e*f", "uses": ["e", "f"]}],
              "synthetic": {"n_train": 20000, "n_val": 2000}}"#
                .into(),
        };
        train_spec(
            &three,
            &SpecTrainOptions {
                spec,
                epochs: Some(checkpoints),
                log_every: Some(usize::MAX),
                ..Default::default()
            },
            &mut |_| {},
        )?;
        let shape = |root: &Path| -> Result<String> {
            let w = crate::runlog::LoadedRun::open(root)?.model.widths();
            Ok(w.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("→"))
        };
        Ok(vec![
            keep_up(
                format!(
                    "products ({}), {examples} validation examples",
                    shape(&products)?
                ),
                &products,
                &dir,
                2.0,
                halvings,
                examples,
            )?,
            keep_up(
                format!(
                    "{} (a*b, c*d, e*f), {examples} validation examples",
                    shape(&three)?
                ),
                &three,
                &dir,
                1.0,
                halvings,
                examples,
            )?,
        ])
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
