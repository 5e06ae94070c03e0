//! `circuitscope import`: a PyTorch-trained MLP and its data into a spec run.

use circuitscope::runlog::import::{import_run, ImportOptions, Sequential};
use circuitscope::runlog::spec::SpecText;
use circuitscope::{Error, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The weights: a safetensors state dict (f32, f64, f16 or bf16).
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: PathBuf,
    /// The model spec (JSON, its import form: each layer's tensor names and activation).
    #[arg(long, value_name = "SPEC.json")]
    pub spec: Option<PathBuf>,
    /// The data: a CSV or Parquet file with the spec's input and target columns.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The run directory to create.
    #[arg(long)]
    pub out: PathBuf,
    /// A CSV or Parquet file of inputs and the outputs PyTorch computed (output_0, output_1,
    /// ...): the import is refused when any output column differs by more than 1e-5 of its
    /// largest value.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// A separate validation file (default: a seeded share of --data).
    #[arg(long, value_name = "FILE")]
    pub val_data: Option<PathBuf>,
    /// The share of --data held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    /// Seeds the validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Without --spec (a plain nn.Sequential): each Linear layer's activation, e.g.
    /// relu,relu,identity (leaky_relu:0.1 for a slope).
    #[arg(long, value_delimiter = ',', conflicts_with = "spec")]
    pub activations: Vec<String>,
    /// Without --spec: the input columns, in the model's input order.
    #[arg(long, value_delimiter = ',', conflicts_with = "spec")]
    pub inputs: Vec<String>,
    /// Without --spec: the regression target columns, one per output in order.
    #[arg(long, value_delimiter = ',', conflicts_with = "spec")]
    pub tasks: Vec<String>,
    /// Without --spec: a classifier's integer class column (one task owning every output).
    #[arg(long, value_name = "COLUMN", conflicts_with = "spec")]
    pub classify: Option<String>,
}

pub fn run(a: ImportArgs) -> Result<()> {
    let spec = match &a.spec {
        Some(p) => Ok(SpecText::read(p)?),
        None => {
            if a.activations.is_empty() {
                return Err(Error::Invalid(
                    "import needs --spec, or for a plain nn.Sequential --activations, --inputs and --tasks (or --classify)".into(),
                ));
            }
            Err(Sequential {
                activations: a.activations.clone(),
                inputs: a.inputs.clone(),
                tasks: a.tasks.clone(),
                classify: a.classify.clone(),
            })
        }
    };
    let weights = a.weights.clone();
    let r = import_run(&ImportOptions {
        weights: a.weights,
        spec,
        data: a.data,
        val_data: a.val_data,
        val_fraction: a.val_fraction,
        split_seed: a.seed,
        expect: a.expect,
        out: a.out,
    })?;
    println!(
        "imported {} into {} (model.safetensors): widths {:?}, activations {}, {} weights",
        weights.display(),
        r.run.root.display(),
        r.widths,
        r.activations.join(", "),
        r.dtypes.join("/")
    );
    println!(
        "data: {} training rows, {} validation rows (data/val.csv)",
        r.train_rows, r.val_rows
    );
    if let Some(e) = r.expect_error {
        println!("outputs equal PyTorch's: largest difference {e:.2e} of its column's scale (at most 1e-5 allowed)");
    }
    Ok(())
}
