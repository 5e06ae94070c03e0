//! Graphs: IG completeness, exact IG against Riemann sums, block networks, communities on the
//! karate club, ROI clustering, export round trips and bad files.

mod common;
use circuitscope::runlog::graph::{read_graph, write_graph_files};
use common::*;

use circuitscope::graph::community::{leiden, leiden_with_count, modularity};
use circuitscope::graph::ig::{
    edge_attributions, edge_attributions_multi, target_value, Mode, Target,
};
use circuitscope::graph::{build, roi, Baseline, EdgeKind, GraphSpec, NodeKind, TargetKind};
use circuitscope::model::{net, Preset, RuntimeModel};

fn random_model(preset: Preset, seed: u64) -> RuntimeModel {
    preset
        .arch()
        .view(&net::build(preset, seed).params())
        .unwrap()
}

fn trained_products() -> RuntimeModel {
    use circuitscope::model::train::TrainConfig;
    use circuitscope::runlog::train::train;
    let dir = tempfile::tempdir().unwrap();
    let o = train(
        &dir.path().join("r"),
        &TrainConfig {
            epochs: 3,
            n_train: 4000,
            ..TrainConfig::defaults(Preset::Products)
        }
        .check()
        .unwrap(),
        &mut |_| {},
    )
    .unwrap();
    circuitscope::runlog::load::read_checkpoint(&o.run.model(), None)
        .unwrap()
        .view()
        .unwrap()
}

/// `h_0..h_L` of each example.
fn layers_of(model: &RuntimeModel, x: &[f64]) -> Vec<Vec<f64>> {
    let mut hs = vec![x.to_vec()];
    hs.extend(model.trace(x).unwrap().post);
    hs
}

#[test]
fn ig_attributions_sum_to_the_change_in_the_target_for_every_target_and_baseline() {
    for (name, model) in [
        ("random", random_model(Preset::Products, 4)),
        ("trained", trained_products()),
    ] {
        let n = 12;
        let x = inputs(4, n, 1);
        let hs = layers_of(&model, &x);
        let widths = model.widths();
        let targets = [
            Target::Node,
            Target::Outputs(vec![0]),
            Target::Outputs(vec![1]),
            Target::Outputs(vec![0, 1]),
        ];
        for l in 0..model.layers.len() {
            let d = widths[l];
            let mean: Vec<f64> = (0..d)
                .map(|u| (0..n).map(|i| hs[l][i * d + u]).sum::<f64>() / n as f64)
                .collect();
            for i in 0..n {
                let a = &hs[l][i * d..(i + 1) * d];
                let other = &hs[l][((i + 5) % n) * d..((i + 5) % n + 1) * d];
                for (bname, base) in [
                    ("zero", vec![0.0; d]),
                    ("mean", mean.clone()),
                    ("resample", other.to_vec()),
                ] {
                    let eas = edge_attributions_multi(&model, l, a, &base, &targets, Mode::Exact)
                        .unwrap();
                    for (t, ea) in targets.iter().zip(&eas) {
                        let (ta, tb) = (
                            target_value(&model, l, a, t),
                            target_value(&model, l, &base, t),
                        );
                        match t {
                            Target::Node => {
                                for j in 0..widths[l + 1] {
                                    let s: f64 = ea[j * d..(j + 1) * d].iter().sum();
                                    assert!(
                                        (s - (ta[j] - tb[j])).abs() <= 1e-9,
                                        "{name} layer {l} node {j} {bname}: {s} vs {}",
                                        ta[j] - tb[j]
                                    );
                                }
                            }
                            Target::Outputs(_) => {
                                let s: f64 = ea.iter().sum();
                                assert!(
                                    (s - (ta[0] - tb[0])).abs() <= 1e-9,
                                    "{name} layer {l} {t:?} {bname}: Σ EA {s} vs ΔT {}",
                                    ta[0] - tb[0]
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn exact_ig_equals_a_fine_riemann_sum_and_riemann_error_shrinks_with_steps() {
    let model = trained_products();
    let x = inputs(4, 6, 2);
    let hs = layers_of(&model, &x);
    let target = Target::Outputs(vec![0]);
    for l in [1, 2] {
        let d = model.widths()[l];
        for i in 0..6 {
            let a = &hs[l][i * d..(i + 1) * d];
            let base = vec![0.0; d];
            let exact = edge_attributions(&model, l, a, &base, &target, Mode::Exact).unwrap();
            let err = |steps: usize| {
                let r =
                    edge_attributions(&model, l, a, &base, &target, Mode::Riemann(steps)).unwrap();
                r.iter()
                    .zip(&exact)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f64::max)
            };
            assert!(
                err(20_000) <= 1e-5,
                "layer {l} example {i}: 20,000-step Riemann differs by {:e}",
                err(20_000)
            );
            let (e10, e100, e1000) = (err(10), err(100), err(1000));
            assert!(
                e1000 <= e100 && e100 <= e10,
                "layer {l} example {i}: Riemann errors {e10:e}, {e100:e}, {e1000:e} should shrink"
            );
        }
    }
}

#[test]
fn disconnected_blocks_have_exactly_zero_cross_edges_and_form_their_own_communities() {
    let model = two_blocks(4);
    let data = block_data(200, 3);
    for baseline in [Baseline::Zero, Baseline::Mean, Baseline::Resample] {
        let spec = GraphSpec {
            examples: 200,
            baseline,
            ..Default::default()
        }
        .check()
        .unwrap();
        let g = build(&model, &data, &two_tasks(), &spec).unwrap();
        let block = |n: petgraph::graph::NodeIndex| {
            let node = &g.graph[n];
            let half = g.widths[node.layer] / 2;
            node.units[0] >= half
        };
        for e in g.graph.edge_indices() {
            let (a, b) = g.graph.edge_endpoints(e).unwrap();
            if block(a) != block(b) {
                assert_eq!(g.graph[e].mean_abs, 0.0, "{baseline:?}: edge across blocks");
            }
        }
        let comms: Vec<(bool, usize)> = g
            .graph
            .node_indices()
            .map(|n| (block(n), g.graph[n].community))
            .collect();
        for &(b1, c1) in &comms {
            for &(b2, c2) in &comms {
                if b1 != b2 {
                    assert_ne!(c1, c2, "{baseline:?}: a community spans both blocks");
                }
            }
        }
        assert_eq!(
            g.communities, 2,
            "{baseline:?}: the two blocks are the two communities"
        );
        // Task shares: block A's hidden nodes serve task a only.
        for n in g.graph.node_indices() {
            let share = &g.graph[n].task_share;
            if share.iter().sum::<f64>() > 0.0 {
                assert_eq!(share[if block(n) { 1 } else { 0 }], 1.0);
            }
        }
    }
}

#[test]
fn leiden_on_the_karate_club_finds_modularity_near_0_42() {
    const EDGES: [(usize, usize); 78] = [
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (0, 5),
        (0, 6),
        (0, 7),
        (0, 8),
        (0, 10),
        (0, 11),
        (0, 12),
        (0, 13),
        (0, 17),
        (0, 19),
        (0, 21),
        (0, 31),
        (1, 2),
        (1, 3),
        (1, 7),
        (1, 13),
        (1, 17),
        (1, 19),
        (1, 21),
        (1, 30),
        (2, 3),
        (2, 7),
        (2, 8),
        (2, 9),
        (2, 13),
        (2, 27),
        (2, 28),
        (2, 32),
        (3, 7),
        (3, 12),
        (3, 13),
        (4, 6),
        (4, 10),
        (5, 6),
        (5, 10),
        (5, 16),
        (6, 16),
        (8, 30),
        (8, 32),
        (8, 33),
        (9, 33),
        (13, 33),
        (14, 32),
        (14, 33),
        (15, 32),
        (15, 33),
        (18, 32),
        (18, 33),
        (19, 33),
        (20, 32),
        (20, 33),
        (22, 32),
        (22, 33),
        (23, 25),
        (23, 27),
        (23, 29),
        (23, 32),
        (23, 33),
        (24, 25),
        (24, 27),
        (24, 31),
        (25, 31),
        (26, 29),
        (26, 33),
        (27, 33),
        (28, 31),
        (28, 33),
        (29, 32),
        (29, 33),
        (30, 32),
        (30, 33),
        (31, 32),
        (31, 33),
        (32, 33),
    ];
    let edges: Vec<(usize, usize, f64)> = EDGES.iter().map(|&(a, b)| (a, b, 1.0)).collect();
    let c = leiden(34, &edges, 0).unwrap();
    println!(
        "karate club: {} communities, Q = {:.4}",
        c.count, c.modularity
    );
    assert!(
        (0.40..=0.43).contains(&c.modularity),
        "Q = {}",
        c.modularity
    );
    // Our modularity agrees with a hand count: one community holding everything has Q = 0.
    assert!(modularity(34, &edges, &[0; 34]).abs() < 1e-12);
    // The two factions of the club's split (Zachary 1977) give the textbook Q = 0.3715.
    let mr_hi = [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 16, 17, 19, 21];
    let split: Vec<usize> = (0..34)
        .map(|i| if mr_hi.contains(&i) { 0 } else { 1 })
        .collect();
    let q = modularity(34, &edges, &split);
    assert!((q - 0.3715).abs() < 1e-3, "Q of the factions = {q}");
    // Asked for two communities: Leiden's four merged by least modularity loss. The best
    // two-way split of the club has Q = 0.3718 (Newman 2006, "Modularity and community
    // structure in networks") and misplaces one member against the factions; the factions
    // themselves have 0.3715. Either is a right answer (this gives the factions).
    let (two, gamma) = leiden_with_count(34, &edges, &[], 0, 2, &[]).unwrap();
    let wrong = (0..34)
        .filter(|&i| (two.membership[i] == two.membership[0]) != (split[i] == 0))
        .count();
    println!(
        "two communities at γ = {gamma:.3}: Q = {:.4}, {wrong} misplaced",
        two.modularity
    );
    assert_eq!(two.count, 2);
    assert!((two.modularity - 0.3718).abs() < 1e-3, "{two:?}");
    assert!(wrong <= 1, "{wrong} members misplaced");
}

#[test]
fn asking_for_as_many_communities_as_circuits_joins_the_layers_of_each() {
    // Two disjoint chains of 10 layers of 3 nodes, every adjacent-layer pair fully connected:
    // at resolution 1 modularity gains by cutting each chain along depth (as in a deep
    // network's circuit); asked for 2 communities, each chain is one.
    let mut edges = Vec::new();
    for chain in 0..2 {
        for layer in 0..9 {
            for a in 0..3 {
                for b in 0..3 {
                    let node = |l: usize, i: usize| chain * 30 + l * 3 + i;
                    edges.push((node(layer, a), node(layer + 1, b), 1.0));
                }
            }
        }
    }
    let fine = leiden(60, &edges, 0).unwrap();
    println!("resolution 1: {} communities", fine.count);
    assert!(fine.count > 2, "{fine:?}");
    let (two, _) = leiden_with_count(60, &edges, &[], 0, 2, &[]).unwrap();
    assert_eq!(two.count, 2);
    for i in 0..60 {
        assert_eq!(two.membership[i], two.membership[(i / 30) * 30], "node {i}");
    }
    // Edge cases: asking for 0 communities gives 1; no edges leaves every node alone; asking
    // for more than Leiden finds even at resolution 10 gives what it finds.
    assert_eq!(
        leiden_with_count(60, &edges, &[], 0, 0, &[])
            .unwrap()
            .0
            .count,
        1
    );
    assert_eq!(
        leiden_with_count(3, &[], &[], 0, 1, &[]).unwrap().0.count,
        3
    );
    let (many, gamma) = leiden_with_count(60, &edges, &[], 0, 59, &[]).unwrap();
    assert!(
        many.count < 59 && gamma == 10.0,
        "{} at γ = {gamma}",
        many.count
    );
}

#[test]
fn roi_clustering_groups_neurons_with_the_same_profile_direction() {
    // Six neurons: three point one way, two another, one is dead.
    let profiles: Vec<f64> = [
        [1.0, 0.1, 0.0],
        [2.0, 0.2, 0.0],
        [0.5, 0.06, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.1, 3.0],
        [0.0, 0.0, 0.0],
    ]
    .concat();
    let c = roi::cluster(&profiles, 6, 4).unwrap();
    assert_eq!(c.groups, vec![vec![0, 1, 2], vec![3, 4], vec![5]]);
    assert_eq!(c.dead, 1);
    assert!(c.silhouette > 0.9, "silhouette {}", c.silhouette);
}

#[test]
fn roi_graph_edges_are_sums_of_neuron_edges() {
    let model = trained_products();
    let data = circuitscope::data::products::ProductsConfig {
        n_val: 100,
        n_train: 1,
        n_per_task: 1,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let tasks = data.tasks.clone();
    let neurons = build(
        &model,
        &data.val,
        &tasks,
        &GraphSpec {
            examples: 100,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    let rois = build(
        &model,
        &data.val,
        &tasks,
        &GraphSpec {
            examples: 100,
            nodes: NodeKind::Roi,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    assert!(rois.graph.node_count() < neurons.graph.node_count());
    for c in &rois.clustering {
        assert_eq!(c.sizes.iter().sum::<usize>(), 32);
    }
    // Completeness survives grouping: the total mean attribution per layer pair is the same.
    let per_layer = |g: &circuitscope::graph::CircuitGraph| {
        let mut v = vec![0.0; g.widths.len() - 1];
        for e in g.graph.edge_indices() {
            let (a, _) = g.graph.edge_endpoints(e).unwrap();
            v[g.graph[a].layer] += g.graph[e].mean;
        }
        v
    };
    for (a, b) in per_layer(&neurons).iter().zip(per_layer(&rois)) {
        assert!((a - b).abs() < 1e-9 * a.abs().max(1.0), "{a} vs {b}");
    }
    // Activated subgraphs use part of the graph.
    assert!(neurons.activated_share > 0.0 && neurons.activated_share < 1.0);
}

#[test]
fn graph_json_round_trips_and_bad_files_are_clear_errors() {
    let model = two_blocks(4);
    let data = block_data(50, 5);
    let g = build(
        &model,
        &data,
        &two_tasks(),
        &GraphSpec {
            examples: 50,
            edges: EdgeKind::Grad,
            target: TargetKind::Node,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("graph.json");
    write_graph_files(&g, dir.path(), None).unwrap();
    let back = read_graph(&p).unwrap();
    assert_eq!(back.graph.node_count(), g.graph.node_count());
    assert_eq!(back.graph.edge_count(), g.graph.edge_count());
    assert_eq!(
        back.graph.node_weights().collect::<Vec<_>>(),
        g.graph.node_weights().collect::<Vec<_>>()
    );
    write_graph_files(&g, dir.path(), Some(5)).unwrap();
    assert_eq!(
        read_graph(&p).unwrap().graph.edge_count(),
        5,
        "the edge budget holds"
    );

    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, &text[..text.len() / 2]).unwrap();
    let err = read_graph(&p).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: not a graph file (truncated or not JSON)",
            p.display()
        )),
        "{err}"
    );
    std::fs::write(&p, text.replace("\"version\":1", "\"version\":7")).unwrap();
    assert_eq!(
        read_graph(&p).unwrap_err().to_string(),
        format!(
            "{}: graph schema version 7 is not supported (this build reads version 1)",
            p.display()
        )
    );
    std::fs::write(&p, "{\"format\":\"something-else\"}").unwrap();
    assert_eq!(
        read_graph(&p).unwrap_err().to_string(),
        format!(
            "{}: not a circuitscope graph (format is \"something-else\")",
            p.display()
        )
    );

    let svg = dir.path().join("graph.svg");
    write_graph_files(&g, dir.path(), Some(20)).unwrap();
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    assert_eq!(s.matches("<circle").count(), g.graph.node_count());
    assert_eq!(s.matches("<line").count(), 20);
    let dot = dir.path().join("graph.dot");
    write_graph_files(&g, dir.path(), None).unwrap();
    let d = std::fs::read_to_string(&dot).unwrap();
    assert_eq!(d.matches(" -> ").count(), g.graph.edge_count());
}

#[test]
fn graph_options_are_checked_before_work() {
    let model = random_model(Preset::ProductsGelu, 1);
    let data = circuitscope::data::products::ProductsConfig {
        n_val: 10,
        n_train: 1,
        n_per_task: 1,
        ..Default::default()
    }
    .generate()
    .unwrap();
    // A smooth network gets a Riemann sum without being asked, and says so with its
    // completeness error; a ReLU network gets exact IG, complete to rounding.
    let auto = build(
        &model,
        &data.val,
        &data.tasks,
        &GraphSpec::default().check().unwrap(),
    )
    .unwrap();
    let ig = auto.ig.as_ref().unwrap();
    // Smooth GELU adds up at the first step count: no example needed more.
    assert_eq!(ig.mode, "riemann 128 (automatic)");
    assert!(
        ig.max_delta > 0.0 && ig.max_error < 1e-3 * ig.max_delta,
        "{ig:?}"
    );
    let relu = random_model(Preset::Products, 1);
    let exact = build(
        &relu,
        &data.val,
        &data.tasks,
        &GraphSpec::default().check().unwrap(),
    )
    .unwrap();
    let ig = exact.ig.as_ref().unwrap();
    assert_eq!(ig.mode, "exact");
    assert!(ig.max_error < 1e-12 * ig.max_delta.max(1.0), "{ig:?}");
    assert_eq!(
        exact.examples, 10,
        "the examples there are, not the 500 asked for"
    );
    let g = build(
        &model,
        &data.val,
        &data.tasks,
        &GraphSpec {
            riemann_steps: 64,
            examples: 10,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(g.graph.edge_count(), 4 * 32 + 32 * 32 * 2 + 32 * 2);
    let err = GraphSpec {
        examples: 0,
        ..Default::default()
    }
    .check()
    .unwrap_err()
    .to_string();
    assert_eq!(
        err, "examples must be at least 1",
        "the library names the value"
    );
}

#[test]
fn gradient_graphs_have_intra_layer_edges_and_component_views() {
    let model = two_blocks(4);
    let data = block_data(80, 7);
    let g = build(
        &model,
        &data,
        &two_tasks(),
        &GraphSpec {
            examples: 80,
            edges: EdgeKind::Grad,
            target: TargetKind::Node,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    // Layers h1 (4 nodes), h2 (4), h3 (2): C(4,2) + C(4,2) + C(2,2) intra edges.
    assert_eq!(g.intra.len(), 6 + 6 + 1);
    let block = |id: usize| {
        let node = &g.graph[petgraph::graph::NodeIndex::new(id)];
        node.units[0] >= g.widths[node.layer] / 2
    };
    for e in &g.intra {
        assert!((-1.0..=1.0).contains(&e.cosine));
        if block(e.a) != block(e.b) {
            assert_eq!(
                e.cosine, 0.0,
                "nodes of different blocks send back gradients with disjoint support"
            );
        }
    }
    // Every normalised flow into a live node sums to 1 over its inputs, per example, so the
    // mean over examples is at most 1.
    for n in g.graph.node_indices().filter(|&n| g.graph[n].layer > 0) {
        let s: f64 = g
            .graph
            .edges_directed(n, petgraph::Direction::Incoming)
            .map(|e| e.weight().mean)
            .sum();
        assert!(
            s <= 1.0 + 1e-12,
            "flow into {} sums to {s}",
            g.graph[n].label
        );
    }

    let c = build(
        &model,
        &data,
        &two_tasks(),
        &GraphSpec {
            examples: 80,
            edges: EdgeKind::Grad,
            nodes: NodeKind::Component,
            max_rois: 3,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(c.graph.node_count(), 4 + 3 + 3 + 2);
    assert!(c.graph.node_weights().any(|n| n.label == "h1:PC0"));
    let err = GraphSpec {
        nodes: NodeKind::Component,
        ..Default::default()
    }
    .check()
    .unwrap_err()
    .to_string();
    assert_eq!(err, "graph: component nodes are read-only views of a layer, not units to attribute through; build them with gradient-flow edges (`grad`)");
}

#[test]
fn an_examples_activated_subgraph_stays_inside_the_blocks_it_uses() {
    let model = two_blocks(4);
    let data = block_data(30, 8);
    let g = build(
        &model,
        &data,
        &two_tasks(),
        &GraphSpec {
            examples: 30,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    let block =
        |n: petgraph::graph::NodeIndex| g.graph[n].units[0] >= g.widths[g.graph[n].layer] / 2;
    let mut sizes = Vec::new();
    for i in 0..30 {
        let sub = g.activated_subgraph(i);
        for &e in &sub {
            let (a, b) = g.graph.edge_endpoints(e).unwrap();
            assert_eq!(block(a), block(b));
        }
        sizes.push(sub.len());
    }
    let share = sizes.iter().sum::<usize>() as f64 / (30 * g.graph.edge_count()) as f64;
    assert!((share - g.activated_share).abs() < 1e-12);
    assert!(
        share <= 0.5,
        "cross-block edges are never active, and they are half the edges: {share}"
    );
}

#[test]
fn ig_graphs_are_the_same_on_one_thread_and_on_three() {
    // IG is computed in parallel chunks of examples and summed in example order: the graph
    // must not depend on the thread count (300 examples span two chunks).
    let model = trained_products();
    let data = circuitscope::data::products::ProductsConfig {
        n_val: 300,
        n_train: 1,
        n_per_task: 1,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let g = pool.install(|| {
            build(
                &model,
                &data.val,
                &data.tasks,
                &GraphSpec {
                    examples: 300,
                    baseline: Baseline::Resample,
                    ..Default::default()
                }
                .check()
                .unwrap(),
            )
            .unwrap()
        });
        g.graph
            .edge_indices()
            .map(|e| (g.graph[e].mean, g.graph[e].std))
            .collect::<Vec<_>>()
    };
    let one = on(1);
    assert!(one.iter().any(|(m, _)| *m != 0.0));
    assert_eq!(one, on(3));
}

#[test]
fn a_graph_streamed_over_chunks_of_examples_equals_every_examples_attributions_averaged() {
    use circuitscope::graph::build::{ACTIVATED_KEPT, EXAMPLE_CHUNK};
    // Two and a half chunks: the running sums must merge across chunk boundaries, the mean
    // baseline must be the mean of every example, not of one chunk.
    let n = EXAMPLE_CHUNK * 5 / 2;
    let model = two_blocks(4);
    let data = block_data(n, 21);
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let hs = layers_of(&model, &x);
    let widths = model.widths();
    for baseline in [Baseline::Zero, Baseline::Mean] {
        let g = build(
            &model,
            &data,
            &two_tasks(),
            &GraphSpec {
                examples: n,
                baseline,
                ..Default::default()
            }
            .check()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(g.examples, n);
        assert_eq!(
            g.activated.len(),
            ACTIVATED_KEPT,
            "only the first examples' subgraphs are kept"
        );
        let mut active = 0usize;
        let mut e = 0;
        for l in 0..model.layers.len() {
            let d = widths[l];
            let base = match baseline {
                Baseline::Zero => vec![0.0; d],
                _ => (0..d)
                    .map(|u| (0..n).map(|r| hs[l][r * d + u]).sum::<f64>() / n as f64)
                    .collect(),
            };
            let mut sum = vec![0.0; widths[l + 1] * d];
            let mut per_task = vec![vec![0.0; widths[l + 1] * d]; 2];
            for r in 0..n {
                let a = &hs[l][r * d..(r + 1) * d];
                let targets = [Target::Outputs(vec![0]), Target::Outputs(vec![1])];
                let ea =
                    edge_attributions_multi(&model, l, a, &base, &targets, Mode::Exact).unwrap();
                for k in 0..sum.len() {
                    let v = ea[0][k] + ea[1][k];
                    sum[k] += v;
                    per_task[0][k] += ea[0][k].abs();
                    per_task[1][k] += ea[1][k].abs();
                    active += usize::from(v.abs() > 1e-12);
                }
            }
            for j in 0..widths[l + 1] {
                for i in 0..d {
                    let edge = &g.graph[petgraph::graph::EdgeIndex::new(e)];
                    let k = j * d + i;
                    assert!(
                        (edge.mean - sum[k] / n as f64).abs() < 1e-12,
                        "{baseline:?} layer {l} edge {i}->{j}"
                    );
                    for (got, sums) in edge.per_task.iter().zip(&per_task) {
                        assert!((got - sums[k] / n as f64).abs() < 1e-12);
                    }
                    e += 1;
                }
            }
        }
        let share = active as f64 / (n * g.graph.edge_count()) as f64;
        assert!(
            (g.activated_share - share).abs() < 1e-12,
            "{} vs {share}",
            g.activated_share
        );
    }
}

#[test]
fn a_graph_too_large_for_the_log_carries_bundles_of_every_edge() {
    use circuitscope::data::products::ProductsConfig;
    use circuitscope::runlog::events::GRAPH_EDGES_MAX;
    use circuitscope::runlog::graph::graph_edges_event;
    use circuitscope::runlog::Event;
    use petgraph::visit::EdgeRef;
    // products64: 4·64 + 64·64·2 + 64·2 = 8,576 edges, more than the log carries.
    let model = random_model(Preset::Products64, 2);
    let data = ProductsConfig {
        n_val: 20,
        n_per_task: 5,
        n_train: 5,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let spec = GraphSpec {
        examples: 20,
        ..Default::default()
    }
    .check()
    .unwrap();
    let g = build(&model, &data.val, &data.tasks, &spec).unwrap();
    assert_eq!(g.graph.edge_count(), 8576);
    let Event::GraphEdges {
        edges,
        total_edges,
        bundles,
        ..
    } = graph_edges_event(&g)
    else {
        panic!("a graph_edges event")
    };
    assert_eq!((edges.len(), total_edges), (GRAPH_EDGES_MAX, 8576));
    // Every edge is in exactly one bundle, and each bundle sums its edges.
    assert_eq!(bundles.iter().map(|b| b.edges).sum::<usize>(), 8576);
    for b in &bundles {
        let (mut sum, mut sum_abs, mut count) = (0.0, 0.0, 0);
        for e in g.graph.edge_references() {
            let (s, t) = (&g.graph[e.source()], &g.graph[e.target()]);
            if (s.layer, s.community, t.layer, t.community)
                == (b.from_layer, b.from_community, b.to_layer, b.to_community)
            {
                sum += e.weight().mean;
                sum_abs += e.weight().mean_abs;
                count += 1;
            }
        }
        assert_eq!(count, b.edges);
        assert!((sum - b.sum).abs() <= 1e-9 * sum_abs.max(1e-300), "{b:?}");
        assert!(
            (sum_abs - b.sum_abs).abs() <= 1e-9 * sum_abs.max(1e-300),
            "{b:?}"
        );
    }
    assert!(bundles.windows(2).all(|w| w[0].sum_abs >= w[1].sum_abs));
    // A graph the log carries whole has no bundles (the view sums what it has).
    let small = build(
        &random_model(Preset::Products, 2),
        &data.val,
        &data.tasks,
        &spec,
    )
    .unwrap();
    let Event::GraphEdges { bundles, .. } = graph_edges_event(&small) else {
        panic!()
    };
    assert!(bundles.is_empty());
}

#[test]
fn a_component_graph_streamed_over_chunks_equals_the_whole_batch_definition() {
    use circuitscope::data::products::ProductsConfig;
    use circuitscope::numeric::linalg::Pca;
    use petgraph::graph::NodeIndex;
    let model = random_model(Preset::Products, 4);
    // 10,240 examples: two chunks of 4,096 and a half one.
    let n = 10_240;
    let data = ProductsConfig {
        n_val: n,
        n_per_task: 5,
        n_train: 5,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let q = 3;
    let g = build(
        &model,
        &data.val,
        &data.tasks,
        &GraphSpec {
            examples: n,
            edges: EdgeKind::Grad,
            nodes: NodeKind::Component,
            max_rois: q,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    // The definition on the whole batch: each hidden layer's PCA, then the mean over examples
    // of |p_bᵀ J p_a| normalised over a.
    let x = circuitscope::model::view::widen(&data.val.x);
    let hs = layers_of(&model, &x);
    let widths = model.widths();
    let last = widths.len() - 1;
    let bases: Vec<Vec<Vec<f64>>> = (0..widths.len())
        .map(|k| {
            let d = widths[k];
            if k == 0 || k == last {
                (0..d)
                    .map(|u| (0..d).map(|v| (u == v) as u8 as f64).collect())
                    .collect()
            } else {
                let p = Pca::fit(&hs[k], n, d).unwrap();
                (0..q).map(|c| p.component(c).to_vec()).collect()
            }
        })
        .collect();
    let offset: Vec<usize> = bases
        .iter()
        .scan(0, |acc, b| {
            let s = *acc;
            *acc += b.len();
            Some(s)
        })
        .collect();
    for (l, layer) in model.layers.iter().enumerate() {
        let (bi, bo) = (&bases[l], &bases[l + 1]);
        let mut sum = vec![0.0; bo.len() * bi.len()];
        for i in 0..n {
            let z = layer.pre_activation(&hs[l][i * layer.d_in..(i + 1) * layer.d_in]);
            for (b, pb) in bo.iter().enumerate() {
                let flows: Vec<f64> = bi
                    .iter()
                    .map(|pa| {
                        (0..layer.d_out)
                            .map(|j| {
                                pb[j]
                                    * layer.activation.derivative_f64(z[j])
                                    * (0..layer.d_in)
                                        .map(|m| layer.w(j, m) as f64 * pa[m])
                                        .sum::<f64>()
                            })
                            .sum::<f64>()
                            .abs()
                    })
                    .collect();
                let total: f64 = flows.iter().sum();
                for (a, f) in flows.iter().enumerate() {
                    sum[b * bi.len() + a] += if total > 0.0 { f / total } else { *f };
                }
            }
        }
        for b in 0..bo.len() {
            for a in 0..bi.len() {
                let e = g
                    .graph
                    .find_edge(
                        NodeIndex::new(offset[l] + a),
                        NodeIndex::new(offset[l + 1] + b),
                    )
                    .unwrap();
                let (got, want) = (g.graph[e].mean, sum[b * bi.len() + a] / n as f64);
                assert!(
                    (got - want).abs() < 1e-9,
                    "layer {l} edge {a}→{b}: streamed {got} vs whole {want}"
                );
            }
        }
    }
}

#[test]
fn a_large_graph_keeps_activated_subgraphs_within_the_budget() {
    use circuitscope::graph::build::{ACTIVATED_BUDGET, ACTIVATED_KEPT};
    // 4·130 + 130·130 + 130·2 = 17,680 edges: the budget keeps 948 examples' subgraphs.
    let model = two_blocks(130);
    let n = 1000;
    let g = build(
        &model,
        &block_data(n, 4),
        &two_tasks(),
        &GraphSpec {
            examples: n,
            edges: EdgeKind::Grad,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(g.graph.edge_count(), 17_680);
    let kept = ACTIVATED_BUDGET / 17_680;
    assert!(kept < ACTIVATED_KEPT.min(n));
    assert_eq!(g.activated.len(), kept);
    assert!(g.activated.iter().map(Vec::len).sum::<usize>() <= ACTIVATED_BUDGET);
    assert!(!g.activated_subgraph(kept - 1).is_empty());
    assert!(g.activated_subgraph(kept).is_empty());
}

#[test]
fn a_wide_layer_attributed_in_smaller_batches_gives_every_examples_attributions_averaged() {
    use circuitscope::graph::ig::{edge_attributions_multi, Mode, Target};
    // h1 → h2 of two_blocks(200) holds 200·200·2 task values an example: batches of 128
    // examples, not 256. 300 examples cross two batch boundaries.
    let model = two_blocks(200);
    let n = 300;
    let data = block_data(n, 6);
    let g = build(
        &model,
        &data,
        &two_tasks(),
        &GraphSpec {
            examples: n,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    let x: Vec<f64> = data.x.iter().map(|&v| v as f64).collect();
    let hs = layers_of(&model, &x);
    let (l, d, d_out) = (1, 200, 200);
    let targets = [Target::Outputs(vec![0]), Target::Outputs(vec![1])];
    let mut sum = vec![0.0; d_out * d];
    for r in 0..n {
        let a = &hs[l][r * d..(r + 1) * d];
        let ea =
            edge_attributions_multi(&model, l, a, &vec![0.0; d], &targets, Mode::Exact).unwrap();
        for (k, s) in sum.iter_mut().enumerate() {
            *s += ea[0][k] + ea[1][k];
        }
    }
    // Layer 1's edges follow layer 0's 4·200 in the graph's edge order.
    for (k, s) in sum.iter().enumerate() {
        let edge = &g.graph[petgraph::graph::EdgeIndex::new(4 * 200 + k)];
        assert!(
            (edge.mean - s / n as f64).abs() < 1e-12,
            "edge {k}: {} vs {}",
            edge.mean,
            s / n as f64
        );
    }
}
