//! `circuitscope bench`: speed against peers, the CPU's peak, and the speed of our own
//! stages (BENCHMARKS.md).

use super::choice::{choice, key};
use circuitscope::bench::peers::{self, Workload};
use circuitscope::bench::{peak, side, spec, timing};
use circuitscope::model::net::Engine;
use circuitscope::model::Preset;
use circuitscope::params::Choice;
use circuitscope::{Error, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// circuitscope against PyTorch, Captum and scikit-learn on six workloads (W1–W6),
    /// interleaved at equal thread counts. Needs "bash benches/peers/setup.sh" first.
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
        #[arg(long, value_parser = choice::<Workload>(), value_delimiter = ',')]
        only: Vec<Workload>,
        /// Models the peer's plain per-model loop trains in W2 (its rate is per model).
        #[arg(long, default_value_t = 20)]
        w2_loop_models: usize,
        /// Our training engine for W1 and W2 (the fastest by default; dfdx is the reference).
        #[arg(long, value_parser = choice::<Engine>(), default_value = key(Engine::Fused))]
        engine: Engine,
    },
    /// One workload of "bench peers" on this side, as one JSON line (run by "bench peers").
    #[command(hide = true)]
    Side {
        #[arg(value_parser = choice::<Workload>())]
        workload: Workload,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_parser = choice::<Engine>(), default_value = key(Engine::Dfdx))]
        engine: Engine,
    },
    /// This CPU's peak FP32 rate per core (clock and FMA units measured).
    Peak,
    /// The README's evaluation table: every model family trained with its defaults on each
    /// seed and evaluated (mean ablation, neuron and ROI graphs), figures beside their chance.
    Eval {
        /// Training seeds per family (0, 1, ...).
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// Where the runs go (finished runs there are reused).
        #[arg(long, default_value = "target/bench-eval")]
        dir: PathBuf,
    },
    /// Every circuit-discovery method (ig, eap, eap-ig, acdc, mask) on six model families and
    /// several seeds: one faithfulness table for circuits of edges, one for circuits of neurons
    /// (README "Circuit discovery").
    Circuits {
        /// Training seeds per family (0, 1, ...).
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// Where the runs go (finished runs there are reused; the same as bench eval's).
        #[arg(long, default_value = "target/bench-eval")]
        dir: PathBuf,
    },
    /// Cost curves: time and peak memory of train, probe, graph and eval, each as its own
    /// process, varying width, depth, examples or inputs one at a time from products64 on
    /// 10,000 examples, with each stage's fitted exponent (Linux).
    Scale {
        /// Where the runs go (an earlier sweep's runs there are replaced).
        #[arg(long, default_value = "target/bench-scale")]
        dir: PathBuf,
        /// One variable only: width, depth, examples or inputs.
        #[arg(long)]
        only: Option<String>,
        /// Seconds a stage may run before it is stopped and reported as such.
        #[arg(long, default_value_t = 120)]
        limit: u64,
        /// Resident memory in MB past which a stage is stopped and reported as such.
        #[arg(long, default_value_t = 8000.0)]
        cap_mb: f64,
    },
    /// Training throughput in examples/s (default: products64 at batch 256).
    Train {
        #[command(flatten)]
        run: TrainingBench,
        /// The engine measured (dfdx: the reference).
        #[arg(long, value_parser = choice::<Engine>(), default_value = key(Engine::Fused))]
        engine: Engine,
    },
    /// Importing a PyTorch-saved 784→512→512→10 nn.Sequential: the weights alone, and the whole
    /// import with a data file.
    Import {
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Rows of the data file (784 inputs and a label each).
        #[arg(long, default_value_t = 200)]
        rows: usize,
    },
    /// Training a spec architecture against the preset of the same shape (fused engine, default
    /// products64 at its batch of 256), interleaved.
    SpecTrain {
        #[command(flatten)]
        run: TrainingBench,
    },
    /// IG on the hidden-layer edges of products64 (1,000 examples, zero baseline): exact vs a
    /// Riemann sum.
    Ig {
        #[arg(long, value_parser = choice::<Preset>(), default_value = "products64")]
        preset: Preset,
        #[arg(long, default_value_t = 1000)]
        examples: usize,
        #[arg(long, default_value_t = 50)]
        steps: usize,
    },
    /// Whether "analyze --follow" keeps up: checkpoints of a products run replayed every 2 s and
    /// of a 6→32→32→3 model every 1 s, then at halved intervals until one is skipped.
    Follow {
        /// Checkpoints per replay.
        #[arg(long, default_value_t = 12)]
        checkpoints: usize,
        /// How many times the interval is halved after the stated one.
        #[arg(long, default_value_t = 4)]
        halvings: usize,
        /// Validation examples the analysis averages over (analyze's default).
        #[arg(long, default_value_t = 500)]
        examples: usize,
    },
    /// All adjacent and output-to-layer Jacobians of a trained model, with and without pattern
    /// reuse, and the census (default: products and products64 on 10,000 examples).
    Jacobians {
        #[arg(long, value_parser = choice::<Preset>(), default_value = "products,products64", value_delimiter = ',')]
        preset: Vec<Preset>,
        #[arg(long, default_value_t = 10_000)]
        examples: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
}

/// What the training benchmarks share: the preset trained, its batch, epochs and repeats.
#[derive(Debug, clap::Args)]
pub struct TrainingBench {
    #[arg(long, value_parser = choice::<Preset>(), default_value = "products64")]
    preset: Preset,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

pub fn run(what: BenchWhat) -> Result<()> {
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
                Workload::ALL.to_vec()
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
            println!("{}", side::side(workload, &dir, engine)?);
            Ok(())
        }
        BenchWhat::Eval { seeds, dir } => {
            print!("{}", circuitscope::bench::evaluation::table(&dir, seeds)?);
            Ok(())
        }
        BenchWhat::Circuits { seeds, dir } => {
            let table =
                circuitscope::bench::circuits::table(&dir, seeds, &mut |line| eprintln!("{line}"))?;
            print!("{table}");
            Ok(())
        }
        BenchWhat::Scale {
            dir,
            only,
            limit,
            cap_mb,
        } => {
            if let Some(o) = &only {
                if !["width", "depth", "examples", "inputs"].contains(&o.as_str()) {
                    circuitscope::invalid!("--only {o}: expected width, depth, examples or inputs");
                }
            }
            let exe = std::env::current_exe().map_err(|e| {
                circuitscope::Error::io(
                    std::path::Path::new("circuitscope"),
                    "cannot find its own binary",
                    e,
                )
            })?;
            let t0 = std::time::Instant::now();
            let table = circuitscope::bench::scale::sweep(
                &exe,
                &dir,
                (std::time::Duration::from_secs(limit), cap_mb),
                only.as_deref(),
                &mut |line| eprintln!("{line}"),
            )?;
            print!("{table}");
            println!("\nwhole sweep: {:.0} s", t0.elapsed().as_secs_f64());
            Ok(())
        }
        BenchWhat::Peak => {
            println!("{}", peak::measure());
            Ok(())
        }
        BenchWhat::Train { run: r, engine } => {
            bench_train(r.preset, r.batch, r.epochs, r.repeats, engine)
        }
        BenchWhat::Follow {
            checkpoints,
            halvings,
            examples,
        } => {
            for k in circuitscope::bench::follow::follow_bench(checkpoints, halvings, examples)? {
                println!("bench follow: {k}");
            }
            Ok(())
        }
        BenchWhat::Import { repeats, rows } => {
            println!("bench import: {}", spec::import_speed(repeats, rows)?);
            Ok(())
        }
        BenchWhat::SpecTrain { run: r } => {
            println!(
                "bench spec-train: {}",
                spec::spec_vs_preset(r.preset, r.batch, r.epochs, r.repeats)?
            );
            Ok(())
        }
        BenchWhat::Ig {
            preset,
            examples,
            steps,
        } => {
            println!("bench ig: {}", timing::ig(preset, examples, steps)?);
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
                    timing::jacobians(p, examples, repeats)?
                );
            }
            Ok(())
        }
    }
}

fn bench_train(
    preset: Preset,
    batch: usize,
    epochs: usize,
    repeats: usize,
    engine: Engine,
) -> Result<()> {
    let t = timing::throughput(preset, batch, epochs, repeats, engine)?;
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
