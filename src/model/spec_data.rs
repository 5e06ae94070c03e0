//! A spec's data: a table's columns arranged as the model's inputs and its tasks' targets, a
//! seeded validation split, and the training form's synthetic data (uniform inputs, targets
//! computed from each task's expression). Pure functions of the spec and the table.

use super::spec::{parse_expr, ModelSpec, Resolved};
use super::Loss;
use crate::data::table::Table;
use crate::data::{Dataset, TaskData};
use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The rows of `table` as a data set for a model with `d_out` outputs: the spec's inputs, and
/// each task's target in the outputs it owns (outputs no task owns get 0 and are never
/// scored); for a classifier, the target column as integer class labels below `d_out`.
pub fn dataset(
    spec: &ModelSpec,
    r: &Resolved,
    table: &Table,
    d_out: usize,
    name: &str,
) -> Result<Dataset> {
    let n = table.rows;
    let d_in = spec.inputs.len();
    let mut x = vec![0.0f32; n * d_in];
    for (i, input) in spec.inputs.iter().enumerate() {
        for (row, v) in table.column(input)?.into_iter().enumerate() {
            x[row * d_in + i] = v as f32;
        }
    }
    let target = |t: usize| -> Result<Vec<f64>> {
        let col = spec.tasks[t].target.as_deref().ok_or_else(|| {
            Error::Invalid(format!(
                "task `{}` is an expression; data from a file needs a `target` column",
                spec.tasks[t].name
            ))
        })?;
        table.column(col)
    };
    match r.loss {
        Loss::CrossEntropy => {
            let col = target(0)?;
            let labels = col
                .iter()
                .enumerate()
                .map(|(row, &v)| {
                    let column = spec.tasks[0].target.as_deref().unwrap_or("?");
                    let problem = if v.fract() != 0.0 {
                        format!("{v} is not a class label (an integer 0..{})", d_out - 1)
                    } else if v < 0.0 || v >= d_out as f64 {
                        format!(
                            "class label {v} is out of range: the model has {d_out} classes (0..{})",
                            d_out - 1
                        )
                    } else {
                        String::new()
                    };
                    if !problem.is_empty() {
                        Err(Error::bad_file(
                            &table.path,
                            format!("column `{column}`, {}: {problem}", table.row_name(row)),
                        ))
                    } else {
                        Ok(v as usize)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Dataset::classification(name, d_in, d_out, x, labels)
        }
        Loss::Mse => {
            let mut y = vec![0.0f32; n * d_out];
            for (t, task) in r.tasks.tasks.iter().enumerate() {
                let o = task.outputs[0];
                if o >= d_out {
                    return Err(Error::Invalid(format!(
                        "task `{}` owns output {o}, but the model has {d_out} outputs",
                        task.name
                    )));
                }
                for (row, v) in target(t)?.into_iter().enumerate() {
                    y[row * d_out + o] = v as f32;
                }
            }
            Dataset::regression(name, d_in, d_out, x, y)
        }
    }
}

/// A seeded split of `rows` rows: `(training rows, validation rows)`, the validation share
/// `fraction` (at least one row on each side).
pub fn split(rows: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::Param {
            name: "val_fraction",
            problem: format!("must lie strictly between 0 and 1, got {fraction}"),
        });
    }
    if rows < 2 {
        return Err(Error::Data(format!(
            "{rows} row: a validation split needs at least 2"
        )));
    }
    let mut idx: Vec<usize> = (0..rows).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let n_val = ((rows as f64 * fraction).round() as usize).clamp(1, rows - 1);
    let val = idx[..n_val].to_vec();
    let mut train = idx[n_val..].to_vec();
    train.sort_unstable();
    let mut val = val;
    val.sort_unstable();
    Ok((train, val))
}

/// The training form's synthetic data: training and validation inputs uniform in the spec's
/// range (their own seeded streams), each task's target its expression.
pub fn synthetic(spec: &ModelSpec, r: &Resolved) -> Result<TaskData> {
    let s = spec
        .synthetic
        .as_ref()
        .ok_or_else(|| Error::Invalid("the spec has no `synthetic` data".into()))?;
    let exprs = spec
        .tasks
        .iter()
        .map(|t| parse_expr(t.expr.as_deref().unwrap_or(""), &spec.inputs).map_err(Error::Invalid))
        .collect::<Result<Vec<_>>>()?;
    // exmex takes the values of an expression's variables in alphabetical order.
    let order: Vec<Vec<usize>> = exprs
        .iter()
        .map(|e| {
            exmex::Express::var_names(e)
                .iter()
                .map(|v| spec.inputs.iter().position(|i| i == v).expect("checked"))
                .collect()
        })
        .collect();
    let d_in = spec.inputs.len();
    let make = |n: usize, stream: u64, name: &str| -> Result<Dataset> {
        let mut rng = crate::data::split_rng(s.seed, stream);
        let mut x = Vec::with_capacity(n * d_in);
        let mut y = vec![0.0f32; n * r.outputs];
        for row in 0..n {
            let inputs: Vec<f64> = (0..d_in).map(|_| rng.gen_range(s.low..=s.high)).collect();
            for (t, (e, vars)) in exprs.iter().zip(&order).enumerate() {
                let vals: Vec<f64> = vars.iter().map(|&i| inputs[i]).collect();
                let v = exmex::Express::eval(e, &vals)
                    .map_err(|err| Error::Data(format!("task `{}`: {err}", spec.tasks[t].name)))?;
                if !v.is_finite() {
                    return Err(Error::Data(format!(
                        "task `{}`: its expression is {v} at inputs {inputs:?}",
                        spec.tasks[t].name
                    )));
                }
                y[row * r.outputs + r.tasks.tasks[t].outputs[0]] = v as f32;
            }
            x.extend(inputs.iter().map(|&v| v as f32));
        }
        Dataset::regression(name, d_in, r.outputs, x, y)
    };
    Ok(TaskData {
        train: make(s.n_train, 1, "synthetic/train")?,
        val: make(s.n_val, 2, "synthetic/val")?,
        per_task: vec![],
        tasks: r.tasks.clone(),
    })
}
