//! Node circuits: the discovery methods of [`super::discover`](mod@super::discover) for neurons, each kept or
//! ablated with all its edges (its activation replaced by its ablation baseline wherever it is
//! read). Scores are per layer input (`[layer][unit]`, layer 0 the inputs, never ablated). It
//! must never change a model's weights.

use super::ablation::{forward_ablated, Baselines};
use super::discover::{
    gradients, mean_mask, metric, reference, with_ties, DiscoverOptions, Method,
};
use super::faithfulness::{hidden_units, node_mask};
use crate::graph::CircuitGraph;
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::Result;

/// Per hidden neuron, `opts.method`'s score (higher kept first).
pub fn discover_nodes(
    model: &RuntimeModel,
    g: &CircuitGraph,
    x: &[f64],
    base: &Baselines,
    opts: &Valid<DiscoverOptions>,
) -> Result<Vec<Vec<f64>>> {
    let ig = node_ig(model, g);
    Ok(match opts.method {
        Method::Ig => ig,
        Method::Eap => node_eap(model, x, base, 0)?,
        Method::EapIg => node_eap(model, x, base, opts.steps)?,
        Method::Acdc => with_ties(acdc_nodes(model, x, base, &opts.taus)?, &ig),
        Method::Mask => {
            // Per-neuron masks are shared by the neuron's edges: read one (its first edge).
            let rungs = super::mask::masks(model, x, base, opts, true)?
                .into_iter()
                .map(|m| {
                    (0..model.layers.len())
                        .map(|l| {
                            let d = model.layers[l].d_in;
                            (0..d).map(|u| if l == 0 { 1.0 } else { m[l][u] }).collect()
                        })
                        .collect()
                })
                .collect();
            with_ties(mean_mask(rungs), &ig)
        }
    })
}

fn zeros(model: &RuntimeModel) -> Vec<Vec<f64>> {
    model.layers.iter().map(|l| vec![0.0; l.d_in]).collect()
}

/// Each hidden neuron's own IG (the graph node's attribution, summed over tasks).
fn node_ig(model: &RuntimeModel, g: &CircuitGraph) -> Vec<Vec<f64>> {
    let mut s = zeros(model);
    for n in g.graph.node_weights() {
        if n.layer >= 1 && n.layer < model.layers.len() {
            s[n.layer][n.units[0]] = n.attribution.iter().sum();
        }
    }
    s
}

/// Node EAP: the mean over examples of `Σ_o |∂y_o/∂h_u · (h_u − h'_u)|`.
fn node_eap(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let n = model.check_input(x)?;
    let d_out = model.d_out();
    let grads = gradients(model, x, base, steps)?;
    let mut s = zeros(model);
    for (l, layer) in model.layers.iter().enumerate().skip(1) {
        let (dl, dl1) = (layer.d_in, layer.d_out);
        let b = base.layer(l);
        for r in 0..n {
            for u in 0..dl {
                let delta = grads.acts[l][r * dl + u] - b[r * dl + u];
                let mut sum = 0.0;
                for o in 0..d_out {
                    // ∂y_o/∂h_u = Σ_j ∂y_o/∂z_j · w_ju.
                    let dy: f64 = (0..dl1)
                        .map(|j| {
                            grads.dz[l][(r * d_out + o) * dl1 + j] * layer.weight[j * dl + u] as f64
                        })
                        .sum();
                    sum += (dy * delta).abs();
                }
                s[l][u] += sum / n as f64;
            }
        }
    }
    Ok(s)
}

/// ACDC over neurons: from the last hidden layer back, a neuron is ablated for good when that
/// raises the metric by less than `τ` of the fully ablated model's; per neuron, the number of
/// thresholds whose circuit keeps it.
fn acdc_nodes(
    model: &RuntimeModel,
    x: &[f64],
    base: &Baselines,
    taus: &[f64],
) -> Result<Vec<Vec<f64>>> {
    let (full, none) = reference(model, x, base)?;
    let mut counts = zeros(model);
    let order: Vec<(usize, usize)> = hidden_units(model).into_iter().rev().collect();
    for &tau in taus {
        let mut kept = order.clone();
        let mut current = 0.0;
        for node in &order {
            let trial: Vec<(usize, usize)> = kept.iter().copied().filter(|k| k != node).collect();
            let m = metric(
                &forward_ablated(model, x, &node_mask(model, &trial), base)?,
                &full,
            );
            if m - current < tau * none {
                kept = trial;
                current = m;
            }
        }
        for (l, u) in kept {
            counts[l][u] += 1.0;
        }
    }
    Ok(counts)
}
