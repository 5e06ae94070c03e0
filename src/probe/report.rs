//! One probe report: every probe on a model and its data sets, as polars DataFrames.
//!
//! [`probe`] runs the census, PCA, task subspaces and layer statistics on every split, and the
//! between-layer probes (PC correlations, PLS, component sets, scaffold) and the weight SVD on
//! the first split (the validation distribution). The run layer stores each table as
//! `tables/probe_<name>.parquet`; [`ProbeReport::summaries`] gives the events for the log.

use super::between::{self, Between, BetweenLayers, Layers};
use super::census::{census_streamed, CensusConfig};
use super::jacobian::{output_jacobians, Reuse};
use super::subspace::{SubspaceConfig, TaskSubspaces};
use super::weights::weight_svd;
use crate::data::{Dataset, TaskStructure};
use crate::model::view::{widen, FORWARD_CHUNK};
use crate::model::{RuntimeModel, Trace};
use crate::params::Valid;
use crate::{param, Error, Result};
use polars::prelude::{Column, DataFrame};
use std::collections::BTreeMap;

/// Probe settings; the defaults are what `circuitscope probe` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    pub census: CensusConfig,
    pub subspace: SubspaceConfig,
    /// Principal components per layer used between layers (PC correlations, PLS, scaffold).
    pub pcs: usize,
    /// Explained-variance ratios kept per PCA in the `pca` table.
    pub pca_rows: usize,
    /// Regions listed per split and layer in the `regions` table.
    pub region_rows: usize,
    pub reuse: Reuse,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            census: CensusConfig::default(),
            subspace: SubspaceConfig::default(),
            pcs: 4,
            pca_rows: 8,
            region_rows: 32,
            reuse: Reuse::Patterns,
        }
    }
}

impl ProbeConfig {
    /// Rejects options no probe can use, before any work starts.
    pub fn check(self) -> Result<Valid<ProbeConfig>> {
        if self.pcs == 0 {
            param!(pcs, "must be at least 1");
        }
        Ok(Valid::checked(self))
    }
}

/// Every probe's results as tables.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub layer_stats: DataFrame,
    pub census: DataFrame,
    /// The share of examples in each of the largest `region_rows` regions per split and layer.
    pub regions: DataFrame,
    pub pca: DataFrame,
    pub task_angles: DataFrame,
    pub svd: DataFrame,
    pub pc_correlations: DataFrame,
    pub pls: DataFrame,
    pub components: DataFrame,
    pub scaffold: DataFrame,
    /// Per layer, the first split's census, PCA spectrum and task angles as named figures
    /// (the run layer logs each as a `probe_summary` event).
    pub summaries: Vec<Summary>,
    /// How to read the tables (e.g. the census's meaning for smooth activations), one line each.
    pub notes: Vec<String>,
}

/// What the census counts on a network with smooth activations, where no two examples share
/// a gradient exactly; `None` for piecewise-linear networks (exact regions).
fn census_note(model: &RuntimeModel, cfg: &CensusConfig) -> Option<String> {
    let smooth: Vec<String> = model
        .layers
        .iter()
        .filter(|l| !l.activation.is_piecewise_linear())
        .map(|l| l.activation.spec_name().0.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    (!smooth.is_empty()).then(|| {
        format!(
            "census: smooth activations ({}), so gradients are counted distinct up to a cosine of {} \
             and patterns are the signs of pre-activations, not linear regions",
            smooth.join(", "),
            cfg.cosine
        )
    })
}

/// One probe's figures for one layer, e.g. `census:mixed` at layer 2.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub probe: String,
    pub layer: usize,
    pub figures: BTreeMap<String, f64>,
}

/// Column builders for one table.
#[derive(Default)]
struct Table {
    cols: Vec<(String, Col)>,
}

enum Col {
    S(Vec<String>),
    U(Vec<u64>),
    OU(Vec<Option<u64>>),
    F(Vec<f64>),
    B(Vec<bool>),
}

impl Table {
    fn col(&mut self, name: &str, make: fn() -> Col) -> &mut Col {
        if let Some(i) = self.cols.iter().position(|(n, _)| n == name) {
            return &mut self.cols[i].1;
        }
        self.cols.push((name.into(), make()));
        &mut self.cols.last_mut().unwrap().1
    }
    fn s(&mut self, name: &str, v: impl Into<String>) -> &mut Self {
        if let Col::S(c) = self.col(name, || Col::S(vec![])) {
            c.push(v.into());
        }
        self
    }
    fn u(&mut self, name: &str, v: usize) -> &mut Self {
        if let Col::U(c) = self.col(name, || Col::U(vec![])) {
            c.push(v as u64);
        }
        self
    }
    fn ou(&mut self, name: &str, v: Option<usize>) -> &mut Self {
        if let Col::OU(c) = self.col(name, || Col::OU(vec![])) {
            c.push(v.map(|v| v as u64));
        }
        self
    }
    fn f(&mut self, name: &str, v: f64) -> &mut Self {
        if let Col::F(c) = self.col(name, || Col::F(vec![])) {
            c.push(v);
        }
        self
    }
    fn b(&mut self, name: &str, v: bool) -> &mut Self {
        if let Col::B(c) = self.col(name, || Col::B(vec![])) {
            c.push(v);
        }
        self
    }
    fn frame(self) -> Result<DataFrame> {
        let cols = self
            .cols
            .into_iter()
            .map(|(n, c)| match c {
                Col::S(v) => Column::new(n.into(), v),
                Col::U(v) => Column::new(n.into(), v),
                Col::OU(v) => Column::new(n.into(), v),
                Col::F(v) => Column::new(n.into(), v),
                Col::B(v) => Column::new(n.into(), v),
            })
            .collect();
        DataFrame::new(cols).map_err(|e| Error::Data(format!("probe table: {e}")))
    }
}

/// Calls `f` with the trace of each chunk of [`FORWARD_CHUNK`] examples of `x`, in order.
fn for_chunks(model: &RuntimeModel, x: &[f64], n: usize, f: &mut dyn FnMut(&Trace)) -> Result<()> {
    let d = model.d_in();
    for start in (0..n).step_by(FORWARD_CHUNK) {
        let end = (start + FORWARD_CHUNK).min(n);
        f(&model.trace(&x[start * d..end * d])?);
    }
    Ok(())
}

/// Runs every probe. `splits` are named data sets; the first is the validation distribution.
/// Every probe streams over the examples in chunks of [`FORWARD_CHUNK`] (two passes over each
/// split, and one more over the first for the between-layer probes), so memory is set by the
/// model and the chunk, not by the number of examples.
pub fn probe(
    model: &RuntimeModel,
    splits: &[(String, &Dataset)],
    tasks: &TaskStructure,
    cfg: &Valid<ProbeConfig>,
) -> Result<ProbeReport> {
    model.check()?;
    if splits.is_empty() {
        return Err(Error::Invalid("probe: no data set given".into()));
    }
    for (name, ds) in splits {
        if ds.d_in != model.d_in() {
            return Err(Error::Data(format!(
                "split `{name}` ({}): {} inputs per row, the model takes {}",
                ds.name,
                ds.d_in,
                model.d_in()
            )));
        }
        if ds.n == 0 {
            return Err(Error::Data(format!(
                "split `{name}` ({}) is empty",
                ds.name
            )));
        }
    }
    let mut regions = Table::default();
    let (mut stats, mut cen, mut pca_t, mut angles) = (
        Table::default(),
        Table::default(),
        Table::default(),
        Table::default(),
    );
    let mut first = None;
    let mut summaries = Vec::new();
    for (name, ds) in splits {
        let x = widen(&ds.x);
        let split_err = |e: Error| Error::Data(format!("split `{name}` ({}): {e}", ds.name));
        let n = model.check_input(&x).map_err(split_err)?;
        // One pass over the chunks: layer statistics, each layer's PCA, the task gradients.
        let mut layer_pass = Layers::new(model);
        let mut task_pass: Option<TaskSubspaces> = None;
        for_chunks(model, &x, n, &mut |trace| {
            layer_pass.push(trace);
            let jac = output_jacobians(model, trace, cfg.reuse);
            task_pass
                .get_or_insert_with(|| TaskSubspaces::new(&jac, tasks))
                .push(&jac);
        })
        .map_err(split_err)?;
        let (layer_stats, pcas) = layer_pass.finish()?;
        for s in layer_stats {
            stats
                .s("split", name)
                .u("layer", s.layer)
                .u("width", s.width)
                .f("mean_activation", s.mean_activation)
                .f("active_share", s.active_share)
                .u("dead", s.dead)
                .u("always_on", s.always_on);
        }
        let layers = census_streamed(model, &x, &cfg.census, FORWARD_CHUNK)?;
        for c in &layers {
            for (rank, share) in c.region_shares.iter().take(cfg.region_rows).enumerate() {
                regions
                    .s("split", name)
                    .u("layer", c.layer)
                    .u("rank", rank)
                    .f("share", *share);
            }
            cen.s("split", name)
                .u("layer", c.layer)
                .u("width", c.width)
                .u("examples", c.examples)
                .u("ambiguous", c.ambiguous);
            cen.ou("layer_patterns", c.layer_patterns)
                .u("adjacent_patterns", c.adjacent_patterns)
                .u("downstream_patterns", c.downstream_patterns);
            let per: Vec<String> = c
                .gradients_per_output
                .iter()
                .map(|g| g.to_string())
                .collect();
            cen.s("gradients_per_output", per.join("/"))
                .u("gradients_combined", c.gradients_combined)
                .b("appear_together", c.appear_together);
            cen.f("top_region_share", c.top_region_share)
                .u("regions_for_90pct", c.regions_for_90pct);
        }
        for (k, p) in pcas.iter().enumerate() {
            for (i, r) in p.ratios.iter().take(cfg.pca_rows).enumerate() {
                pca_t
                    .s("split", name)
                    .u("layer", k + 1)
                    .s("source", "activations")
                    .u("component", i)
                    .f("ratio", *r);
            }
        }
        let task_pass = task_pass.expect("a split has at least one example");
        let spaces = task_pass.spaces(&cfg.subspace)?;
        for (k, layer) in spaces.iter().enumerate() {
            for (t, sp) in layer.iter().enumerate() {
                for (i, r) in sp.ratios.iter().take(cfg.pca_rows).enumerate() {
                    pca_t
                        .s("split", name)
                        .u("layer", k)
                        .s("source", format!("gradients:{}", tasks.tasks[t].name))
                        .u("component", i)
                        .f("ratio", *r);
                }
            }
        }
        let task_pairs = task_pass.pairs(&spaces)?;
        if first.is_none() {
            for c in &layers {
                let mut figures = BTreeMap::new();
                for (key, v) in [
                    ("patterns_downstream", c.downstream_patterns),
                    ("adjacent_patterns", c.adjacent_patterns),
                    ("gradients_combined", c.gradients_combined),
                    ("ambiguous", c.ambiguous),
                    ("appear_together", c.appear_together as usize),
                ] {
                    figures.insert(key.to_string(), v as f64);
                }
                if let Some(p) = task_pairs.iter().find(|p| p.layer == c.layer) {
                    figures.insert("interference_exact".into(), p.interference_exact);
                    figures.insert("interference_pca".into(), p.interference_pca);
                }
                summaries.push(Summary {
                    probe: format!("census:{name}"),
                    layer: c.layer,
                    figures,
                });
            }
            // The PCA spectrum of each hidden layer (explained-variance ratios `pc01`, ...).
            for (k, p) in pcas.iter().enumerate() {
                let figures = p
                    .ratios
                    .iter()
                    .take(cfg.pca_rows)
                    .enumerate()
                    .map(|(i, r)| (format!("pc{:02}", i + 1), *r))
                    .collect();
                summaries.push(Summary {
                    probe: format!("pca:{name}"),
                    layer: k + 1,
                    figures,
                });
            }
            // Per task pair and layer: the smallest principal angle between the tasks'
            // gradient subspaces and the interference figures.
            for p in &task_pairs {
                let angle = p
                    .cosines
                    .first()
                    .map_or(90.0, |c| c.clamp(-1.0, 1.0).acos().to_degrees());
                summaries.push(Summary {
                    probe: format!("angles:{name}:{}-{}", p.task_a, p.task_b),
                    layer: p.layer,
                    figures: BTreeMap::from([
                        ("smallest_angle_deg".to_string(), angle),
                        ("interference_exact".to_string(), p.interference_exact),
                        ("interference_pca".to_string(), p.interference_pca),
                    ]),
                });
            }
        }
        for p in task_pairs {
            angles
                .s("split", name)
                .u("layer", p.layer)
                .s("task_a", &p.task_a)
                .s("task_b", &p.task_b)
                .u("k_a", p.k_a)
                .u("k_b", p.k_b);
            angles.f(
                "smallest_angle_deg",
                p.cosines
                    .first()
                    .map_or(90.0, |c| c.clamp(-1.0, 1.0).acos().to_degrees()),
            );
            angles
                .f("interference_pca", p.interference_pca)
                .f("share_a_in_b", p.share_a_in_b)
                .f("share_b_in_a", p.share_b_in_a)
                .f("interference_exact", p.interference_exact);
        }
        if first.is_none() {
            first = Some((x, n, pcas, spaces));
        }
    }
    let (x, n, pcas, spaces) = first.expect("at least one split");
    let mut svd_t = Table::default();
    for s in weight_svd(model, &spaces)? {
        svd_t
            .u("layer", s.layer)
            .u("index", s.index)
            .f("singular_value", s.value)
            .f("purity", s.purity);
        for (t, m) in s.task_mass.iter().enumerate() {
            svd_t.f(&format!("mass_{}", tasks.tasks[t].name), *m);
        }
    }
    // The second pass, over the first split: between-layer probes on its PCAs.
    let mut between_pass = Between::new(model, &pcas, cfg.pcs, cfg.census.cosine);
    for_chunks(model, &x, n, &mut |trace| between_pass.push(trace))?;
    let BetweenLayers {
        correlations,
        pls: pairs,
        scaffolds,
    } = between_pass.finish()?;
    let mut corr = Table::default();
    for c in correlations {
        corr.u("layer", c.layer)
            .u("pc_a", c.pc_a)
            .u("pc_b", c.pc_b)
            .f("correlation", c.correlation);
    }
    let mut pls_t = Table::default();
    for p in &pairs {
        for c in 0..p.pls.components {
            let (pc, overlap) = p.best_pc(c);
            pls_t
                .u("layer", p.layer)
                .u("component", c)
                .f("r2", p.r2)
                .u("best_pc", pc)
                .f("overlap", overlap);
        }
    }
    let mut comp_t = Table::default();
    for s in between::component_sets(&pairs, &pcas) {
        let ni = s.input_space.len();
        for (o, w) in s.weights.chunks(ni).enumerate() {
            for (i, v) in w.iter().enumerate() {
                comp_t
                    .u("layer", s.layer)
                    .u("output_component", o)
                    .u("input_component", i)
                    .f("weight", *v);
            }
        }
    }
    let mut scaf = Table::default();
    for s in scaffolds {
        scaf.u("layer", s.layer)
            .u("component", s.component)
            .u("distinct_directions", s.distinct_directions);
        scaf.f(
            "top_gradient_pc_ratio",
            s.gradient_pca.first().copied().unwrap_or(0.0),
        );
        scaf.f(
            "top4_gradient_pc_ratio",
            s.gradient_pca.iter().take(4).sum(),
        );
    }
    Ok(ProbeReport {
        layer_stats: stats.frame()?,
        census: cen.frame()?,
        regions: regions.frame()?,
        pca: pca_t.frame()?,
        task_angles: angles.frame()?,
        svd: svd_t.frame()?,
        pc_correlations: corr.frame()?,
        pls: pls_t.frame()?,
        components: comp_t.frame()?,
        scaffold: scaf.frame()?,
        summaries,
        notes: census_note(model, &cfg.census).into_iter().collect(),
    })
}

impl ProbeReport {
    /// The tables by name, in a fixed order.
    pub fn tables(&mut self) -> Vec<(&'static str, &mut DataFrame)> {
        vec![
            ("layer_stats", &mut self.layer_stats),
            ("census", &mut self.census),
            ("regions", &mut self.regions),
            ("pca", &mut self.pca),
            ("task_angles", &mut self.task_angles),
            ("svd", &mut self.svd),
            ("pc_correlations", &mut self.pc_correlations),
            ("pls", &mut self.pls),
            ("components", &mut self.components),
            ("scaffold", &mut self.scaffold),
        ]
    }

    /// The tables by name, in the order of [`ProbeReport::tables`], to read.
    pub fn named_tables(&self) -> Vec<(&'static str, &DataFrame)> {
        vec![
            ("layer_stats", &self.layer_stats),
            ("census", &self.census),
            ("regions", &self.regions),
            ("pca", &self.pca),
            ("task_angles", &self.task_angles),
            ("svd", &self.svd),
            ("pc_correlations", &self.pc_correlations),
            ("pls", &self.pls),
            ("components", &self.components),
            ("scaffold", &self.scaffold),
        ]
    }
}
