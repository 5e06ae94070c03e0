#![no_main]
// The safetensors import: a state dict in any dtype, nn.Sequential detection, the model built
// from it.
use circuitscope::model::import::{build_model, read_state_dict, sequential_layers};
use circuitscope::model::Activation;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("fuzz.safetensors");
    if let Ok(sd) = read_state_dict(data, p) {
        if let Ok(names) = sequential_layers(&sd, p) {
            let acts = vec![Activation::Relu; names.len()];
            for d_in in [1, 2, 6] {
                let _ = build_model(&sd, &names, &acts, d_in, p);
            }
        }
    }
});
