//! The Faithfulness view: every faithfulness curve with its areas, the kept share marked.

use super::graph::{take_point, Curves};
use super::{empty, interpolate, overlay_chart, PALETTE};
use crate::tui::{Ctx, Overlay, Record, Series, View, XAxis};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

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

    fn series(&self, _x: XAxis) -> Vec<Series> {
        self.curves
            .iter()
            .map(|((g, a), c)| Series {
                name: format!("{g}/{a}"),
                points: c.clone(),
            })
            .collect()
    }

    fn render(&self, area: Rect, buf: &mut Buffer, ctx: &Ctx) {
        if self.curves.is_empty() && ctx.overlay.len() < 2 {
            return empty(
                area,
                buf,
                "Faithfulness",
                "fills with `faithfulness_point` events: `circuitscope eval RUN [--ablation zero|mean|resample]`.",
            );
        }
        // One run: a colour per curve; several selected: a colour per run.
        let own: Vec<Overlay>;
        let overlay = if ctx.overlay.len() > 1 {
            ctx.overlay
        } else {
            own = self
                .series(ctx.x)
                .into_iter()
                .enumerate()
                .map(|(i, s)| Overlay {
                    run: s.name.clone(),
                    color: PALETTE[i % PALETTE.len()],
                    series: vec![s],
                })
                .collect();
            &own
        };
        let several = ctx.overlay.len() > 1;
        let mut lines = Vec::new();
        for o in overlay {
            for s in &o.series {
                let c = &s.points;
                let cpr = crate::numeric::score::area(c);
                let gap: Vec<(f64, f64)> = c.iter().map(|p| (p.0, (1.0 - p.1).abs())).collect();
                let cmd = crate::numeric::score::area(&gap);
                lines.push(Line::from(Span::styled(
                    format!(
                        "{}{}: CPR {cpr:.4}  CMD {cmd:.4}  at {:.1}%: {:.4}",
                        if several {
                            format!("{} ", o.run)
                        } else {
                            String::new()
                        },
                        s.name,
                        100.0 * ctx.keep,
                        interpolate(c, ctx.keep).unwrap_or(f64::NAN)
                    ),
                    Style::default().fg(o.color),
                )));
            }
        }
        let [head, chart] = Layout::vertical([
            Constraint::Length((lines.len() as u16).min(area.height / 3)),
            Constraint::Min(0),
        ])
        .areas(area);
        Paragraph::new(lines).render(head, buf);
        overlay_chart(
            chart,
            buf,
            overlay,
            if several {
                "faithfulness of each selected run vs share of edges kept (| = +/- control)"
            } else {
                "faithfulness vs share of edges kept (| = +/- control)"
            },
            Some(ctx.keep),
            Some((0.0, 1.0)),
            &|x| format!("{x:.1}"),
            &|y| format!("{y:.1}"),
        );
    }
}
