//! Jacobians/s of `products` and `products64` on 10,000 examples, with and without pattern
//! reuse, and the census time: the figures in BENCHMARKS.md. `cargo bench --bench probe`;
//! `circuitscope bench jacobians` measures the same thing.

fn main() {
    for preset in [
        circuitscope::model::Preset::Products,
        circuitscope::model::Preset::Products64,
    ] {
        let t = circuitscope::bench::timing::jacobians(preset, 10_000, 3).expect("benchmark runs");
        println!("{t} (medians of 3)");
    }
}
