//! `embed` on a zoo: the embedding grid and its baselines, as `tables/embed_grid`,
//! `tables/embed_baselines` and `tables/embeddings` and `embedder_loss` / `probe_accuracy`
//! events in the zoo's log.

use super::events::Event;
use super::log::segment;
use super::zoo::Zoo;
use crate::embed::zoo::R2_BAR;
use crate::embed::{
    baseline_table, embeddings_table, grid_and_baselines, grid_table, EmbedConfig, EmbedReport,
    Member, Progress,
};
use crate::Result;
use std::path::Path;
use std::sync::Mutex;

/// Runs the grid and the baselines on `zoo`, writing `tables/embed_grid`,
/// `tables/embed_baselines` and `tables/embeddings` and logging a segment of events.
pub fn embed_run(
    zoo_root: &Path,
    cfg: EmbedConfig,
    observe: &(dyn Fn(&Progress) + Sync),
) -> Result<EmbedReport> {
    let zoo = Zoo::open(zoo_root)?;
    let cfg = cfg.check(&zoo.spec.config)?;
    let records = zoo.complete_records()?;
    let seeds = zoo.spec.config.seeds;
    let mut excluded = Vec::new();
    let mut members = Vec::new();
    for r in &records {
        if r.flagged && !cfg.keep_flagged {
            excluded.push(Zoo::name(r.function, r.seed));
            continue;
        }
        members.push(Member {
            function: r.function,
            seed: r.seed,
            model: zoo.load(r.function, r.seed)?,
        });
    }
    let run = zoo.run();
    let config = serde_json::to_value(&*cfg).expect("serialises");
    segment(&run, "embed", Some("poly"), config, |log| {
        if !excluded.is_empty() {
            log.emit(
                None,
                Event::Note {
                    text: format!(
                        "left out {} models flagged below R² {} ({}); pass --keep-flagged to use them",
                        excluded.len(),
                        R2_BAR,
                        excluded.join(", ")
                    ),
                },
            )?;
        }
        let log = Mutex::new(log);
        let report = grid_and_baselines(&members, seeds, &cfg, excluded.clone(), &|p| {
            observe(&p);
            let (step, event) = match p {
                Progress::Loss {
                    label,
                    step,
                    train,
                    val,
                } => (
                    Some(step as u64),
                    Event::EmbedderLoss {
                        train,
                        val,
                        label: Some(label),
                    },
                ),
                Progress::Probe(p) => (None, Event::ProbeAccuracy(p)),
                Progress::PointDone { .. } => return Ok(()),
            };
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .emit(step, event)
        })?;
        let mut grid = grid_table(&report.grid)?;
        run.write_table("embed_grid", &mut grid)?;
        let mut base = baseline_table(&report.baselines)?;
        run.write_table("embed_baselines", &mut base)?;
        let mut emb = embeddings_table(&report.grid)?;
        run.write_table("embeddings", &mut emb)?;
        Ok(report)
    })
}
