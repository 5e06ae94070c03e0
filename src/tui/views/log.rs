//! The Log view: the raw events, newest at the bottom; scrolled back, the event at the bottom
//! of the list (the selected one) is shown whole below it. `k` shows one kind of event at a
//! time; `/` finds text.

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
    /// Each event's kind and its line.
    lines: std::collections::VecDeque<(String, String)>,
    /// Lines (of those shown) scrolled back from the newest.
    back: usize,
    /// The oldest lines dropped to stay within [`LOG_LINES`].
    dropped: usize,
    /// The kinds seen, and the one shown alone (`k` cycles: all, then each kind).
    kinds: std::collections::BTreeSet<String>,
    only: Option<String>,
    /// The last `/` query (matching lines are highlighted).
    query: Option<String>,
}

impl Log {
    fn shown(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(k, _)| self.only.as_ref().is_none_or(|o| o == k))
            .map(|(_, l)| l.as_str())
            .collect()
    }
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
        let shown = self.only.as_ref().is_none_or(|o| *o == kind);
        self.kinds.insert(kind.clone());
        self.lines.push_back((kind, line));
        if self.back > 0 && shown {
            // Scrolled back, the selected event stays where it is.
            self.back = (self.back + 1).min(self.lines.len().saturating_sub(1));
        }
        true
    }

    fn search(&mut self, query: &str, next: bool) -> Option<String> {
        let q = query.to_lowercase();
        let shown = self.shown();
        let n = shown.len();
        // From the selected line back towards the oldest (a fresh search includes it), then
        // round from the newest.
        let from = n.saturating_sub(self.back + 1);
        let order = (0..n).map(|k| (from + n - k - usize::from(next)) % n.max(1));
        let matches = shown
            .iter()
            .filter(|l| l.to_lowercase().contains(&q))
            .count();
        let found = order
            .take(n)
            .find(|&i| shown[i].to_lowercase().contains(&q));
        self.query = Some(query.to_string());
        Some(match found {
            Some(i) => {
                self.back = n - 1 - i;
                format!(
                    "/{query}: event {} of {n} shown ({matches} match{}; n: the next, older)",
                    i + 1,
                    if matches == 1 { "" } else { "es" }
                )
            }
            None => format!("/{query}: no event shown matches"),
        })
    }

    fn key(&mut self, key: KeyCode) -> bool {
        if key == KeyCode::Char('k') {
            // All kinds, then each kind seen, in order.
            self.only = match &self.only {
                None => self.kinds.iter().next().cloned(),
                Some(k) => self
                    .kinds
                    .range::<String, _>((
                        std::ops::Bound::Excluded(k.clone()),
                        std::ops::Bound::Unbounded,
                    ))
                    .next()
                    .cloned(),
            };
            self.back = 0;
            return true;
        }
        let max = self.shown().len().saturating_sub(1);
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
        let shown = self.shown();
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
        if let Some(k) = &self.only {
            lines.push(Line::styled(
                format!(
                    "only `{k}` events: {} of {} (k: the next kind, then all)",
                    shown.len(),
                    self.lines.len()
                ),
                Style::default().fg(Color::Cyan),
            ));
            h = h.saturating_sub(1);
        }
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
        let n = shown.len();
        let end = (n - self.back.min(n)).max(h.min(n));
        let start = end.saturating_sub(h);
        let q = self.query.as_ref().map(|q| q.to_lowercase());
        lines.extend(shown[start..end].iter().enumerate().map(|(i, l)| {
            let mut style = Style::default();
            if q.as_ref().is_some_and(|q| l.to_lowercase().contains(q)) {
                style = style.fg(Color::Yellow);
            }
            if self.back > 0 && start + i + 1 == end {
                style = style.add_modifier(ratatui::style::Modifier::REVERSED);
            }
            Line::styled(clip(l, list.width as usize), style)
        }));
        Paragraph::new(lines).render(list, buf);
        if let (Some(d), true) = (detail, end > 0) {
            // As much of it as the pane holds; what does not fit is counted, never dropped
            // silently.
            let line = shown[end - 1];
            let room = (d.width as usize * d.height.saturating_sub(3) as usize).saturating_sub(120);
            let total = line.chars().count();
            let text = if total <= room {
                line.to_string()
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
