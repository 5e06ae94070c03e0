//! Following a growing event log from a byte offset, as `tail -f` does, but by whole lines.
//!
//! The [`Follower`] never dies on what it reads: a partial last line waits for its newline, a
//! garbage line is reported as [`Followed::Garbage`] and skipped, a file that shrinks below the
//! offset, is replaced by another file or is rewritten in place (the bytes already read — the
//! first and the last 4 KiB before the offset — changed) is reported and read again from the
//! start. It only
//! reads: it must never write to the log it follows.

use super::Envelope;
use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What one poll of the log found.
#[derive(Debug, Clone, PartialEq)]
pub enum Followed {
    /// A valid event; `offset..end` are the bytes of its line (newline included).
    Event {
        offset: u64,
        end: u64,
        line: String,
        event: Envelope,
    },
    /// A line that is not a valid event, with the reason.
    Garbage {
        offset: u64,
        end: u64,
        line: String,
        error: String,
    },
    /// The file became shorter than what was already read; reading restarts at 0.
    Truncated { was: u64, now: u64 },
    /// The path now names another file; reading restarts at 0.
    Replaced,
    /// The same file was rewritten in place (the bytes already read changed, though the file
    /// is not shorter); reading restarts at 0.
    Rewritten,
}

/// Bytes of the log's start, and of the stretch just before the offset, that every poll checks
/// are still what was read.
const CHECK: u64 = 4096;

/// Reads complete lines of a log from a byte offset onwards.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: File,
    ino: u64,
    offset: u64,
    /// The first bytes of the log read so far (up to [`CHECK`]).
    head: Vec<u8>,
    /// The last bytes read before `offset` (up to [`CHECK`]), and where they start.
    tail: (u64, Vec<u8>),
}

impl Follower {
    /// Opens `path` at byte `from`, which must not lie past the end of the file.
    pub fn open(path: &Path, from: u64) -> Result<Follower> {
        let file = File::open(path).map_err(|e| Error::io(path, "cannot open event log", e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(path, "cannot stat", e))?;
        if from > meta.len() {
            return Err(Error::Invalid(format!(
                "{}: --from {from} is past the end of the log ({} bytes)",
                path.display(),
                meta.len()
            )));
        }
        let mut f = Follower {
            path: path.to_path_buf(),
            file,
            ino: meta.ino(),
            offset: from,
            head: Vec::new(),
            tail: (from, Vec::new()),
        };
        f.remember()?;
        Ok(f)
    }

    /// Reads `len` bytes at `at`.
    fn read_at(&mut self, at: u64, len: u64) -> Result<Vec<u8>> {
        self.file
            .seek(SeekFrom::Start(at))
            .map_err(|e| Error::io(&self.path, "cannot seek", e))?;
        let mut buf = Vec::with_capacity(len as usize);
        (&mut self.file)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&self.path, "cannot read", e))?;
        Ok(buf)
    }

    /// Keeps the head and the tail of what lies before the offset, to check them later.
    fn remember(&mut self) -> Result<()> {
        self.head = self.read_at(0, self.offset.min(CHECK))?;
        let start = self.offset.saturating_sub(CHECK);
        self.tail = (start, self.read_at(start, self.offset - start)?);
        Ok(())
    }

    /// Whether the bytes already read are still there: a log rewritten in place with other
    /// content (as long or longer) changes them.
    fn unchanged(&mut self) -> Result<bool> {
        let head = self.read_at(0, self.head.len() as u64)?;
        let (start, tail) = (self.tail.0, self.tail.1.len() as u64);
        Ok(head == self.head && self.read_at(start, tail)? == self.tail.1)
    }

    /// The offset just past the last complete line returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Returns whatever complete lines were appended since the last poll.
    pub fn poll(&mut self) -> Result<Vec<Followed>> {
        let mut out = Vec::new();
        // Replaced: the path names a different inode than the one we hold.
        if let Ok(meta) = std::fs::metadata(&self.path) {
            if meta.ino() != self.ino {
                if let Ok(f) = File::open(&self.path) {
                    self.file = f;
                    self.ino = meta.ino();
                    self.offset = 0;
                    self.remember()?;
                    out.push(Followed::Replaced);
                }
            }
        }
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io(&self.path, "cannot stat", e))?
            .len();
        if len < self.offset {
            out.push(Followed::Truncated {
                was: self.offset,
                now: len,
            });
            self.offset = 0;
            self.remember()?;
        } else if self.offset > 0 && !self.unchanged()? {
            out.push(Followed::Rewritten);
            self.offset = 0;
            self.remember()?;
        }
        if len == self.offset {
            return Ok(out);
        }
        self.file
            .seek(SeekFrom::Start(self.offset))
            .map_err(|e| Error::io(&self.path, "cannot seek", e))?;
        let mut buf = Vec::with_capacity((len - self.offset) as usize);
        (&mut self.file)
            .take(len - self.offset)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&self.path, "cannot read", e))?;
        let mut start = 0usize;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let bytes = &buf[start..start + nl];
            let offset = self.offset + start as u64;
            let end = offset + nl as u64 + 1;
            start += nl + 1;
            let line = String::from_utf8_lossy(bytes).into_owned();
            if line.trim().is_empty() {
                continue;
            }
            match Envelope::parse(&line) {
                Ok(event) => out.push(Followed::Event {
                    offset,
                    end,
                    line,
                    event,
                }),
                Err(error) => out.push(Followed::Garbage {
                    offset,
                    end,
                    line,
                    error,
                }),
            }
        }
        if start > 0 {
            self.offset += start as u64;
            self.remember()?;
        }
        Ok(out)
    }
}

/// Reads every complete event of a finished or growing log once, keeping only valid events.
pub fn read_all(path: &Path) -> Result<Vec<Envelope>> {
    let mut f = Follower::open(path, 0)?;
    Ok(f.poll()?
        .into_iter()
        .filter_map(|x| match x {
            Followed::Event { event, .. } => Some(event),
            _ => None,
        })
        .collect())
}
