//! Writers: an edited tree → a torch zip or a safetensors file, produced as a sequence of
//! [`Part`]s — slices of the input files and new bytes — so that untouched tensor data is never
//! copied through memory (natively it is copied file to file; in the browser the parts become a
//! `Blob` of `File.slice`s).
//!
//! Contract:
//! - torch zip (pytorch-formats.md §5.2): records `data.pkl`, `byteorder` (`little`), `data/N`,
//!   `version` (`3\n`), each aligned to 64 bytes with an `FB` extra field, stored, with data
//!   descriptors and correct CRC-32s, zip64 extras and records when sizes or offsets need them,
//!   and the zip64 end records always (as torch writes them). No `.format_version`.
//! - safetensors: compact JSON header padded with spaces to a multiple of 8, `__metadata__`
//!   first (`format: pt` added when absent), tensors contiguous little-endian, larger element
//!   types first (natural alignment), identical aliases written once and recorded as
//!   `{"removed": "kept"}` in the metadata; keys are tensor paths joined by `.`.

use super::pickler::{pickle_tree, StorageContent};
use crate::edit::cast::Caster;
use crate::edit::tree::{ETree, TensorRef};
use crate::format::checkpoint::Checkpoint;
use crate::format::data::{read_tensor, DEFAULT_CHUNK};
use crate::format::dtype::DType;
use crate::format::error::{FormatError, Result};
use crate::format::source::Source;
use std::collections::HashMap;

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
    read_tensor(
        c,
        &inputs.sources[t.input],
        t.index,
        DEFAULT_CHUNK,
        &mut |b| match caster.as_mut() {
            Some(cs) => {
                let mut out = Vec::with_capacity(cs.out_len(b.len() as u64) as usize);
                cs.convert(b, &mut out);
                f(out)
            }
            None => f(b.to_vec()),
        },
    )?;
    Ok(caster.map(|c| c.overflow).unwrap_or(0))
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

struct CdEntry {
    name: String,
    offset: u64,
    size: u64,
    crc: u32,
}

fn push_u16(v: &mut Vec<u8>, x: u16) {
    v.extend(x.to_le_bytes());
}
fn push_u32(v: &mut Vec<u8>, x: u32) {
    v.extend(x.to_le_bytes());
}
fn push_u64(v: &mut Vec<u8>, x: u64) {
    v.extend(x.to_le_bytes());
}
fn sat32(x: u64) -> u32 {
    if x >= 0xFFFF_FFFF {
        0xFFFF_FFFF
    } else {
        x as u32
    }
}

const ALIGN: u64 = 64;

/// The local header (with zip64 extra when needed and FB padding so data starts 64-aligned).
fn local_header(name: &str, offset: u64, size: u64) -> Vec<u8> {
    let z64 = size >= 0xFFFF_FFFF || offset >= 0xFFFF_FFFF;
    let mut extra = vec![];
    if z64 {
        push_u16(&mut extra, 1);
        push_u16(&mut extra, 16);
        push_u64(&mut extra, size);
        push_u64(&mut extra, size);
    }
    let start = offset + 30 + name.len() as u64 + extra.len() as u64 + 4;
    let pad = (ALIGN - start % ALIGN) % ALIGN;
    push_u16(&mut extra, 0x4246);
    push_u16(&mut extra, pad as u16);
    extra.extend(std::iter::repeat_n(b'Z', pad as usize));
    let mut h = Vec::with_capacity(30 + name.len() + extra.len());
    push_u32(&mut h, 0x0403_4b50);
    push_u16(&mut h, if z64 { 45 } else { 20 });
    push_u16(&mut h, 0x0808);
    push_u16(&mut h, 0);
    push_u32(&mut h, 0); // time, date
    push_u32(&mut h, 0); // crc (in the descriptor)
    push_u32(&mut h, if z64 { 0xFFFF_FFFF } else { 0 });
    push_u32(&mut h, if z64 { 0xFFFF_FFFF } else { 0 });
    push_u16(&mut h, name.len() as u16);
    push_u16(&mut h, extra.len() as u16);
    h.extend_from_slice(name.as_bytes());
    h.extend(extra);
    h
}

fn descriptor(e: &CdEntry) -> Vec<u8> {
    let mut d = vec![];
    push_u32(&mut d, 0x0807_4b50);
    push_u32(&mut d, e.crc);
    if e.size >= 0xFFFF_FFFF || e.offset >= 0xFFFF_FFFF {
        push_u64(&mut d, e.size);
        push_u64(&mut d, e.size);
    } else {
        push_u32(&mut d, e.size as u32);
        push_u32(&mut d, e.size as u32);
    }
    d
}

fn central_directory(entries: &[CdEntry], cd_offset: u64) -> Vec<u8> {
    let mut cd = vec![];
    for e in entries {
        let mut extra = vec![];
        let big_size = e.size >= 0xFFFF_FFFF;
        let big_off = e.offset >= 0xFFFF_FFFF;
        if big_size || big_off {
            push_u16(&mut extra, 1);
            push_u16(
                &mut extra,
                if big_size { 16 } else { 0 } + if big_off { 8 } else { 0 },
            );
            if big_size {
                push_u64(&mut extra, e.size);
                push_u64(&mut extra, e.size);
            }
            if big_off {
                push_u64(&mut extra, e.offset);
            }
        }
        push_u32(&mut cd, 0x0201_4b50);
        push_u16(&mut cd, if extra.is_empty() { 20 } else { 45 });
        push_u16(&mut cd, if extra.is_empty() { 20 } else { 45 });
        push_u16(&mut cd, 0x0808);
        push_u16(&mut cd, 0);
        push_u32(&mut cd, 0);
        push_u32(&mut cd, e.crc);
        push_u32(&mut cd, sat32(e.size));
        push_u32(&mut cd, sat32(e.size));
        push_u16(&mut cd, e.name.len() as u16);
        push_u16(&mut cd, extra.len() as u16);
        push_u16(&mut cd, 0);
        push_u16(&mut cd, 0);
        push_u16(&mut cd, 0);
        push_u32(&mut cd, 0);
        push_u32(&mut cd, sat32(e.offset));
        cd.extend_from_slice(e.name.as_bytes());
        cd.extend(extra);
    }
    let cd_size = cd.len() as u64;
    let eocd64_at = cd_offset + cd_size;
    // zip64 end of central directory record + locator (always, like torch)
    push_u32(&mut cd, 0x0606_4b50);
    push_u64(&mut cd, 44);
    push_u16(&mut cd, 45);
    push_u16(&mut cd, 45);
    push_u32(&mut cd, 0);
    push_u32(&mut cd, 0);
    push_u64(&mut cd, entries.len() as u64);
    push_u64(&mut cd, entries.len() as u64);
    push_u64(&mut cd, cd_size);
    push_u64(&mut cd, cd_offset);
    push_u32(&mut cd, 0x0706_4b50);
    push_u32(&mut cd, 0);
    push_u64(&mut cd, eocd64_at);
    push_u32(&mut cd, 1);
    // classic end of central directory
    let n = entries.len().min(0xFFFF) as u16;
    push_u32(&mut cd, 0x0605_4b50);
    push_u16(&mut cd, 0);
    push_u16(&mut cd, 0);
    push_u16(&mut cd, n);
    push_u16(&mut cd, n);
    push_u32(&mut cd, sat32(cd_size));
    push_u32(&mut cd, sat32(cd_offset));
    push_u16(&mut cd, 0);
    cd
}

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

/// Write `tree` as a torch zip checkpoint.
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
    let mut cd: Vec<CdEntry> = vec![];

    let small = |out: &mut Out, cd: &mut Vec<CdEntry>, name: String, data: Vec<u8>| -> Result<()> {
        let offset = out.pos;
        out.bytes(local_header(&name, offset, data.len() as u64))?;
        let e = CdEntry {
            name,
            offset,
            size: data.len() as u64,
            crc: crc32fast::hash(&data),
        };
        out.bytes(data)?;
        out.bytes(descriptor(&e))?;
        cd.push(e);
        Ok(())
    };
    small(
        &mut out,
        &mut cd,
        format!("{prefix}/data.pkl"),
        pickled.bytes.clone(),
    )?;
    small(
        &mut out,
        &mut cd,
        format!("{prefix}/byteorder"),
        b"little".to_vec(),
    )?;

    for st in &pickled.storages {
        let name = format!("{prefix}/data/{}", st.key);
        let offset = out.pos;
        out.bytes(local_header(&name, offset, st.nbytes))?;
        // a deflated input record is written stored: streamed (inflated) like a swapped one
        let inflate_copy;
        let content = match &st.content {
            StorageContent::Copy { input, storage }
                if inputs.ckpts[*input].storages[*storage].deflated.is_some() =>
            {
                inflate_copy = StorageContent::Swapped {
                    input: *input,
                    storage: *storage,
                    unit: 1,
                };
                &inflate_copy
            }
            c => c,
        };
        let crc = match content {
            StorageContent::Copy { input, storage } => {
                let s = &inputs.ckpts[*input].storages[*storage];
                let base = s.data_offset(inputs.sources[*input][s.file])?;
                out.slice(*input, s.file, base, s.nbytes, s.crc32)?;
                match s.crc32 {
                    Some(c) => c,
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
                let mut h = crc32fast::Hasher::new();
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
                let mut caster = Caster::new(*from, *to).ok_or_else(|| {
                    FormatError::at(&s.record, format!("cannot cast {from} to {to}"))
                })?;
                let swap = if s.big_endian { from.swap_unit() } else { 1 };
                let mut h = crc32fast::Hasher::new();
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
                let mut h = crc32fast::Hasher::new();
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
        };
        let e = CdEntry {
            name,
            offset,
            size: st.nbytes,
            crc,
        };
        if out.pos - e.offset < st.nbytes {
            return Err(FormatError::at(
                e.name,
                "internal error: fewer bytes written than the storage holds",
            ));
        }
        out.bytes(descriptor(&e))?;
        cd.push(e);
    }
    small(
        &mut out,
        &mut cd,
        format!("{prefix}/version"),
        b"3\n".to_vec(),
    )?;
    let cd_offset = out.pos;
    out.bytes(central_directory(&cd, cd_offset))?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// safetensors

/// Tensors with equal keys are the same data: (input, storage, offset, shape, strides, dtype, cast).
type AliasKey = (usize, usize, u64, Vec<u64>, Vec<u64>, DType, Option<DType>);

/// Write the tensors of `tree` as a safetensors file.
pub fn write_safetensors(tree: &ETree, inputs: &Inputs, sink: Sink) -> Result<Report> {
    let mut report = Report::default();
    let mut names: HashMap<String, usize> = HashMap::new();
    // (name, tensor) in tree order, aliases removed
    let mut items: Vec<(String, TensorRef, DType, Vec<u64>)> = vec![];
    let mut seen: HashMap<AliasKey, String> = HashMap::new();
    for (path, t) in tree.tensors() {
        let name = path.join(".");
        let info = &inputs.ckpts[t.input].tensors[t.index];
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
            report
                .dropped
                .push(format!("{name}: safetensors cannot hold {what} tensors"));
            continue;
        }
        if info.storage.is_none() {
            report
                .dropped
                .push(format!("{name}: meta tensor has no data"));
            continue;
        }
        if names.insert(name.clone(), items.len()).is_some() {
            return Err(FormatError::at(
                name,
                "two tensors get this safetensors name (paths joined by '.')",
            ));
        }
        let key = (
            t.input,
            info.storage.unwrap_or(0),
            info.storage_offset,
            info.shape.clone(),
            info.strides.clone(),
            info.dtype,
            t.cast,
        );
        if let Some(kept) = seen.get(&key) {
            report.aliases.push((name, kept.clone()));
            continue;
        }
        seen.insert(key, name.clone());
        items.push((name, t, dtype, info.shape.clone()));
    }
    let dropped_values = count_non_tensor_values(tree);
    if dropped_values > 0 {
        report.dropped.push(format!(
            "{dropped_values} non-tensor values (safetensors holds tensors only)"
        ));
    }
    // larger elements first keeps every tensor naturally aligned; stable within a size
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(items[i].2.size()));
    let mut header = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    for (k, v) in &tree.metadata {
        meta.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    if !meta.contains_key("format") {
        meta.insert("format".into(), "pt".into());
    }
    for (removed, kept) in &report.aliases {
        meta.insert(removed.clone(), serde_json::Value::String(kept.clone()));
    }
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut off = 0u64;
    for &i in &order {
        let (name, _, dtype, shape) = &items[i];
        let n = shape.iter().product::<u64>() * dtype.size() as u64;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype.safetensors_name(), "shape": shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).expect("json");
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

fn count_non_tensor_values(tree: &ETree) -> usize {
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
