//! The Training view: per-task loss over steps (or elapsed or wall-clock time), lr,
//! throughput, ETA, the last evaluation, the values under a cursor; with several runs
//! selected, every run's loss laid over the others.

use super::{empty, interpolate, num, overlay_chart, push_thinned, PALETTE};
use crate::runlog::events::TaskMetrics;
use crate::runlog::Event;
use crate::tui::{Ctx, Overlay, Record, Series, View, XAxis};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

/// A logged point: step, envelope time, log10 of the loss.
#[derive(Debug, Clone, Copy)]
struct Pt {
    step: f64,
    time: f64,
    y: f64,
}

/// Training: per-task loss (log scale) over steps, lr, throughput, ETA, the last evaluation.
#[derive(Default)]
pub struct Training {
    preset: Option<String>,
    /// The epochs the run was configured for (its `run_start` config), when it says.
    epochs: Option<u64>,
    tasks: Vec<Vec<Pt>>,
    /// The total loss (what overlays of several runs draw, and what the cursor walks).
    total: Vec<Pt>,
    /// The time of the first event seen (elapsed time counts from it).
    t0: Option<f64>,
    last: Option<(u64, usize, f64, f64, f64, f64)>,
    eval: Option<(usize, String, Vec<TaskMetrics>)>,
    resumed: Option<u64>,
    /// The cursor: an index into `total` (None: no cursor).
    cursor: Option<usize>,
}

impl Training {
    fn x(&self, p: &Pt, x: XAxis) -> f64 {
        match x {
            XAxis::Step => p.step,
            XAxis::Elapsed => p.time - self.t0.unwrap_or(p.time),
            XAxis::Wall => p.time,
        }
    }

    fn xy(&self, s: &[Pt], x: XAxis) -> Vec<(f64, f64)> {
        s.iter().map(|p| (self.x(p, x), p.y)).collect()
    }

    /// The values under the cursor: the point's step and times, each task's loss there, and,
    /// laid over other runs, each run's loss at the same x.
    fn cursor_line(&self, ctx: &Ctx) -> Option<Line<'static>> {
        let p = *self.total.get(self.cursor?)?;
        let mut spans = vec![Span::styled(
            format!(
                "cursor: step {:.0} · {} · {}",
                p.step,
                super::duration(p.time - self.t0.unwrap_or(p.time)),
                super::clock(p.time)
            ),
            Style::default().fg(Color::Yellow),
        )];
        if ctx.overlay.len() > 1 {
            let at = self.x(&p, ctx.x);
            for o in ctx.overlay {
                let v = o.series.first().and_then(|s| value_at(&s.points, at));
                spans.push(Span::styled(
                    format!(
                        "  {} {}",
                        o.run,
                        v.map_or("-".into(), |v| num(10f64.powf(v)))
                    ),
                    Style::default().fg(o.color),
                ));
            }
        } else {
            for (t, s) in self.tasks.iter().enumerate() {
                let pts: Vec<(f64, f64)> = s.iter().map(|q| (q.step, q.y)).collect();
                if let Some(v) = value_at(&pts, p.step) {
                    spans.push(Span::styled(
                        format!("  task{t} {}", num(10f64.powf(v))),
                        Style::default().fg(PALETTE[t % PALETTE.len()]),
                    ));
                }
            }
        }
        Some(Line::from(spans))
    }
}

/// `interpolate`, but only within the series' x range (outside it a run has no value).
fn value_at(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    (first.0..=last.0)
        .contains(&x)
        .then(|| interpolate(points, x))
        .flatten()
}

impl View for Training {
    fn title(&self) -> &str {
        "Training"
    }

    fn update(&mut self, r: &Record) -> bool {
        let Some(env) = &r.event else { return false };
        if self.t0.is_none() && env.time > 0.0 && !r.analysis {
            self.t0 = Some(env.time);
        }
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
                let pt = |l: f64| Pt {
                    step: step as f64,
                    time: env.time,
                    y: l.log10(),
                };
                for (t, l) in losses.iter().enumerate() {
                    if *l > 0.0 && l.is_finite() {
                        push_thinned(&mut self.tasks[t], pt(*l));
                    }
                }
                if *loss > 0.0 && loss.is_finite() {
                    let before = self.total.len();
                    push_thinned(&mut self.total, pt(*loss));
                    if self.total.len() < before {
                        // Thinned: the cursor's point moved to half its index.
                        self.cursor = self.cursor.map(|c| c / 2);
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

    fn key(&mut self, key: KeyCode) -> bool {
        let n = self.total.len();
        if n == 0 {
            return false;
        }
        let before = self.cursor;
        // Left from no cursor puts it on the newest point; right past the newest removes it.
        self.cursor = match (key, self.cursor) {
            (KeyCode::Left, None) => Some(n - 1),
            (KeyCode::Left, Some(c)) => Some(c.saturating_sub(1)),
            (KeyCode::Right, Some(c)) if c + 1 < n => Some(c + 1),
            (KeyCode::Right, Some(_)) => None,
            (KeyCode::Home, _) => Some(0),
            (KeyCode::End, _) => None,
            _ => return false,
        };
        self.cursor != before
    }

    fn series(&self, x: XAxis) -> Vec<Series> {
        if self.total.is_empty() {
            return Vec::new();
        }
        vec![Series {
            name: "loss".into(),
            points: self.xy(&self.total, x),
        }]
    }

    fn render(&self, area: Rect, buf: &mut Buffer, ctx: &Ctx) {
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
        if let Some(l) = self.cursor_line(ctx) {
            lines.push(l);
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
        let cursor = self
            .cursor
            .and_then(|c| self.total.get(c))
            .map(|p| self.x(p, ctx.x));
        // One run: a colour per task; several selected: a colour per run, its total loss.
        let own: Vec<Overlay>;
        let (overlay, title) = if ctx.overlay.len() > 1 {
            (ctx.overlay, "loss of each selected run (log10)")
        } else {
            own = self
                .tasks
                .iter()
                .enumerate()
                .map(|(t, s)| Overlay {
                    run: format!("task{t}"),
                    color: PALETTE[t % PALETTE.len()],
                    series: vec![Series {
                        name: format!("task{t}"),
                        points: self.xy(s, ctx.x),
                    }],
                })
                .collect();
            (own.as_slice(), "loss per task (log10)")
        };
        let right = max_x(overlay);
        overlay_chart(
            chart,
            buf,
            overlay,
            title,
            cursor,
            None,
            &|x| {
                if x == right {
                    format!("{} {}", ctx.x.name(), ctx.x.label(x))
                } else {
                    ctx.x.label(x)
                }
            },
            &|y| num(10f64.powf(y)),
        );
    }
}

/// The largest x of the series (the right end of the axis, labelled with the axis's name).
fn max_x(o: &[Overlay]) -> f64 {
    o.iter()
        .flat_map(|o| &o.series)
        .flat_map(|s| &s.points)
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max)
}
