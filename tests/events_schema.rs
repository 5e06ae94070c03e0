//! The event vocabulary against the one schema file it shares with the Python logger
//! (`python/circuitscope_log/events.schema.json`): every kind the Rust log writes, with every
//! optional field present and absent, carries exactly the schema's fields with the schema's
//! types; the schema names no kind the Rust side lacks; and lines the schema rejects are
//! rejected by the Rust reader too.

use circuitscope::embed::ProbeScore;
use circuitscope::model::train::TaskMetrics;
use circuitscope::runlog::events::{GraphBundleRecord, GraphEdgeRecord, GraphNodeRecord};
use circuitscope::runlog::{Envelope, Event, RunStatus, SCHEMA_VERSION};
use serde_json::Value;
use std::collections::BTreeMap;

fn schema() -> Value {
    serde_json::from_str(include_str!(
        "../python/circuitscope_log/events.schema.json"
    ))
    .expect("the schema is JSON")
}

/// Splits a union at its top level (`array<a|b>` and `enum(a,b)` hold no top-level `|`).
fn alternatives(t: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0usize);
    for (i, c) in t.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            '|' if depth == 0 => {
                out.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&t[start..]);
    out
}

fn check_type(schema: &Value, v: &Value, t: &str, at: &str) -> Result<(), String> {
    let errs: Vec<String> = alternatives(t)
        .into_iter()
        .filter_map(|alt| check_one(schema, v, alt, at).err())
        .collect();
    if errs.len() < alternatives(t).len() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

fn check_one(schema: &Value, v: &Value, t: &str, at: &str) -> Result<(), String> {
    let ok = match t {
        "any" => true,
        "null" => v.is_null(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        _ if t.starts_with("enum(") => {
            let opts: Vec<&str> = t[5..t.len() - 1].split(',').collect();
            v.as_str().is_some_and(|s| opts.contains(&s))
        }
        _ if t.starts_with("array<") => {
            let inner = &t[6..t.len() - 1];
            let arr = v.as_array().ok_or(format!("{at}: not an array"))?;
            for (i, item) in arr.iter().enumerate() {
                check_type(schema, item, inner, &format!("{at}[{i}]"))?;
            }
            true
        }
        _ if t.starts_with("ref:") => {
            return check_fields(schema, v, &schema["definitions"][&t[4..]], at)
        }
        _ => panic!("schema: unknown type {t}"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}: {v} is not {t}"))
    }
}

fn check_fields(schema: &Value, v: &Value, fields: &Value, at: &str) -> Result<(), String> {
    let obj = v.as_object().ok_or(format!("{at}: not an object"))?;
    let fields = fields.as_object().expect("fields are an object");
    for (name, t) in fields {
        let t = t.as_str().expect("a type is a string");
        let (t, optional) = match t.strip_suffix('?') {
            Some(t) => (t, true),
            None => (t, false),
        };
        match obj.get(name) {
            None if optional => {}
            None => return Err(format!("{at}: missing field `{name}`")),
            Some(x) => check_type(schema, x, t, &format!("{at}.{name}"))?,
        }
    }
    let extra: Vec<&String> = obj.keys().filter(|k| !fields.contains_key(*k)).collect();
    if !extra.is_empty() {
        return Err(format!("{at}: fields {extra:?} are not in the schema"));
    }
    Ok(())
}

fn check_event(schema: &Value, line: &Value) -> Result<(), String> {
    let kind = line["kind"].as_str().ok_or("no kind")?;
    let mut fields = schema["envelope"].as_object().unwrap().clone();
    let of_kind = schema["kinds"]
        .get(kind)
        .ok_or(format!("kind `{kind}` is not in the schema"))?;
    fields.extend(of_kind.as_object().unwrap().clone());
    check_fields(schema, line, &Value::Object(fields), kind)
}

/// Fails to compile when a kind is added without a sample below.
fn covered(e: &Event) {
    match e {
        Event::RunStart { .. }
        | Event::TrainStep { .. }
        | Event::Eval { .. }
        | Event::Checkpoint { .. }
        | Event::ProbeSummary { .. }
        | Event::ClusteringSummary { .. }
        | Event::GraphSummary { .. }
        | Event::GraphEdges { .. }
        | Event::FaithfulnessPoint { .. }
        | Event::Intervention { .. }
        | Event::Emergence { .. }
        | Event::AnalysisSkipped { .. }
        | Event::ZooProgress { .. }
        | Event::EmbedderLoss { .. }
        | Event::ProbeAccuracy(_)
        | Event::Note { .. }
        | Event::Resumed { .. }
        | Event::RunEnd { .. } => {}
    }
}

/// One event of every kind, each optional field both present and absent.
fn samples() -> Vec<Event> {
    let figures: BTreeMap<String, f64> = [("cpr".to_string(), 0.9)].into();
    let metrics = |r2: Option<f64>, accuracy: Option<f64>| TaskMetrics {
        task: "ab".into(),
        loss: 0.01,
        r2,
        accuracy,
    };
    vec![
        Event::RunStart {
            command: "train".into(),
            preset: Some("products".into()),
            config: serde_json::json!({"epochs": 3}),
        },
        Event::RunStart {
            command: "train".into(),
            preset: None,
            config: Value::Null,
        },
        Event::TrainStep {
            epoch: 1,
            losses: vec![0.1, 0.2],
            loss: 0.3,
            lr: 1e-3,
            examples_per_s: 1e5,
            eta_s: 2.5,
        },
        Event::Eval {
            epoch: 1,
            split: "val".into(),
            tasks: vec![
                metrics(Some(0.9), None),
                metrics(None, Some(0.8)),
                metrics(None, None),
            ],
        },
        Event::Checkpoint {
            path: "checkpoints/step-4.safetensors".into(),
            epoch: 0,
        },
        Event::ProbeSummary {
            probe: "pca".into(),
            layer: 1,
            figures: figures.clone(),
        },
        Event::ClusteringSummary {
            layer: 1,
            clusters: 3,
            sizes: vec![1, 2, 3],
            criterion: "silhouette".into(),
            score: 0.4,
        },
        Event::GraphSummary {
            nodes: 10,
            edges: 20,
            density: 0.2,
            communities: 2,
            modularity: 0.3,
            node_kind: "neuron".into(),
            edge_kind: "ig".into(),
        },
        Event::GraphEdges {
            node_kind: "neuron".into(),
            nodes: vec![GraphNodeRecord {
                layer: 0,
                label: "a".into(),
                community: 0,
            }],
            edges: vec![GraphEdgeRecord {
                from: 0,
                to: 1,
                mean: -0.5,
                mean_abs: 0.5,
            }],
            total_edges: 1,
            bundles: vec![],
        },
        Event::GraphEdges {
            node_kind: "neuron".into(),
            nodes: vec![],
            edges: vec![],
            total_edges: 5000,
            bundles: vec![GraphBundleRecord {
                from_layer: 0,
                from_community: 1,
                to_layer: 1,
                to_community: 0,
                edges: 5000,
                sum: -2.5,
                sum_abs: 3.5,
            }],
        },
        Event::FaithfulnessPoint {
            graph: "neuron".into(),
            ablation: "mean".into(),
            edges_kept: 0.1,
            faithfulness: 0.5,
        },
        Event::Intervention {
            target: "community 0".into(),
            task: "ab".into(),
            predicted: 0.1,
            observed: 0.2,
        },
        Event::Emergence {
            checkpoint_step: 4,
            width: 64,
            figures,
        },
        Event::AnalysisSkipped {
            checkpoint_step: 4,
            reason: "step 8 is newer".into(),
        },
        Event::ZooProgress {
            done: 1,
            total: 2,
            model: "f0 s0".into(),
            r2: 0.9,
        },
        Event::EmbedderLoss {
            train: 0.1,
            val: 0.2,
            label: Some("f10 k4".into()),
        },
        Event::EmbedderLoss {
            train: 0.1,
            val: 0.2,
            label: None,
        },
        Event::ProbeAccuracy(ProbeScore {
            method: "embedding".into(),
            accuracy: 0.7,
            cluster_ari: Some(0.2),
            functions: 10,
            bottleneck: Some(4),
            mask_ratio: Some(0.5),
        }),
        Event::ProbeAccuracy(ProbeScore {
            method: "raw".into(),
            accuracy: 0.7,
            cluster_ari: None,
            functions: 10,
            bottleneck: None,
            mask_ratio: None,
        }),
        Event::Note { text: "hi".into() },
        Event::Resumed { from_step: 4 },
        Event::RunEnd {
            status: RunStatus::Completed,
            message: None,
        },
        Event::RunEnd {
            status: RunStatus::Failed,
            message: Some("boom".into()),
        },
        Event::RunEnd {
            status: RunStatus::Interrupted,
            message: None,
        },
    ]
}

#[test]
fn every_rust_event_matches_the_shared_schema_and_back() {
    let schema = schema();
    assert_eq!(schema["version"].as_u64(), Some(SCHEMA_VERSION as u64));
    let mut kinds = std::collections::BTreeSet::new();
    for (i, e) in samples().into_iter().enumerate() {
        covered(&e);
        kinds.insert(e.kind().to_string());
        for step in [None, Some(7)] {
            let env = Envelope::now(step, e.clone());
            let line = serde_json::to_value(&env).unwrap();
            check_event(&schema, &line).unwrap_or_else(|err| panic!("sample {i}: {err}"));
            // And a line the schema accepts reads back as the same event.
            let back = Envelope::parse(&line.to_string()).unwrap();
            assert_eq!(back, env);
        }
    }
    let in_schema: std::collections::BTreeSet<String> = schema["kinds"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        in_schema, kinds,
        "the schema's kinds and the Rust vocabulary differ"
    );
}

#[test]
fn lines_the_schema_rejects_the_reader_rejects() {
    let schema = schema();
    let bad = [
        // a required field missing
        r#"{"v":1,"time":1.0,"kind":"checkpoint","path":"x"}"#,
        // a field of the wrong type
        r#"{"v":1,"time":1.0,"kind":"resumed","from_step":"four"}"#,
        // a status that is not one of the three
        r#"{"v":1,"time":1.0,"kind":"run_end","status":"done","message":null}"#,
        // an unknown kind
        r#"{"v":1,"time":1.0,"kind":"teleport"}"#,
    ];
    for line in bad {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(check_event(&schema, &v).is_err(), "schema accepted {line}");
        assert!(Envelope::parse(line).is_err(), "reader accepted {line}");
    }
    // The checker itself is not vacuous: a good line passes.
    let good: Value =
        serde_json::from_str(r#"{"v":1,"time":1.0,"step":3,"kind":"resumed","from_step":3}"#)
            .unwrap();
    check_event(&schema, &good).unwrap();
}
