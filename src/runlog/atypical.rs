//! `atypical` on a classifier run: atypicality of its test inputs' activated subgraphs, clean
//! and under FGSM, stored as `tables/eval_atypical.parquet` and a `note` event.

use super::events::Event;
use super::load::LoadedRun;
use super::log::segment;
use crate::eval::atypical::{atypical, check_epsilon, AtypicalReport};
use crate::{Error, Result};
use polars::prelude::{Column, DataFrame};
use std::path::Path;

/// Measures [`atypical`] on a classifier run's training and test splits, writes
/// `tables/eval_atypical.parquet` and logs an `atypical` segment.
pub fn atypical_run(root: &Path, epsilon: f64) -> Result<AtypicalReport> {
    check_epsilon(epsilon)?;
    let loaded = LoadedRun::open(root)?;
    let (run, model, data) = (&loaded.run, &loaded.model, &loaded.data);
    if data.val.labels.is_none() {
        match &loaded.kind {
            super::load::RunKind::Preset(info) => crate::invalid!("atypical: preset `{}` is not a classifier; FGSM needs class labels (use digits or mnist)", info.preset),
            super::load::RunKind::Spec(_) => crate::invalid!("atypical: the model is not a classifier (its spec has no cross_entropy task); FGSM needs class labels"),
        }
    }
    segment(
        run,
        "atypical",
        Some(loaded.name()),
        serde_json::json!({ "epsilon": epsilon }),
        |log| {
            let report = atypical(model, &data.train, &data.val, epsilon)?;
            let labels = data.val.labels.as_deref().unwrap_or_default();
            let mut df = DataFrame::new(vec![
                Column::new(
                    "fgsm".into(),
                    (0..2 * labels.len())
                        .map(|i| i >= labels.len())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "label".into(),
                    labels
                        .iter()
                        .chain(labels)
                        .map(|&l| l as u64)
                        .collect::<Vec<_>>(),
                ),
                Column::new("atypicality".into(), report.scores.clone()),
                Column::new("atypicality_hidden".into(), report.scores_hidden.clone()),
            ])
            .map_err(|e| Error::Data(format!("atypical table: {e}")))?;
            run.write_table("eval_atypical", &mut df)?;
            log.emit(None, Event::Note { text: format!("atypical subgraphs: AUROC {:.4} (hidden-layer edges only {:.4}) at telling FGSM (ε = {}) from clean test inputs; accuracy {:.4} clean, {:.4} under attack", report.auroc, report.auroc_hidden, report.epsilon, report.clean_accuracy, report.adversarial_accuracy) })?;
            Ok(report)
        },
    )
}
