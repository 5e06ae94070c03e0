//! The Log view: the raw events, newest at the bottom; scrolled back, the event at the bottom
//! of the list is shown whole below it.

use super::{clip, empty};
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

/// The raw events, newest at the bottom; up/down, PgUp/PgDn, Home/End scroll.
#[derive(Default)]
pub struct Log {
    lines: std::collections::VecDeque<String>,
    /// Lines scrolled back from the newest.
    back: usize,
    /// The oldest lines dropped to stay within [`LOG_LINES`].
    dropped: usize,
}

/// The log view keeps this many lines (the file keeps every one); it says how many it dropped.
const LOG_LINES: usize = 5000;

/// A line keeps at most this many characters of its event (a whole graph can be far longer).
const LINE_CHARS: usize = 20_000;

impl View for Log {
    fn title(&self) -> &str {
        "Log"
    }

    fn update(&mut self, r: &Record) -> bool {
        let mut v = match (&r.event, &r.unknown) {
            (Some(e), _) => serde_json::to_value(&e.event).unwrap_or_default(),
            (None, Some(u)) => (**u).clone(),
            (None, None) => serde_json::Value::Null,
        };
        let kind = r.kind().to_string();
        if let Some(o) = v.as_object_mut() {
            o.remove("v");
            o.remove("time");
            o.remove("kind");
            o.remove("step");
        }
        let body = v.to_string();
        // Very long events (a whole graph) are cut; the file has them whole.
        let line = format!(
            "{}{kind} {}",
            r.step().map(|s| format!("[{s}] ")).unwrap_or_default(),
            clip(&body, LINE_CHARS)
        );
        if self.lines.len() == LOG_LINES {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(line);
        if self.back > 0 {
            self.back = (self.back + 1).min(self.lines.len().saturating_sub(1));
        }
        true
    }

    fn key(&mut self, key: KeyCode) -> bool {
        let max = self.lines.len().saturating_sub(1);
        let before = self.back;
        match key {
            KeyCode::Up => self.back = (self.back + 1).min(max),
            KeyCode::Down => self.back = self.back.saturating_sub(1),
            KeyCode::PageUp => self.back = (self.back + 20).min(max),
            KeyCode::PageDown => self.back = self.back.saturating_sub(20),
            KeyCode::End => self.back = 0,
            KeyCode::Home => self.back = max,
            _ => return false,
        }
        self.back != before
    }

    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        if self.lines.is_empty() {
            return empty(area, buf, "Log", "every event of the run, as it arrives.");
        }
        // Scrolled back: the event at the bottom of the list, whole, below it.
        let (list, detail) = if self.back > 0 && area.height >= 8 {
            let [l, d] =
                Layout::vertical([Constraint::Min(3), Constraint::Length(area.height / 2)])
                    .areas(area);
            (l, Some(d))
        } else {
            (area, None)
        };
        let mut h = list.height as usize;
        let mut lines: Vec<Line> = Vec::new();
        if self.dropped > 0 && h > 1 {
            lines.push(Line::styled(
                format!(
                    "({} older events not kept here; `circuitscope events RUN` prints them all)",
                    self.dropped
                ),
                Style::default().fg(Color::DarkGray),
            ));
            h -= 1;
        }
        // Never scrolled past the top: the first screen stays full.
        let n = self.lines.len();
        let end = (n - self.back.min(n)).max(h.min(n));
        let start = end.saturating_sub(h);
        lines.extend(
            self.lines
                .range(start..end)
                .map(|l| Line::from(clip(l, list.width as usize))),
        );
        Paragraph::new(lines).render(list, buf);
        if let Some(d) = detail {
            // As much of it as the pane holds; what does not fit is counted, never dropped
            // silently.
            let line = &self.lines[end - 1];
            let room = (d.width as usize * d.height.saturating_sub(3) as usize).saturating_sub(120);
            let total = line.chars().count();
            let text = if total <= room {
                line.clone()
            } else {
                format!(
                    "{} … ({} more characters; `circuitscope events RUN` prints every event whole)",
                    line.chars().take(room).collect::<String>(),
                    total - room
                )
            };
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .block(
                    Block::default()
                        .borders(Borders::TOP)
                        .title("the event above, whole (End: back to the newest)"),
                )
                .render(d, buf);
        }
    }
}
