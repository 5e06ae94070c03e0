//! The loss every evaluation scores with: per task, mean squared error over the task's
//! outputs, or for a classifier (a data set with labels) the cross-entropy of the softmax
//! against the label — the same objectives training minimises.

use crate::data::{Dataset, TaskStructure};

/// Per-task losses of outputs `out` (`n x d_out`, row-major) on `data`.
pub fn task_losses(out: &[f64], data: &Dataset, tasks: &TaskStructure) -> Vec<f64> {
    let d = data.d_out;
    match &data.labels {
        Some(labels) => {
            let ce: f64 = labels
                .iter()
                .enumerate()
                .map(|(r, &l)| {
                    let row = &out[r * d..(r + 1) * d];
                    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                    lse - row[l]
                })
                .sum();
            vec![ce / labels.len().max(1) as f64; tasks.tasks.len().max(1)]
        }
        None => tasks.mse(out, &data.y, d),
    }
}
