//! The terminal dashboard (`circuitscope watch`): follows runs' event logs, locally or from
//! remote machines over SSH, and shows them as tabs — training, probes, clustering, the graph,
//! faithfulness, circuit emergence over checkpoints, the zoo and embedder, the raw log, and,
//! with several runs, the run list (the Training and Faithfulness tabs lay the selected runs
//! over each other). Beside each run's own log it follows the run's analysis log
//! (`analysis/events.jsonl`, written by `analyze --follow`) once that exists.
//!
//! State in, frame out: every input — a key, the mouse, a resize, a run's event, a change of a
//! source's connection — is one [`AppEvent`] sent over a channel into [`App`]; [`App::render`] is a pure
//! function of the app's state. Reading files, running ssh and talking to the terminal live in
//! [`source`] and [`watch`], never in a view. A view is one type implementing [`View`] plus one
//! line in [`default_views`]: adding a view for a new event kind touches nothing else.
//!
//! It must never write to the run it watches, never redraw when nothing happened (no polling
//! of the screen: the loop blocks on the channel), and never leave the terminal in raw mode —
//! on quit, on error or on panic.

pub mod app;
mod chrome;
mod run;
pub mod source;
pub mod views;

pub use app::{run_loop, App};

use crate::runlog::events::check_version;
use crate::runlog::Envelope;
use crate::{Error, Result};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, MouseEvent};
use ratatui::layout::Rect;

/// One line of the event log as the dashboard received it, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The byte offset just past this line in the log (where a reconnection resumes).
    pub end: u64,
    /// The line as received (the Log view shows it).
    pub line: String,
    /// The event's kind tag, also for kinds this build does not know.
    pub kind: String,
    /// The envelope's step, if any.
    pub step: Option<u64>,
    /// The line as a known event, when it is one.
    pub event: Option<Envelope>,
    /// A line of a kind this build does not know, as JSON, for a view that knows it.
    pub unknown: Option<Box<serde_json::Value>>,
    /// The line came from the run's analysis log (`analysis/events.jsonl`, written by
    /// `analyze`), not from its own log.
    pub analysis: bool,
}

impl Record {
    /// Reads one log line: a JSON object with a schema version this build reads and a `kind`.
    /// A kind this build does not know is kept (with `event: None`) for views that know it.
    pub fn parse(line: &str, end: u64) -> std::result::Result<Record, String> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
        check_version(&value)?;
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or("no event `kind`")?
            .to_string();
        let step = value.get("step").and_then(|s| s.as_u64());
        let (event, unknown) = match Envelope::from_value(value.clone()) {
            Ok(e) => (Some(e), None),
            Err(_) => (None, Some(Box::new(value))),
        };
        Ok(Record {
            end,
            line: line.to_string(),
            kind,
            step,
            event,
            unknown,
            analysis: false,
        })
    }

    /// A record of an event the follower already parsed.
    pub fn known(event: Envelope, line: String, end: u64) -> Record {
        Record {
            end,
            kind: event.event.kind().to_string(),
            step: event.step,
            line,
            event: Some(event),
            unknown: None,
            analysis: false,
        }
    }

    /// The same record, marked as read from the analysis log.
    pub fn in_analysis(mut self) -> Record {
        self.analysis = true;
        self
    }

    /// The event's kind tag.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The envelope's step, if any.
    pub fn step(&self) -> Option<u64> {
        self.step
    }
}

/// Where the events come from, and how that is going.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// Opening the log or the ssh connection (`attempt` 0 is the first).
    Connecting { attempt: u32 },
    /// Following a growing log.
    Live,
    /// A finished log read once (`--replay`); nothing more will come.
    Replayed,
    /// The connection dropped; the source reconnects from the last offset.
    Lost { reason: String, retry_in_s: u64 },
    /// The source has nothing more to send (the remote follower stopped after `run_end`).
    Ended,
    /// The source gave up; the reason is shown.
    Failed(String),
}

/// Everything that can change the dashboard, in one type.
// Nearly every message is a run's record (the large variant): boxing it would allocate once
// more per event line and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum AppEvent {
    Key(KeyEvent),
    /// A click, a drag or the wheel (when mouse capture is on).
    Mouse(MouseEvent),
    Resize,
    /// One second passed (the header's age of the last event, and staleness).
    Tick,
    /// A signal that ends the program (SIGTERM, SIGHUP: a closed SSH session) arrived: the
    /// dashboard quits, and the terminal is restored before the process exits.
    Signal(i32),
    /// Something from the source of one run: runs are numbered in the order `watch` was given
    /// them (0 for a single run).
    Run(usize, RunEvent),
}

/// What a run's source sends.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Record(Record),
    Connection(Connection),
    /// Something the user should read (a skipped line, a remote's error output).
    Warning(String),
    /// The log was truncated or replaced: everything shown so far of this run is dropped and
    /// the log is read again from the start.
    Reset(String),
}

/// What the app needs after one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Quit,
    Redraw,
    Idle,
}

/// What the charts of training over time put on their x axis (`x` cycles it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAxis {
    /// The training step.
    #[default]
    Step,
    /// Seconds since the run's first event.
    Elapsed,
    /// The wall-clock time of the event (local time).
    Wall,
}

impl XAxis {
    /// The next choice, in the order `x` cycles them.
    pub fn next(self) -> XAxis {
        match self {
            XAxis::Step => XAxis::Elapsed,
            XAxis::Elapsed => XAxis::Wall,
            XAxis::Wall => XAxis::Step,
        }
    }

    /// How an axis value reads (a step, `1m 05s`, `14:03:22`).
    pub fn label(self, x: f64) -> String {
        match self {
            XAxis::Step => format!("{x:.0}"),
            XAxis::Elapsed => views::duration(x),
            XAxis::Wall => views::clock(x),
        }
    }

    /// The axis's name.
    pub fn name(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Elapsed => "elapsed",
            XAxis::Wall => "time",
        }
    }
}

/// One named series of points a view lays over the same view of other runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One run's series in an overlay, with the run's name and colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlay {
    pub run: String,
    pub color: ratatui::style::Color,
    pub series: Vec<Series>,
}

/// State shared by every view when it draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ctx<'a> {
    /// The share of a graph's edges kept (the `+`/`-` control), in (0, 1].
    pub keep: f64,
    /// What the charts over time put on their x axis.
    pub x: XAxis,
    /// With several runs selected, every selected run's series for this view (from
    /// [`View::series`]), the shown run's among them; empty otherwise. A view that lays runs
    /// over each other draws these, one colour a run, instead of its own series alone.
    pub overlay: &'a [Overlay],
}

impl Ctx<'_> {
    /// A context with no overlay and the step on the x axis.
    pub fn plain(keep: f64) -> Ctx<'static> {
        Ctx {
            keep,
            x: XAxis::Step,
            overlay: &[],
        }
    }
}

/// One tab of the dashboard.
pub trait View: Send {
    /// The tab's name.
    fn title(&self) -> &str;
    /// Takes in one record (every record reaches every view); true when the record changed
    /// this view's picture (the app redraws on every record anyway, as its header counts them).
    fn update(&mut self, record: &Record) -> bool;
    /// A key the app does not use itself (arrows), sent to the visible view only; true when its
    /// picture changed.
    fn key(&mut self, _key: KeyCode) -> bool {
        false
    }
    /// Draws the view: a pure function of its state and `ctx`. A view with no data says which
    /// events (and which command) will fill it.
    fn render(&self, area: Rect, buf: &mut Buffer, ctx: &Ctx);
    /// The series this view lays over the same view of other runs (x as `x` asks); none for a
    /// view that shows one run at a time.
    fn series(&self, _x: XAxis) -> Vec<Series> {
        Vec::new()
    }
    /// The `/` search: finds `query` in what the view shows (the next match after the
    /// current one when `next`), and says what it found; `None` for a view with nothing to
    /// search.
    fn search(&mut self, _query: &str, _next: bool) -> Option<String> {
        None
    }
}

/// Makes a fresh set of views (at start, and again when the log is read anew).
pub type ViewFactory = Box<dyn Fn() -> Vec<Box<dyn View>> + Send>;

/// The views `watch` shows, in tab order.
pub fn default_views() -> Vec<Box<dyn View>> {
    vec![
        Box::new(views::Training::default()),
        Box::new(views::Probes::default()),
        Box::new(views::Clustering::default()),
        Box::new(views::Graph::default()),
        Box::new(views::Faithfulness::default()),
        Box::new(views::Emergence::default()),
        Box::new(views::Zoo::default()),
        Box::new(views::Log::default()),
    ]
}

/// The shares of edges the `+`/`-` control steps through.
pub const KEEP_LADDER: [f64; 11] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0];

/// Options of `circuitscope watch`.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// What to follow: local run directories (or events.jsonl files), directories holding runs
    /// (every run below is followed), or `[user@]host:RUN`.
    pub targets: Vec<String>,
    /// The ssh command, split on whitespace (e.g. `ssh -p 2222 -i key`).
    pub ssh: String,
    /// The circuitscope binary on the remote machine.
    pub remote_bin: String,
    /// Read the log once and stop following it.
    pub replay: bool,
    /// Also append every received line to this file (a local copy of the log; one run only).
    pub save: Option<std::path::PathBuf>,
    /// Mark a running run stale after this many seconds without an event.
    pub stale_after: u64,
    /// Take the mouse (clicks on tabs and runs, the wheel scrolls).
    pub mouse: bool,
}

/// `circuitscope watch`: checks what can be checked before taking the terminal (every local
/// run exists, stdout is a terminal), then runs the dashboard until `q`. The terminal is
/// restored on every way out, a panic included (ratatui's panic hook, and ours for the mouse).
pub fn watch(opts: WatchOptions) -> Result<()> {
    use std::io::IsTerminal;
    let targets = source::Target::expand(&opts.targets)?;
    if targets.len() > 1 && opts.save.is_some() {
        return Err(Error::Invalid(
            "--save copies one run's log, and this watches several; name one run with --save"
                .into(),
        ));
    }
    if std::env::var("TERM").is_ok_and(|t| t == "dumb") {
        return Err(Error::Invalid(
            "watch draws on a terminal and TERM=dumb says this one cannot; use `circuitscope events --follow RUN` for the events as text".into(),
        ));
    }
    if !std::io::stdout().is_terminal() {
        return Err(Error::Invalid(
            "watch draws on a terminal and standard output is not one; use `circuitscope events --follow RUN` for the events as text".into(),
        ));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // Signals that end the program become one event, so the loop ends and the terminal is
    // restored on the way out, as for `q`.
    use signal_hook::consts::{SIGHUP, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP])
        .map_err(|e| Error::io("<signals>", "cannot install handlers", e))?;
    let handle = signals.handle();
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = tx.send(AppEvent::Signal(sig));
            }
        });
    }
    let mut sources = Vec::with_capacity(targets.len());
    for (i, (target, _)) in targets.iter().enumerate() {
        sources.push(source::start(
            target,
            &opts,
            source::RunTx::new(tx.clone(), i),
        )?);
    }
    let mut terminal =
        ratatui::try_init().map_err(|e| Error::io("<terminal>", "cannot set up", e))?;
    if opts.mouse {
        mouse_capture(true);
        // A panic must give the mouse back too (ratatui's hook restores the rest).
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            mouse_capture(false);
            hook(info);
        }));
    }
    if !opts.replay {
        let tx = tx.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            if tx.send(AppEvent::Tick).is_err() {
                return;
            }
        });
    }
    source::spawn_input(tx);
    let labels = targets.into_iter().map(|(_, label)| label).collect();
    let mut app =
        App::with_runs(labels, Box::new(default_views)).with_stale_after(opts.stale_after);
    let result = run_loop(&mut terminal, &mut app, &rx);
    if opts.mouse {
        mouse_capture(false);
    }
    ratatui::restore();
    for s in &sources {
        s.stop();
    }
    handle.close();
    if let Some(sig) = app.ended_by_signal() {
        // The conventional status of a process ended by a signal, now that the terminal is
        // whole again.
        std::process::exit(128 + sig);
    }
    result
}

/// Turns the terminal's mouse reporting on or off.
fn mouse_capture(on: bool) {
    use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
    use ratatui::crossterm::execute;
    let mut out = std::io::stdout();
    let _ = if on {
        execute!(out, EnableMouseCapture)
    } else {
        execute!(out, DisableMouseCapture)
    };
}
