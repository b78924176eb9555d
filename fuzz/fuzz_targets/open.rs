//! bytes → detect + open (torch zip, TorchScript, legacy stream, safetensors, sharded index with
//! its shards) → what the CLI's `inspect --json` and `stats` do with the result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightscope_fuzz::{exercise, open_files, split_files};

fuzz_target!(|data: &[u8]| {
    let files = split_files(data);
    if let Ok(o) = open_files(&files) {
        exercise(&o);
    }
});
