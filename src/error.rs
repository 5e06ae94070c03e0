//! One error type for the library: every variant names the file or value at fault and what
//! was expected, so the CLI can print one clear line. Never used for bugs (those panic).

use std::path::{Path, PathBuf};

/// The library's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its content is not what it should be.
    #[error("{path}: {problem}")]
    BadFile { path: PathBuf, problem: String },
    /// A checkpoint holds a model of another shape than the run asks for (`preset` describes
    /// what was expected: a preset or a spec model).
    #[error("{path}: checkpoint does not match {preset}: {problem}")]
    ShapeMismatch {
        path: PathBuf,
        preset: String,
        problem: String,
    },
    /// An option is out of range: `name` is the option's field name (`epochs`, `n_train`),
    /// which the command line shows as its flag (`--epochs`, `--n-train`).
    #[error("{name} {problem}")]
    Param { name: &'static str, problem: String },
    /// An argument or a combination of options cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// Data handed to a routine has the wrong shape or bad values.
    #[error("{0}")]
    Data(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            op,
            source,
        }
    }
    pub fn bad_file(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
}

/// Returns early with [`Error::Param`]: `param!(epochs, "must be at least 1")`, the problem
/// formatted like `format!`.
#[macro_export]
macro_rules! param {
    ($name:ident, $($arg:tt)*) => {
        return Err($crate::Error::Param { name: stringify!($name), problem: format!($($arg)*) })
    };
}

/// Returns early with [`Error::Invalid`], formatted like `format!`.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => { return Err($crate::Error::Invalid(format!($($arg)*))) };
}
