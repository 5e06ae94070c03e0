//! The dashboard's state ([`App`]): every input taken in through [`App::handle`], the whole
//! screen drawn by [`App::render`] (in `chrome`) as a pure function of that state, and the
//! event loop. With several runs, each has its own views; one is shown at a time (the focused
//! run), and the Training and Faithfulness views lay the selected runs over each other.

use super::run::RunState;
use super::{AppEvent, Connection, Flow, Record, RunEvent, ViewFactory, XAxis, KEEP_LADDER};
use crate::{Error, Result};
use ratatui::backend::Backend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEventKind};
use ratatui::layout::Rect;
use ratatui::Terminal;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// The dashboard's whole state.
pub struct App {
    pub(crate) runs: Vec<RunState>,
    make_views: ViewFactory,
    /// The run whose views are shown.
    pub(crate) focus: usize,
    pub(crate) tab: usize,
    keep: usize,
    pub(crate) x: XAxis,
    pub(crate) paused: bool,
    pub(crate) held: Vec<(usize, Record)>,
    pub(crate) help: bool,
    /// The `/` prompt being typed, and the last query (for `n`).
    pub(crate) prompt: Option<String>,
    query: Option<String>,
    pub(crate) warning: Option<String>,
    redraws: Arc<AtomicUsize>,
    /// The signal that ended the dashboard.
    signal: Option<i32>,
    /// A running run with no event for this long is shown as stale.
    pub(crate) stale_after_s: u64,
    /// The area last drawn (where a mouse click lands).
    pub(crate) area: Cell<Rect>,
}

impl App {
    /// An app following one run named `target` (shown in the title) with the views
    /// `make_views` makes.
    pub fn new(target: impl Into<String>, make_views: ViewFactory) -> App {
        App::with_runs(vec![target.into()], make_views)
    }

    /// An app following several runs (each with its own views), named as given; the first
    /// is shown, every one is selected for the overlays.
    pub fn with_runs(labels: Vec<String>, make_views: ViewFactory) -> App {
        assert!(!labels.is_empty(), "a dashboard follows at least one run");
        let runs: Vec<RunState> = labels
            .into_iter()
            .map(|l| RunState::new(l, make_views()))
            .collect();
        assert!(
            !runs[0].views.is_empty(),
            "a dashboard needs at least one view"
        );
        // With several runs the dashboard opens on the run list.
        let tab = if runs.len() > 1 {
            runs[0].views.len()
        } else {
            0
        };
        App {
            runs,
            make_views,
            focus: 0,
            tab,
            keep: 4,
            x: XAxis::Step,
            paused: false,
            held: Vec::new(),
            help: false,
            prompt: None,
            query: None,
            warning: None,
            redraws: Arc::new(AtomicUsize::new(0)),
            signal: None,
            stale_after_s: 60,
            area: Cell::new(Rect::default()),
        }
    }

    /// Counts the frames drawn by [`run_loop`] (a test reads it to prove an idle dashboard
    /// does not redraw).
    pub fn redraw_counter(&self) -> Arc<AtomicUsize> {
        self.redraws.clone()
    }

    /// The visible tab.
    pub fn tab(&self) -> usize {
        self.tab
    }

    /// The tabs' titles, in order: the views, then the run list when there are several runs.
    pub fn titles(&self) -> Vec<String> {
        let mut t: Vec<String> = self.runs[0]
            .views
            .iter()
            .map(|v| v.title().to_string())
            .collect();
        if self.runs.len() > 1 {
            t.push("Runs".into());
        }
        t
    }

    /// Whether the visible tab is the run list.
    pub(crate) fn on_run_list(&self) -> bool {
        self.runs.len() > 1 && self.tab == self.runs[0].views.len()
    }

    fn tabs(&self) -> usize {
        self.runs[0].views.len() + usize::from(self.runs.len() > 1)
    }

    /// The share of edges kept.
    pub fn keep(&self) -> f64 {
        KEEP_LADDER[self.keep]
    }

    /// The x axis of the charts over time.
    pub fn x_axis(&self) -> XAxis {
        self.x
    }

    /// The shown run's connection.
    pub fn connection(&self) -> &Connection {
        &self.runs[self.focus].connection
    }

    /// Records of the shown run taken in (held ones while paused included).
    pub fn records(&self) -> usize {
        self.runs[self.focus].records
    }

    /// Whether the shown run's last stage has ended, and how.
    pub fn ended(&self) -> Option<&(String, Option<String>)> {
        self.runs[self.focus].ended.as_ref()
    }

    /// The run shown, and how many there are.
    pub fn focus(&self) -> (usize, usize) {
        (self.focus, self.runs.len())
    }

    /// Which runs are laid over each other in the Training and Faithfulness views.
    pub fn selected(&self) -> Vec<bool> {
        self.runs.iter().map(|r| r.selected).collect()
    }

    /// Marks a running run stale after `seconds` without an event (default 60).
    pub fn with_stale_after(mut self, seconds: u64) -> App {
        self.stale_after_s = seconds.max(1);
        self
    }

    /// The signal that ended the dashboard, if one did.
    pub fn ended_by_signal(&self) -> Option<i32> {
        self.signal
    }

    /// Takes one event in.
    pub fn handle(&mut self, ev: AppEvent) -> Flow {
        match ev {
            AppEvent::Key(k) => self.key(k),
            AppEvent::Mouse(m) => self.mouse(m),
            AppEvent::Resize => Flow::Redraw,
            AppEvent::Tick => {
                // Redraw only when what is shown changes: the ages in steps of 10 s, and the
                // moment a run turns stale.
                let stale = self.stale_after_s;
                let mut changed = false;
                for r in &mut self.runs {
                    let before = r.age_shown(stale);
                    r.idle_s += 1;
                    changed |= r.age_shown(stale) != before;
                }
                if changed {
                    Flow::Redraw
                } else {
                    Flow::Idle
                }
            }
            AppEvent::Signal(sig) => {
                self.signal = Some(sig);
                Flow::Quit
            }
            AppEvent::Run(i, _) if i >= self.runs.len() => Flow::Idle,
            AppEvent::Run(i, ev) => self.run_event(i, ev),
        }
    }

    /// A warning about run `i`, named when there are several.
    fn warn(&mut self, i: usize, text: String) {
        self.warning = Some(if self.runs.len() > 1 {
            format!("{}: {text}", self.runs[i].label)
        } else {
            text
        });
    }

    fn run_event(&mut self, i: usize, ev: RunEvent) -> Flow {
        match ev {
            RunEvent::Record(r) => {
                let run = &mut self.runs[i];
                run.idle_s = 0;
                run.records += 1;
                if self.paused {
                    self.held.push((i, r));
                    // The footer counts what is held.
                    return Flow::Redraw;
                }
                run.apply(&r);
                // The header counts every record, so each one changes the screen.
                Flow::Redraw
            }
            RunEvent::Connection(c) => {
                if c == self.runs[i].connection {
                    return Flow::Idle;
                }
                match &c {
                    Connection::Lost { reason, .. } => {
                        self.warn(i, format!("connection lost: {reason}"))
                    }
                    Connection::Failed(why) => self.warn(i, format!("failed: {why}")),
                    _ => {}
                }
                self.runs[i].connection = c;
                Flow::Redraw
            }
            RunEvent::Warning(w) => {
                self.warn(i, w);
                Flow::Redraw
            }
            RunEvent::Reset(why) => {
                let views = (self.make_views)();
                self.runs[i].reset(views);
                self.held.retain(|(j, _)| *j != i);
                self.warn(i, why);
                Flow::Redraw
            }
        }
    }

    fn key(&mut self, k: KeyEvent) -> Flow {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if self.help {
            // Any key closes the help; q still quits.
            self.help = false;
            if matches!(k.code, KeyCode::Char('q')) {
                return Flow::Quit;
            }
            return Flow::Redraw;
        }
        if let Some(prompt) = &mut self.prompt {
            match k.code {
                KeyCode::Char('c') if ctrl => return Flow::Quit,
                KeyCode::Esc => self.prompt = None,
                KeyCode::Enter => {
                    let q = self.prompt.take().unwrap_or_default();
                    if !q.is_empty() {
                        self.query = Some(q.clone());
                        self.search(&q, false);
                    }
                }
                KeyCode::Backspace => {
                    prompt.pop();
                }
                KeyCode::Char(c) => prompt.push(c),
                _ => return Flow::Idle,
            }
            return Flow::Redraw;
        }
        let n = self.tabs();
        match k.code {
            KeyCode::Char('q') | KeyCode::Esc => Flow::Quit,
            KeyCode::Char('c') if ctrl => Flow::Quit,
            KeyCode::Tab => {
                self.tab = (self.tab + 1) % n;
                Flow::Redraw
            }
            KeyCode::BackTab => {
                self.tab = (self.tab + n - 1) % n;
                Flow::Redraw
            }
            KeyCode::Char(c @ '1'..='9') => {
                let i = c as usize - '1' as usize;
                if i < n && i != self.tab {
                    self.tab = i;
                    Flow::Redraw
                } else {
                    Flow::Idle
                }
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                if self.keep + 1 < KEEP_LADDER.len() {
                    self.keep += 1;
                    Flow::Redraw
                } else {
                    Flow::Idle
                }
            }
            KeyCode::Char('-') | KeyCode::Char('_') => {
                if self.keep > 0 {
                    self.keep -= 1;
                    Flow::Redraw
                } else {
                    Flow::Idle
                }
            }
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                if !self.paused {
                    for (i, r) in std::mem::take(&mut self.held) {
                        self.runs[i].apply(&r);
                    }
                }
                Flow::Redraw
            }
            KeyCode::Char('?') | KeyCode::Char('h') => {
                self.help = true;
                Flow::Redraw
            }
            KeyCode::Char('x') => {
                self.x = self.x.next();
                Flow::Redraw
            }
            KeyCode::Char('/') => {
                self.prompt = Some(String::new());
                Flow::Redraw
            }
            KeyCode::Char('n') => match self.query.clone() {
                Some(q) => {
                    self.search(&q, true);
                    Flow::Redraw
                }
                None => Flow::Idle,
            },
            KeyCode::Char('r') if self.runs.len() > 1 => self.focus_on(self.focus + 1),
            KeyCode::Char('R') if self.runs.len() > 1 => {
                self.focus_on(self.focus + self.runs.len() - 1)
            }
            code if self.on_run_list() => self.run_list_key(code),
            code => {
                if self.runs[self.focus].views[self.tab].key(code) {
                    Flow::Redraw
                } else {
                    Flow::Idle
                }
            }
        }
    }

    fn focus_on(&mut self, i: usize) -> Flow {
        let i = i % self.runs.len();
        if i == self.focus {
            return Flow::Idle;
        }
        self.focus = i;
        Flow::Redraw
    }

    fn run_list_key(&mut self, code: KeyCode) -> Flow {
        let n = self.runs.len();
        match code {
            KeyCode::Down => self.focus_on((self.focus + 1).min(n - 1)),
            KeyCode::Up => self.focus_on(self.focus.saturating_sub(1)),
            KeyCode::Char(' ') => {
                let r = &mut self.runs[self.focus];
                r.selected = !r.selected;
                Flow::Redraw
            }
            KeyCode::Char('a') => {
                let all = self.runs.iter().all(|r| r.selected);
                for r in &mut self.runs {
                    r.selected = !all;
                }
                Flow::Redraw
            }
            KeyCode::Enter => {
                // Show the focused run's first view.
                self.tab = 0;
                Flow::Redraw
            }
            _ => Flow::Idle,
        }
    }

    /// Searches the visible view (the run list searches run names); what was found is the
    /// footer's line.
    fn search(&mut self, q: &str, next: bool) {
        let found = if self.on_run_list() {
            let n = self.runs.len();
            let lower = q.to_lowercase();
            let start = if next { self.focus + 1 } else { self.focus };
            (0..n)
                .map(|k| (start + k) % n)
                .find(|&i| self.runs[i].label.to_lowercase().contains(&lower))
                .map(|i| {
                    self.focus = i;
                    format!("/{q}: run {}", self.runs[i].label)
                })
                .or_else(|| Some(format!("/{q}: no run matches")))
        } else {
            self.runs[self.focus].views[self.tab].search(q, next)
        };
        self.warning = Some(found.unwrap_or_else(|| {
            format!(
                "/{q}: the {} view has nothing to search (the Log and the Graph do)",
                self.titles()[self.tab]
            )
        }));
    }

    fn mouse(&mut self, m: ratatui::crossterm::event::MouseEvent) -> Flow {
        let area = self.area.get();
        let body_top = area.y + 2;
        match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                let code = if m.kind == MouseEventKind::ScrollUp {
                    KeyCode::Up
                } else {
                    KeyCode::Down
                };
                if self.help || self.prompt.is_some() {
                    return Flow::Idle;
                }
                if self.on_run_list() {
                    return self.run_list_key(code);
                }
                if self.runs[self.focus].views[self.tab].key(code) {
                    Flow::Redraw
                } else {
                    Flow::Idle
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if m.row == area.y + 1 {
                    match super::chrome::tab_at(self, area.width, m.column.saturating_sub(area.x)) {
                        Some(t) if t != self.tab => {
                            self.tab = t;
                            Flow::Redraw
                        }
                        _ => Flow::Idle,
                    }
                } else if self.on_run_list() && m.row > body_top {
                    // The list's first row is its header.
                    let i = (m.row - body_top - 1) as usize;
                    if i >= self.runs.len() {
                        return Flow::Idle;
                    }
                    if m.column.saturating_sub(area.x) < 4 {
                        self.runs[i].selected = !self.runs[i].selected;
                        return Flow::Redraw;
                    }
                    self.focus = i;
                    Flow::Redraw
                } else {
                    Flow::Idle
                }
            }
            _ => Flow::Idle,
        }
    }
}

/// Draws `app` once and counts the frame.
fn draw<B: Backend>(terminal: &mut Terminal<B>, app: &App) -> Result<()> {
    terminal
        .draw(|f| app.render(f))
        .map_err(|e| Error::io("<terminal>", "cannot draw", e))?;
    app.redraws.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The event loop: draws once, then blocks on `rx` and redraws only when an event changed
/// something (events already queued are taken in together and drawn once). Returns on `q`, or
/// when every sender is gone.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    rx: &Receiver<AppEvent>,
) -> Result<()> {
    draw(terminal, app)?;
    while let Ok(first) = rx.recv() {
        let mut redraw = false;
        for ev in std::iter::once(first).chain(rx.try_iter().take(10_000)) {
            match app.handle(ev) {
                Flow::Quit => return Ok(()),
                Flow::Redraw => redraw = true,
                Flow::Idle => {}
            }
        }
        if redraw {
            draw(terminal, app)?;
        }
    }
    Ok(())
}
