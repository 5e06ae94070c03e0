//! The dashboard's tabs, one file each, and the small widgets they share. Each view keeps only
//! what it draws, takes every record through [`crate::tui::View::update`] and draws itself from
//! that state alone; it must never read files or the clock. A view with no data yet says which
//! events, from which command, will fill it.

mod bundles;
mod chart;
mod clustering;
mod emergence;
mod faithfulness;
mod graph;
mod log;
mod probes;
mod training;
mod zoo;

pub(crate) use chart::overlay_chart;
pub use clustering::Clustering;
pub use emergence::Emergence;
pub use faithfulness::Faithfulness;
pub use graph::Graph;
pub use log::Log;
pub use probes::Probes;
pub use training::Training;
pub use zoo::Zoo;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

/// Colours for series and communities, in order.
pub(crate) const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Green,
    Color::LightRed,
    Color::LightBlue,
    Color::White,
    Color::LightGreen,
];

/// At most this many points per chart series; older points are thinned (every other one
/// dropped) when it is reached, so a long run keeps its whole shape in bounded memory.
pub(crate) const MAX_POINTS: usize = 2000;

/// A short human form of a figure: 4 significant digits, scientific when very large or small.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{x:.3e}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// `s` cut to at most `n` characters, with `…` where it was cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A duration in seconds as people read it: `42 s`, `3m 05s`, `2h 03m`.
pub fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".into();
    }
    let t = s.round() as u64;
    match t {
        0..=59 => format!("{t} s"),
        60..=3599 => format!("{}m {:02}s", t / 60, t % 60),
        _ => format!("{}h {:02}m", t / 3600, t % 3600 / 60),
    }
}

/// A time (seconds since the epoch) as the local wall clock, `HH:MM:SS`.
pub fn clock(t: f64) -> String {
    use chrono::{DateTime, Local};
    match DateTime::from_timestamp(t.floor() as i64, 0) {
        Some(d) if t.is_finite() => d.with_timezone(&Local).format("%H:%M:%S").to_string(),
        _ => "-".into(),
    }
}

pub(crate) fn push_thinned<T: Copy>(series: &mut Vec<T>, p: T) {
    if series.len() >= MAX_POINTS {
        let kept: Vec<T> = series.iter().copied().step_by(2).collect();
        *series = kept;
    }
    series.push(p);
}

/// The placeholder of a view with no data.
pub(crate) fn empty(area: Rect, buf: &mut Buffer, title: &str, what: &str) {
    Paragraph::new(vec![
        Line::from(Span::styled(
            format!("{title}: nothing yet"),
            Style::default().add_modifier(Modifier::BOLD),
        )),
        Line::from(""),
        Line::from(what.to_string()),
    ])
    .wrap(Wrap { trim: true })
    .block(Block::default().borders(Borders::TOP))
    .render(area, buf);
}

pub(crate) fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return None;
    }
    if lo == hi {
        return Some((lo - 0.5, hi + 0.5));
    }
    Some((lo, hi))
}

/// Linear interpolation of `y` at `x` on points sorted by `x` (clamped at the ends).
pub fn interpolate(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let first = points.first()?;
    if x <= first.0 {
        return Some(first.1);
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            if x1 == x0 {
                return Some(y1);
            }
            return Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0));
        }
    }
    points.last().map(|p| p.1)
}
