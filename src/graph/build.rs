//! Building a neuron or ROI graph: IG (or gradient-flow) edges between consecutive layers,
//! averaged over examples, node task shares, Leiden communities.

use super::ig::{edge_attributions_multi, target_value, Attributor, Mode, Target};
use super::spec::{AUTO_RIEMANN_MAX_STEPS, AUTO_RIEMANN_TOL};
use super::{
    community, roi, Baseline, CircuitGraph, Edge, EdgeKind, GraphSpec, IgSummary, IntraEdge,
    LayerClustering, Node, NodeKind, TargetKind,
};
use crate::data::{Dataset, TaskStructure};
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::probe::jacobian::{output_jacobians, Reuse};
use crate::Result;
use petgraph::graph::{DiGraph, NodeIndex};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;

/// Examples whose IG edge attributions are computed at once, in parallel.
const IG_CHUNK: usize = 256;

/// Attribution values (f64) a batch of examples computed in parallel may hold (128 MB): a
/// layer pair whose examples' attributions are larger (every target's `d_out x d_in` matrix)
/// is attributed fewer examples at a time, a power of two below [`IG_CHUNK`].
const IG_BATCH_VALUES: usize = 1 << 24;

/// Examples whose activations are held at once: the graph streams over the examples in
/// chunks of this many (a multiple of `IG_CHUNK`) and merges running sums, so its memory is
/// set by the model and the chunk, never by the number of examples.
pub const EXAMPLE_CHUNK: usize = 4096;

/// Examples whose activated subgraph ([`CircuitGraph::activated`]) is kept: the first this
/// many, or fewer on a large graph (at most [`ACTIVATED_BUDGET`] edge ids in all). The
/// activated share is still averaged over every example.
pub const ACTIVATED_KEPT: usize = 1000;

/// Edge ids the kept activated subgraphs may hold together (64 MB): a graph of `E` edges keeps
/// `min(ACTIVATED_KEPT, ACTIVATED_BUDGET / E)` examples' subgraphs (25 for the 664,576 edges
/// of a 784→512→512→2 network), so the graph's memory stays bounded by the model.
pub const ACTIVATED_BUDGET: usize = 1 << 24;

/// Rows `rows` of `data`'s inputs as f64.
fn rows_f64(data: &Dataset, rows: std::ops::Range<usize>) -> Vec<f64> {
    crate::model::view::widen(&data.x[rows.start * data.d_in..rows.end * data.d_in])
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

/// [`community::stable`] communities on the edges' mean |value|, written into every node.
pub(crate) fn assign_communities(
    graph: &mut DiGraph<Node, Edge>,
    seed: u64,
) -> Result<community::Communities> {
    let edges = super::weighted_edges(graph);
    let comm = community::stable(
        graph.node_count(),
        &edges,
        &super::node_layers(graph),
        seed,
        1.0,
    )?;
    for (i, node) in graph.node_weights_mut().enumerate() {
        node.community = comm.membership[i];
    }
    Ok(comm)
}

/// Builds the graph of `model` on the first `spec.examples` rows of `data`, streaming over
/// the examples [`EXAMPLE_CHUNK`] at a time.
pub fn build(
    model: &RuntimeModel,
    data: &Dataset,
    tasks: &TaskStructure,
    spec: &Valid<GraphSpec>,
) -> Result<CircuitGraph> {
    model.check()?;
    spec.fits(model, data)?;
    let n = spec.examples.min(data.n);
    let widths = model.widths();
    if spec.nodes == NodeKind::Component {
        let chunk = |rows: std::ops::Range<usize>| activations(model, &rows_f64(data, rows));
        return super::component::build_components(model, &chunk, tasks, spec, n);
    }
    let (groups, clustering) = if spec.nodes == NodeKind::Roi {
        let m = spec.roi_examples.min(n);
        groups(model, &activations(model, &rows_f64(data, 0..m))?, spec, m)?
    } else {
        groups(model, &[], spec, n)?
    };
    let means = if spec.edges == EdgeKind::Ig && spec.baseline == Baseline::Mean {
        model.mean_activations(n, &|rows| rows_f64(data, rows))?
    } else {
        vec![]
    };
    let resample = spec.edges == EdgeKind::Ig && spec.baseline == Baseline::Resample;
    let n_t = if spec.edges == EdgeKind::Ig && spec.target == TargetKind::Task {
        tasks.tasks.len()
    } else {
        0
    };
    // What each example's IG explains: each task's outputs, except that a classifier's one
    // task (its labels cover its outputs) explains the correct class's logit — a softmax
    // ignores the sum of all logits, which is what the task's outputs would add up to.
    let labels = data.labels.as_deref();
    let targets_of = |i: usize| -> Vec<Target> {
        match spec.target {
            TargetKind::Node => vec![Target::Node],
            TargetKind::Task => tasks
                .tasks
                .iter()
                .map(|t| match labels.map(|l| l[i]) {
                    Some(label) if t.outputs.contains(&label) => Target::Outputs(vec![label]),
                    _ => Target::Outputs(t.outputs.clone()),
                })
                .collect(),
        }
    };
    let mode = spec.mode_for(model);
    // Automatic Riemann sums double their steps, per example, until every target adds up.
    let adaptive = spec.riemann_steps == 0 && matches!(mode, Mode::Riemann(_));
    let mut steps_used = (usize::MAX, 0usize);
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
                        attribution: vec![],
                        attribution_signed: vec![],
                    })
                })
                .collect(),
        );
    }
    let all_edges: usize = index.windows(2).map(|w| w[0].len() * w[1].len()).sum();
    let kept = n
        .min(ACTIVATED_KEPT)
        .min(ACTIVATED_BUDGET / all_edges.max(1));
    let mut activated: Vec<Vec<u32>> = vec![Vec::new(); kept];
    let mut activated_count = 0usize;
    let mut intra = Vec::new();
    let mut edge_total = 0usize;
    // Per layer, per node, per task: Σ over examples of |node IG| and of node IG.
    let mut node_abs: Vec<Vec<Vec<f64>>> = groups
        .iter()
        .map(|g| vec![vec![0.0; n_t]; g.len()])
        .collect();
    let mut node_signed = node_abs.clone();
    let (mut max_error, mut max_delta) = (0.0f64, 0.0f64);
    let last_layer = model.layers.len() - 1;
    for l in 0..model.layers.len() {
        let (d_in, d_out) = (widths[l], widths[l + 1]);
        let (gi, go) = (&groups[l], &groups[l + 1]);
        let (ri, ro) = (gi.len(), go.len());
        // Running sums over examples for every group edge (row q of the downstream groups).
        let (mut sum, mut sum_sq, mut sum_abs) =
            (vec![0.0; ro * ri], vec![0.0; ro * ri], vec![0.0; ro * ri]);
        let mut task_abs = vec![vec![0.0; ro * ri]; n_t];
        let mut task_signed = vec![vec![0.0; ro * ri]; n_t];
        let group_of_in = group_of(gi, d_in);
        let group_of_out = group_of(go, d_out);
        let mut intra_sum = vec![0.0; ro * ro];
        let per_example = d_out * d_in * n_t.max(1);
        let batch = (IG_BATCH_VALUES / per_example.max(1)).clamp(1, IG_CHUNK);
        let batch = 1usize << batch.ilog2();
        // IG is computed for a chunk of examples at a time in parallel, then summed in example
        // order, so the graph is the same whatever the thread count. Each example also gives
        // its completeness error per task: |Σ edges − (T(a) − T(baseline))|.
        let mut chunk: Vec<Attributed> = Vec::new();
        // Layer l's activations of the current chunk of examples (from `from`), and for the
        // resample baseline those of the examples each is compared with: one forward pass per
        // example and layer pair, against the tens to hundreds the path walk runs per example.
        let (mut hl, mut hb, mut from) = (Vec::new(), Vec::new(), 0);
        // Set up once per layer pair (the exact walk's weights in f64).
        let ig = match spec.edges {
            EdgeKind::Ig => Some(Attributor::new(model, l, mode)?),
            EdgeKind::Grad => None,
        };
        for i in 0..n {
            if i % EXAMPLE_CHUNK == 0 {
                let rows = i..(i + EXAMPLE_CHUNK).min(n);
                from = i;
                hl = activations(model, &rows_f64(data, rows.clone()))?.swap_remove(l);
                if resample {
                    let x: Vec<f64> = rows
                        .flat_map(|r| rows_f64(data, perm[r]..perm[r] + 1))
                        .collect();
                    hb = activations(model, &x)?.swap_remove(l);
                }
            }
            let a = &hl[(i - from) * d_in..(i - from + 1) * d_in];
            let per_target: Vec<Vec<f64>> = match spec.edges {
                EdgeKind::Ig => {
                    if i % batch == 0 {
                        let rows = i..(i + batch).min(n);
                        let base = |r: usize| -> Vec<f64> {
                            match spec.baseline {
                                Baseline::Zero => vec![0.0; d_in],
                                Baseline::Mean => means[l].clone(),
                                Baseline::Resample => {
                                    hb[(r - from) * d_in..(r - from + 1) * d_in].to_vec()
                                }
                            }
                        };
                        chunk = rows
                            .into_par_iter()
                            .map(|r| {
                                let a = &hl[(r - from) * d_in..(r - from + 1) * d_in];
                                let (b, targets) = (base(r), targets_of(r));
                                let (first, mut mode) = (mode, mode);
                                loop {
                                    let ea = match &ig {
                                        Some(ig) if mode == first => {
                                            ig.edge_attributions(a, &b, &targets)?
                                        }
                                        _ => edge_attributions_multi(
                                            model, l, a, &b, &targets, mode,
                                        )?,
                                    };
                                    let complete = if n_t > 0 {
                                        completeness(model, l, (a, &b), &targets, &ea)
                                    } else {
                                        vec![]
                                    };
                                    match mode {
                                        Mode::Riemann(k)
                                            if adaptive
                                                && k < AUTO_RIEMANN_MAX_STEPS
                                                && complete.iter().any(|&(err, delta)| {
                                                    err > AUTO_RIEMANN_TOL * delta.max(1e-3)
                                                }) =>
                                        {
                                            mode = Mode::Riemann(2 * k)
                                        }
                                        _ => return Ok((ea, complete, mode)),
                                    }
                                }
                            })
                            .collect::<Result<_>>()?;
                    }
                    let (ea, complete, used) =
                        std::mem::replace(&mut chunk[i % batch], (vec![], vec![], mode));
                    if let Mode::Riemann(k) = used {
                        steps_used = (steps_used.0.min(k), steps_used.1.max(k));
                    }
                    for (err, delta) in complete {
                        max_error = max_error.max(err);
                        max_delta = max_delta.max(delta);
                    }
                    ea
                }
                EdgeKind::Grad => {
                    vec![gradient_flow(
                        model,
                        l,
                        a,
                        &group_of_out,
                        ro,
                        &mut intra_sum,
                    )]
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
                    activated_count += 1;
                    if i < kept {
                        activated[i].push((edge_total + e) as u32);
                    }
                }
            }
            for t in 0..n_t {
                let at = &agg_t[t];
                for e in 0..ro * ri {
                    task_abs[t][e] += at[e].abs();
                    task_signed[t][e] += at[e];
                }
                // A node's IG is the signed sum of its outgoing edges (incoming for outputs).
                for r in 0..ri {
                    let v: f64 = (0..ro).map(|q| at[q * ri + r]).sum();
                    node_abs[l][r][t] += v.abs();
                    node_signed[l][r][t] += v;
                }
                if l == last_layer {
                    for q in 0..ro {
                        let v: f64 = at[q * ri..(q + 1) * ri].iter().sum();
                        node_abs[l + 1][q][t] += v.abs();
                        node_signed[l + 1][q][t] += v;
                    }
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
                graph.add_edge(
                    index[l][r],
                    index[l + 1][q],
                    Edge {
                        mean,
                        mean_abs: sum_abs[e] / nf,
                        std: var.sqrt(),
                        per_task: (0..n_t).map(|t| task_abs[t][e] / nf).collect(),
                        per_task_signed: (0..n_t).map(|t| task_signed[t][e] / nf).collect(),
                    },
                );
            }
        }
    }
    // Task shares per node, from the edges touching it; node IG per task.
    if n_t > 0 {
        let nf = n as f64;
        for (k, layer) in index.iter().enumerate() {
            for (r, &node) in layer.iter().enumerate() {
                graph[node].attribution = node_abs[k][r].iter().map(|v| v / nf).collect();
                graph[node].attribution_signed = node_signed[k][r].iter().map(|v| v / nf).collect();
            }
        }
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
    let ig = (n_t > 0).then(|| IgSummary {
        mode: match mode {
            Mode::Exact => "exact".into(),
            Mode::Riemann(_) if adaptive => {
                let (lo, hi) = steps_used;
                let range = if lo == hi {
                    format!("{lo}")
                } else {
                    format!("{lo}-{hi}")
                };
                format!("riemann {range} (automatic)")
            }
            Mode::Riemann(k) => format!("riemann {k}"),
        },
        max_error,
        max_delta,
    });
    let comm = assign_communities(&mut graph, spec.seed)?;
    let activated_share = activated_count as f64 / edge_total.max(1) as f64 / n.max(1) as f64;
    Ok(CircuitGraph {
        spec: GraphSpec::clone(spec),
        tasks: tasks.tasks.iter().map(|t| t.name.clone()).collect(),
        widths,
        examples: n,
        ig,
        graph,
        modularity: comm.modularity,
        communities: comm.count,
        activated_share,
        clustering,
        intra,
        activated,
    })
}

/// One example's edge attributions per target, per target its completeness `(|Σ − ΔT|, |ΔT|)`,
/// and the IG mode it used.
type Attributed = (Vec<Vec<f64>>, Vec<(f64, f64)>, Mode);

/// For each unit of a layer, the node (group) it belongs to.
fn group_of(groups: &[Vec<usize>], d: usize) -> Vec<usize> {
    let mut of = vec![0; d];
    groups
        .iter()
        .enumerate()
        .for_each(|(r, us)| us.iter().for_each(|&u| of[u] = r));
    of
}

/// Per target: (|Σ of the layer's edge attributions − (T(a) − T(base))|, |T(a) − T(base)|).
fn completeness(
    model: &RuntimeModel,
    l: usize,
    (a, base): (&[f64], &[f64]),
    targets: &[Target],
    ea: &[Vec<f64>],
) -> Vec<(f64, f64)> {
    targets
        .iter()
        .zip(ea)
        .map(|(t, e)| {
            let delta: f64 = target_value(model, l, a, t).iter().sum::<f64>()
                - target_value(model, l, base, t).iter().sum::<f64>();
            ((e.iter().sum::<f64>() - delta).abs(), delta.abs())
        })
        .collect()
}

/// Normalised adjacent-layer gradient flow of one example into `h_{l+1}` (`d_out x d_in`),
/// adding the intra-layer cosines of the downstream groups into `intra_sum`.
fn gradient_flow(
    model: &RuntimeModel,
    l: usize,
    a: &[f64],
    group_of_out: &[usize],
    ro: usize,
    intra_sum: &mut [f64],
) -> Vec<f64> {
    let layer = &model.layers[l];
    let (d_in, d_out) = (layer.d_in, layer.d_out);
    let z = layer.pre_activation(a);
    // Intra-layer edges: cosine between the gradients two downstream nodes send back to h_l.
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
    m
}
