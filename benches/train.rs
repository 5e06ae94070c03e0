//! Training throughput of `products64` at batch 256 (examples/s) on both engines, the figures in
//! BENCHMARKS.md. Run with `cargo bench --bench train`; `circuitscope bench train [--engine E]`
//! measures the same thing.

use circuitscope::bench::timing;
use circuitscope::model::net::Engine;
use circuitscope::model::Preset;

fn main() {
    for engine in [Engine::Dfdx, Engine::Fused] {
        let t = timing::throughput(Preset::Products64, 256, 5, 5, engine).expect("benchmark runs");
        println!("products64, {} engine, batch 256, {} epochs x {} examples: median {:.0} examples/s over {} runs (min {:.0}, max {:.0})", engine.name(), t.epochs, t.n_train, t.median(), t.rates.len(), t.rates[0], t.rates[t.rates.len() - 1]);
    }
}
