//! Data sets: known answers, determinism, split structure, readers' error messages.

use circuitscope::data::poly1d::{self, FamilyConfig, Poly};
use circuitscope::data::products::ProductsConfig;
use circuitscope::data::{digits, idx};
use std::path::Path;

fn small(shared: bool, tasks: usize) -> ProductsConfig {
    ProductsConfig {
        tasks,
        shared,
        n_train: 500,
        n_val: 300,
        n_per_task: 200,
        ..Default::default()
    }
}

#[test]
fn products_targets_are_the_products_of_their_inputs() {
    for tasks in 1..=4 {
        let d = small(false, tasks).generate().unwrap();
        assert_eq!(d.train.d_in, 2 * tasks);
        for ds in std::iter::once(&d.train).chain([&d.val]).chain(&d.per_task) {
            for i in 0..ds.n {
                let x = ds.input(i);
                for t in 0..tasks {
                    assert_eq!(ds.target(i)[t], x[2 * t] * x[2 * t + 1]);
                }
                assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
            }
        }
    }
}

#[test]
fn products_shared_tasks_share_an_input() {
    let d = small(true, 2).generate().unwrap();
    assert_eq!(d.train.d_in, 3);
    assert_eq!(d.tasks.tasks[0].inputs, vec![0, 1]);
    assert_eq!(d.tasks.tasks[1].inputs, vec![1, 2]);
    assert_eq!(d.tasks.tasks_of_input(1), vec![0, 1]);
    for i in 0..d.val.n {
        let x = d.val.input(i);
        assert_eq!(d.val.target(i), &[x[0] * x[1], x[1] * x[2]]);
    }
}

#[test]
fn per_task_sets_vary_only_their_tasks_inputs() {
    let cfg = small(false, 3);
    let d = cfg.generate().unwrap();
    for (t, ds) in d.per_task.iter().enumerate() {
        let own = &d.tasks.tasks[t].inputs;
        for col in 0..ds.d_in {
            let vals: Vec<f32> = (0..ds.n).map(|i| ds.input(i)[col]).collect();
            if own.contains(&col) {
                let distinct = vals
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<std::collections::HashSet<_>>()
                    .len();
                assert!(
                    distinct > ds.n / 2,
                    "task {t}: own input {col} should vary, has {distinct} distinct values"
                );
            } else {
                assert!(
                    vals.iter().all(|&v| v == cfg.hold),
                    "task {t}: input {col} should be held at {}",
                    cfg.hold
                );
            }
        }
    }
}

#[test]
fn products_are_deterministic_from_the_seed() {
    let a = small(false, 2).generate().unwrap();
    let b = small(false, 2).generate().unwrap();
    assert_eq!(a.train, b.train);
    assert_eq!(a.per_task, b.per_task);
    let c = ProductsConfig {
        seed: 1,
        ..small(false, 2)
    }
    .generate()
    .unwrap();
    assert_ne!(a.train.x, c.train.x);
    // Splits never share draws.
    assert_ne!(a.train.x[..100], a.val.x[..100]);
}

#[test]
fn products_rejects_unsupported_task_counts() {
    let err = ProductsConfig {
        tasks: 5,
        ..Default::default()
    }
    .generate()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "products: 5 tasks asked for; 1 to 4 are supported"
    );
}

#[test]
fn poly_from_roots_has_those_roots_and_analytic_derivative() {
    let p = Poly::from_roots(&[-0.5, 0.25, 0.75]);
    for r in [-0.5, 0.25, 0.75] {
        assert!(p.eval(r).abs() < 1e-12);
    }
    let dp = p.derivative();
    for x in [-0.9, -0.3, 0.1, 0.6] {
        let h = 1e-6;
        let fd = (p.eval(x + h) - p.eval(x - h)) / (2.0 * h);
        assert!((dp.eval(x) - fd).abs() < 1e-8, "derivative at {x}");
    }
}

#[test]
fn poly_family_members_span_exactly_minus_one_to_one() {
    for p in poly1d::family(&FamilyConfig::default()) {
        let ys: Vec<f64> = poly1d::grid().iter().map(|&x| p.eval(x)).collect();
        let lo = ys.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (lo + 1.0).abs() < 1e-9 && (hi - 1.0).abs() < 1e-9,
            "range [{lo}, {hi}]"
        );
        assert!((3..=4).contains(&p.degree()));
    }
}

#[test]
fn poly_family_variety_is_at_least_twice_that_of_naive_coefficients() {
    // Variety: the smallest pairwise RMS distance between members on the grid. One naive
    // family can be lucky, so compare the means over 20 seeds of 10-member families.
    let seeds = 0..20u64;
    let ours: Vec<f64> = seeds
        .clone()
        .map(|seed| {
            poly1d::variety(&poly1d::family(&FamilyConfig {
                members: 10,
                seed,
                ..Default::default()
            }))
        })
        .collect();
    let naive: Vec<f64> = seeds
        .map(|seed| poly1d::variety(&poly1d::naive_family(10, seed)))
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "variety: ours mean {:.3} (min {:.3}), naive mean {:.3} (max {:.3})",
        mean(&ours),
        ours.iter().cloned().fold(f64::INFINITY, f64::min),
        mean(&naive),
        naive.iter().cloned().fold(0.0, f64::max)
    );
    assert!(
        mean(&ours) >= 2.0 * mean(&naive),
        "variety {:.3} is not 2x naive {:.3}",
        mean(&ours),
        mean(&naive)
    );
}

#[test]
fn digits_are_the_1797_uci_images_with_a_fixed_stratified_split() {
    let all = digits::load_all();
    assert_eq!((all.n, all.d_in, all.d_out), (1797, 64, 10));
    assert!(all.x.iter().all(|v| (0.0..=1.0).contains(v)));
    // Known answer: the first image is a 0 whose first row is 0,0,5,13,9,1,0,0 (out of 16).
    assert_eq!(all.labels.as_ref().unwrap()[0], 0);
    assert_eq!(
        &all.input(0)[..8],
        &[
            0.0,
            0.0,
            5.0 / 16.0,
            13.0 / 16.0,
            9.0 / 16.0,
            1.0 / 16.0,
            0.0,
            0.0
        ]
    );
    let (train, test) = digits::train_test(&all);
    assert_eq!(train.n + test.n, 1797);
    assert_eq!(test.n, 359); // 20% of each class, rounded
    let (train2, test2) = digits::train_test(&all);
    assert_eq!((train, test.clone()), (train2, test2));
    let labels = test.labels.unwrap();
    for c in 0..10 {
        let k = labels.iter().filter(|&&l| l == c).count();
        assert!((35..=37).contains(&k), "class {c} has {k} test images");
    }
}

#[test]
fn digits_csv_errors_name_the_file_line_and_problem() {
    let p = Path::new("my.csv");
    let row = |label: &str| format!("{}{label}", "0,".repeat(64));
    let err = digits::parse_csv(&format!("{}\n0,1,2\n", row("3")), p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "my.csv: line 2: 3 columns, expected 65 (64 pixels and a label)"
    );
    let bad = row("3").replacen('0', "x", 1);
    let err = digits::parse_csv(&bad, p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "my.csv: line 1, column 1: `x` is not a number"
    );
    let err = digits::parse_csv(&row("12"), p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "my.csv: line 1: label `12` is not a digit 0-9"
    );
    let err = digits::parse_csv(&row("NaN"), p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "my.csv: line 1, column 65: `NaN` is not finite"
    );
    assert_eq!(
        digits::parse_csv(&row("7"), p).unwrap().labels.unwrap(),
        vec![7]
    );
}

#[test]
fn idx_round_trips_and_loads_as_mnist() {
    let dir = tempfile::tempdir().unwrap();
    let images = idx::IdxArray {
        dims: vec![3, 2, 2],
        data: (0..12).map(|v| v * 20).collect(),
    };
    let labels = idx::IdxArray {
        dims: vec![3],
        data: vec![7, 0, 9],
    };
    assert_eq!(
        idx::parse(&idx::encode(&images), Path::new("x")).unwrap(),
        images
    );
    std::fs::write(dir.path().join("i"), idx::encode(&images)).unwrap();
    std::fs::write(dir.path().join("l"), idx::encode(&labels)).unwrap();
    let ds = idx::load_pair(&dir.path().join("i"), &dir.path().join("l"), "t").unwrap();
    assert_eq!((ds.n, ds.d_in), (3, 4));
    assert_eq!(ds.labels.unwrap(), vec![7, 0, 9]);
    assert_eq!(ds.x[5], 100.0 / 255.0);
}

#[test]
fn idx_errors_name_the_file_and_problem() {
    let p = Path::new("f.idx");
    let e = |b: &[u8]| idx::parse(b, p).unwrap_err().to_string();
    assert_eq!(
        e(&[1, 2]),
        "f.idx: not an IDX file: 2 bytes, shorter than the 4-byte header"
    );
    assert_eq!(
        e(&[0x50, 0x4b, 3, 4]),
        "f.idx: not an IDX file: magic starts 504b, expected 0000"
    );
    assert_eq!(
        e(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
        "f.idx: IDX data type 0x0d is not supported (only 0x08, unsigned bytes)"
    );
    assert_eq!(
        e(&[0, 0, 8, 2, 0, 0, 0, 2]),
        "f.idx: truncated IDX header: 2 dimensions need 12 bytes, file has 8"
    );
    assert_eq!(
        e(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2]),
        "f.idx: IDX dimensions [3] need 3 data bytes, file has 2"
    );
    let dir = tempfile::tempdir().unwrap();
    let images = idx::IdxArray {
        dims: vec![2, 1, 1],
        data: vec![0, 1],
    };
    std::fs::write(dir.path().join("i"), idx::encode(&images)).unwrap();
    std::fs::write(
        dir.path().join("l"),
        idx::encode(&idx::IdxArray {
            dims: vec![3],
            data: vec![1, 2, 3],
        }),
    )
    .unwrap();
    let err = idx::load_pair(&dir.path().join("i"), &dir.path().join("l"), "t")
        .unwrap_err()
        .to_string();
    let want = format!(
        "{}: 3 labels for 2 images in {}",
        dir.path().join("l").display(),
        dir.path().join("i").display()
    );
    assert_eq!(err, want);
}
