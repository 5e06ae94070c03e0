//! The append-only event log and the segments every stage writes into it.

use super::dir::RunDir;
use super::events::{Envelope, Event, RunStatus};
use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
