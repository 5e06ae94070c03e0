//! Models: the runtime view equals dfdx, checkpoints round-trip bit for bit, a resumed run
//! ends on the same weights as an uninterrupted one.

use circuitscope::model::adam::AdamState;
use circuitscope::model::checkpoint::{Checkpoint, Layout, Progress};
use circuitscope::model::net::Engine;
use circuitscope::model::train::TrainConfig;
use circuitscope::model::view::widen;
use circuitscope::model::{net, Activation, Arch, Preset};
use circuitscope::runlog::follow::read_all;
use circuitscope::runlog::load::{read_checkpoint, save_checkpoint};
use circuitscope::runlog::train;
use circuitscope::runlog::{Envelope, Event};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn random_inputs(d: usize, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.gen_range(-2.0..2.0)).collect()
}

fn assert_view_matches_dfdx(preset: Preset, params: Option<&[f32]>) {
    let mut n = net::build(preset, 7);
    if let Some(p) = params {
        n.set_params(p);
    }
    let arch = preset.arch();
    let view = arch.view(&n.params()).unwrap();
    assert_eq!(view.widths(), arch.widths);
    let x = random_inputs(arch.widths[0], 50, 3);
    let ours = view.forward(&widen(&x)).unwrap();
    let theirs = n.forward(&x, 50);
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(&a, &b)| (a - b as f64).abs() / (b as f64).abs().max(1.0))
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-6,
        "{preset}: view differs from dfdx by {worst:e}"
    );
}

#[test]
fn runtime_view_forward_equals_dfdx_for_every_preset_relu_and_gelu() {
    for preset in Preset::ALL {
        assert_view_matches_dfdx(preset, None);
    }
    assert_eq!(Preset::ProductsGelu.arch().hidden, Activation::Gelu);
}

#[test]
fn runtime_view_forward_equals_dfdx_on_trained_weights() {
    for preset in [Preset::Products, Preset::ProductsGelu] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TrainConfig {
            epochs: 2,
            n_train: 2000,
            ..TrainConfig::defaults(preset)
        };
        let o = train::train(
            &dir.path().join("r"),
            &cfg.clone().check().unwrap(),
            &mut |_| {},
        )
        .unwrap();
        let c = read_checkpoint(&o.run.model(), Some(&Layout::Preset(preset))).unwrap();
        assert_view_matches_dfdx(preset, Some(&c.params));
    }
}

#[test]
fn view_and_flat_parameters_round_trip() {
    let arch = Preset::Digits.arch();
    let p: Vec<f32> = (0..arch.n_params()).map(|i| i as f32).collect();
    let v = arch.view(&p).unwrap();
    // Layer 0's weight row j holds inputs 0..64 of output j, in dfdx's (out, in) layout.
    assert_eq!(v.layers[0].w(1, 0), 64.0);
    assert_eq!(v.layers[0].bias[0], (64 * 64) as f32);
    assert_eq!(Arch::flatten(&v), p);
    let err = arch.view(&p[1..]).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{} parameters given", p.len() - 1)),
        "{err}"
    );
}

#[test]
fn fast_gelu_derivative_matches_finite_differences_and_accurate_gelu_in_dfdx_does_not() {
    use dfdx::prelude::*;
    let dev: Cpu = Default::default();
    for x0 in [-2.0f64, -0.7, 0.3, 1.0, 2.5] {
        let h = 1e-6;
        let fd =
            (Activation::Gelu.apply_f64(x0 + h) - Activation::Gelu.apply_f64(x0 - h)) / (2.0 * h);
        assert!((Activation::Gelu.derivative_f64(x0) - fd).abs() < 1e-8);
        let x = dev.tensor([x0]);
        let g = x.leaky_trace().fast_gelu().sum().backward();
        assert!(
            (g.get(&x).array()[0] - fd).abs() < 1e-8,
            "dfdx FastGeLU' at {x0}"
        );
    }
    // Why products-gelu uses FastGeLU: dfdx 0.13.0's AccurateGeLU backward at x = 1 gives
    // Φ(1) + e^{-1/2}/√π = 1.1835 instead of Φ(1) + φ(1) = 1.0833.
    let x = dev.tensor([1.0f64]);
    let g = x.leaky_trace().accurate_gelu().sum().backward();
    let got = g.get(&x).array()[0];
    assert!(
        (got - 1.18354).abs() < 1e-4,
        "dfdx AccurateGeLU' (1) = {got}"
    );
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let arch = Preset::Products.arch();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut v = || {
        (0..arch.n_params())
            .map(|_| rng.gen::<f32>() * 1e-3 - 5e-4)
            .collect::<Vec<f32>>()
    };
    let (params, m, vv) = (v(), v(), v());
    let mut shuffle_rng = ChaCha8Rng::seed_from_u64(4);
    let _: u64 = shuffle_rng.gen();
    let c = Checkpoint {
        layout: Layout::Preset(Preset::Products),
        params,
        adam: Some(AdamState { m, v: vv, t: 1234 }),
        progress: Some(Progress {
            step: 1234,
            epoch: 3,
            batch: 17,
            rng_epoch_start: shuffle_rng.clone(),
        }),
    };
    let path = dir.path().join("c.safetensors");
    save_checkpoint(&path, &c).unwrap();
    let back = read_checkpoint(&path, Some(&Layout::Preset(Preset::Products))).unwrap();
    let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back.params), bits(&c.params));
    let (a, b) = (back.adam.as_ref().unwrap(), c.adam.as_ref().unwrap());
    assert_eq!((bits(&a.m), bits(&a.v), a.t), (bits(&b.m), bits(&b.v), b.t));
    assert_eq!(back.progress, c.progress);
    // The restored RNG continues the same stream.
    let mut r = back.progress.unwrap().rng_epoch_start;
    assert_eq!(r.gen::<u64>(), shuffle_rng.gen::<u64>());
}

#[test]
fn checkpoint_errors_name_the_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    let err = read_checkpoint(&missing, None).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: cannot read checkpoint: ", missing.display())),
        "{err}"
    );

    let corrupt = dir.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, b"this is not a checkpoint at all").unwrap();
    let err = read_checkpoint(&corrupt, None).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: not a safetensors checkpoint (corrupt or truncated)",
            corrupt.display()
        )),
        "{err}"
    );

    let wide = dir.path().join("p64.safetensors");
    let arch = Preset::Products64.arch();
    save_checkpoint(
        &wide,
        &Checkpoint {
            layout: Layout::Preset(Preset::Products64),
            params: vec![0.0; arch.n_params()],
            adam: None,
            progress: None,
        },
    )
    .unwrap();
    let err = read_checkpoint(&wide, Some(&Layout::Preset(Preset::Products)))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("{}: checkpoint does not match preset `products`: tensor `layers.0.weight` has shape [64, 4], expected [32, 4] (stored preset: products64)", wide.display())
    );

    // A truncated file (half of a valid one) is corrupt, not a panic.
    let bytes = std::fs::read(&wide).unwrap();
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();
    assert!(read_checkpoint(&corrupt, None)
        .unwrap_err()
        .to_string()
        .contains("corrupt or truncated"));
}

/// Two checkpoint files hold bit-identical weights, optimiser state and progress. (File bytes
/// may differ: safetensors writes metadata from a HashMap, in no fixed order.)
fn assert_same_checkpoint(a: &Path, b: &Path) {
    let (x, y) = (
        read_checkpoint(a, None).unwrap(),
        read_checkpoint(b, None).unwrap(),
    );
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert!(
        bits(&x.params) == bits(&y.params),
        "{} and {} hold different weights",
        a.display(),
        b.display()
    );
    let (xa, ya) = (
        x.adam.map(|s| (bits(&s.m), bits(&s.v), s.t)),
        y.adam.map(|s| (bits(&s.m), bits(&s.v), s.t)),
    );
    assert!(
        xa == ya,
        "{} and {} hold different optimiser states",
        a.display(),
        b.display()
    );
    assert_eq!(x.progress, y.progress);
}

fn steps_of(events: &Path) -> Vec<u64> {
    read_all(events)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.event, Event::TrainStep { .. }))
        .map(|e| e.step.unwrap())
        .collect()
}

#[test]
fn resumed_run_ends_bit_identical_to_uninterrupted_and_logs_nothing_twice() {
    for engine in [Engine::Dfdx, Engine::Fused] {
        resume_is_exact(engine);
    }
}

fn resume_is_exact(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    // 1000 examples / batch 64 = 16 steps an epoch; checkpoints every 5 steps and at epoch ends.
    let cfg = TrainConfig {
        epochs: 3,
        n_train: 1000,
        log_every: 3,
        checkpoint_every: 5,
        engine,
        ..TrainConfig::defaults(Preset::Products)
    };
    let full = dir.path().join("full");
    train::train(&full, &cfg.clone().check().unwrap(), &mut |_| {}).unwrap();

    // Simulate a crash mid-epoch 1: keep checkpoints up to step 25, the log up to step 30 (so
    // steps 26..30 were logged after the last checkpoint) and a torn last line.
    let cut = dir.path().join("cut");
    std::fs::create_dir_all(cut.join("checkpoints")).unwrap();
    std::fs::copy(full.join("run.json"), cut.join("run.json")).unwrap();
    for step in [5, 10, 15, 16, 20, 25] {
        let name = format!("checkpoints/step-{step}.safetensors");
        std::fs::copy(full.join(&name), cut.join(&name)).unwrap();
    }
    let log = std::fs::read_to_string(full.join("events.jsonl")).unwrap();
    let mut kept: String = log
        .lines()
        .take_while(|l| Envelope::parse(l).unwrap().step.unwrap_or(0) <= 30)
        .map(|l| format!("{l}\n"))
        .collect();
    kept.push_str("{\"v\":1,\"time\":1.0,\"step\":3");
    std::fs::write(cut.join("events.jsonl"), kept).unwrap();

    let o = train::resume(&cut, &mut |_| {}).unwrap();
    assert_eq!(o.resumed_from, Some(25));
    assert_same_checkpoint(
        &full.join("model.safetensors"),
        &cut.join("model.safetensors"),
    );
    for step in [30, 32, 48] {
        let name = format!("checkpoints/step-{step}.safetensors");
        assert_same_checkpoint(&full.join(&name), &cut.join(&name));
    }
    // Nothing logged twice: the same train steps, evaluations and checkpoints as the full run.
    assert_eq!(
        steps_of(&cut.join("events.jsonl")),
        steps_of(&full.join("events.jsonl"))
    );
    let kinds = |p: &Path| {
        read_all(p)
            .unwrap()
            .into_iter()
            .filter(|e| !matches!(e.event, Event::Resumed { .. }))
            .map(|e| (e.event.kind(), e.step))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&cut.join("events.jsonl")),
        kinds(&full.join("events.jsonl"))
    );
    let resumed: Vec<_> = read_all(&cut.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.event, Event::Resumed { .. }))
        .collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].event, Event::Resumed { from_step: 25 });

    let err = train::resume(&cut, &mut |_| {}).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: the run already completed; nothing to resume",
            cut.display()
        )
    );
}

#[test]
fn training_is_deterministic_and_learns_the_products() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 4,
        n_train: 4000,
        ..TrainConfig::defaults(Preset::Products)
    };
    let a = train::train(
        &dir.path().join("a"),
        &cfg.clone().check().unwrap(),
        &mut |_| {},
    )
    .unwrap();
    let b = train::train(
        &dir.path().join("b"),
        &cfg.clone().check().unwrap(),
        &mut |_| {},
    )
    .unwrap();
    assert_same_checkpoint(&a.run.model(), &b.run.model());
    for t in &a.val {
        assert!(
            t.r2.unwrap() > 0.9,
            "{}: R² {:?} after 4 short epochs",
            t.task,
            t.r2
        );
    }
    let history = a.run.read_table("history").unwrap();
    assert_eq!(history.height(), 4 * 2, "one row per epoch and task");
}

#[test]
fn bad_training_options_fail_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let cases = [
        (TrainConfig { epochs: 0, ..TrainConfig::defaults(Preset::Products) }, "epochs", "must be at least 1"),
        (TrainConfig { lr: -1.0, ..TrainConfig::defaults(Preset::Products) }, "lr", "must be a positive finite number, got -1"),
        (TrainConfig { batch: 0, ..TrainConfig::defaults(Preset::Products) }, "batch", "must be at least 1"),
        (TrainConfig { l1: -1e-4, ..TrainConfig::defaults(Preset::Products) }, "l1", "must be a finite number >= 0, got -0.0001"),
        (TrainConfig { member: 10, ..TrainConfig::defaults(Preset::Poly) }, "member", "10 is out of range: the poly1d family has 10 members (0..9)"),
        (TrainConfig::defaults(Preset::Mnist), "data_dir", "is needed by preset `mnist`: a folder with the MNIST IDX files (train-images-idx3-ubyte, ...)"),
    ];
    for (cfg, name, problem) in cases {
        // The library names the option (the command line shows it as its flag).
        match cfg.check() {
            Err(circuitscope::Error::Param {
                name: n,
                problem: p,
            }) => {
                assert_eq!((n, p.as_str()), (name, problem))
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(!root.exists(), "nothing written for a bad option");
    }
}

#[test]
fn forward_in_chunks_gives_each_rows_outputs_as_one_row_at_a_time_does() {
    use circuitscope::model::view::FORWARD_CHUNK;
    // Two and a half chunks of rows against rows run alone: the chunks must join in order,
    // none dropped or repeated.
    let model = Preset::Products
        .arch()
        .view(&net::build(Preset::Products, 2).params())
        .unwrap();
    let n = FORWARD_CHUNK * 5 / 2;
    let x: Vec<f64> = (0..n * 4)
        .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
        .collect();
    let out = model.forward(&x).unwrap();
    assert_eq!(out.len(), n * model.d_out());
    for r in [
        0,
        1,
        FORWARD_CHUNK - 1,
        FORWARD_CHUNK,
        2 * FORWARD_CHUNK + 3,
        n - 1,
    ] {
        let one = model
            .trace(&x[r * 4..(r + 1) * 4])
            .unwrap()
            .post
            .pop()
            .unwrap();
        // The same up to the order of float sums (a product of one row is blocked unlike a
        // product of 4,096): a dropped, repeated or shifted row would differ at 1e-2.
        for (a, b) in out[r * 2..(r + 1) * 2].iter().zip(&one) {
            assert!((a - b).abs() < 1e-12, "row {r}: {a} vs {b}");
        }
    }
}

#[test]
fn pre_activation_is_the_in_order_sum_bit_for_bit() {
    use circuitscope::model::Layer;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // Widths below, at and past the eight rows summed together, and an empty input.
    for (d_in, d_out) in [(7, 13), (64, 8), (1, 3), (33, 17), (0, 5)] {
        let layer = Layer {
            d_in,
            d_out,
            weight: (0..d_in * d_out)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
            bias: (0..d_out).map(|_| rng.gen_range(-1.0..1.0)).collect(),
            activation: Activation::Relu,
        };
        let h: Vec<f64> = (0..d_in).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let z = layer.pre_activation(&h);
        assert_eq!(z.len(), d_out);
        for (j, v) in z.iter().enumerate() {
            let want =
                (0..d_in).map(|i| layer.w(j, i) as f64 * h[i]).sum::<f64>() + layer.bias[j] as f64;
            assert_eq!(v.to_bits(), want.to_bits(), "{d_in}x{d_out} row {j}");
        }
    }
}
