//! Computational graphs of a network: nodes are neurons or ROIs (groups of functionally similar
//! neurons), edges are gradient flow or exact Integrated Gradients on edges, with communities.
//!
//! [`build`] turns a [`RuntimeModel`] and a data set into a [`CircuitGraph`]: a layered petgraph
//! `DiGraph` whose edges carry the attribution averaged over the examples (mean, mean of the
//! absolute value, spread, and per task). [`export`] writes it as versioned JSON, DOT and SVG and
//! reads JSON back. Graph building reads the model; it must never change weights or ablate
//! (that is evaluation's job).

pub mod community;
pub mod export;
pub mod ig;
pub mod roi;
pub mod timing;

use crate::data::{Dataset, TaskStructure};
use crate::model::RuntimeModel;
use crate::probe::jacobian::{output_jacobians, Reuse};
use crate::runlog::Event;
use crate::{invalid, Error, Result};
use ig::{edge_attributions_multi, Mode, Target};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Examples whose IG edge attributions are computed at once, in parallel.
const IG_CHUNK: usize = 256;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Neuron,
    Roi,
    /// The top principal components of each hidden layer's activations (inputs and outputs
    /// stay neurons): read-only views with gradient-flow edges; they are never ablated.
    Component,
}

/// What an edge measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Normalised adjacent-layer gradient flow: `|∂h_{l+1,j}/∂h_{l,i}|` divided by its sum over
    /// `i`, averaged over examples.
    Grad,
    /// Integrated Gradients on edges (see [`ig`]).
    Ig,
}

/// The IG baseline in each layer's space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    Zero,
    /// The layer's mean activation over the examples.
    Mean,
    /// Another example's activations (a seeded permutation of the examples).
    Resample,
}

/// What IG edges explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Each edge explains its downstream node's activation.
    Node,
    /// Each edge explains each task's outputs; the edge keeps one figure per task.
    Task,
}

/// How a graph is built; checked by [`GraphSpec::validate`] before any work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    pub nodes: NodeKind,
    pub edges: EdgeKind,
    pub baseline: Baseline,
    pub target: TargetKind,
    /// `0`: exact IG; `n > 0`: midpoint Riemann sum with `n` steps.
    pub riemann_steps: usize,
    /// Examples averaged over (the first ones of the data set).
    pub examples: usize,
    /// Examples used for ROI profiles.
    pub roi_examples: usize,
    pub max_rois: usize,
    pub seed: u64,
}

impl Default for GraphSpec {
    fn default() -> Self {
        GraphSpec {
            nodes: NodeKind::Neuron,
            edges: EdgeKind::Ig,
            baseline: Baseline::Zero,
            target: TargetKind::Task,
            riemann_steps: 0,
            examples: 500,
            roi_examples: 256,
            max_rois: 8,
            seed: 0,
        }
    }
}

impl GraphSpec {
    pub fn validate(&self, model: &RuntimeModel, data: &Dataset) -> Result<()> {
        if self.examples == 0 {
            invalid!("graph: --examples must be at least 1");
        }
        if self.nodes != NodeKind::Neuron && self.max_rois < 2 {
            invalid!("graph: --max-rois must be at least 2");
        }
        if self.nodes == NodeKind::Component && self.edges != EdgeKind::Grad {
            invalid!("graph: component nodes are read-only views of a layer, not units to attribute through; use --edges grad with --nodes component");
        }
        if data.n == 0 {
            return Err(Error::Data(format!(
                "graph: data set `{}` is empty",
                data.name
            )));
        }
        if data.d_in != model.d_in() {
            return Err(Error::Data(format!(
                "graph: data set `{}` has {} inputs per row, the model takes {}",
                data.name,
                data.d_in,
                model.d_in()
            )));
        }
        let smooth = model
            .layers
            .iter()
            .any(|l| l.activation == crate::model::Activation::Gelu);
        if self.edges == EdgeKind::Ig && self.riemann_steps == 0 && smooth {
            invalid!(
                "graph: exact IG needs a ReLU network; this one is smooth, pass --riemann-steps N"
            );
        }
        Ok(())
    }

    fn mode(&self) -> Mode {
        if self.riemann_steps == 0 {
            Mode::Exact
        } else {
            Mode::Riemann(self.riemann_steps)
        }
    }
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `h_layer`: 0 is the input, the last is the output.
    pub layer: usize,
    pub label: String,
    /// The neurons (units of `h_layer`) this node stands for.
    pub units: Vec<usize>,
    pub community: usize,
    /// For task targets: the share of the node's total |attribution| (in and out) per task.
    pub task_share: Vec<f64>,
}

/// An edge between consecutive layers, averaged over examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub mean: f64,
    pub mean_abs: f64,
    /// Standard deviation over examples of the per-example value.
    pub std: f64,
    /// Mean |attribution| per task (task targets only).
    pub per_task: Vec<f64>,
}

/// An intra-layer edge (gradient-flow graphs): how alike the gradients are that two nodes of
/// layer `layer` send back to the layer before, as the mean cosine over examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntraEdge {
    pub layer: usize,
    /// Node ids (as in the graph) of the two nodes.
    pub a: usize,
    pub b: usize,
    pub cosine: f64,
}

/// ROI clustering figures of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerClustering {
    pub layer: usize,
    pub sizes: Vec<usize>,
    pub silhouette: f64,
    pub dead: usize,
    pub criterion: String,
}

/// A layered computational graph with communities.
#[derive(Debug, Clone)]
pub struct CircuitGraph {
    pub spec: GraphSpec,
    pub tasks: Vec<String>,
    pub widths: Vec<usize>,
    pub graph: DiGraph<Node, Edge>,
    pub modularity: f64,
    pub communities: usize,
    /// Mean over examples of the share of edges with non-zero attribution for that example.
    pub activated_share: f64,
    pub clustering: Vec<LayerClustering>,
    /// Intra-layer edges (gradient-flow graphs only).
    pub intra: Vec<IntraEdge>,
    /// Per example, the edges with non-zero value for it: its activated subgraph (kept in
    /// memory, not in the JSON file).
    pub activated: Vec<Vec<u32>>,
}

impl CircuitGraph {
    /// The activated subgraph of example `i`: the edges with non-zero value for it.
    pub fn activated_subgraph(&self, i: usize) -> Vec<petgraph::graph::EdgeIndex> {
        self.activated.get(i).map_or_else(Vec::new, |v| {
            v.iter()
                .map(|&e| petgraph::graph::EdgeIndex::new(e as usize))
                .collect()
        })
    }

    /// Edges whose `mean_abs` is at least `threshold`, as a share of all edges.
    pub fn share_above(&self, threshold: f64) -> f64 {
        let n = self.graph.edge_count().max(1);
        self.graph
            .edge_weights()
            .filter(|e| e.mean_abs >= threshold)
            .count() as f64
            / n as f64
    }
}

/// The [`Event::GraphEdges`] of a graph: all nodes, the strongest edges.
pub fn graph_edges_event(g: &CircuitGraph) -> Event {
    use crate::runlog::events::{GraphEdgeRecord, GraphNodeRecord, GRAPH_EDGES_MAX};
    let nodes = g
        .graph
        .node_weights()
        .map(|n| GraphNodeRecord {
            layer: n.layer,
            label: n.label.clone(),
            community: n.community,
        })
        .collect();
    let mut edges: Vec<GraphEdgeRecord> = g
        .graph
        .edge_references()
        .map(|e| GraphEdgeRecord {
            from: e.source().index(),
            to: e.target().index(),
            mean: e.weight().mean,
            mean_abs: e.weight().mean_abs,
        })
        .collect();
    edges.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs));
    edges.truncate(GRAPH_EDGES_MAX);
    Event::GraphEdges {
        node_kind: format!("{:?}", g.spec.nodes).to_lowercase(),
        nodes,
        edges,
        total_edges: g.graph.edge_count(),
    }
}

/// Per-example activations `h_0..h_L` of `rows` (row-major per layer).
fn activations(model: &RuntimeModel, x: &[f64]) -> Result<Vec<Vec<f64>>> {
    let trace = model.trace(x)?;
    let mut hs = vec![x.to_vec()];
    hs.extend(trace.post);
    Ok(hs)
}

/// Per layer, the units of each node.
type Groups = Vec<Vec<Vec<usize>>>;

/// Groups of units per layer: singletons for neuron graphs and for the input and output layers.
fn groups(
    model: &RuntimeModel,
    hs: &[Vec<f64>],
    spec: &GraphSpec,
    n: usize,
) -> Result<(Groups, Vec<LayerClustering>)> {
    let widths = model.widths();
    let singletons = |d: usize| (0..d).map(|u| vec![u]).collect::<Vec<_>>();
    if spec.nodes == NodeKind::Neuron {
        return Ok((widths.iter().map(|&d| singletons(d)).collect(), vec![]));
    }
    // Profiles: gradient × activation of every output, on the first `roi_examples` examples.
    let m = spec.roi_examples.min(n).max(1);
    let trace = model.trace(&hs[0][..m * widths[0]])?;
    let jac = output_jacobians(model, &trace, Reuse::Patterns);
    let d_out = model.d_out();
    let mut out = vec![singletons(widths[0])];
    let mut stats = Vec::new();
    for (k, &d) in widths.iter().enumerate().skip(1).take(widths.len() - 2) {
        let mut profiles = vec![0.0; d * m * d_out];
        for i in 0..m {
            let block = jac.per_layer[k].of(i);
            for u in 0..d {
                let act = hs[k][i * d + u];
                for o in 0..d_out {
                    profiles[u * m * d_out + i * d_out + o] = block[o * d + u] * act;
                }
            }
        }
        let c = roi::cluster(&profiles, d, spec.max_rois)?;
        stats.push(LayerClustering {
            layer: k,
            sizes: c.groups.iter().map(Vec::len).collect(),
            silhouette: c.silhouette,
            dead: c.dead,
            criterion: c.criterion.clone(),
        });
        out.push(c.groups);
    }
    out.push(singletons(*widths.last().unwrap()));
    Ok((out, stats))
}

/// Leiden communities on the edges' mean |value|, written into every node.
fn assign_communities(
    graph: &mut DiGraph<Node, Edge>,
    seed: u64,
) -> Result<community::Communities> {
    let edges: Vec<(usize, usize, f64)> = graph
        .edge_indices()
        .map(|e| {
            let (a, b) = graph.edge_endpoints(e).expect("edge exists");
            (a.index(), b.index(), graph[e].mean_abs)
        })
        .collect();
    let comm = community::leiden(graph.node_count(), &edges, seed)?;
    for (i, node) in graph.node_weights_mut().enumerate() {
        node.community = comm.membership[i];
    }
    Ok(comm)
}

/// Builds the graph of `model` on the first `spec.examples` rows of `data`.
pub fn build(
    model: &RuntimeModel,
    data: &Dataset,
    tasks: &TaskStructure,
    spec: &GraphSpec,
) -> Result<CircuitGraph> {
    model.check()?;
    spec.validate(model, data)?;
    let n = spec.examples.min(data.n);
    let x: Vec<f64> = data.x[..n * data.d_in].iter().map(|&v| v as f64).collect();
    let hs = activations(model, &x)?;
    let widths = model.widths();
    if spec.nodes == NodeKind::Component {
        return build_components(model, &hs, tasks, spec, n);
    }
    let (groups, clustering) = groups(model, &hs, spec, n)?;
    let targets: Vec<Target> = match spec.target {
        TargetKind::Node => vec![Target::Node],
        TargetKind::Task => tasks
            .tasks
            .iter()
            .map(|t| Target::Outputs(t.outputs.clone()))
            .collect(),
    };
    let n_t = if spec.edges == EdgeKind::Ig && spec.target == TargetKind::Task {
        targets.len()
    } else {
        0
    };
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed));

    let mut graph = DiGraph::new();
    let mut index: Vec<Vec<NodeIndex>> = Vec::new();
    for (k, layer_groups) in groups.iter().enumerate() {
        index.push(
            layer_groups
                .iter()
                .enumerate()
                .map(|(r, units)| {
                    let label = match (spec.nodes, units.len()) {
                        (NodeKind::Roi, _) if k > 0 && k + 1 < widths.len() => {
                            format!("h{k}:R{r} ({} units)", units.len())
                        }
                        _ => format!("h{k}:{}", units[0]),
                    };
                    graph.add_node(Node {
                        layer: k,
                        label,
                        units: units.clone(),
                        community: 0,
                        task_share: vec![],
                    })
                })
                .collect(),
        );
    }
    let mut activated: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut intra = Vec::new();
    let mut edge_total = 0usize;
    for l in 0..model.layers.len() {
        let (d_in, d_out) = (widths[l], widths[l + 1]);
        let (gi, go) = (&groups[l], &groups[l + 1]);
        let (ri, ro) = (gi.len(), go.len());
        // Running sums over examples for every group edge (row q of the downstream groups).
        let (mut sum, mut sum_sq, mut sum_abs) =
            (vec![0.0; ro * ri], vec![0.0; ro * ri], vec![0.0; ro * ri]);
        let mut task_abs = vec![vec![0.0; ro * ri]; n_t];
        let base_mean: Vec<f64> = crate::numeric::linalg::column_means(&hs[l], n, d_in);
        let mut group_of_in = vec![0; d_in];
        gi.iter()
            .enumerate()
            .for_each(|(r, us)| us.iter().for_each(|&u| group_of_in[u] = r));
        let mut intra_sum = vec![0.0; ro * ro];
        let mut group_of_out = vec![0; d_out];
        go.iter()
            .enumerate()
            .for_each(|(r, us)| us.iter().for_each(|&u| group_of_out[u] = r));
        // IG is computed for a chunk of examples at a time in parallel, then summed in example
        // order, so the graph is the same whatever the thread count.
        let mut chunk: Vec<Vec<Vec<f64>>> = Vec::new();
        for i in 0..n {
            let a = &hs[l][i * d_in..(i + 1) * d_in];
            let per_target: Vec<Vec<f64>> = match spec.edges {
                EdgeKind::Ig => {
                    if i % IG_CHUNK == 0 {
                        let rows = i..(i + IG_CHUNK).min(n);
                        let base = |r: usize| -> Vec<f64> {
                            match spec.baseline {
                                Baseline::Zero => vec![0.0; d_in],
                                Baseline::Mean => base_mean.clone(),
                                Baseline::Resample => {
                                    hs[l][perm[r] * d_in..(perm[r] + 1) * d_in].to_vec()
                                }
                            }
                        };
                        chunk = rows
                            .into_par_iter()
                            .map(|r| {
                                let a = &hs[l][r * d_in..(r + 1) * d_in];
                                edge_attributions_multi(
                                    model,
                                    l,
                                    a,
                                    &base(r),
                                    &targets,
                                    spec.mode(),
                                )
                            })
                            .collect::<Result<_>>()?;
                    }
                    std::mem::take(&mut chunk[i % IG_CHUNK])
                }
                EdgeKind::Grad => {
                    let layer = &model.layers[l];
                    let z = layer.pre_activation(a);
                    // Intra-layer edges: cosine between the gradients two downstream nodes send
                    // back to h_l.
                    let mut rows = vec![0.0; ro * d_in];
                    for j in 0..d_out {
                        let s = layer.activation.derivative_f64(z[j]);
                        let q = group_of_out[j];
                        rows[q * d_in..(q + 1) * d_in]
                            .iter_mut()
                            .zip(&layer.weight[j * d_in..(j + 1) * d_in])
                            .for_each(|(r, &w)| *r += s * w as f64);
                    }
                    let norms: Vec<f64> = rows
                        .chunks(d_in)
                        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
                        .collect();
                    for q in 0..ro {
                        for q2 in q + 1..ro {
                            if norms[q] > 0.0 && norms[q2] > 0.0 {
                                let dot: f64 = rows[q * d_in..(q + 1) * d_in]
                                    .iter()
                                    .zip(&rows[q2 * d_in..(q2 + 1) * d_in])
                                    .map(|(a, b)| a * b)
                                    .sum();
                                intra_sum[q * ro + q2] += dot / (norms[q] * norms[q2]);
                            }
                        }
                    }
                    let mut m = vec![0.0; d_out * d_in];
                    for j in 0..d_out {
                        let s = layer.activation.derivative_f64(z[j]);
                        let row: Vec<f64> = layer.weight[j * d_in..(j + 1) * d_in]
                            .iter()
                            .map(|&w| (s * w as f64).abs())
                            .collect();
                        let total: f64 = row.iter().sum();
                        if total > 0.0 {
                            m[j * d_in..(j + 1) * d_in]
                                .iter_mut()
                                .zip(&row)
                                .for_each(|(v, r)| *v = r / total);
                        }
                    }
                    vec![m]
                }
            };
            // Aggregate to groups; the per-example edge value is the sum over targets.
            let mut agg = vec![0.0; ro * ri];
            let mut agg_t = vec![vec![0.0; ro * ri]; n_t];
            for (t, ea) in per_target.iter().enumerate() {
                for j in 0..d_out {
                    for u in 0..d_in {
                        let v = ea[j * d_in + u];
                        if v != 0.0 {
                            let e = group_of_out[j] * ri + group_of_in[u];
                            agg[e] += v;
                            if n_t > 0 {
                                agg_t[t][e] += v;
                            }
                        }
                    }
                }
            }
            for e in 0..ro * ri {
                sum[e] += agg[e];
                sum_sq[e] += agg[e] * agg[e];
                sum_abs[e] += agg[e].abs();
                if agg[e].abs() > 1e-12 {
                    activated[i].push((edge_total + e) as u32);
                }
                for t in 0..n_t {
                    task_abs[t][e] += agg_t[t][e].abs();
                }
            }
        }
        edge_total += ro * ri;
        let nf = n as f64;
        if spec.edges == EdgeKind::Grad {
            for q in 0..ro {
                for q2 in q + 1..ro {
                    intra.push(IntraEdge {
                        layer: l + 1,
                        a: index[l + 1][q].index(),
                        b: index[l + 1][q2].index(),
                        cosine: intra_sum[q * ro + q2] / nf,
                    });
                }
            }
        }
        for q in 0..ro {
            for r in 0..ri {
                let e = q * ri + r;
                let mean = sum[e] / nf;
                let var = (sum_sq[e] / nf - mean * mean).max(0.0);
                let per_task = (0..n_t).map(|t| task_abs[t][e] / nf).collect();
                graph.add_edge(
                    index[l][r],
                    index[l + 1][q],
                    Edge {
                        mean,
                        mean_abs: sum_abs[e] / nf,
                        std: var.sqrt(),
                        per_task,
                    },
                );
            }
        }
    }
    // Task shares per node, from the edges touching it.
    if n_t > 0 {
        for node in graph.node_indices().collect::<Vec<_>>() {
            let mut share = vec![0.0; n_t];
            for e in graph
                .edges_directed(node, petgraph::Direction::Incoming)
                .chain(graph.edges_directed(node, petgraph::Direction::Outgoing))
            {
                share
                    .iter_mut()
                    .zip(&e.weight().per_task)
                    .for_each(|(s, v)| *s += v);
            }
            let total: f64 = share.iter().sum();
            if total > 0.0 {
                share.iter_mut().for_each(|s| *s /= total);
            }
            graph[node].task_share = share;
        }
    }
    let comm = assign_communities(&mut graph, spec.seed)?;
    let activated_share = activated
        .iter()
        .map(|a| a.len() as f64 / edge_total.max(1) as f64)
        .sum::<f64>()
        / n.max(1) as f64;
    Ok(CircuitGraph {
        spec: spec.clone(),
        tasks: tasks.tasks.iter().map(|t| t.name.clone()).collect(),
        widths,
        graph,
        modularity: comm.modularity,
        communities: comm.count,
        activated_share,
        clustering,
        intra,
        activated,
    })
}

/// The component graph: inputs, the top `max_rois` principal components of each hidden layer,
/// outputs; edge `a → b` is `|p_bᵀ J(x) p_a|` (`J` the adjacent Jacobian, `p` unit component
/// vectors or unit vectors for input and output neurons), normalised over `a` for each `b` and
/// averaged over examples.
fn build_components(
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
        graph,
        modularity: comm.modularity,
        communities: comm.count,
        activated_share: 1.0,
        clustering: vec![],
        intra: vec![],
        activated: vec![],
    })
}

/// Builds the graph of a finished run on its validation split, writes `graph/graph.json`,
/// `graph/graph.dot`, `graph/graph.svg` (at most `top` edges each; all when `None`) and the
/// tables `graph_nodes` and `graph_edges`, and logs a `graph` segment (`clustering_summary` per
/// ROI layer, `graph_summary`).
pub fn graph_run(
    root: &std::path::Path,
    spec: &GraphSpec,
    top: Option<usize>,
) -> Result<CircuitGraph> {
    use crate::runlog::{segment, Event, RunDir};
    let run = RunDir::open(root)?;
    let (info, model, data) = crate::model::train::load_trained(&run)?;
    spec.validate(&model, &data.val)?;
    segment(
        &run,
        "graph",
        Some(info.preset.name()),
        serde_json::to_value(spec).expect("serialises"),
        |log| {
            let g = build(&model, &data.val, &data.tasks, spec)?;
            let dir = root.join("graph");
            export::write_json(&g, &dir.join("graph.json"), top)?;
            export::write_dot(&g, &dir.join("graph.dot"), top)?;
            export::write_svg(&g, &dir.join("graph.svg"), top)?;
            let (mut nodes, mut edges) = tables(&g, top)?;
            run.write_table("graph_nodes", &mut nodes)?;
            run.write_table("graph_edges", &mut edges)?;
            if !g.intra.is_empty() {
                use polars::prelude::{Column, DataFrame};
                let mut intra = DataFrame::new(vec![
                    Column::new(
                        "layer".into(),
                        g.intra.iter().map(|e| e.layer as u64).collect::<Vec<_>>(),
                    ),
                    Column::new(
                        "a".into(),
                        g.intra.iter().map(|e| e.a as u64).collect::<Vec<_>>(),
                    ),
                    Column::new(
                        "b".into(),
                        g.intra.iter().map(|e| e.b as u64).collect::<Vec<_>>(),
                    ),
                    Column::new(
                        "cosine".into(),
                        g.intra.iter().map(|e| e.cosine).collect::<Vec<_>>(),
                    ),
                ])
                .map_err(|e| Error::Data(format!("graph table: {e}")))?;
                run.write_table("graph_intra", &mut intra)?;
            }
            for c in &g.clustering {
                log.emit(
                    None,
                    Event::ClusteringSummary {
                        layer: c.layer,
                        clusters: c.sizes.len(),
                        sizes: c.sizes.clone(),
                        criterion: c.criterion.clone(),
                        score: c.silhouette,
                    },
                )?;
            }
            let n = g.graph.node_count();
            log.emit(
                None,
                Event::GraphSummary {
                    nodes: n,
                    edges: g.graph.edge_count(),
                    density: g.share_above(1e-12),
                    communities: g.communities,
                    modularity: g.modularity,
                    node_kind: format!("{:?}", spec.nodes).to_lowercase(),
                    edge_kind: format!("{:?}", spec.edges).to_lowercase(),
                },
            )?;
            log.emit(None, graph_edges_event(&g))?;
            Ok(g)
        },
    )
}

/// Nodes and (the `top` strongest) edges as polars tables.
pub fn tables(
    g: &CircuitGraph,
    top: Option<usize>,
) -> Result<(polars::prelude::DataFrame, polars::prelude::DataFrame)> {
    use polars::prelude::{Column, DataFrame};
    let err = |e: polars::prelude::PolarsError| Error::Data(format!("graph table: {e}"));
    let nodes: Vec<&Node> = g.graph.node_weights().collect();
    let mut cols = vec![
        Column::new("id".into(), (0..nodes.len() as u64).collect::<Vec<_>>()),
        Column::new(
            "layer".into(),
            nodes.iter().map(|n| n.layer as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "label".into(),
            nodes.iter().map(|n| n.label.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "units".into(),
            nodes
                .iter()
                .map(|n| n.units.len() as u64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "community".into(),
            nodes.iter().map(|n| n.community as u64).collect::<Vec<_>>(),
        ),
    ];
    for (t, name) in g.tasks.iter().enumerate() {
        cols.push(Column::new(
            format!("share_{name}").into(),
            nodes
                .iter()
                .map(|n| n.task_share.get(t).copied().unwrap_or(0.0))
                .collect::<Vec<_>>(),
        ));
    }
    let nodes = DataFrame::new(cols).map_err(err)?;
    let e = export::top_edges(g, top);
    let mut cols = vec![
        Column::new(
            "source".into(),
            e.iter().map(|x| x.0 as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "target".into(),
            e.iter().map(|x| x.1 as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "layer".into(),
            e.iter()
                .map(|x| g.graph[NodeIndex::new(x.0)].layer as u64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "mean".into(),
            e.iter().map(|x| x.2.mean).collect::<Vec<_>>(),
        ),
        Column::new(
            "mean_abs".into(),
            e.iter().map(|x| x.2.mean_abs).collect::<Vec<_>>(),
        ),
        Column::new("std".into(), e.iter().map(|x| x.2.std).collect::<Vec<_>>()),
    ];
    for (t, name) in g.tasks.iter().enumerate() {
        if e.first().is_some_and(|x| x.2.per_task.len() > t) {
            cols.push(Column::new(
                format!("abs_{name}").into(),
                e.iter().map(|x| x.2.per_task[t]).collect::<Vec<_>>(),
            ));
        }
    }
    Ok((nodes, DataFrame::new(cols).map_err(err)?))
}

/// A few lines a person reads at a terminal: size, sparsity, communities, strongest edges.
pub fn summary(g: &CircuitGraph, threshold: f64, top: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let max = export::top_edges(g, Some(1))
        .first()
        .map_or(0.0, |e| e.2.mean_abs);
    let _ = writeln!(
        s,
        "graph: {} nodes ({:?}), {} edges ({:?}, baseline {:?}, target {:?}, {} examples)",
        g.graph.node_count(),
        g.spec.nodes,
        g.graph.edge_count(),
        g.spec.edges,
        g.spec.baseline,
        g.spec.target,
        g.spec.examples
    );
    let _ = writeln!(s, "sparsity: {:.1}% of edges carry at least {threshold} x the strongest edge's mean |value| ({max:.4e})", 100.0 * g.share_above(threshold * max));
    let _ = writeln!(
        s,
        "activated subgraph: an example uses {:.1}% of the edges on average",
        100.0 * g.activated_share
    );
    let _ = writeln!(
        s,
        "communities: {} (modularity {:.4})",
        g.communities, g.modularity
    );
    for c in &g.clustering {
        let _ = writeln!(
            s,
            "ROIs of h{}: sizes {:?}, silhouette {:.3}, {} dead",
            c.layer, c.sizes, c.silhouette, c.dead
        );
    }
    let _ = writeln!(s, "strongest edges:");
    for (a, b, e) in export::top_edges(g, Some(top)) {
        let _ = writeln!(
            s,
            "  {:<22} -> {:<22} mean {:+.4e}  |mean| {:.4e}  sd {:.2e}",
            g.graph[NodeIndex::new(a)].label,
            g.graph[NodeIndex::new(b)].label,
            e.mean,
            e.mean_abs,
            e.std
        );
    }
    s
}
