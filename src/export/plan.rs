//! The export plan: choose the writer from the output name, run it, and (natively) materialise
//! its parts into a file.
//!
//! Contract: [`planned_drops`] tells, before anything is written, what the writer will leave
//! out (the writers' own planning, not a copy of their rules). [`export`] streams [`Part`]s to a sink — slices of the inputs and new bytes — so
//! the browser can build a `Blob` from `File.slice`s without copying tensor data into wasm
//! memory. [`write_file`] writes natively (on a thread of its own, overlapping the reading and
//! computing) to a temporary file beside the target and renames it
//! into place only on success: a failed export writes nothing.

use super::pickler::pickle_tree;
use super::writer::{archive_prefix, plan_safetensors, write_safetensors, write_torch};
pub use super::writer::{Inputs, Part, Report};
use crate::edit::tree::ETree;
use crate::format::{Checkpoint, FormatError};

/// Output container (`"torch"` / `"safetensors"` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutFormat {
    Torch,
    Safetensors,
}

impl OutFormat {
    /// From an output file name's extension (`.pth .pt .bin .ckpt` → torch; `.safetensors`).
    pub fn from_name(name: &str) -> Option<OutFormat> {
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit('.').next().unwrap_or("");
        match ext {
            "pth" | "pt" | "bin" | "ckpt" | "tar" => Some(OutFormat::Torch),
            "safetensors" => Some(OutFormat::Safetensors),
            _ => None,
        }
    }
    /// From `--format` text.
    pub fn parse(s: &str) -> Option<OutFormat> {
        match s {
            "torch" | "pth" | "pt" | "torch-zip" => Some(OutFormat::Torch),
            "safetensors" => Some(OutFormat::Safetensors),
            _ => None,
        }
    }
    /// The download name for an input name: `resnet.pth` → `resnet.edited.pth` (same format)
    /// or `resnet.safetensors` (conversion).
    pub fn output_name(self, input: &str, converted: bool) -> String {
        let base = input.rsplit(['/', '\\']).next().unwrap_or(input);
        let stem = match base.rfind('.') {
            Some(i) if i > 0 => &base[..i],
            _ => base,
        };
        match (self, converted) {
            (OutFormat::Safetensors, true) => format!("{stem}.safetensors"),
            (OutFormat::Torch, true) => format!("{stem}.pth"),
            _ => {
                let ext = base.rsplit_once('.').map(|(_, e)| e).unwrap_or("pth");
                format!("{stem}.edited.{ext}")
            }
        }
    }
}

/// What an export of `tree` in `format` would leave out, each with the reason — the writers'
/// own planning, shown before the download. A tree the writer would refuse (two tensors with
/// one safetensors name) gives that refusal as its one line.
pub fn planned_drops(tree: &ETree, ckpts: &[&Checkpoint], format: OutFormat) -> Vec<String> {
    match format {
        OutFormat::Torch => pickle_tree(tree, ckpts).dropped,
        OutFormat::Safetensors => match plan_safetensors(tree, ckpts) {
            Ok(plan) => plan.dropped,
            Err(e) => vec![format!("cannot write: {e}")],
        },
    }
}

/// Run the writer for `format`, streaming parts to `sink`.
pub fn export(
    tree: &ETree,
    inputs: &Inputs,
    format: OutFormat,
    out_name: &str,
    sink: &mut dyn FnMut(Part) -> Result<(), FormatError>,
) -> Result<Report, FormatError> {
    match format {
        OutFormat::Torch => write_torch(tree, inputs, &archive_prefix(out_name), sink),
        OutFormat::Safetensors => write_safetensors(tree, inputs, sink),
    }
}

/// Output buffers queued for the writing thread of [`write_file`].
#[cfg(not(target_arch = "wasm32"))]
const WRITE_QUEUE: usize = 3;
/// Most bytes handed to one `write` call by [`write_file`]'s writing thread. Measured on Linux
/// 6.18 / ext4 (BENCHMARKS.md, "Write size"): 4 GiB written from a 4 MiB buffer costs 3.7–13 s of
/// kernel time in 4 MiB calls and 1.8–2.7 s in 256 KiB calls (`cp`, which copies inside the
/// kernel, takes ≈ 2 s); 64 KiB calls are no faster.
#[cfg(not(target_arch = "wasm32"))]
const WRITE_PIECE: usize = 256 << 10;

/// Export natively to `path` (temporary file + rename).
///
/// The `write` calls run on a thread of their own, fed through a short queue of buffers: the
/// kernel's copying of one chunk into the page cache overlaps reading, computing (merged
/// tensors, casts) and hashing the next. Buffers come back from that thread for reuse.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_file(
    tree: &ETree,
    inputs: &Inputs,
    format: OutFormat,
    path: &std::path::Path,
) -> Result<Report, FormatError> {
    use crate::format::data::DEFAULT_CHUNK;
    use std::io::Write;
    use std::sync::mpsc;
    let name = path.display().to_string();
    let tmp = path.with_file_name(format!(
        ".{}.weightscope-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let io = |e: std::io::Error| FormatError::new(e.to_string()).in_file(&name);
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let res = std::thread::scope(|scope| {
        let (to_writer, queued) = mpsc::sync_channel::<Vec<u8>>(WRITE_QUEUE);
        let (give_back, returned) = mpsc::channel::<Vec<u8>>();
        let writer = scope.spawn(move || -> std::io::Result<()> {
            // small parts (headers, pickles) are gathered; large ones go out in pieces
            let mut w = std::io::BufWriter::with_capacity(WRITE_PIECE, file);
            for b in queued {
                for piece in b.chunks(WRITE_PIECE) {
                    w.write_all(piece)?;
                }
                let _ = give_back.send(b);
            }
            w.flush()
        });
        // set when the writing thread has stopped (it reports why when joined)
        let mut stopped = false;
        let exported = export(tree, inputs, format, &name, &mut |p| {
            // written buffers go back to the writers' pool
            returned.try_iter().for_each(super::writer::recycle);
            let mut send = |b: Vec<u8>| {
                to_writer.send(b).map_err(|_| {
                    stopped = true;
                    FormatError::new("the output could not be written").in_file(&name)
                })
            };
            match p {
                Part::Bytes(b) => send(b),
                Part::Slice {
                    input,
                    file,
                    offset,
                    len,
                    crc32,
                } => {
                    let src = inputs.sources[input][file];
                    let mut h = crate::format::crc32::Hasher::new();
                    let mut done = 0u64;
                    while done < len {
                        let n = (len - done).min(DEFAULT_CHUNK as u64) as usize;
                        let mut buf = super::writer::spare_buffer(n);
                        src.read_at(offset + done, &mut buf)
                            .map_err(|e| FormatError::new(e.0))?;
                        h.update(&buf);
                        send(buf)?;
                        done += n as u64;
                    }
                    match crc32 {
                        Some(want) if h.finalize() != want => Err(FormatError::new(format!(
                            "bytes {offset}..{} of {} fail their CRC-32 check (the input is corrupted); nothing was written",
                            offset + len,
                            inputs.ckpts[input].files.get(file).map(String::as_str).unwrap_or("the input")
                        ))),
                        _ => Ok(()),
                    }
                }
            }
        });
        drop(to_writer);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the writing thread failed")));
        match (exported, written) {
            (Ok(r), Ok(())) => Ok(r),
            (Ok(_), Err(e)) => Err(io(e)),
            (Err(_), Err(e)) if stopped => Err(io(e)),
            (Err(x), _) => Err(x),
        }
    });
    match res {
        Ok(r) => {
            std::fs::rename(&tmp, path).map_err(io)?;
            Ok(r)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
