//! Model fusion: several checkpoints → one, tensor by tensor, streamed.
//!
//! Contract:
//! - Tensors are matched by **name** (the tensor's path joined by `.`, as safetensors names
//!   them), whatever each input's format and key order. [`plan`] refuses — before anything is
//!   written — when the selected key sets or shapes differ, naming the first few differences.
//! - The output keeps FIRST's tree (its order, containers, non-tensor values, metadata). A tensor
//!   is *merged* when it is selected (`keys`), FIRST holds it as a dense float64 / float32 /
//!   float16 / bfloat16 tensor with at least one element and every other input holds a dense
//!   floating tensor of the same shape under the same name; every other tensor (integers, bools,
//!   `num_batches_tracked`, unselected keys) is FIRST's, byte for byte.
//! - Tensors that every input stores as the same view of one storage (tied weights) are merged
//!   once and stay tied in a torch output.
//! - Arithmetic is float64 on the decoded values; each merged value is rounded once to FIRST's
//!   dtype (float64 → float32 → float16 / bfloat16, as torch's `.to()` does, with the export
//!   casts' rounding functions).
//! - Merged bytes are produced by [`MergeSource`], a [`Source`] whose "file" is the merged
//!   tensors in FIRST's dtypes, computed on demand for whatever range a writer reads: the
//!   writers stream it in chunks like any input, so no tensor is ever held whole.
//!
//! Methods (`a`, `b`, `c`, `mᵢ` are the inputs' values, FIRST first):
//! - linear: `Σ wᵢ·mᵢ` with the weights divided by their sum, summed in input order;
//! - add-difference: `a + α·(b − c)`;
//! - slerp: with `â = a/‖a‖`, `b̂ = b/‖b‖` over the whole tensor (a norm ≤ 1e-8 leaves its
//!   tensor as is) and `d = Σ â·b̂`: if `|d| > 0.9995`, `(1−t)·a + t·b`; else with `θ = acos d`,
//!   `sin((1−t)θ)/sin θ · a + sin(tθ)/sin θ · b`. The norms and the dot product are a first pass
//!   over the tensor (sequential float64 sums, `d = Σab / (‖a‖‖b‖)`), so `d` can differ from a
//!   pairwise-summed reference in its last bits: results agree within one unit in the last place;
//! - ties: with `τᵢ = mᵢ − a` for each other input and `k = ⌊density·numel⌋`, keep the entries of
//!   `τᵢ` whose `|τᵢ|` is at least the k-th largest `|τᵢ|` (so entries tied with the threshold
//!   are all kept; k = 0 keeps none, density ≥ 1 keeps all); the elected sign is + where the sum
//!   of the kept `τᵢ` is ≥ 0, else −; the kept `τᵢ` of that sign (zeros never count) are
//!   averaged; the result is `a + α·average`. The threshold is found exactly with bounded
//!   memory by [`super::select`].

use super::select::Selector;
use crate::edit::tree::{ENode, ETree, TensorRef};
use crate::format::data::TensorRanges;
use crate::format::element::{f32_to_bf16, f32_to_f16};
use crate::format::element::{Decoder, Lane};
use crate::format::fastmap::KeyMap;
use crate::format::{Checkpoint, DType, Node, Source, SourceError, StorageInfo, TensorInfo};
use crate::format::{FormatError, TensorKind};
use std::cell::RefCell;

/// A merge method and its parameters (on the page ↔ worker wire: `{"linear": {"weights": …}}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Weights, one per input (normalised to sum 1 when merging).
    Linear {
        weights: Vec<f64>,
    },
    AddDifference {
        alpha: f64,
    },
    Slerp {
        t: f64,
    },
    Ties {
        density: f64,
        alpha: f64,
    },
}

impl Method {
    /// Check the parameters against the number of inputs.
    pub fn check(&self, inputs: usize) -> Result<(), String> {
        match self {
            Method::Linear { weights } => {
                if weights.len() != inputs {
                    return Err(format!(
                        "linear: {} weights for {inputs} inputs",
                        weights.len()
                    ));
                }
                let s: f64 = weights.iter().sum();
                if weights.iter().any(|w| !w.is_finite()) || !s.is_finite() || s == 0.0 {
                    return Err(format!(
                        "linear: the weights must be finite with a non-zero sum (sum {s})"
                    ));
                }
            }
            Method::AddDifference { alpha } => {
                if inputs != 3 {
                    return Err(format!(
                        "add-difference takes exactly three inputs A B C (got {inputs})"
                    ));
                }
                if !alpha.is_finite() {
                    return Err("--alpha must be finite".into());
                }
            }
            Method::Slerp { t } => {
                if inputs != 2 {
                    return Err(format!("slerp takes exactly two inputs (got {inputs})"));
                }
                if !(0.0..=1.0).contains(t) {
                    return Err(format!("--t must be in [0, 1] (got {t})"));
                }
            }
            Method::Ties { density, alpha } => {
                if inputs < 2 {
                    return Err("ties takes a base and at least one other input".into());
                }
                if !(*density > 0.0 && *density <= 1.0) {
                    return Err(format!("--density must be in (0, 1] (got {density})"));
                }
                if !alpha.is_finite() {
                    return Err("--alpha must be finite".into());
                }
            }
        }
        Ok(())
    }
}

/// One merged tensor: which tensor of each input, where its values lie in the [`MergeSource`].
#[derive(Debug, Clone)]
pub struct Merged {
    pub name: String,
    /// Tensor index in each input (FIRST first).
    pub index: Vec<usize>,
    pub numel: u64,
    /// The output dtype (FIRST's).
    pub dtype: DType,
    /// Byte offset of its values in the merge source.
    pub offset: u64,
}

/// The result of matching the inputs: the output tree and what is computed.
pub struct MergePlan {
    /// FIRST's tree; merged tensors refer to input `virtual_input`.
    pub tree: ETree,
    /// The checkpoint describing the merge source (one storage per merged tensor).
    pub ckpt: Checkpoint,
    pub merged: Vec<Merged>,
    /// Tensors copied from FIRST unchanged.
    pub copied: usize,
    /// The input index the merged tensors refer to (the number of real inputs).
    pub virtual_input: usize,
}

/// Where each input stores a tensor: (storage, offset, shape, strides) per input.
type TieKey = Vec<(Option<usize>, u64, Vec<u64>, Vec<u64>)>;

/// A tensor's merge name: its path joined by `.`.
pub fn tensor_name(t: &TensorInfo) -> String {
    t.path.join(".")
}

fn names(c: &Checkpoint) -> Result<KeyMap<String, usize>, String> {
    let mut m = KeyMap::with_capacity(c.tensors.len());
    for (i, t) in c.tensors.iter().enumerate() {
        if m.insert(tensor_name(t), i).is_some() {
            return Err(format!("two tensors are named {:?}", tensor_name(t)));
        }
    }
    Ok(m)
}

fn mergeable_first(t: &TensorInfo) -> bool {
    matches!(t.dtype, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
        && t.kind == TensorKind::Dense
        && t.storage.is_some()
        && t.numel() > 0
}

fn floating(t: &TensorInfo) -> bool {
    t.dtype.is_float()
        && t.dtype != DType::F4E2M1FNX2
        && t.kind == TensorKind::Dense
        && t.storage.is_some()
}

/// At most this many differences are named in a refusal.
const NAMED: usize = 5;

fn list(v: &[String]) -> String {
    let mut s = v.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    if v.len() > NAMED {
        s.push_str(&format!(" and {} more", v.len() - NAMED));
    }
    s
}

/// The `--keys` rule: a tensor takes part when its name (path joined by `.`) or its path joined
/// by `/` matches `keys`; no pattern (or an empty one) selects every tensor.
pub fn key_filter(keys: Option<&str>) -> Result<impl Fn(&str) -> bool, String> {
    let re = keys
        .filter(|k| !k.is_empty())
        .map(regex_lite::Regex::new)
        .transpose()
        .map_err(|e| {
            format!(
                "--keys: bad pattern: {}",
                e.to_string().lines().last().unwrap_or("")
            )
        })?;
    Ok(move |name: &str| {
        re.as_ref()
            .is_none_or(|re| re.is_match(name) || re.is_match(&name.replace('.', "/")))
    })
}

/// Match the inputs by name and build the plan. `files[i]` names input `i` in messages;
/// `selected(name)` says whether a tensor takes part (`--keys`).
pub fn plan(
    ckpts: &[&Checkpoint],
    files: &[String],
    method: &Method,
    selected: &dyn Fn(&str) -> bool,
) -> Result<MergePlan, String> {
    method.check(ckpts.len())?;
    let first = ckpts[0];
    let maps = ckpts
        .iter()
        .zip(files)
        .map(|(c, f)| names(c).map_err(|e| format!("{f}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut problems: Vec<String> = vec![];
    for (i, c) in ckpts.iter().enumerate().skip(1) {
        let f = &files[i];
        let missing: Vec<String> = first
            .tensors
            .iter()
            .map(tensor_name)
            .filter(|n| selected(n) && !maps[i].contains_key(n))
            .collect();
        let extra: Vec<String> = c
            .tensors
            .iter()
            .map(tensor_name)
            .filter(|n| selected(n) && !maps[0].contains_key(n))
            .collect();
        let mut shapes = vec![];
        for t in &first.tensors {
            let n = tensor_name(t);
            if !selected(&n) {
                continue;
            }
            if let Some(&j) = maps[i].get(&n) {
                let o = &c.tensors[j];
                if o.shape != t.shape {
                    shapes.push(format!("{n} {:?} vs {:?}", t.shape, o.shape));
                } else if mergeable_first(t) && !floating(o) {
                    shapes.push(format!("{n} {} vs {}", t.dtype, o.dtype));
                }
            }
        }
        if !missing.is_empty() {
            problems.push(format!(
                "{} tensors of {} are not in {f}: {}",
                missing.len(),
                files[0],
                list(&missing)
            ));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "{} tensors of {f} are not in {}: {}",
                extra.len(),
                files[0],
                list(&extra)
            ));
        }
        if !shapes.is_empty() {
            problems.push(format!(
                "{} tensors differ in shape or kind between {} and {f}: {}",
                shapes.len(),
                files[0],
                list(&shapes)
            ));
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "refused (nothing written): {}",
            problems.join("; ")
        ));
    }
    let unmergeable: Vec<String> = first
        .tensors
        .iter()
        .filter(|t| selected(&tensor_name(t)) && floating(t) && !mergeable_first(t))
        .filter(|t| t.numel() > 0 && t.kind == TensorKind::Dense)
        .map(|t| format!("{} ({})", tensor_name(t), t.dtype))
        .collect();
    if !unmergeable.is_empty() {
        return Err(format!(
            "refused (nothing written): merged tensors are written in FIRST's dtype, which must be float64, float32, float16 or bfloat16: {}",
            list(&unmergeable)
        ));
    }

    let virtual_input = ckpts.len();
    let mut merged = vec![];
    let mut tensors = vec![];
    let mut storages = vec![];
    let mut replace: KeyMap<usize, usize> = KeyMap::new();
    let mut ties: KeyMap<TieKey, usize> = KeyMap::new();
    let mut offset = 0u64;
    for (fi, t) in first.tensors.iter().enumerate() {
        let name = tensor_name(t);
        if !selected(&name) || !mergeable_first(t) {
            continue;
        }
        let index: Vec<usize> = maps.iter().map(|m| m[&name]).collect();
        // a tensor every input stores as the same view as an earlier one (tied weights) stays tied
        let tie: TieKey = index
            .iter()
            .enumerate()
            .map(|(i, &j)| {
                let t = &ckpts[i].tensors[j];
                (
                    t.storage,
                    t.storage_offset,
                    t.shape.clone(),
                    t.strides.clone(),
                )
            })
            .collect();
        if let Some(&k) = ties.get(&tie) {
            replace.insert(fi, k);
            continue;
        }
        ties.insert(tie, merged.len());
        let numel = t.numel();
        let nbytes = numel * t.dtype.size() as u64;
        let k = merged.len();
        storages.push(StorageInfo::plain(
            k.to_string(),
            format!("merged/{name}"),
            t.dtype,
            nbytes,
            offset,
        ));
        let mut strides = vec![1u64; t.shape.len()];
        for d in (0..t.shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * t.shape[d + 1];
        }
        tensors.push(TensorInfo {
            path: t.path.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            strides,
            storage_offset: 0,
            storage: Some(k),
            requires_grad: t.requires_grad,
            parameter: t.parameter,
            kind: TensorKind::Dense,
        });
        merged.push(Merged {
            name,
            index,
            numel,
            dtype: t.dtype,
            offset,
        });
        replace.insert(fi, k);
        offset += nbytes;
    }
    let mut tree = ETree::from_checkpoint(first, 0);
    let mut copied = 0;
    redirect(&mut tree.root, &replace, virtual_input, first, &mut copied);
    let ckpt = Checkpoint {
        format: first.format,
        root: Node::None,
        tensors,
        storages,
        safety: Default::default(),
        metadata: vec![],
        files: vec!["(merged tensors)".into()],
        notes: vec![],
    };
    Ok(MergePlan {
        tree,
        ckpt,
        merged,
        copied,
        virtual_input,
    })
}

fn redirect(
    n: &mut ENode,
    replace: &KeyMap<usize, usize>,
    vi: usize,
    first: &Checkpoint,
    copied: &mut usize,
) {
    match n {
        ENode::Tensor(t) => match replace.get(&t.index) {
            Some(&k) => {
                let dtype = first.tensors[t.index].dtype;
                // A "cast" to the dtype it already has changes no byte; it makes the torch
                // writer stream the tensor once, hashing as it goes, instead of hashing the
                // source first and copying it after (two computations of every merged value).
                *t = TensorRef {
                    input: vi,
                    index: k,
                    cast: Some(dtype),
                    dtype,
                }
            }
            None => *copied += 1,
        },
        ENode::Dict { items, .. } => items
            .iter_mut()
            .for_each(|(_, v)| redirect(v, replace, vi, first, copied)),
        ENode::List(items) | ENode::Tuple(items) => items
            .iter_mut()
            .for_each(|v| redirect(v, replace, vi, first, copied)),
        ENode::Leaf(_) => {}
    }
}

/// Per-tensor constants found by a first pass (slerp coefficients, TIES thresholds).
#[derive(Debug, Clone)]
enum Coeffs {
    None,
    /// result = s0·a + s1·b
    Slerp {
        s0: f64,
        s1: f64,
    },
    /// Per other input: the |τ| threshold (None: keep nothing).
    Ties {
        thr: Vec<Option<f64>>,
    },
}

/// Elements decoded per step of a first pass.
const PASS_CHUNK: u64 = 1 << 19;

/// Elements of each input read at a time by a linear merge of narrow inputs (256 KiB of
/// float32: the pieces stay in the CPU's cache between the read and the sum).
const LINEAR_PIECE: u64 = 1 << 16;

/// Values summed at a time (the float64 accumulator stays in the first-level cache).
const LINEAR_BLOCK: usize = 2048;

/// A progress callback: bytes produced so far.
pub type Progress<'a> = Box<dyn FnMut(u64) + 'a>;

/// A consumer of decoded chunks (one vector of values per input).
type ChunkFn<'f> = &'f mut dyn FnMut(&[Vec<f64>]) -> Result<(), FormatError>;

/// The merged tensors as a readable source, in FIRST's dtypes (see the module contract).
pub struct MergeSource<'a> {
    plan: &'a MergePlan,
    method: Method,
    ckpts: Vec<&'a Checkpoint>,
    sources: Vec<Vec<&'a dyn Source>>,
    decoders: Vec<Vec<Decoder>>,
    /// Per merged tensor: a linear merge of inputs that all decode through float32 (float32,
    /// float16, bfloat16), computed by [`MergeSource::linear_into`].
    narrow_linear: Vec<bool>,
    /// The constants of the last tensor read (tensors are read one after the other).
    current: RefCell<Option<(usize, Coeffs)>>,
    scratch: RefCell<Scratch<'a>>,
    /// Called with the number of bytes produced so far (progress).
    progress: RefCell<Option<Progress<'a>>>,
    produced: RefCell<u64>,
}

#[derive(Default)]
struct Scratch<'a> {
    vals: Vec<Vec<f64>>,
    acc: Vec<f64>,
    f32s: Vec<f32>,
    out: Vec<u8>,
    /// One input's stored bytes of the current chunk (reused: no allocation per chunk).
    raw: Vec<u8>,
    /// Every input's stored bytes of the current piece ([`MergeSource::linear_into`]).
    raws: Vec<Vec<u8>>,
    readers: Readers<'a>,
}

/// Per input, the reader of the tensor read last ([`TensorRanges`]): the next chunk of a
/// deflated record continues its inflater instead of inflating from the record's start.
type Readers<'a> = Vec<Option<(usize, TensorRanges<'a>)>>;

impl<'a> MergeSource<'a> {
    pub fn new(
        plan: &'a MergePlan,
        method: Method,
        ckpts: Vec<&'a Checkpoint>,
        sources: Vec<Vec<&'a dyn Source>>,
    ) -> MergeSource<'a> {
        let mut method = method;
        if let Method::Linear { weights } = &mut method {
            let s: f64 = weights.iter().sum();
            weights.iter_mut().for_each(|w| *w /= s);
        }
        let decoders: Vec<Vec<Decoder>> = plan
            .merged
            .iter()
            .map(|m| {
                m.index
                    .iter()
                    .enumerate()
                    .map(|(i, &j)| Decoder::new(ckpts[i].tensors[j].dtype))
                    .collect()
            })
            .collect();
        let narrow_linear = decoders
            .iter()
            .map(|d: &Vec<Decoder>| {
                matches!(method, Method::Linear { .. }) && d.iter().all(|d| d.lane() == Lane::F32)
            })
            .collect();
        MergeSource {
            plan,
            narrow_linear,
            method,
            ckpts,
            sources,
            decoders,
            current: RefCell::new(None),
            scratch: RefCell::new(Scratch::default()),
            progress: RefCell::new(None),
            produced: RefCell::new(0),
        }
    }

    /// Report progress (bytes produced) through `f`.
    pub fn on_progress(&self, f: Progress<'a>) {
        *self.progress.borrow_mut() = Some(f);
    }

    /// The writers' inputs: the real inputs, then this source as input `virtual_input`.
    pub fn inputs<'s>(&'s self) -> super::writer::Inputs<'s> {
        let mut ckpts = self.ckpts.clone();
        ckpts.push(&self.plan.ckpt);
        let mut sources = self.sources.clone();
        sources.push(vec![self as &dyn Source]);
        super::writer::Inputs {
            ckpts,
            sources,
            deferred: None,
        }
    }

    /// Total bytes of the merged tensors.
    pub fn total(&self) -> u64 {
        self.plan
            .merged
            .last()
            .map(|m| m.offset + m.numel * m.dtype.size() as u64)
            .unwrap_or(0)
    }

    /// How far each merged tensor moves away from FIRST: `‖merged − first‖ / ‖first‖` over the
    /// values as written (rounded to FIRST's dtype), float64 sums; `None` when FIRST's norm is
    /// zero. Streams each tensor in chunks (merged values through [`Source::read_at`], FIRST's
    /// beside them). `progress(done, total)` gets merged bytes and returns false to stop
    /// (`Ok(None)`).
    pub fn rel_changes(
        &self,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<Option<Vec<Option<f64>>>, FormatError> {
        let total = self.total();
        let mut out = Vec::with_capacity(self.plan.merged.len());
        let (mut got, mut base, mut buf) = (vec![], vec![], vec![]);
        let mut f32s = vec![];
        let mut done = 0u64;
        if !progress(0, total) {
            return Ok(None);
        }
        for m in &self.plan.merged {
            let es = m.dtype.size() as u64;
            let out_dec = Decoder::new(m.dtype);
            let first_dec = Decoder::new(self.ckpts[0].tensors[m.index[0]].dtype);
            let (mut dd, mut ff) = (0f64, 0f64);
            let first = TensorRanges::new(self.ckpts[0], &self.sources[0], m.index[0])?;
            let mut fb = vec![];
            let mut e = 0;
            while e < m.numel {
                let n = (m.numel - e).min(PASS_CHUNK);
                buf.resize((n * es) as usize, 0);
                self.read_at(m.offset + e * es, &mut buf)
                    .map_err(|x| FormatError::at(&m.name, x.0))?;
                decode_f64(&out_dec, &buf, &mut got, &mut f32s);
                first.read_into(e, n, &mut fb)?;
                decode_f64(&first_dec, &fb, &mut base, &mut f32s);
                for (&g, &b) in got.iter().zip(&base) {
                    dd += (g - b) * (g - b);
                    ff += b * b;
                }
                e += n;
                done += n * es;
                if !progress(done, total) {
                    return Ok(None);
                }
            }
            out.push((ff > 0.0).then(|| dd.sqrt() / ff.sqrt()));
        }
        Ok(Some(out))
    }

    /// Elements `first..first+count` of tensor `j` of input `i` as little-endian bytes, in
    /// `raw[..len]` (returned). A contiguous tensor of a stored record is read straight into the
    /// reused buffer; anything else (views, deflated records, big-endian files) goes through
    /// [`TensorRanges`] (kept per input while the same tensor is read).
    fn raw(
        &self,
        i: usize,
        j: usize,
        first: u64,
        count: u64,
        raw: &mut Vec<u8>,
        readers: &mut Readers<'a>,
    ) -> Result<usize, FormatError> {
        let c = self.ckpts[i];
        let t = &c.tensors[j];
        let esz = t.dtype.size() as u64;
        let direct = t.storage.map(|s| &c.storages[s]).filter(|s| {
            t.is_contiguous()
                && s.deflated.is_none()
                && !(s.big_endian && t.dtype.swap_unit() > 1)
                && first.checked_add(count).is_some_and(|e| e <= t.numel())
                && t.storage_offset
                    .checked_add(t.numel())
                    .and_then(|e| e.checked_mul(esz))
                    .is_some_and(|e| e <= s.nbytes)
        });
        let n = (count * esz) as usize;
        match direct.and_then(|s| self.sources[i].get(s.file).map(|src| (s, *src))) {
            Some((s, src)) => {
                if raw.len() < n {
                    raw.resize(n, 0);
                }
                s.bytes(src)
                    .and_then(|b| {
                        b.read_at((t.storage_offset + first) * esz, &mut raw[..n])
                            .map_err(|e| FormatError::at(&s.record, e.0))
                    })
                    .map_err(|e| e.within(t.path_string()))?;
            }
            None => {
                if readers.len() <= i {
                    readers.resize_with(i + 1, || None);
                }
                if readers[i].as_ref().is_none_or(|(k, _)| *k != j) {
                    readers[i] = Some((j, TensorRanges::new(c, &self.sources[i], j)?));
                }
                let (_, r) = readers[i].as_ref().expect("set above");
                r.read_into(first, count, raw)?;
            }
        }
        Ok(n)
    }

    /// Decode elements `first..first+count` of merged tensor `k` of every input into `vals`.
    fn load(
        &self,
        k: usize,
        first: u64,
        count: u64,
        s: &mut Scratch<'a>,
    ) -> Result<(), FormatError> {
        let m = &self.plan.merged[k];
        for (i, &j) in m.index.iter().enumerate() {
            let n = self.raw(i, j, first, count, &mut s.raw, &mut s.readers)?;
            let d = &self.decoders[k][i];
            if matches!(d.lane(), Lane::Complex) {
                return Err(FormatError::at(&m.name, "complex tensors are not merged"));
            }
            decode_f64(d, &s.raw[..n], &mut s.vals[i], &mut s.f32s);
        }
        Ok(())
    }

    /// Walk tensor `k` in chunks, handing every chunk's decoded values to `f`.
    fn walk(&self, k: usize, f: ChunkFn) -> Result<(), FormatError> {
        let m = &self.plan.merged[k];
        let mut s = Scratch {
            vals: vec![Vec::new(); m.index.len()],
            ..Scratch::default()
        };
        let mut first = 0;
        while first < m.numel {
            let n = (m.numel - first).min(PASS_CHUNK);
            self.load(k, first, n, &mut s)?;
            f(&s.vals)?;
            first += n;
        }
        Ok(())
    }

    fn coeffs(&self, k: usize) -> Result<Coeffs, FormatError> {
        if let Some((j, c)) = self.current.borrow().as_ref() {
            if *j == k {
                return Ok(c.clone());
            }
        }
        let c = match &self.method {
            Method::Slerp { t } => {
                let (mut aa, mut bb, mut ab) = (0f64, 0f64, 0f64);
                self.walk(k, &mut |v| {
                    for (&a, &b) in v[0].iter().zip(&v[1]) {
                        aa += a * a;
                        bb += b * b;
                        ab += a * b;
                    }
                    Ok(())
                })?;
                slerp_coeffs(*t, aa, bb, ab)
            }
            Method::Ties { density, .. } => {
                let m = &self.plan.merged[k];
                let keep = (density * m.numel as f64).floor() as u64;
                let others = m.index.len() - 1;
                let mut sel: Vec<Selector> = (0..others)
                    .map(|_| Selector::new(m.numel, keep.min(m.numel)))
                    .collect();
                while sel.iter().any(|s| s.result().is_none()) {
                    self.walk(k, &mut |v| {
                        for (i, s) in sel.iter_mut().enumerate() {
                            if s.result().is_none() {
                                s.feed(v[0].iter().zip(&v[i + 1]).map(|(&b, &x)| (x - b).abs()));
                            }
                        }
                        Ok(())
                    })?;
                    sel.iter_mut().for_each(Selector::end_pass);
                }
                Coeffs::Ties {
                    thr: sel
                        .iter()
                        .map(|s| s.result().expect("finished").map(f64::from_bits))
                        .collect(),
                }
            }
            _ => Coeffs::None,
        };
        *self.current.borrow_mut() = Some((k, c.clone()));
        Ok(c)
    }

    /// Elements `first..first+count` of merged tensor `k` (a `narrow_linear` one) straight into
    /// `out` in FIRST's dtype: the same float64 sums in the same order as [`Self::compute`], one
    /// rounding, but in cache-sized pieces (each input's stored bytes read [`LINEAR_PIECE`]
    /// elements at a time, summed [`LINEAR_BLOCK`] values at a time) without float64 vectors of
    /// the whole range.
    fn linear_into(
        &self,
        k: usize,
        first: u64,
        count: u64,
        s: &mut Scratch<'a>,
        out: &mut [u8],
    ) -> Result<(), FormatError> {
        let Method::Linear { weights } = &self.method else {
            unreachable!("narrow_linear is set for linear merges only")
        };
        let m = &self.plan.merged[k];
        let decs = &self.decoders[k];
        let es_out = m.dtype.size();
        let n_in = m.index.len();
        s.raws.resize_with(n_in, Vec::new);
        let mut done = 0u64;
        while done < count {
            let piece = (count - done).min(LINEAR_PIECE);
            for (i, &j) in m.index.iter().enumerate() {
                let mut r = std::mem::take(&mut s.raws[i]);
                let got = self.raw(i, j, first + done, piece, &mut r, &mut s.readers);
                s.raws[i] = r;
                got?;
            }
            let mut b = 0usize;
            while b < piece as usize {
                let nb = (piece as usize - b).min(LINEAR_BLOCK);
                s.acc.clear();
                for (i, w) in weights.iter().enumerate() {
                    let esz = self.ckpts[i].tensors[m.index[i]].dtype.size();
                    s.f32s.clear();
                    decs[i].decode_f32(&s.raws[i][b * esz..(b + nb) * esz], &mut s.f32s);
                    if i == 0 {
                        s.acc.extend(s.f32s.iter().map(|&x| w * x as f64));
                    } else {
                        s.acc
                            .iter_mut()
                            .zip(&s.f32s)
                            .for_each(|(a, &x)| *a += w * x as f64);
                    }
                }
                let o = done as usize + b;
                encode(m.dtype, &s.acc, &mut out[o * es_out..(o + nb) * es_out]);
                b += nb;
            }
            done += piece;
        }
        Ok(())
    }

    /// Compute elements `first..first+count` of merged tensor `k` (float64) into `s.acc`.
    #[allow(clippy::needless_range_loop)] // TIES walks element e of every input
    fn compute(
        &self,
        k: usize,
        first: u64,
        count: u64,
        s: &mut Scratch<'a>,
    ) -> Result<(), FormatError> {
        let c = self.coeffs(k)?;
        let m = &self.plan.merged[k];
        let n_in = m.index.len();
        s.vals.resize(n_in, Vec::new());
        self.load(k, first, count, s)?;
        let v = &s.vals;
        let acc = &mut s.acc;
        acc.clear();
        acc.reserve(count as usize);
        let mut put = |x: f64| acc.push(x);
        match (&self.method, &c) {
            (Method::Linear { weights }, _) => {
                // per element: w₀·m₀ + w₁·m₁ + … in input order (vectorisable column by column)
                acc.extend(v[0].iter().map(|&x| weights[0] * x));
                for (w, vi) in weights.iter().zip(v).skip(1) {
                    acc.iter_mut().zip(vi).for_each(|(a, &x)| *a += w * x);
                }
            }
            (Method::AddDifference { alpha }, _) => {
                for ((&a, &b), &c) in v[0].iter().zip(&v[1]).zip(&v[2]) {
                    put(a + alpha * (b - c));
                }
            }
            (Method::Slerp { .. }, Coeffs::Slerp { s0, s1 }) => {
                for (&a, &b) in v[0].iter().zip(&v[1]) {
                    put(s0 * a + s1 * b);
                }
            }
            (Method::Ties { alpha, .. }, Coeffs::Ties { thr }) => {
                let mut kept = vec![0f64; n_in - 1];
                for e in 0..count as usize {
                    let base = v[0][e];
                    let mut sum = 0f64;
                    for i in 1..n_in {
                        let tau = v[i][e] - base;
                        kept[i - 1] = match thr[i - 1] {
                            Some(t) if tau.abs() >= t => tau,
                            _ => 0.0,
                        };
                        sum = if i == 1 { kept[0] } else { sum + kept[i - 1] };
                    }
                    let positive = sum >= 0.0;
                    let (mut acc, mut cnt) = (0f64, 0u32);
                    for &t in &kept {
                        if (positive && t > 0.0) || (!positive && t < 0.0) {
                            acc += t;
                            cnt += 1;
                        }
                    }
                    put(base + alpha * (acc / cnt.max(1) as f64));
                }
            }
            _ => unreachable!("coefficients match the method"),
        }
        Ok(())
    }
}

/// Decode floating-point `bytes` into float64 `out` (through float32 for the narrow types).
fn decode_f64(d: &Decoder, bytes: &[u8], out: &mut Vec<f64>, f32s: &mut Vec<f32>) {
    out.clear();
    match d.lane() {
        Lane::F32 => {
            f32s.clear();
            d.decode_f32(bytes, f32s);
            out.extend(f32s.iter().map(|&x| x as f64));
        }
        _ => d.decode_f64(bytes, out),
    }
}

/// Slerp coefficients from Σa², Σb², Σab (see the module contract).
fn slerp_coeffs(t: f64, aa: f64, bb: f64, ab: f64) -> Coeffs {
    const EPS: f64 = 1e-8;
    let na = aa.sqrt();
    let nb = bb.sqrt();
    let da = if na > EPS { na } else { 1.0 };
    let db = if nb > EPS { nb } else { 1.0 };
    let dot = ab / da / db;
    if dot.abs() > 0.9995 {
        return Coeffs::Slerp { s0: 1.0 - t, s1: t };
    }
    let theta0 = dot.acos();
    let sin0 = theta0.sin();
    let theta_t = theta0 * t;
    Coeffs::Slerp {
        s0: (theta0 - theta_t).sin() / sin0,
        s1: theta_t.sin() / sin0,
    }
}

/// Round float64 values once to `dtype` (float16 / bfloat16 through float32, as torch's `.to()`
/// does) into little-endian bytes.
fn encode(dtype: DType, vals: &[f64], out: &mut [u8]) {
    match dtype {
        DType::F64 => out
            .chunks_exact_mut(8)
            .zip(vals)
            .for_each(|(o, &x)| o.copy_from_slice(&x.to_le_bytes())),
        DType::F32 => out
            .chunks_exact_mut(4)
            .zip(vals)
            .for_each(|(o, &x)| o.copy_from_slice(&(x as f32).to_le_bytes())),
        DType::BF16 => out
            .chunks_exact_mut(2)
            .zip(vals)
            .for_each(|(o, &x)| o.copy_from_slice(&f32_to_bf16(x as f32).to_le_bytes())),
        DType::F16 => out
            .chunks_exact_mut(2)
            .zip(vals)
            .for_each(|(o, &x)| o.copy_from_slice(&f32_to_f16(x as f32).to_le_bytes())),
        other => unreachable!("{other} is not an output dtype of a merge"),
    }
}

impl Source for MergeSource<'_> {
    fn len(&self) -> u64 {
        self.total()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.total())
            .ok_or_else(|| SourceError("read past the end of the merged tensors".into()))?;
        let merged = &self.plan.merged;
        let mut pos = offset;
        let mut scratch = self.scratch.borrow_mut();
        let s = &mut *scratch;
        while pos < end {
            let k = merged.partition_point(|m| m.offset + m.numel * m.dtype.size() as u64 <= pos);
            let m = &merged[k];
            let es = m.dtype.size() as u64;
            let rel = pos - m.offset;
            let stop = end.min(m.offset + m.numel * es) - m.offset;
            let e0 = rel / es;
            let e1 = stop.div_ceil(es);
            let at = (pos - offset) as usize;
            let n = (stop - rel) as usize;
            let aligned = rel.is_multiple_of(es) && stop.is_multiple_of(es);
            if aligned && self.narrow_linear[k] {
                self.linear_into(k, e0, e1 - e0, s, &mut buf[at..at + n])
                    .map_err(|e| SourceError(e.to_string()))?;
                pos += n as u64;
                continue;
            }
            self.compute(k, e0, e1 - e0, s)
                .map_err(|e| SourceError(e.to_string()))?;
            if aligned {
                encode(m.dtype, &s.acc, &mut buf[at..at + n]);
            } else {
                s.out.resize(((e1 - e0) * es) as usize, 0);
                encode(m.dtype, &s.acc, &mut s.out);
                let skip = (rel - e0 * es) as usize;
                buf[at..at + n].copy_from_slice(&s.out[skip..skip + n]);
            }
            pos += n as u64;
        }
        let mut done = self.produced.borrow_mut();
        *done += buf.len() as u64;
        if let Some(f) = self.progress.borrow_mut().as_mut() {
            f(*done);
        }
        Ok(())
    }
}
