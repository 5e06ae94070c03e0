//! Where the dashboard's events come from: a local log followed from disk, or a remote one
//! streamed by `ssh HOST circuitscope events --follow --offsets --from OFFSET RUN`, and the
//! keyboard. Each runs on its own thread and sends [`AppEvent`]s; none touches the screen.
//!
//! A remote stream resumes from the byte offset just past the last line it delivered, so a
//! dropped connection loses no event and shows none twice. It must never write to the run it
//! reads; `--save` writes only to its own file.

use super::{AppEvent, Connection, Record, RunEvent};
use crate::runlog::follow::{Followed, Follower};
use crate::runlog::RunDir;
use crate::{Error, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `watch` follows.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A local event log.
    Local(PathBuf),
    /// `[user@]host:RUN`.
    Remote { host: String, run: String },
}

impl Target {
    /// A path that exists locally is local; otherwise `[user@]host:RUN` is remote; anything
    /// else is a local run that does not exist (an error).
    pub fn parse(s: &str) -> Result<Target> {
        let p = Path::new(s);
        if p.exists() {
            let log = if p.is_dir() {
                RunDir::open_log(p)?.events()
            } else {
                p.to_path_buf()
            };
            if !log.is_file() {
                return Err(Error::Invalid(format!(
                    "{}: no event log yet (has the run started?)",
                    log.display()
                )));
            }
            return Ok(Target::Local(log));
        }
        if let Some((host, run)) = s.split_once(':') {
            if !host.is_empty() && !host.contains('/') && !run.is_empty() {
                return Ok(Target::Remote {
                    host: host.to_string(),
                    run: run.to_string(),
                });
            }
        }
        Err(Error::Invalid(format!(
            "{s}: no such run directory (a remote run is written [user@]host:RUN)"
        )))
    }

    /// Every target `watch` was given, each with its name: a directory that is no run (no
    /// `run.json` or `zoo.json`) stands for every run below it (sorted, named by their paths),
    /// and must hold at least one. Every argument is checked before any is followed.
    pub fn expand(args: &[String]) -> Result<Vec<(Target, String)>> {
        if args.is_empty() {
            return Err(Error::Invalid("watch needs a run to follow".into()));
        }
        let mut out = Vec::new();
        for a in args {
            let p = Path::new(a);
            if p.is_dir() && !p.join("run.json").exists() && !p.join("zoo.json").exists() {
                let mut found = Vec::new();
                runs_below(p, 4, &mut found);
                if found.is_empty() {
                    return Err(Error::Invalid(format!(
                        "{a}: no run below this directory (a run has run.json or zoo.json, and an events.jsonl)"
                    )));
                }
                found.sort();
                for run in found {
                    let t = Target::Local(run.join("events.jsonl"));
                    let label = t.label();
                    out.push((t, label));
                }
                continue;
            }
            let t = Target::parse(a)?;
            let label = t.label();
            out.push((t, label));
        }
        Ok(out)
    }

    /// How the title names it.
    pub fn label(&self) -> String {
        match self {
            Target::Local(p) => p
                .parent()
                .filter(|d| {
                    p.file_name().is_some_and(|n| n == "events.jsonl") && !d.as_os_str().is_empty()
                })
                .unwrap_or(p)
                .display()
                .to_string(),
            Target::Remote { host, run } => format!("{host}:{run}"),
        }
    }
}

/// The run directories below `dir` (not below a run), down to `depth` levels.
fn runs_below(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if (p.join("run.json").exists() || p.join("zoo.json").exists())
            && p.join("events.jsonl").is_file()
        {
            found.push(p);
        } else if depth > 1 {
            runs_below(&p, depth - 1, found);
        }
    }
}

/// Where one run's source sends its events: the app's channel, tagged with the run's number.
#[derive(Clone)]
pub struct RunTx {
    tx: Sender<AppEvent>,
    run: usize,
}

impl RunTx {
    pub fn new(tx: Sender<AppEvent>, run: usize) -> RunTx {
        RunTx { tx, run }
    }

    /// False once the app is gone.
    pub fn send(&self, ev: RunEvent) -> bool {
        self.tx.send(AppEvent::Run(self.run, ev)).is_ok()
    }
}

/// A running source; [`Source::stop`] ends it (and kills its ssh processes: the run's log
/// and its analysis log).
pub struct Source {
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
    analysis_child: Arc<Mutex<Option<Child>>>,
}

impl Source {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for slot in [&self.child, &self.analysis_child] {
            if let Some(mut c) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The analysis log beside a run's own log (`RUN/analysis/events.jsonl`), for a log named
/// `events.jsonl`.
pub fn analysis_log(log: &Path) -> Option<PathBuf> {
    let dir = log.parent()?;
    (log.file_name()? == "events.jsonl" && dir.file_name()? != "analysis")
        .then(|| dir.join("analysis").join("events.jsonl"))
}

/// Appends received lines to the `--save` file.
#[derive(Clone)]
struct Saver(Option<Arc<Mutex<std::fs::File>>>);

impl Saver {
    fn create(path: Option<&Path>) -> Result<Saver> {
        Ok(Saver(match path {
            None => None,
            Some(p) => Some(Arc::new(Mutex::new(
                std::fs::File::create(p).map_err(|e| Error::io(p, "cannot create", e))?,
            ))),
        }))
    }
    fn truncate(&self) {
        if let Some(f) = &self.0 {
            let f = f.lock().unwrap_or_else(|p| p.into_inner());
            let _ = f.set_len(0);
        }
    }
    fn line(&self, line: &str) -> std::result::Result<(), String> {
        if let Some(f) = &self.0 {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            writeln!(f, "{line}").map_err(|e| format!("--save: cannot write: {e}"))?;
        }
        Ok(())
    }
}

/// Starts the source for `target` on its own thread.
pub fn start(target: &Target, opts: &super::WatchOptions, tx: RunTx) -> Result<Source> {
    let saver = Saver::create(opts.save.as_deref())?;
    let source = Source {
        stop: Arc::new(AtomicBool::new(false)),
        child: Arc::new(Mutex::new(None)),
        analysis_child: Arc::new(Mutex::new(None)),
    };
    match target.clone() {
        Target::Local(path) => {
            // Opened here so that a log that cannot be read is an error before the screen.
            let follower = Follower::open(&path, 0)?;
            let stop = source.stop.clone();
            let replay = opts.replay;
            if let Some(analysis) = analysis_log(&path) {
                let (tx, stop) = (tx.clone(), stop.clone());
                std::thread::spawn(move || local_analysis(analysis, replay, tx, stop));
            }
            std::thread::spawn(move || local(follower, replay, tx, saver, stop, false));
        }
        Target::Remote { host, run } => {
            let ssh: Vec<String> = opts.ssh.split_whitespace().map(str::to_string).collect();
            if ssh.is_empty() {
                return Err(Error::Invalid("--ssh is empty".into()));
            }
            let analysis = Remote {
                ssh: ssh.clone(),
                host: host.clone(),
                run: format!("{}/analysis/events.jsonl", run.trim_end_matches('/')),
                bin: opts.remote_bin.clone(),
                replay: opts.replay,
                analysis: true,
            };
            let remote = Remote {
                ssh,
                host,
                run,
                bin: opts.remote_bin.clone(),
                replay: opts.replay,
                analysis: false,
            };
            let (stop, child) = (source.stop.clone(), source.analysis_child.clone());
            let atx = tx.clone();
            std::thread::spawn(move || analysis.run(atx, Saver(None), stop, child));
            let stop = source.stop.clone();
            let child = source.child.clone();
            std::thread::spawn(move || remote.run(tx, saver, stop, child));
        }
    }
    Ok(source)
}

/// Reads the keyboard and the terminal's size changes on its own thread.
pub fn spawn_input(tx: Sender<AppEvent>) {
    use ratatui::crossterm::event::{self, Event, KeyEventKind};
    std::thread::spawn(move || loop {
        let ev = match event::read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => AppEvent::Key(k),
            Ok(Event::Resize(..)) => AppEvent::Resize,
            Ok(Event::Mouse(m)) => AppEvent::Mouse(m),
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(ev).is_err() {
            return;
        }
    });
}

/// Sends `ev` from a source; from the analysis log (`analysis`), records are marked
/// [`Record::in_analysis`], its connection state is not the run's (not shown at all),
/// and a rewrite of it is only a warning (the run's own views stay). False once the app is gone.
fn route(tx: &RunTx, analysis: bool, ev: RunEvent) -> bool {
    let ev = match ev {
        // The run's own stream reports a host or run that cannot be reached; the analysis
        // stream, which fails with it, stays quiet.
        RunEvent::Connection(_) if analysis => return true,
        RunEvent::Warning(w) if analysis => RunEvent::Warning(format!("analysis log: {w}")),
        RunEvent::Record(r) if analysis => RunEvent::Record(r.in_analysis()),
        RunEvent::Reset(why) if analysis => RunEvent::Warning(format!(
            "analysis log: {why}; its new events follow the old ones"
        )),
        ev => ev,
    };
    tx.send(ev)
}

/// Follows a local log: the run's own, or (`analysis`) its analysis log, whose records are
/// marked [`Record::in_analysis`], whose connection state is not the run's, and whose rewrite
/// is only a warning (the run's own views stay).
fn local(
    mut follower: Follower,
    replay: bool,
    tx: RunTx,
    saver: Saver,
    stop: Arc<AtomicBool>,
    analysis: bool,
) {
    let send = |ev: RunEvent| route(&tx, analysis, ev);
    if !send(RunEvent::Connection(if replay {
        Connection::Connecting { attempt: 0 }
    } else {
        Connection::Live
    })) {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        let items = match follower.poll() {
            Ok(items) => items,
            Err(e) => {
                if !send(RunEvent::Warning(e.to_string())) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        for item in items {
            let ev = match item {
                // The follower parsed the line once; the record keeps its typed event.
                Followed::Event {
                    end, line, event, ..
                } => {
                    if let Err(e) = saver.line(&line) {
                        let _ = send(RunEvent::Warning(e));
                    }
                    RunEvent::Record(Record::known(event, line, end))
                }
                // A kind this build does not know is still a record (a view may know it); a
                // line that is no event at all is reported and skipped.
                Followed::Garbage {
                    offset, end, line, ..
                } => match Record::parse(&line, end) {
                    Ok(r) => {
                        let _ = saver.line(&line);
                        RunEvent::Record(r)
                    }
                    Err(e) => RunEvent::Warning(format!("byte {offset}: skipped a bad line: {e}")),
                },
                Followed::Truncated { was, now } => {
                    saver.truncate();
                    RunEvent::Reset(format!(
                        "the log shrank from {was} to {now} bytes; reading it again from the start"
                    ))
                }
                Followed::Replaced => {
                    saver.truncate();
                    RunEvent::Reset(
                        "the log was replaced; reading the new one from the start".into(),
                    )
                }
                Followed::Rewritten => {
                    saver.truncate();
                    RunEvent::Reset(
                        "the log was rewritten in place; reading it again from the start".into(),
                    )
                }
            };
            if !send(ev) {
                return;
            }
        }
        if replay {
            let _ = send(RunEvent::Connection(Connection::Replayed));
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Follows the run's analysis log once it exists (it appears when `analyze` first runs).
/// Nothing from it is saved with `--save`, which copies the run's own log.
fn local_analysis(path: PathBuf, replay: bool, tx: RunTx, stop: Arc<AtomicBool>) {
    let follower = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if path.is_file() {
            match Follower::open(&path, 0) {
                Ok(f) => break f,
                Err(e) => {
                    let _ = tx.send(RunEvent::Warning(format!("analysis log: {e}")));
                    return;
                }
            }
        }
        if replay {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    local(follower, replay, tx, Saver(None), stop, true);
}

/// A remote log read through ssh: the run's own (`analysis: false`), or its analysis log,
/// which may not exist yet (`events --wait`) and whose connection state is not the run's.
struct Remote {
    ssh: Vec<String>,
    host: String,
    run: String,
    bin: String,
    replay: bool,
    analysis: bool,
}

/// Quotes `s` for a POSIX shell (the remote side of ssh runs its command through one).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What one line of `events --offsets` output holds.
pub fn parse_offset_line(line: &str) -> std::result::Result<(u64, &str), String> {
    let (end, json) = line.split_once('\t').ok_or_else(|| {
        format!(
            "not an `OFFSET<tab>EVENT` line: {}",
            crate::tui::views::clip(line, 60)
        )
    })?;
    let end: u64 = end
        .parse()
        .map_err(|_| format!("bad offset `{}`", crate::tui::views::clip(end, 20)))?;
    Ok((end, json))
}

impl Remote {
    /// The remote command line for a stream from `offset`.
    fn command(&self, offset: u64) -> String {
        format!(
            "{} events{}{} --offsets --from {offset} {}",
            shell_quote(&self.bin),
            if self.replay { "" } else { " --follow" },
            if self.analysis { " --wait" } else { "" },
            shell_quote(&self.run)
        )
    }

    fn run(self, tx: RunTx, saver: Saver, stop: Arc<AtomicBool>, slot: Arc<Mutex<Option<Child>>>) {
        let analysis = self.analysis;
        let send = |ev: RunEvent| route(&tx, analysis, ev);
        let mut offset = 0u64;
        let mut attempt = 0u32;
        while !stop.load(Ordering::Relaxed) {
            if !send(RunEvent::Connection(Connection::Connecting { attempt })) {
                return;
            }
            let mut cmd = Command::new(&self.ssh[0]);
            // ssh must never prompt over the dashboard (a host key, a password): the prompt
            // would draw over the screen and split the keys between ssh and the app.
            if !self.ssh.iter().any(|a| a.contains("BatchMode")) {
                cmd.args(["-o", "BatchMode=yes"]);
            }
            cmd.args(&self.ssh[1..])
                .arg(&self.host)
                .arg(self.command(offset))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = send(RunEvent::Connection(Connection::Failed(format!(
                        "cannot run `{}`: {e}",
                        self.ssh[0]
                    ))));
                    return;
                }
            };
            let stdout = child.stdout.take().expect("piped");
            let stderr = child.stderr.take().expect("piped");
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
            let last_err = Arc::new(Mutex::new(String::new()));
            let err_thread = {
                let quiet = self.analysis;
                let last_err = last_err.clone();
                let tx = tx.clone();
                let host = self.host.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                        let line = line.trim().to_string();
                        if line.is_empty() {
                            continue;
                        }
                        // ssh's warnings ("Permanently added ... to the list of known hosts")
                        // are shown but are never the reason a connection ended.
                        if !line.starts_with("Warning: Permanently added") {
                            *last_err.lock().unwrap_or_else(|p| p.into_inner()) = line.clone();
                        }
                        if !quiet {
                            let _ = tx.send(RunEvent::Warning(format!("{host}: {line}")));
                        }
                    }
                })
            };
            let mut live = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !live {
                    live = true;
                    attempt = 0;
                    if !send(RunEvent::Connection(if self.replay {
                        Connection::Connecting { attempt: 0 }
                    } else {
                        Connection::Live
                    })) {
                        return;
                    }
                }
                let ev = match parse_offset_line(&line) {
                    // A line at or before the offset was delivered before a reconnection.
                    Ok((end, _)) if end <= offset => continue,
                    Ok((end, json)) => match Record::parse(json, end) {
                        Ok(r) => {
                            offset = end;
                            if let Err(e) = saver.line(json) {
                                let _ = tx.send(RunEvent::Warning(e));
                            }
                            RunEvent::Record(r)
                        }
                        Err(e) => {
                            offset = end;
                            RunEvent::Warning(format!("skipped a line: {e}"))
                        }
                    },
                    Err(e) => RunEvent::Warning(e),
                };
                if !send(ev) {
                    return;
                }
            }
            let status = slot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .map(|mut c| c.wait());
            let _ = err_thread.join();
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let reason = last_err.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if reason.contains("Host key verification failed") {
                // Retrying cannot help: the user must accept the key once, outside the
                // dashboard.
                let _ = send(RunEvent::Connection(Connection::Failed(format!(
                    "the host key of {} is not known (ssh runs with BatchMode, so it never prompts); accept it once with `{} {} true`, then start watch again",
                    self.host,
                    self.ssh.join(" "),
                    self.host
                ))));
                return;
            }
            match status {
                Some(Ok(s)) if s.success() => {
                    let _ = send(RunEvent::Connection(if self.replay {
                        Connection::Replayed
                    } else {
                        Connection::Ended
                    }));
                    return;
                }
                // 255 is ssh's own failure (no route, refused, dropped); no code is a signal.
                Some(Ok(s)) if s.code().is_some_and(|c| c != 255) => {
                    let _ = send(RunEvent::Connection(Connection::Failed(
                        if reason.is_empty() {
                            format!("the remote command exited with {s}")
                        } else {
                            reason
                        },
                    )));
                    return;
                }
                _ => {}
            }
            attempt += 1;
            let wait = (1u64 << (attempt - 1).min(4)).min(10);
            if !send(RunEvent::Connection(Connection::Lost {
                reason: if reason.is_empty() {
                    "the connection closed".into()
                } else {
                    reason
                },
                retry_in_s: wait,
            })) {
                return;
            }
            for _ in 0..wait * 10 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
