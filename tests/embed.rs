//! Network embedding: zoo training, resume, shards and merge, bad zoos, piece masking, exact
//! input gradients, the probe and the embedder end to end on small budgets.

use circuitscope::embed::classify::{cluster_ari, linear_probe, Labelled};
use circuitscope::embed::cloze::{self, mask_pieces, Batch, ClozeConfig, POINTS};
use circuitscope::embed::zoo::{self, gradients, Shard, ZooConfig};
use circuitscope::embed::{baselines, EmbedConfig};
use circuitscope::runlog::embed::embed_run;
use circuitscope::runlog::zoo::{merge, train_zoo, Zoo, ZooOutcome};
use circuitscope::runlog::{follow, Event, EventLog};
use rand::Rng;
use rand::SeedableRng;
use std::path::Path;

/// A zoo small enough for a test: 3 functions x 4 seeds, short training.
fn small() -> ZooConfig {
    ZooConfig {
        functions: 3,
        seeds: 4,
        epochs: 6,
        n_train: 1024,
        ..ZooConfig::default()
    }
}

fn train(root: &Path, cfg: ZooConfig, shard: Shard) -> ZooOutcome {
    let z = Zoo::create_or_open(root, cfg.check().unwrap()).unwrap();
    let mut log = EventLog::open(&root.join("events.jsonl")).unwrap();
    train_zoo(&z, shard, &mut log, &|_| {}).unwrap()
}

/// Every stored model's parameters by file name (safetensors bytes are not canonical: the
/// metadata map's order varies, so weights are compared, not files).
fn models(root: &Path) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<(String, Vec<f32>)> = std::fs::read_dir(root.join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                circuitscope::runlog::load::read_checkpoint(&p, None)
                    .unwrap()
                    .params,
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn shard_specs_parse_and_out_of_range_ones_are_refused() {
    assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
    let all: Vec<usize> = (0..10)
        .filter(|&i| Shard::parse("2/3").unwrap().holds(i))
        .collect();
    assert_eq!(all, vec![2, 5, 8]);
    let e = Shard::parse("4/4").unwrap_err().to_string();
    assert!(e.contains("out of range") && e.contains("0..3"), "{e}");
    assert!(Shard::parse("0/0").is_err());
    let e = Shard::parse("two/4").unwrap_err().to_string();
    assert!(e.contains("expected `i/n`"), "{e}");
}

#[test]
fn a_zoo_trains_every_model_records_its_quality_and_resumes_without_redoing_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("z");
    let out = train(&root, small(), Shard::ALL);
    assert_eq!((out.trained, out.skipped), (12, 0));
    let z = Zoo::open(&root).unwrap();
    let recs = z.complete_records().unwrap();
    assert_eq!(recs.len(), 12);
    for r in &recs {
        // The record's figures are the model's: recompute R² from the stored weights.
        let m = z.load(r.function, r.seed).unwrap();
        let p = &z.spec.family[r.function];
        let x: Vec<f64> = (0..200).map(|i| -1.0 + i as f64 / 100.0).collect();
        let y = m.forward(&x).unwrap();
        let truth: Vec<f64> = x.iter().map(|&v| p.eval(v)).collect();
        let r2 = circuitscope::numeric::linalg::r2_score(&truth, &y, x.len(), 1);
        assert!((r2 - r.r2).abs() < 0.05, "{r:?} vs grid R² {r2}");
        assert_eq!(r.flagged, r.r2 < zoo::R2_BAR);
        assert!(r.pieces >= 2 && r.grad_r2 <= 1.0);
    }
    let manifest = z.run().read_table("manifest").unwrap();
    assert_eq!(manifest.height(), 12);
    assert_eq!(
        manifest.get_column_names_str(),
        ["function", "seed", "r2", "grad_r2", "pieces", "flagged", "train_s"]
    );
    // Running again trains nothing; a deleted model and a corrupt one are retrained, and the
    // retrained models are the same bytes (training is deterministic).
    let before = models(&root);
    assert_eq!(train(&root, small(), Shard::ALL).trained, 0);
    std::fs::remove_file(z.model_path(1, 2)).unwrap();
    std::fs::write(z.model_path(2, 3), b"not safetensors").unwrap();
    let again = train(&root, small(), Shard::ALL);
    assert_eq!((again.trained, again.skipped), (2, 10));
    assert_eq!(models(&root), before);
    let notes: Vec<String> = follow::read_all(&root.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Note { text } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        notes
            .iter()
            .any(|t| t.contains("f002-s0003") && t.contains("unusable")),
        "{notes:?}"
    );
    let progress = follow::read_all(&root.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.event, Event::ZooProgress { .. }))
        .count();
    assert_eq!(progress, 14);
}

#[test]
fn shards_merged_equal_the_whole_zoo_and_foreign_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    train(&whole, small(), Shard::ALL);
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    assert_eq!(train(&a, small(), Shard::parse("0/2").unwrap()).trained, 6);
    assert_eq!(train(&b, small(), Shard::parse("1/2").unwrap()).trained, 6);
    // A shard alone is not a zoo to analyse: the missing models are named.
    let e = Zoo::open(&a)
        .unwrap()
        .complete_records()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("6 of 12 models are missing") && e.contains("f000-s0001"),
        "{e}"
    );
    let merged = dir.path().join("merged");
    merge(&merged, &[a.clone(), b.clone()]).unwrap();
    assert_eq!(models(&merged), models(&whole));
    assert_eq!(
        Zoo::open(&merged)
            .unwrap()
            .run()
            .read_table("manifest")
            .unwrap()
            .height(),
        12
    );
    // A shard of another family cannot be merged, nor trained into an existing zoo.
    let other = dir.path().join("other");
    train(
        &other,
        ZooConfig {
            family_seed: 9,
            ..small()
        },
        Shard::parse("1/2").unwrap(),
    );
    let e = merge(&dir.path().join("m2"), &[a.clone(), other.clone()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shards of different zoos") && e.contains("Maxmin family seed 9"),
        "{e}"
    );
    let e = Zoo::create_or_open(
        &a,
        ZooConfig {
            seeds: 5,
            ..small()
        }
        .check()
        .unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("holds a different zoo"), "{e}");
}

#[test]
fn bad_zoos_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = Zoo::open(&dir.path().join("nope")).unwrap_err().to_string();
    assert!(e.contains("no such zoo directory"), "{e}");
    let e = Zoo::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a zoo"), "{e}");
    std::fs::write(dir.path().join("zoo.json"), "{").unwrap();
    let e = Zoo::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a zoo description"), "{e}");
    let root = dir.path().join("z");
    train(&root, small(), Shard::ALL);
    let z = Zoo::open(&root).unwrap();
    std::fs::write(z.model_path(0, 1), b"garbage").unwrap();
    let e = z.load(0, 1).unwrap_err().to_string();
    assert!(
        e.contains("f000-s0001.safetensors") && e.contains("corrupt"),
        "{e}"
    );
    std::fs::remove_file(z.model_path(0, 2)).unwrap();
    let e = embed_run(&root, EmbedConfig::grid_for(&z.spec.config), &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 of 12 models are missing") && e.contains("f000-s0002"),
        "{e}"
    );
    assert!(ZooConfig {
        functions: 1,
        ..small()
    }
    .check()
    .is_err());
}

#[test]
fn masking_hides_whole_pieces_and_at_least_the_ratio() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3000);
    for trial in 0..200 {
        let n = 64;
        let pieces = 1 + trial % 12;
        let mut piece: Vec<usize> = (0..n).map(|_| rng.gen_range(0..pieces)).collect();
        piece.sort();
        let ratio = [0.25, 0.5, 0.75][trial % 3];
        let hidden = mask_pieces(&piece, ratio, &mut rng);
        for p in 0..pieces {
            let states: Vec<bool> = (0..n)
                .filter(|&i| piece[i] == p)
                .map(|i| hidden[i])
                .collect();
            assert!(states.iter().all(|&h| h == states[0]), "piece {p} split");
        }
        let count = hidden.iter().filter(|&&h| h).count();
        assert!(
            count as f64 >= ratio * n as f64,
            "{count} hidden of {n} at {ratio}"
        );
        // Minimal: dropping any one hidden piece would go under the ratio, or it was needed.
        assert!(count > 0);
    }
}

#[test]
fn model_gradients_are_exact_and_pieces_are_linear() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("z");
    train(&root, small(), Shard::ALL);
    let z = Zoo::open(&root).unwrap();
    let m = z.load(1, 0).unwrap();
    let x: Vec<f64> = (0..500)
        .map(|i| -0.999 + 1.998 * i as f64 / 499.0)
        .collect();
    let (g, piece) = gradients(&m, &x).unwrap();
    let h = 1e-6;
    let mut checked = 0;
    for (i, &xi) in x.iter().enumerate() {
        let (lo, hi) = (
            m.forward(&[xi - h]).unwrap()[0],
            m.forward(&[xi + h]).unwrap()[0],
        );
        let (_, pp) = gradients(&m, &[xi - h, xi + h]).unwrap();
        if pp[0] == pp[1] {
            assert!((g[i] - (hi - lo) / (2.0 * h)).abs() < 1e-6, "at {xi}");
            checked += 1;
        }
    }
    assert!(checked > 400);
    // Points in one piece share one gradient.
    for i in 0..x.len() {
        for j in 0..x.len() {
            if piece[i] == piece[j] {
                assert!((g[i] - g[j]).abs() < 1e-9);
            }
        }
    }
}

#[test]
fn a_batch_hides_exactly_the_masked_gradients() {
    let m = circuitscope::model::Preset::Poly
        .arch()
        .view(&vec![
            0.1;
            circuitscope::model::Preset::Poly.arch().n_params()
        ])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("z");
    train(&root, small(), Shard::ALL);
    let trained = Zoo::open(&root).unwrap().load(0, 0).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1001);
    let x = cloze::sample_points(&mut rng);
    assert!(x.windows(2).all(|w| w[0] <= w[1]) && x.len() == POINTS);
    let b = Batch::build(&[&trained, &m], &x, 0.5, 2.0, &mut rng).unwrap();
    assert_eq!(b.rows, 2);
    assert_eq!(b.encoder.len(), 2 * 3 * POINTS);
    for r in 0..2 {
        let enc = &b.encoder[r * 3 * POINTS..(r + 1) * 3 * POINTS];
        for i in 0..POINTS {
            assert_eq!(enc[i], x[i] as f32);
            let hidden = b.mask[r * POINTS + i] == 1.0;
            assert_eq!(enc[2 * POINTS + i], b.mask[r * POINTS + i]);
            let shown = enc[POINTS + i];
            assert_eq!(
                shown,
                if hidden {
                    0.0
                } else {
                    b.target[r * POINTS + i]
                }
            );
        }
    }
    let (g, _) = gradients(&trained, &x).unwrap();
    assert!((b.target[5] as f64 - g[5] / 2.0).abs() < 1e-6);
}

#[test]
fn the_probe_separates_separable_classes_and_not_noise() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5000);
    let blob = |c: usize, rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f64> {
        (0..4)
            .map(|d| if d == c { 5.0 } else { 0.0 } + rng.gen_range(-1.0..1.0))
            .collect()
    };
    let mk = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| Labelled {
        x: (0..n).map(|i| blob(i % 4, rng)).collect(),
        y: (0..n).map(|i| i % 4).collect(),
    };
    let (tr, te) = (mk(80, &mut rng), mk(40, &mut rng));
    assert_eq!(linear_probe(&tr, &te).unwrap().accuracy, 1.0);
    assert!((cluster_ari(&te).unwrap() - 1.0).abs() < 1e-12);
    // Labels unrelated to the features: near chance (4 classes).
    let noise = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| Labelled {
        x: (0..n)
            .map(|_| (0..4).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect(),
        y: (0..n).map(|i| i % 4).collect(),
    };
    let (tr, te) = (noise(200, &mut rng), noise(200, &mut rng));
    let acc = linear_probe(&tr, &te).unwrap().accuracy;
    assert!(acc < 0.4, "accuracy {acc} on noise");
    assert!(cluster_ari(&te).unwrap().abs() < 0.1);
    let bad = Labelled {
        x: vec![vec![f64::NAN]],
        y: vec![0],
    };
    assert!(linear_probe(&bad, &bad).is_err());
}

#[test]
fn baseline_features_have_their_documented_shapes() {
    let arch = circuitscope::model::Preset::Poly.arch();
    let params: Vec<f32> = (0..arch.n_params())
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let m = arch.view(&params).unwrap();
    assert_eq!(baselines::flat_weights(&m).len(), arch.n_params());
    let s = baselines::weight_stats(&m);
    assert_eq!(s.len(), 3 * 2 * 7);
    // min <= q25 <= median <= q75 <= max for every tensor.
    for t in s.chunks(7) {
        assert!(
            t[2] <= t[3] && t[3] <= t[4] && t[4] <= t[5] && t[5] <= t[6],
            "{t:?}"
        );
    }
    let out = baselines::sampled_outputs(&m, 5).unwrap();
    assert_eq!(out, m.forward(&[-1.0, -0.5, 0.0, 0.5, 1.0]).unwrap());
}

#[test]
fn embed_writes_the_grid_and_baselines_and_its_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("z");
    let cfg = ZooConfig {
        seeds: 6,
        ..small()
    };
    train(&root, cfg, Shard::ALL);
    let z = Zoo::open(&root).unwrap();
    let mut e = EmbedConfig::grid_for(&z.spec.config);
    e.functions = vec![3];
    e.bottlenecks = vec![2, 4];
    e.mask_ratios = vec![0.5];
    e.held_out = 2;
    e.keep_flagged = true;
    e.cloze = ClozeConfig {
        steps: 150,
        batch: 8,
        ..ClozeConfig::default()
    };
    let r = embed_run(&root, e.clone(), &|_| {}).unwrap();
    assert_eq!((r.train_models, r.val_models), (12, 6));
    assert_eq!(r.grid.len(), 2);
    for g in &r.grid {
        assert!((0.0..=1.0).contains(&g.accuracy));
        assert!(g.val_loss.is_finite() && g.train_loss.is_finite());
    }
    let methods: Vec<&str> = r.baselines.iter().map(|b| b.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "flat_weights",
            "weight_stats",
            "sampled_outputs",
            "supervised_gradients"
        ]
    );
    let run = z.run();
    assert_eq!(run.read_table("embed_grid").unwrap().height(), 2);
    assert_eq!(run.read_table("embed_baselines").unwrap().height(), 4);
    // The scatter table: every model once per grid point, the held-out ones marked.
    let emb = run.read_table("embeddings").unwrap();
    assert_eq!(emb.height(), 2 * 18);
    let held = emb.column("held_out").unwrap().bool().unwrap();
    assert_eq!(held.sum(), Some(2 * 6));
    for g in &r.grid {
        assert_eq!(g.projected.len(), 18);
        // Centred principal components: each coordinate sums to about zero.
        let s: f64 = g.projected.iter().map(|p| p.pc1).sum();
        assert!(s.abs() < 1e-6 * g.projected.len() as f64, "pc1 sum {s}");
    }
    let events = follow::read_all(&run.events()).unwrap();
    let mut losses: Vec<(usize, f64)> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::EmbedderLoss { val, label, .. } if label.as_deref() == Some("f3 k4 m0.50") => {
                Some((e.step.unwrap() as usize, *val))
            }
            _ => None,
        })
        .collect();
    losses.sort_by_key(|p| p.0);
    // Every 7th step (150 / 20) and the last.
    assert_eq!(losses.len(), 22);
    assert_eq!(losses.last().unwrap().0, 150);
    assert!(
        losses.last().unwrap().1 < losses[0].1,
        "held-out loss did not fall: {losses:?}"
    );
    let probes = events
        .iter()
        .filter(|e| matches!(e.event, Event::ProbeAccuracy(_)))
        .count();
    assert_eq!(probes, 2 + 4);
    // Asking for more functions than the zoo has, or an uncompiled bottleneck, is refused.
    let e2 = EmbedConfig {
        functions: vec![4],
        ..e.clone()
    };
    assert!(embed_run(&root, e2, &|_| {})
        .unwrap_err()
        .to_string()
        .contains("the zoo has 3 functions"));
    let e3 = EmbedConfig {
        bottlenecks: vec![3],
        ..e.clone()
    };
    assert!(embed_run(&root, e3, &|_| {})
        .unwrap_err()
        .to_string()
        .contains("compiled widths"));
}
