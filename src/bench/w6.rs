//! W6 of `bench peers`: a 784→512→512→10 ReLU classifier, the size of a small MNIST model, on
//! synthetic inputs (nothing can be downloaded where the benchmarks run): 60,000 training and
//! 10,000 evaluation inputs uniform in [0, 1)^784, labelled by a fixed random teacher network of
//! the same shape (its logits centred per class over all 70,000 inputs, so the classes are not
//! one class and noise). Five stages, each its own process on both sides so each reports its own
//! peak memory: one training epoch, every `∂y/∂x` and adjacent Jacobian, exact IG on every edge,
//! a 12-point faithfulness curve and PCA + PLS of the hidden layers.
//!
//! The exchange holds the data, the student's initial weights, the student after
//! [`PREP_EPOCHS`] epochs on our fused engine (what the analysis stages read), our exact IG
//! means (the reference the peer's Riemann sums are scored against) and the edge ranking the
//! faithfulness curve keeps (so both sides ablate the same edges). Nothing here is used by the
//! stages of a run; it must never write outside the exchange directory.

use super::side::{read_f32, write_arrays, Array};
use crate::eval::ablation::{forward_ablated, Ablation, Baselines, EdgeMask};
use crate::eval::faithfulness::top;
use crate::graph::ig::{edge_attributions, Mode, Target};
use crate::model::adam::{AdamConfig, AdamState};
use crate::model::fused::FusedNet;
use crate::model::net::{Batch, Net};
use crate::model::{Activation, Arch, Loss, RuntimeModel};
use crate::numeric::linalg::{r2_score, Pca, Pls};
use crate::probe::jacobian::{adjacent_jacobians, output_jacobians, Reuse, Shared};
use crate::runlog::write_atomic;
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;

pub(crate) const WIDTHS: [usize; 4] = [784, 512, 512, 10];
pub(crate) const TRAIN_N: usize = 60_000;
pub(crate) const EVAL_N: usize = 10_000;
pub(crate) const BATCH: usize = 128;
pub(crate) const LR: f64 = 1e-3;
/// Epochs the analysed student is trained for when the exchange is written.
pub(crate) const PREP_EPOCHS: usize = 3;
/// Examples (the first evaluation inputs) whose exact IG the IG stage computes.
pub(crate) const IG_EXAMPLES: usize = 100;
/// Examples the Jacobian stage takes at once (the adjacent blocks of 64 examples: 100 MB).
const JACOBIAN_CHUNK: usize = 64;
pub(crate) const FRACTIONS: [f64; 12] = [
    0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0,
];
const VERSION: u64 = 1;

fn arch() -> Arch {
    Arch {
        widths: WIDTHS.to_vec(),
        hidden: Activation::Relu,
    }
}

/// Per layer: `layers.K.weight` (`out x in`) and `layers.K.bias`, as PyTorch's state dict.
fn write_model(path: &Path, params: &[f32]) -> Result<()> {
    let model = arch().view(params)?;
    let names: Vec<(String, String)> = (0..model.layers.len())
        .map(|k| (format!("layers.{k}.weight"), format!("layers.{k}.bias")))
        .collect();
    let arrays: Vec<(&str, Vec<usize>, Array)> = model
        .layers
        .iter()
        .zip(&names)
        .flat_map(|(l, (w, b))| {
            [
                (w.as_str(), vec![l.d_out, l.d_in], Array::F32(&l.weight)),
                (b.as_str(), vec![l.d_out], Array::F32(&l.bias)),
            ]
        })
        .collect();
    write_arrays(path, &arrays)
}

fn read_model(path: &Path) -> Result<Vec<f32>> {
    let mut params = Vec::new();
    for k in 0..WIDTHS.len() - 1 {
        params.extend(read_f32(path, &format!("layers.{k}.weight"))?);
        params.extend(read_f32(path, &format!("layers.{k}.bias"))?);
    }
    Ok(params)
}

/// The data: `(train_x, train_y, x, y)`, labels one-hot.
fn data(seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    data_of(seed, TRAIN_N, EVAL_N)
}

/// [`data`] with `train` and `eval` rows.
fn data_of(seed: u64, train: usize, eval: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = train + eval;
    let d = WIDTHS[0];
    let x: Vec<f32> = (0..n * d).map(|_| rng.gen::<f32>()).collect();
    // The teacher: He-normal weights, zero biases.
    let teacher: Vec<f32> = WIDTHS
        .windows(2)
        .flat_map(|w| {
            let normal = Normal::new(0.0, (2.0 / w[0] as f64).sqrt()).expect("positive sd");
            let weights: Vec<f32> = (0..w[0] * w[1])
                .map(|_| normal.sample(&mut rng) as f32)
                .collect();
            weights.into_iter().chain(std::iter::repeat_n(0.0, w[1]))
        })
        .collect();
    let logits = arch()
        .view(&teacher)
        .expect("teacher shape")
        .trace_f32(&x)
        .expect("teacher inputs")
        .post
        .pop()
        .expect("outputs");
    let c = WIDTHS[3];
    let means = crate::numeric::linalg::column_means(&logits, n, c);
    let y: Vec<f32> = logits
        .chunks(c)
        .flat_map(|row| {
            let best = (0..c)
                .max_by(|&a, &b| (row[a] - means[a]).total_cmp(&(row[b] - means[b])))
                .expect("classes");
            (0..c).map(move |k| if k == best { 1.0 } else { 0.0 })
        })
        .collect();
    let (tx, ex) = x.split_at(train * d);
    let (ty, ey) = y.split_at(train * c);
    (tx.to_vec(), ty.to_vec(), ex.to_vec(), ey.to_vec())
}

/// PyTorch's `nn.Linear` initialisation: weights and biases uniform in ±1/√fan_in.
fn init(seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    WIDTHS
        .windows(2)
        .flat_map(|w| {
            let bound = 1.0 / (w[0] as f32).sqrt();
            (0..w[0] * w[1] + w[1])
                .map(|_| rng.gen_range(-bound..bound))
                .collect::<Vec<f32>>()
        })
        .collect()
}

/// `epochs` of Adam (constant `LR`, batch `BATCH`, the examples in order) on the fused engine,
/// from `params`.
fn train(params: Vec<f32>, x: &[f32], y: &[f32], epochs: usize) -> Result<Vec<f32>> {
    let arch = arch();
    let mut net = FusedNet::with_activations(&arch.widths, &arch.activations(), params)?;
    let mut params = net.params();
    let mut adam = AdamState::new(params.len());
    let cfg = AdamConfig::default();
    let (d, c) = (WIDTHS[0], WIDTHS[3]);
    let n = x.len() / d;
    for _ in 0..epochs {
        for s in (0..n).step_by(BATCH) {
            let e = (s + BATCH).min(n);
            let (_, _, g) = net.loss_and_grad(
                Batch {
                    x: &x[s * d..e * d],
                    y: &y[s * c..e * c],
                    n: e - s,
                },
                Loss::CrossEntropy,
            );
            adam.update(&cfg, LR as f32, &mut params, &g);
            net.set_params(&params);
        }
    }
    Ok(params)
}

/// Mean cross-entropy and accuracy of `outputs` (logits) against one-hot `y`.
fn loss_and_accuracy(outputs: &[f64], y: &[f32]) -> (f64, f64) {
    let c = WIDTHS[3];
    let (mut loss, mut right) = (0.0, 0usize);
    let rows = outputs.len() / c;
    for (o, t) in outputs.chunks(c).zip(y.chunks(c)) {
        let m = o.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + o.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let label = (0..c).find(|&k| t[k] > 0.5).expect("one-hot");
        loss += lse - o[label];
        let best = (0..c).max_by(|&a, &b| o[a].total_cmp(&o[b])).expect("c");
        right += usize::from(best == label);
    }
    (loss / rows as f64, right as f64 / rows as f64)
}

/// Per layer, one value per edge (`out x in`).
type PerEdge = Vec<Vec<f64>>;

/// Exact IG on every edge for each example's correct-class logit, zero baseline: per layer the
/// mean over the examples (`out x in`) and the mean |IG|.
fn exact_ig_means(model: &RuntimeModel, x: &[f32], y: &[f32]) -> Result<(PerEdge, PerEdge)> {
    let c = WIDTHS[3];
    let n = x.len() / WIDTHS[0];
    let trace = model.trace_f32(x)?;
    let labels: Vec<usize> = y
        .chunks(c)
        .map(|t| (0..c).find(|&k| t[k] > 0.5).expect("one-hot"))
        .collect();
    let mut means = Vec::new();
    let mut abs_means = Vec::new();
    for (l, layer) in model.layers.iter().enumerate() {
        let d = layer.d_in;
        let source: Vec<f64> = if l == 0 {
            x.iter().map(|&v| v as f64).collect()
        } else {
            trace.post[l - 1].clone()
        };
        let (mut sum, mut sum_abs) = (vec![0.0; layer.d_out * d], vec![0.0; layer.d_out * d]);
        for class in 0..c {
            let rows: Vec<usize> = (0..n).filter(|&i| labels[i] == class).collect();
            for part in rows.chunks(16) {
                let a: Vec<f64> = part
                    .iter()
                    .flat_map(|&i| source[i * d..(i + 1) * d].iter().copied())
                    .collect();
                let ig = edge_attributions(
                    model,
                    l,
                    &a,
                    &vec![0.0; d],
                    &Target::Outputs(vec![class]),
                    Mode::Exact,
                )?;
                for row in ig.chunks(sum.len()) {
                    for ((s, t), v) in sum.iter_mut().zip(sum_abs.iter_mut()).zip(row) {
                        *s += v;
                        *t += v.abs();
                    }
                }
            }
        }
        means.push(sum.iter().map(|v| v / n as f64).collect());
        abs_means.push(sum_abs.iter().map(|v| v / n as f64).collect());
    }
    Ok((means, abs_means))
}

/// Every edge (layer by layer, `j * d_in + i` within a layer) from the largest mean |IG| down,
/// ties by position.
fn ranking(abs_means: &[Vec<f64>]) -> Vec<usize> {
    let flat: Vec<f64> = abs_means.iter().flatten().copied().collect();
    let mut order: Vec<usize> = (0..flat.len()).collect();
    order.sort_by(|&a, &b| flat[b].total_cmp(&flat[a]).then(a.cmp(&b)));
    order
}

/// Writes W6's part of the exchange unless `dir` already holds this version of it.
pub fn prepare(dir: &Path) -> Result<()> {
    let stamp = dir.join("w6.json");
    if super::side::stamped(&stamp, VERSION) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
    eprintln!(
        "bench peers: writing W6's data and training its student for {PREP_EPOCHS} epochs ..."
    );
    let (tx, ty, x, y) = data(26);
    let (d, c) = (WIDTHS[0], WIDTHS[3]);
    write_arrays(
        &dir.join("w6_data.safetensors"),
        &[
            ("train_x", vec![TRAIN_N, d], Array::F32(&tx)),
            ("train_y", vec![TRAIN_N, c], Array::F32(&ty)),
            ("x", vec![EVAL_N, d], Array::F32(&x)),
            ("y", vec![EVAL_N, c], Array::F32(&y)),
        ],
    )?;
    let start = init(6);
    write_model(&dir.join("w6_init.safetensors"), &start)?;
    let trained = train(start, &tx, &ty, PREP_EPOCHS)?;
    write_model(&dir.join("w6.safetensors"), &trained)?;
    let model = arch().view(&trained)?;
    let (loss, accuracy) = loss_and_accuracy(&model.trace_f32(&x)?.post[2], &y);
    let shares: Vec<f64> = (0..c)
        .map(|k| y.chunks(c).filter(|t| t[k] > 0.5).count() as f64 / EVAL_N as f64)
        .collect();
    eprintln!("bench peers: W6 student: loss {loss:.4}, accuracy {:.2}% (largest class {:.2}%); exact IG on {IG_EXAMPLES} examples ...", 100.0 * accuracy, 100.0 * shares.iter().copied().fold(0.0, f64::max));
    let (means, abs_means) = exact_ig_means(&model, &x[..IG_EXAMPLES * d], &y[..IG_EXAMPLES * c])?;
    let order: Vec<f64> = ranking(&abs_means).iter().map(|&e| e as f64).collect();
    let names: Vec<String> = (0..means.len()).map(|l| format!("mean_ig_{l}")).collect();
    let mut arrays: Vec<(&str, Vec<usize>, Array)> = means
        .iter()
        .zip(&names)
        .zip(&model.layers)
        .map(|((m, n), l)| (n.as_str(), vec![l.d_out, l.d_in], Array::F64(m)))
        .collect();
    arrays.push(("order", vec![order.len()], Array::F64(&order)));
    write_arrays(&dir.join("w6_ig.safetensors"), &arrays)?;
    let info = json!({
        "version": VERSION, "batch": BATCH, "lr": LR, "ig_examples": IG_EXAMPLES,
        "fractions": FRACTIONS, "prep_epochs": PREP_EPOCHS,
        "student": {"loss": loss, "accuracy": accuracy}, "class_shares": shares,
    });
    write_atomic(&stamp, info.to_string().as_bytes())
}

fn variant(name: &str, seconds: f64, rate: f64, unit: &str) -> Value {
    json!({"name": name, "seconds": seconds, "rate": rate, "unit": unit})
}

/// Our side of one W6 stage (`train`, `jacobians`, `ig`, `faithfulness`, `pca`).
pub fn stage(name: &str, dir: &Path) -> Result<Value> {
    let file = dir.join("w6_data.safetensors");
    let x = read_f32(&file, "x")?;
    let y = read_f32(&file, "y")?;
    let trained =
        || -> Result<RuntimeModel> { arch().view(&read_model(&dir.join("w6.safetensors"))?) };
    Ok(match name {
        "train" => {
            let tx = read_f32(&file, "train_x")?;
            let ty = read_f32(&file, "train_y")?;
            let start = read_model(&dir.join("w6_init.safetensors"))?;
            let t0 = Instant::now();
            let params = train(start, &tx, &ty, 1)?;
            let s = t0.elapsed().as_secs_f64();
            let model = arch().view(&params)?;
            let (loss, accuracy) = loss_and_accuracy(&model.trace_f32(&x)?.post[2], &y);
            json!({"loss": loss, "accuracy": accuracy,
                   "variants": [variant("circuitscope train (fused)", s, TRAIN_N as f64 / s, "examples/s")]})
        }
        "jacobians" => {
            let model = trained()?;
            let d = WIDTHS[0];
            let layers = model.layers.len();
            let mut sums = vec![0.0; layers + 1];
            let t0 = Instant::now();
            for chunk in x.chunks(JACOBIAN_CHUNK * d) {
                let trace = model.trace_f32(chunk)?;
                let out = output_jacobians(&model, &trace, Reuse::Patterns);
                sums[0] += abs_total(&out.per_layer[0]);
                for (k, sum) in sums.iter_mut().skip(1).enumerate() {
                    *sum += abs_total(&adjacent_jacobians(&model, &trace, k, Reuse::Patterns));
                }
            }
            let s = t0.elapsed().as_secs_f64();
            json!({"examples": EVAL_N, "abs_sums": sums,
                   "variants": [variant("circuitscope (pattern reuse)", s, (EVAL_N * (layers + 1)) as f64 / s, "Jacobians/s")]})
        }
        "ig" => {
            let model = trained()?;
            let (d, c) = (WIDTHS[0], WIDTHS[3]);
            let t0 = Instant::now();
            let (means, _) = exact_ig_means(&model, &x[..IG_EXAMPLES * d], &y[..IG_EXAMPLES * c])?;
            let s = t0.elapsed().as_secs_f64();
            std::hint::black_box(&means);
            let edges: usize = model.layers.iter().map(|l| l.d_in * l.d_out).sum();
            json!({"examples": IG_EXAMPLES, "edges": edges,
                   "variants": [{"name": "circuitscope exact", "seconds": s, "rate": (edges * IG_EXAMPLES) as f64 / s, "unit": "edge attributions/s", "max_error": 0.0}]})
        }
        "faithfulness" => {
            let model = trained()?;
            let order: Vec<usize> = read_f64(&dir.join("w6_ig.safetensors"), "order")?
                .iter()
                .map(|&v| v as usize)
                .collect();
            let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let t0 = Instant::now();
            let base = Baselines::streamed(&model, &xs, Ablation::Mean, 0)?;
            let sizes: Vec<usize> = model.layers.iter().map(|l| l.d_in * l.d_out).collect();
            let mut losses = Vec::new();
            for &f in &FRACTIONS {
                let mut mask = EdgeMask::all(&model, false);
                for &e in &order[..top(order.len(), f)] {
                    let (mut l, mut i) = (0, e);
                    while i >= sizes[l] {
                        i -= sizes[l];
                        l += 1;
                    }
                    mask.kept[l][i] = true;
                }
                losses.push(loss_and_accuracy(&forward_ablated(&model, &xs, &mask, &base)?, &y).0);
            }
            let s = t0.elapsed().as_secs_f64();
            let (none, full) = (losses[0], losses[losses.len() - 1]);
            let curve: Vec<f64> = losses.iter().map(|m| (none - m) / (none - full)).collect();
            json!({"curve": curve,
                   "variants": [variant("circuitscope edge-ablated passes", s, FRACTIONS.len() as f64 / s, "curve points/s")]})
        }
        "pca" => {
            let model = trained()?;
            let trace = model.trace_f32(&x)?;
            let (d1, d2) = (WIDTHS[1], WIDTHS[2]);
            let t0 = Instant::now();
            let ratios: Vec<Vec<f64>> = [(&trace.post[0], d1), (&trace.post[1], d2)]
                .iter()
                .map(|(h, d)| Pca::fit(h, EVAL_N, *d).map(|p| p.ratios[..8].to_vec()))
                .collect::<Result<_>>()?;
            let pls = Pls::fit(&trace.post[0], &trace.post[1], EVAL_N, d1, d2, 8)?;
            let r2 = r2_score(
                &trace.post[1],
                &pls.predict(&trace.post[0], EVAL_N),
                EVAL_N,
                d2,
            );
            let s = t0.elapsed().as_secs_f64();
            json!({"pca_ratios": ratios, "pls_r2": [r2],
                   "variants": [variant("circuitscope PCA + PLS", s, 1.0 / s, "runs/s")]})
        }
        other => return Err(Error::Invalid(format!("W6 has no stage `{other}`"))),
    })
}

/// Σ |entry| over every example's Jacobian: each shared block's sum, counted once per example
/// that uses it.
fn abs_total<T: Copy + Into<f64>>(s: &Shared<T>) -> f64 {
    let per_block: Vec<f64> = s
        .blocks
        .chunks((s.rows * s.cols).max(1))
        .map(|b| b.iter().map(|&v| v.into().abs()).sum())
        .collect();
    s.index.iter().map(|&i| per_block[i]).sum()
}

fn read_f64(path: &Path, name: &str) -> Result<Vec<f64>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bad_file(path, format!("not a safetensors file: {e}")))?;
    let t = st
        .tensor(name)
        .map_err(|e| Error::bad_file(path, format!("no tensor `{name}`: {e}")))?;
    if t.dtype() != safetensors::Dtype::F64 {
        return Err(Error::bad_file(path, format!("`{name}` is not F64")));
    }
    Ok(t.data()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_accuracy_are_known_answers() {
        // Two examples of 10 classes: logits 0 except one; labels 3 and 7.
        let mut out = vec![0.0; 20];
        out[3] = 2.0; // right, and confident
        out[10 + 1] = 1.0; // wrong: class 1 beats the label 7
        let mut y = vec![0.0f32; 20];
        y[3] = 1.0;
        y[10 + 7] = 1.0;
        let (loss, acc) = loss_and_accuracy(&out, &y);
        let first = (9.0f64 + 2f64.exp()).ln() - 2.0;
        let second = (9.0f64 + 1f64.exp()).ln();
        assert!((loss - (first + second) / 2.0).abs() < 1e-12, "{loss}");
        assert_eq!(acc, 0.5);
    }

    #[test]
    fn the_ranking_is_by_mean_abs_ig_then_position_across_layers() {
        let ranked = ranking(&[vec![0.5, 0.0, 2.0], vec![0.0, 2.0]]);
        // Edges 2 and 4 tie at 2.0 (the earlier first), then 0.5, then the zeros in order.
        assert_eq!(ranked, vec![2, 4, 0, 1, 3]);
    }

    #[test]
    fn abs_totals_count_a_shared_block_once_per_example() {
        let s = Shared::<f32> {
            rows: 1,
            cols: 2,
            index: vec![0, 1, 0],
            blocks: vec![1.0, -2.0, 0.5, 0.5],
        };
        assert_eq!(abs_total(&s), 3.0 + 1.0 + 3.0);
    }

    #[test]
    fn the_teacher_labels_every_class_and_the_data_is_reproducible() {
        let (tx, ty, x, y) = data_of(26, 300, 1000);
        assert_eq!((tx.len(), x.len()), (300 * 784, 1000 * 784));
        let c = WIDTHS[3];
        let shares: Vec<usize> = (0..c)
            .map(|k| y.chunks(c).filter(|t| t[k] > 0.5).count())
            .collect();
        // Centred logits: no class is empty, none is most of the data.
        assert!(shares.iter().all(|&s| s > 0 && s < 500), "{shares:?}");
        assert!(ty.chunks(c).all(|t| t.iter().sum::<f32>() == 1.0));
        assert_eq!(data_of(26, 300, 1000).3, y);
    }
}
