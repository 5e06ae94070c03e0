//! The activation-region census: "unique gradients" and "gradient splintering".
//!
//! For every layer `h_k` (`k = 0` is the input) it counts, over one data set:
//! - `layer_patterns`: distinct on/off patterns of `h_k`'s own units (hidden layers only);
//! - `adjacent_patterns`: distinct adjacent Jacobians `∂h_{k+1}/∂h_k`, i.e. patterns of the next
//!   layer's units — splintering *layer by layer*;
//! - `downstream_patterns`: distinct patterns of every layer after `h_k`, and
//!   `gradients_per_output` / `gradients_combined`: distinct `∂y_o/∂h_k` per output and distinct
//!   whole `∂y/∂h_k` — splintering *from the outputs*;
//! - `appear_together`: the notes' claim that gradients from different outputs "always appear
//!   together", i.e. every output has as many distinct gradients as there are distinct
//!   combinations across outputs. Computed, never assumed.
//!
//! Examples with a pre-activation within `zero_tol` of zero in a layer that matters are where
//! float noise decides the pattern: they are counted separately (`ambiguous`) and left out of
//! every other count. For smooth activations gradients are "distinct" up to a cosine of
//! `cosine` (greedy leader clustering) and nothing is ambiguous.

use super::jacobian::OutputJacobians;
use crate::model::{RuntimeModel, Trace};
use std::collections::{HashMap, HashSet};

/// Census settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CensusConfig {
    pub zero_tol: f64,
    pub cosine: f64,
}

impl Default for CensusConfig {
    fn default() -> Self {
        CensusConfig {
            zero_tol: 1e-6,
            cosine: 0.999,
        }
    }
}

/// The census of one layer on one data set.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCensus {
    /// `k`: the layer `h_k` the gradients are taken at (0 = input).
    pub layer: usize,
    pub width: usize,
    /// Examples counted (not ambiguous).
    pub examples: usize,
    pub ambiguous: usize,
    pub layer_patterns: Option<usize>,
    pub adjacent_patterns: usize,
    pub downstream_patterns: usize,
    pub gradients_per_output: Vec<usize>,
    pub gradients_combined: usize,
    pub appear_together: bool,
    /// Share of the counted examples in the largest region (by distinct `∂y/∂h_k`).
    pub top_region_share: f64,
    /// Fewest regions that hold 90% of the counted examples.
    pub regions_for_90pct: usize,
    /// Share of the counted examples in each region (by distinct `∂y/∂h_k`), largest first.
    pub region_shares: Vec<f64>,
}

fn pattern_key(trace: &Trace, layers: std::ops::Range<usize>, i: usize) -> Vec<bool> {
    layers
        .flat_map(|k| {
            let d = trace.pre[k].len() / trace.n;
            trace.pre[k][i * d..(i + 1) * d]
                .iter()
                .map(|&z| z > 0.0)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn near_zero(trace: &Trace, layers: std::ops::Range<usize>, i: usize, tol: f64) -> bool {
    layers.into_iter().any(|k| {
        let d = trace.pre[k].len() / trace.n;
        trace.pre[k][i * d..(i + 1) * d]
            .iter()
            .any(|z| z.abs() < tol)
    })
}

/// Quantised values, so that gradients equal up to rounding share a key.
fn grad_key(v: &[f64], scale: f64) -> Vec<i64> {
    v.iter()
        .map(|x| (x / scale * 1e10).round() as i64)
        .collect()
}

/// Assigns each vector to a group: exact (quantised) for piecewise-linear networks, greedy
/// leader clustering by cosine otherwise. Returns the group of each vector.
pub(crate) fn group(vectors: &[&[f64]], smooth: bool, cosine: f64) -> Vec<usize> {
    let scale = vectors
        .iter()
        .flat_map(|v| v.iter())
        .fold(0.0f64, |a, b| a.max(b.abs()));
    let mut g = Grouper::new(smooth, scale, cosine);
    let d = vectors.first().map_or(0, |v| v.len());
    if d > 0 && vectors.iter().all(|v| v.len() == d) {
        g.assign_all(&vectors.concat(), d)
    } else {
        vectors.iter().map(|v| g.assign(v)).collect()
    }
}

fn distinct(groups: &[usize]) -> usize {
    groups.iter().collect::<HashSet<_>>().len()
}

/// The census of every layer of `model` on the examples of `trace`.
pub fn census(
    model: &RuntimeModel,
    trace: &Trace,
    jac: &OutputJacobians,
    cfg: &CensusConfig,
) -> Vec<LayerCensus> {
    let n_layers = model.layers.len();
    let hidden = n_layers - 1; // pre-activations z_0..z_{L-2} have patterns
    let smooth = model
        .layers
        .iter()
        .any(|l| !l.activation.is_piecewise_linear());
    let d_out = model.d_out();
    (0..n_layers)
        .map(|k| {
            let own = k.saturating_sub(1)..hidden; // h_k's own units (k ≥ 1) and everything after
            let clean: Vec<usize> = (0..trace.n)
                .filter(|&i| smooth || !near_zero(trace, own.clone(), i, cfg.zero_tol))
                .collect();
            let count_patterns = |layers: std::ops::Range<usize>| {
                clean
                    .iter()
                    .map(|&i| pattern_key(trace, layers.clone(), i))
                    .collect::<HashSet<_>>()
                    .len()
            };
            let layer_patterns = (k >= 1).then(|| count_patterns(k - 1..k));
            let adjacent_patterns = if k < hidden {
                count_patterns(k..k + 1)
            } else {
                1
            };
            let downstream_patterns = if k < hidden {
                count_patterns(k..hidden)
            } else {
                1
            };
            let shared = &jac.per_layer[k];
            let dk = shared.cols;
            let rows: Vec<&[f64]> = clean.iter().map(|&i| shared.of(i)).collect();
            let gradients_per_output: Vec<usize> = (0..d_out)
                .map(|o| {
                    let v: Vec<&[f64]> = rows.iter().map(|b| &b[o * dk..(o + 1) * dk]).collect();
                    distinct(&group(&v, smooth, cfg.cosine))
                })
                .collect();
            let combined = group(&rows, smooth, cfg.cosine);
            let mut sizes = vec![0usize; distinct(&combined)];
            combined.iter().for_each(|&g| sizes[g] += 1);
            finish(
                LayerCensus {
                    layer: k,
                    width: dk,
                    examples: clean.len(),
                    ambiguous: trace.n - clean.len(),
                    layer_patterns,
                    adjacent_patterns,
                    downstream_patterns,
                    gradients_per_output,
                    gradients_combined: 0,
                    appear_together: false,
                    top_region_share: 0.0,
                    regions_for_90pct: 0,
                    region_shares: vec![],
                },
                sizes,
            )
        })
        .collect()
}

/// Completes a layer's census from the size of each region (by distinct `∂y/∂h_k`, indexed
/// by group id): the combined count, whether the outputs' gradients appear together, and the
/// regions' shares of the counted examples.
fn finish(mut c: LayerCensus, mut sizes: Vec<usize>) -> LayerCensus {
    c.gradients_combined = sizes.len();
    c.appear_together = c
        .gradients_per_output
        .iter()
        .all(|&g| g == c.gradients_combined);
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let total = c.examples.max(1) as f64;
    let mut acc = 0usize;
    c.regions_for_90pct = sizes
        .iter()
        .position(|&s| {
            acc += s;
            acc as f64 >= 0.9 * total
        })
        .map_or(0, |p| p + 1);
    c.top_region_share = sizes.first().map_or(0.0, |&s| s as f64 / total);
    c.region_shares = sizes.iter().map(|&s| s as f64 / total).collect();
    c
}

/// A 128-bit hash of a key: distinct patterns and gradients are counted by their hashes, so a
/// streamed census holds 16 bytes per distinct one (two 64-bit SipHashes with fixed keys; a
/// collision among 10⁶ keys has a chance of about 10⁻²⁶).
fn hash128<T: std::hash::Hash>(key: &T) -> u128 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut a = DefaultHasher::new();
    key.hash(&mut a);
    let mut b = DefaultHasher::new();
    0x9e37_79b9_u32.hash(&mut b);
    key.hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

/// [`group`] one vector at a time, in example order: the same group ids.
pub(crate) enum Grouper {
    /// Quantised against a scale known beforehand (the largest |entry| over every vector).
    Exact {
        scale: f64,
        ids: HashMap<u128, usize>,
    },
    /// Greedy leader clustering by cosine: a vector joins the first leader within `cosine`.
    Leaders {
        cosine: f64,
        /// The leaders, [`LEADER_BLOCK`] rows to a block (leader `j`: block `j / LEADER_BLOCK`).
        blocks: Vec<Vec<f64>>,
        norms: Vec<f64>,
    },
}

/// Whether `v` (norm `norm`) joins leader `l` (norm `ln`): the one test of leader clustering
/// (a zero vector joins only a zero leader).
fn joins(l: &[f64], ln: f64, v: &[f64], norm: f64, cosine: f64) -> bool {
    if norm == 0.0 || ln == 0.0 {
        norm == ln
    } else {
        let dot: f64 = l.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
        dot / (norm * ln) >= cosine
    }
}

/// Makes `v` (norm `norm`) the next leader; returns its id.
fn new_leader(blocks: &mut Vec<Vec<f64>>, norms: &mut Vec<f64>, v: &[f64], norm: f64) -> usize {
    if norms.len().is_multiple_of(LEADER_BLOCK) {
        blocks.push(Vec::with_capacity(LEADER_BLOCK * v.len()));
    }
    blocks.last_mut().expect("a block").extend_from_slice(v);
    norms.push(norm);
    norms.len() - 1
}

/// Leaders per storage block, and vectors whose cosines with a block of leaders are taken in
/// one matrix product.
const LEADER_BLOCK: usize = 256;

/// How far below `cosine` a batched cosine may be and its leader still be tested exactly
/// (the product's rounding is ~1e-15; a leader below this cannot pass the exact test).
const LEADER_SLACK: f64 = 1e-9;

impl Grouper {
    pub(crate) fn new(smooth: bool, scale: f64, cosine: f64) -> Grouper {
        if smooth {
            Grouper::Leaders {
                cosine,
                blocks: Vec::new(),
                norms: Vec::new(),
            }
        } else {
            Grouper::Exact {
                scale: scale.max(1e-300),
                ids: HashMap::new(),
            }
        }
    }

    /// The group of one vector. Leader clustering scans the leaders and stops at the first
    /// that takes it (cheaper than a block's product when one vector arrives at a time).
    pub(crate) fn assign(&mut self, v: &[f64]) -> usize {
        let Grouper::Leaders {
            cosine,
            blocks,
            norms,
        } = self
        else {
            return self.assign_all(v, v.len()).first().copied().unwrap_or(0);
        };
        let (d, norm) = (v.len(), v.iter().map(|x| x * x).sum::<f64>().sqrt());
        let found = (0..norms.len()).find(|&j| {
            let r = j % LEADER_BLOCK;
            let l = &blocks[j / LEADER_BLOCK][r * d..(r + 1) * d];
            joins(l, norms[j], v, norm, *cosine)
        });
        found.unwrap_or_else(|| new_leader(blocks, norms, v, norm))
    }

    /// The group of each of the rows (`d` wide), in order: the same ids as [`Grouper::assign`]
    /// one row at a time. Leader clustering takes a block of vectors' cosines with each block
    /// of earlier leaders in one matrix product and tests exactly, first to last, only the
    /// leaders whose cosine is within [`LEADER_SLACK`] of passing: the same first leader as a
    /// scan of every leader, at the speed of a product, holding no more than the leaders.
    pub(crate) fn assign_all(&mut self, rows: &[f64], d: usize) -> Vec<usize> {
        let m = rows.len().checked_div(d).unwrap_or(0);
        match self {
            Grouper::Exact { scale, ids } => rows
                .chunks(d.max(1))
                .take(m)
                .map(|v| {
                    let next = ids.len();
                    *ids.entry(hash128(&grad_key(v, *scale))).or_insert(next)
                })
                .collect(),
            Grouper::Leaders {
                cosine,
                blocks,
                norms,
            } => {
                let cosine = *cosine;
                let mut out = Vec::with_capacity(m);
                let mut cos = vec![0.0; LEADER_BLOCK * LEADER_BLOCK];
                for block in rows.chunks(LEADER_BLOCK * d.max(1)).filter(|_| d > 0) {
                    let mb = block.len() / d;
                    let vnorms: Vec<f64> = block
                        .chunks(d)
                        .map(|v| v.iter().map(|x| x * x).sum::<f64>().sqrt())
                        .collect();
                    let unit: Vec<f64> = block
                        .chunks(d)
                        .zip(&vnorms)
                        .flat_map(|(v, &n)| {
                            v.iter().map(move |x| if n > 0.0 { x / n } else { 0.0 })
                        })
                        .collect();
                    let before = norms.len();
                    // The first earlier leader each vector joins, leader block by leader block.
                    let mut found: Vec<Option<usize>> = vec![None; mb];
                    for (b, lb) in blocks.iter().enumerate() {
                        let rows_b = (before - (b * LEADER_BLOCK).min(before)).min(LEADER_BLOCK);
                        if rows_b == 0
                            || found
                                .iter()
                                .zip(&vnorms)
                                .all(|(f, &n)| f.is_some() || n == 0.0)
                        {
                            break;
                        }
                        let c = &mut cos[..mb * rows_b];
                        faer::linalg::matmul::matmul(
                            faer::MatMut::from_row_major_slice_mut(c, mb, rows_b),
                            faer::Accum::Replace,
                            faer::MatRef::from_row_major_slice(&unit, mb, d),
                            faer::MatRef::from_row_major_slice(&lb[..rows_b * d], rows_b, d)
                                .transpose(),
                            1.0,
                            faer::Par::Seq,
                        );
                        for i in 0..mb {
                            if found[i].is_some() || vnorms[i] == 0.0 {
                                continue;
                            }
                            let v = &block[i * d..(i + 1) * d];
                            found[i] = (0..rows_b)
                                .filter(|&r| {
                                    let ln = norms[b * LEADER_BLOCK + r];
                                    ln > 0.0 && c[i * rows_b + r] / ln >= cosine - LEADER_SLACK
                                })
                                .find(|&r| {
                                    let j = b * LEADER_BLOCK + r;
                                    joins(&lb[r * d..(r + 1) * d], norms[j], v, vnorms[i], cosine)
                                })
                                .map(|r| b * LEADER_BLOCK + r);
                        }
                    }
                    for (i, v) in block.chunks(d).enumerate() {
                        let norm = vnorms[i];
                        let test = |blocks: &[Vec<f64>], j: usize| {
                            let r = j % LEADER_BLOCK;
                            let l = &blocks[j / LEADER_BLOCK][r * d..(r + 1) * d];
                            joins(l, norms[j], v, norm, cosine)
                        };
                        // Zero vectors scan every leader (only a zero leader takes them); the
                        // rest, the leaders this block added, after the earlier ones.
                        let id = if norm == 0.0 {
                            (0..norms.len()).find(|&j| test(blocks, j))
                        } else {
                            found[i].or_else(|| (before..norms.len()).find(|&j| test(blocks, j)))
                        };
                        out.push(id.unwrap_or_else(|| new_leader(blocks, norms, v, norm)));
                    }
                }
                out
            }
        }
    }

    pub(crate) fn distinct(&self) -> usize {
        match self {
            Grouper::Exact { ids, .. } => ids.len(),
            Grouper::Leaders { norms, .. } => norms.len(),
        }
    }
}

/// [`census`] of `model` on the examples `x` (`n x d_in`, row-major), streamed over chunks of
/// `chunk` examples: the same counts, while memory is set by the chunk and by the number of
/// distinct patterns and gradients (each held as a 128-bit hash; for smooth networks, each
/// leader's vector), never by an `n x width` array. Piecewise-linear networks take two passes:
/// the first finds the scale the gradients are quantised against.
pub fn census_streamed(
    model: &RuntimeModel,
    x: &[f64],
    cfg: &CensusConfig,
    chunk: usize,
) -> crate::Result<Vec<LayerCensus>> {
    use super::jacobian::{output_jacobians, Reuse};
    let n = model.check_input(x)?;
    let d_in = model.layers[0].d_in;
    let chunk = chunk.max(1);
    let n_layers = model.layers.len();
    let hidden = n_layers - 1;
    let smooth = !model.is_piecewise_linear();
    let d_out = model.d_out();
    let own = |k: usize| k.saturating_sub(1)..hidden;
    // Each chunk's trace and Jacobians, in example order.
    let each_chunk = |f: &mut dyn FnMut(&Trace, &OutputJacobians)| -> crate::Result<()> {
        for start in (0..n).step_by(chunk) {
            let end = (start + chunk).min(n);
            let trace = model.trace(&x[start * d_in..end * d_in])?;
            let jac = output_jacobians(model, &trace, Reuse::Patterns);
            f(&trace, &jac);
        }
        Ok(())
    };
    // Pass 1 (piecewise-linear): per layer and output, the largest |entry| of a counted
    // example's gradient (the combined gradient's scale is the largest of its outputs').
    let mut scales = vec![vec![0.0f64; d_out]; n_layers];
    if !smooth {
        each_chunk(&mut |trace, jac| {
            for (k, scale) in scales.iter_mut().enumerate() {
                let shared = &jac.per_layer[k];
                let dk = shared.cols;
                for i in 0..trace.n {
                    if near_zero(trace, own(k), i, cfg.zero_tol) {
                        continue;
                    }
                    let b = shared.of(i);
                    for (o, s) in scale.iter_mut().enumerate() {
                        *s = b[o * dk..(o + 1) * dk]
                            .iter()
                            .fold(*s, |a, v| a.max(v.abs()));
                    }
                }
            }
        })?;
    }
    struct Layer {
        counted: usize,
        own: HashSet<u128>,
        adjacent: HashSet<u128>,
        downstream: HashSet<u128>,
        per_output: Vec<Grouper>,
        combined: Grouper,
        sizes: Vec<usize>,
    }
    let mut layers: Vec<Layer> = (0..n_layers)
        .map(|k| Layer {
            counted: 0,
            own: HashSet::new(),
            adjacent: HashSet::new(),
            downstream: HashSet::new(),
            per_output: scales[k]
                .iter()
                .map(|&s| Grouper::new(smooth, s, cfg.cosine))
                .collect(),
            combined: Grouper::new(
                smooth,
                scales[k].iter().fold(0.0, |a, &b| a.max(b)),
                cfg.cosine,
            ),
            sizes: Vec::new(),
        })
        .collect();
    each_chunk(&mut |trace, jac| {
        for (k, c) in layers.iter_mut().enumerate() {
            let shared = &jac.per_layer[k];
            let dk = shared.cols;
            for i in 0..trace.n {
                if !smooth && near_zero(trace, own(k), i, cfg.zero_tol) {
                    continue;
                }
                c.counted += 1;
                if k >= 1 {
                    c.own.insert(hash128(&pattern_key(trace, k - 1..k, i)));
                }
                if k < hidden {
                    c.adjacent.insert(hash128(&pattern_key(trace, k..k + 1, i)));
                    c.downstream
                        .insert(hash128(&pattern_key(trace, k..hidden, i)));
                }
                let b = shared.of(i);
                for (o, g) in c.per_output.iter_mut().enumerate() {
                    g.assign(&b[o * dk..(o + 1) * dk]);
                }
                let id = c.combined.assign(b);
                if id == c.sizes.len() {
                    c.sizes.push(0);
                }
                c.sizes[id] += 1;
            }
        }
    })?;
    Ok(layers
        .into_iter()
        .enumerate()
        .map(|(k, c)| {
            finish(
                LayerCensus {
                    layer: k,
                    width: model.layers[k].d_in,
                    examples: c.counted,
                    ambiguous: n - c.counted,
                    layer_patterns: (k >= 1).then_some(c.own.len()),
                    adjacent_patterns: if k < hidden { c.adjacent.len() } else { 1 },
                    downstream_patterns: if k < hidden { c.downstream.len() } else { 1 },
                    gradients_per_output: c.per_output.iter().map(Grouper::distinct).collect(),
                    gradients_combined: 0,
                    appear_together: false,
                    top_region_share: 0.0,
                    regions_for_90pct: 0,
                    region_shares: vec![],
                },
                c.sizes,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Leader clustering as defined: each vector joins the first leader it passes, scanned.
    fn scan(rows: &[f64], d: usize, cosine: f64) -> Vec<usize> {
        let mut leaders: Vec<(&[f64], f64)> = Vec::new();
        rows.chunks(d)
            .map(|v| {
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                leaders
                    .iter()
                    .position(|(l, ln)| joins(l, *ln, v, norm, cosine))
                    .unwrap_or_else(|| {
                        leaders.push((v, norm));
                        leaders.len() - 1
                    })
            })
            .collect()
    }

    #[test]
    fn batched_leader_clustering_assigns_what_the_scan_assigns() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let d = 6;
        // 1,500 vectors: 700 distinct directions (more than two leader blocks), each repeated,
        // scaled, nudged just inside or outside the cosine, and zero vectors among them.
        let base: Vec<Vec<f64>> = (0..700)
            .map(|_| (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();
        let mut rows = Vec::new();
        for i in 0..1500 {
            let b = &base[rng.gen_range(0..base.len().min(i + 1))];
            match i % 5 {
                0 => rows.extend(std::iter::repeat_n(0.0, d)),
                1 => rows.extend(b.iter().map(|x| x * 3.0)),
                2 => rows.extend(b.iter().map(|x| x + rng.gen_range(-0.02..0.02))),
                _ => rows.extend(b.iter()),
            }
        }
        for cosine in [0.999, 0.99, 0.5] {
            let mut g = Grouper::new(true, 0.0, cosine);
            // Uneven calls, as chunks arrive.
            let mut ids = g.assign_all(&rows[..300 * d], d);
            ids.extend(g.assign_all(&rows[300 * d..301 * d], d));
            ids.push(g.assign(&rows[301 * d..302 * d]));
            ids.extend(g.assign_all(&rows[302 * d..], d));
            let want = scan(&rows, d, cosine);
            assert_eq!(ids, want, "cosine {cosine}");
            assert!(g.distinct() > 256 || cosine < 0.9, "{}", g.distinct());
        }
    }
}
