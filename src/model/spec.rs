//! The model spec: the JSON that describes a model circuitscope did not define itself — its
//! inputs, its layers (tensor names of a PyTorch state dict, in forward order, and their
//! activations) or the architecture to train (`hidden` widths and one activation), and its
//! tasks (which outputs each owns, its loss, its target column or expression, and optionally
//! which inputs it uses, the truth circuit recovery is scored against).
//!
//! [`ModelSpec::check`] validates a spec once into a [`Valid<ModelSpec>`] with everything later
//! stages need resolved ([`Resolved`]); unknown fields are errors, not ignored. This module only
//! describes; it never reads a file.

use super::{Activation, Loss};
use crate::data::{Task, TaskStructure};
use crate::params::Valid;
use crate::{invalid, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The format tag every spec carries.
pub const SPEC_FORMAT: &str = "circuitscope-spec";
/// The spec version this build reads.
pub const SPEC_VERSION: u32 = 1;

/// A model spec, as written in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub format: String,
    pub version: u32,
    /// Input names: the data's input columns, and the variables of task expressions.
    pub inputs: Vec<String>,
    /// Import form: the layers in forward order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerSpec>>,
    /// Training form: hidden widths (the output width follows from the tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
    /// Training form: the hidden activation (outputs are linear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    /// Training form, `leaky_relu` only: its negative slope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope: Option<f64>,
    pub tasks: Vec<TaskSpec>,
    /// Training form: draw the inputs uniformly and compute expression tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<Synthetic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// One layer of the import form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// The weight's tensor name (`[out, in]`, as `nn.Linear` stores it).
    pub weight: String,
    /// The bias's tensor name (`[out]`); none for a layer without bias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
    pub activation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope: Option<f64>,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub name: String,
    /// The outputs the task owns (default: output `i` for the `i`-th task; a classifier's one
    /// task owns every output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<usize>>,
    /// The data column of the task's target (an integer class for `cross_entropy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Training form with `synthetic`: the target as an expression over the inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// `mse` (default) or `cross_entropy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
    /// The inputs the task depends on: the truth for first-layer circuit recovery (an input
    /// may be used by several tasks: shared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<Vec<String>>,
}

/// Synthetic data of the training form: inputs uniform in `[low, high]` (default `[-1, 1]`,
/// seed 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    pub n_train: usize,
    pub n_val: usize,
    #[serde(default = "minus_one")]
    pub low: f64,
    #[serde(default = "one")]
    pub high: f64,
    #[serde(default)]
    pub seed: u64,
}

fn minus_one() -> f64 {
    -1.0
}

fn one() -> f64 {
    1.0
}

/// What a checked spec resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Training form: every width from inputs to outputs (import form: from the tensors).
    pub widths: Option<Vec<usize>>,
    /// Each layer's activation (the training form's outputs are the identity).
    pub activations: Vec<Activation>,
    /// The tasks; a task's `inputs` are its `uses` (empty: unknown).
    pub tasks: TaskStructure,
    pub loss: Loss,
    /// The outputs the tasks name (at least; import form may have more).
    pub outputs: usize,
}

/// The training settings of a spec (the defaults train the three-task example `(a·b, c·d,
/// e·f)` to R² ≥ 0.99).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecTraining {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

impl ModelSpec {
    /// Parses a spec's JSON text; unknown fields and wrong types are errors naming them.
    pub fn parse(text: &str) -> Result<ModelSpec> {
        serde_json::from_str(text).map_err(|e| Error::Data(format!("not a model spec: {e}")))
    }

    /// The training settings: the spec's, then the defaults.
    pub fn training(&self) -> SpecTraining {
        SpecTraining {
            epochs: self.epochs.unwrap_or(30),
            batch: self.batch.unwrap_or(64),
            lr: self.lr.unwrap_or(3e-3),
            seed: self.seed.unwrap_or(0),
        }
    }

    /// Validates the spec and resolves its layers and tasks.
    pub fn check(self) -> Result<(Valid<ModelSpec>, Resolved)> {
        if self.format != SPEC_FORMAT {
            invalid!(
                "spec: format is `{}`, expected `{SPEC_FORMAT}`",
                self.format
            );
        }
        if self.version != SPEC_VERSION {
            invalid!(
                "spec: version {} is not supported (this build reads version {SPEC_VERSION})",
                self.version
            );
        }
        if self.inputs.is_empty() {
            invalid!("spec: `inputs` is empty");
        }
        unique("inputs", self.inputs.iter())?;
        let (widths, activations) = match (&self.layers, &self.hidden) {
            (Some(_), Some(_)) => {
                invalid!("spec: give `layers` (import) or `hidden` (training), not both")
            }
            (None, None) => {
                invalid!("spec: give `layers` (import) or `hidden` and `activation` (training)")
            }
            (Some(layers), None) => {
                if self.activation.is_some() || self.slope.is_some() || self.synthetic.is_some() {
                    invalid!("spec: `activation`, `slope` and `synthetic` belong to the training form (`hidden`); each of `layers` names its own activation");
                }
                if layers.is_empty() {
                    invalid!("spec: `layers` is empty");
                }
                let mut names = BTreeSet::new();
                let acts = layers
                    .iter()
                    .enumerate()
                    .map(|(k, l)| {
                        for n in std::iter::once(&l.weight).chain(&l.bias) {
                            if !names.insert(n.clone()) {
                                invalid!("spec: tensor `{n}` is named twice");
                            }
                        }
                        Activation::from_spec(&l.activation, l.slope)
                            .map_err(|e| Error::Invalid(format!("spec: layer {k}: {e}")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                (None, acts)
            }
            (None, Some(hidden)) => {
                if hidden.contains(&0) {
                    invalid!("spec: `hidden` widths must be at least 1, got {hidden:?}");
                }
                let name = self.activation.as_deref().ok_or_else(|| {
                    Error::Invalid("spec: the training form needs an `activation`".into())
                })?;
                let act = Activation::from_spec(name, self.slope)
                    .map_err(|e| Error::Invalid(format!("spec: {e}")))?;
                let mut acts = vec![act; hidden.len()];
                acts.push(Activation::Identity);
                (Some(hidden.clone()), acts)
            }
        };
        if self.tasks.is_empty() {
            invalid!("spec: `tasks` is empty");
        }
        unique("task names", self.tasks.iter().map(|t| &t.name))?;
        let mut losses = Vec::new();
        for t in &self.tasks {
            losses.push(match t.loss.as_deref().unwrap_or("mse") {
                "mse" => Loss::Mse,
                "cross_entropy" => Loss::CrossEntropy,
                other => invalid!(
                    "spec: task `{}`: unknown loss `{other}`; known: mse, cross_entropy",
                    t.name
                ),
            });
            match (&t.target, &t.expr) {
                (Some(_), Some(_)) => {
                    invalid!("spec: task `{}`: give `target` or `expr`, not both", t.name)
                }
                (None, None) => invalid!(
                    "spec: task `{}` needs a `target` column or an `expr`",
                    t.name
                ),
                (None, Some(e)) => {
                    if self.synthetic.is_none() {
                        invalid!(
                            "spec: task `{}` is an expression, which needs `synthetic` data",
                            t.name
                        );
                    }
                    check_expr(&t.name, e, &self.inputs)?;
                }
                (Some(_), None) => {}
            }
            for u in t.uses.iter().flatten() {
                if !self.inputs.contains(u) {
                    invalid!(
                        "spec: task `{}` uses `{u}`, which is not an input ({})",
                        t.name,
                        self.inputs.join(", ")
                    );
                }
            }
        }
        let loss = if losses.contains(&Loss::CrossEntropy) {
            if self.tasks.len() > 1 {
                invalid!("spec: a cross_entropy task must be the only task (it owns every logit)");
            }
            if self.tasks[0].expr.is_some() {
                invalid!("spec: a cross_entropy task needs an integer class `target` column, not an expression");
            }
            Loss::CrossEntropy
        } else {
            Loss::Mse
        };
        // Outputs: as given, else output i for task i (a classifier: every output, known from
        // the training form's `outputs` or, on import, from the last layer).
        let mut owned: Vec<Vec<usize>> = Vec::new();
        for (i, t) in self.tasks.iter().enumerate() {
            let o = match (&t.outputs, loss) {
                (Some(o), _) => o.clone(),
                (None, Loss::Mse) => vec![i],
                (None, Loss::CrossEntropy) => {
                    if widths.is_some() {
                        invalid!("spec: the classifier task `{}` needs `outputs` (one per class) in the training form", t.name);
                    }
                    vec![]
                }
            };
            if loss == Loss::Mse && o.len() != 1 {
                invalid!("spec: task `{}` owns {} outputs; a regression task owns one output (its `target`), give one task per output", t.name, o.len());
            }
            owned.push(o);
        }
        let flat: Vec<usize> = owned.iter().flatten().copied().collect();
        unique("task outputs", flat.iter())?;
        let outputs = flat.iter().max().map_or(0, |m| m + 1);
        let widths = match widths {
            Some(hidden) => {
                if (0..outputs).any(|o| !flat.contains(&o)) {
                    invalid!("spec: the tasks own outputs {flat:?}; in the training form they must own every output 0..{}", outputs.saturating_sub(1));
                }
                let mut w = vec![self.inputs.len()];
                w.extend(hidden);
                w.push(outputs);
                Some(w)
            }
            None => None,
        };
        if let Some(s) = &self.synthetic {
            if s.n_train == 0 || s.n_val == 0 {
                invalid!("spec: synthetic `n_train` and `n_val` must be at least 1");
            }
            if !(s.low.is_finite() && s.high.is_finite() && s.low < s.high) {
                invalid!(
                    "spec: synthetic range [{}, {}] must be finite with low < high",
                    s.low,
                    s.high
                );
            }
            if let Some(t) = self.tasks.iter().find(|t| t.target.is_some()) {
                invalid!("spec: task `{}` names a target column, but synthetic data has only expressions", t.name);
            }
        }
        let tr = self.training();
        if tr.epochs == 0 || tr.batch == 0 || !(tr.lr.is_finite() && tr.lr > 0.0) {
            invalid!("spec: `epochs` and `batch` must be at least 1 and `lr` a positive number (got {}, {}, {})", tr.epochs, tr.batch, tr.lr);
        }
        let tasks = TaskStructure {
            tasks: self
                .tasks
                .iter()
                .zip(owned)
                .map(|(t, outputs)| Task {
                    name: t.name.clone(),
                    inputs: t
                        .uses
                        .iter()
                        .flatten()
                        .map(|u| self.inputs.iter().position(|i| i == u).expect("checked"))
                        .collect(),
                    outputs,
                })
                .collect(),
        };
        let resolved = Resolved {
            widths,
            activations,
            tasks,
            loss,
            outputs,
        };
        Ok((Valid::checked(self), resolved))
    }

    /// The tensor names of each layer: the spec's (import form), or `layers.{k}.weight` and
    /// `layers.{k}.bias` (training form, as presets store them).
    pub fn tensor_names(&self, layers: usize) -> Vec<(String, Option<String>)> {
        match &self.layers {
            Some(ls) => ls
                .iter()
                .map(|l| (l.weight.clone(), l.bias.clone()))
                .collect(),
            None => (0..layers)
                .map(|k| {
                    (
                        format!("layers.{k}.weight"),
                        Some(format!("layers.{k}.bias")),
                    )
                })
                .collect(),
        }
    }
}

fn unique<'a>(
    what: &str,
    items: impl Iterator<Item = &'a (impl Ord + std::fmt::Debug + 'a)>,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    for i in items {
        if !seen.insert(i) {
            invalid!("spec: {what}: {i:?} appears twice");
        }
    }
    Ok(())
}

/// A task expression: parsed, and every variable one of the inputs.
fn check_expr(task: &str, expr: &str, inputs: &[String]) -> Result<()> {
    let e = parse_expr(expr, inputs)
        .map_err(|e| Error::Invalid(format!("spec: task `{task}`: {e}")))?;
    for v in exmex::Express::var_names(&e) {
        if !inputs.contains(v) {
            invalid!(
                "spec: task `{task}`: expression `{expr}` uses `{v}`, which is not an input ({})",
                inputs.join(", ")
            );
        }
    }
    Ok(())
}

/// A parsed task expression (exmex: `+ - * / ^`, functions such as `sin`, `exp`, `abs`).
/// Every input name is braced first (`{e}`), exmex's syntax for a variable, so an input named
/// like one of its constants (`e`, `pi`) is the input, not the constant.
pub fn parse_expr(
    expr: &str,
    inputs: &[String],
) -> std::result::Result<exmex::FlatEx<f64>, String> {
    let mut braced = String::with_capacity(expr.len() + 8);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if inputs.iter().any(|i| i == word.as_str()) {
            out.push('{');
            out.push_str(word);
            out.push('}');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in expr.chars() {
        if c.is_alphanumeric()
            || c == '_'
            || (c == '.' && !word.is_empty() && word.chars().all(|d| d.is_ascii_digit()))
        {
            word.push(c);
        } else {
            flush(&mut word, &mut braced);
            braced.push(c);
        }
    }
    flush(&mut word, &mut braced);
    exmex::parse::<f64>(&braced).map_err(|e| format!("expression `{expr}` does not parse: {e}"))
}
