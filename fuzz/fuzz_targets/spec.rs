#![no_main]
// The model-spec parser and checker (tensor names, activations, task expressions, outputs).
use circuitscope::model::spec::ModelSpec;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = ModelSpec::parse(&String::from_utf8_lossy(data)) {
        let _ = spec.check();
    }
});
