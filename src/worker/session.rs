//! The worker's request handling, over any [`Source`] (so it runs and is tested natively; the
//! worker feeds it browser `File`s wrapped as sources).
//!
//! Contract: [`Session::open`] answers through `reply` exactly as [`super::protocol`] describes:
//! `Detected` then `Summary`/`Error`, or a lone `Error` when the first bytes cannot be read.
//! Detection uses the real rules ([`crate::format::detect`]) on the first
//! [`crate::format::HEAD_LEN`] bytes, never the file name. The session keeps the opened
//! checkpoint and its sources for later requests (tensor statistics, export) and drops the
//! previous ones when a new file is opened.

use super::edit::Editor;
use super::protocol::{
    Detected, ErrorKind, ErrorReply, HeatmapReply, Request, RequestId, Response, SearchPaths,
    SearchReply, StatsReply, StatsRow, Summary, TensorSource, ValuesReply,
};
use crate::display::value_texts;
use crate::format::{self, Checkpoint, FormatError, Source};
use crate::stats::heatmap::{heatmap_of, HeatmapFold};
use crate::stats::{checkpoint_stats, StatsCache, StatsOptions};

/// One file of a request: its name and its bytes.
pub struct NamedSource {
    pub name: String,
    pub source: Box<dyn Source>,
}

impl NamedSource {
    /// `bytes` held in memory under `name` (the tests' files).
    #[cfg(test)]
    pub(crate) fn in_memory(name: &str, bytes: impl AsRef<[u8]>) -> NamedSource {
        NamedSource {
            name: name.into(),
            source: Box::new(crate::format::MemSource(bytes.as_ref().to_vec())),
        }
    }
}

/// The checkpoint currently open in the worker.
pub struct OpenCheckpoint {
    /// The request that opened it.
    pub id: RequestId,
    /// The name it was opened as: the file's, or a sharded checkpoint's index file.
    pub name: String,
    /// One source per [`Checkpoint::files`] entry, same order.
    pub files: Vec<NamedSource>,
    pub checkpoint: Checkpoint,
    /// Statistics computed so far (by tensor and bin count).
    pub cache: StatsCache,
}

impl OpenCheckpoint {
    pub fn sources(&self) -> Vec<&dyn Source> {
        self.files.iter().map(|f| &*f.source).collect()
    }
}

/// A whole-file statistics run in progress, advanced by [`Session::all_stats_step`].
pub struct AllStatsJob {
    pub id: RequestId,
    pub bins: usize,
    /// Tensors still to do, in file order.
    pending: std::collections::VecDeque<usize>,
    done: u64,
    total: u64,
}

/// Inside one large tensor of an `all_stats` run, a `progress` answer is posted every this many
/// bytes read (the worker cannot take messages during a tensor, but its posts reach the page at
/// once, so the bar keeps moving through a multi-GB tensor).
pub const INNER_PROGRESS_BYTES: u64 = 32 << 20;

/// Bytes per `FileReaderSync` read when statistics stream a tensor: each read has a fixed cost,
/// and 16 MiB reads delivered about twice the throughput of 4 MiB ones (BENCHMARKS.md).
pub const READ_CHUNK: usize = 16 << 20;

/// An `all_stats` step hands the engine up to this many tensors at once, as long as they add up
/// to less than [`BATCH_BYTES`] (a large tensor goes alone): one pass over the index per batch
/// instead of per tensor, and small tensors that lie together are read together.
pub const BATCH_TENSORS: usize = 4096;
pub const BATCH_BYTES: u64 = 8 << 20;

/// The worker's state between requests: the opened checkpoint, its edit journal and B files,
/// the running statistics job — all of it here, in one place.
pub struct Session {
    opened: Option<OpenCheckpoint>,
    /// The journal over the opened checkpoint and the B files (compare, transplant); reset by
    /// every successful `open`.
    editor: Editor,
    /// The browser `Blob`s of input 0 (the opened checkpoint's files, in
    /// [`Checkpoint::files`] order) and of each B file: exports slice them.
    #[cfg(target_arch = "wasm32")]
    pub blobs: Vec<Vec<web_sys::Blob>>,
    job: Option<AllStatsJob>,
    /// The paths regex searches go through (the page's tree; replaced by a search that sends
    /// new ones).
    search_paths: SearchPaths,
    /// [`INNER_PROGRESS_BYTES`], [`READ_CHUNK`] and [`BATCH_TENSORS`] (smaller in tests).
    inner_progress_bytes: u64,
    read_chunk: usize,
    batch_tensors: usize,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            opened: None,
            editor: Editor::new(),
            #[cfg(target_arch = "wasm32")]
            blobs: Vec::new(),
            job: None,
            search_paths: SearchPaths::default(),
            inner_progress_bytes: INNER_PROGRESS_BYTES,
            read_chunk: READ_CHUNK,
            batch_tensors: BATCH_TENSORS,
        }
    }
}

/// The last path segment of a file name (`a/b/c.safetensors` → `c.safetensors`).
pub fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// A request that cannot be served as asked (no such tensor, not 2-D, …).
fn err(id: RequestId, message: impl Into<String>) -> Response {
    Response::Error(ErrorReply::new(Some(id), ErrorKind::Request, message))
}

/// Tensor `tensor` of `ckpt`, if it exists and has bytes.
fn readable(ckpt: &Checkpoint, id: RequestId, tensor: u32) -> Result<usize, Box<Response>> {
    let i = tensor as usize;
    let Some(t) = ckpt.tensors.get(i) else {
        return Err(Box::new(err(id, format!("no tensor #{tensor}"))));
    };
    if t.storage.is_none() {
        return Err(Box::new(err(
            id,
            format!("{}: tensor has no data (meta tensor)", t.path_string()),
        )));
    }
    Ok(i)
}

/// The answer when input `input` is not open.
fn missing_input(id: RequestId, input: u32, no_file: bool) -> Response {
    if no_file {
        Response::Error(ErrorReply::no_file(id))
    } else {
        err(id, format!("no file B #{input} is open"))
    }
}

/// Stream tensor `i`'s elements to `sink`, cast to `to` on the way when that is a float cast
/// of its dtype (else as stored); chunks hold whole elements.
fn stream_cast(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    i: usize,
    chunk: usize,
    to: format::DType,
    sink: &mut dyn FnMut(&[u8]) -> format::Result<()>,
) -> format::Result<()> {
    let from = ckpt.tensors[i].dtype;
    let Some(mut caster) = crate::format::element::Caster::new(from, to).filter(|_| from != to)
    else {
        return format::data::read_tensor(ckpt, sources, i, chunk, sink);
    };
    let es = from.size();
    let mut carry: Vec<u8> = vec![];
    let mut out = vec![];
    format::data::read_tensor(ckpt, sources, i, chunk, &mut |b| {
        out.clear();
        carry.extend_from_slice(b);
        let whole = carry.len() / es * es;
        caster.convert(&carry[..whole], &mut out);
        carry.drain(..whole);
        sink(&out)
    })
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// Statistics options of this session for `bins` bins.
    fn stats_options(&self, bins: usize) -> StatsOptions {
        StatsOptions {
            bins,
            chunk: self.read_chunk,
            ..StatsOptions::default()
        }
    }

    /// The checkpoint opened by the last successful `open`, if any.
    pub fn opened(&self) -> Option<&OpenCheckpoint> {
        self.opened.as_ref()
    }

    /// The edit journal and the B files.
    pub fn editor(&self) -> &Editor {
        &self.editor
    }

    /// The opened checkpoint and the editor, for requests that change the editor.
    pub fn editing(&mut self) -> (Option<&OpenCheckpoint>, &mut Editor) {
        (self.opened.as_ref(), &mut self.editor)
    }

    /// A checkpoint was read: it replaces the open one, with a fresh journal and no B files.
    fn set_opened(&mut self, o: OpenCheckpoint) {
        self.editor.reset(&o.checkpoint);
        #[cfg(target_arch = "wasm32")]
        self.blobs.clear();
        self.opened = Some(o);
    }

    /// Handle the journal's requests (`edit`, `preview`, `undo`, `redo`, `journal_list`) and
    /// `diff`; every other request is left to the caller (false).
    pub fn edit_request<F>(&mut self, req: &Request<F>, reply: &mut dyn FnMut(Response)) -> bool {
        let Some(o) = self.opened.as_ref() else {
            if matches!(
                req,
                Request::Edit { .. }
                    | Request::Preview { .. }
                    | Request::Undo { .. }
                    | Request::Redo { .. }
                    | Request::JournalList { .. }
                    | Request::Diff { .. }
            ) {
                reply(Response::Error(ErrorReply::no_file(req.id())));
                return true;
            }
            return false;
        };
        let a = &o.checkpoint;
        let file = o.name.clone();
        let journal = |j: super::protocol::JournalReply| {
            Response::Journal(super::protocol::JournalReply { file, ..j })
        };
        let e = &mut self.editor;
        match req {
            Request::Edit { id, op } => reply(journal(e.apply(*id, a, op))),
            Request::Preview { id, op } => reply(Response::Preview(e.preview(*id, a, op))),
            Request::Undo { id } => reply(journal(e.undo(*id, a))),
            Request::Redo { id } => reply(journal(e.redo(*id, a))),
            Request::JournalList { id } => reply(journal(e.list(*id, a))),
            Request::Diff { id, maps } => {
                let id = *id;
                let mut ticker = super::edit::Ticker::new();
                let r = e.diff(id, a, &o.sources(), maps, &mut |done, total| {
                    if ticker.due() {
                        reply(Response::DiffProgress(super::protocol::Progress {
                            id,
                            done,
                            total,
                        }));
                    }
                    true
                });
                reply(Response::Diff(r));
            }
            _ => return false,
        }
        true
    }

    /// Handle `open {id, files}`.
    pub fn open(
        &mut self,
        id: RequestId,
        mut files: Vec<NamedSource>,
        reply: &mut dyn FnMut(Response),
    ) {
        // The open checkpoint stays until a new one is read: a failing file leaves the page (and
        // this session) on the previous one. A running `all_stats` ends (as cancelled).
        if let Some(job) = self.job.take() {
            reply(Response::AllStatsDone {
                id: job.id,
                cancelled: true,
            });
        }
        // several files with a `*.index.json`: a sharded checkpoint opened from its index;
        // otherwise the first file that is not an index is the checkpoint
        let index_at = files.iter().position(|f| f.name.ends_with(".index.json"));
        if let Some(i) = index_at.filter(|_| files.len() > 1) {
            return self.open_sharded(id, files, i, reply);
        }
        let Some(first) = files.first() else {
            reply(err(id, "no file was given"));
            return;
        };
        let name = first.name.clone();
        let src: &dyn Source = &*first.source;
        let fmt = match format::detect_source(src) {
            Ok(f) => f,
            Err(e) => {
                let err = FormatError::at("first bytes", e.0).in_file(&name);
                reply(Response::Error(ErrorReply::from_format(id, &err)));
                return;
            }
        };
        reply(Response::Detected(Detected {
            id,
            name: name.clone(),
            size: src.len(),
            format: fmt.name().to_string(),
            format_description: fmt.describe().to_string(),
            files: files.len() as u32,
        }));
        if src.is_empty() {
            let e = FormatError::new("empty file (0 bytes): not a checkpoint").in_file(&name);
            reply(Response::Error(ErrorReply::from_format(id, &e)));
            return;
        }
        if matches!(
            fmt,
            format::Format::SafetensorsSharded | format::Format::TorchSharded
        ) {
            // an index alone: say which files to add, in the user's words
            let e = match format::sharded::read_index(src, &name) {
                Ok(ix) => {
                    let n = ix.shards.len();
                    let list: Vec<&str> = ix.shards.iter().take(6).map(|s| s.as_str()).collect();
                    let more = if n > 6 {
                        format!(", … ({} more)", n - 6)
                    } else {
                        String::new()
                    };
                    FormatError::new(format!(
                        "this is the index of a sharded checkpoint: its tensors are in {n} other file{}. \
                         Open or drop the index together with {}: {}{more}",
                        if n == 1 { "" } else { "s" },
                        if n == 1 { "that file" } else { "those files" },
                        list.join(", ")
                    ))
                    .in_file(&name)
                }
                Err(e) => e,
            };
            reply(Response::Error(ErrorReply::from_format(id, &e)));
            return;
        }
        let opened = format::open(src, &name).map(|checkpoint| {
            files.truncate(1);
            (checkpoint, files)
        });
        self.answer_open(id, name, opened, reply);
    }

    /// Answer an `open`: the summary, and the checkpoint kept as the open one; or the error.
    fn answer_open(
        &mut self,
        id: RequestId,
        name: String,
        opened: format::Result<(Checkpoint, Vec<NamedSource>)>,
        reply: &mut dyn FnMut(Response),
    ) {
        match opened {
            Ok((checkpoint, files)) => {
                reply(Response::Summary(Summary::of(id, &checkpoint)));
                self.set_opened(OpenCheckpoint {
                    id,
                    name,
                    files,
                    checkpoint,
                    cache: StatsCache::new(),
                });
            }
            Err(e) => reply(Response::Error(ErrorReply::from_format(id, &e))),
        }
    }

    fn open_sharded(
        &mut self,
        id: RequestId,
        files: Vec<NamedSource>,
        index_at: usize,
        reply: &mut dyn FnMut(Response),
    ) {
        let mut files: Vec<Option<NamedSource>> = files.into_iter().map(Some).collect();
        let index = files[index_at].take().expect("present");
        let name = index.name.clone();
        let fmt = format::detect_source(&*index.source)
            .map(|f| (f.name().to_string(), f.describe().to_string()))
            .unwrap_or_else(|_| ("unknown".into(), String::new()));
        reply(Response::Detected(Detected {
            id,
            name: name.clone(),
            size: index.source.len(),
            format: fmt.0,
            format_description: fmt.1,
            files: files.len() as u32,
        }));
        let mut names: Vec<String> = vec![];
        let mut opener = |shard: &str| -> format::Result<Box<dyn Source>> {
            let want = base_name(shard);
            let slot = files
                .iter_mut()
                .find(|f| f.as_ref().is_some_and(|f| base_name(&f.name) == want))
                .ok_or_else(|| {
                    FormatError::new(format!(
                        "{want} was not among the files given: drop or pick it together with the index"
                    ))
                })?;
            let f = slot.take().expect("present");
            names.push(f.name);
            Ok(f.source)
        };
        let opened = format::open_sharded(&*index.source, &name, &mut opener).map(
            |(checkpoint, sources)| {
                let files = sources
                    .into_iter()
                    .zip(names)
                    .map(|(source, name)| NamedSource { name, source })
                    .collect();
                (checkpoint, files)
            },
        );
        self.answer_open(id, name, opened, reply);
    }

    /// The index, sources and statistics cache of input `input` (0: the opened checkpoint,
    /// 1..: the B files).
    fn input_mut(
        &mut self,
        input: u32,
    ) -> Option<(&Checkpoint, Vec<&dyn Source>, &mut StatsCache)> {
        let (checkpoint, files, cache) = if input == 0 {
            let o = self.opened.as_mut()?;
            (&o.checkpoint, &o.files, &mut o.cache)
        } else {
            let b = self.editor.other_mut(input as usize)?;
            (&b.checkpoint, &b.files, &mut b.cache)
        };
        Some((
            checkpoint,
            files.iter().map(|f| &*f.source).collect(),
            cache,
        ))
    }

    /// Tensor `tensor` of input `input` when it has data to read: the input's checkpoint,
    /// sources and statistics cache, and the tensor's index; else the answer to send (no file
    /// open, no such file B, no such tensor, a meta tensor).
    #[allow(clippy::type_complexity)]
    fn readable_tensor(
        &mut self,
        id: RequestId,
        input: u32,
        tensor: u32,
    ) -> Result<(&Checkpoint, Vec<&dyn Source>, &mut StatsCache, usize), Box<Response>> {
        let no_file = self.opened.is_none();
        let Some((ckpt, sources, cache)) = self.input_mut(input) else {
            return Err(Box::new(missing_input(id, input, no_file)));
        };
        let i = readable(ckpt, id, tensor)?;
        Ok((ckpt, sources, cache, i))
    }

    /// Handle `stats_of {id, source, bins}` (and `stats {id, tensor, bins}`, a tensor of the
    /// open file: [`TensorSource::of`]): statistics of a tensor of any input, cached per tensor
    /// and bin count; of the values after the cast when `source.cast` is set (computed as they
    /// stream, not cached).
    pub fn stats_of(
        &mut self,
        id: RequestId,
        source: TensorSource,
        bins: u32,
        reply: &mut dyn FnMut(Response),
    ) {
        let bins = (bins as usize).clamp(1, crate::stats::MAX_BINS);
        let opts = self.stats_options(bins);
        let chunk = self.read_chunk;
        let (ckpt, sources, cache, i) = match self.readable_tensor(id, source.input, source.tensor)
        {
            Ok(x) => x,
            Err(r) => return reply(*r),
        };
        let tensor = source.tensor;
        if let Some(to) = source.cast.filter(|&d| d != ckpt.tensors[i].dtype) {
            let t = &ckpt.tensors[i];
            let from = t.dtype;
            if crate::format::element::Caster::new(from, to).is_none() {
                return reply(err(id, format!("cannot cast {from} to {to}")));
            }
            let mut replay = |sink: &mut dyn FnMut(&[u8]) -> format::Result<()>| {
                stream_cast(ckpt, &sources, i, chunk, to, sink)
            };
            let el = crate::stats::StatsInput::new(to, t.numel());
            let r =
                crate::stats::tensor_stats(el, &opts, &mut replay, &mut crate::stats::no_progress);
            return match r {
                Ok(Some(stats)) => {
                    reply(Response::Stats(Box::new(StatsReply { id, tensor, stats })))
                }
                Ok(None) => reply(err(id, "cancelled")),
                Err(e) => reply(Response::Error(ErrorReply::from_format(id, &e))),
            };
        }
        if !cache.contains(i, bins) {
            let mut last = 0u64;
            let r = checkpoint_stats(
                ckpt,
                &sources,
                &opts,
                &|j| j == i,
                &mut |done, total| {
                    // a message every 64 MiB keeps the page's progress bar moving
                    if done == total || done >= last + (64 << 20) {
                        last = done;
                        reply(Response::Progress { id, done, total });
                    }
                    true
                },
                cache,
            );
            if let Err(e) = r {
                return reply(Response::Error(ErrorReply::from_format(id, &e)));
            }
        }
        match cache.get(i, bins) {
            Some(s) => reply(Response::Stats(Box::new(StatsReply {
                id,
                tensor,
                stats: s.clone(),
            }))),
            None => reply(err(id, "statistics were not computed")),
        }
    }

    /// Handle `values_of {id, source, n}` (and `values {id, tensor, n}`): the first `n`
    /// (≤ 4096) elements as text (after the cast when `source.cast` is set).
    pub fn values_of(
        &mut self,
        id: RequestId,
        source: TensorSource,
        n: u32,
        reply: &mut dyn FnMut(Response),
    ) {
        let (ckpt, sources, _, i) = match self.readable_tensor(id, source.input, source.tensor) {
            Ok(x) => x,
            Err(r) => return reply(*r),
        };
        let t = &ckpt.tensors[i];
        let count = (n.min(4096) as u64).min(t.numel());
        let bytes = match format::data::read_tensor_range(ckpt, &sources, i, 0, count) {
            Ok(b) => b,
            Err(e) => return reply(Response::Error(ErrorReply::from_format(id, &e))),
        };
        let (dtype, bytes) = match source
            .cast
            .and_then(|to| crate::format::element::Caster::new(t.dtype, to))
        {
            Some(mut c) => {
                let mut out = vec![];
                c.convert(&bytes, &mut out);
                (c.to, out)
            }
            None => (t.dtype, bytes),
        };
        reply(Response::Values(ValuesReply {
            id,
            tensor: source.tensor,
            values: value_texts(dtype, &bytes),
            total: t.numel(),
        }))
    }

    /// Handle `heatmap_of {id, source, w, h}` (and `heatmap {id, tensor, w, h}`) for a 2-D
    /// tensor: the rows are streamed in chunks and folded into at most `h`×`w` blocks of mean
    /// |x| (after the cast when `source.cast` is set).
    pub fn heatmap_of(
        &mut self,
        id: RequestId,
        source: TensorSource,
        (w, h): (u32, u32),
        reply: &mut dyn FnMut(Response),
    ) {
        let (ckpt, sources, _, i) = match self.readable_tensor(id, source.input, source.tensor) {
            Ok(x) => x,
            Err(r) => return reply(*r),
        };
        let t = &ckpt.tensors[i];
        if t.shape.len() != 2 || t.numel() == 0 {
            return reply(err(id, "a heatmap needs a non-empty 2-D tensor"));
        }
        let to = source
            .cast
            .filter(|&to| crate::format::element::Caster::new(t.dtype, to).is_some())
            .unwrap_or(t.dtype);
        let r = if to == t.dtype {
            // as stored: an expanded view costs its distinct elements
            heatmap_of(
                ckpt,
                &sources,
                i,
                (h as u64, w as u64),
                format::data::DEFAULT_CHUNK,
            )
        } else {
            let (nr, nc) = (t.shape[0], t.shape[1]);
            let mut fold = HeatmapFold::new(to, (nr, nc), (h as u64, w as u64));
            stream_cast(
                ckpt,
                &sources,
                i,
                format::data::DEFAULT_CHUNK,
                to,
                &mut |b| {
                    fold.push(b);
                    Ok(())
                },
            )
            .map(|()| fold.finish())
        };
        let (rows, cols, cells) = match r {
            Ok(x) => x,
            Err(e) => return reply(Response::Error(ErrorReply::from_format(id, &e))),
        };
        reply(Response::Heatmap(HeatmapReply {
            id,
            tensor: source.tensor,
            rows,
            cols,
            cells,
        }))
    }

    /// Handle `window_of {id, source, window}` (and `window {id, tensor, window}`): a window
    /// ([`super::window`]) of a tensor of any input, of the values after the cast when
    /// `source.cast` is set (as `stats_of` computes them).
    pub fn window_of(
        &mut self,
        id: RequestId,
        source: TensorSource,
        w: &super::protocol::Window,
        reply: &mut dyn FnMut(Response),
    ) {
        let (ckpt, sources, _, i) = match self.readable_tensor(id, source.input, source.tensor) {
            Ok(x) => x,
            Err(r) => return reply(*r),
        };
        match super::window::read(ckpt, &sources, i, w, source.cast) {
            Ok(r) => reply(Response::Window(super::window::reply(id, source.tensor, r))),
            Err(e) => reply(Response::Error(ErrorReply::from_format(id, &e))),
        }
    }

    /// Handle `search {id, pattern, paths}`: keep `paths` when sent, then answer where each kept
    /// path first matches `pattern`.
    pub fn search(
        &mut self,
        id: RequestId,
        pattern: &str,
        paths: Option<SearchPaths>,
    ) -> SearchReply {
        if let Some(p) = paths {
            self.search_paths = p;
        }
        let SearchPaths { text, ranges } = &self.search_paths;
        let (matches, error) = match crate::edit::search::find_all(pattern, text, ranges) {
            Ok(m) => (m, None),
            Err(e) => (vec![], Some(e)),
        };
        SearchReply { id, matches, error }
    }

    /// Handle `stats_report {id, bins}`: statistics of every tensor with data (kept in the
    /// cache), with `progress`, then the JSON and CSV report ([`crate::stats::report`]).
    pub fn stats_report(&mut self, id: RequestId, bins: u32, reply: &mut dyn FnMut(Response)) {
        let bins = (bins as usize).clamp(1, crate::stats::MAX_BINS);
        let opts = self.stats_options(bins);
        let Some(o) = self.opened.as_mut() else {
            return reply(Response::Error(ErrorReply::no_file(id)));
        };
        let sources: Vec<&dyn Source> = o.files.iter().map(|f| &*f.source).collect();
        let mut last = 0u64;
        let r = checkpoint_stats(
            &o.checkpoint,
            &sources,
            &opts,
            &|_| true,
            &mut |done, total| {
                if done == total || done >= last + (64 << 20) {
                    last = done;
                    reply(Response::Progress { id, done, total });
                }
                true
            },
            &mut o.cache,
        );
        if let Err(e) = r {
            return reply(Response::Error(ErrorReply::from_format(id, &e)));
        }
        let all: Vec<usize> = (0..o.checkpoint.tensors.len()).collect();
        let report = super::protocol::StatsReportReply {
            id,
            json: crate::stats::report::json(&o.checkpoint, &o.cache, bins, &all),
            csv: crate::stats::report::csv(&o.checkpoint, &o.cache, bins, &all),
        };
        reply(Response::StatsReport(report))
    }

    /// Start `all_stats {id, bins}`; advance it with [`Session::all_stats_step`].
    pub fn all_stats_begin(&mut self, id: RequestId, bins: u32, reply: &mut dyn FnMut(Response)) {
        self.all_stats_of(id, bins, None, reply)
    }

    /// Start an `all_stats` run over the tensors `only` (indices into the index, in the order
    /// given; out-of-range ones are skipped), or over every tensor with `None`.
    pub fn all_stats_of(
        &mut self,
        id: RequestId,
        bins: u32,
        only: Option<&[u32]>,
        reply: &mut dyn FnMut(Response),
    ) {
        let Some(o) = self.opened.as_ref() else {
            return reply(Response::Error(ErrorReply::no_file(id)));
        };
        let bins = (bins as usize).clamp(1, crate::stats::MAX_BINS);
        let opts = self.stats_options(bins);
        let n = o.checkpoint.tensors.len();
        let all: Box<dyn Iterator<Item = usize>> = match only {
            Some(list) => Box::new(list.iter().map(|&i| i as usize).filter(move |&i| i < n)),
            None => Box::new(0..n),
        };
        let pending: std::collections::VecDeque<usize> = all
            .filter(|&i| o.checkpoint.tensors[i].storage.is_some())
            .collect();
        let total = pending
            .iter()
            .filter(|&&i| !o.cache.contains(i, bins))
            .map(|&i| {
                o.checkpoint.tensors[i].nbytes()
                    * crate::stats::planned_passes(&o.checkpoint, i, &opts)
            })
            .sum();
        self.job = Some(AllStatsJob {
            id,
            bins,
            pending,
            done: 0,
            total,
        });
        reply(Response::Progress { id, done: 0, total });
    }

    /// Cancel the `all_stats` run `id` (if it is the one running).
    pub fn cancel(&mut self, id: RequestId, reply: &mut dyn FnMut(Response)) {
        if self.job.as_ref().is_some_and(|j| j.id == id) {
            self.job = None;
            reply(Response::AllStatsDone {
                id,
                cancelled: true,
            });
        }
    }

    /// True while an `all_stats` run has work left.
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Do tensors of the running `all_stats` job until `more()` says stop (checked after each
    /// tensor; at least one tensor is done). Posts `stats_rows`, `progress`, and at the end
    /// `all_stats_done`. Returns true when work is left.
    pub fn all_stats_step(
        &mut self,
        more: &mut dyn FnMut() -> bool,
        reply: &mut dyn FnMut(Response),
    ) -> bool {
        let Some(bins) = self.job.as_ref().map(|j| j.bins) else {
            return false;
        };
        let opts = self.stats_options(bins);
        let (Some(job), Some(o)) = (self.job.as_mut(), self.opened.as_mut()) else {
            return false;
        };
        let id = job.id;
        let every = self.inner_progress_bytes;
        let mut rows = vec![];
        // front to back through each file's sequential reader (large blocks) when it has one
        let sources: Vec<&dyn Source> = o
            .files
            .iter()
            .map(|f| f.source.sequential().unwrap_or(&*f.source))
            .collect();
        let mut failed = None;
        let mut chosen = vec![false; o.checkpoint.tensors.len()];
        while !job.pending.is_empty() {
            // a batch: tensors not computed yet, up to the limits (at least one)
            let mut batch = vec![];
            let mut bytes = 0u64;
            while let Some(&i) = job.pending.front() {
                let b = o.checkpoint.tensors[i].nbytes();
                if !batch.is_empty()
                    && (batch.len() >= self.batch_tensors || bytes.saturating_add(b) > BATCH_BYTES)
                {
                    break;
                }
                job.pending.pop_front();
                bytes = bytes.saturating_add(b);
                batch.push(i);
            }
            let mut planned = 0u64;
            for &i in &batch {
                chosen[i] = true;
                if !o.cache.contains(i, job.bins) {
                    planned = planned.saturating_add(
                        o.checkpoint.tensors[i]
                            .nbytes()
                            .saturating_mul(crate::stats::planned_passes(&o.checkpoint, i, &opts)),
                    );
                }
            }
            let (base, total) = (job.done, job.total);
            let mut posted = 0u64;
            let r = checkpoint_stats(
                &o.checkpoint,
                &sources,
                &opts,
                &|j| chosen[j],
                &mut |d, _| {
                    if d >= posted + every {
                        posted = d;
                        reply(Response::Progress {
                            id,
                            done: (base + d).min(total),
                            total,
                        });
                    }
                    true
                },
                &mut o.cache,
            );
            job.done = job.done.saturating_add(planned);
            for &i in &batch {
                chosen[i] = false;
                if let Some(s) = o.cache.get(i, job.bins) {
                    rows.push(StatsRow::of(i as u32, s));
                }
            }
            if let Err(e) = r {
                failed = Some(e);
                break;
            }
            if !more() {
                break;
            }
        }
        if !rows.is_empty() {
            reply(Response::StatsRows { id, rows });
        }
        reply(Response::Progress {
            id,
            done: job.done.min(job.total),
            total: job.total,
        });
        if let Some(e) = failed {
            self.job = None;
            reply(Response::Error(ErrorReply::from_format(id, &e)));
            return false;
        }
        if job.pending.is_empty() {
            self.job = None;
            reply(Response::AllStatsDone {
                id,
                cancelled: false,
            });
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::SourceError;

    struct Broken;
    impl Source for Broken {
        fn len(&self) -> u64 {
            4096
        }
        fn read_at(&self, _: u64, _: &mut [u8]) -> Result<(), SourceError> {
            Err(SourceError(
                "NotReadableError: the file changed on disk".into(),
            ))
        }
    }

    fn run(files: Vec<NamedSource>) -> (Session, Vec<Response>) {
        let mut s = Session::new();
        let mut out = vec![];
        s.open(5, files, &mut |r| out.push(r));
        (s, out)
    }

    /// The error answer at `out[i]`.
    fn error_at(out: &[Response], i: usize) -> &ErrorReply {
        match &out[i] {
            Response::Error(e) => e,
            _ => panic!("{out:?}"),
        }
    }

    #[test]
    fn unknown_bytes_are_detected_then_refused() {
        // named .pth on purpose: the extension must not matter
        let (s, out) = run(vec![NamedSource::in_memory(
            "random.pth",
            b"\x13\x37 not a checkpoint at all",
        )]);
        assert_eq!(out.len(), 2, "{out:?}");
        let Response::Detected(d) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!((d.id, d.name.as_str(), d.size), (5, "random.pth", 26));
        assert_eq!(d.format, "unknown");
        let e = error_at(&out, 1);
        assert_eq!(e.id, Some(5));
        assert_eq!(e.kind, ErrorKind::File);
        assert!(e.error.starts_with("random.pth: "), "{}", e.error);
        assert!(s.opened().is_none());
    }

    #[test]
    fn a_plain_pickle_says_what_torch_load_would_call() {
        // pickle.dumps of an object whose __reduce__ is (os.system, ("a') + b('c",)), protocol 4
        let mut p = b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x0aa') + b('c".to_vec();
        p.extend_from_slice(b"\x85R.");
        let (s, out) = run(vec![NamedSource::in_memory("evil.pkl", p)]);
        let Response::Detected(d) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(d.format, "pickle");
        let e = error_at(&out, 1);
        assert!(
            e.error.contains("not a PyTorch or safetensors checkpoint"),
            "{}",
            e.error
        );
        assert!(e.error.contains("DANGEROUS"), "{}", e.error);
        // the argument in Python's repr: one string, not two calls
        assert!(
            e.error.contains("posix.system(\"a') + b('c\")"),
            "{}",
            e.error
        );
        assert!(s.opened().is_none());
    }

    #[test]
    fn detection_ignores_the_name() {
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        let (_, out) = run(vec![NamedSource::in_memory("weights.txt", st)]);
        let Response::Detected(d) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(d.format, "safetensors");
        assert_eq!(d.size, 10);
        assert_eq!(d.files, 1);
        // then exactly one final answer for the same request
        assert_eq!(out.len(), 2);
        assert!(
            matches!(&out[1], Response::Summary(s) if s.id == 5)
                || matches!(&out[1], Response::Error(e) if e.id == Some(5))
        );
    }

    #[test]
    fn unreadable_file_gives_one_error_naming_file_and_place() {
        let (_, out) = run(vec![NamedSource {
            name: "gone.pth".into(),
            source: Box::new(Broken),
        }]);
        assert_eq!(
            out,
            vec![Response::Error(ErrorReply::new(
                Some(5),
                ErrorKind::File,
                "gone.pth: first bytes: NotReadableError: the file changed on disk"
            ))]
        );
    }

    #[test]
    fn empty_request_is_an_error() {
        let (_, out) = run(vec![]);
        assert!(
            matches!(&out[..], [Response::Error(e)] if e.id == Some(5) && e.kind == ErrorKind::Request)
        );
    }

    /// A safetensors file of `(name, shape, f32 values)`.
    fn safetensors(tensors: &[(&str, Vec<u64>, Vec<f32>)]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = vec![];
        for (name, shape, vals) in tensors {
            let a = data.len();
            for v in vals {
                data.extend_from_slice(&v.to_le_bytes());
            }
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [a, data.len()]}),
            );
        }
        let h = serde_json::Value::Object(header).to_string();
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&data);
        out
    }

    fn opened_session() -> Session {
        let st = safetensors(&[
            ("a.w", vec![2, 3], vec![1.0, -2.0, 3.0, 4.0, 0.0, 6.0]),
            ("a.b", vec![3], vec![0.5, f32::NAN, 1.5]),
        ]);
        let (s, out) = run(vec![NamedSource::in_memory("m.safetensors", st)]);
        let Response::Summary(sum) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(sum.entries.len(), 2);
        assert_eq!(sum.bytes, 36);
        assert_eq!(sum.params_by_dtype, vec![(format::DType::F32, 9)]);
        s
    }

    fn index_of(s: &Session, key: &str) -> u32 {
        s.opened()
            .unwrap()
            .checkpoint
            .tensors
            .iter()
            .position(|t| t.path_string() == key)
            .unwrap() as u32
    }

    #[test]
    fn stats_values_and_heatmap_of_a_tensor() {
        let mut s = opened_session();
        let w = index_of(&s, "a.w");
        let mut out = vec![];
        s.stats_of(8, TensorSource::of(w), 4, &mut |r| out.push(r));
        let Some(Response::Stats(st)) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!((st.id, st.tensor), (8, w));
        assert_eq!(st.stats.summary.count, 6);
        assert_eq!(
            (st.stats.summary.min, st.stats.summary.max),
            (Some(-2.0), Some(6.0))
        );
        assert_eq!(st.stats.histogram.counts.len(), 4);
        out.clear();
        s.values_of(9, TensorSource::of(w), 4, &mut |r| out.push(r));
        assert_eq!(
            out,
            vec![Response::Values(ValuesReply {
                id: 9,
                tensor: w,
                values: vec!["1".into(), "-2".into(), "3".into(), "4".into()],
                total: 6,
            })]
        );
        out.clear();
        s.heatmap_of(10, TensorSource::of(w), (2, 1), &mut |r| out.push(r));
        let Response::Heatmap(h) = &out[0] else {
            panic!("{out:?}")
        };
        // 1 row × 2 cols: |1|,|-2|,|4|,|0| (cols 0..1) and |3|,|6| (col 2) → means 1.75, 4.5
        assert_eq!((h.rows, h.cols), (1, 2));
        assert_eq!(h.cells, vec![1.75, 4.5]);
        out.clear();
        let b = index_of(&s, "a.b");
        s.heatmap_of(11, TensorSource::of(b), (2, 2), &mut |r| out.push(r));
        assert!(matches!(&out[0], Response::Error(e) if e.id == Some(11)));
        out.clear();
        s.stats_of(12, TensorSource::of(99), 64, &mut |r| out.push(r));
        assert!(matches!(&out[0], Response::Error(e) if e.id == Some(12)));
    }

    #[test]
    fn all_stats_reports_progress_inside_a_large_tensor() {
        // 3 Mi float32 values = 12 MiB, read in 4 MiB chunks, progress every 4 MiB
        let n = 3 << 20;
        let vals: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
        let st = safetensors(&[("big", vec![n as u64], vals)]);
        let (mut s, _) = run(vec![NamedSource::in_memory("big.safetensors", st)]);
        s.inner_progress_bytes = 4 << 20;
        s.read_chunk = 4 << 20;
        let mut out = vec![];
        s.all_stats_begin(30, 64, &mut |r| out.push(r));
        out.clear();
        assert!(!s.all_stats_step(&mut || true, &mut |r| out.push(r)));
        let inner: Vec<u64> = out
            .iter()
            .take_while(|r| !matches!(r, Response::StatsRows { .. }))
            .map(|r| match r {
                Response::Progress {
                    id: 30,
                    done,
                    total,
                } => {
                    assert_eq!(*total, 12 << 20);
                    *done
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(inner, vec![4 << 20, 8 << 20, 12 << 20], "{out:?}");
        assert!(matches!(
            out.last(),
            Some(Response::AllStatsDone {
                id: 30,
                cancelled: false
            })
        ));
    }

    #[test]
    fn all_stats_runs_in_steps_and_can_be_cancelled() {
        let mut s = opened_session();
        s.batch_tensors = 1;
        let mut out = vec![];
        s.all_stats_begin(20, 64, &mut |r| out.push(r));
        assert_eq!(
            out,
            vec![Response::Progress {
                id: 20,
                done: 0,
                total: 36
            }]
        );
        out.clear();
        // one tensor per step
        assert!(s.all_stats_step(&mut || false, &mut |r| out.push(r)));
        assert!(matches!(&out[0], Response::StatsRows { id: 20, rows } if rows.len() == 1));
        out.clear();
        assert!(!s.all_stats_step(&mut || false, &mut |r| out.push(r)));
        let Response::StatsRows { rows, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(rows[0].summary.nan, 1);
        assert_eq!(
            out.last(),
            Some(&Response::AllStatsDone {
                id: 20,
                cancelled: false
            })
        );
        assert!(!s.busy());
        // cancel between steps
        out.clear();
        s.all_stats_begin(21, 8, &mut |r| out.push(r));
        assert!(s.all_stats_step(&mut || false, &mut |r| out.push(r)));
        out.clear();
        s.cancel(21, &mut |r| out.push(r));
        assert_eq!(
            out,
            vec![Response::AllStatsDone {
                id: 21,
                cancelled: true
            }]
        );
        assert!(!s.all_stats_step(&mut || true, &mut |r| out.push(r)));
        // a new open ends a running run first (the page stops waiting for it)
        s.all_stats_begin(22, 8, &mut |_| {});
        out.clear();
        s.open(
            23,
            vec![NamedSource::in_memory("x.pth", b"nope")],
            &mut |r| out.push(r),
        );
        assert_eq!(
            out[0],
            Response::AllStatsDone {
                id: 22,
                cancelled: true
            }
        );
        assert!(!s.busy());
        // and the failed open kept the checkpoint that was open
        assert!(s.opened().is_some());
    }

    #[test]
    fn base_names() {
        assert_eq!(
            base_name("x/y/model-00001.safetensors"),
            "model-00001.safetensors"
        );
    }

    #[test]
    fn an_index_alone_names_the_shards_to_add() {
        let ix = br#"{"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
        let (_, out) = run(vec![NamedSource::in_memory(
            "model.safetensors.index.json",
            ix,
        )]);
        let e = error_at(&out, 1);
        assert!(
            e.error.starts_with("model.safetensors.index.json: this is the index of a sharded checkpoint: its tensors are in 2 other files. Open or drop the index together with those files: model-00001-of-00002.safetensors, model-00002-of-00002.safetensors"),
            "{}",
            e.error
        );
        assert!(!e.error.contains("format::"), "{}", e.error);
    }

    #[test]
    fn empty_file_is_unknown() {
        let (_, out) = run(vec![NamedSource::in_memory("empty.pth", vec![])]);
        let Response::Detected(d) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!((d.size, d.format.as_str()), (0, "unknown"));
        assert!(
            matches!(&out[1], Response::Error(e) if e.kind == ErrorKind::File && e.error == "empty.pth: empty file (0 bytes): not a checkpoint"),
            "{out:?}"
        );
    }
}

#[cfg(test)]
mod edit_tests {
    //! The session owns the journal: edits answer with the edited index, and tensors of the
    //! edited checkpoint (transplanted from B, cast) are read from the right bytes.
    use super::*;
    use crate::format::DType;
    use crate::worker::protocol::{JournalReply, OpSpec};

    use crate::format::safetensors::f32_test_file as st;

    fn journal(s: &mut Session, req: Request<String>) -> JournalReply {
        let mut out = vec![];
        assert!(s.edit_request(&req, &mut |r| out.push(r)));
        match out.pop() {
            Some(Response::Journal(j)) => j,
            other => panic!("{other:?}"),
        }
    }

    fn stats_mean(s: &mut Session, source: TensorSource) -> (f64, u64) {
        let mut out = vec![];
        s.stats_of(1, source, 8, &mut |r| out.push(r));
        match out.pop() {
            Some(Response::Stats(x)) => (x.stats.summary.mean.unwrap(), x.stats.summary.count),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn edits_answer_with_the_edited_index_and_read_the_right_bytes() {
        let mut s = Session::new();
        s.open(
            1,
            vec![NamedSource::in_memory(
                "a.safetensors",
                st(&[("module.w", &[1.0, 2.0, 3.0]), ("module.b", &[0.1])]),
            )],
            &mut |_| {},
        );
        let j = journal(&mut s, Request::JournalList { id: 2 });
        assert_eq!(j.file, "a.safetensors");
        assert_eq!(j.tensors, 2);
        // unedited: the index is the opened file's, not sent again
        assert!(j.entries.is_empty() && j.values.is_empty());
        // strip the prefix: new names, old names kept, same sources
        let j = journal(
            &mut s,
            Request::Edit {
                id: 3,
                op: OpSpec::StripPrefix {
                    prefix: "module.".into(),
                },
            },
        );
        assert!(j.applied && j.error.is_none());
        let w = j.entries.iter().find(|e| e.entry.path == ["w"]).unwrap();
        assert_eq!(
            w.renamed_from.as_deref(),
            Some(&["module.w".to_string()][..])
        );
        assert_eq!(w.source.input, 0);
        // a no-op edit is refused and not journaled
        let j = journal(
            &mut s,
            Request::Edit {
                id: 4,
                op: OpSpec::StripPrefix {
                    prefix: "module.".into(),
                },
            },
        );
        assert!(!j.applied);
        assert!(
            j.error.as_deref().unwrap().contains("changes nothing"),
            "{j:?}"
        );
        assert_eq!(j.ops.len(), 1);
        // cast: the entry is float16 and its statistics are of the cast values
        let j = journal(
            &mut s,
            Request::Edit {
                id: 5,
                op: OpSpec::Cast {
                    dtype: DType::F16,
                    pattern: Some("^b$".into()),
                },
            },
        );
        let b = j.entries.iter().find(|e| e.entry.path == ["b"]).unwrap();
        assert_eq!((b.entry.dtype, b.cast_from), (DType::F16, Some(DType::F32)));
        assert_eq!(b.entry.bytes, 2);
        assert_eq!(b.source.cast, Some(DType::F16));
        let (stored, _) = stats_mean(&mut s, TensorSource::of(b.source.tensor));
        let (cast, _) = stats_mean(&mut s, b.source);
        assert_eq!(stored, 0.1f32 as f64);
        // torch: torch.tensor([0.1]).half().float().item() == 0.0999755859375
        assert_eq!(cast, 0.0999755859375);
        // a B file: its tensors are input 1, read from B's bytes
        s.editing()
            .1
            .open_b(NamedSource::in_memory(
                "b.safetensors",
                st(&[("w", &[10.0, 20.0])]),
            ))
            .unwrap();
        let (mean, count) = stats_mean(
            &mut s,
            TensorSource {
                input: 1,
                tensor: 0,
                cast: None,
            },
        );
        assert_eq!((mean, count), (15.0, 2));
        let mut out = vec![];
        s.values_of(
            7,
            TensorSource {
                input: 1,
                tensor: 0,
                cast: None,
            },
            4,
            &mut |r| out.push(r),
        );
        assert!(matches!(&out[0], Response::Values(v) if v.values == ["10", "20"]));
        out.clear();
        s.stats_of(
            8,
            TensorSource {
                input: 2,
                tensor: 0,
                cast: None,
            },
            8,
            &mut |r| out.push(r),
        );
        assert!(matches!(&out[0], Response::Error(e) if e.id == Some(8)));
        // opening another file starts a fresh journal and forgets B
        s.open(
            9,
            vec![NamedSource::in_memory(
                "c.safetensors",
                st(&[("x", &[1.0])]),
            )],
            &mut |_| {},
        );
        let j = journal(&mut s, Request::JournalList { id: 10 });
        assert!(j.ops.is_empty());
        assert_eq!((j.file.as_str(), j.tensors), ("c.safetensors", 1));
        assert_eq!(j.keys, ["x"]);
        assert!(s.editor().others().is_empty());
    }
}
