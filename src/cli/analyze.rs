//! `circuitscope analyze`: live analysis of a run's checkpoints, one line per checkpoint.

use super::choice::{choice, key};
use circuitscope::eval::ablation::Ablation;
use circuitscope::graph::{GraphSpec, NodeKind};
use circuitscope::runlog::analyze::{analyze_run, line, AnalyzeOptions};
use circuitscope::{Error, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The run directory (from train or the Python logger).
    pub run: PathBuf,
    /// Keep analysing new checkpoints as they are written; exit once training has ended and
    /// its last checkpoint is analysed.
    #[arg(long)]
    pub follow: bool,
    /// Analyse every N-th checkpoint (and always the last).
    #[arg(long, default_value_t = 1)]
    pub every: usize,
    /// What a node of the graph is.
    #[arg(long, value_parser = choice::<NodeKind>(), default_value = key(NodeKind::Neuron))]
    pub nodes: NodeKind,
    /// How an ablated edge's source activation is replaced.
    #[arg(long, value_parser = choice::<Ablation>(), default_value = key(Ablation::Mean))]
    pub ablation: Ablation,
    /// Examples of the validation split the graph's attributions average over.
    #[arg(long, default_value_t = 500)]
    pub examples: usize,
    /// Skip the interventions (faster on wide models).
    #[arg(long)]
    pub no_interventions: bool,
}

pub fn run(a: AnalyzeArgs) -> Result<()> {
    circuitscope::eval::check_nodes(a.nodes)?;
    if a.every == 0 {
        return Err(Error::Param {
            name: "every",
            problem: "must be at least 1".into(),
        });
    }
    let graph = GraphSpec {
        nodes: a.nodes,
        examples: a.examples,
        ..Default::default()
    }
    .check()?;
    let o = AnalyzeOptions {
        root: a.run.clone(),
        follow: a.follow,
        every: a.every,
        graph,
        ablation: a.ablation,
        interventions: !a.no_interventions,
        poll: std::time::Duration::from_millis(100),
    };
    use std::io::Write;
    let n = analyze_run(&o, |x| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line(x));
        let _ = out.flush();
    })?;
    println!(
        "analysed {n} checkpoint{}; events in {}",
        if n == 1 { "" } else { "s" },
        a.run.join("analysis/events.jsonl").display()
    );
    Ok(())
}
