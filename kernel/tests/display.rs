//! The notebook display functions: well-formed SVG with the expected marks, HTML tables with
//! the right columns and rows, and the evcxr MIME framing.

use circuitscope::graph::{build, GraphSpec};
use circuitscope::model::train::TrainConfig;
use circuitscope::model::{net, Preset};
use circuitscope::polars::prelude::{Column, DataFrame};
use circuitscope::runlog::preset::preset_data as load_data;
use circuitscope_kernel::*;

fn parse(svg: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc
}

fn count(doc: &roxmltree::Document, tag: &str) -> usize {
    doc.descendants()
        .filter(|n| n.tag_name().name() == tag)
        .count()
}

fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

#[test]
fn graph_svg_draws_every_node_and_the_kept_edges() {
    let data = load_data(&TrainConfig::defaults(Preset::Products)).unwrap();
    let model = Preset::Products
        .arch()
        .view(&net::build(Preset::Products, 3).params())
        .unwrap();
    let spec = GraphSpec {
        examples: 40,
        ..GraphSpec::default()
    }
    .check()
    .unwrap();
    let g = build(&model, &data.val, &data.tasks, &spec).unwrap();
    let svg = graph_svg(&g, Some(25));
    let doc = parse(&svg.0);
    assert_eq!(count(&doc, "circle"), g.graph.node_count());
    assert_eq!(count(&doc, "line"), 25);
    // Every node in exactly one community row; task columns named after the tasks.
    let c = communities_table(&g);
    assert_eq!(c.height(), g.communities);
    let total: u32 = c
        .column("nodes")
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .sum();
    assert_eq!(total as usize, g.graph.node_count());
    let names: Vec<String> = c.get_column_names().iter().map(|n| n.to_string()).collect();
    assert_eq!(names[3..], ["share_task0", "share_task1"]);
}

#[test]
fn curves_and_scatters_are_well_formed_svg_with_their_labels() {
    let s = curve_svg(
        "faithfulness",
        "share of edges kept",
        "faithfulness",
        &[
            Series::new("mean", vec![(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)]),
            Series::new("zero", vec![(0.0, -0.1), (0.5, 0.6), (1.0, 1.0)]),
        ],
        false,
    );
    let doc = parse(&s.0);
    let t = texts(&doc);
    for want in ["faithfulness", "share of edges kept", "mean", "zero"] {
        assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
    }
    assert!(count(&doc, "polyline") >= 2, "one line per series");
    // A log plot drops non-positive values instead of failing.
    let l = curve_svg(
        "loss",
        "step",
        "loss",
        &[Series::new(
            "task0",
            vec![(0.0, 1.0), (1.0, 0.0), (2.0, 1e-3)],
        )],
        true,
    );
    assert!(texts(&parse(&l.0)).iter().any(|x| x == "log10 loss"));
    let pts: Vec<(f64, f64, usize)> = (0..30).map(|i| (i as f64, (i * i) as f64, i % 3)).collect();
    let sc = scatter_svg("embeddings", &pts, &["f0".into(), "f1".into(), "f2".into()]);
    let doc = parse(&sc.0);
    assert_eq!(
        count(&doc, "circle"),
        30 + 3,
        "points and one legend mark per label"
    );
    for want in ["f0", "f1", "f2"] {
        assert!(texts(&doc).iter().any(|x| x == want), "{want}");
    }
}

#[test]
fn tables_are_html_with_their_columns_rows_and_escaping() {
    let n = MAX_ROWS + 5;
    let df = DataFrame::new(vec![
        Column::new("layer".into(), (0..n as u32).collect::<Vec<_>>()),
        Column::new(
            "ratio".into(),
            (0..n).map(|i| i as f64 / 7.0).collect::<Vec<_>>(),
        ),
        Column::new(
            "name".into(),
            (0..n).map(|i| format!("a<{i}>&")).collect::<Vec<_>>(),
        ),
    ])
    .unwrap();
    let h = df.html();
    let wrapped = format!("<div>{}</div>", h.0);
    let doc = roxmltree::Document::parse(&wrapped).unwrap();
    let th: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "th")
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(th, ["layer", "ratio", "name"]);
    let rows = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "tr")
        .count();
    assert_eq!(rows, 1 + MAX_ROWS, "header and the first MAX_ROWS rows");
    assert!(h.0.contains(&format!("{MAX_ROWS} of {n} rows shown")));
    assert!(h.0.contains("<td>a&lt;3&gt;&amp;</td>"));
    assert!(h.0.contains("<td>0.1429</td>"), "floats to 4 decimals");
    assert_eq!(table_html(&df), h);
}

#[test]
fn training_curves_come_from_the_event_log() {
    use circuitscope::runlog::events::TaskMetrics;
    use circuitscope::runlog::{Event, EventLog, RunDir};
    let dir = tempfile_dir();
    let run = RunDir { root: dir.clone() };
    let mut log = EventLog::open(&run.events()).unwrap();
    assert!(training_svg(&run)
        .unwrap_err()
        .to_string()
        .contains("no training events"));
    for step in 1..=5u64 {
        log.emit(
            Some(step * 10),
            Event::TrainStep {
                epoch: 0,
                losses: vec![1.0 / step as f64, 2.0 / step as f64],
                loss: 1.5 / step as f64,
                lr: 1e-3,
                examples_per_s: 1.0,
                eta_s: 0.0,
            },
        )
        .unwrap();
    }
    log.emit(
        Some(50),
        Event::Eval {
            epoch: 0,
            split: "val".into(),
            tasks: vec![TaskMetrics {
                task: "a*b".into(),
                loss: 0.3,
                r2: Some(0.9),
                accuracy: None,
            }],
        },
    )
    .unwrap();
    let svg = training_svg(&run).unwrap();
    let doc = parse(&svg.0);
    let t = texts(&doc);
    for want in ["task0 train", "task1 train", "a*b validation", "log10 loss"] {
        assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("circuitscope-kernel-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The notebooks reach everything through the prelude the kernel loads: this does not compile
/// when a display function is missing from it.
#[test]
fn the_prelude_names_every_display_function() {
    use circuitscope_kernel::prelude as p;
    let _ = (
        p::graph_svg,
        p::training_svg,
        p::curve_svg,
        p::scatter_svg,
        p::table_html,
        p::probe_html,
        p::communities_table,
    );
    let df = p::DataFrame::empty();
    let _: p::Html = p::TableExt::html(&df);
    let _ = p::Series::new("s", vec![]);
}

/// What a notebook does with a run a user brought: an imported PyTorch model and a spec
/// trained by circuitscope load, graph, probe and draw as a preset's do.
#[test]
fn spec_runs_display_as_preset_runs_do() {
    use circuitscope::runlog::import::{import_run, ImportOptions};
    use circuitscope::runlog::spec::SpecText;
    use circuitscope::runlog::spec_train::{train_spec, SpecTrainOptions};
    use circuitscope::runlog::LoadedRun;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fix = root.join("fixtures/pytorch");
    // Its own directory: the other tests remove theirs while this one runs.
    let dir = std::env::temp_dir().join(format!("circuitscope-kernel-spec-{}", std::process::id()));
    let imported = dir.join("mlp3");
    import_run(&ImportOptions {
        weights: fix.join("mlp3.safetensors"),
        spec: Ok(SpecText::read(&fix.join("mlp3.spec.json")).unwrap()),
        data: fix.join("mlp3.csv"),
        val_data: None,
        val_fraction: 0.2,
        split_seed: 0,
        expect: None,
        out: imported.clone(),
    })
    .unwrap();
    let trained = dir.join("small3");
    train_spec(
        &trained,
        &SpecTrainOptions {
            spec: SpecText::read(&root.join("tests/specs/small3.json")).unwrap(),
            epochs: Some(2),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    for run in [&imported, &trained] {
        let l = LoadedRun::open(run).unwrap();
        let spec = GraphSpec {
            examples: 30,
            ..GraphSpec::default()
        }
        .check()
        .unwrap();
        let g = build(&l.model, &l.data.val, &l.data.tasks, &spec).unwrap();
        let doc_text = graph_svg(&g, Some(20)).0;
        let doc = parse(&doc_text);
        assert_eq!(count(&doc, "circle"), g.graph.node_count());
        let c = communities_table(&g);
        for task in ["ab", "cd", "ef"] {
            assert!(
                c.get_column_names().iter().any(|n| n.contains(task)),
                "{:?}",
                c.get_column_names()
            );
        }
    }
    // The trained spec has training curves; the import has none, and says so.
    let svg = training_svg(&circuitscope::runlog::RunDir { root: trained }).unwrap();
    assert!(texts(&parse(&svg.0)).iter().any(|t| t == "ab validation"));
    let e = training_svg(&circuitscope::runlog::RunDir { root: imported })
        .unwrap_err()
        .to_string();
    assert!(e.contains("no training events"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}
