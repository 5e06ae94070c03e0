//! `circuitscope atypical`: whether atypical activated subgraphs flag FGSM inputs.

use circuitscope::runlog::atypical::atypical_run;
use circuitscope::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct AtypicalArgs {
    /// The run directory (a digits or mnist run).
    pub run: PathBuf,
    /// FGSM step in input units (inputs lie in [0, 1]).
    #[arg(long, default_value_t = 0.1)]
    pub epsilon: f64,
}

pub fn run(a: AtypicalArgs) -> Result<()> {
    let r = atypical_run(&a.run, a.epsilon)?;
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
