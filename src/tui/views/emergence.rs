//! The Emergence view: the structure figures of every analysed checkpoint against the training
//! step — circuit emergence, live while `analyze --follow` keeps up with training.

use super::{bounds, empty, num, MAX_POINTS, PALETTE};
use crate::runlog::Event;
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Widget};
use std::collections::BTreeMap;

/// The figures the view charts, in the order Left/Right step through them, with their labels.
const FIGURES: [(&str, &str); 9] = [
    ("cpr", "CPR"),
    ("faithfulness_at_10pct", "faithfulness at 10%"),
    ("ari", "ARI"),
    ("modularity", "modularity"),
    ("communities", "communities"),
    ("intervention_rho", "intervention ρ"),
    ("input_gradients", "input gradients"),
    ("mean_r2", "mean held-out R²"),
    ("accuracy", "held-out accuracy"),
];

/// Structure over training: one point per analysed checkpoint.
#[derive(Default)]
pub struct Emergence {
    /// Checkpoint step → its figures (a figure absent: undefined there).
    points: BTreeMap<u64, BTreeMap<String, f64>>,
    skipped: usize,
    last_skip: Option<(u64, String)>,
    /// Index into [`FIGURES`] of the charted figure.
    selected: usize,
}

impl Emergence {
    /// How many checkpoints the view holds a point for.
    pub fn points(&self) -> usize {
        self.points.len()
    }
}

impl View for Emergence {
    fn title(&self) -> &str {
        "Emergence"
    }

    fn update(&mut self, r: &Record) -> bool {
        let Some(env) = &r.event else { return false };
        match &env.event {
            Event::Emergence {
                checkpoint_step,
                figures,
                ..
            } => {
                self.points.insert(*checkpoint_step, figures.clone());
                if self.points.len() > MAX_POINTS {
                    // Thin the oldest half, keeping the whole run's shape in bounded memory.
                    let drop: Vec<u64> = self.points.keys().copied().step_by(2).collect();
                    for k in drop.into_iter().take(MAX_POINTS / 2) {
                        self.points.remove(&k);
                    }
                }
                true
            }
            Event::AnalysisSkipped {
                checkpoint_step,
                reason,
            } => {
                self.skipped += 1;
                self.last_skip = Some((*checkpoint_step, reason.clone()));
                true
            }
            _ => false,
        }
    }

    fn key(&mut self, key: KeyCode) -> bool {
        match key {
            KeyCode::Right => self.selected = (self.selected + 1) % FIGURES.len(),
            KeyCode::Left => self.selected = (self.selected + FIGURES.len() - 1) % FIGURES.len(),
            _ => return false,
        }
        true
    }

    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        if self.points.is_empty() {
            return empty(
                area,
                buf,
                "Emergence",
                "fills with `emergence` events, one per analysed checkpoint: `circuitscope analyze --follow RUN` (live, into RUN/analysis/events.jsonl) or `circuitscope eval RUN --checkpoints N`.",
            );
        }
        let (key, label) = FIGURES[self.selected];
        let (newest, figs) = self.points.iter().next_back().expect("not empty");
        // A figure with its chance level beside it, where the analysis measured one.
        let show = |v: f64| {
            if v.fract() == 0.0 && v.abs() < 1e6 {
                format!("{v:.0}")
            } else {
                num(v)
            }
        };
        let value = |k: &str| match (figs.get(k), figs.get(&format!("{k}_chance"))) {
            (None, _) => "undefined".to_string(),
            (Some(v), None) => show(*v),
            (Some(v), Some(c)) => format!("{} (chance {})", show(*v), num(*c)),
        };
        let mut lines = vec![
            Line::from(format!(
                "{} checkpoint{} analysed{}; newest: step {newest}",
                self.points.len(),
                if self.points.len() == 1 { "" } else { "s" },
                if self.skipped > 0 {
                    format!(" ({} skipped to keep up)", self.skipped)
                } else {
                    String::new()
                },
            )),
            Line::from(format!(
                "CPR {}  faithfulness at 10% {}  ARI {}  modularity {}  communities {}",
                value("cpr"),
                value("faithfulness_at_10pct"),
                value("ari"),
                value("modularity"),
                value("communities"),
            )),
        ];
        if !figs.contains_key("cpr") {
            lines.push(Line::from(
                "structure figures are undefined while the model has not learned its tasks",
            ));
        }
        if let Some((step, why)) = &self.last_skip {
            lines.push(Line::from(format!("last skipped: step {step} ({why})")));
        }
        lines.push(Line::from(Span::styled(
            format!("charted: {label}  (←/→ for another figure)"),
            Style::default().add_modifier(Modifier::BOLD),
        )));
        // Long lines wrap (at words, so a wrapped row may hold fewer characters than the
        // width): the head is as tall as its wrapped lines, with room for that.
        let width = (area.width as usize).saturating_sub(16).max(1);
        let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
        let [head, chart] = Layout::vertical([
            Constraint::Length((rows as u16).min(area.height / 2)),
            Constraint::Min(0),
        ])
        .areas(area);
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .render(head, buf);
        let series: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter_map(|(s, f)| f.get(key).map(|v| (*s as f64, *v)))
            .collect();
        let (x0, x1) = bounds(self.points.keys().map(|&s| s as f64)).unwrap_or((0.0, 1.0));
        let (y0, y1) = bounds(series.iter().map(|p| p.1)).unwrap_or((0.0, 1.0));
        let data = vec![Dataset::default()
            .name(label)
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(PALETTE[self.selected % PALETTE.len()]))
            .data(&series)];
        Chart::new(data)
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title(format!("{label} against the training step")),
            )
            .x_axis(
                Axis::default()
                    .bounds([x0, x1])
                    .labels([format!("{x0:.0}"), format!("{x1:.0}")]),
            )
            .y_axis(Axis::default().bounds([y0, y1]).labels([num(y0), num(y1)]))
            .render(chart, buf);
    }
}
