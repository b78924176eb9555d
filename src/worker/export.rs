//! The worker's edit, export and compare requests (wasm32 side of [`super::edit`]).
//!
//! Contract:
//! - The blobs of the opened file (input 0) and of every B file (inputs 1..) are kept here, so
//!   an export can turn [`Part::Slice`] into `blob.slice(offset, offset + len)` (f64 methods:
//!   no 2 GiB overflow) — a reference to the file on disk, no bytes read — and [`Part::Bytes`]
//!   into a `Uint8Array` copied out of wasm memory at once. New bytes are folded into an
//!   intermediate `Blob` every [`FOLD_BYTES`], so neither wasm nor the JS heap holds more than
//!   a few chunks of a streamed cast.
//! - Slices are not read, so their zip CRC-32 is not re-verified in the browser (the native
//!   writer checks it); the CRC written is the input's own.
//! - Exports and diffs post [`Response::ExportProgress`] / [`Response::DiffProgress`] at most
//!   every 100 ms once they have run for 200 ms.

use super::edit::{output_bytes, Editor};
use super::protocol::{
    BlobHandle, ErrorKind, ErrorReply, ExportReply, JournalReply, JsFile, OpenedB, Progress,
    Request, Response,
};
use super::session::{NamedSource, Session};
use crate::export::plan::{export, OutFormat, Part};
use crate::export::writer::Inputs;
use crate::format::{Checkpoint, FormatError, Source};
use js_sys::{Array, Uint8Array};
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::Blob;

/// New bytes gathered before they are folded into one Blob.
pub const FOLD_BYTES: usize = 16 << 20;

thread_local! {
    static EDITOR: RefCell<Editor> = RefCell::new(Editor::new());
    /// Blobs of input 0 (the opened file's files) and of each B file.
    static BLOBS: RefCell<Vec<Vec<Blob>>> = const { RefCell::new(Vec::new()) };
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// Bytes of this worker's wasm memory.
pub(crate) fn wasm_memory() -> u64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .unchecked_into::<js_sys::ArrayBuffer>()
                .byte_length() as u64
        })
        .unwrap_or(0)
}

/// After `open`: a fresh journal over the opened checkpoint (or none when it failed).
pub fn after_open(session: &Session, blobs: Vec<Blob>) {
    EDITOR.with(|e| {
        let mut e = e.borrow_mut();
        match session.opened() {
            Some(o) => e.reset(&o.checkpoint),
            None => e.clear(),
        }
    });
    BLOBS.with(|b| *b.borrow_mut() = vec![blobs]);
}

/// Throttled progress: nothing for 200 ms, then at most every 100 ms.
struct Ticker {
    start: f64,
    last: f64,
}

impl Ticker {
    fn new() -> Self {
        let t = now();
        Ticker { start: t, last: t }
    }
    fn due(&mut self) -> bool {
        let t = now();
        if t - self.start >= 200.0 && t - self.last >= 100.0 {
            self.last = t;
            true
        } else {
            false
        }
    }
}

/// Handle an edit / export / compare request.
pub fn handle(session: &Session, req: Request<JsFile>, reply: &mut dyn FnMut(Response)) {
    let Some(opened) = session.opened() else {
        reply(Response::Error(ErrorReply::no_file(req.id())));
        return;
    };
    let a = &opened.checkpoint;
    let file = opened
        .files
        .first()
        .map(|f| f.name.clone())
        .unwrap_or_default();
    let mut reply = |r: Response| {
        reply(match r {
            Response::Journal(j) => Response::Journal(JournalReply {
                file: file.clone(),
                ..j
            }),
            other => other,
        })
    };
    let reply: &mut dyn FnMut(Response) = &mut reply;
    match req {
        Request::Open { .. }
        | Request::Stats { .. }
        | Request::Values { .. }
        | Request::Heatmap { .. }
        | Request::AllStats { .. }
        | Request::StatsPart { .. }
        | Request::Cancel { .. }
        | Request::Window { .. }
        | Request::StatsReport { .. } => unreachable!("handled by the service and the session"),
        Request::Edit { id, op } => {
            reply(Response::Journal(
                EDITOR.with(|e| e.borrow_mut().apply(id, a, &op)),
            ));
        }
        Request::Preview { id, op } => {
            reply(Response::Preview(
                EDITOR.with(|e| e.borrow().preview(id, a, &op)),
            ));
        }
        Request::Undo { id } => reply(Response::Journal(
            EDITOR.with(|e| e.borrow_mut().undo(id, a)),
        )),
        Request::Redo { id } => reply(Response::Journal(
            EDITOR.with(|e| e.borrow_mut().redo(id, a)),
        )),
        Request::JournalList { id } => {
            reply(Response::Journal(EDITOR.with(|e| e.borrow().list(id, a))))
        }
        Request::OpenB { id, file } => {
            let JsFile(file) = file;
            let name = file.name();
            let blob: Blob = file.clone().into();
            let res = super::blob::cached(file.into())
                .map_err(|e| format!("{name}: {}", e.0))
                .and_then(|src| {
                    EDITOR.with(|e| {
                        e.borrow_mut()
                            .open_b(NamedSource {
                                name: name.clone(),
                                source: Box::new(src),
                            })
                            .map_err(|e| e.to_string())
                    })
                });
            let reply_b = match res {
                Ok(_) => {
                    BLOBS.with(|b| b.borrow_mut().push(vec![blob]));
                    let tensors = EDITOR.with(|e| {
                        e.borrow()
                            .others()
                            .last()
                            .map(|o| o.checkpoint.tensors.len() as u64)
                            .unwrap_or(0)
                    });
                    OpenedB {
                        id,
                        name,
                        tensors,
                        error: None,
                    }
                }
                Err(error) => OpenedB {
                    id,
                    name,
                    tensors: 0,
                    error: Some(error),
                },
            };
            reply(Response::OpenedB(reply_b));
        }
        Request::Diff { id, maps } => {
            let a_src: Vec<&dyn Source> = opened.files.iter().map(|f| &*f.source).collect();
            let mut ticker = Ticker::new();
            let r = EDITOR.with(|e| {
                e.borrow().diff(id, a, &a_src, &maps, &mut |done, total| {
                    if ticker.due() {
                        reply(Response::DiffProgress(Progress { id, done, total }));
                    }
                    true
                })
            });
            reply(Response::Diff(r));
        }
        Request::Ab {
            id,
            key,
            maps,
            bins,
        } => {
            let a_src: Vec<&dyn Source> = opened.files.iter().map(|f| &*f.source).collect();
            let r = EDITOR.with(|e| {
                let e = e.borrow();
                match e.others().last() {
                    Some(b) => {
                        let b_src: Vec<&dyn Source> = b.files.iter().map(|f| &*f.source).collect();
                        super::ab::ab_view(
                            id,
                            (a, &a_src),
                            (&b.checkpoint, &b_src),
                            &key,
                            &maps,
                            bins,
                        )
                    }
                    None => crate::worker::protocol::AbReply {
                        id,
                        error: Some("open a file B first".into()),
                        ..Default::default()
                    },
                }
            });
            reply(Response::Ab(Box::new(r)));
        }
        Request::Export { id, format } => {
            let name = opened
                .files
                .first()
                .map(|f| f.name.clone())
                .unwrap_or_default();
            match run_export(id, format, &name, opened, reply) {
                Ok(r) => reply(Response::Exported(r)),
                Err(e) => reply(Response::Error(ErrorReply::new(
                    Some(id),
                    ErrorKind::File,
                    e,
                ))),
            }
        }
    }
}

fn run_export(
    id: u32,
    fmt: OutFormat,
    input_name: &str,
    opened: &super::session::Opened,
    reply: &mut dyn FnMut(Response),
) -> Result<ExportReply, String> {
    // torch → torch keeps the extension (`.edited.pth`); a change of container renames
    let from_st = opened.checkpoint.format.name().starts_with("safetensors");
    let same = (fmt == OutFormat::Safetensors) == from_st;
    let out_name = fmt.output_name(input_name, !same);
    let start = now();
    let mem_before = wasm_memory();
    EDITOR.with(|e| {
        let e = e.borrow();
        let journal = e.journal().ok_or("no checkpoint is open")?;
        let mut ckpts: Vec<&Checkpoint> = vec![&opened.checkpoint];
        ckpts.extend(e.others().iter().map(|o| &o.checkpoint));
        let mut sources: Vec<Vec<&dyn Source>> =
            vec![opened.files.iter().map(|f| &*f.source).collect()];
        sources.extend(
            e.others()
                .iter()
                .map(|o| o.files.iter().map(|f| &*f.source).collect()),
        );
        let inputs = Inputs { ckpts, sources };
        let total = output_bytes(journal.current(), &inputs.ckpts);
        let mut parts = Array::new();
        let mut unfolded = 0usize;
        let mut done = 0u64;
        let mut ticker = Ticker::new();
        let js = |e: JsValue| FormatError::new(super::blob::js_error_text(&e));
        let report = BLOBS.with(|blobs| {
            let blobs = blobs.borrow();
            export(journal.current(), &inputs, fmt, &out_name, &mut |p| {
                match p {
                    Part::Slice {
                        input,
                        file,
                        offset,
                        len,
                        ..
                    } => {
                        let b = blobs
                            .get(input)
                            .and_then(|f| f.get(file))
                            .ok_or_else(|| FormatError::new("export: an input file is gone"))?;
                        let s = b
                            .slice_with_f64_and_f64(offset as f64, (offset + len) as f64)
                            .map_err(js)?;
                        parts.push(&s);
                        done += len;
                    }
                    Part::Bytes(b) => {
                        parts.push(&Uint8Array::from(&b[..]));
                        unfolded += b.len();
                        done += b.len() as u64;
                        if unfolded >= FOLD_BYTES {
                            let folded = Blob::new_with_u8_array_sequence(&parts).map_err(js)?;
                            parts = Array::of1(&folded);
                            unfolded = 0;
                        }
                    }
                }
                if ticker.due() {
                    reply(Response::ExportProgress(Progress {
                        id,
                        done: done.min(total),
                        total,
                    }));
                }
                Ok(())
            })
        });
        let report = report.map_err(|e| format!("{out_name}: {e}"))?;
        let blob = Blob::new_with_u8_array_sequence(&parts)
            .map_err(|e| format!("{out_name}: {}", super::blob::js_error_text(&e)))?;
        Ok(ExportReply {
            id,
            name: out_name.clone(),
            size: blob.size() as u64,
            blob: BlobHandle(blob.into()),
            tensors: report.tensors as u64,
            dropped: report.dropped,
            aliases: report.aliases,
            overflow: report.overflow,
            copied_bytes: report.copied_bytes,
            new_bytes: report.new_bytes,
            millis: now() - start,
            wasm_memory_before: mem_before,
            wasm_memory_after: wasm_memory(),
        })
    })
}
