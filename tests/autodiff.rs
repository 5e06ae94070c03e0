//! The scalar autodiff explainer: the note's example, every op against finite differences,
//! forward against reverse mode, operation counts, and an MLP against dfdx.

use circuitscope::autodiff::{scalar_mlp, scalar_mlp_with, Tape, Var};
use circuitscope::model::net::Batch;
use circuitscope::model::{net, Loss, Preset};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn the_notes_example_z_equals_xy_plus_sin_x() {
    let t = Tape::new();
    let (x, y) = (t.input("x", 0.5), t.input("y", 4.2));
    let z = x * y + x.sin();
    assert!((z.value() - 2.579425538604203).abs() <= 1e-15);
    let g = t.reverse(z);
    assert!((g.values[x.index] - (4.2 + 0.5f64.cos())).abs() <= 1e-15);
    assert!((g.values[y.index] - 0.5).abs() <= 1e-15);
    let (fwd, _) = t.forward_gradient(z);
    assert!((fwd[0] - (4.2 + 0.5f64.cos())).abs() <= 1e-15 && (fwd[1] - 0.5).abs() <= 1e-15);
    // The drawing carries values and adjoints.
    let dot = t.to_dot(Some(&g));
    assert!(
        dot.contains("x = 0.500000") && dot.contains("adjoint 5.077583"),
        "{dot}"
    );
    let svg = t.to_svg(Some(&g));
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<rect x=").count(), t.len());
}

/// Every unary op and binary op: reverse-mode derivative against a central finite difference.
#[test]
fn every_op_matches_central_finite_differences() {
    type Unary = fn(Var<'_>) -> Var<'_>;
    let unary: [(&str, Unary, f64); 9] = [
        ("neg", |v| -v, 0.7),
        ("powi3", |v| v.powi(3), 0.7),
        ("sin", |v| v.sin(), 0.7),
        ("cos", |v| v.cos(), 0.7),
        ("exp", |v| v.exp(), 0.7),
        ("ln", |v| v.ln(), 0.7),
        ("tanh", |v| v.tanh(), 0.7),
        ("relu", |v| v.relu(), 0.7),
        ("softplus", |v| v.softplus(), -0.3),
    ];
    let h = 1e-6;
    for (name, f, x0) in unary {
        let eval = |x: f64| {
            let t = Tape::new();
            let v = t.input("x", x);
            f(v).value()
        };
        let t = Tape::new();
        let x = t.input("x", x0);
        let out = f(x);
        let d = t.reverse(out).values[x.index];
        let fd = (eval(x0 + h) - eval(x0 - h)) / (2.0 * h);
        assert!(
            (d - fd).abs() <= 1e-8 * fd.abs().max(1.0),
            "{name}: {d} vs {fd}"
        );
    }
    type Binary = for<'t> fn(Var<'t>, Var<'t>) -> Var<'t>;
    let binary: [(&str, Binary); 4] = [
        ("add", |a, b| a + b),
        ("sub", |a, b| a - b),
        ("mul", |a, b| a * b),
        ("div", |a, b| a / b),
    ];
    for (name, f) in binary {
        let (a0, b0) = (0.8, -1.3);
        let eval = |a: f64, b: f64| {
            let t = Tape::new();
            let (x, y) = (t.input("a", a), t.input("b", b));
            f(x, y).value()
        };
        let t = Tape::new();
        let (a, b) = (t.input("a", a0), t.input("b", b0));
        let g = t.reverse(f(a, b));
        let fa = (eval(a0 + h, b0) - eval(a0 - h, b0)) / (2.0 * h);
        let fb = (eval(a0, b0 + h) - eval(a0, b0 - h)) / (2.0 * h);
        assert!(
            (g.values[a.index] - fa).abs() <= 1e-8 && (g.values[b.index] - fb).abs() <= 1e-8,
            "{name}"
        );
    }
}

/// A random expression over `inputs`, built from every op (kept away from log/div poles).
fn random_expr<'t>(inputs: &[Var<'t>], rng: &mut ChaCha8Rng, depth: usize) -> Var<'t> {
    if depth == 0 || rng.gen_bool(0.2) {
        return inputs[rng.gen_range(0..inputs.len())];
    }
    let a = random_expr(inputs, rng, depth - 1);
    match rng.gen_range(0..11) {
        0 => a + random_expr(inputs, rng, depth - 1),
        1 => a - random_expr(inputs, rng, depth - 1),
        2 => a * random_expr(inputs, rng, depth - 1),
        3 => a / (random_expr(inputs, rng, depth - 1).powi(2) + 1.0),
        4 => a.sin(),
        5 => a.cos(),
        6 => a.tanh(),
        7 => (a.powi(2) + 0.5).ln(),
        8 => a.softplus(),
        9 => (a * 0.3).exp(),
        _ => -a,
    }
}

#[test]
fn forward_and_reverse_mode_agree_on_random_expressions() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for case in 0..200 {
        let t = Tape::new();
        let n = rng.gen_range(1..6);
        let inputs: Vec<Var> = (0..n)
            .map(|i| t.input(&format!("x{i}"), rng.gen_range(-1.5..1.5)))
            .collect();
        let out = random_expr(&inputs, &mut rng, 5);
        let rev = t.reverse(out);
        let (fwd, _) = t.forward_gradient(out);
        for (k, x) in inputs.iter().enumerate() {
            let (r, f) = (rev.values[x.index], fwd[k]);
            assert!(
                (r - f).abs() <= 1e-12 * r.abs().max(1.0),
                "case {case} input {k}: reverse {r} vs forward {f}"
            );
        }
    }
}

#[test]
fn forward_mode_costs_grow_with_inputs_and_reverse_mode_costs_do_not() {
    // f(x_1..x_n) = Σ x_i · x_{i+1}: n inputs, n-1 products and n-2 sums.
    let counts = |n: usize| {
        let t = Tape::new();
        let xs: Vec<Var> = (0..n)
            .map(|i| t.input(&format!("x{i}"), i as f64))
            .collect();
        let f = xs
            .windows(2)
            .map(|w| w[0] * w[1])
            .reduce(|a, b| a + b)
            .unwrap();
        (t.forward_gradient(f).1, t.reverse(f).operations)
    };
    // Each binary node has 2 parent edges: 2n-3 nodes, 2(2n-3) edges. Forward mode visits
    // every edge once per input; reverse mode once in all.
    for n in [2, 4, 8, 16, 32] {
        let (fwd, rev) = counts(n);
        assert_eq!(rev, 2 * (2 * n - 3), "reverse, n = {n}");
        assert_eq!(fwd, n * 2 * (2 * n - 3), "forward, n = {n}");
    }
}

#[test]
fn scalar_mlp_gradients_equal_dfdx_and_finite_differences() {
    for preset in [Preset::Poly, Preset::Products, Preset::ProductsGelu] {
        let mut n = net::build(preset, 5);
        let arch = preset.arch();
        let model = arch.view(&n.params()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let rows = 3;
        let x: Vec<f32> = (0..rows * arch.widths[0])
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let y: Vec<f32> = (0..rows * arch.widths.last().unwrap())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let (xd, yd): (Vec<f64>, Vec<f64>) = (
            x.iter().map(|&v| v as f64).collect(),
            y.iter().map(|&v| v as f64).collect(),
        );
        let tape = Tape::new();
        let s = scalar_mlp(&tape, &model, &xd, &yd);
        let grads = tape.reverse(s.loss);
        let ours: Vec<f64> = s.params.iter().map(|p| grads.values[p.index]).collect();
        // dfdx, in f32.
        let (loss, _, theirs) = n.loss_and_grad(
            Batch {
                x: &x,
                y: &y,
                n: rows,
            },
            Loss::Mse,
        );
        assert!((loss as f64 - s.loss.value()).abs() <= 1e-5 * s.loss.value().max(1.0));
        for (k, (a, &b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b as f64).abs() <= 1e-5 * a.abs().max(1e-2),
                "{preset} parameter {k}: scalar {a} vs dfdx {b}"
            );
        }
        // Finite differences in f64 on a few parameters (away from ReLU kinks: small h).
        let flat: Vec<f64> = model
            .layers
            .iter()
            .flat_map(|l| l.weight.iter().chain(&l.bias).map(|&v| v as f64))
            .collect();
        for k in [0, flat.len() / 3, flat.len() / 2, flat.len() - 1] {
            let loss_at = |delta: f64| {
                let mut p = flat.clone();
                p[k] += delta;
                let t = Tape::new();
                scalar_mlp_with(&t, &model, &p, &xd, &yd).loss.value()
            };
            let h = 1e-6;
            let fd = (loss_at(h) - loss_at(-h)) / (2.0 * h);
            assert!(
                (fd - ours[k]).abs() <= 1e-7 * ours[k].abs().max(1e-2),
                "{preset} parameter {k}: scalar {} vs finite difference {fd}",
                ours[k]
            );
        }
    }
}
