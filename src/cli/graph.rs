//! `circuitscope graph`: a trained run's computational graph.

use super::choice::{choice, key};
use circuitscope::graph::{summary, Baseline, EdgeKind, GraphSpec, NodeKind, TargetKind};
use circuitscope::runlog::graph::graph_run;
use circuitscope::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The run directory.
    pub run: PathBuf,
    /// What a node is.
    #[arg(long, value_parser = choice::<NodeKind>(), default_value = key(NodeKind::Neuron))]
    pub nodes: NodeKind,
    /// What an edge measures.
    #[arg(long, value_parser = choice::<EdgeKind>(), default_value = key(EdgeKind::Ig))]
    pub edges: EdgeKind,
    /// The IG baseline in each layer's space.
    #[arg(long, value_parser = choice::<Baseline>(), default_value = key(Baseline::Zero))]
    pub baseline: Baseline,
    /// What IG edges explain.
    #[arg(long, value_parser = choice::<TargetKind>(), default_value = key(TargetKind::Task))]
    pub target: TargetKind,
    /// Examples of the validation split averaged over.
    #[arg(long, default_value_t = 500)]
    pub examples: usize,
    /// 0: exact IG on piecewise-linear networks, automatic midpoint steps on smooth ones
    /// (128, doubled per example until complete within 1e-4); N: a midpoint Riemann sum with N
    /// steps (any activation).
    #[arg(long, default_value_t = 0)]
    pub riemann_steps: usize,
    /// Keep at most this many of the strongest edges in the exported files.
    #[arg(long)]
    pub top: Option<usize>,
}

pub fn run(a: GraphArgs) -> Result<()> {
    let spec = GraphSpec {
        nodes: a.nodes,
        edges: a.edges,
        baseline: a.baseline,
        target: a.target,
        examples: a.examples,
        riemann_steps: a.riemann_steps,
        ..Default::default()
    }
    .check()?;
    let g = graph_run(&a.run, &spec, a.top)?;
    print!("{}", summary(&g, 0.01, 10));
    println!(
        "files: {}",
        a.run.join("graph/graph.{json,dot,svg}").display()
    );
    Ok(())
}
