//! Writers: an edited tree → a torch zip or a safetensors file, produced as a sequence of
//! [`Part`]s — slices of the input files and new bytes — so that untouched tensor data is never
//! copied through memory (natively it is copied file to file; in the browser the parts become a
//! `Blob` of `File.slice`s).
//!
//! Contract:
//! - torch zip (docs/formats.md §5.1): records `data.pkl`, `byteorder` (`little`), `data/N`,
//!   `version` (`3\n`), each aligned to 64 bytes with an `FB` extra field, stored, with data
//!   descriptors and correct CRC-32s, zip64 extras and records when sizes or offsets need them,
//!   and the zip64 end records always (as torch writes them). No `.format_version`.
//! - safetensors: compact JSON header padded with spaces to a multiple of 8, `__metadata__`
//!   first (`format: pt` added when absent), tensors contiguous little-endian, larger element
//!   types first (natural alignment), identical aliases written once and recorded as
//!   `{"removed": "kept"}` in the metadata; keys are tensor paths joined by `.`.

use super::pickler::{pickle_tree, StorageContent};
use crate::edit::tree::{ETree, TensorRef};
use crate::format::checkpoint::Checkpoint;
use crate::format::data::{read_tensor, read_tensor_owned, DEFAULT_CHUNK};
use crate::format::dtype::DType;
use crate::format::element::Caster;
use crate::format::error::{FormatError, Result};
use crate::format::fastmap::KeyMap;
use crate::format::source::Source;
use crate::format::zip::DESCRIPTOR_CRC_AT;
use crate::format::zip::{central_directory, descriptor, local_header, ZipRecord};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// One piece of an output file.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Bytes `offset..offset+len` of file `file` of input `input`. `crc32`: the CRC-32 the
    /// whole slice must have (a zip record copied whole) — a materialiser that reads the bytes
    /// checks it, so a corrupted record is never passed on with a fresh, valid CRC.
    Slice {
        input: usize,
        file: usize,
        offset: u64,
        len: u64,
        crc32: Option<u32>,
    },
    /// New bytes.
    Bytes(Vec<u8>),
}

/// The opened inputs of an export: checkpoint `i` reads from `sources[i]`.
pub struct Inputs<'a> {
    pub ckpts: Vec<&'a Checkpoint>,
    pub sources: Vec<Vec<&'a dyn Source>>,
    /// An input whose bytes are costly to read (a merge's computed tensors) and that the
    /// consumer of the parts reads anyway: a torch writer copying a record of it that has no
    /// CRC-32 on file does not read it to hash it, but writes 0 in the record's CRC-32 fields
    /// and lists them in [`Report::crc_later`], for the consumer to fill in while it writes
    /// ([`super::crc_later::CrcFill`]).
    pub deferred: Option<usize>,
}

/// What an export did besides writing bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Values not written, with the reason.
    pub dropped: Vec<String>,
    /// safetensors aliases: (removed name, kept name).
    pub aliases: Vec<(String, String)>,
    /// Casts that overflowed: (tensor path, count of finite values that became ±inf).
    pub overflow: Vec<(String, u64)>,
    /// CRC-32s left for the consumer (see [`Inputs::deferred`]), in the order of their data.
    pub crc_later: Vec<super::crc_later::CrcLater>,
    /// Bytes written as slices of the inputs, and as new bytes.
    pub copied_bytes: u64,
    pub new_bytes: u64,
    pub tensors: usize,
}

type Sink<'s> = &'s mut dyn FnMut(Part) -> Result<()>;

struct Out<'s, 'k> {
    sink: Sink<'k>,
    pos: u64,
    report: &'s mut Report,
}

impl Out<'_, '_> {
    fn bytes(&mut self, b: Vec<u8>) -> Result<()> {
        if b.is_empty() {
            return Ok(());
        }
        self.pos += b.len() as u64;
        self.report.new_bytes += b.len() as u64;
        (self.sink)(Part::Bytes(b))
    }
    fn slice(
        &mut self,
        input: usize,
        file: usize,
        offset: u64,
        len: u64,
        crc32: Option<u32>,
    ) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.pos += len;
        self.report.copied_bytes += len;
        (self.sink)(Part::Slice {
            input,
            file,
            offset,
            len,
            crc32,
        })
    }
}

/// Stream tensor `t` (contiguous, cast if asked) as new bytes through `f`; returns overflows.
fn stream_tensor(
    inputs: &Inputs,
    t: &TensorRef,
    f: &mut dyn FnMut(Vec<u8>) -> Result<()>,
) -> Result<u64> {
    let c = inputs.ckpts[t.input];
    let from = c.tensors[t.index].dtype;
    let mut caster = match t.cast {
        Some(to) if to != from => Some(Caster::new(from, to).ok_or_else(|| {
            FormatError::at(
                c.tensors[t.index].path_string(),
                format!("cannot cast {from} to {to}"),
            )
        })?),
        _ => None,
    };
    match caster.as_mut() {
        Some(cs) => read_tensor(
            c,
            &inputs.sources[t.input],
            t.index,
            DEFAULT_CHUNK,
            &mut |b| {
                let mut out = spare_buffer(0);
                out.reserve(cs.out_len(b.len() as u64) as usize);
                cs.convert(b, &mut out);
                f(out)
            },
        )?,
        // read straight into the buffers handed on (no copy)
        None => read_tensor_owned(
            c,
            &inputs.sources[t.input],
            t.index,
            DEFAULT_CHUNK,
            &mut spare_buffer,
            f,
        )?,
    }
    Ok(caster.map(|c| c.overflow).unwrap_or(0))
}

/// Chunk buffers given back by a consumer of [`Part::Bytes`] once written ([`recycle`]), for
/// the next streamed chunks: a native export then reuses a few buffers instead of allocating
/// (and faulting in) a new one per chunk.
const SPARE_BUFFERS: usize = 8;
/// Smaller buffers (headers, descriptors) are not kept.
const SPARE_MIN: usize = 64 << 10;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Hand a written [`Part::Bytes`] buffer back for reuse (at most a few are kept).
pub fn recycle(b: Vec<u8>) {
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_BUFFERS && b.capacity() >= SPARE_MIN {
            s.push(b);
        }
    });
}

/// A buffer of `len` bytes (content unspecified): a recycled one when there is one.
pub(super) fn spare_buffer(len: usize) -> Vec<u8> {
    let mut b = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    b.resize(len, 0);
    b
}

/// Is tensor `t` stored as one little-endian contiguous byte range we can copy as is?
/// (file, offset, length, CRC-32 when the range is a whole zip record)
type CopyRange = (usize, u64, u64, Option<u32>);

fn copy_range(inputs: &Inputs, t: &TensorRef) -> Result<Option<CopyRange>> {
    let c = inputs.ckpts[t.input];
    let info = &c.tensors[t.index];
    if t.cast.is_some_and(|d| d != info.dtype)
        || !info.is_contiguous()
        || info.kind != crate::format::TensorKind::Dense
    {
        return Ok(None);
    }
    let Some(si) = info.storage else {
        return Ok(None);
    };
    let s = &c.storages[si];
    if (s.big_endian && info.dtype.swap_unit() > 1) || s.deflated.is_some() {
        return Ok(None);
    }
    let esz = info.dtype.size() as u64;
    let base = s.data_offset(inputs.sources[t.input][s.file])?;
    let whole = info.storage_offset == 0 && info.nbytes() == s.nbytes;
    Ok(Some((
        s.file,
        base + info.storage_offset * esz,
        info.nbytes(),
        if whole { s.crc32 } else { None },
    )))
}

// ---------------------------------------------------------------------------------------------
// torch zip

/// The archive folder name for an output file name: its stem if ASCII, else `archive`.
pub fn archive_prefix(out_name: &str) -> String {
    let base = out_name.rsplit(['/', '\\']).next().unwrap_or(out_name);
    let stem = match base.rfind('.') {
        Some(i) if i > 0 => &base[..i],
        _ => base,
    };
    if !stem.is_empty() && stem.is_ascii() && !stem.contains(['/', '\\']) {
        stem.to_string()
    } else {
        "archive".to_string()
    }
}

/// Write `tree` as a torch zip checkpoint: `data.pkl`, `byteorder`, one stored record per
/// storage (copied, swapped, inflated, cast or streamed — [`storage_record`]), `version`, and
/// the central directory.
pub fn write_torch(tree: &ETree, inputs: &Inputs, prefix: &str, sink: Sink) -> Result<Report> {
    let mut report = Report::default();
    let pickled = pickle_tree(tree, &inputs.ckpts);
    report.dropped = pickled.dropped.clone();
    report.tensors = tree.tensors().len();
    let mut out = Out {
        sink,
        pos: 0,
        report: &mut report,
    };
    let mut cd: Vec<ZipRecord> = vec![];
    // records whose CRC-32 is left for later: (entry, data start, descriptor's CRC-32 field)
    let mut later: Vec<(usize, u64, u64)> = vec![];
    let pkl = pickled.bytes.clone();
    small_record(&mut out, &mut cd, format!("{prefix}/data.pkl"), pkl)?;
    let order = b"little".to_vec();
    small_record(&mut out, &mut cd, format!("{prefix}/byteorder"), order)?;
    for st in &pickled.storages {
        let name = format!("{prefix}/data/{}", st.key);
        let offset = out.pos;
        out.bytes(local_header(&name, offset, st.nbytes))?;
        let data = out.pos;
        let crc = storage_record(&mut out, tree, inputs, &stored(&st.content, inputs))?;
        let e = ZipRecord {
            name,
            offset,
            size: st.nbytes,
            crc: crc.unwrap_or(0),
        };
        if out.pos - e.offset < st.nbytes {
            return Err(FormatError::at(
                e.name,
                "internal error: fewer bytes written than the storage holds",
            ));
        }
        if crc.is_none() {
            later.push((cd.len(), data, out.pos + DESCRIPTOR_CRC_AT));
        }
        out.bytes(descriptor(&e))?;
        cd.push(e);
    }
    small_record(
        &mut out,
        &mut cd,
        format!("{prefix}/version"),
        b"3\n".to_vec(),
    )?;
    let cd_offset = out.pos;
    let (dir, crc_at) = central_directory(&cd, cd_offset);
    out.bytes(dir)?;
    report.crc_later = later
        .into_iter()
        .map(|(k, data, desc)| super::crc_later::CrcLater {
            data: data..data + cd[k].size,
            at: [desc, crc_at[k]],
        })
        .collect();
    Ok(report)
}

/// One small stored zip record (`data.pkl`, `byteorder`, `version`) written whole.
fn small_record(out: &mut Out, cd: &mut Vec<ZipRecord>, name: String, data: Vec<u8>) -> Result<()> {
    let offset = out.pos;
    out.bytes(local_header(&name, offset, data.len() as u64))?;
    let e = ZipRecord {
        name,
        offset,
        size: data.len() as u64,
        crc: crate::format::crc32::hash(&data),
    };
    out.bytes(data)?;
    out.bytes(descriptor(&e))?;
    cd.push(e);
    Ok(())
}

/// What a storage's record is written from: a deflated input record is written stored, so it is
/// streamed (inflated) like a swapped one instead of copied.
fn stored(content: &StorageContent, inputs: &Inputs) -> StorageContent {
    match content {
        StorageContent::Copy { input, storage }
            if inputs.ckpts[*input].storages[*storage].deflated.is_some() =>
        {
            StorageContent::Swapped {
                input: *input,
                storage: *storage,
                unit: 1,
            }
        }
        c => c.clone(),
    }
}

/// Write one storage's bytes (after its local header); returns their CRC-32, or `None` when it
/// is left for later ([`Inputs::deferred`]). Values that a cast turned into ±inf are reported in
/// `out.report.overflow`.
fn storage_record(
    out: &mut Out,
    tree: &ETree,
    inputs: &Inputs,
    content: &StorageContent,
) -> Result<Option<u32>> {
    Ok(Some(match content {
        StorageContent::Copy { input, storage } => {
            let s = &inputs.ckpts[*input].storages[*storage];
            let base = s.data_offset(inputs.sources[*input][s.file])?;
            out.slice(*input, s.file, base, s.nbytes, s.crc32)?;
            match s.crc32 {
                Some(c) => c,
                None if inputs.deferred == Some(*input) => return Ok(None),
                // no CRC on record (safetensors / legacy input): hash the bytes
                None => crate::format::data::storage_crc32(s, inputs.sources[*input][s.file])?,
            }
        }
        StorageContent::Swapped {
            input,
            storage,
            unit,
        } => {
            let s = &inputs.ckpts[*input].storages[*storage];
            let mut h = crate::format::crc32::Hasher::new();
            crate::format::data::read_storage(
                s,
                inputs.sources[*input][s.file],
                *unit,
                *unit,
                &mut |b| {
                    h.update(b);
                    out.bytes(std::mem::take(b))
                },
            )?;
            h.finalize()
        }
        StorageContent::CastStorage {
            input,
            storage,
            from,
            to,
        } => {
            let s = &inputs.ckpts[*input].storages[*storage];
            let mut caster = Caster::new(*from, *to)
                .ok_or_else(|| FormatError::at(&s.record, format!("cannot cast {from} to {to}")))?;
            let swap = if s.big_endian { from.swap_unit() } else { 1 };
            let mut h = crate::format::crc32::Hasher::new();
            crate::format::data::read_storage(
                s,
                inputs.sources[*input][s.file],
                from.size(),
                swap,
                &mut |b| {
                    let mut conv = Vec::with_capacity(caster.out_len(b.len() as u64) as usize);
                    caster.convert(b, &mut conv);
                    h.update(&conv);
                    out.bytes(conv)
                },
            )?;
            if caster.overflow > 0 {
                let names: Vec<String> = tree
                    .tensors()
                    .into_iter()
                    .filter(|(_, t)| {
                        t.input == *input
                            && inputs.ckpts[*input].tensors[t.index].storage == Some(*storage)
                    })
                    .map(|(p, _)| p.join("/"))
                    .collect();
                out.report
                    .overflow
                    .push((names.join(", "), caster.overflow));
            }
            h.finalize()
        }
        StorageContent::Tensor { input, index, cast } => {
            let t = TensorRef {
                input: *input,
                index: *index,
                cast: *cast,
                dtype: inputs.ckpts[*input].tensors[*index].dtype,
            };
            let mut h = crate::format::crc32::Hasher::new();
            let overflow = stream_tensor(inputs, &t, &mut |b| {
                h.update(&b);
                out.bytes(b)
            })?;
            if overflow > 0 {
                out.report
                    .overflow
                    .push((inputs.ckpts[*input].tensors[*index].path_string(), overflow));
            }
            h.finalize()
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// safetensors

/// Tensors with equal keys are the same data: (input, storage, offset, shape, strides, dtype, cast).
pub type AliasKey = (usize, usize, u64, Vec<u64>, Vec<u64>, DType, Option<DType>);

/// The [`AliasKey`] of tensor `t` (`info`: its metadata in its input).
pub fn alias_key(t: &TensorRef, info: &crate::format::TensorInfo) -> AliasKey {
    (
        t.input,
        info.storage.unwrap_or(0),
        info.storage_offset,
        info.shape.clone(),
        info.strides.clone(),
        info.dtype,
        t.cast,
    )
}

/// What a safetensors export of a tree writes: the tensors in tree order with their names,
/// and what it leaves out. The writer and the page's preview of an export both use it.
pub struct SafetensorsPlan {
    /// (name, tensor, dtype written, shape), aliases removed.
    pub items: Vec<(String, TensorRef, DType, Vec<u64>)>,
    /// Values not written, each with the reason.
    pub dropped: Vec<String>,
    /// `(removed, kept)`: identical tensors written once.
    pub aliases: Vec<(String, String)>,
}

/// Plan the safetensors export of `tree`: refuses two tensors that get the same name.
pub fn plan_safetensors(tree: &ETree, ckpts: &[&Checkpoint]) -> Result<SafetensorsPlan> {
    let mut plan = SafetensorsPlan {
        items: vec![],
        dropped: vec![],
        aliases: vec![],
    };
    let mut names: KeyMap<String, usize> = KeyMap::default();
    let mut seen: KeyMap<AliasKey, String> = KeyMap::default();
    for (path, t) in tree.tensors() {
        let name = path.join(".");
        let info = &ckpts[t.input].tensors[t.index];
        let dtype = t.cast.unwrap_or(info.dtype);
        if dtype.safetensors_name().is_none()
            || !matches!(info.kind, crate::format::TensorKind::Dense)
        {
            let what = match &info.kind {
                crate::format::TensorKind::Quantized { scheme, .. } => {
                    format!("quantized {dtype} ({scheme})")
                }
                crate::format::TensorKind::ConjNeg { .. } => {
                    format!("{dtype} (conjugate/negative view)")
                }
                _ => dtype.to_string(),
            };
            plan.dropped
                .push(format!("{name}: safetensors cannot hold {what} tensors"));
            continue;
        }
        if info.storage.is_none() {
            plan.dropped
                .push(format!("{name}: meta tensor has no data"));
            continue;
        }
        if name == "__metadata__" {
            return Err(FormatError::at(
                name,
                "safetensors keeps this name for the header's metadata: rename the tensor first",
            ));
        }
        if names.insert(name.clone(), plan.items.len()).is_some() {
            return Err(FormatError::at(
                name,
                "two tensors get this safetensors name (paths joined by '.')",
            ));
        }
        let key = alias_key(&t, info);
        if let Some(kept) = seen.get(&key) {
            plan.aliases.push((name, kept.clone()));
            continue;
        }
        seen.insert(key, name.clone());
        plan.items.push((name, t, dtype, info.shape.clone()));
    }
    let dropped_values = count_non_tensor_values(tree);
    if dropped_values > 0 {
        plan.dropped.push(format!(
            "{dropped_values} non-tensor values (safetensors holds tensors only)"
        ));
    }
    Ok(plan)
}

/// A safetensors header as written: `__metadata__` first, then each tensor's entry in file
/// order — serialised straight to JSON text (no JSON value tree is built).
struct Header<'a> {
    /// In insertion order; a repeated key keeps its first place and its last value, as a JSON
    /// object filled in order (what collecting into a [`KeyMap`] does).
    metadata: KeyMap<&'a str, &'a str>,
    tensors: Vec<(&'a str, HeaderTensor<'a>)>,
}

/// One tensor's header entry (members in the order the safetensors format shows them).
#[derive(Serialize)]
struct HeaderTensor<'a> {
    dtype: Option<&'static str>,
    shape: &'a [u64],
    data_offsets: [u64; 2],
}

impl Serialize for Header<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        struct Pairs<'b, 'a>(&'b KeyMap<&'a str, &'a str>);
        impl Serialize for Pairs<'_, '_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter())
            }
        }
        let mut m = s.serialize_map(Some(1 + self.tensors.len()))?;
        m.serialize_entry("__metadata__", &Pairs(&self.metadata))?;
        for (name, t) in &self.tensors {
            m.serialize_entry(name, t)?;
        }
        m.end()
    }
}

/// Write the tensors of `tree` as a safetensors file.
pub fn write_safetensors(tree: &ETree, inputs: &Inputs, sink: Sink) -> Result<Report> {
    let SafetensorsPlan {
        items,
        dropped,
        aliases,
    } = plan_safetensors(tree, &inputs.ckpts)?;
    let mut report = Report {
        dropped,
        aliases,
        ..Report::default()
    };
    // larger elements first keeps every tensor naturally aligned; stable within a size
    let mut order: Vec<usize> = (0..items.len()).collect();
    crate::order::sort_by_key(&mut order, |&i| std::cmp::Reverse(items[i].2.size()));
    // `__metadata__`: the file's pairs, `format: pt` when absent, then the aliases (a repeated
    // key keeps its first place and its last value)
    let has_format = tree.metadata.iter().any(|(k, _)| k == "format");
    let pairs = tree
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain((!has_format).then_some(("format", "pt")))
        .chain(report.aliases.iter().map(|(r, k)| (r.as_str(), k.as_str())));
    let mut off = 0u64;
    let tensors = order
        .iter()
        .map(|&i| {
            let (name, _, dtype, shape) = &items[i];
            let n = shape.iter().product::<u64>() * dtype.size() as u64;
            off += n;
            let entry = HeaderTensor {
                dtype: dtype.safetensors_name(),
                shape,
                data_offsets: [off - n, off],
            };
            (name.as_str(), entry)
        })
        .collect();
    let header = Header {
        metadata: pairs.collect(),
        tensors,
    };
    // plain strings and integers: serialising cannot fail
    let mut h = serde_json::to_vec(&header).unwrap_or_default();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    report.tensors = items.len();
    if items.is_empty() && !tree.tensors().is_empty() {
        return Err(FormatError::new(format!(
            "nothing to write: none of the {} tensors can be stored in safetensors ({})",
            tree.tensors().len(),
            report.dropped.join("; ")
        )));
    }
    let mut out = Out {
        sink,
        pos: 0,
        report: &mut report,
    };
    let mut first = (h.len() as u64).to_le_bytes().to_vec();
    first.extend(h);
    out.bytes(first)?;
    for &i in &order {
        let (_, t, _, _) = &items[i];
        match copy_range(inputs, t)? {
            Some((file, offset, len, crc)) => out.slice(t.input, file, offset, len, crc)?,
            None => {
                let overflow = stream_tensor(inputs, t, &mut |b| out.bytes(b))?;
                if overflow > 0 {
                    out.report.overflow.push((items[i].0.clone(), overflow));
                }
            }
        }
    }
    Ok(report)
}

/// Non-tensor values of `tree` (what a tensors-only format drops).
pub fn count_non_tensor_values(tree: &ETree) -> usize {
    use crate::edit::tree::ENode;
    fn walk(n: &ENode) -> usize {
        match n {
            ENode::Leaf(_) => 1,
            ENode::Tensor(_) => 0,
            ENode::Dict { items, .. } => items.iter().map(|(_, v)| walk(v)).sum(),
            ENode::List(items) | ENode::Tuple(items) => items.iter().map(walk).sum(),
        }
    }
    walk(&tree.root)
}

#[cfg(test)]
mod tests {
    use super::{plan_safetensors, Header, HeaderTensor};
    use crate::edit::tree::ETree;
    use crate::format::checkpoint::{DictKind, Key, Node};

    #[test]
    fn a_tensor_named_like_the_metadata_is_refused_for_safetensors() {
        // `__metadata__` is the header's member for the metadata: such a tensor has no name there
        let (mut ckpt, _) = crate::stats::run::tests::sample();
        // a state dict of the sample's tensors 0 and 3 under these names
        let named = |names: [&str; 2]| Node::Dict {
            kind: DictKind::Dict,
            items: names
                .iter()
                .zip([0, 3])
                .map(|(n, index)| (Key::Str(n.to_string()), Node::Tensor { index }))
                .collect(),
            attrs: vec![],
            state_dict: true,
        };
        ckpt.root = named(["__metadata__", "b"]);
        let tree = ETree::from_checkpoint(&ckpt, 0);
        let e = plan_safetensors(&tree, &[&ckpt]).err().expect("refused");
        assert!(e.to_string().contains("__metadata__"), "{e}");
        ckpt.root = named(["metadata", "b"]);
        let tree = ETree::from_checkpoint(&ckpt, 0);
        assert!(plan_safetensors(&tree, &[&ckpt]).is_ok());
    }

    #[test]
    fn a_safetensors_header_is_metadata_first_then_tensors_in_order() {
        // the file's metadata repeats a key and an alias takes a metadata key's name: one member
        // each, in first place, with the last value (as a JSON object filled in order)
        let metadata: crate::format::fastmap::KeyMap<&str, &str> = [
            ("a", "1"),
            ("format", "pt"),
            ("a", "2"),
            ("x.w", "old"),
            ("x.w", "x.v"),
        ]
        .into_iter()
        .collect();
        let pairs: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(pairs, [("a", "2"), ("format", "pt"), ("x.w", "x.v")]);
        let header = Header {
            metadata,
            tensors: vec![
                (
                    "x.v",
                    HeaderTensor {
                        dtype: Some("F32"),
                        shape: &[2, 3],
                        data_offsets: [0, 24],
                    },
                ),
                (
                    "\"q\"\n",
                    HeaderTensor {
                        dtype: Some("BF16"),
                        shape: &[],
                        data_offsets: [24, 26],
                    },
                ),
            ],
        };
        assert_eq!(
            serde_json::to_string(&header).unwrap(),
            concat!(
                r#"{"__metadata__":{"a":"2","format":"pt","x.w":"x.v"},"#,
                r#""x.v":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"#,
                r#""\"q\"\n":{"dtype":"BF16","shape":[],"data_offsets":[24,26]}}"#
            )
        );
    }
}
