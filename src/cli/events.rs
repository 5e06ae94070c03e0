//! `circuitscope events`: a run's event log as JSON lines, optionally followed live.

use circuitscope::runlog::follow::{Followed, Follower};
use circuitscope::runlog::{Event, RunDir};
use circuitscope::{Error, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The run directory (or an events.jsonl file).
    pub run: PathBuf,
    /// Keep reading as the log grows; exit at run_end.
    #[arg(long)]
    pub follow: bool,
    /// Start at this byte offset of events.jsonl.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Prefix each line with the byte offset just past it and a tab, for resuming a stream.
    #[arg(long)]
    pub offsets: bool,
    /// Wait for a log that does not exist yet inside an existing run directory (e.g.
    /// RUN/analysis/events.jsonl before analyze first runs) instead of refusing it.
    #[arg(long)]
    pub wait: bool,
}

/// Whether standard output is a pipe or socket whose reader has closed it (`poll` reports an
/// error or a hang-up on it). A terminal or a file never reads as closed.
fn stdout_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout; poll only writes `revents`.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Whether `path` lies inside a run (or zoo) directory that exists.
fn inside_a_run(path: &std::path::Path) -> bool {
    path.ancestors()
        .skip(1)
        .any(|d| d.join("run.json").is_file() || d.join("zoo.json").is_file())
}

pub fn run(a: EventsArgs) -> Result<()> {
    while a.wait && !a.run.exists() && inside_a_run(&a.run) {
        if stdout_closed() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    if !a.run.exists() {
        return Err(Error::Invalid(format!(
            "{}: no such run directory or event log",
            a.run.display()
        )));
    }
    let path = if a.run.is_dir() {
        RunDir::open_log(&a.run)?.events()
    } else {
        a.run.clone()
    };
    if !path.exists() {
        return Err(Error::Invalid(format!(
            "{}: no event log (is this a run directory?)",
            path.display()
        )));
    }
    let mut follower = Follower::open(&path, a.from)?;
    let stdout = std::io::stdout();
    // A log holds one segment per stage (train, probe, graph, ...), each ending in `run_end`;
    // a follower stops at a `run_end` only once no new segment starts within this grace time.
    const GRACE: std::time::Duration = std::time::Duration::from_millis(1500);
    let mut ended: Option<std::time::Instant> = None;
    let (mut printed, mut skipped) = (0usize, 0usize);
    loop {
        let items = follower.poll()?;
        let mut out = stdout.lock();
        for item in items {
            match item {
                Followed::Event { end, line, event, .. } => {
                    printed += 1;
                    let w = if a.offsets { writeln!(out, "{end}\t{line}") } else { writeln!(out, "{line}") };
                    w.and_then(|_| out.flush()).map_err(|e| Error::io("<stdout>", "cannot write", e))?;
                    ended = matches!(event.event, Event::RunEnd { .. })
                        .then(std::time::Instant::now);
                }
                Followed::Garbage { offset, error, .. } => {
                    skipped += 1;
                    eprintln!("circuitscope: {}: byte {offset}: skipped a bad line: {error}", path.display())
                }
                Followed::Truncated { was, now } => eprintln!("circuitscope: {}: log shrank from {was} to {now} bytes; reading again from the start", path.display()),
                Followed::Replaced => eprintln!("circuitscope: {}: log was replaced; reading the new file from the start", path.display()),
                Followed::Rewritten => eprintln!("circuitscope: {}: log was rewritten in place; reading it again from the start", path.display()),
            }
        }
        // The reader went away (the dashboard quit, its ssh session closed): nothing will read
        // what follows, so a follower must not outlive it, waiting on a log that may never grow.
        if a.follow && stdout_closed() {
            return Ok(());
        }
        if !a.follow || ended.is_some_and(|t| t.elapsed() >= GRACE) {
            if printed == 0 && skipped > 0 {
                return Err(Error::bad_file(
                    &path,
                    format!(
                        "not an event log: none of its {skipped} lines is a circuitscope event"
                    ),
                ));
            }
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
