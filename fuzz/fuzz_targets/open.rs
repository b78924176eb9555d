//! bytes → detect + open (torch zip, TorchScript, legacy stream, 0.1.x tar, deflated records,
//! safetensors, sharded index with its shards) → what the CLI's `inspect --json` and `stats` do
//! with the result; a file that does not open goes through the pickle scan the CLI runs on it
//! (`scan_source`: the pickles torch.load would run, and the report's text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightscope::format::pickle::scan;
use weightscope::format::MemSource;
use weightscope_fuzz::{exercise, open_files, split_files};

fuzz_target!(|data: &[u8]| {
    let files = split_files(data);
    match open_files(&files) {
        Ok(o) => exercise(&o),
        Err(_) => {
            if let Some(s) = scan::scan_source(&MemSource(files[0].to_vec())) {
                let _ = (scan::would_call(&s.safety), scan::not_a_checkpoint(&s));
            }
        }
    }
});
