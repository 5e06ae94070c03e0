//! Network embedding: describe what a network *does* by a vector, learned without labels.
//!
//! - [`zoo`]: `functions x seeds` small `poly` MLPs, trained in parallel, resumable, shardable,
//!   with a manifest of each model's quality.
//! - [`cloze`]: the cloze-gradient embedder (mask whole linear pieces, predict their input
//!   gradients through a bottleneck) and the supervised upper bound.
//! - [`classify`]: the linear probe and clustering ARI every feature set is judged by.
//! - [`grid_and_baselines`]: the grid (bottleneck x mask ratio x number of functions) against honest
//!   baselines on the same split by seed, as tables (the run layer writes them and the
//!   progress events into the zoo).
//!
//! The split is by seed: the last `held_out` seeds of every function are never seen by the
//! embedder or the probe's fit, so each function appears on both sides through different
//! models. This module measures; it must never choose a figure by looking at held-out labels
//! (grid points are all reported, none is picked as "the" result).

pub mod classify;
pub mod cloze;
pub mod zoo;

use crate::model::{Arch, RuntimeModel};
use crate::numeric::linalg::Pca;
use crate::params::Valid;
use crate::{invalid, param, Error, Result};
use classify::{cluster_ari, linear_probe, Labelled};
use cloze::{ClozeConfig, LossPoint, BOTTLENECKS, MAX_CLASSES};
use polars::prelude::{Column, DataFrame};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zoo::ZooConfig;

/// What `embed` runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedConfig {
    /// Numbers of functions: the first n members of the zoo's family each.
    pub functions: Vec<usize>,
    pub bottlenecks: Vec<usize>,
    pub mask_ratios: Vec<f64>,
    /// Seeds per function held out (the last ones).
    pub held_out: usize,
    /// Steps, batch, lr and seed of every embedder (bottleneck and mask come from the grid).
    pub cloze: ClozeConfig,
    /// Also use models flagged below the zoo's R² bar.
    pub keep_flagged: bool,
}

impl EmbedConfig {
    /// The grid for a zoo: functions {5, all}, bottlenecks {2, 4, 8, 16}, masks
    /// {0.25, 0.5, 0.75}, a fifth of the seeds held out.
    pub fn grid_for(zoo: &ZooConfig) -> EmbedConfig {
        let n = zoo.functions;
        let mut functions = vec![5.min(n), n];
        functions.dedup();
        EmbedConfig {
            functions,
            bottlenecks: vec![2, 4, 8, 16],
            mask_ratios: vec![0.25, 0.5, 0.75],
            held_out: (zoo.seeds / 5).max(1),
            cloze: ClozeConfig::default(),
            keep_flagged: false,
        }
    }

    /// Rejects a grid this zoo cannot serve, before any work starts.
    pub fn check(self, zoo: &ZooConfig) -> Result<Valid<EmbedConfig>> {
        let c = zoo;
        if self.functions.is_empty() || self.bottlenecks.is_empty() || self.mask_ratios.is_empty() {
            invalid!("the grid is empty: give at least one number of functions, bottleneck and mask ratio");
        }
        for &f in &self.functions {
            if f < 2 || f > c.functions {
                param!(
                    functions,
                    "{f}: the zoo has {} functions; choose 2..={}",
                    c.functions,
                    c.functions
                );
            }
            if f > MAX_CLASSES {
                param!(
                    functions,
                    "{f}: at most {MAX_CLASSES} functions are supported"
                );
            }
        }
        for &k in &self.bottlenecks {
            if !BOTTLENECKS.contains(&k) {
                param!(bottleneck, "{k}: compiled widths are {BOTTLENECKS:?}");
            }
        }
        for &m in &self.mask_ratios {
            ClozeConfig {
                mask_ratio: m,
                ..self.cloze.clone()
            }
            .validate()?;
        }
        if self.held_out == 0 || self.held_out >= c.seeds {
            param!(
                held_out,
                "{}: must leave at least one of the zoo's {} seeds on each side",
                self.held_out,
                c.seeds
            );
        }
        self.cloze.validate()?;
        Ok(Valid::checked(self))
    }
}

/// One model of the zoo, as the embedding sees it.
pub struct Member {
    pub function: usize,
    pub seed: usize,
    pub model: RuntimeModel,
}

/// A linear probe's accuracy on held-out models' embeddings (`bottleneck` and `mask_ratio`
/// set) or on a baseline's features, with the ARI of clustering the same features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeScore {
    pub method: String,
    pub accuracy: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ari: Option<f64>,
    pub functions: usize,
    pub bottleneck: Option<usize>,
    pub mask_ratio: Option<f64>,
}

/// What the grid reports while it runs: each embedder's losses, every probe's accuracy.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// An embedder's masked-gradient losses at its own `step`; `label` names the grid point,
    /// e.g. `f10 k4 m0.50`.
    Loss {
        label: String,
        step: usize,
        train: f64,
        val: f64,
    },
    /// A linear probe's score on embeddings or a baseline's features.
    Probe(ProbeScore),
    /// A grid point finished (`done` of `total`).
    PointDone { done: usize, total: usize },
}

/// One grid point's result.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPoint {
    pub functions: usize,
    pub bottleneck: usize,
    pub mask_ratio: f64,
    pub accuracy: f64,
    pub alpha: f64,
    pub cluster_ari: f64,
    pub train_loss: f64,
    pub val_loss: f64,
    pub seconds: f64,
    /// Every model's embedding projected on its two principal components (over this grid
    /// point's training and held-out models together), for a scatter plot.
    pub projected: Vec<Projected>,
}

/// One model's embedding, projected to 2-D.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    pub function: usize,
    pub seed: usize,
    pub held_out: bool,
    pub pc1: f64,
    pub pc2: f64,
}

/// One baseline's result.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselinePoint {
    pub functions: usize,
    pub method: String,
    pub accuracy: f64,
    /// `None` for the supervised classifier, which has no features to cluster.
    pub cluster_ari: Option<f64>,
}

/// Everything `embed` measured.
#[derive(Debug, Clone)]
pub struct EmbedReport {
    pub grid: Vec<GridPoint>,
    pub baselines: Vec<BaselinePoint>,
    /// Models left out because they were flagged.
    pub excluded: Vec<String>,
    pub train_models: usize,
    pub val_models: usize,
}

/// Features of the weight-space and function-space baselines.
pub mod baselines {
    use super::*;

    /// Every weight and bias, flat.
    pub fn flat_weights(m: &RuntimeModel) -> Vec<f64> {
        Arch::flatten(m).into_iter().map(|v| v as f64).collect()
    }

    /// Per layer, for its weights and its biases: mean, standard deviation, minimum, the three
    /// quartiles and maximum (the statistics of Unterthiner et al., 2020).
    pub fn weight_stats(m: &RuntimeModel) -> Vec<f64> {
        let stats = |v: &[f32]| -> Vec<f64> {
            let mut s: Vec<f64> = v.iter().map(|&x| x as f64).collect();
            s.sort_by(f64::total_cmp);
            let n = s.len() as f64;
            let mean = s.iter().sum::<f64>() / n;
            let sd = (s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
            vec![mean, sd, q(0.0), q(0.25), q(0.5), q(0.75), q(1.0)]
        };
        m.layers
            .iter()
            .flat_map(|l| stats(&l.weight).into_iter().chain(stats(&l.bias)))
            .collect()
    }

    /// The model's outputs on a fixed grid of `points` inputs in [-1, 1].
    pub fn sampled_outputs(m: &RuntimeModel, points: usize) -> Result<Vec<f64>> {
        let grid: Vec<f64> = (0..points)
            .map(|i| -1.0 + 2.0 * i as f64 / (points - 1).max(1) as f64)
            .collect();
        m.forward(&grid)
    }
}

fn rows(members: &[&Member], f: &dyn Fn(&RuntimeModel) -> Result<Vec<f64>>) -> Result<Labelled> {
    Ok(Labelled {
        x: members.iter().map(|m| f(&m.model)).collect::<Result<_>>()?,
        y: members.iter().map(|m| m.function).collect(),
    })
}

fn label(f: usize, k: usize, m: f64) -> String {
    format!("f{f} k{k} m{m:.2}")
}

/// Runs the grid (embedders judged by a linear probe and clustering) and the baselines on
/// `members`, split by seed: the last `cfg.held_out` of `seeds` are held out. `excluded` names
/// models the caller left out (reported back). Progress goes to `observe`, from any thread.
pub fn grid_and_baselines(
    members: &[Member],
    seeds: usize,
    cfg: &Valid<EmbedConfig>,
    excluded: Vec<String>,
    observe: &(dyn Fn(Progress) -> Result<()> + Sync),
) -> Result<EmbedReport> {
    let first_val = seeds - cfg.held_out;
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let mut jobs = Vec::new();
    for &f in &cfg.functions {
        for &k in &cfg.bottlenecks {
            for &m in &cfg.mask_ratios {
                jobs.push((f, k, m));
            }
        }
    }
    let split = |f: usize| -> (Vec<&Member>, Vec<&Member>) {
        let inside: Vec<&Member> = members.iter().filter(|m| m.function < f).collect();
        (
            inside
                .iter()
                .copied()
                .filter(|m| m.seed < first_val)
                .collect(),
            inside
                .iter()
                .copied()
                .filter(|m| m.seed >= first_val)
                .collect(),
        )
    };
    for &f in &cfg.functions {
        let (tr, va) = split(f);
        for c in 0..f {
            if !tr.iter().any(|m| m.function == c) || !va.iter().any(|m| m.function == c) {
                invalid!(
                    "function {c} has no usable model on one side of the split (training seeds 0..{first_val}, held out {first_val}..{seeds}); pass --keep-flagged or retrain the zoo"
                );
            }
        }
    }
    let (train_models, val_models) = split(*cfg.functions.iter().max().expect("validated"));
    let grid: Vec<GridPoint> = jobs
        .par_iter()
        .map(|&(f, k, m)| -> Result<GridPoint> {
            let (tr, va) = split(f);
            let trm: Vec<&RuntimeModel> = tr.iter().map(|x| &x.model).collect();
            let vam: Vec<&RuntimeModel> = va.iter().map(|x| &x.model).collect();
            let scale = cloze::gradient_scale(&trm)?;
            let cc = ClozeConfig {
                bottleneck: k,
                mask_ratio: m,
                ..cfg.cloze.clone()
            };
            let tag = label(f, k, m);
            let mut last: Option<LossPoint> = None;
            let every = (cc.steps / 20).max(1);
            let emb = cloze::train_embedder(&cc, &trm, &vam, scale, every, &mut |p| {
                last = Some(p);
                let _ = observe(Progress::Loss {
                    label: tag.clone(),
                    step: p.step,
                    train: p.train,
                    val: p.val,
                });
            })?;
            let all: Vec<Vec<f64>> = emb.train.iter().chain(&emb.val).cloned().collect();
            let projected = project_2d(&all)?
                .into_iter()
                .zip(
                    tr.iter()
                        .map(|x| (x, false))
                        .chain(va.iter().map(|x| (x, true))),
                )
                .map(|((pc1, pc2), (x, held_out))| Projected {
                    function: x.function,
                    seed: x.seed,
                    held_out,
                    pc1,
                    pc2,
                })
                .collect();
            let train = Labelled {
                x: emb.train,
                y: tr.iter().map(|x| x.function).collect(),
            };
            let val = Labelled {
                x: emb.val,
                y: va.iter().map(|x| x.function).collect(),
            };
            let probe = linear_probe(&train, &val)?;
            let ari = cluster_ari(&val)?;
            observe(Progress::Probe(ProbeScore {
                method: "embedding".into(),
                accuracy: probe.accuracy,
                cluster_ari: Some(ari),
                functions: f,
                bottleneck: Some(k),
                mask_ratio: Some(m),
            }))?;
            let done = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            observe(Progress::PointDone {
                done,
                total: jobs.len(),
            })?;
            let last = last.expect("at least one loss point");
            Ok(GridPoint {
                functions: f,
                bottleneck: k,
                mask_ratio: m,
                accuracy: probe.accuracy,
                alpha: probe.alpha,
                cluster_ari: ari,
                train_loss: last.train,
                val_loss: last.val,
                seconds: emb.seconds,
                projected,
            })
        })
        .collect::<Result<_>>()?;
    let mut baselines = Vec::new();
    for &f in &cfg.functions {
        let (tr, va) = split(f);
        type Feature = fn(&RuntimeModel) -> Result<Vec<f64>>;
        let methods: [(&str, Feature); 3] = [
            ("flat_weights", |m| Ok(baselines::flat_weights(m))),
            ("weight_stats", |m| Ok(baselines::weight_stats(m))),
            ("sampled_outputs", |m| {
                baselines::sampled_outputs(m, cloze::POINTS)
            }),
        ];
        let results: Vec<BaselinePoint> = methods
            .par_iter()
            .map(|(name, feat)| -> Result<BaselinePoint> {
                let train = rows(&tr, feat)?;
                let val = rows(&va, feat)?;
                let probe = linear_probe(&train, &val)?;
                Ok(BaselinePoint {
                    functions: f,
                    method: name.to_string(),
                    accuracy: probe.accuracy,
                    cluster_ari: Some(cluster_ari(&val)?),
                })
            })
            .collect::<Result<_>>()?;
        baselines.extend(results);
        let trm: Vec<(&RuntimeModel, usize)> = tr.iter().map(|x| (&x.model, x.function)).collect();
        let vam: Vec<&RuntimeModel> = va.iter().map(|x| &x.model).collect();
        let scale = cloze::gradient_scale(&trm.iter().map(|x| x.0).collect::<Vec<_>>())?;
        let pred = cloze::supervised(&cfg.cloze, &trm, &vam, scale)?;
        let acc = pred
            .iter()
            .zip(va.iter())
            .filter(|(p, m)| **p == m.function)
            .count() as f64
            / va.len() as f64;
        baselines.push(BaselinePoint {
            functions: f,
            method: "supervised_gradients".into(),
            accuracy: acc,
            cluster_ari: None,
        });
    }
    for b in &baselines {
        observe(Progress::Probe(ProbeScore {
            method: b.method.clone(),
            accuracy: b.accuracy,
            cluster_ari: b.cluster_ari,
            functions: b.functions,
            bottleneck: None,
            mask_ratio: None,
        }))?;
    }
    Ok(EmbedReport {
        grid,
        baselines,
        excluded,
        train_models: train_models.len(),
        val_models: val_models.len(),
    })
}

/// The grid as a table.
pub fn grid_table(grid: &[GridPoint]) -> Result<DataFrame> {
    let col = |name: &str, f: &dyn Fn(&GridPoint) -> f64| {
        Column::new(name.into(), grid.iter().map(f).collect::<Vec<f64>>())
    };
    DataFrame::new(vec![
        Column::new(
            "functions".into(),
            grid.iter().map(|g| g.functions as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "bottleneck".into(),
            grid.iter().map(|g| g.bottleneck as u32).collect::<Vec<_>>(),
        ),
        col("mask_ratio", &|g| g.mask_ratio),
        col("probe_accuracy", &|g| g.accuracy),
        col("cluster_ari", &|g| g.cluster_ari),
        col("probe_alpha", &|g| g.alpha),
        col("train_loss", &|g| g.train_loss),
        col("val_loss", &|g| g.val_loss),
        col("seconds", &|g| g.seconds),
    ])
    .map_err(|e| Error::Data(format!("grid table: {e}")))
}

/// Every grid point's projected embeddings as one long table: `functions`, `bottleneck`,
/// `mask_ratio`, `function`, `seed`, `held_out`, `pc1`, `pc2`.
pub fn embeddings_table(grid: &[GridPoint]) -> Result<DataFrame> {
    let rows: Vec<(&GridPoint, &Projected)> = grid
        .iter()
        .flat_map(|g| g.projected.iter().map(move |p| (g, p)))
        .collect();
    let u = |name: &str, f: &dyn Fn(&(&GridPoint, &Projected)) -> u32| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<u32>>())
    };
    let x = |name: &str, f: &dyn Fn(&(&GridPoint, &Projected)) -> f64| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<f64>>())
    };
    DataFrame::new(vec![
        u("functions", &|r| r.0.functions as u32),
        u("bottleneck", &|r| r.0.bottleneck as u32),
        x("mask_ratio", &|r| r.0.mask_ratio),
        u("function", &|r| r.1.function as u32),
        u("seed", &|r| r.1.seed as u32),
        Column::new(
            "held_out".into(),
            rows.iter().map(|r| r.1.held_out).collect::<Vec<bool>>(),
        ),
        x("pc1", &|r| r.1.pc1),
        x("pc2", &|r| r.1.pc2),
    ])
    .map_err(|e| Error::Data(format!("embeddings table: {e}")))
}

/// The baselines as a table.
pub fn baseline_table(b: &[BaselinePoint]) -> Result<DataFrame> {
    DataFrame::new(vec![
        Column::new(
            "functions".into(),
            b.iter().map(|g| g.functions as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "method".into(),
            b.iter().map(|g| g.method.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "probe_accuracy".into(),
            b.iter().map(|g| g.accuracy).collect::<Vec<_>>(),
        ),
        Column::new(
            "cluster_ari".into(),
            b.iter().map(|g| g.cluster_ari).collect::<Vec<_>>(),
        ),
    ])
    .map_err(|e| Error::Data(format!("baseline table: {e}")))
}

/// Two principal components of embeddings, for a scatter plot.
pub fn project_2d(rows: &[Vec<f64>]) -> Result<Vec<(f64, f64)>> {
    let n = rows.len();
    let d = rows.first().map_or(0, |r| r.len());
    if n < 2 || d == 0 {
        invalid!("a projection needs at least 2 embeddings");
    }
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let pca = Pca::fit(&flat, n, d)?;
    Ok(rows
        .iter()
        .map(|r| {
            let c = |k: usize| -> f64 {
                if k >= d {
                    return 0.0;
                }
                r.iter()
                    .zip(&pca.mean)
                    .zip(&pca.components[k * d..(k + 1) * d])
                    .map(|((v, m), w)| (v - m) * w)
                    .sum()
            };
            (c(0), c(1))
        })
        .collect())
}
