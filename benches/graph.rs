//! Edge attributions/s of exact IG and a 50-step Riemann sum on the hidden-layer pairs of
//! `products64`, 1,000 examples, zero baseline: the figures in BENCHMARKS.md.
//! `cargo bench --bench graph`; `circuitscope bench ig` measures the same thing.

fn main() {
    let t = circuitscope::graph::timing::ig(circuitscope::model::Preset::Products64, 1000, 50)
        .expect("benchmark runs");
    println!(
        "{}: {} edges x {} examples; exact {:.0}/s ({:.3} s); Riemann {} {:.0}/s ({:.3} s), max error {:.2e} of largest {:.2e}",
        t.preset,
        t.edges,
        t.examples,
        t.per_s(t.exact_seconds),
        t.exact_seconds,
        t.riemann_steps,
        t.per_s(t.riemann_seconds),
        t.riemann_seconds,
        t.riemann_max_error,
        t.max_attribution
    );
}
