//! `graph` on a run: its computational graph on the validation split, written as
//! `graph/graph.{json,dot,svg}` and tables, with `clustering_summary`, `graph_summary` and
//! `graph_edges` events.

use super::dir::write_atomic_with;
use super::events::{Event, GraphBundleRecord, GraphEdgeRecord, GraphNodeRecord, GRAPH_EDGES_MAX};
use super::load::LoadedRun;
use super::log::segment;
use crate::graph::{build, export, tables, CircuitGraph, GraphSpec};
use crate::params::Valid;
use crate::{Error, Result};
use petgraph::visit::EdgeRef;
use std::path::Path;

/// Writes `graph.json`, `graph.dot` and `graph.svg` (at most `top` edges each) into `dir`.
pub fn write_graph_files(g: &CircuitGraph, dir: &Path, top: Option<usize>) -> Result<()> {
    write_atomic_with(&dir.join("graph.json"), |w| export::write_json(g, w, top))?;
    write_atomic_with(&dir.join("graph.dot"), |w| export::write_dot(g, w, top))?;
    write_atomic_with(&dir.join("graph.svg"), |w| export::write_svg(g, w, top))
}

/// Reads a graph file written by [`write_graph_files`] (with the edges it kept).
pub fn read_graph(path: &Path) -> Result<CircuitGraph> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path, "cannot read graph", e))?;
    export::parse_json(&text, path)
}

/// The [`Event::GraphEdges`] of a graph: all nodes, the strongest edges.
pub fn graph_edges_event(g: &CircuitGraph) -> Event {
    let nodes = g
        .graph
        .node_weights()
        .map(|n| GraphNodeRecord {
            layer: n.layer,
            label: n.label.clone(),
            community: n.community,
        })
        .collect();
    let mut edges: Vec<GraphEdgeRecord> = g
        .graph
        .edge_references()
        .map(|e| GraphEdgeRecord {
            from: e.source().index(),
            to: e.target().index(),
            mean: e.weight().mean,
            mean_abs: e.weight().mean_abs,
        })
        .collect();
    edges.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs));
    let bundles = if edges.len() > GRAPH_EDGES_MAX {
        bundles(g)
    } else {
        Vec::new()
    };
    edges.truncate(GRAPH_EDGES_MAX);
    Event::GraphEdges {
        node_kind: format!("{:?}", g.spec.nodes).to_lowercase(),
        nodes,
        edges,
        total_edges: g.graph.edge_count(),
        bundles,
    }
}

/// Every edge of `g` summed by the (layer, community) groups it joins; the strongest
/// [`GRAPH_EDGES_MAX`] bundles by summed mean |value|.
fn bundles(g: &CircuitGraph) -> Vec<GraphBundleRecord> {
    let mut map: std::collections::BTreeMap<(usize, usize, usize, usize), GraphBundleRecord> =
        Default::default();
    for e in g.graph.edge_references() {
        let (a, b) = (&g.graph[e.source()], &g.graph[e.target()]);
        let r = map
            .entry((a.layer, a.community, b.layer, b.community))
            .or_insert(GraphBundleRecord {
                from_layer: a.layer,
                from_community: a.community,
                to_layer: b.layer,
                to_community: b.community,
                edges: 0,
                sum: 0.0,
                sum_abs: 0.0,
            });
        r.edges += 1;
        r.sum += e.weight().mean;
        r.sum_abs += e.weight().mean_abs;
    }
    let mut v: Vec<GraphBundleRecord> = map.into_values().collect();
    v.sort_by(|a, b| b.sum_abs.total_cmp(&a.sum_abs));
    v.truncate(GRAPH_EDGES_MAX);
    v
}

/// Builds the graph of a finished run on its validation split, writes `graph/graph.json`,
/// `graph/graph.dot`, `graph/graph.svg` (at most `top` edges each; all when `None`) and the
/// tables `graph_nodes` and `graph_edges`, and logs a `graph` segment (`clustering_summary` per
/// ROI layer, `graph_summary`).
pub fn graph_run(root: &Path, spec: &Valid<GraphSpec>, top: Option<usize>) -> Result<CircuitGraph> {
    let loaded = LoadedRun::open(root)?;
    let (run, model, data) = (&loaded.run, &loaded.model, &loaded.data);
    spec.fits(model, &data.val)?;
    segment(
        run,
        "graph",
        Some(loaded.name()),
        serde_json::to_value(&**spec).expect("serialises"),
        |log| {
            let g = build(model, &data.val, &data.tasks, spec)?;
            write_graph_files(&g, &root.join("graph"), top)?;
            let (mut nodes, mut edges) = tables(&g, top)?;
            run.write_table("graph_nodes", &mut nodes)?;
            run.write_table("graph_edges", &mut edges)?;
            if !g.intra.is_empty() {
                use polars::prelude::{Column, DataFrame};
                let mut intra = DataFrame::new(vec![
                    Column::new(
                        "layer".into(),
                        g.intra.iter().map(|e| e.layer as u64).collect::<Vec<_>>(),
                    ),
                    Column::new(
                        "a".into(),
                        g.intra.iter().map(|e| e.a as u64).collect::<Vec<_>>(),
                    ),
                    Column::new(
                        "b".into(),
                        g.intra.iter().map(|e| e.b as u64).collect::<Vec<_>>(),
                    ),
                    Column::new(
                        "cosine".into(),
                        g.intra.iter().map(|e| e.cosine).collect::<Vec<_>>(),
                    ),
                ])
                .map_err(|e| Error::Data(format!("graph table: {e}")))?;
                run.write_table("graph_intra", &mut intra)?;
            }
            for c in &g.clustering {
                log.emit(
                    None,
                    Event::ClusteringSummary {
                        layer: c.layer,
                        clusters: c.sizes.len(),
                        sizes: c.sizes.clone(),
                        criterion: c.criterion.clone(),
                        score: c.silhouette,
                    },
                )?;
            }
            let n = g.graph.node_count();
            log.emit(
                None,
                Event::GraphSummary {
                    nodes: n,
                    edges: g.graph.edge_count(),
                    density: g.share_above(1e-12),
                    communities: g.communities,
                    modularity: g.modularity,
                    node_kind: format!("{:?}", spec.nodes).to_lowercase(),
                    edge_kind: format!("{:?}", spec.edges).to_lowercase(),
                },
            )?;
            log.emit(None, graph_edges_event(&g))?;
            Ok(g)
        },
    )
}
