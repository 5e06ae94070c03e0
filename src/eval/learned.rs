//! Whether a model learned its tasks, judged on held-out data: the gate in front of every
//! structure figure. A network that computes nothing has no circuit for a figure to describe,
//! and its figures are noise that can look like structure (a 10-step `products` model scored
//! CPR 0.91 under zero ablation, above the trained model's 0.69).

use super::loss::task_losses;
use crate::data::{Dataset, TaskStructure};
use crate::model::RuntimeModel;
use crate::Result;

/// A regression model has learned when its mean held-out R² over tasks is at least this.
pub const MIN_R2: f64 = 0.5;
/// A classifier has learned when its held-out accuracy is at least this many times chance
/// (the share of the most common class).
pub const MIN_ACCURACY_OVER_CHANCE: f64 = 2.0;

/// The verdict and the figure it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    pub learned: bool,
    /// `mean held-out R²` or `held-out accuracy`.
    pub what: &'static str,
    pub score: f64,
    /// The least score that counts as learned.
    pub bar: f64,
    /// For a classifier, chance accuracy (the most common class's share).
    pub chance: Option<f64>,
}

impl Learned {
    /// One line: the figure against its bar.
    pub fn reason(&self) -> String {
        let chance = self
            .chance
            .map(|c| format!(", {MIN_ACCURACY_OVER_CHANCE} x chance {c:.4}"))
            .unwrap_or_default();
        format!(
            "{} {:.4} {} {:.4}{chance}",
            self.what,
            self.score,
            if self.learned { ">=" } else { "<" },
            self.bar
        )
    }
}

/// Judges `model` on the held-out set `data`.
pub fn learned(model: &RuntimeModel, data: &Dataset, tasks: &TaskStructure) -> Result<Learned> {
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let out = model.forward(&x)?;
    let d = model.d_out();
    Ok(match &data.labels {
        Some(labels) => {
            let mut counts = vec![0usize; d.max(1)];
            let mut right = 0usize;
            for (r, &l) in labels.iter().enumerate() {
                let row = &out[r * d..(r + 1) * d];
                let guess = (0..d).max_by(|&a, &b| row[a].total_cmp(&row[b]));
                right += (guess == Some(l)) as usize;
                if l < counts.len() {
                    counts[l] += 1;
                }
            }
            let n = labels.len().max(1) as f64;
            let chance = *counts.iter().max().unwrap_or(&0) as f64 / n;
            let score = right as f64 / n;
            let bar = MIN_ACCURACY_OVER_CHANCE * chance;
            Learned {
                learned: score >= bar,
                what: "held-out accuracy",
                score,
                bar,
                chance: Some(chance),
            }
        }
        None => {
            let mse = task_losses(&out, data, tasks);
            let r2: Vec<f64> = tasks
                .tasks
                .iter()
                .zip(&mse)
                .map(|(t, &m)| {
                    let vals: Vec<f64> = (0..data.n)
                        .flat_map(|r| t.outputs.iter().map(move |&o| r * data.d_out + o))
                        .map(|k| data.y[k] as f64)
                        .collect();
                    let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
                    let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                        / vals.len().max(1) as f64;
                    1.0 - m / var.max(f64::MIN_POSITIVE)
                })
                .collect();
            let score = r2.iter().sum::<f64>() / r2.len().max(1) as f64;
            Learned {
                learned: score >= MIN_R2,
                what: "mean held-out R²",
                score,
                bar: MIN_R2,
                chance: None,
            }
        }
    })
}
