//! Runs written by the Python logger (`python/circuitscope_log`) and live analysis of runs'
//! checkpoints (`analyze`):
//! - the committed fixture `fixtures/pytorch-run` (written under real PyTorch by
//!   `fixtures/pytorch-run/make.sh`) is read by probe, graph and eval like a run of our own;
//! - `analyze` on a finished run analyses every checkpoint once, in order, each with its
//!   `emergence` event last; restarted, it redoes none; on a model that has not learned it says
//!   `undefined`.

use circuitscope::eval::ablation::Ablation;
use circuitscope::graph::GraphSpec;
use circuitscope::probe::ProbeConfig;
use circuitscope::runlog::analyze::{analyze_run, emergence_table, line, Analysed, AnalyzeOptions};
use circuitscope::runlog::eval::eval_run;
use circuitscope::runlog::follow::read_all;
use circuitscope::runlog::graph::graph_run;
use circuitscope::runlog::load::{LoadedRun, RunKind};
use circuitscope::runlog::probe::probe_run;
use circuitscope::runlog::Event;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh copy of the committed fixture run (tests never write into `fixtures/`).
fn fixture_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pytorch-run/run");
    let dst = dir.join("run");
    copy_dir(&src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn options(root: &Path) -> AnalyzeOptions {
    AnalyzeOptions {
        root: root.to_path_buf(),
        follow: false,
        every: 1,
        graph: GraphSpec {
            examples: 200,
            ..Default::default()
        }
        .check()
        .unwrap(),
        ablation: Ablation::Mean,
        interventions: true,
        poll: Duration::from_millis(20),
    }
}

fn emergence_steps(root: &Path) -> Vec<u64> {
    read_all(&root.join("analysis/events.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Emergence {
                checkpoint_step, ..
            } => Some(checkpoint_step),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pytorch_run_written_by_the_logger_goes_through_probe_graph_and_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture_copy(tmp.path());
    let loaded = LoadedRun::open(&run).unwrap();
    let RunKind::Spec(s) = &loaded.kind else {
        panic!("not a spec run")
    };
    assert_eq!(s.info.origin, "python");
    assert_eq!(loaded.model.widths(), vec![6, 32, 32, 3]);
    assert_eq!(loaded.data.tasks.tasks.len(), 3);
    assert_eq!(
        loaded.data.train.n, 0,
        "the logger stores only the validation split"
    );
    // The events PyTorch's loop wrote read as circuitscope's own.
    let events = read_all(&run.join("events.jsonl")).unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e.event, Event::TrainStep { .. })));
    assert!(matches!(events.last().unwrap().event, Event::RunEnd { .. }));

    let probe = probe_run(&run, &ProbeConfig::default().check().unwrap()).unwrap();
    assert_eq!(probe.census.height(), 3);
    let spec = GraphSpec {
        examples: 200,
        ..Default::default()
    }
    .check()
    .unwrap();
    let g = graph_run(&run, &spec, None).unwrap();
    let ig = g.ig.as_ref().unwrap();
    assert_eq!(ig.mode, "exact", "a ReLU network's IG is exact");
    assert!(ig.max_error <= 1e-9 * ig.max_delta.max(1.0), "{ig:?}");
    let report = eval_run(&run, &spec, Ablation::Mean).unwrap();
    assert!(report.learned.learned, "{:?}", report.learned);
    assert!(report.learned.score > 0.95, "{:?}", report.learned);
    let f = report.figures.as_ref().unwrap();
    // The logger passed each task's inputs (`uses`): the inputs' own IG finds them.
    assert!(f.input_auc.iter().all(|&a| a > 0.9), "{:?}", f.input_auc);
}

#[test]
fn analyze_does_every_checkpoint_once_and_a_restart_redoes_none() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture_copy(tmp.path());
    let steps: Vec<u64> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_prefix("step-")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()
        })
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .collect();
    assert!(steps.len() >= 4, "{steps:?}");
    // Stop after two checkpoints, as a kill would (the events of both are committed).
    let mut seen = Vec::new();
    let partial = options(&run);
    // Hide all but the first two checkpoints, analyse, then bring them back.
    let hidden = tmp.path().join("hidden");
    std::fs::create_dir_all(&hidden).unwrap();
    for s in &steps[2..] {
        let name = format!("step-{s}.safetensors");
        std::fs::rename(run.join("checkpoints").join(&name), hidden.join(&name)).unwrap();
    }
    analyze_run(&partial, |a| seen.push(line(a))).unwrap();
    assert_eq!(emergence_steps(&run), steps[..2].to_vec());
    for s in &steps[2..] {
        let name = format!("step-{s}.safetensors");
        std::fs::rename(hidden.join(&name), run.join("checkpoints").join(&name)).unwrap();
    }
    let mut lines = Vec::new();
    let n = analyze_run(&options(&run), |a| lines.push(line(a))).unwrap();
    assert_eq!(n, steps.len() - 2, "{lines:?}");
    assert_eq!(emergence_steps(&run), steps, "a restart redid a checkpoint");
    assert!(lines.iter().all(|l| l.starts_with("step ")), "{lines:?}");
    // The last checkpoint of a trained model: every figure defined.
    let last = lines.last().unwrap();
    assert!(
        last.contains("CPR 0.") && last.contains("faithfulness at 10% "),
        "{last}"
    );
    // Each analysed checkpoint logged its graph and its curve before its emergence event.
    let log = read_all(&run.join("analysis/events.jsonl")).unwrap();
    let last_step = *steps.last().unwrap();
    let of_last: Vec<&str> = log
        .iter()
        .filter(|e| e.step == Some(last_step))
        .map(|e| e.event.kind())
        .collect();
    assert_eq!(of_last.first(), Some(&"graph_summary"), "{of_last:?}");
    assert_eq!(of_last.last(), Some(&"emergence"), "{of_last:?}");
    assert!(of_last.contains(&"graph_edges") && of_last.contains(&"faithfulness_point"));
    assert!(of_last.contains(&"intervention"), "{of_last:?}");
    // A third run finds nothing to do.
    assert_eq!(analyze_run(&options(&run), |_| {}).unwrap(), 0);
    // The emergence table (notebook 05): one row per checkpoint, the trained end defined.
    let t = emergence_table(&run.join("analysis/events.jsonl")).unwrap();
    let got: Vec<u64> = t
        .column("step")
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(got, steps);
    let r2: Vec<f64> = t
        .column("mean_r2")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert!(*r2.last().unwrap() > 0.95, "{r2:?}");
}

#[test]
fn an_unlearned_checkpoint_is_analysed_with_every_figure_undefined() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fixture_copy(tmp.path());
    // The earliest checkpoint of the fixture is kept; every other one is replaced by the
    // untrained model's weights (all zero: nothing learned).
    let first = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min_by_key(|p| {
            p.file_name().unwrap().to_string_lossy()[5..]
                .trim_end_matches(".safetensors")
                .parse::<u64>()
                .unwrap()
        })
        .unwrap();
    for e in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let p = e.unwrap().path();
        if p != first {
            std::fs::remove_file(p).unwrap();
        }
    }
    let zero = zero_weights(&first);
    std::fs::write(run.join("checkpoints/step-1.safetensors"), zero).unwrap();
    let mut out = Vec::new();
    analyze_run(&options(&run), |a| out.push(a.clone())).unwrap();
    let Analysed::Done {
        step,
        learned,
        structure,
        ..
    } = &out[0]
    else {
        panic!("{:?}", out[0])
    };
    assert_eq!(*step, 1);
    assert!(!learned.learned);
    assert!(structure.iter().all(|v| v.is_nan()));
    let l = line(&out[0]);
    assert!(
        l.starts_with("step 1  CPR undefined  faithfulness at 10% undefined  (not learned: "),
        "{l}"
    );
}

/// The safetensors file `path` with every value set to 0 (same names, shapes and dtype).
fn zero_weights(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for b in &mut bytes[8 + n..] {
        *b = 0;
    }
    bytes
}

#[test]
fn analyze_follow_on_a_run_that_never_trains_here_says_so_instead_of_waiting() {
    use circuitscope::runlog::import::{import_run, ImportOptions};
    use circuitscope::runlog::spec::SpecText;
    let tmp = tempfile::tempdir().unwrap();
    let fix = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pytorch");
    let run = tmp.path().join("imported");
    import_run(&ImportOptions {
        weights: fix.join("mlp3.safetensors"),
        spec: Ok(SpecText::read(&fix.join("mlp3.spec.json")).unwrap()),
        data: fix.join("mlp3.csv"),
        val_data: None,
        val_fraction: 0.2,
        split_seed: 0,
        expect: None,
        out: run.clone(),
    })
    .unwrap();
    let o = AnalyzeOptions {
        follow: true,
        ..options(&run)
    };
    let start = std::time::Instant::now();
    let err = analyze_run(&o, |_| {}).unwrap_err().to_string();
    assert!(start.elapsed() < Duration::from_secs(10), "it waited");
    assert_eq!(
        err,
        format!(
            "{}: no checkpoints to analyse (the run was not trained here, e.g. an import: analyse its model with `circuitscope eval`)",
            run.join("checkpoints").display()
        )
    );
}
