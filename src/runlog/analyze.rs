//! `analyze`: live analysis of a run's checkpoints as training writes them — from
//! circuitscope's `train` or from the Python logger. For each new checkpoint it builds the graph
//! and logs its census, communities, modularity, faithfulness curve, CPR, ARI and interventions
//! into the run's *own analysis log*, `analysis/events.jsonl`, so it never interleaves with the
//! trainer's writes. It keeps up rather than queueing: while training runs, a checkpoint older
//! than the newest one written is skipped (an `analysis_skipped` event says so). It resumes
//! where it stopped: a checkpoint whose `emergence` event (written last, as the checkpoint's
//! commit) or `analysis_skipped` event is in the analysis log is never analysed again.
//!
//! It only reads the run's own files; it writes nothing but `analysis/events.jsonl`.

use super::dir::RunDir;
use super::eval::log_curve_and_interventions;
use super::events::{Envelope, Event, RunStatus};
use super::follow::{Followed, Follower};
use super::graph::graph_edges_event;
use super::load::LoadedRun;
use super::log::EventLog;
use crate::eval::ablation::Ablation;
use crate::eval::{analyse_checkpoint, ChanceLevels, Learned, FRACTIONS, STRUCTURE};
use crate::graph::GraphSpec;
use crate::params::{Choice, Valid};
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What `analyze` does.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub root: PathBuf,
    /// Keep going as checkpoints appear, until the run's training ends.
    pub follow: bool,
    /// Analyse every N-th checkpoint (and always the last).
    pub every: usize,
    pub graph: Valid<GraphSpec>,
    pub ablation: Ablation,
    /// Also run the interventions on every checkpoint.
    pub interventions: bool,
    /// How often the run's files are looked at while following.
    pub poll: Duration,
}

/// One analysed (or skipped) checkpoint, as `analyze` reports it.
#[derive(Debug, Clone)]
pub enum Analysed {
    Done {
        step: u64,
        learned: Learned,
        /// In the order of [`STRUCTURE`]; NaN while the model has not learned.
        structure: [f64; 7],
        /// Faithfulness at each of [`FRACTIONS`] (NaN where undefined).
        curve: Vec<f64>,
        /// Chance levels of CPR, faithfulness at 10%, ARI and modularity (once learned).
        chance: Option<ChanceLevels>,
        /// Seconds the analysis took.
        analysis_s: f64,
        /// For a checkpoint written while `analyze --follow` ran: seconds from the file's
        /// writing to the end of its analysis (`None` for one that was there before).
        latency_s: Option<f64>,
    },
    Skipped {
        step: u64,
        reason: String,
    },
}

/// What the analysis log already holds: every checkpoint step done or skipped.
pub fn already_done(log: &Path) -> Result<BTreeSet<u64>> {
    if !log.exists() {
        return Ok(BTreeSet::new());
    }
    let mut f = Follower::open(log, 0)?;
    Ok(f.poll()?
        .into_iter()
        .filter_map(|x| match x {
            Followed::Event { event, .. } => match event.event {
                Event::Emergence {
                    checkpoint_step, ..
                }
                | Event::AnalysisSkipped {
                    checkpoint_step, ..
                } => Some(checkpoint_step),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

/// What the loop carries between checkpoints.
struct State {
    /// Every checkpoint step done or skipped.
    done: BTreeSet<u64>,
    training: Training,
    /// When this analysis started: checkpoints written since are live.
    started: SystemTime,
}

/// The training state of a run, read incrementally from its event log.
struct Training {
    follower: Option<Follower>,
    /// A training segment (`train`, or a `resumed` run) is open.
    open: bool,
    /// A training segment has ended and none is open.
    ended: bool,
    /// Whether the log holds a training segment at all, and whether another kind of segment
    /// (an `import`, say) has ended: a log of ended segments none of which trains will never
    /// write a checkpoint.
    seen: bool,
    other_ended: bool,
}

impl Training {
    /// Nothing more will be written: training ended, or the log holds no training at all.
    fn over(&self) -> bool {
        self.ended || (!self.seen && self.other_ended)
    }
}

impl Training {
    fn poll(&mut self, run: &RunDir) -> Result<()> {
        if self.follower.is_none() && run.events().exists() {
            self.follower = Some(Follower::open(&run.events(), 0)?);
        }
        let Some(f) = self.follower.as_mut() else {
            return Ok(());
        };
        for item in f.poll()? {
            match item {
                Followed::Event { event, .. } => self.see(&event),
                Followed::Truncated { .. } | Followed::Replaced | Followed::Rewritten => {
                    self.open = false;
                    self.ended = false;
                    self.seen = false;
                    self.other_ended = false;
                }
                Followed::Garbage { .. } => {}
            }
        }
        Ok(())
    }

    fn see(&mut self, e: &Envelope) {
        match &e.event {
            Event::RunStart { command, .. } if command == "train" => {
                self.open = true;
                self.ended = false;
                self.seen = true;
            }
            Event::Resumed { .. } => {
                self.open = true;
                self.ended = false;
            }
            Event::RunEnd { .. } if self.open => {
                self.open = false;
                self.ended = true;
            }
            Event::RunEnd { .. } => self.other_ended = true,
            _ => {}
        }
    }
}

/// When `path` was last modified.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Analyses the run's checkpoints (following new ones with `follow`), calling `report` for each
/// checkpoint analysed or skipped. Returns how many were analysed.
pub fn analyze_run(o: &AnalyzeOptions, mut report: impl FnMut(&Analysed)) -> Result<usize> {
    let started = SystemTime::now();
    let run = RunDir::open(&o.root)?;
    let log_path = run.root.join("analysis").join("events.jsonl");
    let done = already_done(&log_path)?;
    let mut training = Training {
        follower: None,
        open: false,
        ended: false,
        seen: false,
        other_ended: false,
    };
    // The run's model and data, loaded from its first checkpoint (a run still training has no
    // final model yet).
    let first = loop {
        training.poll(&run)?;
        if let Some(first) = run.checkpoint_steps()?.into_iter().next() {
            break first;
        }
        if !o.follow || training.over() {
            return Err(Error::Invalid(format!(
                "{}: no checkpoints to analyse{}",
                run.checkpoints().display(),
                if !training.seen && training.other_ended {
                    " (the run was not trained here, e.g. an import: analyse its model with `circuitscope eval`)"
                } else if o.follow {
                    ""
                } else {
                    " yet (pass --follow to wait for them)"
                }
            )));
        }
        std::thread::sleep(o.poll);
    };
    let loaded = LoadedRun::open_with(&o.root, Some(&first.1))?;
    o.graph.fits(&loaded.model, &loaded.data.val)?;
    std::fs::create_dir_all(log_path.parent().expect("has a parent"))
        .map_err(|e| Error::io(&log_path, "cannot create the analysis folder", e))?;
    let mut log = EventLog::open(&log_path)?;
    log.emit(
        None,
        Event::RunStart {
            command: "analyze".into(),
            preset: Some(loaded.name().into()),
            config: serde_json::json!({
                "follow": o.follow, "every": o.every, "ablation": o.ablation.key(),
                "graph": &*o.graph, "interventions": o.interventions,
                "already_done": done.len(),
            }),
        },
    )?;
    if let Some(&last) = done.iter().next_back() {
        log.emit(Some(last), Event::Resumed { from_step: last })?;
    }
    let mut state = State {
        done,
        training,
        started,
    };
    let result = follow_loop(o, &run, &loaded, &mut log, &mut state, &mut report);
    log.emit(
        None,
        match &result {
            Ok(_) => Event::RunEnd {
                status: RunStatus::Completed,
                message: None,
            },
            Err(e) => Event::RunEnd {
                status: RunStatus::Failed,
                message: Some(e.to_string()),
            },
        },
    )?;
    result
}

fn follow_loop(
    o: &AnalyzeOptions,
    run: &RunDir,
    loaded: &LoadedRun,
    log: &mut EventLog,
    state: &mut State,
    report: &mut impl FnMut(&Analysed),
) -> Result<usize> {
    let State {
        done,
        training,
        started,
    } = state;
    let started = *started;
    let every = o.every.max(1);
    let mut analysed = 0usize;
    loop {
        training.poll(run)?;
        let finished = !o.follow || training.over();
        let all = run.checkpoint_steps()?;
        let last_index = all.len().saturating_sub(1);
        let high = done.iter().next_back().copied();
        let pending: Vec<(u64, PathBuf)> = all
            .into_iter()
            .enumerate()
            .filter(|(i, (s, _))| {
                high.is_none_or(|h| *s > h) && (i % every == 0 || (finished && *i == last_index))
            })
            .map(|(_, s)| s)
            .collect();
        if pending.is_empty() {
            if finished {
                return Ok(analysed);
            }
            std::thread::sleep(o.poll);
            continue;
        }
        // While training runs, only the newest checkpoint is worth reaching: older ones are
        // skipped, never queued.
        let (skip, take): (&[(u64, PathBuf)], &(u64, PathBuf)) = if finished {
            (&[], &pending[0])
        } else {
            let (last, older) = pending.split_last().expect("not empty");
            (older, last)
        };
        let newest = take.0;
        for (step, _) in skip {
            let reason = format!("step {newest} was written before this one was reached");
            skipped(log, done, report, *step, reason)?;
        }
        let (step, path) = take;
        let model = match loaded.checkpoint_model(path) {
            Ok(m) => m,
            Err(e) if !path.exists() => {
                let reason = format!("the checkpoint was removed before it was read ({e})");
                skipped(log, done, report, *step, reason)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        // Live: written while this analysis was following the run.
        let written = modified(path).filter(|t| o.follow && *t >= started);
        let start = std::time::Instant::now();
        let a = analyse_checkpoint(
            &model,
            &loaded.data,
            &o.graph,
            o.ablation,
            o.interventions,
            true,
        )?;
        let g = &a.graph;
        // One name for every checkpoint's curve: a follower shows the newest sweep (the
        // envelope's step says which checkpoint it is).
        let graph_name = o.graph.nodes.key().to_string();
        log.emit(
            Some(*step),
            Event::GraphSummary {
                nodes: g.graph.node_count(),
                edges: g.graph.edge_count(),
                density: g.share_above(1e-12),
                communities: g.communities,
                modularity: g.modularity,
                node_kind: o.graph.nodes.key().into(),
                edge_kind: format!("{:?}", o.graph.edges).to_lowercase(),
            },
        )?;
        log.emit(Some(*step), graph_edges_event(g))?;
        let mut curve = vec![f64::NAN; FRACTIONS.len()];
        if let Some(f) = a.faithfulness.as_ref().filter(|f| f.defined) {
            for (k, p) in f.points.iter().enumerate() {
                curve[k] = p.faithfulness;
            }
        }
        let points = a.interventions.as_ref().map_or(&[][..], |iv| &iv.points);
        log_curve_and_interventions(
            log,
            Some(*step),
            &graph_name,
            o.ablation,
            a.faithfulness.as_ref(),
            points,
        )?;
        let mut figures: BTreeMap<String, f64> = STRUCTURE
            .iter()
            .zip(&a.structure)
            .filter(|(_, v)| v.is_finite())
            .map(|(n, &v)| (n.to_string(), v))
            .collect();
        let score = if a.learned.chance.is_some() {
            "accuracy"
        } else {
            "mean_r2"
        };
        figures.insert(score.into(), a.learned.score);
        if let Some(iv) = a.interventions.as_ref().filter(|iv| iv.rho.is_finite()) {
            figures.insert("intervention_rho".into(), iv.rho);
        }
        if let Some(c) = &a.chance {
            for (name, v) in [
                ("cpr_chance", c.cpr),
                ("faithfulness_at_10pct_chance", c.faithfulness_at_10pct),
                ("ari_chance", c.ari),
                ("modularity_chance", c.modularity),
            ] {
                if v.is_finite() {
                    figures.insert(name.into(), v);
                }
            }
        }
        let analysis_s = start.elapsed().as_secs_f64();
        let latency_s = written.map(|t| {
            SystemTime::now()
                .duration_since(t)
                .map_or(0.0, |d| d.as_secs_f64())
        });
        figures.insert("analysis_s".into(), analysis_s);
        if let Some(l) = latency_s {
            figures.insert("latency_s".into(), l);
        }
        // Written last: the checkpoint's commit. A restart redoes a checkpoint only if it was
        // killed before this line.
        log.emit(
            Some(*step),
            Event::Emergence {
                checkpoint_step: *step,
                width: loaded.width(),
                figures,
            },
        )?;
        done.insert(*step);
        analysed += 1;
        report(&Analysed::Done {
            step: *step,
            learned: a.learned.clone(),
            structure: a.structure,
            curve,
            chance: a.chance,
            analysis_s,
            latency_s,
        });
    }
}

fn skipped(
    log: &mut EventLog,
    done: &mut BTreeSet<u64>,
    report: &mut impl FnMut(&Analysed),
    step: u64,
    reason: String,
) -> Result<()> {
    log.emit(
        Some(step),
        Event::AnalysisSkipped {
            checkpoint_step: step,
            reason: reason.clone(),
        },
    )?;
    done.insert(step);
    report(&Analysed::Skipped { step, reason });
    Ok(())
}

/// One line per checkpoint: `step N  CPR … (chance …)  faithfulness at 10% …  ARI …`
/// (`undefined` while the model has not learned).
pub fn line(a: &Analysed) -> String {
    match a {
        Analysed::Skipped { step, reason } => format!("step {step}  skipped: {reason}"),
        Analysed::Done {
            step,
            learned,
            structure,
            chance,
            analysis_s,
            latency_s,
            ..
        } => {
            let when = match latency_s {
                Some(l) => {
                    format!("(analysed in {analysis_s:.2} s, {l:.2} s after it was written)")
                }
                None => format!("(analysed in {analysis_s:.2} s)"),
            };
            if !learned.learned {
                return format!(
                    "step {step}  CPR undefined  faithfulness at 10% undefined  (not learned: {})  {when}",
                    learned.reason()
                );
            }
            let f = |v: f64| {
                if v.is_finite() {
                    format!("{v:.4}")
                } else {
                    "undefined".into()
                }
            };
            let c = |v: Option<f64>| match v {
                Some(v) if v.is_finite() => format!(" (chance {v:.4})"),
                _ => String::new(),
            };
            let count = |v: f64| {
                if v.is_finite() {
                    format!("{v:.0}")
                } else {
                    "undefined".into()
                }
            };
            format!(
                "step {step}  CPR {}{}  faithfulness at 10% {}{}  ARI {}{}  modularity {}{}  communities {}  input gradients {}  ({} {:.3})  {when}",
                f(structure[0]),
                c(chance.map(|c| c.cpr)),
                f(structure[1]),
                c(chance.map(|c| c.faithfulness_at_10pct)),
                f(structure[2]),
                c(chance.map(|c| c.ari)),
                f(structure[4]),
                c(chance.map(|c| c.modularity)),
                count(structure[5]),
                count(structure[6]),
                learned.what,
                learned.score,
            )
        }
    }
}

/// The figures of every analysed checkpoint in an analysis log (`analysis/events.jsonl`), one
/// row per checkpoint by step: the held-out score (`mean_r2` or `accuracy`), the structure
/// figures, the interventions' ρ and the latency. NaN where a figure is undefined.
pub fn emergence_table(log: &Path) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::{Column, DataFrame};
    let mut rows: BTreeMap<u64, BTreeMap<String, f64>> = BTreeMap::new();
    for e in super::follow::read_all(log)? {
        if let Event::Emergence {
            checkpoint_step,
            figures,
            ..
        } = e.event
        {
            rows.insert(checkpoint_step, figures);
        }
    }
    let score = if rows.values().any(|f| f.contains_key("accuracy")) {
        "accuracy"
    } else {
        "mean_r2"
    };
    let mut names = vec![score];
    names.extend(STRUCTURE);
    names.extend([
        "cpr_chance",
        "faithfulness_at_10pct_chance",
        "ari_chance",
        "modularity_chance",
        "intervention_rho",
        "analysis_s",
        "latency_s",
    ]);
    let mut cols = vec![Column::new(
        "step".into(),
        rows.keys().copied().collect::<Vec<u64>>(),
    )];
    for n in names {
        cols.push(Column::new(
            n.into(),
            rows.values()
                .map(|f| f.get(n).copied().unwrap_or(f64::NAN))
                .collect::<Vec<f64>>(),
        ));
    }
    DataFrame::new(cols).map_err(|e| Error::Data(format!("emergence table: {e}")))
}
