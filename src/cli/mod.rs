//! The `circuitscope` command line: parses arguments and calls the library. It must never hold
//! logic of its own beyond printing; everything it does is a library call a test can make.

pub mod kernel;
pub mod peak;
pub mod peers;

use crate::model::net::Engine;
use crate::model::train::{self, Schedule, TrainConfig, TrainOutcome, Update};
use crate::model::Preset;
use crate::runlog::follow::{Followed, Follower};
use crate::runlog::{Event, RunDir};
use crate::{Error, Result};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// Train a preset model into a run directory (or continue one with --resume).
    Train(TrainArgs),
    /// Print a run's events as JSON lines; with --follow, keep reading until `run_end`.
    Events(EventsArgs),
    /// The main job on built-in defaults: train `products` into runs/demo and summarise it.
    Demo {
        /// Where the demo run goes (replaced if it holds an earlier demo run).
        #[arg(long, default_value = "runs/demo")]
        out: PathBuf,
    },
    /// Probe a trained run: census, PCA, task subspaces, PLS, scaffold, weight SVD.
    Probe {
        /// The run directory.
        run: PathBuf,
        /// Principal components per layer used between layers.
        #[arg(long, default_value_t = 4)]
        pcs: usize,
    },
    /// Build the computational graph of a trained run (writes graph/graph.{json,dot,svg}).
    Graph(GraphArgs),
    /// Print a quick summary of a run's graph: size, sparsity, communities, top edges.
    Inspect {
        /// The run directory (or a graph.json file).
        run: PathBuf,
        /// Sparsity threshold, relative to the strongest edge.
        #[arg(long, default_value_t = 0.01)]
        threshold: f64,
        /// How many of the strongest edges to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Evaluate a run's graph: faithfulness vs sparsity under real ablation, disentanglement,
    /// interventions.
    Eval {
        /// The run directory.
        run: PathBuf,
        #[arg(long, value_enum, default_value_t = crate::eval::ablation::Ablation::Mean)]
        ablation: crate::eval::ablation::Ablation,
        #[arg(long, value_enum, default_value_t = crate::graph::NodeKind::Neuron)]
        nodes: crate::graph::NodeKind,
        /// Examples of the validation split the graph's attributions average over.
        #[arg(long, default_value_t = 500)]
        examples: usize,
        /// Also measure structure on every N-th training checkpoint (emergence over training).
        #[arg(long)]
        checkpoints: Option<usize>,
        /// The IG baseline of the graph's attributions.
        #[arg(long, value_enum, default_value_t = crate::graph::Baseline::Zero)]
        baseline: crate::graph::Baseline,
    },
    /// For a classifier run: how atypical each test input's activated subgraph is, and whether
    /// that flags FGSM adversarial inputs (AUROC).
    Atypical {
        /// The run directory (a digits or mnist run).
        run: PathBuf,
        /// FGSM step in input units (inputs lie in [0, 1]).
        #[arg(long, default_value_t = 0.1)]
        epsilon: f64,
    },
    /// Train a zoo of `poly` models (functions x seeds) in parallel; running it again resumes.
    Zoo(ZooArgs),
    /// Train cloze-gradient embedders over a zoo's grid and judge them with a linear probe
    /// against weight-space, function-space and supervised baselines.
    Embed(EmbedArgs),
    /// Follow a run live in a terminal dashboard: a local RUN, or [user@]host:RUN over ssh.
    Watch(WatchArgs),
    /// The Jupyter kernel "Rust (circuitscope)" (evcxr with circuitscope preloaded).
    Kernel {
        #[command(subcommand)]
        what: KernelWhat,
    },
    /// Measure speed (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Debug, Subcommand)]
pub enum KernelWhat {
    /// Register the kernelspec (installing evcxr_jupyter with cargo if it is missing).
    Install {
        /// The circuitscope source tree (holding kernel/); default: the one this was built from.
        #[arg(long)]
        source: Option<PathBuf>,
        /// Jupyter's data directory (default: $JUPYTER_DATA_DIR or ~/.local/share/jupyter).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// evcxr's shared build directory (default: /var/tmp/circuitscope-evcxr-$USER).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Fail instead of running `cargo install evcxr_jupyter --locked` when it is missing.
        #[arg(long)]
        no_install: bool,
        /// Optimisation level of notebook builds: 0 builds fastest, 2 runs fastest.
        #[arg(long, default_value = "1")]
        opt: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// circuitscope against PyTorch, Captum and scikit-learn on five workloads (W1–W5),
    /// interleaved at equal thread counts. Needs `bash benches/peers/setup.sh` first.
    Peers {
        /// Where both sides' inputs and the results go.
        #[arg(long, default_value = "target/peers")]
        dir: PathBuf,
        /// The Python of the peer side.
        #[arg(long, default_value = "benches/peers/.venv/bin/python")]
        python: PathBuf,
        /// The peer side's script.
        #[arg(long, default_value = "benches/peers/peers.py")]
        script: PathBuf,
        /// Thread counts, each used by both sides (default: 1 and all cores).
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Workloads to run (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<peers::Workload>,
        /// Models the peer's plain per-model loop trains in W2 (its rate is per model).
        #[arg(long, default_value_t = 20)]
        w2_loop_models: usize,
        /// Our training engine for W1 and W2 (the fastest by default; dfdx is the reference).
        #[arg(long, value_enum, default_value_t = Engine::Fused)]
        engine: Engine,
    },
    /// One workload of `bench peers` on this side, as one JSON line (run by `bench peers`).
    #[command(hide = true)]
    Side {
        #[arg(value_enum)]
        workload: peers::Workload,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Engine::Dfdx)]
        engine: Engine,
    },
    /// This CPU's peak FP32 rate per core (clock and FMA units measured).
    Peak,
    /// Training throughput in examples/s (default: products64 at batch 256).
    Train {
        #[arg(long, default_value = "products64")]
        preset: String,
        #[arg(long, default_value_t = 256)]
        batch: usize,
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        #[arg(long, value_enum, default_value_t = Engine::Dfdx)]
        engine: Engine,
    },
    /// IG on the hidden-layer edges of products64 (1,000 examples, zero baseline): exact vs a
    /// Riemann sum.
    Ig {
        #[arg(long, default_value = "products64")]
        preset: String,
        #[arg(long, default_value_t = 1000)]
        examples: usize,
        #[arg(long, default_value_t = 50)]
        steps: usize,
    },
    /// All adjacent and output-to-layer Jacobians of a trained model, with and without pattern
    /// reuse, and the census (default: products and products64 on 10,000 examples).
    Jacobians {
        #[arg(long, default_values_t = ["products".to_string(), "products64".to_string()])]
        preset: Vec<String>,
        #[arg(long, default_value_t = 10_000)]
        examples: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
}

#[derive(Debug, clap::Args)]
pub struct ZooArgs {
    /// The zoo directory (created, or resumed when it holds the same zoo).
    #[arg(long)]
    pub out: PathBuf,
    /// Functions: members of the poly1d family.
    #[arg(long, default_value_t = 10)]
    pub functions: usize,
    /// Models (training seeds) per function.
    #[arg(long, default_value_t = 50)]
    pub seeds: usize,
    #[arg(long, default_value_t = 0)]
    pub family_seed: u64,
    /// How the family of polynomials is drawn.
    #[arg(long, value_enum, default_value_t = crate::embed::zoo::FamilyKind::Maxmin)]
    pub family: crate::embed::zoo::FamilyKind,
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 3e-3, allow_negative_numbers = true)]
    pub lr: f64,
    /// Training points per model.
    #[arg(long, default_value_t = 4096)]
    pub n_train: usize,
    /// Which code trains the models: dfdx, or the fused engine (faster, same gradients).
    #[arg(long, value_enum, default_value_t = Engine::Dfdx)]
    pub engine: Engine,
    /// Train only this slice `i/n` of the models (for job arrays); merge with --merge.
    #[arg(long)]
    pub shard: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Instead of training, merge these shard directories into --out.
    #[arg(long, num_args = 1..)]
    pub merge: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// The zoo directory.
    pub zoo: PathBuf,
    /// Numbers of functions (default: 5 and all of the zoo's).
    #[arg(long, value_delimiter = ',')]
    pub functions: Vec<usize>,
    /// Bottleneck widths.
    #[arg(long, value_delimiter = ',', default_values_t = [2, 4, 8, 16])]
    pub bottleneck: Vec<usize>,
    /// Mask ratios (share of points hidden, by whole linear pieces).
    #[arg(long, value_delimiter = ',', default_values_t = [0.25, 0.5, 0.75])]
    pub mask: Vec<f64>,
    /// Training steps of every embedder (and of the supervised classifier).
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Models per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seeds per function held out (default: a fifth of the zoo's seeds).
    #[arg(long)]
    pub held_out: Option<usize>,
    /// Also use models flagged below the zoo's R² bar.
    #[arg(long)]
    pub keep_flagged: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Model preset: products, products-gelu, products64, products-shared, poly, digits, mnist.
    #[arg(long)]
    pub preset: Option<String>,
    /// The run directory to create (or, with --resume, to continue).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Seeds the initial weights and the shuffling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seeds the generated data set.
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Training examples for generated data sets.
    #[arg(long)]
    pub n_train: Option<usize>,
    /// Which poly1d family member a `poly` model learns (0-9).
    #[arg(long)]
    pub member: Option<usize>,
    /// mnist: folder with the MNIST IDX files; digits: a CSV file to use instead of the built-in set.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// constant or cosine.
    #[arg(long)]
    pub schedule: Option<String>,
    #[arg(long)]
    pub log_every: Option<usize>,
    /// Also checkpoint every N steps (0: at epoch ends only).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Which code computes the passes: dfdx (default), or the fused engine (ReLU presets;
    /// faster, the same gradients up to float rounding).
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// L1 penalty on the weights (default 0: none); concentrates the network on fewer edges.
    #[arg(long, allow_negative_numbers = true)]
    pub l1: Option<f64>,
    /// Continue the run in --out from its newest checkpoint with its stored settings.
    #[arg(long)]
    pub resume: bool,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The run directory.
    pub run: PathBuf,
    #[arg(long, value_enum, default_value_t = crate::graph::NodeKind::Neuron)]
    pub nodes: crate::graph::NodeKind,
    #[arg(long, value_enum, default_value_t = crate::graph::EdgeKind::Ig)]
    pub edges: crate::graph::EdgeKind,
    #[arg(long, value_enum, default_value_t = crate::graph::Baseline::Zero)]
    pub baseline: crate::graph::Baseline,
    #[arg(long, value_enum, default_value_t = crate::graph::TargetKind::Task)]
    pub target: crate::graph::TargetKind,
    /// Examples of the validation split averaged over.
    #[arg(long, default_value_t = 500)]
    pub examples: usize,
    /// 0: exact IG (ReLU); N: midpoint Riemann sum with N steps (any activation).
    #[arg(long, default_value_t = 0)]
    pub riemann_steps: usize,
    /// Keep at most this many of the strongest edges in the exported files.
    #[arg(long)]
    pub top: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The run directory (or an events.jsonl file).
    pub run: PathBuf,
    /// Keep reading as the log grows; exit at `run_end`.
    #[arg(long)]
    pub follow: bool,
    /// Start at this byte offset of events.jsonl.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Prefix each line with the byte offset just past it and a tab, for resuming a stream.
    #[arg(long)]
    pub offsets: bool,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// A run directory (or zoo, or events.jsonl), or `[user@]host:RUN` for a remote run.
    pub run: String,
    /// The ssh command for a remote run, split on whitespace.
    #[arg(long, default_value = "ssh")]
    pub ssh: String,
    /// The circuitscope binary on the remote machine.
    #[arg(long, default_value = "circuitscope")]
    pub remote_bin: String,
    /// Show a finished run's log once instead of following it.
    #[arg(long)]
    pub replay: bool,
    /// Also write every received event line to FILE (a local copy of the log).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Events(a) => cmd_events(a),
        Command::Demo { out } => cmd_demo(&out),
        Command::Probe { run, pcs } => {
            if pcs == 0 {
                return Err(Error::Invalid("--pcs must be at least 1".into()));
            }
            let cfg = crate::probe::ProbeConfig {
                pcs,
                ..Default::default()
            };
            print_probe(&crate::probe::probe_run(&run, &cfg)?, &run)
        }
        Command::Graph(a) => {
            let spec = crate::graph::GraphSpec {
                nodes: a.nodes,
                edges: a.edges,
                baseline: a.baseline,
                target: a.target,
                examples: a.examples,
                riemann_steps: a.riemann_steps,
                ..Default::default()
            };
            let g = crate::graph::graph_run(&a.run, &spec, a.top)?;
            print!("{}", crate::graph::summary(&g, 0.01, 10));
            println!(
                "files: {}",
                a.run.join("graph/graph.{json,dot,svg}").display()
            );
            Ok(())
        }
        Command::Inspect {
            run,
            threshold,
            top,
        } => {
            let path = if run.is_dir() {
                run.join("graph/graph.json")
            } else {
                run.clone()
            };
            if !path.exists() {
                return Err(Error::bad_file(
                    &path,
                    format!(
                        "missing: no graph yet; build it with `circuitscope graph {}`",
                        run.display()
                    ),
                ));
            }
            print!(
                "{}",
                crate::graph::summary(&crate::graph::export::read_json(&path)?, threshold, top)
            );
            if run.is_dir() {
                if let Some(line) = crate::eval::sparkline_of_run(&RunDir::open(&run)?)? {
                    println!("{line}");
                }
            }
            Ok(())
        }
        Command::Eval {
            run,
            ablation,
            nodes,
            examples,
            checkpoints,
            baseline,
        } => {
            let spec = crate::graph::GraphSpec {
                nodes,
                examples,
                baseline,
                ..Default::default()
            };
            print!(
                "{}",
                crate::eval::summary(&crate::eval::eval_run(&run, &spec, ablation)?)
            );
            if let Some(every) = checkpoints {
                let df = crate::eval::emergence_run(&run, &spec, ablation, every)?;
                println!("\nemergence over training checkpoints\n{df}");
            }
            Ok(())
        }
        Command::Atypical { run, epsilon } => {
            let r = crate::eval::atypical::atypical_run(&run, epsilon)?;
            println!(
                "atypical subgraphs on {} test inputs, FGSM ε = {}: AUROC {:.4} all edges, {:.4} hidden-layer edges only (mean atypicality {:.4} clean, {:.4} FGSM); accuracy {:.2}% clean, {:.2}% under attack",
                r.examples,
                r.epsilon,
                r.auroc,
                r.auroc_hidden,
                r.mean_clean,
                r.mean_adversarial,
                100.0 * r.clean_accuracy,
                100.0 * r.adversarial_accuracy
            );
            Ok(())
        }
        Command::Zoo(a) => cmd_zoo(a),
        Command::Embed(a) => cmd_embed(a),
        Command::Watch(a) => crate::tui::watch(crate::tui::WatchOptions {
            target: a.run,
            ssh: a.ssh,
            remote_bin: a.remote_bin,
            replay: a.replay,
            save: a.save,
        }),
        Command::Kernel {
            what:
                KernelWhat::Install {
                    source,
                    data_dir,
                    cache,
                    no_install,
                    opt,
                },
        } => {
            if !["0", "1", "2", "3", "s", "z"].contains(&opt.as_str()) {
                return Err(Error::Invalid(format!(
                    "--opt {opt}: expected 0, 1, 2, 3, s or z"
                )));
            }
            let dir = kernel::install(&kernel::InstallOptions {
                source: source.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
                data_dir: data_dir.unwrap_or_else(kernel::default_data_dir),
                cache: cache.unwrap_or_else(kernel::default_cache),
                install_evcxr: !no_install,
                opt_level: opt,
            })?;
            println!(
                "installed the kernel \"Rust (circuitscope)\" (name `{}`) in {}",
                kernel::KERNEL_NAME,
                dir.display()
            );
            Ok(())
        }
        Command::Bench { what } => cmd_bench(what),
    }
}

/// Runs `f` on a rayon pool of `threads` workers (all cores when `None`).
fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    match threads {
        None => f(),
        Some(0) => Err(Error::Invalid("--threads must be at least 1".into())),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Invalid(format!("cannot start {n} threads: {e}")))?
            .install(f),
    }
}

fn cmd_zoo(a: ZooArgs) -> Result<()> {
    use crate::embed::zoo::{self, Shard, Zoo, ZooConfig};
    if !a.merge.is_empty() {
        let z = zoo::merge(&a.out, &a.merge)?;
        let done = z.manifest()?.height();
        println!(
            "merged {} shard directories into {}: {done} of {} models",
            a.merge.len(),
            a.out.display(),
            z.spec.config.len()
        );
        return Ok(());
    }
    let cfg = ZooConfig {
        functions: a.functions,
        seeds: a.seeds,
        family_seed: a.family_seed,
        family: a.family,
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        n_train: a.n_train,
        engine: a.engine,
    };
    let shard = match &a.shard {
        Some(s) => Shard::parse(s)?,
        None => Shard::ALL,
    };
    let z = Zoo::create_or_open(&a.out, cfg.clone())?;
    let config = serde_json::to_value(&cfg).expect("serialises");
    let tty = std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::hidden();
    if tty {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} models  {per_sec}  eta {eta}  {msg}",
            )
            .expect("template"),
        );
    }
    let out = with_threads(a.threads, || {
        crate::runlog::segment(&z.run(), "zoo", Some("poly"), config, |log| {
            zoo::train_zoo(&z, shard, log, &|u| {
                bar.set_length(u.total as u64);
                bar.set_position(u.done as u64);
                bar.set_message(format!(
                    "{} R² {:.4}",
                    zoo::Zoo::name(u.record.function, u.record.seed),
                    u.record.r2
                ));
                if !tty && (u.done % 50 == 0 || u.done == u.total) {
                    eprintln!("{}/{} models", u.done, u.total);
                }
            })
        })
    })?;
    bar.finish_and_clear();
    let manifest = z.manifest()?;
    println!(
        "zoo {}: trained {} models in {:.1} s ({:.2} models/s), {} already done; {} of {} models finished{}",
        a.out.display(),
        out.trained,
        out.seconds,
        out.models_per_s,
        out.skipped,
        manifest.height(),
        cfg.len(),
        if shard == Shard::ALL { String::new() } else { format!(" (this is shard {}/{})", shard.index, shard.count) }
    );
    if out.flagged.is_empty() {
        println!("every model of this run reaches R² >= {}", zoo::R2_BAR);
    } else {
        println!(
            "{} flagged below R² {}: {}",
            out.flagged.len(),
            zoo::R2_BAR,
            out.flagged.join(", ")
        );
    }
    println!("manifest: {}", z.run().table("manifest").display());
    Ok(())
}

fn cmd_embed(a: EmbedArgs) -> Result<()> {
    use crate::embed::{embed_run, zoo::Zoo, EmbedConfig};
    let z = Zoo::open(&a.zoo)?;
    let mut cfg = EmbedConfig::grid_for(&z);
    if !a.functions.is_empty() {
        cfg.functions = a.functions.clone();
    }
    cfg.bottlenecks = a.bottleneck.clone();
    cfg.mask_ratios = a.mask.clone();
    if let Some(h) = a.held_out {
        cfg.held_out = h;
    }
    cfg.keep_flagged = a.keep_flagged;
    cfg.cloze.steps = a.steps;
    cfg.cloze.batch = a.batch;
    cfg.cloze.lr = a.lr;
    cfg.cloze.seed = a.seed;
    let r = with_threads(a.threads, || embed_run(&a.zoo, &cfg))?;
    println!(
        "{} training models, {} held out (the last {} seed(s) of every function){}",
        r.train_models,
        r.val_models,
        cfg.held_out,
        if r.excluded.is_empty() {
            String::new()
        } else {
            format!("; {} flagged models left out", r.excluded.len())
        }
    );
    println!("functions  bottleneck  mask  probe acc  cluster ARI  val loss");
    for g in &r.grid {
        println!(
            "{:>9}  {:>10}  {:>4.2}  {:>8.1}%  {:>11.3}  {:>8.4}",
            g.functions,
            g.bottleneck,
            g.mask_ratio,
            100.0 * g.accuracy,
            g.cluster_ari,
            g.val_loss
        );
    }
    println!("baselines (same split):");
    for b in &r.baselines {
        println!(
            "{:>9}  {:<22} {:>6.1}%  {}",
            b.functions,
            b.method,
            100.0 * b.accuracy,
            b.cluster_ari
                .map_or("-".to_string(), |v| format!("ARI {v:.3}"))
        );
    }
    println!(
        "tables: {}, {}",
        z.run().table("embed_grid").display(),
        z.run().table("embed_baselines").display()
    );
    Ok(())
}

fn config_from(a: &TrainArgs) -> Result<TrainConfig> {
    let preset = Preset::from_name(
        a.preset
            .as_deref()
            .ok_or_else(|| Error::Invalid("train needs --preset (or --resume)".into()))?,
    )?;
    let mut c = TrainConfig::defaults(preset);
    macro_rules! set {
        ($($f:ident <- $v:expr),*) => { $( if let Some(v) = $v { c.$f = v; } )* };
    }
    set!(epochs <- a.epochs, batch <- a.batch, lr <- a.lr, seed <- a.seed, data_seed <- a.data_seed, n_train <- a.n_train,
         member <- a.member, log_every <- a.log_every, checkpoint_every <- a.checkpoint_every,
         engine <- a.engine, l1 <- a.l1);
    if let Some(d) = &a.data {
        c.data_dir = Some(d.clone());
    }
    if let Some(s) = &a.schedule {
        c.schedule = match s.as_str() {
            "constant" => Schedule::Constant,
            "cosine" => Schedule::Cosine,
            other => {
                return Err(Error::Invalid(format!(
                    "unknown --schedule `{other}`; use constant or cosine"
                )))
            }
        };
    }
    c.validate()?;
    Ok(c)
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    let mut observer = Reporter::new();
    let outcome = if a.resume {
        let extra = [
            a.preset.is_some(),
            a.epochs.is_some(),
            a.batch.is_some(),
            a.lr.is_some(),
            a.seed.is_some(),
            a.data_seed.is_some(),
            a.n_train.is_some(),
            a.member.is_some(),
            a.data.is_some(),
            a.schedule.is_some(),
            a.log_every.is_some(),
            a.checkpoint_every.is_some(),
            a.engine.is_some(),
            a.l1.is_some(),
        ];
        if extra.iter().any(|&x| x) {
            return Err(Error::Invalid(
                "--resume continues with the run's stored settings; give only --out".into(),
            ));
        }
        train::resume(&a.out, &mut |u| observer.update(u))?
    } else {
        let cfg = config_from(&a)?;
        train::train(&a.out, &cfg, &mut |u| observer.update(u))?
    };
    observer.finish();
    print_outcome(&outcome);
    Ok(())
}

fn print_outcome(o: &TrainOutcome) {
    if let Some(s) = o.resumed_from {
        println!("resumed from step {s}");
    }
    println!(
        "run: {}  steps: {}  throughput: {:.0} examples/s",
        o.run.root.display(),
        o.steps,
        o.examples_per_s
    );
    for t in &o.val {
        let score = match (t.r2, t.accuracy) {
            (Some(r2), _) => format!("R² {r2:.4}"),
            (_, Some(acc)) => format!("accuracy {:.2}%", acc * 100.0),
            _ => String::new(),
        };
        println!("  {:<10} loss {:.3e}  {score}", t.task, t.loss);
    }
}

/// Progress on stderr: an indicatif bar on a terminal, a plain line per epoch otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
}

impl Reporter {
    fn new() -> Reporter {
        Reporter { bar: None }
    }

    fn update(&mut self, u: Update) {
        let tty = std::io::stderr().is_terminal();
        match u {
            Update::Step { step, total, loss } if tty => {
                let bar = self.bar.get_or_insert_with(|| {
                    let b = indicatif::ProgressBar::new(total);
                    b.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}",
                        )
                        .expect("template"),
                    );
                    b
                });
                bar.set_position(step);
                if step % 10 == 0 {
                    bar.set_message(format!("loss {loss:.3e}"));
                }
            }
            Update::Step { .. } => {}
            Update::Epoch { epoch, epochs, val } => {
                let figs: Vec<String> = val
                    .iter()
                    .map(|t| match (t.r2, t.accuracy) {
                        (Some(r2), _) => format!("{} R² {r2:.4}", t.task),
                        (_, Some(a)) => format!("{} acc {:.2}%", t.task, a * 100.0),
                        _ => format!("{} loss {:.3e}", t.task, t.loss),
                    })
                    .collect();
                let line = format!("epoch {}/{epochs}: {}", epoch + 1, figs.join(", "));
                match &self.bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

fn cmd_events(a: EventsArgs) -> Result<()> {
    if !a.run.exists() {
        return Err(Error::Invalid(format!(
            "{}: no such run directory or event log",
            a.run.display()
        )));
    }
    let path = if a.run.is_dir() {
        RunDir::open_log(&a.run)?.events()
    } else {
        a.run.clone()
    };
    if !path.exists() {
        return Err(Error::Invalid(format!(
            "{}: no event log (is this a run directory?)",
            path.display()
        )));
    }
    let mut follower = Follower::open(&path, a.from)?;
    let stdout = std::io::stdout();
    // A log holds one segment per stage (train, probe, graph, ...), each ending in `run_end`;
    // a follower stops at a `run_end` only once no new segment starts within this grace time.
    const GRACE: std::time::Duration = std::time::Duration::from_millis(1500);
    let mut ended: Option<std::time::Instant> = None;
    let (mut printed, mut skipped) = (0usize, 0usize);
    loop {
        let items = follower.poll()?;
        let mut out = stdout.lock();
        for item in items {
            match item {
                Followed::Event { end, line, event, .. } => {
                    printed += 1;
                    let w = if a.offsets { writeln!(out, "{end}\t{line}") } else { writeln!(out, "{line}") };
                    w.and_then(|_| out.flush()).map_err(|e| Error::io("<stdout>", "cannot write", e))?;
                    ended = matches!(event.event, Event::RunEnd { .. })
                        .then(std::time::Instant::now);
                }
                Followed::Garbage { offset, error, .. } => {
                    skipped += 1;
                    eprintln!("circuitscope: {}: byte {offset}: skipped a bad line: {error}", path.display())
                }
                Followed::Truncated { was, now } => eprintln!("circuitscope: {}: log shrank from {was} to {now} bytes; reading again from the start", path.display()),
                Followed::Replaced => eprintln!("circuitscope: {}: log was replaced; reading the new file from the start", path.display()),
            }
        }
        if !a.follow || ended.is_some_and(|t| t.elapsed() >= GRACE) {
            if printed == 0 && skipped > 0 {
                return Err(Error::bad_file(
                    &path,
                    format!(
                        "not an event log: none of its {skipped} lines is a circuitscope event"
                    ),
                ));
            }
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn cmd_demo(out: &Path) -> Result<()> {
    if out.join("run.json").exists() {
        let info = train::RunInfo::read(&RunDir::open(out)?)?;
        if info.config != TrainConfig::defaults(Preset::Products) {
            return Err(Error::Invalid(format!(
                "{} holds a run that is not a demo run; choose another --out",
                out.display()
            )));
        }
        std::fs::remove_dir_all(out)
            .map_err(|e| Error::io(out, "cannot replace the earlier demo run", e))?;
    }
    let cfg = TrainConfig::defaults(Preset::Products);
    println!("circuitscope demo: training `products` ((a,b,c,d) -> (a*b, c*d), 4→32→32→32→2 ReLU) into {}", out.display());
    let t0 = Instant::now();
    let mut observer = Reporter::new();
    let o = train::train(out, &cfg, &mut |u| observer.update(u))?;
    observer.finish();
    print_outcome(&o);
    println!("\nprobing the trained model on the mixed and per-task splits");
    let report = crate::probe::probe_run(out, &crate::probe::ProbeConfig::default())?;
    print_probe(&report, out)?;
    println!("\nbuilding the computational graph (neurons, exact IG on edges, per task)");
    let g = crate::graph::graph_run(out, &crate::graph::GraphSpec::default(), None)?;
    print!("{}", crate::graph::summary(&g, 0.01, 5));
    println!(
        "graph files: {}",
        out.join("graph/graph.{json,dot,svg}").display()
    );
    println!("\nevaluating the graph (mean ablation of the edges not kept)");
    let report = crate::eval::eval_run(
        out,
        &crate::graph::GraphSpec::default(),
        crate::eval::ablation::Ablation::Mean,
    )?;
    print!("{}", crate::eval::summary(&report));
    println!(
        "done in {:.1} s; see it in the dashboard with `circuitscope watch --replay {}`",
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// Prints the probe report as compact tables.
fn print_probe(r: &crate::probe::ProbeReport, run: &Path) -> Result<()> {
    use polars::prelude::DataFrame;
    for (k, v) in [
        ("POLARS_FMT_MAX_ROWS", "60"),
        ("POLARS_FMT_MAX_COLS", "20"),
        ("POLARS_FMT_TABLE_HIDE_DATAFRAME_SHAPE_INFORMATION", "1"),
        ("POLARS_FMT_TABLE_HIDE_COLUMN_DATA_TYPES", "1"),
        ("POLARS_FMT_TABLE_FORMATTING", "ASCII_MARKDOWN"),
        ("POLARS_FMT_STR_LEN", "24"),
        ("POLARS_TABLE_WIDTH", "180"),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    let show = |title: &str, df: &DataFrame, cols: &[&str]| -> Result<()> {
        let mut t = df
            .select(cols.iter().copied())
            .map_err(|e| Error::Data(format!("{title}: {e}")))?;
        // Four decimals are what a reader compares; the tables on disk keep every digit.
        for name in cols {
            if let Ok(v) = t.column(name).and_then(|c| c.f64()) {
                let rounded: Vec<Option<f64>> = v
                    .into_iter()
                    .map(|x| x.map(|x| (x * 1e4).round() / 1e4))
                    .collect();
                t.with_column(polars::prelude::Column::new((*name).into(), rounded))
                    .map_err(|e| Error::Data(e.to_string()))?;
            }
        }
        println!("\n{title}\n{t}");
        Ok(())
    };
    show(
        "activation-region census (distinct patterns and gradients per layer; layer 0 = input)",
        &r.census,
        &[
            "split",
            "layer",
            "layer_patterns",
            "adjacent_patterns",
            "downstream_patterns",
            "gradients_per_output",
            "gradients_combined",
            "appear_together",
            "ambiguous",
        ],
    )?;
    show(
        "task interference (exact per-example vs PCA subspaces)",
        &r.task_angles,
        &[
            "split",
            "layer",
            "task_a",
            "task_b",
            "k_a",
            "k_b",
            "interference_exact",
            "interference_pca",
            "smallest_angle_deg",
        ],
    )?;
    show(
        "PLS from each hidden layer to the next layer's PCs",
        &r.pls,
        &["layer", "component", "r2", "best_pc", "overlap"],
    )?;
    show(
        "scaffold: gradients of the next layer's PCs",
        &r.scaffold,
        &[
            "layer",
            "component",
            "distinct_directions",
            "top_gradient_pc_ratio",
        ],
    )?;
    println!("\ntables: {}", run.join("tables/probe_*.parquet").display());
    Ok(())
}

fn cmd_bench(what: BenchWhat) -> Result<()> {
    match what {
        BenchWhat::Peers {
            dir,
            python,
            script,
            threads,
            repeats,
            only,
            w2_loop_models,
            engine,
        } => {
            let all = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = if threads.is_empty() {
                if all > 1 {
                    vec![1, all]
                } else {
                    vec![1]
                }
            } else {
                threads
            };
            if threads.contains(&0) || repeats == 0 || w2_loop_models == 0 {
                return Err(Error::Invalid(
                    "--threads, --repeats and --w2-loop-models must be at least 1".into(),
                ));
            }
            let workloads = if only.is_empty() {
                peers::Workload::ALL.to_vec()
            } else {
                only
            };
            peers::run(&peers::PeersOptions {
                dir,
                python,
                script,
                threads,
                repeats,
                workloads,
                w2_loop_models,
                engine,
            })?;
            Ok(())
        }
        BenchWhat::Side {
            workload,
            dir,
            engine,
        } => {
            println!("{}", peers::side(workload, &dir, engine)?);
            Ok(())
        }
        BenchWhat::Peak => {
            println!("{}", peak::measure());
            Ok(())
        }
        BenchWhat::Train {
            preset,
            batch,
            epochs,
            repeats,
            engine,
        } => cmd_bench_train(&preset, batch, epochs, repeats, engine),
        BenchWhat::Ig {
            preset,
            examples,
            steps,
        } => {
            println!(
                "bench ig: {}",
                crate::graph::timing::ig(Preset::from_name(&preset)?, examples, steps)?
            );
            Ok(())
        }
        BenchWhat::Jacobians {
            preset,
            examples,
            repeats,
        } => {
            for p in preset {
                println!(
                    "bench jacobians: {} (medians of {repeats})",
                    crate::probe::timing::jacobians(Preset::from_name(&p)?, examples, repeats)?
                );
            }
            Ok(())
        }
    }
}

fn cmd_bench_train(
    preset: &str,
    batch: usize,
    epochs: usize,
    repeats: usize,
    engine: Engine,
) -> Result<()> {
    let t = train::throughput(Preset::from_name(preset)?, batch, epochs, repeats, engine)?;
    println!(
        "bench train: preset {}, batch {}, {} epochs x {} examples, {} repeats: median {:.0} examples/s (min {:.0}, max {:.0})",
        t.preset,
        t.batch,
        t.epochs,
        t.n_train,
        t.rates.len(),
        t.median(),
        t.rates[0],
        t.rates[t.rates.len() - 1]
    );
    Ok(())
}
