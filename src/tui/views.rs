//! The dashboard's tabs. Each view keeps only what it draws, takes every record through
//! [`View::update`] and draws itself from that state alone; it must never read files or the
//! clock. A view with no data yet says which events, from which command, will fill it.

use super::{Ctx, Record, View};
use crate::runlog::events::{GraphEdgeRecord, GraphNodeRecord, TaskMetrics};
use crate::runlog::Event;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine, Points};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, Gauge, GraphType, Paragraph, Row, Table, Widget, Wrap,
};
use std::collections::BTreeMap;

/// Colours for series and communities, in order.
const PALETTE: [Color; 8] = [
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
const MAX_POINTS: usize = 2000;

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

fn push_thinned(series: &mut Vec<(f64, f64)>, p: (f64, f64)) {
    if series.len() >= MAX_POINTS {
        let kept: Vec<(f64, f64)> = series.iter().copied().step_by(2).collect();
        *series = kept;
    }
    series.push(p);
}

/// The placeholder of a view with no data.
fn empty(area: Rect, buf: &mut Buffer, title: &str, what: &str) {
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

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
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

// ---------------------------------------------------------------------------------------------

/// Training: per-task loss (log scale) over steps, lr, throughput, ETA, the last evaluation.
#[derive(Default)]
pub struct Training {
    preset: Option<String>,
    tasks: Vec<Vec<(f64, f64)>>,
    last: Option<(u64, usize, f64, f64, f64, f64)>,
    eval: Option<(usize, String, Vec<TaskMetrics>)>,
    resumed: Option<u64>,
}

impl View for Training {
    fn title(&self) -> &str {
        "Training"
    }

    fn update(&mut self, r: &Record) -> bool {
        let Some(env) = &r.event else { return false };
        match &env.event {
            Event::RunStart {
                command, preset, ..
            } if command == "train" => {
                self.preset = preset.clone();
                true
            }
            Event::TrainStep {
                epoch,
                losses,
                loss,
                lr,
                examples_per_s,
                eta_s,
            } => {
                let step = env.step.unwrap_or(0);
                if self.tasks.len() < losses.len() {
                    self.tasks.resize(losses.len(), Vec::new());
                }
                for (t, l) in losses.iter().enumerate() {
                    if *l > 0.0 && l.is_finite() {
                        push_thinned(&mut self.tasks[t], (step as f64, l.log10()));
                    }
                }
                self.last = Some((step, *epoch, *loss, *lr, *examples_per_s, *eta_s));
                true
            }
            Event::Eval {
                epoch,
                split,
                tasks,
            } => {
                self.eval = Some((*epoch, split.clone(), tasks.clone()));
                true
            }
            Event::Resumed { from_step } => {
                self.resumed = Some(*from_step);
                true
            }
            _ => false,
        }
    }

    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        let Some((step, epoch, loss, lr, eps, eta)) = self.last else {
            return empty(
                area,
                buf,
                "Training",
                "fills with `train_step` and `eval` events: `circuitscope train --preset P --out RUN`.",
            );
        };
        let mut lines = vec![Line::from(format!(
            "{}step {step}  epoch {epoch}  loss {}  lr {}  {} ex/s  ETA {:.0} s{}",
            self.preset
                .as_ref()
                .map(|p| format!("{p}  "))
                .unwrap_or_default(),
            num(loss),
            num(lr),
            num(eps),
            eta,
            self.resumed
                .map(|s| format!("  (resumed at {s})"))
                .unwrap_or_default()
        ))];
        if let Some((epoch, split, tasks)) = &self.eval {
            let figs: Vec<String> = tasks
                .iter()
                .map(|m| {
                    let mut s = format!("{} loss {}", m.task, num(m.loss));
                    if let Some(r2) = m.r2 {
                        s.push_str(&format!(" R² {r2:.4}"));
                    }
                    if let Some(a) = m.accuracy {
                        s.push_str(&format!(" acc {:.2}%", 100.0 * a));
                    }
                    s
                })
                .collect();
            lines.push(Line::from(format!(
                "eval (epoch {epoch}, {split}): {}",
                figs.join(" | ")
            )));
        }
        // Rows the wrapped head needs.
        let w = area.width.max(1) as usize;
        let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(w)).sum();
        let [head, chart] = Layout::vertical([
            Constraint::Length((rows as u16).min(area.height / 2)),
            Constraint::Min(0),
        ])
        .areas(area);
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .render(head, buf);
        let xs = self.tasks.iter().flatten().map(|p| p.0);
        let ys = self.tasks.iter().flatten().map(|p| p.1);
        let (Some((x0, x1)), Some((y0, y1))) = (bounds(xs), bounds(ys)) else {
            return;
        };
        let names: Vec<String> = (0..self.tasks.len()).map(|t| format!("task{t}")).collect();
        let data: Vec<Dataset> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(t, s)| {
                Dataset::default()
                    .name(names[t].as_str())
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(PALETTE[t % PALETTE.len()]))
                    .data(s)
            })
            .collect();
        Chart::new(data)
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title("loss per task (log10)"),
            )
            .x_axis(
                Axis::default()
                    .bounds([x0, x1])
                    .labels([format!("{x0:.0}"), format!("step {x1:.0}")]),
            )
            .y_axis(
                Axis::default()
                    .bounds([y0, y1])
                    .labels([num(10f64.powf(y0)), num(10f64.powf(y1))]),
            )
            .render(chart, buf);
    }
}

// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------

/// Faithfulness curves, keyed by (graph kind, ablation), the newest sweep of each.
type Curves = BTreeMap<(String, String), Vec<(f64, f64)>>;

fn take_point(curves: &mut Curves, r: &Record) -> bool {
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
                "{} graph: {} nodes, {} edges",
                self.kind,
                self.nodes.len(),
                self.total_edges
            ),
            Style::default().add_modifier(Modifier::BOLD),
        ))];
        info.push(Line::from(format!(
            "shown: {shown} edges = {:.1}% of all",
            100.0 * shown as f64 / self.total_edges.max(1) as f64,
        )));
        if let Some(w) = edges.last() {
            info.push(Line::from(format!("threshold: |w| >= {}", num(w.mean_abs))));
        }
        match curve_for(&self.curves, &self.kind) {
            Some((ablation, c)) => info.push(Line::from(format!(
                "faithfulness at {:.1}%: {:.4} [{ablation}]",
                100.0 * ctx.keep,
                interpolate(c, ctx.keep).unwrap_or(f64::NAN)
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

// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------

/// One `probe_accuracy` event: (method, functions, bottleneck, mask ratio, accuracy, ARI).
type ProbeRow = (String, usize, Option<usize>, Option<f64>, f64, Option<f64>);

/// Zoo training progress, embedder losses and probe accuracies.
#[derive(Default)]
pub struct Zoo {
    progress: Option<(usize, usize, String, f64)>,
    below_bar: usize,
    losses: BTreeMap<String, (u64, f64, f64)>,
    last_label: Option<String>,
    val_series: BTreeMap<String, Vec<(f64, f64)>>,
    probes: Vec<ProbeRow>,
}

impl View for Zoo {
    fn title(&self) -> &str {
        "Zoo/Embedding"
    }

    fn update(&mut self, r: &Record) -> bool {
        let Some(env) = &r.event else { return false };
        match &env.event {
            Event::ZooProgress {
                done,
                total,
                model,
                r2,
            } => {
                if *r2 < crate::embed::zoo::R2_BAR {
                    self.below_bar += 1;
                }
                self.progress = Some((*done, *total, model.clone(), *r2));
                true
            }
            Event::EmbedderLoss { train, val, label } => {
                let label = label.clone().unwrap_or_else(|| "embedder".into());
                let step = env.step.unwrap_or(0);
                self.losses.insert(label.clone(), (step, *train, *val));
                push_thinned(
                    self.val_series.entry(label.clone()).or_default(),
                    (step as f64, *val),
                );
                self.last_label = Some(label);
                true
            }
            Event::ProbeAccuracy {
                method,
                accuracy,
                cluster_ari,
                functions,
                bottleneck,
                mask_ratio,
            } => {
                self.probes.push((
                    method.clone(),
                    *functions,
                    *bottleneck,
                    *mask_ratio,
                    *accuracy,
                    *cluster_ari,
                ));
                true
            }
            _ => false,
        }
    }

    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        if self.progress.is_none() && self.losses.is_empty() && self.probes.is_empty() {
            return empty(
                area,
                buf,
                "Zoo/Embedding",
                "fills with `zoo_progress`, `embedder_loss` and `probe_accuracy` events: `circuitscope zoo --out ZOO`, then `circuitscope embed ZOO`; watch the zoo directory.",
            );
        }
        let [gauge, table] =
            Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
        if let Some((done, total, model, r2)) = &self.progress {
            Gauge::default()
                .block(Block::default().borders(Borders::TOP).title("zoo"))
                .gauge_style(Style::default().fg(Color::Cyan))
                .ratio((*done as f64 / (*total).max(1) as f64).clamp(0.0, 1.0))
                .label(format!(
                    "{done}/{total} models, last {model} R² {r2:.4}, {} below R² {}",
                    self.below_bar,
                    crate::embed::zoo::R2_BAR
                ))
                .render(gauge, buf);
        } else {
            Paragraph::new("zoo: no progress events in this log").render(gauge, buf);
        }
        let mut rows: Vec<Row> = Vec::new();
        for (label, (step, train, val)) in &self.losses {
            let probe = self.probes.iter().rev().find(|p| {
                p.0 == "embedding"
                    && p.2.is_some()
                    && format!("f{} k{} m{:.2}", p.1, p.2.unwrap_or(0), p.3.unwrap_or(0.0))
                        == *label
            });
            rows.push(Row::new(vec![
                label.clone(),
                step.to_string(),
                num(*train),
                num(*val),
                probe.map_or("-".into(), |p| format!("{:.1}%", 100.0 * p.4)),
                probe
                    .and_then(|p| p.5)
                    .map_or("-".into(), |a| format!("{a:.3}")),
            ]));
        }
        for p in self.probes.iter().filter(|p| p.0 != "embedding") {
            rows.push(
                Row::new(vec![
                    format!("f{} {}", p.1, p.0),
                    "".into(),
                    "".into(),
                    "".into(),
                    format!("{:.1}%", 100.0 * p.4),
                    p.5.map_or("-".into(), |a| format!("{a:.3}")),
                ])
                .style(Style::default().fg(Color::DarkGray)),
            );
        }
        Table::new(
            rows,
            [
                Constraint::Length(24),
                Constraint::Length(6),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(7),
                Constraint::Length(6),
            ],
        )
        .header(
            Row::new(vec![
                "embedder / baseline",
                "step",
                "train",
                "val",
                "probe",
                "ARI",
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title("embedders (masked-gradient loss) and probe accuracy on held-out models"),
        )
        .render(table, buf);
    }
}

// ---------------------------------------------------------------------------------------------

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
        let mut v = r.value.clone();
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
