//! Speed measurements shared by `circuitscope bench` and `benches/`: IG on edges, all
//! Jacobians and the census, and training throughput. Nothing here is used by the stages.

use crate::data::products::ProductsConfig;
use crate::graph::ig::{edge_attributions, Mode, Target};
use crate::model::net::Engine;
use crate::model::train::TrainConfig;
use crate::model::{Preset, RuntimeModel, Trace};
use crate::probe::census::{census, CensusConfig};
use crate::probe::jacobian::{adjacent_jacobians, output_jacobians, OutputJacobians, Reuse};
use crate::runlog::preset::preset_data;
use crate::runlog::train::{train, train_default_view};
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
            all.extend(edge_attributions(
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

/// Training throughput of a preset, measured by full training runs in a temporary directory.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub preset: Preset,
    pub batch: usize,
    pub epochs: usize,
    pub n_train: usize,
    /// Examples per second of each repeat, sorted.
    pub rates: Vec<f64>,
}

impl Throughput {
    pub fn median(&self) -> f64 {
        self.rates[self.rates.len() / 2]
    }
}

/// Trains `preset` `repeats` times and records examples/s (the whole loop: batches, Adam,
/// per-epoch validation and checkpoints).
pub fn throughput(
    preset: Preset,
    batch: usize,
    epochs: usize,
    repeats: usize,
    engine: Engine,
) -> Result<Throughput> {
    let cfg = TrainConfig {
        batch,
        epochs,
        engine,
        log_every: usize::MAX,
        ..TrainConfig::defaults(preset)
    }
    .check()?;
    let dir = std::env::temp_dir().join(format!("circuitscope-bench-{}", std::process::id()));
    let mut rates = Vec::new();
    for r in 0..repeats.max(1) {
        let root = dir.join(format!("r{r}"));
        let outcome = train(&root, &cfg, &mut |_| {});
        let _ = std::fs::remove_dir_all(&root);
        rates.push(outcome?.examples_per_s);
    }
    let _ = std::fs::remove_dir_all(&dir);
    rates.sort_by(f64::total_cmp);
    let n_train = preset_data(&cfg)?.train.n;
    Ok(Throughput {
        preset,
        batch,
        epochs,
        n_train,
        rates,
    })
}
