//! The dashboard, drawn with ratatui's TestBackend from fixture event logs (real runs, made by
//! `fixtures/events/make.sh`): every view is snapshotted (insta) *and* checked for the
//! fixture's own figures; a view registered here for a test-only event kind needs no change
//! elsewhere; an idle dashboard does not redraw; bad lines and remote streams are handled.

use circuitscope::tui::source::{parse_offset_line, shell_quote, Target};
use circuitscope::tui::views::interpolate;
use circuitscope::tui::{
    default_views, run_loop, App, AppEvent, Connection, Ctx, Flow, Record, RunEvent, View,
};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Widget};
use ratatui::Terminal;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The fixture's lines as records, with their byte offsets.
fn records(text: &str) -> Vec<Record> {
    let mut end = 0u64;
    text.lines()
        .map(|l| {
            end += l.len() as u64 + 1;
            Record::parse(l, end).unwrap()
        })
        .collect()
}

fn key(c: KeyCode) -> AppEvent {
    AppEvent::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn app_with(name: &str) -> App {
    let mut app = App::new("runs/demo", Box::new(default_views));
    app.handle(AppEvent::Run(0, RunEvent::Connection(Connection::Replayed)));
    for r in records(&fixture(name)) {
        app.handle(AppEvent::Run(0, RunEvent::Record(r)));
    }
    app
}

/// The screen as text, one line per row. Wall-clock times are drawn in UTC, so snapshots are
/// the same in every time zone.
fn screen(app: &App, w: u16, h: u16) -> String {
    std::env::set_var("TZ", "UTC");
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.render(f)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn go(app: &mut App, tab: usize) {
    app.handle(key(KeyCode::Char(char::from(b'1' + tab as u8))));
    assert_eq!(app.tab(), tab);
}

/// The last event of `kind` in a fixture, as JSON.
fn last(text: &str, kind: &str) -> serde_json::Value {
    text.lines()
        .rev()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == kind)
        .unwrap()
}

#[test]
fn every_view_shows_the_fixture_run() {
    let text = fixture("run.jsonl");
    let mut app = app_with("run.jsonl");
    assert_eq!(
        app.titles(),
        [
            "Training",
            "Probes",
            "Clustering",
            "Graph",
            "Faithfulness",
            "Emergence",
            "Zoo/Embedding",
            "Log"
        ]
    );
    assert_eq!(app.records(), text.lines().count());

    // Training: the last step, its epoch and the last evaluation's R².
    let step = last(&text, "train_step")["step"].as_u64().unwrap();
    let s = screen(&app, 100, 30);
    assert!(s.contains(&format!("step {step}")), "{s}");
    // Epochs as people count them: the last of 30 is "30 of 30" (events count from 0).
    let epoch = last(&text, "train_step")["epoch"].as_u64().unwrap();
    assert_eq!(epoch, 29);
    assert!(s.contains("epoch 30 of 30"), "{s}");
    let eval = last(&text, "eval");
    let r2 = eval["tasks"][0]["r2"].as_f64().unwrap();
    assert!(s.contains(&format!("R² {r2:.4}")), "{s}");
    assert!(s.contains("eval finished"), "the last segment ended: {s}");
    insta::assert_snapshot!("training", s);

    go(&mut app, 1);
    let s = screen(&app, 100, 30);
    assert!(s.contains("census"), "{s}");
    assert!(s.contains("PCA mixed h1"), "{s}");
    assert!(s.contains("angle mixed:task0-task1 layer 0"), "{s}");
    insta::assert_snapshot!("probes", s);

    go(&mut app, 2);
    let s = screen(&app, 100, 30);
    let c = last(&text, "clustering_summary");
    let sizes: Vec<String> = c["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.to_string())
        .collect();
    assert!(s.contains(&sizes.join(" ")), "{s}");
    insta::assert_snapshot!("clustering", s);

    // Graph: the last graph (ROIs), 10% of its edges, and the matching faithfulness,
    // interpolated on the ROI curve.
    go(&mut app, 3);
    let g = last(&text, "graph_summary");
    let s = screen(&app, 100, 30);
    assert!(
        s.contains(&format!(
            "roi graph: {} nodes, {} edges",
            g["nodes"], g["edges"]
        )),
        "{s}"
    );
    let total = g["edges"].as_u64().unwrap() as f64;
    let shown = (0.1 * total).ceil() as usize;
    assert!(s.contains(&format!("shown: {shown} edges")), "{s}");
    let roi_curve: Vec<(f64, f64)> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "faithfulness_point" && v["graph"] == "roi")
        .map(|v| {
            (
                v["edges_kept"].as_f64().unwrap(),
                v["faithfulness"].as_f64().unwrap(),
            )
        })
        .collect();
    // The figure is at the share drawn (15 of 148 edges: 10.1%), not the share asked for.
    let drawn = shown as f64 / total;
    let f10 = interpolate(&roi_curve, drawn).unwrap();
    assert!(
        s.contains(&format!(
            "faithfulness at {:.1}%: {f10:.4} [mean]",
            100.0 * drawn
        )),
        "{s}"
    );
    insta::assert_snapshot!("graph", s);
    // `+` keeps more edges and the shown figures follow.
    app.handle(key(KeyCode::Char('+')));
    let s = screen(&app, 100, 30);
    let shown = (0.2 * total).ceil() as usize;
    assert!(s.contains(&format!("shown: {shown} edges")), "{s}");
    let drawn = shown as f64 / total;
    let f20 = interpolate(&roi_curve, drawn).unwrap();
    assert!(
        s.contains(&format!("faithfulness at {:.1}%: {f20:.4}", 100.0 * drawn)),
        "{s}"
    );
    // Selecting the next node shows its details.
    let first = screen(&app, 100, 30);
    app.handle(key(KeyCode::Down));
    assert_ne!(screen(&app, 100, 30), first);
    app.handle(key(KeyCode::Up));
    app.handle(key(KeyCode::Char('-')));

    // Faithfulness: the curve's area recomputed by the view equals what `eval` printed for
    // the neuron graph under mean ablation (CPR 0.6953, CMD 0.3047; README's demo output).
    go(&mut app, 4);
    let s = screen(&app, 100, 30);
    assert!(s.contains("neuron/mean: CPR 0.6953  CMD 0.3047"), "{s}");
    assert!(s.contains("at 10.0%: 0.1377"), "{s}");
    insta::assert_snapshot!("faithfulness", s);

    // Emergence: the fixture's `eval` logged the final model's structure figures once.
    go(&mut app, 5);
    let s = screen(&app, 100, 30);
    let e = last(&text, "emergence");
    let cpr = e["figures"]["cpr"].as_f64().unwrap();
    assert!(s.contains("1 checkpoint analysed"), "{s}");
    assert!(s.contains(&format!("CPR {cpr:.4}")), "{s}");
    app.handle(key(KeyCode::Right));
    assert!(
        screen(&app, 100, 30).contains("charted: faithfulness at 10%"),
        "right arrow charts the next figure"
    );
    app.handle(key(KeyCode::Left));
    insta::assert_snapshot!("emergence", screen(&app, 100, 30));

    go(&mut app, 6);
    let s = screen(&app, 100, 30);
    assert!(s.contains("Zoo/Embedding: nothing yet"), "{s}");
    assert!(
        s.contains("circuitscope zoo"),
        "the empty view says what fills it: {s}"
    );

    go(&mut app, 7);
    let s = screen(&app, 100, 30);
    assert!(s.lines().any(|l| l.starts_with("run_end")), "{s}");
    insta::assert_snapshot!("log", s);
}

#[test]
fn the_zoo_view_shows_progress_losses_and_probes() {
    let text = fixture("zoo.jsonl");
    let mut app = app_with("zoo.jsonl");
    go(&mut app, 6);
    let s = screen(&app, 100, 30);
    let p = last(&text, "zoo_progress");
    assert!(
        s.contains(&format!("{}/{} models", p["done"], p["total"])),
        "{s}"
    );
    let loss = text
        .lines()
        .rev()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "embedder_loss" && v["label"] == "f3 k4 m0.50")
        .unwrap();
    assert!(s.contains("f3 k4 m0.50"), "{s}");
    assert!(
        s.contains(&circuitscope::tui::views::num(
            loss["val"].as_f64().unwrap()
        )),
        "{s}"
    );
    assert!(s.contains("f3 flat_weights"), "{s}");
    insta::assert_snapshot!("zoo", s);
    // The other views say what would fill them.
    go(&mut app, 0);
    assert!(screen(&app, 100, 30).contains("Training: nothing yet"));
    go(&mut app, 3);
    assert!(screen(&app, 100, 30).contains("Graph: nothing yet"));
}

#[test]
fn small_terminals_stay_legible_and_nothing_panics() {
    let mut app = app_with("run.jsonl");
    for (w, h) in [(80, 24), (40, 12), (20, 10), (1, 1), (200, 60)] {
        for tab in 0..8 {
            go(&mut app, tab);
            let s = screen(&app, w, h);
            if (w, h) == (40, 12) {
                // The tab bar names the current view and its number even when narrow.
                assert!(
                    s.contains(&format!("{}/8", tab + 1)),
                    "{w}x{h} tab {tab}:\n{s}"
                );
            }
        }
    }
    go(&mut app, 3);
    insta::assert_snapshot!("graph_40x12", screen(&app, 40, 12));
    go(&mut app, 0);
    insta::assert_snapshot!("training_80x24", screen(&app, 80, 24));
}

#[test]
fn keys_switch_views_pause_and_quit() {
    let mut app = App::new("x", Box::new(default_views));
    assert_eq!(app.handle(key(KeyCode::Tab)), Flow::Redraw);
    assert_eq!(app.tab(), 1);
    app.handle(key(KeyCode::BackTab));
    app.handle(key(KeyCode::BackTab));
    assert_eq!(app.tab(), 7, "shift-tab wraps around");
    assert_eq!(app.handle(key(KeyCode::Char('9'))), Flow::Idle);
    assert_eq!(app.tab(), 7);
    let keep = app.keep();
    app.handle(key(KeyCode::Char('+')));
    assert!(app.keep() > keep);
    for _ in 0..20 {
        app.handle(key(KeyCode::Char('-')));
    }
    assert_eq!(app.keep(), circuitscope::tui::KEEP_LADDER[0]);
    assert_eq!(
        app.handle(key(KeyCode::Char('-'))),
        Flow::Idle,
        "at the end"
    );

    // Paused: records are held (and counted), then applied on resume.
    let recs = records(&fixture("run.jsonl"));
    app.handle(key(KeyCode::Char('p')));
    for r in recs.iter().take(50) {
        app.handle(AppEvent::Run(0, RunEvent::Record(r.clone())));
    }
    go(&mut app, 7);
    let s = screen(&app, 100, 20);
    assert!(s.contains("PAUSED: 50 new events held"), "{s}");
    assert!(s.contains("Log: nothing yet"), "{s}");
    app.handle(key(KeyCode::Char('p')));
    let s = screen(&app, 100, 20);
    assert!(!s.contains("PAUSED"), "{s}");
    assert!(s.contains("train_step"), "{s}");

    app.handle(key(KeyCode::Char('?')));
    assert!(screen(&app, 80, 24).contains("any key closes it"));
    app.handle(key(KeyCode::Char('x')));
    assert!(!screen(&app, 80, 24).contains("any key closes it"));
    assert_eq!(app.handle(key(KeyCode::Char('q'))), Flow::Quit);
    assert_eq!(
        app.handle(AppEvent::Key(KeyEvent::new(
            KeyCode::Char('c'),
            KeyModifiers::CONTROL
        ))),
        Flow::Quit
    );
}

/// A view for an event kind that exists only in this test.
#[derive(Default)]
struct Pings {
    count: u64,
    last: Option<String>,
}

impl View for Pings {
    fn title(&self) -> &str {
        "Pings"
    }
    fn update(&mut self, r: &Record) -> bool {
        if r.kind() != "test_ping" {
            return false;
        }
        self.count += 1;
        self.last = r
            .unknown
            .as_ref()
            .and_then(|v| v["note"].as_str())
            .map(str::to_string);
        true
    }
    fn render(&self, area: Rect, buf: &mut Buffer, _ctx: &Ctx) {
        Paragraph::new(format!(
            "pings: {} last: {}",
            self.count,
            self.last.as_deref().unwrap_or("-")
        ))
        .render(area, buf);
    }
}

#[test]
fn a_new_view_for_a_new_event_kind_is_registered_without_other_changes() {
    let mut app = App::new(
        "x",
        Box::new(|| {
            let mut v = default_views();
            v.push(Box::new(Pings::default()));
            v
        }),
    );
    let line = r#"{"v":1,"time":0.0,"kind":"test_ping","note":"hello"}"#;
    let r = Record::parse(line, 60).unwrap();
    assert!(r.event.is_none(), "not a kind this build knows");
    app.handle(AppEvent::Run(0, RunEvent::Record(r.clone())));
    app.handle(AppEvent::Run(0, RunEvent::Record(r)));
    go(&mut app, 8);
    let s = screen(&app, 100, 10);
    assert!(s.contains("9 Pings"), "{s}");
    assert!(s.contains("pings: 2 last: hello"), "{s}");
    // The log view shows the unknown kind too.
    go(&mut app, 7);
    assert!(screen(&app, 100, 10).contains("test_ping"));
}

#[test]
fn an_idle_dashboard_does_not_redraw() {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut app = App::new("x", Box::new(default_views));
    let counter = app.redraw_counter();
    let handle = std::thread::spawn(move || {
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        run_loop(&mut t, &mut app, &rx).unwrap();
        app
    });
    let recs = records(&fixture("run.jsonl"));
    let wait_stable = || {
        let mut last = counter.load(Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = counter.load(Ordering::SeqCst);
            if now == last {
                return now;
            }
            last = now;
        }
    };
    tx.send(AppEvent::Run(0, RunEvent::Record(recs[0].clone())))
        .unwrap();
    let c1 = wait_stable();
    assert!(c1 >= 2, "the first frame and one for the event: {c1}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter.load(Ordering::SeqCst), c1, "idle: no redraw");
    // The same connection state again changes nothing: no redraw either.
    tx.send(AppEvent::Run(
        0,
        RunEvent::Connection(Connection::Connecting { attempt: 0 }),
    ))
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(counter.load(Ordering::SeqCst), c1);
    tx.send(AppEvent::Run(0, RunEvent::Record(recs[1].clone())))
        .unwrap();
    let c2 = wait_stable();
    assert_eq!(c2, c1 + 1, "one new event, one frame");
    tx.send(key(KeyCode::Char('q'))).unwrap();
    let app = handle.join().unwrap();
    assert_eq!(app.records(), 2);
}

#[test]
fn bad_lines_newer_schemas_and_resets() {
    assert!(Record::parse("garbage", 1).is_err());
    assert!(Record::parse(r#"{"kind":"note","text":"no v"}"#, 1).is_err());
    let newer = Record::parse(r#"{"v":99,"time":0,"kind":"note","text":"x"}"#, 1).unwrap_err();
    assert!(newer.contains("newer"), "{newer}");
    let mut app = app_with("run.jsonl");
    app.handle(AppEvent::Run(
        0,
        RunEvent::Warning(format!("byte 10: skipped a bad line: {newer}")),
    ));
    assert!(screen(&app, 200, 24).contains("upgrade circuitscope"));
    app.handle(AppEvent::Run(
        0,
        RunEvent::Reset("the log was replaced; reading the new one from the start".into()),
    ));
    assert_eq!(app.records(), 0);
    let s = screen(&app, 100, 24);
    assert!(s.contains("Training: nothing yet"), "{s}");
    assert!(s.contains("the log was replaced"), "{s}");
    app.handle(AppEvent::Run(
        0,
        RunEvent::Connection(Connection::Lost {
            reason: "Connection closed by 127.0.0.1".into(),
            retry_in_s: 2,
        }),
    ));
    // The header says it short, so the run's own figures always fit; the footer gives the
    // reason. A target too long for the line loses the start of its path, not the state.
    let s = screen(&app, 100, 24);
    let header = s.lines().next().unwrap();
    assert!(
        header.contains("0 events  [connection lost, reconnecting in 2 s]"),
        "{s}"
    );
    assert!(
        s.contains("connection lost: Connection closed by 127.0.0.1"),
        "{s}"
    );
}

#[test]
fn targets_offsets_and_quoting() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Target::parse(dir.path().to_str().unwrap())
        .unwrap_err()
        .to_string()
        .contains("run.json"));
    let log = dir.path().join("events.jsonl");
    std::fs::write(&log, "").unwrap();
    assert_eq!(
        Target::parse(log.to_str().unwrap()).unwrap(),
        Target::Local(log.clone())
    );
    assert_eq!(
        Target::parse("me@box:runs/p").unwrap(),
        Target::Remote {
            host: "me@box".into(),
            run: "runs/p".into()
        }
    );
    let missing = Target::parse("runs/none").unwrap_err().to_string();
    assert!(missing.contains("no such run directory"), "{missing}");
    assert_eq!(parse_offset_line("120\t{}").unwrap(), (120, "{}"));
    assert!(parse_offset_line("{}").is_err());
    assert!(parse_offset_line("x\t{}").is_err());
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
}

#[test]
fn the_graph_views_share_is_what_it_draws_past_the_logged_edges() {
    // A large graph: the log carries its strongest 4,096 of 8,576 edges (as `graph` logs).
    let nodes: Vec<serde_json::Value> = (0..200)
        .map(|i| serde_json::json!({"layer": i / 50, "label": format!("n{i}"), "community": 0}))
        .collect();
    let edges: Vec<serde_json::Value> = (0..4096)
        .map(|k| {
            let w = 1.0 - k as f64 / 5000.0;
            serde_json::json!({"from": k % 150, "to": 150 + k % 50, "mean": w, "mean_abs": w})
        })
        .collect();
    let mut lines = vec![
        serde_json::json!({"v": 1, "time": 0.0, "kind": "graph_edges",
        "node_kind": "neuron", "nodes": nodes, "edges": edges, "total_edges": 8576})
        .to_string(),
    ];
    for k in 0..=10 {
        let kept = k as f64 / 10.0;
        lines.push(
            serde_json::json!({"v": 1, "time": 0.0, "kind": "faithfulness_point",
                "graph": "neuron", "ablation": "mean", "edges_kept": kept, "faithfulness": kept})
            .to_string(),
        );
    }
    let mut app = App::new("x", Box::new(default_views));
    for r in records(&lines.join("\n")) {
        app.handle(AppEvent::Run(0, RunEvent::Record(r)));
    }
    go(&mut app, 3);
    for _ in 0..3 {
        app.handle(key(KeyCode::Char('+')));
    }
    assert_eq!(app.keep(), 0.5);
    let s = screen(&app, 160, 30);
    assert!(
        s.contains("shown: 4096 edges = 47.8% of all (asked 50%: the log carries"),
        "{s}"
    );
    assert!(s.contains("the strongest 4096 only"), "{s}");
    // The faithfulness beside it is the curve's at the share drawn (it is linear here).
    assert!(s.contains("faithfulness at 47.8%: 0.4776 [mean]"), "{s}");
    for _ in 0..3 {
        app.handle(key(KeyCode::Char('+')));
    }
    assert_eq!(app.keep(), 1.0);
    let s = screen(&app, 160, 30);
    assert!(
        s.contains("shown: 4096 edges = 47.8% of all (asked 100%"),
        "{s}"
    );
    assert!(s.contains("faithfulness at 47.8%: 0.4776 [mean]"), "{s}");
    // Below the cap, nothing is said about it.
    for _ in 0..4 {
        app.handle(key(KeyCode::Char('-')));
    }
    let s = screen(&app, 160, 30);
    assert!(s.contains("shown: 2573 edges = 30.0% of all"), "{s}");
    assert!(!s.contains("asked"), "{s}");
}

#[test]
fn a_run_without_events_for_a_minute_is_marked_stale() {
    // The fixture's training segment, cut before its run_end: a run that looks alive.
    let text = fixture("run.jsonl");
    let cut: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains("\"run_end\""))
        .collect();
    let mut app = App::new("x", Box::new(default_views)).with_stale_after(60);
    app.handle(AppEvent::Run(0, RunEvent::Connection(Connection::Live)));
    for r in records(&cut.join("\n")) {
        app.handle(AppEvent::Run(0, RunEvent::Record(r)));
    }
    let header = |app: &App| screen(app, 160, 10).lines().next().unwrap().to_string();
    assert!(header(&app).contains("train running"), "{}", header(&app));
    let mut redraws = 0;
    for _ in 0..9 {
        redraws += (app.handle(AppEvent::Tick) == Flow::Redraw) as usize;
    }
    assert_eq!(redraws, 0, "nothing shown changes in the first 9 s");
    assert!(!header(&app).contains("last event"), "{}", header(&app));
    app.handle(AppEvent::Tick);
    assert!(
        header(&app).contains("last event 10 s ago"),
        "{}",
        header(&app)
    );
    for _ in 10..59 {
        app.handle(AppEvent::Tick);
    }
    assert!(header(&app).contains("train running"), "{}", header(&app));
    assert_eq!(app.handle(AppEvent::Tick), Flow::Redraw);
    let h = header(&app);
    assert!(
        h.contains("train stale") && h.contains("last event 60 s ago"),
        "{h}"
    );
    // The step and counts come before the connection state, so a narrow header keeps them.
    assert!(h.find("step ").unwrap() < h.find("[live]").unwrap(), "{h}");
    // An event makes it live again.
    let r = records(cut[cut.len() - 1]).pop().unwrap();
    app.handle(AppEvent::Run(0, RunEvent::Record(r)));
    assert!(header(&app).contains("train running"), "{}", header(&app));
    assert!(!header(&app).contains("last event"));
}

#[test]
fn the_log_scrolls_to_its_top_without_a_blank_screen_and_shows_an_event_whole() {
    let text = fixture("run.jsonl");
    let mut app = app_with("run.jsonl");
    go(&mut app, 7);
    app.handle(key(KeyCode::Home));
    let s = screen(&app, 100, 30);
    let rows: Vec<&str> = s.lines().skip(2).take(10).collect();
    // The top of the log: the first event first, and the screen full (no blank rows).
    assert!(rows[0].starts_with("run_start"), "{s}");
    assert!(rows.iter().all(|r| !r.trim().is_empty()), "{s}");
    // Scrolled back, the event at the bottom of the list is shown whole below it.
    assert!(s.contains("the event above, whole"), "{s}");
    app.handle(key(KeyCode::End));
    let s = screen(&app, 100, 30);
    assert!(!s.contains("the event above, whole"), "{s}");
    // A graph_edges line is far wider than the screen: scrolled onto it, it is shown wrapped
    // as far as the pane holds, and what does not fit is counted.
    let n = text.lines().count();
    let k = text
        .lines()
        .position(|l| l.contains("\"graph_edges\""))
        .unwrap();
    for _ in 0..(n - 1 - k) {
        app.handle(key(KeyCode::Up));
    }
    let s = screen(&app, 100, 40);
    let detail: String = s
        .lines()
        .skip_while(|l| !l.contains("the event above, whole"))
        .collect();
    assert!(detail.contains("graph_edges"), "{s}");
    assert!(detail.contains("more characters;"), "{s}");
    assert!(detail.contains("prints every event whole)"), "{s}");
}

/// The fixture run with its losses times 10, its faithfulness halved and its times 100 s later:
/// a second run that differs in every figure the overlays draw.
fn other_run() -> String {
    fixture("run.jsonl")
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["time"] = (v["time"].as_f64().unwrap() + 100.0).into();
            match v["kind"].as_str().unwrap() {
                "train_step" => {
                    v["loss"] = (v["loss"].as_f64().unwrap() * 10.0).into();
                    for x in v["losses"].as_array_mut().unwrap() {
                        *x = (x.as_f64().unwrap() * 10.0).into();
                    }
                }
                "faithfulness_point" => {
                    v["faithfulness"] = (v["faithfulness"].as_f64().unwrap() * 0.5).into();
                }
                _ => {}
            }
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn two_runs() -> App {
    let mut app = App::with_runs(
        vec!["runs/a".into(), "box:runs/b".into()],
        Box::new(default_views),
    );
    for (i, text) in [fixture("run.jsonl"), other_run()].iter().enumerate() {
        app.handle(AppEvent::Run(i, RunEvent::Connection(Connection::Replayed)));
        for r in records(text) {
            app.handle(AppEvent::Run(i, RunEvent::Record(r)));
        }
    }
    app
}

#[test]
fn several_runs_are_listed_and_laid_over_each_other() {
    let mut app = two_runs();
    // It opens on the run list: both runs, their state, step and events, both selected.
    assert_eq!(app.titles().last().unwrap(), "Runs");
    assert_eq!(app.tab(), 8);
    let s = screen(&app, 120, 20);
    let events = fixture("run.jsonl").lines().count();
    for name in ["runs/a", "box:runs/b"] {
        let row = s
            .lines()
            .skip(2)
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{s}"));
        assert!(row.starts_with("[x]"), "{row}");
        assert!(row.contains("eval finished"), "{row}");
        assert!(row.contains("9390"), "{row}");
        assert!(row.contains(&events.to_string()), "{row}");
    }
    assert!(s.contains("[1/2] runs/a"), "the run shown is named: {s}");
    // Nine tabs still fit a 100-column terminal (one space fewer between them).
    let bar = screen(&app, 100, 20).lines().nth(1).unwrap().to_string();
    assert!(
        bar.starts_with("1 Training 2 Probes") && bar.contains("9 Runs"),
        "{bar}"
    );
    insta::assert_snapshot!("runs", s);

    // Training: every selected run's total loss, one colour and a legend entry each.
    go(&mut app, 0);
    let s = screen(&app, 120, 30);
    assert!(s.contains("loss of each selected run"), "{s}");
    assert!(s.contains("│runs/a"), "legend: {s}");
    assert!(s.contains("│box:runs/b"), "legend: {s}");
    // The y axis spans both runs: its top is run b's largest loss (10x run a's).
    let top = fixture("run.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "train_step")
        .map(|v| v["loss"].as_f64().unwrap() * 10.0)
        .fold(0.0, f64::max);
    assert!(
        s.contains(&circuitscope::tui::views::num(top)),
        "y axis top {top}: {s}"
    );
    insta::assert_snapshot!("runs_training", s);
    // The cursor reads both runs at the same step: b's loss is 10x a's there.
    app.handle(key(KeyCode::Left));
    let s = screen(&app, 160, 30);
    let last = last(&fixture("run.jsonl"), "train_step");
    let loss = last["loss"].as_f64().unwrap();
    let line = s
        .lines()
        .find(|l| l.contains("cursor: step 9390"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        line.contains(&format!("runs/a {}", circuitscope::tui::views::num(loss))),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "box:runs/b {}",
            circuitscope::tui::views::num(loss * 10.0)
        )),
        "{line}"
    );

    // Faithfulness: both runs' curves, each figure under its run's name.
    go(&mut app, 4);
    let s = screen(&app, 120, 30);
    let a = s
        .lines()
        .find(|l| l.starts_with("runs/a neuron/mean"))
        .unwrap_or_else(|| panic!("{s}"));
    let b = s
        .lines()
        .find(|l| l.starts_with("box:runs/b neuron/mean"))
        .unwrap_or_else(|| panic!("{s}"));
    let at = |l: &str| -> f64 { l.rsplit(": ").next().unwrap().trim().parse().unwrap() };
    assert!((at(b) - 0.5 * at(a)).abs() < 1e-3, "halved: {a} / {b}");
    insta::assert_snapshot!("runs_faithfulness", s);

    // Unselect run b on the list: Training is run a's own chart again (a colour per task).
    go(&mut app, 8);
    app.handle(key(KeyCode::Down));
    assert_eq!(app.focus(), (1, 2));
    assert!(screen(&app, 120, 20).contains("[2/2] box:runs/b"));
    app.handle(key(KeyCode::Char(' ')));
    assert_eq!(app.selected(), [true, false]);
    app.handle(key(KeyCode::Char('r')));
    assert_eq!(app.focus(), (0, 2), "r: the next run, round");
    go(&mut app, 0);
    let s = screen(&app, 120, 30);
    assert!(s.contains("loss per task"), "{s}");
    assert!(!s.contains("box:runs/b"), "{s}");
}

#[test]
fn time_is_beside_the_step_and_an_x_axis_choice() {
    std::env::set_var("TZ", "UTC");
    let text = fixture("run.jsonl");
    let times: Vec<f64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["time"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let (t0, t1) = (times[0], *times.last().unwrap());
    let clock = circuitscope::tui::views::clock(t1);
    let elapsed = circuitscope::tui::views::duration(t1 - t0);
    let mut app = app_with("run.jsonl");
    let s = screen(&app, 120, 30);
    let header = s.lines().next().unwrap();
    assert!(
        header.contains(&format!("step 9390  {elapsed} · {clock}")),
        "{header}"
    );
    assert!(s.contains("step 9390\n") || s.contains("step 9390 "), "{s}");
    // x: elapsed time, then the wall clock, then steps again.
    app.handle(key(KeyCode::Char('x')));
    let s = screen(&app, 120, 30);
    let last_step_time = {
        let v = last(&text, "train_step");
        v["time"].as_f64().unwrap()
    };
    assert!(
        s.contains(&format!(
            "elapsed {}",
            circuitscope::tui::views::duration(last_step_time - t0)
        )),
        "{s}"
    );
    app.handle(key(KeyCode::Char('x')));
    let s = screen(&app, 120, 30);
    assert!(
        s.contains(&format!(
            "time {}",
            circuitscope::tui::views::clock(last_step_time)
        )),
        "{s}"
    );
    app.handle(key(KeyCode::Char('x')));
    assert_eq!(app.x_axis(), circuitscope::tui::XAxis::Step);
    assert_eq!(circuitscope::tui::views::duration(65.0), "1m 05s");
    assert_eq!(circuitscope::tui::views::duration(7384.0), "2h 03m");
    assert_eq!(circuitscope::tui::views::clock(3661.0), "01:01:01");
}

fn type_search(app: &mut App, q: &str) {
    app.handle(key(KeyCode::Char('/')));
    for c in q.chars() {
        app.handle(key(KeyCode::Char(c)));
    }
    app.handle(key(KeyCode::Enter));
}

#[test]
fn find_a_node_by_name_and_text_in_the_log_and_filter_it_by_kind() {
    let text = fixture("run.jsonl");
    let mut app = app_with("run.jsonl");
    go(&mut app, 3);
    type_search(&mut app, "h2:R3");
    let s = screen(&app, 120, 30);
    assert!(s.contains("node h2:R3 (4 units)  layer 2"), "{s}");
    assert!(
        s.contains("/h2:R3: node h2:R3"),
        "the footer says what was found: {s}"
    );
    // n: the next match of the last query; a name that is no node says so.
    type_search(&mut app, "R1");
    let first = screen(&app, 120, 30);
    app.handle(key(KeyCode::Char('n')));
    let second = screen(&app, 120, 30);
    let node = |s: &str| {
        s.lines()
            .find_map(|l| l.split("│node ").nth(1).map(str::to_string))
    };
    assert_ne!(node(&first), node(&second), "{first}\n{second}");
    assert!(node(&second).unwrap().contains("R1"));
    type_search(&mut app, "nothing-like-it");
    assert!(screen(&app, 120, 30).contains("no node is named like that"));
    // Esc leaves the prompt, not the dashboard.
    app.handle(key(KeyCode::Char('/')));
    assert_eq!(app.handle(key(KeyCode::Esc)), Flow::Redraw);

    // The Log: the newest eval event is found and shown whole below the list.
    go(&mut app, 7);
    type_search(&mut app, "products/mixed");
    let s = screen(&app, 120, 30);
    let evals = text
        .lines()
        .filter(|l| l.contains("products/mixed"))
        .count();
    assert!(s.contains(&format!("({evals} matches")), "{s}");
    assert!(s.contains("the event above, whole"), "{s}");
    // k: one kind at a time, in order of name, then all again.
    let kinds: std::collections::BTreeSet<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let first = kinds.iter().next().unwrap();
    app.handle(key(KeyCode::Char('k')));
    let s = screen(&app, 120, 30);
    let n = text
        .lines()
        .filter(|l| l.contains(&format!("\"kind\":\"{first}\"")))
        .count();
    assert!(
        s.contains(&format!(
            "only `{first}` events: {n} of {}",
            text.lines().count()
        )),
        "{s}"
    );
    for l in s.lines().skip(3).take(20).filter(|l| !l.trim().is_empty()) {
        assert!(l.contains(first.as_str()), "only {first}: {l}");
    }
    for _ in 0..kinds.len() {
        app.handle(key(KeyCode::Char('k')));
    }
    assert!(!screen(&app, 120, 30).contains("only `"), "all kinds again");
}

#[test]
fn the_mouse_picks_tabs_and_runs_and_scrolls() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mouse = |kind, column, row| {
        AppEvent::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let mut app = two_runs();
    screen(&app, 120, 30);
    // The tab bar: " 1 Training  2 Probes  3 Clustering  4 Graph ..." — "Graph" is the 4th.
    let bar = " 1 Training  2 Probes  3 Clustering  4 Graph";
    let x = bar.find("Graph").unwrap() as u16;
    app.handle(mouse(MouseEventKind::Down(MouseButton::Left), x, 1));
    assert_eq!(app.tab(), 3);
    // The run list: a click on a row shows that run; on its box, lays it over or not.
    go(&mut app, 8);
    screen(&app, 120, 30);
    app.handle(mouse(MouseEventKind::Down(MouseButton::Left), 20, 4));
    assert_eq!(app.focus(), (1, 2));
    app.handle(mouse(MouseEventKind::Down(MouseButton::Left), 1, 3));
    assert_eq!(app.selected(), [false, true]);
    app.handle(mouse(MouseEventKind::ScrollUp, 20, 10));
    assert_eq!(app.focus(), (0, 2));
    // The wheel scrolls the Log back.
    go(&mut app, 7);
    let before = screen(&app, 120, 30);
    for _ in 0..3 {
        app.handle(mouse(MouseEventKind::ScrollUp, 20, 10));
    }
    let after = screen(&app, 120, 30);
    assert_ne!(before, after);
    assert!(after.contains("the event above, whole"), "{after}");
}

#[test]
fn dense_graphs_are_bundled_and_layers_named() {
    let mut app = app_with("run.jsonl");
    go(&mut app, 3);
    // The fixture's newest graph is its ROI graph; at 100% of 148 edges the canvas of a
    // 100x30 screen cannot tell them apart: bundled by (layer, community).
    for _ in 0..10 {
        app.handle(key(KeyCode::Char('+')));
    }
    let s = screen(&app, 100, 30);
    assert!(s.contains("edges bundled by (layer, community)"), "{s}");
    assert!(s.contains("·"), "bundles named by community and size: {s}");
    let names = s.lines().rev().nth(1).unwrap();
    for l in ["h0", "h1", "h2", "h3", "h4"] {
        assert!(names.contains(l), "layer names: {names}");
    }
    // a: every edge, as asked; again: bundles; again: auto.
    app.handle(key(KeyCode::Char('a')));
    assert!(screen(&app, 200, 30).contains("every edge drawn (as asked"));
    app.handle(key(KeyCode::Char('a')));
    assert!(screen(&app, 200, 30).contains("edges bundled by (layer, community) (as asked"));
    app.handle(key(KeyCode::Char('a')));
    assert!(screen(&app, 200, 30).contains("edges bundled by layer (as asked"));
    app.handle(key(KeyCode::Char('a')));
    for _ in 0..10 {
        app.handle(key(KeyCode::Char('-')));
    }
    assert!(
        screen(&app, 200, 30).contains("every edge drawn (auto"),
        "few edges: each drawn"
    );
}

#[test]
fn a_784_512_512_10_graph_is_drawn_from_the_logs_bundles_of_all_its_edges() {
    use std::collections::BTreeMap;
    // The W6 model's neuron graph: 1,818 nodes, 668,672 edges; many communities per layer.
    let widths = [784usize, 512, 512, 10];
    let mut nodes = Vec::new();
    for (k, &w) in widths.iter().enumerate() {
        for i in 0..w {
            nodes.push((k, format!("h{k}:{i}"), (k * 7 + i) % 40));
        }
    }
    let start: Vec<usize> = widths
        .iter()
        .scan(0, |acc, &w| {
            let s = *acc;
            *acc += w;
            Some(s)
        })
        .collect();
    let mut all = Vec::new();
    for k in 0..3 {
        for i in 0..widths[k] {
            for j in 0..widths[k + 1] {
                let mean = ((i * 31 + j * 17 + k) % 101) as f64 / 100.0 - 0.3;
                all.push((start[k] + i, start[k + 1] + j, mean, mean.abs() + 0.01));
            }
        }
    }
    assert_eq!(all.len(), 668_672);
    type Groups = (usize, usize, usize, usize);
    let mut sums: BTreeMap<Groups, (usize, f64, f64)> = BTreeMap::new();
    for &(a, b, m, ma) in &all {
        let e = sums
            .entry((nodes[a].0, nodes[a].2, nodes[b].0, nodes[b].2))
            .or_default();
        *e = (e.0 + 1, e.1 + m, e.2 + ma);
    }
    all.sort_by(|x, y| y.3.total_cmp(&x.3));
    let edges: Vec<serde_json::Value> = all[..4096]
        .iter()
        .map(|&(a, b, m, ma)| serde_json::json!({"from": a, "to": b, "mean": m, "mean_abs": ma}))
        .collect();
    let bundles: Vec<serde_json::Value> = sums
        .iter()
        .map(|(&(fl, fc, tl, tc), &(n, s, sa))| {
            serde_json::json!({"from_layer": fl, "from_community": fc, "to_layer": tl,
                "to_community": tc, "edges": n, "sum": s, "sum_abs": sa})
        })
        .collect();
    let nodes: Vec<serde_json::Value> = nodes
        .iter()
        .map(|(l, label, c)| serde_json::json!({"layer": l, "label": label, "community": c}))
        .collect();
    let line = serde_json::json!({"v": 1, "time": 0.0, "kind": "graph_edges",
        "node_kind": "neuron", "nodes": nodes, "edges": edges, "total_edges": 668_672,
        "bundles": bundles})
    .to_string();
    let mut app = App::new("x", Box::new(default_views));
    for r in records(&line) {
        app.handle(AppEvent::Run(0, RunEvent::Record(r)));
    }
    go(&mut app, 3);
    // The side panel's text, its wrapped lines joined.
    let panel = |s: &str| -> String {
        s.lines()
            .filter_map(|l| l.split_once('│').map(|(_, r)| r.trim()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // 40 communities per layer cannot be labelled on 30 rows: bundled by layer, and every
    // edge stands in them (the share asked is past the 4,096 the log carries).
    let s = screen(&app, 100, 40);
    let p = panel(&s);
    assert!(
        p.contains("edges bundled by layer, all 668672 edges (auto"),
        "{s}"
    );
    for label in ["h0·784", "h1·512", "h2·512", "h3·10"] {
        assert!(s.contains(label), "{label}: {s}");
    }
    // Each layer pair's bundle holds all of its edges, with their sums.
    for (pair, n) in [("h0→h1", 401_408), ("h1→h2", 262_144), ("h2→h3", 5_120)] {
        assert!(p.contains(&format!("{pair}: {n} edges")), "{pair}: {p}");
    }
    // a: every carried edge; again: (layer, community) bundles of every edge; again: layers.
    app.handle(key(KeyCode::Char('a')));
    assert!(panel(&screen(&app, 100, 40)).contains("every edge drawn (as asked"));
    app.handle(key(KeyCode::Char('a')));
    let p = panel(&screen(&app, 100, 40));
    assert!(
        p.contains("edges bundled by (layer, community), all 668672 edges (as asked"),
        "{p}"
    );
    app.handle(key(KeyCode::Char('a')));
    assert!(panel(&screen(&app, 100, 40))
        .contains("edges bundled by layer, all 668672 edges (as asked"));
}

#[test]
fn a_second_embed_on_a_zoo_replaces_the_first_ones_rows() {
    let text = fixture("zoo.jsonl");
    let mut app = app_with("zoo.jsonl");
    // The embed segment again, as a second `embed` on the same zoo appends it.
    let start = text
        .lines()
        .position(|l| l.contains("\"run_start\"") && l.contains("\"embed\""))
        .expect("the fixture has an embed segment");
    let again: Vec<&str> = text.lines().skip(start).collect();
    for r in records(&again.join("\n")) {
        app.handle(AppEvent::Run(0, RunEvent::Record(r)));
    }
    go(&mut app, 6);
    let s = screen(&app, 100, 40);
    let rows = |label: &str| {
        s.lines()
            .filter(|l| l.trim_start().starts_with(label))
            .count()
    };
    assert_eq!(rows("f3 k4 m0.50"), 1, "{s}");
    assert_eq!(rows("f3 flat_weights"), 1, "baselines once: {s}");
}

#[test]
fn a_directory_of_runs_is_every_run_below_it() {
    let dir = tempfile::tempdir().unwrap();
    for run in ["b/r2", "a/r1", "a/r1/analysis"] {
        std::fs::create_dir_all(dir.path().join(run)).unwrap();
    }
    for run in ["a/r1", "b/r2"] {
        std::fs::write(dir.path().join(run).join("run.json"), "{}").unwrap();
        std::fs::write(dir.path().join(run).join("events.jsonl"), "").unwrap();
    }
    let root = dir.path().to_str().unwrap().to_string();
    let found = Target::expand(&[root.clone(), "me@box:runs/p".into()]).unwrap();
    let names: Vec<&str> = found.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{root}/a/r1").as_str(),
            format!("{root}/b/r2").as_str(),
            "me@box:runs/p"
        ]
    );
    let empty = tempfile::tempdir().unwrap();
    let e = Target::expand(&[empty.path().to_str().unwrap().into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no run below this directory"), "{e}");
}

#[test]
fn the_run_list_marks_a_quiet_running_run_stale() {
    let mut app = App::with_runs(
        vec!["runs/a".into(), "runs/b".into()],
        Box::new(default_views),
    )
    .with_stale_after(60);
    let recs = records(&fixture("run.jsonl"));
    for (i, n) in [(0, recs.len()), (1, 40)] {
        app.handle(AppEvent::Run(i, RunEvent::Connection(Connection::Live)));
        for r in recs.iter().take(n) {
            app.handle(AppEvent::Run(i, RunEvent::Record(r.clone())));
        }
    }
    for _ in 0..61 {
        app.handle(AppEvent::Tick);
    }
    let s = screen(&app, 120, 12);
    let row = |name: &str| {
        s.lines()
            .skip(2)
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{s}"))
            .to_string()
    };
    // Run a ended (its log has run_end): never stale. Run b is still running, silent 61 s.
    assert!(row("runs/a").contains("eval finished"), "{s}");
    assert!(row("runs/b").contains("train stale"), "{s}");
    assert!(row("runs/b").contains("60 s ago"), "{s}");
}
