//! `circuitscope eval`: a run's graph evaluated, and optionally its emergence over training.

use super::choice::{choice, key};
use circuitscope::eval::ablation::Ablation;
use circuitscope::eval::summary;
use circuitscope::graph::{Baseline, GraphSpec, NodeKind};
use circuitscope::runlog::eval::{emergence_run, eval_run};
use circuitscope::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The run directory.
    pub run: PathBuf,
    /// How an ablated edge's source activation is replaced.
    #[arg(long, value_parser = choice::<Ablation>(), default_value = key(Ablation::Mean))]
    pub ablation: Ablation,
    /// What a node of the evaluated graph is.
    #[arg(long, value_parser = choice::<NodeKind>(), default_value = key(NodeKind::Neuron))]
    pub nodes: NodeKind,
    /// Examples of the validation split the graph's attributions average over.
    #[arg(long, default_value_t = 500)]
    pub examples: usize,
    /// Also measure structure on every N-th training checkpoint (emergence over training).
    #[arg(long)]
    pub checkpoints: Option<usize>,
    /// The IG baseline of the graph's attributions.
    #[arg(long, value_parser = choice::<Baseline>(), default_value = key(Baseline::Zero))]
    pub baseline: Baseline,
}

pub fn run(a: EvalArgs) -> Result<()> {
    circuitscope::eval::check_nodes(a.nodes)?;
    let spec = GraphSpec {
        nodes: a.nodes,
        examples: a.examples,
        baseline: a.baseline,
        ..Default::default()
    }
    .check()?;
    print!("{}", summary(&eval_run(&a.run, &spec, a.ablation)?));
    if let Some(every) = a.checkpoints {
        let df = emergence_run(&a.run, &spec, a.ablation, every)?;
        println!("\nemergence over training checkpoints\n{df}");
    }
    Ok(())
}
