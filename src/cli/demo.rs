//! `circuitscope demo`: the main job on built-in defaults — train `products`, probe it, build
//! its graph, evaluate the graph — and a summary of each.

use super::probe::print_probe;
use super::progress::Reporter;
use super::train::print_outcome;
use circuitscope::eval::ablation::Ablation;
use circuitscope::graph::{summary, GraphSpec};
use circuitscope::model::train::TrainConfig;
use circuitscope::model::Preset;
use circuitscope::probe::ProbeConfig;
use circuitscope::runlog::eval::eval_run;
use circuitscope::runlog::graph::graph_run;
use circuitscope::runlog::probe::probe_run;
use circuitscope::runlog::{train, RunDir, RunInfo};
use circuitscope::{Error, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the demo run goes (replaced if it holds an earlier demo run).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
}

pub fn run(a: DemoArgs) -> Result<()> {
    let out = a.out.as_path();
    if out.join("run.json").exists() {
        let info = RunInfo::read(&RunDir::open(out)?)?;
        if info.config != TrainConfig::defaults(Preset::Products) {
            return Err(Error::Invalid(format!(
                "{} holds a run that is not a demo run; choose another --out",
                out.display()
            )));
        }
        std::fs::remove_dir_all(out)
            .map_err(|e| Error::io(out, "cannot replace the earlier demo run", e))?;
    }
    let cfg = TrainConfig::defaults(Preset::Products).check()?;
    println!("circuitscope demo: training `products` ((a,b,c,d) -> (a*b, c*d), 4→32→32→32→2 ReLU) into {}", out.display());
    let t0 = Instant::now();
    let mut observer = Reporter::new();
    let o = train::train(out, &cfg, &mut |u| observer.update(u))?;
    observer.finish();
    print_outcome(&o);
    println!("\nprobing the trained model on the mixed and per-task splits");
    let report = probe_run(out, &ProbeConfig::default().check()?)?;
    print_probe(&report, out)?;
    println!("\nbuilding the computational graph (neurons, exact IG on edges, per task)");
    let g = graph_run(out, &GraphSpec::default().check()?, None)?;
    print!("{}", summary(&g, 0.01, 5));
    println!(
        "graph files: {}",
        out.join("graph/graph.{json,dot,svg}").display()
    );
    println!("\nevaluating the graph (mean ablation of the edges not kept)");
    let report = eval_run(out, &GraphSpec::default().check()?, Ablation::Mean)?;
    print!("{}", circuitscope::eval::summary(&report));
    println!(
        "done in {:.1} s; see it in the dashboard with `circuitscope watch --replay {}`",
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
