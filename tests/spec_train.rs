//! `train --spec`: architectures from a spec trained on the fused engine with runtime shapes,
//! from synthetic expressions, from a CSV's target columns and as a classifier from Parquet;
//! the spec run directory they write; every activation trains.

use circuitscope::model::import::read_state_dict;
use circuitscope::runlog::load::LoadedRun;
use circuitscope::runlog::spec::SpecText;
use circuitscope::runlog::spec_train::{train_spec, SpecTrainOptions};
use circuitscope::runlog::train::TrainOutcome;
use std::path::{Path, PathBuf};

fn root(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn spec(origin: &str, text: &str) -> SpecText {
    SpecText {
        origin: origin.into(),
        text: text.into(),
    }
}

fn train(out: &Path, o: SpecTrainOptions) -> TrainOutcome {
    train_spec(out, &o, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_three_task_spec_trains_and_writes_a_spec_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train(
        &out,
        SpecTrainOptions {
            spec: SpecText::read(&root("tests/specs/small3.json")).unwrap(),
            checkpoint_every: Some(50),
            ..Default::default()
        },
    );
    // 2048 examples, batch 64, 12 epochs.
    assert_eq!(o.steps, 32 * 12);
    assert_eq!(o.val.len(), 3);
    for t in &o.val {
        // A small budget (measured 0.983-0.986): learned, not yet the README's 0.99.
        assert!(t.r2.unwrap() > 0.9, "{t:?}");
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["format"], "circuitscope-run/2");
    assert_eq!(run["origin"], "train");
    assert_eq!(run["training"]["epochs"], 12);
    // Checkpoints under the training form's tensor names.
    let ckpts: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        ckpts.iter().any(|c| c == "step-50.safetensors"),
        "{ckpts:?}"
    );
    let sd = read_state_dict(&std::fs::read(out.join("model.safetensors")).unwrap(), &out).unwrap();
    let names: Vec<&String> = sd.tensors.keys().collect();
    assert_eq!(
        names,
        [
            "layers.0.bias",
            "layers.0.weight",
            "layers.1.bias",
            "layers.1.weight",
            "layers.2.bias",
            "layers.2.weight"
        ]
    );
    assert_eq!(sd.tensors["layers.0.weight"].0, vec![24, 6]);
    let val = std::fs::read_to_string(out.join("data/val.csv")).unwrap();
    assert_eq!(val.lines().count(), 257);
    // The run reads back as the analyses see it: the same model, 3 tasks, the stored split.
    let l = LoadedRun::open(&out).unwrap();
    assert_eq!(l.model.widths(), vec![6, 24, 24, 3]);
    assert_eq!(l.data.val.n, 256);
    assert_eq!(l.data.tasks.tasks.len(), 3);
}

#[test]
fn a_spec_trains_on_a_csvs_target_columns_and_a_classifier_on_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let regression = r#"{"format": "circuitscope-spec", "version": 1,
        "inputs": ["a", "b", "c", "d", "e", "f"], "hidden": [16, 16], "activation": "tanh",
        "tasks": [{"name": "ab", "target": "y_ab"}, {"name": "cd", "target": "y_cd"},
                  {"name": "ef", "target": "y_ef"}], "epochs": 300}"#;
    let o = train(
        &tmp.path().join("reg"),
        SpecTrainOptions {
            spec: spec("reg.json", regression),
            data: Some(root("fixtures/pytorch/mlp3.csv")),
            val_fraction: 0.25,
            ..Default::default()
        },
    );
    // 600 rows, 150 held out; products leave their plateau slowly on 450 rows (measured
    // R² 0.94-0.97 at 300 epochs, about 0 at 40).
    assert_eq!(o.steps, (450usize).div_ceil(64) as u64 * 300);
    let l = LoadedRun::open(&tmp.path().join("reg")).unwrap();
    assert_eq!(l.data.val.n, 150);
    assert!(o.val.iter().all(|t| t.r2.unwrap() > 0.8), "{:?}", o.val);

    // No `outputs`: one per class, counted from the labels.
    let classifier = r#"{"format": "circuitscope-spec", "version": 1,
        "inputs": ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"], "hidden": [32],
        "activation": "relu", "tasks": [{"name": "class", "target": "label",
        "loss": "cross_entropy"}], "epochs": 40, "lr": 0.01}"#;
    let o = train(
        &tmp.path().join("clf"),
        SpecTrainOptions {
            spec: spec("clf.json", classifier),
            data: Some(root("fixtures/pytorch/digits10.parquet")),
            val_fraction: 0.2,
            ..Default::default()
        },
    );
    let acc = o.val[0].accuracy.unwrap();
    assert!(
        acc > 0.6,
        "held-out accuracy {acc} (measured 0.88; chance about 0.1)"
    );
    let l = LoadedRun::open(&tmp.path().join("clf")).unwrap();
    assert_eq!(l.model.widths(), vec![8, 32, 10]);
}

#[test]
fn every_spec_activation_trains() {
    let tmp = tempfile::tempdir().unwrap();
    for act in circuitscope::model::Activation::SPEC_NAMES {
        let slope = if act == "leaky_relu" {
            r#", "slope": 0.05"#
        } else {
            ""
        };
        let text = format!(
            r#"{{"format": "circuitscope-spec", "version": 1, "inputs": ["a", "b"],
            "hidden": [16, 16], "activation": "{act}"{slope},
            "tasks": [{{"name": "sum", "expr": "a + 2*b"}}],
            "synthetic": {{"n_train": 1024, "n_val": 256, "seed": 1}}, "epochs": 30}}"#
        );
        let o = train(
            &tmp.path().join(act),
            SpecTrainOptions {
                spec: spec(&format!("{act}.json"), &text),
                ..Default::default()
            },
        );
        // A linear target: every activation fits it in 30 epochs (sigmoid, the slowest, is at
        // 0.07 after 8 and 0.99 after 30).
        let r2 = o.val[0].r2.unwrap();
        assert!(r2 > 0.9, "{act}: held-out R² {r2}");
        let l = LoadedRun::open(&tmp.path().join(act)).unwrap();
        let (name, s) = l.model.layers[0].activation.spec_name();
        assert_eq!(name, act);
        assert_eq!(s, (act == "leaky_relu").then_some(0.05));
    }
}
