//! The Graph view: the newest graph drawn by layer, the edges kept by the `+`/`-` share, the selected node.

use super::{empty, interpolate, num, PALETTE};
use crate::runlog::events::{GraphEdgeRecord, GraphNodeRecord};
use crate::runlog::Event;
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine, Points};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};
use std::collections::BTreeMap;

/// Faithfulness curves, keyed by (graph kind, ablation), the newest sweep of each.
pub(crate) type Curves = BTreeMap<(String, String), Vec<(f64, f64)>>;

pub(crate) fn take_point(curves: &mut Curves, r: &Record) -> bool {
    let Some(env) = &r.event else { return false };
    let Event::FaithfulnessPoint {
        graph,
        ablation,
        edges_kept,
        faithfulness,
    } = &env.event
    else {
        return false;
    };
    let c = curves.entry((graph.clone(), ablation.clone())).or_default();
    // A sweep runs by increasing share; a point at or below the last starts a new sweep.
    if c.last().is_some_and(|p| *edges_kept <= p.0) {
        c.clear();
    }
    c.push((*edges_kept, *faithfulness));
    true
}

/// The curve matching a graph of `kind`: mean ablation first, else any.
fn curve_for<'a>(curves: &'a Curves, kind: &str) -> Option<(&'a str, &'a [(f64, f64)])> {
    curves
        .get(&(kind.to_string(), "mean".to_string()))
        .map(|c| ("mean", c.as_slice()))
        .or_else(|| {
            curves
                .iter()
                .find(|((g, _), _)| g == kind)
                .map(|((_, a), c)| (a.as_str(), c.as_slice()))
        })
}

/// The graph on a canvas, thinned by the `+`/`-` control, with node details.
#[derive(Default)]
pub struct Graph {
    kind: String,
    nodes: Vec<GraphNodeRecord>,
    edges: Vec<GraphEdgeRecord>,
    total_edges: usize,
    summary: Option<(usize, f64, String)>,
    curves: Curves,
    selected: usize,
    /// The checkpoint step of a graph from live analysis (its envelope's step).
    step: Option<u64>,
}

impl Graph {
    /// How many edges the share `keep` shows (of those in the event).
    pub fn shown(&self, keep: f64) -> usize {
        (((keep * self.total_edges as f64).ceil()) as usize).min(self.edges.len())
    }

    fn layers(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| n.layer)
            .max()
            .map_or(0, |l| l + 1)
    }
}

impl View for Graph {
    fn title(&self) -> &str {
        "Graph"
    }

    fn update(&mut self, r: &Record) -> bool {
        if take_point(&mut self.curves, r) {
            return true;
        }
        let Some(env) = &r.event else { return false };
        match &env.event {
            Event::GraphEdges {
                node_kind,
                nodes,
                edges,
                total_edges,
            } => {
                self.kind = node_kind.clone();
                self.step = env.step;
                self.nodes = nodes.clone();
                self.edges = edges.clone();
                self.total_edges = *total_edges;
                self.selected = self.selected.min(self.nodes.len().saturating_sub(1));
                true
            }
            Event::GraphSummary {
                communities,
                modularity,
                edge_kind,
                ..
            } => {
                self.summary = Some((*communities, *modularity, edge_kind.clone()));
                true
            }
            _ => false,
        }
    }

    fn key(&mut self, key: KeyCode) -> bool {
        let n = self.nodes.len();
        if n == 0 {
            return false;
        }
        match key {
            KeyCode::Down | KeyCode::Right => self.selected = (self.selected + 1) % n,
            KeyCode::Up | KeyCode::Left => self.selected = (self.selected + n - 1) % n,
            _ => return false,
        }
        true
    }

    fn render(&self, area: Rect, buf: &mut Buffer, ctx: &Ctx) {
        if self.nodes.is_empty() {
            return empty(
                area,
                buf,
                "Graph",
                "fills with a `graph_edges` event: `circuitscope graph RUN` (and `circuitscope eval RUN` for the matching faithfulness).",
            );
        }
        let shown = self.shown(ctx.keep);
        let edges = &self.edges[..shown];
        let mut info = vec![Line::from(Span::styled(
            format!(
                "{} graph{}: {} nodes, {} edges",
                self.kind,
                self.step
                    .map(|s| format!(" at step {s}"))
                    .unwrap_or_default(),
                self.nodes.len(),
                self.total_edges
            ),
            Style::default().add_modifier(Modifier::BOLD),
        ))];
        // The share actually drawn: the log carries only the strongest edges of a large
        // graph, so past that share more cannot be shown, and the figures below follow what
        // is drawn, never the share asked for.
        let share = shown as f64 / self.total_edges.max(1) as f64;
        let capped = self.edges.len() < self.total_edges
            && (ctx.keep * self.total_edges as f64).ceil() as usize > self.edges.len();
        info.push(Line::from(format!(
            "shown: {shown} edges = {:.1}% of all{}",
            100.0 * share,
            if capped {
                format!(
                    " (asked {:.0}%: the log carries the strongest {} only; `inspect RUN` reads them all)",
                    100.0 * ctx.keep,
                    self.edges.len()
                )
            } else {
                String::new()
            }
        )));
        if let Some(w) = edges.last() {
            info.push(Line::from(format!("threshold: |w| >= {}", num(w.mean_abs))));
        }
        match curve_for(&self.curves, &self.kind) {
            Some((ablation, c)) => info.push(Line::from(format!(
                "faithfulness at {:.1}%: {:.4} [{ablation}]",
                100.0 * share,
                interpolate(c, share).unwrap_or(f64::NAN)
            ))),
            None => info.push(Line::from(format!(
                "faithfulness: no curve for the {} graph (run `circuitscope eval RUN`; an untrained model's is undefined, see the log)",
                self.kind
            ))),
        }
        if let Some((k, q, edge_kind)) = &self.summary {
            info.push(Line::from(format!(
                "{k} communities, Q {q:.4}, {edge_kind} edges"
            )));
        }
        let sel = self.selected.min(self.nodes.len() - 1);
        let node = &self.nodes[sel];
        let incoming = edges.iter().filter(|e| e.to == sel).count();
        let outgoing = edges.iter().filter(|e| e.from == sel).count();
        info.push(Line::from(Span::styled(
            format!(
                "node {}  layer {}  community {}",
                node.label, node.layer, node.community
            ),
            Style::default().fg(Color::Yellow),
        )));
        info.push(Line::from(format!(
            "shown: {incoming} in, {outgoing} out (up/down)"
        )));
        if let Some(e) = self.edges.iter().find(|e| e.from == sel || e.to == sel) {
            let other = if e.from == sel { e.to } else { e.from };
            if let Some(o) = self.nodes.get(other) {
                info.push(Line::from(format!(
                    "strongest: {} {} {}  mean {}",
                    node.label,
                    if e.from == sel { "->" } else { "<-" },
                    o.label,
                    num(e.mean)
                )));
            }
        }
        let wide = area.width >= 70;
        let (canvas_area, info_area) = if wide {
            let [a, b] =
                Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                    .areas(area);
            (a, b)
        } else {
            let lines = (info.len() as u16).min(area.height / 2);
            let [b, a] =
                Layout::vertical([Constraint::Length(lines), Constraint::Min(0)]).areas(area);
            (a, b)
        };
        Paragraph::new(info)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(if wide { Borders::LEFT } else { Borders::NONE }))
            .render(info_area, buf);
        // Node positions: layers left to right, units spread over the height.
        let layers = self.layers();
        let mut count = vec![0usize; layers];
        let mut index = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            index.push(count[n.layer]);
            count[n.layer] += 1;
        }
        let pos: Vec<(f64, f64)> = self
            .nodes
            .iter()
            .zip(&index)
            .map(|(n, &i)| {
                (
                    n.layer as f64,
                    1.0 - (i as f64 + 0.5) / count[n.layer] as f64,
                )
            })
            .collect();
        Canvas::default()
            .marker(Marker::Braille)
            .x_bounds([-0.2, layers.saturating_sub(1) as f64 + 0.2])
            .y_bounds([0.0, 1.0])
            .paint(|c| {
                for e in edges.iter().rev() {
                    let (a, b) = (pos[e.from], pos[e.to]);
                    let color = if e.mean >= 0.0 {
                        Color::Green
                    } else {
                        Color::Red
                    };
                    c.draw(&CanvasLine::new(a.0, a.1, b.0, b.1, color));
                }
                c.layer();
                for (i, n) in self.nodes.iter().enumerate() {
                    c.draw(&Points {
                        coords: &[pos[i]],
                        color: PALETTE[n.community % PALETTE.len()],
                    });
                }
                let p = pos[sel];
                c.print(
                    p.0,
                    p.1,
                    Span::styled(
                        format!("●{}", node.label),
                        Style::default()
                            .fg(Color::Yellow)
                            .add_modifier(Modifier::BOLD),
                    ),
                );
            })
            .render(canvas_area, buf);
    }
}
