//! Evaluation: ablation reproduces the model when nothing is ablated, known answers for the
//! scores, block networks whose circuits are known, and an untrained model that must not look
//! structured.

mod common;
use common::*;

use circuitscope::data::Dataset;
use circuitscope::eval::ablation::{forward_ablated, Ablation, Baselines, EdgeMask};
use circuitscope::eval::{
    disentanglement, faithfulness, interventions, CHANCE_DRAWS, FRACTIONS, MIN_GAIN,
};
use circuitscope::graph::{build, GraphSpec};
use circuitscope::model::{net, Preset};
use circuitscope::numeric::score;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A trained run's default graph on 200 validation examples, and the validation inputs in f64
/// (what ablation baselines take).
fn val_graph(
    model: &circuitscope::model::view::RuntimeModel,
    data: &circuitscope::data::TaskData,
) -> (circuitscope::graph::CircuitGraph, Vec<f64>) {
    let g = build(
        model,
        &data.val,
        &data.tasks,
        &GraphSpec {
            examples: 200,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    (g, data.val.x.iter().map(|&v| v as f64).collect())
}

#[test]
fn ablating_no_edge_reproduces_the_model_and_ablating_all_leaves_the_biases() {
    let model = Preset::Products
        .arch()
        .view(&net::build(Preset::Products, 3).params())
        .unwrap();
    let x = inputs(4, 64, 1);
    let clean = model.forward(&x).unwrap();
    for kind in [Ablation::Zero, Ablation::Mean, Ablation::Resample] {
        let base = Baselines::new(&model, &x, kind, 0).unwrap();
        let out = forward_ablated(&model, &x, &EdgeMask::all(&model, true), &base).unwrap();
        for (a, b) in out.iter().zip(&clean) {
            assert!((a - b).abs() <= 1e-12, "{kind:?}: {a} vs {b}");
        }
    }
    // Every edge ablated to zero: each layer sees only its bias, so the output is the last bias.
    let base = Baselines::new(&model, &x, Ablation::Zero, 0).unwrap();
    let out = forward_ablated(&model, &x, &EdgeMask::all(&model, false), &base).unwrap();
    let last = &model.layers.last().unwrap().bias;
    for row in out.chunks(2) {
        assert_eq!(row, &[last[0] as f64, last[1] as f64]);
    }
    // Mean ablation of every edge: every example gets the same output.
    let base = Baselines::new(&model, &x, Ablation::Mean, 0).unwrap();
    let out = forward_ablated(&model, &x, &EdgeMask::all(&model, false), &base).unwrap();
    assert!(out.chunks(2).all(|r| r == &out[..2]));
}

#[test]
fn scores_match_known_answers() {
    // scikit-learn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714…, NMI (arithmetic) = 0.8.
    assert!((score::ari(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 0.571_428_571_428_571_5).abs() < 1e-12);
    assert!((score::nmi(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 0.8).abs() < 1e-12);
    assert_eq!(score::ari(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0);
    assert!((score::nmi(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
    // Manning et al. (2008) §16.3, figure 16.4: 17 items (x=0, o=1, ◇=2) in 3 clusters,
    // purity (5 + 4 + 3) / 17.
    let classes = [0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 2, 0, 0, 2, 2, 2];
    let clusters = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2];
    assert!((score::purity(&classes, &clusters) - 12.0 / 17.0).abs() < 1e-15);
    // A task split over two pure communities: purity 1, ARI well below 1.
    assert_eq!(score::purity(&[0, 0, 0, 0, 1, 1], &[0, 0, 1, 1, 2, 2]), 1.0);
    assert!(score::ari(&[0, 0, 0, 0, 1, 1], &[0, 0, 1, 1, 2, 2]) < 0.7);
    // scipy.stats.spearmanr([1,2,3,4,5], [5,6,7,8,7]) = 0.8207826816681233.
    assert!(
        (score::spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0])
            - 0.820_782_681_668_123_3)
            .abs()
            < 1e-12
    );
    assert!((score::area(&[(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)]) - 0.75).abs() < 1e-15);
}

#[test]
fn on_block_networks_task_subgraphs_are_selective_and_faithfulness_spans_zero_to_one() {
    let model = two_blocks(8);
    let x = inputs(4, 300, 4);
    // Targets: the model's own outputs plus noise, so the loss is not zero.
    let clean = model.forward(&x).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let y: Vec<f32> = clean
        .iter()
        .map(|v| (v + rng.gen_range(-0.05..0.05)) as f32)
        .collect();
    let data =
        Dataset::regression("blocks", 4, 2, x.iter().map(|&v| v as f32).collect(), y).unwrap();
    let g = build(
        &model,
        &data,
        &two_tasks(),
        &GraphSpec {
            examples: 300,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    let base = Baselines::new(&model, &x, Ablation::Mean, 0).unwrap();
    let f = faithfulness(
        &model,
        &g,
        &data,
        &two_tasks(),
        &base,
        &FRACTIONS,
        CHANCE_DRAWS,
    )
    .unwrap();
    assert_eq!(f.points.first().unwrap().faithfulness, 0.0);
    assert!((f.points.last().unwrap().faithfulness - 1.0).abs() < 1e-12);
    // Cross-block edges carry nothing: keeping the 50% strongest edges is the whole model.
    let half = f.points.iter().find(|p| p.kept == 0.5).unwrap();
    assert!((half.faithfulness - 1.0).abs() < 1e-9, "{half:?}");
    // Random edge sets of the same size: the whole curve at its ends, far less in between
    // (half the edges at random keep about half of each block's paths).
    assert!(f.defined && f.gain > 0.5, "{f:?}");
    for p in [f.points.first().unwrap(), f.points.last().unwrap()] {
        assert_eq!(p.chance, p.faithfulness);
    }
    assert!(half.chance < 0.8, "{half:?}");
    assert!(f.chance_cpr < f.cpr - 0.1, "{} vs {}", f.chance_cpr, f.cpr);
    let iv = interventions(&model, &g, &data, &two_tasks(), &base).unwrap();
    let rho = iv.rho;
    for i in iv
        .points
        .iter()
        .filter(|i| i.target.starts_with("task subgraph"))
    {
        let own = i.target.ends_with(&format!(" {}", i.task));
        if own {
            assert!(i.loss_ratio > 10.0, "{i:?}");
        } else {
            // Exactly: the rounding of a reordered forward pass is not an effect.
            assert_eq!(
                i.observed, 0.0,
                "ablating another task's subgraph leaves this task alone: {i:?}"
            );
        }
    }
    // Every pair with a prediction has an effect and every pair without has none: ρ 1 when
    // written (0.949 when rounding of the reordered sums still counted as effects).
    assert!(rho > 0.99, "Spearman ρ {rho}");
    let d = disentanglement(&g).unwrap();
    assert_eq!(d.ari, 1.0, "communities are the blocks: {d:?}");
    assert_eq!(d.at_task_count.ari, 1.0, "{d:?}");
}

#[test]
fn an_untrained_model_shows_no_task_structure() {
    let data = circuitscope::data::products::ProductsConfig {
        n_val: 300,
        n_train: 1,
        n_per_task: 1,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
    let (mut aris, mut at_count) = (Vec::new(), Vec::new());
    for seed in 0..3 {
        let model = Preset::Products
            .arch()
            .view(&net::build(Preset::Products, seed).params())
            .unwrap();
        let g = build(
            &model,
            &data.val,
            &data.tasks,
            &GraphSpec {
                examples: 300,
                seed,
                ..Default::default()
            }
            .check()
            .unwrap(),
        )
        .unwrap();
        let d = disentanglement(&g).unwrap();
        aris.push(d.ari);
        at_count.push(d.at_task_count.ari);
        // Faithfulness: the untrained model is no better than its ablated self, so the curve
        // is undefined rather than noise over a near-zero denominator.
        for kind in [Ablation::Zero, Ablation::Mean, Ablation::Resample] {
            let base = Baselines::new(&model, &x, kind, seed).unwrap();
            let f = faithfulness(&model, &g, &data.val, &data.tasks, &base, &FRACTIONS, 0).unwrap();
            println!("untrained seed {seed} {kind:?}: gain {:.4}", f.gain);
            assert!(
                !f.defined && f.gain < MIN_GAIN,
                "seed {seed} {kind:?}: {f:?}"
            );
            assert!(f.cpr.is_nan() && f.points.iter().all(|p| p.faithfulness.is_nan()));
        }
    }
    println!("untrained ARI per seed: {aris:?}, with as many communities as tasks {at_count:?}");
    // Small graphs make one seed's ARI noisy (0.02, 0.29, 0.04 when written; 0.01, 0.28, 0.01
    // merged to two communities): judge the mean.
    for a in [&aris, &at_count] {
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        assert!(
            mean < 0.2,
            "an untrained network must not look disentangled: mean ARI {mean} ({a:?})"
        );
    }
}

#[test]
fn roc_auc_matches_known_answers() {
    // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75.
    assert_eq!(
        score::roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
        0.75
    );
    // Ties count one half.
    assert_eq!(score::roc_auc(&[0.0, 0.0], &[false, true]), 0.5);
}

#[test]
fn circuit_recovery_is_perfect_on_a_block_network_with_exact_zeros() {
    use circuitscope::eval::circuit_auc;
    let model = two_blocks(8);
    let x = inputs(4, 200, 9);
    let data = Dataset::regression(
        "blocks",
        4,
        2,
        x.iter().map(|&v| v as f32).collect(),
        vec![0.0; 400],
    )
    .unwrap();
    let g = build(
        &model,
        &data,
        &two_tasks(),
        &GraphSpec {
            examples: 200,
            ..Default::default()
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    // Unit u of a layer of width d belongs to block u / (d / 2); outputs to their own task.
    let block = |layer: usize, u: usize| {
        if layer == 3 {
            u
        } else {
            u / (g.widths[layer] / 2)
        }
    };
    let auc = circuit_auc(&g, 0..3, &|src, dst, t| {
        src.units.iter().all(|&u| block(src.layer, u) == t)
            && dst.units.iter().all(|&u| block(dst.layer, u) == t)
    });
    assert_eq!(auc, vec![1.0, 1.0]);
}

#[test]
fn planted_training_holds_cross_task_weights_at_exactly_zero() {
    use circuitscope::model::train::TrainConfig;
    use circuitscope::runlog::train::train;
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        n_train: 2000,
        ..TrainConfig::defaults(Preset::ProductsPlanted)
    };
    let o = train(
        &dir.path().join("p"),
        &cfg.clone().check().unwrap(),
        &mut |_| {},
    )
    .unwrap();
    let params = circuitscope::runlog::load::read_checkpoint(&o.run.model(), None)
        .unwrap()
        .params;
    let mask = Preset::ProductsPlanted.planted_mask().unwrap();
    assert_eq!(mask.len(), params.len());
    assert!(
        mask.iter().zip(&params).all(|(&keep, &p)| keep || p == 0.0),
        "a cross-block weight moved"
    );
    assert!(mask
        .iter()
        .zip(&params)
        .filter(|(&keep, _)| keep)
        .any(|(_, &p)| p != 0.0));
    // 4→32→32→32→2 with two blocks: 2·(2·16) + 2·(16·16) · 2 + 2·16 = 64 + 1024 + 32 within-block weights.
    let weights_kept = mask.iter().filter(|&&k| k).count() - (32 + 32 + 32 + 2);
    assert_eq!(weights_kept, 64 + 1024 + 32);
}

#[test]
fn an_unseen_activation_pattern_is_more_atypical_than_any_seen_one() {
    use circuitscope::eval::atypical::{activity, atypicality, frequencies};
    use circuitscope::model::{Activation, Layer, RuntimeModel};
    // u1 = relu(x0), u2 = relu(x1); y = u1 + u2. Reference points fill three quadrants.
    let model = RuntimeModel {
        layers: vec![
            Layer {
                d_in: 2,
                d_out: 2,
                weight: vec![1.0, 0.0, 0.0, 1.0],
                bias: vec![0.0, 0.0],
                activation: Activation::Relu,
            },
            Layer {
                d_in: 2,
                d_out: 1,
                weight: vec![1.0, 1.0],
                bias: vec![0.0],
                activation: Activation::Identity,
            },
        ],
    };
    let reference: Vec<f64> = [
        [0.5, 0.5],
        [0.3, -0.4],
        [-0.6, 0.2],
        [0.7, 0.1],
        [0.2, -0.9],
        [-0.3, 0.8],
    ]
    .concat();
    let freq = frequencies(&activity(&model, &reference, 0).unwrap());
    let seen = atypicality(&activity(&model, &reference, 0).unwrap(), &freq);
    let unseen = atypicality(&activity(&model, &[-0.5, -0.5], 0).unwrap(), &freq)[0];
    assert!(seen.iter().all(|&s| s < unseen), "{seen:?} vs {unseen}");
}

#[test]
fn fgsm_steps_every_input_by_epsilon_against_the_label_and_raises_the_loss() {
    use circuitscope::eval::atypical::fgsm;
    let model = Preset::Digits
        .arch()
        .view(&net::build(Preset::Digits, 2).params())
        .unwrap();
    let x: Vec<f64> = inputs(64, 20, 3).iter().map(|v| 0.5 + 0.25 * v).collect();
    let labels: Vec<usize> = (0..20).map(|i| i % 10).collect();
    let ce = |x: &[f64]| -> f64 {
        let out = model.forward(x).unwrap();
        out.chunks(10)
            .zip(&labels)
            .map(|(r, &l)| r.iter().map(|v| v.exp()).sum::<f64>().ln() - r[l])
            .sum::<f64>()
    };
    let eps = 1e-3;
    let adv = fgsm(&model, &x, &labels, eps, 0.0, 1.0).unwrap();
    assert!(adv
        .iter()
        .zip(&x)
        .all(|(a, b)| (a - b).abs() <= eps + 1e-15));
    assert!(
        ce(&adv) > ce(&x),
        "a small signed-gradient step raises the loss"
    );
}

#[test]
fn the_faithfulness_curve_of_a_planted_model_rises_with_the_edges_kept() {
    use circuitscope::model::train::TrainConfig;
    use circuitscope::runlog::preset::preset_data as load_data;
    use circuitscope::runlog::train::train;
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 4,
        n_train: 4000,
        ..TrainConfig::defaults(Preset::ProductsPlanted)
    };
    let o = train(
        &dir.path().join("p"),
        &cfg.clone().check().unwrap(),
        &mut |_| {},
    )
    .unwrap();
    let model = circuitscope::runlog::load::read_checkpoint(&o.run.model(), None)
        .unwrap()
        .view()
        .unwrap();
    let data = load_data(&cfg).unwrap();
    let (g, x) = val_graph(&model, &data);
    // In expectation: averaged over three resampling baselines, the curve never falls by more
    // than noise and ends far above where it starts.
    let curves: Vec<Vec<f64>> = (0..3)
        .map(|seed| {
            let base = Baselines::new(&model, &x, Ablation::Resample, seed).unwrap();
            faithfulness(&model, &g, &data.val, &data.tasks, &base, &FRACTIONS, 0)
                .unwrap()
                .points
                .iter()
                .map(|p| p.faithfulness)
                .collect()
        })
        .collect();
    let mean: Vec<f64> = (0..FRACTIONS.len())
        .map(|k| curves.iter().map(|c| c[k]).sum::<f64>() / 3.0)
        .collect();
    println!("mean curve: {mean:?}");
    for w in mean.windows(2) {
        assert!(w[1] >= w[0] - 0.05, "the mean curve falls: {mean:?}");
    }
    assert!(score::spearman(&FRACTIONS, &mean) > 0.9, "{mean:?}");
}

#[test]
fn community_ablation_reports_clean_per_class_accuracy_and_consistent_drops() {
    use circuitscope::eval::community_class_accuracy;
    use circuitscope::model::train::TrainConfig;
    use circuitscope::runlog::preset::preset_data as load_data;
    let data = load_data(&TrainConfig::defaults(Preset::Digits)).unwrap();
    let model = Preset::Digits
        .arch()
        .view(&net::build(Preset::Digits, 5).params())
        .unwrap();
    let spec = GraphSpec {
        examples: 30,
        ..GraphSpec::default()
    }
    .check()
    .unwrap();
    let g = build(&model, &data.val, &data.tasks, &spec).unwrap();
    let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
    let base = Baselines::new(&model, &x, Ablation::Mean, 0).unwrap();
    let t = community_class_accuracy(&model, &g, &data.val, &base).unwrap();
    assert_eq!(t.height(), g.communities * 10);
    let col = |n: &str| -> Vec<f64> {
        t.column(n)
            .unwrap()
            .cast(&circuitscope::polars::prelude::DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    // The clean accuracy per class, computed here from the plain forward pass.
    let out = model.forward(&x).unwrap();
    let labels = data.val.labels.as_ref().unwrap();
    let mut right = [0.0; 10];
    let mut seen = [0.0; 10];
    for (r, &l) in labels.iter().enumerate() {
        let row = &out[r * 10..(r + 1) * 10];
        let guess = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        seen[l] += 1.0;
        right[l] += (guess == l) as u8 as f64;
    }
    let (acc, abl, drop, n) = (
        col("accuracy"),
        col("ablated_accuracy"),
        col("drop"),
        col("examples"),
    );
    for i in 0..t.height() {
        let k = i % 10;
        assert!((acc[i] - right[k] / seen[k]).abs() < 1e-12, "row {i}");
        assert_eq!(n[i], seen[k]);
        assert!((drop[i] - (acc[i] - abl[i])).abs() < 1e-12);
        assert!((0.0..=1.0).contains(&abl[i]));
    }
    assert_eq!(n[..10].iter().sum::<f64>() as usize, data.val.n);
    // A regression set has no classes to score.
    let reg = load_data(&TrainConfig::defaults(Preset::Products)).unwrap();
    let pm = Preset::Products
        .arch()
        .view(&net::build(Preset::Products, 1).params())
        .unwrap();
    let pg = build(&pm, &reg.val, &reg.tasks, &spec).unwrap();
    let px: Vec<f64> = reg.val.x.iter().map(|&v| v as f64).collect();
    let pb = Baselines::new(&pm, &px, Ablation::Mean, 0).unwrap();
    assert!(community_class_accuracy(&pm, &pg, &reg.val, &pb)
        .unwrap_err()
        .to_string()
        .contains("needs a classification data set"));
}

#[test]
fn an_l1_penalty_concentrates_the_network_on_fewer_edges() {
    use circuitscope::model::train::TrainConfig;
    use circuitscope::runlog::preset::preset_data as load_data;
    use circuitscope::runlog::train::train;
    let dir = tempfile::tempdir().unwrap();
    // The same seed, data and budget with and without the penalty.
    let at_10 = |l1: f64| {
        let cfg = TrainConfig {
            epochs: 6,
            n_train: 5000,
            l1,
            ..TrainConfig::defaults(Preset::Products)
        };
        let o = train(
            &dir.path().join(format!("l1-{l1}")),
            &cfg.clone().check().unwrap(),
            &mut |_| {},
        )
        .unwrap();
        let params = circuitscope::runlog::load::read_checkpoint(&o.run.model(), None)
            .unwrap()
            .params;
        let model = Preset::Products.arch().view(&params).unwrap();
        let weight_l1: f64 = model
            .layers
            .iter()
            .flat_map(|l| &l.weight)
            .map(|w| w.abs() as f64)
            .sum();
        let data = load_data(&cfg).unwrap();
        let (g, x) = val_graph(&model, &data);
        let base = Baselines::new(&model, &x, Ablation::Mean, 0).unwrap();
        let f = faithfulness(&model, &g, &data.val, &data.tasks, &base, &[0.1], 0).unwrap();
        (weight_l1, f.points[0].faithfulness, o.val)
    };
    let (w0, f0, _) = at_10(0.0);
    let (w1, f1, val) = at_10(3e-4);
    println!("Σ|w| {w0:.1} -> {w1:.1}; faithfulness at 10% of edges {f0:.3} -> {f1:.3}");
    assert!(w1 < 0.7 * w0, "Σ|w| {w0} without the penalty, {w1} with it");
    assert!(
        f1 > f0 + 0.2,
        "faithfulness at 10%: {f0} without, {f1} with"
    );
    for t in &val {
        assert!(
            t.r2.unwrap() > 0.9,
            "{}: R² {:?} with the penalty",
            t.task,
            t.r2
        );
    }
}

#[test]
fn ablated_runs_streamed_over_chunks_equal_runs_on_every_examples_baselines() {
    use circuitscope::eval::ablation::ABLATION_CHUNK;
    // Baselines that hold no example-sized array, read chunk by chunk, against baselines that
    // hold every example's: the same outputs, for every kind, on two and a half chunks.
    let model = Preset::Products
        .arch()
        .view(&net::build(Preset::Products, 3).params())
        .unwrap();
    let n = ABLATION_CHUNK * 5 / 2;
    let x = inputs(4, n, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut mask = EdgeMask::all(&model, true);
    mask.kept
        .iter_mut()
        .for_each(|k| k.iter_mut().for_each(|v| *v = rng.gen_bool(0.6)));
    for kind in [Ablation::Zero, Ablation::Mean, Ablation::Resample] {
        let full = Baselines::new(&model, &x, kind, 4).unwrap();
        let streamed = Baselines::streamed(&model, &x, kind, 4).unwrap();
        let a = forward_ablated(&model, &x, &mask, &full).unwrap();
        let b = forward_ablated(&model, &x, &mask, &streamed).unwrap();
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "{kind:?}: {worst}");
        // And the ablation does something: the outputs differ from the clean model's.
        let clean = forward_ablated(&model, &x, &EdgeMask::all(&model, true), &streamed).unwrap();
        assert!(
            clean.iter().zip(&b).any(|(p, q)| (p - q).abs() > 1e-3),
            "{kind:?}"
        );
    }
}
