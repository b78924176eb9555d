//! The Merge tab's worker side: open FIRST and the other inputs (index only), preview how far
//! each merged tensor moves away from FIRST, and export the merge as one file or as shards —
//! with the CLI's merge code ([`crate::export::merge`]), over any [`Source`] (tested natively;
//! the worker feeds it browser `File`s).
//!
//! Contract:
//! - Requests are [`MergeRequest`]s (`merge_open` / `merge_preview` / `merge_export`), sent as
//!   [`super::protocol::Request::Merge`]; answers are [`Response::Merge`] carrying a
//!   [`MergeReply`] with the request's id.
//! - The page runs merges on a worker of their own and cancels one by terminating it (work
//!   inside a tensor stops too); it sends `merge_open` before every preview or export, so a
//!   fresh worker has the inputs (opening reads indexes only).
//! - `merge_open {first, others}`: FIRST's files open as one checkpoint (a sharded set: its
//!   `*.index.json` and shards); among `others`, every `*.index.json` takes the shards it names
//!   and every other file opens alone ([`super::trend::open_groups`]). Answered by `opened`.
//! - `merge_preview {spec}` and `merge_export {spec, format, shard_size}`: a bad `--keys`
//!   pattern, bad parameters, different key sets or shapes are answered by `refused` (the
//!   plan's message; nothing is computed or written). Otherwise `progress` (bytes) at most every
//!   [`PROGRESS_BYTES`], then `preview` (one relative change per merged tensor, FIRST's order)
//!   or the output files. An export streams [`Part`]s per output file; the wasm side makes each
//!   file a `Blob` of `File.slice`s (FIRST's untouched tensors) and new bytes folded every
//!   [`crate::worker::export::FOLD_BYTES`], so wasm memory holds a few chunks per input, never a tensor.
//! - `merge_export` with a `target` (a File System Access file handle, or a folder for shards)
//!   writes to disk instead: the parts are listed first with the merged tensors left as slices
//!   ([`as_slices`]; a torch output's CRC-32s of merged records left for later,
//!   [`crate::export::crc_later`]), `saving {names}` answers, then each file is written piece by
//!   piece, every write awaited ([`crate::worker::disk`]), every merged byte computed once; a failure
//!   aborts the writable, removes the files of this export and names the file; `exported` says
//!   `on_disk`. The session lends itself to that task and comes back after it.

use super::protocol::{BlobHandle, RequestId, Response};
use super::session::NamedSource;
use crate::edit::tree::ENode;
use crate::export::crc_later::CrcLater;
use crate::export::merge::{key_filter, plan, MergePlan, MergeSource, Method};
use crate::export::plan::{export, OutFormat, Part};
use crate::export::shards::{index_json, plan_shards, shard_names, shard_tree};
use crate::export::writer::Inputs;
use crate::format::{Checkpoint, FormatError, Source};
use serde::{Deserialize, Serialize};

/// At most one `progress` answer per this many bytes.
pub const PROGRESS_BYTES: u64 = 16 << 20;
/// Merged bytes computed per piece when a writer copies a merged tensor whole.
const MERGED_PIECE: u64 = 4 << 20;

/// What to merge: the method with its parameters and the `--keys` pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeSpec {
    pub method: Method,
    /// Merge only tensors whose name matches (as `merge --keys`); empty or none: all.
    pub keys: Option<String>,
}

/// A page → worker message of the Merge tab. `F` is the file handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeRequest<F> {
    MergeOpen {
        id: RequestId,
        first: Vec<F>,
        others: Vec<F>,
    },
    MergePreview {
        id: RequestId,
        spec: MergeSpec,
    },
    MergeExport {
        id: RequestId,
        spec: MergeSpec,
        format: OutFormat,
        /// Shards of at most this many bytes (and an index), or one file.
        shard_size: Option<u64>,
        /// Stream the output to disk here (a file handle, or a directory for shards) instead
        /// of answering Blobs.
        #[serde(default)]
        target: Option<DiskTarget>,
    },
}

impl<F> MergeRequest<F> {
    /// The request id.
    pub fn id(&self) -> RequestId {
        match self {
            MergeRequest::MergeOpen { id, .. }
            | MergeRequest::MergePreview { id, .. }
            | MergeRequest::MergeExport { id, .. } => *id,
        }
    }
}

/// A File System Access handle a request carries (natively: nothing); on the wire, its
/// position among the message's JS values ([`super::protocol::handle`]).
#[cfg(target_arch = "wasm32")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskTarget(#[serde(with = "super::protocol::handle")] pub wasm_bindgen::JsValue);

/// A File System Access handle carried through serde untouched (natively: nothing).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskTarget;

/// One input as opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeInput {
    pub name: String,
    pub tensors: u64,
    pub bytes: u64,
}

/// One merged tensor's move away from FIRST: `‖merged − first‖ / ‖first‖` (`None`: FIRST is 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub name: String,
    pub rel_change: Option<f64>,
}

/// One output file of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeFile {
    pub name: String,
    pub size: u64,
    pub blob: BlobHandle,
}

/// A worker → page answer of the Merge tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeReply {
    Opened {
        id: RequestId,
        /// FIRST, then the others that opened.
        inputs: Vec<MergeInput>,
        errors: Vec<String>,
    },
    Progress {
        id: RequestId,
        done: u64,
        total: u64,
    },
    /// An export to disk starts writing these files (removed again on Cancel).
    Saving {
        id: RequestId,
        names: Vec<String>,
    },
    /// The merge was refused before anything was computed (the plan's message).
    Refused {
        id: RequestId,
        error: String,
    },
    Preview {
        id: RequestId,
        merged: u64,
        copied: u64,
        changes: Vec<Change>,
    },
    Exported {
        id: RequestId,
        files: Vec<MergeFile>,
        merged: u64,
        copied: u64,
        /// (tensor, finite values that became ±inf in FIRST's dtype).
        overflow: Vec<(String, u64)>,
        dropped: Vec<String>,
        millis: f64,
        wasm_memory: u64,
        /// Written to disk (the files carry no Blob).
        #[serde(default)]
        on_disk: bool,
    },
    Error {
        id: RequestId,
        error: String,
    },
}

impl MergeReply {
    pub fn id(&self) -> RequestId {
        match self {
            MergeReply::Opened { id, .. }
            | MergeReply::Progress { id, .. }
            | MergeReply::Saving { id, .. }
            | MergeReply::Refused { id, .. }
            | MergeReply::Preview { id, .. }
            | MergeReply::Exported { id, .. }
            | MergeReply::Error { id, .. } => *id,
        }
    }
}

/// One opened input: name, index, one source per [`Checkpoint::files`] entry.
pub struct Input {
    pub name: String,
    pub ckpt: Checkpoint,
    pub sources: Vec<Box<dyn Source>>,
}

/// The inputs of the merge (FIRST first).
#[derive(Default)]
pub struct MergeSession {
    pub inputs: Vec<Input>,
}

/// The output files an export produced: names, and the writers' report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    pub names: Vec<String>,
    pub merged: u64,
    pub copied: u64,
    pub overflow: Vec<(String, u64)>,
    pub dropped: Vec<String>,
    /// Per output file, the CRC-32s its writer left for later ([`Inputs::deferred`]).
    pub crc_later: Vec<Vec<CrcLater>>,
}

/// Why an export wrote nothing usable.
#[derive(Debug)]
pub enum ExportError {
    /// Refused before anything was written (the plan's message).
    Refused(String),
    /// Failed while writing.
    Failed(FormatError),
}

/// `resnet.pth` → `resnet.merged.pth` / `resnet.merged.safetensors`.
pub fn merged_name(first: &str, format: OutFormat) -> String {
    let base = super::session::base_name(first);
    let base = base.strip_suffix(".index.json").unwrap_or(base);
    let stem = match base.rfind('.') {
        Some(i) if i > 0 => &base[..i],
        _ => base,
    };
    match format {
        OutFormat::Safetensors => format!("{stem}.merged.safetensors"),
        OutFormat::Torch => format!("{stem}.merged.pth"),
    }
}

fn input_of(name: String, ckpt: Checkpoint, sources: Vec<Box<dyn Source>>) -> Input {
    Input {
        name,
        ckpt,
        sources,
    }
}

impl MergeSession {
    pub fn new() -> Self {
        Self::default()
    }

    /// Open FIRST and the others (see the module doc), answering `opened`.
    pub fn open(
        &mut self,
        id: RequestId,
        first: Vec<NamedSource>,
        others: Vec<NamedSource>,
    ) -> MergeReply {
        self.inputs.clear();
        let (mut firsts, mut errors) = super::trend::open_groups(first);
        if firsts.len() > 1 {
            errors.push("the open file is more than one checkpoint".into());
        }
        let (more, more_errors) = super::trend::open_groups(others);
        errors.extend(more_errors);
        if firsts.len() == 1 {
            let (n, c, s) = firsts.remove(0);
            self.inputs.push(input_of(n, c, s));
            self.inputs
                .extend(more.into_iter().map(|(n, c, s)| input_of(n, c, s)));
        }
        MergeReply::Opened {
            id,
            inputs: self
                .inputs
                .iter()
                .map(|i| MergeInput {
                    name: i.name.clone(),
                    tensors: i.ckpt.tensors.len() as u64,
                    bytes: i.ckpt.tensors.iter().map(|t| t.nbytes()).sum(),
                })
                .collect(),
            errors,
        }
    }

    fn plan(&self, spec: &MergeSpec) -> Result<MergePlan, String> {
        if self.inputs.len() < 2 {
            return Err("add at least one checkpoint to merge with the open file".into());
        }
        let selected = key_filter(spec.keys.as_deref())?;
        let ckpts: Vec<&Checkpoint> = self.inputs.iter().map(|i| &i.ckpt).collect();
        let files: Vec<String> = self.inputs.iter().map(|i| i.name.clone()).collect();
        plan(&ckpts, &files, &spec.method, &selected)
    }

    /// The merged tensors of plan `p` as a [`Source`].
    fn source<'s>(&'s self, p: &'s MergePlan, spec: &MergeSpec) -> MergeSource<'s> {
        let ckpts: Vec<&Checkpoint> = self.inputs.iter().map(|i| &i.ckpt).collect();
        let sources: Vec<Vec<&dyn Source>> = self
            .inputs
            .iter()
            .map(|i| i.sources.iter().map(|s| &**s).collect())
            .collect();
        MergeSource::new(p, spec.method.clone(), ckpts, sources)
    }

    fn with_source<T>(
        &self,
        p: &MergePlan,
        spec: &MergeSpec,
        f: impl FnOnce(&MergeSource, &Inputs) -> T,
    ) -> T {
        let msrc = self.source(p, spec);
        f(&msrc, &msrc.inputs())
    }

    /// Relative change of every merged tensor, answering `progress`es then `preview` (or
    /// `refused` / `error`).
    pub fn preview(&self, id: RequestId, spec: &MergeSpec, reply: &mut dyn FnMut(Response)) {
        let p = match self.plan(spec) {
            Ok(p) => p,
            Err(error) => return reply(Response::Merge(MergeReply::Refused { id, error })),
        };
        let mut last = 0u64;
        let r = self.with_source(&p, spec, |msrc, _| {
            msrc.rel_changes(&mut |done, total| {
                if done == 0 || done >= last + PROGRESS_BYTES || done == total {
                    last = done;
                    reply(Response::Merge(MergeReply::Progress { id, done, total }));
                }
                true
            })
        });
        reply(Response::Merge(match r {
            Ok(Some(v)) => MergeReply::Preview {
                id,
                merged: p.merged.len() as u64,
                copied: p.copied as u64,
                changes: p
                    .merged
                    .iter()
                    .zip(v)
                    .map(|(m, rel_change)| Change {
                        name: m.name.clone(),
                        rel_change,
                    })
                    .collect(),
            },
            Ok(None) => MergeReply::Error {
                id,
                error: "cancelled".into(),
            },
            Err(e) => MergeReply::Error {
                id,
                error: e.to_string(),
            },
        }));
    }

    /// Write the merge as one file or as shards: `sink(file, part)` gets every part of output
    /// file `file` (files in order; a sharded output ends with its index) and `progress(done,
    /// total)` the bytes so far.
    pub fn export(
        &self,
        spec: &MergeSpec,
        format: OutFormat,
        shard_size: Option<u64>,
        progress: &mut dyn FnMut(u64, u64),
        sink: &mut dyn FnMut(usize, Part) -> Result<(), FormatError>,
    ) -> Result<Written, ExportError> {
        let p = self.plan(spec).map_err(ExportError::Refused)?;
        self.with_source(&p, spec, |msrc, inputs| {
            let total = super::edit::output_bytes(&p.tree, &inputs.ckpts);
            let mut done = 0u64;
            let mut part = |file: usize, part: Part| {
                // the merged tensors are computed, not in a file: their bytes are new bytes
                if let Some((mut at, end)) = merged_range(&p, &part) {
                    while at < end {
                        let buf = merged_piece(msrc, at, end)?;
                        at += buf.len() as u64;
                        done += buf.len() as u64;
                        progress(done.min(total), total);
                        sink(file, Part::Bytes(buf))?;
                    }
                    return Ok(());
                }
                done += part_len(&part);
                progress(done.min(total), total);
                sink(file, part)
            };
            self.export_parts(&p, inputs, format, shard_size, &mut part)
                .map_err(ExportError::Failed)
        })
    }

    /// The parts of every output file of plan `p`, the merged tensors left as slices of input
    /// `p.virtual_input` (see [`merged_range`]); a sharded output ends with its index.
    pub fn export_parts(
        &self,
        p: &MergePlan,
        inputs: &Inputs,
        format: OutFormat,
        shard_size: Option<u64>,
        sink: &mut dyn FnMut(usize, Part) -> Result<(), FormatError>,
    ) -> Result<Written, FormatError> {
        let mut w = Written {
            merged: p.merged.len() as u64,
            copied: p.copied as u64,
            ..Default::default()
        };
        let Some(max) = shard_size else {
            let name = merged_name(&self.inputs[0].name, format);
            let r = export(&p.tree, inputs, format, &name, &mut |x| sink(0, x))?;
            w.names.push(name);
            w.overflow = r.overflow;
            w.dropped = r.dropped;
            w.crc_later = vec![r.crc_later];
            return Ok(w);
        };
        let sp = plan_shards(&p.tree, inputs, format, max);
        let (names, index) = shard_names(format, sp.shards.len());
        for (k, (shard, name)) in sp.shards.iter().zip(&names).enumerate() {
            let tree = shard_tree(&p.tree, shard);
            let r = export(&tree, inputs, format, name, &mut |x| sink(k, x))?;
            w.overflow.extend(r.overflow);
            w.crc_later.push(r.crc_later);
        }
        w.names = names.clone();
        if let Some(ix) = index {
            sink(
                names.len(),
                Part::Bytes(index_json(&sp, &names).into_bytes()),
            )?;
            w.names.push(ix);
        }
        w.dropped = sp.dropped;
        Ok(w)
    }
}

/// Make every merged tensor under `n` (input `vi`) a plain copy of the merged "file", so the
/// writers pass it on as [`Part::Slice`]s (to compute later, piece by piece) rather than new
/// bytes: the plan's no-op cast makes a torch writer stream merged bytes while it hashes them,
/// which an export that first lists its parts would have to hold. With [`Inputs::deferred`] set
/// to `vi`, a torch writer leaves those records' CRC-32s for the writing to fill in.
pub fn as_slices(n: &mut ENode, vi: usize) {
    match n {
        ENode::Tensor(t) if t.input == vi => t.cast = None,
        ENode::Dict { items, .. } => items.iter_mut().for_each(|(_, v)| as_slices(v, vi)),
        ENode::List(items) | ENode::Tuple(items) => items.iter_mut().for_each(|v| as_slices(v, vi)),
        _ => {}
    }
}

/// The bytes a part adds to its file.
pub fn part_len(part: &Part) -> u64 {
    match part {
        Part::Slice { len, .. } => *len,
        Part::Bytes(b) => b.len() as u64,
    }
}

/// `Some((start, end))` when `part` is a slice of the merged tensors (computed, in no file).
pub fn merged_range(p: &MergePlan, part: &Part) -> Option<(u64, u64)> {
    match part {
        Part::Slice {
            input, offset, len, ..
        } if *input == p.virtual_input => Some((*offset, offset + len)),
        _ => None,
    }
}

/// The merged bytes from `at`, at most [`MERGED_PIECE`] of them and none past `end`.
pub fn merged_piece(msrc: &MergeSource, at: u64, end: u64) -> Result<Vec<u8>, FormatError> {
    let mut buf = vec![0u8; (end - at).min(MERGED_PIECE) as usize];
    msrc.read_at(at, &mut buf)
        .map_err(|e| FormatError::new(e.0))?;
    Ok(buf)
}

#[cfg(target_arch = "wasm32")]
mod js {
    //! The browser side: `File`s in, `Blob`s out.
    use super::*;
    use crate::export::crc_later::CrcFill;
    use crate::worker::disk::{self, FsHandle, Writable};
    use crate::worker::export::BlobParts;
    use crate::worker::protocol::JsFile;
    use std::cell::RefCell;
    use wasm_bindgen::{JsCast, JsValue};
    use web_sys::Blob;

    thread_local! {
        static SESSION: RefCell<MergeSession> = RefCell::new(MergeSession::new());
        /// Per input, its blobs in [`Checkpoint::files`] order (for `Part::Slice`).
        static BLOBS: RefCell<Vec<Vec<Blob>>> = const { RefCell::new(Vec::new()) };
    }

    type Named = (Vec<NamedSource>, Vec<(String, Blob)>);

    fn named(files: Vec<JsFile>) -> Result<Named, String> {
        let mut named = vec![];
        let mut blobs = vec![];
        for JsFile(file) in files {
            let name = file.name();
            blobs.push((name.clone(), Blob::from(file.clone())));
            let src = crate::worker::blob::streaming(file.into())
                .map_err(|e| format!("{name}: {}", e.0))?;
            named.push(NamedSource {
                name,
                source: Box::new(src),
            });
        }
        Ok((named, blobs))
    }

    /// The `exported` answer for files `files` of `w`, started at `start` (ms).
    fn exported(
        id: RequestId,
        w: Written,
        files: Vec<MergeFile>,
        start: f64,
        on_disk: bool,
    ) -> MergeReply {
        MergeReply::Exported {
            id,
            files,
            merged: w.merged,
            copied: w.copied,
            overflow: w.overflow,
            dropped: w.dropped,
            millis: js_sys::Date::now() - start,
            wasm_memory: crate::worker::export::wasm_memory(),
            on_disk,
        }
    }

    /// Post an answer to the page from a task (outside a request's `reply`).
    fn post(r: Response) {
        let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
        let v = crate::worker::service::encode(&r);
        let _ = scope.post_message_with_transfer(&v, &crate::worker::service::transfer_list(&v));
    }

    /// One output file of a [`DiskJob`]: its name, its parts, and its CRC-32s to fill in.
    struct OutFile<'a> {
        name: &'a str,
        parts: &'a [Part],
        fill: CrcFill,
    }

    /// An export streamed to disk: first every part is planned (slices and small new bytes,
    /// nothing merged is computed: a torch output's CRC-32s of merged records are left for
    /// later, [`CrcFill`]), then each output file is opened and fed one piece at a time, each
    /// write awaited, the merged bytes computed once, as they are written — wasm memory holds
    /// one piece of merged bytes.
    struct DiskJob<'a> {
        session: &'a MergeSession,
        blobs: &'a [Vec<Blob>],
        id: RequestId,
    }

    impl DiskJob<'_> {
        fn progress(&self, done: u64, total: u64) {
            let id = self.id;
            post(Response::Merge(MergeReply::Progress { id, done, total }));
        }

        async fn run(
            &self,
            spec: &MergeSpec,
            format: OutFormat,
            shard_size: Option<u64>,
            target: FsHandle,
        ) -> MergeReply {
            let (id, start) = (self.id, js_sys::Date::now());
            let mut last = 0u64;
            let mut p = match self.session.plan(spec) {
                Ok(p) => p,
                Err(error) => return MergeReply::Refused { id, error },
            };
            as_slices(&mut p.tree.root, p.virtual_input);
            let msrc = self.session.source(&p, spec);
            let mut inputs = msrc.inputs();
            inputs.deferred = Some(p.virtual_input);
            let total = super::super::edit::output_bytes(&p.tree, &inputs.ckpts);
            let mut files: Vec<Vec<Part>> = vec![];
            let planned =
                self.session
                    .export_parts(&p, &inputs, format, shard_size, &mut |k, part| {
                        files.resize_with(files.len().max(k + 1), Vec::new);
                        files[k].push(part);
                        Ok(())
                    });
            let w = match planned {
                Ok(w) => w,
                Err(e) => {
                    return MergeReply::Error {
                        id,
                        error: e.to_string(),
                    }
                }
            };
            post(Response::Merge(MergeReply::Saving {
                id,
                names: w.names.clone(),
            }));
            let mut out = vec![];
            let mut done = 0;
            for (k, name) in w.names.iter().enumerate() {
                let parts = files.get(k).map(|f| &f[..]).unwrap_or(&[]);
                let mut step = |n| {
                    done += n;
                    if done >= last + PROGRESS_BYTES {
                        last = done;
                        self.progress(done.min(total), total);
                    }
                };
                let later = w.crc_later.get(k).cloned().unwrap_or_default();
                let file = OutFile {
                    name,
                    parts,
                    fill: CrcFill::new(later),
                };
                let r = self.write_file(&target, file, &p, &msrc, &mut step).await;
                match r {
                    Ok(size) => out.push(MergeFile {
                        name: name.clone(),
                        size,
                        blob: BlobHandle(JsValue::NULL),
                    }),
                    Err(e) => {
                        // nothing half-written stays: the files written before go too
                        for n in &w.names[..k] {
                            disk::discard(&target, n).await;
                        }
                        return MergeReply::Error {
                            id,
                            error: format!("{name}: {e}"),
                        };
                    }
                }
            }
            self.progress(total, total);
            exported(id, w, out, start, true)
        }

        /// Write one output file from its parts; its size, or why not (the writable aborted, the
        /// file removed).
        async fn write_file(
            &self,
            target: &FsHandle,
            file: OutFile<'_>,
            p: &MergePlan,
            msrc: &MergeSource<'_>,
            progress: &mut dyn FnMut(u64),
        ) -> Result<u64, String> {
            let js = |e: JsValue| crate::worker::blob::js_error_text(&e);
            let name = file.name;
            let w = disk::open(target, name).await.map_err(js)?;
            match self.feed(&w, file, p, msrc, progress).await {
                Ok(size) => {
                    disk::close(&w).await.map_err(js)?;
                    Ok(size)
                }
                Err(e) => {
                    disk::abort(&w).await;
                    disk::discard(target, name).await;
                    Err(e)
                }
            }
        }

        async fn feed(
            &self,
            w: &Writable,
            file: OutFile<'_>,
            p: &MergePlan,
            msrc: &MergeSource<'_>,
            progress: &mut dyn FnMut(u64),
        ) -> Result<u64, String> {
            let js = |e: JsValue| crate::worker::blob::js_error_text(&e);
            let OutFile {
                parts, mut fill, ..
            } = file;
            let mut size = 0u64;
            for part in parts {
                if let Some((mut at, end)) = merged_range(p, part) {
                    let start = at;
                    while at < end {
                        let buf = merged_piece(msrc, at, end).map_err(|e| e.to_string())?;
                        fill.data(size + (at - start), &buf)
                            .map_err(|e| e.to_string())?;
                        disk::write_bytes(w, &buf).await.map_err(js)?;
                        at += buf.len() as u64;
                        progress(buf.len() as u64);
                    }
                } else {
                    match part {
                        Part::Bytes(b) if fill.touches(size, b.len() as u64) => {
                            let mut b = b.clone();
                            fill.fill(size, &mut b).map_err(|e| e.to_string())?;
                            disk::write_bytes(w, &b).await.map_err(js)?
                        }
                        Part::Bytes(b) => disk::write_bytes(w, b).await.map_err(js)?,
                        slice => {
                            let s = crate::worker::export::slice_blob(slice, self.blobs)?;
                            disk::write_blob(w, &s).await.map_err(js)?;
                        }
                    }
                    progress(part_len(part));
                }
                size += part_len(part);
            }
            Ok(size)
        }
    }

    /// Handle a Merge-tab request in the worker.
    pub fn handle_js(req: MergeRequest<JsFile>, reply: &mut dyn FnMut(Response)) {
        SESSION.with(|s| {
            let mut s = s.borrow_mut();
            match req {
                MergeRequest::MergeOpen { id, first, others } => {
                    let opened = named(first).and_then(|a| named(others).map(|b| (a, b)));
                    let ((first, mut blobs), (others, more)) = match opened {
                        Ok(x) => x,
                        Err(error) => {
                            return reply(Response::Merge(MergeReply::Error { id, error }))
                        }
                    };
                    blobs.extend(more);
                    let r = s.open(id, first, others);
                    // each input's blobs in the order of its checkpoint's files
                    let base = crate::worker::session::base_name;
                    let ordered = s
                        .inputs
                        .iter()
                        .map(|i| {
                            i.ckpt
                                .files
                                .iter()
                                .filter_map(|f| {
                                    blobs
                                        .iter()
                                        .find(|(n, _)| base(n) == base(f))
                                        .map(|(_, b)| b.clone())
                                })
                                .collect()
                        })
                        .collect();
                    BLOBS.with(|b| *b.borrow_mut() = ordered);
                    reply(Response::Merge(r));
                }
                MergeRequest::MergePreview { id, spec } => s.preview(id, &spec, reply),
                MergeRequest::MergeExport {
                    id,
                    spec,
                    format,
                    shard_size,
                    target: Some(DiskTarget(target)),
                } => {
                    // the session moves into the task; it comes back unless a newer one came
                    let session = std::mem::take(&mut *s);
                    let blobs = BLOBS.with(|b| b.borrow().clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        let job = DiskJob {
                            session: &session,
                            blobs: &blobs,
                            id,
                        };
                        let answer = job
                            .run(&spec, format, shard_size, target.unchecked_into())
                            .await;
                        post(Response::Merge(answer));
                        SESSION.with(|s| {
                            if let Ok(mut s) = s.try_borrow_mut() {
                                if s.inputs.is_empty() {
                                    *s = session;
                                }
                            }
                        });
                    });
                }
                MergeRequest::MergeExport {
                    id,
                    spec,
                    format,
                    shard_size,
                    target: None,
                } => {
                    let start = js_sys::Date::now();
                    let mut last = 0u64;
                    let mut progress = |done: u64, total: u64| {
                        if done >= last + PROGRESS_BYTES || done == total {
                            last = done;
                            reply(Response::Merge(MergeReply::Progress { id, done, total }));
                        }
                    };
                    let mut files: Vec<BlobParts> = vec![];
                    let r = BLOBS.with(|blobs| {
                        let blobs = blobs.borrow();
                        s.export(&spec, format, shard_size, &mut progress, &mut |k, p| {
                            while files.len() <= k {
                                files.push(BlobParts::new());
                            }
                            files[k].push(p, &blobs).map(|_| ())
                        })
                    });
                    let answer = match r {
                        Err(ExportError::Refused(error)) => MergeReply::Refused { id, error },
                        Err(ExportError::Failed(e)) => MergeReply::Error {
                            id,
                            error: e.to_string(),
                        },
                        Ok(w) => {
                            let mut out = vec![];
                            for (name, parts) in w.names.iter().zip(files) {
                                match parts.finish() {
                                    Ok(b) => out.push(MergeFile {
                                        name: name.clone(),
                                        size: b.size() as u64,
                                        blob: BlobHandle(b.into()),
                                    }),
                                    Err(e) => {
                                        return reply(Response::Merge(MergeReply::Error {
                                            id,
                                            error: crate::worker::blob::js_error_text(&e),
                                        }))
                                    }
                                }
                            }
                            exported(id, w, out, start, false)
                        }
                    };
                    reply(Response::Merge(answer));
                }
            }
        })
    }
}

#[cfg(target_arch = "wasm32")]
pub use js::handle_js;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::MemSource;

    /// A safetensors file of F32 tensors (name, values).
    fn st(tensors: &[(&str, &[f32])]) -> Vec<u8> {
        let mut h = String::from("{");
        let mut off = 0;
        for (i, (n, v)) in tensors.iter().enumerate() {
            if i > 0 {
                h.push(',');
            }
            h.push_str(&format!(
                r#""{n}":{{"dtype":"F32","shape":[{}],"data_offsets":[{off},{}]}}"#,
                v.len(),
                off + 4 * v.len()
            ));
            off += 4 * v.len();
        }
        h.push('}');
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(h.as_bytes());
        for (_, v) in tensors {
            out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        }
        out
    }

    fn linear(w: &[f64], keys: Option<&str>) -> MergeSpec {
        MergeSpec {
            method: Method::Linear {
                weights: w.to_vec(),
            },
            keys: keys.map(Into::into),
        }
    }

    /// Materialise an export's parts: slices are read from `files[input]`.
    fn collect(
        s: &MergeSession,
        spec: &MergeSpec,
        format: OutFormat,
        shard: Option<u64>,
        files: &[&[u8]],
    ) -> Result<(Written, Vec<Vec<u8>>), ExportError> {
        let mut out: Vec<Vec<u8>> = vec![];
        let w = s.export(spec, format, shard, &mut |_, _| {}, &mut |k, p| {
            out.resize(out.len().max(k + 1), vec![]);
            match p {
                Part::Bytes(b) => out[k].extend(b),
                Part::Slice {
                    input, offset, len, ..
                } => out[k].extend(&files[input][offset as usize..(offset + len) as usize]),
            }
            Ok(())
        })?;
        Ok((w, out))
    }

    #[test]
    fn previews_and_exports_a_linear_merge() {
        let a = st(&[("w", &[1.0, 2.0, 2.0]), ("b", &[0.0, 0.0])]);
        let b = st(&[("b", &[1.0, 1.0]), ("w", &[3.0, 2.0, 6.0])]);
        let mut s = MergeSession::new();
        let r = s.open(
            1,
            vec![NamedSource::in_memory("a.safetensors", &a)],
            vec![
                NamedSource::in_memory("b.safetensors", &b),
                NamedSource::in_memory("x.pth", [1, 2]),
            ],
        );
        let MergeReply::Opened { inputs, errors, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(inputs.len(), 2);
        assert_eq!(
            (inputs[0].name.as_str(), inputs[0].tensors, inputs[0].bytes),
            ("a.safetensors", 2, 20)
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("x.pth: "), "{errors:?}");

        // w moves by ‖(b − a)/2‖ / ‖a‖ = ‖(1, 0, 2)‖ / 3; FIRST's b is all zero: no ratio
        let mut out = vec![];
        s.preview(2, &linear(&[1.0, 1.0], None), &mut |r| out.push(r));
        let Some(Response::Merge(MergeReply::Preview {
            changes, merged, ..
        })) = out.last()
        else {
            panic!("{out:?}")
        };
        assert_eq!(*merged, 2);
        assert_eq!(changes[0].name, "w");
        assert!((changes[0].rel_change.unwrap() - 5f64.sqrt() / 3.0).abs() < 1e-12);
        assert_eq!(changes[1].rel_change, None);
        assert!(matches!(
            out[0],
            Response::Merge(MergeReply::Progress {
                done: 0,
                total: 20,
                ..
            })
        ));

        // one file: a's order, values (a + b) / 2
        let (w, files) = collect(
            &s,
            &linear(&[1.0, 1.0], None),
            OutFormat::Safetensors,
            None,
            &[&a, &b],
        )
        .unwrap();
        assert_eq!(w.names, ["a.merged.safetensors"]);
        let got = crate::format::open(&MemSource(files[0].clone()), "out").unwrap();
        let src = MemSource(files[0].clone());
        let vals = crate::format::data::read_tensor_range(&got, &[&src], 0, 0, 3).unwrap();
        let v: Vec<f32> = vals
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(v, [2.0, 2.0, 4.0]);

        // --keys: only b merged, w is a's bytes
        let mut out = vec![];
        s.preview(3, &linear(&[1.0, 1.0], Some("^b$")), &mut |r| out.push(r));
        let Some(Response::Merge(MergeReply::Preview { merged, copied, .. })) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!((*merged, *copied), (1, 1));
    }

    #[test]
    fn listed_parts_leave_merged_bytes_to_compute_and_give_the_same_file() {
        let a = st(&[("w", &[1.0, 2.0, 2.0]), ("v", &[0.5; 4])]);
        let b = st(&[("w", &[3.0, 2.0, 6.0]), ("v", &[1.5; 4])]);
        let mut s = MergeSession::new();
        s.open(
            1,
            vec![NamedSource::in_memory("a.safetensors", &a)],
            vec![NamedSource::in_memory("b.safetensors", &b)],
        );
        let spec = linear(&[1.0, 3.0], None);
        for format in [OutFormat::Torch, OutFormat::Safetensors] {
            let (_, want) = collect(&s, &spec, format, None, &[&a, &b]).unwrap();
            let mut p = s.plan(&spec).unwrap();
            as_slices(&mut p.tree.root, p.virtual_input);
            let computed = std::cell::Cell::new(0u64);
            let m = s.source(&p, &spec);
            m.on_progress(Box::new(|n| computed.set(n)));
            let mut inputs = m.inputs();
            inputs.deferred = Some(p.virtual_input);
            let mut parts = vec![];
            let w = s
                .export_parts(&p, &inputs, format, None, &mut |k, x| {
                    assert_eq!(k, 0);
                    parts.push(x);
                    Ok(())
                })
                .unwrap();
            // listing computed nothing; a torch output left both merged records' CRC-32s
            assert_eq!(computed.get(), 0, "{format:?}");
            let later = w.crc_later[0].clone();
            let records = if format == OutFormat::Torch { 2 } else { 0 };
            assert_eq!(later.len(), records, "{format:?}");
            let mut fill = crate::export::crc_later::CrcFill::new(later);
            // every merged byte is left to compute (28 bytes of merged tensors)
            let sliced: u64 = parts
                .iter()
                .filter_map(|x| merged_range(&p, x))
                .map(|(a, b)| b - a)
                .sum();
            assert_eq!(sliced, 28, "{format:?}");
            let mut got = vec![];
            for x in &parts {
                match (merged_range(&p, x), x) {
                    (Some((mut at, end)), _) => {
                        while at < end {
                            let piece = merged_piece(&m, at, end).unwrap();
                            at += piece.len() as u64;
                            fill.data(got.len() as u64, &piece).unwrap();
                            got.extend(piece);
                        }
                    }
                    (None, Part::Bytes(v)) => {
                        let mut v = v.clone();
                        fill.fill(got.len() as u64, &mut v).unwrap();
                        got.extend(v)
                    }
                    (
                        None,
                        Part::Slice {
                            input, offset, len, ..
                        },
                    ) => {
                        let f: &[u8] = [&a[..], &b[..]][*input];
                        got.extend(&f[*offset as usize..(offset + len) as usize])
                    }
                }
            }
            assert!(
                got == want[0],
                "{format:?}: the listed parts make another file"
            );
            assert_eq!(computed.get(), 28, "{format:?}: merged bytes computed once");
        }
    }

    #[test]
    fn refusals_write_nothing_and_shards_get_an_index() {
        let a = st(&[("w", &[1.0, 2.0]), ("v", &[1.0; 4])]);
        let b = st(&[("w", &[1.0, 2.0, 3.0]), ("v", &[1.0; 4])]);
        let mut s = MergeSession::new();
        s.open(
            1,
            vec![NamedSource::in_memory("a.safetensors", &a)],
            vec![NamedSource::in_memory("b.safetensors", &b)],
        );
        let mut out = vec![];
        s.preview(2, &linear(&[1.0, 1.0], None), &mut |r| out.push(r));
        let [Response::Merge(MergeReply::Refused { error, .. })] = &out[..] else {
            panic!("{out:?}")
        };
        assert!(
            error.contains("differ in shape") && error.contains('w'),
            "{error}"
        );
        let refusal = |spec: MergeSpec| match collect(&s, &spec, OutFormat::Torch, None, &[&a, &b])
        {
            Err(ExportError::Refused(m)) => m,
            other => panic!("{other:?}"),
        };
        let m = refusal(linear(&[1.0, 1.0], None));
        assert!(m.starts_with("refused (nothing written)"), "{m}");
        let m = refusal(linear(&[1.0, 1.0], Some("(")));
        assert!(m.starts_with("--keys: bad pattern"), "{m}");
        let m = refusal(linear(&[1.0], Some("^v$")));
        assert!(m.contains("1 weights for 2 inputs"), "{m}");

        // only v merged, shards of 16 bytes: v alone, w alone, and the index
        let (w, files) = collect(
            &s,
            &linear(&[1.0, 3.0], Some("^v$")),
            OutFormat::Safetensors,
            Some(16),
            &[&a, &b],
        )
        .unwrap();
        assert_eq!(
            w.names,
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json"
            ]
        );
        assert_eq!(files.len(), 3);
        let ix = String::from_utf8(files[2].clone()).unwrap();
        assert!(ix.contains("\"total_size\": 24"), "{ix}");
    }
}
