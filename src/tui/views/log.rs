//! The Log view: the raw events, newest at the bottom.

use super::{clip, empty};
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

/// The raw events, newest at the bottom; up/down scroll.
#[derive(Default)]
pub struct Log {
    lines: std::collections::VecDeque<String>,
    /// Lines scrolled back from the newest.
    back: usize,
}

/// The log view keeps this many lines.
const LOG_LINES: usize = 5000;

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
        // Long events (a whole graph) are cut; the file has them whole.
        let line = format!(
            "{}{kind} {}",
            r.step().map(|s| format!("[{s}] ")).unwrap_or_default(),
            clip(&body, 400)
        );
        if self.lines.len() == LOG_LINES {
            self.lines.pop_front();
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
        let h = area.height as usize;
        let end = self.lines.len() - self.back.min(self.lines.len());
        let start = end.saturating_sub(h);
        let lines: Vec<Line> = self
            .lines
            .range(start..end)
            .map(|l| Line::from(clip(l, area.width as usize)))
            .collect();
        Paragraph::new(lines).render(area, buf);
    }
}
