//! PyTorch checkpoints: the zip format (`torch.save` ≥ 1.6, and TorchScript archives) and the
//! legacy stacked-pickle stream (0.1.10 – 1.5).
//!
//! Contract: opening reads the zip central directory, `data.pkl`, `byteorder`/`version` and one
//! local header per referenced storage (zip), or the five leading pickles and one 8-byte count
//! per storage (legacy) — never tensor bytes. Each storage's record size is checked against the
//! pickle's numel; bounds of views are checked when bytes are read (see [`super::data`]).

use super::checkpoint::{Checkpoint, StorageInfo};
use super::detect::{Format, LEGACY_MAGIC};
use super::dtype::DType;
use super::error::{FormatError, Result};
use super::inflate::{check_claim, DEFLATED};
use super::pickle::{
    trailing_note, tree, Limits, PickleError, StoragePid, StorageResolver, Unpickler, Value,
};
use super::source::Source;
use super::zip::{check_method, ZipDirectory, ZipEntry};
use crate::format::fastmap::KeyMap;

/// Largest `data.pkl` we load (the pickle, not the tensors).
const MAX_PICKLE: u64 = 1 << 30;

/// Unpickler limits for a pickle of `len` bytes: the defaults, with the memory budget scaled to
/// the pickle (see [`super::pickle::vm::memory_budget`]).
fn limits_for(len: usize) -> Limits {
    Limits {
        max_bytes: super::pickle::vm::memory_budget(len),
        ..Limits::default()
    }
}

fn pickle_err(record: &str, e: PickleError) -> FormatError {
    FormatError::at(format!("byte {}", e.pos), e.msg).within(record.to_string())
}

struct ZipResolver<'a> {
    dir: &'a ZipDirectory,
    prefix: String,
    big_endian: bool,
    storages: Vec<StorageInfo>,
    /// The storage made from each directory entry (`NO_STORAGE`: none yet). A storage key names
    /// exactly one record (`{prefix}data/{key}`), so a key seen again finds its storage through
    /// its record, without a map of keys (sized by the directory, not by the file's claims).
    of_entry: Vec<u32>,
    /// The directory index after the last record found: torch writes the records in the order
    /// the pickle first names their storages, so the next one is usually there.
    next_entry: usize,
    /// Inflated bytes claimed by the deflated storage records so far (zip-bomb limit).
    inflated: u64,
}

/// [`ZipResolver::of_entry`] for an entry no storage was made from.
const NO_STORAGE: u32 = u32::MAX;

impl ZipResolver<'_> {
    /// The directory index of the record `{prefix}data/{key}`: the entry after the last one found
    /// when its name is that (compared in place), else looked up by name.
    fn record_of(&self, key: &str) -> Option<usize> {
        let named = |i: usize| {
            self.dir.entries.get(i).is_some_and(|e| {
                let rest = e.name.strip_prefix(self.prefix.as_str());
                rest.and_then(|r| r.strip_prefix("data/")) == Some(key)
            })
        };
        if named(self.next_entry) {
            return Some(self.next_entry);
        }
        self.dir.index_of(&format!("{}data/{key}", self.prefix))
    }
}

impl StorageResolver for ZipResolver<'_> {
    fn storage(&mut self, pid: &StoragePid) -> std::result::Result<usize, String> {
        let elem = pid.dtype.map(|d| d.size()).unwrap_or(1) as u64;
        let nbytes = pid.numel.checked_mul(elem).ok_or_else(|| {
            format!(
                "storage {} declares {} elements: size overflows",
                pid.key, pid.numel
            )
        })?;
        let Some(at) = self.record_of(&pid.key) else {
            return Err(format!(
                "record {}data/{} is missing from the archive",
                self.prefix, pid.key
            ));
        };
        if self.of_entry.is_empty() {
            self.of_entry = vec![NO_STORAGE; self.dir.entries.len()];
        }
        if let Some(i) = Some(self.of_entry[at] as usize).filter(|&i| i != NO_STORAGE as usize) {
            let s = &self.storages[i];
            if s.nbytes != nbytes {
                return Err(format!(
                    "storage {} is referenced as {} bytes and as {} bytes",
                    pid.key, s.nbytes, nbytes
                ));
            }
            return Ok(i);
        }
        let e: &ZipEntry = &self.dir.entries[at];
        let record = &e.name;
        check_method(e).map_err(|x| x.to_string())?;
        let deflated = (e.method == DEFLATED).then_some(e.compressed_size);
        if deflated.is_some() {
            check_claim(record, e.compressed_size, e.size, self.inflated)
                .map_err(|x| x.to_string())?;
            self.inflated += e.size;
        }
        if e.size != nbytes {
            return Err(format!(
                "record {record} size mismatch: it holds {} bytes but the pickle declares {} elements of {} ({} bytes)",
                e.size,
                pid.numel,
                pid.dtype.map(|d| d.name()).unwrap_or("bytes"),
                nbytes
            ));
        }
        let crc32 = if e.crc32 == 0 && e.size > 0 {
            None
        } else {
            Some(e.crc32)
        };
        let index = u32::try_from(self.storages.len())
            .ok()
            .filter(|&i| i != NO_STORAGE)
            .ok_or("more storages than a 32-bit index holds")?;
        self.storages.push(StorageInfo {
            key: pid.key.clone(),
            record: record.clone(),
            dtype: pid.dtype.unwrap_or(DType::U8),
            nbytes,
            file: 0,
            offset: 0,
            crc32,
            big_endian: self.big_endian,
            zip_header: Some(e.header_offset),
            deflated,
        });
        self.of_entry[at] = index;
        self.next_entry = at + 1;
        Ok(index as usize)
    }
}

/// Refuse an archive with more than one `data.pkl` (at any depth): which one is "the"
/// checkpoint would depend on the reader's rule, and a checker must read what torch reads.
fn single_data_pkl(dir: &ZipDirectory) -> Result<()> {
    let mut found = dir
        .entries
        .iter()
        .filter(|e| e.name == "data.pkl" || e.name.ends_with("/data.pkl"));
    if let (Some(a), Some(b)) = (found.next(), found.next()) {
        return Err(FormatError::at(
            "zip",
            format!(
                "ambiguous archive: more than one data.pkl ({:?} and {:?}), so it is refused",
                a.name, b.name
            ),
        ));
    }
    Ok(())
}

/// Find the archive prefix (the folder holding `data.pkl`), torch's way first.
fn find_prefix(dir: &ZipDirectory) -> Option<String> {
    let first = dir.entries.first()?;
    if let Some(slash) = first.name.find('/') {
        let p = &first.name[..=slash];
        if dir.get(&format!("{p}data.pkl")).is_some() {
            return Some(p.to_string());
        }
    }
    dir.entries
        .iter()
        .filter_map(|e| {
            e.name
                .strip_suffix("data.pkl")
                .filter(|p| p.is_empty() || p.ends_with('/'))
        })
        .min_by_key(|p| p.len())
        .map(|p| p.to_string())
}

/// Open a torch zip archive.
pub fn open_zip(src: &dyn Source, name: &str) -> Result<Checkpoint> {
    let dir = ZipDirectory::read(src)?;
    single_data_pkl(&dir)?;
    let prefix = find_prefix(&dir).ok_or_else(|| {
        FormatError::at(
            "zip",
            "no data.pkl record: this zip is not a PyTorch checkpoint",
        )
    })?;
    let mut notes = Vec::new();
    let format = if dir.get(&format!("{prefix}constants.pkl")).is_some() {
        Format::TorchScript
    } else {
        Format::TorchZip
    };
    let big_endian = match dir.get(&format!("{prefix}byteorder")) {
        None => {
            notes.push("no byteorder record: little-endian assumed (as torch does)".to_string());
            false
        }
        Some(e) => {
            let b = ZipDirectory::read_small(src, e, 64)?;
            match b.as_slice() {
                b"little" => false,
                b"big" => true,
                other => {
                    return Err(FormatError::at(
                        e.name.clone(),
                        format!(
                            "byteorder is {:?}; expected \"little\" or \"big\"",
                            String::from_utf8_lossy(other)
                        ),
                    ))
                }
            }
        }
    };
    let version = dir
        .get(&format!("{prefix}.data/version"))
        .or_else(|| dir.get(&format!("{prefix}version")));
    match version {
        None => notes.push("no version record (torch requires one)".into()),
        Some(e) => {
            let v = ZipDirectory::read_small(src, e, 64)?;
            let t = String::from_utf8_lossy(&v).trim().to_string();
            match t.parse::<u64>() {
                Ok(n) if (1..=10).contains(&n) => {}
                _ => notes.push(format!(
                    "version record is {t:?}; torch reads versions 1 to 10"
                )),
            }
        }
    }
    let pkl_name = format!("{prefix}data.pkl");
    let pkl_entry = dir.get(&pkl_name).expect("prefix found via data.pkl");
    let pkl = ZipDirectory::read_small(src, pkl_entry, MAX_PICKLE)?;
    let mut resolver = ZipResolver {
        dir: &dir,
        prefix: prefix.clone(),
        big_endian,
        storages: Vec::new(),
        of_entry: Vec::new(),
        next_entry: 0,
        inflated: 0,
    };
    let mut u = Unpickler::new(&mut resolver, limits_for(pkl.len()));
    let (root, end) = u.load(&pkl, 0).map_err(|e| pickle_err(&pkl_name, e))?;
    notes.extend(trailing_note(&pkl_name, pkl.len(), end));
    let p = tree::finish(&mut u, root, &mut notes).map_err(|m| FormatError::at(&pkl_name, m))?;
    drop(u);
    let deflated = dir.entries.iter().filter(|e| e.method == DEFLATED).count();
    if deflated > 0 {
        notes.push(format!(
            "compressed input: {deflated} of {} zip records are deflated (inflated as they are read; exports write them stored, as torch.save does)",
            dir.entries.len()
        ));
    }
    Ok(Checkpoint::from_pickle(
        format,
        name,
        p,
        resolver.storages,
        notes,
    ))
}

struct LegacyResolver {
    storages: Vec<StorageInfo>,
    by_key: KeyMap<String, usize>,
    /// Declared element counts, per storage index.
    numel: Vec<u64>,
    /// Storage views: (view storage index, root key, offset in elements).
    views: Vec<(usize, String, u64)>,
}

impl StorageResolver for LegacyResolver {
    fn storage(&mut self, pid: &StoragePid) -> std::result::Result<usize, String> {
        let dtype = pid.dtype.unwrap_or(DType::U8);
        let key_for = |k: &str| k.to_string();
        let bytes_of = |n: u64| {
            n.checked_mul(dtype.size() as u64).ok_or_else(|| {
                format!(
                    "storage {} declares {n} elements: its byte size overflows",
                    pid.key
                )
            })
        };
        // The root storage of a view, or the storage itself.
        let (root_key, view) = match &pid.view {
            Some((vk, off, n)) => (vk.clone(), Some((*off, *n))),
            None => (pid.key.clone(), None),
        };
        let root = match self.by_key.get(&root_key) {
            Some(&i) => i,
            None => {
                let root_numel = if view.is_some() { 0 } else { pid.numel };
                self.storages.push(StorageInfo::plain(
                    root_key.clone(),
                    format!("storage {root_key}"),
                    dtype,
                    bytes_of(root_numel)?,
                    0,
                ));
                self.numel.push(root_numel);
                self.by_key
                    .insert(key_for(&root_key), self.storages.len() - 1);
                self.storages.len() - 1
            }
        };
        match view {
            None => {
                if self.numel[root] == 0 && pid.numel != 0 {
                    // first seen as the root of a view; now we learn its size
                    self.numel[root] = pid.numel;
                    self.storages[root].nbytes = bytes_of(pid.numel)?;
                }
                Ok(root)
            }
            Some((off, n)) => {
                self.storages.push(StorageInfo::plain(
                    pid.key.clone(),
                    format!("storage view {} of {root_key}", pid.key),
                    dtype,
                    bytes_of(n)?,
                    0,
                ));
                self.numel.push(n);
                let i = self.storages.len() - 1;
                self.views.push((i, root_key, off));
                Ok(i)
            }
        }
    }
}

/// Open a legacy stacked-pickle checkpoint.
pub fn open_legacy(src: &dyn Source, name: &str) -> Result<Checkpoint> {
    let len = src.len();
    let mut window = len.min(1 << 20);
    loop {
        let head = src.read_vec(0, window as usize)?;
        match legacy_from(&head, src, name) {
            Err(LegacyErr::Truncated(_)) if window < len && window < MAX_PICKLE => {
                window = (window * 4).min(len).min(MAX_PICKLE);
            }
            Err(LegacyErr::Truncated(e)) | Err(LegacyErr::Fatal(e)) => return Err(e),
            Ok(c) => return Ok(c),
        }
    }
}

enum LegacyErr {
    Truncated(FormatError),
    Fatal(FormatError),
}

fn legacy_from(
    head: &[u8],
    src: &dyn Source,
    name: &str,
) -> std::result::Result<Checkpoint, LegacyErr> {
    let mut resolver = LegacyResolver {
        storages: vec![],
        by_key: KeyMap::new(),
        numel: vec![],
        views: vec![],
    };
    let mut u = Unpickler::new(&mut resolver, limits_for(head.len()));
    let fail = |what: &str, e: PickleError| {
        let fe = pickle_err(what, e.clone());
        if e.truncated {
            LegacyErr::Truncated(fe)
        } else {
            LegacyErr::Fatal(fe)
        }
    };
    if !head.starts_with(&LEGACY_MAGIC) {
        return Err(LegacyErr::Fatal(FormatError::at(
            "magic number",
            "not the legacy torch magic number",
        )));
    }
    let (_, p1) = u
        .load(head, 0)
        .map_err(|e| fail("magic number pickle", e))?;
    let (proto, p2) = u.load(head, p1).map_err(|e| fail("protocol pickle", e))?;
    if u.get(proto) != &Value::Int(1001) {
        return Err(LegacyErr::Fatal(FormatError::at(
            "protocol pickle",
            "legacy protocol version is not 1001",
        )));
    }
    let (_sys, p3) = u.load(head, p2).map_err(|e| fail("sys_info pickle", e))?;
    let (root, p4) = u.load(head, p3).map_err(|e| fail("object pickle", e))?;
    let (keys, p5) = u
        .load(head, p4)
        .map_err(|e| fail("storage-keys pickle", e))?;
    let key_list: Vec<String> = match u.get(keys).clone() {
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .map(|&i| match u.get(i) {
                Value::Str(s) => Ok(s.clone()),
                Value::Int(v) => Ok(v.to_string()),
                other => Err(format!("storage key is a {}", other.kind_name())),
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|m| LegacyErr::Fatal(FormatError::at("storage-keys pickle", m)))?,
        other => {
            return Err(LegacyErr::Fatal(FormatError::at(
                "storage-keys pickle",
                format!(
                    "expected a list of storage keys, found a {}",
                    other.kind_name()
                ),
            )))
        }
    };
    let mut notes = Vec::new();
    let p = tree::finish(&mut u, root, &mut notes)
        .map_err(|m| LegacyErr::Fatal(FormatError::at("object pickle", m)))?;
    drop(u);
    // Raw storages, in key-list order: i64 count, then count × element size bytes.
    let len = src.len();
    let mut off = p5 as u64;
    for key in &key_list {
        let &i = resolver.by_key.get(key).ok_or_else(|| {
            LegacyErr::Fatal(FormatError::at(
                format!("storage {key}"),
                "listed in the storage keys but never referenced by the pickle (its element size is unknown)",
            ))
        })?;
        if off.checked_add(8).is_none_or(|end| end > len) {
            return Err(LegacyErr::Fatal(FormatError::at(
                format!("storage {key}"),
                format!("count header at byte {off} is past the end of the {len}-byte file (truncated?)"),
            )));
        }
        let c = src
            .read_vec(off, 8)
            .map_err(|e| LegacyErr::Fatal(e.into()))?;
        let count = i64::from_le_bytes(c.try_into().expect("8 bytes"));
        let s = &mut resolver.storages[i];
        let declared = resolver.numel[i];
        if count < 0 || count as u64 != declared {
            return Err(LegacyErr::Fatal(FormatError::at(
                format!("storage {key}"),
                format!("byte {off}: size mismatch: the raw block holds {count} elements but the pickle declares {declared}"),
            )));
        }
        s.offset = off + 8;
        s.record = format!("storage {key} (byte {})", off + 8);
        off = (off + 8).saturating_add(s.nbytes);
        if off > len {
            return Err(LegacyErr::Fatal(FormatError::at(
                format!("storage {key}"),
                format!(
                    "data runs to byte {off}, past the end of the {len}-byte file (truncated?)"
                ),
            )));
        }
    }
    if off < len {
        notes.push(format!(
            "{} bytes after the last storage were ignored",
            len - off
        ));
    }
    for (vi, root_key, voff) in std::mem::take(&mut resolver.views) {
        let &ri = resolver.by_key.get(&root_key).ok_or_else(|| {
            LegacyErr::Fatal(FormatError::at(
                format!("storage view of {root_key}"),
                "its root storage is missing",
            ))
        })?;
        let (roff, rbytes, esz) = (
            resolver.storages[ri].offset,
            resolver.storages[ri].nbytes,
            resolver.storages[ri].dtype.size() as u64,
        );
        let v = &mut resolver.storages[vi];
        let start = voff.checked_mul(esz);
        let Some(start) = start.filter(|st| st.checked_add(v.nbytes).is_some_and(|e| e <= rbytes))
        else {
            return Err(LegacyErr::Fatal(FormatError::at(
                v.record.clone(),
                "storage view reaches past its root storage",
            )));
        };
        v.offset = roff + start;
    }
    Ok(Checkpoint::from_pickle(
        Format::TorchLegacy,
        name,
        p,
        resolver.storages,
        notes,
    ))
}
