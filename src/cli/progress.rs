//! Progress on stderr: an indicatif bar on a terminal, plain lines otherwise.

use circuitscope::runlog::train::Update;
use std::io::IsTerminal;

/// A bar of total items with template's layout on a terminal; hidden (drawing nothing)
/// when stderr is not one.
pub fn bar(total: u64, template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(total);
    b.set_style(indicatif::ProgressStyle::with_template(template).expect("template"));
    b
}

/// Training progress: a bar of steps on a terminal, one line per epoch always.
pub struct Reporter {
    bar: Option<indicatif::ProgressBar>,
}

impl Reporter {
    pub fn new() -> Reporter {
        Reporter { bar: None }
    }

    pub fn update(&mut self, u: Update) {
        match u {
            Update::Step { step, total, loss } => {
                let bar = self.bar.get_or_insert_with(|| {
                    bar(
                        total,
                        "{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}",
                    )
                });
                bar.set_position(step);
                if step % 10 == 0 {
                    bar.set_message(format!("loss {loss:.3e}"));
                }
            }
            Update::Epoch { epoch, epochs, val } => {
                let figs: Vec<String> = val
                    .iter()
                    .map(|t| match (t.r2, t.accuracy) {
                        (Some(r2), _) => format!("{} R² {r2:.4}", t.task),
                        (_, Some(a)) => format!("{} acc {:.2}%", t.task, a * 100.0),
                        _ => format!("{} loss {:.3e}", t.task, t.loss),
                    })
                    .collect();
                let line = format!("epoch {}/{epochs}: {}", epoch + 1, figs.join(", "));
                match &self.bar {
                    Some(b) if !b.is_hidden() => b.println(line),
                    _ => eprintln!("{line}"),
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
