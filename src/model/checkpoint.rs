//! Checkpoints as safetensors files that PyTorch can read too.
//!
//! Tensors: `layers.{k}.weight` (`out x in`) and `layers.{k}.bias` for every layer, plus, in a
//! training checkpoint, Adam's moments as `adam.m.…` and `adam.v.…`. The metadata holds the
//! format tag, preset, architecture and, for training checkpoints, the step, epoch, position
//! in the epoch, Adam's step count and the shuffling RNG's state at the start of the epoch.
//! Everything needed for a bit-exact resume is in the one file. Loading never trusts the
//! bytes: every tensor's presence, shape and dtype is checked against the preset. This module
//! encodes and decodes; the run layer reads and writes the files.

use super::adam::AdamState;
use super::{Preset, RuntimeModel};
use crate::{Error, Result};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "circuitscope";
const VERSION: &str = "1";

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
    pub preset: Preset,
    pub params: Vec<f32>,
    pub adam: Option<AdamState>,
    pub progress: Option<Progress>,
}

impl Checkpoint {
    /// The runtime view of the stored model.
    pub fn view(&self) -> Result<RuntimeModel> {
        self.preset.arch().view(&self.params)
    }

    /// The checkpoint as safetensors bytes; `path` only names it in errors.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>> {
        let arch = self.preset.arch();
        let mut named: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
        // (name, shape, range in the flat vector) of every tensor of one flat parameter set.
        let layout =
            |prefix: &str, flat: &[f32]| -> Vec<(String, Vec<usize>, std::ops::Range<usize>)> {
                let mut out = Vec::new();
                let mut off = 0;
                for (k, w) in arch.widths.windows(2).enumerate() {
                    out.push((
                        format!("{prefix}layers.{k}.weight"),
                        vec![w[1], w[0]],
                        off..off + w[0] * w[1],
                    ));
                    off += w[0] * w[1];
                    out.push((
                        format!("{prefix}layers.{k}.bias"),
                        vec![w[1]],
                        off..off + w[1],
                    ));
                    off += w[1];
                }
                assert_eq!(off, flat.len(), "flat length matches the architecture");
                out
            };
        for (name, shape, r) in layout("", &self.params) {
            named.push((name, shape, &self.params[r]));
        }
        if let Some(adam) = &self.adam {
            for (name, shape, r) in layout("adam.m.", &adam.m) {
                named.push((name, shape, &adam.m[r]));
            }
            for (name, shape, r) in layout("adam.v.", &adam.v) {
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
        meta.insert("preset".into(), self.preset.name().into());
        meta.insert(
            "arch".into(),
            serde_json::to_string(&arch).expect("arch serialises"),
        );
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
    /// stored shapes must be that preset's.
    pub fn from_bytes(bytes: &[u8], path: &Path, expect: Option<Preset>) -> Result<Checkpoint> {
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
        let stored =
            Preset::from_name(get("preset")?).map_err(|e| Error::bad_file(path, e.to_string()))?;
        let preset = expect.unwrap_or(stored);
        let arch = preset.arch();
        let read_flat = |prefix: &str| -> Result<Vec<f32>> {
            let mut flat = Vec::with_capacity(arch.n_params());
            for (k, w) in arch.widths.windows(2).enumerate() {
                for (part, shape) in [("weight", vec![w[1], w[0]]), ("bias", vec![w[1]])] {
                    let name = format!("{prefix}layers.{k}.{part}");
                    let t = st.tensor(&name).map_err(|_| Error::ShapeMismatch {
                        path: path.into(),
                        preset: preset.name().into(),
                        problem: format!("tensor `{name}` is missing (stored preset: {stored})"),
                    })?;
                    if t.shape() != shape.as_slice() {
                        return Err(Error::ShapeMismatch {
                            path: path.into(),
                            preset: preset.name().into(),
                            problem: format!("tensor `{name}` has shape {:?}, expected {shape:?} (stored preset: {stored})", t.shape()),
                        });
                    }
                    if t.dtype() != Dtype::F32 {
                        return Err(Error::bad_file(
                            path,
                            format!("tensor `{name}` is {:?}, expected F32", t.dtype()),
                        ));
                    }
                    flat.extend(
                        t.data()
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes(c.try_into().unwrap())),
                    );
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
            preset,
            params,
            adam,
            progress,
        })
    }
}
