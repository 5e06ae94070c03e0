//! Training throughput of `products64` at batch 256 (examples/s), the figure in BENCHMARKS.md.
//! Run with `cargo bench --bench train`; `circuitscope bench train` measures the same thing.

fn main() {
    let t =
        circuitscope::model::train::throughput(circuitscope::model::Preset::Products64, 256, 5, 5)
            .expect("benchmark runs");
    println!("products64, batch 256, {} epochs x {} examples: median {:.0} examples/s over {} runs (min {:.0}, max {:.0})", t.epochs, t.n_train, t.median(), t.rates.len(), t.rates[0], t.rates[t.rates.len() - 1]);
}
