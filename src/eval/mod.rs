//! Evaluating graphs: is a graph faithful to the model, sparse, and split along the tasks the
//! network really does?
//!
//! - [`faithfulness()`]: keep the top-k edges of a graph (by mean |value|), ablate every other
//!   edge in the real forward pass ([`ablation`]), and score `(m(kept) − m(none)) / (m(full) −
//!   m(none))` with the task loss as `m`, for a sweep of k; CPR is the area under that curve and
//!   CMD the area between it and 1 (x = share of edges kept). Beside it, the chance curve: the
//!   same score for random edge sets of the same size. The score is only defined for a model
//!   that does clearly better than its fully ablated self ([`MIN_GAIN`]); an untrained network
//!   does not, and its curve is reported as undefined rather than as noise over a near-zero gap.
//! - [`disentanglement`]: nodes labelled by the task with the largest share of their attribution;
//!   ARI and NMI between those labels and the graph's communities, and again with the
//!   communities merged down to as many as there are tasks (the count, never the labels).
//! - [`interventions`]: ablate each community, and each task's subgraph, and compare the
//!   predicted per-task effect (the attribution the ablated edges carry for that task) with the
//!   observed change in each task's loss: Spearman ρ over all (intervention, task) pairs, and the
//!   selectivity of each task subgraph.
//!
//! - [`discover()`]: circuit discovery by other methods than the IG ranking (EAP, EAP-IG, ACDC,
//!   learned masks), each ranking a graph's edges or hidden nodes ([`Items`]) for the same
//!   faithfulness curve ([`faithfulness_of`], [`faithfulness_nodes`]) and the circuit's
//!   [`completeness`].
//!
//! Evaluation runs models with edges ablated; it must never change a model's weights.
pub mod ablation;
pub mod atypical;
pub mod chance;
pub mod discover;
pub mod disentangle;
pub mod faithfulness;
pub mod intervene;
pub mod items;
pub mod learned;
pub mod loss;
pub mod mask;
pub mod recovery;
pub mod report;
pub mod stability;

pub use discover::{discover, Circuit, DiscoverOptions, Level, Method};
pub use disentangle::{disentanglement, AtTaskCount, Disentanglement};
pub use faithfulness::{
    completeness, completeness_nodes, faithfulness, faithfulness_nodes, faithfulness_of,
    FaithPoint, Faithfulness, CHANCE_DRAWS, FRACTIONS, MIN_GAIN,
};
pub use intervene::{
    community_class_accuracy, interventions, Intervention, Interventions, LOSS_ROUNDING,
};
pub use items::Items;
pub use learned::{learned, Learned};
pub use recovery::{circuit_auc, node_auc};
pub use report::{
    analyse_checkpoint, evaluate, sparkline, structure_figures, summary, ChanceLevels,
    CheckpointFigures, EvalReport, Figures, STRUCTURE,
};

use crate::graph::{CircuitGraph, NodeKind};
use crate::{invalid, Result};
use ablation::EdgeMask;
use petgraph::graph::EdgeIndex;

/// Sets every neuron edge covered by the given graph edges to `keep`.
pub(crate) fn mark(g: &CircuitGraph, edges: &[EdgeIndex], mask: &mut EdgeMask, keep: bool) {
    for &e in edges {
        let (a, b) = g.graph.edge_endpoints(e).expect("edge exists");
        let (src, dst) = (&g.graph[a], &g.graph[b]);
        let d_in = g.widths[src.layer];
        for &j in &dst.units {
            for &i in &src.units {
                mask.kept[src.layer][j * d_in + i] = keep;
            }
        }
    }
}

/// Every edge with an end in community `c` (what ablating the community removes).
pub(crate) fn community_edges(g: &CircuitGraph, c: usize) -> Vec<EdgeIndex> {
    g.graph
        .edge_indices()
        .filter(|&e| {
            let (a, b) = g.graph.edge_endpoints(e).expect("edge");
            g.graph[a].community == c || g.graph[b].community == c
        })
        .collect()
}

/// Evaluation ablates units: component nodes (read-only views of a layer) cannot be.
pub fn check_nodes(nodes: NodeKind) -> Result<()> {
    if nodes == NodeKind::Component {
        invalid!("evaluation ablates units; component graphs are read-only views: evaluate neuron or roi nodes");
    }
    Ok(())
}

pub(crate) fn check_ablatable(g: &CircuitGraph) -> Result<()> {
    check_nodes(g.spec.nodes)
}
