//! circuitscope turns small trained neural networks into computational graphs a person can
//! read, test and trust.
//!
//! The modules follow the data flow (ARCHITECTURE.md): [`data`] makes data sets, [`model`]
//! trains dfdx MLPs and exports the [`model::RuntimeModel`] view that every later stage reads,
//! [`probe`], [`graph`], [`eval`] and [`embed`] are pure functions of a model, data and checked
//! options ([`params::Valid`]), with [`numeric`] under them all. [`runlog`], the run layer,
//! loads runs from disk, calls the stages and stores their results and events; [`tui`] and
//! [`bench`](mod@bench) sit on top. The `circuitscope` binary (`src/cli/`) only parses and prints.
//!
//! ```
//! use circuitscope::data::products::ProductsConfig;
//! let data = ProductsConfig { n_train: 8, ..Default::default() }.generate().unwrap();
//! let row = data.train.input(0);
//! // (a, b, c, d) -> (a*b, c*d)
//! assert_eq!(data.train.target(0), &[row[0] * row[1], row[2] * row[3]]);
//! ```

pub mod autodiff;
pub mod bench;
pub mod data;
pub mod embed;
mod error;
pub mod eval;
pub mod graph;
pub mod model;
pub mod numeric;
pub mod params;
pub mod probe;
pub mod runlog;
pub mod tui;

pub use error::{Error, Result};
/// The polars this crate builds its tables with (for users and the notebook kernel).
pub use polars;
