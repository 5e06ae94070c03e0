//! Runs on disk: the run directory, its append-only event log and a follower that tails it.
//!
//! - [`events`]: the whole event vocabulary, one serde enum with a versioned envelope.
//! - [`EventLog`]: appends one JSON line per event, flushed per event.
//! - [`follow::Follower`]: reads a growing log from a byte offset, live.
//! - [`RunDir`]: `run.json`, checkpoints and tables, every file but the log written atomically.
//!
//! This module stores and reads; it must never compute results or know about the terminal.

pub mod events;
pub mod follow;

pub use events::{Envelope, Event, RunStatus, SCHEMA_VERSION};

use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create directory", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, "cannot create", e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io(&tmp, "cannot write", e))?;
        f.sync_all()
            .map_err(|e| Error::io(&tmp, "cannot sync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "cannot rename into place", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A run's directory: `run.json`, `events.jsonl`, `checkpoints/`, `model.safetensors`,
/// `tables/`.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// Creates a new run directory; refuses one that already holds a run.
    pub fn create(root: &Path) -> Result<RunDir> {
        let run = RunDir {
            root: root.to_path_buf(),
        };
        if run.run_json().exists() || run.events().exists() {
            return Err(Error::Invalid(format!(
                "{} already holds a run; pass --resume to continue it or choose another --out",
                root.display()
            )));
        }
        std::fs::create_dir_all(run.checkpoints())
            .map_err(|e| Error::io(run.checkpoints(), "cannot create directory", e))?;
        Ok(run)
    }

    /// Opens an existing run directory.
    pub fn open(root: &Path) -> Result<RunDir> {
        let run = RunDir {
            root: root.to_path_buf(),
        };
        if !root.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: no such run directory",
                root.display()
            )));
        }
        if !run.run_json().exists() {
            return Err(Error::bad_file(
                run.run_json(),
                "missing: this is not a circuitscope run directory",
            ));
        }
        Ok(run)
    }

    /// Opens any directory with an event log that circuitscope wrote: a run (`run.json`) or
    /// a zoo (`zoo.json`, whose log holds the zoo's and its embedders' events).
    pub fn open_log(root: &Path) -> Result<RunDir> {
        if root.join("zoo.json").exists() {
            return Ok(RunDir {
                root: root.to_path_buf(),
            });
        }
        RunDir::open(root)
    }

    pub fn run_json(&self) -> PathBuf {
        self.root.join("run.json")
    }
    pub fn events(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn checkpoint(&self, step: u64) -> PathBuf {
        self.checkpoints().join(format!("step-{step}.safetensors"))
    }
    pub fn model(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }
    pub fn table(&self, name: &str) -> PathBuf {
        self.root.join("tables").join(format!("{name}.parquet"))
    }

    /// Every checkpoint as `(step, path)`, by increasing step (none when the folder is absent).
    pub fn checkpoint_steps(&self) -> Result<Vec<(u64, PathBuf)>> {
        let dir = self.checkpoints();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io(&dir, "cannot list", e)),
        };
        let mut steps: Vec<(u64, PathBuf)> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let step = name
                    .strip_prefix("step-")?
                    .strip_suffix(".safetensors")?
                    .parse()
                    .ok()?;
                Some((step, entry.path()))
            })
            .collect();
        steps.sort();
        Ok(steps)
    }

    /// The newest checkpoint by step number, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, PathBuf)>> {
        Ok(self.checkpoint_steps()?.pop())
    }

    /// Writes a polars DataFrame as `tables/<name>.parquet`, atomically.
    pub fn write_table(&self, name: &str, df: &mut polars::prelude::DataFrame) -> Result<PathBuf> {
        use polars::prelude::ParquetWriter;
        let path = self.table(name);
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf)
            .finish(df)
            .map_err(|e| Error::bad_file(&path, format!("cannot encode table: {e}")))?;
        write_atomic(&path, &buf)?;
        Ok(path)
    }

    /// Reads a table written by [`RunDir::write_table`].
    pub fn read_table(&self, name: &str) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::{ParquetReader, SerReader};
        let path = self.table(name);
        let f = File::open(&path).map_err(|e| Error::io(&path, "cannot open", e))?;
        ParquetReader::new(f)
            .finish()
            .map_err(|e| Error::bad_file(&path, format!("not a readable Parquet table: {e}")))
    }
}

/// The append-only event log: one JSON object per line, each written with a single `write`
/// call and flushed, so a follower or a crash sees whole lines or one partial last line.
pub struct EventLog {
    path: PathBuf,
    file: File,
}

impl EventLog {
    /// Opens (creating if needed) the log for appending. A partial last line left by a crash is
    /// closed with a newline so the next event starts on a line of its own.
    pub fn open(path: &Path) -> Result<EventLog> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, "cannot open for appending", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "cannot stat", e))?
            .len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| Error::io(path, "cannot read", e))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .map_err(|e| Error::io(path, "cannot write", e))?;
            }
        }
        Ok(EventLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one event stamped with the current time.
    pub fn emit(&mut self, step: Option<u64>, event: Event) -> Result<()> {
        let env = Envelope::now(step, event);
        let mut line = serde_json::to_vec(&env).expect("events serialise");
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| Error::io(&self.path, "cannot append event", e))?;
        self.file
            .flush()
            .map_err(|e| Error::io(&self.path, "cannot flush", e))
    }
}

/// Runs one stage of work on a run as a *segment* of its log: `run_start {command}`, whatever
/// events `body` writes, then `run_end` — completed, or failed with the error's message.
pub fn segment<T>(
    run: &RunDir,
    command: &str,
    preset: Option<&str>,
    config: serde_json::Value,
    body: impl FnOnce(&mut EventLog) -> Result<T>,
) -> Result<T> {
    let mut log = EventLog::open(&run.events())?;
    log.emit(
        None,
        Event::RunStart {
            command: command.into(),
            preset: preset.map(str::to_string),
            config,
        },
    )?;
    match body(&mut log) {
        Ok(v) => {
            log.emit(
                None,
                Event::RunEnd {
                    status: RunStatus::Completed,
                    message: None,
                },
            )?;
            Ok(v)
        }
        Err(e) => {
            log.emit(
                None,
                Event::RunEnd {
                    status: RunStatus::Failed,
                    message: Some(e.to_string()),
                },
            )?;
            Err(e)
        }
    }
}
