//! The index of an opened checkpoint: its whole object tree, its tensors (metadata only), where
//! each storage's bytes lie, and the safety report of the pickle's globals.
//!
//! Contract: building a [`Checkpoint`] never reads tensor bytes. Every reader (torch zip, legacy,
//! safetensors, sharded) produces this same structure; the UI, statistics, editing and the CLI
//! consume only this plus a [`super::Source`] per file.

use super::detect::Format;
use super::dtype::DType;
use serde::{Deserialize, Serialize};

/// One opened checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub format: Format,
    /// The object tree, root first. Tensors are [`Node::Tensor`] indices into `tensors`.
    pub root: Node,
    /// Every tensor reachable from the root, in depth-first file order.
    pub tensors: Vec<TensorInfo>,
    /// Storages (zip records, legacy raw blocks, safetensors byte ranges).
    pub storages: Vec<StorageInfo>,
    /// What the pickle references (empty for safetensors).
    pub safety: SafetyReport,
    /// safetensors `__metadata__` (merged over shards), in file order.
    pub metadata: Vec<(String, String)>,
    /// File names this checkpoint reads from; `StorageInfo::file` indexes it. One entry for a
    /// single-file checkpoint (its own name), one per shard for a sharded one.
    pub files: Vec<String>,
    /// Non-fatal observations (e.g. "no byteorder record: assumed little-endian").
    pub notes: Vec<String>,
}

/// A node of the checkpoint's object tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Node {
    None,
    Bool {
        value: bool,
    },
    Int {
        value: i64,
    },
    /// An integer outside i64, as decimal text.
    BigInt {
        value: String,
    },
    Float {
        value: f64,
    },
    Complex {
        re: f64,
        im: f64,
    },
    Str {
        value: String,
    },
    /// Bytes (kept whole so that an export loses nothing).
    Bytes {
        data: Vec<u8>,
    },
    /// dict / OrderedDict / Counter, items in insertion order. `attrs` holds attributes set by
    /// BUILD (an OrderedDict's `_metadata`). `state_dict` marks string keys → tensors.
    Dict {
        kind: DictKind,
        items: Vec<(Key, Node)>,
        attrs: Vec<(Key, Node)>,
        state_dict: bool,
    },
    List {
        items: Vec<Node>,
    },
    Tuple {
        items: Vec<Node>,
    },
    Set {
        items: Vec<Node>,
        frozen: bool,
    },
    /// A tensor: index into [`Checkpoint::tensors`].
    Tensor {
        index: usize,
    },
    /// `torch.float16` and friends as values.
    Dtype {
        name: String,
    },
    /// `torch.device('cuda', 0)` → "cuda:0".
    Device {
        value: String,
    },
    /// `torch.Size([...])`.
    Size {
        dims: Vec<i64>,
    },
    /// A global referenced as a value (a class object, a qscheme, a layout).
    Global {
        module: String,
        name: String,
    },
    /// An inert object: a call of a global that was *not* executed (unknown or dangerous
    /// classes, numpy scalars, argparse.Namespace). `args`/`state` are kept for display.
    Object {
        module: String,
        name: String,
        args: Vec<Node>,
        state: Option<Box<Node>>,
        items: Vec<(Key, Node)>,
    },
    /// A value seen before on this path (a reference cycle), or elided by a size budget.
    Elided {
        reason: String,
    },
}

/// How a dict was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DictKind {
    Dict,
    OrderedDict,
    Counter,
}

/// A dict key: strings, ints and everything else (rendered as text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Key {
    Str(String),
    Int(i64),
    Other(String),
}

impl Key {
    /// The path segment for this key: strings as is, ints in decimal.
    pub fn segment(&self) -> String {
        match self {
            Key::Str(s) => s.clone(),
            Key::Int(i) => i.to_string(),
            Key::Other(s) => s.clone(),
        }
    }
}

/// Metadata of one tensor. Bytes live in `storages[storage]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInfo {
    /// Keys from the root to this tensor; list indices as decimal strings.
    pub path: Vec<String>,
    pub dtype: DType,
    pub shape: Vec<u64>,
    /// Strides in elements.
    pub strides: Vec<u64>,
    /// Offset into the storage, in elements.
    pub storage_offset: u64,
    /// Index into [`Checkpoint::storages`]; `None` for meta tensors (no data).
    pub storage: Option<usize>,
    pub requires_grad: bool,
    /// Saved as `nn.Parameter`.
    pub parameter: bool,
    pub kind: TensorKind,
}

/// What sort of tensor this is beyond dense data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TensorKind {
    Dense,
    /// Stored data is conjugated / negated relative to the logical value (`{'conj': True}`).
    ConjNeg {
        conj: bool,
        neg: bool,
    },
    /// Quantized (`_rebuild_qtensor`): stored values are the integer codes.
    Quantized {
        scheme: String,
        scale: Option<f64>,
        zero_point: Option<i64>,
        /// Per-channel quantizers: the scales and zero points are tensors of their own.
        #[serde(skip_serializing_if = "Option::is_none")]
        per_channel: Option<Box<PerChannel>>,
    },
    /// A meta-device tensor: shape and dtype only.
    Meta,
}

/// A per-channel quantizer (`per_channel_affine`): float64 scales and int64 zero points along
/// `axis`, each stored like any tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerChannel {
    pub scales: TensorInfo,
    pub zero_points: TensorInfo,
    pub axis: i64,
}

impl TensorInfo {
    /// A dense float32 tensor at the start of storage 0 (tests' hand-built indices).
    #[cfg(test)]
    pub(crate) fn f32_at_start(path: &str, shape: Vec<u64>, strides: Vec<u64>) -> TensorInfo {
        TensorInfo {
            path: vec![path.into()],
            dtype: DType::F32,
            shape,
            strides,
            storage_offset: 0,
            storage: Some(0),
            requires_grad: false,
            parameter: false,
            kind: TensorKind::Dense,
        }
    }

    /// Number of elements (saturating: readers refuse shapes whose count overflows, see
    /// [`super::bounds`], so this only matters for hand-built indices).
    pub fn numel(&self) -> u64 {
        self.shape.iter().fold(1u64, |a, &n| a.saturating_mul(n))
    }
    /// Bytes of the contiguous tensor (saturating, as [`TensorInfo::numel`]).
    pub fn nbytes(&self) -> u64 {
        self.numel().saturating_mul(self.dtype.size() as u64)
    }
    /// Path joined by `/` (the page's `data-path`).
    pub fn path_string(&self) -> String {
        self.path.join("/")
    }
    /// True when the elements are laid out row-major without gaps (size-1 dims ignored).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1u64;
        for (&n, &s) in self.shape.iter().zip(&self.strides).rev() {
            if n != 1 && s != expected {
                return false;
            }
            expected = expected.saturating_mul(n);
        }
        true
    }
}

/// Where one storage's bytes are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageInfo {
    /// The storage key (`"0"`, a legacy pointer, a safetensors tensor name).
    pub key: String,
    /// Human name of the record for error messages (`archive/data/0`).
    pub record: String,
    /// Element type used for counting and byte-swapping.
    pub dtype: DType,
    /// Length in bytes.
    pub nbytes: u64,
    /// Index into [`Checkpoint::files`].
    pub file: usize,
    /// Absolute offset of the first byte in that file.
    pub offset: u64,
    /// The record's CRC-32 from the zip central directory (None: not a zip, or CRC stored as 0).
    pub crc32: Option<u32>,
    /// Stored big-endian (the zip `byteorder` record says `big`).
    pub big_endian: bool,
    /// A zip record whose local header has not been read yet: the header's offset. Opening
    /// stays at a fixed number of reads however many tensors there are; [`StorageInfo::data_offset`]
    /// reads the header (one small read) when the bytes are needed. `offset` is unset meanwhile.
    #[serde(skip)]
    pub zip_header: Option<u64>,
    /// A deflated zip record: its compressed length in the file (`nbytes` is the inflated
    /// length). Read through [`StorageInfo::bytes`], which inflates as it streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deflated: Option<u64>,
}

impl StorageInfo {
    /// A storage of `nbytes` little-endian bytes at `offset` of file 0, read as they are (no
    /// CRC to check, no zip header to read first, not deflated).
    pub fn plain(
        key: impl Into<String>,
        record: impl Into<String>,
        dtype: DType,
        nbytes: u64,
        offset: u64,
    ) -> StorageInfo {
        StorageInfo {
            key: key.into(),
            record: record.into(),
            dtype,
            nbytes,
            file: 0,
            offset,
            crc32: None,
            big_endian: false,
            zip_header: None,
            deflated: None,
        }
    }

    /// Absolute offset of the first data byte, reading the zip local header if needed.
    pub fn data_offset(&self, src: &dyn super::Source) -> Result<u64, super::FormatError> {
        match self.zip_header {
            None => Ok(self.offset),
            Some(h) => super::zip::local_data_offset(src, h, self.deflated.unwrap_or(self.nbytes))
                .map_err(|e| e.within(self.record.clone())),
        }
    }

    /// The storage's (uncompressed) bytes as a source of `nbytes` bytes: a window of the file,
    /// or a deflated record inflated as it is read (CRC-32 checked at its end).
    pub fn bytes<'a>(
        &self,
        src: &'a dyn super::Source,
    ) -> Result<super::inflate::RecordBytes<'a>, super::FormatError> {
        let span = super::inflate::RecordSpan {
            start: self.data_offset(src)?,
            stored_len: self.deflated.unwrap_or(self.nbytes),
            size: self.nbytes,
            deflated: self.deflated.is_some(),
            crc32: self.crc32,
        };
        Ok(super::inflate::RecordBytes::new(src, span))
    }
}

/// Safety tier of a global referenced by a pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Allowed,
    Unknown,
    Dangerous,
}

impl Tier {
    /// `allowed`, `unknown` or `dangerous`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Allowed => "allowed",
            Tier::Unknown => "unknown",
            Tier::Dangerous => "dangerous",
        }
    }
}

/// What loading the file with `torch.load(weights_only=False)` would do, in one word: `safe`
/// (every global is on torch's allow-list), `unknown` (inert objects torch would refuse) or
/// `dangerous` (something would run).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    #[default]
    Safe,
    Unknown,
    Dangerous,
}

impl Verdict {
    /// `safe`, `unknown` or `dangerous`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::Unknown => "unknown",
            Verdict::Dangerous => "dangerous",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Compare with the word (`verdict() == "dangerous"`).
impl PartialEq<&str> for Verdict {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// One global referenced by a pickle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalRef {
    pub module: String,
    pub name: String,
    pub tier: Tier,
    /// Why it is dangerous / unknown, for the page.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// What a checkpoint's pickles reference, deduplicated, in order of first use.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SafetyReport {
    pub globals: Vec<GlobalRef>,
    /// Dangerous constructs not tied to a named global (e.g. a STACK_GLOBAL whose operands are
    /// computed rather than plain strings). Any finding makes the verdict `dangerous`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// (module, name) → index in `globals`: [`SafetyReport::add`] is O(1), so a pickle naming a
    /// million globals costs linear time.
    #[serde(skip)]
    seen: crate::format::fastmap::KeyMap<(String, String), usize>,
    /// What loading would call, as Python code with every argument in Python's `repr`
    /// (`posix.system('echo pwned')`): calls of globals that are not allowed, first
    /// [`SafetyReport::MAX_LISTED`] distinct ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
}

impl SafetyReport {
    /// `safe` when every global is allowed, `dangerous` if any is dangerous, else `unknown`.
    pub fn verdict(&self) -> Verdict {
        if !self.findings.is_empty() {
            return Verdict::Dangerous;
        }
        match self.globals.iter().map(|g| g.tier).max() {
            Some(Tier::Dangerous) => Verdict::Dangerous,
            Some(Tier::Unknown) => Verdict::Unknown,
            _ => Verdict::Safe,
        }
    }
    /// Merge another report (shards, several pickles).
    pub fn merge(&mut self, other: SafetyReport) {
        for g in other.globals {
            self.add(g);
        }
        for f in other.findings {
            self.add_finding(f);
        }
        for c in other.calls {
            self.add_call(c);
        }
    }
    /// Most findings and calls kept (each list is deduplicated; O(1) per add).
    pub const MAX_LISTED: usize = 64;
    /// Record a dangerous finding once (the first [`Self::MAX_LISTED`] distinct ones).
    pub fn add_finding(&mut self, f: String) {
        if self.findings.len() < Self::MAX_LISTED && !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }
    /// Record a call loading would make once (the first [`Self::MAX_LISTED`] distinct ones).
    pub fn add_call(&mut self, c: String) {
        if self.calls.len() < Self::MAX_LISTED && !self.calls.contains(&c) {
            self.calls.push(c);
        }
    }
    /// Record a global once (the highest tier it was given wins).
    pub fn add(&mut self, g: GlobalRef) {
        let n = self.globals.len();
        let i = *self
            .seen
            .get_or_insert_with((g.module.clone(), g.name.clone()), || n);
        if i == n {
            self.globals.push(g);
        } else if g.tier > self.globals[i].tier {
            self.globals[i] = g;
        }
    }
}

impl Checkpoint {
    /// A single-file checkpoint whose tree came from a pickle (torch zip, legacy, tar): its
    /// `files` is `[name]`, it has no metadata.
    pub(crate) fn from_pickle(
        format: Format,
        name: &str,
        pickled: super::pickle::tree::Pickled,
        storages: Vec<StorageInfo>,
        notes: Vec<String>,
    ) -> Checkpoint {
        Checkpoint {
            format,
            root: pickled.root,
            tensors: pickled.tensors,
            storages,
            safety: pickled.safety,
            metadata: Vec::new(),
            files: vec![name.to_string()],
            notes,
        }
    }

    /// Total number of tensor elements.
    pub fn total_params(&self) -> u64 {
        // saturating: expanded views can each claim up to 2^60 elements
        self.tensors
            .iter()
            .fold(0u64, |a, t| a.saturating_add(t.numel()))
    }
    /// Parameters per dtype, in dtype order.
    pub fn params_by_dtype(&self) -> Vec<(DType, u64)> {
        let mut m = std::collections::BTreeMap::new();
        for t in &self.tensors {
            let n = m.entry(t.dtype).or_insert(0u64);
            *n = n.saturating_add(t.numel());
        }
        m.into_iter().collect()
    }
    /// Indices of the other tensors that share `t`'s storage.
    pub fn shared_with(&self, t: usize) -> Vec<usize> {
        match self.tensors[t].storage {
            None => vec![],
            Some(s) => (0..self.tensors.len())
                .filter(|&i| i != t && self.tensors[i].storage == Some(s))
                .collect(),
        }
    }
}

/// Dropping a tree never recurses, however deep it is: children are moved onto an explicit stack
/// first. (Readers already refuse nesting deeper than
/// [`crate::format::pickle::vm::MAX_DEPTH`]; this keeps trees made any other way safe too.)
/// Code that needs a node's fields by value takes them (`std::mem::take`) instead of moving out.
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack: Vec<Node> = Vec::new();
        self.move_children(&mut stack);
        while let Some(mut n) = stack.pop() {
            n.move_children(&mut stack);
        }
    }
}

impl Node {
    /// Move this node's children (values of items and attributes, arguments, state) to `out`.
    fn move_children(&mut self, out: &mut Vec<Node>) {
        match self {
            Node::Dict { items, attrs, .. } => {
                out.extend(items.drain(..).map(|(_, v)| v));
                out.extend(attrs.drain(..).map(|(_, v)| v));
            }
            Node::List { items } | Node::Tuple { items } | Node::Set { items, .. } => {
                out.append(items)
            }
            Node::Object {
                args, state, items, ..
            } => {
                out.append(args);
                if let Some(s) = state.take() {
                    out.push(*s);
                }
                out.extend(items.drain(..).map(|(_, v)| v));
            }
            _ => {}
        }
    }

    /// Call `f` on each child (values of items and attributes, arguments, state), in order.
    pub fn for_each_child_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        match self {
            Node::Dict { items, attrs, .. } => {
                for (_, v) in items.iter_mut().chain(attrs.iter_mut()) {
                    f(v)
                }
            }
            Node::List { items } | Node::Tuple { items } | Node::Set { items, .. } => {
                items.iter_mut().for_each(f)
            }
            Node::Object {
                args, state, items, ..
            } => {
                args.iter_mut().for_each(&mut *f);
                if let Some(s) = state {
                    f(s)
                }
                for (_, v) in items.iter_mut() {
                    f(v)
                }
            }
            _ => {}
        }
    }

    /// Take this node, leaving `Node::None` (how to get a node's fields by value).
    pub fn take(&mut self) -> Node {
        std::mem::replace(self, Node::None)
    }
}
