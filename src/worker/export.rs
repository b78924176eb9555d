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

use super::edit::{output_bytes, Ticker};
use super::protocol::{
    BlobHandle, ErrorKind, ErrorReply, ExportReply, JsFile, OpenedB, Progress, Request, RequestId,
    Response,
};
use super::session::{NamedSource, Session};
use crate::export::plan::{export, OutFormat, Part};
use crate::export::writer::Inputs;
use crate::format::{Checkpoint, FormatError, Source};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::Blob;

/// New bytes gathered before they are folded into one Blob.
pub const FOLD_BYTES: usize = 16 << 20;

/// A `Blob` built from an export's parts: a [`Part::Slice`] becomes `blob.slice(offset,
/// offset + len)` of the input file it names (no bytes read), a [`Part::Bytes`] a `Uint8Array`
/// copied out of wasm memory at once; new bytes are folded into an intermediate `Blob` every
/// [`FOLD_BYTES`] so the JS heap holds little. Used by the export and by the merge.
pub(crate) struct BlobParts {
    parts: Array,
    unfolded: usize,
}

impl BlobParts {
    pub(crate) fn new() -> Self {
        BlobParts {
            parts: Array::new(),
            unfolded: 0,
        }
    }

    /// Appends `p`, whose slices name `blobs[input][file]`; returns the bytes it adds.
    pub(crate) fn push(&mut self, p: Part, blobs: &[Vec<Blob>]) -> Result<u64, FormatError> {
        let js = |e: JsValue| FormatError::new(super::blob::js_error_text(&e));
        match p {
            Part::Slice { len, .. } => {
                let s = slice_blob(&p, blobs).map_err(FormatError::new)?;
                self.parts.push(&s);
                Ok(len)
            }
            Part::Bytes(b) => {
                self.parts.push(&Uint8Array::from(&b[..]));
                self.unfolded += b.len();
                if self.unfolded >= FOLD_BYTES {
                    let folded = Blob::new_with_u8_array_sequence(&self.parts).map_err(js)?;
                    self.parts = Array::of1(&folded);
                    self.unfolded = 0;
                }
                Ok(b.len() as u64)
            }
        }
    }

    /// The `Blob` of every part pushed.
    pub(crate) fn finish(self) -> Result<Blob, JsValue> {
        Blob::new_with_u8_array_sequence(&self.parts)
    }
}

/// The `Blob` of a [`Part::Slice`]: `blob.slice(offset, offset + len)` of `blobs[input][file]`
/// (no bytes read); an error for new bytes.
pub(crate) fn slice_blob(p: &Part, blobs: &[Vec<Blob>]) -> Result<Blob, String> {
    let Part::Slice {
        input,
        file,
        offset,
        len,
        ..
    } = p
    else {
        return Err("not a slice of an input".into());
    };
    let b = blobs
        .get(*input)
        .and_then(|f| f.get(*file))
        .ok_or("an input file is gone")?;
    b.slice_with_f64_and_f64(*offset as f64, (offset + len) as f64)
        .map_err(|e| super::blob::js_error_text(&e))
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

/// Open file B for compare / transplant (`open_b`); the answer names it or says why not.
fn open_b(session: &mut Session, id: RequestId, file: JsFile) -> OpenedB {
    let JsFile(file) = file;
    let name = file.name();
    let blob: Blob = file.clone().into();
    let res = super::blob::cached(file.into())
        .map_err(|e| format!("{name}: {}", e.0))
        .and_then(|src| {
            session
                .editing()
                .1
                .open_b(NamedSource {
                    name: name.clone(),
                    source: Box::new(src),
                })
                .map_err(|e| e.to_string())
        });
    match res {
        Ok(input) => {
            session.blobs.push(vec![blob]);
            let tensors = session
                .editor()
                .others()
                .last()
                .map(|o| o.checkpoint.tensors.len() as u64)
                .unwrap_or(0);
            OpenedB {
                id,
                name,
                tensors,
                error: None,
                input: input as u32,
            }
        }
        Err(error) => OpenedB {
            id,
            name,
            tensors: 0,
            error: Some(error),
            input: 0,
        },
    }
}

/// Make input `input` (an open file B) the chosen B (`choose_b`); its name and tensor count.
fn choose_b(session: &mut Session, id: RequestId, input: u32) -> Response {
    let (_, editor) = session.editing();
    match editor.choose_b(input as usize) {
        Ok(()) => {
            let (name, tensors) = editor
                .b()
                .map(|(_, b)| {
                    let name = b.files.first().map(|f| f.name.clone()).unwrap_or_default();
                    (name, b.checkpoint.tensors.len() as u64)
                })
                .unwrap_or_default();
            Response::OpenedB(OpenedB {
                id,
                name,
                tensors,
                error: None,
                input,
            })
        }
        Err(e) => Response::Error(ErrorReply::new(Some(id), ErrorKind::Request, e)),
    }
}

/// The A/B view of tensor `key` (`ab`): A's and B's histograms and their difference's; `None`
/// when no file is open.
fn ab(
    session: &Session,
    id: RequestId,
    key: &str,
    maps: &[(String, String)],
    bins: u32,
) -> Option<crate::worker::protocol::AbReply> {
    let opened = session.opened()?;
    let a_src: Vec<&dyn Source> = opened.files.iter().map(|f| &*f.source).collect();
    Some(match session.editor().b() {
        Some((_, b)) => {
            let b_src: Vec<&dyn Source> = b.files.iter().map(|f| &*f.source).collect();
            super::ab::ab_view(
                id,
                (&opened.checkpoint, &a_src),
                (&b.checkpoint, &b_src),
                key,
                maps,
                bins,
            )
        }
        None => crate::worker::protocol::AbReply {
            id,
            error: Some("open a file B first".into()),
            ..Default::default()
        },
    })
}

/// Handle an edit / export / compare request (the journal's own requests and `diff` go to
/// [`Session::edit_request`]).
pub fn handle(session: &mut Session, req: Request<JsFile>, reply: &mut dyn FnMut(Response)) {
    if session.edit_request(&req, reply) {
        return;
    }
    if session.opened().is_none() {
        reply(Response::Error(ErrorReply::no_file(req.id())));
        return;
    }
    match req {
        Request::OpenB { id, file } => reply(Response::OpenedB(open_b(session, id, file))),
        Request::ChooseB { id, input } => reply(choose_b(session, id, input)),
        Request::Ab {
            id,
            key,
            maps,
            bins,
        } => match ab(session, id, &key, &maps, bins) {
            Some(r) => reply(Response::Ab(Box::new(r))),
            None => reply(Response::Error(ErrorReply::no_file(id))),
        },
        Request::Export { id, format } => match run_export(id, format, session, reply) {
            Ok(r) => reply(Response::Exported(r)),
            Err(e) => reply(Response::Error(ErrorReply::new(
                Some(id),
                ErrorKind::File,
                e,
            ))),
        },
        other => reply(Response::Error(ErrorReply::new(
            Some(other.id()),
            ErrorKind::Request,
            "worker: this request is not handled here",
        ))),
    }
}

fn run_export(
    id: u32,
    fmt: OutFormat,
    session: &Session,
    reply: &mut dyn FnMut(Response),
) -> Result<ExportReply, String> {
    let opened = session.opened().ok_or("no checkpoint is open")?;
    // a sharded checkpoint is named after its index (`model.safetensors.index.json`)
    let input_name = opened
        .name
        .strip_suffix(".index.json")
        .unwrap_or(&opened.name);
    // torch → torch keeps the extension (`.edited.pth`); a change of container renames
    let from_st = opened.checkpoint.format.name().starts_with("safetensors");
    let same = (fmt == OutFormat::Safetensors) == from_st;
    let out_name = fmt.output_name(input_name, !same);
    let start = now();
    let mem_before = wasm_memory();
    {
        let e = session.editor();
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
        let inputs = Inputs {
            ckpts,
            sources,
            deferred: None,
        };
        let total = output_bytes(journal.current(), &inputs.ckpts);
        let mut parts = BlobParts::new();
        let mut done = 0u64;
        let mut ticker = Ticker::new();
        let report = {
            let blobs = &session.blobs;
            export(journal.current(), &inputs, fmt, &out_name, &mut |p| {
                done += parts.push(p, blobs)?;
                if ticker.due() {
                    reply(Response::ExportProgress(Progress {
                        id,
                        done: done.min(total),
                        total,
                    }));
                }
                Ok(())
            })
        };
        let report = report.map_err(|e| format!("{out_name}: {e}"))?;
        let blob = parts
            .finish()
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
    }
}
