//! The Probes view: the activation-region census, PCA spectra and task angles.

use super::{empty, num};
use crate::runlog::Event;
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};
use std::collections::BTreeMap;

/// Probes: the activation-region census per layer, PCA spectra, angles between task subspaces.
#[derive(Default)]
pub struct Probes {
    census: BTreeMap<(String, usize), BTreeMap<String, f64>>,
    pca: BTreeMap<(String, usize), Vec<f64>>,
    angles: BTreeMap<(String, usize), BTreeMap<String, f64>>,
}

impl View for Probes {
    fn title(&self) -> &str {
        "Probes"
    }

    fn update(&mut self, r: &Record) -> bool {
        let Some(env) = &r.event else { return false };
        let Event::ProbeSummary {
            probe,
            layer,
            figures,
        } = &env.event
        else {
            return false;
        };
        if let Some(split) = probe.strip_prefix("census:") {
            self.census
                .insert((split.to_string(), *layer), figures.clone());
        } else if let Some(split) = probe.strip_prefix("pca:") {
            self.pca.insert(
                (split.to_string(), *layer),
                figures.values().copied().collect(),
            );
        } else if let Some(rest) = probe.strip_prefix("angles:") {
            self.angles
                .insert((rest.to_string(), *layer), figures.clone());
        } else {
            return false;
        }
        true
    }

    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        if self.census.is_empty() && self.pca.is_empty() && self.angles.is_empty() {
            return empty(
                area,
                buf,
                "Probes",
                "fills with `probe_summary` events (census, pca, angles): `circuitscope probe RUN`.",
            );
        }
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
        let f = |m: &BTreeMap<String, f64>, k: &str| {
            m.get(k).map_or("-".into(), |v| {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{v:.0}")
                } else {
                    num(*v)
                }
            })
        };
        let rows: Vec<Row> = self
            .census
            .iter()
            .map(|((split, layer), m)| {
                Row::new(vec![
                    split.clone(),
                    layer.to_string(),
                    f(m, "adjacent_patterns"),
                    f(m, "patterns_downstream"),
                    f(m, "gradients_combined"),
                    f(m, "interference_exact"),
                ])
            })
            .collect();
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(5),
                Constraint::Length(9),
                Constraint::Length(11),
                Constraint::Length(9),
                Constraint::Length(12),
            ],
        )
        .header(
            Row::new(vec![
                "split",
                "layer",
                "adjacent",
                "downstream",
                "gradients",
                "interference",
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title("census: distinct activation patterns and gradients per layer"),
        )
        .render(top, buf);
        let mut lines: Vec<Line> = Vec::new();
        for ((split, layer), ratios) in &self.pca {
            let top4: Vec<String> = ratios.iter().take(4).map(|r| format!("{r:.3}")).collect();
            let sum: f64 = ratios.iter().take(4).sum();
            lines.push(Line::from(format!(
                "PCA {split} h{layer}: {}  (first 4: {:.1}%)",
                top4.join(" "),
                100.0 * sum
            )));
        }
        for ((pair, layer), m) in &self.angles {
            lines.push(Line::from(format!(
                "angle {pair} layer {layer}: {}°  interference {}",
                f(m, "smallest_angle_deg"),
                f(m, "interference_exact")
            )));
        }
        Paragraph::new(lines)
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title("PCA spectra (explained variance) and task angles"),
            )
            .render(bottom, buf);
    }
}
