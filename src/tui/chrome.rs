//! The frame around the views: the header (the shown run, its state, step and times), the tab
//! bar, the footer (keys, warnings, the `/` prompt), the help and, with several runs, the run
//! list. Pure functions of the [`App`]'s state.

use super::app::App;
use super::run::Status;
use super::views::{clock, duration, PALETTE};
use super::{Ctx, Overlay};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Widget, Wrap};
use ratatui::Frame;

/// The colour of run `i` in the run list and in every overlay.
pub fn run_color(i: usize) -> Color {
    PALETTE[i % PALETTE.len()]
}

impl App {
    /// Draws the whole screen into `frame`: a pure function of the state.
    pub fn render(&self, frame: &mut Frame) {
        let area = frame.area();
        self.render_to(area, frame.buffer_mut());
    }

    /// Draws the whole screen into a buffer region.
    pub fn render_to(&self, area: Rect, buf: &mut Buffer) {
        self.area.set(area);
        if area.width == 0 || area.height == 0 {
            return;
        }
        // A long warning (a connection's reason, the command that accepts a host key) wraps
        // onto up to 3 rows, so it is read whole.
        let rows = match (&self.warning, self.paused, &self.prompt) {
            (Some(w), false, None) if area.height >= 12 => (w
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
        if self.on_run_list() {
            self.render_run_list(body, buf);
        } else {
            let overlay = self.overlay();
            let ctx = Ctx {
                keep: self.keep(),
                x: self.x,
                overlay: &overlay,
            };
            self.runs[self.focus].views[self.tab].render(body, buf, &ctx);
        }
        self.render_footer(footer, buf);
        if self.help {
            self.render_help(area, buf);
        }
    }

    /// The selected runs' series for the visible view (the shown run always among them), when
    /// more than one run has any.
    fn overlay(&self) -> Vec<Overlay> {
        if self.runs.len() < 2 {
            return Vec::new();
        }
        let o: Vec<Overlay> = self
            .runs
            .iter()
            .enumerate()
            .filter(|(i, r)| r.selected || *i == self.focus)
            .map(|(i, r)| Overlay {
                run: r.label.clone(),
                color: run_color(i),
                series: r.views[self.tab].series(self.x),
            })
            .filter(|o| !o.series.is_empty())
            .collect();
        if o.len() < 2 {
            Vec::new()
        } else {
            o
        }
    }

    fn render_header(&self, area: Rect, buf: &mut Buffer) {
        let run = &self.runs[self.focus];
        // Short, so the run's own figures always fit; a lost or failed connection's reason
        // is the footer's line (set when the state arrives).
        let (conn, color) = run.connection_text();
        let status = run.status(self.stale_after_s);
        let age = run.age_shown(self.stale_after_s);
        // The run's own figures first, the connection state after them; when the line is too
        // long for the terminal, the run's path gives way (its start elided: the run's own
        // name is at its end), never the figures or the state.
        let mut spans = vec![Span::styled(
            "circuitscope ",
            Style::default().add_modifier(Modifier::BOLD),
        )];
        let several = self.runs.len() > 1;
        if several {
            spans.push(Span::raw(format!(
                "[{}/{}] ",
                self.focus + 1,
                self.runs.len()
            )));
        }
        let name = spans.len();
        spans.push(Span::styled(
            format!("{}  ", run.label),
            Style::default().fg(if several {
                run_color(self.focus)
            } else {
                Color::Reset
            }),
        ));
        spans.push(Span::styled(
            run.state_text(self.stale_after_s),
            Style::default().fg(status.color()),
        ));
        if let Some(s) = run.last_step {
            spans.push(Span::raw(format!("  step {s}")));
        }
        if let Some((elapsed, wall)) = run.times() {
            spans.push(Span::raw(format!(
                "  {} · {}",
                duration(elapsed),
                clock(wall)
            )));
        }
        spans.push(Span::raw(format!("  {} events", run.records)));
        if let Some((age, stale)) = age {
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
            let label: Vec<char> = run.label.chars().collect();
            let keep = label.len().saturating_sub(over + 1);
            if keep >= 8 {
                let tail: String = label[label.len() - keep..].iter().collect();
                spans[name] = Span::styled(format!("…{tail}  "), spans[name].style);
            }
        }
        Paragraph::new(Line::from(spans))
            .style(Style::default().bg(Color::Black))
            .render(area, buf);
    }

    fn render_tabs(&self, area: Rect, buf: &mut Buffer) {
        let titles = self.titles();
        let line = match tab_segments(&titles, area.width) {
            Some(segments) => Line::from(
                segments
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        if i == self.tab {
                            Span::styled(s, current())
                        } else {
                            Span::raw(s)
                        }
                    })
                    .collect::<Vec<_>>(),
            ),
            // Too narrow for every name: the current one, and where it is.
            None => Line::from(vec![
                Span::styled(
                    format!(" {}/{} {} ", self.tab + 1, titles.len(), titles[self.tab]),
                    current(),
                ),
                Span::raw(" tab: next"),
            ]),
        };
        Paragraph::new(line).render(area, buf);
    }

    fn render_footer(&self, area: Rect, buf: &mut Buffer) {
        let line = if let Some(p) = &self.prompt {
            Line::from(vec![
                Span::styled(format!("/{p}"), Style::default().fg(Color::White)),
                Span::styled("█", Style::default().fg(Color::Gray)),
                Span::styled(
                    "  (enter: find, esc: cancel)",
                    Style::default().fg(Color::DarkGray),
                ),
            ])
        } else if self.paused {
            Line::from(Span::styled(
                format!("PAUSED: {} new events held (p resumes)", self.held.len()),
                Style::default().fg(Color::Black).bg(Color::Yellow),
            ))
        } else if let Some(w) = &self.warning {
            Line::from(Span::styled(w.clone(), Style::default().fg(Color::Yellow)))
        } else {
            Line::from(Span::styled(
                format!(
                    "q quit  tab/1-{} views  {}+/- edges kept  arrows select  / find  x axis  p pause  ? help",
                    self.titles().len(),
                    if self.runs.len() > 1 { "r run  " } else { "" }
                ),
                Style::default().fg(Color::DarkGray),
            ))
        };
        let p = Paragraph::new(line);
        if self.warning.is_some() && !self.paused && self.prompt.is_none() {
            p.wrap(Wrap { trim: false }).render(area, buf);
        } else {
            p.render(area, buf);
        }
    }

    /// The run list: every run with its state, step, times, event count, the age of its last
    /// event and its connection; `[x]` marks the runs laid over each other. The run's name is
    /// never cut: on a narrow terminal the last columns give way first.
    fn render_run_list(&self, area: Rect, buf: &mut Buffer) {
        let stale = self.stale_after_s;
        // Each column: its header, its width and a cell per run.
        type Cell<'a> = Box<dyn Fn(usize) -> Line<'a> + 'a>;
        let mut columns: Vec<(&str, u16, Cell)> = vec![
            (
                "",
                3,
                Box::new(|i| Line::from(if self.runs[i].selected { "[x]" } else { "[ ]" })),
            ),
            (
                "run",
                self.runs
                    .iter()
                    .map(|r| r.label.chars().count() as u16)
                    .max()
                    .unwrap_or(3)
                    .max(3),
                Box::new(|i| {
                    Line::from(Span::styled(
                        self.runs[i].label.clone(),
                        Style::default().fg(run_color(i)),
                    ))
                }),
            ),
            (
                "state",
                22,
                Box::new(|i| {
                    let r = &self.runs[i];
                    Line::from(Span::styled(
                        r.state_text(stale),
                        Style::default().fg(r.status(stale).color()),
                    ))
                }),
            ),
            (
                "step",
                8,
                Box::new(|i| {
                    Line::from(self.runs[i].last_step.map_or("-".into(), |s| s.to_string()))
                }),
            ),
            (
                "events",
                7,
                Box::new(|i| Line::from(self.runs[i].records.to_string())),
            ),
            (
                "last",
                10,
                Box::new(|i| {
                    let r = &self.runs[i];
                    Line::from(match (r.age_shown(stale), r.status(stale)) {
                        (Some((a, _)), _) => format!("{a} s ago"),
                        (None, Status::Running) => "just now".into(),
                        _ => "-".into(),
                    })
                }),
            ),
            (
                "elapsed",
                9,
                Box::new(|i| {
                    Line::from(
                        self.runs[i]
                            .times()
                            .map_or("-".into(), |(e, _)| duration(e)),
                    )
                }),
            ),
            (
                "connection",
                14,
                Box::new(|i| {
                    let (conn, color) = self.runs[i].connection_text();
                    Line::from(Span::styled(conn, Style::default().fg(color)))
                }),
            ),
        ];
        let width = |c: &[(&str, u16, Cell)]| -> u16 {
            c.iter().map(|c| c.1 + 1).sum::<u16>().saturating_sub(1)
        };
        while columns.len() > 3 && width(&columns) > area.width {
            columns.pop();
        }
        let rows: Vec<Row> = (0..self.runs.len())
            .map(|i| {
                let row = Row::new(columns.iter().map(|c| c.2(i)).collect::<Vec<_>>());
                if i == self.focus {
                    row.style(Style::default().add_modifier(Modifier::REVERSED))
                } else {
                    row
                }
            })
            .collect();
        let [table, help] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(2)]).areas(area);
        Table::new(rows, columns.iter().map(|c| Constraint::Length(c.1)))
            .header(
                Row::new(columns.iter().map(|c| c.0).collect::<Vec<_>>())
                    .style(Style::default().add_modifier(Modifier::BOLD)),
            )
            .render(table, buf);
        Paragraph::new(
            "up/down or r: the run shown  space: lay it over the others (Training, Faithfulness)  a: all / none  enter: its Training view",
        )
        .style(Style::default().fg(Color::DarkGray))
        .wrap(Wrap { trim: true })
        .block(Block::default().borders(Borders::TOP))
        .render(help, buf);
    }

    fn render_help(&self, area: Rect, buf: &mut Buffer) {
        let mut text = vec![
            Line::from("circuitscope watch: keys"),
            Line::from(""),
            Line::from("tab / shift-tab   next / previous view (or click a tab)"),
            Line::from(format!(
                "1-{}               go to a view",
                self.titles().len()
            )),
            Line::from("+ / -             keep more / fewer graph edges"),
            Line::from("up / down         select a node (Graph), scroll (Log, wheel)"),
            Line::from("PgUp/PgDn/Home/End scroll the Log (scrolled back: the event whole)"),
            Line::from("left / right      the cursor (Training), the figure (Emergence)"),
            Line::from("/ then n          find a node (Graph), text (Log), a run; next"),
            Line::from("k                 the Log's event kinds: all, then one at a time"),
            Line::from("a                 the Graph: each edge, or bundled by layer/community"),
            Line::from("x                 x axis over time: step, elapsed, wall clock"),
        ];
        if self.runs.len() > 1 {
            text.push(Line::from(
                "r / R             next / previous run; Runs: space lays it over",
            ));
        }
        text.extend([
            Line::from("p                 pause / resume updates"),
            Line::from("?                 this help (any key closes it)"),
            Line::from("q / esc           quit"),
        ]);
        let w = area.width.min(72);
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

fn current() -> Style {
    Style::default()
        .fg(Color::Black)
        .bg(Color::Cyan)
        .add_modifier(Modifier::BOLD)
}

/// The tab bar's pieces, one per tab: ` 1 Training `, or `1 Training ` where that does not
/// fit; `None` where neither does (the bar then names the current tab only).
fn tab_segments(titles: &[String], width: u16) -> Option<Vec<String>> {
    let form = |wide: bool| -> Vec<String> {
        titles
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if wide {
                    format!(" {} {t} ", i + 1)
                } else {
                    format!("{} {t} ", i + 1)
                }
            })
            .collect()
    };
    [form(true), form(false)]
        .into_iter()
        .find(|f| f.iter().map(|s| s.chars().count()).sum::<usize>() <= width as usize)
}

/// The tab under column `x` of the tab bar drawn `width` wide (where a click lands).
pub(crate) fn tab_at(app: &App, width: u16, x: u16) -> Option<usize> {
    let mut left = 0usize;
    for (i, s) in tab_segments(&app.titles(), width)?.iter().enumerate() {
        left += s.chars().count();
        if (x as usize) < left {
            return Some(i);
        }
    }
    None
}
