//! The exact path walk of Integrated Gradients in a piecewise-linear network, event by event.
//!
//! Along the straight path `h_l(α) = base + α·delta` every pre-activation `z_m` (m ≥ l) is
//! piecewise affine in α, and ∂T/∂z_l is constant between the points where some hidden unit
//! changes side. The walk keeps, for the current piece, each tracked layer's pre-activations and
//! their slopes `dz_m/dα`, each unit's side, and the backward vectors `v_m = ∂T/∂h_{m+1}·W_{m+1}`
//! of every target; it jumps to the next unit that changes side and updates only what that change
//! touches: the slopes of the layers after it (one column, then products for layers further on)
//! and the backward vectors of the layers before it (one row, then products further back). In
//! the common case of one or two hidden layers after `l` an event costs O(width), where a fresh
//! forward and backward pass per piece costs O(width²) per layer.
//!
//! It must never allocate per event, nor change the pieces' definition: a piece's integrand is
//! the derivative on the side the path takes there (at exactly zero with zero slope, the
//! activation's own derivative at 0), as a midpoint evaluation would give.

use crate::model::RuntimeModel;
use crate::{Error, Result};

use super::ig::Target;

/// One layer pair's walker: f64 copies of the weights from layer `l` on, built once and shared
/// by every example (the walk itself holds no state between calls).
pub struct Walk<'m> {
    model: &'m RuntimeModel,
    l: usize,
    /// Layers `l..=last`, row-major `d_out x d_in`.
    w: Vec<Vec<f64>>,
    /// The same, transposed (`d_in x d_out`).
    wt: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
    /// Per layer: the derivative on the positive side, on the negative side, and at zero.
    d: Vec<(f64, f64, f64)>,
}

/// Per tracked layer, what the walk keeps.
struct Layer {
    /// Pre-activations at `at`.
    z: Vec<f64>,
    at: f64,
    /// `dz/dα` on the current piece.
    s: Vec<f64>,
    /// Whether each unit is on the positive side, and its derivative there.
    pos: Vec<bool>,
    dv: Vec<f64>,
    /// The α at which each unit next changes side (infinity: not on this path as it stands),
    /// and the layer's earliest one.
    cross: Vec<f64>,
    first: (f64, usize),
}

impl Layer {
    /// Moves the reference point to `alpha`.
    fn rebase(&mut self, alpha: f64) {
        let t = alpha - self.at;
        if t != 0.0 {
            self.z
                .iter_mut()
                .zip(&self.s)
                .for_each(|(z, s)| *z += t * s);
            self.at = alpha;
        }
    }

    /// Every unit's next change of side from `self.at`, and the earliest.
    fn crossings(&mut self) {
        let a = self.at;
        let mut first = (f64::INFINITY, usize::MAX);
        for k in 0..self.z.len() {
            let (z, s) = (self.z[k], self.s[k]);
            let c = if self.pos[k] && s < 0.0 {
                (a + z / -s).max(a)
            } else if !self.pos[k] && s > 0.0 {
                (a - z / s).max(a)
            } else {
                f64::INFINITY
            };
            self.cross[k] = c;
            if c < first.0 {
                first = (c, k);
            }
        }
        self.first = first;
    }

    fn earliest(&mut self) {
        let mut first = (f64::INFINITY, usize::MAX);
        for (k, &c) in self.cross.iter().enumerate() {
            if c < first.0 {
                first = (c, k);
            }
        }
        self.first = first;
    }
}

/// `out += M · x` given `Mᵀ` row-major (`x.len() x out.len()`), column by column.
fn matvec_add(mt: &[f64], x: &[f64], out: &mut [f64]) {
    matvec_t_add(mt, x, out)
}

/// `out += Mᵀ · y` for row-major `M` (`y.len() x out.len()`).
fn matvec_t_add(m: &[f64], y: &[f64], out: &mut [f64]) {
    let d = out.len();
    for (&g, row) in y.iter().zip(m.chunks_exact(d.max(1))) {
        if g != 0.0 {
            out.iter_mut().zip(row).for_each(|(o, w)| *o += g * w);
        }
    }
}

impl<'m> Walk<'m> {
    /// A walker for the edges from `h_l` to `h_{l+1}`; refuses a network that is not
    /// piecewise linear.
    pub fn new(model: &'m RuntimeModel, l: usize) -> Result<Self> {
        if model
            .layers
            .iter()
            .any(|x| !x.activation.is_piecewise_linear())
        {
            return Err(Error::Invalid("exact IG needs a piecewise-linear (ReLU) network; use a Riemann mode for smooth activations".into()));
        }
        let layers = &model.layers[l..];
        let w: Vec<Vec<f64>> = layers
            .iter()
            .map(|x| x.weight.iter().map(|&v| v as f64).collect())
            .collect();
        let wt = layers
            .iter()
            .zip(&w)
            .map(|(x, w)| {
                let mut t = vec![0.0; w.len()];
                for j in 0..x.d_out {
                    for i in 0..x.d_in {
                        t[i * x.d_out + j] = w[j * x.d_in + i];
                    }
                }
                t
            })
            .collect();
        let b = layers
            .iter()
            .map(|x| x.bias.iter().map(|&v| v as f64).collect())
            .collect();
        let d = layers
            .iter()
            .map(|x| {
                let a = x.activation;
                (
                    a.derivative_f64(1.0),
                    a.derivative_f64(-1.0),
                    a.derivative_f64(0.0),
                )
            })
            .collect();
        Ok(Walk {
            model,
            l,
            w,
            wt,
            b,
            d,
        })
    }

    /// Layer `l`'s weights in f64, row-major `d_{l+1} x d_l`.
    pub fn weight(&self) -> &[f64] {
        &self.w[0]
    }

    /// `∫₀¹ ∂T/∂z_l dα` for each unit of `z_l` and each target along the path from `base` to
    /// `base + delta` in `h_l`, and the number of pieces of positive length.
    pub fn integrals(
        &self,
        base: &[f64],
        delta: &[f64],
        targets: &[Target],
    ) -> (Vec<Vec<f64>>, usize) {
        let (l, last) = (self.l, self.model.layers.len() - 1);
        let outputs = targets.iter().any(|t| matches!(t, Target::Outputs(_)));
        // Hidden layers whose sides are followed: every one from l for an output target (the
        // output layer is linear); node targets read z_l alone.
        let end = if outputs { last } else { (l + 1).min(last) };
        let nc = end - l;
        let width = |r: usize| self.model.layers[l + r].d_out;
        // The forward pass at the base point and the slopes, layer by layer.
        let mut ls: Vec<Layer> = Vec::with_capacity(nc);
        let (mut h, mut sh) = (base.to_vec(), delta.to_vec());
        for r in 0..nc {
            let act = self.model.layers[l + r].activation;
            let (dpos, dneg, d0) = self.d[r];
            let mut z = self.b[r].clone();
            matvec_add(&self.wt[r], &h, &mut z);
            let mut s = vec![0.0; width(r)];
            matvec_add(&self.wt[r], &sh, &mut s);
            let pos: Vec<bool> = z
                .iter()
                .zip(&s)
                .map(|(&z, &s)| z > 0.0 || (z == 0.0 && (s > 0.0 || (s == 0.0 && d0 == dpos))))
                .collect();
            let dv: Vec<f64> = pos.iter().map(|&p| if p { dpos } else { dneg }).collect();
            h = z.iter().map(|&v| act.apply_f64(v)).collect();
            sh = s.iter().zip(&dv).map(|(s, d)| s * d).collect();
            let n = z.len();
            let mut layer = Layer {
                z,
                at: 0.0,
                s,
                pos,
                dv,
                cross: vec![f64::INFINITY; n],
                first: (f64::INFINITY, usize::MAX),
            };
            if dpos != dneg {
                layer.crossings();
            }
            ls.push(layer);
        }
        // The backward vectors of each output target: v_r = ∂T/∂h_{l+r+1} (v at the output
        // layer is the target's output weights).
        let maxw = (0..=nc).map(width).max().unwrap_or(0);
        // The first untracked layer is linear (the output layer) or never changes side.
        let fixed = vec![self.d[nc].0; maxw];
        let outs: Vec<&Vec<usize>> = targets
            .iter()
            .filter_map(|t| match t {
                Target::Outputs(o) => Some(o),
                Target::Node => None,
            })
            .collect();
        let mut v: Vec<Vec<Vec<f64>>> = outs
            .iter()
            .map(|o| {
                let mut vs = vec![Vec::new(); nc + 1];
                vs[nc] = (0..self.model.d_out())
                    .map(|k| if o.contains(&k) { 1.0 } else { 0.0 })
                    .collect();
                for r in (0..nc).rev() {
                    let g: Vec<f64> = vs[r + 1]
                        .iter()
                        .zip(derivs(&ls, r + 1, &fixed))
                        .map(|(v, d)| v * d)
                        .collect();
                    let mut out = vec![0.0; width(r)];
                    matvec_t_add(&self.w[r + 1], &g, &mut out);
                    vs[r] = out;
                }
                vs
            })
            .collect();
        let d_l = width(0);
        let mut totals = vec![vec![0.0; d_l]; targets.len()];
        let (mut da, mut db) = (vec![0.0; maxw], vec![0.0; maxw]);
        let (mut alpha, mut pieces) = (0.0f64, 0usize);
        loop {
            // The next change of side, the earliest layer first on a tie.
            let mut next = (f64::INFINITY, 0, 0);
            for (r, x) in ls.iter().enumerate() {
                if x.first.0 < next.0 {
                    next = (x.first.0, r, x.first.1);
                }
            }
            let stop = next.0.min(1.0).max(alpha);
            let t = stop - alpha;
            if t > 0.0 {
                pieces += 1;
                let dl = derivs(&ls, 0, &fixed);
                let mut o = 0;
                for (target, total) in targets.iter().zip(totals.iter_mut()) {
                    match target {
                        Target::Node => total.iter_mut().zip(dl).for_each(|(acc, d)| *acc += t * d),
                        Target::Outputs(_) => {
                            total
                                .iter_mut()
                                .zip(dl)
                                .zip(&v[o][0])
                                .for_each(|((acc, d), g)| *acc += t * d * g);
                            o += 1;
                        }
                    }
                }
            }
            alpha = stop;
            if next.0 >= 1.0 {
                break;
            }
            let (r, k) = (next.1, next.2);
            // Unit k of layer r changes side.
            let (dpos, dneg, _) = self.d[r];
            let x = &mut ls[r];
            x.pos[k] = !x.pos[k];
            let old = x.dv[k];
            x.dv[k] = if x.pos[k] { dpos } else { dneg };
            let dd = x.dv[k] - old;
            x.cross[k] = f64::INFINITY;
            x.earliest();
            // Later layers: their slopes change by the column of the next layer's weights.
            if r + 1 < nc {
                let c = dd * ls[r].s[k];
                let n1 = width(r + 1);
                da[..n1]
                    .iter_mut()
                    .zip(&self.wt[r + 1][k * n1..(k + 1) * n1])
                    .for_each(|(a, w)| *a = c * w);
                for q in r + 1..nc {
                    let nq = width(q);
                    if q > r + 1 {
                        let np = width(q - 1);
                        db[..np]
                            .iter_mut()
                            .zip(&da[..np])
                            .zip(&ls[q - 1].dv)
                            .for_each(|((b, a), d)| *b = a * d);
                        da[..nq].fill(0.0);
                        matvec_add(&self.wt[q], &db[..np], &mut da[..nq]);
                    }
                    let y = &mut ls[q];
                    y.rebase(alpha);
                    y.s.iter_mut().zip(&da[..nq]).for_each(|(s, a)| *s += a);
                    if self.d[q].0 != self.d[q].1 {
                        y.crossings();
                    }
                }
            }
            // Earlier layers: each target's backward vectors change by the row of this layer's
            // weights.
            if r > 0 {
                for vs in v.iter_mut() {
                    let g = dd * vs[r][k];
                    if g == 0.0 {
                        continue;
                    }
                    let np = width(r - 1);
                    let row = &self.w[r][k * np..(k + 1) * np];
                    da[..np].iter_mut().zip(row).for_each(|(a, w)| *a = g * w);
                    for q in (0..r).rev() {
                        let nq = width(q);
                        if q < r - 1 {
                            let nn = width(q + 1);
                            db[..nn]
                                .iter_mut()
                                .zip(&da[..nn])
                                .zip(&ls[q + 1].dv)
                                .for_each(|((b, a), d)| *b = a * d);
                            da[..nq].fill(0.0);
                            matvec_t_add(&self.w[q + 1], &db[..nn], &mut da[..nq]);
                        }
                        vs[q].iter_mut().zip(&da[..nq]).for_each(|(v, a)| *v += a);
                    }
                }
            }
        }
        (totals, pieces)
    }
}

/// Layer `r`'s derivatives on the current piece; past the tracked layers (the output layer, or
/// layer `l` itself when none is tracked) the constant ones `fixed`.
fn derivs<'a>(ls: &'a [Layer], r: usize, fixed: &'a [f64]) -> &'a [f64] {
    ls.get(r).map_or(fixed, |x| &x.dv[..])
}

#[cfg(test)]
mod tests {
    //! The walk against the definition it replaces: split the path at every change of sign,
    //! layer by layer, and run a fresh forward and backward pass at each piece's midpoint.
    use super::*;
    use crate::model::{Activation, Layer as Dense};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn forward(model: &RuntimeModel, l: usize, h: &[f64]) -> Vec<Vec<f64>> {
        let mut cur = h.to_vec();
        let mut zs = Vec::new();
        for layer in &model.layers[l..] {
            let z = layer.pre_activation(&cur);
            cur = z.iter().map(|&v| layer.activation.apply_f64(v)).collect();
            zs.push(z);
        }
        zs
    }

    fn grad(model: &RuntimeModel, l: usize, zs: &[Vec<f64>], o: &[usize]) -> Vec<f64> {
        let mut g: Vec<f64> = (0..model.d_out())
            .map(|k| f64::from(u8::from(o.contains(&k))))
            .collect();
        for m in (l..model.layers.len()).rev() {
            let layer = &model.layers[m];
            g.iter_mut()
                .zip(&zs[m - l])
                .for_each(|(g, &z)| *g *= layer.activation.derivative_f64(z));
            if m == l {
                break;
            }
            let mut prev = vec![0.0; layer.d_in];
            for (j, &gj) in g.iter().enumerate() {
                for (i, p) in prev.iter_mut().enumerate() {
                    *p += gj * layer.w(j, i) as f64;
                }
            }
            g = prev;
        }
        g
    }

    /// Every sign change of layers `l..end` by bisection-free refinement, then midpoints.
    fn reference(
        model: &RuntimeModel,
        l: usize,
        base: &[f64],
        delta: &[f64],
        targets: &[Target],
    ) -> (Vec<Vec<f64>>, usize) {
        let at = |a: f64| -> Vec<f64> { base.iter().zip(delta).map(|(b, d)| b + a * d).collect() };
        let last = model.layers.len() - 1;
        let outputs = targets.iter().any(|t| matches!(t, Target::Outputs(_)));
        let end = if outputs { last } else { (l + 1).min(last) };
        let mut cuts = vec![0.0, 1.0];
        for m in l..end {
            let mut next = Vec::new();
            for w in cuts.windows(2) {
                let (z0, z1) = (
                    &forward(model, l, &at(w[0]))[m - l],
                    &forward(model, l, &at(w[1]))[m - l],
                );
                next.push(w[0]);
                let mut inner: Vec<f64> = z0
                    .iter()
                    .zip(z1)
                    .filter(|(p, q)| (**p > 0.0 && **q < 0.0) || (**p < 0.0 && **q > 0.0))
                    .map(|(p, q)| w[0] + (w[1] - w[0]) * (p / (p - q)))
                    .filter(|&c| c > w[0] && c < w[1])
                    .collect();
                inner.sort_by(f64::total_cmp);
                next.extend(inner);
            }
            next.push(1.0);
            next.dedup();
            cuts = next;
        }
        let d = model.layers[l].d_out;
        let mut totals = vec![vec![0.0; d]; targets.len()];
        for w in cuts.windows(2) {
            let zs = forward(model, l, &at(0.5 * (w[0] + w[1])));
            for (t, total) in targets.iter().zip(totals.iter_mut()) {
                let g: Vec<f64> = match t {
                    Target::Node => zs[0]
                        .iter()
                        .map(|&z| model.layers[l].activation.derivative_f64(z))
                        .collect(),
                    Target::Outputs(o) => grad(model, l, &zs, o),
                };
                total
                    .iter_mut()
                    .zip(&g)
                    .for_each(|(a, g)| *a += (w[1] - w[0]) * g);
            }
        }
        (totals, cuts.len() - 1)
    }

    fn network(widths: &[usize], activation: Activation, seed: u64) -> RuntimeModel {
        let mut rng = StdRng::seed_from_u64(seed);
        let last = widths.len() - 2;
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                let scale = (2.0 / w[0] as f32).sqrt();
                Dense {
                    d_in: w[0],
                    d_out: w[1],
                    weight: (0..w[0] * w[1])
                        .map(|_| rng.gen_range(-scale..scale))
                        .collect(),
                    bias: (0..w[1]).map(|_| rng.gen_range(-0.3..0.3)).collect(),
                    activation: if k == last {
                        Activation::Identity
                    } else {
                        activation
                    },
                }
            })
            .collect();
        RuntimeModel { layers }
    }

    fn close(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn the_walk_equals_fresh_passes_at_every_pieces_midpoint() {
        let targets = [
            Target::Outputs(vec![0]),
            Target::Node,
            Target::Outputs(vec![0, 2]),
        ];
        let mut checked = 0;
        for (seed, widths, act) in [
            (1, vec![3, 8, 8, 3], Activation::Relu),
            (2, vec![5, 16, 12, 10, 3], Activation::Relu),
            (
                3,
                vec![4, 9, 9, 9, 9, 3],
                Activation::LeakyRelu { slope: 0.1 },
            ),
            (4, vec![6, 20, 3], Activation::Relu),
        ] {
            let model = network(&widths, act, seed);
            let mut rng = StdRng::seed_from_u64(seed + 100);
            for l in 0..model.layers.len() {
                let walk = Walk::new(&model, l).unwrap();
                let d = model.layers[l].d_in;
                for _ in 0..5 {
                    let base: Vec<f64> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let delta: Vec<f64> = (0..d).map(|_| rng.gen_range(-2.0..2.0)).collect();
                    let (ours, pieces) = walk.integrals(&base, &delta, &targets);
                    let (want, want_pieces) = reference(&model, l, &base, &delta, &targets);
                    assert!(
                        close(&ours, &want) < 1e-10,
                        "seed {seed} l {l}: {ours:?} vs {want:?}"
                    );
                    assert_eq!(pieces, want_pieces, "seed {seed} l {l}");
                    checked += usize::from(pieces > 3);
                }
            }
        }
        assert!(checked > 20, "too few paths with several pieces: {checked}");
    }

    #[test]
    fn ties_dead_units_and_a_zero_path_follow_the_midpoint_convention() {
        // Duplicated units cross together; a unit with zero weights and bias sits at exactly
        // zero along the whole path (its derivative at 0 counts); the path starts on a kink.
        let mut model = network(&[3, 6, 6, 2], Activation::Relu, 7);
        let (a, b) = (
            model.layers[0].weight[..3].to_vec(),
            model.layers[0].bias[0],
        );
        model.layers[0].weight[3..6].copy_from_slice(&a);
        model.layers[0].bias[1] = b;
        model.layers[0].weight[6..9].fill(0.0);
        model.layers[0].bias[2] = 0.0;
        let row = model.layers[1].weight[..6].to_vec();
        model.layers[1].weight[6..12].copy_from_slice(&row);
        let targets = [Target::Outputs(vec![1]), Target::Node];
        for l in 0..3 {
            let walk = Walk::new(&model, l).unwrap();
            let d = model.layers[l].d_in;
            for (base, delta) in [
                (vec![0.0; d], vec![1.0; d]),
                (vec![0.0; d], vec![0.0; d]),
                (
                    (0..d).map(|i| i as f64 - 1.0).collect(),
                    (0..d).map(|i| 1.5 - i as f64).collect(),
                ),
            ] {
                let (ours, pieces) = walk.integrals(&base, &delta, &targets);
                let (want, want_pieces) = reference(&model, l, &base, &delta, &targets);
                assert!(close(&ours, &want) < 1e-12, "l {l}: {ours:?} vs {want:?}");
                assert_eq!(pieces, want_pieces);
            }
        }
    }

    #[test]
    fn smooth_networks_are_refused() {
        let model = network(&[2, 4, 1], Activation::Tanh, 1);
        assert!(Walk::new(&model, 0).is_err());
    }
}
