//! Per-task figures of a model on a data set: loss and R² for regression tasks, loss and
//! accuracy for a classifier. Pure functions of outputs and targets.

use crate::data::{Dataset, TaskStructure};
use crate::model::net::Net;
use crate::model::Loss;
use serde::{Deserialize, Serialize};

/// One task's figures in an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMetrics {
    pub task: String,
    pub loss: f64,
    /// Coefficient of determination (regression tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
    /// Share of examples classified correctly (classification tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
}

/// Per-task losses of one batch (MSE per task's outputs; one cross-entropy task).
pub(crate) fn batch_task_losses(
    out: &[f32],
    y: &[f32],
    n: usize,
    loss: Loss,
    tasks: &TaskStructure,
    batch_loss: f32,
) -> Vec<f64> {
    match loss {
        Loss::CrossEntropy => vec![batch_loss as f64],
        Loss::Mse => tasks.mse(
            &out.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            y,
            y.len() / n.max(1),
        ),
    }
}

/// Per-task loss and R² (regression) or accuracy (classification) of a model on a data set.
pub fn evaluate(
    net: &dyn Net,
    ds: &Dataset,
    tasks: &TaskStructure,
    loss: Loss,
) -> Vec<TaskMetrics> {
    let mut out = Vec::with_capacity(ds.n * ds.d_out);
    for start in (0..ds.n).step_by(4096) {
        let end = (start + 4096).min(ds.n);
        out.extend(net.forward(&ds.x[start * ds.d_in..end * ds.d_in], end - start));
    }
    metrics(&out, ds, tasks, loss)
}

/// Per-task metrics from a model's outputs `out` (`n x d_out`) on `ds`.
pub fn metrics(out: &[f32], ds: &Dataset, tasks: &TaskStructure, loss: Loss) -> Vec<TaskMetrics> {
    let d = ds.d_out;
    match loss {
        Loss::Mse => tasks
            .tasks
            .iter()
            .map(|t| {
                let (mut sse, mut sum, mut sumsq) = (0.0f64, 0.0f64, 0.0f64);
                for r in 0..ds.n {
                    for &o in &t.outputs {
                        let (p, y) = (out[r * d + o] as f64, ds.y[r * d + o] as f64);
                        sse += (p - y).powi(2);
                        sum += y;
                        sumsq += y * y;
                    }
                }
                let m = (ds.n * t.outputs.len()) as f64;
                let sst = sumsq - sum * sum / m;
                TaskMetrics {
                    task: t.name.clone(),
                    loss: sse / m,
                    r2: Some(1.0 - sse / sst.max(f64::MIN_POSITIVE)),
                    accuracy: None,
                }
            })
            .collect(),
        Loss::CrossEntropy => {
            let labels = ds.labels.as_ref().expect("classification data has labels");
            let (mut ce, mut correct) = (0.0f64, 0usize);
            for r in 0..ds.n {
                let row = &out[r * d..(r + 1) * d];
                let mx = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let lse = mx + row.iter().map(|&v| (v as f64 - mx).exp()).sum::<f64>().ln();
                ce += lse - row[labels[r]] as f64;
                let arg = (0..d)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0);
                correct += (arg == labels[r]) as usize;
            }
            let name = tasks
                .tasks
                .first()
                .map_or("class".to_string(), |t| t.name.clone());
            vec![TaskMetrics {
                task: name,
                loss: ce / ds.n as f64,
                r2: None,
                accuracy: Some(correct as f64 / ds.n as f64),
            }]
        }
    }
}
