//! Tensor bytes on demand.
//!
//! Contract: [`read_tensor`] streams one tensor's elements in row-major order as little-endian
//! bytes — exactly what `t.contiguous()` holds — in chunks of at most `chunk` bytes (always a
//! whole number of elements), reading only the storage bytes the tensor covers. Views with
//! offsets, arbitrary and zero strides are gathered; big-endian storages are swapped. When a
//! tensor covers its whole zip record, the record's CRC-32 is checked as it streams. Deflated
//! records are inflated as they stream ([`super::inflate`]); a strided view of one is gathered
//! from a window of at most 64 MiB.

use super::checkpoint::{Checkpoint, StorageInfo, TensorInfo};
use super::error::{FormatError, Result};
use super::source::Source;

/// Default chunk size for streaming (4 MiB).
pub const DEFAULT_CHUNK: usize = 4 << 20;

/// Largest storage window gathered in one piece for a strided view; larger views go row by row.
const GATHER_WINDOW: u64 = 64 << 20;

/// Stream tensor `index` of `ckpt`, reading from `sources[storage.file]`.
pub fn read_tensor(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    index: usize,
    chunk: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    read_chunks(ckpt, sources, index, chunk, Chunks::Lend(sink))
}

/// [`read_tensor`] handing each chunk over as a buffer obtained from `take(len)` (which may
/// return a used buffer: its content is replaced): a contiguous tensor is read straight into
/// those buffers, so a consumer that keeps the chunks (a writer's output parts) copies nothing.
pub fn read_tensor_owned(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    index: usize,
    chunk: usize,
    take: &mut dyn FnMut(usize) -> Vec<u8>,
    sink: &mut dyn FnMut(Vec<u8>) -> Result<()>,
) -> Result<()> {
    read_chunks(ckpt, sources, index, chunk, Chunks::Give { take, sink })
}

/// Where [`read_tensor_from`] puts its chunks.
enum Chunks<'s> {
    /// Lent to the sink, from one reused buffer.
    Lend(&'s mut dyn FnMut(&[u8]) -> Result<()>),
    /// Read into a buffer from `take` and handed to the sink.
    Give {
        take: &'s mut dyn FnMut(usize) -> Vec<u8>,
        sink: &'s mut dyn FnMut(Vec<u8>) -> Result<()>,
    },
}

impl Chunks<'_> {
    /// Append one gathered element to `out`; a full chunk is byte-swapped and emitted.
    #[inline]
    fn push(&mut self, out: &mut Vec<u8>, element: &[u8], chunk: usize, unit: usize) -> Result<()> {
        out.extend_from_slice(element);
        if out.len() >= chunk {
            swap_in_place(out, unit);
            self.emit(out)?;
            out.clear();
        }
        Ok(())
    }

    /// Pass on bytes gathered elsewhere.
    fn emit(&mut self, b: &[u8]) -> Result<()> {
        match self {
            Chunks::Lend(f) => f(b),
            Chunks::Give { take, sink } => {
                let mut v = take(b.len());
                v.clear();
                v.extend_from_slice(b);
                sink(v)
            }
        }
    }
}

fn read_chunks(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    index: usize,
    chunk: usize,
    out: Chunks,
) -> Result<()> {
    let t = &ckpt.tensors[index];
    let place = t.path_string();
    let s = match t.storage {
        Some(s) => &ckpt.storages[s],
        None => {
            return Err(FormatError::at(place, "tensor has no data (meta tensor)"));
        }
    };
    let src = *sources
        .get(s.file)
        .ok_or_else(|| FormatError::at(&s.record, "file of this storage is not open"))?;
    read_tensor_from(t, s, src, chunk, out).map_err(|e| e.within(place))
}

/// Read the whole tensor into memory (tests and small tensors only).
pub fn read_tensor_vec(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    index: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(ckpt.tensors[index].nbytes() as usize);
    read_tensor(ckpt, sources, index, DEFAULT_CHUNK, &mut |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

/// Stream a whole storage's stored bytes in chunks of at most [`DEFAULT_CHUNK`] bytes, each a
/// whole number of `unit`-byte elements, reversing every `swap`-byte group (pass the element's
/// swap unit to turn big-endian data little-endian, 1 to keep the bytes as stored).
pub fn read_storage(
    s: &StorageInfo,
    src: &dyn Source,
    unit: usize,
    swap: usize,
    f: &mut dyn FnMut(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let bytes = s.bytes(src)?;
    let unit = unit.max(1) as u64;
    let chunk = (DEFAULT_CHUNK as u64 / unit).max(1) * unit;
    let mut buf = Vec::with_capacity(chunk.min(s.nbytes) as usize);
    let mut done = 0u64;
    while done < s.nbytes {
        let n = (s.nbytes - done).min(chunk) as usize;
        buf.resize(n, 0);
        bytes
            .read_at(done, &mut buf)
            .map_err(|e| FormatError::at(&s.record, e.0))?;
        swap_in_place(&mut buf, swap);
        f(&mut buf)?;
        done += n as u64;
    }
    Ok(())
}

/// CRC-32 of a storage's stored bytes.
pub fn storage_crc32(s: &StorageInfo, src: &dyn Source) -> Result<u32> {
    let mut h = crate::format::crc32::Hasher::new();
    read_storage(s, src, 1, 1, &mut |b| {
        h.update(b);
        Ok(())
    })?;
    Ok(h.finalize())
}

/// Check a storage's bytes against its CRC-32 (no-op when it has none).
pub fn verify_crc(s: &StorageInfo, src: &dyn Source) -> Result<()> {
    let Some(want) = s.crc32 else { return Ok(()) };
    check_crc(s, storage_crc32(s, src)?, want)
}

fn check_crc(s: &StorageInfo, got: u32, want: u32) -> Result<()> {
    if got != want {
        return Err(FormatError::at(
            &s.record,
            format!("CRC-32 mismatch: the zip directory says {want:08x}, the bytes hash to {got:08x} (the file is corrupted)"),
        ));
    }
    Ok(())
}

/// A strided view over more than [`GATHER_WINDOW`] bytes of a deflated record would need the
/// stream restarted for every row; it is refused instead.
fn wide_deflated_view(s: &StorageInfo, span: u64) -> FormatError {
    FormatError::at(
        &s.record,
        format!("a strided view spanning {span} bytes of a deflated record (more than {GATHER_WINDOW}) is not read: re-save the file with torch.save, which stores records uncompressed"),
    )
}

fn swap_in_place(buf: &mut [u8], unit: usize) {
    if unit > 1 {
        for c in buf.chunks_exact_mut(unit) {
            c.reverse();
        }
    }
}

thread_local! {
    /// The chunk buffer [`read_tensor`] lends its sink, kept for the thread's next tensor: a fresh
    /// one per tensor was allocated and zeroed every time (whole-file statistics of 1,000
    /// tensors of 1 MB spent as long zeroing as computing moments). Only its content changes
    /// hands; nested reads get a buffer of their own.
    static LENT: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Largest lent buffer kept between tensors (a reader asking for bigger chunks allocates them).
const KEEP_LENT: usize = 2 * DEFAULT_CHUNK;

fn read_tensor_from(
    t: &TensorInfo,
    s: &StorageInfo,
    src: &dyn Source,
    chunk: usize,
    mut out_chunks: Chunks,
) -> Result<()> {
    let esz = t.dtype.size() as u64;
    let numel = t.numel();
    if numel == 0 {
        return Ok(());
    }
    // Bounds: the last element must lie inside the storage.
    let mut last = t.storage_offset;
    for (&n, &st) in t.shape.iter().zip(&t.strides) {
        last = last
            .checked_add(
                (n - 1)
                    .checked_mul(st)
                    .ok_or_else(|| FormatError::new("stride overflow"))?,
            )
            .ok_or_else(|| FormatError::new("offset overflow"))?;
    }
    let storage_elems = s.nbytes / esz;
    if last >= storage_elems {
        return Err(FormatError::at(
            &s.record,
            format!(
                "view reaches element {last} but the storage holds {storage_elems} elements of {}",
                t.dtype
            ),
        ));
    }
    let unit = if s.big_endian { t.dtype.swap_unit() } else { 1 };
    let bytes = s.bytes(src)?;
    let src: &dyn Source = &bytes;
    let chunk = ((chunk as u64 / esz).max(1) * esz) as usize;

    if t.is_contiguous() {
        let start = t.storage_offset * esz;
        let total = numel * esz;
        let whole_record = t.storage_offset == 0 && total == s.nbytes;
        // (a deflated record checks its own CRC-32 when inflated to its end)
        let mut crc = if whole_record && s.crc32.is_some() && s.deflated.is_none() {
            Some(crate::format::crc32::Hasher::new())
        } else {
            None
        };
        let mut lent = LENT.take();
        let mut done = 0u64;
        while done < total {
            // min in u64 first: on wasm32 `total as usize` would wrap (a 4 GiB tensor → 0 bytes)
            let n = (total - done).min(chunk as u64) as usize;
            let mut buf = match &mut out_chunks {
                Chunks::Give { take, .. } => take(n),
                Chunks::Lend(_) => std::mem::take(&mut lent),
            };
            buf.resize(n, 0);
            src.read_at(start + done, &mut buf)
                .map_err(|e| FormatError::at(&s.record, e.0))?;
            if let Some(h) = crc.as_mut() {
                h.update(&buf);
            }
            swap_in_place(&mut buf, unit);
            match &mut out_chunks {
                Chunks::Give { sink, .. } => sink(buf)?,
                Chunks::Lend(f) => {
                    f(&buf)?;
                    lent = buf;
                }
            }
            done += n as u64;
        }
        if lent.capacity() <= KEEP_LENT {
            LENT.set(lent);
        }
        if let (Some(h), Some(want)) = (crc, s.crc32) {
            check_crc(s, h.finalize(), want)?;
        }
        return Ok(());
    }

    // Strided view: gather. Work over "rows" of the last dimension.
    let nd = t.shape.len();
    let row_len = t.shape[nd - 1];
    let row_stride = t.strides[nd - 1];
    let rows = numel / row_len;
    let window = (last - t.storage_offset + 1) * esz;
    let mut out = Vec::with_capacity(chunk);
    let mut idx = vec![0u64; nd.saturating_sub(1)];
    let esz_us = esz as usize;
    if window <= GATHER_WINDOW {
        let first = t.storage_offset;
        let mut win = vec![0u8; window as usize];
        src.read_at(first * esz, &mut win)
            .map_err(|e| FormatError::at(&s.record, e.0))?;
        for _ in 0..rows {
            let off = row_offset(&idx, &t.strides);
            for j in 0..row_len {
                let e = ((off + j * row_stride) * esz) as usize;
                out_chunks.push(&mut out, &win[e..e + esz_us], chunk, unit)?;
            }
            advance(&mut idx, &t.shape[..nd - 1]);
        }
    } else {
        if s.deflated.is_some() {
            return Err(wide_deflated_view(s, window));
        }
        // One row at a time; a row spanning more than the gather window (a huge stride) is read
        // element by element, so memory stays bounded (and `as usize` exact on wasm32).
        let row_span = ((row_len - 1) * row_stride + 1) * esz;
        let per_element = row_span > GATHER_WINDOW;
        let mut rowbuf = vec![
            0u8;
            if per_element {
                esz_us
            } else {
                row_span as usize
            }
        ];
        for _ in 0..rows {
            let off = t.storage_offset + row_offset(&idx, &t.strides);
            if !per_element {
                src.read_at(off * esz, &mut rowbuf)
                    .map_err(|e| FormatError::at(&s.record, e.0))?;
            }
            for j in 0..row_len {
                let e = if per_element {
                    src.read_at((off + j * row_stride) * esz, &mut rowbuf)
                        .map_err(|e| FormatError::at(&s.record, e.0))?;
                    0
                } else {
                    (j * row_stride * esz) as usize
                };
                out_chunks.push(&mut out, &rowbuf[e..e + esz_us], chunk, unit)?;
            }
            advance(&mut idx, &t.shape[..nd - 1]);
        }
    }
    if !out.is_empty() {
        swap_in_place(&mut out, unit);
        out_chunks.emit(&out)?;
    }
    Ok(())
}

/// Row-major increment of a multi-index.
/// Offset (in elements, from the storage offset) of the row at index `idx` of the leading
/// dimensions.
fn row_offset(idx: &[u64], strides: &[u64]) -> u64 {
    idx.iter().zip(strides).map(|(&i, &s)| i * s).sum()
}

fn advance(idx: &mut [u64], shape: &[u64]) {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return;
        }
        idx[d] = 0;
    }
}

/// Read elements `first..first + count` of tensor `index` (row-major order) as contiguous
/// little-endian bytes. Lets two tensors be walked in lockstep (diffs) without holding either
/// whole in memory. Each call starts afresh: to read a tensor range after range, keep a
/// [`TensorRanges`] (a deflated record then inflates once, not once per range).
pub fn read_tensor_range(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    index: usize,
    first: u64,
    count: u64,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    TensorRanges::new(ckpt, sources, index)?.read_into(first, count, &mut out)?;
    Ok(out)
}

/// One tensor read range by range ([`read_tensor_range`] for each), keeping what makes the next
/// forward read cheap: the record's inflater (a deflated record's ranges read front to back
/// inflate it once in total — a fresh reader per range would inflate from the record's start
/// every time, quadratic in the number of ranges) and, for a strided view of a deflated record,
/// its inflated window.
pub struct TensorRanges<'a> {
    t: &'a TensorInfo,
    s: &'a StorageInfo,
    place: String,
    bytes: super::inflate::RecordBytes<'a>,
    /// The last storage element the view reaches.
    last: u64,
    window: std::cell::OnceCell<super::source::MemSource>,
}

impl<'a> TensorRanges<'a> {
    pub fn new(ckpt: &'a Checkpoint, sources: &[&'a dyn Source], index: usize) -> Result<Self> {
        let t = &ckpt.tensors[index];
        let place = t.path_string();
        let s = match t.storage {
            Some(s) => &ckpt.storages[s],
            None => return Err(FormatError::at(place, "tensor has no data (meta tensor)")),
        };
        let src = *sources
            .get(s.file)
            .ok_or_else(|| FormatError::at(&s.record, "file of this storage is not open"))?;
        let bytes = s.bytes(src).map_err(|e| e.within(place.clone()))?;
        // bounds of the whole view, as read_tensor checks them
        let mut last = t.storage_offset;
        for (&n, &st) in t.shape.iter().zip(&t.strides) {
            if n > 0 {
                last = last.saturating_add((n - 1).saturating_mul(st));
            }
        }
        Ok(TensorRanges {
            t,
            s,
            place,
            bytes,
            last,
            window: std::cell::OnceCell::new(),
        })
    }

    /// Elements `first..first + count` as little-endian bytes into `out` (replacing its content;
    /// its allocation is reused).
    pub fn read_into(&self, first: u64, count: u64, out: &mut Vec<u8>) -> Result<()> {
        let (t, s) = (self.t, self.s);
        let numel = t.numel();
        if first.checked_add(count).is_none_or(|end| end > numel) {
            return Err(FormatError::at(
                &self.place,
                format!("element range {first}+{count} is outside {numel} elements"),
            ));
        }
        let esz = t.dtype.size() as u64;
        if count > 0 && self.last >= s.nbytes / esz {
            return Err(FormatError::at(
                &self.place,
                format!("view reaches element {} past the storage", self.last),
            ));
        }
        let unit = if s.big_endian { t.dtype.swap_unit() } else { 1 };
        out.clear();
        if t.is_contiguous() {
            out.resize((count * esz) as usize, 0);
            self.bytes
                .read_at((t.storage_offset + first) * esz, out)
                .map_err(|e| FormatError::at(&s.record, e.0))?;
        } else {
            out.reserve((count * esz) as usize);
            let nd = t.shape.len();
            // multi-index of `first`
            let mut idx = vec![0u64; nd];
            let mut rem = first;
            for d in (0..nd).rev() {
                idx[d] = rem % t.shape[d];
                rem /= t.shape[d];
            }
            // A deflated record cannot seek backwards cheaply: its view's window is inflated once.
            let (from, origin): (&dyn Source, u64) = if s.deflated.is_some() {
                let span = (self.last - t.storage_offset + 1) * esz;
                if span > GATHER_WINDOW {
                    return Err(wide_deflated_view(s, span));
                }
                if self.window.get().is_none() {
                    let w = self
                        .bytes
                        .read_vec(t.storage_offset * esz, span as usize)
                        .map_err(|e| FormatError::at(&s.record, e.0))?;
                    let _ = self.window.set(super::source::MemSource(w));
                }
                (
                    self.window.get().expect("set above"),
                    t.storage_offset * esz,
                )
            } else {
                (&self.bytes, 0)
            };
            let mut el = vec![0u8; esz as usize];
            for _ in 0..count {
                let off =
                    t.storage_offset + idx.iter().zip(&t.strides).map(|(i, s)| i * s).sum::<u64>();
                from.read_at(off * esz - origin, &mut el)
                    .map_err(|e| FormatError::at(&s.record, e.0))?;
                out.extend_from_slice(&el);
                for d in (0..nd).rev() {
                    idx[d] += 1;
                    if idx[d] < t.shape[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
        }
        swap_in_place(out, unit);
        Ok(())
    }

    /// [`TensorRanges::read_into`] into a new vector.
    pub fn read(&self, first: u64, count: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(first, count, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod wide_row_tests {
    use super::*;
    use crate::format::{DType, Format, MemSource, Node, SafetyReport, TensorKind};

    #[test]
    fn a_row_wider_than_the_gather_window_is_read_element_by_element() {
        // u8 [2, 2] with strides [1, 2^26]: the view spans 64 MiB + 2 bytes of its storage
        let n = (1usize << 26) + 2;
        let mut bytes = vec![0u8; n];
        bytes[0] = 1;
        bytes[1] = 2;
        bytes[n - 2] = 3;
        bytes[n - 1] = 4;
        let ck = Checkpoint {
            format: Format::Safetensors,
            root: Node::None,
            tensors: vec![TensorInfo {
                path: vec!["w".into()],
                dtype: DType::U8,
                shape: vec![2, 2],
                strides: vec![1, 1 << 26],
                storage_offset: 0,
                storage: Some(0),
                requires_grad: false,
                parameter: false,
                kind: TensorKind::Dense,
            }],
            storages: vec![StorageInfo::plain("w", "w", DType::U8, n as u64, 0)],
            safety: SafetyReport::default(),
            metadata: vec![],
            files: vec!["m".into()],
            notes: vec![],
        };
        let src = MemSource(bytes);
        let got = read_tensor_vec(&ck, &[&src], 0).unwrap();
        assert_eq!(got, vec![1, 3, 2, 4]);
    }
}

/// A source that counts the bytes read from it (tests of what is read); several sources may
/// share one count.
#[cfg(test)]
pub(crate) struct Counting(
    pub super::source::MemSource,
    pub std::rc::Rc<std::cell::Cell<u64>>,
);

#[cfg(test)]
impl Source for Counting {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(
        &self,
        offset: u64,
        buf: &mut [u8],
    ) -> std::result::Result<(), super::source::SourceError> {
        self.1.set(self.1.get() + buf.len() as u64);
        self.0.read_at(offset, buf)
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;
    use crate::format::{DType, Format, MemSource, Node, SafetyReport};

    /// f32 `w` of `n` values in a deflated record, plus its transpose `[2, n/2]` → `[n/2, 2]`.
    fn deflated(n: usize) -> (Checkpoint, Counting, Vec<u8>) {
        let data: Vec<u8> = (0..n as u32)
            .flat_map(|i| ((i % 1000) as f32 * 0.5).to_le_bytes())
            .collect();
        let comp = miniz_oxide::deflate::compress_to_vec(&data, 1);
        let mut s = StorageInfo::plain("0", "archive/data/0", DType::F32, data.len() as u64, 0);
        s.deflated = Some(comp.len() as u64);
        s.crc32 = Some(crate::format::crc32::hash(&data));
        let t = TensorInfo::f32_at_start;
        let h = n as u64 / 2;
        let ck = Checkpoint {
            format: Format::TorchZip,
            root: Node::None,
            tensors: vec![
                t("w", vec![n as u64], vec![1]),
                t("wt", vec![h, 2], vec![1, h]),
            ],
            storages: vec![s],
            safety: SafetyReport::default(),
            metadata: vec![],
            files: vec!["m.pth".into()],
            notes: vec![],
        };
        (ck, Counting(MemSource(comp), Default::default()), data)
    }

    #[test]
    fn owned_chunks_equal_lent_chunks_whatever_buffers_are_given() {
        let (ck, src, data) = deflated(1 << 12);
        for index in [0, 1] {
            let want = read_tensor_vec(&ck, &[&src], index).unwrap();
            assert_eq!(want.len(), data.len());
            let mut got = Vec::new();
            let mut sizes = Vec::new();
            // used buffers of any length and content
            let mut take = |n: usize| {
                sizes.push(n);
                vec![0xAB; (n * 7) % 5000]
            };
            read_tensor_owned(&ck, &[&src], index, 1000, &mut take, &mut |b| {
                assert!(b.len() <= 1000 && b.len() % 4 == 0);
                got.extend(b);
                Ok(())
            })
            .unwrap();
            assert_eq!(got, want, "tensor {index}");
            assert!(sizes.len() >= 16);
        }
    }

    #[test]
    fn a_deflated_tensor_read_range_after_range_inflates_once() {
        let n = 1 << 20; // 4 MiB of f32
        let (ck, src, data) = deflated(n);
        let comp = src.len();
        let chunk = 1 << 14; // 64 ranges
        let r = TensorRanges::new(&ck, &[&src], 0).unwrap();
        let mut got = Vec::new();
        let mut buf = Vec::new();
        for first in (0..n as u64).step_by(chunk) {
            r.read_into(first, chunk as u64, &mut buf).unwrap();
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, data);
        // every compressed byte fetched once (a fresh inflater per range: ~32× as many)
        assert_eq!(src.1.get(), comp, "compressed bytes fetched");
        // the one-shot function starts afresh each time (the reason TensorRanges exists)
        src.1.set(0);
        let last = read_tensor_range(&ck, &[&src], 0, n as u64 - 4, 4).unwrap();
        assert_eq!(last, data[data.len() - 16..]);
        assert_eq!(src.1.get(), comp);
        // a strided view of the deflated record: its window inflated once for all ranges
        src.1.set(0);
        let r = TensorRanges::new(&ck, &[&src], 1).unwrap();
        let h = n / 2;
        let mut got = Vec::new();
        for first in (0..n as u64).step_by(chunk) {
            got.extend(r.read(first, chunk as u64).unwrap());
        }
        let want: Vec<u8> = (0..h)
            .flat_map(|i| [i, i + h])
            .flat_map(|e| data[4 * e..4 * e + 4].to_vec())
            .collect();
        assert_eq!(got, want);
        assert_eq!(src.1.get(), comp);
    }
}
