//! The dashboard's state ([`App`]): every input taken in through [`App::handle`], the whole
//! screen drawn by [`App::render`] as a pure function of that state, and the event loop.

use super::{AppEvent, Connection, Ctx, Flow, Record, View, ViewFactory, KEEP_LADDER};
use crate::runlog::Event;
use crate::{Error, Result};
use ratatui::backend::Backend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};
use ratatui::{Frame, Terminal};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// The dashboard's whole state.
pub struct App {
    target: String,
    make_views: ViewFactory,
    views: Vec<Box<dyn View>>,
    tab: usize,
    keep: usize,
    paused: bool,
    held: Vec<Record>,
    help: bool,
    connection: Connection,
    /// The last `run_start`'s command, and the last `run_end`'s status (cleared by a start).
    stage: Option<String>,
    ended: Option<(String, Option<String>)>,
    records: usize,
    last_step: Option<u64>,
    warning: Option<String>,
    redraws: Arc<AtomicUsize>,
    /// The signal that ended the dashboard.
    signal: Option<i32>,
    /// Seconds (ticks) since the last record arrived.
    idle_s: u64,
    /// A running run with no event for this long is shown as stale.
    stale_after_s: u64,
}

impl App {
    /// An app following `target` (shown in the title) with the views `make_views` makes.
    pub fn new(target: impl Into<String>, make_views: ViewFactory) -> App {
        let views = make_views();
        assert!(!views.is_empty(), "a dashboard needs at least one view");
        App {
            target: target.into(),
            views,
            make_views,
            tab: 0,
            keep: 4,
            paused: false,
            held: Vec::new(),
            help: false,
            connection: Connection::Connecting { attempt: 0 },
            stage: None,
            ended: None,
            records: 0,
            last_step: None,
            warning: None,
            redraws: Arc::new(AtomicUsize::new(0)),
            signal: None,
            idle_s: 0,
            stale_after_s: 60,
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

    /// The views' titles, in tab order.
    pub fn titles(&self) -> Vec<String> {
        self.views.iter().map(|v| v.title().to_string()).collect()
    }

    /// The share of edges kept.
    pub fn keep(&self) -> f64 {
        KEEP_LADDER[self.keep]
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Records taken in (held ones while paused included).
    pub fn records(&self) -> usize {
        self.records
    }

    /// Whether the last stage of the run has ended, and how.
    pub fn ended(&self) -> Option<&(String, Option<String>)> {
        self.ended.as_ref()
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
            AppEvent::Resize => Flow::Redraw,
            AppEvent::Tick => {
                // Redraw only when what the header shows changes: the age in steps of 10 s,
                // and the moment the run turns stale.
                let before = self.age_shown();
                self.idle_s += 1;
                if self.age_shown() == before {
                    Flow::Idle
                } else {
                    Flow::Redraw
                }
            }
            AppEvent::Record(r) => {
                self.idle_s = 0;
                self.records += 1;
                if self.paused {
                    self.held.push(r);
                    // The footer counts what is held.
                    return Flow::Redraw;
                }
                self.apply(&r);
                // The header counts every record, so each one changes the screen.
                Flow::Redraw
            }
            AppEvent::Connection(c) => {
                if c == self.connection {
                    return Flow::Idle;
                }
                match &c {
                    Connection::Lost { reason, .. } => {
                        self.warning = Some(format!("connection lost: {reason}"))
                    }
                    Connection::Failed(why) => self.warning = Some(format!("failed: {why}")),
                    _ => {}
                }
                self.connection = c;
                Flow::Redraw
            }
            AppEvent::Warning(w) => {
                self.warning = Some(w);
                Flow::Redraw
            }
            AppEvent::Signal(sig) => {
                self.signal = Some(sig);
                Flow::Quit
            }
            AppEvent::Reset(why) => {
                self.views = (self.make_views)();
                self.tab = self.tab.min(self.views.len() - 1);
                self.held.clear();
                self.records = 0;
                self.stage = None;
                self.ended = None;
                self.last_step = None;
                self.warning = Some(why);
                Flow::Redraw
            }
        }
    }

    fn apply(&mut self, r: &Record) {
        // The analysis log's own segment markers describe `analyze`, not the run.
        if r.analysis
            && matches!(
                r.event.as_ref().map(|e| &e.event),
                Some(Event::RunStart { .. } | Event::RunEnd { .. } | Event::Resumed { .. })
            )
        {
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
        let n = self.views.len();
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
                    for r in std::mem::take(&mut self.held) {
                        self.apply(&r);
                    }
                }
                Flow::Redraw
            }
            KeyCode::Char('?') | KeyCode::Char('h') => {
                self.help = true;
                Flow::Redraw
            }
            code => {
                if self.views[self.tab].key(code) {
                    Flow::Redraw
                } else {
                    Flow::Idle
                }
            }
        }
    }

    /// Draws the whole screen into `frame`: a pure function of the state.
    pub fn render(&self, frame: &mut Frame) {
        let area = frame.area();
        self.render_to(area, frame.buffer_mut());
    }

    /// Draws the whole screen into a buffer region.
    pub fn render_to(&self, area: Rect, buf: &mut Buffer) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        // A long warning (a connection's reason, the command that accepts a host key) wraps
        // onto up to 3 rows, so it is read whole.
        let rows = match (&self.warning, self.paused) {
            (Some(w), false) if area.height >= 12 => (w
                .chars()
                .count()
                .max(1)
                .div_ceil(area.width.max(1) as usize))
            .clamp(1, 3),
            _ => 1,
        } as u16;
        let [header, tabs, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(rows),
        ])
        .areas(area);
        self.render_header(header, buf);
        self.render_tabs(tabs, buf);
        let ctx = Ctx { keep: self.keep() };
        self.views[self.tab].render(body, buf, &ctx);
        self.render_footer(footer, buf);
        if self.help {
            self.render_help(area, buf);
        }
    }

    /// What the header says about the time since the last event: nothing under 10 s, then the
    /// age in steps of 10 s, and whether the run is stale. Nothing once the run has ended or
    /// for a replayed log.
    fn age_shown(&self) -> Option<(u64, bool)> {
        if self.ended.is_some() || self.connection == Connection::Replayed || self.idle_s < 10 {
            return None;
        }
        Some((self.idle_s / 10 * 10, self.idle_s >= self.stale_after_s))
    }

    fn render_header(&self, area: Rect, buf: &mut Buffer) {
        // Short, so the run's own figures always fit; a lost or failed connection's reason
        // is the footer's line (set when the state arrives).
        let (conn, color) = match &self.connection {
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
        };
        let state = match (&self.ended, &self.stage) {
            (Some((status, _)), stage) => format!(
                "{} {}",
                stage.as_deref().unwrap_or("run"),
                if status == "completed" {
                    "finished".to_string()
                } else {
                    format!("ended: {status}")
                }
            ),
            (None, Some(stage)) => match self.age_shown() {
                Some((_, true)) => format!("{stage} stale"),
                _ => format!("{stage} running"),
            },
            (None, None) => "waiting for events".into(),
        };
        let stale = matches!(self.age_shown(), Some((_, true)));
        // The run's own figures first, the connection state after them; when the line is too
        // long for the terminal, the target's path gives way (its start elided: the run's own
        // name is at its end), never the figures or the state.
        let mut spans = vec![
            Span::styled(
                "circuitscope ",
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{}  ", self.target)),
            Span::styled(
                state,
                Style::default().fg(if stale {
                    Color::Red
                } else if self.ended.is_some() {
                    Color::Cyan
                } else {
                    Color::White
                }),
            ),
        ];
        if let Some(s) = self.last_step {
            spans.push(Span::raw(format!("  step {s}")));
        }
        spans.push(Span::raw(format!("  {} events", self.records)));
        if let Some((age, _)) = self.age_shown() {
            spans.push(Span::styled(
                format!("  last event {age} s ago"),
                Style::default().fg(if stale { Color::Red } else { Color::Yellow }),
            ));
        }
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            format!("[{conn}]"),
            Style::default().fg(color),
        ));
        let width: usize = spans.iter().map(|s| s.width()).sum();
        let over = width.saturating_sub(area.width as usize);
        if over > 0 {
            // Only where that makes the line fit (a tiny terminal cuts the line instead).
            let target: Vec<char> = self.target.chars().collect();
            let keep = target.len().saturating_sub(over + 1);
            if keep >= 8 {
                let tail: String = target[target.len() - keep..].iter().collect();
                spans[1] = Span::raw(format!("…{tail}  "));
            }
        }
        Paragraph::new(Line::from(spans))
            .style(Style::default().bg(Color::Black))
            .render(area, buf);
    }

    fn render_tabs(&self, area: Rect, buf: &mut Buffer) {
        let full: usize = self
            .views
            .iter()
            .enumerate()
            .map(|(i, v)| format!(" {} {} ", i + 1, v.title()).chars().count())
            .sum();
        let line = if full <= area.width as usize {
            Line::from(
                self.views
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let s = format!(" {} {} ", i + 1, v.title());
                        if i == self.tab {
                            Span::styled(
                                s,
                                Style::default()
                                    .fg(Color::Black)
                                    .bg(Color::Cyan)
                                    .add_modifier(Modifier::BOLD),
                            )
                        } else {
                            Span::raw(s)
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        } else {
            // Too narrow for every name: the current one, and where it is.
            Line::from(vec![
                Span::styled(
                    format!(
                        " {}/{} {} ",
                        self.tab + 1,
                        self.views.len(),
                        self.views[self.tab].title()
                    ),
                    Style::default()
                        .fg(Color::Black)
                        .bg(Color::Cyan)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(" tab: next"),
            ])
        };
        Paragraph::new(line).render(area, buf);
    }

    fn render_footer(&self, area: Rect, buf: &mut Buffer) {
        let line = if self.paused {
            Line::from(Span::styled(
                format!("PAUSED: {} new events held (p resumes)", self.held.len()),
                Style::default().fg(Color::Black).bg(Color::Yellow),
            ))
        } else if let Some(w) = &self.warning {
            Line::from(Span::styled(w.clone(), Style::default().fg(Color::Yellow)))
        } else {
            Line::from(Span::styled(
                format!(
                    "q quit  tab/1-{} views  +/- edges kept  arrows select  p pause  ? help",
                    self.views.len()
                ),
                Style::default().fg(Color::DarkGray),
            ))
        };
        let p = Paragraph::new(line);
        if self.warning.is_some() && !self.paused {
            p.wrap(ratatui::widgets::Wrap { trim: false })
                .render(area, buf);
        } else {
            p.render(area, buf);
        }
    }

    fn render_help(&self, area: Rect, buf: &mut Buffer) {
        let text = vec![
            Line::from("circuitscope watch: keys"),
            Line::from(""),
            Line::from("tab / shift-tab   next / previous view"),
            Line::from(format!("1-{}               go to a view", self.views.len())),
            Line::from("+ / -             keep more / fewer graph edges"),
            Line::from("up / down         select a node (Graph), scroll (Log)"),
            Line::from("PgUp/PgDn/Home/End scroll the Log (scrolled back: the event whole)"),
            Line::from("left / right      the figure charted (Emergence)"),
            Line::from("p                 pause / resume updates"),
            Line::from("?                 this help (any key closes it)"),
            Line::from("q / esc           quit"),
        ];
        let w = area.width.min(60);
        let h = area.height.min(text.len() as u16 + 2);
        let popup = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        Clear.render(popup, buf);
        Paragraph::new(text)
            .block(Block::default().borders(Borders::ALL).title(" help "))
            .wrap(Wrap { trim: false })
            .render(popup, buf);
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
