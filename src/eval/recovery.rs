//! Circuit recovery: how well a graph's per-task edge attributions rank the edges a known truth
//! assigns to each task (ROC AUC).

use crate::graph::CircuitGraph;
use crate::numeric::score;

/// Circuit recovery: for each task `t`, the ROC AUC of the edges' attribution to `t` against
/// the truth `belongs(src, dst, t)`, over the edges leaving layers in `layers`.
pub fn circuit_auc(
    g: &CircuitGraph,
    layers: std::ops::Range<usize>,
    belongs: &dyn Fn(&crate::graph::Node, &crate::graph::Node, usize) -> bool,
) -> Vec<f64> {
    (0..g.tasks.len())
        .map(|t| {
            let (mut scores, mut truth) = (Vec::new(), Vec::new());
            for e in g.graph.edge_indices() {
                let (a, b) = g.graph.edge_endpoints(e).expect("edge");
                if layers.contains(&g.graph[a].layer) {
                    scores.push(g.graph[e].per_task.get(t).copied().unwrap_or(0.0));
                    truth.push(belongs(&g.graph[a], &g.graph[b], t));
                }
            }
            score::roc_auc(&scores, &truth)
        })
        .collect()
}

/// Node recovery: for each task `t`, the ROC AUC of the nodes of `layer` scored by their own
/// IG for `t` ([`crate::graph::Node::attribution`]) against the truth `belongs(node, t)`.
pub fn node_auc(
    g: &CircuitGraph,
    layer: usize,
    belongs: &dyn Fn(&crate::graph::Node, usize) -> bool,
) -> Vec<f64> {
    (0..g.tasks.len())
        .map(|t| {
            let (scores, truth): (Vec<f64>, Vec<bool>) = g
                .graph
                .node_weights()
                .filter(|n| n.layer == layer)
                .map(|n| (n.attribution.get(t).copied().unwrap_or(0.0), belongs(n, t)))
                .unzip();
            score::roc_auc(&scores, &truth)
        })
        .collect()
}
