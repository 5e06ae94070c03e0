//! The component graph: principal components of each hidden layer as nodes, gradient flow
//! between them as edges. A read-only view: its nodes are never ablated.

use super::build::{assign_communities, EXAMPLE_CHUNK};
use super::{CircuitGraph, Edge, GraphSpec, Node};
use crate::data::TaskStructure;
use crate::model::RuntimeModel;
use crate::numeric::linalg::{Factor, Pca};
use crate::Result;
use petgraph::graph::{DiGraph, NodeIndex};

/// Activations `h_0..h_L` of a range of examples (row-major per layer).
pub(crate) type Chunk<'a> = dyn Fn(std::ops::Range<usize>) -> Result<Vec<Vec<f64>>> + 'a;

/// The component graph: inputs, the top `max_rois` principal components of each hidden layer,
/// outputs; edge `a → b` is `|p_bᵀ J(x) p_a|` (`J` the adjacent Jacobian, `p` unit component
/// vectors or unit vectors for input and output neurons), normalised over `a` for each `b` and
/// averaged over examples. Streams over the `n` examples [`EXAMPLE_CHUNK`] at a time (`chunk`
/// gives their activations): a first pass folds each hidden layer into a [`Factor`] for its
/// PCA, a second sums the edges in example order.
pub(crate) fn build_components(
    model: &RuntimeModel,
    chunk: &Chunk,
    tasks: &TaskStructure,
    spec: &GraphSpec,
    n: usize,
) -> Result<CircuitGraph> {
    let widths = model.widths();
    let last = widths.len() - 1;
    let ranges = || {
        (0..n)
            .step_by(EXAMPLE_CHUNK)
            .map(|s| s..(s + EXAMPLE_CHUNK).min(n))
    };
    let mut factors: Vec<Factor> = widths.iter().map(|&d| Factor::centred(d)).collect();
    for rows in ranges() {
        let hs = chunk(rows)?;
        for k in 1..last {
            factors[k].push(&hs[k]);
        }
    }
    // Basis per layer: rows of length d_k.
    let bases: Vec<Vec<Vec<f64>>> = widths
        .iter()
        .enumerate()
        .map(|(k, &d)| -> Result<Vec<Vec<f64>>> {
            if k == 0 || k == last {
                Ok((0..d)
                    .map(|u| (0..d).map(|v| if u == v { 1.0 } else { 0.0 }).collect())
                    .collect())
            } else {
                let pca = Pca::from_factor(&factors[k])?;
                Ok((0..spec.max_rois.min(d))
                    .map(|c| pca.component(c).to_vec())
                    .collect())
            }
        })
        .collect::<Result<_>>()?;
    drop(factors);
    let mut graph = DiGraph::new();
    let index: Vec<Vec<NodeIndex>> = bases
        .iter()
        .enumerate()
        .map(|(k, b)| {
            (0..b.len())
                .map(|c| {
                    let label = if k == 0 || k == last {
                        format!("h{k}:{c}")
                    } else {
                        format!("h{k}:PC{c}")
                    };
                    graph.add_node(Node {
                        layer: k,
                        label,
                        units: vec![],
                        community: 0,
                        task_share: vec![],
                        attribution: vec![],
                        attribution_signed: vec![],
                    })
                })
                .collect()
        })
        .collect();
    let mut sums: Vec<(Vec<f64>, Vec<f64>)> = (0..model.layers.len())
        .map(|l| {
            let e = bases[l].len() * bases[l + 1].len();
            (vec![0.0; e], vec![0.0; e])
        })
        .collect();
    for rows in ranges() {
        let hs = chunk(rows.clone())?;
        for (l, (sum, sum_sq)) in sums.iter_mut().enumerate() {
            edge_sums(model, l, &bases, &hs[l], rows.len(), sum, sum_sq);
        }
    }
    for (l, (sum, sum_sq)) in sums.iter().enumerate() {
        let (bi, bo) = (&bases[l], &bases[l + 1]);
        let nf = n as f64;
        for q in 0..bo.len() {
            for r in 0..bi.len() {
                let e = q * bi.len() + r;
                let mean = sum[e] / nf;
                graph.add_edge(
                    index[l][r],
                    index[l + 1][q],
                    Edge {
                        mean,
                        mean_abs: mean,
                        std: (sum_sq[e] / nf - mean * mean).max(0.0).sqrt(),
                        per_task: vec![],
                        per_task_signed: vec![],
                    },
                );
            }
        }
    }
    let comm = assign_communities(&mut graph, spec.seed)?;
    Ok(CircuitGraph {
        spec: spec.clone(),
        tasks: tasks.tasks.iter().map(|t| t.name.clone()).collect(),
        widths,
        examples: n,
        ig: None,
        graph,
        modularity: comm.modularity,
        communities: comm.count,
        activated_share: 1.0,
        clustering: vec![],
        intra: vec![],
        activated: vec![],
    })
}

/// Adds `n` examples' edges between layers `l` and `l + 1` (activations `h` of layer `l`) to
/// the running sums, example by example.
fn edge_sums(
    model: &RuntimeModel,
    l: usize,
    bases: &[Vec<Vec<f64>>],
    h: &[f64],
    n: usize,
    sum: &mut [f64],
    sum_sq: &mut [f64],
) {
    let layer = &model.layers[l];
    let (d_in, d_out) = (layer.d_in, layer.d_out);
    let (bi, bo) = (&bases[l], &bases[l + 1]);
    for i in 0..n {
        let a = &h[i * d_in..(i + 1) * d_in];
        let z = layer.pre_activation(a);
        // J p_a for each upstream basis vector, then project on each downstream one.
        let mut m = vec![0.0; bo.len() * bi.len()];
        for (ai, pa) in bi.iter().enumerate() {
            let jp: Vec<f64> = (0..d_out)
                .map(|j| {
                    layer.activation.derivative_f64(z[j])
                        * layer.weight[j * d_in..(j + 1) * d_in]
                            .iter()
                            .zip(pa)
                            .map(|(&w, p)| w as f64 * p)
                            .sum::<f64>()
                })
                .collect();
            for (bi_, pb) in bo.iter().enumerate() {
                m[bi_ * bi.len() + ai] = pb.iter().zip(&jp).map(|(p, v)| p * v).sum::<f64>().abs();
            }
        }
        for row in m.chunks_mut(bi.len()) {
            let total: f64 = row.iter().sum();
            if total > 0.0 {
                row.iter_mut().for_each(|v| *v /= total);
            }
        }
        for (e, v) in m.iter().enumerate() {
            sum[e] += v;
            sum_sq[e] += v * v;
        }
    }
}
