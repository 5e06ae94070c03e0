//! Speed measurements of the probes, shared by `circuitscope bench jacobians` and
//! `benches/probe.rs`. Nothing here is used by the probes themselves.

use super::census::{census, CensusConfig};
use super::jacobian::{adjacent_jacobians, output_jacobians, OutputJacobians, Reuse};
use crate::data::products::ProductsConfig;
use crate::model::train::train_default_view;
use crate::model::{Preset, RuntimeModel, Trace};
use crate::Result;
use std::time::Instant;

/// Timings of all Jacobians of one model on `examples` inputs.
#[derive(Debug, Clone)]
pub struct JacobianTiming {
    pub preset: Preset,
    pub examples: usize,
    /// Jacobian matrices per example: one output-to-layer and one adjacent per layer.
    pub per_example: usize,
    /// Distinct activation patterns over all hidden layers.
    pub patterns: usize,
    /// Median seconds (forward pass included) without and with pattern reuse.
    pub seconds_off: f64,
    pub seconds_reuse: f64,
    /// Median seconds of the census on the computed Jacobians.
    pub census_seconds: f64,
}

impl JacobianTiming {
    pub fn jacobians_per_s(&self, seconds: f64) -> f64 {
        (self.examples * self.per_example) as f64 / seconds
    }
}

impl std::fmt::Display for JacobianTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {} examples ({} Jacobians each, {} distinct patterns): no reuse {:.3} s = {:.0} Jacobians/s; pattern reuse {:.3} s = {:.0} Jacobians/s; census {:.3} s",
            self.preset,
            self.examples,
            self.per_example,
            self.patterns,
            self.seconds_off,
            self.jacobians_per_s(self.seconds_off),
            self.seconds_reuse,
            self.jacobians_per_s(self.seconds_reuse),
            self.census_seconds
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times one pass of everything the Jacobian benchmarks count: the f64 forward pass of `x`,
/// every output-to-layer Jacobian and every adjacent-layer Jacobian. Returns the seconds, the
/// trace and the output-to-layer Jacobians.
pub fn all_jacobians(
    model: &RuntimeModel,
    x: &[f32],
    reuse: Reuse,
) -> Result<(f64, Trace, OutputJacobians)> {
    let t0 = Instant::now();
    let trace = model.trace_f32(x)?;
    let out = output_jacobians(model, &trace, reuse);
    let mut blocks = 0;
    for k in 0..model.layers.len() {
        blocks += adjacent_jacobians(model, &trace, k, reuse).count();
    }
    std::hint::black_box(blocks);
    Ok((t0.elapsed().as_secs_f64(), trace, out))
}

/// Trains `preset` with its defaults (seed 0), then times every Jacobian on `examples` inputs of
/// the mixed `products` distribution, `repeats` times.
pub fn jacobians(preset: Preset, examples: usize, repeats: usize) -> Result<JacobianTiming> {
    let model = train_default_view(preset)?;
    let data = ProductsConfig {
        shared: preset == Preset::ProductsShared,
        n_train: 1,
        n_val: examples,
        n_per_task: 1,
        seed: 7,
        ..Default::default()
    }
    .generate()?;
    let x = &data.val.x;
    let run = |reuse: Reuse| -> Result<(f64, usize)> {
        let (s, _, out) = all_jacobians(&model, x, reuse)?;
        Ok((s, out.per_layer[0].count()))
    };
    let (mut off, mut on, mut cen) = (vec![], vec![], vec![]);
    let mut patterns = 0;
    for _ in 0..repeats.max(1) {
        off.push(run(Reuse::Off)?.0);
        let (s, p) = run(Reuse::Patterns)?;
        on.push(s);
        patterns = p;
        let trace = model.trace_f32(x)?;
        let jac = output_jacobians(&model, &trace, Reuse::Patterns);
        let t0 = Instant::now();
        std::hint::black_box(census(&model, &trace, &jac, &CensusConfig::default()));
        cen.push(t0.elapsed().as_secs_f64());
    }
    Ok(JacobianTiming {
        preset,
        examples,
        per_example: 2 * model.layers.len(),
        patterns,
        seconds_off: median(off),
        seconds_reuse: median(on),
        census_seconds: median(cen),
    })
}
