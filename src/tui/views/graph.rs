//! The Graph view: the newest graph drawn by layer (each layer named), the edges kept by the
//! `+`/`-` share, the selected node (`/` finds one by name). Too many edges for the canvas
//! to draw legibly are bundled: one line per pair of (layer, community) groups, its weight the
//! sum of the edges it stands for, or per pair of layers when a layer has more groups than the
//! canvas has rows for (`a` switches between auto, every edge, community and layer bundles).
//! When the log carries only the strongest edges of a large graph and more are asked for, the
//! bundles are the log's aggregate of every edge (`graph_edges`' `bundles`).

use super::bundles;
use super::{clip, empty, interpolate, num, PALETTE};
use crate::runlog::events::{GraphBundleRecord, GraphEdgeRecord, GraphNodeRecord};
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
    /// Every edge, or bundles, or whichever is legible (`a` cycles).
    mode: Drawing,
    /// Every edge of the graph summed by (layer, community), when the log left edges out.
    all_bundles: Vec<GraphBundleRecord>,
}

/// How the Graph view draws edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Drawing {
    /// Every edge while the canvas can show them apart, bundles past that.
    #[default]
    Auto,
    Edges,
    /// Bundled by (layer, community).
    Bundles,
    /// Bundled by layer.
    Layers,
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

    /// The layer's name: its nodes' common label prefix before `:` (`h1`), else `L1`.
    fn layer_name(&self, layer: usize) -> String {
        let mut prefixes = self
            .nodes
            .iter()
            .filter(|n| n.layer == layer)
            .map(|n| n.label.split_once(':').map_or("", |(p, _)| p));
        match prefixes.next() {
            Some(p) if !p.is_empty() && prefixes.all(|q| q == p) => p.to_string(),
            _ => format!("L{layer}"),
        }
    }

    /// How edges are drawn now: bundled when asked, or (auto) when more edges are shown than
    /// the canvas has rows to tell apart (4 per row).
    pub fn bundled(&self, keep: f64, rows: u16) -> bool {
        match self.mode {
            Drawing::Edges => false,
            Drawing::Bundles | Drawing::Layers => true,
            Drawing::Auto => self.shown(keep) > 4 * rows.max(1) as usize,
        }
    }

    /// How edges are grouped now, if bundled: by layer (`true`) when asked, or (auto) when
    /// some layer has more (layer, community) groups than half the canvas's rows (their
    /// labels could not be written).
    fn by_layer(&self, rows: u16) -> bool {
        match self.mode {
            Drawing::Layers => true,
            Drawing::Bundles | Drawing::Edges => false,
            Drawing::Auto => {
                let g = bundles::groups(&self.nodes, self.layers(), false);
                (0..self.layers())
                    .any(|l| g.keys.iter().filter(|k| k.0 == l).count() * 2 > rows.max(1) as usize)
            }
        }
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
                bundles,
            } => {
                self.kind = node_kind.clone();
                self.step = env.step;
                self.nodes = nodes.clone();
                self.edges = edges.clone();
                self.total_edges = *total_edges;
                self.all_bundles = bundles.clone();
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
            KeyCode::Char('a') => {
                self.mode = match self.mode {
                    Drawing::Auto => Drawing::Edges,
                    Drawing::Edges => Drawing::Bundles,
                    Drawing::Bundles => Drawing::Layers,
                    Drawing::Layers => Drawing::Auto,
                }
            }
            _ => return false,
        }
        true
    }

    fn search(&mut self, query: &str, next: bool) -> Option<String> {
        let q = query.to_lowercase();
        let n = self.nodes.len();
        if n == 0 {
            return Some(format!("/{query}: no graph yet"));
        }
        let hits: Vec<usize> = (0..n)
            .filter(|&i| self.nodes[i].label.to_lowercase().contains(&q))
            .collect();
        // An exact name first; else the first match after the selected node (`next`) or
        // from it.
        let start = self.selected + usize::from(next);
        let found = hits
            .iter()
            .copied()
            .find(|&i| !next && self.nodes[i].label.to_lowercase() == q)
            .or_else(|| {
                (0..n)
                    .map(|k| (start + k) % n)
                    .find(|i| hits.binary_search(i).is_ok())
            });
        Some(match found {
            Some(i) => {
                self.selected = i;
                let k = hits.binary_search(&i).map_or(0, |k| k + 1);
                format!(
                    "/{query}: node {} ({k} of {} matches; n: the next)",
                    self.nodes[i].label,
                    hits.len()
                )
            }
            None => format!("/{query}: no node is named like that"),
        })
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
        // The line the bundling adds (the canvas's height, which decides it, is known only
        // after the layout; one more line in the narrow form changes it by one row at most).
        info.push(Line::default());
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
        // The bottom row names the layers, under their columns.
        let [canvas_area, names_row] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(canvas_area);
        let bundled = self.bundled(ctx.keep, canvas_area.height);
        let by_layer = bundled && self.by_layer(canvas_area.height);
        // Past the edges the log carries, bundles stand for every edge (the log's aggregate).
        let whole = bundled && capped && !self.all_bundles.is_empty();
        info.pop();
        info.push(Line::from(Span::styled(
            format!(
                "{}{} ({}; a: auto, every edge, communities, layers)",
                match (bundled, by_layer) {
                    (false, _) => "every edge drawn",
                    (true, false) => "edges bundled by (layer, community)",
                    (true, true) => "edges bundled by layer",
                },
                if whole {
                    format!(", all {} edges", self.total_edges)
                } else {
                    String::new()
                },
                match self.mode {
                    Drawing::Auto if bundled => "auto: too many to tell apart here",
                    Drawing::Auto => "auto",
                    _ => "as asked",
                }
            ),
            Style::default().fg(Color::DarkGray),
        )));
        let groups = bundled.then(|| bundles::groups(&self.nodes, self.layers(), by_layer));
        let bundles = groups
            .as_ref()
            .map(|g| {
                if whole {
                    bundles::of_records(&self.all_bundles, g, by_layer)
                } else {
                    bundles::of_edges(edges, g)
                }
            })
            .unwrap_or_default();
        // The strongest bundles in words: which groups, how many edges, their sums.
        if let Some(g) = &groups {
            let name = |i: usize| {
                let (l, c) = g.keys[i];
                if by_layer {
                    self.layer_name(l)
                } else {
                    format!("{}c{c}", self.layer_name(l))
                }
            };
            for b in bundles.iter().take(4) {
                info.push(Line::from(format!(
                    "{}→{}: {} edges, Σ|w| {}, Σw {}",
                    name(b.from),
                    name(b.to),
                    b.edges,
                    num(b.sum_abs),
                    num(b.sum)
                )));
            }
        }
        Paragraph::new(info)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(if wide { Borders::LEFT } else { Borders::NONE }))
            .render(info_area, buf);
        let layers = self.layers();
        let span = layers.saturating_sub(1) as f64 + 0.4;
        let column = |x: f64| -> u16 {
            let w = canvas_area.width.saturating_sub(1) as f64;
            canvas_area.x + ((x + 0.2) / span * w).round().clamp(0.0, w) as u16
        };
        for l in (0..layers).filter(|_| names_row.height > 0 && names_row.width > 0) {
            let name = self.layer_name(l);
            let w = name.chars().count() as u16;
            let x = column(l as f64).saturating_sub(w / 2).clamp(
                names_row.x,
                (names_row.x + names_row.width).saturating_sub(w),
            );
            buf.set_stringn(
                x,
                names_row.y,
                &name,
                (names_row.x + names_row.width - x) as usize,
                Style::default().fg(Color::Cyan),
            );
        }
        // One x unit per character cell (a label at the right edge is written leftwards).
        let per_cell = span / canvas_area.width.max(1) as f64;
        let right = layers.saturating_sub(1) as f64;
        let rows = canvas_area.height;
        // Character cells between two layers' columns, less a gap.
        let room = ((1.0 / per_cell) as usize).saturating_sub(2);
        let label_at = |x: f64, text: &str| -> f64 {
            if layers > 1 && x >= right {
                x - per_cell * (text.chars().count() as f64 + 1.0)
            } else {
                x
            }
        };
        // Node positions: layers left to right, units spread over the height.
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
        let strongest = bundles.first().map_or(0.0, |b| b.sum_abs);
        Canvas::default()
            .marker(Marker::Braille)
            .x_bounds([-0.2, right + 0.2])
            .y_bounds([0.0, 1.0])
            .paint(|c| {
                if let Some(g) = &groups {
                    for b in bundles.iter().rev() {
                        let (a, z) = (g.pos[b.from], g.pos[b.to]);
                        // Strong bundles bright, weak ones dim: the eye finds the circuit.
                        let strong = b.sum_abs >= strongest / 3.0;
                        let color = match (b.sum >= 0.0, strong) {
                            (true, true) => Color::LightGreen,
                            (false, true) => Color::LightRed,
                            (true, false) => Color::Green,
                            (false, false) => Color::Red,
                        };
                        c.draw(&CanvasLine::new(a.0, a.1, z.0, z.1, color));
                    }
                    c.layer();
                    let in_layer = |l: usize| g.keys.iter().filter(|k| k.0 == l).count();
                    for (i, &(l, community)) in g.keys.iter().enumerate() {
                        let p = g.pos[i];
                        let (text, color) = if by_layer {
                            (
                                format!("●{}·{}", self.layer_name(l), g.size[i]),
                                Color::Cyan,
                            )
                        } else {
                            (
                                format!("●c{community}·{}", g.size[i]),
                                PALETTE[community % PALETTE.len()],
                            )
                        };
                        if in_layer(l) * 2 <= rows as usize {
                            c.print(
                                label_at(p.0, &text),
                                p.1,
                                Span::styled(text, Style::default().fg(color)),
                            );
                        } else {
                            c.draw(&Points {
                                coords: &[p],
                                color: PALETTE[community % PALETTE.len()],
                            });
                        }
                    }
                } else {
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
                        // Every node named where its layer leaves a row for each: the
                        // name within its layer (the layer's is below), cut to the room
                        // between two layers.
                        if i != sel && count[n.layer] * 2 <= rows as usize && room >= 3 {
                            let short = n.label.split_once(':').map_or(&*n.label, |(_, r)| r);
                            // An ROI's name without its size (the selected node shows it).
                            let short = short.split(" (").next().unwrap_or(short);
                            let text = clip(short, room);
                            c.print(
                                label_at(pos[i].0, &text),
                                pos[i].1,
                                Span::styled(text, Style::default().fg(Color::DarkGray)),
                            );
                        }
                    }
                }
                let p = pos[sel];
                let text = format!("●{}", node.label);
                c.print(
                    label_at(p.0, &text),
                    p.1,
                    Span::styled(
                        text,
                        Style::default()
                            .fg(Color::Yellow)
                            .add_modifier(Modifier::BOLD),
                    ),
                );
            })
            .render(canvas_area, buf);
    }
}
