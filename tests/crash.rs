//! Crash safety: `train` and `zoo` killed with SIGKILL at (seeded) random moments, several
//! times over, then finished with `--resume` / a rerun, end with the same files as an
//! uninterrupted run; the event log stays parseable; no finished model is trained twice.

use circuitscope::runlog::follow::read_all;
use circuitscope::runlog::Event;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_circuitscope"));
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// Runs `args` to the end; returns how long it took.
fn finish(args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_circuitscope"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

/// Starts `args` and kills it with SIGKILL after `after` (or lets it end first); true when
/// it was killed.
fn kill_after(args: &[&str], after: Duration) -> bool {
    let mut child = bin().args(args).spawn().unwrap();
    let t = Instant::now();
    while t.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// A stored model's parameters (the file's header orders its metadata at random, so files
/// are compared by what they hold).
fn weights(path: &Path) -> Vec<u32> {
    circuitscope::runlog::load::read_checkpoint(path, None)
        .unwrap_or_else(|e| panic!("{e}"))
        .params
        .iter()
        .map(|p| p.to_bits())
        .collect()
}

/// Every model of a zoo by name, with its parameters.
fn models(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let mut v: Vec<(String, Vec<u32>)> = std::fs::read_dir(dir.join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                weights(&p),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_train_killed_again_and_again_resumes_to_the_uninterrupted_result() {
    killed_and_resumed(&|out: &Path| -> Vec<String> {
        [
            "train",
            "--preset",
            "products",
            "--epochs",
            "6",
            "--n-train",
            "2048",
            "--checkpoint-every",
            "20",
            "--log-every",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    });
}

#[test]
fn a_spec_train_killed_again_and_again_resumes_to_the_uninterrupted_result() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs/small3.json");
    killed_and_resumed(&|out: &Path| -> Vec<String> {
        [
            "train",
            "--spec",
            spec.to_str().unwrap(),
            "--checkpoint-every",
            "20",
            "--log-every",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    });
}

/// Kills the training that `train` describes at random moments, resumes it, and checks that it
/// ends with the weights and a log like an uninterrupted run's.
fn killed_and_resumed(train: &dyn Fn(&Path) -> Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean");
    let args = train(&clean);
    let whole = finish(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let reference = weights(&clean.join("model.safetensors"));

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut total_kills = 0;
    for trial in 0..3 {
        let out = dir.path().join(format!("killed{trial}"));
        let args = train(&out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let resume = ["train", "--resume", "--out", out.to_str().unwrap()];
        let mut kills = 0;
        // The first start, then resumes, each killed at a random moment of a whole run.
        let mut started = out.join("run.json").exists();
        for _ in 0..4 {
            let after = whole.mul_f64(rng.gen_range(0.05..0.6));
            let cmd: &[&str] = if started { &resume } else { &args };
            kills += kill_after(cmd, after) as usize;
            started = out.join("run.json").exists();
        }
        // Finish as a user would: resume until the run says it completed (a run killed before
        // writing run.json is started afresh).
        if !out.join("run.json").exists() {
            let _ = std::fs::remove_dir_all(&out);
            finish(&args);
        } else {
            let r = Command::new(env!("CARGO_BIN_EXE_circuitscope"))
                .args(resume)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&r.stderr);
            assert!(
                r.status.success() || err.contains("the run already completed"),
                "trial {trial}: resume failed: {err}"
            );
        }
        total_kills += kills;
        assert!(
            weights(&out.join("model.safetensors")) == reference,
            "trial {trial}: {kills} kills, the final weights differ from the uninterrupted run"
        );
        // Every line of the log parses; every resume starts from the newest checkpoint (at or
        // after the last one the log announced, never past the last step it logged).
        let events = read_all(&out.join("events.jsonl")).unwrap();
        let (mut checkpointed, mut logged) = (0u64, 0u64);
        for e in &events {
            match e.event {
                Event::Checkpoint { .. } => checkpointed = e.step.unwrap(),
                Event::TrainStep { .. } => logged = e.step.unwrap(),
                Event::Resumed { from_step } => {
                    assert!(
                        checkpointed <= from_step && from_step <= logged.max(checkpointed) + 32,
                        "trial {trial}: resumed at {from_step}; last checkpoint {checkpointed}, last step {logged}"
                    );
                }
                _ => {}
            }
        }
        assert!(matches!(events.last().unwrap().event, Event::RunEnd { .. }));
    }
    assert!(
        total_kills >= 3,
        "only {total_kills} kills landed inside a run: the test proved little"
    );
}

#[test]
fn a_zoo_killed_again_and_again_finishes_with_the_same_models_and_no_model_trained_twice() {
    let dir = tempfile::tempdir().unwrap();
    let zoo = |out: &Path| -> Vec<String> {
        [
            "zoo",
            "--functions",
            "2",
            "--seeds",
            "4",
            "--epochs",
            "6",
            "--n-train",
            "1024",
            "--threads",
            "2",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let clean = dir.path().join("clean");
    let a = zoo(&clean);
    let whole = finish(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let reference = models(&clean);
    assert_eq!(reference.len(), 8);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut total_kills = 0;
    for trial in 0..3 {
        let out = dir.path().join(format!("killed{trial}"));
        let args = zoo(&out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut kills = 0;
        for _ in 0..4 {
            kills += kill_after(&args, whole.mul_f64(rng.gen_range(0.05..0.6))) as usize;
        }
        finish(&args);
        total_kills += kills;
        let got = models(&out);
        let differ: Vec<&str> = got
            .iter()
            .zip(&reference)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.0.as_str())
            .collect();
        assert!(
            got.len() == reference.len() && differ.is_empty(),
            "trial {trial}: {} models, these differ from the uninterrupted zoo: {differ:?}",
            got.len()
        );
        // A model announced as done is never trained again.
        let mut done = std::collections::BTreeMap::<String, usize>::new();
        for e in read_all(&out.join("events.jsonl")).unwrap() {
            if let Event::ZooProgress { model, .. } = e.event {
                *done.entry(model).or_default() += 1;
            }
        }
        assert!(
            done.values().all(|&n| n == 1),
            "trial {trial}: models trained twice: {done:?}"
        );
    }
    assert!(
        total_kills >= 3,
        "only {total_kills} kills landed inside a run: the test proved little"
    );
}
