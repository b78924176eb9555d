//! The PyTorch 0.1.x tar format (before 0.1.10): a POSIX tar whose members `storages`,
//! `tensors` and `pickle` hold, in turn, the raw storages, the tensors' geometry and the object.
//!
//! Contract: opening walks the tar headers (one 512-byte read each; a PAX extended header may
//! rename or resize the next member; a member named twice takes its last copy, as Python's
//! `tarfile` does), then reads only the small pickles inside the members and the fixed-size
//! fields after them — never storage bytes, which are located by offset and read on demand like
//! any other format's. Layouts, as torch's `legacy_load` reads them (torch/serialization.py):
//! - `storages`: a pickled count M; M times a pickled `(key, location, storage_class)` (or
//!   `(key, storage_class)`), then `i64 numel` and numel × element size raw bytes; then a
//!   pickled list of views `(view_key, root_key, offset, numel)`.
//! - `tensors`: a pickled count N; N times a pickled `(key, storage_key, tensor_class)`, then
//!   `i32 ndim`, 4 bytes of padding, ndim × i64 sizes, ndim × i64 strides, `i64 storage_offset`.
//! - `pickle`: the object, whose persistent ids are the decimal keys of tensors and storages.
//!
//! All pickles go through the same safe VM; every global they name is in the safety report
//! (members in load order: storages, tensors, pickle).

use super::checkpoint::{Checkpoint, StorageInfo, TensorKind};
use super::detect::Format;
use super::dtype::DType;
use super::error::{FormatError, Result};
use super::pickle::calls::str_of;
use super::pickle::value::RawTensor;
use super::pickle::{
    trailing_note, tree, Id, Limits, StoragePid, StorageResolver, Unpickler, Value,
};
use super::source::Source;
use crate::format::fastmap::KeyMap;

/// Largest `pickle` member we load (the object, not the tensors).
const MAX_PICKLE: u64 = 1 << 30;
/// Largest PAX extended header we parse.
const MAX_PAX: u64 = 1 << 20;
/// Most dimensions a tensor record may declare.
const MAX_NDIM: i32 = 64;

fn err(place: &str, msg: impl Into<String>) -> FormatError {
    FormatError::at(place, msg)
}

/// One member's data: (first byte, length).
#[derive(Debug, Clone, Copy)]
struct Member {
    start: u64,
    len: u64,
}

fn octal(field: &[u8], what: &str, at: u64) -> Result<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        // GNU base-256: big-endian, high bit set, for sizes ≥ 8 GiB
        let mut v: u64 = (field[0] & 0x7F) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256).map(|v| v + b as u64).ok_or_else(|| {
                err(
                    &format!("tar header at byte {at}"),
                    format!("{what} overflows"),
                )
            })?;
        }
        return Ok(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| u64::from_str_radix(t, 8).ok())
        .ok_or_else(|| {
            err(
                &format!("tar header at byte {at}"),
                format!(
                    "{what} {:?} is not an octal number",
                    String::from_utf8_lossy(&text)
                ),
            )
        })
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Walk the headers; return the data spans of the members by name (last copy wins).
fn members(src: &dyn Source) -> Result<KeyMap<String, Member>> {
    let len = src.len();
    let mut out = KeyMap::new();
    let mut off = 0u64;
    let mut pax_path: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    while off + 512 <= len {
        let h = src.read_vec(off, 512)?;
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let place = format!("tar header at byte {off}");
        let want = octal(&h[148..156], "checksum", off)?;
        let got: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    b as u64
                }
            })
            .sum();
        if want != got {
            return Err(err(
                &place,
                format!("checksum {want} does not match the header's {got} (damaged archive)"),
            ));
        }
        let size = match pax_size.take() {
            Some(s) => s,
            None => octal(&h[124..136], "size", off)?,
        };
        let start = off + 512;
        if start.checked_add(size).is_none_or(|e| e > len) {
            return Err(err(
                &place,
                format!("member data (byte {start}, {size} bytes) runs past the end of the {len}-byte file (truncated?)"),
            ));
        }
        let mut name = cstr(&h[0..100]);
        if &h[257..262] == b"ustar" {
            let prefix = cstr(&h[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        if let Some(p) = pax_path.take() {
            name = p;
        }
        match h[156] {
            b'x' => {
                if size > MAX_PAX {
                    return Err(err(
                        &place,
                        format!(
                            "PAX header of {size} bytes is larger than the {MAX_PAX}-byte limit"
                        ),
                    ));
                }
                let data = src.read_vec(start, size as usize)?;
                for (k, v) in pax_records(&data) {
                    match k.as_str() {
                        "path" => pax_path = Some(v),
                        "size" => {
                            pax_size = Some(v.parse().map_err(|_| {
                                err(&place, format!("PAX size {v:?} is not a number"))
                            })?)
                        }
                        _ => {}
                    }
                }
            }
            b'0' | 0 | b'7' => {
                let name = name.strip_prefix("./").unwrap_or(&name).to_string();
                out.insert(name, Member { start, len: size });
            }
            _ => {}
        }
        off = start + size.div_ceil(512) * 512;
    }
    Ok(out)
}

/// `"<len> key=value\n"` records of a PAX header.
fn pax_records(mut d: &[u8]) -> Vec<(String, String)> {
    let mut out = vec![];
    while let Some(sp) = d.iter().position(|&b| b == b' ') {
        let Some(n) = std::str::from_utf8(&d[..sp])
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
        else {
            break;
        };
        if n <= sp + 1 || n > d.len() {
            break;
        }
        let rec = String::from_utf8_lossy(&d[sp + 1..n]);
        let rec = rec.strip_suffix('\n').unwrap_or(&rec);
        if let Some((k, v)) = rec.split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
        d = &d[n..];
    }
    out
}

/// Unpickle one pickle at `pos` inside `m`, reading a window that grows until the pickle fits.
fn load_at(
    u: &mut Unpickler,
    src: &dyn Source,
    m: Member,
    pos: u64,
    what: &str,
) -> Result<(Id, u64)> {
    let avail = m.len - pos.min(m.len);
    let mut window = avail.min(4096);
    loop {
        let buf = src.read_vec(m.start + pos, window as usize)?;
        match u.load(&buf, 0) {
            Ok((id, end)) => return Ok((id, pos + end as u64)),
            Err(e) if e.truncated && window < avail && window < MAX_PICKLE => {
                window = (window * 16).min(avail).min(MAX_PICKLE);
            }
            Err(e) => {
                return Err(FormatError::at(
                    format!("byte {}", m.start + pos + e.pos as u64),
                    e.msg,
                )
                .within(what.to_string()))
            }
        }
    }
}

/// A member's leading pickled count, and where the records after it start.
fn count_at(u: &mut Unpickler, src: &dyn Source, m: Member, what: &str) -> Result<(u64, u64)> {
    let (id, pos) = load_at(u, src, m, 0, what)?;
    Ok((count_of(u, id, what)?, pos))
}

/// The pickled tuple at `pos` inside `m`, and where it ends.
fn tuple_at(
    u: &mut Unpickler,
    src: &dyn Source,
    m: Member,
    pos: u64,
    what: &str,
) -> Result<(Vec<Id>, u64)> {
    let (id, end) = load_at(u, src, m, pos, what)?;
    Ok((tuple_of(u, id, what)?, end))
}

fn i64_at(src: &dyn Source, m: Member, pos: u64, what: &str) -> Result<i64> {
    if pos.checked_add(8).is_none_or(|e| e > m.len) {
        return Err(err(
            what,
            format!(
                "byte {}: past the end of the member (truncated?)",
                m.start + pos
            ),
        ));
    }
    let b = src.read_vec(m.start + pos, 8)?;
    Ok(i64::from_le_bytes(b.try_into().expect("8 bytes")))
}

fn tuple_of(u: &Unpickler, id: Id, what: &str) -> Result<Vec<Id>> {
    match u.get(id) {
        Value::Tuple(t) | Value::List(t) => Ok(t.to_vec()),
        other => Err(err(
            what,
            format!("expected a tuple, found a {}", other.kind_name()),
        )),
    }
}

fn count_of(u: &Unpickler, id: Id, what: &str) -> Result<u64> {
    match u.get(id) {
        Value::Int(n) if *n >= 0 => Ok(*n as u64),
        other => Err(err(
            what,
            format!("expected a count, found a {}", other.kind_name()),
        )),
    }
}

/// The storage dtype of a storage class global (`torch.FloatStorage`).
fn storage_dtype(u: &Unpickler, id: Id, what: &str) -> Result<DType> {
    match u.get(id) {
        Value::Global { name, .. } => DType::from_storage_class(name)
            .ok_or_else(|| err(what, format!("unknown storage class {name}"))),
        other => Err(err(
            what,
            format!("storage class is a {}", other.kind_name()),
        )),
    }
}

/// A resolver that takes no storage tuples: the `storages` and `tensors` members use none.
struct NoStorages;
impl StorageResolver for NoStorages {
    fn storage(&mut self, pid: &StoragePid) -> std::result::Result<usize, String> {
        Err(format!("unexpected storage persistent id {}", pid.key))
    }
}

/// The `pickle` member's persistent ids: tensor keys give tensors, storage keys storages.
struct TarResolver {
    tensors: KeyMap<String, RawTensor>,
    storages: KeyMap<String, (usize, DType)>,
}
impl StorageResolver for TarResolver {
    fn storage(&mut self, pid: &StoragePid) -> std::result::Result<usize, String> {
        self.storages
            .get(&pid.key)
            .map(|s| s.0)
            .ok_or_else(|| format!("storage {} is not in the storages member", pid.key))
    }
    fn by_key(&mut self, key: &str) -> Option<Value> {
        if let Some(t) = self.tensors.get(key) {
            return Some(Value::Tensor(Box::new(t.clone())));
        }
        self.storages
            .get(key)
            .map(|&(index, dtype)| Value::Storage {
                index,
                dtype: Some(dtype),
            })
    }
}

/// Open a 0.1.x tar checkpoint.
pub fn open_tar(src: &dyn Source, name: &str) -> Result<Checkpoint> {
    let ms = members(src)?;
    let get = |n: &str| {
        ms.get(n).copied().ok_or_else(|| {
            err(
                "tar",
                format!("no {n:?} member: this tar is not a PyTorch 0.1.x checkpoint"),
            )
        })
    };
    let (sm, tm, pm) = (get("storages")?, get("tensors")?, get("pickle")?);
    let mut none = NoStorages;
    let mut u = Unpickler::new(&mut none, Limits::default());

    // storages
    let mut storages: Vec<StorageInfo> = vec![];
    let mut by_key: KeyMap<String, (usize, DType)> = KeyMap::new();
    let (count, mut pos) = count_at(&mut u, src, sm, "storages")?;
    for i in 0..count {
        let place = format!("storages: storage {i}");
        let (items, p) = tuple_at(&mut u, src, sm, pos, &place)?;
        if !(2..=3).contains(&items.len()) {
            return Err(err(
                &place,
                format!(
                    "record has {} fields, expected (key, location, class)",
                    items.len()
                ),
            ));
        }
        let key = str_of(&u, items[0]).ok_or_else(|| err(&place, "storage key is not an int"))?;
        let dtype = storage_dtype(&u, items[items.len() - 1], &place)?;
        let numel = i64_at(src, sm, p, &place)?;
        let esz = dtype.size() as u64;
        let nbytes = u64::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(esz))
            .ok_or_else(|| err(&place, format!("storage {key} declares {numel} elements")))?;
        let data = p + 8;
        if data.checked_add(nbytes).is_none_or(|e| e > sm.len) {
            return Err(err(
                &place,
                format!("storage {key}: {nbytes} bytes at byte {} run past the end of the member (truncated?)", sm.start + data),
            ));
        }
        if by_key.contains_key(&key) {
            return Err(err(&place, format!("storage key {key} appears twice")));
        }
        by_key.insert(key.clone(), (storages.len(), dtype));
        storages.push(StorageInfo::plain(
            key.clone(),
            format!("storage {key} (byte {})", sm.start + data),
            dtype,
            nbytes,
            sm.start + data,
        ));
        pos = data + nbytes;
    }
    let (views, _) = tuple_at(&mut u, src, sm, pos, "storages: views")?;
    for (i, v) in views.into_iter().enumerate() {
        let place = format!("storages: view {i}");
        let f = tuple_of(&u, v, &place)?;
        if f.len() != 4 {
            return Err(err(&place, "expected (view_key, root_key, offset, numel)"));
        }
        let (vk, rk) = (str_of(&u, f[0]), str_of(&u, f[1]));
        let (Some(vk), Some(rk)) = (vk, rk) else {
            return Err(err(&place, "view keys are not ints"));
        };
        let (off, n) = (count_of(&u, f[2], &place)?, count_of(&u, f[3], &place)?);
        let &(ri, dtype) = by_key
            .get(&rk)
            .ok_or_else(|| err(&place, format!("root storage {rk} is missing")))?;
        let esz = dtype.size() as u64;
        let r = &storages[ri];
        let (start, nbytes) = (off.saturating_mul(esz), n.saturating_mul(esz));
        if start.checked_add(nbytes).is_none_or(|e| e > r.nbytes) {
            return Err(err(
                &place,
                format!("view {vk} reaches past its root storage {rk}"),
            ));
        }
        let offset = r.offset + start;
        by_key.insert(vk.clone(), (storages.len(), dtype));
        storages.push(StorageInfo::plain(
            vk.clone(),
            format!("storage view {vk} of {rk}"),
            dtype,
            nbytes,
            offset,
        ));
    }

    // tensors
    let mut tensors: KeyMap<String, RawTensor> = KeyMap::new();
    let (count, mut pos) = count_at(&mut u, src, tm, "tensors")?;
    for i in 0..count {
        let place = format!("tensors: tensor {i}");
        let (items, p) = tuple_at(&mut u, src, tm, pos, &place)?;
        if items.len() < 2 {
            return Err(err(&place, "expected (key, storage_key, tensor_class)"));
        }
        let key = str_of(&u, items[0]).ok_or_else(|| err(&place, "tensor key is not an int"))?;
        let sk = str_of(&u, items[1]).ok_or_else(|| err(&place, "storage key is not an int"))?;
        let &(si, dtype) = by_key.get(&sk).ok_or_else(|| {
            err(
                &place,
                format!("tensor {key}: storage {sk} is not in the storages member"),
            )
        })?;
        if p.checked_add(8).is_none_or(|e| e > tm.len) {
            return Err(err(
                &place,
                "geometry runs past the end of the member (truncated?)",
            ));
        }
        let head = src.read_vec(tm.start + p, 8)?;
        let ndim = i32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        if !(0..=MAX_NDIM).contains(&ndim) {
            return Err(err(&place, format!("tensor {key}: {ndim} dimensions")));
        }
        let n = ndim as u64;
        let geo_len = (2 * n + 1) * 8;
        if (p + 8).checked_add(geo_len).is_none_or(|e| e > tm.len) {
            return Err(err(
                &place,
                "geometry runs past the end of the member (truncated?)",
            ));
        }
        let geo = src.read_vec(tm.start + p + 8, geo_len as usize)?;
        let mut vals = geo
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")));
        let mut nonneg = |what: &str| -> Result<u64> {
            let v = vals.next().expect("counted");
            u64::try_from(v)
                .map_err(|_| err(&place, format!("tensor {key}: {what} is negative ({v})")))
        };
        let shape = (0..n)
            .map(|_| nonneg("a size"))
            .collect::<Result<Vec<_>>>()?;
        let strides = (0..n)
            .map(|_| nonneg("a stride"))
            .collect::<Result<Vec<_>>>()?;
        let offset = nonneg("the storage offset")?;
        tensors.insert(
            key,
            RawTensor {
                storage: Some(si),
                dtype,
                offset,
                shape,
                strides,
                requires_grad: false,
                parameter: false,
                kind: TensorKind::Dense,
            },
        );
        pos = p + 8 + geo_len;
    }
    let mut safety = std::mem::take(&mut u.safety);
    let mut notes = std::mem::take(&mut u.notes);
    drop(u);

    // pickle
    if pm.len > MAX_PICKLE {
        return Err(err(
            "pickle",
            format!(
                "member of {} bytes is larger than the {MAX_PICKLE}-byte limit",
                pm.len
            ),
        ));
    }
    let data = src.read_vec(pm.start, pm.len as usize)?;
    let mut resolver = TarResolver {
        tensors,
        storages: by_key,
    };
    let mut u = Unpickler::new(&mut resolver, Limits::default());
    let (root, end) = u.load(&data, 0).map_err(|e| {
        FormatError::at(format!("byte {}", pm.start + e.pos as u64), e.msg)
            .within("pickle".to_string())
    })?;
    notes.extend(trailing_note("pickle", data.len(), end));
    let p = tree::finish(&mut u, root, &mut notes).map_err(|m| FormatError::at("pickle", m))?;
    // the storages' and tensors' members' globals first, then the object pickle's
    safety.merge(p.safety);
    let p = tree::Pickled { safety, ..p };
    Ok(Checkpoint::from_pickle(
        Format::TorchTar,
        name,
        p,
        storages,
        notes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::data::read_tensor_vec;
    use crate::format::source::MemSource;

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut out = h;
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    /// `{"w": <3 floats>, "v": <2 floats of a view at offset 1>}` in the 0.1.x layout.
    fn tiny_tar() -> Vec<u8> {
        let mut storages = b"\x80\x02K\x01.".to_vec();
        storages.extend_from_slice(b"\x80\x02K\x07X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87.");
        storages.extend_from_slice(&3i64.to_le_bytes());
        for v in [1.5f32, -2.0, 4.25] {
            storages.extend_from_slice(&v.to_le_bytes());
        }
        storages.extend_from_slice(b"\x80\x02]((K\x08K\x07K\x01K\x02te.");
        let mut tensors = b"\x80\x02K\x02.".to_vec();
        for (key, sk) in [(9u8, 7u8), (10, 8)] {
            tensors.extend_from_slice(&[0x80, 2, b'K', key, b'K', sk]);
            tensors.extend_from_slice(b"ctorch\nFloatTensor\n\x87.");
            tensors.extend_from_slice(&1i32.to_le_bytes());
            tensors.extend_from_slice(&[0; 4]);
            let n = if key == 9 { 3i64 } else { 2 };
            for v in [n, 1, 0] {
                tensors.extend_from_slice(&v.to_le_bytes());
            }
        }
        let pickle = b"\x80\x02}(X\x01\x00\x00\x00wX\x01\x00\x00\x009QX\x01\x00\x00\x00vX\x02\x00\x00\x0010Qu.";
        let mut tar = member("sys_info", b"\x80\x02}.");
        tar.extend(member("pickle", pickle));
        tar.extend(member("tensors", &tensors));
        tar.extend(member("storages", &storages));
        tar.extend([0u8; 1024]);
        tar
    }

    #[test]
    fn reads_tensors_and_views_lazily() {
        let src = MemSource(tiny_tar());
        assert_eq!(
            crate::format::detect_source(&src).unwrap(),
            Format::TorchTar
        );
        let c = crate::format::open(&src, "tiny.pth").unwrap();
        assert_eq!(c.format, Format::TorchTar);
        assert_eq!(c.tensors.len(), 2);
        assert_eq!(c.tensors[0].path, vec!["w".to_string()]);
        let srcs: [&dyn Source; 1] = [&src];
        let w = read_tensor_vec(&c, &srcs, 0).unwrap();
        let v = read_tensor_vec(&c, &srcs, 1).unwrap();
        let f = |b: &[u8]| -> Vec<f32> {
            b.chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        assert_eq!(f(&w), vec![1.5, -2.0, 4.25]);
        assert_eq!(f(&v), vec![-2.0, 4.25]);
        let names: Vec<_> = c.safety.globals.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["FloatStorage", "FloatTensor"]);
    }

    #[test]
    fn damaged_tars_fail_with_a_message() {
        let good = tiny_tar();
        // every cut inside a header or a member's data (the last member's data starts at 3584)
        for cut in (0..3584 + 60).step_by(37) {
            let src = MemSource(good[..cut].to_vec());
            assert!(open_tar(&src, "t").is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[600] ^= 1; // inside the sys_info data: fine, it is not read
        assert!(open_tar(&MemSource(bad), "t").is_ok());
        let mut bad = good;
        bad[0] ^= 1; // the first header's checksum no longer matches
        let e = open_tar(&MemSource(bad), "t").unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }
}
