//! Checkpoints as safetensors files that PyTorch can read too.
//!
//! Tensors: each layer's weight (`out x in`) and bias under its [`Layout`]'s names —
//! `layers.{k}.weight` and `layers.{k}.bias` for presets and trained specs, the spec's own
//! names for imported models — plus, in a training checkpoint, Adam's moments as `adam.m.…`
//! and `adam.v.…`. The metadata holds the format tag, the layout and, for training
//! checkpoints, the step, epoch, position in the epoch, Adam's step count and the shuffling
//! RNG's state at the start of the epoch. Everything needed for a bit-exact resume is in the
//! one file. Loading never trusts the bytes: every tensor's presence, shape and dtype is
//! checked against the expected layout. This module encodes and decodes; the run layer reads
//! and writes the files.

use super::adam::AdamState;
use super::{Activation, Layer, Preset, RuntimeModel};
use crate::{Error, Result};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "circuitscope";
const VERSION: &str = "1";

/// How a model's flat parameters (each layer's weight, then its bias) are named and shaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// A preset's compile-time architecture.
    Preset(Preset),
    /// A model with runtime shapes: its widths, each layer's activation, and each layer's
    /// tensor names (no bias name: the layer has none, and its bias is held at zero).
    Spec {
        widths: Vec<usize>,
        activations: Vec<Activation>,
        names: Vec<(String, Option<String>)>,
    },
}

impl Layout {
    /// Every width, inputs to outputs.
    pub fn widths(&self) -> Vec<usize> {
        match self {
            Layout::Preset(p) => p.arch().widths,
            Layout::Spec { widths, .. } => widths.clone(),
        }
    }

    /// Each layer's activation.
    pub fn activations(&self) -> Vec<Activation> {
        match self {
            Layout::Preset(p) => p.arch().activations(),
            Layout::Spec { activations, .. } => activations.clone(),
        }
    }

    /// Each layer's (weight, bias) tensor names.
    pub fn names(&self) -> Vec<(String, Option<String>)> {
        match self {
            Layout::Preset(p) => (0..p.arch().widths.len() - 1)
                .map(|k| {
                    (
                        format!("layers.{k}.weight"),
                        Some(format!("layers.{k}.bias")),
                    )
                })
                .collect(),
            Layout::Spec { names, .. } => names.clone(),
        }
    }

    /// Parameters in the flat order: every layer's weight and bias.
    pub fn n_params(&self) -> usize {
        self.widths().windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// What the layout is, for messages.
    fn describe(&self) -> String {
        match self {
            Layout::Preset(p) => format!("preset `{p}`"),
            Layout::Spec { widths, .. } => format!("a spec model of widths {widths:?}"),
        }
    }

    /// `(name, shape, range in the flat vector)` of every stored tensor, names prefixed.
    fn tensors(&self, prefix: &str) -> Vec<(String, Vec<usize>, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        let mut off = 0;
        for (w, (wn, bn)) in self.widths().windows(2).zip(self.names()) {
            out.push((
                format!("{prefix}{wn}"),
                vec![w[1], w[0]],
                off..off + w[0] * w[1],
            ));
            off += w[0] * w[1];
            if let Some(bn) = bn {
                out.push((format!("{prefix}{bn}"), vec![w[1]], off..off + w[1]));
            }
            off += w[1];
        }
        out
    }

    /// The layout of a runtime model: its widths, activations and the given tensor names.
    pub fn of(model: &RuntimeModel, names: Vec<(String, Option<String>)>) -> Layout {
        Layout::Spec {
            widths: model.widths(),
            activations: model.layers.iter().map(|l| l.activation).collect(),
            names,
        }
    }
}

/// Where training stood when a checkpoint was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Optimiser steps taken.
    pub step: u64,
    /// The epoch in progress (or about to start).
    pub epoch: usize,
    /// Batches of `epoch` already done.
    pub batch: usize,
    /// The shuffling RNG as it was at the start of `epoch`, before that epoch's shuffle.
    pub rng_epoch_start: ChaCha8Rng,
}

/// A model's parameters, with the optimiser state and progress when saved during training.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub layout: Layout,
    pub params: Vec<f32>,
    pub adam: Option<AdamState>,
    pub progress: Option<Progress>,
}

impl Checkpoint {
    /// The checkpoint of a runtime model stored under `names`.
    pub fn of(model: &RuntimeModel, names: Vec<(String, Option<String>)>) -> Checkpoint {
        Checkpoint {
            layout: Layout::of(model, names),
            params: super::Arch::flatten(model),
            adam: None,
            progress: None,
        }
    }

    /// The runtime view of the stored model.
    pub fn view(&self) -> Result<RuntimeModel> {
        match &self.layout {
            Layout::Preset(p) => p.arch().view(&self.params),
            Layout::Spec {
                widths,
                activations,
                ..
            } => {
                if self.params.len() != self.layout.n_params() {
                    return Err(Error::Data(format!(
                        "{} parameters for widths {widths:?}",
                        self.params.len()
                    )));
                }
                let mut off = 0;
                let layers = widths
                    .windows(2)
                    .zip(activations)
                    .map(|(w, &activation)| {
                        let weight = self.params[off..off + w[0] * w[1]].to_vec();
                        off += w[0] * w[1];
                        let bias = self.params[off..off + w[1]].to_vec();
                        off += w[1];
                        Layer {
                            d_in: w[0],
                            d_out: w[1],
                            weight,
                            bias,
                            activation,
                        }
                    })
                    .collect();
                Ok(RuntimeModel { layers })
            }
        }
    }

    /// The checkpoint as safetensors bytes; `path` only names it in errors.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>> {
        let mut named: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
        for (name, shape, r) in self.layout.tensors("") {
            named.push((name, shape, &self.params[r]));
        }
        if let Some(adam) = &self.adam {
            for (name, shape, r) in self.layout.tensors("adam.m.") {
                named.push((name, shape, &adam.m[r]));
            }
            for (name, shape, r) in self.layout.tensors("adam.v.") {
                named.push((name, shape, &adam.v[r]));
            }
        }
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = named
            .into_iter()
            .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views: Vec<(String, TensorView<'_>)> = bytes
            .iter()
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F32, s.clone(), b).expect("sizes agree"),
                )
            })
            .collect();
        let mut meta = HashMap::new();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("version".into(), VERSION.into());
        match &self.layout {
            Layout::Preset(p) => {
                meta.insert("preset".into(), p.name().into());
                meta.insert(
                    "arch".into(),
                    serde_json::to_string(&p.arch()).expect("arch serialises"),
                );
            }
            spec => {
                meta.insert(
                    "layout".into(),
                    serde_json::to_string(spec).expect("layout serialises"),
                );
            }
        }
        if let Some(adam) = &self.adam {
            meta.insert("adam_t".into(), adam.t.to_string());
        }
        if let Some(p) = &self.progress {
            meta.insert("step".into(), p.step.to_string());
            meta.insert("epoch".into(), p.epoch.to_string());
            meta.insert("batch".into(), p.batch.to_string());
            meta.insert(
                "rng_epoch_start".into(),
                serde_json::to_string(&p.rng_epoch_start).expect("rng serialises"),
            );
        }
        safetensors::serialize(views, &Some(meta))
            .map_err(|e| Error::bad_file(path, format!("cannot encode checkpoint: {e}")))
    }

    /// Reads a checkpoint from its bytes; `path` only names it in errors. With `expect`, the
    /// stored tensors must have that layout's names and shapes.
    pub fn from_bytes(bytes: &[u8], path: &Path, expect: Option<&Layout>) -> Result<Checkpoint> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| {
            Error::bad_file(
                path,
                format!("not a safetensors checkpoint (corrupt or truncated): {e:?}"),
            )
        })?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::bad_file(path, format!("unreadable safetensors header: {e:?}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| Error::bad_file(path, format!("checkpoint metadata lacks `{k}`")))
        };
        if get("format")? != FORMAT {
            return Err(Error::bad_file(
                path,
                format!(
                    "metadata format is `{}`, expected `{FORMAT}`",
                    meta["format"]
                ),
            ));
        }
        if get("version")? != VERSION {
            return Err(Error::bad_file(
                path,
                format!(
                    "checkpoint version {} is not supported (this build reads {VERSION})",
                    meta["version"]
                ),
            ));
        }
        let stored = match (meta.get("preset"), meta.get("layout")) {
            (Some(p), _) => Layout::Preset(
                Preset::from_name(p).map_err(|e| Error::bad_file(path, e.to_string()))?,
            ),
            (None, Some(l)) => serde_json::from_str(l).map_err(|e| {
                Error::bad_file(path, format!("metadata `layout` is not a layout: {e}"))
            })?,
            (None, None) => {
                return Err(Error::bad_file(
                    path,
                    "checkpoint metadata lacks `preset` (or `layout`)",
                ))
            }
        };
        let layout = expect.cloned().unwrap_or_else(|| stored.clone());
        let mismatch = |problem: String| Error::ShapeMismatch {
            path: path.into(),
            preset: layout.describe(),
            problem: format!(
                "{problem} (stored {})",
                match &stored {
                    Layout::Preset(p) => format!("preset: {p}"),
                    other => other.describe(),
                }
            ),
        };
        let read_flat = |prefix: &str| -> Result<Vec<f32>> {
            let mut flat = vec![0.0f32; layout.n_params()];
            for (name, shape, r) in layout.tensors(prefix) {
                let t = st
                    .tensor(&name)
                    .map_err(|_| mismatch(format!("tensor `{name}` is missing")))?;
                if t.shape() != shape.as_slice() {
                    return Err(mismatch(format!(
                        "tensor `{name}` has shape {:?}, expected {shape:?}",
                        t.shape()
                    )));
                }
                if t.dtype() != Dtype::F32 {
                    return Err(Error::bad_file(
                        path,
                        format!("tensor `{name}` is {:?}, expected F32", t.dtype()),
                    ));
                }
                for (v, c) in flat[r].iter_mut().zip(t.data().chunks_exact(4)) {
                    *v = f32::from_le_bytes(c.try_into().unwrap());
                }
            }
            Ok(flat)
        };
        let params = read_flat("")?;
        let adam = match meta.get("adam_t") {
            None => None,
            Some(t) => {
                let t = t
                    .parse()
                    .map_err(|_| Error::bad_file(path, format!("adam_t `{t}` is not a number")))?;
                Some(AdamState {
                    m: read_flat("adam.m.")?,
                    v: read_flat("adam.v.")?,
                    t,
                })
            }
        };
        let progress = match meta.get("step") {
            None => None,
            Some(_) => {
                let num = |k: &str| -> Result<u64> {
                    get(k)?.parse().map_err(|_| {
                        Error::bad_file(path, format!("metadata `{k}` is not a number"))
                    })
                };
                let rng = serde_json::from_str(get("rng_epoch_start")?).map_err(|e| {
                    Error::bad_file(
                        path,
                        format!("metadata `rng_epoch_start` is not an RNG state: {e}"),
                    )
                })?;
                Some(Progress {
                    step: num("step")?,
                    epoch: num("epoch")? as usize,
                    batch: num("batch")? as usize,
                    rng_epoch_start: rng,
                })
            }
        };
        Ok(Checkpoint {
            layout,
            params,
            adam,
            progress,
        })
    }
}
