//! Jacobians/s of `products` and `products64` on 10,000 examples, with and without pattern
//! reuse, and the census time: the figures in BENCHMARKS.md. `cargo bench --bench probe`;
//! `circuitscope bench jacobians` measures the same thing.

fn main() {
    for preset in [
        circuitscope::model::Preset::Products,
        circuitscope::model::Preset::Products64,
    ] {
        let t = circuitscope::probe::timing::jacobians(preset, 10_000, 3).expect("benchmark runs");
        println!(
            "{}: {} distinct patterns; no reuse {:.0} Jacobians/s ({:.3} s), reuse {:.0} Jacobians/s ({:.3} s), census {:.3} s",
            t.preset,
            t.patterns,
            t.jacobians_per_s(t.seconds_off),
            t.seconds_off,
            t.jacobians_per_s(t.seconds_reuse),
            t.seconds_reuse,
            t.census_seconds
        );
    }
}
