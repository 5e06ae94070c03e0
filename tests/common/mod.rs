//! Helpers shared by the integration tests: seeded inputs and networks whose circuits are known
//! by construction.
#![allow(dead_code)] // each test file uses a different subset

use circuitscope::data::{Dataset, Task, TaskStructure};
use circuitscope::model::{Activation, Layer, RuntimeModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` rows of `d` values uniform in [-1, 1), from `seed`.
pub fn inputs(d: usize, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// Two tasks computed by two blocks that never meet: inputs 0,1 → the first half of each hidden
/// layer (`hidden` units) → output 0, and inputs 2,3 → the second halves → output 1. Every
/// cross-block weight is exactly zero; within-block weights are positive.
pub fn two_blocks(hidden: usize) -> RuntimeModel {
    let block = |d_in: usize, d_out: usize, seed: u64| -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (hi, ho) = (d_in / 2, d_out / 2);
        (0..d_out * d_in)
            .map(|k| (k / d_in, k % d_in))
            .map(|(j, i)| {
                if (j < ho) == (i < hi) {
                    rng.gen_range(0.3..1.0)
                } else {
                    0.0
                }
            })
            .collect()
    };
    RuntimeModel {
        layers: vec![
            Layer {
                d_in: 4,
                d_out: hidden,
                weight: block(4, hidden, 1),
                bias: vec![0.1; hidden],
                activation: Activation::Relu,
            },
            Layer {
                d_in: hidden,
                d_out: hidden,
                weight: block(hidden, hidden, 2),
                bias: vec![0.1; hidden],
                activation: Activation::Relu,
            },
            Layer {
                d_in: hidden,
                d_out: 2,
                weight: block(hidden, 2, 3),
                bias: vec![0.0; 2],
                activation: Activation::Identity,
            },
        ],
    }
}

/// The task structure of [`two_blocks`].
pub fn two_tasks() -> TaskStructure {
    TaskStructure {
        tasks: vec![
            Task {
                name: "a".into(),
                inputs: vec![0, 1],
                outputs: vec![0],
            },
            Task {
                name: "b".into(),
                inputs: vec![2, 3],
                outputs: vec![1],
            },
        ],
    }
}

/// `n` seeded inputs for [`two_blocks`] as a data set (targets zero: graphs need no labels).
pub fn block_data(n: usize, seed: u64) -> Dataset {
    let x = inputs(4, n, seed).into_iter().map(|v| v as f32).collect();
    Dataset::regression("blocks", 4, 2, x, vec![0.0; 2 * n]).unwrap()
}
