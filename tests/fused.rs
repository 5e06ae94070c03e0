//! The fused training engine against dfdx: the same loss, outputs and gradients on every preset
//! it serves, training that ends in the same place, and clear errors where it does not apply.

use circuitscope::model::net::{self, Batch, Engine};
use circuitscope::model::train::{fit_params, TrainConfig};
use circuitscope::model::{Loss, Preset};
use circuitscope::runlog::train;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Inputs in [-2, 2) and targets: regression values, or per row either a one-hot label or a
/// soft distribution (cross-entropy takes both).
fn batch(preset: Preset, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let w = preset.arch().widths;
    let (d_in, d_out) = (w[0], *w.last().unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = (0..n * d_in).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let y = match preset.loss() {
        Loss::Mse => (0..n * d_out).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        Loss::CrossEntropy => (0..n)
            .flat_map(|r| {
                let mut row: Vec<f32> = if r % 2 == 0 {
                    (0..d_out).map(|_| rng.gen_range(0.0..1.0)).collect()
                } else {
                    let hot = rng.gen_range(0..d_out);
                    (0..d_out).map(|j| (j == hot) as u8 as f32).collect()
                };
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
                row
            })
            .collect(),
    };
    (x, y)
}

fn worst_relative(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f32::max)
}

#[test]
fn fused_loss_outputs_and_gradients_equal_dfdx_on_every_preset() {
    // GELU (dfdx's tanh form) included: the fused engine computes it in f64.
    for preset in Preset::ALL {
        for seed in [3u64, 11] {
            // 37 rows: not a multiple of any block size.
            let (x, y) = batch(preset, 37, seed);
            let mut d = net::build_with(preset, seed, Engine::Dfdx).unwrap();
            let mut f = net::build_with(preset, seed, Engine::Fused).unwrap();
            assert_eq!(d.params(), f.params(), "{preset}: same initial weights");
            let (ld, od, gd) = d.loss_and_grad(
                Batch {
                    x: &x,
                    y: &y,
                    n: 37,
                },
                preset.loss(),
            );
            let (lf, of, gf) = f.loss_and_grad(
                Batch {
                    x: &x,
                    y: &y,
                    n: 37,
                },
                preset.loss(),
            );
            assert!(
                (ld - lf).abs() <= 1e-5 * ld.abs().max(1e-3),
                "{preset}: loss dfdx {ld}, fused {lf}"
            );
            let e = worst_relative(&of, &od);
            assert!(e <= 1e-5, "{preset}: outputs differ by {e:e}");
            let e = worst_relative(&f.forward(&x, 37), &d.forward(&x, 37));
            assert!(e <= 1e-5, "{preset}: forward differs by {e:e}");
            let e = worst_relative(&gf, &gd);
            assert!(e <= 1e-4, "{preset} seed {seed}: gradients differ by {e:e}");
            // And after parameters are set from outside (as the training loop does each step).
            let p: Vec<f32> = d.params().iter().map(|v| v * 0.5 + 0.01).collect();
            d.set_params(&p);
            f.set_params(&p);
            let (_, _, gd) = d.loss_and_grad(
                Batch {
                    x: &x,
                    y: &y,
                    n: 37,
                },
                preset.loss(),
            );
            let (_, _, gf) = f.loss_and_grad(
                Batch {
                    x: &x,
                    y: &y,
                    n: 37,
                },
                preset.loss(),
            );
            let e = worst_relative(&gf, &gd);
            assert!(
                e <= 1e-4,
                "{preset}: gradients after set_params differ by {e:e}"
            );
        }
    }
}

#[test]
fn fused_training_ends_where_dfdx_training_ends() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |engine| TrainConfig {
        epochs: 3,
        n_train: 3000,
        engine,
        ..TrainConfig::defaults(Preset::Products)
    };
    let d = train::train(
        &dir.path().join("d"),
        &cfg(Engine::Dfdx).clone().check().unwrap(),
        &mut |_| {},
    )
    .unwrap();
    let f = train::train(
        &dir.path().join("f"),
        &cfg(Engine::Fused).clone().check().unwrap(),
        &mut |_| {},
    )
    .unwrap();
    // The same computation up to float rounding: rounding differences grow over 141 steps, but
    // the validation losses stay within a few percent (a wrong gradient would not).
    for (a, b) in d.val.iter().zip(&f.val) {
        let rel = (a.loss - b.loss).abs() / a.loss;
        assert!(
            rel < 0.1,
            "{}: validation loss dfdx {:.4e}, fused {:.4e}",
            a.task,
            a.loss,
            b.loss
        );
        assert!(b.r2.unwrap() > 0.9, "{}: R² {:?}", b.task, b.r2);
    }
    // The engine is recorded with the run, and a run.json from before engines reads as dfdx.
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.run.run_json()).unwrap()).unwrap();
    assert_eq!(stored["config"]["engine"], "fused", "{stored}");
    let mut old = serde_json::to_value(cfg(Engine::Fused)).unwrap();
    old.as_object_mut().unwrap().remove("engine");
    let old: TrainConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old.engine, Engine::Dfdx);
}

#[test]
fn fused_fit_params_matches_dfdx_on_a_poly_model() {
    let spec = circuitscope::data::poly1d::family(&Default::default());
    let data = circuitscope::data::poly1d::dataset(&spec[2], "t", 1024, 5, 0).unwrap();
    let opts = (8, 64, 3e-3);
    let mse = |engine| {
        let p = fit_params(Preset::Poly, 5, &data, opts, engine).unwrap();
        let m = Preset::Poly.arch().view(&p).unwrap();
        let x: Vec<f64> = (0..200).map(|i| -1.0 + i as f64 / 100.0).collect();
        let y = m.forward(&x).unwrap();
        y.iter()
            .zip(&x)
            .map(|(a, &x)| (a - spec[2].eval(x)).powi(2))
            .sum::<f64>()
            / 200.0
    };
    let (d, f) = (mse(Engine::Dfdx), mse(Engine::Fused));
    assert!(
        (d - f).abs() <= 0.1 * d,
        "grid MSE dfdx {d:.3e}, fused {f:.3e}"
    );
}

#[test]
fn the_fused_engine_serves_every_spec_activation_and_its_gradients_match_finite_differences() {
    use circuitscope::model::fused::FusedNet;
    use circuitscope::model::net::Net;
    use circuitscope::model::Activation;
    let acts = [
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::GeluErf,
        Activation::Gelu,
        Activation::Silu,
        Activation::Softplus,
        Activation::Identity,
    ];
    let widths = [3, 7, 5, 2];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for act in acts {
        let n_params: usize = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        let params: Vec<f32> = (0..n_params).map(|_| rng.gen_range(-0.8..0.8)).collect();
        let mut net =
            FusedNet::with_activations(&widths, &[act, act, Activation::Identity], params.clone())
                .unwrap();
        let x: Vec<f32> = (0..4 * 3).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let y: Vec<f32> = (0..4 * 2).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b = Batch { x: &x, y: &y, n: 4 };
        let (_, _, grad) = net.loss_and_grad(b, Loss::Mse);
        // Central differences of the f32 loss, in f64 steps of 1e-2 (f32's rounding bounds
        // how small a step can be).
        for (i, g) in grad.iter().enumerate().step_by(7) {
            let loss_at = |d: f32| {
                let mut p = params.clone();
                p[i] += d;
                let mut m =
                    FusedNet::with_activations(&widths, &[act, act, Activation::Identity], p)
                        .unwrap();
                m.loss_and_grad(b, Loss::Mse).0 as f64
            };
            let fd = (loss_at(1e-2) - loss_at(-1e-2)) / 2e-2;
            assert!(
                (fd - *g as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                "{act:?} parameter {i}: gradient {g}, finite difference {fd}"
            );
        }
    }
}
