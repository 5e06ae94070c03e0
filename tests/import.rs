//! Models trained by PyTorch (`fixtures/pytorch`, written by `fixtures/pytorch/make.py`)
//! imported into runs: outputs equal PyTorch's, in f32, f16 and bf16 and with nested names;
//! every analysis reads the imported run as it reads a preset's; IG adds up exactly on the
//! piecewise-linear ones.

use circuitscope::eval::ablation::Ablation;
use circuitscope::graph::GraphSpec;
use circuitscope::model::import::read_state_dict;
use circuitscope::probe::ProbeConfig;
use circuitscope::runlog::atypical::atypical_run;
use circuitscope::runlog::eval::eval_run;
use circuitscope::runlog::graph::graph_run;
use circuitscope::runlog::import::{import_run, ImportOptions, ImportReport, Sequential};
use circuitscope::runlog::load::LoadedRun;
use circuitscope::runlog::probe::probe_run;
use circuitscope::runlog::spec::SpecText;
use std::path::{Path, PathBuf};

fn fix(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pytorch")
        .join(name)
}

/// Imports `weights` with the spec `spec` (a fixture name or a file) and `data` into `out`.
fn import(
    weights: &str,
    spec: &Path,
    data: &str,
    expect: Option<&str>,
    out: &Path,
) -> circuitscope::Result<ImportReport> {
    import_run(&ImportOptions {
        weights: fix(weights),
        spec: Ok(SpecText::read(spec)?),
        data: fix(data),
        val_data: None,
        val_fraction: 0.2,
        split_seed: 0,
        expect: expect.map(fix),
        out: out.to_path_buf(),
    })
}

#[test]
fn pytorch_outputs_are_matched_in_every_dtype_and_with_nested_names() {
    let tmp = tempfile::tempdir().unwrap();
    for (weights, spec, expect, dtype) in [
        (
            "mlp3.safetensors",
            "mlp3.spec.json",
            "mlp3.expect.csv",
            "F32",
        ),
        (
            "mlp3.f16.safetensors",
            "mlp3.spec.json",
            "mlp3.f16.expect.csv",
            "F16",
        ),
        (
            "mlp3.bf16.safetensors",
            "mlp3.spec.json",
            "mlp3.bf16.expect.csv",
            "BF16",
        ),
        (
            "mlp3.nested.safetensors",
            "mlp3.nested.spec.json",
            "mlp3.expect.csv",
            "F32",
        ),
        (
            "digits10.safetensors",
            "digits10.spec.json",
            "digits10.expect.csv",
            "F32",
        ),
    ] {
        let data = if weights.starts_with("digits") {
            "digits10.parquet"
        } else {
            "mlp3.csv"
        };
        let out = tmp.path().join(weights);
        let r = import(weights, &fix(spec), data, Some(expect), &out).unwrap();
        let err = r.expect_error.unwrap();
        assert!(err < 1e-6, "{weights}: outputs differ by {err:e} of scale");
        assert_eq!(r.dtypes, vec![dtype.to_string()], "{weights}");
        // The run's model is stored under the spec's own tensor names.
        let stored = std::fs::read(out.join("model.safetensors")).unwrap();
        let sd = read_state_dict(&stored, &out).unwrap();
        let original = read_state_dict(&std::fs::read(fix(weights)).unwrap(), &out).unwrap();
        assert_eq!(
            sd.tensors.keys().collect::<Vec<_>>(),
            original.tensors.keys().collect::<Vec<_>>()
        );
    }
    // A half-precision copy checked against the f32 model's outputs is off by more than
    // rounding of the outputs: the check sees which weights PyTorch used.
    let e = import(
        "mlp3.f16.safetensors",
        &fix("mlp3.spec.json"),
        "mlp3.csv",
        Some("mlp3.expect.csv"),
        &tmp.path().join("f16-vs-f32"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("does not compute what PyTorch computed"), "{e}");
    assert!(!tmp.path().join("f16-vs-f32").exists());
}

#[test]
fn a_plain_sequential_is_recognised_without_a_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let r = import_run(&ImportOptions {
        weights: fix("mlp3.safetensors"),
        spec: Err(Sequential {
            activations: vec!["tanh".into(), "leaky_relu:0.1".into(), "identity".into()],
            inputs: "a,b,c,d,e,f".split(',').map(String::from).collect(),
            tasks: vec!["y_ab".into(), "y_cd".into(), "y_ef".into()],
            classify: None,
        }),
        data: fix("mlp3.csv"),
        val_data: None,
        val_fraction: 0.2,
        split_seed: 0,
        expect: Some(fix("mlp3.expect.csv")),
        out: tmp.path().join("seq"),
    });
    let r = r.unwrap();
    assert!(r.expect_error.unwrap() < 1e-6);
    assert_eq!(r.widths, vec![6, 16, 16, 3]);
}

#[test]
fn an_imported_three_task_model_goes_through_probe_graph_and_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("mlp3");
    import(
        "mlp3.safetensors",
        &fix("mlp3.spec.json"),
        "mlp3.csv",
        None,
        &run,
    )
    .unwrap();
    let loaded = LoadedRun::open(&run).unwrap();
    assert_eq!(loaded.data.tasks.tasks.len(), 3);
    assert_eq!(loaded.data.val.n, 120);

    let probe = probe_run(&run, &ProbeConfig::default().check().unwrap()).unwrap();
    assert_eq!(probe.census.height(), 3); // one split (no per-task splits), three layers
    assert!(probe.notes.iter().any(|n| n.contains("no per-task splits")));
    assert!(probe
        .notes
        .iter()
        .any(|n| n.contains("smooth activations (tanh)")));
    assert_eq!(probe.task_angles.height(), 9); // 3 task pairs x 3 layers

    let spec = GraphSpec {
        examples: 60,
        ..Default::default()
    }
    .check()
    .unwrap();
    let g = graph_run(&run, &spec, None).unwrap();
    let ig = g.ig.as_ref().unwrap();
    assert!(ig.mode.starts_with("riemann"), "{}", ig.mode);
    // Automatic Riemann sums refine until each target adds up (or stop at the cap).
    assert!(
        ig.max_error < 2e-3 * ig.max_delta,
        "{ig:?}: completeness {:e} of {:e}",
        ig.max_error,
        ig.max_delta
    );
    assert!(g.graph.edge_weights().all(|e| e.per_task.len() == 3));

    let report = eval_run(&run, &spec, Ablation::Mean).unwrap();
    assert!(report.learned.learned, "{:?}", report.learned);
    let f = report.figures.as_ref().unwrap();
    assert_eq!(f.first_layer_auc.len(), 3);
    // The spec says which inputs each task uses: the inputs' own IG finds them.
    assert!(
        f.input_auc.iter().all(|&a| a > 0.9),
        "input AUCs {:?}",
        f.input_auc
    );
    // Three task subgraphs, each ablated and scored on three tasks (communities add more).
    assert!(f.interventions.points.len() >= 9);
    assert_eq!(f.interventions.ceiling.len(), 3);
}

#[test]
fn ig_adds_up_to_1e9_on_imported_piecewise_linear_models() {
    let tmp = tempfile::tempdir().unwrap();
    // The digits10 classifier (ReLU), and mlp3's weights read as a ReLU / leaky-ReLU network
    // (another model, but a piecewise-linear one of the same tensors).
    let pl_spec = tmp.path().join("mlp3-pl.json");
    let text = std::fs::read_to_string(fix("mlp3.spec.json"))
        .unwrap()
        .replace("\"tanh\"", "\"relu\"");
    std::fs::write(&pl_spec, text).unwrap();
    for (weights, spec, data) in [
        (
            "digits10.safetensors",
            fix("digits10.spec.json"),
            "digits10.parquet",
        ),
        ("mlp3.safetensors", pl_spec, "mlp3.csv"),
    ] {
        let run = tmp.path().join(weights);
        import(weights, &spec, data, None, &run).unwrap();
        let g = graph_run(&run, &GraphSpec::default().check().unwrap(), None).unwrap();
        let ig = g.ig.as_ref().unwrap();
        assert_eq!(ig.mode, "exact", "{weights}");
        assert!(
            ig.max_error <= 1e-9 * ig.max_delta.max(1.0),
            "{weights}: completeness error {:e} (largest ΔT {:e})",
            ig.max_error,
            ig.max_delta
        );
    }
}

#[test]
fn an_imported_ten_class_classifier_from_parquet_goes_through_every_analysis() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("d10");
    let r = import(
        "digits10.safetensors",
        &fix("digits10.spec.json"),
        "digits10.parquet",
        None,
        &run,
    )
    .unwrap();
    assert_eq!(r.widths, vec![8, 32, 10]);
    assert_eq!((r.train_rows, r.val_rows), (640, 160));
    let loaded = LoadedRun::open(&run).unwrap();
    let labels = loaded.data.val.labels.as_ref().unwrap();
    let classes: std::collections::BTreeSet<_> = labels.iter().collect();
    assert_eq!(
        classes.len(),
        10,
        "every class occurs in the validation split"
    );

    let probe = probe_run(&run, &ProbeConfig::default().check().unwrap()).unwrap();
    assert_eq!(probe.census.height(), 2);
    let spec = GraphSpec::default().check().unwrap();
    let g = graph_run(&run, &spec, None).unwrap();
    assert_eq!(g.graph.node_count(), 8 + 32 + 10);
    let report = eval_run(&run, &spec, Ablation::Mean).unwrap();
    assert!(report.learned.learned);
    assert_eq!(report.learned.what, "held-out accuracy");
    let a = atypical_run(&run, 0.1).unwrap();
    assert_eq!(a.examples, 160);
    assert!(
        a.clean_accuracy > 0.9,
        "clean accuracy {}",
        a.clean_accuracy
    );
    assert!(a.adversarial_accuracy < a.clean_accuracy);
}

#[test]
fn the_command_line_import_prints_what_it_checked_and_writes_a_spec_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_circuitscope"))
        .arg("import")
        .arg("--weights")
        .arg(fix("mlp3.bf16.safetensors"))
        .arg("--spec")
        .arg(fix("mlp3.spec.json"))
        .arg("--data")
        .arg(fix("mlp3.csv"))
        .arg("--expect")
        .arg(fix("mlp3.bf16.expect.csv"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("BF16 weights"), "{stdout}");
    assert!(stdout.contains("outputs equal PyTorch's"), "{stdout}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["format"], "circuitscope-run/2");
    assert_eq!(run["origin"], "import");
    assert_eq!(run["spec"]["tasks"].as_array().unwrap().len(), 3);
    let val = std::fs::read_to_string(out.join("data/val.csv")).unwrap();
    assert_eq!(val.lines().next().unwrap(), "a,b,c,d,e,f,y_ab,y_cd,y_ef");
    assert_eq!(val.lines().count(), 121);
    assert!(out.join("events.jsonl").is_file());

    // Data named relative to the working directory: the run records it absolutely, so a later
    // command run from another directory still finds the training rows.
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(fix("mlp3.csv"), work.join("data.csv")).unwrap();
    let bin = env!("CARGO_BIN_EXE_circuitscope");
    let o = std::process::Command::new(bin)
        .current_dir(&work)
        .arg("import")
        .arg("--weights")
        .arg(fix("mlp3.safetensors"))
        .arg("--spec")
        .arg(fix("mlp3.spec.json"))
        .args(["--data", "data.csv", "--out", "../relative"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run_dir = tmp.path().join("relative");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    let file = std::path::PathBuf::from(run["data"]["file"].as_str().unwrap());
    assert!(file.is_absolute(), "{file:?}");
    assert_eq!(
        file.canonicalize().unwrap(),
        work.join("data.csv").canonicalize().unwrap()
    );
    let o = std::process::Command::new(bin)
        .current_dir(tmp.path())
        .arg("graph")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
