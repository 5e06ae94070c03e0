//! The Faithfulness view: every faithfulness curve with its areas, the kept share marked.

use super::graph::{take_point, Curves};
use super::{bounds, empty, interpolate, PALETTE};
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Widget};

/// Faithfulness vs sparsity: every curve, its CPR and CMD, the current share marked.
#[derive(Default)]
pub struct Faithfulness {
    curves: Curves,
}

impl View for Faithfulness {
    fn title(&self) -> &str {
        "Faithfulness"
    }

    fn update(&mut self, r: &Record) -> bool {
        take_point(&mut self.curves, r)
    }

    fn render(&self, area: Rect, buf: &mut Buffer, ctx: &Ctx) {
        if self.curves.is_empty() {
            return empty(
                area,
                buf,
                "Faithfulness",
                "fills with `faithfulness_point` events: `circuitscope eval RUN [--ablation zero|mean|resample]`.",
            );
        }
        let mut lines = Vec::new();
        for (i, ((graph, ablation), c)) in self.curves.iter().enumerate() {
            let cpr = crate::numeric::score::area(c);
            let gap: Vec<(f64, f64)> = c.iter().map(|p| (p.0, (1.0 - p.1).abs())).collect();
            let cmd = crate::numeric::score::area(&gap);
            lines.push(Line::from(Span::styled(
                format!(
                    "{graph}/{ablation}: CPR {cpr:.4}  CMD {cmd:.4}  at {:.1}%: {:.4}",
                    100.0 * ctx.keep,
                    interpolate(c, ctx.keep).unwrap_or(f64::NAN)
                ),
                Style::default().fg(PALETTE[i % PALETTE.len()]),
            )));
        }
        let [head, chart] = Layout::vertical([
            Constraint::Length((lines.len() as u16).min(area.height / 3)),
            Constraint::Min(0),
        ])
        .areas(area);
        Paragraph::new(lines).render(head, buf);
        let (y0, y1) = bounds(self.curves.values().flatten().map(|p| p.1))
            .map_or((0.0, 1.0), |(a, b)| (a.min(0.0), b.max(1.0)));
        let marker = [(ctx.keep, y0), (ctx.keep, y1)];
        let names: Vec<String> = self
            .curves
            .keys()
            .map(|(g, a)| format!("{g}/{a}"))
            .collect();
        let mut data: Vec<Dataset> = self
            .curves
            .values()
            .enumerate()
            .map(|(i, c)| {
                Dataset::default()
                    .name(names[i].as_str())
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(PALETTE[i % PALETTE.len()]))
                    .data(c)
            })
            .collect();
        data.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(Color::DarkGray))
                .data(&marker),
        );
        Chart::new(data)
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title("faithfulness vs share of edges kept (| = +/- control)"),
            )
            .x_axis(Axis::default().bounds([0.0, 1.0]).labels(["0", "0.5", "1"]))
            .y_axis(
                Axis::default()
                    .bounds([y0, y1])
                    .labels([format!("{y0:.1}"), format!("{y1:.1}")]),
            )
            .render(chart, buf);
    }
}
