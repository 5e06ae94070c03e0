//! `circuitscope probe`: every probe on a trained run, printed as compact tables.

use circuitscope::probe::{ProbeConfig, ProbeReport};
use circuitscope::runlog::probe::probe_run;
use circuitscope::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The run directory.
    pub run: PathBuf,
    /// Principal components per layer used between layers.
    #[arg(long, default_value_t = 4)]
    pub pcs: usize,
}

pub fn run(a: ProbeArgs) -> Result<()> {
    let cfg = ProbeConfig {
        pcs: a.pcs,
        ..Default::default()
    }
    .check()?;
    print_probe(&probe_run(&a.run, &cfg)?, &a.run)
}

/// Why a probe table has no rows.
fn empty_because(title: &str) -> &'static str {
    if title.starts_with("task interference") {
        "the model has one task, so no pair of tasks to compare"
    } else if title.starts_with("PLS") {
        "the model has fewer than two hidden layers"
    } else {
        "nothing to show"
    }
}

/// Prints the probe report as compact tables.
pub fn print_probe(r: &ProbeReport, run: &Path) -> Result<()> {
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
        if df.height() == 0 {
            println!("\n{title}\n(none: {})", empty_because(title));
            return Ok(());
        }
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
    for note in &r.notes {
        println!("\nnote: {note}");
    }
    println!("\ntables: {}", run.join("tables/probe_*.parquet").display());
    Ok(())
}
