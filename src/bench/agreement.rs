//! `bench peers`' agreement lines: whether both sides of each workload computed the same thing
//! (losses, patterns, sums of Jacobians, IG errors against exact IG, curves, PCA and PLS), read
//! from the runner's records. It only prints; it must never change a record or a ratio.

use serde_json::Value;

/// Prints whether both sides computed the same thing (from the last repeat at each thread
/// count: the results do not depend on the timing).
pub(super) fn agreement(records: &[Value]) {
    let last = |w: &str| records.iter().rev().find(|r| r["workload"] == w);
    if let Some(r) = last("W1") {
        println!(
            "W1 agreement: validation MSE circuitscope {:.3e}, torch {:.3e} (same data and initial weights; different shuffles)",
            r["ours"]["val_mse"].as_f64().unwrap_or(f64::NAN),
            r["peer"]["val_mse"].as_f64().unwrap_or(f64::NAN)
        );
    }
    if let Some(r) = last("W2") {
        let ours = r["ours"]["variants"][0]["val_mse_mean"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let peer: Vec<String> = r["peer"]["variants"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                format!(
                    "{} {:.3e}",
                    v["name"].as_str().unwrap_or("?"),
                    v["val_mse_mean"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect();
        println!(
            "W2 agreement: mean grid MSE circuitscope {ours:.3e}, {}",
            peer.join(", ")
        );
    }
    if let Some(r) = last("W3") {
        let (o, p) = (&r["ours"], &r["peer"]);
        let near = |v: &Value| v["near_zero"].as_array().map_or(0, |a| a.len());
        println!(
            "W3 agreement: distinct patterns circuitscope {} (f64), torch {} (f32); without the examples with a pre-activation within 1e-5 of zero ({} here, {} there): {} and {}; Σ|∂y/∂x| {:.6e} vs {:.6e}",
            o["patterns"], p["patterns"], near(o), near(p), o["patterns_without_near_zero"], p["patterns_without_near_zero"],
            o["dydx_abs_sum"].as_f64().unwrap_or(f64::NAN), p["dydx_abs_sum"].as_f64().unwrap_or(f64::NAN)
        );
        let listed: Vec<String> = o["near_zero"]
            .as_array()
            .into_iter()
            .flatten()
            .take(20)
            .map(|v| v.to_string())
            .collect();
        println!("    examples near zero (first 20): [{}]", listed.join(", "));
    }
    if let Some(r) = last("W4") {
        let p = &r["peer"];
        ig_errors(
            "W4",
            p,
            "max |error|",
            "largest attribution",
            "max_attribution",
        );
        let ours_s = r["ours"]["variants"][0]["seconds"]
            .as_f64()
            .unwrap_or(f64::NAN);
        for s in p["sweep"].as_array().into_iter().flatten() {
            println!(
                "    torch.func sweep: {:>5} steps {:.3} s ({:.1}x circuitscope's time), max |error| {:.2e}",
                s["steps"], s["seconds"].as_f64().unwrap_or(f64::NAN),
                s["seconds"].as_f64().unwrap_or(f64::NAN) / ours_s,
                s["max_error"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    if let Some(r) = last("W6-train") {
        let (o, p) = (&r["ours"], &r["peer"]);
        println!(
            "W6-train agreement: after one epoch from the same weights on the same batches, loss {:.4} vs {:.4}, accuracy {:.2}% vs {:.2}% on the 10,000 inputs",
            o["loss"].as_f64().unwrap_or(f64::NAN),
            p["loss"].as_f64().unwrap_or(f64::NAN),
            100.0 * o["accuracy"].as_f64().unwrap_or(f64::NAN),
            100.0 * p["accuracy"].as_f64().unwrap_or(f64::NAN)
        );
    }
    // The numbers of a JSON array.
    let numbers = |v: &Value| -> Vec<f64> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect()
    };
    if let Some(r) = last("W6-jacobians") {
        let (o, p) = (
            numbers(&r["ours"]["abs_sums"]),
            numbers(&r["peer"]["abs_sums"]),
        );
        let rel = o
            .iter()
            .zip(&p)
            .map(|(a, b)| (a - b).abs() / a.abs().max(f64::MIN_POSITIVE))
            .fold(0.0, f64::max);
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.6e}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "W6-jacobians agreement: Σ|J| of ∂y/∂x and of each adjacent Jacobian, circuitscope [{}] (f64), torch [{}] (f32); largest relative difference {rel:.1e}",
            list(&o),
            list(&p)
        );
    }
    if let Some(r) = last("W6-ig") {
        ig_errors(
            "W6-ig",
            &r["peer"],
            "max |error| of the per-edge mean",
            "largest mean",
            "max_mean",
        );
    }
    if let Some(r) = last("W6-faithfulness") {
        let (o, p) = (numbers(&r["ours"]["curve"]), numbers(&r["peer"]["curve"]));
        let d = o
            .iter()
            .zip(&p)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("W6-faithfulness agreement: the curves (f64 vs f32) differ by at most {d:.1e}; circuitscope {o:.4?}");
    }
    if let Some(r) = last("W6-pca") {
        println!(
            "W6-pca agreement: PCA ratios circuitscope {} vs scikit-learn {}; PLS R² {} vs {}",
            r["ours"]["pca_ratios"],
            r["peer"]["pca_ratios"],
            r["ours"]["pls_r2"],
            r["peer"]["pls_r2"]
        );
    }
    if let Some(r) = last("W5") {
        // Numbers of a JSON array or an array of arrays, flattened.
        let flat = |v: &Value| -> Vec<f64> {
            v.as_array()
                .into_iter()
                .flatten()
                .flat_map(|v| match v.as_array() {
                    Some(x) => x.iter().filter_map(Value::as_f64).collect::<Vec<_>>(),
                    None => v.as_f64().into_iter().collect(),
                })
                .collect()
        };
        let diff = |a: &Value, b: &Value| -> f64 {
            let (fa, fb) = (flat(a), flat(b));
            if fa.len() != fb.len() {
                return f64::NAN;
            }
            fa.iter()
                .zip(&fb)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max)
        };
        println!(
            "W5 agreement: max |Δ explained-variance ratio| {:.2e} (first 8 PCs of 3 layers), PLS R² circuitscope {} vs scikit-learn {} (max |Δ| {:.2e})",
            diff(&r["ours"]["pca_ratios"], &r["peer"]["pca_ratios"]),
            r["ours"]["pls_r2"], r["peer"]["pls_r2"],
            diff(&r["ours"]["pls_r2"], &r["peer"]["pls_r2"])
        );
    }
}

/// One line per peer IG variant: its largest error against our exact IG, beside the largest
/// value (`largest_key` in the peer's record) for scale.
fn ig_errors(workload: &str, peer: &Value, error: &str, largest: &str, largest_key: &str) {
    for v in peer["variants"].as_array().into_iter().flatten() {
        println!(
            "{workload} error vs exact IG: {} {error} {:.2e} ({largest} {:.2e}); circuitscope exact: the reference",
            v["name"].as_str().unwrap_or("?"),
            v["max_error"].as_f64().unwrap_or(f64::NAN),
            peer[largest_key].as_f64().unwrap_or(f64::NAN)
        );
    }
}
