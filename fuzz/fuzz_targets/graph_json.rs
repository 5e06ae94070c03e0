#![no_main]
// The graph JSON loader.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = circuitscope::graph::export::parse_json(&text, std::path::Path::new("fuzz.json"));
});
