//! `circuitscope bench scale`: cost curves. Each stage a user runs (train one epoch, probe,
//! graph with exact IG, eval with its 12-point mean-ablation curve) runs as its own
//! `circuitscope` process on a spec model, varying one variable at a time from `products64`
//! (4 inputs → 64 → 64 → 64 → 2 outputs, ReLU, 10,000 examples): the hidden width, the depth,
//! the examples (training rows, validation rows and the examples the graph and eval read) and
//! the inputs. Each stage's wall time and peak resident memory are read from the process
//! itself (`wait4`'s `ru_maxrss`: Linux), a stage past the time limit or the memory cap is
//! stopped and reported as such, and the stages after it on that model are skipped. The
//! fitted exponent of each stage against each variable is the least-squares slope of
//! log(time) on log(value), and the slope between neighbouring points shows where a stage
//! stops being linear. Minutes of work: a benchmark, never part of the test command.

use crate::{Error, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The model every sweep starts from (`products64` on 10,000 examples).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub width: usize,
    pub depth: usize,
    pub examples: usize,
    pub inputs: usize,
}

pub const BASE: Shape = Shape {
    width: 64,
    depth: 3,
    examples: 10_000,
    inputs: 4,
};

/// The variables and their values (the ranges).
pub fn variables() -> Vec<(&'static str, Vec<usize>)> {
    vec![
        ("width", vec![16, 64, 256, 1024]),
        ("depth", vec![2, 3, 4, 8]),
        ("examples", vec![1_000, 10_000, 100_000]),
        ("inputs", vec![4, 64, 784]),
    ]
}

impl Shape {
    fn with(self, variable: &str, value: usize) -> Shape {
        let mut s = self;
        match variable {
            "width" => s.width = value,
            "depth" => s.depth = value,
            "examples" => s.examples = value,
            _ => s.inputs = value,
        }
        s
    }

    fn name(&self) -> String {
        format!(
            "w{}-d{}-n{}-i{}",
            self.width, self.depth, self.examples, self.inputs
        )
    }

    /// The spec: inputs `x0 …`, two product tasks on the first four inputs (the others feed
    /// the network and no task), `depth` hidden ReLU layers of `width`.
    fn spec(&self) -> serde_json::Value {
        let inputs: Vec<String> = (0..self.inputs).map(|i| format!("x{i}")).collect();
        serde_json::json!({
            "format": "circuitscope-spec",
            "version": 1,
            "inputs": inputs,
            "hidden": vec![self.width; self.depth],
            "activation": "relu",
            "tasks": [
                {"name": "ab", "expr": "x0*x1", "uses": ["x0", "x1"]},
                {"name": "cd", "expr": "x2*x3", "uses": ["x2", "x3"]}
            ],
            "synthetic": {"n_train": self.examples, "n_val": self.examples, "low": -1, "high": 1, "seed": 0}
        })
    }
}

/// The four stages, in order, as command lines on the run `run` of shape `s`.
fn stages(s: &Shape, spec: &Path, run: &Path) -> Vec<(&'static str, Vec<String>)> {
    let r = run.display().to_string();
    let e = s.examples.to_string();
    vec![
        (
            "train",
            vec![
                "train".into(),
                "--spec".into(),
                spec.display().to_string(),
                "--out".into(),
                r.clone(),
                "--epochs".into(),
                "1".into(),
            ],
        ),
        ("probe", vec!["probe".into(), r.clone()]),
        (
            "graph",
            vec!["graph".into(), r.clone(), "--examples".into(), e.clone()],
        ),
        (
            "eval",
            vec![
                "eval".into(),
                r,
                "--examples".into(),
                e,
                "--ablation".into(),
                "mean".into(),
            ],
        ),
    ]
}

/// What one stage cost.
#[derive(Debug, Clone, PartialEq)]
pub enum Cost {
    Done {
        seconds: f64,
        peak_mb: f64,
    },
    /// Stopped past the time limit or the memory cap, or failed: why.
    Stopped(String),
    /// Not run: an earlier stage on the same model stopped.
    Skipped,
}

impl Cost {
    fn cell(&self) -> String {
        match self {
            Cost::Done { seconds, peak_mb } => format!("{seconds:.2} s, {peak_mb:.0} MB"),
            Cost::Stopped(why) => why.clone(),
            Cost::Skipped => "–".into(),
        }
    }
}

/// Runs `exe args`, polling every 20 ms; stops it past `limit` or when its resident memory
/// passes `cap_mb`.
/// Its standard error goes to `err` (a file: a pipe left unread could stall it).
fn measure(
    exe: &Path,
    args: &[String],
    err: &Path,
    (limit, cap_mb): (Duration, f64),
) -> Result<Cost> {
    let file = std::fs::File::create(err).map_err(|e| Error::io(err, "cannot create", e))?;
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(|e| Error::io(exe, "cannot run", e))?;
    let pid = child.id() as libc::pid_t;
    let t0 = Instant::now();
    let mut stopped: Option<String> = None;
    loop {
        let mut status = 0;
        // SAFETY: a plain wait4 on our own child, with valid pointers to locals.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            let seconds = t0.elapsed().as_secs_f64();
            let peak_mb = usage.ru_maxrss as f64 / 1024.0;
            if let Some(why) = stopped {
                return Ok(Cost::Stopped(why));
            }
            if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                let text = std::fs::read_to_string(err).unwrap_or_default();
                let line = text.lines().last().unwrap_or("no message").to_string();
                return Ok(Cost::Stopped(format!("failed: {line}")));
            }
            return Ok(Cost::Done { seconds, peak_mb });
        }
        if got < 0 {
            return Err(Error::Data(format!(
                "bench scale: wait4 failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        if stopped.is_none() {
            let rss = resident_mb(pid);
            if t0.elapsed() > limit {
                stopped = Some(format!("> {} s", limit.as_secs()));
            } else if rss > cap_mb {
                stopped = Some(format!("> {cap_mb:.0} MB"));
            }
            if stopped.is_some() {
                // SAFETY: our own child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A live process's resident memory in MB (0 when unreadable).
fn resident_mb(pid: libc::pid_t) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Least-squares slope of log(y) on log(x).
pub fn exponent(points: &[(f64, f64)]) -> Option<f64> {
    let p: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if p.len() < 2 {
        return None;
    }
    let n = p.len() as f64;
    let (mx, my) = (
        p.iter().map(|q| q.0).sum::<f64>() / n,
        p.iter().map(|q| q.1).sum::<f64>() / n,
    );
    let sxx: f64 = p.iter().map(|q| (q.0 - mx).powi(2)).sum();
    let sxy: f64 = p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The sweep, as markdown: per variable a table of every stage's cost at each value, then
/// each stage's fitted exponent (time and peak memory) and the slopes between neighbours.
/// `only` keeps one variable; runs go to `dir` (a run of an earlier sweep there, named by its
/// shape, is replaced; nothing else is touched).
pub fn sweep(
    exe: &Path,
    dir: &Path,
    (limit, cap_mb): (Duration, f64),
    only: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> Result<String> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
    let mut out = String::new();
    let mut done: Vec<(Shape, Vec<Cost>)> = Vec::new();
    for (variable, values) in variables() {
        if only.is_some_and(|o| o != variable) {
            continue;
        }
        let _ = writeln!(
            out,
            "\n**{variable}** (the rest as `products64`: width 64, depth 3, 10,000 examples, 4 inputs)\n"
        );
        let _ = writeln!(
            out,
            "| {variable} | train (1 epoch) | probe | graph (exact IG) | eval (12 points, mean) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        let mut rows: Vec<(usize, Vec<Cost>)> = Vec::new();
        for &value in &values {
            let shape = BASE.with(variable, value);
            let costs = match done.iter().find(|(s, _)| *s == shape) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = run_shape(exe, dir, &shape, (limit, cap_mb), progress)?;
                    done.push((shape, c.clone()));
                    c
                }
            };
            let cells: Vec<String> = costs.iter().map(Cost::cell).collect();
            let _ = writeln!(out, "| {value} | {} |", cells.join(" | "));
            rows.push((value, costs));
        }
        let _ = writeln!(
            out,
            "\n| stage | time exponent | memory exponent | time slopes between neighbours |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for (s, stage) in ["train", "probe", "graph", "eval"].iter().enumerate() {
            let pts = |f: &dyn Fn(f64, f64) -> f64| -> Vec<(f64, f64)> {
                rows.iter()
                    .filter_map(|(v, c)| match c[s] {
                        Cost::Done { seconds, peak_mb } => Some((*v as f64, f(seconds, peak_mb))),
                        _ => None,
                    })
                    .collect()
            };
            let time = pts(&|t, _| t);
            let mem = pts(&|_, m| m);
            let slopes: Vec<String> = time
                .windows(2)
                .map(|w| {
                    exponent(w).map_or("–".into(), |e| {
                        format!("{:.0}→{:.0}: {e:.2}", w[0].0, w[1].0)
                    })
                })
                .collect();
            let fmt = |e: Option<f64>| e.map_or("–".into(), |e| format!("{e:.2}"));
            let _ = writeln!(
                out,
                "| {stage} | {} | {} | {} |",
                fmt(exponent(&time)),
                fmt(exponent(&mem)),
                if slopes.is_empty() {
                    "–".into()
                } else {
                    slopes.join(", ")
                }
            );
        }
    }
    Ok(out)
}

/// Every stage on one shape, stopping at the first that does not finish.
fn run_shape(
    exe: &Path,
    dir: &Path,
    shape: &Shape,
    (limit, cap_mb): (Duration, f64),
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Cost>> {
    let name = shape.name();
    let spec: PathBuf = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&shape.spec()).expect("json");
    std::fs::write(&spec, text).map_err(|e| Error::io(&spec, "cannot write", e))?;
    let run = dir.join(&name);
    if run.join("run.json").exists() {
        std::fs::remove_dir_all(&run).map_err(|e| Error::io(&run, "cannot replace", e))?;
    }
    let mut costs = Vec::new();
    let mut going = true;
    for (stage, args) in stages(shape, &spec, &run) {
        if !going {
            costs.push(Cost::Skipped);
            continue;
        }
        let err = dir.join(format!("{name}.{stage}.err"));
        let c = measure(exe, &args, &err, (limit, cap_mb))?;
        progress(&format!("{name} {stage}: {}", c.cell()));
        going = matches!(c, Cost::Done { .. });
        costs.push(c);
    }
    Ok(costs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exponent_of_a_power_law_is_its_power() {
        let p: Vec<(f64, f64)> = [1.0, 4.0, 16.0, 64.0]
            .iter()
            .map(|&x| (x, 3.0 * f64::powf(x, 1.5)))
            .collect();
        assert!((exponent(&p).unwrap() - 1.5).abs() < 1e-12);
        assert_eq!(exponent(&p[..1]), None);
        assert_eq!(exponent(&[(2.0, 1.0), (2.0, 3.0)]), None);
    }
}
