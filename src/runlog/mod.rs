//! The run layer: everything that touches a run's files. Stages (`probe`, `graph`, `eval`,
//! `embed`) are pure functions of a model, data and options; this module loads what they need
//! from a run directory, calls them, and stores what they return as tables, graph files and
//! events.
//!
//! - [`dir::RunDir`]: the directory's layout; [`write_atomic`] for every file but the log.
//! - [`info::RunInfo`]: `run.json`; [`load::LoadedRun`]: a run's model and data, loaded.
//! - [`events`]: the whole event vocabulary, one serde enum with a versioned envelope.
//! - [`log::EventLog`]: appends one JSON line per event; [`segment`] wraps a stage's events.
//! - [`follow::Follower`]: reads a growing log from a byte offset, live.
//! - [`analyze`]: live analysis of a run's checkpoints into `analysis/events.jsonl`.
//! - [`train`], [`probe`], [`graph`], [`eval`], [`atypical`], [`zoo`], [`embed`]: one file per
//!   command's work on a run, each reading its inputs, calling its stage and writing results.
//!
//! This module computes nothing itself: every figure comes from a stage. It must never be
//! imported by a stage.

pub mod analyze;
pub mod atypical;
pub mod dir;
pub mod discover;
pub mod embed;
pub mod eval;
pub mod events;
pub mod follow;
pub mod graph;
pub mod import;
pub mod info;
pub mod load;
pub mod log;
pub mod preset;
pub mod probe;
pub mod spec;
pub mod spec_train;
pub mod train;
pub mod zoo;

pub use dir::{write_atomic, RunDir};
pub use events::{Envelope, Event, RunStatus, SCHEMA_VERSION};
pub use info::RunInfo;
pub use load::LoadedRun;
pub use log::{segment, EventLog};
