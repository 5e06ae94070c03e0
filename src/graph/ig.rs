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
//! integrand is piecewise constant along the path; [`Mode::Exact`] walks the path from one change
//! of sign of any downstream pre-activation to the next (`walk`) and sums the pieces. [`Mode::Riemann`] uses `n` midpoints, for smooth
//! activations. Everything is f64. This module computes attributions; it builds no graph.

use crate::model::RuntimeModel;
use crate::{Error, Result};

use super::walk::Walk;

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
    Attributor::new(model, l, mode)?.path_integrals(base, delta, targets)
}

/// IG for the edges from `h_l` to `h_{l+1}` in one mode, set up once (the exact walk's f64
/// weights) and used for any number of examples, from any number of threads.
pub struct Attributor<'m> {
    model: &'m RuntimeModel,
    l: usize,
    mode: Mode,
    walk: Option<Walk<'m>>,
}

impl<'m> Attributor<'m> {
    /// Refuses exact mode on a network that is not piecewise linear, and a Riemann mode of 0
    /// steps.
    pub fn new(model: &'m RuntimeModel, l: usize, mode: Mode) -> Result<Self> {
        let walk = match mode {
            Mode::Exact => Some(Walk::new(model, l)?),
            Mode::Riemann(0) => {
                return Err(Error::Invalid(
                    "a Riemann mode needs at least 1 step".into(),
                ))
            }
            Mode::Riemann(_) => None,
        };
        Ok(Attributor {
            model,
            l,
            mode,
            walk,
        })
    }

    /// [`path_integrals`] with this set-up.
    pub fn path_integrals(
        &self,
        base: &[f64],
        delta: &[f64],
        targets: &[Target],
    ) -> Result<(Vec<Vec<f64>>, usize)> {
        let (model, l) = (self.model, self.l);
        if let Some(walk) = &self.walk {
            return Ok(walk.integrals(base, delta, targets));
        }
        let Mode::Riemann(n) = self.mode else {
            unreachable!("exact mode has a walk")
        };
        let mut totals = vec![vec![0.0; model.layers[l].d_out]; targets.len()];
        for s in 0..n {
            let zs = forward_from(model, l, &point(base, delta, (s as f64 + 0.5) / n as f64));
            for (t, total) in targets.iter().zip(totals.iter_mut()) {
                let g = match t {
                    Target::Node => zs[0]
                        .iter()
                        .map(|&z| model.layers[l].activation.derivative_f64(z))
                        .collect(),
                    Target::Outputs(o) => grad_wrt_z(model, l, &zs, o),
                };
                total
                    .iter_mut()
                    .zip(&g)
                    .for_each(|(acc, gi)| *acc += (1.0 / n as f64) * gi);
            }
        }
        Ok((totals, n))
    }

    /// [`edge_attributions_multi`] with this set-up.
    pub fn edge_attributions(
        &self,
        a: &[f64],
        base: &[f64],
        targets: &[Target],
    ) -> Result<Vec<Vec<f64>>> {
        let layer = &self.model.layers[self.l];
        let mut out = vec![vec![0.0; layer.d_out * layer.d_in]; targets.len()];
        let mut views: Vec<&mut [f64]> = out.iter_mut().map(|v| &mut v[..]).collect();
        self.edge_attributions_into(a, base, targets, &mut views)?;
        Ok(out)
    }

    /// The same, written into `out` (one `d_{l+1} x d_l` slice per target).
    pub fn edge_attributions_into(
        &self,
        a: &[f64],
        base: &[f64],
        targets: &[Target],
        out: &mut [&mut [f64]],
    ) -> Result<()> {
        let layer = &self.model.layers[self.l];
        let delta: Vec<f64> = a.iter().zip(base).map(|(x, y)| x - y).collect();
        let (integrals, _) = self.path_integrals(base, &delta, targets)?;
        let d = layer.d_in;
        for (integral, ea) in integrals.iter().zip(out.iter_mut()) {
            for (j, row) in ea.chunks_exact_mut(d.max(1)).enumerate() {
                let g = integral[j];
                match &self.walk {
                    Some(walk) => {
                        let w = &walk.weight()[j * d..(j + 1) * d];
                        row.iter_mut()
                            .zip(w)
                            .zip(&delta)
                            .for_each(|((e, w), x)| *e = x * w * g);
                    }
                    None => {
                        let w = &layer.weight[j * d..(j + 1) * d];
                        row.iter_mut()
                            .zip(w)
                            .zip(&delta)
                            .for_each(|((e, &w), x)| *e = x * w as f64 * g);
                    }
                }
            }
        }
        Ok(())
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
    Attributor::new(model, l, mode)?.edge_attributions(a, base, targets)
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
    let ig = Attributor::new(model, l, mode)?;
    let per = model.layers[l].d_out * d;
    let mut out = vec![0.0; a.len() / d.max(1) * per];
    out.par_chunks_mut(per.max(1))
        .zip(a.par_chunks(d.max(1)))
        .try_for_each(|(ea, row)| {
            ig.edge_attributions_into(row, base, std::slice::from_ref(target), &mut [ea])
        })?;
    Ok(out)
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
