#![no_main]
// The IDX (MNIST) reader.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = circuitscope::data::idx::parse(data, std::path::Path::new("fuzz.idx"));
});
