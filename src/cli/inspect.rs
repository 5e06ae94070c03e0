//! `circuitscope inspect`: a quick summary of a run's graph, its last faithfulness curve and
//! the circuits `discover` saved.

use circuitscope::graph::summary;
use circuitscope::runlog::discover::circuits_of_run;
use circuitscope::runlog::eval::sparkline_of_run;
use circuitscope::runlog::graph::read_graph;
use circuitscope::runlog::RunDir;
use circuitscope::{Error, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The run directory (or a graph.json file).
    pub run: PathBuf,
    /// Sparsity threshold, relative to the strongest edge.
    #[arg(long, default_value_t = 0.01)]
    pub threshold: f64,
    /// How many of the strongest edges to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let path = if a.run.is_dir() {
        a.run.join("graph/graph.json")
    } else {
        a.run.clone()
    };
    if !path.exists() {
        return Err(Error::bad_file(
            &path,
            format!(
                "missing: no graph yet; build it with `circuitscope graph {}`",
                a.run.display()
            ),
        ));
    }
    print!("{}", summary(&read_graph(&path)?, a.threshold, a.top));
    if a.run.is_dir() {
        if let Some(line) = sparkline_of_run(&RunDir::open(&a.run)?)? {
            println!("{line}");
        }
        for line in circuits_of_run(&a.run)? {
            println!("{line}");
        }
    }
    Ok(())
}
