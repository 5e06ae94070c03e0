//! `circuitscope zoo`: a zoo of `poly` models trained in parallel (resumable, shardable), or
//! shards merged into one.

use super::choice::{choice, key};
use circuitscope::embed::zoo::{FamilyKind, Shard, ZooConfig, R2_BAR};
use circuitscope::model::net::Engine;
use circuitscope::runlog::segment;
use circuitscope::runlog::zoo::{merge, train_zoo, Zoo};
use circuitscope::Result;
use std::io::IsTerminal;
use std::path::PathBuf;

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
    /// Seeds the family of polynomials.
    #[arg(long, default_value_t = 0)]
    pub family_seed: u64,
    /// How the family of polynomials is drawn.
    #[arg(long, value_parser = choice::<FamilyKind>(), default_value = key(FamilyKind::Maxmin))]
    pub family: FamilyKind,
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 3e-3, allow_negative_numbers = true)]
    pub lr: f64,
    /// Training points per model.
    #[arg(long, default_value_t = 4096)]
    pub n_train: usize,
    /// Which code trains the models (dfdx: the reference) [default: fused, or the engine an
    /// existing zoo in --out was begun with].
    #[arg(long, value_parser = choice::<Engine>())]
    pub engine: Option<Engine>,
    /// Train only this slice i/n of the models (for job arrays), or "auto": the slice of this
    /// Slurm array task (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT); merge with --merge.
    #[arg(long)]
    pub shard: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Instead of training, merge these shard directories into --out.
    #[arg(long, num_args = 1..)]
    pub merge: Vec<PathBuf>,
}

pub fn run(a: ZooArgs) -> Result<()> {
    if !a.merge.is_empty() {
        let z = merge(&a.out, &a.merge)?;
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
        engine: match a.engine {
            Some(e) => e,
            // Resuming without --engine continues on the engine the zoo began on.
            None if a.out.join("zoo.json").exists() => Zoo::open(&a.out)?.spec.config.engine,
            None => Engine::default(),
        },
    }
    .check()?;
    let shard = match a.shard.as_deref() {
        Some("auto") => {
            let var = |name: &str| std::env::var(name).ok();
            Shard::from_slurm(
                var("SLURM_ARRAY_TASK_ID").as_deref(),
                var("SLURM_ARRAY_TASK_COUNT").as_deref(),
                var("SLURM_ARRAY_TASK_MIN").as_deref(),
            )?
        }
        Some(s) => Shard::parse(s)?,
        None => Shard::ALL,
    };
    let config = serde_json::to_value(&*cfg).expect("serialises");
    let z = Zoo::create_or_open(&a.out, cfg.clone())?;
    let tty = std::io::stderr().is_terminal();
    let bar = super::progress::bar(
        0,
        "{bar:30} {pos}/{len} models  {per_sec}  eta {eta}  {msg}",
    );
    let out = super::with_threads(a.threads, || {
        segment(&z.run(), "zoo", Some("poly"), config, |log| {
            train_zoo(&z, shard, log, &|u| {
                bar.set_length(u.total as u64);
                bar.set_position(u.done as u64);
                bar.set_message(format!(
                    "{} R² {:.4}",
                    Zoo::name(u.record.function, u.record.seed),
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
        println!("every model of this run reaches R² >= {}", R2_BAR);
    } else {
        println!(
            "{} flagged below R² {}: {}",
            out.flagged.len(),
            R2_BAR,
            out.flagged.join(", ")
        );
    }
    println!("manifest: {}", z.run().table("manifest").display());
    Ok(())
}
