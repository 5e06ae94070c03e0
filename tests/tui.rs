//! The dashboard, drawn with ratatui's TestBackend from fixture event logs (real runs, made by
//! `fixtures/events/make.sh`): every view is snapshotted (insta) *and* checked for the
//! fixture's own figures; a view registered here for a test-only event kind needs no change
//! elsewhere; an idle dashboard does not redraw; bad lines and remote streams are handled.

use circuitscope::tui::source::{parse_offset_line, shell_quote, Target};
use circuitscope::tui::views::interpolate;
use circuitscope::tui::{
    default_views, run_loop, App, AppEvent, Connection, Ctx, Flow, Record, View,
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
    app.handle(AppEvent::Connection(Connection::Replayed));
    for r in records(&fixture(name)) {
        app.handle(AppEvent::Record(r));
    }
    app
}

/// The screen as text, one line per row.
fn screen(app: &App, w: u16, h: u16) -> String {
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
        app.handle(AppEvent::Record(r.clone()));
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
    app.handle(AppEvent::Record(r.clone()));
    app.handle(AppEvent::Record(r));
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
    tx.send(AppEvent::Record(recs[0].clone())).unwrap();
    let c1 = wait_stable();
    assert!(c1 >= 2, "the first frame and one for the event: {c1}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter.load(Ordering::SeqCst), c1, "idle: no redraw");
    // The same connection state again changes nothing: no redraw either.
    tx.send(AppEvent::Connection(Connection::Connecting { attempt: 0 }))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(counter.load(Ordering::SeqCst), c1);
    tx.send(AppEvent::Record(recs[1].clone())).unwrap();
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
    app.handle(AppEvent::Warning(format!(
        "byte 10: skipped a bad line: {newer}"
    )));
    assert!(screen(&app, 200, 24).contains("upgrade circuitscope"));
    app.handle(AppEvent::Reset(
        "the log was replaced; reading the new one from the start".into(),
    ));
    assert_eq!(app.records(), 0);
    let s = screen(&app, 100, 24);
    assert!(s.contains("Training: nothing yet"), "{s}");
    assert!(s.contains("the log was replaced"), "{s}");
    app.handle(AppEvent::Connection(Connection::Lost {
        reason: "Connection closed by 127.0.0.1".into(),
        retry_in_s: 2,
    }));
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
        app.handle(AppEvent::Record(r));
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
    app.handle(AppEvent::Connection(Connection::Live));
    for r in records(&cut.join("\n")) {
        app.handle(AppEvent::Record(r));
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
    app.handle(AppEvent::Record(r));
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
