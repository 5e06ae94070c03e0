//! Importing a model trained elsewhere: a safetensors state dict as PyTorch writes it
//! (`safetensors.torch.save_file(model.state_dict())`: `nn.Linear` weights `[out, in]`, nested
//! names, f32, f64, f16 or bf16) turned into the [`RuntimeModel`] every stage reads, checked
//! tensor by tensor, and compared with the outputs PyTorch itself computed. Shapes alone cannot
//! catch a transposed square matrix; the outputs can. This module reads bytes it is given; it
//! never opens a file.

use super::{Activation, Layer, RuntimeModel};
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;

/// Relative tolerance of `--expect`: per output column, max |Δ| / max |y|.
pub const EXPECT_TOLERANCE: f64 = 1e-5;

/// Tensors by name: shape and values (widened to f64).
#[derive(Debug, Clone, PartialEq)]
pub struct StateDict {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
    /// The stored dtypes (`F32`, `F16`, …), each once.
    pub dtypes: Vec<String>,
}

/// Reads a safetensors file's bytes; `path` only names it in errors.
pub fn read_state_dict(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::bad_file(
            path,
            format!("not a safetensors file (corrupt or truncated): {e:?}"),
        )
    })?;
    let mut tensors = BTreeMap::new();
    let mut dtypes = Vec::new();
    for (name, t) in st.tensors() {
        let dt = format!("{:?}", t.dtype());
        if !dtypes.contains(&dt) {
            dtypes.push(dt);
        }
        let data = t.data();
        let values: Vec<f64> = match t.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
                .collect(),
            other => {
                return Err(Error::bad_file(
                    path,
                    format!("tensor `{name}` is {other:?}; weights must be F32, F64, F16 or BF16"),
                ))
            }
        };
        tensors.insert(name, (t.shape().to_vec(), values));
    }
    dtypes.sort();
    Ok(StateDict { tensors, dtypes })
}

/// The linear layers of a plain `nn.Sequential` from its key names (`0.weight`, `0.bias`,
/// `net.2.weight`, …): grouped by the prefix before `.weight` / `.bias`, ordered by the
/// module index that ends the prefix. Anything else (another kind of module, names without an
/// index) is refused with the names it could not place.
pub fn sequential_layers(sd: &StateDict, path: &Path) -> Result<Vec<(String, Option<String>)>> {
    let mut layers: BTreeMap<(String, usize), (Option<String>, Option<String>)> = BTreeMap::new();
    let mut odd = Vec::new();
    for name in sd.tensors.keys() {
        let (prefix, part) = match name.rsplit_once('.') {
            Some((p, part @ ("weight" | "bias"))) => (p, part),
            _ => {
                odd.push(name.clone());
                continue;
            }
        };
        let (outer, index) = match prefix.rsplit_once('.') {
            Some((o, i)) => (o.to_string(), i),
            None => (String::new(), prefix),
        };
        let Ok(index) = index.parse::<usize>() else {
            odd.push(name.clone());
            continue;
        };
        let slot = layers.entry((outer, index)).or_default();
        if part == "weight" {
            slot.0 = Some(name.clone());
        } else {
            slot.1 = Some(name.clone());
        }
    }
    let outers: std::collections::BTreeSet<&String> = layers.keys().map(|k| &k.0).collect();
    if !odd.is_empty() || outers.len() > 1 || layers.is_empty() {
        return Err(Error::bad_file(
            path,
            format!(
                "not a plain nn.Sequential of Linear layers{}; give a --spec naming each layer's tensors",
                if odd.is_empty() {
                    String::new()
                } else {
                    format!(" (cannot place {})", odd.join(", "))
                }
            ),
        ));
    }
    layers
        .into_iter()
        .map(|((_, i), (w, b))| {
            let w = w.ok_or_else(|| {
                Error::bad_file(path, format!("module {i} has a bias but no weight"))
            })?;
            Ok((w, b))
        })
        .collect()
}

/// The model whose layers are the tensors `names` (weight, optional bias) with `activations`,
/// taking `d_in` inputs. Every tensor must exist, be finite and chain with the layer before.
pub fn build_model(
    sd: &StateDict,
    names: &[(String, Option<String>)],
    activations: &[Activation],
    d_in: usize,
    path: &Path,
) -> Result<RuntimeModel> {
    if names.len() != activations.len() {
        return Err(Error::Invalid(format!(
            "{} activations for {} layers",
            activations.len(),
            names.len()
        )));
    }
    let get = |name: &str| -> Result<&(Vec<usize>, Vec<f64>)> {
        sd.tensors.get(name).ok_or_else(|| {
            let known: Vec<&String> = sd.tensors.keys().collect();
            Error::bad_file(
                path,
                format!(
                    "tensor `{name}` is missing (the file has {})",
                    known
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    };
    let finite = |name: &str, v: &[f64]| -> Result<()> {
        match v.iter().position(|x| !x.is_finite()) {
            Some(i) => Err(Error::bad_file(
                path,
                format!("tensor `{name}` holds {} at index {i}", v[i]),
            )),
            None => Ok(()),
        }
    };
    let mut layers = Vec::new();
    let mut width = d_in;
    for (k, ((w, b), &act)) in names.iter().zip(activations).enumerate() {
        let (shape, values) = get(w)?;
        let [d_out, cols] = shape[..] else {
            return Err(Error::bad_file(
                path,
                format!("tensor `{w}` has shape {shape:?}; a Linear weight is [out, in]"),
            ));
        };
        if cols != width {
            return Err(Error::bad_file(
                path,
                format!(
                    "shapes do not chain: layer {k}'s weight `{w}` is {shape:?} and takes {cols} inputs, but {} gives {width}",
                    if k == 0 { "the spec's inputs".to_string() } else { format!("layer {}", k - 1) }
                ),
            ));
        }
        finite(w, values)?;
        let bias = match b {
            Some(b) => {
                let (bshape, bvalues) = get(b)?;
                if bshape[..] != [d_out] {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "tensor `{b}` has shape {bshape:?}; the bias of `{w}` is [{d_out}]"
                        ),
                    ));
                }
                finite(b, bvalues)?;
                bvalues.iter().map(|&v| v as f32).collect()
            }
            None => vec![0.0; d_out],
        };
        layers.push(Layer {
            d_in: width,
            d_out,
            weight: values.iter().map(|&v| v as f32).collect(),
            bias,
            activation: act,
        });
        width = d_out;
    }
    let model = RuntimeModel { layers };
    model.check()?;
    Ok(model)
}

/// Compares `model`'s outputs on `x` (`n x d_in`) with `expected` (one column per output,
/// `output_0`, `output_1`, …). Refuses, naming the largest difference, when for any column
/// max |Δ| / max |y| exceeds [`EXPECT_TOLERANCE`]; returns the worst relative difference.
/// `row_name` names a 0-based row in errors as its file does (`row 3 (line 4)`).
pub fn check_expected(
    model: &RuntimeModel,
    x: &[f64],
    expected: &[Vec<f64>],
    row_name: &dyn Fn(usize) -> String,
) -> Result<f64> {
    let out = model.forward(x)?;
    let d = model.d_out();
    if expected.len() != d {
        return Err(Error::Data(format!(
            "the expected outputs have {} columns, the model has {d} outputs",
            expected.len()
        )));
    }
    let n = out.len() / d.max(1);
    let mut worst = 0.0f64;
    for (o, col) in expected.iter().enumerate() {
        if col.len() != n {
            return Err(Error::Data(format!(
                "the expected outputs: output_{o} has {} rows, the inputs {n}",
                col.len()
            )));
        }
        let scale = col.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
        let (row, diff) = (0..n)
            .map(|r| (r, (out[r * d + o] - col[r]).abs()))
            .fold((0, 0.0), |b, c| if c.1 > b.1 { c } else { b });
        let rel = diff / scale;
        if rel > EXPECT_TOLERANCE {
            return Err(Error::Data(format!(
                "the imported model does not compute what PyTorch computed: output_{o}, {}: {} here, {} expected (|Δ| {diff:.3e}, {rel:.2e} of the column's largest |y|, above {EXPECT_TOLERANCE:e}); a transposed or misnamed tensor, or a wrong activation?",
                row_name(row),
                out[row * d + o],
                col[row]
            )));
        }
        worst = worst.max(rel);
    }
    Ok(worst)
}
