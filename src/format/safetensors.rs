//! The `.safetensors` reader (docs/formats.md §6).
//!
//! Contract: [`open`] reads the 8-byte header length and the JSON header — exactly `8 + N` bytes,
//! never tensor data — validates the header and returns a [`Checkpoint`]: `format: Safetensors`,
//! root = a state dict (`Node::Dict`, kind `Dict`, `state_dict: true`) of name → tensor, tensors in
//! data-offset order, one [`StorageInfo`] per tensor (key = name, record = `tensor 'name'`, absolute
//! offset `8 + N + begin`), C-contiguous strides, `__metadata__` kept in header order, empty
//! safety report. Tensor bytes are read later through [`super::data::read_tensor`].
//!
//! Validation (each violation is a [`FormatError`] naming the tensor when one is involved):
//! - the file holds at least 8 bytes; `N ≤ 100_000_000` (the official crate's limit); `8 + N` fits
//!   in the file;
//! - the header is UTF-8, its first non-space byte is `{`, and it is one JSON object (trailing JSON
//!   whitespace allowed, as the crate allows);
//! - names are unique (the crate silently keeps the last duplicate; we reject), `__metadata__`
//!   appears at most once and is an object of unique string keys → string values (or `null`),
//!   at most [`MAX_METADATA_ENTRIES`] entries of at most [`MAX_METADATA_BYTES`] together;
//! - a shape has at most [`MAX_DIMS`] dimensions;
//! - duplicate checks use hash sets: the header is checked in time linear in its size;
//! - each entry is an object with `dtype` (a known name), `shape` (non-negative integers) and
//!   `data_offsets` (two non-negative integers), each field once; unknown extra fields are ignored
//!   (as the crate does);
//! - sorted by `(begin, end)`, the entries tile the data section exactly: the first begins at 0,
//!   each begins where the previous ended (no gap, no overlap), `begin ≤ end ≤ data length`, and the
//!   last ends at the end of the file (no trailing bytes);
//! - `product(shape) × bits(dtype)` is computed with overflow checks, is a whole number of bytes
//!   and equals `end − begin`.
//!
//! Dtypes map to torch names through [`DType::from_safetensors`]. Two need care:
//! - `F4` (4-bit e2m1 floats, two per byte) maps to torch's `float4_e2m1fn_x2` with the **last
//!   dimension halved**: the header counts 4-bit elements, torch counts packed pairs (docs/formats.md §6). An odd
//!   last dimension (the crate accepts `[2, 3]`: 24 bits) has no torch view and is rejected.
//! - `F6_E2M3` / `F6_E3M2` have no torch dtype: "unsupported dtype F6_E2M3 for tensor 'x'".
//!
//! Why not `safetensors::tensor::Metadata` (the official crate, used here only as
//! a test oracle)?
//! Deserializing it from the header bytes alone would be lazy enough, but it does not fit:
//! - its offsets and shapes are `usize`, 32 bits on wasm32: the page could not open a file (or a
//!   5 GB shard) whose data section passes 4 GiB;
//! - its header is a `HashMap`: header order of `__metadata__` is lost and duplicate names are
//!   silently merged (last wins), so duplicates cannot be reported;
//! - its 0.7 `Dtype` lacks `F8_E4M3FNUZ` / `F8_E5M2FNUZ`;
//! - its errors do not name the tensor for size mismatches or overflows.
//!
//! So the header is parsed with serde_json by our own visitors (`RawHeader`: members in order,
//! duplicates kept, entry fields read into typed slots, values as [`super::json::Json`]) and the
//! crate's rules are re-implemented here over `u64`. The unit tests run the crate's own
//! `read_metadata` on every hand-built file as an oracle: we must reject everything it rejects.

use super::checkpoint::{Checkpoint, DictKind, Key, Node, SafetyReport, StorageInfo, TensorInfo};
use super::detect::Format;
use super::dtype::DType;
use super::error::{FormatError, Result};
use super::json::Json;
use super::source::Source;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Largest header accepted (bytes), the official crate's `MAX_HEADER_SIZE`.
pub const MAX_HEADER: u64 = 100_000_000;

/// Most dimensions a tensor may have (numpy's `NPY_MAXDIMS`).
pub const MAX_DIMS: usize = 64;

/// Most `__metadata__` entries, and most bytes of their keys and values together.
pub const MAX_METADATA_ENTRIES: usize = 65_536;
pub const MAX_METADATA_BYTES: usize = 16 << 20;

/// One tensor entry of a validated header.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderTensor {
    pub name: String,
    /// The dtype string as written in the header (`"F32"`, `"F4"`).
    pub st_dtype: &'static str,
    /// The torch dtype.
    pub dtype: DType,
    /// The torch shape. It is the header's shape except for `F4`, whose header counts 4-bit
    /// elements: there the header's last dimension is twice this one.
    pub shape: Vec<u64>,
    /// Byte range relative to the start of the data section.
    pub begin: u64,
    pub end: u64,
}

/// A validated safetensors header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// `__metadata__` in header order.
    pub metadata: Vec<(String, String)>,
    /// Entries in data-offset order (ties, i.e. empty tensors at the same offset, keep header
    /// order).
    pub tensors: Vec<HeaderTensor>,
}

/// Open a `.safetensors` file named `name` (errors carry it as their file). Reads `8 + N` bytes.
pub fn open(src: &dyn Source, name: &str) -> Result<Checkpoint> {
    open_inner(src)
        .map_err(|e| e.in_file(name))
        .map(|(n, h)| build_checkpoint(h, 8 + n, name))
}

fn open_inner(src: &dyn Source) -> Result<(u64, Header)> {
    let len = src.len();
    if len < 8 {
        return Err(FormatError::at(
            "header",
            format!(
                "header too small: the file is {len} bytes, shorter than the 8-byte header length"
            ),
        ));
    }
    let mut nb = [0u8; 8];
    src.read_at(0, &mut nb)?;
    let n = u64::from_le_bytes(nb);
    if n > MAX_HEADER {
        return Err(FormatError::at(
            "header",
            format!(
                "header too large: the header length says {n} bytes, the limit is {MAX_HEADER}"
            ),
        ));
    }
    if n > len - 8 {
        return Err(FormatError::at(
            "header",
            format!(
                "invalid header length: {n} bytes of header would end past the end of the file ({len} bytes)"
            ),
        ));
    }
    let bytes = src.read_vec(8, n as usize)?;
    let header = parse_header(&bytes, len - 8 - n)?;
    Ok((n, header))
}

/// Validate header bytes (`N` bytes after the length) for a data section of `data_len` bytes.
pub fn parse_header(bytes: &[u8], data_len: u64) -> Result<Header> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        FormatError::at(
            "header",
            format!(
                "invalid UTF-8 in header at byte {} of the header",
                e.valid_up_to()
            ),
        )
    })?;
    let first = text.bytes().find(|&c| c != b' ');
    if first != Some(b'{') {
        let what = match first {
            None => "it is empty".to_string(),
            Some(c) => format!("it starts with {:?}", c as char),
        };
        return Err(FormatError::at(
            "header",
            format!("invalid header start: the header must be a JSON object beginning with '{{' ({what})"),
        ));
    }
    let members: Vec<(String, Member)> = serde_json::from_str::<RawHeader>(text)
        .map_err(|e| FormatError::at("header", format!("invalid JSON in header: {e}")))?
        .0;

    let mut seen = crate::format::fastmap::KeySet::with_capacity(members.len());
    for (name, m) in &members {
        if matches!(m, Member::Entry(_)) && !seen.insert(name.as_str()) {
            return Err(FormatError::at(
                tensor_place(name),
                "duplicate tensor name: the header lists this name more than once",
            ));
        }
    }
    drop(seen);
    let mut metadata: Option<Vec<(String, String)>> = None;
    let mut tensors = Vec::with_capacity(members.len());
    for (name, m) in members {
        match m {
            Member::Metadata(value) => {
                if metadata.is_some() {
                    return Err(FormatError::at(
                        "__metadata__",
                        "duplicate __metadata__ entry in the header",
                    ));
                }
                metadata = Some(parse_metadata(value)?);
            }
            Member::Entry(raw) => {
                let t = parse_entry(name, raw)?;
                tensors.push(t);
            }
        }
    }
    crate::order::sort_by_key(&mut tensors, |t| (t.begin, t.end));
    check_layout(&tensors, data_len)?;
    for t in &mut tensors {
        torch_shape(t).map_err(|e| e.within(tensor_place(&t.name)))?;
    }
    Ok(Header {
        metadata: metadata.unwrap_or_default(),
        tensors,
    })
}

fn tensor_place(name: &str) -> String {
    format!("tensor '{name}'")
}

fn parse_metadata(value: Json) -> Result<Vec<(String, String)>> {
    let members = match value {
        Json::Null => return Ok(Vec::new()),
        Json::Object(m) => m,
        other => {
            return Err(FormatError::at(
                "__metadata__",
                format!(
                    "__metadata__ must be an object of strings, found {}",
                    other.kind()
                ),
            ))
        }
    };
    if members.len() > MAX_METADATA_ENTRIES {
        return Err(FormatError::at(
            "__metadata__",
            format!(
                "__metadata__ has {} entries, more than the limit of {MAX_METADATA_ENTRIES}",
                members.len()
            ),
        ));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(members.len());
    let mut keys = crate::format::fastmap::KeySet::with_capacity(members.len());
    let mut bytes = 0usize;
    for (k, v) in members {
        bytes += k.len() + if let Json::Str(s) = &v { s.len() } else { 0 };
        if bytes > MAX_METADATA_BYTES {
            return Err(FormatError::at(
                "__metadata__",
                format!("__metadata__ holds more than the limit of {MAX_METADATA_BYTES} bytes"),
            ));
        }
        if !keys.insert(k.clone()) {
            return Err(FormatError::at(
                "__metadata__",
                format!("duplicate __metadata__ key '{k}'"),
            ));
        }
        match v {
            Json::Str(s) => out.push((k, s)),
            other => {
                return Err(FormatError::at(
                    "__metadata__",
                    format!(
                        "__metadata__ value for key '{k}' must be a string, found {}",
                        other.kind()
                    ),
                ))
            }
        }
    }
    Ok(out)
}

fn uint(v: &Json, what: &str) -> Result<u64> {
    match v {
        Json::UInt(u) => Ok(*u),
        other => Err(FormatError::new(format!(
            "{what} must be a non-negative integer, found {}",
            other.kind()
        ))),
    }
}

fn parse_entry(name: String, raw: RawEntry) -> Result<HeaderTensor> {
    parse_fields(&name, raw)
        .map_err(|e| e.within(tensor_place(&name)))
        .map(|(st_dtype, dtype, shape, begin, end)| HeaderTensor {
            name,
            st_dtype,
            dtype,
            shape,
            begin,
            end,
        })
}

type Fields = (&'static str, DType, Vec<u64>, u64, u64);

fn parse_fields(name: &str, raw: RawEntry) -> Result<Fields> {
    let (dtype, shape, offsets) = match raw {
        RawEntry::NotObject(kind) => {
            return Err(FormatError::new(format!(
                "a tensor entry must be an object with dtype, shape and data_offsets, found {kind}"
            )))
        }
        RawEntry::Fields {
            dup: Some(field), ..
        } => return Err(FormatError::new(format!("duplicate field '{field}'"))),
        RawEntry::Fields {
            dtype,
            shape,
            offsets,
            dup: None,
        } => (dtype, shape, offsets),
    };
    let missing = |f: &str| FormatError::new(format!("missing field '{f}'"));
    let st_dtype = match dtype.ok_or_else(|| missing("dtype"))? {
        Json::Str(s) => s,
        other => {
            return Err(FormatError::new(format!(
                "dtype must be a string, found {}",
                other.kind()
            )))
        }
    };
    let shape = match shape.ok_or_else(|| missing("shape"))? {
        Json::Array(dims) if dims.len() > MAX_DIMS => {
            return Err(FormatError::new(format!(
                "shape has {} dimensions, more than the limit of {MAX_DIMS}",
                dims.len()
            )))
        }
        Json::Array(dims) => dims
            .iter()
            .map(|d| uint(d, "each shape dimension"))
            .collect::<Result<Vec<u64>>>()?,
        other => {
            return Err(FormatError::new(format!(
                "shape must be an array of integers, found {}",
                other.kind()
            )))
        }
    };
    let (begin, end) = match offsets.ok_or_else(|| missing("data_offsets"))? {
        Json::Array(o) if o.len() == 2 => (
            uint(&o[0], "data_offsets[0]")?,
            uint(&o[1], "data_offsets[1]")?,
        ),
        other => {
            return Err(FormatError::new(format!(
                "data_offsets must be an array of two integers [begin, end], found {}",
                match other {
                    Json::Array(o) => format!("an array of {} items", o.len()),
                    o => o.kind().to_string(),
                }
            )))
        }
    };
    let (st_dtype, dtype) = match st_dtype.as_str() {
        "F4" => ("F4", DType::F4E2M1FNX2),
        "F6_E2M3" | "F6_E3M2" => {
            return Err(FormatError::new(format!(
                "unsupported dtype {st_dtype} for tensor '{name}': torch has no 6-bit float type"
            )))
        }
        s => match DType::from_safetensors(s) {
            Some(d) => (d.safetensors_name().expect("has a safetensors name"), d),
            None => {
                return Err(FormatError::new(format!(
                    "unknown dtype {s:?} for tensor '{name}'"
                )))
            }
        },
    };
    Ok((st_dtype, dtype, shape, begin, end))
}

/// The header as serde_json reads it: top-level members in order, duplicates kept, each entry
/// parsed into typed slots without allocating field names. Validation happens afterwards, so that
/// every error can name its tensor.
struct RawHeader(Vec<(String, Member)>);

enum Member {
    Metadata(Json),
    Entry(RawEntry),
}

enum RawEntry {
    Fields {
        dtype: Option<Json>,
        shape: Option<Json>,
        offsets: Option<Json>,
        /// The first field seen twice.
        dup: Option<&'static str>,
    },
    /// The entry was not an object: what it was.
    NotObject(&'static str),
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawHeader, A::Error> {
                let mut members = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    let m = if k == "__metadata__" {
                        Member::Metadata(map.next_value()?)
                    } else {
                        Member::Entry(map.next_value()?)
                    };
                    members.push((k, m));
                }
                Ok(RawHeader(members))
            }
        }
        d.deserialize_map(V)
    }
}

enum Field {
    Dtype,
    Shape,
    Offsets,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Field, E> {
                Ok(match v {
                    "dtype" => Field::Dtype,
                    "shape" => Field::Shape,
                    "data_offsets" => Field::Offsets,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tensor entry")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawEntry, A::Error> {
                let (mut dtype, mut shape, mut offsets, mut dup) = (None, None, None, None);
                while let Some(k) = map.next_key::<Field>()? {
                    let (slot, name) = match k {
                        Field::Dtype => (&mut dtype, "dtype"),
                        Field::Shape => (&mut shape, "shape"),
                        Field::Offsets => (&mut offsets, "data_offsets"),
                        // unknown extra fields are ignored, as the official crate does
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        dup = dup.or(Some(name));
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        *slot = Some(map.next_value::<Json>()?);
                    }
                }
                Ok(RawEntry::Fields {
                    dtype,
                    shape,
                    offsets,
                    dup,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<RawEntry, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawEntry::NotObject("an array"))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<RawEntry, E> {
                Ok(RawEntry::NotObject("null"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<RawEntry, E> {
                Ok(RawEntry::NotObject("a boolean"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<RawEntry, E> {
                Ok(RawEntry::NotObject("a number"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<RawEntry, E> {
                Ok(RawEntry::NotObject("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<RawEntry, E> {
                Ok(RawEntry::NotObject("a number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<RawEntry, E> {
                Ok(RawEntry::NotObject("a string"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Bits per header element of a safetensors dtype.
fn bits(t: &HeaderTensor) -> u64 {
    if t.st_dtype == "F4" {
        4
    } else {
        t.dtype.size() as u64 * 8
    }
}

/// The data section must be tiled exactly by the entries (already sorted by offsets), and each
/// entry's byte length must match its dtype and shape.
fn check_layout(tensors: &[HeaderTensor], data_len: u64) -> Result<()> {
    let mut expected = 0u64;
    let mut prev: Option<&HeaderTensor> = None;
    for t in tensors {
        let place = || tensor_place(&t.name);
        let span = || format!("data_offsets [{}, {}]", t.begin, t.end);
        if t.end < t.begin {
            return Err(FormatError::at(
                place(),
                format!("invalid offset: {} end before they begin", span()),
            ));
        }
        if t.end > data_len {
            return Err(FormatError::at(
                place(),
                format!(
                    "invalid offset: {} reach past the end of the data section ({data_len} bytes)",
                    span()
                ),
            ));
        }
        if t.begin != expected {
            let msg = match prev {
                None => format!(
                    "invalid offset: {}: the first tensor must begin at 0 (gap of {} bytes at the start of the data section)",
                    span(),
                    t.begin
                ),
                Some(p) if t.begin < expected => format!(
                    "invalid offset: {} overlap tensor '{}' [{}, {}]",
                    span(),
                    p.name, p.begin, p.end
                ),
                Some(p) => format!(
                    "invalid offset: {} leave a gap of {} bytes after tensor '{}' [{}, {}]",
                    span(),
                    t.begin - expected,
                    p.name,
                    p.begin,
                    p.end
                ),
            };
            return Err(FormatError::at(place(), msg));
        }
        let numel = t
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                FormatError::at(
                    place(),
                    format!("shape {:?}: the element count overflows 64 bits", t.shape),
                )
            })?;
        let nbits = numel.checked_mul(bits(t)).ok_or_else(|| {
            FormatError::at(
                place(),
                format!(
                    "shape {:?} of {}: the size in bits overflows 64 bits",
                    t.shape, t.st_dtype
                ),
            )
        })?;
        if nbits % 8 != 0 {
            return Err(FormatError::at(
                place(),
                format!(
                    "{numel} elements of {} are {nbits} bits, not a whole number of bytes",
                    t.st_dtype
                ),
            ));
        }
        if nbits / 8 != t.end - t.begin {
            return Err(FormatError::at(
                place(),
                format!(
                    "size mismatch: dtype {} × shape {:?} = {} bytes, but {} span {} bytes",
                    t.st_dtype,
                    t.shape,
                    nbits / 8,
                    span(),
                    t.end - t.begin
                ),
            ));
        }
        expected = t.end;
        prev = Some(t);
    }
    if expected != data_len {
        let extra = data_len - expected;
        return Err(match prev {
            Some(p) => FormatError::at(
                tensor_place(&p.name),
                format!(
                    "trailing bytes: {extra} bytes after the last tensor's end ({}) are not covered by any tensor (the data section is {data_len} bytes)",
                    p.end
                ),
            ),
            None => FormatError::at(
                "header",
                format!("trailing bytes: the header lists no tensors but {extra} bytes follow it"),
            ),
        });
    }
    Ok(())
}

/// Turn the header shape into torch's: F4 packs two 4-bit values per byte along the last dim.
fn torch_shape(t: &mut HeaderTensor) -> Result<()> {
    if t.st_dtype == "F4" {
        match t.shape.last_mut() {
            Some(d) if *d % 2 == 0 => *d /= 2,
            _ => {
                return Err(FormatError::new(format!(
                    "F4 shape {:?} has no torch float4_e2m1fn_x2 view: torch packs pairs along the last dimension, which must be even",
                    t.shape
                )))
            }
        }
    }
    Ok(())
}

/// C-contiguous strides (in elements) of a shape.
pub fn contiguous_strides(shape: &[u64]) -> Vec<u64> {
    let mut strides = vec![1u64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1].saturating_mul(shape[i + 1]);
    }
    strides
}

/// Build the index of a validated header; `data_start = 8 + N`.
pub fn build_checkpoint(header: Header, data_start: u64, name: &str) -> Checkpoint {
    let mut tensors = Vec::with_capacity(header.tensors.len());
    let mut storages = Vec::with_capacity(header.tensors.len());
    let mut items = Vec::with_capacity(header.tensors.len());
    for (i, t) in header.tensors.into_iter().enumerate() {
        storages.push(StorageInfo::plain(
            t.name.clone(),
            tensor_place(&t.name),
            t.dtype,
            t.end - t.begin,
            data_start + t.begin,
        ));
        tensors.push(TensorInfo {
            path: vec![t.name.clone()],
            dtype: t.dtype,
            strides: contiguous_strides(&t.shape),
            shape: t.shape,
            storage_offset: 0,
            storage: Some(i),
            requires_grad: false,
            parameter: false,
            kind: super::checkpoint::TensorKind::Dense,
        });
        items.push((Key::Str(t.name), Node::Tensor { index: i }));
    }
    Checkpoint {
        format: Format::Safetensors,
        root: Node::Dict {
            kind: DictKind::Dict,
            items,
            attrs: Vec::new(),
            state_dict: true,
        },
        tensors,
        storages,
        safety: SafetyReport::default(),
        metadata: header.metadata,
        files: vec![name.to_string()],
        notes: Vec::new(),
    }
}

/// A safetensors file of tensors `(name, dtype name, shape, little-endian bytes)`, stored in
/// this order (tests' hand-made files).
#[cfg(test)]
pub(crate) fn test_file(tensors: &[(&str, &str, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = vec![];
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let h = serde_json::Value::Object(header).to_string();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// A safetensors file of 1-D float32 tensors `(name, values)` (tests).
#[cfg(test)]
pub(crate) fn f32_test_file(tensors: &[(&str, &[f32])]) -> Vec<u8> {
    let all: Vec<_> = tensors
        .iter()
        .map(|&(name, v)| f32_tensor(name, v))
        .collect();
    test_file(&all)
}

/// One 1-D float32 tensor for [`test_file`].
#[cfg(test)]
pub(crate) fn f32_tensor<'a>(
    name: &'a str,
    v: &[f32],
) -> (&'a str, &'static str, Vec<u64>, Vec<u8>) {
    let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    (name, "F32", vec![v.len() as u64], bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::data::read_tensor_vec;
    use crate::format::source::{MemSource, SourceError};
    use std::cell::Cell;

    /// A safetensors file: length, header (as given, no padding), `data_len` data bytes
    /// (byte i = i mod 251).
    fn file(header: &str, data_len: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend((0..data_len).map(|i| (i % 251) as u8));
        v
    }

    /// Does the official crate accept these bytes?
    fn crate_accepts(buf: &[u8]) -> bool {
        ::safetensors::SafeTensors::read_metadata(buf).is_ok()
    }

    fn open_bytes(buf: Vec<u8>) -> Result<Checkpoint> {
        open(&MemSource(buf), "t.safetensors")
    }

    /// Expect an error containing every fragment; also check the official crate's verdict.
    fn rejects(header: &str, data_len: usize, fragments: &[&str], crate_also_rejects: bool) {
        let buf = file(header, data_len);
        let err = open_bytes(buf.clone()).expect_err(header).to_string();
        for f in fragments {
            assert!(
                err.contains(f),
                "error {err:?} lacks {f:?} (header {header})"
            );
        }
        assert!(err.starts_with("t.safetensors: "), "{err}");
        assert_eq!(
            !crate_accepts(&buf),
            crate_also_rejects,
            "crate verdict differs from the expectation for {header}"
        );
    }

    #[test]
    fn reads_a_valid_file_in_offset_order() {
        // header order differs from offset order; metadata order kept; empty and 0-rank tensors
        let h = r#"{"b":{"dtype":"F16","shape":[2],"data_offsets":[32,36]},"__metadata__":{"z":"1","format":"pt"},"a":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"e":{"dtype":"F32","shape":[0],"data_offsets":[24,24]},"c":{"dtype":"BF16","shape":[2,2],"data_offsets":[24,32]},"s":{"dtype":"BOOL","shape":[],"data_offsets":[36,37]}}  "#;
        let buf = file(h, 37);
        assert!(crate_accepts(&buf));
        let ck = open_bytes(buf.clone()).unwrap();
        assert_eq!(ck.format, Format::Safetensors);
        let names: Vec<_> = ck.tensors.iter().map(|t| t.path_string()).collect();
        assert_eq!(names, ["a", "e", "c", "b", "s"]);
        assert_eq!(
            ck.metadata,
            vec![("z".into(), "1".into()), ("format".into(), "pt".into())]
        );
        assert_eq!(ck.files, ["t.safetensors"]);
        assert!(ck.safety.globals.is_empty());
        assert_eq!(ck.safety.verdict(), "safe");
        let Node::Dict {
            kind,
            items,
            state_dict,
            ..
        } = &ck.root
        else {
            panic!()
        };
        assert_eq!(*kind, DictKind::Dict);
        assert!(state_dict);
        assert_eq!(items[2], (Key::Str("c".into()), Node::Tensor { index: 2 }));
        let c = &ck.tensors[2];
        assert_eq!(
            (c.dtype, &c.shape[..], &c.strides[..]),
            (DType::BF16, &[2u64, 2][..], &[2u64, 1][..])
        );
        let s = &ck.storages[2];
        let start = 8 + h.len() as u64;
        assert_eq!(
            (
                s.key.as_str(),
                s.record.as_str(),
                s.offset,
                s.nbytes,
                s.file,
                s.crc32,
                s.big_endian
            ),
            ("c", "tensor 'c'", start + 24, 8, 0, None, false)
        );
        assert_eq!(ck.tensors[4].shape, Vec::<u64>::new());
        // bytes come from the right place
        let src = MemSource(buf.clone());
        let srcs: [&dyn Source; 1] = [&src];
        let got = read_tensor_vec(&ck, &srcs, 2).unwrap();
        assert_eq!(got, buf[start as usize + 24..start as usize + 32]);
        assert!(read_tensor_vec(&ck, &srcs, 1).unwrap().is_empty());
    }

    #[test]
    fn empty_header_is_valid() {
        let buf = file("{}", 0);
        assert!(crate_accepts(&buf));
        let ck = open_bytes(buf).unwrap();
        assert!(ck.tensors.is_empty());
        let buf = file(r#"   {"__metadata__":null}"#, 0);
        assert!(crate_accepts(&buf));
        assert!(open_bytes(buf).unwrap().metadata.is_empty());
    }

    #[test]
    fn every_dtype_maps_to_its_torch_name() {
        let cases = [
            ("F64", "float64", 8),
            ("F32", "float32", 4),
            ("F16", "float16", 2),
            ("BF16", "bfloat16", 2),
            ("F8_E4M3", "float8_e4m3fn", 1),
            ("F8_E5M2", "float8_e5m2", 1),
            ("F8_E4M3FNUZ", "float8_e4m3fnuz", 1),
            ("F8_E5M2FNUZ", "float8_e5m2fnuz", 1),
            ("F8_E8M0", "float8_e8m0fnu", 1),
            ("I8", "int8", 1),
            ("I16", "int16", 2),
            ("I32", "int32", 4),
            ("I64", "int64", 8),
            ("U8", "uint8", 1),
            ("U16", "uint16", 2),
            ("U32", "uint32", 4),
            ("U64", "uint64", 8),
            ("BOOL", "bool", 1),
            ("C64", "complex64", 8),
        ];
        for (st, torch, size) in cases {
            let h = format!(
                r#"{{"x":{{"dtype":"{st}","shape":[2,3],"data_offsets":[0,{}]}}}}"#,
                6 * size
            );
            let ck = open_bytes(file(&h, 6 * size)).unwrap_or_else(|e| panic!("{st}: {e}"));
            assert_eq!(ck.tensors[0].dtype.name(), torch);
            assert_eq!(ck.tensors[0].shape, [2, 3]);
        }
    }

    #[test]
    fn f4_halves_the_last_dim_and_f6_is_unsupported() {
        let h = r#"{"q":{"dtype":"F4","shape":[3,4],"data_offsets":[0,6]}}"#;
        assert!(crate_accepts(&file(h, 6)));
        let ck = open_bytes(file(h, 6)).unwrap();
        let t = &ck.tensors[0];
        assert_eq!(
            (t.dtype.name(), &t.shape[..]),
            ("float4_e2m1fn_x2", &[3u64, 2][..])
        );
        assert_eq!(t.strides, [2, 1]);
        assert_eq!(t.nbytes(), 6);
        // odd number of 4-bit elements: not whole bytes (crate: MisalignedSlice)
        rejects(
            r#"{"q":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#,
            2,
            &["tensor 'q'", "not a whole number of bytes"],
            true,
        );
        // whole bytes but odd last dim: the crate accepts, torch has no view
        rejects(
            r#"{"q":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]}}"#,
            3,
            &["tensor 'q'", "last dimension", "even"],
            false,
        );
        rejects(
            r#"{"q":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}}"#,
            3,
            &["unsupported dtype F6_E2M3 for tensor 'q'"],
            false,
        );
        rejects(
            r#"{"q":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[0,3]}}"#,
            3,
            &["unsupported dtype F6_E3M2 for tensor 'q'"],
            false,
        );
    }

    #[test]
    fn header_length_rules() {
        // fewer than 8 bytes
        let err = open_bytes(vec![1, 2, 3]).unwrap_err().to_string();
        assert!(err.contains("header too small"), "{err}");
        assert!(!crate_accepts(&[1, 2, 3]));
        // N > 100 MB (checked before looking at the file length)
        let mut buf = 100_000_001u64.to_le_bytes().to_vec();
        buf.extend_from_slice(b"{}");
        let err = open_bytes(buf.clone()).unwrap_err().to_string();
        assert!(err.contains("header too large"), "{err}");
        assert!(!crate_accepts(&buf));
        // 8 + N past the end
        let mut buf = 50u64.to_le_bytes().to_vec();
        buf.extend_from_slice(b"{}");
        let err = open_bytes(buf.clone()).unwrap_err().to_string();
        assert!(err.contains("invalid header length"), "{err}");
        assert!(!crate_accepts(&buf));
        // N = u64::MAX must not overflow
        let buf = u64::MAX.to_le_bytes().to_vec();
        assert!(open_bytes(buf)
            .unwrap_err()
            .to_string()
            .contains("header too large"));
    }

    #[test]
    fn header_text_rules() {
        // invalid UTF-8
        let mut buf = 3u64.to_le_bytes().to_vec();
        buf.extend_from_slice(b"{\xff}");
        let err = open_bytes(buf.clone()).unwrap_err().to_string();
        assert!(err.contains("invalid UTF-8 in header"), "{err}");
        assert!(!crate_accepts(&buf));
        // not an object / does not start with '{'
        rejects("[]", 0, &["must be a JSON object beginning with '{'"], true);
        rejects("", 0, &["must be a JSON object", "empty"], true);
        // leading newline: serde_json (and the crate) skip it; we require '{' after spaces only
        rejects("\n{}", 0, &["beginning with '{'"], false);
        // malformed JSON, trailing garbage
        rejects(r#"{"a":}"#, 0, &["invalid JSON in header"], true);
        rejects(r#"{} x"#, 0, &["invalid JSON in header"], true);
        // trailing whitespace of any JSON kind is allowed (as the crate allows)
        let buf = file("{} \n\t ", 0);
        assert!(crate_accepts(&buf));
        assert!(open_bytes(buf).is_ok());
    }

    #[test]
    fn duplicate_names_are_rejected_naming_the_tensor() {
        let h = r#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        // the crate keeps the last "w" and then complains about the uncovered first byte; with the
        // same offsets it would accept silently:
        rejects(h, 2, &["tensor 'w'", "duplicate tensor name"], true);
        let h = r#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
        rejects(h, 1, &["tensor 'w'", "duplicate tensor name"], false);
    }

    #[test]
    fn metadata_rules() {
        rejects(
            r#"{"__metadata__":{"format":1}}"#,
            0,
            &["__metadata__", "'format'", "must be a string"],
            true,
        );
        rejects(
            r#"{"__metadata__":["a"]}"#,
            0,
            &["__metadata__ must be an object"],
            true,
        );
        rejects(
            r#"{"__metadata__":{"a":"1","a":"2"}}"#,
            0,
            &["duplicate __metadata__ key 'a'"],
            false,
        );
        rejects(
            r#"{"__metadata__":{},"__metadata__":{}}"#,
            0,
            &["duplicate __metadata__ entry"],
            true,
        );
    }

    #[test]
    fn entry_field_rules() {
        let cases: &[(&str, &[&str])] = &[
            (
                r#"{"x":{"shape":[1],"data_offsets":[0,1]}}"#,
                &["missing field 'dtype'"],
            ),
            (
                r#"{"x":{"dtype":"U8","data_offsets":[0,1]}}"#,
                &["missing field 'shape'"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[1]}}"#,
                &["missing field 'data_offsets'"],
            ),
            (
                r#"{"x":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}"#,
                &["unknown dtype \"Q8\" for tensor 'x'"],
            ),
            (
                r#"{"x":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}"#,
                &["dtype must be a string"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#,
                &["shape dimension must be a non-negative integer"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}"#,
                &["shape dimension must be a non-negative integer"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}"#,
                &["shape must be an array"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#,
                &["data_offsets must be an array of two integers", "3 items"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,-1]}}"#,
                &["data_offsets[1] must be a non-negative integer"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]}}"#,
                &["data_offsets[1] must be a non-negative integer"],
            ),
            (
                r#"{"x":[1]}"#,
                &["must be an object with dtype, shape and data_offsets"],
            ),
        ];
        for (h, frags) in cases {
            let mut f = vec!["tensor 'x'"];
            f.extend_from_slice(frags);
            rejects(h, 1, &f, true);
        }
        // a repeated field: serde in the crate rejects it too
        rejects(
            r#"{"x":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
            1,
            &["tensor 'x'", "duplicate field 'dtype'"],
            true,
        );
        // unknown extra fields are ignored, like the crate
        let buf = file(
            r#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"note":"hi"}}"#,
            1,
        );
        assert!(crate_accepts(&buf));
        assert!(open_bytes(buf).is_ok());
    }

    #[test]
    fn offset_rules() {
        let u8t = |n: &str, b: u64, e: u64| {
            format!(
                r#""{n}":{{"dtype":"U8","shape":[{}],"data_offsets":[{b},{e}]}}"#,
                e.saturating_sub(b)
            )
        };
        // gap at the start
        rejects(
            &format!("{{{}}}", u8t("a", 1, 2)),
            2,
            &["tensor 'a'", "must begin at 0"],
            true,
        );
        // gap between
        rejects(
            &format!("{{{},{}}}", u8t("a", 0, 1), u8t("b", 2, 3)),
            3,
            &["tensor 'b'", "gap of 1 bytes after tensor 'a'"],
            true,
        );
        // overlap
        rejects(
            &format!("{{{},{}}}", u8t("a", 0, 2), u8t("b", 1, 3)),
            3,
            &["tensor 'b'", "overlap tensor 'a' [0, 2]"],
            true,
        );
        // end before begin
        rejects(
            r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}}"#,
            2,
            &["tensor 'b'"],
            true,
        );
        // past the data section
        rejects(
            &format!("{{{}}}", u8t("a", 0, 5)),
            3,
            &["tensor 'a'", "past the end of the data section (3 bytes)"],
            true,
        );
        // trailing bytes after the last tensor
        rejects(
            &format!("{{{},{}}}", u8t("a", 0, 1), u8t("b", 1, 2)),
            5,
            &["tensor 'b'", "trailing bytes", "3 bytes"],
            true,
        );
        rejects("{}", 4, &["trailing bytes", "no tensors"], true);
    }

    #[test]
    fn size_rules() {
        rejects(
            r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#,
            20,
            &[
                "tensor 'w'",
                "F32 × shape [2, 3] = 24 bytes",
                "span 20 bytes",
            ],
            true,
        );
        // element count overflow
        rejects(
            r#"{"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}}"#,
            1,
            &["tensor 'w'", "element count overflows"],
            true,
        );
        // bit count overflow
        rejects(
            r#"{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,1]}}"#,
            1,
            &["tensor 'w'", "bits overflows"],
            true,
        );
        // a zero dimension makes any other dimension harmless
        let buf = file(
            r#"{"w":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}}"#,
            0,
        );
        assert!(crate_accepts(&buf));
        assert!(open_bytes(buf).is_ok());
    }

    /// A 1 GiB file whose bytes beyond the header are served as zeros, counting what is read.
    struct Counting {
        head: Vec<u8>,
        len: u64,
        bytes: Cell<u64>,
        calls: Cell<u64>,
    }

    impl Source for Counting {
        fn len(&self) -> u64 {
            self.len
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), SourceError> {
            if offset + buf.len() as u64 > self.len {
                return Err(SourceError("past the end".into()));
            }
            self.bytes.set(self.bytes.get() + buf.len() as u64);
            self.calls.set(self.calls.get() + 1);
            for (i, b) in buf.iter_mut().enumerate() {
                let p = offset as usize + i;
                *b = self.head.get(p).copied().unwrap_or(0);
            }
            Ok(())
        }
    }

    #[test]
    fn opening_reads_only_the_header() {
        // 1 GiB of data: 256 F32 tensors of 1 Mi elements, then a small one
        let mut h = String::from(r#"{"__metadata__":{"format":"pt"}"#);
        let mut off = 0u64;
        for i in 0..256 {
            h += &format!(
                r#","layer.{i}.weight":{{"dtype":"F32","shape":[1024,256],"data_offsets":[{off},{}]}}"#,
                off + (1 << 20)
            );
            off += 1 << 20;
        }
        let total = (1u64 << 30) - 8 - h.len() as u64 - 2;
        let pad = total - off;
        h += &format!(
            r#","tail":{{"dtype":"U8","shape":[{pad}],"data_offsets":[{off},{}]}}}}"#,
            off + pad
        );
        let n = h.len() as u64;
        let mut head = n.to_le_bytes().to_vec();
        head.extend_from_slice(h.as_bytes());
        let src = Counting {
            head,
            len: 8 + n + off + pad,
            bytes: 0.into(),
            calls: 0.into(),
        };
        assert!(src.len() >= 1 << 29);
        let ck = open(&src, "big.safetensors").unwrap();
        assert_eq!(ck.tensors.len(), 257);
        assert_eq!(
            src.bytes.get(),
            8 + n,
            "opening must read exactly 8 + N bytes"
        );
        assert_eq!(src.calls.get(), 2);
        // and through format::open (which first sniffs up to 512 bytes to detect the format)
        src.bytes.set(0);
        let ck2 = crate::format::open(&src, "big.safetensors").unwrap();
        assert_eq!(ck2.tensors.len(), 257);
        assert_eq!(src.bytes.get(), 512 + 8 + n);
        // reading one tensor reads just its bytes
        src.bytes.set(0);
        let srcs: [&dyn Source; 1] = [&src];
        let v = read_tensor_vec(&ck, &srcs, 3).unwrap();
        assert_eq!(v.len(), 1 << 20);
        assert_eq!(src.bytes.get(), 1 << 20);
    }

    #[test]
    fn strides_are_c_contiguous() {
        assert_eq!(contiguous_strides(&[2, 3, 4]), [12, 4, 1]);
        assert_eq!(contiguous_strides(&[]), Vec::<u64>::new());
        assert_eq!(contiguous_strides(&[5]), [1]);
    }
}
