//! The `circuitscope` command line: the binary's own modules, one per subcommand, each holding
//! its clap arguments and their conversion into the library's options. It only parses, calls
//! the library and prints; everything it does is a library call a test can make. The library
//! knows nothing of clap: its errors name values, and [`message`] turns them into flags.

mod analyze;
mod atypical;
mod bench;
mod choice;
mod demo;
mod discover;
mod embed;
mod eval;
mod events;
mod graph;
mod import;
mod inspect;
mod kernel;
mod probe;
mod progress;
mod train;
mod watch;
mod zoo;

use circuitscope::{Error, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "circuitscope",
    version,
    about = "Turn small trained neural networks into computational graphs you can read, test and trust."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a preset or a spec's architecture into a run directory (or continue one with
    /// --resume).
    Train(train::TrainArgs),
    /// Import a PyTorch-trained MLP (safetensors and a model spec) and its data as a run.
    Import(import::ImportArgs),
    /// Print a run's events as JSON lines; with --follow, keep reading until run_end.
    Events(events::EventsArgs),
    /// The main job on built-in defaults: train products into runs/demo and summarise it.
    Demo(demo::DemoArgs),
    /// Probe a trained run: census, PCA, task subspaces, PLS, scaffold, weight SVD.
    Probe(probe::ProbeArgs),
    /// Build the computational graph of a trained run (writes graph/graph.{json,dot,svg}).
    Graph(graph::GraphArgs),
    /// Print a quick summary of a run's graph: size, sparsity, communities, top edges.
    Inspect(inspect::InspectArgs),
    /// Evaluate a run's graph: faithfulness vs sparsity under real ablation,
    /// disentanglement, interventions.
    Eval(eval::EvalArgs),
    /// Find a circuit by one method (exact IG, EAP, EAP-IG, ACDC, learned masks) and score it
    /// as eval does: faithfulness curve, completeness, planted AUC, wall time.
    Discover(discover::DiscoverArgs),
    /// Analyse a run's checkpoints as training writes them (graph, census, communities,
    /// faithfulness, interventions) into RUN/analysis/events.jsonl; --follow keeps up live.
    Analyze(analyze::AnalyzeArgs),
    /// For a classifier run: how atypical each test input's activated subgraph is, and
    /// whether that flags FGSM adversarial inputs (AUROC).
    Atypical(atypical::AtypicalArgs),
    /// Train a zoo of poly models (functions x seeds) in parallel; running it again resumes.
    Zoo(zoo::ZooArgs),
    /// Train cloze-gradient embedders over a zoo's grid and judge them with a linear probe
    /// against weight-space, function-space and supervised baselines.
    Embed(embed::EmbedArgs),
    /// Follow a run live in a terminal dashboard: a local RUN, or [user@]host:RUN over ssh.
    Watch(watch::WatchArgs),
    /// The Jupyter kernel "Rust (circuitscope)" (evcxr with circuitscope preloaded).
    Kernel {
        #[command(subcommand)]
        what: kernel::KernelWhat,
    },
    /// Measure speed (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Import(a) => import::run(a),
        Command::Events(a) => events::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Discover(a) => discover::run(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Atypical(a) => atypical::run(a),
        Command::Zoo(a) => zoo::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Watch(a) => watch::run(a),
        Command::Kernel { what } => kernel::run(what),
        Command::Bench { what } => bench::run(what),
    }
}

/// The flag that sets a library option, by the option's field name.
pub fn flag(name: &str) -> String {
    match name {
        "data_dir" => "--data".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// The one line printed for an error: library options named as their flags.
pub fn message(e: &Error) -> String {
    match e {
        Error::Param { name, problem } => format!("{} {problem}", flag(name)),
        other => other.to_string(),
    }
}

/// Runs f on a rayon pool of threads workers (all cores when None).
pub fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    match threads {
        None => f(),
        Some(0) => Err(Error::Param {
            name: "threads",
            problem: "must be at least 1".into(),
        }),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Invalid(format!("cannot start {n} threads: {e}")))?
            .install(f),
    }
}
