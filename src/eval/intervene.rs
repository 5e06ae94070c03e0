//! Interventions: ablate a community or a task's subgraph, compare the predicted effect on each
//! task (the attribution the ablated edges carry) with the observed change in its loss.

use super::ablation::{forward_ablated, Baselines, EdgeMask};
use super::chance::{self, Chance};
use super::loss::task_losses;
use super::{check_ablatable, community_edges, mark};
use crate::data::{Dataset, TaskStructure};
use crate::graph::CircuitGraph;
use crate::model::RuntimeModel;
use crate::numeric::score;
use crate::{invalid, Result};
use petgraph::graph::EdgeIndex;
use serde::{Deserialize, Serialize};

/// Relative size below which a change in a task's loss is rounding, not an effect.
pub const LOSS_ROUNDING: f64 = 1e-9;

/// `change` if it is an effect, 0 if it is rounding: an ablation that leaves every path to a
/// task intact still sums the task's forward pass in another order, and moves its loss by
/// 1e-21 to 1e-19 (seen on planted models, losses near 1e-5), which Spearman ρ would otherwise
/// rank as if it were an effect.
fn rounded_to_zero(change: f64, loss: f64) -> f64 {
    if change.abs() <= LOSS_ROUNDING * loss.abs() {
        0.0
    } else {
        change
    }
}

/// One intervention's predicted and observed effect on one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    /// `community N` or `task subgraph NAME`.
    pub target: String,
    pub task: String,
    /// Attribution to the task carried by the ablated edges (sum of their mean |value| for it).
    pub predicted: f64,
    /// Change in the task's loss when those edges are ablated (0 where it is below
    /// [`LOSS_ROUNDING`] of the loss: rounding).
    pub observed: f64,
    /// The task's loss after ablation over its loss before.
    pub loss_ratio: f64,
}

/// Every intervention of a graph and how well attribution predicts their effects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interventions {
    /// One point per (intervention, task): exactly the pairs ρ is computed over.
    pub points: Vec<Intervention>,
    /// Spearman ρ between predicted and observed over `points`.
    pub rho: f64,
    /// ρ with the observations shuffled among the points.
    pub chance: Chance,
    /// Communities and task subgraphs left out because their edges carry no attribution to
    /// any task (dead units' one-node communities, an empty subgraph): their ablation is
    /// predicted 0 and observed 0, and such tied points would only pad ρ.
    pub left_out: Vec<String>,
    /// Per task, its loss with every edge ablated over its loss with none: the most any
    /// ablation's loss ratio can show.
    pub ceiling: Vec<f64>,
}

/// Interventions on every community and every task subgraph (the edges whose largest
/// per-task attribution is that task's) that carry attribution, with Spearman ρ between
/// predicted and observed effects.
pub fn interventions(
    model: &RuntimeModel,
    g: &CircuitGraph,
    data: &Dataset,
    tasks: &TaskStructure,
    base: &Baselines,
) -> Result<Interventions> {
    check_ablatable(g)?;
    if g.tasks.is_empty()
        || g.graph
            .edge_weights()
            .next()
            .is_none_or(|e| e.per_task.len() != g.tasks.len())
    {
        invalid!(
            "interventions need a graph with per-task attributions (IG edges with task targets)"
        );
    }
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let loss = |mask: &EdgeMask| -> Result<Vec<f64>> {
        Ok(task_losses(
            &forward_ablated(model, &x, mask, base)?,
            data,
            tasks,
        ))
    };
    let full = loss(&EdgeMask::all(model, true))?;
    let none = loss(&EdgeMask::all(model, false))?;
    let ratio = |after: f64, before: f64| {
        if before > 0.0 {
            after / before
        } else {
            f64::INFINITY
        }
    };
    let mut groups: Vec<(String, Vec<EdgeIndex>)> = Vec::new();
    for c in 0..g.communities {
        groups.push((format!("community {c}"), community_edges(g, c)));
    }
    for (t, name) in g.tasks.iter().enumerate() {
        let edges = g
            .graph
            .edge_indices()
            .filter(|&e| {
                let p = &g.graph[e].per_task;
                p[t] > 0.0 && (0..p.len()).all(|u| p[t] >= p[u])
            })
            .collect();
        groups.push((format!("task subgraph {name}"), edges));
    }
    let (mut points, mut left_out) = (Vec::new(), Vec::new());
    for (target, edges) in groups {
        let predicted: Vec<f64> = (0..g.tasks.len())
            .map(|t| edges.iter().map(|&e| g.graph[e].per_task[t]).sum())
            .collect();
        if predicted.iter().all(|&p| p == 0.0) {
            left_out.push(target);
            continue;
        }
        let mut mask = EdgeMask::all(model, true);
        mark(g, &edges, &mut mask, false);
        let losses = loss(&mask)?;
        for (t, name) in g.tasks.iter().enumerate() {
            points.push(Intervention {
                target: target.clone(),
                task: name.clone(),
                predicted: predicted[t],
                observed: rounded_to_zero(losses[t] - full[t], full[t]),
                loss_ratio: ratio(losses[t], full[t]),
            });
        }
    }
    let predicted: Vec<f64> = points.iter().map(|i| i.predicted).collect();
    let observed: Vec<f64> = points.iter().map(|i| i.observed).collect();
    Ok(Interventions {
        rho: score::spearman(&predicted, &observed),
        chance: chance::spearman(&predicted, &observed),
        points,
        left_out,
        ceiling: none.iter().zip(&full).map(|(&n, &f)| ratio(n, f)).collect(),
    })
}

/// For a classifier: each community ablated in turn (every edge touching it, baselines
/// `base`), the accuracy on each class before and after, as a table with columns
/// `community`, `class`, `examples`, `accuracy`, `ablated_accuracy`, `drop`.
pub fn community_class_accuracy(
    model: &RuntimeModel,
    g: &CircuitGraph,
    data: &Dataset,
    base: &Baselines,
) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::{Column, DataFrame};
    check_ablatable(g)?;
    let Some(labels) = &data.labels else {
        invalid!(
            "{}: per-class accuracy needs a classification data set",
            data.name
        );
    };
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let d_out = model.d_out();
    let classes = d_out;
    let per_class = |out: &[f64]| -> Vec<(usize, f64)> {
        let mut right = vec![0usize; classes];
        let mut seen = vec![0usize; classes];
        for (r, &label) in labels.iter().enumerate() {
            let row = &out[r * d_out..(r + 1) * d_out];
            let guess = (0..d_out)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .expect("outputs");
            seen[label] += 1;
            right[label] += (guess == label) as usize;
        }
        (0..classes)
            .map(|c| (seen[c], right[c] as f64 / seen[c].max(1) as f64))
            .collect()
    };
    let clean = per_class(&forward_ablated(
        model,
        &x,
        &EdgeMask::all(model, true),
        base,
    )?);
    let (mut com, mut cls, mut n, mut acc, mut ablated) = (vec![], vec![], vec![], vec![], vec![]);
    for c in 0..g.communities {
        let edges = community_edges(g, c);
        let mut mask = EdgeMask::all(model, true);
        mark(g, &edges, &mut mask, false);
        let after = per_class(&forward_ablated(model, &x, &mask, base)?);
        for k in 0..classes {
            com.push(c as u32);
            cls.push(k as u32);
            n.push(clean[k].0 as u32);
            acc.push(clean[k].1);
            ablated.push(after[k].1);
        }
    }
    let drop: Vec<f64> = acc.iter().zip(&ablated).map(|(a, b)| a - b).collect();
    DataFrame::new(vec![
        Column::new("community".into(), com),
        Column::new("class".into(), cls),
        Column::new("examples".into(), n),
        Column::new("accuracy".into(), acc),
        Column::new("ablated_accuracy".into(), ablated),
        Column::new("drop".into(), drop),
    ])
    .map_err(|e| crate::Error::Data(format!("community accuracy table: {e}")))
}
