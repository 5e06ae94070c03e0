//! Replays the fuzzers' corpora and every crashing input they found (`fuzz/corpus/<target>/`,
//! `fuzz/artifacts/<target>/`) through the same parsers with the stable toolchain: none may
//! panic. The hand-made seeds (files named `seed-*`) must also parse.
//!
//! Fuzzing itself (README, "Bad input"): `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O -s none <target> -- -max_total_time=600`.

use circuitscope::model::checkpoint::{Checkpoint, Layout};
use circuitscope::model::Preset;
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut v = Vec::new();
    for dir in ["corpus", "artifacts"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir).join(target)) {
            v.extend(rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    v.sort();
    assert!(!v.is_empty(), "no corpus for {target}");
    v
}

fn is_seed(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("seed-"))
}

/// Runs `f` on every input of `target`; seeds must give Ok.
fn replay(target: &str, f: impl Fn(&[u8]) -> bool) {
    for p in inputs(target) {
        let data = std::fs::read(&p).unwrap();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&data)))
            .unwrap_or_else(|_| panic!("{target}: {} panics", p.display()));
        if is_seed(&p) {
            assert!(ok, "{target}: the seed {} does not parse", p.display());
        }
    }
}

#[test]
fn event_lines() {
    replay("event_line", |d| {
        let line = String::from_utf8_lossy(d);
        let a = circuitscope::runlog::Envelope::parse(line.trim_end()).is_ok();
        let b = circuitscope::tui::Record::parse(line.trim_end(), 0).is_ok();
        a && b
    });
}

#[test]
fn checkpoints() {
    replay("checkpoint", |d| {
        let p = Path::new("fuzz.safetensors");
        let _ = Checkpoint::from_bytes(d, p, Some(&Layout::Preset(Preset::Products)));
        Checkpoint::from_bytes(d, p, None).is_ok()
    });
}

#[test]
fn graph_json() {
    replay("graph_json", |d| {
        circuitscope::graph::export::parse_json(&String::from_utf8_lossy(d), Path::new("g.json"))
            .is_ok()
    });
}

#[test]
fn idx_files() {
    replay("idx", |d| {
        circuitscope::data::idx::parse(d, Path::new("fuzz.idx")).is_ok()
    });
}

#[test]
fn csv_files() {
    replay("csv", |d| {
        circuitscope::data::digits::parse_csv(&String::from_utf8_lossy(d), Path::new("f.csv"))
            .is_ok()
    });
}

#[test]
fn model_specs() {
    replay("spec", |d| {
        circuitscope::model::spec::ModelSpec::parse(&String::from_utf8_lossy(d))
            .and_then(|s| s.check())
            .is_ok()
    });
}

#[test]
fn safetensors_imports() {
    use circuitscope::model::import::{build_model, read_state_dict, sequential_layers};
    use circuitscope::model::Activation;
    replay("safetensors_import", |d| {
        let p = Path::new("fuzz.safetensors");
        let Ok(sd) = read_state_dict(d, p) else {
            return false;
        };
        let Ok(names) = sequential_layers(&sd, p) else {
            return false;
        };
        let acts = vec![Activation::Relu; names.len()];
        let d_in = sd.tensors[&names[0].0].0.last().copied().unwrap_or(0);
        build_model(&sd, &names, &acts, d_in, p).is_ok()
    });
}
