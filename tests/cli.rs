//! The `circuitscope` binary end to end: each test runs it in a temporary directory and reads
//! its output and files as a user would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_circuitscope"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a failure with exactly one clear `error:` line on stderr and no panic.
fn assert_error(out: &Output, expected: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert_eq!(err.trim_end(), format!("error: {expected}"));
}

/// Asserts clap's usage error (exit 2) whose first line is `error: {expected}`, listing the
/// possible values on the next.
fn assert_usage_error(out: &Output, expected: &str, possible: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let mut lines = err.lines();
    assert_eq!(lines.next(), Some(format!("error: {expected}").as_str()));
    assert_eq!(
        lines.next().map(str::trim),
        Some(format!("[possible values: {possible}]").as_str())
    );
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A small finished `products` run with mid-epoch checkpoints.
fn small_run(dir: &Path, name: &str, preset: &str) -> PathBuf {
    let root = dir.join(name);
    let out = run(&[
        "train",
        "--preset",
        preset,
        "--out",
        root.to_str().unwrap(),
        "--epochs",
        "2",
        "--n-train",
        "640",
        "--checkpoint-every",
        "4",
        "--log-every",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    root
}

/// Turns a finished run into one that crashed: no model, no `run_end`.
fn as_crashed(root: &Path) {
    std::fs::remove_file(root.join("model.safetensors")).unwrap();
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    let kept: String = log
        .lines()
        .filter(|l| !l.contains("\"run_end\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(root.join("events.jsonl"), kept).unwrap();
}

#[test]
fn train_writes_a_complete_run_and_reports_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let out = run(&[
        "train",
        "--preset",
        "products",
        "--out",
        root.to_str().unwrap(),
        "--epochs",
        "3",
        "--n-train",
        "2000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("run: {}  steps: 96", root.display())),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("R² 0.9").count() + stdout.matches("R² 0.8").count(),
        2,
        "{stdout}"
    );
    // Not a terminal: plain progress lines, one per epoch.
    assert_eq!(
        text(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("epoch "))
            .count(),
        3
    );
    for f in [
        "run.json",
        "events.jsonl",
        "model.safetensors",
        "tables/history.parquet",
        "checkpoints/step-96.safetensors",
    ] {
        assert!(root.join(f).is_file(), "{f} missing");
    }
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["preset"], "products");
    assert_eq!(info["config"]["epochs"], 3);
    // The fused engine is the default; dfdx only when asked.
    assert_eq!(info["config"]["engine"], "fused");
    assert_eq!(info["crate_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn events_prints_the_log_from_an_offset_and_stops_at_run_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_run(dir.path(), "r", "products");
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    let out = run(&["events", root.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), log);
    let first = log.lines().next().unwrap().len() + 1;
    let out = run(&[
        "events",
        root.to_str().unwrap(),
        "--from",
        &first.to_string(),
    ]);
    assert_eq!(text(&out.stdout), log[first..]);
    let out = run(&["events", root.to_str().unwrap(), "--offsets"]);
    let mut expect_end = 0;
    for (l, orig) in text(&out.stdout).lines().zip(log.lines()) {
        let (end, json) = l.split_once('\t').unwrap();
        expect_end += orig.len() + 1;
        assert_eq!((end.parse::<usize>().unwrap(), json), (expect_end, orig));
    }
    assert!(log.lines().last().unwrap().contains("\"kind\":\"run_end\""));
}

#[test]
fn events_follow_streams_a_run_being_written_until_run_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("live");
    let mut trainer = bin()
        .args([
            "train",
            "--preset",
            "products64",
            "--out",
            root.to_str().unwrap(),
            "--epochs",
            "4",
            "--log-every",
            "1",
        ])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !root.join("events.jsonl").exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "train never started its log"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let follower = bin()
        .args(["events", root.to_str().unwrap(), "--follow"])
        .output()
        .unwrap();
    assert!(trainer.wait().unwrap().success());
    assert!(follower.status.success(), "{}", text(&follower.stderr));
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    assert_eq!(
        text(&follower.stdout),
        log,
        "the follower printed every line once, in order, and stopped at run_end"
    );
}

#[test]
fn events_prints_every_segment_of_a_multi_stage_log() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_run(dir.path(), "r", "products");
    let probe = run(&["probe", root.to_str().unwrap()]);
    assert!(probe.status.success(), "{}", text(&probe.stderr));
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    assert_eq!(
        log.matches("\"kind\":\"run_end\"").count(),
        2,
        "train and probe each end a segment"
    );
    for args in [vec!["events"], vec!["events", "--follow"]] {
        let mut args = args.clone();
        args.push(root.to_str().unwrap());
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), log, "{args:?} printed the whole log");
    }
}

#[test]
fn events_reports_a_garbage_line_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_run(dir.path(), "r", "products");
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    let first = log.lines().next().unwrap().len() + 1;
    let mut broken = log[..first].to_string();
    broken.push_str("oops\n");
    broken.push_str(&log[first..]);
    std::fs::write(root.join("events.jsonl"), &broken).unwrap();
    let out = run(&["events", root.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), log);
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "circuitscope: {}: byte {first}: skipped a bad line: not a JSON object",
            root.join("events.jsonl").display()
        )),
        "{err}"
    );
}

#[test]
fn resume_continues_a_crashed_run_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let full = small_run(dir.path(), "full", "products");
    let crashed = small_run(dir.path(), "crashed", "products");
    as_crashed(&crashed);
    // Drop the checkpoints after step 12 (of 20) as if the crash came then.
    for step in [16, 20] {
        std::fs::remove_file(crashed.join(format!("checkpoints/step-{step}.safetensors"))).unwrap();
    }
    let out = run(&["train", "--resume", "--out", crashed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("resumed from step 12\n"));
    let weights = |p: &Path| {
        circuitscope::runlog::load::read_checkpoint(&p.join("model.safetensors"), None)
            .unwrap()
            .params
    };
    assert!(weights(&full)
        .iter()
        .zip(weights(&crashed))
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn bad_checkpoints_give_one_clear_error_and_leave_the_run_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_run(dir.path(), "r", "products");
    as_crashed(&root);
    let latest = root.join("checkpoints/step-20.safetensors");

    std::fs::write(&latest, b"garbage").unwrap();
    let before = snapshot(&root);
    let out = run(&["train", "--resume", "--out", root.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "error: {}: not a safetensors checkpoint (corrupt or truncated)",
            latest.display()
        )),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(snapshot(&root), before, "run files untouched");

    let other = small_run(dir.path(), "wide", "products64"); // batch 256: 3 steps an epoch
    std::fs::copy(other.join("checkpoints/step-6.safetensors"), &latest).unwrap();
    let before = snapshot(&root);
    let out = run(&["train", "--resume", "--out", root.to_str().unwrap()]);
    assert_error(
        &out,
        &format!("{}: checkpoint does not match preset `products`: tensor `layers.0.weight` has shape [64, 4], expected [32, 4] (stored preset: products64)", latest.display()),
    );
    assert_eq!(snapshot(&root), before, "run files untouched");

    let missing = dir.path().join("no-such-run");
    assert_error(
        &run(&["train", "--resume", "--out", missing.to_str().unwrap()]),
        &format!("{}: no such run directory", missing.display()),
    );
}

#[test]
fn bad_options_and_files_give_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("x");
    let o = out_dir.to_str().unwrap();
    assert_usage_error(
        &run(&["train", "--preset", "resnet", "--out", o]),
        "invalid value 'resnet' for '--preset <PRESET>'",
        "products, products-planted, products-gelu, products64, products16, products-shared, poly, digits, mnist",
    );
    assert_error(
        &run(&["train", "--preset", "products", "--out", o, "--epochs", "0"]),
        "--epochs must be at least 1",
    );
    assert_usage_error(
        &run(&[
            "train",
            "--preset",
            "products",
            "--out",
            o,
            "--schedule",
            "warp",
        ]),
        "invalid value 'warp' for '--schedule <SCHEDULE>'",
        "constant, cosine",
    );
    assert!(!out_dir.exists(), "a bad option writes nothing");

    let csv = dir.path().join("digits.csv");
    std::fs::write(&csv, format!("{}3\n1,2,3\n", "0,".repeat(64))).unwrap();
    assert_error(
        &run(&[
            "train",
            "--preset",
            "digits",
            "--out",
            o,
            "--data",
            csv.to_str().unwrap(),
        ]),
        &format!(
            "{}: line 2: 3 columns, expected 65 (64 pixels and a label)",
            csv.display()
        ),
    );
    std::fs::write(&csv, format!("{}seven\n", "0,".repeat(64))).unwrap();
    assert_error(
        &run(&[
            "train",
            "--preset",
            "digits",
            "--out",
            o,
            "--data",
            csv.to_str().unwrap(),
        ]),
        &format!(
            "{}: line 1, column 65: `seven` is not a number",
            csv.display()
        ),
    );

    let mnist = dir.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    std::fs::write(
        mnist.join("train-images-idx3-ubyte"),
        [0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3],
    )
    .unwrap();
    assert_error(
        &run(&[
            "train",
            "--preset",
            "mnist",
            "--out",
            o,
            "--data",
            mnist.to_str().unwrap(),
        ]),
        &format!(
            "{}: IDX dimensions [2, 28, 28] need 1568 data bytes, file has 3",
            mnist.join("train-images-idx3-ubyte").display()
        ),
    );
    assert!(!out_dir.exists(), "bad data writes nothing");

    let root = small_run(dir.path(), "r", "products");
    let len = std::fs::metadata(root.join("events.jsonl")).unwrap().len();
    assert_error(
        &run(&["events", root.to_str().unwrap(), "--from", "99999999"]),
        &format!(
            "{}: --from 99999999 is past the end of the log ({len} bytes)",
            root.join("events.jsonl").display()
        ),
    );
    assert_error(
        &run(&[
            "train",
            "--resume",
            "--out",
            root.to_str().unwrap(),
            "--lr",
            "0.1",
        ]),
        "--resume continues with the run's stored settings; give only --out",
    );
    assert_error(
        &run(&["demo", "--out", root.to_str().unwrap()]),
        &format!(
            "{} holds a run that is not a demo run; choose another --out",
            root.display()
        ),
    );
    assert_error(
        &run(&[
            "train",
            "--preset",
            "products",
            "--out",
            root.to_str().unwrap(),
        ]),
        &format!(
            "{} already holds a run; pass --resume to continue it or choose another --out",
            root.display()
        ),
    );
}

#[test]
fn demo_trains_products_and_replaces_an_earlier_demo() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    for _ in 0..2 {
        let out = run(&["demo", "--out", root.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with("circuitscope demo: training `products`"),
            "{stdout}"
        );
        // The demo's quality bar: R² ≥ 0.99 per task on the mixed validation set.
        let r2: Vec<f64> = stdout
            .lines()
            .filter(|l| l.starts_with("  task"))
            .filter_map(|l| l.split("R² ").nth(1))
            .map(|v| v.trim().parse().unwrap())
            .collect();
        assert_eq!(r2.len(), 2, "{stdout}");
        assert!(r2.iter().all(|&r| r >= 0.99), "{r2:?}");
    }
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    assert_eq!(
        log.matches("\"command\":\"train\"").count(),
        1,
        "the second demo replaced the first"
    );
    assert_eq!(
        log.matches("\"command\":\"probe\"").count(),
        1,
        "the demo probes what it trained"
    );
}

#[test]
fn probe_writes_tables_and_a_logged_segment() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_run(dir.path(), "r", "products");
    let out = run(&["probe", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for title in [
        "activation-region census",
        "task interference",
        "PLS from each hidden layer",
        "scaffold",
    ] {
        assert!(stdout.contains(title), "{title} missing from:\n{stdout}");
    }
    for t in [
        "layer_stats",
        "census",
        "pca",
        "task_angles",
        "svd",
        "pc_correlations",
        "pls",
        "components",
        "scaffold",
    ] {
        assert!(
            root.join(format!("tables/probe_{t}.parquet")).is_file(),
            "{t}"
        );
    }
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    assert_eq!(
        log.matches("\"kind\":\"run_end\"").count(),
        2,
        "train and probe segments"
    );
    // On the mixed split: the census of layers 0-3, the PCA spectra of hidden layers 1-3 and
    // the task0/task1 angles at layers 0-3.
    assert_eq!(log.matches("\"kind\":\"probe_summary\"").count(), 4 + 3 + 4);
    assert_eq!(log.matches("\"probe\":\"census:mixed\"").count(), 4);
    assert_eq!(log.matches("\"probe\":\"pca:mixed\"").count(), 3);
    assert_eq!(
        log.matches("\"probe\":\"angles:mixed:task0-task1\"")
            .count(),
        4
    );
    let probe_start = log.find("\"command\":\"probe\"").unwrap();
    assert!(log[probe_start..].contains("\"kind\":\"run_end\",\"status\":\"completed\""));

    std::fs::remove_file(root.join("model.safetensors")).unwrap();
    assert_error(
        &run(&["probe", root.to_str().unwrap()]),
        &format!("{}: missing: the run has no final model (did training finish? resume it with `train --resume`)", root.join("model.safetensors").display()),
    );
}

#[test]
fn graph_and_inspect_write_and_read_the_graph_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_run(dir.path(), "r", "products");
    let r = root.to_str().unwrap();
    let out = run(&[
        "graph",
        r,
        "--nodes",
        "roi",
        "--baseline",
        "mean",
        "--examples",
        "50",
        "--top",
        "100",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("graph: "), "{stdout}");
    assert!(stdout.contains("communities: "), "{stdout}");
    for f in [
        "graph/graph.json",
        "graph/graph.dot",
        "graph/graph.svg",
        "tables/graph_nodes.parquet",
        "tables/graph_edges.parquet",
    ] {
        assert!(root.join(f).is_file(), "{f}");
    }
    let svg = std::fs::read_to_string(root.join("graph/graph.svg")).unwrap();
    assert!(
        svg.matches("<line").count() <= 100,
        "the edge budget bounds the SVG"
    );
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    assert_eq!(
        log.matches("\"kind\":\"clustering_summary\"").count(),
        3,
        "one per hidden layer"
    );
    assert_eq!(log.matches("\"kind\":\"graph_summary\"").count(), 1);

    let out = run(&["inspect", r, "--top", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspect = text(&out.stdout);
    assert_eq!(
        inspect.lines().filter(|l| l.contains(" -> ")).count(),
        3,
        "{inspect}"
    );
    assert!(inspect.contains("ROIs of h1: sizes"), "{inspect}");

    // Bad input: a graph of another schema version, a truncated graph, a run without a model,
    // an unknown node kind.
    let g = root.join("graph/graph.json");
    let json = std::fs::read_to_string(&g).unwrap();
    std::fs::write(&g, json.replace("\"version\":1", "\"version\":2")).unwrap();
    assert_error(
        &run(&["inspect", r]),
        &format!(
            "{}: graph schema version 2 is not supported (this build reads version 1)",
            g.display()
        ),
    );
    std::fs::write(&g, &json[..100]).unwrap();
    let out = run(&["inspect", r]);
    assert!(text(&out.stderr).starts_with(&format!(
        "error: {}: not a graph file (truncated or not JSON)",
        g.display()
    )));
    std::fs::remove_file(root.join("model.safetensors")).unwrap();
    assert_error(
        &run(&["graph", r]),
        &format!("{}: missing: the run has no final model (did training finish? resume it with `train --resume`)", root.join("model.safetensors").display()),
    );
    let out = run(&["graph", r, "--nodes", "galaxy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid value 'galaxy' for '--nodes <NODES>'"),
        "{}",
        text(&out.stderr)
    );
    let empty = dir.path().join("empty-run");
    let fresh = small_run(dir.path(), "fresh", "products");
    std::fs::rename(&fresh, &empty).unwrap();
    assert_error(
        &run(&["inspect", empty.to_str().unwrap()]),
        &format!(
            "{}: missing: no graph yet; build it with `circuitscope graph {}`",
            empty.join("graph/graph.json").display(),
            empty.display()
        ),
    );
}

#[test]
fn eval_scores_a_run_and_logs_its_points() {
    let dir = tempfile::tempdir().unwrap();
    // 20 steps: the model has not learned (held-out R² far below 0.5): no figure means
    // anything, and none is printed as if it did.
    let root = small_run(dir.path(), "r", "products");
    let out = run(&["eval", root.to_str().unwrap(), "--examples", "100"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("model: not learned: mean held-out R² ")
            && stdout.contains("intervention Spearman ρ: undefined (not learned")
            && !stdout.contains("ARI 0"),
        "{stdout}"
    );
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    assert_eq!(log.matches("\"kind\":\"faithfulness_point\"").count(), 0);
    // 50 steps: it has, and the whole curve is scored and logged.
    let learned = dir.path().join("learned");
    let out = run(&[
        "train",
        "--preset",
        "products",
        "--out",
        learned.to_str().unwrap(),
        "--epochs",
        "4",
        "--n-train",
        "8000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["eval", learned.to_str().unwrap(), "--examples", "100"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("model: learned: mean held-out R² ") && stdout.contains("CPR "),
        "{stdout}"
    );
    assert!(
        stdout.contains("100.0% kept: faithfulness 1.0000 (chance 1.0000)"),
        "{stdout}"
    );
    let log = std::fs::read_to_string(learned.join("events.jsonl")).unwrap();
    assert_eq!(
        log.matches("\"kind\":\"faithfulness_point\"").count(),
        circuitscope::eval::FRACTIONS.len()
    );
    assert!(
        learned.join("tables/eval_faithfulness.parquet").is_file()
            && learned.join("tables/eval_interventions.parquet").is_file()
    );
    // Emergence: every checkpoint of the small run (steps 4, 8, 10, 12, 16, 20).
    let out = run(&[
        "eval",
        root.to_str().unwrap(),
        "--examples",
        "50",
        "--checkpoints",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let steps: Vec<u64> = circuitscope::runlog::follow::read_all(&root.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            circuitscope::runlog::Event::Emergence {
                checkpoint_step, ..
            } => Some(checkpoint_step),
            _ => None,
        })
        .collect();
    // Each eval logs its final model (step 20, width 32); --checkpoints adds every checkpoint.
    assert_eq!(steps, vec![20, 20, 4, 8, 10, 12, 16, 20], "{steps:?}");
    assert!(root.join("tables/eval_emergence.parquet").is_file());
    // inspect shows the last evaluation's curve once a graph exists, or says it is undefined.
    for (r, shown) in [
        (&learned, "faithfulness vs edges kept (0% … 100%): "),
        (
            &root,
            "faithfulness: undefined (the model has not learned its tasks",
        ),
    ] {
        assert!(run(&["graph", r.to_str().unwrap(), "--examples", "50"])
            .status
            .success());
        let inspect = text(&run(&["inspect", r.to_str().unwrap()]).stdout);
        assert!(inspect.contains(shown), "{inspect}");
    }
    let digits = small_run(dir.path(), "d", "digits");
    let out = run(&["atypical", digits.to_str().unwrap(), "--epsilon", "0.1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .starts_with("atypical subgraphs on 359 test inputs, FGSM ε = 0.1: AUROC "),
        "{}",
        text(&out.stdout)
    );
    assert!(digits.join("tables/eval_atypical.parquet").is_file());
    assert_error(&run(&["atypical", root.to_str().unwrap()]), "atypical: preset `products` is not a classifier; FGSM needs class labels (use digits or mnist)");
    assert_error(
        &run(&["atypical", digits.to_str().unwrap(), "--epsilon=-1"]),
        "--epsilon must be a positive finite number, got -1",
    );
    // A classifier is evaluated like any model (tests/validity.rs has the figures).
    let out = run(&["eval", digits.to_str().unwrap(), "--examples", "50"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("held-out accuracy"));
}

#[test]
fn zoo_shards_merge_and_embed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    let small = [
        "--functions",
        "2",
        "--seeds",
        "3",
        "--epochs",
        "2",
        "--n-train",
        "256",
    ];
    let zoo = |out: &str, extra: &[&str]| {
        let mut args = vec!["zoo", "--out", out];
        args.extend(small);
        args.extend(extra);
        run(&args)
    };
    assert_error(
        &zoo(&d("a"), &["--shard", "2/2"]),
        "--shard 2/2 is out of range: the index must be 0..1 for 2 shards",
    );
    let out = zoo(&d("a"), &["--shard", "0/2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("trained 3 models")
            && stdout.contains("3 of 6 models finished (this is shard 0/2)"),
        "{stdout}"
    );
    assert_error(
        &run(&["embed", &d("a")]),
        &format!(
            "{}: 3 of 6 models are missing (f000-s0001, f001-s0000, f001-s0002); run `circuitscope zoo --out {}` with the same options to finish it",
            d("a"),
            d("a")
        ),
    );
    assert!(zoo(&d("b"), &["--shard", "1/2"]).status.success());
    let out = run(&["zoo", "--out", &d("m"), "--merge", &d("a"), &d("b")]);
    assert!(
        text(&out.stdout).contains("6 of 6 models"),
        "{}",
        text(&out.stdout)
    );
    // Resuming a finished zoo trains nothing.
    let out = zoo(&d("m"), &[]);
    assert!(
        text(&out.stdout).contains("trained 0 models"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&[
        "embed",
        &d("m"),
        "--steps",
        "30",
        "--batch",
        "4",
        "--held-out",
        "1",
        "--keep-flagged",
        "--bottleneck",
        "2",
        "--mask",
        "0.5",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("4 training models, 2 held out"), "{stdout}");
    assert!(stdout.contains("supervised_gradients"), "{stdout}");
    assert!(Path::new(&d("m"))
        .join("tables/embed_grid.parquet")
        .exists());
    assert_error(
        &run(&["embed", &d("nope")]),
        &format!("{}: no such zoo directory", d("nope")),
    );
    assert_error(
        &run(&["embed", &d("m"), "--bottleneck", "3"]),
        "--bottleneck 3: compiled widths are [2, 4, 8, 16, 32]",
    );
}

#[test]
fn watch_refuses_bad_targets_and_a_missing_terminal_before_drawing() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("none");
    assert_error(
        &run(&["watch", none.to_str().unwrap()]),
        &format!(
            "{}: no such run directory (a remote run is written [user@]host:RUN)",
            none.display()
        ),
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // A directory that is no run stands for the runs below it: here there are none.
    assert_error(
        &run(&["watch", empty.to_str().unwrap()]),
        &format!(
            "{}: no run below this directory (a run has run.json or zoo.json, and an events.jsonl)",
            empty.display()
        ),
    );
    // A real run, but standard output is a pipe here: a clear message, the terminal untouched.
    let root = small_run(dir.path(), "r", "products");
    // Several runs: each must exist, and --save (a copy of one log) is refused.
    assert_error(
        &run(&["watch", root.to_str().unwrap(), none.to_str().unwrap()]),
        &format!(
            "{}: no such run directory (a remote run is written [user@]host:RUN)",
            none.display()
        ),
    );
    let save = dir.path().join("saved.jsonl");
    assert_error(
        &run(&[
            "watch",
            "--save",
            save.to_str().unwrap(),
            root.to_str().unwrap(),
            "me@box:runs/x",
        ]),
        "--save copies one run's log, and this watches several; name one run with --save",
    );
    assert!(!save.exists(), "nothing written");
    let out = bin()
        .args(["watch", root.to_str().unwrap()])
        .env("TERM", "xterm-256color")
        .output()
        .unwrap();
    assert_error(
        &out,
        "watch draws on a terminal and standard output is not one; use `circuitscope events --follow RUN` for the events as text",
    );
    assert!(out.stdout.is_empty(), "nothing was drawn");
    // A terminal that cannot draw is refused, pointing at the text form.
    let out = bin()
        .args(["watch", root.to_str().unwrap()])
        .env("TERM", "dumb")
        .output()
        .unwrap();
    assert_error(
        &out,
        "watch draws on a terminal and TERM=dumb says this one cannot; use `circuitscope events --follow RUN` for the events as text",
    );
    assert!(out.stdout.is_empty(), "nothing was drawn");
    // `events` on a path that does not exist names it.
    assert_error(
        &run(&["events", none.to_str().unwrap()]),
        &format!("{}: no such run directory or event log", none.display()),
    );
}

#[test]
fn kernel_install_writes_the_kernelspec_and_the_evcxr_config() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let isolated = |c: &mut Command| {
        c.env("PATH", &bin_dir)
            .env("HOME", dir.path())
            .env("CARGO_HOME", dir.path().join("cargo"));
    };
    let data = dir.path().join("jupyter");
    let cache = dir.path().join("cache");
    let args = [
        "kernel",
        "install",
        "--no-install",
        "--no-warm",
        "--data-dir",
        data.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ];
    // No evcxr_jupyter anywhere, and not allowed to install it.
    let mut c = bin();
    c.args(args);
    isolated(&mut c);
    assert_error(
        &c.output().unwrap(),
        "evcxr_jupyter not found; install it with `cargo install evcxr_jupyter --locked` or drop --no-install",
    );
    let fake = bin_dir.join("evcxr_jupyter");
    std::fs::write(&fake, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = bin();
    c.args(args);
    isolated(&mut c);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec_dir = data.join("kernels/circuitscope");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec_dir.join("kernel.json")).unwrap())
            .unwrap();
    assert_eq!(spec["display_name"], "Rust (circuitscope)");
    assert_eq!(spec["argv"][0], fake.to_str().unwrap());
    assert_eq!(spec["argv"][2], "{connection_file}");
    let config = spec_dir.join("evcxr");
    assert_eq!(spec["env"]["EVCXR_CONFIG_DIR"], config.to_str().unwrap());
    let toml = std::fs::read_to_string(config.join("evcxr.toml")).unwrap();
    let kernel_src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kernel")
        .canonicalize()
        .unwrap();
    assert!(
        toml.contains(&format!(
            "circuitscope-kernel = {{ path = \"{}\" }}",
            kernel_src.display()
        )),
        "{toml}"
    );
    assert!(
        toml.contains(&format!("tmpdir = \"{}\"", cache.display())),
        "{toml}"
    );
    assert_eq!(
        std::fs::read_to_string(config.join("prelude.rs")).unwrap(),
        "use circuitscope_kernel::prelude::*;\n"
    );
    assert_eq!(
        std::fs::read(cache.join("Cargo.lock")).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap(),
        "notebook builds start from the tested lock file"
    );
    // A source tree without kernel/ is refused.
    let mut c = bin();
    c.args(args)
        .args(["--source", dir.path().to_str().unwrap()]);
    isolated(&mut c);
    assert_error(
        &c.output().unwrap(),
        &format!(
            "{}: not the circuitscope source tree (no kernel/Cargo.toml); pass --source DIR",
            dir.path().display()
        ),
    );
}

#[test]
fn a_full_standard_output_is_one_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_run(dir.path(), "r", "products");
    let r = root.to_str().unwrap();
    for args in [
        vec!["probe", r],
        vec!["graph", r, "--examples", "50"],
        vec!["inspect", r],
        vec!["events", r],
        vec!["--help"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = bin().args(&args).stdout(full).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            text(&out.stderr).trim_end().lines().last().unwrap_or(""),
            "error: <stdout>: cannot write: No space left on device (os error 28)",
            "{args:?}"
        );
        assert!(!text(&out.stderr).contains("panicked"), "{args:?}");
    }
}

#[test]
fn help_is_plain_text_with_defaults_and_every_preset() {
    let subcommands: &[&[&str]] = &[
        &[],
        &["train"],
        &["events"],
        &["demo"],
        &["probe"],
        &["graph"],
        &["inspect"],
        &["eval"],
        &["discover"],
        &["analyze"],
        &["atypical"],
        &["zoo"],
        &["embed"],
        &["watch"],
        &["kernel", "install"],
        &["bench", "peers"],
        &["bench", "train"],
        &["bench", "ig"],
        &["bench", "jacobians"],
        &["bench", "follow"],
        &["bench", "circuits"],
    ];
    for sub in subcommands {
        let out = run(&[*sub, &["--help"][..]].concat());
        assert!(out.status.success(), "{sub:?}");
        let help = text(&out.stdout);
        assert!(
            !help.contains('`') && !help.contains("[`"),
            "{sub:?}: rustdoc markup\n{help}"
        );
    }
    let train = text(&run(&["train", "--help"]).stdout);
    for p in circuitscope::model::Preset::ALL {
        assert!(train.contains(p.name()), "train --help lacks preset {p}");
    }
    for flag in [
        "Epochs [default: the preset's:",
        "Examples per batch [default:",
        "Learning rate [default:",
    ] {
        assert!(train.contains(flag), "{flag}\n{train}");
    }
    let embed = text(&run(&["embed", "--help"]).stdout);
    assert!(embed.contains("[default: 2,4,8,16]"), "{embed}");
}

#[test]
fn discover_scores_a_methods_circuit_and_saves_it_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    // A model that has not learned: every figure undefined, nothing saved.
    let small = small_run(dir.path(), "small", "products");
    let out = run(&["discover", small.to_str().unwrap(), "--method", "eap"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("every figure undefined (not learned: mean held-out R²"),
        "{}",
        text(&out.stdout)
    );
    assert!(!small.join("graph/circuit-eap.json").exists());
    // A learned one: the curve, completeness and time printed; the circuit saved with every
    // edge ranked; the curve logged under the method's name.
    let root = dir.path().join("learned");
    let out = run(&[
        "train",
        "--preset",
        "products",
        "--out",
        root.to_str().unwrap(),
        "--epochs",
        "8",
        "--n-train",
        "4000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&[
        "discover",
        root.to_str().unwrap(),
        "--method",
        "eap",
        "--examples",
        "200",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "eap (2240 edges, mean ablation; discovered on 200 examples",
        "faithfulness: CPR ",
        "at 10.0% of edges: faithfulness ",
        "circuit (budget 10%): 224 of 2240 edges, faithfulness ",
        "completeness ",
        "wall time ",
    ] {
        assert!(s.contains(want), "{want}\n{s}");
    }
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("graph/circuit-eap.json")).unwrap(),
    )
    .unwrap();
    let edges = file["ranked"].as_array().unwrap();
    assert_eq!(edges.len(), 2240);
    let scores: Vec<f64> = edges.iter().map(|e| e[2].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked best first");
    let cpr = file["cpr"].as_f64().unwrap();
    assert!(s.contains(&format!("CPR {cpr:.4}")), "{s}");
    let log = std::fs::read_to_string(root.join("events.jsonl")).unwrap();
    let points = log
        .lines()
        .filter(|l| l.contains("\"faithfulness_point\"") && l.contains("\"graph\":\"eap\""))
        .count();
    assert_eq!(points, circuitscope::eval::FRACTIONS.len());
    // inspect lists the saved circuit with its figures.
    assert!(run(&["graph", root.to_str().unwrap(), "--examples", "200"])
        .status
        .success());
    let out = run(&["inspect", root.to_str().unwrap()]);
    let s = text(&out.stdout);
    assert!(
        s.contains(&format!("circuit eap: CPR {cpr:.4} (chance "))
            && s.contains("circuit-eap.json"),
        "{s}"
    );
    // The saved circuit is the budget's top edges: its figures are those printed.
    assert_eq!(file["circuit_items"].as_u64(), Some(224));
    let f = file["faithfulness_at_budget"].as_f64().unwrap();
    assert!(s.contains(&format!("faithfulness {f:.4} (chance")), "{s}");
    // ROIs: a circuit of 3 hidden ROIs, each kept or removed whole, and its budget in items.
    let out = run(&[
        "discover",
        root.to_str().unwrap(),
        "--method",
        "acdc",
        "--nodes",
        "roi",
        "--level",
        "node",
        "--budget",
        "3",
        "--examples",
        "200",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("acdc (a circuit of ROIs: ") && s.contains("circuit (budget 3): 3 of "),
        "{s}"
    );
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("graph/circuit-acdc-node.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["nodes"], "roi");
    assert_eq!(file["circuit_items"].as_u64(), Some(3));
    // Component graphs cannot be ablated, and a budget must keep something: refused before
    // any work.
    let out = run(&["discover", root.to_str().unwrap(), "--nodes", "component"]);
    assert_error(
        &out,
        "evaluation ablates units; component graphs are read-only views: evaluate neuron or roi nodes",
    );
    for bad in ["0", "0%", "150%", "ten"] {
        let out = run(&["discover", root.to_str().unwrap(), "--budget", bad]);
        assert!(!out.status.success(), "--budget {bad}");
        assert!(
            text(&out.stderr).contains(&format!("`{bad}`")),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn four_slurm_array_tasks_as_separate_processes_make_the_zoo_one_machine_makes() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    let small = [
        "--functions",
        "2",
        "--seeds",
        "4",
        "--epochs",
        "2",
        "--n-train",
        "256",
        "--threads",
        "1",
    ];
    // An array `--array=1-4`: tasks 1..4, started together as Slurm would.
    let shards: Vec<std::process::Child> = (1..=4)
        .map(|task| {
            bin()
                .args([
                    "zoo",
                    "--out",
                    &d(&format!("shard{task}")),
                    "--shard",
                    "auto",
                ])
                .args(small)
                .env("SLURM_ARRAY_TASK_ID", task.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", "4")
                .env("SLURM_ARRAY_TASK_MIN", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (k, child) in shards.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "task {}: {}",
            k + 1,
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(&format!("(this is shard {k}/4)")),
            "{}",
            text(&out.stdout)
        );
    }
    let mut merge = vec!["zoo", "--out", "MERGED", "--merge"];
    let names: Vec<String> = (1..=4).map(|t| d(&format!("shard{t}"))).collect();
    let merged = d("merged");
    merge[2] = &merged;
    merge.extend(names.iter().map(String::as_str));
    let out = run(&merge);
    assert!(
        text(&out.stdout).contains("8 of 8 models"),
        "{}",
        text(&out.stdout)
    );
    let one = d("one");
    let mut args = vec!["zoo", "--out", one.as_str()];
    args.extend(small);
    assert!(run(&args).status.success());
    // Model for model, the same tensors to the byte.
    let (a, b) = (
        zoo_tensors(Path::new(&merged)),
        zoo_tensors(Path::new(&one)),
    );
    assert_eq!(a.len(), 8);
    assert_eq!(
        a.iter().map(|m| &m.0).collect::<Vec<_>>(),
        b.iter().map(|m| &m.0).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(!x.1.is_empty());
        assert!(
            x.1 == y.1,
            "{}: the merged zoo's weights differ from one machine's",
            x.0
        );
    }
}

/// A model file's tensors by name, as bytes.
type Tensors = Vec<(String, Vec<u8>)>;

/// Every model of a zoo directory, by file name, as its tensors by name (the files' metadata is
/// a map, written in no fixed order).
fn zoo_tensors(root: &Path) -> Vec<(String, Tensors)> {
    let mut v: Vec<(String, Tensors)> = std::fs::read_dir(root.join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let mut t: Tensors = st
                .tensors()
                .into_iter()
                .map(|(name, t)| (name, t.data().to_vec()))
                .collect();
            t.sort();
            (p.file_name().unwrap().to_string_lossy().into_owned(), t)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_zoo_begun_before_the_fused_default_resumes_on_dfdx_and_a_new_one_trains_fused() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p);
    let zoo = |out: &Path, extra: &[&str]| {
        let out = out.to_string_lossy().into_owned();
        let mut args = vec!["zoo", "--out", out.as_str()];
        args.extend([
            "--functions",
            "2",
            "--seeds",
            "2",
            "--epochs",
            "2",
            "--n-train",
            "256",
            "--threads",
            "1",
        ]);
        args.extend(extra);
        run(&args)
    };
    let engine_of = |root: &Path| -> serde_json::Value {
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("zoo.json")).unwrap()).unwrap();
        spec["config"]["engine"].clone()
    };
    // A new zoo trains on the fused engine and says so.
    assert!(zoo(&d("new"), &[]).status.success());
    assert_eq!(engine_of(&d("new")), "fused");
    // The reference: the whole zoo on dfdx.
    assert!(zoo(&d("ref"), &["--engine", "dfdx"]).status.success());
    // Half a zoo begun before engines were recorded (its zoo.json names none: dfdx trained it).
    let old = d("old");
    assert!(zoo(&old, &["--engine", "dfdx", "--shard", "0/2"])
        .status
        .success());
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(old.join("zoo.json")).unwrap()).unwrap();
    spec["config"].as_object_mut().unwrap().remove("engine");
    std::fs::write(old.join("zoo.json"), spec.to_string()).unwrap();
    // Told another engine, it refuses, naming both.
    let out = zoo(&old, &["--engine", "fused"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("engine fused); choose another --out") && err.contains("engine dfdx)"),
        "{err}"
    );
    // Without --engine it finishes on dfdx: the same weights as the whole dfdx zoo.
    let out = zoo(&old, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("trained 2 models"),
        "{}",
        text(&out.stdout)
    );
    let (a, b) = (zoo_tensors(&old), zoo_tensors(&d("ref")));
    assert_eq!(a.len(), 4);
    assert!(a == b, "the resumed zoo's weights differ from dfdx's");
}
