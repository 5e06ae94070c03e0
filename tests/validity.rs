//! Figures a researcher can trust: each test is one way the evaluation used to overstate what
//! a network shows (dead units padding ρ, a gate that let barely trained models through,
//! communities that changed with the numbering of the units, edge scores blind to
//! cancellation, whole model families refused or explained wrongly, input silently ignored).

use circuitscope::data::TaskData;
use circuitscope::eval::disentanglement;
use circuitscope::graph::{build, GraphSpec, NodeKind};
use circuitscope::model::train::TrainConfig;
use circuitscope::model::{Preset, RuntimeModel};
use circuitscope::numeric::score;
use circuitscope::runlog::preset::preset_data;
use circuitscope::runlog::{train, LoadedRun};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Trains `preset` with a small budget and returns its final model and data.
fn trained(dir: &Path, preset: Preset, seed: u64, epochs: usize) -> (RuntimeModel, TaskData) {
    let cfg = TrainConfig {
        epochs,
        n_train: 8000,
        seed,
        ..TrainConfig::defaults(preset)
    };
    let root = dir.join(format!("{preset}-{seed}-{epochs}"));
    train::train(&root, &cfg.clone().check().unwrap(), &mut |_| {}).unwrap();
    let l = LoadedRun::open(&root).unwrap();
    let data = preset_data(&cfg).unwrap();
    (l.model, data)
}

fn circuitscope(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_circuitscope"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spec(nodes: NodeKind) -> circuitscope::params::Valid<GraphSpec> {
    GraphSpec {
        nodes,
        examples: 300,
        ..Default::default()
    }
    .check()
    .unwrap()
}

/// Per labelled hidden unit, its community.
fn unit_communities(g: &circuitscope::graph::CircuitGraph) -> BTreeMap<(usize, usize), usize> {
    let d = disentanglement(g).unwrap();
    d.labelled
        .iter()
        .flat_map(|&i| {
            let n = &g.graph[petgraph::graph::NodeIndex::new(i)];
            n.units.iter().map(move |&u| ((n.layer, u), n.community))
        })
        .collect()
}

#[test]
fn communities_do_not_depend_on_how_the_hidden_units_are_numbered() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 0..3 {
        let (model, data) = trained(dir.path(), Preset::Products, seed, 5);
        let g = build(&model, &data.val, &data.tasks, &spec(NodeKind::Neuron)).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(100 + seed);
        let perms: Vec<Vec<usize>> = (0..3)
            .map(|_| {
                let mut p: Vec<usize> = (0..32).collect();
                p.shuffle(&mut rng);
                p
            })
            .collect();
        let permuted = model.permute_hidden(&perms).unwrap();
        // The same function, to rounding.
        let x: Vec<f64> = data.val.x[..40].iter().map(|&v| v as f64).collect();
        let (a, b) = (model.forward(&x).unwrap(), permuted.forward(&x).unwrap());
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-12));
        let pg = build(&permuted, &data.val, &data.tasks, &spec(NodeKind::Neuron)).unwrap();
        let (orig, perm) = (unit_communities(&g), unit_communities(&pg));
        let (x, y): (Vec<usize>, Vec<usize>) = perm
            .iter()
            .filter_map(|(&(layer, u), &c)| {
                orig.get(&(layer, perms[layer - 1][u])).map(|&o| (o, c))
            })
            .unzip();
        let ari = score::ari(&x, &y);
        println!(
            "seed {seed}: {} units, ARI with the permuted network {ari:.4}",
            x.len()
        );
        assert!(x.len() > 40, "{} labelled units", x.len());
        assert!(ari >= 0.9, "seed {seed}: ARI {ari}");
    }
}

#[test]
fn an_input_a_task_ignores_gets_no_node_attribution_however_much_its_edges_carry() {
    // products-shared: task0 = a·b, task1 = b·c. Input c's first-layer edges carry a large
    // share of task0's |IG| (paths that cancel), but its own IG for task0 is about 0.
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = trained(dir.path(), Preset::ProductsShared, 0, 20);
    let g = build(&model, &data.val, &data.tasks, &spec(NodeKind::Neuron)).unwrap();
    let input = |u: usize| {
        g.graph
            .node_weights()
            .find(|n| n.layer == 0 && n.units == [u])
            .unwrap()
    };
    let share =
        |u: usize| input(u).attribution[0] / (0..3).map(|v| input(v).attribution[0]).sum::<f64>();
    let edges = |u: usize| -> f64 {
        g.graph
            .edge_references()
            .filter(|e| e.source().index() == u && g.graph[e.source()].layer == 0)
            .map(|e| e.weight().per_task[0])
            .sum()
    };
    let edge_share = edges(2) / (0..3).map(edges).sum::<f64>();
    let (a, c) = (share(0), share(2));
    println!("task a·b: input c carries {edge_share:.3} of the first layer's edge |IG|; node IG shares a {a:.4}, c {c:.4} (ratio {:.4})", c / a);
    assert!(edge_share > 0.2, "the edges of c carry {edge_share}");
    // c's own IG is under 0.05 of task a·b's input attribution (a and b share the rest).
    assert!(c < 0.05 && a > 0.4, "node IG shares: c {c}, a {a}");
    use petgraph::visit::EdgeRef;
}

/// The `Spearman ρ … over N points` line of `eval`'s output: (ρ, N).
fn printed_rho(out: &str) -> (f64, usize) {
    let line = out
        .lines()
        .find(|l| l.starts_with("interventions:"))
        .expect(out);
    let rho: f64 = line
        .split("observed) ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .expect(line);
    let n: usize = line
        .split(" over ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .expect(line);
    (rho, n)
}

#[test]
fn the_printed_rho_is_over_exactly_the_logged_interventions_none_of_them_padding() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let r = run.to_str().unwrap();
    let (ok, _, err) = circuitscope(&[
        "train",
        "--preset",
        "products",
        "--out",
        r,
        "--epochs",
        "4",
        "--n-train",
        "8000",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = circuitscope(&["eval", r, "--examples", "300"]);
    assert!(ok, "{err}");
    let (rho, n) = printed_rho(&out);
    let events: Vec<serde_json::Value> = std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["kind"] == "intervention")
        .collect();
    assert_eq!(events.len(), n, "{out}");
    let (p, o): (Vec<f64>, Vec<f64>) = events
        .iter()
        .map(|v| {
            (
                v["predicted"].as_f64().unwrap(),
                v["observed"].as_f64().unwrap(),
            )
        })
        .unzip();
    assert!(
        (score::spearman(&p, &o) - rho).abs() < 1e-4,
        "{rho} printed"
    );
    // No intervention is there that ablates nothing: every target carries attribution.
    let mut by_target: BTreeMap<String, f64> = BTreeMap::new();
    for v in &events {
        *by_target
            .entry(v["target"].as_str().unwrap().into())
            .or_default() += v["predicted"].as_f64().unwrap();
    }
    assert!(by_target.values().all(|&s| s > 0.0), "{by_target:?}");
    assert!(
        out.contains("left out"),
        "dead units' communities are said to be left out: {out}"
    );
}

#[test]
fn a_model_that_learned_nothing_gets_every_structure_figure_undefined() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let r = run.to_str().unwrap();
    // 10 steps: 640 examples at batch 64, one epoch.
    let (ok, _, err) = circuitscope(&[
        "train",
        "--preset",
        "products",
        "--out",
        r,
        "--epochs",
        "1",
        "--n-train",
        "640",
    ]);
    assert!(ok, "{err}");
    for ablation in ["zero", "mean", "resample"] {
        let (ok, out, err) = circuitscope(&["eval", r, "--ablation", ablation]);
        assert!(ok, "exit 0: {err}");
        assert!(
            out.starts_with("model: not learned: mean held-out R² "),
            "{out}"
        );
        for figure in [
            "CPR",
            "ARI",
            "stability",
            "modularity",
            "Spearman ρ",
            "ROC AUC",
            "loss ratios",
        ] {
            let line = out
                .lines()
                .find(|l| l.contains(figure))
                .unwrap_or_else(|| panic!("{figure}: {out}"));
            assert!(
                line.contains("undefined (not learned: mean held-out R² "),
                "{line}"
            );
            assert!(line.contains("chance: undefined (not learned"), "{line}");
        }
        assert!(
            !out.contains("faithfulness 0.") && !out.contains("ARI 0."),
            "{out}"
        );
    }
    let log = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(!log.contains("\"faithfulness_point\"") && !log.contains("\"intervention\""));
}

#[test]
fn eval_prints_a_chance_level_beside_every_structure_figure_and_the_communities_stability() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let r = run.to_str().unwrap();
    let (ok, _, err) = circuitscope(&[
        "train",
        "--preset",
        "products",
        "--out",
        r,
        "--epochs",
        "4",
        "--n-train",
        "8000",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = circuitscope(&["eval", r, "--examples", "300"]);
    assert!(ok, "{err}");
    for figure in [
        "CPR ",
        "CMD ",
        "ARI ",
        "NMI ",
        "purity ",
        "modularity ",
        "Spearman ρ (predicted vs observed) ",
        "kept: faithfulness ",
    ] {
        for line in out.lines().filter(|l| l.contains(figure)) {
            let after = &line[line.find(figure).unwrap() + figure.len()..];
            assert!(
                after.split(')').next().unwrap().contains("(chance "),
                "{figure}: {line}"
            );
        }
    }
    assert!(
        out.contains("ROC AUC") && out.contains("(chance 0.5)"),
        "{out}"
    );
    let stab: Vec<&str> = out.lines().filter(|l| l.contains("stability ")).collect();
    assert_eq!(stab.len(), 2, "Leiden's and the merged communities: {out}");
    assert!(
        out.contains("ceiling x"),
        "loss ratios beside their ceiling: {out}"
    );
}

#[test]
fn classifiers_and_smooth_networks_go_through_probe_graph_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    for (preset, extra) in [
        ("digits", ["--epochs", "15"]),
        ("products-gelu", ["--epochs", "3"]),
    ] {
        let run = dir.path().join(preset);
        let r = run.to_str().unwrap();
        let (ok, _, err) =
            circuitscope(&[&["train", "--preset", preset, "--out", r][..], &extra[..]].concat());
        assert!(ok, "{preset}: {err}");
        let (ok, out, err) = circuitscope(&["probe", r]);
        assert!(ok, "{preset} probe: {err}");
        assert!(out.contains("activation-region census"), "{out}");
        let (ok, out, err) = circuitscope(&["graph", r, "--examples", "100"]);
        assert!(ok, "{preset} graph: {err}");
        let mode = if preset == "digits" {
            "IG: exact"
        } else {
            "IG: riemann 128"
        };
        assert!(out.contains(mode) && out.contains("completeness"), "{out}");
        let (ok, out, err) = circuitscope(&["eval", r, "--examples", "100"]);
        assert!(ok, "{preset} eval: {err}");
        assert!(out.starts_with("model: learned"), "{preset}: {out}");
        assert!(out.contains("CPR "), "{out}");
        if preset == "digits" {
            assert!(out.contains("held-out accuracy"), "{out}");
            assert!(
                out.contains("communities vs task labels: undefined (one task"),
                "{out}"
            );
        }
    }
}

#[test]
fn a_classifier_graph_explains_the_correct_class_not_the_sum_of_all_logits() {
    // Each example's target is its label's logit: the input layer's attributions add up, per
    // example, to that logit's change from the baseline (completeness), which the sum of all
    // ten logits would not.
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = trained(dir.path(), Preset::Digits, 0, 5);
    let g = build(&model, &data.val, &data.tasks, &spec(NodeKind::Neuron)).unwrap();
    let ig = g.ig.as_ref().unwrap();
    assert!(ig.max_error < 1e-9 * ig.max_delta.max(1.0), "{ig:?}");
    // The mean signed attribution of the inputs equals the mean label logit minus its value at
    // the zero baseline.
    let n = g.examples;
    let x: Vec<f64> = data.val.x[..n * 64].iter().map(|&v| v as f64).collect();
    let out = model.forward(&x).unwrap();
    let at_zero = model.forward(&vec![0.0; 64]).unwrap();
    let labels = data.val.labels.as_ref().unwrap();
    let want: f64 = (0..n)
        .map(|r| out[r * 10 + labels[r]] - at_zero[labels[r]])
        .sum::<f64>()
        / n as f64;
    let got: f64 = g
        .graph
        .node_weights()
        .filter(|n| n.layer == 0)
        .map(|n| n.attribution_signed[0])
        .sum();
    assert!(
        (got - want).abs() < 1e-9 * want.abs().max(1.0),
        "{got} vs {want}"
    );
}

#[test]
fn a_preset_that_does_not_read_data_refuses_a_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let csv = dir.path().join("my.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let (ok, _, err) = circuitscope(&[
        "train",
        "--preset",
        "products",
        "--data",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: --data is not read by preset `products`: it generates its own data (only `digits`, a CSV file, and `mnist`, a folder of IDX files, read data)"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn eval_refuses_component_graphs_naming_its_own_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) =
        circuitscope(&["eval", dir.path().to_str().unwrap(), "--nodes", "component"]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: evaluation ablates units; component graphs are read-only views: evaluate neuron or roi nodes"
    );
}
