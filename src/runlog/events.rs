//! The event vocabulary: every kind of event any stage writes to `events.jsonl`.
//!
//! Each line is one [`Envelope`]: `{"v": 1, "time": …, "step": …, "kind": "…", …fields}`.
//! `v` is [`SCHEMA_VERSION`]; readers refuse a newer one with a clear message. `time` is Unix
//! seconds; `step` is the training step the event belongs to, where there is one. New kinds
//! are added here and nowhere else; a kind's fields are never renamed or removed without a
//! new schema version. The vocabulary is also written down in
//! `python/circuitscope_log/events.schema.json`, which the Python logger checks its events
//! against and `tests/events_schema.rs` checks every kind here against: change both together.

use serde::{Deserialize, Serialize};

/// The version of this vocabulary, written into every line.
pub const SCHEMA_VERSION: u32 = 1;

/// The common envelope of every event line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub time: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    #[serde(flatten)]
    pub event: Event,
}

impl Envelope {
    pub fn now(step: Option<u64>, event: Event) -> Envelope {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Envelope {
            v: SCHEMA_VERSION,
            time,
            step,
            event,
        }
    }

    /// Parses one line (the text once); a newer schema or a malformed line is an error
    /// message.
    pub fn parse(line: &str) -> Result<Envelope, String> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
        Envelope::from_value(value)
    }

    /// Checks an already parsed line's schema version and reads it as an event.
    pub fn from_value(value: serde_json::Value) -> Result<Envelope, String> {
        check_version(&value)?;
        serde_json::from_value(value).map_err(|e| format!("not a circuitscope event: {e}"))
    }
}

/// The schema version of a parsed line, refused when missing or newer than this build's.
pub fn check_version(value: &serde_json::Value) -> Result<u32, String> {
    match value.get("v").and_then(|v| v.as_u64()) {
        None => Err("no schema version `v`".into()),
        Some(v) if v > SCHEMA_VERSION as u64 => Err(format!("event schema v{v} is newer than this circuitscope reads (v{SCHEMA_VERSION}); upgrade circuitscope")),
        Some(v) => Ok(v as u32),
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    Failed,
    Interrupted,
}

impl RunStatus {
    /// The status as written in the log.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

pub use crate::embed::ProbeScore;
pub use crate::model::train::TaskMetrics;

/// Edges a [`Event::GraphEdges`] carries at most.
pub const GRAPH_EDGES_MAX: usize = 4096;

/// A node of [`Event::GraphEdges`]; its position in the list is its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNodeRecord {
    pub layer: usize,
    pub label: String,
    pub community: usize,
}

/// An edge of [`Event::GraphEdges`]: node ids, the signed mean and the mean |value|.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEdgeRecord {
    pub from: usize,
    pub to: usize,
    pub mean: f64,
    pub mean_abs: f64,
}

/// Every edge between two (layer, community) groups of a graph too large for its edges to be
/// carried whole ([`Event::GraphEdges`]'s `bundles`): how many, and the sums of their signed
/// means and mean |values|.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphBundleRecord {
    pub from_layer: usize,
    pub from_community: usize,
    pub to_layer: usize,
    pub to_community: usize,
    pub edges: usize,
    pub sum: f64,
    pub sum_abs: f64,
}

/// Every event kind. Fields are the figures a follower (the dashboard, a notebook) shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A run (or one stage of it) starts.
    RunStart {
        command: String,
        preset: Option<String>,
        config: serde_json::Value,
    },
    /// A training step: per-task training losses on the last batch. A writer that cannot know
    /// the throughput (the Python logger without a batch size) writes `examples_per_s` 0, and
    /// one that cannot know the end writes a negative `eta_s`.
    TrainStep {
        epoch: usize,
        losses: Vec<f64>,
        loss: f64,
        lr: f64,
        examples_per_s: f64,
        eta_s: f64,
    },
    /// An evaluation on a named split.
    Eval {
        epoch: usize,
        split: String,
        tasks: Vec<TaskMetrics>,
    },
    /// A checkpoint was written.
    Checkpoint { path: String, epoch: usize },
    /// A probe's figures for one layer (e.g. distinct patterns, explained variance).
    ProbeSummary {
        probe: String,
        layer: usize,
        figures: std::collections::BTreeMap<String, f64>,
    },
    /// A clustering of one layer's neurons into ROIs.
    ClusteringSummary {
        layer: usize,
        clusters: usize,
        sizes: Vec<usize>,
        criterion: String,
        score: f64,
    },
    /// A graph was built.
    GraphSummary {
        nodes: usize,
        edges: usize,
        density: f64,
        communities: usize,
        modularity: f64,
        node_kind: String,
        edge_kind: String,
    },
    /// The graph itself, for drawing it live: every node and the strongest edges (at most
    /// [`GRAPH_EDGES_MAX`], by mean |value|, strongest first) of `total_edges`. When edges
    /// were left out, `bundles` aggregates every edge by (layer, community) (the strongest
    /// [`GRAPH_EDGES_MAX`] bundles), so a view of a 668,672-edge graph still shows all of it.
    GraphEdges {
        node_kind: String,
        nodes: Vec<GraphNodeRecord>,
        edges: Vec<GraphEdgeRecord>,
        total_edges: usize,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bundles: Vec<GraphBundleRecord>,
    },
    /// One point of a faithfulness-versus-sparsity curve.
    FaithfulnessPoint {
        graph: String,
        ablation: String,
        edges_kept: f64,
        faithfulness: f64,
    },
    /// An intervention: a predicted and an observed change in one task's loss.
    Intervention {
        target: String,
        task: String,
        predicted: f64,
        observed: f64,
    },
    /// Structure measured on one training checkpoint (or model width): how it emerges.
    Emergence {
        checkpoint_step: u64,
        width: usize,
        figures: std::collections::BTreeMap<String, f64>,
    },
    /// `analyze --follow` passed over a checkpoint: a newer one was already written (it keeps
    /// up by analysing the newest), or the file could not be read.
    AnalysisSkipped {
        checkpoint_step: u64,
        reason: String,
    },
    /// Progress of a model zoo.
    ZooProgress {
        done: usize,
        total: usize,
        model: String,
        r2: f64,
    },
    /// The network embedder's masked-gradient losses at the envelope's `step` (the
    /// embedder's own step): on that step's batch and on the held-out models. `label` names
    /// the grid point, e.g. `f10 k4 m0.50`.
    EmbedderLoss {
        train: f64,
        val: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A linear probe's accuracy on embeddings (or a baseline's) on held-out models, with the
    /// ARI of clustering the same features.
    ProbeAccuracy(ProbeScore),
    /// Free text for the reader.
    Note { text: String },
    /// Training resumed from a checkpoint at `from_step`.
    Resumed { from_step: u64 },
    /// The run ended; a follower stops here.
    RunEnd {
        status: RunStatus,
        message: Option<String>,
    },
}

impl Event {
    /// The `kind` tag as written in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStart { .. } => "run_start",
            Event::TrainStep { .. } => "train_step",
            Event::Eval { .. } => "eval",
            Event::Checkpoint { .. } => "checkpoint",
            Event::ProbeSummary { .. } => "probe_summary",
            Event::ClusteringSummary { .. } => "clustering_summary",
            Event::GraphSummary { .. } => "graph_summary",
            Event::GraphEdges { .. } => "graph_edges",
            Event::FaithfulnessPoint { .. } => "faithfulness_point",
            Event::Intervention { .. } => "intervention",
            Event::Emergence { .. } => "emergence",
            Event::AnalysisSkipped { .. } => "analysis_skipped",
            Event::ZooProgress { .. } => "zoo_progress",
            Event::EmbedderLoss { .. } => "embedder_loss",
            Event::ProbeAccuracy { .. } => "probe_accuracy",
            Event::Note { .. } => "note",
            Event::Resumed { .. } => "resumed",
            Event::RunEnd { .. } => "run_end",
        }
    }
}
