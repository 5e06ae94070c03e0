//! Our side of `bench peers`: the exchange directory both sides read (written once), and each
//! workload run in this process as `circuitscope bench side W`, printed as one JSON line.

use super::peers::Workload;
use super::timing::all_jacobians;
use crate::data::poly1d;
use crate::data::products::ProductsConfig;
use crate::embed::zoo::{ZooConfig, ZooSpec};
use crate::graph::ig::{edge_attributions, Mode, Target};
use crate::model::checkpoint::{Checkpoint, Layout};
use crate::model::net::{self, Engine};
use crate::model::train::{fit_params, TrainConfig};
use crate::model::{Preset, RuntimeModel};
use crate::numeric::linalg::{r2_score, Pca, Pls};
use crate::probe::jacobian::Reuse;
use crate::runlog::load::{read_checkpoint, save_checkpoint};
use crate::runlog::preset::preset_data;
use crate::runlog::train::train;
use crate::runlog::write_atomic;
use crate::{Error, Result};
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

// W2: 10 functions x 50 seeds, 5,120 points at batch 128 for 50 epochs = 2,000 Adam steps.
pub(crate) const W2_FUNCTIONS: usize = 10;
pub(crate) const W2_SEEDS: usize = 50;
pub(crate) const W2_N: usize = 5120;
pub(crate) const W2_BATCH: usize = 128;
pub(crate) const W2_EPOCHS: usize = 50;
pub(crate) const W2_LR: f64 = 3e-3;
pub(crate) const W2_GRID: usize = 1024;
pub(crate) const PROBE_EXAMPLES: usize = 10_000;
pub(crate) const IG_EXAMPLES: usize = 1_000;
/// Pre-activations closer to zero than this may flip sign between f32 and f64.
pub(crate) const NEAR_ZERO: f64 = 1e-5;
/// 2: products64 trained by the fused engine (the default since 2026-12-03).
pub(crate) const EXCHANGE_VERSION: u64 = 2;

pub(crate) fn w2_config() -> ZooConfig {
    ZooConfig {
        functions: W2_FUNCTIONS,
        seeds: W2_SEEDS,
        epochs: W2_EPOCHS,
        batch: W2_BATCH,
        lr: W2_LR,
        n_train: W2_N,
        ..ZooConfig::default()
    }
}

pub(crate) fn probe_inputs(n: usize, seed: u64) -> Result<Vec<f32>> {
    Ok(ProductsConfig {
        n_train: 1,
        n_val: n,
        n_per_task: 1,
        seed,
        ..Default::default()
    }
    .generate()?
    .val
    .x)
}

// ---- safetensors of plain named arrays --------------------------------------------------

pub(crate) enum Array<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

pub(crate) fn write_arrays(path: &Path, arrays: &[(&str, Vec<usize>, Array)]) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = arrays
        .iter()
        .map(|(n, s, a)| match a {
            Array::F32(v) => (
                n.to_string(),
                s.clone(),
                Dtype::F32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Array::F64(v) => (
                n.to_string(),
                s.clone(),
                Dtype::F64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, d, b)| {
            safetensors::tensor::TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::bad_file(path, format!("cannot encode {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let data = safetensors::serialize(views, &None)
        .map_err(|e| Error::bad_file(path, format!("cannot encode: {e}")))?;
    write_atomic(path, &data)
}

pub(crate) fn read_f32(path: &Path, name: &str) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bad_file(path, format!("not a safetensors file: {e}")))?;
    let t = st
        .tensor(name)
        .map_err(|e| Error::bad_file(path, format!("no tensor `{name}`: {e}")))?;
    if t.dtype() != Dtype::F32 {
        return Err(Error::bad_file(path, format!("`{name}` is not F32")));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

// ---- the exchange directory -------------------------------------------------------------

/// Whether the JSON file `stamp` names this `version` (an exchange already written).
pub(crate) fn stamped(stamp: &Path, version: u64) -> bool {
    std::fs::read_to_string(stamp)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| v["version"].as_u64())
        == Some(version)
}

/// Writes everything both sides read, unless `dir` already holds this version of it.
pub fn prepare(dir: &Path) -> Result<()> {
    let stamp = dir.join("exchange.json");
    if stamped(&stamp, EXCHANGE_VERSION) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
    let cfg = TrainConfig::defaults(Preset::Products64).check()?;
    let data = preset_data(&cfg)?;
    let (tr, va) = (&data.train, &data.val);
    write_arrays(
        &dir.join("products.safetensors"),
        &[
            ("train_x", vec![tr.n, tr.d_in], Array::F32(&tr.x)),
            ("train_y", vec![tr.n, tr.d_out], Array::F32(&tr.y)),
            ("val_x", vec![va.n, va.d_in], Array::F32(&va.x)),
            ("val_y", vec![va.n, va.d_out], Array::F32(&va.y)),
        ],
    )?;
    save_checkpoint(
        &dir.join("products64_init.safetensors"),
        &Checkpoint {
            layout: Layout::Preset(Preset::Products64),
            params: net::build(Preset::Products64, cfg.seed).params(),
            adam: None,
            progress: None,
        },
    )?;
    eprintln!("bench peers: training products64 with its defaults for the exchange ...");
    let run = dir.join("prepare-run");
    let _ = std::fs::remove_dir_all(&run);
    let outcome = train(&run, &cfg, &mut |_| {})?;
    let trained = dir.join("products64.safetensors");
    std::fs::copy(outcome.run.model(), &trained)
        .map_err(|e| Error::io(&trained, "cannot copy to", e))?;
    let _ = std::fs::remove_dir_all(&run);
    let probe_x = probe_inputs(PROBE_EXAMPLES, 7)?;
    let ig_x = probe_inputs(IG_EXAMPLES, 11)?;
    write_arrays(
        &dir.join("inputs.safetensors"),
        &[
            ("probe_x", vec![PROBE_EXAMPLES, 4], Array::F32(&probe_x)),
            ("ig_x", vec![IG_EXAMPLES, 4], Array::F32(&ig_x)),
        ],
    )?;
    let model = read_checkpoint(&trained, Some(&Layout::Preset(Preset::Products64)))?.view()?;
    let ig = exact_ig(&model, &ig_x)?;
    let shapes: Vec<Vec<usize>> = IG_PAIRS
        .iter()
        .map(|&l| vec![IG_EXAMPLES, model.layers[l].d_out, model.layers[l].d_in])
        .collect();
    write_arrays(
        &dir.join("ig_exact.safetensors"),
        &[
            ("pair1", shapes[0].clone(), Array::F64(&ig[0])),
            ("pair2", shapes[1].clone(), Array::F64(&ig[1])),
        ],
    )?;
    let spec = ZooSpec::new(w2_config().check()?);
    let exchange = json!({
        "version": EXCHANGE_VERSION,
        "w1": {"epochs": cfg.epochs, "batch": cfg.batch, "lr": cfg.lr},
        "w2": {
            "coeffs": spec.family.iter().map(|p| p.coeffs.clone()).collect::<Vec<_>>(),
            "seeds": W2_SEEDS, "n_train": W2_N, "batch": W2_BATCH, "epochs": W2_EPOCHS,
            "lr": W2_LR, "grid": W2_GRID,
        },
    });
    write_atomic(&stamp, exchange.to_string().as_bytes())
}

/// The hidden-layer pairs whose edges W4 attributes: `h_1 → h_2` and `h_2 → h_3`.
const IG_PAIRS: [usize; 2] = [1, 2];

/// Exact IG on every edge of [`IG_PAIRS`], zero baseline, target output 0: per pair
/// `n x d_out x d_in`.
fn exact_ig(model: &RuntimeModel, x: &[f32]) -> Result<Vec<Vec<f64>>> {
    let trace = model.trace_f32(x)?;
    let target = Target::Outputs(vec![0]);
    IG_PAIRS
        .iter()
        .map(|&l| {
            let zero = vec![0.0; model.layers[l].d_in];
            edge_attributions(model, l, &trace.post[l - 1], &zero, &target, Mode::Exact)
        })
        .collect()
}

// ---- our side ----------------------------------------------------------------------------

fn variant(name: &str, seconds: f64, rate: f64, unit: &str) -> Value {
    json!({"name": name, "seconds": seconds, "rate": rate, "unit": unit})
}

/// Runs one workload on this side (in this process, on the current rayon pool) and returns
/// its JSON line.
pub fn side(w: Workload, dir: &Path, engine: Engine) -> Result<Value> {
    let trained = || {
        read_checkpoint(
            &dir.join("products64.safetensors"),
            Some(&Layout::Preset(Preset::Products64)),
        )?
        .view()
    };
    let inputs = dir.join("inputs.safetensors");
    let threads = rayon::current_num_threads();
    if let Some(stage) = w.w6_stage() {
        let mut out = super::w6::stage(stage, dir)?;
        out["workload"] = json!(w.name());
        out["threads"] = json!(threads);
        out["peak_mb"] = json!(peak_mb());
        return Ok(out);
    }
    let mut out = match w {
        Workload::W1 => {
            let cfg = TrainConfig {
                log_every: usize::MAX,
                engine,
                ..TrainConfig::defaults(Preset::Products64)
            }
            .check()?;
            let run = dir.join("ours-w1");
            let _ = std::fs::remove_dir_all(&run);
            let o = train(&run, &cfg, &mut |_| {})?;
            let _ = std::fs::remove_dir_all(&run);
            let n = preset_data(&cfg)?.train.n * cfg.epochs;
            let val = o.val.iter().map(|m| m.loss).sum::<f64>() / o.val.len() as f64;
            json!({"val_mse": val, "variants": [variant(&format!("circuitscope train ({})", engine.name()), n as f64 / o.examples_per_s, o.examples_per_s, "examples/s")]})
        }
        Workload::W2 => {
            let spec = ZooSpec::new(w2_config().check()?);
            let slots: Vec<(usize, usize)> = (0..W2_SEEDS)
                .flat_map(|s| (0..W2_FUNCTIONS).map(move |f| (f, s)))
                .collect();
            let t0 = Instant::now();
            let params = slots
                .par_iter()
                .map(|&(f, s)| {
                    let seed = ((f as u64) << 32) | s as u64;
                    let data = poly1d::dataset(&spec.family[f], "w2", W2_N, seed, 0)?;
                    fit_params(
                        Preset::Poly,
                        seed,
                        &data,
                        (W2_EPOCHS, W2_BATCH, W2_LR),
                        engine,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let s = t0.elapsed().as_secs_f64();
            let grid: Vec<f64> = (0..W2_GRID)
                .map(|i| -1.0 + 2.0 * i as f64 / (W2_GRID - 1) as f64)
                .collect();
            let mut mse = 0.0;
            for (p, &(f, _)) in params.iter().zip(&slots) {
                let y = Preset::Poly.arch().view(p)?.forward(&grid)?;
                mse += y
                    .iter()
                    .zip(&grid)
                    .map(|(a, &x)| (a - spec.family[f].eval(x)).powi(2))
                    .sum::<f64>()
                    / W2_GRID as f64;
            }
            let n = slots.len();
            json!({"models": n, "variants": [{"name": format!("circuitscope zoo ({})", engine.name()), "models": n, "seconds": s, "rate": n as f64 / s, "unit": "models/s", "val_mse_mean": mse / n as f64}]})
        }
        Workload::W3 => {
            let model = trained()?;
            let x = read_f32(&inputs, "probe_x")?;
            let (s, trace, jac) = all_jacobians(&model, &x, Reuse::Patterns)?;
            let patterns = jac.per_layer[0].count();
            let hidden = model.layers.len() - 1;
            let near: Vec<usize> = (0..trace.n)
                .filter(|&i| {
                    (0..hidden).any(|k| {
                        let d = model.layers[k].d_out;
                        trace.pre[k][i * d..(i + 1) * d]
                            .iter()
                            .any(|z| z.abs() < NEAR_ZERO)
                    })
                })
                .collect();
            let near_set: HashSet<usize> = near.iter().copied().collect();
            let clean: HashSet<Vec<bool>> = (0..trace.n)
                .filter(|i| !near_set.contains(i))
                .map(|i| {
                    (0..hidden)
                        .flat_map(|k| {
                            let d = model.layers[k].d_out;
                            trace.pre[k][i * d..(i + 1) * d].iter().map(|&z| z > 0.0)
                        })
                        .collect()
                })
                .collect();
            let dydx: f64 = jac.per_layer[0].expand().iter().map(|v| v.abs()).sum();
            let n = trace.n;
            json!({"examples": n, "patterns": patterns, "patterns_without_near_zero": clean.len(),
                   "near_zero": near, "dydx_abs_sum": dydx,
                   "variants": [variant("circuitscope (pattern reuse)", s, (n * 2 * model.layers.len()) as f64 / s, "Jacobians/s")]})
        }
        Workload::W4 => {
            let model = trained()?;
            let x = read_f32(&inputs, "ig_x")?;
            let t0 = Instant::now();
            let ig = exact_ig(&model, &x)?;
            let s = t0.elapsed().as_secs_f64();
            std::hint::black_box(&ig);
            let edges: usize = IG_PAIRS
                .iter()
                .map(|&l| model.layers[l].d_in * model.layers[l].d_out)
                .sum();
            let n = x.len() / model.d_in();
            json!({"examples": n, "edges": edges, "variants": [{"name": "circuitscope exact", "seconds": s, "rate": (edges * n) as f64 / s, "unit": "edge attributions/s", "max_error": 0.0}]})
        }
        Workload::W6
        | Workload::W6Train
        | Workload::W6Jacobians
        | Workload::W6Ig
        | Workload::W6Faithfulness
        | Workload::W6Pca => {
            return Err(Error::Invalid(
                "W6 runs stage by stage: w6-train, w6-jacobians, w6-ig, w6-faithfulness, w6-pca"
                    .into(),
            ))
        }
        Workload::W5 => {
            let model = trained()?;
            let x = read_f32(&inputs, "probe_x")?;
            let trace = model.trace_f32(&x)?;
            let n = trace.n;
            let hidden = model.layers.len() - 1;
            let t0 = Instant::now();
            let mut ratios = Vec::new();
            for k in 0..hidden {
                let pca = Pca::fit(&trace.post[k], n, model.layers[k].d_out)?;
                ratios.push(pca.ratios[..8].to_vec());
            }
            let mut r2 = Vec::new();
            for k in 0..hidden - 1 {
                let (dx, dy) = (model.layers[k].d_out, model.layers[k + 1].d_out);
                let pls = Pls::fit(&trace.post[k], &trace.post[k + 1], n, dx, dy, 8)?;
                r2.push(r2_score(
                    &trace.post[k + 1],
                    &pls.predict(&trace.post[k], n),
                    n,
                    dy,
                ));
            }
            let s = t0.elapsed().as_secs_f64();
            json!({"pca_ratios": ratios, "pls_r2": r2, "variants": [variant("circuitscope PCA + PLS", s, 1.0 / s, "runs/s")]})
        }
    };
    out["workload"] = json!(w.name());
    out["threads"] = json!(threads);
    out["peak_mb"] = json!(peak_mb());
    Ok(out)
}

/// This process's peak resident memory so far, in MB: `VmHWM` of `/proc/self/status` (Linux),
/// the high-water mark of this program's own memory. `getrusage`'s `ru_maxrss` is not: it
/// keeps the parent's resident size at the fork across `exec`.
pub(crate) fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_through_safetensors() {
        let dir = std::env::temp_dir().join(format!("cs-peers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.safetensors");
        let x = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0];
        write_arrays(
            &p,
            &[
                ("x", vec![2, 3], Array::F32(&x)),
                ("y", vec![1], Array::F64(&[0.5])),
            ],
        )
        .unwrap();
        assert_eq!(read_f32(&p, "x").unwrap(), x);
        assert!(read_f32(&p, "y")
            .unwrap_err()
            .to_string()
            .contains("is not F32"));
        assert!(read_f32(&p, "z")
            .unwrap_err()
            .to_string()
            .contains("no tensor `z`"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
