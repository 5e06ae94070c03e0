//! Circuit discovery on networks whose minimal circuit is known by construction: one path
//! carries the task, every other edge is an exact zero or one of a pair of paths that cancel.
//! Every method must rank the path first; ACDC and the learned masks must keep nothing else.

use circuitscope::data::{Dataset, Task, TaskStructure};
use circuitscope::eval::ablation::{Ablation, Baselines, EdgeMask};
use circuitscope::eval::discover::acdc_circuit;
use circuitscope::eval::{
    completeness, discover, faithfulness_of, DiscoverOptions, Method, FRACTIONS,
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

fn top(scores: &[Vec<f64>], k: usize) -> Vec<(usize, usize)> {
    let mut all: Vec<((usize, usize), f64)> = scores
        .iter()
        .enumerate()
        .flat_map(|(l, s)| s.iter().enumerate().map(move |(e, &v)| ((l, e), v)))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut t: Vec<(usize, usize)> = all[..k].iter().map(|p| p.0).collect();
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
    let base = Baselines::new(&model, &x, Ablation::Zero, 0).unwrap();
    for method in [
        Method::Ig,
        Method::Eap,
        Method::EapIg,
        Method::Acdc,
        Method::Mask,
    ] {
        let opts = DiscoverOptions::new(method).check().unwrap();
        let c = discover(&model, &g, &x, &base, &opts).unwrap();
        assert_eq!(top(&c.scores, 2), CIRCUIT, "{method:?}: {:?}", c.scores);
        // Scored by the real ablated model: the two edges (2 of 12) are the whole behaviour,
        // and removing them leaves what removing everything leaves.
        let ranked = c.ranking(&g);
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
        let m = circuitscope::eval::mask::masks(&model, &x, &base, &opts, false).unwrap();
        let on: Vec<(usize, usize)> = m[0]
            .iter()
            .enumerate()
            .flat_map(|(l, c)| {
                c.iter()
                    .enumerate()
                    .filter(|p| *p.1 > 0.5)
                    .map(move |(e, _)| (l, e))
            })
            .collect();
        assert_eq!(on, CIRCUIT, "λ {lambda}: {m:?}");
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
        let c = discover(&model, &g, &x, &base, &opts).unwrap();
        let ranked = c.node_ranking();
        assert_eq!(ranked.len(), 3);
        assert_eq!(ranked[0], (1, 0), "{method:?}: {:?}", c.scores);
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
    let m = circuitscope::eval::mask::masks(&model, &x, &base, &opts, true).unwrap();
    let kept: Vec<usize> = (0..3).filter(|&u| m[0][1][u] > 0.5).collect();
    assert_eq!(kept, [0], "{m:?}");
    // The inputs' edges are never masked at the node level.
    assert!(m[0][0].iter().all(|&v| v == 1.0));
}
