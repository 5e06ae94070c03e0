//! Adam over flat parameters, with state we own so a checkpoint can hold it and a resumed run
//! continues bit for bit (dfdx 0.13's `Adam` keeps its moments private). It must never keep
//! state outside [`AdamState`], or resume would stop being exact.

use serde::{Deserialize, Serialize};

/// Adam's hyperparameters (Kingma & Ba, 2015), no weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// The optimiser's state: first and second moments and the step count.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub t: u64,
}

impl AdamState {
    pub fn new(n: usize) -> Self {
        AdamState {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One update of `params` with gradient `g` at learning rate `lr`.
    pub fn update(&mut self, cfg: &AdamConfig, lr: f32, params: &mut [f32], g: &[f32]) {
        assert_eq!(params.len(), g.len(), "gradient length");
        self.t += 1;
        let bc1 = 1.0 - cfg.beta1.powi(self.t.min(i32::MAX as u64) as i32);
        let bc2 = 1.0 - cfg.beta2.powi(self.t.min(i32::MAX as u64) as i32);
        let (ms, vs) = (&mut self.m, &mut self.v);
        super::simd(
            #[inline(always)]
            || {
                for (((p, &gi), m), v) in params.iter_mut().zip(g).zip(ms).zip(vs) {
                    *m = cfg.beta1 * *m + (1.0 - cfg.beta1) * gi;
                    *v = cfg.beta2 * *v + (1.0 - cfg.beta2) * gi * gi;
                    let mhat = *m / bc1;
                    let vhat = *v / bc2;
                    *p -= lr * mhat / (vhat.sqrt() + cfg.eps);
                }
            },
        );
    }
}
