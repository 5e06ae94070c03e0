//! Probes: the measuring instrument. Every experiment of the research notes' "Layer
//! correlations" and "Computational graph" chapters as one exact call on a [`RuntimeModel`].
//!
//! Probes only read a model and data; they must never train, change weights or write files
//! (the caller writes the [`report::ProbeReport`]'s tables).

pub mod jacobian;
pub mod linalg;

pub use crate::model::RuntimeModel;
