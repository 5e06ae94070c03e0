//! Chance levels: what a structure figure scores when the structure is destroyed — labels
//! shuffled among the same nodes, predictions paired with the wrong observations, a graph's
//! weights shuffled within each layer pair. A figure means something only beside its chance.

use crate::graph::community::stable;
use crate::graph::{node_layers, weighted_edges, CircuitGraph};
use crate::numeric::score;
use crate::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Shuffles a permutation test draws.
pub const DRAWS: usize = 200;
/// Shuffled graphs the modularity chance level is the mean of (each runs consensus Leiden).
pub const GRAPH_DRAWS: usize = 5;

/// A figure's distribution under a null: its mean and 95th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Chance {
    pub mean: f64,
    pub p95: f64,
}

/// The figure `f` over `DRAWS` shuffles of `b` against `a` (seeded).
pub fn shuffled<T: Clone>(a: &[T], b: &[T], f: impl Fn(&[T], &[T]) -> f64) -> Chance {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut perm = b.to_vec();
    let mut vals: Vec<f64> = (0..DRAWS)
        .map(|_| {
            perm.shuffle(&mut rng);
            f(a, &perm)
        })
        .filter(|v| v.is_finite())
        .collect();
    vals.sort_by(f64::total_cmp);
    if vals.is_empty() {
        return Chance {
            mean: f64::NAN,
            p95: f64::NAN,
        };
    }
    Chance {
        mean: vals.iter().sum::<f64>() / vals.len() as f64,
        p95: vals[((vals.len() - 1) as f64 * 0.95).round() as usize],
    }
}

/// Spearman ρ of predictions paired with shuffled observations.
pub fn spearman(predicted: &[f64], observed: &[f64]) -> Chance {
    shuffled(predicted, observed, score::spearman)
}

/// ARI, NMI and purity of shuffled task labels against the same communities.
pub fn partition(labels: &[usize], comms: &[usize]) -> [Chance; 3] {
    [
        shuffled(labels, comms, score::ari),
        shuffled(labels, comms, score::nmi),
        shuffled(labels, comms, score::purity),
    ]
}

/// The modularity of the graph's own (consensus Leiden) communities on graphs whose edge
/// weights are shuffled within each layer pair: the same layers, the same (complete) edge
/// sets and degrees, the same weights, with the structure among them destroyed.
pub fn modularity(g: &CircuitGraph) -> Result<Chance> {
    let edges = weighted_edges(&g.graph);
    let layers = node_layers(&g.graph);
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut vals = Vec::new();
    for _ in 0..GRAPH_DRAWS {
        let mut shuffled = edges.clone();
        let mut by_layer: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, e) in edges.iter().enumerate() {
            by_layer.entry(layers[e.0]).or_default().push(i);
        }
        for idx in by_layer.values() {
            let mut w: Vec<f64> = idx.iter().map(|&i| edges[i].2).collect();
            w.shuffle(&mut rng);
            for (&i, w) in idx.iter().zip(w) {
                shuffled[i].2 = w;
            }
        }
        vals.push(stable(g.graph.node_count(), &shuffled, &layers, g.spec.seed, 1.0)?.modularity);
    }
    vals.sort_by(f64::total_cmp);
    Ok(Chance {
        mean: vals.iter().sum::<f64>() / vals.len().max(1) as f64,
        p95: vals.last().copied().unwrap_or(f64::NAN),
    })
}
