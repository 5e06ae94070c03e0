//! Edge attributions/s of exact IG and a 50-step Riemann sum on the hidden-layer pairs of
//! `products64`, 1,000 examples, zero baseline: the figures in BENCHMARKS.md.
//! `cargo bench --bench graph`; `circuitscope bench ig` measures the same thing.

fn main() {
    let t = circuitscope::bench::timing::ig(circuitscope::model::Preset::Products64, 1000, 50)
        .expect("benchmark runs");
    println!("{t}");
}
