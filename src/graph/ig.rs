//! Integrated Gradients on edges, computed exactly for ReLU networks.
//!
//! For the edge `i → j` from `h_l` to `h_{l+1}` (weight `w_ji` of layer `l`), an example's
//! activations `a = h_l(x)`, a baseline `a'`, the straight path `a(α) = a' + α(a − a')` *in
//! layer-l space*, `z_j` the pre-activation of `j` and a target `T`:
//!
//! `EA(i→j) = (a_i − a'_i) · w_ji · ∫₀¹ ∂T/∂z_j(a(α)) dα`.
//!
//! Completeness follows: `Σ_{i,j} EA(i→j) = T(a) − T(a')` for a task target, and
//! `Σ_i EA(i→j) = T_j(a) − T_j(a')` for the node target `T_j = h_{l+1,j}`. In a ReLU network the
//! integrand is piecewise constant along the path; [`Mode::Exact`] splits the path wherever any
//! downstream pre-activation changes sign (found layer by layer: on each piece every later layer
//! is affine in α) and sums the pieces. [`Mode::Riemann`] uses `n` midpoints, for smooth
//! activations. Everything is f64. This module computes attributions; it builds no graph.

use crate::model::RuntimeModel;
use crate::{Error, Result};

/// How the path integral is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exact, by splitting the path at every sign change (piecewise-linear networks only).
    Exact,
    /// Midpoint rule with this many steps.
    Riemann(usize),
}

/// What the attributions explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Each edge explains its own downstream node: `T_j = h_{l+1,j}`.
    Node,
    /// Each edge explains the sum of these outputs (a task).
    Outputs(Vec<usize>),
}

/// Runs layers `l..` from `h` (one example); returns every pre-activation `z_l, z_{l+1}, …`.
fn forward_from(model: &RuntimeModel, l: usize, h: &[f64]) -> Vec<Vec<f64>> {
    let mut cur = h.to_vec();
    let mut zs = Vec::with_capacity(model.layers.len() - l);
    for layer in &model.layers[l..] {
        let z = layer.pre_activation(&cur);
        cur = z.iter().map(|&v| layer.activation.apply_f64(v)).collect();
        zs.push(z);
    }
    zs
}

/// `∂T/∂z_l` at `h` for a target given as output weights (`T = Σ_o c_o y_o`).
fn grad_wrt_z(model: &RuntimeModel, l: usize, zs: &[Vec<f64>], outputs: &[usize]) -> Vec<f64> {
    let last = model.layers.len() - 1;
    // g = ∂T/∂z_m, starting at the output layer (identity activation assumed by derivative).
    let mut g: Vec<f64> = (0..model.d_out())
        .map(|o| if outputs.contains(&o) { 1.0 } else { 0.0 })
        .collect();
    for m in (l..=last).rev() {
        let layer = &model.layers[m];
        let z = &zs[m - l];
        g.iter_mut()
            .zip(z)
            .for_each(|(gi, &zi)| *gi *= layer.activation.derivative_f64(zi));
        if m == l {
            break;
        }
        let mut prev = vec![0.0; layer.d_in];
        for (j, &gj) in g.iter().enumerate() {
            if gj != 0.0 {
                prev.iter_mut()
                    .zip(&layer.weight[j * layer.d_in..(j + 1) * layer.d_in])
                    .for_each(|(p, &w)| *p += gj * w as f64);
            }
        }
        g = prev;
    }
    g
}

fn point(base: &[f64], delta: &[f64], alpha: f64) -> Vec<f64> {
    base.iter().zip(delta).map(|(b, d)| b + alpha * d).collect()
}

/// The points in `[0, 1]` where any pre-activation of layers `l..end` changes sign along the
/// path, each with the forward pass there (`z_l, z_{l+1}, …`), refined layer by layer: on a
/// piece between two points every layer before `m` keeps its pattern, so `z_l … z_m` are affine
/// there: `z_m`'s sign changes are found from its values at the piece's ends, and at a new
/// point `z_l … z_m` are interpolated from them, only the layers after `m` run forward.
fn breakpoints(
    model: &RuntimeModel,
    l: usize,
    end: usize,
    base: &[f64],
    delta: &[f64],
) -> Vec<(f64, Vec<Vec<f64>>)> {
    let fwd = |a: f64| forward_from(model, l, &point(base, delta, a));
    let mut pts: Vec<(f64, Vec<Vec<f64>>)> = vec![(0.0, fwd(0.0)), (1.0, fwd(1.0))];
    for m in l..end {
        let mut next = Vec::with_capacity(pts.len());
        for w in pts.windows(2) {
            let ((a0, zs0), (a1, zs1)) = (&w[0], &w[1]);
            next.push((*a0, zs0.clone()));
            let mut inner: Vec<f64> = zs0[m - l]
                .iter()
                .zip(&zs1[m - l])
                .filter(|(p, q)| (**p > 0.0 && **q < 0.0) || (**p < 0.0 && **q > 0.0))
                .map(|(p, q)| a0 + (a1 - a0) * (p / (p - q)))
                .filter(|c| c > a0 && c < a1)
                .collect();
            inner.sort_by(f64::total_cmp);
            inner.dedup();
            next.extend(inner.into_iter().map(|c| {
                let t = (c - a0) / (a1 - a0);
                let mut zs: Vec<Vec<f64>> = zs0[..=m - l]
                    .iter()
                    .zip(&zs1[..=m - l])
                    .map(|(p, q)| p.iter().zip(q).map(|(x, y)| x + t * (y - x)).collect())
                    .collect();
                let act = model.layers[m].activation;
                let h: Vec<f64> = zs[m - l].iter().map(|&z| act.apply_f64(z)).collect();
                zs.extend(forward_from(model, m + 1, &h));
                (c, zs)
            }));
        }
        next.push(pts.last().expect("two points at least").clone());
        pts = next;
    }
    pts
}

/// `∫₀¹ ∂T/∂z_l dα` for each unit of `z_l` (the downstream side of the edges) and each target,
/// along the path from `base` to `base + delta` in `h_l`. Exact mode splits the path once for
/// all targets. Also returns the number of pieces integrated.
pub fn path_integrals(
    model: &RuntimeModel,
    l: usize,
    base: &[f64],
    delta: &[f64],
    targets: &[Target],
    mode: Mode,
) -> Result<(Vec<Vec<f64>>, usize)> {
    let d = model.layers[l].d_out;
    let smooth = model
        .layers
        .iter()
        .any(|x| !x.activation.is_piecewise_linear());
    let add_grads = |zs: &[Vec<f64>], weight: f64, totals: &mut [Vec<f64>]| {
        for (t, total) in targets.iter().zip(totals.iter_mut()) {
            let g = match t {
                Target::Node => zs[0]
                    .iter()
                    .map(|&z| model.layers[l].activation.derivative_f64(z))
                    .collect(),
                Target::Outputs(o) => grad_wrt_z(model, l, zs, o),
            };
            total
                .iter_mut()
                .zip(&g)
                .for_each(|(acc, gi)| *acc += weight * gi);
        }
    };
    let mut totals = vec![vec![0.0; d]; targets.len()];
    match mode {
        Mode::Exact => {
            if smooth {
                return Err(Error::Invalid("exact IG needs a piecewise-linear (ReLU) network; use a Riemann mode for smooth activations".into()));
            }
            // Hidden pre-activations only (the output layer is linear); node targets depend on
            // z_l alone.
            let hidden_end = model.layers.len() - 1;
            let end = if targets.iter().any(|t| matches!(t, Target::Outputs(_))) {
                hidden_end
            } else {
                (l + 1).min(hidden_end)
            };
            let cuts = breakpoints(model, l, end, base, delta);
            for w in cuts.windows(2) {
                // On a piece every layer up to `end` keeps its pattern, so the network is affine
                // there (up to the outputs for output targets; node targets read `z_l` alone,
                // affine on the whole path): the midpoint's pre-activations are the mean of the
                // ends', without another forward pass.
                let ((a0, z0), (a1, z1)) = (&w[0], &w[1]);
                let mid: Vec<Vec<f64>> = z0
                    .iter()
                    .zip(z1)
                    .map(|(p, q)| p.iter().zip(q).map(|(x, y)| 0.5 * (x + y)).collect())
                    .collect();
                add_grads(&mid, a1 - a0, &mut totals);
            }
            Ok((totals, cuts.len() - 1))
        }
        Mode::Riemann(n) => {
            if n == 0 {
                return Err(Error::Invalid(
                    "a Riemann mode needs at least 1 step".into(),
                ));
            }
            for s in 0..n {
                let zs = forward_from(model, l, &point(base, delta, (s as f64 + 0.5) / n as f64));
                add_grads(&zs, 1.0 / n as f64, &mut totals);
            }
            Ok((totals, n))
        }
    }
}

/// Edge attributions of one example between `h_l` and `h_{l+1}`, one `d_{l+1} x d_l` matrix
/// (row `j`) per target, for activations `a` and baseline `base` in `h_l`.
pub fn edge_attributions_multi(
    model: &RuntimeModel,
    l: usize,
    a: &[f64],
    base: &[f64],
    targets: &[Target],
    mode: Mode,
) -> Result<Vec<Vec<f64>>> {
    let layer = &model.layers[l];
    let delta: Vec<f64> = a.iter().zip(base).map(|(x, y)| x - y).collect();
    let (integrals, _) = path_integrals(model, l, base, &delta, targets, mode)?;
    Ok(integrals
        .iter()
        .map(|integral| {
            let mut ea = vec![0.0; layer.d_out * layer.d_in];
            for j in 0..layer.d_out {
                for i in 0..layer.d_in {
                    ea[j * layer.d_in + i] =
                        delta[i] * layer.weight[j * layer.d_in + i] as f64 * integral[j];
                }
            }
            ea
        })
        .collect())
}

/// Edge attributions `EA(i→j)` between `h_l` and `h_{l+1}` for every row of `a` (`n x d_l`
/// row-major activations; one example is one row), with the baseline `base` in `h_l`: each
/// row's `d_{l+1} x d_l` matrix (row `j`), one after another in example order. Rows are
/// attributed in parallel on the current rayon pool.
pub fn edge_attributions(
    model: &RuntimeModel,
    l: usize,
    a: &[f64],
    base: &[f64],
    target: &Target,
    mode: Mode,
) -> Result<Vec<f64>> {
    use rayon::prelude::*;
    let d = model.layers[l].d_in;
    let rows = a
        .par_chunks(d.max(1))
        .map(|row| {
            Ok(
                edge_attributions_multi(model, l, row, base, std::slice::from_ref(target), mode)?
                    .remove(0),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(rows.concat())
}

/// `T(h_l = h)`: the target's value when layer `l` holds `h` (the node target gives a vector).
pub fn target_value(model: &RuntimeModel, l: usize, h: &[f64], target: &Target) -> Vec<f64> {
    let zs = forward_from(model, l, h);
    match target {
        Target::Node => zs[0]
            .iter()
            .map(|&z| model.layers[l].activation.apply_f64(z))
            .collect(),
        Target::Outputs(o) => {
            let y = zs.last().expect("at least one layer");
            vec![o.iter().map(|&k| y[k]).sum()]
        }
    }
}
