//! The Zoo/Embedding view: zoo progress, embedder losses and probe accuracies.

use super::{empty, num, push_thinned};
use crate::runlog::events::ProbeScore;
use crate::runlog::Event;
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Row, Table, Widget};
use std::collections::BTreeMap;

/// Zoo training progress, embedder losses and probe accuracies.
#[derive(Default)]
pub struct Zoo {
    progress: Option<(usize, usize, String, f64)>,
    below_bar: usize,
    losses: BTreeMap<String, (u64, f64, f64)>,
    last_label: Option<String>,
    val_series: BTreeMap<String, Vec<(f64, f64)>>,
    probes: Vec<ProbeScore>,
}

impl View for Zoo {
    fn title(&self) -> &str {
        "Zoo/Embedding"
    }

    fn update(&mut self, r: &Record) -> bool {
        let Some(env) = &r.event else { return false };
        match &env.event {
            // Each `embed` on a zoo appends its embedders and baselines to the zoo's log: a
            // new one replaces the last one's rows (never two runs' rows mixed in one table).
            Event::RunStart { command, .. } if command == "embed" => {
                self.losses.clear();
                self.val_series.clear();
                self.probes.clear();
                self.last_label = None;
                true
            }
            Event::ZooProgress {
                done,
                total,
                model,
                r2,
            } => {
                if *r2 < crate::embed::zoo::R2_BAR {
                    self.below_bar += 1;
                }
                self.progress = Some((*done, *total, model.clone(), *r2));
                true
            }
            Event::EmbedderLoss { train, val, label } => {
                let label = label.clone().unwrap_or_else(|| "embedder".into());
                let step = env.step.unwrap_or(0);
                self.losses.insert(label.clone(), (step, *train, *val));
                push_thinned(
                    self.val_series.entry(label.clone()).or_default(),
                    (step as f64, *val),
                );
                self.last_label = Some(label);
                true
            }
            Event::ProbeAccuracy(p) => {
                self.probes.push(p.clone());
                true
            }
            _ => false,
        }
    }

    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        if self.progress.is_none() && self.losses.is_empty() && self.probes.is_empty() {
            return empty(
                area,
                buf,
                "Zoo/Embedding",
                "fills with `zoo_progress`, `embedder_loss` and `probe_accuracy` events: `circuitscope zoo --out ZOO`, then `circuitscope embed ZOO`; watch the zoo directory.",
            );
        }
        let [gauge, table] =
            Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
        if let Some((done, total, model, r2)) = &self.progress {
            Gauge::default()
                .block(Block::default().borders(Borders::TOP).title("zoo"))
                .gauge_style(Style::default().fg(Color::Cyan))
                .ratio((*done as f64 / (*total).max(1) as f64).clamp(0.0, 1.0))
                .label(format!(
                    "{done}/{total} models, last {model} R² {r2:.4}, {} below R² {}",
                    self.below_bar,
                    crate::embed::zoo::R2_BAR
                ))
                .render(gauge, buf);
        } else {
            Paragraph::new("zoo: no progress events in this log").render(gauge, buf);
        }
        let mut rows: Vec<Row> = Vec::new();
        for (label, (step, train, val)) in &self.losses {
            let probe = self.probes.iter().rev().find(|p| {
                p.method == "embedding"
                    && p.bottleneck.is_some()
                    && format!(
                        "f{} k{} m{:.2}",
                        p.functions,
                        p.bottleneck.unwrap_or(0),
                        p.mask_ratio.unwrap_or(0.0)
                    ) == *label
            });
            rows.push(Row::new(vec![
                label.clone(),
                step.to_string(),
                num(*train),
                num(*val),
                probe.map_or("-".into(), |p| format!("{:.1}%", 100.0 * p.accuracy)),
                probe
                    .and_then(|p| p.cluster_ari)
                    .map_or("-".into(), |a| format!("{a:.3}")),
            ]));
        }
        for p in self.probes.iter().filter(|p| p.method != "embedding") {
            rows.push(
                Row::new(vec![
                    format!("f{} {}", p.functions, p.method),
                    "".into(),
                    "".into(),
                    "".into(),
                    format!("{:.1}%", 100.0 * p.accuracy),
                    p.cluster_ari.map_or("-".into(), |a| format!("{a:.3}")),
                ])
                .style(Style::default().fg(Color::DarkGray)),
            );
        }
        Table::new(
            rows,
            [
                Constraint::Length(24),
                Constraint::Length(6),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(7),
                Constraint::Length(6),
            ],
        )
        .header(
            Row::new(vec![
                "embedder / baseline",
                "step",
                "train",
                "val",
                "probe",
                "ARI",
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title("embedders (masked-gradient loss) and probe accuracy on held-out models"),
        )
        .render(table, buf);
    }
}
