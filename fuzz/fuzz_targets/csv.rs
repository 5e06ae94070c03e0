#![no_main]
// The digits CSV reader.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = circuitscope::data::digits::parse_csv(&text, std::path::Path::new("fuzz.csv"));
});
