//! The pickle VM alone, fed structure-aware programs (see `pickle_grammar`): load → build the
//! checkpoint tree → drop everything. Any storage persistent id is accepted (one storage per
//! key), so tensor rebuilders run as they do inside a zip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use weightscope::format::pickle::tree;
use weightscope::format::pickle::{Limits, StoragePid, StorageResolver, Unpickler};
use weightscope_fuzz::pickle_grammar::Program;

const NODE_BUDGET: usize = 100_000;

#[derive(Default)]
struct AnyStorage(HashMap<String, usize>);

impl StorageResolver for AnyStorage {
    fn storage(&mut self, pid: &StoragePid) -> Result<usize, String> {
        let n = self.0.len();
        Ok(*self.0.entry(pid.key.clone()).or_insert(n))
    }
}

fuzz_target!(|p: Program| {
    let bytes = p.to_bytes();
    // `WEIGHTSCOPE_FUZZ_DUMP=FILE`: write the pickle an input serialises to (to turn a finding
    // into a regression file; see README.md).
    if let Some(path) = std::env::var_os("WEIGHTSCOPE_FUZZ_DUMP") {
        std::fs::write(path, &bytes).expect("dump");
    }
    let mut resolver = AnyStorage::default();
    let mut u = Unpickler::new(&mut resolver, Limits::default());
    if let Ok((root, _)) = u.load(&bytes, 0) {
        let mut tensors = Vec::new();
        // A smaller node budget than the readers' (tree::MAX_NODES): the same code paths, but
        // a shared-reference DAG that expands to the budget costs milliseconds, not a second.
        let node = tree::build_with_budget(&u, root, &[], &mut tensors, NODE_BUDGET);
        let _ = u.safety.verdict();
        drop(node);
    }
    drop(u);
});
