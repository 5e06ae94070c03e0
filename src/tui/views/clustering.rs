//! The Clustering view: each layer's ROIs and the quality of their clustering.

use super::{empty, num};
use crate::runlog::Event;
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget, Wrap};
use std::collections::BTreeMap;

/// Clustering: each layer's ROIs (sizes) and the quality of the chosen clustering.
#[derive(Default)]
pub struct Clustering {
    layers: BTreeMap<usize, (usize, Vec<usize>, String, f64)>,
}

impl View for Clustering {
    fn title(&self) -> &str {
        "Clustering"
    }

    fn update(&mut self, r: &Record) -> bool {
        let Some(env) = &r.event else { return false };
        if let Event::ClusteringSummary {
            layer,
            clusters,
            sizes,
            criterion,
            score,
        } = &env.event
        {
            self.layers.insert(
                *layer,
                (*clusters, sizes.clone(), criterion.clone(), *score),
            );
            return true;
        }
        false
    }

    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        if self.layers.is_empty() {
            return empty(
                area,
                buf,
                "Clustering",
                "fills with `clustering_summary` events: `circuitscope graph RUN --nodes roi`.",
            );
        }
        let rows: Vec<Row> = self
            .layers
            .iter()
            .map(|(layer, (k, sizes, _, score))| {
                let total: usize = sizes.iter().sum();
                let sizes: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
                Row::new(vec![
                    format!("h{layer}"),
                    k.to_string(),
                    total.to_string(),
                    num(*score),
                    sizes.join(" "),
                ])
            })
            .collect();
        let criteria: Vec<Line> = self
            .layers
            .iter()
            .map(|(layer, (_, _, c, _))| Line::from(format!("h{layer}: {c}")))
            .collect();
        let [table_area, notes] = Layout::vertical([
            Constraint::Length(self.layers.len() as u16 + 2),
            Constraint::Min(0),
        ])
        .areas(area);
        Paragraph::new(criteria)
            .wrap(Wrap { trim: true })
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title("how each layer was cut"),
            )
            .render(notes, buf);
        Table::new(
            rows,
            [
                Constraint::Length(6),
                Constraint::Length(5),
                Constraint::Length(6),
                Constraint::Length(8),
                Constraint::Min(10),
            ],
        )
        .header(
            Row::new(vec!["layer", "ROIs", "units", "quality", "sizes"])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title("ROIs: clusters of functionally similar neurons, per layer"),
        )
        .render(table_area, buf);
    }
}
