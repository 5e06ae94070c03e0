//! `circuitscope embed`: the embedding grid on a zoo, against its baselines.

use circuitscope::embed::{EmbedConfig, Progress};
use circuitscope::runlog::embed::embed_run;
use circuitscope::runlog::zoo::Zoo;
use circuitscope::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// The zoo directory.
    pub zoo: PathBuf,
    /// Numbers of functions (default: 5 and all of the zoo's).
    #[arg(long, value_delimiter = ',')]
    pub functions: Vec<usize>,
    /// Bottleneck widths.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16")]
    pub bottleneck: Vec<usize>,
    /// Mask ratios (share of points hidden, by whole linear pieces).
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75")]
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

pub fn run(a: EmbedArgs) -> Result<()> {
    let z = Zoo::open(&a.zoo)?;
    let mut cfg = EmbedConfig::grid_for(&z.spec.config);
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
    let held_out = cfg.held_out;
    let points = cfg.functions.len() * cfg.bottlenecks.len() * cfg.mask_ratios.len();
    let bar = super::progress::bar(
        points as u64,
        "{bar:30} {pos}/{len} grid points  eta {eta}  {msg}",
    );
    let r = super::with_threads(a.threads, || {
        embed_run(&a.zoo, cfg, &|p| match p {
            Progress::PointDone { done, .. } => bar.set_position(*done as u64),
            Progress::Loss {
                label, step, val, ..
            } => bar.set_message(format!("{label} step {step} val {val:.4}")),
            Progress::Probe(_) => {}
        })
    })?;
    bar.finish_and_clear();
    println!(
        "{} training models, {} held out (the last {} seed(s) of every function){}",
        r.train_models,
        r.val_models,
        held_out,
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
