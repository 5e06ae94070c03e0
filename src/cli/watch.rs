//! `circuitscope watch`: the terminal dashboard on a local or remote run.

use circuitscope::tui::{watch, WatchOptions};
use circuitscope::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Runs to follow: a run directory (or zoo, or events.jsonl), a directory holding runs
    /// (every run below it), or [user@]host:RUN for a remote run; several are shown side by
    /// side (a run list, overlaid curves).
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<String>,
    /// The ssh command for a remote run, split on whitespace.
    #[arg(long, default_value = "ssh")]
    pub ssh: String,
    /// The circuitscope binary on the remote machine.
    #[arg(long, default_value = "circuitscope")]
    pub remote_bin: String,
    /// Show a finished run's log once instead of following it.
    #[arg(long)]
    pub replay: bool,
    /// Also write every received event line to FILE (a local copy of the log).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Mark a running run stale after this many seconds without an event.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub stale_after: u64,
    /// Leave the mouse to the terminal (its own text selection) instead of clicks and the
    /// wheel in the dashboard.
    #[arg(long)]
    pub no_mouse: bool,
}

pub fn run(a: WatchArgs) -> Result<()> {
    watch(WatchOptions {
        targets: a.runs,
        ssh: a.ssh,
        remote_bin: a.remote_bin,
        replay: a.replay,
        save: a.save,
        stale_after: a.stale_after,
        mouse: !a.no_mouse,
    })
}
