//! open → no-op export (torch zip for torch inputs, safetensors for safetensors) → reopen →
//! equal: same tensors (dtype, shape, bytes), nothing lost without a report, verdict `safe`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightscope_fuzz::{open_files, roundtrip, split_files};

fuzz_target!(|data: &[u8]| {
    let files = split_files(data);
    if let Ok(o) = open_files(&files) {
        roundtrip(&o);
    }
});
