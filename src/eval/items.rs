//! What a circuit is made of: the items of a graph that discovery keeps or removes, each
//! standing for a set of the model's edges, all in one layer. At the edge level an item is a
//! graph edge (one model edge in a neuron graph, every edge between two ROIs in an ROI graph);
//! at the node level it is a hidden node (a neuron, or an ROI), removed with every edge it
//! feeds. It only maps items to model edges; it never runs a model.

use super::ablation::EdgeMask;
use super::discover::Level;
use crate::graph::CircuitGraph;
use crate::model::RuntimeModel;
use crate::{invalid, Result};
use petgraph::graph::{EdgeIndex, NodeIndex};

/// The items of one graph at one level.
#[derive(Debug, Clone, PartialEq)]
pub struct Items {
    pub level: Level,
    /// Per item, the graph edge it is (edge level).
    pub edges: Vec<EdgeIndex>,
    /// Per item, the graph node it is (node level).
    pub nodes: Vec<NodeIndex>,
    /// Per item, its model layer and the model edges of that layer (`j * d_in + i`) it stands
    /// for.
    pub members: Vec<(usize, Vec<usize>)>,
    /// Per model layer and edge, the item it belongs to; `None`: in no item, never removed (the
    /// inputs' edges at the node level).
    pub of: Vec<Vec<Option<usize>>>,
}

impl Items {
    /// The items of `g` (built for `model`) at `level`.
    pub fn of_graph(model: &RuntimeModel, g: &CircuitGraph, level: Level) -> Result<Items> {
        if g.widths != model.widths() {
            invalid!(
                "discovery: a graph of widths {:?} for a model of widths {:?}",
                g.widths,
                model.widths()
            );
        }
        let mut of: Vec<Vec<Option<usize>>> = model
            .layers
            .iter()
            .map(|l| vec![None; l.d_in * l.d_out])
            .collect();
        let mut items = Items {
            level,
            edges: Vec::new(),
            nodes: Vec::new(),
            members: Vec::new(),
            of: Vec::new(),
        };
        match level {
            Level::Edge => {
                for e in g.graph.edge_indices() {
                    let (a, b) = g.graph.edge_endpoints(e).expect("edge");
                    let (src, dst) = (&g.graph[a], &g.graph[b]);
                    let d_in = g.widths[src.layer];
                    let members: Vec<usize> = dst
                        .units
                        .iter()
                        .flat_map(|&j| src.units.iter().map(move |&i| j * d_in + i))
                        .collect();
                    for &m in &members {
                        of[src.layer][m] = Some(items.members.len());
                    }
                    items.edges.push(e);
                    items.members.push((src.layer, members));
                }
            }
            Level::Node => {
                let mut hidden: Vec<NodeIndex> = g
                    .graph
                    .node_indices()
                    .filter(|&n| (1..model.layers.len()).contains(&g.graph[n].layer))
                    .collect();
                hidden.sort_by_key(|&n| (g.graph[n].layer, n));
                for n in hidden {
                    let node = &g.graph[n];
                    let l = node.layer;
                    let d = model.layers[l].d_in;
                    let members: Vec<usize> = (0..model.layers[l].d_out)
                        .flat_map(|j| node.units.iter().map(move |&u| j * d + u))
                        .collect();
                    for &m in &members {
                        of[l][m] = Some(items.members.len());
                    }
                    items.nodes.push(n);
                    items.members.push((l, members));
                }
            }
        }
        items.of = of;
        Ok(items)
    }

    /// Every model edge an item of its own (edge level, no graph needed), in layer order.
    pub fn per_edge(model: &RuntimeModel) -> Items {
        let mut items = Items {
            level: Level::Edge,
            edges: Vec::new(),
            nodes: Vec::new(),
            members: Vec::new(),
            of: Vec::new(),
        };
        for (k, l) in model.layers.iter().enumerate() {
            let first = items.members.len();
            items
                .of
                .push((first..first + l.d_in * l.d_out).map(Some).collect());
            items
                .members
                .extend((0..l.d_in * l.d_out).map(|e| (k, vec![e])));
        }
        items
    }

    /// Every hidden neuron an item of its own (node level, no graph needed), layer by layer.
    pub fn per_neuron(model: &RuntimeModel) -> Items {
        let mut items = Items {
            level: Level::Node,
            edges: Vec::new(),
            nodes: Vec::new(),
            members: Vec::new(),
            of: model
                .layers
                .iter()
                .map(|l| vec![None; l.d_in * l.d_out])
                .collect(),
        };
        for (l, layer) in model.layers.iter().enumerate().skip(1) {
            let d = layer.d_in;
            for u in 0..d {
                let members: Vec<usize> = (0..layer.d_out).map(|j| j * d + u).collect();
                for &m in &members {
                    items.of[l][m] = Some(items.members.len());
                }
                items.members.push((l, members));
            }
        }
        items
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The model's edge mask that keeps the items for which `kept` holds and removes the
    /// others (edges in no item are kept).
    pub fn mask(&self, model: &RuntimeModel, kept: impl Fn(usize) -> bool) -> EdgeMask {
        let mut mask = EdgeMask::all(model, true);
        for (t, (k, members)) in self.members.iter().enumerate() {
            if !kept(t) {
                for &m in members {
                    mask.kept[*k][m] = false;
                }
            }
        }
        mask
    }

    /// The order ACDC visits items in: from the outputs back (layer, then position in the
    /// layer, both descending).
    pub fn from_outputs_back(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&t| {
            let (k, m) = &self.members[t];
            std::cmp::Reverse((*k, m.iter().copied().min().unwrap_or(0), t))
        });
        order
    }

    /// The hidden units `(layer, unit)` of each node item (node level; layer 1 the first
    /// hidden layer).
    pub fn units(&self, g: &CircuitGraph) -> Vec<Vec<(usize, usize)>> {
        self.nodes
            .iter()
            .map(|&n| {
                let node = &g.graph[n];
                node.units.iter().map(|&u| (node.layer, u)).collect()
            })
            .collect()
    }
}
