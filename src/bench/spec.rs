//! `circuitscope bench import` and `bench spec-train`: how fast users' models come in (a
//! 784→512→512→10 state dict imported) and how fast a spec architecture trains against the
//! preset of the same shape (both on the fused engine, interleaved). Scratch files go to the
//! system's temporary directory and are removed.

use crate::data::table::to_csv;
use crate::model::import::{build_model, read_state_dict, sequential_layers};
use crate::model::net::Engine;
use crate::model::train::TrainConfig;
use crate::model::{Activation, Preset};
use crate::runlog::import::{import_run, ImportOptions, Sequential};
use crate::runlog::preset::preset_data;
use crate::runlog::spec::SpecText;
use crate::runlog::spec_train::{train_spec, SpecTrainOptions};
use crate::runlog::train::train;
use crate::{invalid, Error, Result};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The medians of [`import_speed`], in seconds.
#[derive(Debug, Clone)]
pub struct ImportTiming {
    pub widths: Vec<usize>,
    pub bytes: usize,
    /// Reading the file, parsing the state dict, recognising the Sequential, building the model.
    pub weights_s: f64,
    /// `import_run` end to end with `rows` rows of data (read, split, val.csv, model, log).
    pub import_s: f64,
    pub rows: usize,
    pub repeats: usize,
}

impl std::fmt::Display for ImportTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} ({:.1} MB of f32): weights only {:.3} s; whole import with {} rows of data {:.3} s (medians of {})",
            self.widths,
            self.bytes as f64 / 1e6,
            self.weights_s,
            self.rows,
            self.import_s,
            self.repeats
        )
    }
}

fn scratch(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("circuitscope-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "cannot create", e))?;
    Ok(dir)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A state dict as `nn.Sequential(Linear, ReLU, Linear, …)` saves it: `0.weight` (`[out, in]`),
/// `0.bias`, `2.weight`, …, uniform in ±1/√fan_in.
fn sequential_bytes(widths: &[usize], seed: u64) -> Result<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (k, w) in widths.windows(2).enumerate() {
        let bound = 1.0 / (w[0] as f32).sqrt();
        let mut values = |n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|_| rng.gen_range(-bound..bound).to_le_bytes())
                .collect()
        };
        tensors.push((
            format!("{}.weight", 2 * k),
            vec![w[1], w[0]],
            values(w[0] * w[1]),
        ));
        tensors.push((format!("{}.bias", 2 * k), vec![w[1]], values(w[1])));
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Data(format!("bench import: {e:?}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, &None).map_err(|e| Error::Data(format!("bench import: {e:?}")))
}

/// Imports a 784→512→512→10 ReLU classifier `repeats` times: the weights alone, and the whole
/// `import` with `rows` rows of data.
pub fn import_speed(repeats: usize, rows: usize) -> Result<ImportTiming> {
    if repeats == 0 || rows < 2 {
        invalid!("bench import: --repeats must be at least 1 and --rows at least 2");
    }
    let widths = vec![784, 512, 512, 10];
    let dir = scratch("import")?;
    let weights = dir.join("mlp.safetensors");
    let bytes = sequential_bytes(&widths, 0)?;
    std::fs::write(&weights, &bytes).map_err(|e| Error::io(&weights, "cannot write", e))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let inputs: Vec<String> = (0..784).map(|i| format!("p{i}")).collect();
    let mut columns: Vec<(String, Vec<f64>)> = inputs
        .iter()
        .map(|n| {
            (
                n.clone(),
                (0..rows).map(|_| rng.gen_range(0.0..1.0)).collect(),
            )
        })
        .collect();
    columns.push(("label".into(), (0..rows).map(|r| (r % 10) as f64).collect()));
    let data = dir.join("data.csv");
    std::fs::write(&data, to_csv(&columns)).map_err(|e| Error::io(&data, "cannot write", e))?;
    let (mut weights_s, mut import_s) = (Vec::new(), Vec::new());
    let acts = vec![Activation::Relu, Activation::Relu, Activation::Identity];
    for r in 0..repeats {
        let t = Instant::now();
        let raw = std::fs::read(&weights).map_err(|e| Error::io(&weights, "cannot read", e))?;
        let sd = read_state_dict(&raw, &weights)?;
        let names = sequential_layers(&sd, &weights)?;
        let model = build_model(&sd, &names, &acts, 784, &weights)?;
        weights_s.push(t.elapsed().as_secs_f64());
        assert_eq!(model.widths(), widths);

        let out = dir.join(format!("run{r}"));
        let t = Instant::now();
        import_run(&ImportOptions {
            weights: weights.clone(),
            spec: Err(Sequential {
                activations: vec!["relu".into(), "relu".into(), "identity".into()],
                inputs: inputs.clone(),
                tasks: vec![],
                classify: Some("label".into()),
            }),
            data: data.clone(),
            val_data: None,
            val_fraction: 0.2,
            split_seed: 0,
            expect: None,
            out: out.clone(),
        })?;
        import_s.push(t.elapsed().as_secs_f64());
        let _ = std::fs::remove_dir_all(&out);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ImportTiming {
        widths,
        bytes: bytes.len(),
        weights_s: median(weights_s),
        import_s: median(import_s),
        rows,
        repeats,
    })
}

/// [`spec_vs_preset`]'s rates, in examples/s, each repeat's.
#[derive(Debug, Clone)]
pub struct SpecTiming {
    pub preset: Preset,
    pub widths: Vec<usize>,
    pub activation: &'static str,
    pub batch: usize,
    pub epochs: usize,
    pub preset_rates: Vec<f64>,
    pub spec_rates: Vec<f64>,
}

impl std::fmt::Display for SpecTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (p, s) = (
            median(self.preset_rates.clone()),
            median(self.spec_rates.clone()),
        );
        write!(
            f,
            "{:?} {}, batch {}, {} epochs, fused engine: preset `{}` {p:.0} examples/s, spec {s:.0} examples/s: the spec at {:.1}% of the preset (medians of {})",
            self.widths,
            self.activation,
            self.batch,
            self.epochs,
            self.preset,
            100.0 * s / p,
            self.preset_rates.len()
        )
    }
}

/// The training-form spec of a `products` preset: the same widths and activation, `a*b` and `c*d`,
/// as many synthetic training and validation rows.
fn products_spec(widths: &[usize], activation: &str, n_train: usize, n_val: usize) -> String {
    let hidden = &widths[1..widths.len() - 1];
    format!(
        r#"{{"format": "circuitscope-spec", "version": 1, "inputs": ["a", "b", "c", "d"],
  "hidden": {hidden:?}, "activation": "{activation}",
  "tasks": [{{"name": "ab", "expr": "a*b"}}, {{"name": "cd", "expr": "c*d"}}],
  "synthetic": {{"n_train": {n_train}, "n_val": {n_val}}}}}"#
    )
}

/// Trains `preset` (a `products` network) and the spec of its shape `repeats` times each,
/// alternating, on the fused engine with the same batch, epochs and learning rate.
pub fn spec_vs_preset(
    preset: Preset,
    batch: usize,
    epochs: usize,
    repeats: usize,
) -> Result<SpecTiming> {
    if !matches!(
        preset,
        Preset::Products
            | Preset::Products16
            | Preset::Products64
            | Preset::ProductsPlanted
            | Preset::ProductsGelu
    ) {
        invalid!("bench spec-train compares a `products` preset (4 inputs, a*b and c*d) with its spec; `{preset}` is not one");
    }
    if repeats == 0 {
        invalid!("bench spec-train: --repeats must be at least 1");
    }
    let cfg = TrainConfig {
        batch,
        epochs,
        engine: Engine::Fused,
        log_every: usize::MAX,
        ..TrainConfig::defaults(preset)
    }
    .check()?;
    let data = preset_data(&cfg)?;
    let arch = preset.arch();
    let widths = arch.widths.clone();
    let spec = SpecText {
        origin: Path::new("bench").into(),
        text: products_spec(&widths, arch.hidden.spec_name().0, data.train.n, data.val.n),
    };
    let options = SpecTrainOptions {
        spec,
        epochs: Some(epochs),
        batch: Some(batch),
        lr: Some(cfg.lr),
        log_every: Some(usize::MAX),
        ..Default::default()
    };
    let dir = scratch("spec-train")?;
    let (mut preset_rates, mut spec_rates) = (Vec::new(), Vec::new());
    for r in 0..repeats {
        let root = dir.join(format!("preset{r}"));
        preset_rates.push(train(&root, &cfg, &mut |_| {})?.examples_per_s);
        let _ = std::fs::remove_dir_all(&root);
        let root = dir.join(format!("spec{r}"));
        spec_rates.push(train_spec(&root, &options, &mut |_| {})?.examples_per_s);
        let _ = std::fs::remove_dir_all(&root);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(SpecTiming {
        preset,
        widths,
        activation: arch.hidden.spec_name().0,
        batch,
        epochs,
        preset_rates,
        spec_rates,
    })
}
