//! Shared pieces of the fuzz targets: how one fuzz input becomes one or more files, how they are
//! opened (single file or sharded index), what is exercised on an opened checkpoint, and the
//! no-op export round trip with its equality check.
//!
//! Input layout (targets `open` and `roundtrip`): the bytes are split at [`SEP`]; the first part
//! is the file to open. When it is detected as a sharded-checkpoint index, the shard files it
//! names are served, in the order the reader asks for them, from the following parts (a name
//! asked for again gets the same part; a name with no part left is "not found").

use std::collections::HashMap;
use weightscope::cli::open::Opened;
use weightscope::edit::ETree;
use weightscope::export::plan::{export, OutFormat, Part};
use weightscope::export::writer::Inputs;
use weightscope::format::data::read_tensor_vec;
use weightscope::format::{self, Checkpoint, Format, FormatError, MemSource, Source};
use weightscope::stats::{checkpoint_stats, StatsCache, StatsOptions};

pub mod pickle_grammar;

/// Separates the files of one fuzz input (index, then shards).
pub const SEP: &[u8] = b"\n#weightscope-fuzz-shard#\n";

/// Tensors larger than this (logical bytes) are not read: reading a view is O(view) by design;
/// what must stay cheap on huge views is opening, which is exercised whatever the size.
pub const MAX_READ: u64 = 1 << 20;

/// Split a fuzz input into files at [`SEP`].
pub fn split_files(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        out.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    out.push(rest);
    out
}

/// Join files into one fuzz input (the inverse of [`split_files`]; used to build seeds).
pub fn join_files(files: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEP);
        }
        out.extend_from_slice(f);
    }
    out
}

/// Detect and open the input's first file (and its shards when it is an index).
pub fn open_files(files: &[&[u8]]) -> Result<Opened, FormatError> {
    let main = MemSource(files[0].to_vec());
    let fmt = format::detect_source(&main).map_err(FormatError::from)?;
    if matches!(fmt, Format::SafetensorsSharded | Format::TorchSharded) {
        let mut given: HashMap<String, usize> = HashMap::new();
        let mut opener = |name: &str| -> format::Result<Box<dyn Source>> {
            let next = given.len() + 1;
            let i = *given.entry(name.to_string()).or_insert(next);
            match files.get(i) {
                Some(b) => Ok(Box::new(MemSource(b.to_vec())) as Box<dyn Source>),
                None => Err(FormatError::new(format!("{name}: no such file"))),
            }
        };
        let (ckpt, sources) = format::open_sharded(&main, "model.index.json", &mut opener)?;
        return Ok(Opened { ckpt, sources });
    }
    let ckpt = format::open(&main, "input")?;
    Ok(Opened {
        ckpt,
        sources: vec![Box::new(main)],
    })
}

/// Logical byte size of tensor `i`, `None` when it does not fit in 64 bits.
pub fn nbytes_checked(c: &Checkpoint, i: usize) -> Option<u64> {
    let t = &c.tensors[i];
    t.shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))?
        .checked_mul(t.dtype.size() as u64)
}

/// What the CLI does with an opened file, short of printing: the JSON index (as `inspect
/// --json`), then statistics (as `stats`) and bytes of every tensor of at most [`MAX_READ`]
/// logical bytes. Errors are fine; panics, hangs and aborts are findings.
pub fn exercise(o: &Opened) {
    if let Ok(j) = weightscope::cli::inspect::index_json(o, false) {
        let _ = serde_json::to_vec(&j);
    }
    let _ = o.ckpt.safety.verdict();
    let c = &o.ckpt;
    let srcs = o.source_refs();
    let small = |i: usize| nbytes_checked(c, i).is_some_and(|n| n <= MAX_READ);
    for i in (0..c.tensors.len()).filter(|&i| small(i)).take(64) {
        let _ = read_tensor_vec(c, &srcs, i);
    }
    let opts = StatsOptions::default();
    let mut cache = StatsCache::new();
    let _ = checkpoint_stats(c, &srcs, &opts, &small, &mut |_, _| true, &mut cache);
}

/// Materialise an export's parts over the inputs' bytes, checking the CRC-32 a copied record
/// must have (as the CLI's writer does). `None`: a slice is unreadable or corrupted — the export
/// is refused, which is a correct outcome.
fn materialise(parts: Vec<Part>, srcs: &[&dyn Source]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Part::Bytes(b) => out.extend_from_slice(&b),
            Part::Slice {
                file,
                offset,
                len,
                crc32,
                ..
            } => {
                let n = usize::try_from(len).ok()?;
                let src = srcs.get(file)?;
                if offset.checked_add(len)? > src.len() {
                    return None;
                }
                let b = src.read_vec(offset, n).ok()?;
                if crc32.is_some_and(|want| crc32fast::hash(&b) != want) {
                    return None;
                }
                out.extend_from_slice(&b);
            }
        }
    }
    Some(out)
}

/// Open → no-op export (same container family) → reopen → equal. Panics (a finding) when an
/// export that succeeded does not reopen, reopens as anything but `safe`, or changes a tensor's
/// dtype, shape or bytes, or loses a tensor without reporting it.
pub fn roundtrip(o: &Opened) {
    let c = &o.ckpt;
    let (fmt, name) = match c.format {
        Format::Safetensors | Format::SafetensorsSharded => {
            (OutFormat::Safetensors, "out.safetensors")
        }
        Format::TorchZip | Format::TorchLegacy | Format::TorchSharded => {
            (OutFormat::Torch, "out.pth")
        }
        _ => return,
    };
    let srcs = o.source_refs();
    let tree = ETree::from_checkpoint(c, 0);
    let inputs = Inputs {
        ckpts: vec![c],
        sources: vec![srcs.clone()],
        deferred: None,
    };
    let mut parts = Vec::new();
    let mut total = 0u64;
    let report = match export(&tree, &inputs, fmt, name, &mut |p| {
        total += match &p {
            Part::Bytes(b) => b.len() as u64,
            Part::Slice { len, .. } => *len,
        };
        if total > 64 << 20 {
            return Err(FormatError::new("fuzz harness: output above 64 MiB"));
        }
        parts.push(p);
        Ok(())
    }) {
        Ok(r) => r,
        Err(_) => return,
    };
    let Some(bytes) = materialise(parts, &srcs) else {
        return;
    };
    let out_src = MemSource(bytes);
    let back = match format::open(&out_src, name) {
        Ok(b) => b,
        Err(e) => panic!("a no-op export does not reopen: {e}"),
    };
    assert_eq!(
        back.safety.verdict(),
        "safe",
        "a no-op export is not safe: {:?}",
        back.safety
    );
    let lossy = !report.dropped.is_empty();
    let key = |p: &[String]| match fmt {
        OutFormat::Safetensors => p.join("."),
        OutFormat::Torch => p.join("/"),
    };
    let ins: HashMap<String, usize> = tree
        .tensors()
        .into_iter()
        .map(|(p, r)| (key(&p), r.index))
        .collect();
    let outs: HashMap<String, usize> = back
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (key(&t.path), i))
        .collect();
    let back_srcs: Vec<&dyn Source> = vec![&out_src];
    for (k, &j) in &outs {
        let Some(&i) = ins.get(k) else {
            assert!(lossy, "the export made up tensor {k}");
            continue;
        };
        let (a, b) = (&c.tensors[i], &back.tensors[j]);
        assert_eq!(a.dtype, b.dtype, "{k}: dtype changed");
        assert_eq!(a.shape, b.shape, "{k}: shape changed");
        if nbytes_checked(c, i).is_some_and(|n| n <= MAX_READ) {
            if let Ok(want) = read_tensor_vec(c, &srcs, i) {
                match read_tensor_vec(&back, &back_srcs, j) {
                    Ok(got) => assert!(got == want, "{k}: bytes changed"),
                    Err(e) => panic!("{k}: readable in the input, not in the export: {e}"),
                }
            }
        }
    }
    for k in ins.keys().filter(|k| !outs.contains_key(*k)) {
        let aliased = report.aliases.iter().any(|(removed, _)| removed == k);
        assert!(lossy || aliased, "tensor {k} lost without a report");
    }
}
