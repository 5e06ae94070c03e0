//! Probes: the measuring instrument. Every experiment of the research notes' "Layer
//! correlations" and "Computational graph" chapters as one exact call on a [`RuntimeModel`].
//!
//! Probes only read a model and data; they must never train, change weights or write files
//! (the run layer writes the [`report::ProbeReport`]'s tables and events).

pub mod between;
pub mod census;
pub mod jacobian;
pub mod report;
pub mod subspace;
pub mod weights;

pub use crate::model::RuntimeModel;

pub use report::{probe, ProbeConfig, ProbeReport};
