//! Training a fresh preset network on a data set in memory, for many small models at once
//! (zoos): the same minibatches, Adam and cosine schedule as a run, without checkpoints,
//! validation or a sink. Each model's files are written by the caller when it is done.

use super::config::TrainConfig;
use super::trainer::{batch_rows, gather};
use crate::data::Dataset;
use crate::model::adam::{AdamConfig, AdamState};
use crate::model::net::{self, Batch, Engine};
use crate::model::Preset;
use crate::{invalid, param, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Trains a fresh `preset` network on `data` and returns its parameters: shuffled minibatches,
/// our Adam, cosine schedule from `lr`.
pub fn fit_params(
    preset: Preset,
    seed: u64,
    data: &Dataset,
    (epochs, batch, lr): (usize, usize, f64),
    engine: Engine,
) -> Result<Vec<f32>> {
    if epochs == 0 || batch == 0 {
        param!(
            epochs,
            "and batch must be at least 1 (got {epochs}, {batch})"
        );
    }
    if !(lr.is_finite() && lr > 0.0) {
        param!(lr, "must be a positive finite number, got {lr}");
    }
    let arch = preset.arch();
    if data.d_in != arch.widths[0] || data.d_out != *arch.widths.last().expect("widths") {
        invalid!(
            "data set `{}` has {} inputs and {} outputs; preset {} takes {:?}",
            data.name,
            data.d_in,
            data.d_out,
            preset.name(),
            arch.widths
        );
    }
    super::one_thread(|| {
        let loss_kind = preset.loss();
        let mut net = net::build_with(preset, seed, engine)?;
        let mut params = net.params();
        let mut adam = AdamState::new(params.len());
        let adam_cfg = AdamConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = data.n;
        let batches = n.div_ceil(batch);
        let total = (batches * epochs) as u64;
        let schedule = TrainConfig::defaults(preset).schedule;
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        let mut step = 0u64;
        // One permutation reshuffled every epoch (a run starts each epoch from 0..n instead).
        let mut perm: Vec<usize> = (0..n).collect();
        for _ in 0..epochs {
            perm.shuffle(&mut rng);
            for b in 0..batches {
                let rows = batch_rows(&perm, b, batch);
                gather(data, rows, &mut xb, &mut yb);
                let (loss, _, grad) = net.loss_and_grad(
                    Batch {
                        x: &xb,
                        y: &yb,
                        n: rows.len(),
                    },
                    loss_kind,
                );
                if !loss.is_finite() {
                    invalid!(
                    "training diverged: loss is {loss} at step {step}; try a smaller learning rate `lr` (now {lr})"
                );
                }
                adam.update(
                    &adam_cfg,
                    schedule.lr_at(lr, step, total) as f32,
                    &mut params,
                    &grad,
                );
                net.set_params(&params);
                step += 1;
            }
        }
        Ok(params)
    })
}
