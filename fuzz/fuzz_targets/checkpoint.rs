#![no_main]
// The checkpoint loader, with and without an expected preset.
use circuitscope::model::{checkpoint::Checkpoint, Preset};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("fuzz.safetensors");
    let _ = Checkpoint::from_bytes(data, p, None);
    let _ = Checkpoint::from_bytes(data, p, Some(&circuitscope::model::checkpoint::Layout::Preset(Preset::Products)));
});
