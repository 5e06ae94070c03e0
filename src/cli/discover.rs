//! `circuitscope discover`: one circuit-discovery method on a run's graph, scored by the
//! faithfulness code `eval` uses.

use super::choice::{choice, key};
use circuitscope::eval::ablation::Ablation;
use circuitscope::eval::discover::Budget;
use circuitscope::eval::{DiscoverOptions, Level, Method};
use circuitscope::graph::{GraphSpec, NodeKind};
use circuitscope::runlog::discover::{discover_run, summary};
use circuitscope::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// The run directory.
    pub run: PathBuf,
    /// The discovery method.
    #[arg(long, value_parser = choice::<Method>(), default_value = key(Method::Ig))]
    pub method: Method,
    /// A circuit of edges, or of neurons (each kept or ablated with all its edges).
    #[arg(long, value_parser = choice::<Level>(), default_value = key(Level::Edge))]
    pub level: Level,
    /// How an ablated edge's source activation is replaced (discovery and scoring alike).
    #[arg(long, value_parser = choice::<Ablation>(), default_value = key(Ablation::Mean))]
    pub ablation: Ablation,
    /// What a node of the graph is: neurons, or ROIs (groups of similar neurons, each ROI edge
    /// or ROI kept or removed whole); component graphs cannot be ablated.
    #[arg(long, value_parser = choice::<NodeKind>(), default_value = key(NodeKind::Neuron))]
    pub nodes: NodeKind,
    /// The circuit reported and saved: the top share (such as 10%) or number (such as 50) of
    /// the ranking's edges or nodes.
    #[arg(long, default_value = "10%")]
    pub budget: Budget,
    /// Examples of the validation split the graph and the method use.
    #[arg(long, default_value_t = 500)]
    pub examples: usize,
    /// EAP-IG's midpoint steps.
    #[arg(long, default_value_t = 16)]
    pub steps: usize,
    /// Adam steps of each learned mask.
    #[arg(long, default_value_t = 300)]
    pub mask_steps: usize,
}

pub fn run(a: DiscoverArgs) -> Result<()> {
    circuitscope::eval::check_nodes(a.nodes)?;
    let spec = GraphSpec {
        nodes: a.nodes,
        examples: a.examples,
        ..Default::default()
    }
    .check()?;
    let opts = DiscoverOptions {
        level: a.level,
        steps: a.steps,
        mask_steps: a.mask_steps,
        budget: a.budget,
        ..DiscoverOptions::new(a.method)
    }
    .check()?;
    print!(
        "{}",
        summary(&discover_run(&a.run, &spec, a.ablation, &opts)?)
    );
    Ok(())
}
