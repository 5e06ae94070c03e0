//! A graph as polars tables (nodes, the strongest edges) and as a few lines for a terminal.

use super::spec::{AUTO_RIEMANN_MAX_STEPS, AUTO_RIEMANN_STEPS, AUTO_RIEMANN_TOL};
use super::{export, CircuitGraph, Node};
use crate::{Error, Result};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

/// Nodes and (the `top` strongest) edges as polars tables.
pub fn tables(
    g: &CircuitGraph,
    top: Option<usize>,
) -> Result<(polars::prelude::DataFrame, polars::prelude::DataFrame)> {
    use polars::prelude::{Column, DataFrame};
    let err = |e: polars::prelude::PolarsError| Error::Data(format!("graph table: {e}"));
    let nodes: Vec<&Node> = g.graph.node_weights().collect();
    let mut cols = vec![
        Column::new("id".into(), (0..nodes.len() as u64).collect::<Vec<_>>()),
        Column::new(
            "layer".into(),
            nodes.iter().map(|n| n.layer as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "label".into(),
            nodes.iter().map(|n| n.label.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "units".into(),
            nodes
                .iter()
                .map(|n| n.units.len() as u64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "community".into(),
            nodes.iter().map(|n| n.community as u64).collect::<Vec<_>>(),
        ),
    ];
    for (t, name) in g.tasks.iter().enumerate() {
        cols.push(Column::new(
            format!("share_{name}").into(),
            nodes
                .iter()
                .map(|n| n.task_share.get(t).copied().unwrap_or(0.0))
                .collect::<Vec<_>>(),
        ));
    }
    let nodes = DataFrame::new(cols).map_err(err)?;
    let e = export::top_edges(g, top);
    let mut cols = vec![
        Column::new(
            "source".into(),
            e.iter().map(|x| x.0 as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "target".into(),
            e.iter().map(|x| x.1 as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "layer".into(),
            e.iter()
                .map(|x| g.graph[NodeIndex::new(x.0)].layer as u64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "mean".into(),
            e.iter().map(|x| x.2.mean).collect::<Vec<_>>(),
        ),
        Column::new(
            "mean_abs".into(),
            e.iter().map(|x| x.2.mean_abs).collect::<Vec<_>>(),
        ),
        Column::new("std".into(), e.iter().map(|x| x.2.std).collect::<Vec<_>>()),
    ];
    for (t, name) in g.tasks.iter().enumerate() {
        if e.first().is_some_and(|x| x.2.per_task.len() > t) {
            cols.push(Column::new(
                format!("abs_{name}").into(),
                e.iter().map(|x| x.2.per_task[t]).collect::<Vec<_>>(),
            ));
        }
    }
    Ok((nodes, DataFrame::new(cols).map_err(err)?))
}

/// A few lines a person reads at a terminal: size, sparsity, communities, strongest edges.
pub fn summary(g: &CircuitGraph, threshold: f64, top: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let max = export::top_edges(g, Some(1))
        .first()
        .map_or(0.0, |e| e.2.mean_abs);
    let _ = writeln!(
        s,
        "graph: {} nodes ({:?}), {} edges ({:?}, baseline {:?}, target {:?}, {} examples)",
        g.graph.node_count(),
        g.spec.nodes,
        g.graph.edge_count(),
        g.spec.edges,
        g.spec.baseline,
        g.spec.target,
        g.examples
    );
    if let Some(ig) = &g.ig {
        let how = if ig.mode.ends_with("(automatic)") {
            format!(
                ": midpoint steps doubled per example from {AUTO_RIEMANN_STEPS} until each target's sum is within {AUTO_RIEMANN_TOL:e} of its |T(x) − T(baseline)|, at most {AUTO_RIEMANN_MAX_STEPS}"
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "IG: {}{how}; completeness: every layer's edges sum to T(x) − T(baseline) within {:.1e} (largest |T(x) − T(baseline)| {:.3e})",
            ig.mode, ig.max_error, ig.max_delta
        );
    }
    let _ = writeln!(s, "sparsity: {:.1}% of edges carry at least {threshold} x the strongest edge's mean |value| ({max:.4e})", 100.0 * g.share_above(threshold * max));
    let _ = writeln!(
        s,
        "activated subgraph: an example uses {:.1}% of the edges on average",
        100.0 * g.activated_share
    );
    // Communities whose every node has no edge carrying anything: dead units, alone.
    let mut live = vec![false; g.communities];
    for e in g
        .graph
        .edge_references()
        .filter(|e| e.weight().mean_abs > 0.0)
    {
        for n in [e.source(), e.target()] {
            live[g.graph[n].community] = true;
        }
    }
    let dead = live.iter().filter(|&&l| !l).count();
    let _ = writeln!(
        s,
        "communities: {}{} (modularity {:.4})",
        g.communities,
        if dead > 0 {
            format!(", of which {dead} hold only nodes without attribution (dead units)")
        } else {
            String::new()
        },
        g.modularity
    );
    for c in &g.clustering {
        let _ = writeln!(
            s,
            "ROIs of h{}: sizes {:?}, silhouette {:.3}, {} dead",
            c.layer, c.sizes, c.silhouette, c.dead
        );
    }
    let _ = writeln!(s, "strongest edges:");
    for (a, b, e) in export::top_edges(g, Some(top)) {
        let _ = writeln!(
            s,
            "  {:<22} -> {:<22} mean {:+.4e}  |mean| {:.4e}  sd {:.2e}",
            g.graph[NodeIndex::new(a)].label,
            g.graph[NodeIndex::new(b)].label,
            e.mean,
            e.mean_abs,
            e.std
        );
    }
    s
}
