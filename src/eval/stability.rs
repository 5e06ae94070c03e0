//! Stability of a graph's communities: do they come back with other seeds, and with the hidden
//! units renumbered? Communities are compared per hidden unit (a unit's community is that of
//! the node holding it, so neuron and ROI graphs are compared alike) over the units the
//! disentanglement labels (those whose node carries attribution).

use super::disentangle::disentanglement;
use crate::data::Dataset;
use crate::data::TaskStructure;
use crate::graph::community::{leiden_with_count, stable};
use crate::graph::{build, node_layers, weighted_edges, CircuitGraph, GraphSpec};
use crate::model::RuntimeModel;
use crate::numeric::score;
use crate::params::Valid;
use crate::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Seeds of the stability check beside the graph's own: `seed + 100`, `seed + 200`.
pub const OTHER_SEEDS: [u64; 2] = [100, 200];

/// Mean pairwise ARI between the communities found with the graph's seed, two other seeds and
/// on the same network with its hidden units permuted (seeded), for Leiden's communities and
/// for the partition merged to as many communities as tasks. 1 means every run found the same
/// partition of the units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stability {
    pub communities: f64,
    pub at_task_count: f64,
}

/// Per labelled hidden unit `(layer, unit)` of `g`, its community in `membership` (by node).
fn by_unit(
    g: &CircuitGraph,
    labelled: &[usize],
    membership: &[usize],
) -> Vec<((usize, usize), usize)> {
    let mut out: Vec<((usize, usize), usize)> = labelled
        .iter()
        .flat_map(|&i| {
            let n = &g.graph[petgraph::graph::NodeIndex::new(i)];
            n.units.iter().map(move |&u| ((n.layer, u), membership[i]))
        })
        .collect();
    out.sort();
    out
}

/// The stability of `g`, the graph `spec` builds of `model` on `data`.
pub fn stability(
    model: &RuntimeModel,
    data: &Dataset,
    tasks: &TaskStructure,
    spec: &Valid<GraphSpec>,
    g: &CircuitGraph,
) -> Result<Stability> {
    let d = disentanglement(g)?;
    let (n, edges, layers) = (
        g.graph.node_count(),
        weighted_edges(&g.graph),
        node_layers(&g.graph),
    );
    let own: Vec<usize> = g.graph.node_weights().map(|x| x.community).collect();
    let (mut runs, mut runs_k) = (
        vec![by_unit(g, &d.labelled, &own)],
        vec![by_unit(g, &d.labelled, &d.merged)],
    );
    for s in OTHER_SEEDS {
        let seed = spec.seed.wrapping_add(s);
        runs.push(by_unit(
            g,
            &d.labelled,
            &stable(n, &edges, &layers, seed, 1.0)?.membership,
        ));
        let counted: Vec<bool> = (0..n).map(|i| d.labelled.contains(&i)).collect();
        let k = g.tasks.len().max(1);
        let (merged, _) = leiden_with_count(n, &edges, &layers, seed, k, &counted)?;
        runs_k.push(by_unit(g, &d.labelled, &merged.membership));
    }
    // The same network with every hidden layer's units shuffled, mapped back to the original
    // unit numbers.
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x9e37);
    let perms: Vec<Vec<usize>> = model.layers[..model.layers.len() - 1]
        .iter()
        .map(|l| {
            let mut p: Vec<usize> = (0..l.d_out).collect();
            p.shuffle(&mut rng);
            p
        })
        .collect();
    let pg = build(&model.permute_hidden(&perms)?, data, tasks, spec)?;
    let pd = disentanglement(&pg)?;
    let back = |units: Vec<((usize, usize), usize)>| -> Vec<((usize, usize), usize)> {
        let mut v: Vec<((usize, usize), usize)> = units
            .into_iter()
            .map(|((layer, u), c)| ((layer, perms[layer - 1][u]), c))
            .collect();
        v.sort();
        v
    };
    let pown: Vec<usize> = pg.graph.node_weights().map(|x| x.community).collect();
    runs.push(back(by_unit(&pg, &pd.labelled, &pown)));
    runs_k.push(back(by_unit(&pg, &pd.labelled, &pd.merged)));
    Ok(Stability {
        communities: mean_pairwise_ari(&runs),
        at_task_count: mean_pairwise_ari(&runs_k),
    })
}

/// Mean ARI over every pair of runs, on the units labelled in both.
fn mean_pairwise_ari(runs: &[Vec<((usize, usize), usize)>]) -> f64 {
    let mut sum = 0.0;
    let mut pairs = 0;
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            let b: std::collections::BTreeMap<(usize, usize), usize> =
                runs[j].iter().copied().collect();
            let (x, y): (Vec<usize>, Vec<usize>) = runs[i]
                .iter()
                .filter_map(|(u, c)| b.get(u).map(|d| (*c, *d)))
                .unzip();
            if !x.is_empty() {
                sum += score::ari(&x, &y);
                pairs += 1;
            }
        }
    }
    sum / pairs.max(1) as f64
}
