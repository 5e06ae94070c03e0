//! Probes: Jacobians against finite differences and dfdx, PCA and PLS against scikit-learn,
//! the census on a network whose regions are known by construction.

mod common;
use common::*;

use circuitscope::model::view::widen;
use circuitscope::model::{net, Activation, Layer, Preset, RuntimeModel};
use circuitscope::numeric::linalg::{Pca, Pls};
use circuitscope::probe::jacobian::{adjacent_jacobians, output_jacobians, Reuse};

fn random_model(preset: Preset, seed: u64) -> RuntimeModel {
    let n = net::build(preset, seed);
    preset.arch().view(&n.params()).unwrap()
}

/// Runs layers `k..` on `h` (one example) in f64; returns the output and the downstream
/// activation pattern.
fn run_from(model: &RuntimeModel, k: usize, h: &[f64]) -> (Vec<f64>, Vec<bool>) {
    let mut h = h.to_vec();
    let mut pattern = Vec::new();
    for l in &model.layers[k..] {
        let z: Vec<f64> = (0..l.d_out)
            .map(|j| (0..l.d_in).map(|i| l.w(j, i) as f64 * h[i]).sum::<f64>() + l.bias[j] as f64)
            .collect();
        pattern.extend(z.iter().map(|&v| v > 0.0));
        h = z.iter().map(|&v| l.activation.apply_f64(v)).collect();
    }
    (h, pattern)
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(1e-12)
}

#[test]
fn output_to_layer_jacobians_equal_central_finite_differences_relu_and_gelu() {
    for preset in [Preset::Products, Preset::ProductsGelu, Preset::Digits] {
        let model = random_model(preset, 1);
        let n = 20;
        let x = inputs(model.d_in(), n, 2);
        let trace = model.trace(&x).unwrap();
        let jac = output_jacobians(&model, &trace, Reuse::Patterns);
        let h = 1e-6;
        let (mut checked, mut skipped) = (0, 0);
        for k in 0..model.layers.len() {
            let dk = model.layers[k].d_in;
            for i in 0..n {
                let hk: Vec<f64> = if k == 0 {
                    x[i * dk..(i + 1) * dk].to_vec()
                } else {
                    trace.post[k - 1][i * dk..(i + 1) * dk].to_vec()
                };
                let (_, pattern) = run_from(&model, k, &hk);
                let mut fd = vec![0.0; model.d_out() * dk];
                let mut stable = true;
                for j in 0..dk {
                    let (mut up, mut down) = (hk.clone(), hk.clone());
                    up[j] += h;
                    down[j] -= h;
                    let ((yu, pu), (yd, pd)) =
                        (run_from(&model, k, &up), run_from(&model, k, &down));
                    stable &= preset.arch().hidden != Activation::Relu
                        || (pu == pattern && pd == pattern);
                    for o in 0..model.d_out() {
                        fd[o * dk + j] = (yu[o] - yd[o]) / (2.0 * h);
                    }
                }
                if !stable {
                    skipped += 1;
                    continue;
                }
                let err = rel_err(jac.per_layer[k].of(i), &fd);
                assert!(
                    err <= 1e-6,
                    "{preset} layer {k} example {i}: relative error {err:e}"
                );
                checked += 1;
            }
        }
        assert!(
            checked > 5 * skipped.max(1),
            "{preset}: checked {checked}, skipped {skipped}"
        );
    }
}

#[test]
fn output_jacobians_equal_dfdx_autodiff() {
    use circuitscope::model::net::{ProductsArch, ProductsGeluArch};
    use dfdx::prelude::*;
    fn check<A>(preset: Preset)
    where
        A: BuildOnDevice<Cpu, f64>,
        A::Built: Module<
                Tensor<(usize, Const<4>), f64, Cpu, OwnedTape<f64, Cpu>>,
                Output = Tensor<(usize, Const<2>), f64, Cpu, OwnedTape<f64, Cpu>>,
            > + TensorCollection<f64, Cpu>,
    {
        let model = random_model(preset, 3);
        let dev: Cpu = Default::default();
        let mut m = dev.build_module::<A, f64>();
        // Copy the view's weights into the f64 dfdx model, tensor by tensor in visiting order.
        struct Put<'a>(std::slice::Iter<'a, Vec<f64>>);
        impl TensorVisitor<f64, Cpu> for Put<'_> {
            type Viewer = ViewTensorMut;
            type Err = <Cpu as HasErr>::Err;
            type E2 = f64;
            type D2 = Cpu;
            fn visit<S: Shape>(
                &mut self,
                _: TensorOptions<S, f64, Cpu>,
                t: &mut Tensor<S, f64, Cpu>,
            ) -> Result<Option<Tensor<S, f64, Cpu>>, Self::Err> {
                t.copy_from(self.0.next().unwrap());
                Ok(None)
            }
        }
        let tensors: Vec<Vec<f64>> = model
            .layers
            .iter()
            .flat_map(|l| [widen(&l.weight), widen(&l.bias)])
            .collect();
        A::Built::iter_tensors(&mut RecursiveWalker {
            m: &mut m,
            f: &mut Put(tensors.iter()),
        })
        .unwrap();
        let n = 16;
        let x = inputs(4, n, 4);
        let jac = output_jacobians(&model, &model.trace(&x).unwrap(), Reuse::Off);
        for o in 0..2 {
            let xt: Tensor<(usize, Const<4>), f64, Cpu> = dev.tensor((x.clone(), (n, Const::<4>)));
            let mask: Tensor<(usize, Const<2>), f64, Cpu> = dev.tensor((
                (0..n * 2)
                    .map(|i| (i % 2 == o) as u8 as f64)
                    .collect::<Vec<_>>(),
                (n, Const::<2>),
            ));
            let y = m.forward(xt.leaky_trace());
            let grads = (y * mask).sum().backward();
            let g = grads.get(&xt).as_vec();
            for i in 0..n {
                let ours = &jac.per_layer[0].of(i)[o * 4..(o + 1) * 4];
                let err = rel_err(ours, &g[i * 4..(i + 1) * 4]);
                assert!(
                    err <= 1e-6,
                    "{preset} output {o} example {i}: relative error {err:e} against dfdx"
                );
            }
        }
    }
    check::<ProductsArch>(Preset::Products);
    check::<ProductsGeluArch>(Preset::ProductsGelu);
}

#[test]
fn pattern_reuse_gives_the_same_jacobians_as_computing_each_example() {
    let model = random_model(Preset::Poly, 5);
    let x = inputs(1, 500, 6);
    let trace = model.trace(&x).unwrap();
    let (a, b) = (
        output_jacobians(&model, &trace, Reuse::Patterns),
        output_jacobians(&model, &trace, Reuse::Off),
    );
    for k in 0..model.layers.len() {
        assert_eq!(
            a.per_layer[k].expand(),
            b.per_layer[k].expand(),
            "layer {k}"
        );
        assert_eq!(b.per_layer[k].count(), 500);
        assert!(
            a.per_layer[k].count() < 100,
            "a 1-D input crosses few regions: {}",
            a.per_layer[k].count()
        );
        let adj_a = adjacent_jacobians(&model, &trace, k, Reuse::Patterns);
        assert_eq!(
            adj_a.expand(),
            adjacent_jacobians(&model, &trace, k, Reuse::Off).expand()
        );
    }
}

#[test]
fn adjacent_jacobian_is_the_masked_weight_matrix() {
    // One ReLU layer with a known weight: rows of inactive units vanish.
    let model = RuntimeModel {
        layers: vec![
            Layer {
                d_in: 2,
                d_out: 2,
                weight: vec![1.0, 2.0, -3.0, 4.0],
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
    let trace = model.trace(&[1.0, 1.0, 1.0, -1.0]).unwrap();
    let adj = adjacent_jacobians(&model, &trace, 0, Reuse::Patterns);
    // x = (1, 1): z = (3, 1), both active. x = (1, -1): z = (-1, -7), both inactive.
    assert_eq!(adj.of(0), &[1.0, 2.0, -3.0, 4.0]);
    assert_eq!(adj.of(1), &[0.0, 0.0, 0.0, 0.0]);
    let out = output_jacobians(&model, &trace, Reuse::Patterns);
    assert_eq!(out.per_layer[0].of(0), &[-2.0, 6.0]);
    assert_eq!(out.per_layer[1].of(1), &[1.0, 1.0]);
}

#[derive(serde::Deserialize)]
struct Reference {
    n: usize,
    dx: usize,
    dy: usize,
    #[serde(rename = "X")]
    x: Vec<f64>,
    #[serde(rename = "Y")]
    y: Vec<f64>,
    pca: RefPca,
    pls: RefPls,
}
#[derive(serde::Deserialize)]
struct RefPca {
    components: Vec<f64>,
    explained_variance: Vec<f64>,
    explained_variance_ratio: Vec<f64>,
    mean: Vec<f64>,
}
#[derive(serde::Deserialize)]
struct RefPls {
    n_components: usize,
    x_weights: Vec<f64>,
    x_loadings: Vec<f64>,
    y_loadings: Vec<f64>,
    x_scores: Vec<f64>,
    coef: Vec<f64>,
    r2: f64,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/reference/pca_pls.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Columns `c` of two row-major `rows x cols` matrices agree to `tol` up to a sign per column.
fn assert_columns_match(
    ours: &[f64],
    theirs: &[f64],
    rows: usize,
    cols: usize,
    tol: f64,
    what: &str,
) {
    for c in 0..cols {
        let a: Vec<f64> = (0..rows).map(|r| ours[r * cols + c]).collect();
        let b: Vec<f64> = (0..rows).map(|r| theirs[r * cols + c]).collect();
        let same = a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= tol);
        let flipped = a.iter().zip(&b).all(|(x, y)| (x + y).abs() <= tol);
        assert!(same || flipped, "{what} column {c}: {a:?} vs {b:?}");
    }
}

#[test]
fn pca_equals_scikit_learn() {
    let r = reference();
    let p = Pca::fit(&r.x, r.n, r.dx).unwrap();
    for (a, b) in p.mean.iter().zip(&r.pca.mean) {
        assert!((a - b).abs() < 1e-10);
    }
    for i in 0..r.dx {
        assert!(
            (p.variances[i] - r.pca.explained_variance[i]).abs() < 1e-4,
            "variance {i}"
        );
        assert!(
            (p.ratios[i] - r.pca.explained_variance_ratio[i]).abs() < 1e-4,
            "ratio {i}"
        );
    }
    // Components are rows: compare the transposes column by column.
    let t = |m: &[f64]| {
        (0..r.dx * r.dx)
            .map(|i| m[(i % r.dx) * r.dx + i / r.dx])
            .collect::<Vec<_>>()
    };
    assert_columns_match(
        &t(&p.components),
        &t(&r.pca.components),
        r.dx,
        r.dx,
        1e-4,
        "PCA component",
    );
}

#[test]
fn pls_equals_scikit_learn() {
    let r = reference();
    let k = r.pls.n_components;
    let p = Pls::fit(&r.x, &r.y, r.n, r.dx, r.dy, k).unwrap();
    assert_columns_match(&p.x_weights, &r.pls.x_weights, r.dx, k, 1e-4, "x_weights");
    assert_columns_match(
        &p.x_loadings,
        &r.pls.x_loadings,
        r.dx,
        k,
        1e-4,
        "x_loadings",
    );
    assert_columns_match(
        &p.y_loadings,
        &r.pls.y_loadings,
        r.dy,
        k,
        1e-4,
        "y_loadings",
    );
    assert_columns_match(&p.x_scores, &r.pls.x_scores, r.n, k, 1e-4, "x_scores");
    for (a, b) in p.coef.iter().zip(&r.pls.coef) {
        assert!((a - b).abs() < 1e-4, "coef {a} vs {b}");
    }
    let pred = p.predict(&r.x, r.n);
    let r2 = circuitscope::numeric::linalg::r2_score(&r.y, &pred, r.n, r.dy);
    assert!((r2 - r.pls.r2).abs() < 1e-4, "R² {r2} vs {}", r.pls.r2);
}

/// 2 inputs → two ReLUs `u1 = relu(x0)`, `u2 = relu(x1)` → two linear outputs given by `out`.
fn quadrant_net(out: [f32; 4]) -> RuntimeModel {
    RuntimeModel {
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
                d_out: 2,
                weight: out.to_vec(),
                bias: vec![0.0, 0.0],
                activation: Activation::Identity,
            },
        ],
    }
}

/// 16 points, 4 in each quadrant, plus one on the line x0 = 0 (where float noise decides).
fn quadrant_points() -> Vec<f64> {
    let g = [-0.75, -0.25, 0.25, 0.75];
    let mut x: Vec<f64> = g
        .iter()
        .flat_map(|&a| g.iter().flat_map(move |&b| [a, b]))
        .collect();
    x.extend([0.0, 0.5]);
    x
}

#[test]
fn census_counts_regions_known_by_construction() {
    use circuitscope::probe::census::{census, CensusConfig};
    // y0 = u1 + u2, y1 = u1 - u2: each output sees all four quadrants.
    let model = quadrant_net([1.0, 1.0, 1.0, -1.0]);
    let trace = model.trace(&quadrant_points()).unwrap();
    let c = census(
        &model,
        &trace,
        &output_jacobians(&model, &trace, Reuse::Patterns),
        &CensusConfig::default(),
    );
    let input = &c[0];
    assert_eq!((input.examples, input.ambiguous), (16, 1));
    assert_eq!(input.layer_patterns, None);
    assert_eq!((input.adjacent_patterns, input.downstream_patterns), (4, 4));
    assert_eq!(input.gradients_per_output, vec![4, 4]);
    assert_eq!(input.gradients_combined, 4);
    assert!(input.appear_together);
    assert_eq!((input.top_region_share, input.regions_for_90pct), (0.25, 4));
    assert_eq!(
        input.region_shares,
        vec![0.25; 4],
        "each quadrant holds 4 of the 16 points"
    );
    let hidden = &c[1];
    assert_eq!(hidden.layer_patterns, Some(4));
    assert_eq!(
        (hidden.adjacent_patterns, hidden.gradients_combined),
        (1, 1)
    );
    assert_eq!(hidden.gradients_per_output, vec![1, 1]);

    // y0 = u1, y1 = u2: each output sees only its own half-plane split, the combinations are
    // the four quadrants, so the gradients do *not* appear together.
    let model = quadrant_net([1.0, 0.0, 0.0, 1.0]);
    let trace = model.trace(&quadrant_points()).unwrap();
    let c = census(
        &model,
        &trace,
        &output_jacobians(&model, &trace, Reuse::Patterns),
        &CensusConfig::default(),
    );
    assert_eq!(c[0].gradients_per_output, vec![2, 2]);
    assert_eq!(c[0].gradients_combined, 4);
    assert!(!c[0].appear_together);
}

#[test]
fn disjoint_tasks_have_closer_to_orthogonal_gradient_subspaces_than_shared_ones() {
    use circuitscope::model::train::TrainConfig;
    use circuitscope::probe::subspace::{task_pairs, task_spaces};
    use circuitscope::runlog::train;
    let dir = tempfile::tempdir().unwrap();
    let mut figures = Vec::new();
    for preset in [Preset::Products, Preset::ProductsShared] {
        let cfg = TrainConfig {
            epochs: 6,
            n_train: 5000,
            ..TrainConfig::defaults(preset)
        };
        let o = train::train(
            &dir.path().join(preset.name()),
            &cfg.clone().check().unwrap(),
            &mut |_| {},
        )
        .unwrap();
        let model = circuitscope::runlog::load::read_checkpoint(&o.run.model(), None)
            .unwrap()
            .view()
            .unwrap();
        let data = circuitscope::runlog::preset::preset_data(&cfg).unwrap();
        let trace = model.trace_f32(&data.val.x).unwrap();
        let jac = output_jacobians(&model, &trace, Reuse::Patterns);
        let spaces = task_spaces(&jac, &data.tasks, &Default::default()).unwrap();
        let pairs = task_pairs(&jac, &data.tasks, &spaces).unwrap();
        let mean = |f: fn(&circuitscope::probe::subspace::TaskPair) -> f64| {
            pairs.iter().map(f).sum::<f64>() / pairs.len() as f64
        };
        let (exact, pca) = (mean(|p| p.interference_exact), mean(|p| p.interference_pca));
        println!("{preset}: interference exact {exact:.4}, PCA {pca:.4} (mean over layers)");
        for p in &pairs {
            println!(
                "  layer {} (k {}/{}): exact {:.4}  pca {:.4}  share {:.4}/{:.4}  cos {:?}",
                p.layer,
                p.k_a,
                p.k_b,
                p.interference_exact,
                p.interference_pca,
                p.share_a_in_b,
                p.share_b_in_a,
                p.cosines
            );
        }
        figures.push((exact, pca));
    }
    let ((de, dp), (se, sp)) = (figures[0], figures[1]);
    assert!(
        de < se,
        "exact interference: disjoint {de:.4} should be below shared {se:.4}"
    );
    assert!(
        dp < sp,
        "PCA interference: disjoint {dp:.4} should be below shared {sp:.4}"
    );
}

#[test]
fn probe_report_has_every_table_and_rejects_bad_data() {
    use circuitscope::data::products::ProductsConfig;
    use circuitscope::probe::{probe, ProbeConfig};
    let model = random_model(Preset::Products, 8);
    let data = ProductsConfig {
        n_val: 300,
        n_per_task: 200,
        n_train: 10,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let splits = vec![
        ("mixed".to_string(), &data.val),
        ("task0".to_string(), &data.per_task[0]),
    ];
    let mut r = probe(
        &model,
        &splits,
        &data.tasks,
        &ProbeConfig::default().check().unwrap(),
    )
    .unwrap();
    // Census: 4 layers (input and 3 hidden) per split; task angles: one pair per layer per split.
    assert_eq!(r.census.height(), 8);
    assert_eq!(r.task_angles.height(), 8);
    assert_eq!(r.layer_stats.height(), 6);
    assert_eq!(
        r.svd.height(),
        4 + 32 + 32 + 2,
        "one row per singular value of each layer"
    );
    assert_eq!(r.pls.height(), 2 * 4, "two hidden pairs, 4 components each");
    assert_eq!(r.scaffold.height(), 3 * 4);
    // Summaries of the first split: census of 4 layers, PCA of 3 hidden layers, the task
    // pair's angles at 4 layers; each PCA summary holds that layer's sorted ratios.
    assert_eq!(r.summaries.len(), 4 + 3 + 4);
    for e in &r.summaries {
        {
            let (probe, figures) = (&e.probe, &e.figures);
            if probe.starts_with("pca:") {
                let ratios: Vec<f64> = figures.values().copied().collect();
                assert_eq!(ratios.len(), 8, "{probe}");
                assert!(
                    ratios.windows(2).all(|w| w[0] >= w[1]),
                    "{probe}: {ratios:?}"
                );
            }
        }
    }
    for (name, df) in r.tables() {
        assert!(df.height() > 0, "{name} is empty");
    }
    // Every PCA's ratios (the first 8 kept per PCA) are sorted and sum to at most 1.
    let col = |name: &str| -> Vec<String> {
        (0..r.pca.height())
            .map(|i| r.pca.column(name).unwrap().get(i).unwrap().to_string())
            .collect()
    };
    let (split, layer, source) = (col("split"), col("layer"), col("source"));
    let ratios: Vec<f64> = r
        .pca
        .column("ratio")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let mut k = 0;
    while k < ratios.len() {
        let mut e = k;
        while e + 1 < ratios.len()
            && (&split[e + 1], &layer[e + 1], &source[e + 1]) == (&split[k], &layer[k], &source[k])
        {
            e += 1;
        }
        let group = &ratios[k..=e];
        assert!(
            group.windows(2).all(|w| w[0] >= w[1] - 1e-12),
            "unsorted ratios {group:?}"
        );
        assert!(
            group.iter().all(|&v| v >= 0.0) && group.iter().sum::<f64>() <= 1.0 + 1e-9,
            "{group:?}"
        );
        k = e + 1;
    }

    let err_of = |ds: &circuitscope::data::Dataset| {
        probe(
            &model,
            &[("mixed".to_string(), ds)],
            &data.tasks,
            &ProbeConfig::default().check().unwrap(),
        )
        .unwrap_err()
        .to_string()
    };
    let narrow = ProductsConfig {
        shared: true,
        n_val: 50,
        n_per_task: 5,
        n_train: 5,
        ..Default::default()
    }
    .generate()
    .unwrap();
    assert_eq!(
        err_of(&narrow.val),
        "split `mixed` (products-shared/mixed): 3 inputs per row, the model takes 4"
    );
    let mut empty = data.val.clone();
    empty.n = 0;
    empty.x.clear();
    empty.y.clear();
    assert_eq!(err_of(&empty), "split `mixed` (products/mixed) is empty");
    let mut nan = data.val.clone();
    nan.x[9] = f32::NAN;
    assert_eq!(
        err_of(&nan),
        "split `mixed` (products/mixed): input row 2 column 1 is NaN (inputs must be finite)"
    );
    nan.x[9] = f32::INFINITY;
    assert_eq!(
        err_of(&nan),
        "split `mixed` (products/mixed): input row 2 column 1 is inf (inputs must be finite)"
    );
}

#[test]
fn gelu_census_groups_gradients_by_cosine() {
    use circuitscope::probe::census::{census, CensusConfig};
    let model = random_model(Preset::ProductsGelu, 2);
    let x = inputs(4, 300, 9);
    let trace = model.trace(&x).unwrap();
    let jac = output_jacobians(&model, &trace, Reuse::Patterns);
    let strict = census(
        &model,
        &trace,
        &jac,
        &CensusConfig {
            cosine: 1.0 - 1e-15,
            ..Default::default()
        },
    );
    let loose = census(
        &model,
        &trace,
        &jac,
        &CensusConfig {
            cosine: 0.9,
            ..Default::default()
        },
    );
    // Smooth: every input gradient differs, nothing is ambiguous, and a looser cosine merges.
    assert_eq!(strict[0].gradients_combined, 300);
    assert_eq!(strict[0].ambiguous, 0);
    assert!(loose[0].gradients_combined < 300);
    // The last hidden layer's gradient is the output weight matrix: one, whatever the input.
    assert_eq!(strict[3].gradients_combined, 1);
}

/// A random `5 → 7 → 6 → 3` network whose hidden layers use `act` (the last `act2`).
fn random_net(act: Activation, act2: Activation, seed: u64) -> RuntimeModel {
    let w = |d_in: usize, d_out: usize, s: u64| -> Vec<f32> {
        inputs(d_in, d_out, seed * 10 + s)
            .iter()
            .map(|&v| (v * 1.5) as f32)
            .collect()
    };
    let layer = |d_in, d_out, s, activation| Layer {
        d_in,
        d_out,
        weight: w(d_in, d_out, s),
        bias: inputs(1, d_out, seed * 10 + s + 5)
            .iter()
            .map(|&v| (v * 0.3) as f32)
            .collect(),
        activation,
    };
    RuntimeModel {
        layers: vec![
            layer(5, 7, 1, act),
            layer(7, 6, 2, act2),
            layer(6, 3, 3, Activation::Identity),
        ],
    }
}

#[test]
fn jacobians_equal_central_finite_differences_for_every_spec_activation() {
    let acts: Vec<Activation> = Activation::SPEC_NAMES
        .iter()
        .map(|n| Activation::from_spec(n, (*n == "leaky_relu").then_some(0.1)).unwrap())
        .collect();
    assert_eq!(acts.len(), 9);
    // Each activation alone, and each after tanh (a network that mixes kinks and curves).
    let nets = acts.iter().flat_map(|&a| {
        [(a, a), (Activation::Tanh, a)]
            .into_iter()
            .enumerate()
            .map(move |(s, (a1, a2))| (format!("{a1:?}/{a2:?}"), random_net(a1, a2, s as u64 + 3)))
    });
    for (name, model) in nets {
        let n = 25;
        let x = inputs(5, n, 11);
        let trace = model.trace(&x).unwrap();
        let jac = output_jacobians(&model, &trace, Reuse::Patterns);
        let h = 1e-6;
        let (mut checked, mut skipped) = (0, 0);
        for k in 0..model.layers.len() {
            let dk = model.layers[k].d_in;
            for i in 0..n {
                let hk: Vec<f64> = if k == 0 {
                    x[i * dk..(i + 1) * dk].to_vec()
                } else {
                    trace.post[k - 1][i * dk..(i + 1) * dk].to_vec()
                };
                let (_, pattern) = run_from(&model, k, &hk);
                let mut fd = vec![0.0; model.d_out() * dk];
                let mut stable = true;
                for j in 0..dk {
                    let (mut up, mut down) = (hk.clone(), hk.clone());
                    up[j] += h;
                    down[j] -= h;
                    let ((yu, pu), (yd, pd)) =
                        (run_from(&model, k, &up), run_from(&model, k, &down));
                    // A kink between the two points makes the difference meaningless.
                    stable &= pu == pattern && pd == pattern;
                    for o in 0..model.d_out() {
                        fd[o * dk + j] = (yu[o] - yd[o]) / (2.0 * h);
                    }
                }
                if !stable {
                    skipped += 1;
                    continue;
                }
                let err = rel_err(jac.per_layer[k].of(i), &fd);
                assert!(
                    err <= 1e-6,
                    "{name} layer {k} example {i}: relative error {err:e}"
                );
                checked += 1;
            }
        }
        assert!(
            checked >= 60 && skipped * 10 <= checked,
            "{name}: checked {checked}, skipped {skipped}"
        );
    }
}

#[test]
fn a_census_streamed_over_chunks_counts_what_the_whole_batch_census_counts() {
    use circuitscope::probe::census::{census, census_streamed, CensusConfig};
    // A ReLU network (exact patterns, two passes for the quantisation scale), a GELU one
    // (leader clustering across chunks) and a classifier, in chunks of 7 examples that never
    // line up with the 500.
    for (preset, cosine) in [
        (Preset::Products, 0.999),
        (Preset::ProductsGelu, 0.99),
        (Preset::Digits, 0.999),
    ] {
        let model = random_model(preset, 3);
        let x = inputs(model.layers[0].d_in, 500, 4);
        let cfg = CensusConfig {
            cosine,
            ..Default::default()
        };
        let trace = model.trace(&x).unwrap();
        let whole = census(
            &model,
            &trace,
            &output_jacobians(&model, &trace, Reuse::Patterns),
            &cfg,
        );
        let streamed = census_streamed(&model, &x, &cfg, 7).unwrap();
        assert_eq!(whole, streamed, "{preset:?}");
        // Not a census of nothing: the counts are real.
        assert!(
            whole[0].gradients_combined > 10,
            "{preset:?}: {}",
            whole[0].gradients_combined
        );
    }
}

#[test]
fn pca_and_pls_from_a_streamed_factor_equal_scikit_learn() {
    use circuitscope::numeric::linalg::{r2_score, Factor};
    let r = reference();
    // Uneven pieces, so that every merge of a block's mean into the running one is exercised.
    let pieces = |d: usize, rows: &[f64], f: &mut Factor| {
        let mut start = 0;
        for (i, size) in [1usize, 2, 7, 3].iter().cycle().enumerate() {
            if start >= rows.len() / d || i > 10_000 {
                break;
            }
            let end = (start + size).min(rows.len() / d);
            f.push(&rows[start * d..end * d]);
            start = end;
        }
    };
    let mut f = Factor::centred(r.dx);
    pieces(r.dx, &r.x, &mut f);
    assert_eq!(f.n(), r.n);
    let p = Pca::from_factor(&f).unwrap();
    let whole = Pca::fit(&r.x, r.n, r.dx).unwrap();
    for i in 0..r.dx {
        assert!(
            (p.ratios[i] - r.pca.explained_variance_ratio[i]).abs() < 1e-4,
            "ratio {i}"
        );
        assert!(
            (p.variances[i] - whole.variances[i]).abs() <= 1e-10 * whole.variances[0],
            "variance {i}: {} vs {}",
            p.variances[i],
            whole.variances[i]
        );
    }
    for (a, b) in p.mean.iter().zip(&whole.mean) {
        assert!((a - b).abs() < 1e-12);
    }
    for (a, b) in p.components.iter().zip(&whole.components) {
        assert!((a - b).abs() < 1e-8, "component {a} vs {b}");
    }
    let mut u = Factor::uncentred(r.dx);
    pieces(r.dx, &r.x, &mut u);
    let (pu, wu) = (
        Pca::from_factor(&u).unwrap(),
        Pca::fit_uncentred(&r.x, r.n, r.dx).unwrap(),
    );
    for (a, b) in pu.ratios.iter().zip(&wu.ratios) {
        assert!((a - b).abs() < 1e-10, "uncentred ratio {a} vs {b}");
    }
    assert!(pu.mean.iter().all(|&m| m == 0.0));

    // PLS from the factor of [x y]: sklearn's weights, loadings, coefficients and R².
    let k = r.pls.n_components;
    let xy: Vec<f64> = (0..r.n)
        .flat_map(|i| {
            r.x[i * r.dx..(i + 1) * r.dx]
                .iter()
                .chain(&r.y[i * r.dy..(i + 1) * r.dy])
                .copied()
        })
        .collect();
    let mut fxy = Factor::centred(r.dx + r.dy);
    pieces(r.dx + r.dy, &xy, &mut fxy);
    let pls = Pls::fit_factor(&fxy, r.dx, r.dy, k).unwrap();
    assert_columns_match(&pls.x_weights, &r.pls.x_weights, r.dx, k, 1e-4, "x_weights");
    assert_columns_match(
        &pls.x_loadings,
        &r.pls.x_loadings,
        r.dx,
        k,
        1e-4,
        "x_loadings",
    );
    assert_columns_match(
        &pls.y_loadings,
        &r.pls.y_loadings,
        r.dy,
        k,
        1e-4,
        "y_loadings",
    );
    for (a, b) in pls.coef.iter().zip(&r.pls.coef) {
        assert!((a - b).abs() < 1e-4, "coef {a} vs {b}");
    }
    assert!(pls.x_scores.is_empty());
    let whole = Pls::fit(&r.x, &r.y, r.n, r.dx, r.dy, k).unwrap();
    let r2_whole = r2_score(&r.y, &whole.predict(&r.x, r.n), r.n, r.dy);
    assert!((pls.r2_factor(&fxy) - r2_whole).abs() < 1e-10);
    assert!((pls.r2_factor(&fxy) - r.pls.r2).abs() < 1e-4);
    for (a, b) in pls.coef.iter().zip(&whole.coef) {
        assert!(
            (a - b).abs() < 1e-9,
            "coef {a} vs the whole-batch fit's {b}"
        );
    }
}

#[test]
fn the_streamed_probe_equals_whole_batch_probes_across_chunk_boundaries() {
    use circuitscope::data::products::ProductsConfig;
    use circuitscope::numeric::linalg::r2_score;
    use circuitscope::probe::{probe, ProbeConfig};
    use polars::prelude::DataFrame;
    let model = random_model(Preset::Products, 3);
    // 9,000 examples: two chunks of 4,096 and a partial one.
    let data = ProductsConfig {
        n_val: 9000,
        n_per_task: 10,
        n_train: 10,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let cfg = ProbeConfig::default().check().unwrap();
    let r = probe(&model, &[("mixed".into(), &data.val)], &data.tasks, &cfg).unwrap();
    let floats = |df: &DataFrame, c: &str| -> Vec<f64> {
        df.column(c)
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let close = |a: f64, b: f64, what: &str| {
        assert!((a - b).abs() < 1e-8, "{what}: streamed {a} vs whole {b}");
    };
    let x = widen(&data.val.x);
    let n = data.val.n;
    let trace = model.trace(&x).unwrap();
    let q = cfg.pcs;
    let hidden = model.layers.len() - 1;
    let pcas: Vec<Pca> = (0..hidden)
        .map(|k| Pca::fit(&trace.post[k], n, model.layers[k].d_out).unwrap())
        .collect();
    // Layer statistics and the PCA spectra (the "activations" rows, 8 per layer).
    let means = floats(&r.layer_stats, "mean_activation");
    let ratios = floats(&r.pca, "ratio");
    for (k, p) in pcas.iter().enumerate() {
        let d = p.d;
        let mean = trace.post[k].iter().sum::<f64>() / (n * d) as f64;
        close(means[k], mean, "mean activation");
        for i in 0..cfg.pca_rows {
            close(ratios[k * cfg.pca_rows + i], p.ratios[i], "PCA ratio");
        }
    }
    // PC correlations, PLS R² and the scaffold's gradient PCA of every pair.
    let pearson = |a: &[f64], b: &[f64]| {
        let m = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / m, b.iter().sum::<f64>() / m);
        let sab: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let saa: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let sbb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        sab / (saa * sbb).sqrt()
    };
    let corr = floats(&r.pc_correlations, "correlation");
    let r2s = floats(&r.pls, "r2");
    let mut at = 0;
    for k in 1..hidden {
        let sa = pcas[k - 1].transform(&trace.post[k - 1], n, q);
        let sb = pcas[k].transform(&trace.post[k], n, q);
        for a in 0..q {
            let ca: Vec<f64> = (0..n).map(|i| sa[i * q + a]).collect();
            for b in 0..q {
                let cb: Vec<f64> = (0..n).map(|i| sb[i * q + b]).collect();
                close(corr[at], pearson(&ca, &cb), "PC correlation");
                at += 1;
            }
        }
        let d = pcas[k - 1].d;
        let pls = Pls::fit(&trace.post[k - 1], &sb, n, d, q, q).unwrap();
        let r2 = r2_score(&sb, &pls.predict(&trace.post[k - 1], n), n, q);
        close(r2s[(k - 1) * q], r2, "PLS R²");
    }
    let top = floats(&r.scaffold, "top_gradient_pc_ratio");
    let mut at = 0;
    for (k, next) in pcas.iter().enumerate() {
        let l = &model.layers[k];
        let pre = &trace.pre[k];
        for c in 0..q {
            let p = next.component(c);
            let grads: Vec<f64> = (0..n)
                .flat_map(|i| {
                    (0..l.d_in).map(move |m| {
                        (0..l.d_out)
                            .map(|j| {
                                p[j] * l.activation.derivative_f64(pre[i * l.d_out + j])
                                    * l.w(j, m) as f64
                            })
                            .sum::<f64>()
                    })
                })
                .collect();
            let pca = Pca::fit(&grads, n, l.d_in).unwrap();
            close(top[at], pca.ratios[0], "scaffold gradient PC ratio");
            at += 1;
        }
    }
    // Task interference, exact (per-example sums) and through PCA, against the whole batch.
    use circuitscope::probe::subspace::{task_pairs, task_spaces};
    let jac = output_jacobians(&model, &trace, Reuse::Off);
    let spaces = task_spaces(&jac, &data.tasks, &cfg.subspace).unwrap();
    let pairs = task_pairs(&jac, &data.tasks, &spaces).unwrap();
    let (exact, pca) = (
        floats(&r.task_angles, "interference_exact"),
        floats(&r.task_angles, "interference_pca"),
    );
    for (i, p) in pairs.iter().enumerate() {
        close(exact[i], p.interference_exact, "exact interference");
        close(pca[i], p.interference_pca, "PCA interference");
    }
}
