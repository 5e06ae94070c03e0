//! The cloze-gradient embedder (dfdx, compile-time shapes) and its supervised upper bound.
//!
//! One example is one model seen through [`POINTS`] inputs drawn fresh (uniform on [-1, 1],
//! sorted, shared by every model of the batch). The model's exact input gradients are split
//! into its *linear pieces* (ReLU patterns); whole pieces are masked until at least the mask
//! ratio of the points is hidden, so no visible neighbour in the same piece gives a masked
//! gradient away. The encoder reads `[x, visible gradients, mask]` and ends in a linear
//! bottleneck `z` (the embedding); the decoder reads `z` and the points `x` and predicts every
//! gradient, scored on the masked points only. Because the decoder is told where to predict,
//! `z` need not encode the sample, only the function. A model's embedding is the mean `z` over
//! [`EVAL_DRAWS`] fixed draws. This module trains and embeds; it must never see a function
//! label except in the supervised classifier, which exists to bound what labels could buy.

use super::zoo::gradients;
use crate::data::split_rng;
use crate::model::RuntimeModel;
use crate::{invalid, Result};
use dfdx::nn::builders::{Linear, ReLU};
use dfdx::nn::{BuildOnDevice, DeviceBuildExt, Module, ModuleMut, TensorCollection, ZeroGrads};
use dfdx::optim::{Adam, Optimizer};
use dfdx::prelude::{cross_entropy_with_logits_loss, PutTape, SplitTape};
use dfdx::shapes::{Const, Rank0};
use dfdx::tensor::{AsArray, Cpu, Gradients, Tensor, TensorFrom, Trace};
use dfdx::tensor_ops::{AdamConfig, Backward, SumTo};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Inputs per model per example.
pub const POINTS: usize = 64;
/// Fixed draws a model's embedding (or a classifier's logits) is averaged over.
pub const EVAL_DRAWS: usize = 8;
/// Bottleneck widths this build has compiled.
pub const BOTTLENECKS: [usize; 5] = [2, 4, 8, 16, 32];
/// The supervised classifier's output width: at most this many functions.
pub const MAX_CLASSES: usize = 32;

type Encoder<const K: usize> = (
    Linear<{ 3 * POINTS }, 128>,
    ReLU,
    Linear<128, 128>,
    ReLU,
    Linear<128, K>,
);
type DecoderTail = (ReLU, Linear<128, 128>, ReLU, Linear<128, POINTS>);
/// Encoder, decoder input from `z`, decoder input from `x`, decoder tail.
type Embedder<const K: usize> = (Encoder<K>, Linear<K, 128>, Linear<POINTS, 128>, DecoderTail);
type Classifier = Encoder<MAX_CLASSES>;

type Rows<const C: usize, T = dfdx::tensor::NoneTape> = Tensor<(usize, Const<C>), f32, Cpu, T>;

/// How the embedder is trained.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClozeConfig {
    pub bottleneck: usize,
    /// Share of the points hidden, by whole pieces.
    pub mask_ratio: f64,
    pub steps: usize,
    /// Models per step.
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Default for ClozeConfig {
    fn default() -> Self {
        ClozeConfig {
            bottleneck: 4,
            mask_ratio: 0.5,
            steps: 3000,
            batch: 32,
            lr: 1e-3,
            seed: 0,
        }
    }
}

impl ClozeConfig {
    pub fn validate(&self) -> Result<()> {
        if !BOTTLENECKS.contains(&self.bottleneck) {
            invalid!(
                "bottleneck {} is not one of the compiled widths {BOTTLENECKS:?}",
                self.bottleneck
            );
        }
        if !(self.mask_ratio > 0.0 && self.mask_ratio < 1.0) {
            invalid!(
                "mask ratio must lie strictly between 0 and 1, got {}",
                self.mask_ratio
            );
        }
        if self.steps == 0 || self.batch == 0 {
            invalid!("embedder steps and batch must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            invalid!("embedder lr must be positive, got {}", self.lr);
        }
        Ok(())
    }
}

/// `POINTS` inputs uniform on [-1, 1], sorted.
pub fn sample_points(rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut x: Vec<f64> = (0..POINTS).map(|_| rng.gen_range(-1.0..=1.0)).collect();
    x.sort_by(f64::total_cmp);
    x
}

/// Hides whole pieces, in random order, until at least `ratio` of the points are hidden.
/// `piece[i]` is point i's piece id; returns which points are hidden.
pub fn mask_pieces(piece: &[usize], ratio: f64, rng: &mut ChaCha8Rng) -> Vec<bool> {
    let mut ids: Vec<usize> = piece.to_vec();
    ids.sort();
    ids.dedup();
    ids.shuffle(rng);
    let target = (ratio * piece.len() as f64).ceil() as usize;
    let mut hidden = vec![false; piece.len()];
    let mut count = 0;
    for id in ids {
        if count >= target {
            break;
        }
        for (h, &p) in hidden.iter_mut().zip(piece) {
            if p == id {
                *h = true;
                count += 1;
            }
        }
    }
    hidden
}

/// One batch of examples, flat row-major.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub rows: usize,
    /// `rows x 3·POINTS`: points, visible gradients (0 where hidden), mask (1 where hidden).
    pub encoder: Vec<f32>,
    /// `rows x POINTS`: the points again, for the decoder.
    pub points: Vec<f32>,
    /// `rows x POINTS`: every true gradient (scaled).
    pub target: Vec<f32>,
    /// `rows x POINTS`: 1 where hidden.
    pub mask: Vec<f32>,
}

impl Batch {
    /// Builds examples for `models` at points `x`; `ratio` 0 hides nothing.
    pub fn build(
        models: &[&RuntimeModel],
        x: &[f64],
        ratio: f64,
        scale: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Batch> {
        let mut b = Batch {
            rows: models.len(),
            ..Batch::default()
        };
        for m in models {
            let (g, piece) = gradients(m, x)?;
            let hidden = if ratio > 0.0 {
                mask_pieces(&piece, ratio, rng)
            } else {
                vec![false; x.len()]
            };
            let gs: Vec<f32> = g.iter().map(|v| (v / scale) as f32).collect();
            b.encoder.extend(x.iter().map(|&v| v as f32));
            b.encoder.extend(
                gs.iter()
                    .zip(&hidden)
                    .map(|(&v, &h)| if h { 0.0 } else { v }),
            );
            b.encoder.extend(hidden.iter().map(|&h| h as u8 as f32));
            b.points.extend(x.iter().map(|&v| v as f32));
            b.target.extend(&gs);
            b.mask.extend(hidden.iter().map(|&h| h as u8 as f32));
        }
        Ok(b)
    }

    fn hidden(&self) -> f32 {
        self.mask.iter().sum::<f32>().max(1.0)
    }
}

/// Root mean square of the models' input gradients on a fixed grid: gradients are divided by
/// it so the embedder sees values of order one.
pub fn gradient_scale(models: &[&RuntimeModel]) -> Result<f64> {
    let grid: Vec<f64> = (0..POINTS)
        .map(|i| -1.0 + 2.0 * i as f64 / (POINTS - 1) as f64)
        .collect();
    let mut sum = 0.0;
    let mut n = 0usize;
    for m in models {
        let (g, _) = gradients(m, &grid)?;
        sum += g.iter().map(|v| v * v).sum::<f64>();
        n += g.len();
    }
    Ok((sum / n.max(1) as f64).sqrt().max(1e-12))
}

/// One point of the embedder's loss curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossPoint {
    pub step: usize,
    /// Masked-gradient MSE on this step's training batch (scaled units).
    pub train: f64,
    /// The same on the held-out models' fixed draws.
    pub val: f64,
}

/// What training the embedder gives.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// One embedding per model of the training set, then of the held-out set.
    pub train: Vec<Vec<f64>>,
    pub val: Vec<Vec<f64>>,
    pub losses: Vec<LossPoint>,
    pub seconds: f64,
}

fn cosine_lr(lr: f64, step: usize, total: usize) -> f64 {
    let p = step as f64 / total.max(1) as f64;
    lr * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

/// Fixed draws (points and masks) for embedding `models`.
fn eval_batches(models: &[&RuntimeModel], ratio: f64, scale: f64, seed: u64) -> Result<Vec<Batch>> {
    (0..EVAL_DRAWS)
        .map(|d| {
            let mut rng = split_rng(seed, 7_000 + d as u64);
            let x = sample_points(&mut rng);
            Batch::build(models, &x, ratio, scale, &mut rng)
        })
        .collect()
}

/// Batches of items drawn without replacement, reshuffled after every pass.
struct Picker {
    order: Vec<usize>,
    cursor: usize,
}

impl Picker {
    fn new(n: usize) -> Picker {
        Picker {
            order: (0..n).collect(),
            cursor: n,
        }
    }

    fn batch<T: Copy>(&mut self, items: &[T], size: usize, rng: &mut impl Rng) -> Vec<T> {
        let mut picked = Vec::with_capacity(size);
        while picked.len() < size.min(items.len()) {
            if self.cursor == self.order.len() {
                self.order.shuffle(rng);
                self.cursor = 0;
            }
            picked.push(items[self.order[self.cursor]]);
            self.cursor += 1;
        }
        picked
    }
}

/// A device, a built network `M`, its Adam and a gradient buffer.
type Fresh<M> = (
    Cpu,
    <M as BuildOnDevice<Cpu, f32>>::Built,
    Adam<<M as BuildOnDevice<Cpu, f32>>::Built, f32, Cpu>,
    Gradients<f32, Cpu>,
);

/// A dfdx network `M` initialised from `cfg.seed`, its Adam at `cfg.lr` and a gradient buffer.
fn fresh<M>(cfg: &ClozeConfig) -> Fresh<M>
where
    M: BuildOnDevice<Cpu, f32>,
    M::Built: TensorCollection<f32, Cpu> + ZeroGrads<f32, Cpu>,
{
    let dev = Cpu::seed_from_u64(cfg.seed);
    let model = dev.build_module::<M, f32>();
    let opt = Adam::new(
        &model,
        AdamConfig {
            lr: cfg.lr,
            ..Default::default()
        },
    );
    let grads = model.alloc_grads();
    (dev, model, opt, grads)
}

/// Trains the cloze embedder on `train` models and embeds `train` and `val` models. Every
/// `every` steps, `on_loss` gets the training and held-out losses.
pub fn train_embedder(
    cfg: &ClozeConfig,
    train: &[&RuntimeModel],
    val: &[&RuntimeModel],
    scale: f64,
    every: usize,
    on_loss: &mut dyn FnMut(LossPoint),
) -> Result<Embedded> {
    cfg.validate()?;
    if train.is_empty() || val.is_empty() {
        invalid!("the embedder needs training and held-out models");
    }
    let job = Job {
        cfg,
        train,
        val,
        scale,
        every,
        on_loss,
    };
    match cfg.bottleneck {
        2 => run::<2>(job),
        4 => run::<4>(job),
        8 => run::<8>(job),
        16 => run::<16>(job),
        32 => run::<32>(job),
        k => invalid!("bottleneck {k} is not compiled"),
    }
}

/// One embedder's training: the arguments of [`train_embedder`].
struct Job<'a, 'f> {
    cfg: &'a ClozeConfig,
    train: &'a [&'a RuntimeModel],
    val: &'a [&'a RuntimeModel],
    scale: f64,
    every: usize,
    on_loss: &'f mut dyn FnMut(LossPoint),
}

fn run<const K: usize>(job: Job) -> Result<Embedded> {
    let (cfg, train, val, scale) = (job.cfg, job.train, job.val, job.scale);
    let (every, on_loss) = (job.every, job.on_loss);
    let started = std::time::Instant::now();
    let (dev, mut model, mut opt, mut grads) = fresh::<Embedder<K>>(cfg);
    let mut rng = split_rng(cfg.seed, 6_000);
    let val_draws = eval_batches(val, cfg.mask_ratio, scale, cfg.seed ^ 0x5eed)?;
    let mut losses = Vec::new();
    let mut picker = Picker::new(train.len());
    for step in 0..cfg.steps {
        let picked = picker.batch(train, cfg.batch, &mut rng);
        let x = sample_points(&mut rng);
        let b = Batch::build(&picked, &x, cfg.mask_ratio, scale, &mut rng)?;
        opt.cfg.lr = cosine_lr(cfg.lr, step, cfg.steps);
        model.zero_grads(&mut grads);
        let enc: Rows<{ 3 * POINTS }> = dev.tensor((b.encoder.clone(), (b.rows, Const)));
        let q: Rows<POINTS> = dev.tensor((b.points.clone(), (b.rows, Const)));
        let target: Rows<POINTS> = dev.tensor((b.target.clone(), (b.rows, Const)));
        let mask: Rows<POINTS> = dev.tensor((b.mask.clone(), (b.rows, Const)));
        let z = model.0.forward_mut(enc.traced(grads));
        let (z, tape) = z.split_tape();
        let hx = model.2.forward_mut(q.put_tape(tape));
        let (hx, tape) = hx.split_tape();
        let hz = model.1.forward_mut(z.put_tape(tape));
        let pred = model.3.forward_mut(hz + hx);
        let loss = ((pred - target) * mask).square().sum::<Rank0, _>() * (1.0 / b.hidden());
        let train_loss = loss.array() as f64;
        if !train_loss.is_finite() {
            invalid!(
                "the embedder diverged at step {step} (loss {train_loss}); try a smaller lr (now {})",
                cfg.lr
            );
        }
        grads = loss.backward();
        opt.update(&mut model, &grads)
            .map_err(|e| crate::Error::Data(format!("embedder update: {e:?}")))?;
        if (step + 1) % every.max(1) == 0 || step + 1 == cfg.steps {
            let val_loss = val_draws
                .iter()
                .map(|d| masked_mse::<K>(&dev, &model, d))
                .sum::<f64>()
                / val_draws.len() as f64;
            let p = LossPoint {
                step: step + 1,
                train: train_loss,
                val: val_loss,
            };
            losses.push(p);
            on_loss(p);
        }
    }
    let embed = |models: &[&RuntimeModel], seed: u64| -> Result<Vec<Vec<f64>>> {
        let draws = eval_batches(models, cfg.mask_ratio, scale, seed)?;
        let mut sum = vec![vec![0.0; K]; models.len()];
        for d in &draws {
            let enc: Rows<{ 3 * POINTS }> = dev.tensor((d.encoder.clone(), (d.rows, Const)));
            let z = model.0.forward(enc).as_vec();
            for (i, row) in sum.iter_mut().enumerate() {
                row.iter_mut()
                    .zip(&z[i * K..(i + 1) * K])
                    .for_each(|(s, &v)| *s += v as f64 / draws.len() as f64);
            }
        }
        Ok(sum)
    };
    Ok(Embedded {
        train: embed(train, cfg.seed ^ 0xe1)?,
        val: embed(val, cfg.seed ^ 0xe2)?,
        losses,
        seconds: started.elapsed().as_secs_f64(),
    })
}

type Built<const K: usize> = <Embedder<K> as dfdx::nn::BuildOnDevice<Cpu, f32>>::Built;

fn masked_mse<const K: usize>(dev: &Cpu, model: &Built<K>, b: &Batch) -> f64 {
    let enc: Rows<{ 3 * POINTS }> = dev.tensor((b.encoder.clone(), (b.rows, Const)));
    let q: Rows<POINTS> = dev.tensor((b.points.clone(), (b.rows, Const)));
    let z = model.0.forward(enc);
    let pred = model
        .3
        .forward(model.1.forward(z) + model.2.forward(q))
        .as_vec();
    let mut sum = 0.0;
    for ((p, t), m) in pred.iter().zip(&b.target).zip(&b.mask) {
        sum += ((p - t) * m).powi(2) as f64;
    }
    sum / b.hidden() as f64
}

/// The supervised upper bound: the encoder's architecture trained with cross-entropy to name
/// the function from all gradients (nothing hidden); held-out models are classified by their
/// logits averaged over the fixed draws. Returns the held-out predictions.
pub fn supervised(
    cfg: &ClozeConfig,
    train: &[(&RuntimeModel, usize)],
    val: &[&RuntimeModel],
    scale: f64,
) -> Result<Vec<usize>> {
    if train.iter().any(|(_, c)| *c >= MAX_CLASSES) {
        invalid!("the supervised classifier takes at most {MAX_CLASSES} functions");
    }
    let (dev, mut model, mut opt, mut grads) = fresh::<Classifier>(cfg);
    let mut rng = split_rng(cfg.seed, 6_100);
    let mut picker = Picker::new(train.len());
    for step in 0..cfg.steps {
        let picked = picker.batch(train, cfg.batch, &mut rng);
        let x = sample_points(&mut rng);
        let models: Vec<&RuntimeModel> = picked.iter().map(|(m, _)| *m).collect();
        let b = Batch::build(&models, &x, 0.0, scale, &mut rng)?;
        let mut onehot = vec![0f32; b.rows * MAX_CLASSES];
        for (i, (_, c)) in picked.iter().enumerate() {
            onehot[i * MAX_CLASSES + c] = 1.0;
        }
        opt.cfg.lr = cosine_lr(cfg.lr, step, cfg.steps);
        model.zero_grads(&mut grads);
        let enc: Rows<{ 3 * POINTS }> = dev.tensor((b.encoder, (b.rows, Const)));
        let target: Rows<MAX_CLASSES> = dev.tensor((onehot, (b.rows, Const)));
        let logits = model.forward_mut(enc.traced(grads));
        let loss = cross_entropy_with_logits_loss(logits, target);
        if !loss.array().is_finite() {
            invalid!("the supervised classifier diverged at step {step}");
        }
        grads = loss.backward();
        opt.update(&mut model, &grads)
            .map_err(|e| crate::Error::Data(format!("classifier update: {e:?}")))?;
    }
    let draws = eval_batches(val, 0.0, scale, cfg.seed ^ 0xc1)?;
    let classes = train.iter().map(|(_, c)| c + 1).max().unwrap_or(1);
    let mut sum = vec![vec![0.0f64; classes]; val.len()];
    for d in draws {
        let enc: Rows<{ 3 * POINTS }> = dev.tensor((d.encoder, (d.rows, Const)));
        let logits = model.forward(enc).as_vec();
        for (i, row) in sum.iter_mut().enumerate() {
            for (c, s) in row.iter_mut().enumerate() {
                *s += logits[i * MAX_CLASSES + c] as f64;
            }
        }
    }
    Ok(sum
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(c, _)| c)
        })
        .collect())
}
