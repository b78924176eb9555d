//! A lazy zip directory reader for torch archives.
//!
//! Contract: [`ZipDirectory::read`] reads the end-of-central-directory record (zip64-aware), then
//! the central directory in one read — nothing else. [`ZipDirectory::data_offset`] reads one
//! local header (a single small read) to find where an entry's bytes begin. The encoders at the
//! end ([`local_header`], [`descriptor`], [`central_directory`]) write the same records, as torch
//! does: stored, 64-byte aligned data, data descriptors, zip64 end records always.
//!
//! Why not the `zip` crate: torch archives must be opened with a bounded, counted number of
//! reads through our [`Source`] (a browser Blob is read through `FileReaderSync`, one call per
//! read), must never touch tensor bytes at open, and need each record's raw data offset so the
//! export plan can reuse original byte ranges. The crate's archive reader works through
//! `Read + Seek` and manages entry access itself; the directory format is small and fixed, so
//! we read it directly and keep full control of the I/O.

use super::error::{FormatError, Result};
use super::fastmap::{heads_with_capacity, HashHeads, HashState};
use super::inflate::{inflate_small, RecordSpan, DEFLATED};
use super::source::Source;
use std::hash::{BuildHasher, Hasher};

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CD_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
/// Central directories larger than this are refused (a torch archive has ~100 bytes per record).
const MAX_CD: u64 = 512 << 20;

/// One central-directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    pub header_offset: u64,
    pub compressed_size: u64,
    pub size: u64,
    pub crc32: u32,
    pub method: u16,
}

/// The central directory of an archive.
#[derive(Debug, Clone)]
pub struct ZipDirectory {
    pub entries: Vec<ZipEntry>,
    by_name: NameIndex,
}

/// The entries by name, without copying any name: a hash of each ASCII-folded name leads to the
/// first entry with that hash, and `next` chains the later entries with the same hash (distinct
/// folded names share a hash only by a 64-bit collision of a keyed hash, so chains are one
/// entry long in practice). Folding makes a duplicate name and a case-only difference meet.
#[derive(Debug, Clone)]
struct NameIndex {
    first: HashHeads,
    next: Vec<u32>,
    hasher: HashState,
}

/// The end of a [`NameIndex`] chain.
const CHAIN_END: u32 = u32::MAX;

impl NameIndex {
    /// The hash of `name` folded to ASCII lower case (folded into a copy only when it has
    /// capitals: torch's record names never do).
    fn hash(&self, name: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            h.write(name.to_ascii_lowercase().as_bytes());
        } else {
            h.write(name.as_bytes());
        }
        h.finish()
    }

    /// The entries whose folded name hashes as `name`'s, first to last.
    fn candidates(&self, name: &str) -> impl Iterator<Item = usize> + '_ {
        self.chain(self.hash(name))
    }

    /// The entries whose folded name has the hash `h`, first to last.
    fn chain(&self, h: u64) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.first.get(&h).copied().unwrap_or(CHAIN_END);
        std::iter::from_fn(move || {
            (at != CHAIN_END).then(|| {
                let i = at as usize;
                at = self.next[i];
                i
            })
        })
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

fn err(msg: impl Into<String>) -> FormatError {
    FormatError::at("zip", msg)
}

impl ZipDirectory {
    /// Read the directory of the archive in `src`.
    pub fn read(src: &dyn Source) -> Result<ZipDirectory> {
        let len = src.len();
        if len < 22 {
            return Err(err(format!(
                "file is {len} bytes, too short for a zip archive (truncated?)"
            )));
        }
        // The EOCD is 22 bytes plus a comment of up to 65535 bytes. Look in the last 4 KiB first.
        let mut eocd = None;
        for tail_len in [len.min(4096), len.min(22 + 65535)] {
            let start = len - tail_len;
            let tail = src.read_vec(start, tail_len as usize)?;
            if let Some(p) = (0..=tail.len() - 22)
                .rev()
                .find(|&p| u32_at(&tail, p) == EOCD_SIG)
            {
                eocd = Some((start + p as u64, tail[p..p + 22].to_vec()));
                break;
            }
            if tail_len == len {
                break;
            }
        }
        let (eocd_pos, e) = eocd.ok_or_else(|| {
            err("no end-of-central-directory record: the file is not a complete zip archive (truncated or damaged)")
        })?;
        let mut count = u16_at(&e, 10) as u64;
        let mut cd_size = u32_at(&e, 12) as u64;
        let mut cd_offset = u32_at(&e, 16) as u64;
        // zip64: the locator sits right before the EOCD.
        if eocd_pos >= 20 {
            let loc = src.read_vec(eocd_pos - 20, 20)?;
            if u32_at(&loc, 0) == ZIP64_LOCATOR_SIG {
                let z_off = u64_at(&loc, 8);
                if z_off.checked_add(56).is_none_or(|end| end > len) {
                    return Err(err(
                        "zip64 end-of-central-directory offset is past the end of the file",
                    ));
                }
                let z = src.read_vec(z_off, 56)?;
                if u32_at(&z, 0) != ZIP64_EOCD_SIG {
                    return Err(err(format!(
                        "no zip64 end-of-central-directory record at byte {z_off}"
                    )));
                }
                count = u64_at(&z, 32);
                cd_size = u64_at(&z, 40);
                cd_offset = u64_at(&z, 48);
            }
        }
        if cd_size > MAX_CD {
            return Err(err(format!(
                "central directory of {cd_size} bytes is larger than the {MAX_CD}-byte limit"
            )));
        }
        if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) {
            return Err(err(format!(
                "central directory (byte {cd_offset}, {cd_size} bytes) lies past the end of the {len}-byte file (truncated?)"
            )));
        }
        if count > cd_size / 46 {
            return Err(err(format!(
                "{count} entries cannot fit in a {cd_size}-byte central directory"
            )));
        }
        let cd = src.read_vec(cd_offset, cd_size as usize)?;
        let mut entries = Vec::with_capacity(count as usize);
        let mut p = 0usize;
        for i in 0..count {
            if p + 46 > cd.len() || u32_at(&cd, p) != CD_SIG {
                return Err(err(format!(
                    "central directory entry {i} at byte {} is damaged",
                    cd_offset + p as u64
                )));
            }
            let method = u16_at(&cd, p + 10);
            let crc32 = u32_at(&cd, p + 16);
            let mut compressed_size = u32_at(&cd, p + 20) as u64;
            let mut size = u32_at(&cd, p + 24) as u64;
            let n = u16_at(&cd, p + 28) as usize;
            let x = u16_at(&cd, p + 30) as usize;
            let c = u16_at(&cd, p + 32) as usize;
            let mut header_offset = u32_at(&cd, p + 42) as u64;
            if p + 46 + n + x + c > cd.len() {
                return Err(err(format!(
                    "central directory entry {i} runs past the directory"
                )));
            }
            let name = String::from_utf8_lossy(&cd[p + 46..p + 46 + n]).into_owned();
            // zip64 extended information (id 1): only the fields that are saturated, in order.
            let mut ex = &cd[p + 46 + n..p + 46 + n + x];
            while ex.len() >= 4 {
                let id = u16_at(ex, 0);
                let l = (u16_at(ex, 2) as usize).min(ex.len() - 4);
                if id == 1 {
                    let mut f = &ex[4..4 + l];
                    let mut take = |v: &mut u64| {
                        if *v == 0xFFFF_FFFF && f.len() >= 8 {
                            *v = u64_at(f, 0);
                            f = &f[8..];
                        }
                    };
                    take(&mut size);
                    take(&mut compressed_size);
                    take(&mut header_offset);
                }
                ex = &ex[4 + l..];
            }
            entries.push(ZipEntry {
                name,
                header_offset,
                compressed_size,
                size,
                crc32,
                method,
            });
            p += 46 + n + x + c;
        }
        let by_name = unambiguous_names(&entries)?;
        Ok(ZipDirectory { entries, by_name })
    }

    /// Look an entry up by its full name.
    pub fn get(&self, name: &str) -> Option<&ZipEntry> {
        self.index_of(name).map(|i| &self.entries[i])
    }

    /// The index in [`Self::entries`] of the entry named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name
            .candidates(name)
            .find(|&i| self.entries[i].name == name)
    }

    /// Absolute offset of the first data byte of `e` (reads its local header).
    pub fn data_offset(src: &dyn Source, e: &ZipEntry) -> Result<u64> {
        local_data_offset(src, e.header_offset, e.compressed_size)
            .map_err(|x| x.within(e.name.clone()))
    }

    /// Read a whole small record into memory (pickles, `version`, `byteorder`), stored or
    /// deflated, CRC-32 checked.
    pub fn read_small(src: &dyn Source, e: &ZipEntry, limit: u64) -> Result<Vec<u8>> {
        check_method(e)?;
        if e.size > limit {
            return Err(FormatError::at(
                e.name.clone(),
                format!(
                    "record of {} bytes is larger than the {limit}-byte limit",
                    e.size
                ),
            ));
        }
        let off = Self::data_offset(src, e)?;
        if e.method == DEFLATED {
            let span = RecordSpan {
                start: off,
                stored_len: e.compressed_size,
                size: e.size,
                deflated: true,
                crc32: (e.crc32 != 0 || e.size == 0).then_some(e.crc32),
            };
            return inflate_small(src, span, &e.name, limit);
        }
        let data = src.read_vec(off, e.size as usize)?;
        if e.crc32 != 0 || e.size == 0 {
            let got = crate::format::crc32::hash(&data);
            if got != e.crc32 {
                return Err(FormatError::at(
                    e.name.clone(),
                    format!("CRC-32 mismatch: the zip directory says {:08x}, the bytes hash to {got:08x} (the file is corrupted)", e.crc32),
                ));
            }
        }
        Ok(data)
    }
}

/// Index the entries by name, refusing an ambiguous directory: two entries with the same name
/// (torch reads the first, Python's `zipfile` and most tools the last — a checker and the loader
/// would see different files), or names that differ only in ASCII case (one file on a
/// case-insensitive file system once extracted). O(entries): one hash per name.
fn unambiguous_names(entries: &[ZipEntry]) -> Result<NameIndex> {
    let too_many = || {
        err(format!(
            "{} entries are more than the directory index holds",
            entries.len()
        ))
    };
    let mut index = NameIndex {
        first: heads_with_capacity(entries.len()),
        next: vec![CHAIN_END; entries.len()],
        hasher: HashState::default(),
    };
    for (i, e) in entries.iter().enumerate() {
        let id = u32::try_from(i)
            .ok()
            .filter(|&n| n != CHAIN_END)
            .ok_or_else(too_many)?;
        let h = index.hash(&e.name);
        let mut last = None;
        for j in index.chain(h) {
            let other = &entries[j].name;
            if other.eq_ignore_ascii_case(&e.name) {
                return Err(err(if *other == e.name {
                    format!(
                        "ambiguous archive: duplicate entry name {:?} (entries {j} and {i}); torch reads the first copy, other zip readers the last, so it is refused",
                        e.name
                    )
                } else {
                    format!(
                        "ambiguous archive: entry names {:?} and {:?} differ only in case (entries {j} and {i}), so it is refused",
                        other, e.name
                    )
                }));
            }
            last = Some(j);
        }
        match last {
            Some(j) => index.next[j] = id,
            None => {
                index.first.insert(h, id);
            }
        }
    }
    Ok(index)
}

/// Only stored (0) and deflated (8) records can be read — the two methods torch's own zip
/// reader accepts.
pub fn check_method(e: &ZipEntry) -> Result<()> {
    match e.method {
        0 | DEFLATED => Ok(()),
        m => Err(FormatError::at(
            e.name.clone(),
            format!("record is compressed with zip method {m}; torch and weightscope read only stored (0) and deflated (8) records"),
        )),
    }
}

/// Where the data of the record whose local header is at `header` begins (one 30-byte read);
/// checks that `size` bytes of data fit in the file.
pub fn local_data_offset(src: &dyn Source, header: u64, size: u64) -> Result<u64> {
    let len = src.len();
    if header.checked_add(30).is_none_or(|end| end > len) {
        return Err(FormatError::new(format!(
            "local header at byte {header} is past the end of the file (truncated?)"
        )));
    }
    let h = src.read_vec(header, 30)?;
    if u32_at(&h, 0) != LOCAL_SIG {
        return Err(FormatError::new(format!(
            "no local file header at byte {header}"
        )));
    }
    let start = header + 30 + u16_at(&h, 26) as u64 + u16_at(&h, 28) as u64;
    if start.checked_add(size).is_none_or(|end| end > len) {
        return Err(FormatError::new(format!(
            "record data (byte {start}, {size} bytes) runs past the end of the {len}-byte file (truncated?)"
        )));
    }
    Ok(start)
}

// ---------------------------------------------------------------------------------------------
// Encoders: the records the torch zip writer (`export::writer`) emits, with the same constants.

/// One stored record of an archive being written: where its local header is, its size, its CRC.
pub struct ZipRecord {
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub crc: u32,
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

/// torch aligns record data to 64 bytes (an `FB` extra field pads the local header).
const ALIGN: u64 = 64;

/// The local header (with zip64 extra when needed and FB padding so data starts 64-aligned).
pub fn local_header(name: &str, offset: u64, size: u64) -> Vec<u8> {
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
    push_u32(&mut h, LOCAL_SIG);
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

/// Where a [`descriptor`] keeps its CRC-32: bytes 4..8.
pub const DESCRIPTOR_CRC_AT: u64 = 4;

/// The data descriptor that follows a record's data (zip64-sized when the record needs it).
pub fn descriptor(e: &ZipRecord) -> Vec<u8> {
    let mut d = vec![];
    push_u32(&mut d, DESCRIPTOR_SIG);
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

/// The central directory, the zip64 end record and locator (always, like torch) and the classic
/// end record, for `entries` written before `cd_offset`; with, per entry, the file position of
/// its CRC-32 field (for a writer that fills CRC-32s in later).
pub fn central_directory(entries: &[ZipRecord], cd_offset: u64) -> (Vec<u8>, Vec<u64>) {
    let mut cd = vec![];
    let mut crc_at = Vec::with_capacity(entries.len());
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
        push_u32(&mut cd, CD_SIG);
        push_u16(&mut cd, if extra.is_empty() { 20 } else { 45 });
        push_u16(&mut cd, if extra.is_empty() { 20 } else { 45 });
        push_u16(&mut cd, 0x0808);
        push_u16(&mut cd, 0);
        push_u32(&mut cd, 0);
        crc_at.push(cd_offset + cd.len() as u64);
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
    push_u32(&mut cd, ZIP64_EOCD_SIG);
    push_u64(&mut cd, 44);
    push_u16(&mut cd, 45);
    push_u16(&mut cd, 45);
    push_u32(&mut cd, 0);
    push_u32(&mut cd, 0);
    push_u64(&mut cd, entries.len() as u64);
    push_u64(&mut cd, entries.len() as u64);
    push_u64(&mut cd, cd_size);
    push_u64(&mut cd, cd_offset);
    push_u32(&mut cd, ZIP64_LOCATOR_SIG);
    push_u32(&mut cd, 0);
    push_u64(&mut cd, eocd64_at);
    push_u32(&mut cd, 1);
    // classic end of central directory
    let n = entries.len().min(0xFFFF) as u16;
    push_u32(&mut cd, EOCD_SIG);
    push_u16(&mut cd, 0);
    push_u16(&mut cd, 0);
    push_u16(&mut cd, n);
    push_u16(&mut cd, n);
    push_u32(&mut cd, sat32(cd_size));
    push_u32(&mut cd, sat32(cd_offset));
    push_u16(&mut cd, 0);
    (cd, crc_at)
}
