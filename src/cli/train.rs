//! `circuitscope train`: a preset into a run directory, or `--resume` one.

use super::choice::choice;
use super::progress::Reporter;
use circuitscope::model::net::Engine;
use circuitscope::model::train::{Schedule, TrainConfig};
use circuitscope::model::Preset;
use circuitscope::params::Valid;
use circuitscope::runlog::spec::SpecText;
use circuitscope::runlog::spec_train::{train_spec, SpecTrainOptions};
use circuitscope::runlog::train::{self, TrainOutcome};
use circuitscope::{Error, Result};
use std::path::PathBuf;

/// "the preset's: products 30, products64 20, …" for the help of a per-preset default.
fn defaults_help(what: &str, f: fn(&TrainConfig) -> String) -> String {
    let mut seen: Vec<(String, Vec<&str>)> = Vec::new();
    for &p in &Preset::ALL {
        let v = f(&TrainConfig::defaults(p));
        match seen.iter_mut().find(|(x, _)| *x == v) {
            Some((_, names)) => names.push(p.name()),
            None => seen.push((v, vec![p.name()])),
        }
    }
    let parts: Vec<String> = seen
        .iter()
        .map(|(v, names)| format!("{v} for {}", names.join(", ")))
        .collect();
    format!("{what} [default: the preset's: {}]", parts.join("; "))
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The model preset.
    #[arg(long, value_parser = choice::<Preset>())]
    pub preset: Option<Preset>,
    /// Instead of a preset: a model spec's training form (JSON; README "Your own model").
    #[arg(long, value_name = "SPEC.json", conflicts_with = "preset")]
    pub spec: Option<PathBuf>,
    /// With --spec: a separate validation file (default: a seeded share of --data).
    #[arg(long, value_name = "FILE", requires = "spec")]
    pub val_data: Option<PathBuf>,
    /// With --spec and --data: the share of rows held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    /// The run directory to create (or, with --resume, to continue).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, help = defaults_help("Epochs", |c| c.epochs.to_string()))]
    pub epochs: Option<usize>,
    #[arg(long, help = defaults_help("Examples per batch", |c| c.batch.to_string()))]
    pub batch: Option<usize>,
    #[arg(long, allow_negative_numbers = true, help = defaults_help("Learning rate", |c| c.lr.to_string()))]
    pub lr: Option<f64>,
    /// Seeds the initial weights and the shuffling [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seeds the generated data set [default: 0].
    #[arg(long)]
    pub data_seed: Option<u64>,
    #[arg(long, help = defaults_help("Training examples of generated data sets", |c| c.n_train.to_string()))]
    pub n_train: Option<usize>,
    /// Which poly1d family member a poly model learns (0-9) [default: 0].
    #[arg(long)]
    pub member: Option<usize>,
    /// mnist: folder with the MNIST IDX files; digits: a CSV file to use instead of the
    /// built-in set; --spec: the CSV or Parquet file with the spec's columns.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// How the learning rate changes [default: cosine].
    #[arg(long, value_parser = choice::<Schedule>())]
    pub schedule: Option<Schedule>,
    /// A train_step event every N steps [default: 20].
    #[arg(long)]
    pub log_every: Option<usize>,
    /// Also checkpoint every N steps (0: at epoch ends only) [default: 0].
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Which code computes the passes (dfdx: the reference) [default: fused].
    #[arg(long, value_parser = choice::<Engine>())]
    pub engine: Option<Engine>,
    /// L1 penalty on the weights; concentrates the network on fewer edges [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub l1: Option<f64>,
    /// Continue the run in --out from its newest checkpoint with its stored settings.
    #[arg(long)]
    pub resume: bool,
}

impl TrainArgs {
    /// The training options: the preset's defaults with the flags given on top, checked.
    pub fn config(&self) -> Result<Valid<TrainConfig>> {
        let preset = self
            .preset
            .ok_or_else(|| Error::Invalid("train needs --preset or --spec (or --resume)".into()))?;
        let mut c = TrainConfig::defaults(preset);
        macro_rules! set {
            ($($f:ident <- $v:expr),*) => { $( if let Some(v) = $v { c.$f = v; } )* };
        }
        set!(epochs <- self.epochs, batch <- self.batch, lr <- self.lr, seed <- self.seed,
             data_seed <- self.data_seed, n_train <- self.n_train, member <- self.member,
             log_every <- self.log_every, checkpoint_every <- self.checkpoint_every,
             engine <- self.engine, l1 <- self.l1, schedule <- self.schedule);
        if let Some(d) = &self.data {
            c.data_dir = Some(d.clone());
        }
        c.check()
    }

    /// Whether any flag but --out and --resume was given.
    fn sets_options(&self) -> bool {
        [
            self.preset.is_some(),
            self.spec.is_some(),
            self.val_data.is_some(),
            self.epochs.is_some(),
            self.batch.is_some(),
            self.lr.is_some(),
            self.seed.is_some(),
            self.data_seed.is_some(),
            self.n_train.is_some(),
            self.member.is_some(),
            self.data.is_some(),
            self.schedule.is_some(),
            self.log_every.is_some(),
            self.checkpoint_every.is_some(),
            self.engine.is_some(),
            self.l1.is_some(),
        ]
        .iter()
        .any(|&x| x)
    }
}

pub fn run(a: TrainArgs) -> Result<()> {
    let mut observer = Reporter::new();
    let outcome = if a.resume {
        if a.sets_options() {
            return Err(Error::Invalid(
                "--resume continues with the run's stored settings; give only --out".into(),
            ));
        }
        train::resume(&a.out, &mut |u| observer.update(u))?
    } else {
        match &a.spec {
            Some(path) => {
                let o = SpecTrainOptions {
                    spec: SpecText::read(path)?,
                    data: a.data.clone(),
                    val_data: a.val_data.clone(),
                    val_fraction: a.val_fraction,
                    split_seed: a.seed.unwrap_or(0),
                    epochs: a.epochs,
                    batch: a.batch,
                    lr: a.lr,
                    seed: a.seed,
                    schedule: a.schedule,
                    log_every: a.log_every,
                    checkpoint_every: a.checkpoint_every,
                    l1: a.l1,
                };
                for (given, flag) in [
                    (a.data_seed.is_some(), "--data-seed"),
                    (a.n_train.is_some(), "--n-train"),
                    (a.member.is_some(), "--member"),
                    (a.engine.is_some(), "--engine"),
                ] {
                    if given {
                        return Err(Error::Invalid(format!(
                            "{flag} is for presets; a spec sets its data and trains on the fused engine"
                        )));
                    }
                }
                train_spec(&a.out, &o, &mut |u| observer.update(u))?
            }
            None => {
                let cfg = a.config()?;
                train::train(&a.out, &cfg, &mut |u| observer.update(u))?
            }
        }
    };
    observer.finish();
    print_outcome(&outcome);
    Ok(())
}

/// The lines a finished training prints.
pub fn print_outcome(o: &TrainOutcome) {
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
