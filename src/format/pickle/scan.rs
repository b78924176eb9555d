//! What `torch.load(weights_only=False)` would call, for any file that holds pickles — a
//! checkpoint we read, one we cannot read, or a plain pickle that is no checkpoint at all.
//!
//! torch.load unpickles a file that is not a zip as a legacy stream: it loads the first pickle
//! (running every call in it) before it compares the result with its magic number, and a
//! pickle can compute that number itself, after which torch goes on to the next pickles. So a
//! renamed `evil.pkl` runs its payload, then fails with "Invalid magic number".
//!
//! Contract: [`looks_like_pickle`] says whether a file's first bytes run through the VM as a
//! pickle (any protocol, text opcodes too) without an error. [`scan_stream`] runs up to
//! [`LEGACY_PICKLES`] back-to-back pickles from the start of a buffer through the safe VM (which
//! never calls anything) and keeps the safety report of everything read, including the part of
//! a pickle before the byte where it breaks — Python would have run those calls before failing
//! there. Storage persistent ids are accepted without bytes. [`scan_source`] does this for a
//! file: the `data.pkl` records of a zip, or the stream at the start of anything else; `None`
//! when the file holds no pickle. Work is linear in the bytes scanned, at most [`MAX_SCAN`].

use super::calls::{StoragePid, StorageResolver};
use super::vm::{Limits, PickleError, Unpickler};
use crate::format::checkpoint::SafetyReport;
use crate::format::detect::LEGACY_MAGIC;
use crate::format::source::Source;
use crate::format::zip::ZipDirectory;

/// Pickles in a legacy stream: magic number, protocol version, system info, the object, the
/// storage keys (raw storage bytes follow).
pub const LEGACY_PICKLES: usize = 5;

/// Most bytes of a pickle stream (or of one `data.pkl`) scanned.
pub const MAX_SCAN: u64 = 256 << 20;

/// What a pickle stream would make Python call.
#[derive(Debug, Clone, Default)]
pub struct StreamScan {
    pub safety: SafetyReport,
    /// Pickles read to their STOP.
    pub pickles: usize,
    /// The protocol of the first pickle (0 when it has no PROTO opcode).
    pub protocol: u8,
    /// Where the scan stopped short: the pickle ended early or broke (Python would fail there).
    pub error: Option<PickleError>,
    /// The first pickle is exactly torch's legacy magic number.
    pub legacy_magic: bool,
}

impl StreamScan {
    /// The verdict, as [`SafetyReport::verdict`].
    pub fn verdict(&self) -> crate::format::Verdict {
        self.safety.verdict()
    }
}

/// Accepts every storage (no bytes are read); each key gets its own index.
#[derive(Default)]
struct AnyStorage(Vec<String>);

impl StorageResolver for AnyStorage {
    fn storage(&mut self, pid: &StoragePid) -> Result<usize, String> {
        match self.0.iter().position(|k| *k == pid.key) {
            Some(i) => Ok(i),
            None if self.0.len() < 1 << 20 => {
                self.0.push(pid.key.clone());
                Ok(self.0.len() - 1)
            }
            None => Err("more than 2^20 storages".into()),
        }
    }
}

/// Do these first bytes of a file start a pickle? Yes when they begin with a PROTO opcode
/// (`\x80` and a protocol 0–5), or run through the VM to a STOP, or to the end of `head`
/// without an error after at least two opcodes, or name a global before the opcode where they
/// break (Python imports it, and runs what it calls, before failing there).
pub fn looks_like_pickle(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    if head.len() >= 2 && head[0] == 0x80 && head[1] <= 5 {
        return true;
    }
    let mut r = AnyStorage::default();
    let mut u = Unpickler::new(&mut r, Limits::default());
    match u.load(head, 0) {
        Ok(_) => true,
        Err(e) => {
            (e.truncated && e.pos >= 2)
                || !u.safety.globals.is_empty()
                || !u.safety.findings.is_empty()
        }
    }
}

/// Scan up to `max_pickles` pickles, back to back from the start of `data`.
pub fn scan_stream(data: &[u8], max_pickles: usize) -> StreamScan {
    let mut r = AnyStorage::default();
    let mut u = Unpickler::new(&mut r, Limits::default());
    let mut out = StreamScan::default();
    let mut pos = 0;
    while out.pickles < max_pickles && pos < data.len() {
        match u.load(data, pos) {
            Ok((_, end)) => {
                if out.pickles == 0 {
                    out.protocol = u.protocol;
                    out.legacy_magic = data[..end] == LEGACY_MAGIC;
                }
                out.pickles += 1;
                pos = end;
            }
            Err(e) => {
                if out.pickles == 0 {
                    out.protocol = u.protocol;
                }
                out.error = Some(e);
                break;
            }
        }
    }
    out.safety = std::mem::take(&mut u.safety);
    out
}

/// Read `[0, min(len, MAX_SCAN))` of a source, or `None` when it cannot be read.
fn head_of(src: &dyn Source) -> Option<Vec<u8>> {
    src.read_vec(0, src.len().min(MAX_SCAN) as usize).ok()
}

/// What torch.load would call for the pickles of this file: every `data.pkl` of a zip (all of
/// them when there are several: the report covers whichever torch picks), or the pickle stream
/// at the start of any other file. `None` when the file holds no pickle.
pub fn scan_source(src: &dyn Source) -> Option<StreamScan> {
    let head = src.read_vec(0, src.len().min(512) as usize).ok()?;
    if head.starts_with(b"PK\x03\x04") {
        let dir = ZipDirectory::read(src).ok()?;
        let mut all: Option<StreamScan> = None;
        for e in dir
            .entries
            .iter()
            .filter(|e| e.name == "data.pkl" || e.name.ends_with("/data.pkl"))
        {
            let Ok(data) = ZipDirectory::read_small(src, e, MAX_SCAN) else {
                continue;
            };
            let s = scan_stream(&data, 1);
            match &mut all {
                None => all = Some(s),
                Some(a) => {
                    a.safety.merge(s.safety);
                    a.pickles += s.pickles;
                }
            }
        }
        return all;
    }
    if !looks_like_pickle(&head) {
        return None;
    }
    let data = head_of(src)?;
    Some(scan_stream(&data, LEGACY_PICKLES))
}

/// The one-line explanation for a pickle stream that is not a checkpoint we read, naming what
/// torch.load would call.
pub fn not_a_checkpoint(s: &StreamScan) -> String {
    let what = if s.legacy_magic {
        "a legacy PyTorch stream weightscope cannot read".to_string()
    } else {
        format!(
            "not a PyTorch or safetensors checkpoint: a pickle stream (protocol {}) that torch.load would unpickle — running every call in it — before it can tell that the file is not a checkpoint",
            s.protocol
        )
    };
    format!("{what}; {}", would_call(&s.safety))
}

/// `DANGEROUS: torch.load would call os.system('…'), …` / `unknown: …` / `it calls nothing`.
pub fn would_call(r: &SafetyReport) -> String {
    use crate::format::checkpoint::Tier;
    let names = |t: Tier| {
        r.globals
            .iter()
            .filter(|g| g.tier == t)
            .map(|g| {
                format!(
                    "{}.{}",
                    super::pyrepr::display_name(&g.module),
                    super::pyrepr::display_name(&g.name)
                )
            })
            .collect::<Vec<_>>()
    };
    match r.verdict() {
        crate::format::Verdict::Dangerous => {
            let mut parts = names(Tier::Dangerous);
            parts.extend(r.findings.iter().cloned());
            let calls = if r.calls.is_empty() {
                String::new()
            } else {
                format!("; it would call {}", r.calls.join(", "))
            };
            format!(
                "DANGEROUS: torch.load(weights_only=False) would import or call {}{calls}",
                parts.join(", ")
            )
        }
        crate::format::Verdict::Unknown => format!(
            "torch.load would import globals that are not on the allow-list (not dangerous): {}",
            names(Tier::Unknown).join(", ")
        ),
        crate::format::Verdict::Safe => "it names no global outside torch's allow-list".to_string(),
    }
}
