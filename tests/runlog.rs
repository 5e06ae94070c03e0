//! The event log and its follower: every kind round-trips, a follower survives partial lines,
//! growth, garbage, truncation and replacement.

use circuitscope::runlog::events::TaskMetrics;
use circuitscope::runlog::follow::{Followed, Follower};
use circuitscope::runlog::{
    write_atomic, Envelope, Event, EventLog, RunDir, RunStatus, SCHEMA_VERSION,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

fn every_kind() -> Vec<Event> {
    vec![
        Event::RunStart {
            command: "train".into(),
            preset: Some("products".into()),
            config: serde_json::json!({"epochs": 3}),
        },
        Event::TrainStep {
            epoch: 1,
            losses: vec![0.5, 0.25],
            loss: 0.375,
            lr: 1e-3,
            examples_per_s: 1e5,
            eta_s: 12.0,
        },
        Event::Eval {
            epoch: 1,
            split: "products/mixed".into(),
            tasks: vec![TaskMetrics {
                task: "task0".into(),
                loss: 0.1,
                r2: Some(0.99),
                accuracy: None,
            }],
        },
        Event::Checkpoint {
            path: "checkpoints/step-5.safetensors".into(),
            epoch: 0,
        },
        Event::ProbeSummary {
            probe: "census".into(),
            layer: 1,
            figures: BTreeMap::from([("patterns".into(), 42.0)]),
        },
        Event::ClusteringSummary {
            layer: 1,
            clusters: 3,
            sizes: vec![10, 12, 10],
            criterion: "silhouette".into(),
            score: 0.6,
        },
        Event::GraphSummary {
            nodes: 10,
            edges: 20,
            density: 0.2,
            communities: 2,
            modularity: 0.42,
            node_kind: "roi".into(),
            edge_kind: "ig".into(),
        },
        Event::GraphEdges {
            node_kind: "neuron".into(),
            nodes: vec![
                circuitscope::runlog::events::GraphNodeRecord {
                    layer: 0,
                    label: "x0".into(),
                    community: 1,
                },
                circuitscope::runlog::events::GraphNodeRecord {
                    layer: 1,
                    label: "h1.0".into(),
                    community: 0,
                },
            ],
            edges: vec![circuitscope::runlog::events::GraphEdgeRecord {
                from: 0,
                to: 1,
                mean: -0.5,
                mean_abs: 0.75,
            }],
            total_edges: 1,
            bundles: vec![],
        },
        Event::FaithfulnessPoint {
            graph: "roi".into(),
            ablation: "mean".into(),
            edges_kept: 0.1,
            faithfulness: 0.96,
        },
        Event::Intervention {
            target: "community 0".into(),
            task: "task0".into(),
            predicted: 1.5,
            observed: 1.4,
        },
        Event::ZooProgress {
            done: 3,
            total: 500,
            model: "f2-s7".into(),
            r2: 0.995,
        },
        Event::EmbedderLoss {
            train: 0.1,
            val: 0.12,
            label: Some("f5 k4 m0.50".into()),
        },
        Event::ProbeAccuracy(circuitscope::runlog::events::ProbeScore {
            method: "embedding".into(),
            accuracy: 0.9,
            cluster_ari: Some(0.8),
            functions: 5,
            bottleneck: Some(4),
            mask_ratio: Some(0.5),
        }),
        Event::Note {
            text: "hello".into(),
        },
        Event::Resumed { from_step: 25 },
        Event::RunEnd {
            status: RunStatus::Completed,
            message: None,
        },
    ]
}

#[test]
fn every_event_kind_round_trips_through_a_json_line_with_the_envelope() {
    for (k, event) in every_kind().into_iter().enumerate() {
        let env = Envelope::now(Some(k as u64), event);
        let line = serde_json::to_string(&env).unwrap();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["v"], SCHEMA_VERSION);
        assert_eq!(value["kind"], env.event.kind());
        assert_eq!(value["step"], k);
        assert_eq!(Envelope::parse(&line).unwrap(), env);
    }
}

#[test]
fn malformed_and_newer_lines_are_clear_errors() {
    assert!(Envelope::parse("{not json")
        .unwrap_err()
        .starts_with("not a JSON object: "));
    assert_eq!(
        Envelope::parse(r#"{"kind":"note","text":"x"}"#).unwrap_err(),
        "no schema version `v`"
    );
    assert_eq!(
        Envelope::parse(r#"{"v":2,"time":0,"kind":"note","text":"x"}"#).unwrap_err(),
        "event schema v2 is newer than this circuitscope reads (v1); upgrade circuitscope"
    );
    assert!(Envelope::parse(r#"{"v":1,"time":0,"kind":"warp_drive"}"#)
        .unwrap_err()
        .starts_with("not a circuitscope event: unknown variant `warp_drive`"));
}

fn line(text: &str) -> String {
    let env = Envelope {
        v: SCHEMA_VERSION,
        time: 0.5,
        step: None,
        event: Event::Note { text: text.into() },
    };
    let mut s = serde_json::to_string(&env).unwrap();
    s.push('\n');
    s
}

fn notes(items: &[Followed]) -> Vec<String> {
    items
        .iter()
        .filter_map(|f| match f {
            Followed::Event {
                event:
                    Envelope {
                        event: Event::Note { text },
                        ..
                    },
                ..
            } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn append(path: &std::path::Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

#[test]
fn follower_waits_for_a_partial_last_line_and_reads_growth() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.jsonl");
    let (a, b) = (line("a"), line("b"));
    append(&p, &a);
    append(&p, &b[..10]);
    let mut f = Follower::open(&p, 0).unwrap();
    assert_eq!(notes(&f.poll().unwrap()), vec!["a"]);
    assert_eq!(
        f.offset(),
        a.len() as u64,
        "offset stops before the partial line"
    );
    assert!(f.poll().unwrap().is_empty());
    append(&p, &b[10..]);
    append(&p, &line("c"));
    let items = f.poll().unwrap();
    assert_eq!(notes(&items), vec!["b", "c"]);
    match &items[0] {
        Followed::Event { offset, end, .. } => assert_eq!(
            (*offset, *end),
            (a.len() as u64, (a.len() + b.len()) as u64)
        ),
        other => panic!("expected an event, got {other:?}"),
    }
    // A second follower from a line boundary sees only what follows it.
    let mut g = Follower::open(&p, (a.len() + b.len()) as u64).unwrap();
    assert_eq!(notes(&g.poll().unwrap()), vec!["c"]);
}

#[test]
fn follower_reports_a_garbage_line_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.jsonl");
    append(&p, &(line("a") + "this is not json\n" + &line("b")));
    let items = Follower::open(&p, 0).unwrap().poll().unwrap();
    assert_eq!(notes(&items), vec!["a", "b"]);
    let garbage: Vec<_> = items
        .iter()
        .filter(|i| matches!(i, Followed::Garbage { .. }))
        .collect();
    assert_eq!(garbage.len(), 1);
    if let Followed::Garbage {
        line,
        error,
        offset,
        ..
    } = garbage[0]
    {
        assert_eq!(line, "this is not json");
        assert_eq!(*offset, line_len("a"));
        assert!(error.starts_with("not a JSON object"), "{error}");
    }
}

fn line_len(text: &str) -> u64 {
    line(text).len() as u64
}

#[test]
fn follower_notices_truncation_and_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.jsonl");
    append(&p, &(line("a") + &line("b")));
    let mut f = Follower::open(&p, 0).unwrap();
    assert_eq!(notes(&f.poll().unwrap()), vec!["a", "b"]);
    // Truncated in place and rewritten shorter.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, &line("c"));
    let items = f.poll().unwrap();
    assert!(
        matches!(items[0], Followed::Truncated { was, now } if was == 2 * line_len("a") && now == line_len("c")),
        "{items:?}"
    );
    assert_eq!(notes(&items), vec!["c"]);
    // Replaced by another file at the same path (as an editor or `mv` does).
    let other = dir.path().join("other");
    std::fs::write(&other, line("d") + &line("e") + &line("f")).unwrap();
    std::fs::rename(&other, &p).unwrap();
    let items = f.poll().unwrap();
    assert_eq!(items[0], Followed::Replaced);
    assert_eq!(notes(&items), vec!["d", "e", "f"]);
}

#[test]
fn follower_notices_a_log_rewritten_in_place_with_longer_content() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.jsonl");
    append(&p, &(line("a") + &line("b")));
    let mut f = Follower::open(&p, 0).unwrap();
    assert_eq!(notes(&f.poll().unwrap()), vec!["a", "b"]);
    // Growth by appending is not a rewrite.
    append(&p, &line("c"));
    assert_eq!(notes(&f.poll().unwrap()), vec!["c"]);
    // Rewritten in place (same file, no truncation) with other, longer content: the bytes
    // already read changed, so the follower starts over instead of reading mid-line.
    let ino = std::fs::metadata(&p).unwrap().ino();
    let new = line("x1") + &line("x2") + &line("x3") + &line("x4");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .write_all(new.as_bytes())
        .unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino, "the same file");
    let items = f.poll().unwrap();
    assert_eq!(items[0], Followed::Rewritten, "{items:?}");
    assert_eq!(notes(&items), vec!["x1", "x2", "x3", "x4"]);
    // A change only near the end of what was read (the first bytes kept) is caught too.
    let mut bytes = std::fs::read(&p).unwrap();
    let k = bytes.len() - 5;
    bytes[k] = b'y';
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    append(&p, &line("z"));
    let items = f.poll().unwrap();
    assert_eq!(items[0], Followed::Rewritten, "{items:?}");
    assert!(f.poll().unwrap().is_empty(), "then quiet again");
}

#[test]
fn from_past_the_end_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.jsonl");
    append(
        &p,
        "{\"v\":1,\"time\":0.0,\"kind\":\"note\",\"text\":\"a\"}\n",
    );
    let err = Follower::open(&p, 10_000).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: --from 10000 is past the end of the log (44 bytes)",
            p.display()
        )
    );
    assert!(
        Follower::open(&p, 44).unwrap().poll().unwrap().is_empty(),
        "the end itself is a valid offset"
    );
}

#[test]
fn event_log_closes_a_torn_last_line_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.jsonl");
    append(&p, &(line("a") + "{\"v\":1,\"ti"));
    let mut log = EventLog::open(&p).unwrap();
    log.emit(Some(3), Event::Note { text: "b".into() }).unwrap();
    let items = Follower::open(&p, 0).unwrap().poll().unwrap();
    assert_eq!(notes(&items), vec!["a", "b"]);
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, Followed::Garbage { .. }))
            .count(),
        1
    );
}

#[test]
fn atomic_writes_replace_whole_files_and_leave_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sub/run.json");
    write_atomic(&p, b"first").unwrap();
    write_atomic(&p, b"second").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second");
    assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn run_directories_refuse_to_overwrite_and_to_open_non_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let run = RunDir::create(&root).unwrap();
    std::fs::write(run.run_json(), "{}").unwrap();
    let err = RunDir::create(&root).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{} already holds a run; pass --resume to continue it or choose another --out",
            root.display()
        )
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = RunDir::open(&empty).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: missing: this is not a circuitscope run directory",
            empty.join("run.json").display()
        )
    );
    let err = RunDir::open(&dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: no such run directory",
            dir.path().join("nope").display()
        )
    );
}
