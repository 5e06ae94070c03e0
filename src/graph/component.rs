//! The component graph: principal components of each hidden layer as nodes, gradient flow
//! between them as edges. A read-only view: its nodes are never ablated.

use super::build::assign_communities;
use super::{CircuitGraph, Edge, GraphSpec, Node};
use crate::data::TaskStructure;
use crate::model::RuntimeModel;
use crate::Result;
use petgraph::graph::{DiGraph, NodeIndex};

/// The component graph: inputs, the top `max_rois` principal components of each hidden layer,
/// outputs; edge `a → b` is `|p_bᵀ J(x) p_a|` (`J` the adjacent Jacobian, `p` unit component
/// vectors or unit vectors for input and output neurons), normalised over `a` for each `b` and
/// averaged over examples.
pub(crate) fn build_components(
    model: &RuntimeModel,
    hs: &[Vec<f64>],
    tasks: &TaskStructure,
    spec: &GraphSpec,
    n: usize,
) -> Result<CircuitGraph> {
    use crate::numeric::linalg::Pca;
    let widths = model.widths();
    let last = widths.len() - 1;
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
                let pca = Pca::fit(&hs[k], n, d)?;
                Ok((0..spec.max_rois.min(d))
                    .map(|c| pca.component(c).to_vec())
                    .collect())
            }
        })
        .collect::<Result<_>>()?;
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
    for l in 0..model.layers.len() {
        let layer = &model.layers[l];
        let (d_in, d_out) = (layer.d_in, layer.d_out);
        let (bi, bo) = (&bases[l], &bases[l + 1]);
        let mut sum = vec![0.0; bo.len() * bi.len()];
        let mut sum_sq = sum.clone();
        for i in 0..n {
            let a = &hs[l][i * d_in..(i + 1) * d_in];
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
                    m[bi_ * bi.len() + ai] =
                        pb.iter().zip(&jp).map(|(p, v)| p * v).sum::<f64>().abs();
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
