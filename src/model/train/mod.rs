//! Training a preset: its [`TrainConfig`], the [`Trainer`] loop (with exact resume from a
//! checkpoint), per-task [`metrics`](mod@metrics), and [`fit_params`] for zoos of small models trained in
//! memory. Training reports through a [`TrainSink`] and returns parameters; it never touches a
//! file or writes an event — the run layer (`runlog`) does both.

pub mod config;
pub mod fit;
pub mod metrics;
pub mod trainer;

pub use config::{check_settings, Schedule, TrainConfig, POLY_MEMBERS};
pub use fit::fit_params;
pub use metrics::{evaluate, metrics, TaskMetrics};
pub use trainer::{EpochReport, Plan, StepReport, TrainSink, Trained, Trainer};

/// Runs `f` on a pool of one thread. dfdx splits every matmul across the current rayon pool;
/// for these small layers the split costs more than it saves (products64 at batch 256 trains
/// about twice as fast on one thread as on two, BENCHMARKS.md), and the results are bitwise the
/// same. Many models at once (zoos) are parallel across models instead.
pub fn one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}
