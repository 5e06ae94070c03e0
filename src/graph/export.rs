//! Graph files' contents: versioned JSON (written and parsed), DOT and SVG (written), each
//! streamed to any writer and bounded by an edge budget (`top`: the strongest edges by mean
//! |value|), so a large graph never becomes a huge file. The run layer puts them in files. The SVG is drawn by our own layered layout —
//! layers as columns, nodes evenly spaced, edge width and opacity by strength, colour by
//! community — so no system install is needed. Loading checks the format and version.

use super::{CircuitGraph, Edge, GraphSpec, IntraEdge, LayerClustering, Node};
use crate::{Error, Result};
use petgraph::graph::DiGraph;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

pub const FORMAT: &str = "circuitscope-graph";
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct FileEdge {
    source: usize,
    target: usize,
    #[serde(flatten)]
    edge: Edge,
}

#[derive(Serialize, Deserialize)]
struct GraphFile {
    format: String,
    version: u32,
    spec: GraphSpec,
    tasks: Vec<String>,
    widths: Vec<usize>,
    #[serde(default)]
    examples: usize,
    #[serde(default)]
    ig: Option<super::IgSummary>,
    modularity: f64,
    communities: usize,
    activated_share: f64,
    clustering: Vec<LayerClustering>,
    #[serde(default)]
    intra: Vec<IntraEdge>,
    /// Edges in the full graph; `edges` may hold fewer (the `top` budget).
    total_edges: usize,
    nodes: Vec<Node>,
    edges: Vec<FileEdge>,
}

/// The `top` strongest edges by `mean_abs` (all when `top` is `None`), strongest first.
pub fn top_edges(g: &CircuitGraph, top: Option<usize>) -> Vec<(usize, usize, &Edge)> {
    let mut edges: Vec<(usize, usize, &Edge)> = g
        .graph
        .edge_indices()
        .map(|e| {
            let (a, b) = g.graph.edge_endpoints(e).expect("edge exists");
            (a.index(), b.index(), &g.graph[e])
        })
        .collect();
    edges.sort_by(|x, y| y.2.mean_abs.total_cmp(&x.2.mean_abs));
    if let Some(k) = top {
        edges.truncate(k);
    }
    edges
}

/// Writes the versioned JSON file's content to `w`.
pub fn write_json(g: &CircuitGraph, w: &mut dyn Write, top: Option<usize>) -> std::io::Result<()> {
    let file = GraphFile {
        format: FORMAT.into(),
        version: VERSION,
        spec: g.spec.clone(),
        tasks: g.tasks.clone(),
        widths: g.widths.clone(),
        examples: g.examples,
        ig: g.ig.clone(),
        modularity: g.modularity,
        communities: g.communities,
        activated_share: g.activated_share,
        clustering: g.clustering.clone(),
        intra: g.intra.clone(),
        total_edges: g.graph.edge_count(),
        nodes: g.graph.node_weights().cloned().collect(),
        edges: top_edges(g, top)
            .into_iter()
            .map(|(s, t, e)| FileEdge {
                source: s,
                target: t,
                edge: e.clone(),
            })
            .collect(),
    };
    serde_json::to_writer(w, &file).map_err(std::io::Error::other)
}

/// Reads a graph from the text of a graph file; `path` only names it in errors.
pub fn parse_json(text: &str, path: &Path) -> Result<CircuitGraph> {
    let head: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::bad_file(
            path,
            format!("not a graph file (truncated or not JSON): {e}"),
        )
    })?;
    if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(Error::bad_file(
            path,
            format!(
                "not a circuitscope graph (format is {})",
                head.get("format")
                    .map_or("missing".to_string(), |f| f.to_string())
            ),
        ));
    }
    let version = head.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    if version != VERSION as u64 {
        return Err(Error::bad_file(path, format!("graph schema version {version} is not supported (this build reads version {VERSION})")));
    }
    let file: GraphFile = serde_json::from_value(head)
        .map_err(|e| Error::bad_file(path, format!("malformed graph file: {e}")))?;
    let mut graph = DiGraph::new();
    let idx: Vec<_> = file.nodes.into_iter().map(|n| graph.add_node(n)).collect();
    for e in file.edges {
        if e.source >= idx.len() || e.target >= idx.len() {
            return Err(Error::bad_file(
                path,
                format!(
                    "edge {}→{} names a node that does not exist ({} nodes)",
                    e.source,
                    e.target,
                    idx.len()
                ),
            ));
        }
        graph.add_edge(idx[e.source], idx[e.target], e.edge);
    }
    Ok(CircuitGraph {
        spec: file.spec,
        tasks: file.tasks,
        widths: file.widths,
        examples: file.examples,
        ig: file.ig,
        graph,
        modularity: file.modularity,
        communities: file.communities,
        activated_share: file.activated_share,
        clustering: file.clustering,
        intra: file.intra,
        activated: vec![],
    })
}

/// Writes Graphviz DOT (left to right, one rank per layer) to `w`.
pub fn write_dot(g: &CircuitGraph, w: &mut dyn Write, top: Option<usize>) -> std::io::Result<()> {
    let edges = top_edges(g, top);
    let max = edges.first().map_or(1.0, |e| e.2.mean_abs).max(1e-300);
    {
        writeln!(
            w,
            "digraph circuit {{\n  rankdir=LR;\n  node [shape=circle, style=filled, fontsize=8];"
        )?;
        for layer in 0..g.widths.len() {
            write!(w, "  {{ rank=same;")?;
            for n in g
                .graph
                .node_indices()
                .filter(|&n| g.graph[n].layer == layer)
            {
                write!(w, " n{};", n.index())?;
            }
            writeln!(w, " }}")?;
        }
        for n in g.graph.node_indices() {
            let node = &g.graph[n];
            writeln!(
                w,
                "  n{} [label=\"{}\", fillcolor=\"{}\"];",
                n.index(),
                node.label,
                colour(node.community)
            )?;
        }
        for (s, t, e) in &edges {
            writeln!(
                w,
                "  n{s} -> n{t} [penwidth={:.2}, tooltip=\"mean {:.4e}\"];",
                0.3 + 3.0 * e.mean_abs / max,
                e.mean
            )?;
        }
        writeln!(w, "}}")
    }
}

/// A colour per community (a fixed palette, cycled).
pub fn colour(c: usize) -> &'static str {
    const PALETTE: [&str; 10] = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
        "#9c755f", "#bab0ac",
    ];
    PALETTE[c % PALETTE.len()]
}

/// Node positions of the layered layout: `(x, y)` per node, in a `width x height` canvas.
pub fn layout(g: &CircuitGraph, width: f64, height: f64) -> Vec<(f64, f64)> {
    let layers = g.widths.len().max(1);
    let mut pos = vec![(0.0, 0.0); g.graph.node_count()];
    for layer in 0..layers {
        let nodes: Vec<_> = g
            .graph
            .node_indices()
            .filter(|&n| g.graph[n].layer == layer)
            .collect();
        let x = 40.0 + (width - 80.0) * layer as f64 / (layers - 1).max(1) as f64;
        for (k, n) in nodes.iter().enumerate() {
            let y = 30.0 + (height - 60.0) * (k as f64 + 0.5) / nodes.len() as f64;
            pos[n.index()] = (x, y);
        }
    }
    pos
}

/// Writes the SVG drawing to `w` (also used for inline display).
pub fn write_svg(g: &CircuitGraph, w: &mut dyn Write, top: Option<usize>) -> std::io::Result<()> {
    let (width, height) = (900.0, 560.0);
    let pos = layout(g, width, height);
    let edges = top_edges(g, top);
    let max = edges.first().map_or(1.0, |e| e.2.mean_abs).max(1e-300);
    writeln!(
        w,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"#
    )?;
    writeln!(w, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    for (s, t, e) in edges.iter().rev() {
        let ((x1, y1), (x2, y2)) = (pos[*s], pos[*t]);
        let strength = e.mean_abs / max;
        let stroke = if e.mean >= 0.0 { "#333333" } else { "#c0392b" };
        writeln!(
            w,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="{:.2}" stroke-opacity="{:.2}"/>"#,
            0.3 + 3.0 * strength,
            0.15 + 0.85 * strength
        )?;
    }
    let radius = (220.0 / g.graph.node_count().max(1) as f64).clamp(2.5, 9.0);
    for n in g.graph.node_indices() {
        let (x, y) = pos[n.index()];
        let node = &g.graph[n];
        writeln!(
            w,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="{radius:.1}" fill="{}" stroke="#222" stroke-width="0.5"><title>{} (community {})</title></circle>"##,
            colour(node.community),
            node.label,
            node.community
        )?;
    }
    for layer in 0..g.widths.len() {
        let x = 40.0 + (width - 80.0) * layer as f64 / (g.widths.len() - 1).max(1) as f64;
        writeln!(
            w,
            r#"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" font-family="sans-serif">h{layer}</text>"#,
            height - 8.0
        )?;
    }
    writeln!(w, "</svg>")
}
