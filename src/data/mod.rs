//! Data sets, each deterministic from a seed, in one row-major layout that every later stage
//! reads. This module only makes and reads data: it must never train, probe or write runs.
//!
//! - [`Dataset`]: inputs and targets as flat `f32` rows, with class labels for classifiers.
//! - [`TaskStructure`]: which inputs feed which outputs, the ground truth later stages score
//!   themselves against.
//! - [`products`], [`poly1d`], [`digits`], [`idx`]: the built-in families and readers.

pub mod digits;
pub mod idx;
pub mod poly1d;
pub mod products;
pub mod table;

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A set of examples: `n` rows of `d_in` inputs and `d_out` targets, row-major.
///
/// For classification `y` is one-hot and `labels` holds the class indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub n: usize,
    pub d_in: usize,
    pub d_out: usize,
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub labels: Option<Vec<usize>>,
}

impl Dataset {
    /// A regression set from flat rows; checks the lengths and that every value is finite.
    pub fn regression(
        name: &str,
        d_in: usize,
        d_out: usize,
        x: Vec<f32>,
        y: Vec<f32>,
    ) -> Result<Self> {
        let n = x.len().checked_div(d_in).unwrap_or(0);
        let ds = Dataset {
            name: name.into(),
            n,
            d_in,
            d_out,
            x,
            y,
            labels: None,
        };
        ds.check()?;
        Ok(ds)
    }

    /// A classification set: targets are the one-hot encoding of `labels`.
    pub fn classification(
        name: &str,
        d_in: usize,
        n_classes: usize,
        x: Vec<f32>,
        labels: Vec<usize>,
    ) -> Result<Self> {
        let n = labels.len();
        let mut y = vec![0.0; n * n_classes];
        for (i, &l) in labels.iter().enumerate() {
            if l >= n_classes {
                return Err(Error::Data(format!(
                    "{name}: label {l} at row {i} is not below the {n_classes} classes"
                )));
            }
            y[i * n_classes + l] = 1.0;
        }
        let ds = Dataset {
            name: name.into(),
            n,
            d_in,
            d_out: n_classes,
            x,
            y,
            labels: Some(labels),
        };
        ds.check()?;
        Ok(ds)
    }

    /// Checks shapes and finiteness: the first thing any consumer of outside data calls.
    pub fn check(&self) -> Result<()> {
        if self.x.len() != self.n * self.d_in || self.y.len() != self.n * self.d_out {
            return Err(Error::Data(format!(
                "{}: {} inputs and {} targets do not make {} rows of {} inputs and {} targets",
                self.name,
                self.x.len(),
                self.y.len(),
                self.n,
                self.d_in,
                self.d_out
            )));
        }
        if let Some(i) = self.x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "{}: input row {} column {} is {} (inputs must be finite)",
                self.name,
                i / self.d_in.max(1),
                i % self.d_in.max(1),
                self.x[i]
            )));
        }
        if let Some(i) = self.y.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "{}: target row {} is {} (targets must be finite)",
                self.name,
                i / self.d_out.max(1),
                self.y[i]
            )));
        }
        Ok(())
    }

    pub fn input(&self, i: usize) -> &[f32] {
        &self.x[i * self.d_in..(i + 1) * self.d_in]
    }

    pub fn target(&self, i: usize) -> &[f32] {
        &self.y[i * self.d_out..(i + 1) * self.d_out]
    }

    /// The rows at `idx`, in that order.
    pub fn subset(&self, idx: &[usize], name: &str) -> Dataset {
        let mut x = Vec::with_capacity(idx.len() * self.d_in);
        let mut y = Vec::with_capacity(idx.len() * self.d_out);
        for &i in idx {
            x.extend_from_slice(self.input(i));
            y.extend_from_slice(self.target(i));
        }
        Dataset {
            name: name.into(),
            n: idx.len(),
            d_in: self.d_in,
            d_out: self.d_out,
            x,
            y,
            labels: self
                .labels
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
        }
    }
}

/// One task of a multi-task problem: the inputs it reads and the outputs it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

/// Which inputs feed which outputs: known by construction for the built-in sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStructure {
    pub tasks: Vec<Task>,
}

impl TaskStructure {
    /// Mean squared error of each task's outputs: `out` and `y` are `n x d_out` row-major.
    pub fn mse(&self, out: &[f64], y: &[f32], d_out: usize) -> Vec<f64> {
        let n = out.len() / d_out.max(1);
        self.tasks
            .iter()
            .map(|t| {
                let s: f64 = (0..n)
                    .flat_map(|r| t.outputs.iter().map(move |&o| r * d_out + o))
                    .map(|k| (out[k] - y[k] as f64).powi(2))
                    .sum();
                s / (n * t.outputs.len()).max(1) as f64
            })
            .collect()
    }

    /// The indices of the tasks that read input `i`.
    pub fn tasks_of_input(&self, i: usize) -> Vec<usize> {
        self.tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.inputs.contains(&i))
            .map(|(k, _)| k)
            .collect()
    }
}

/// Everything a preset trains and is judged on.
#[derive(Debug, Clone)]
pub struct TaskData {
    /// Training examples.
    pub train: Dataset,
    /// Validation (or test) examples: for `products` the *mixed* distribution.
    pub val: Dataset,
    /// One set per task where only that task's inputs vary (empty where not defined).
    pub per_task: Vec<Dataset>,
    pub tasks: TaskStructure,
}

/// A seeded generator for one named split, so that splits never share random draws.
pub(crate) fn split_rng(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
