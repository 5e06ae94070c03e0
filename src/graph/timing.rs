//! Speed of IG on edges, shared by `circuitscope bench ig` and `benches/graph.rs`. Nothing
//! here is used to build graphs.

use super::ig::{edge_attributions_rows, Mode, Target};
use crate::data::products::ProductsConfig;
use crate::model::train::train_default_view;
use crate::model::Preset;
use crate::Result;
use std::time::Instant;

/// Timings of edge attributions over the hidden-layer pairs of one model.
#[derive(Debug, Clone)]
pub struct IgTiming {
    pub preset: Preset,
    pub examples: usize,
    /// Edges in the measured layer pairs.
    pub edges: usize,
    pub exact_seconds: f64,
    pub riemann_steps: usize,
    pub riemann_seconds: f64,
    /// Largest |Riemann − exact| over all edge attributions, and the largest |exact| for scale.
    pub riemann_max_error: f64,
    pub max_attribution: f64,
}

impl IgTiming {
    /// Edge attributions (edges x examples) per second.
    pub fn per_s(&self, seconds: f64) -> f64 {
        (self.edges * self.examples) as f64 / seconds
    }
}

impl std::fmt::Display for IgTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} hidden-layer pairs, {} edges x {} examples, zero baseline, target output 0: exact {:.3} s = {:.0} edge attributions/s; Riemann {} steps {:.3} s = {:.0}/s, max error {:.2e} (largest attribution {:.2e})",
            self.preset,
            self.edges,
            self.examples,
            self.exact_seconds,
            self.per_s(self.exact_seconds),
            self.riemann_steps,
            self.riemann_seconds,
            self.per_s(self.riemann_seconds),
            self.riemann_max_error,
            self.max_attribution
        )
    }
}

/// Trains `preset` with its defaults (seed 0), then attributes every edge of the hidden-layer
/// pairs (`h_1 → h_2`, …) for `examples` mixed `products` inputs, zero baseline, target the
/// first output, exactly and with a `steps`-step midpoint Riemann sum.
pub fn ig(preset: Preset, examples: usize, steps: usize) -> Result<IgTiming> {
    let model = train_default_view(preset)?;
    let data = ProductsConfig {
        n_train: 1,
        n_val: examples,
        n_per_task: 1,
        seed: 11,
        ..Default::default()
    }
    .generate()?;
    let trace = model.trace_f32(&data.val.x)?;
    let target = Target::Outputs(vec![0]);
    let pairs: Vec<usize> = (1..model.layers.len() - 1).collect();
    let edges = pairs
        .iter()
        .map(|&l| model.layers[l].d_in * model.layers[l].d_out)
        .sum();
    let run = |mode: Mode| -> Result<(f64, Vec<f64>)> {
        let t0 = Instant::now();
        let mut all = Vec::new();
        for &l in &pairs {
            let zero = vec![0.0; model.layers[l].d_in];
            all.extend(edge_attributions_rows(
                &model,
                l,
                &trace.post[l - 1],
                &zero,
                &target,
                mode,
            )?);
        }
        Ok((t0.elapsed().as_secs_f64(), all))
    };
    let (exact_seconds, exact) = run(Mode::Exact)?;
    let (riemann_seconds, approx) = run(Mode::Riemann(steps))?;
    let riemann_max_error = exact
        .iter()
        .zip(&approx)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let max_attribution = exact.iter().map(|a| a.abs()).fold(0.0, f64::max);
    Ok(IgTiming {
        preset,
        examples,
        edges,
        exact_seconds,
        riemann_steps: steps,
        riemann_seconds,
        riemann_max_error,
        max_attribution,
    })
}
