//! Edge bundles for the Graph view: nodes grouped by (layer, community) or by layer, and the
//! edges between two groups summed, from the carried edges or from the log's aggregate of
//! every edge. Pure functions of a graph event's records; they never draw.

use crate::runlog::events::{GraphBundleRecord, GraphEdgeRecord, GraphNodeRecord};
use std::collections::BTreeMap;

/// A bundle of edges between two groups.
pub(super) struct Bundle {
    pub from: usize,
    pub to: usize,
    pub sum: f64,
    pub sum_abs: f64,
    pub edges: usize,
}

/// Nodes grouped by (layer, community) or by layer, each group's position and size, and which
/// group each node is in.
pub(super) struct Groups {
    /// (layer, community), or (layer, 0) by layer, sorted.
    pub keys: Vec<(usize, usize)>,
    pub pos: Vec<(f64, f64)>,
    pub size: Vec<usize>,
    pub of: Vec<usize>,
}

/// A node's group key: (layer, community), or (layer, 0) by layer.
fn key_of(layer: usize, community: usize, by_layer: bool) -> (usize, usize) {
    (layer, if by_layer { 0 } else { community })
}

/// The groups of `nodes` (of `layers` layers), each layer's groups spread over the height.
pub(super) fn groups(nodes: &[GraphNodeRecord], layers: usize, by_layer: bool) -> Groups {
    let key = |n: &GraphNodeRecord| key_of(n.layer, n.community, by_layer);
    let mut keys: Vec<(usize, usize)> = nodes.iter().map(key).collect();
    keys.sort_unstable();
    keys.dedup();
    let of: Vec<usize> = nodes
        .iter()
        .map(|n| keys.binary_search(&key(n)).unwrap_or(0))
        .collect();
    let mut size = vec![0usize; keys.len()];
    for &g in &of {
        size[g] += 1;
    }
    let mut in_layer = vec![0usize; layers];
    for k in &keys {
        in_layer[k.0] += 1;
    }
    let mut seen = vec![0usize; layers];
    let pos = keys
        .iter()
        .map(|&(l, _)| {
            let i = seen[l];
            seen[l] += 1;
            (l as f64, 1.0 - (i as f64 + 0.5) / in_layer[l] as f64)
        })
        .collect();
    Groups {
        keys,
        pos,
        size,
        of,
    }
}

/// Sums `(from group, to group, mean, mean |value|, edges)` items into bundles, strongest
/// (summed mean |value|) first.
fn merge(items: impl Iterator<Item = (usize, usize, f64, f64, usize)>) -> Vec<Bundle> {
    let mut map: BTreeMap<(usize, usize), Bundle> = BTreeMap::new();
    for (from, to, sum, sum_abs, edges) in items {
        let b = map.entry((from, to)).or_insert(Bundle {
            from,
            to,
            sum: 0.0,
            sum_abs: 0.0,
            edges: 0,
        });
        b.sum += sum;
        b.sum_abs += sum_abs;
        b.edges += edges;
    }
    let mut v: Vec<Bundle> = map.into_values().collect();
    v.sort_by(|a, b| b.sum_abs.total_cmp(&a.sum_abs));
    v
}

/// The bundles of the carried `edges`.
pub(super) fn of_edges(edges: &[GraphEdgeRecord], g: &Groups) -> Vec<Bundle> {
    merge(
        edges
            .iter()
            .map(|e| (g.of[e.from], g.of[e.to], e.mean, e.mean_abs, 1)),
    )
}

/// The log's bundles of every edge (by (layer, community)), merged into the groups `g`.
pub(super) fn of_records(records: &[GraphBundleRecord], g: &Groups, by_layer: bool) -> Vec<Bundle> {
    let find = |l, c| g.keys.binary_search(&key_of(l, c, by_layer)).ok();
    merge(records.iter().filter_map(|r| {
        let from = find(r.from_layer, r.from_community)?;
        let to = find(r.to_layer, r.to_community)?;
        Some((from, to, r.sum, r.sum_abs, r.edges))
    }))
}
