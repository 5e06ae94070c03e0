//! Task disentanglement: do a graph's communities follow the tasks its nodes serve?

use super::chance::{self, Chance};
use crate::graph::CircuitGraph;
use crate::numeric::score;
use crate::Result;
use serde::{Deserialize, Serialize};

/// How well the graph's communities follow the tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disentanglement {
    /// Nodes with a task label (those carrying any attribution).
    pub nodes: usize,
    pub ari: f64,
    pub nmi: f64,
    /// Share of labelled nodes in their community's majority task: with `communities`, tells a
    /// community that mixes tasks (low purity) from a task split over several pure communities
    /// (high purity, more communities than tasks), which ARI and NMI both mark down.
    pub purity: f64,
    /// Communities among the labelled nodes.
    pub communities: usize,
    /// ARI, NMI and purity with the task labels shuffled among the same nodes.
    pub chance: [Chance; 3],
    /// The same scores for a partition into as many communities as tasks.
    pub at_task_count: AtTaskCount,
    /// The labelled nodes (hidden-layer nodes carrying attribution), by node id.
    #[serde(skip)]
    pub labelled: Vec<usize>,
    /// The partition into as many communities as tasks, by node id.
    #[serde(skip)]
    pub merged: Vec<usize>,
}

/// Disentanglement of a partition into as many communities as the network has tasks (the
/// graph's Leiden communities merged by least modularity loss, see
/// [`crate::graph::community::leiden_with_count`]): separates "the communities are too fine"
/// from "the communities mix the tasks". Only the task count is used, never the labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtTaskCount {
    pub ari: f64,
    pub nmi: f64,
    pub purity: f64,
    /// Communities among the labelled nodes (the task count, unless Leiden finds fewer even at
    /// resolution 10).
    pub communities: usize,
    /// The resolution of the Leiden partition they were merged from (1 unless it was raised).
    pub resolution: f64,
    /// ARI, NMI and purity with the task labels shuffled among the same nodes.
    pub chance: [Chance; 3],
}

/// ARI and NMI between communities and task labels (hidden-layer nodes with attribution), for
/// the graph's own communities and for a partition into as many communities as tasks.
pub fn disentanglement(g: &CircuitGraph) -> Result<Disentanglement> {
    let last = g.widths.len() - 1;
    let (mut labels, mut comms, mut who) = (Vec::new(), Vec::new(), Vec::new());
    for (i, n) in g.graph.node_weights().enumerate() {
        if n.layer == 0 || n.layer == last {
            continue;
        }
        let total: f64 = n.task_share.iter().sum();
        if total > 0.0 {
            let best = (0..n.task_share.len())
                .max_by(|&a, &b| n.task_share[a].total_cmp(&n.task_share[b]))
                .unwrap_or(0);
            labels.push(best);
            comms.push(n.community);
            who.push(i);
        }
    }
    let edges = crate::graph::weighted_edges(&g.graph);
    let mut counted = vec![false; g.graph.node_count()];
    for &i in &who {
        counted[i] = true;
    }
    let tasks = g
        .graph
        .node_weights()
        .next()
        .map_or(1, |n| n.task_share.len());
    let (at_k, gamma) = crate::graph::community::leiden_with_count(
        g.graph.node_count(),
        &edges,
        &crate::graph::node_layers(&g.graph),
        g.spec.seed,
        tasks,
        &counted,
    )?;
    let comms_k: Vec<usize> = who.iter().map(|&i| at_k.membership[i]).collect();
    let (chance, chance_k) = (
        chance::partition(&labels, &comms),
        chance::partition(&labels, &comms_k),
    );
    let distinct = |c: &[usize]| c.iter().collect::<std::collections::HashSet<_>>().len();
    Ok(Disentanglement {
        nodes: labels.len(),
        ari: score::ari(&labels, &comms),
        nmi: score::nmi(&labels, &comms),
        purity: score::purity(&labels, &comms),
        communities: distinct(&comms),
        at_task_count: AtTaskCount {
            ari: score::ari(&labels, &comms_k),
            nmi: score::nmi(&labels, &comms_k),
            purity: score::purity(&labels, &comms_k),
            communities: distinct(&comms_k),
            resolution: gamma,
            chance: chance_k,
        },
        chance,
        labelled: who,
        merged: at_k.membership,
    })
}
