//! The messages the page and the worker exchange, both ways in one wire format: postcard bytes
//! with the JS values they carry beside them ([`to_message`]; [`request_from_message`],
//! [`response_from_message`]).
//!
//! Contract:
//! - A message is a JS array `[BYTES, HANDLE…]`: BYTES (a `Uint8Array`) is the postcard encoding
//!   of a [`Request`] (page → worker) or a [`Response`] (worker → page), written by
//!   [`super::wire`]; the HANDLEs are the JS values it carries (a request's `File`s and disk
//!   target, an answer's `Blob`s), which BYTES name by their position ([`handle`]: the one rule
//!   for every JS value on the wire). The worker reads a request's BYTES with
//!   [`super::wire::from_bytes`], the page an answer's with postcard (each the smaller at its
//!   build's optimisation level). Numbers cross bit for bit (`u64`, NaN).
//! - Every request carries an `id` chosen by the page; every answer to it repeats that `id`, so
//!   the page can drop answers to requests it no longer cares about.
//! - One enum per direction: the run view's and the Merge tab's requests are variants of
//!   [`Request`] ([`Request::Trend`], [`Request::Merge`]), as their answers are of [`Response`].
//! - Messages use no serde attribute postcard cannot read back (`skip_serializing_if`,
//!   `flatten`, `untagged`, internal tags): every field is always written; `#[serde(default)]`
//!   is only for the JSON the native tests read.
//! - The worker first posts [`Response::Ready`]; messages posted before that are lost.
//! - For `open`, the worker answers [`Response::Detected`] (name, size, format from the first
//!   bytes) and then exactly one of [`Response::Summary`] or [`Response::Error`]. An unreadable
//!   file yields only an [`Response::Error`].
//!
//! The file handle type is a parameter, so the wire shape is testable natively (`String`) while
//! the worker uses a `File` wrapper.

pub use crate::export::OutFormat;
use crate::format::{Checkpoint, DType, FormatError};
pub use crate::format::{Tier, Verdict};
use serde::{Deserialize, Serialize};

/// A browser `File` a request carries (structured clone: no bytes copied); on the wire, its
/// position among the message's JS values ([`handle`]).
#[cfg(target_arch = "wasm32")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsFile(#[serde(with = "handle")] pub web_sys::File);

/// Request id chosen by the page.
pub type RequestId = u32;

/// A page → worker message. `F` is the file handle (a browser `File` in the worker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request<F> {
    /// Detect and open a checkpoint. `files[0]` is the file opened; the rest are kept for
    /// multi-file checkpoints (sharded), which later requests will read.
    Open {
        id: RequestId,
        files: Vec<F>,
    },
    /// Statistics and histogram of tensor `tensor` (index into [`Summary::entries`]).
    Stats {
        id: RequestId,
        tensor: u32,
        bins: u32,
    },
    /// The first `n` values of a tensor, as display text.
    Values {
        id: RequestId,
        tensor: u32,
        n: u32,
    },
    /// A `w`×`h` downsampled map (mean |x| per block) of a 2-D tensor.
    Heatmap {
        id: RequestId,
        tensor: u32,
        w: u32,
        h: u32,
    },
    /// Statistics of every tensor, one tensor at a time, with `progress` and `stats_rows`
    /// answers, ended by `all_stats_done`.
    AllStats {
        id: RequestId,
        bins: u32,
    },
    /// Stop the `all_stats` run `id` (answered by `all_stats_done` with `cancelled`).
    Cancel {
        id: RequestId,
    },
    /// For a statistics pool worker: statistics of the tensors `tensors` (indices of the index
    /// that `open` request `open_id` produced) of `files`. The worker opens `files` quietly
    /// (no `detected` / `summary`) unless it already has `open_id` open, then answers like
    /// `all_stats` (`progress`, `stats_rows`, `all_stats_done`) with `id`.
    StatsPart {
        id: RequestId,
        open_id: RequestId,
        files: Vec<F>,
        bins: u32,
        tensors: Vec<u32>,
    },
    // --- edit & compare
    /// Apply an operation to the open file's journal; answered by [`Response::Journal`].
    Edit {
        id: RequestId,
        op: OpSpec,
    },
    /// What an operation would do, without doing it; answered by [`Response::Preview`].
    Preview {
        id: RequestId,
        op: OpSpec,
    },
    Undo {
        id: RequestId,
    },
    Redo {
        id: RequestId,
    },
    /// The journal's state; answered by [`Response::Journal`].
    JournalList {
        id: RequestId,
    },
    /// Write the edited checkpoint (`format`: `torch` or `safetensors`); answered by
    /// [`Response::ExportProgress`]s (after 200 ms) then [`Response::Exported`] or
    /// [`Response::Error`].
    Export {
        id: RequestId,
        format: OutFormat,
    },
    /// Open a second file B for compare / transplant; answered by [`Response::OpenedB`].
    OpenB {
        id: RequestId,
        file: F,
    },
    /// Compare the open file A with B through prefix maps `(a_prefix, b_prefix)`; answered by
    /// [`Response::DiffProgress`]es then [`Response::Diff`].
    Diff {
        id: RequestId,
        maps: Vec<(String, String)>,
    },
    /// Values of a window of a tensor (the value viewer); answered by [`Response::Window`].
    Window {
        id: RequestId,
        tensor: u32,
        window: Window,
    },
    /// Statistics of every tensor with `bins` histogram bins, as `weightscope stats --json`
    /// prints them and as CSV; answered by `progress` then [`Response::StatsReport`].
    StatsReport {
        id: RequestId,
        bins: u32,
    },
    /// A's tensor `key` beside B's (through `maps`): histograms on one range and of a − b;
    /// answered by [`Response::Ab`].
    Ab {
        id: RequestId,
        key: String,
        maps: Vec<(String, String)>,
        bins: u32,
    },
    /// As `stats`, for an entry of the edited index: the bytes of `source` (a B tensor for a
    /// transplant; the values after the journal's cast for a cast one).
    StatsOf {
        id: RequestId,
        source: TensorSource,
        bins: u32,
    },
    /// As `values`, for an entry of the edited index.
    ValuesOf {
        id: RequestId,
        source: TensorSource,
        n: u32,
    },
    /// As `heatmap`, for an entry of the edited index.
    HeatmapOf {
        id: RequestId,
        source: TensorSource,
        w: u32,
        h: u32,
    },
    /// Make open B file `input` (1..) the one compare, the A/B view and transplant use;
    /// answered by [`Response::OpenedB`] naming it.
    ChooseB {
        id: RequestId,
        input: u32,
    },
    /// As `window`, for an entry of the edited index (a B tensor's values, or the values after
    /// the journal's cast); answered by [`Response::Window`] with `tensor` = `source.tensor`.
    WindowOf {
        id: RequestId,
        source: TensorSource,
        window: Window,
    },
    /// The training-run view's requests ([`super::trend`]).
    Trend(super::trend::TrendRequest<F>),
    /// The Merge tab's requests ([`super::merge`]).
    Merge(super::merge::MergeRequest<F>),
    /// The tree's regex search: where each path first matches `pattern`
    /// ([`crate::edit::search`]); answered by [`Response::Search`]. `paths` replaces the paths
    /// the worker keeps for searches (the tree's, sent once per tree: ≈ 2 MB for 50,000 keys);
    /// `None` searches the kept ones.
    Search {
        id: RequestId,
        pattern: String,
        paths: Option<SearchPaths>,
    },
}

/// The paths a regex search goes through: each one a byte range of `text` (index = the page's
/// node id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchPaths {
    pub text: String,
    pub ranges: Vec<(u32, u32)>,
}

/// Where an entry of the edited index takes its bytes from: tensor `tensor` of input `input`
/// (0: the opened file, its index into [`Summary::entries`]; 1..: the B files opened for compare
/// and transplant), cast to `cast` on download when the journal casts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorSource {
    pub input: u32,
    pub tensor: u32,
    #[serde(default)]
    pub cast: Option<DType>,
}

impl TensorSource {
    /// Tensor `tensor` of the opened file, as stored.
    pub fn of(tensor: u32) -> TensorSource {
        TensorSource {
            input: 0,
            tensor,
            cast: None,
        }
    }
}

/// One tensor of the edited index (the checkpoint as the journal would write it): `entry` as it
/// will be written (new path, dtype and bytes after a cast), where its bytes come from, and
/// what the journal changed (the old path of a renamed entry, the stored dtype of a cast one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditedEntry {
    pub entry: Entry,
    pub source: TensorSource,
    /// The path in its input, when the journal renamed it.
    #[serde(default)]
    pub renamed_from: Option<Vec<String>>,
    /// The stored dtype, when the journal casts it.
    #[serde(default)]
    pub cast_from: Option<DType>,
}

impl<F> Request<F> {
    /// The request id.
    pub fn id(&self) -> RequestId {
        match self {
            Request::Open { id, .. }
            | Request::Stats { id, .. }
            | Request::Values { id, .. }
            | Request::Heatmap { id, .. }
            | Request::AllStats { id, .. }
            | Request::StatsPart { id, .. }
            | Request::Cancel { id } => *id,
            Request::Edit { id, .. }
            | Request::Preview { id, .. }
            | Request::Undo { id }
            | Request::Redo { id }
            | Request::JournalList { id }
            | Request::Export { id, .. }
            | Request::OpenB { id, .. }
            | Request::Diff { id, .. } => *id,
            Request::Window { id, .. }
            | Request::StatsReport { id, .. }
            | Request::Ab { id, .. } => *id,
            Request::StatsOf { id, .. }
            | Request::ValuesOf { id, .. }
            | Request::HeatmapOf { id, .. }
            | Request::WindowOf { id, .. }
            | Request::ChooseB { id, .. } => *id,
            Request::Trend(r) => r.id(),
            Request::Merge(r) => r.id(),
            Request::Search { id, .. } => *id,
        }
    }
}

/// A worker → page message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The worker's wasm has started and its message handler is installed.
    Ready,
    /// The detected container format of a file, from its first bytes.
    Detected(Detected),
    /// The index of an opened checkpoint.
    Summary(Summary),
    /// A failure to handle request `id`.
    Error(ErrorReply),
    /// Answer to `stats`.
    Stats(Box<StatsReply>),
    /// Answer to `values`.
    Values(ValuesReply),
    /// Answer to `heatmap`.
    Heatmap(HeatmapReply),
    /// Bytes done / total of a long request.
    Progress {
        id: RequestId,
        done: u64,
        total: u64,
    },
    /// Summaries of some tensors of an `all_stats` run.
    StatsRows {
        id: RequestId,
        rows: Vec<StatsRow>,
    },
    /// End of an `all_stats` run.
    AllStatsDone {
        id: RequestId,
        cancelled: bool,
    },
    // --- edit & compare
    Journal(JournalReply),
    Preview(PreviewReply),
    ExportProgress(Progress),
    Exported(ExportReply),
    OpenedB(OpenedB),
    DiffProgress(Progress),
    Diff(DiffReply),
    /// The training-run view's answers ([`super::trend`]).
    Trend(super::trend::TrendReply),
    /// Answer to `window`.
    Window(WindowReply),
    /// Answer to `stats_report`.
    StatsReport(StatsReportReply),
    /// Answer to `ab`.
    Ab(Box<AbReply>),
    /// The Merge tab's answers ([`super::merge`]).
    Merge(super::merge::MergeReply),
    /// Answer to `search`.
    Search(SearchReply),
}

impl Response {
    /// The id of the request this answers (`None` for `Ready`).
    pub fn id(&self) -> Option<RequestId> {
        match self {
            Response::Ready => None,
            Response::Detected(d) => Some(d.id),
            Response::Summary(s) => Some(s.id),
            Response::Error(e) => e.id,
            Response::Stats(s) => Some(s.id),
            Response::Values(v) => Some(v.id),
            Response::Heatmap(h) => Some(h.id),
            Response::Progress { id, .. }
            | Response::StatsRows { id, .. }
            | Response::AllStatsDone { id, .. } => Some(*id),
            Response::Journal(r) => Some(r.id),
            Response::Preview(r) => Some(r.id),
            Response::ExportProgress(r) | Response::DiffProgress(r) => Some(r.id),
            Response::Exported(r) => Some(r.id),
            Response::OpenedB(r) => Some(r.id),
            Response::Diff(r) => Some(r.id),
            Response::Trend(r) => Some(r.id()),
            Response::Window(r) => Some(r.id),
            Response::StatsReport(r) => Some(r.id),
            Response::Ab(r) => Some(r.id),
            Response::Merge(r) => Some(r.id()),
            Response::Search(r) => Some(r.id),
        }
    }
}

/// Answer to `open`: what the file is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detected {
    pub id: RequestId,
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// [`crate::format::Format::name`] (`torch-zip`, `safetensors`, `unknown`, ...).
    pub format: String,
    /// [`crate::format::Format::describe`].
    pub format_description: String,
    /// How many files the request carried in all (1 for a single checkpoint file).
    pub files: u32,
}

/// The id of the summary a worker posts once before [`Response::Ready`]: the index of the tiny
/// checkpoint it opened from memory to compile its open path (`worker::service`), which the
/// page uses to compile and lay out its own (it never answers a request: the page's ids start
/// far above it).
pub const WARM_ID: RequestId = 0;

/// The bytes of the two requests the warm-up sends through the worker's message handler, as the
/// page encodes them: `open {id: WARM_ID, files: [the JS value at position 0]}` and
/// `journal_list {id: WARM_ID}`. Written out so the worker carries no encoder of requests
/// (a native test checks them against [`super::wire::to_bytes`]).
pub const WARM_OPEN: [u8; 4] = [0, WARM_ID as u8, 1, 0];
/// See [`WARM_OPEN`].
pub const WARM_JOURNAL_LIST: [u8; 2] = [11, WARM_ID as u8];
const _: () = assert!(WARM_ID < 0x80, "a one-byte varint");

/// Answer to `open` when the checkpoint's index was built.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub id: RequestId,
    /// Number of tensors.
    pub tensors: u64,
    /// Total number of tensor elements.
    pub params: u64,
    /// [`crate::format::SafetyReport::verdict`].
    pub verdict: Verdict,
    /// Every global the pickle references.
    pub globals: Vec<GlobalInfo>,
    /// Non-fatal observations from the reader.
    pub notes: Vec<String>,
    /// `(dtype, parameters)` in dtype order.
    #[serde(default)]
    pub params_by_dtype: Vec<(DType, u64)>,
    /// Sum of the tensors' bytes (views counted at their own size).
    #[serde(default)]
    pub bytes: u64,
    /// Every tensor, in file order (the index used by later requests).
    #[serde(default)]
    pub entries: Vec<Entry>,
    /// Non-tensor leaves of the object tree (epoch, hyper-parameters, ...).
    #[serde(default)]
    pub values: Vec<ValueEntry>,
    /// safetensors `__metadata__` (merged over shards), in file order.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    /// What loading would call, in Python syntax with arguments in Python's repr
    /// ([`crate::format::SafetyReport::calls`]).
    #[serde(default)]
    pub calls: Vec<String>,
}

/// One tensor of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Path from the root (as in `inspect --json`).
    pub path: Vec<String>,
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
    pub storage_offset: u64,
    pub numel: u64,
    pub bytes: u64,
    /// Index of its storage (tensors with the same one share bytes); `None` for meta tensors.
    pub storage: Option<u32>,
}

impl Entry {
    /// The page's form of one tensor of an index.
    pub fn of(t: &crate::format::TensorInfo) -> Entry {
        Entry {
            path: t.path.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            strides: t.strides.clone(),
            storage_offset: t.storage_offset,
            numel: t.numel(),
            bytes: t.nbytes(),
            storage: t.storage.map(|s| s as u32),
        }
    }
}

/// A non-tensor value of the object tree, shown as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueEntry {
    pub path: Vec<String>,
    /// Short display text (`3`, `'adam'`, `[0, 1, 2]`, `os.system(...)`).
    pub text: String,
    /// The value's kind (`int`, `float`, `str`, `list`, `object`, ...).
    pub kind: String,
    /// File order: the number of tensors met before it in the object tree.
    pub after: u32,
}

/// Answer to `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    pub id: RequestId,
    pub tensor: u32,
    pub stats: crate::stats::TensorStats,
}

/// Answer to `values`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValuesReply {
    pub id: RequestId,
    pub tensor: u32,
    pub values: Vec<String>,
    /// Elements in the tensor.
    pub total: u64,
}

/// Answer to `heatmap`: `rows`×`cols` cells (row-major), each the mean |x| of a block of the
/// tensor; `NaN` for blocks without finite values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatmapReply {
    pub id: RequestId,
    pub tensor: u32,
    pub rows: u32,
    pub cols: u32,
    pub cells: Vec<f32>,
}

/// Which values of a tensor the value viewer asks for ([`super::window`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// `count` elements from element `first`, in row-major order.
    Flat { first: u64, count: u32 },
    /// Rows `row0..row0 + rows` × columns `col0..col0 + cols` of the plane spanned by axes
    /// `row_axis` and `col_axis`, the other axes at `index` (one entry per axis; the plane's two
    /// are ignored). Cells row by row.
    Plane {
        row_axis: u32,
        col_axis: u32,
        index: Vec<u64>,
        row0: u64,
        rows: u32,
        col0: u64,
        cols: u32,
    },
}

/// Answer to `window`: display texts and numbers (real parts of complex values), in the
/// window's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReply {
    pub id: RequestId,
    pub tensor: u32,
    pub values: Vec<String>,
    pub numbers: Vec<f64>,
}

/// Answer to `search`: `(path index, match start, match end)` of every matching path, or the
/// pattern's error (one line) in `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchReply {
    pub id: RequestId,
    pub matches: Vec<(u32, u32, u32)>,
    pub error: Option<String>,
}

/// Answer to `stats_report`: the same report as JSON and as CSV ([`crate::stats::report`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReportReply {
    pub id: RequestId,
    pub json: String,
    pub csv: String,
}

/// Answer to `ab` ([`super::ab`]): A's and B's histograms share their edges; `diff` is the
/// histogram of a − b (`None` when the shapes differ).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AbReply {
    pub id: RequestId,
    pub key: String,
    pub b_key: String,
    pub same_shape: bool,
    pub a: crate::stats::Histogram,
    pub b: crate::stats::Histogram,
    pub diff: Option<crate::stats::Histogram>,
    pub nonfinite_a: u64,
    pub nonfinite_b: u64,
    pub nonfinite_diff: u64,
    pub error: Option<String>,
}

/// The summary of one tensor in an `all_stats` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsRow {
    pub tensor: u32,
    pub summary: crate::stats::ValueSummary,
    pub l2: f64,
    pub absmax: Option<f64>,
}

impl StatsRow {
    pub fn of(tensor: u32, s: &crate::stats::TensorStats) -> StatsRow {
        StatsRow {
            tensor,
            summary: s.summary,
            l2: s.l2,
            absmax: s.absmax,
        }
    }
}

/// One global a pickle references, for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalInfo {
    pub module: String,
    pub name: String,
    pub tier: Tier,
    #[serde(default)]
    pub why: String,
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The request; `None` when the message itself could not be decoded.
    pub id: Option<RequestId>,
    /// `file: place: message`.
    pub error: String,
    /// What went wrong, for the page to act on (it never reads `error` to decide).
    #[serde(default)]
    pub kind: ErrorKind,
}

/// The closed set of failures a request can meet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A file could not be read, or an operation on it failed (the message says where).
    #[default]
    File,
    /// The request needs an open checkpoint and none is open.
    NoFile,
    /// The message could not be decoded, or names something that does not exist.
    Request,
}

impl ErrorReply {
    /// An error answer of `kind` for request `id`.
    pub fn new(id: Option<RequestId>, kind: ErrorKind, error: impl Into<String>) -> Self {
        ErrorReply {
            id,
            error: error.into(),
            kind,
        }
    }

    /// An error answer for request `id` from a reader error.
    pub fn from_format(id: RequestId, e: &FormatError) -> Self {
        Self::new(Some(id), ErrorKind::File, e.to_string())
    }

    /// "no checkpoint is open" for request `id`.
    pub fn no_file(id: RequestId) -> Self {
        Self::new(Some(id), ErrorKind::NoFile, "no checkpoint is open")
    }
}

impl Summary {
    /// The page's summary of an opened checkpoint.
    pub fn of(id: RequestId, ckpt: &Checkpoint) -> Self {
        Summary {
            id,
            tensors: ckpt.tensors.len() as u64,
            params: ckpt.total_params(),
            verdict: ckpt.safety.verdict(),
            globals: ckpt
                .safety
                .globals
                .iter()
                .map(|g| GlobalInfo {
                    module: g.module.clone(),
                    name: g.name.clone(),
                    tier: g.tier,
                    why: g.why.clone(),
                })
                .collect(),
            notes: ckpt.notes.clone(),
            metadata: ckpt.metadata.clone(),
            calls: ckpt.safety.calls.clone(),
            params_by_dtype: ckpt.params_by_dtype().into_iter().collect(),
            bytes: ckpt
                .tensors
                .iter()
                .fold(0u64, |a, t| a.saturating_add(t.nbytes())),
            entries: ckpt.tensors.iter().map(Entry::of).collect(),
            values: super::values::collect(&ckpt.root),
        }
    }
}

// --- edit & compare

/// An edit operation as the page sends it: the one spec in [`crate::edit::spec`].
pub use crate::edit::spec::OpSpec;

/// The journal after a request (`error`: why the request was refused; nothing changed then).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalReply {
    pub id: RequestId,
    /// Name of the opened file being edited.
    pub file: String,
    /// Applied operations, oldest first.
    pub ops: Vec<String>,
    /// Undone operations `redo` would re-apply, next first.
    pub redo: Vec<String>,
    /// Tensors in the edited checkpoint, and the first keys (`/`-joined paths).
    pub tensors: u64,
    pub keys: Vec<String>,
    /// What a torch / safetensors export would drop, with the reason.
    pub drops_torch: Vec<String>,
    pub drops_safetensors: Vec<String>,
    pub error: Option<String>,
    /// The edited index: every tensor of the edited tree in its order, and its non-tensor
    /// values — both empty when no file is open or no operation is applied (the index is then
    /// the opened file's own, which the page has from the open) — and its safetensors metadata.
    #[serde(default)]
    pub entries: Vec<EditedEntry>,
    #[serde(default)]
    pub values: Vec<ValueEntry>,
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    /// True when the request was an operation that was applied (not a refusal, not a list).
    #[serde(default)]
    pub applied: bool,
}

/// What an operation would do (`error`: the refusal, e.g. the collisions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreviewReply {
    pub id: RequestId,
    pub describe: String,
    /// Number of keys affected (the lists stop at a few hundred rows).
    pub changed: u64,
    /// old → new names (or a cast's key → key as dtype).
    pub renames: Vec<(String, String)>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
    pub error: Option<String>,
}

/// Progress of a long request: `done` of `total` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub id: RequestId,
    pub done: u64,
    pub total: u64,
}

/// A JS `Blob` an answer carries (natively: nothing); on the wire, its position among the
/// message's JS values ([`handle`]).
#[cfg(target_arch = "wasm32")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobHandle(#[serde(with = "handle")] pub wasm_bindgen::JsValue);

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// The JS values beside the message being encoded or decoded ([`to_wire`], [`from_wire`]).
    static HANDLES: std::cell::RefCell<Vec<wasm_bindgen::JsValue>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// The serde of a JS value a message carries (`#[serde(with = "handle")]`: a request's `File`
/// and disk target, an answer's `Blob`): written as its position in the list of JS values
/// beside the message's bytes, read back as the value at that position, checked to be a `T`.
#[cfg(target_arch = "wasm32")]
pub mod handle {
    use super::HANDLES;
    use serde::{Deserialize, Deserializer, Serializer};
    use wasm_bindgen::{JsCast, JsValue};

    pub fn serialize<T: AsRef<JsValue>, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let at = HANDLES.with(|h| {
            let mut h = h.borrow_mut();
            h.push(v.as_ref().clone());
            h.len() - 1
        });
        s.serialize_u32(at as u32)
    }

    pub fn deserialize<'de, T: JsCast, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let at = u32::deserialize(d)? as usize;
        HANDLES
            .with(|h| h.borrow().get(at).cloned())
            .and_then(|v| v.dyn_into::<T>().ok())
            .ok_or_else(|| serde::de::Error::custom("no JS value of this type at this position"))
    }
}

/// A message as it crosses: its postcard bytes ([`super::wire`]) and the JS values it carries
/// (in the order the bytes name them).
#[cfg(target_arch = "wasm32")]
pub fn to_wire<T: Serialize>(m: &T) -> Result<(Vec<u8>, Vec<wasm_bindgen::JsValue>), String> {
    HANDLES.with(|h| h.borrow_mut().clear());
    let bytes = super::wire::to_bytes(m).map_err(|e| e.to_string());
    let handles = HANDLES.with(|h| std::mem::take(&mut *h.borrow_mut()));
    Ok((bytes?, handles))
}

/// The message [`to_wire`] encoded, read from its bytes by `read` with `handles` beside them.
#[cfg(target_arch = "wasm32")]
fn from_wire<T>(
    bytes: &[u8],
    handles: Vec<wasm_bindgen::JsValue>,
    read: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, String> {
    HANDLES.with(|h| *h.borrow_mut() = handles);
    let r = read(bytes).map_err(|e| format!("the message does not decode: {e}"));
    HANDLES.with(|h| h.borrow_mut().clear());
    r
}

/// A message as the JS array `[BYTES, HANDLE…]` that is posted ([`to_wire`]).
#[cfg(target_arch = "wasm32")]
pub fn to_message<T: Serialize>(m: &T) -> Result<wasm_bindgen::JsValue, String> {
    let (bytes, handles) = to_wire(m)?;
    let list = js_sys::Array::new();
    list.push(&js_sys::Uint8Array::from(&bytes[..]));
    for h in &handles {
        list.push(h);
    }
    Ok(list.into())
}

/// The BYTES of a posted message (`None` for anything else).
#[cfg(target_arch = "wasm32")]
pub fn message_bytes(v: &wasm_bindgen::JsValue) -> Option<js_sys::Uint8Array> {
    use wasm_bindgen::JsCast;
    v.dyn_ref::<js_sys::Array>()?.get(0).dyn_into().ok()
}

/// The bytes and JS values of a posted message.
#[cfg(target_arch = "wasm32")]
fn unpack(v: &wasm_bindgen::JsValue) -> Result<(Vec<u8>, Vec<wasm_bindgen::JsValue>), String> {
    use wasm_bindgen::JsCast;
    let bytes = message_bytes(v).ok_or("not an encoded message")?;
    let list: &js_sys::Array = v.unchecked_ref();
    Ok((
        bytes.to_vec(),
        (1..list.length()).map(|i| list.get(i)).collect(),
    ))
}

/// A request from what [`to_message`] made (in the worker), read by [`super::wire::from_bytes`]:
/// at the worker's opt-level 3, postcard's inlined deserializer was a 19 KB copy in the requests'
/// one visitor function.
#[cfg(target_arch = "wasm32")]
pub fn request_from_message<F: serde::de::DeserializeOwned>(
    v: &wasm_bindgen::JsValue,
) -> Result<Request<F>, String> {
    let (bytes, handles) = unpack(v)?;
    from_wire(&bytes, handles, |b| {
        super::wire::from_bytes(b).map_err(|e| e.to_string())
    })
}

/// An answer from what [`to_message`] made (on the page), read by `postcard`: at the page's
/// opt-level "z" its deserializer is smaller than [`super::wire::from_bytes`] (the answers'
/// visitor 25.7 KB instead of 40.2 KB).
#[cfg(target_arch = "wasm32")]
pub fn response_from_message(v: &wasm_bindgen::JsValue) -> Result<Response, String> {
    let (bytes, handles) = unpack(v)?;
    from_wire(&bytes, handles, |b| {
        postcard::from_bytes(b).map_err(|e| e.to_string())
    })
}

/// A JS `Blob` carried through serde untouched (natively: nothing).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlobHandle;

/// A finished export: the file as a Blob and the writer's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportReply {
    pub id: RequestId,
    /// The download name (`resnet.edited.pth`, `resnet.safetensors`).
    pub name: String,
    pub size: u64,
    pub blob: BlobHandle,
    pub tensors: u64,
    pub dropped: Vec<String>,
    /// (removed name, kept name) of safetensors aliases written once.
    pub aliases: Vec<(String, String)>,
    /// (tensor, values that became ±inf in a cast).
    pub overflow: Vec<(String, u64)>,
    pub copied_bytes: u64,
    pub new_bytes: u64,
    /// Worker time for the export, and the worker's wasm memory before and after (bytes).
    pub millis: f64,
    pub wasm_memory_before: u64,
    pub wasm_memory_after: u64,
}

/// Answer to `open_b`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenedB {
    pub id: RequestId,
    pub name: String,
    pub tensors: u64,
    pub error: Option<String>,
    /// Its input number (1..; 0 when it failed to open): `choose_b` picks it again.
    #[serde(default)]
    pub input: u32,
}

/// One changed tensor of a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedRow {
    pub key: String,
    pub max_abs: Option<f64>,
    pub rel_l2: Option<f64>,
    pub cosine: Option<f64>,
}

/// One dtype/shape mismatch of a diff: `dtype[shape]` of each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MismatchRow {
    pub key: String,
    pub a: String,
    pub b: String,
}

/// The comparison of A and B. `changed` is in A's file order (for the per-layer chart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiffReply {
    pub id: RequestId,
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
    pub mismatched: Vec<MismatchRow>,
    pub changed: Vec<ChangedRow>,
    pub identical: u64,
    pub error: Option<String>,
}

impl DiffReply {
    /// The page's form of a diff report; changed rows sorted into A's tensor order.
    pub fn of(id: RequestId, _a: &Checkpoint, r: &crate::stats::diff::DiffReport) -> Self {
        let mut changed: Vec<_> = r.changed.iter().collect();
        crate::order::sort_by_key(&mut changed, |c| c.a_index);
        let side = |s: &crate::stats::diff::Side| format!("{}{:?}", s.dtype, s.shape);
        DiffReply {
            id,
            only_a: r.only_a.clone(),
            only_b: r.only_b.clone(),
            mismatched: r
                .mismatched
                .iter()
                .map(|m| MismatchRow {
                    key: m.key.clone(),
                    a: side(&m.a),
                    b: side(&m.b),
                })
                .collect(),
            changed: changed
                .into_iter()
                .map(|c| ChangedRow {
                    key: c.key.clone(),
                    max_abs: c.max_abs,
                    rel_l2: c.rel_l2,
                    cosine: c.cosine,
                })
                .collect(),
            identical: r.identical,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{DType, Format, GlobalRef, Node, SafetyReport, StorageInfo, TensorInfo};
    use serde_json::json;

    /// The requests' wire, natively (a file is its name, a disk target nothing; tests/web.rs
    /// checks the same requests with `File`s and JS values in the browser).
    #[cfg(not(target_arch = "wasm32"))]
    mod requests {
        use super::super::*;
        use crate::export::merge::Method;
        use crate::worker::merge::{DiskTarget, MergeRequest, MergeSpec};
        use crate::worker::trend::TrendRequest;
        use crate::worker::wire;

        include!("../../tests/requests_common/every_request.rs");

        /// Every request kind crosses as postcard's bytes (the page writes them with [`wire`],
        /// the worker reads them with it) and decodes back to the same request, bit for bit:
        /// re-encoding the decoded request gives the same bytes (NaN payloads and `-0.0`
        /// included); postcard reads the same bytes to the same request.
        #[test]
        fn every_request_crosses_as_postcard_bytes_and_back() {
            let all = every_request(|name| name.to_string(), || DiskTarget);
            let mut kinds = std::collections::BTreeSet::new();
            for r in &all {
                let bytes = wire::to_bytes(r).unwrap();
                assert_eq!(bytes, postcard::to_allocvec(r).unwrap(), "{r:?}");
                let back: Request<String> = wire::from_bytes(&bytes).unwrap();
                assert_eq!(wire::to_bytes(&back).unwrap(), bytes, "{r:?}");
                let theirs: Request<String> = postcard::from_bytes(&bytes).unwrap();
                assert_eq!(wire::to_bytes(&theirs).unwrap(), bytes, "{r:?}");
                assert_eq!(back.id(), r.id());
                if !format!("{r:?}").contains("NaN") {
                    assert_eq!(&back, r);
                }
                kinds.insert(bytes[0]);
            }
            // every variant of `Request` (its index is the first byte)
            assert_eq!(
                kinds.into_iter().collect::<Vec<_>>(),
                (0..26).collect::<Vec<u8>>()
            );
            assert_eq!(all[27].id(), 27);
            let Request::Merge(MergeRequest::MergePreview { spec, .. }) =
                wire::from_bytes::<Request<String>>(&postcard::to_allocvec(&all[27]).unwrap())
                    .unwrap()
            else {
                panic!("not the merge preview with NaN weights")
            };
            let Method::Linear { weights } = spec.method else {
                panic!("{:?}", spec.method)
            };
            assert!(weights[1].is_nan() && weights[2].to_bits() == (-0.0f64).to_bits());
        }

        #[test]
        fn the_warm_up_requests_are_what_the_page_sends() {
            // a file is its position among the message's JS values: the first is 0
            let open = Request::Open {
                id: WARM_ID,
                files: vec![0u32],
            };
            assert_eq!(wire::to_bytes(&open).unwrap(), WARM_OPEN);
            let list = Request::<u32>::JournalList { id: WARM_ID };
            assert_eq!(wire::to_bytes(&list).unwrap(), WARM_JOURNAL_LIST);
        }

        #[test]
        fn unknown_or_truncated_request_is_rejected() {
            // variant 25 does not exist; an open without its files; a trailing varint cut short
            for bad in [&[25u8, 1][..], &[0, 1], &[1, 0xff]] {
                assert!(wire::from_bytes::<Request<String>>(bad).is_err(), "{bad:?}");
            }
        }
    }

    #[test]
    fn response_wire_shapes() {
        assert_eq!(
            serde_json::to_value(Response::Ready).unwrap(),
            json!("ready")
        );
        let d = Response::Detected(Detected {
            id: 3,
            name: "m.pth".into(),
            size: 1234,
            format: "torch-zip".into(),
            format_description: "zip".into(),
            files: 1,
        });
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"detected": {"id": 3, "name": "m.pth", "size": 1234, "format": "torch-zip",
                                "format_description": "zip", "files": 1}})
        );
        let e = Response::Error(ErrorReply::new(
            Some(4),
            ErrorKind::File,
            "x.bin: byte 0: bad",
        ));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"error": {"id": 4, "error": "x.bin: byte 0: bad", "kind": "file"}})
        );
        for r in [Response::Ready, d, e] {
            let back: Response = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn error_kinds_are_a_closed_set() {
        let r = ErrorReply::from_format(
            2,
            &FormatError::at("data.pkl", "byte 12: truncated").in_file("m.pth"),
        );
        assert_eq!(r.kind, ErrorKind::File);
        assert_eq!(r.error, "m.pth: data.pkl: byte 12: truncated");
        assert_eq!(ErrorReply::no_file(3).kind, ErrorKind::NoFile);
        assert_eq!(
            serde_json::to_value(ErrorKind::NoFile).unwrap(),
            json!("no_file")
        );
        // an old page's error without a kind still decodes
        let old: ErrorReply = serde_json::from_value(json!({"id": 1, "error": "x"})).unwrap();
        assert_eq!(old.kind, ErrorKind::File);
    }

    fn tensor(path: &str, shape: Vec<u64>) -> TensorInfo {
        let strides = crate::format::safetensors::contiguous_strides(&shape);
        TensorInfo::f32_at_start(path, shape, strides)
    }

    #[test]
    fn summary_counts_tensors_params_and_globals() {
        let mut safety = SafetyReport::default();
        safety.add(GlobalRef {
            module: "torch._utils".into(),
            name: "_rebuild_tensor_v2".into(),
            tier: Tier::Allowed,
            why: String::new(),
        });
        safety.add(GlobalRef {
            module: "os".into(),
            name: "system".into(),
            tier: Tier::Dangerous,
            why: "runs a shell command".into(),
        });
        let ckpt = Checkpoint {
            format: Format::TorchZip,
            root: Node::None,
            tensors: vec![
                tensor("w", vec![2, 3]),
                tensor("b", vec![3]),
                tensor("s", vec![]),
            ],
            storages: vec![StorageInfo::plain("0", "archive/data/0", DType::F32, 40, 0)],
            safety,
            metadata: vec![],
            files: vec!["m.pth".into()],
            notes: vec!["assumed little-endian".into()],
        };
        let s = Summary::of(9, &ckpt);
        assert_eq!(s.id, 9);
        assert_eq!(s.tensors, 3);
        assert_eq!(s.params, 6 + 3 + 1);
        assert_eq!(s.verdict, "dangerous");
        assert_eq!(s.globals.len(), 2);
        assert_eq!(s.globals[1].tier, Tier::Dangerous);
        assert_eq!(s.globals[1].why, "runs a shell command");
        assert_eq!(s.notes, vec!["assumed little-endian".to_string()]);
    }
}
