//! How a graph is built: node, edge, baseline and target kinds and the [`GraphSpec`].

use super::ig::Mode;
use crate::data::Dataset;
use crate::model::RuntimeModel;
use crate::params::Valid;
use crate::{invalid, param, Error, Result};
use serde::{Deserialize, Serialize};

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Neuron,
    Roi,
    /// The top principal components of each hidden layer's activations (inputs and outputs
    /// stay neurons): read-only views with gradient-flow edges; they are never ablated.
    Component,
}

crate::choices!(NodeKind {
    Neuron => "neuron": "one node per unit",
    Roi => "roi": "groups of functionally similar units of each hidden layer",
    Component => "component": "the top principal components of each hidden layer (read-only)",
});

/// What an edge measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Normalised adjacent-layer gradient flow: `|∂h_{l+1,j}/∂h_{l,i}|` divided by its sum over
    /// `i`, averaged over examples.
    Grad,
    /// Integrated Gradients on edges (see [`super::ig`]).
    Ig,
}

crate::choices!(EdgeKind {
    Grad => "grad": "normalised adjacent-layer gradient flow",
    Ig => "ig": "Integrated Gradients on edges (exact for ReLU)",
});

/// The IG baseline in each layer's space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    Zero,
    /// The layer's mean activation over the examples.
    Mean,
    /// Another example's activations (a seeded permutation of the examples).
    Resample,
}

crate::choices!(Baseline {
    Zero => "zero": "zero activations",
    Mean => "mean": "each layer's mean activation over the examples",
    Resample => "resample": "another example's activations",
});

/// What IG edges explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Each edge explains its downstream node's activation.
    Node,
    /// Each edge explains each task's outputs; the edge keeps one figure per task.
    Task,
}

crate::choices!(TargetKind {
    Node => "node": "each edge explains its downstream node",
    Task => "task": "each edge explains each task's outputs",
});

/// Midpoint steps of IG on smooth networks when none are asked for: on `products-gelu` (100
/// examples) a 128-step sum's per-task edge means were within 6e-7 of a 4,096-step sum's,
/// relative to the largest, and its completeness error 9e-7 against a largest ΔT of 0.95.
pub const AUTO_RIEMANN_STEPS: usize = 128;

/// The most midpoint steps automatic IG doubles to. Kinks (ReLU-like units behind smooth
/// layers) make the midpoint error fall only as 1/steps, so a mixed network may stop here
/// with its completeness error reported as it is.
pub const AUTO_RIEMANN_MAX_STEPS: usize = 2048;

/// Automatic IG doubles an example's steps while some target's completeness error exceeds
/// this share of its |T(x) − T(baseline)| (floored at 1e-3).
pub const AUTO_RIEMANN_TOL: f64 = 1e-4;

/// How a graph is built; checked once by [`GraphSpec::check`] before any work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    pub nodes: NodeKind,
    pub edges: EdgeKind,
    pub baseline: Baseline,
    pub target: TargetKind,
    /// `0`: automatic (exact IG for piecewise-linear networks, [`AUTO_RIEMANN_STEPS`]
    /// midpoints for smooth ones); `n > 0`: a midpoint Riemann sum with `n` steps.
    pub riemann_steps: usize,
    /// Examples averaged over (the first ones of the data set).
    pub examples: usize,
    /// Examples used for ROI profiles.
    pub roi_examples: usize,
    pub max_rois: usize,
    pub seed: u64,
}

impl Default for GraphSpec {
    fn default() -> Self {
        GraphSpec {
            nodes: NodeKind::Neuron,
            edges: EdgeKind::Ig,
            baseline: Baseline::Zero,
            target: TargetKind::Task,
            riemann_steps: 0,
            examples: 500,
            roi_examples: 256,
            max_rois: 8,
            seed: 0,
        }
    }
}

impl GraphSpec {
    /// Rejects options that cannot build a graph, before any work starts.
    pub fn check(self) -> Result<Valid<GraphSpec>> {
        if self.examples == 0 {
            param!(examples, "must be at least 1");
        }
        if self.nodes != NodeKind::Neuron && self.max_rois < 2 {
            param!(max_rois, "must be at least 2");
        }
        if self.nodes == NodeKind::Component && self.edges != EdgeKind::Grad {
            invalid!("graph: component nodes are read-only views of a layer, not units to attribute through; build them with gradient-flow edges (`grad`)");
        }
        Ok(Valid::checked(self))
    }

    /// Whether this spec can build a graph of `model` on `data` (a run-time check of the data,
    /// not of the options).
    pub fn fits(&self, model: &RuntimeModel, data: &Dataset) -> Result<()> {
        if data.n == 0 {
            return Err(Error::Data(format!(
                "graph: data set `{}` is empty",
                data.name
            )));
        }
        if data.d_in != model.d_in() {
            return Err(Error::Data(format!(
                "graph: data set `{}` has {} inputs per row, the model takes {}",
                data.name,
                data.d_in,
                model.d_in()
            )));
        }
        Ok(())
    }

    /// How IG is computed on `model`: `riemann_steps` midpoints when given; otherwise exact
    /// where the network is piecewise linear, and [`AUTO_RIEMANN_STEPS`] midpoints where it
    /// is smooth (the graph records which, with its completeness error).
    pub fn mode_for(&self, model: &RuntimeModel) -> Mode {
        if self.riemann_steps > 0 {
            Mode::Riemann(self.riemann_steps)
        } else if model.is_piecewise_linear() {
            Mode::Exact
        } else {
            Mode::Riemann(AUTO_RIEMANN_STEPS)
        }
    }
}
