//! The Training view: per-task loss over steps, lr, throughput, ETA, the last evaluation.

use super::{bounds, empty, num, push_thinned, PALETTE};
use crate::runlog::events::TaskMetrics;
use crate::runlog::Event;
use crate::tui::{Ctx, Record, View};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Widget, Wrap};

/// Training: per-task loss (log scale) over steps, lr, throughput, ETA, the last evaluation.
#[derive(Default)]
pub struct Training {
    preset: Option<String>,
    /// The epochs the run was configured for (its `run_start` config), when it says.
    epochs: Option<u64>,
    tasks: Vec<Vec<(f64, f64)>>,
    last: Option<(u64, usize, f64, f64, f64, f64)>,
    eval: Option<(usize, String, Vec<TaskMetrics>)>,
    resumed: Option<u64>,
}

impl View for Training {
    fn title(&self) -> &str {
        "Training"
    }

    fn update(&mut self, r: &Record) -> bool {
        let Some(env) = &r.event else { return false };
        match &env.event {
            Event::RunStart {
                command,
                preset,
                config,
            } if command == "train" => {
                self.preset = preset.clone();
                self.epochs = config.get("epochs").and_then(|e| e.as_u64());
                true
            }
            Event::TrainStep {
                epoch,
                losses,
                loss,
                lr,
                examples_per_s,
                eta_s,
            } => {
                let step = env.step.unwrap_or(0);
                if self.tasks.len() < losses.len() {
                    self.tasks.resize(losses.len(), Vec::new());
                }
                for (t, l) in losses.iter().enumerate() {
                    if *l > 0.0 && l.is_finite() {
                        push_thinned(&mut self.tasks[t], (step as f64, l.log10()));
                    }
                }
                self.last = Some((step, *epoch, *loss, *lr, *examples_per_s, *eta_s));
                true
            }
            Event::Eval {
                epoch,
                split,
                tasks,
            } => {
                self.eval = Some((*epoch, split.clone(), tasks.clone()));
                true
            }
            Event::Resumed { from_step } => {
                self.resumed = Some(*from_step);
                true
            }
            _ => false,
        }
    }

    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        let Some((step, epoch, loss, lr, eps, eta)) = self.last else {
            return empty(
                area,
                buf,
                "Training",
                "fills with `train_step` and `eval` events: `circuitscope train --preset P --out RUN`, or a training loop using the Python logger (`circuitscope_log`).",
            );
        };
        let mut lines = vec![Line::from(format!(
            "{}step {step}  epoch {}{}  loss {}  lr {}  {} ex/s  ETA {}{}",
            self.preset
                .as_ref()
                .map(|p| format!("{p}  "))
                .unwrap_or_default(),
            // Events count epochs from 0; people count them from 1 (the last is `N of N`).
            epoch + 1,
            self.epochs.map(|n| format!(" of {n}")).unwrap_or_default(),
            num(loss),
            num(lr),
            // A logger that was not told the batch size (0) or the total steps (negative)
            // cannot know these: shown as unknown, never as a number.
            if eps > 0.0 { num(eps) } else { "-".into() },
            if eta >= 0.0 {
                format!("{eta:.0} s")
            } else {
                "-".into()
            },
            self.resumed
                .map(|s| format!("  (resumed at {s})"))
                .unwrap_or_default()
        ))];
        if let Some((epoch, split, tasks)) = &self.eval {
            let figs: Vec<String> = tasks
                .iter()
                .map(|m| {
                    let mut s = format!("{} loss {}", m.task, num(m.loss));
                    if let Some(r2) = m.r2 {
                        s.push_str(&format!(" R² {r2:.4}"));
                    }
                    if let Some(a) = m.accuracy {
                        s.push_str(&format!(" acc {:.2}%", 100.0 * a));
                    }
                    s
                })
                .collect();
            lines.push(Line::from(format!(
                "eval (epoch {}, {split}): {}",
                epoch + 1,
                figs.join(" | ")
            )));
        }
        // Rows the wrapped head needs.
        let w = area.width.max(1) as usize;
        let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(w)).sum();
        let [head, chart] = Layout::vertical([
            Constraint::Length((rows as u16).min(area.height / 2)),
            Constraint::Min(0),
        ])
        .areas(area);
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .render(head, buf);
        let xs = self.tasks.iter().flatten().map(|p| p.0);
        let ys = self.tasks.iter().flatten().map(|p| p.1);
        let (Some((x0, x1)), Some((y0, y1))) = (bounds(xs), bounds(ys)) else {
            return;
        };
        let names: Vec<String> = (0..self.tasks.len()).map(|t| format!("task{t}")).collect();
        let data: Vec<Dataset> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(t, s)| {
                Dataset::default()
                    .name(names[t].as_str())
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(PALETTE[t % PALETTE.len()]))
                    .data(s)
            })
            .collect();
        Chart::new(data)
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title("loss per task (log10)"),
            )
            .x_axis(
                Axis::default()
                    .bounds([x0, x1])
                    .labels([format!("{x0:.0}"), format!("step {x1:.0}")]),
            )
            .y_axis(
                Axis::default()
                    .bounds([y0, y1])
                    .labels([num(10f64.powf(y0)), num(10f64.powf(y1))]),
            )
            .render(chart, buf);
    }
}
