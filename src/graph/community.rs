//! Communities of a weighted graph by the Leiden algorithm (leiden-rs, modularity), with our own
//! modularity function as the cross-check. Edges are taken as undirected; their weights must be
//! non-negative. This module only partitions.
//!
//! Leiden's result depends on the numbering of the nodes and on its seed: the same network with
//! its hidden units permuted gave other communities (ARI 0.03–0.13 against the original). So
//! graphs get [`stable`] communities: the nodes are handed to Leiden in an order that does not
//! depend on their numbering ([`canonical_order`]), and several seeds are combined by consensus
//! clustering (Lancichinetti & Fortunato, "Consensus clustering in complex networks", Sci. Rep.
//! 2012). leiden-rs offers neither, so the small loop is ours.

use crate::{Error, Result};

/// A partition of the nodes and its modularity.
#[derive(Debug, Clone, PartialEq)]
pub struct Communities {
    pub membership: Vec<usize>,
    pub count: usize,
    /// Modularity as computed by [`modularity`].
    pub modularity: f64,
}

/// Newman–Girvan modularity of an undirected weighted graph:
/// `Q = Σ_c [ W_c / W − (S_c / 2W)² ]`, with `W` the total edge weight, `W_c` the weight inside
/// community `c` and `S_c` the total strength (weighted degree) of its nodes.
pub fn modularity(n: usize, edges: &[(usize, usize, f64)], membership: &[usize]) -> f64 {
    let total: f64 = edges.iter().map(|e| e.2).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let k = membership.iter().max().map_or(0, |m| m + 1);
    let (mut inside, mut strength) = (vec![0.0; k], vec![0.0; k]);
    let mut node_strength = vec![0.0; n];
    for &(a, b, w) in edges {
        node_strength[a] += w;
        node_strength[b] += w;
        if membership[a] == membership[b] {
            inside[membership[a]] += w;
        }
    }
    for (i, s) in node_strength.iter().enumerate() {
        strength[membership[i]] += s;
    }
    (0..k)
        .map(|c| inside[c] / total - (strength[c] / (2.0 * total)).powi(2))
        .sum()
}

/// Leiden runs combined by [`stable`].
pub const CONSENSUS_RUNS: u64 = 8;
/// Co-association below which a pair is dropped from the consensus graph.
pub const CONSENSUS_THRESHOLD: f64 = 0.5;
/// Consensus rounds at most (they stop as soon as every run agrees).
const CONSENSUS_ROUNDS: usize = 10;

/// The order in which nodes are handed to Leiden: by layer, then by weighted degree
/// (descending), then by the largest weight at the node, so that renumbering the nodes of a
/// layer — a network with its hidden units permuted — hands Leiden the same graph. Keys equal
/// to 1e-9 of the largest (rounding of the same sums taken in another order) count as equal
/// and keep the nodes' numbering. `layers` may be empty (every node in one layer). Returns the
/// nodes in that order.
pub fn canonical_order(n: usize, edges: &[(usize, usize, f64)], layers: &[usize]) -> Vec<usize> {
    let (mut degree, mut top) = (vec![0.0f64; n], vec![0.0f64; n]);
    for &(a, b, w) in edges {
        for v in [a, b] {
            degree[v] += w;
            top[v] = top[v].max(w);
        }
    }
    let scale = degree
        .iter()
        .chain(&top)
        .fold(0.0f64, |m, &v| m.max(v))
        .max(1e-300);
    let key = |v: f64| -> i64 { -((v / scale) * 1e9).round() as i64 };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&v| {
        (
            layers.get(v).copied().unwrap_or(0),
            key(degree[v]),
            key(top[v]),
            v,
        )
    });
    order
}

/// Communities that depend neither on how the nodes are numbered nor on one seed: the graph
/// renumbered in [`canonical_order`], [`CONSENSUS_RUNS`] Leiden runs (seeds `seed`, `seed + 1`,
/// …) at resolution `gamma`, combined by consensus clustering: while the runs disagree, every
/// pair of nodes gets the share of runs that put it in one community, pairs under
/// [`CONSENSUS_THRESHOLD`] are dropped, and Leiden runs again on that co-association graph.
/// Communities are numbered in canonical order; the modularity is that of the original graph.
pub fn stable(
    n: usize,
    edges: &[(usize, usize, f64)],
    layers: &[usize],
    seed: u64,
    gamma: f64,
) -> Result<Communities> {
    let order = canonical_order(n, edges, layers);
    let mut position = vec![0; n];
    for (p, &v) in order.iter().enumerate() {
        position[v] = p;
    }
    let mut graph: Vec<(usize, usize, f64)> = edges
        .iter()
        .map(|&(a, b, w)| (position[a], position[b], w))
        .collect();
    let mut agreed = Vec::new();
    for _ in 0..CONSENSUS_ROUNDS {
        let runs: Vec<Vec<usize>> = (0..CONSENSUS_RUNS)
            .map(|k| Ok(leiden_at(n, &graph, seed.wrapping_add(k), gamma)?.membership))
            .collect::<Result<_>>()?;
        agreed = runs[0].clone();
        if runs.iter().all(|r| *r == runs[0]) {
            break;
        }
        let mut together: std::collections::HashMap<(usize, usize), f64> = Default::default();
        for run in &runs {
            let mut members: Vec<Vec<usize>> = Vec::new();
            for (v, &c) in run.iter().enumerate() {
                if members.len() <= c {
                    members.resize(c + 1, Vec::new());
                }
                members[c].push(v);
            }
            for m in &members {
                for (i, &a) in m.iter().enumerate() {
                    for &b in &m[i + 1..] {
                        *together.entry((a, b)).or_insert(0.0) += 1.0 / runs.len() as f64;
                    }
                }
            }
        }
        let mut next: Vec<(usize, usize, f64)> = together
            .into_iter()
            .filter(|&(_, w)| w >= CONSENSUS_THRESHOLD)
            .map(|((a, b), w)| (a, b, w))
            .collect();
        next.sort_by_key(|e| (e.0, e.1));
        if next.is_empty() {
            break;
        }
        graph = next;
    }
    // Back to the original numbering; communities numbered by first appearance in canonical
    // order (`agreed` is indexed by position and already numbered that way).
    let membership: Vec<usize> = (0..n).map(|v| agreed[position[v]]).collect();
    Ok(Communities {
        modularity: modularity(n, edges, &membership),
        count: membership.iter().max().map_or(0, |m| m + 1),
        membership,
    })
}

/// Leiden communities of `n` nodes (one run, one seed, in the nodes' own numbering);
/// zero-weight edges are ignored. Graphs use [`stable`] instead.
pub fn leiden(n: usize, edges: &[(usize, usize, f64)], seed: u64) -> Result<Communities> {
    leiden_at(n, edges, seed, 1.0)
}

/// A partition with `k` communities among the nodes marked in `counted` (all if empty): the
/// [`stable`] communities (resolution 1; raised through 10^0.1, 10^0.2, … up to 10 while they are
/// fewer than `k`), then merged greedily, each time the pair whose merge costs the least
/// modularity (Newman's agglomeration, `ΔQ = W_ab / W − S_a S_b / 2W²`), until `k` remain;
/// only communities holding a counted node are merged (the others are left as they are).
/// Returns the partition and the resolution it started from. What is asked for is only a
/// number (e.g. as many communities as the network has tasks), so nothing here looks at node
/// labels. (Lowering Leiden's resolution instead was tried first: leiden-rs stays at its
/// resolution-1 partition of a long layered chain down to γ = 0.001.)
pub fn leiden_with_count(
    n: usize,
    edges: &[(usize, usize, f64)],
    layers: &[usize],
    seed: u64,
    k: usize,
    counted: &[bool],
) -> Result<(Communities, f64)> {
    // The communities holding a counted node: the only ones a merge may join, so every merge
    // lowers the count by one.
    let live = |m: &[usize]| -> Vec<usize> {
        let mut v: Vec<usize> = m
            .iter()
            .enumerate()
            .filter(|&(i, _)| counted.is_empty() || counted[i])
            .map(|(_, &c)| c)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut gamma = 1.0;
    let mut c = stable(n, edges, layers, seed, gamma)?;
    for e in 1..=10 {
        if live(&c.membership).len() >= k {
            break;
        }
        gamma = 10f64.powf(e as f64 / 10.0);
        c = stable(n, edges, layers, seed, gamma)?;
    }
    let mut m = c.membership;
    let total: f64 = edges.iter().map(|e| e.2).sum();
    loop {
        let ids = live(&m);
        if ids.len() <= k.max(1) || total <= 0.0 {
            break;
        }
        // ΔQ of joining a and b depends on them alone: W_ab / W − S_a S_b / 2W².
        let slot = |c: usize| ids.binary_search(&c).ok();
        let mut strength = vec![0.0; ids.len()];
        let mut between = vec![0.0; ids.len() * ids.len()];
        for &(u, v, w) in edges {
            let (cu, cv) = (slot(m[u]), slot(m[v]));
            for s in [cu, cv].into_iter().flatten() {
                strength[s] += w;
            }
            if let (Some(x), Some(y)) = (cu, cv) {
                if x != y {
                    between[x.min(y) * ids.len() + x.max(y)] += w;
                }
            }
        }
        let mut best = (f64::NEG_INFINITY, 0, 1);
        for x in 0..ids.len() {
            for y in x + 1..ids.len() {
                let dq = between[x * ids.len() + y] / total
                    - strength[x] * strength[y] / (2.0 * total * total);
                if dq > best.0 {
                    best = (dq, x, y);
                }
            }
        }
        let (from, into) = (ids[best.2], ids[best.1]);
        for v in &mut m {
            if *v == from {
                *v = into;
            }
        }
    }
    let membership = relabel(&m);
    Ok((
        Communities {
            modularity: modularity(n, edges, &membership),
            count: membership.iter().max().map_or(0, |m| m + 1),
            membership,
        },
        gamma,
    ))
}

/// Community ids renumbered 0..k in order of first appearance.
fn relabel(raw: &[usize]) -> Vec<usize> {
    let mut ids: Vec<usize> = Vec::new();
    raw.iter()
        .map(|r| {
            ids.iter().position(|x| x == r).unwrap_or_else(|| {
                ids.push(*r);
                ids.len() - 1
            })
        })
        .collect()
}

/// Leiden communities at resolution `gamma` (modularity `Σ_c [W_c / W − γ (S_c / 2W)²]`: below 1
/// fewer, larger communities).
pub fn leiden_at(
    n: usize,
    edges: &[(usize, usize, f64)],
    seed: u64,
    gamma: f64,
) -> Result<Communities> {
    if let Some(e) = edges.iter().find(|e| !e.2.is_finite() || e.2 < 0.0) {
        return Err(Error::Data(format!(
            "community detection: edge {}–{} has weight {}, expected a finite non-negative weight",
            e.0, e.1, e.2
        )));
    }
    let kept: Vec<&(usize, usize, f64)> = edges.iter().filter(|e| e.2 > 0.0).collect();
    let membership: Vec<usize> = if kept.is_empty() || n == 0 {
        (0..n).collect()
    } else {
        let mut b = leiden_rs::GraphDataBuilder::new(n);
        for &&(a, c, w) in &kept {
            b.add_edge(a, c, w)
                .map_err(|e| Error::Data(format!("community detection: {e}")))?;
        }
        let g = b
            .build()
            .map_err(|e| Error::Data(format!("community detection: {e}")))?;
        let out = leiden_rs::Leiden::new(leiden_rs::LeidenConfig {
            seed: Some(seed),
            resolution: gamma,
            ..Default::default()
        })
        .run(&g)
        .map_err(|e| Error::Data(format!("community detection: {e}")))?;
        let raw: Vec<usize> = (0..n).map(|i| out.partition.community_of(i)).collect();
        relabel(&raw)
    };
    let count = membership.iter().max().map_or(0, |m| m + 1);
    Ok(Communities {
        modularity: modularity(n, edges, &membership),
        membership,
        count,
    })
}
