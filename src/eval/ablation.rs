//! Edge ablation in the real forward pass.
//!
//! Edge `i → j` from `h_l` to `h_{l+1}` ablated means: in `j`'s pre-activation only, `a_i` is
//! replaced by its baseline value `a'_i`, so `z_j = b_j + Σ_i w_ji · (kept ? a_i : a'_i)`. The
//! activations `a` are those of the ablated run itself (ablation propagates); the baselines come
//! from the clean model: zero, the clean mean over the data, or the clean activations of another
//! example (resample). Nothing else about the model changes. This module only runs models.

use crate::model::RuntimeModel;
use crate::{Error, Result};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// How an ablated edge's source activation is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ablation {
    Zero,
    Mean,
    Resample,
}

/// Which edges are kept: `kept[l][j * d_l + i]` for the edge `i → j` of layer `l`.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeMask {
    pub kept: Vec<Vec<bool>>,
}

impl EdgeMask {
    /// Every edge kept (the clean model) or none.
    pub fn all(model: &RuntimeModel, keep: bool) -> EdgeMask {
        EdgeMask {
            kept: model
                .layers
                .iter()
                .map(|l| vec![keep; l.d_in * l.d_out])
                .collect(),
        }
    }
}

/// Examples an ablated forward pass runs at once: [`forward_ablated`] streams over the
/// examples in chunks of this many, so its memory is set by the model and the chunk.
pub const ABLATION_CHUNK: usize = 4096;

/// The baselines of every example: the value that replaces `a_i` in each layer.
#[derive(Debug, Clone)]
pub struct Baselines {
    pub kind: Ablation,
    pub n: usize,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// Per layer `l`, `n x d_l`, every example's baseline held ([`Baselines::new`]).
    Full(Vec<Vec<f64>>),
    /// Per layer, one row every example shares (zero, or the clean mean).
    Shared(Vec<Vec<f64>>),
    /// Resampling: example `r` takes the clean activations of example `perm[r]`, computed
    /// chunk by chunk from the inputs when they are needed.
    Perm(Vec<usize>),
}

impl Baselines {
    /// Baselines for the examples `x` (`n x d_in`) that hold no `n x width` array: zero and
    /// mean baselines keep one row per layer (the mean streamed over the examples in chunks),
    /// resampling keeps the permutation. For [`forward_ablated`]; [`Baselines::layer`] is not
    /// available on them (use [`Baselines::new`] where every example's baseline is read).
    pub fn streamed(
        model: &RuntimeModel,
        x: &[f64],
        kind: Ablation,
        seed: u64,
    ) -> Result<Baselines> {
        let n = model.check_input(x)?;
        let d_in = model.layers[0].d_in;
        let widths: Vec<usize> = model.layers.iter().map(|l| l.d_in).collect();
        let source = match kind {
            Ablation::Zero => Source::Shared(widths.iter().map(|&d| vec![0.0; d]).collect()),
            Ablation::Mean => {
                let mut means =
                    model.mean_activations(n, &|r| x[r.start * d_in..r.end * d_in].to_vec())?;
                means.truncate(widths.len());
                Source::Shared(means)
            }
            Ablation::Resample => Source::Perm(permutation(n, seed)),
        };
        Ok(Baselines { kind, n, source })
    }

    /// Rows `rows` of every layer's baselines (layer 0: the inputs'), `x` the examples the
    /// baselines were made for; for shared baselines, the one row every example has.
    fn chunk(
        &self,
        model: &RuntimeModel,
        x: &[f64],
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<std::borrow::Cow<'_, [f64]>>> {
        use std::borrow::Cow;
        Ok(match &self.source {
            Source::Full(per_layer) => per_layer
                .iter()
                .map(|h| {
                    let d = h.len() / self.n.max(1);
                    Cow::Borrowed(&h[rows.start * d..rows.end * d])
                })
                .collect(),
            // One row per layer, every example's (see `ablated_rows`).
            Source::Shared(rows_of) => rows_of.iter().map(|b| Cow::Borrowed(&b[..])).collect(),
            Source::Perm(perm) => {
                let d_in = model.layers[0].d_in;
                let xs: Vec<f64> = rows
                    .flat_map(|r| x[perm[r] * d_in..(perm[r] + 1) * d_in].iter().copied())
                    .collect();
                let trace = model.trace(&xs)?;
                let mut out = vec![Cow::Owned(xs)];
                out.extend(
                    trace
                        .post
                        .into_iter()
                        .take(model.layers.len() - 1)
                        .map(Cow::Owned),
                );
                out
            }
        })
    }

    /// Baselines for the examples `x` (`n x d_in`); `seed` fixes the resampling permutation.
    pub fn new(model: &RuntimeModel, x: &[f64], kind: Ablation, seed: u64) -> Result<Baselines> {
        let trace = model.trace(x)?;
        let n = trace.n;
        let mut clean = vec![x.to_vec()];
        clean.extend(trace.post.into_iter().take(model.layers.len() - 1));
        let perm = permutation(n, seed);
        let per_layer = clean
            .iter()
            .map(|h| {
                let d = h.len() / n;
                match kind {
                    Ablation::Zero => vec![0.0; n * d],
                    Ablation::Mean => {
                        let m = crate::numeric::linalg::column_means(h, n, d);
                        (0..n).flat_map(|_| m.iter().copied()).collect()
                    }
                    Ablation::Resample => perm
                        .iter()
                        .flat_map(|&p| h[p * d..(p + 1) * d].iter().copied())
                        .collect(),
                }
            })
            .collect();
        Ok(Baselines {
            kind,
            n,
            source: Source::Full(per_layer),
        })
    }

    /// Layer `l`'s baselines, `n x d_l` (layer 0: the inputs'), of baselines made by
    /// [`Baselines::new`].
    ///
    /// # Panics
    /// On [`Baselines::streamed`] ones, which hold no such array.
    pub fn layer(&self, l: usize) -> &[f64] {
        match &self.source {
            Source::Full(per_layer) => &per_layer[l],
            _ => panic!("Baselines::layer needs every example's baselines (Baselines::new)"),
        }
    }
}

/// `z (n x d_out) += src (n x d_in) · wᵀ`, `w` being `d_out x d_in` with `nonzero` entries that
/// may be non-zero (none: nothing to add). Summing only the kept edges of a sparse kept set was
/// tried and was slower at every share on W6's curve (scalar gathers against faer's products).
fn add_product(
    z: &mut [f64],
    src: &[f64],
    w: &[f64],
    nonzero: usize,
    (d_in, d_out): (usize, usize),
) {
    let n = z.len() / d_out.max(1);
    if nonzero == 0 || n == 0 {
        return;
    }
    matmul(
        MatMut::from_row_major_slice_mut(z, n, d_out),
        Accum::Add,
        MatRef::from_row_major_slice(src, n, d_in),
        MatRef::from_row_major_slice(w, d_out, d_in).transpose(),
        1.0,
        Par::rayon(0),
    );
}

/// The seeded permutation of `n` examples resampling reads.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    perm
}

/// The outputs (`n x d_out`) of `model` on `x` with the edges not in `mask` ablated.
pub fn forward_ablated(
    model: &RuntimeModel,
    x: &[f64],
    mask: &EdgeMask,
    base: &Baselines,
) -> Result<Vec<f64>> {
    let n = model.check_input(x)?;
    if n != base.n {
        return Err(Error::Data(format!(
            "ablation: {n} examples but baselines for {}",
            base.n
        )));
    }
    if mask.kept.len() != model.layers.len()
        || mask
            .kept
            .iter()
            .zip(&model.layers)
            .any(|(k, l)| k.len() != l.d_in * l.d_out)
    {
        return Err(Error::Data(
            "ablation: the edge mask does not match the model's layers".into(),
        ));
    }
    let d_in0 = model.layers[0].d_in;
    let split: Vec<Split> = model
        .layers
        .iter()
        .zip(&mask.kept)
        .map(|(layer, kept)| Split::new(layer, kept))
        .collect();
    let shared = matches!(base.source, Source::Shared(_));
    let mut out = Vec::with_capacity(n * model.d_out());
    for start in (0..n).step_by(ABLATION_CHUNK) {
        let end = (start + ABLATION_CHUNK).min(n);
        let bases = base.chunk(model, x, start..end)?;
        out.extend(ablated_rows(
            model,
            &x[start * d_in0..end * d_in0],
            &split,
            &bases,
            shared,
        ));
    }
    Ok(out)
}

/// A layer's weights split by an edge mask, in f64: the kept edges' (`W⊙M`) and the ablated
/// edges' (`W⊙¬M`), each `d_out x d_in`, with how many edges each holds.
struct Split {
    kept: Vec<f64>,
    cut: Vec<f64>,
    kept_count: usize,
}

impl Split {
    fn new(layer: &crate::model::view::Layer, kept: &[bool]) -> Split {
        let (mut w_kept, mut w_cut) = (vec![0.0; kept.len()], vec![0.0; kept.len()]);
        for ((&w, &k), (a, b)) in layer
            .weight
            .iter()
            .zip(kept)
            .zip(w_kept.iter_mut().zip(w_cut.iter_mut()))
        {
            if k {
                *a = w as f64;
            } else {
                *b = w as f64;
            }
        }
        Split {
            kept: w_kept,
            cut: w_cut,
            kept_count: kept.iter().filter(|&&k| k).count(),
        }
    }
}

/// [`forward_ablated`] on the rows `x` with their baselines `bases` (per layer; `shared`: one
/// row per layer, every example's). Each layer is `z = b + A·(W⊙M)ᵀ + B·(W⊙¬M)ᵀ` with `A` the
/// rows' activations, `B` their baselines and `M` the kept edges: two matrix products, or one
/// and a vector when the baselines are shared.
fn ablated_rows(
    model: &RuntimeModel,
    x: &[f64],
    split: &[Split],
    bases: &[std::borrow::Cow<'_, [f64]>],
    shared: bool,
) -> Vec<f64> {
    let n = x.len() / model.layers[0].d_in.max(1);
    let mut h = x.to_vec();
    for ((l, layer), w) in model.layers.iter().enumerate().zip(split) {
        let (d_in, d_out) = (layer.d_in, layer.d_out);
        let cut_count = d_in * d_out - w.kept_count;
        // The bias, plus the ablated edges' constant share when every row has the same baselines.
        let mut row0: Vec<f64> = layer.bias.iter().map(|&b| b as f64).collect();
        if cut_count > 0 && shared {
            let b0 = &bases[l][..d_in];
            for (j, r) in row0.iter_mut().enumerate() {
                *r += w.cut[j * d_in..(j + 1) * d_in]
                    .iter()
                    .zip(b0)
                    .map(|(w, b)| w * b)
                    .sum::<f64>();
            }
        }
        let mut z = row0.repeat(n);
        add_product(&mut z, &h, &w.kept, w.kept_count, (d_in, d_out));
        if cut_count > 0 && !shared {
            add_product(&mut z, &bases[l], &w.cut, cut_count, (d_in, d_out));
        }
        z.iter_mut()
            .for_each(|v| *v = layer.activation.apply_f64(*v));
        h = z;
    }
    h
}

crate::choices!(Ablation {
    Zero => "zero": "an ablated edge carries zero",
    Mean => "mean": "an ablated edge carries its source's mean activation",
    Resample => "resample": "an ablated edge carries its source's activation on another example",
});
