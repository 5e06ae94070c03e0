//! `circuitscope bench peers`: the same six workloads here and in PyTorch, Captum and
//! scikit-learn (`benches/peers/peers.py`), on one machine, interleaved, at equal thread
//! counts, with each workload's ratio and the agreement of the two sides' results.
//!
//! The runner writes an exchange directory once (the `products` data, `products64`'s initial
//! and trained weights as circuitscope checkpoints, the probe inputs, the exact IG
//! attributions, the zoo's polynomials), then runs every measurement as its own process: our
//! side as `circuitscope bench side W` with `RAYON_NUM_THREADS`, the peer's as
//! `python peers.py W --threads N`. Each prints one JSON line. It never installs the peer side
//! (a manual step, `benches/peers/setup.sh`) and is never part of the test command.

use super::side::{prepare, W2_BATCH, W2_EPOCHS, W2_N};
use crate::model::net::Engine;
use crate::params::Choice;
use crate::runlog::write_atomic;
use crate::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One of the five workloads of issue #10, or a stage of W6 (issue #26: a 784→512→512→10
/// classifier, `bench::w6`); `W6` names all its stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    W1,
    W2,
    W3,
    W4,
    W5,
    W6,
    W6Train,
    W6Jacobians,
    W6Ig,
    W6Faithfulness,
    W6Pca,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
            Workload::W6 => "W6",
            Workload::W6Train => "W6-train",
            Workload::W6Jacobians => "W6-jacobians",
            Workload::W6Ig => "W6-ig",
            Workload::W6Faithfulness => "W6-faithfulness",
            Workload::W6Pca => "W6-pca",
        }
    }

    /// The W6 stage this names (`train`, `jacobians`, ...), if it is one.
    pub fn w6_stage(self) -> Option<&'static str> {
        self.name().strip_prefix("W6-")
    }

    /// The workloads to run for `asked`: `W6` stands for its five stages; each once, in order.
    pub fn expand(asked: &[Workload]) -> Vec<Workload> {
        let mut out: Vec<Workload> = asked
            .iter()
            .flat_map(|&w| {
                if w == Workload::W6 {
                    vec![
                        Workload::W6Train,
                        Workload::W6Jacobians,
                        Workload::W6Ig,
                        Workload::W6Faithfulness,
                        Workload::W6Pca,
                    ]
                } else {
                    vec![w]
                }
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

// ---- the runner --------------------------------------------------------------------------

/// Options of `circuitscope bench peers`.
#[derive(Debug, Clone)]
pub struct PeersOptions {
    pub dir: PathBuf,
    pub python: PathBuf,
    pub script: PathBuf,
    pub threads: Vec<usize>,
    pub repeats: usize,
    pub workloads: Vec<Workload>,
    pub w2_loop_models: usize,
    /// Our training engine for W1 and W2.
    pub engine: Engine,
}

fn json_line(cmd: &mut Command, what: &str) -> Result<Value> {
    let out = cmd
        .output()
        .map_err(|e| Error::Invalid(format!("cannot start {what}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(8).collect();
        return Err(Error::Invalid(format!(
            "{what} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| Error::Invalid(format!("{what} printed no JSON line")))?;
    serde_json::from_str(line).map_err(|e| Error::Invalid(format!("{what}: bad JSON line: {e}")))
}

fn ours(w: Workload, dir: &Path, threads: usize, engine: Engine) -> Result<Value> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Invalid(format!("cannot find this binary: {e}")))?;
    json_line(
        Command::new(exe)
            .args(["bench", "side", &w.name().to_lowercase(), "--dir"])
            .arg(dir)
            .args(["--engine", engine.name()])
            .env("RAYON_NUM_THREADS", threads.to_string()),
        &format!("circuitscope {} ({threads} threads)", w.name()),
    )
}

fn peer(w: Workload, o: &PeersOptions, threads: usize) -> Result<Value> {
    json_line(
        Command::new(&o.python)
            .arg(&o.script)
            .arg(w.name())
            .arg("--dir")
            .arg(&o.dir)
            .args(["--threads", &threads.to_string()])
            .args(["--w2-loop-models", &o.w2_loop_models.to_string()])
            .env("OMP_NUM_THREADS", threads.to_string())
            .env("MKL_NUM_THREADS", threads.to_string()),
        &format!("the peer's {} ({threads} threads)", w.name()),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// The targets of issue #26 (raised from issue #10's 3x, 20x / 3x, 5x, 10x at the peer's best
/// error, 1x): (part of the peer variant's name, least ratio); the first match counts. W4:
/// exact IG at least as fast as torch.func's 50-step sum (whose error is 5.6e-4), and still
/// #10's 10x against the peer at its most accurate tested step count.
fn targets(w: Workload) -> &'static [(&'static str, f64)] {
    match w {
        Workload::W1 => &[("torch loop", 5.0)],
        Workload::W2 => &[("per-model loop", 20.0), ("vmapped ensemble", 10.0)],
        Workload::W3 => &[("torch.func", 20.0)],
        Workload::W4 => &[
            ("(best tested error)", 10.0),
            ("torch.func", 1.0),
            ("captum", f64::NAN),
        ],
        Workload::W5 => &[("scikit-learn", 2.0)],
        // Issue #26: every stage at least 3x the peer (at equal or lower peak memory).
        _ => &[("", 3.0)],
    }
}

/// FLOPs of the useful work per unit of rate (per example, model or Jacobian): the dense
/// reference count, the same for both sides whatever shortcuts either takes.
fn flops_per_unit(w: Workload) -> Option<f64> {
    // Σ d_in·d_out over the layers of products64 and poly.
    let p64: f64 = [4.0 * 64.0, 64.0 * 64.0, 64.0 * 64.0, 64.0 * 2.0]
        .iter()
        .sum();
    let poly: f64 = [32.0, 32.0 * 32.0, 32.0].iter().sum();
    match w {
        // forward 2P, backward 2P (weights) + 2(P − d0·d1) (inputs); validation is 10% extra
        // examples forward only, counted.
        Workload::W1 => Some(6.0 * p64 - 2.0 * 4.0 * 64.0 + 2.0 * p64 * 2000.0 / 20000.0),
        Workload::W2 => {
            Some((6.0 * poly - 2.0 * 32.0) * (W2_BATCH * W2_N / W2_BATCH * W2_EPOCHS) as f64)
        }
        // per Jacobian (8 per example): the forward pass and the backward chain of dense
        // (2 x d) · (d x d') products, spread over the 8.
        Workload::W3 => Some((2.0 * p64 + 2.0 * 2.0 * (64.0 * 64.0 * 2.0 + 64.0 * 4.0)) / 8.0),
        _ => None,
    }
}

/// Runs the comparison and prints it; returns the full record (also written to
/// `DIR/results.json`).
pub fn run(o: &PeersOptions) -> Result<Value> {
    if !o.python.exists() {
        return Err(Error::Invalid(format!(
            "the peer side is not installed ({} is missing): run `bash benches/peers/setup.sh` first (about 3.5 GB of downloads)",
            o.python.display()
        )));
    }
    if !o.script.is_file() {
        return Err(Error::Invalid(format!("{} is missing", o.script.display())));
    }
    let workloads = Workload::expand(&o.workloads);
    prepare(&o.dir)?;
    if workloads.iter().any(|w| w.w6_stage().is_some()) {
        super::w6::prepare(&o.dir)?;
    }
    let peak = super::peak::measure();
    println!("{peak}");
    let mut records = Vec::new();
    for &threads in &o.threads {
        for rep in 0..o.repeats {
            for &w in &workloads {
                // Alternate which side goes first.
                let mut pair = [None, None];
                let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    pair[side] = Some(if side == 0 {
                        ours(w, &o.dir, threads, o.engine)?
                    } else {
                        peer(w, o, threads)?
                    });
                }
                let [a, b] = pair.map(|v| v.expect("both ran"));
                println!(
                    "{} {:>2} threads, repeat {}: {}",
                    w.name(),
                    threads,
                    rep + 1,
                    brief(&a, &b)
                );
                records.push(json!({"workload": w.name(), "threads": threads, "repeat": rep, "ours": a, "peer": b}));
            }
        }
    }
    let summary = summarise(o, &records, &peak);
    let all = json!({"peak": peak.to_json(), "runs": records, "summary": summary});
    let path = o.dir.join("results.json");
    write_atomic(
        &path,
        serde_json::to_string_pretty(&all)
            .expect("serialises")
            .as_bytes(),
    )?;
    println!("\nall figures: {}", path.display());
    Ok(all)
}

fn variants(v: &Value) -> Vec<(String, f64, String)> {
    v["variants"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap_or("?").to_string(),
                        x["rate"].as_f64().unwrap_or(f64::NAN),
                        x["unit"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn brief(a: &Value, b: &Value) -> String {
    let (_, ra, unit) = variants(a).into_iter().next().unwrap_or_default();
    let mut s = format!("circuitscope {} {unit}", fmt_rate(ra));
    for (name, rb, _) in variants(b) {
        s += &format!(" | {name} {} ({:.1}x)", fmt_rate(rb), ra / rb);
    }
    if let (Some(pa), Some(pb)) = (a["peak_mb"].as_f64(), b["peak_mb"].as_f64()) {
        s += &format!(" | peak memory {pa:.0} MB vs {pb:.0} MB");
    }
    s
}

fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        let s = format!("{:.0}", r);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{r:.3}")
    }
}

fn summarise(o: &PeersOptions, records: &[Value], peak: &super::peak::Peak) -> Value {
    println!(
        "\nsummary (medians over {} repeats; ratio = circuitscope / peer at equal threads)",
        o.repeats
    );
    println!("| workload | threads | circuitscope | peer | ratio | target | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut rows = Vec::new();
    for &threads in &o.threads {
        for &w in &Workload::expand(&o.workloads) {
            let rs: Vec<&Value> = records
                .iter()
                .filter(|r| r["workload"] == w.name() && r["threads"] == threads)
                .collect();
            if rs.is_empty() {
                continue;
            }
            let ours_rate = median(rs.iter().map(|r| variants(&r["ours"])[0].1).collect());
            let unit = variants(&rs[0]["ours"])[0].2.clone();
            let mut by_name: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in &rs {
                for (n, rate, _) in variants(&r["peer"]) {
                    by_name.entry(n).or_default().push(rate);
                }
            }
            for (name, rates) in by_name {
                let pr = median(rates);
                let ratio = ours_rate / pr;
                let target = targets(w)
                    .iter()
                    .find(|(p, _)| name.contains(p))
                    .map_or(f64::NAN, |t| t.1);
                let met = if target.is_nan() {
                    "—".to_string()
                } else if ratio >= target {
                    "yes".into()
                } else {
                    "no".into()
                };
                println!(
                    "| {} {} | {threads} | {} {unit} | {name}: {} | {:.2}x | {} | {met} |",
                    w.name(),
                    w.help(),
                    fmt_rate(ours_rate),
                    fmt_rate(pr),
                    ratio,
                    if target.is_nan() {
                        "—".into()
                    } else {
                        format!("≥ {target}x")
                    },
                );
                rows.push(json!({"workload": w.name(), "threads": threads, "ours": ours_rate, "peer_variant": name, "peer": pr, "ratio": ratio, "target": if target.is_nan() { Value::Null } else { json!(target) }}));
            }
            let peak_of = |side: &str| {
                median(
                    rs.iter()
                        .filter_map(|r| r[side]["peak_mb"].as_f64())
                        .collect(),
                )
            };
            let (pa, pb) = (peak_of("ours"), peak_of("peer"));
            if w.w6_stage().is_some() && pa.is_finite() && pb.is_finite() {
                println!(
                    "|   peak memory | {threads} | {pa:.0} MB | {pb:.0} MB (the interpreter and torch included) | {:.2}x | ≤ 1x | {} |",
                    pa / pb,
                    if pa <= pb { "yes" } else { "no" }
                );
                rows.push(json!({"workload": w.name(), "threads": threads, "peak_mb_ours": pa, "peak_mb_peer": pb}));
            }
            if let Some(f) = flops_per_unit(w) {
                let achieved = ours_rate * f;
                let frac = achieved / (peak.per_core_flops() * threads as f64);
                println!(
                    "|   FLOP rate | {threads} | {:.2} GFLOP/s = {:.1}% of this CPU's FP32 peak at {threads} core(s) | | | | |",
                    achieved / 1e9,
                    100.0 * frac
                );
                rows.push(json!({"workload": w.name(), "threads": threads, "gflops": achieved / 1e9, "peak_fraction": frac}));
            }
        }
    }
    println!();
    super::agreement::agreement(records);
    json!(rows)
}

crate::choices!(Workload {
    W1 => "w1": "train products64, 20 epochs",
    W2 => "w2": "zoo of 500 poly models, 2,000 steps each",
    W3 => "w3": "all Jacobians of products64, 10,000 examples",
    W4 => "w4": "IG on 8,192 edges x 1,000 examples",
    W5 => "w5": "PCA of 3 layers + PLS of 2 pairs, 10,000 x 64",
    W6 => "w6": "a 784→512→512→10 classifier: all five stages below",
    W6Train => "w6-train": "W6: one epoch of 60,000",
    W6Jacobians => "w6-jacobians": "W6: ∂y/∂x and adjacent Jacobians, 10,000 examples",
    W6Ig => "w6-ig": "W6: IG on 664,576 edges x 100 examples",
    W6Faithfulness => "w6-faithfulness": "W6: a 12-point faithfulness curve, 10,000 examples",
    W6Pca => "w6-pca": "W6: PCA of 2 layers + PLS, 10,000 x 512",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_counts_are_the_dense_reference_counts() {
        // products64: Σ d_in·d_out = 256 + 4096 + 4096 + 128 = 8576.
        let w1 = 6.0 * 8576.0 - 2.0 * 256.0 + 2.0 * 8576.0 * 0.1;
        assert!((flops_per_unit(Workload::W1).unwrap() - w1).abs() < 1e-6);
        // poly: Σ = 32 + 1024 + 32 = 1088; 2,000 steps of 128.
        let w2 = (6.0 * 1088.0 - 64.0) * 256_000.0;
        assert!((flops_per_unit(Workload::W2).unwrap() - w2).abs() < 1e-3);
        // forward 17,152 + backward chain 2·2·(64·64 + 64·64 + 64·4) = 33,792, over 8.
        assert!((flops_per_unit(Workload::W3).unwrap() - 50_944.0 / 8.0).abs() < 1e-9);
        assert!(flops_per_unit(Workload::W4).is_none());
    }

    #[test]
    fn w6_stands_for_its_five_stages_each_once() {
        let w = Workload::expand(&[Workload::W6Ig, Workload::W1, Workload::W6]);
        assert_eq!(
            w,
            vec![
                Workload::W1,
                Workload::W6Train,
                Workload::W6Jacobians,
                Workload::W6Ig,
                Workload::W6Faithfulness,
                Workload::W6Pca
            ]
        );
        assert_eq!(Workload::W6Ig.w6_stage(), Some("ig"));
        assert_eq!(Workload::W6.w6_stage(), None);
        assert_eq!(Workload::W4.w6_stage(), None);
    }

    #[test]
    fn rates_print_with_thousands_separators() {
        assert_eq!(fmt_rate(22_605_413.4), "22,605,413");
        assert_eq!(fmt_rate(684_068.0), "684,068");
        assert_eq!(fmt_rate(100.0), "100");
        assert_eq!(fmt_rate(9.6684), "9.668");
    }
}
