//! Computational graphs of a network: nodes are neurons or ROIs (groups of functionally similar
//! neurons), edges are gradient flow or exact Integrated Gradients on edges, with communities.
//!
//! - [`spec`]: how a graph is built ([`GraphSpec`], checked once into a valid spec).
//! - [`build()`]: a [`crate::model::RuntimeModel`] and a data set into a [`CircuitGraph`]: a layered petgraph
//!   `DiGraph` whose edges carry the attribution averaged over the examples (mean, mean of the
//!   absolute value, spread, and per task); [`component`] for principal-component nodes.
//! - [`ig`]: exact Integrated Gradients on edges; [`roi`]: neuron groups; [`community`]: Leiden.
//! - [`export`]: versioned JSON, DOT and SVG written to any writer, JSON parsed back.
//! - [`tables`](mod@tables): the graph as polars tables and as a summary a person reads.
//!
//! Graph building reads the model; it must never change weights or ablate (that is
//! evaluation's job), and never opens a file (the run layer does).

pub mod build;
pub mod community;
pub mod component;
pub mod export;
pub mod ig;
pub mod roi;
pub mod spec;
pub mod tables;
mod walk;

pub use build::build;
pub use spec::{Baseline, EdgeKind, GraphSpec, NodeKind, TargetKind, AUTO_RIEMANN_STEPS};
pub use tables::{summary, tables};

use petgraph::graph::DiGraph;
use serde::{Deserialize, Serialize};

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `h_layer`: 0 is the input, the last is the output.
    pub layer: usize,
    pub label: String,
    /// The neurons (units of `h_layer`) this node stands for.
    pub units: Vec<usize>,
    pub community: usize,
    /// For task targets: the share of the node's total |attribution| (in and out) per task.
    pub task_share: Vec<f64>,
    /// For task targets, per task: the node's own Integrated Gradients (the signed sum of its
    /// outgoing edges' attributions on each example, incoming for outputs), its mean |value|
    /// over examples. Edges that cancel (a path that adds and another that subtracts) cancel
    /// here, as they do in the network: an input that a task ignores scores about 0.
    #[serde(default)]
    pub attribution: Vec<f64>,
    /// The same, mean of the signed value.
    #[serde(default)]
    pub attribution_signed: Vec<f64>,
}

/// An edge between consecutive layers, averaged over examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub mean: f64,
    pub mean_abs: f64,
    /// Standard deviation over examples of the per-example value.
    pub std: f64,
    /// Mean |attribution| per task (task targets only).
    pub per_task: Vec<f64>,
    /// Mean signed attribution per task (task targets only).
    #[serde(default)]
    pub per_task_signed: Vec<f64>,
}

/// How the edges' Integrated Gradients were computed and how well they add up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgSummary {
    /// `exact` (piecewise-linear networks) or `riemann N` (N midpoint steps).
    pub mode: String,
    /// Completeness: the largest |Σ of a layer's edge attributions − (T(x) − T(baseline))|
    /// over examples, layers and tasks.
    pub max_error: f64,
    /// The largest |T(x) − T(baseline)| it is measured against.
    pub max_delta: f64,
}

/// An intra-layer edge (gradient-flow graphs): how alike the gradients are that two nodes of
/// layer `layer` send back to the layer before, as the mean cosine over examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntraEdge {
    pub layer: usize,
    /// Node ids (as in the graph) of the two nodes.
    pub a: usize,
    pub b: usize,
    pub cosine: f64,
}

/// ROI clustering figures of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerClustering {
    pub layer: usize,
    pub sizes: Vec<usize>,
    pub silhouette: f64,
    pub dead: usize,
    pub criterion: String,
}

/// A layered computational graph with communities.
#[derive(Debug, Clone)]
pub struct CircuitGraph {
    pub spec: GraphSpec,
    pub tasks: Vec<String>,
    pub widths: Vec<usize>,
    /// Examples the attributions are averaged over (at most `spec.examples`).
    pub examples: usize,
    /// IG edges with task targets: the mode and its completeness.
    pub ig: Option<IgSummary>,
    pub graph: DiGraph<Node, Edge>,
    pub modularity: f64,
    pub communities: usize,
    /// Mean over examples of the share of edges with non-zero attribution for that example.
    pub activated_share: f64,
    pub clustering: Vec<LayerClustering>,
    /// Intra-layer edges (gradient-flow graphs only).
    pub intra: Vec<IntraEdge>,
    /// Per example, the edges with non-zero value for it: its activated subgraph (kept in
    /// memory, not in the JSON file), for the first [`build::ACTIVATED_KEPT`] examples only
    /// (fewer on a graph of more than 16,777 edges: [`build::ACTIVATED_BUDGET`]), so that the
    /// graph's memory does not grow with the examples.
    pub activated: Vec<Vec<u32>>,
}

impl CircuitGraph {
    /// The activated subgraph of example `i`: the edges with non-zero value for it (empty past
    /// the first [`build::ACTIVATED_KEPT`] examples).
    pub fn activated_subgraph(&self, i: usize) -> Vec<petgraph::graph::EdgeIndex> {
        self.activated.get(i).map_or_else(Vec::new, |v| {
            v.iter()
                .map(|&e| petgraph::graph::EdgeIndex::new(e as usize))
                .collect()
        })
    }

    /// Edges whose `mean_abs` is at least `threshold`, as a share of all edges.
    pub fn share_above(&self, threshold: f64) -> f64 {
        let n = self.graph.edge_count().max(1);
        self.graph
            .edge_weights()
            .filter(|e| e.mean_abs >= threshold)
            .count() as f64
            / n as f64
    }
}

/// Every edge as `(source, target, mean |value|)`: the weights communities are found on.
pub fn weighted_edges(graph: &DiGraph<Node, Edge>) -> Vec<(usize, usize, f64)> {
    graph
        .edge_indices()
        .map(|e| {
            let (a, b) = graph.edge_endpoints(e).expect("edge exists");
            (a.index(), b.index(), graph[e].mean_abs)
        })
        .collect()
}

/// Every node's layer, by node id.
pub fn node_layers(graph: &DiGraph<Node, Edge>) -> Vec<usize> {
    graph.node_weights().map(|n| n.layer).collect()
}
