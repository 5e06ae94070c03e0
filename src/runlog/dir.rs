//! The run directory: its layout (`run.json`, `events.jsonl`, `checkpoints/`,
//! `model.safetensors`, `tables/`) and atomic writes (temporary file, then rename), so a reader
//! or a crash never sees half a file.

use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes `value` as pretty JSON to `path`, atomically (every `run.json` and manifest).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_atomic(
        path,
        serde_json::to_string_pretty(value)
            .expect("serialises")
            .as_bytes(),
    )
}

/// Writes `path` atomically by streaming: `body` writes into a buffered temporary file beside
/// it, which is synced and renamed into place only if everything succeeded.
pub fn write_atomic_with(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
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
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, "cannot create", e))?;
        let mut w = std::io::BufWriter::new(f);
        body(&mut w)
            .and_then(|_| w.flush())
            .map_err(|e| Error::io(path, "cannot write", e))?;
        w.get_ref()
            .sync_all()
            .map_err(|e| Error::io(path, "cannot sync", e))?;
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
