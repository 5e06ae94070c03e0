//! Circuit discovery on networks whose minimal circuit is known by construction: one path
//! carries the task, every other edge is an exact zero or one of a pair of paths that cancel.
//! Every method must rank the path first; ACDC and the learned masks must keep nothing else.

use circuitscope::data::{Dataset, Task, TaskStructure};
use circuitscope::eval::ablation::{Ablation, Baselines, EdgeMask};
use circuitscope::eval::discover::acdc_circuit;
use circuitscope::eval::{
    completeness, discover, faithfulness_of, Circuit, DiscoverOptions, Items, Method, FRACTIONS,
};
use circuitscope::graph::{build, GraphSpec};
use circuitscope::model::{Activation, Layer, RuntimeModel};
use rand::{Rng, SeedableRng};

/// x (3 inputs) → h (3 ReLU units) → y. The task is y = x0 through x0 → h0 → y; x1 reaches y
/// through h1 (+0.25 x1) and h2 (−0.25 x1), which cancel; every other weight is 0.
fn network() -> RuntimeModel {
    #[rustfmt::skip]
    let w0 = vec![
        1.0, 0.0, 0.0, // h0 = x0
        0.0, 0.5, 0.0, // h1 = x1 / 2
        0.0, 0.5, 0.0, // h2 = x1 / 2
    ];
    RuntimeModel {
        layers: vec![
            Layer {
                d_in: 3,
                d_out: 3,
                weight: w0,
                bias: vec![0.0; 3],
                activation: Activation::Relu,
            },
            Layer {
                d_in: 3,
                d_out: 1,
                weight: vec![1.0, 0.5, -0.5],
                bias: vec![0.0],
                activation: Activation::Identity,
            },
        ],
    }
}

/// The circuit's model edges, as `(layer, j * d_in + i)`.
const CIRCUIT: [(usize, usize); 2] = [(0, 0), (1, 0)];

fn data(n: usize) -> (Dataset, TaskStructure) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let x: Vec<f32> = (0..n * 3).map(|_| rng.gen_range(0.1f32..1.0)).collect();
    let y: Vec<f32> = x.chunks(3).map(|r| r[0]).collect();
    let tasks = TaskStructure {
        tasks: vec![Task {
            name: "y".into(),
            inputs: vec![0],
            outputs: vec![0],
        }],
    };
    (Dataset::regression("hand", 3, 1, x, y).unwrap(), tasks)
}

/// The model edges `(layer, j * d_in + i)` of the circuit's top `k` items, sorted.
fn top(c: &Circuit, k: usize) -> Vec<(usize, usize)> {
    let mut t: Vec<(usize, usize)> = c.ranking()[..k]
        .iter()
        .flat_map(|&t| {
            let (l, m) = &c.items.members[t];
            m.iter().map(move |&e| (*l, e))
        })
        .collect();
    t.sort();
    t
}

/// The items' masks above one half, as model edges (per-edge items).
fn on(items: &Items, masks: &[f64]) -> Vec<(usize, usize)> {
    let mut t: Vec<(usize, usize)> = (0..items.len())
        .filter(|&t| masks[t] > 0.5)
        .flat_map(|t| {
            let (l, m) = &items.members[t];
            m.iter().map(move |&e| (*l, e))
        })
        .collect();
    t.sort();
    t
}

#[test]
fn every_method_ranks_the_one_path_that_carries_the_task_first() {
    let model = network();
    let (ds, tasks) = data(64);
    let x: Vec<f64> = ds.x.iter().map(|&v| v as f64).collect();
    let g = build(&model, &ds, &tasks, &GraphSpec::default().check().unwrap()).unwrap();
    assert_eq!(g.graph.edge_count(), 12);
    // A neuron graph's edges are the model's edges, one item each, in the model's order.
    let items = Items::of_graph(&model, &g, circuitscope::eval::Level::Edge).unwrap();
    let edges = Items::per_edge(&model);
    assert_eq!((&items.members, &items.of), (&edges.members, &edges.of));
    let base = Baselines::new(&model, &x, Ablation::Zero, 0).unwrap();
    for method in [
        Method::Ig,
        Method::Eap,
        Method::EapIg,
        Method::Acdc,
        Method::Mask,
    ] {
        let opts = DiscoverOptions::new(method).check().unwrap();
        let c = discover(&model, &g, &tasks, &x, &base, &opts).unwrap();
        assert_eq!(top(&c, 2), CIRCUIT, "{method:?}: {:?}", c.scores);
        // Scored by the real ablated model: the two edges (2 of 12) are the whole behaviour,
        // and removing them leaves what removing everything leaves.
        let ranked = c.ranked_edges();
        let f = faithfulness_of(&model, &g, &ds, &tasks, &base, &ranked, &[2.0 / 12.0], 0).unwrap();
        assert!(
            (f.points[0].faithfulness - 1.0).abs() < 1e-9,
            "{method:?}: {:?}",
            f.points
        );
        let comp = completeness(&model, &g, &ds, &tasks, &base, &f, &ranked, 2.0 / 12.0).unwrap();
        assert!(comp.abs() < 1e-9, "{method:?}: completeness {comp}");
        let full = faithfulness_of(&model, &g, &ds, &tasks, &base, &ranked, &FRACTIONS, 0).unwrap();
        assert!(full.cpr > 0.9, "{method:?}: CPR {}", full.cpr);
    }
}

#[test]
fn acdc_and_masks_keep_nothing_but_the_path() {
    let model = network();
    let (ds, _) = data(64);
    let x: Vec<f64> = ds.x.iter().map(|&v| v as f64).collect();
    let base = Baselines::new(&model, &x, Ablation::Zero, 0).unwrap();
    let full = model.forward(&x).unwrap();
    let none = circuitscope::eval::ablation::forward_ablated(
        &model,
        &x,
        &EdgeMask::all(&model, false),
        &base,
    )
    .unwrap();
    let m_none: f64 = none
        .iter()
        .zip(&full)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / full.len() as f64;
    let kept = |mask: &EdgeMask| -> Vec<(usize, usize)> {
        mask.kept
            .iter()
            .enumerate()
            .flat_map(|(l, k)| {
                k.iter()
                    .enumerate()
                    .filter(|p| *p.1)
                    .map(move |(e, _)| (l, e))
            })
            .collect()
    };
    // One edge of the cancelling pair alone moves y by x1/4 (about 6% of the fully ablated
    // error): below that threshold ACDC must keep the pair, above it the pair goes, the path
    // never does.
    let low = acdc_circuit(&model, &x, &base, &full, 0.01 * m_none).unwrap();
    assert_eq!(kept(&low).len(), 2 + 4, "{:?}", kept(&low));
    let high = acdc_circuit(&model, &x, &base, &full, 0.1 * m_none).unwrap();
    assert_eq!(kept(&high), CIRCUIT);
    // The masks, trained jointly, drop the cancelling pair together at every penalty.
    for lambda in [0.01, 0.1] {
        let opts = DiscoverOptions {
            lambdas: vec![lambda],
            ..DiscoverOptions::new(Method::Mask)
        }
        .check()
        .unwrap();
        let items = Items::per_edge(&model);
        let m = circuitscope::eval::mask::masks(&model, &items, &x, &base, &opts, &[0]).unwrap();
        assert_eq!(on(&items, &m[0]), CIRCUIT, "λ {lambda}: {m:?}");
    }
}

#[test]
fn bad_options_are_refused_before_any_work() {
    for (opts, flag) in [
        (
            DiscoverOptions {
                steps: 0,
                ..DiscoverOptions::new(Method::EapIg)
            },
            "steps",
        ),
        (
            DiscoverOptions {
                taus: vec![],
                ..DiscoverOptions::new(Method::Acdc)
            },
            "taus",
        ),
        (
            DiscoverOptions {
                lambdas: vec![f64::NAN],
                ..DiscoverOptions::new(Method::Mask)
            },
            "lambdas",
        ),
        (
            DiscoverOptions {
                mask_steps: 0,
                ..DiscoverOptions::new(Method::Mask)
            },
            "mask_steps",
        ),
    ] {
        let e = opts.check().unwrap_err();
        assert!(
            matches!(e, circuitscope::Error::Param { name, .. } if name == flag),
            "{e}"
        );
    }
}

#[test]
fn acdc_reruns_only_later_layers_and_finds_what_whole_ablated_passes_find() {
    // ACDC reruns only the layers after each edge it tries; the circuit it returns, run as a
    // whole ablated model, must agree: its metric is the sum of the accepted rises, each under
    // the threshold, and the walk done with whole ablated passes keeps the same edges.
    use circuitscope::eval::ablation::forward_ablated;
    use circuitscope::model::{net, Preset};
    let model = Preset::Products
        .arch()
        .view(&net::build(Preset::Products, 5).params())
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let x: Vec<f64> = (0..48 * 4).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let base = Baselines::new(&model, &x, Ablation::Mean, 0).unwrap();
    let full = model.forward(&x).unwrap();
    let mse = |y: &[f64]| -> f64 {
        y.iter()
            .zip(&full)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / y.len() as f64
    };
    let none = mse(&forward_ablated(&model, &x, &EdgeMask::all(&model, false), &base).unwrap());
    for share in [1e-3, 1e-2] {
        let threshold = share * none;
        let mask = acdc_circuit(&model, &x, &base, &full, threshold).unwrap();
        let removed = mask.kept.iter().flatten().filter(|k| !**k).count();
        let m = mse(&forward_ablated(&model, &x, &mask, &base).unwrap());
        assert!(removed > 100, "τ {share}: {removed} edges removed");
        assert!(
            m <= threshold * removed as f64 + 1e-12,
            "τ {share}: metric {m} after {removed} removals of at most {threshold} each"
        );
        // The same walk with every trial a whole ablated forward pass keeps the same edges.
        let mut naive = EdgeMask::all(&model, true);
        let mut current = 0.0;
        for (k, layer) in model.layers.iter().enumerate().rev() {
            for e in (0..layer.d_in * layer.d_out).rev() {
                naive.kept[k][e] = false;
                let m = mse(&forward_ablated(&model, &x, &naive, &base).unwrap());
                if m - current < threshold {
                    current = m;
                } else {
                    naive.kept[k][e] = true;
                }
            }
        }
        assert_eq!(mask, naive, "τ {share}");
    }
}

#[test]
fn node_circuits_keep_the_one_neuron_that_carries_the_task() {
    use circuitscope::eval::{completeness_nodes, faithfulness_nodes, Level};
    let model = network();
    let (ds, tasks) = data(64);
    let x: Vec<f64> = ds.x.iter().map(|&v| v as f64).collect();
    let g = build(&model, &ds, &tasks, &GraphSpec::default().check().unwrap()).unwrap();
    let base = Baselines::new(&model, &x, Ablation::Zero, 0).unwrap();
    for method in [
        Method::Ig,
        Method::Eap,
        Method::EapIg,
        Method::Acdc,
        Method::Mask,
    ] {
        let opts = DiscoverOptions {
            level: Level::Node,
            ..DiscoverOptions::new(method)
        }
        .check()
        .unwrap();
        let c = discover(&model, &g, &tasks, &x, &base, &opts).unwrap();
        let ranked = c.ranked_nodes(&g);
        assert_eq!(ranked.len(), 3);
        assert_eq!(ranked[0], [(1, 0)], "{method:?}: {:?}", c.scores);
        // h0 alone (a third of the neurons) is the whole behaviour; without it, none is left.
        let f = faithfulness_nodes(&model, &ds, &tasks, &base, &ranked, &[1.0 / 3.0], 0).unwrap();
        assert!(
            (f.points[0].faithfulness - 1.0).abs() < 1e-9,
            "{method:?}: {:?}",
            f.points
        );
        let comp = completeness_nodes(&model, &ds, &tasks, &base, &f, &ranked, 1.0 / 3.0).unwrap();
        assert!(comp.abs() < 1e-9, "{method:?}: completeness {comp}");
    }
    // The selecting methods drop the cancelling pair together: at their harshest rung (ACDC's
    // largest threshold, the masks' largest penalty) only h0 is kept.
    let opts = DiscoverOptions {
        level: Level::Node,
        lambdas: vec![0.1],
        ..DiscoverOptions::new(Method::Mask)
    }
    .check()
    .unwrap();
    let items = Items::of_graph(&model, &g, Level::Node).unwrap();
    let neurons = Items::per_neuron(&model);
    assert_eq!((&items.members, &items.of), (&neurons.members, &neurons.of));
    let m = circuitscope::eval::mask::masks(&model, &items, &x, &base, &opts, &[0]).unwrap();
    let kept: Vec<usize> = (0..3).filter(|&u| m[0][u] > 0.5).collect();
    assert_eq!(kept, [0], "{m:?}");
    // The inputs' edges are in no item: never removed at the node level.
    assert!(items.of[0].iter().all(Option::is_none));
}

/// Two tasks on separate paths: y0 = x0 through h0, y1 = x1 through h1, and a third input
/// x2 that reaches h2, which no output reads.
fn two_tasks() -> (RuntimeModel, Dataset, TaskStructure) {
    #[rustfmt::skip]
    let w0 = vec![
        1.0, 0.0, 0.0, // h0 = x0
        0.0, 1.0, 0.0, // h1 = x1
        0.0, 0.0, 1.0, // h2 = x2
    ];
    #[rustfmt::skip]
    let w1 = vec![
        1.0, 0.0, 0.0, // y0 = h0
        0.0, 1.0, 0.0, // y1 = h1
    ];
    let model = RuntimeModel {
        layers: vec![
            Layer {
                d_in: 3,
                d_out: 3,
                weight: w0,
                bias: vec![0.0; 3],
                activation: Activation::Relu,
            },
            Layer {
                d_in: 3,
                d_out: 2,
                weight: w1,
                bias: vec![0.0; 2],
                activation: Activation::Identity,
            },
        ],
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let n = 64;
    let x: Vec<f32> = (0..n * 3).map(|_| rng.gen_range(0.1f32..1.0)).collect();
    let y: Vec<f32> = x.chunks(3).flat_map(|r| [r[0], r[1]]).collect();
    let task = |name: &str, k: usize| Task {
        name: name.into(),
        inputs: vec![k],
        outputs: vec![k],
    };
    let tasks = TaskStructure {
        tasks: vec![task("y0", 0), task("y1", 1)],
    };
    (
        model,
        Dataset::regression("two", 3, 2, x, y).unwrap(),
        tasks,
    )
}

#[test]
fn each_tasks_own_discovery_ranks_that_tasks_path_first() {
    // Read for one task alone, every method puts that task's two edges first and the other
    // task's path below them; read for both, the four edges of the two paths come first.
    let (model, ds, tasks) = two_tasks();
    let x: Vec<f64> = ds.x.iter().map(|&v| v as f64).collect();
    let g = build(&model, &ds, &tasks, &GraphSpec::default().check().unwrap()).unwrap();
    let base = Baselines::new(&model, &x, Ablation::Zero, 0).unwrap();
    // (layer, j * d_in + i): x_t -> h_t is (0, 4t), h_t -> y_t is (1, 4t).
    let path = |t: usize| vec![(0, 4 * t), (1, 4 * t)];
    for method in [
        Method::Ig,
        Method::Eap,
        Method::EapIg,
        Method::Acdc,
        Method::Mask,
    ] {
        for t in 0..2 {
            let opts = DiscoverOptions {
                task: Some(t),
                ..DiscoverOptions::new(method)
            }
            .check()
            .unwrap();
            let c = discover(&model, &g, &tasks, &x, &base, &opts).unwrap();
            assert_eq!(top(&c, 2), path(t), "{method:?} task {t}: {:?}", c.scores);
        }
        let c = discover(
            &model,
            &g,
            &tasks,
            &x,
            &base,
            &DiscoverOptions::new(method).check().unwrap(),
        )
        .unwrap();
        let mut both = [path(0), path(1)].concat();
        both.sort();
        assert_eq!(top(&c, 4), both, "{method:?}: {:?}", c.scores);
    }
    // A task the data does not have is refused.
    let opts = DiscoverOptions {
        task: Some(2),
        ..DiscoverOptions::new(Method::Eap)
    }
    .check()
    .unwrap();
    let e = discover(&model, &g, &tasks, &x, &base, &opts).unwrap_err();
    assert!(
        e.to_string()
            .contains("task 2 asked for, the data has 2 tasks"),
        "{e}"
    );
}

#[test]
fn acdc_over_groups_of_edges_finds_what_whole_ablated_passes_find() {
    // ACDC over hidden nodes (every edge a neuron feeds, removed together) reruns only the
    // later layers; the same walk done with whole ablated passes keeps the same nodes.
    use circuitscope::eval::ablation::forward_ablated;
    use circuitscope::eval::discover::acdc_items;
    use circuitscope::model::{net, Preset};
    let model = Preset::Products
        .arch()
        .view(&net::build(Preset::Products, 2).params())
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let x: Vec<f64> = (0..40 * 4).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let base = Baselines::new(&model, &x, Ablation::Mean, 0).unwrap();
    let full = model.forward(&x).unwrap();
    let outputs = [1usize];
    let mse = |y: &[f64]| -> f64 {
        (0..40)
            .map(|r| (y[r * 2 + 1] - full[r * 2 + 1]).powi(2))
            .sum::<f64>()
            / 40.0
    };
    let items = Items::per_neuron(&model);
    let none = mse(&forward_ablated(&model, &x, &EdgeMask::all(&model, false), &base).unwrap());
    let threshold = 0.01 * none;
    let kept = acdc_items(&model, &items, &x, &base, (&full, &outputs), threshold).unwrap();
    assert!(kept.iter().filter(|k| !**k).count() > 10, "{kept:?}");
    let mut naive = vec![true; items.len()];
    let mut current = 0.0;
    for t in items.from_outputs_back() {
        naive[t] = false;
        let m =
            mse(&forward_ablated(&model, &x, &items.mask(&model, |u| naive[u]), &base).unwrap());
        if m - current < threshold {
            current = m;
        } else {
            naive[t] = true;
        }
    }
    assert_eq!(kept, naive);
}

#[test]
fn a_budget_is_a_share_or_a_count() {
    use circuitscope::eval::discover::Budget;
    assert_eq!("10%".parse::<Budget>(), Ok(Budget::Share(0.1)));
    assert_eq!("50".parse::<Budget>(), Ok(Budget::Count(50)));
    assert_eq!(Budget::Share(0.1).of(2240), 224);
    assert_eq!(Budget::Share(0.1).of(2241), 225);
    assert_eq!(Budget::Count(50).of(12), 12);
    // A share that is k / n in floating point keeps k.
    for n in 1..300 {
        for k in 0..=n {
            assert_eq!(Budget::Share(k as f64 / n as f64).of(n), k, "{k}/{n}");
        }
    }
    for bad in ["0", "0%", "150%", "ten", "-5", ""] {
        assert!(bad.parse::<Budget>().is_err(), "{bad}");
    }
}

#[test]
fn roi_graphs_give_items_that_cover_the_model_once_and_every_method_ranks_them() {
    use circuitscope::eval::{faithfulness_nodes, Level};
    use circuitscope::graph::NodeKind;
    use circuitscope::model::{net, Preset};
    let model = Preset::Products
        .arch()
        .view(&net::build(Preset::Products, 4).params())
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let n = 60;
    let x32: Vec<f32> = (0..n * 4).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let y: Vec<f32> = x32
        .chunks(4)
        .flat_map(|r| [r[0] * r[1], r[2] * r[3]])
        .collect();
    let ds = Dataset::regression("p", 4, 2, x32.clone(), y).unwrap();
    let tasks = circuitscope::data::products::ProductsConfig::default().structure();
    let spec = GraphSpec {
        nodes: NodeKind::Roi,
        examples: n,
        roi_examples: n,
        ..GraphSpec::default()
    }
    .check()
    .unwrap();
    let g = build(&model, &ds, &tasks, &spec).unwrap();
    let x: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    let base = Baselines::new(&model, &x, Ablation::Mean, 0).unwrap();
    let edges = Items::of_graph(&model, &g, Level::Edge).unwrap();
    assert_eq!(edges.len(), g.graph.edge_count());
    assert!(
        edges.len() < 2240,
        "ROIs group neurons: {} edges",
        edges.len()
    );
    // Every model edge is in exactly one ROI edge.
    let mut count: Vec<Vec<usize>> = model
        .layers
        .iter()
        .map(|l| vec![0; l.d_in * l.d_out])
        .collect();
    for (t, (k, m)) in edges.members.iter().enumerate() {
        for &e in m {
            count[*k][e] += 1;
            assert_eq!(edges.of[*k][e], Some(t));
        }
    }
    assert!(count.iter().flatten().all(|&c| c == 1));
    for method in [Method::Ig, Method::Eap, Method::Acdc, Method::Mask] {
        for level in [Level::Edge, Level::Node] {
            let opts = DiscoverOptions {
                level,
                mask_steps: 40,
                ..DiscoverOptions::new(method)
            }
            .check()
            .unwrap();
            let c = discover(&model, &g, &tasks, &x, &base, &opts).unwrap();
            assert!(
                c.scores.iter().all(|v| v.is_finite()),
                "{method:?} {level:?}"
            );
            // Every item kept is every model edge kept: the model itself, defined or not.
            let f = match level {
                Level::Edge => {
                    faithfulness_of(&model, &g, &ds, &tasks, &base, &c.ranked_edges(), &[1.0], 0)
                }
                Level::Node => {
                    faithfulness_nodes(&model, &ds, &tasks, &base, &c.ranked_nodes(&g), &[1.0], 0)
                }
            }
            .unwrap();
            assert_eq!(f.points[0].loss, f.m_full, "{method:?} {level:?}");
        }
    }
}
