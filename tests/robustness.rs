//! Hostile and damaged input: every torch-made fixture, mutated many ways (bit flips, byte
//! overwrites, truncations, splices), must open or fail with an error — never panic — and reading
//! every tensor of whatever opens must likewise end in data or an error. Deterministic (fixed
//! seed), so a failure names a reproducible case.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use weightscope::format::{self, data, MemSource, Source};

fn fixtures() -> Vec<PathBuf> {
    let dir = std::env::var_os("WEIGHTSCOPE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gen"));
    let m = std::fs::read_to_string(dir.join("manifest.json"))
        .expect("fixture manifest (run make_fixtures.py)");
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    v["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .filter(|f| !f.ends_with(".json"))
        .map(|f| dir.join(f))
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() < 2_000_000)
                .unwrap_or(false)
        })
        .collect()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn exercise(bytes: Vec<u8>) {
    let src = MemSource(bytes);
    if let Ok(c) = format::open(&src, "mutant") {
        let srcs: Vec<&dyn Source> = vec![&src];
        for i in 0..c.tensors.len() {
            if c.tensors[i].nbytes() > 64 << 20 {
                continue; // a mutated shape may claim a huge view of a small storage: bounds-checked, but slow to stream
            }
            let _ = data::read_tensor(&c, &srcs, i, 1 << 16, &mut |_| Ok(()));
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let files = fixtures();
    assert!(files.len() >= 20, "only {} fixture files", files.len());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cases = 0;
    for f in &files {
        let orig = std::fs::read(f).unwrap();
        if orig.is_empty() {
            continue;
        }
        for round in 0..300 {
            let mut b = orig.clone();
            match round % 4 {
                0 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(b.len());
                        b[i] ^= 1 << rng.below(8);
                    }
                }
                1 => {
                    let i = rng.below(b.len());
                    b[i] = [0x00, 0xff, 0x7f, 0x80, b'(', b'.', 0x8a, b'X'][rng.below(8)];
                }
                2 => {
                    let n = rng.below(b.len());
                    b.truncate(n);
                }
                _ => {
                    // copy a random span over another position
                    let (a, c) = (rng.below(b.len()), rng.below(b.len()));
                    let n = rng.below(64).min(b.len() - a.max(c));
                    let span = b[a..a + n].to_vec();
                    b[c..c + n].copy_from_slice(&span);
                }
            }
            let r = std::panic::catch_unwind(|| exercise(b));
            assert!(
                r.is_ok(),
                "{}: mutation round {round} panicked",
                f.display()
            );
            cases += 1;
        }
    }
    assert!(cases > 1000);
}
