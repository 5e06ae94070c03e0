//! Judging a set of feature vectors by how well they tell the functions apart: a linear probe
//! (multinomial logistic regression, linfa-logistic, L2 strength chosen by cross-validation on
//! the training split only) and an unsupervised clustering (Ward linkage, kodama, cut at the
//! number of functions) scored with ARI. Every feature set, the embedding and every baseline,
//! goes through exactly this code, so their figures compare. It must never look at the
//! held-out labels before predicting them.

use crate::numeric::score::ari;
use crate::{invalid, Error, Result};
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};

/// L2 strengths tried by cross-validation (linfa's loss sums over examples).
const ALPHAS: [f64; 5] = [1e-3, 1e-2, 1e-1, 1.0, 10.0];
const FOLDS: usize = 3;
const MAX_ITER: u64 = 300;

/// Feature rows and their function labels.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub x: Vec<Vec<f64>>,
    pub y: Vec<usize>,
}

impl Labelled {
    fn check(&self, what: &str) -> Result<usize> {
        if self.x.is_empty() || self.x.len() != self.y.len() {
            invalid!("{what}: {} rows and {} labels", self.x.len(), self.y.len());
        }
        let d = self.x[0].len();
        if d == 0 || self.x.iter().any(|r| r.len() != d) {
            invalid!("{what}: rows of unequal or zero width");
        }
        if self.x.iter().flatten().any(|v| !v.is_finite()) {
            invalid!("{what}: features must be finite");
        }
        Ok(d)
    }
}

/// Means and standard deviations of the training rows (a constant column gets 1).
fn standardiser(x: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let d = x[0].len();
    let n = x.len() as f64;
    let mut mean = vec![0.0; d];
    for r in x {
        mean.iter_mut().zip(r).for_each(|(m, v)| *m += v / n);
    }
    let mut sd = vec![0.0; d];
    for r in x {
        sd.iter_mut()
            .zip(r.iter().zip(&mean))
            .for_each(|(s, (v, m))| *s += (v - m).powi(2) / n);
    }
    let sd = sd
        .into_iter()
        .map(|v| if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 })
        .collect();
    (mean, sd)
}

fn matrix(x: &[Vec<f64>], mean: &[f64], sd: &[f64]) -> Array2<f64> {
    let d = mean.len();
    Array2::from_shape_fn((x.len(), d), |(i, j)| (x[i][j] - mean[j]) / sd[j])
}

fn fit_predict(train: &Labelled, test: &[Vec<f64>], alpha: f64) -> Result<Vec<usize>> {
    let (mean, sd) = standardiser(&train.x);
    let ds = Dataset::new(
        matrix(&train.x, &mean, &sd),
        Array1::from_vec(train.y.clone()),
    );
    let model = MultiLogisticRegression::default()
        .alpha(alpha)
        .max_iterations(MAX_ITER)
        .fit(&ds)
        .map_err(|e| Error::Data(format!("logistic regression: {e}")))?;
    Ok(model.predict(&matrix(test, &mean, &sd)).to_vec())
}

fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len().max(1) as f64
}

/// A linear probe's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// Accuracy on the held-out rows.
    pub accuracy: f64,
    /// The L2 strength cross-validation chose.
    pub alpha: f64,
    pub predictions: Vec<usize>,
}

/// Fits the probe on `train` (choosing its L2 strength by stratified cross-validation within
/// `train`) and scores it on `test`.
pub fn linear_probe(train: &Labelled, test: &Labelled) -> Result<ProbeResult> {
    let d = train.check("probe training rows")?;
    if test.check("probe test rows")? != d {
        invalid!(
            "probe: training rows have {d} features, test rows {}",
            test.x[0].len()
        );
    }
    // Folds by rank within each class, so every fold sees every class.
    let mut seen = std::collections::HashMap::new();
    let fold: Vec<usize> = train
        .y
        .iter()
        .map(|&c| {
            let k = seen.entry(c).or_insert(0usize);
            *k += 1;
            (*k - 1) % FOLDS
        })
        .collect();
    // Strongest regularisation first: among equally accurate strengths the most regularised
    // wins, since on separable data a weak one lets the weights run off and the optimiser
    // stop early.
    let mut best = (f64::NEG_INFINITY, ALPHAS[ALPHAS.len() - 1]);
    for &alpha in ALPHAS.iter().rev() {
        let mut correct = 0.0;
        for f in 0..FOLDS {
            let pick = |keep: bool| -> Labelled {
                let idx: Vec<usize> = (0..train.y.len())
                    .filter(|&i| (fold[i] == f) != keep)
                    .collect();
                Labelled {
                    x: idx.iter().map(|&i| train.x[i].clone()).collect(),
                    y: idx.iter().map(|&i| train.y[i]).collect(),
                }
            };
            let (tr, va) = (pick(true), pick(false));
            if va.y.is_empty() || tr.y.is_empty() {
                continue;
            }
            let pred = fit_predict(&tr, &va.x, alpha)?;
            correct += accuracy(&pred, &va.y) * va.y.len() as f64;
        }
        if correct > best.0 {
            best = (correct, alpha);
        }
    }
    let predictions = fit_predict(train, &test.x, best.1)?;
    Ok(ProbeResult {
        accuracy: accuracy(&predictions, &test.y),
        alpha: best.1,
        predictions,
    })
}

/// Clusters the (standardised) rows by Ward linkage into as many clusters as there are
/// labels and returns the ARI against them.
pub fn cluster_ari(rows: &Labelled) -> Result<f64> {
    rows.check("clustering rows")?;
    let k = {
        let mut l = rows.y.clone();
        l.sort();
        l.dedup();
        l.len()
    };
    let n = rows.x.len();
    if n < 2 {
        return Ok(0.0);
    }
    let (mean, sd) = standardiser(&rows.x);
    let z: Vec<Vec<f64>> = rows
        .x
        .iter()
        .map(|r| {
            r.iter()
                .zip(mean.iter().zip(&sd))
                .map(|(v, (m, s))| (v - m) / s)
                .collect()
        })
        .collect();
    let mut condensed = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            condensed.push(
                z[i].iter()
                    .zip(&z[j])
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt(),
            );
        }
    }
    let dendrogram = kodama::linkage(&mut condensed, n, kodama::Method::Ward);
    let labels = crate::numeric::cluster::cut(dendrogram.steps(), n, k);
    Ok(ari(&labels, &rows.y))
}
