//! One followed run's state in the dashboard ([`RunState`]): its views, its connection, what
//! its last events said (stage, step, times) and how long it has been quiet. The app holds one
//! per run named on the command line; it must never read files or the clock itself (the age
//! comes from ticks).

use super::{Connection, Record, View};
use crate::runlog::Event;
use ratatui::style::Color;

/// What the dashboard knows of one run.
pub(crate) struct RunState {
    /// The run's name: its directory as named (or found below a directory), or `host:RUN`.
    pub label: String,
    pub views: Vec<Box<dyn View>>,
    pub connection: Connection,
    /// The last `run_start`'s command, and the last `run_end`'s status (cleared by a start).
    pub stage: Option<String>,
    pub ended: Option<(String, Option<String>)>,
    pub records: usize,
    pub last_step: Option<u64>,
    /// The envelope times of the first and the last event (seconds since the epoch).
    pub first_time: Option<f64>,
    pub last_time: Option<f64>,
    /// Seconds (ticks) since the last record arrived.
    pub idle_s: u64,
    /// Laid over the other selected runs in the Training and Faithfulness views.
    pub selected: bool,
}

/// How a run stands, for the header and the run list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Waiting,
    Running,
    Stale,
    Finished,
    Ended(String),
}

impl Status {
    pub fn color(&self) -> Color {
        match self {
            Status::Waiting => Color::Yellow,
            Status::Running => Color::White,
            Status::Stale => Color::Red,
            Status::Finished => Color::Cyan,
            Status::Ended(_) => Color::LightRed,
        }
    }
}

impl RunState {
    pub fn new(label: String, views: Vec<Box<dyn View>>) -> RunState {
        RunState {
            label,
            views,
            connection: Connection::Connecting { attempt: 0 },
            stage: None,
            ended: None,
            records: 0,
            last_step: None,
            first_time: None,
            last_time: None,
            idle_s: 0,
            selected: true,
        }
    }

    /// Drops everything shown so far (the log is read again), keeping the connection.
    pub fn reset(&mut self, views: Vec<Box<dyn View>>) {
        let (label, connection, selected) = (
            std::mem::take(&mut self.label),
            self.connection.clone(),
            self.selected,
        );
        *self = RunState::new(label, views);
        self.connection = connection;
        self.selected = selected;
    }

    /// Takes one record in: the run's own figures, then every view.
    pub fn apply(&mut self, r: &Record) {
        // The run's times come from its own log (the analysis log is written later, by
        // another process).
        if let Some(env) = r.event.as_ref().filter(|_| !r.analysis) {
            if env.time > 0.0 && env.time.is_finite() {
                self.first_time = Some(self.first_time.map_or(env.time, |t| t.min(env.time)));
                self.last_time = Some(self.last_time.map_or(env.time, |t| t.max(env.time)));
            }
        }
        // The analysis log's own segment markers describe `analyze`, not the run.
        let marker = matches!(
            r.event.as_ref().map(|e| &e.event),
            Some(Event::RunStart { .. } | Event::RunEnd { .. } | Event::Resumed { .. })
        );
        if r.analysis && marker {
            return;
        }
        match r.event.as_ref().map(|e| &e.event) {
            Some(Event::RunStart { command, .. }) => {
                self.stage = Some(command.clone());
                self.ended = None;
            }
            Some(Event::RunEnd { status, message }) => {
                self.ended = Some((status.name().to_string(), message.clone()));
            }
            Some(Event::TrainStep { .. }) => self.last_step = r.step.or(self.last_step),
            _ => {}
        }
        for v in &mut self.views {
            v.update(r);
        }
    }

    /// What the header says about the time since the last event: nothing under 10 s, then the
    /// age in steps of 10 s, and whether the run is stale. Nothing once the run has ended or
    /// for a replayed log.
    pub fn age_shown(&self, stale_after_s: u64) -> Option<(u64, bool)> {
        if self.ended.is_some() || self.connection == Connection::Replayed || self.idle_s < 10 {
            return None;
        }
        Some((self.idle_s / 10 * 10, self.idle_s >= stale_after_s))
    }

    pub fn status(&self, stale_after_s: u64) -> Status {
        match (&self.ended, &self.stage) {
            (Some((status, _)), _) if status == "completed" => Status::Finished,
            (Some((status, _)), _) => Status::Ended(status.clone()),
            (None, Some(_)) if matches!(self.age_shown(stale_after_s), Some((_, true))) => {
                Status::Stale
            }
            (None, Some(_)) => Status::Running,
            (None, None) => Status::Waiting,
        }
    }

    /// The run's state in words: `train running`, `eval finished`, `train ended: failed`.
    pub fn state_text(&self, stale_after_s: u64) -> String {
        let stage = self.stage.as_deref().unwrap_or("run");
        match self.status(stale_after_s) {
            Status::Waiting => "waiting for events".into(),
            Status::Running => format!("{stage} running"),
            Status::Stale => format!("{stage} stale"),
            Status::Finished => format!("{stage} finished"),
            Status::Ended(s) => format!("{stage} ended: {s}"),
        }
    }

    /// Elapsed time from the first event to the last, and the last event's wall-clock time.
    pub fn times(&self) -> Option<(f64, f64)> {
        Some((self.last_time? - self.first_time?, self.last_time?))
    }

    /// The connection state in a few words, and its colour.
    pub fn connection_text(&self) -> (String, Color) {
        match &self.connection {
            Connection::Connecting { attempt: 0 } => ("connecting".to_string(), Color::Yellow),
            Connection::Connecting { attempt } => {
                (format!("reconnecting (attempt {attempt})"), Color::Yellow)
            }
            Connection::Live => ("live".into(), Color::Green),
            Connection::Replayed => ("replay".into(), Color::Cyan),
            Connection::Lost { retry_in_s, .. } => (
                format!("connection lost, reconnecting in {retry_in_s} s"),
                Color::Red,
            ),
            Connection::Ended => ("stream ended".into(), Color::Cyan),
            Connection::Failed(_) => ("failed".into(), Color::Red),
        }
    }
}
