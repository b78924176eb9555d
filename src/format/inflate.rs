//! Deflated zip records, inflated as they are read.
//!
//! Contract: [`RecordBytes`] is a [`Source`] over one record's *uncompressed* bytes. A stored
//! record is a window of the file; a deflated one (zip method 8, what an ordinary zip tool
//! writes when a `.pth` is unzipped and zipped again) is inflated in streaming pieces of at most
//! [`IN_CHUNK`] compressed bytes, so memory stays bounded however large the record is. Reads
//! that move forward continue the stream; a read behind the current position restarts it from
//! the record's first byte (callers read tensors front to back). Whenever the stream reaches the
//! record's end, the deflate stream must end exactly there and its CRC-32 must match the
//! directory's. [`inflate_small`] inflates a small record (a pickle) whole, within a limit.
//!
//! Zip-bomb limits, checked from the directory before anything is inflated ([`check_claim`]):
//! a record may not claim more than [`MAX_RATIO`] uncompressed bytes per compressed byte (plus
//! [`RATIO_SLACK`]) — deflate cannot do better, so a larger claim is a lie — and the deflated
//! records of one archive may not add up to more than [`MAX_INFLATED_TOTAL`] bytes. Inflation
//! never produces more than the record's declared size.

use super::error::{FormatError, Result};
use super::source::{Source, SourceError};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
use std::cell::RefCell;

/// Zip compression method of a deflated record.
pub const DEFLATED: u16 = 8;
/// Deflate's best case is 258 bytes from one 2-bit code plus block overhead: 1032 to 1.
pub const MAX_RATIO: u64 = 1032;
/// Allowance on top of the ratio for tiny records (block headers dominate).
pub const RATIO_SLACK: u64 = 64 << 10;
/// The deflated records of one archive inflate to at most this many bytes in total (64 GiB).
pub const MAX_INFLATED_TOTAL: u64 = 64 << 30;
/// Compressed bytes read from the source at a time.
pub const IN_CHUNK: usize = 1 << 20;

/// Refuse a deflated record whose directory claim is impossible or past the limits
/// (`total_before`: bytes claimed by the archive's other deflated records so far).
pub fn check_claim(name: &str, compressed: u64, size: u64, total_before: u64) -> Result<()> {
    let most = compressed
        .saturating_mul(MAX_RATIO)
        .saturating_add(RATIO_SLACK);
    if size > most {
        return Err(FormatError::at(
            name,
            format!(
                "deflated record claims {size} bytes from {compressed} compressed bytes, more than deflate's {MAX_RATIO}:1 maximum (a zip bomb or a damaged directory); refused"
            ),
        ));
    }
    if total_before.saturating_add(size) > MAX_INFLATED_TOTAL {
        return Err(FormatError::at(
            name,
            format!(
                "deflated records inflate to more than {MAX_INFLATED_TOTAL} bytes in total (the limit for compressed archives); refused"
            ),
        ));
    }
    Ok(())
}

/// Where a record's bytes are and how they are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    /// First data byte in the file.
    pub start: u64,
    /// Bytes in the file (compressed length for a deflated record).
    pub stored_len: u64,
    /// Uncompressed length.
    pub size: u64,
    pub deflated: bool,
    /// CRC-32 of the uncompressed bytes, checked when a deflated stream is read to its end.
    pub crc32: Option<u32>,
}

/// A record's uncompressed bytes as a [`Source`] (offsets relative to the record).
pub struct RecordBytes<'a> {
    src: &'a dyn Source,
    span: RecordSpan,
    cursor: RefCell<Option<Cursor>>,
}

struct Cursor {
    state: Box<InflateState>,
    inbuf: Vec<u8>,
    in_pos: usize,
    /// Compressed bytes fetched so far.
    fetched: u64,
    /// Uncompressed bytes produced so far.
    out: u64,
    crc: crate::format::crc32::Hasher,
    ended: bool,
}

impl Cursor {
    fn new() -> Cursor {
        Cursor {
            state: InflateState::new_boxed(DataFormat::Raw),
            inbuf: Vec::new(),
            in_pos: 0,
            fetched: 0,
            out: 0,
            crc: crate::format::crc32::Hasher::new(),
            ended: false,
        }
    }
}

impl<'a> RecordBytes<'a> {
    /// A view of the record `span` of `src` (errors do not name it: callers add the record).
    pub fn new(src: &'a dyn Source, span: RecordSpan) -> Self {
        RecordBytes {
            src,
            span,
            cursor: RefCell::new(None),
        }
    }

    /// An error about this record (callers add the record's name, as they do for I/O errors).
    fn fail(&self, msg: impl std::fmt::Display) -> SourceError {
        SourceError(msg.to_string())
    }

    /// Fetch the next compressed piece once the previous one is consumed.
    fn refill(&self, c: &mut Cursor) -> std::result::Result<(), SourceError> {
        if c.in_pos == c.inbuf.len() && c.fetched < self.span.stored_len {
            let n = (self.span.stored_len - c.fetched).min(IN_CHUNK as u64) as usize;
            c.inbuf.resize(n, 0);
            self.src
                .read_at(self.span.start + c.fetched, &mut c.inbuf)?;
            c.fetched += n as u64;
            c.in_pos = 0;
        }
        Ok(())
    }

    /// Fill `dst` with the next bytes of the stream.
    fn produce(&self, c: &mut Cursor, dst: &mut [u8]) -> std::result::Result<(), SourceError> {
        let mut filled = 0usize;
        while filled < dst.len() {
            self.refill(c)?;
            let r = inflate(
                &mut c.state,
                &c.inbuf[c.in_pos..],
                &mut dst[filled..],
                MZFlush::None,
            );
            c.in_pos += r.bytes_consumed;
            c.crc.update(&dst[filled..filled + r.bytes_written]);
            filled += r.bytes_written;
            let exhausted = c.in_pos == c.inbuf.len() && c.fetched == self.span.stored_len;
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    c.ended = true;
                    if filled < dst.len() {
                        return Err(self.fail(format!(
                            "deflate stream ends after {} bytes but the zip directory says {} (the file is corrupted)",
                            c.out + filled as u64,
                            self.span.size
                        )));
                    }
                }
                Ok(_) | Err(MZError::Buf) => {
                    if exhausted && r.bytes_written == 0 && r.bytes_consumed == 0 {
                        return Err(self.fail(format!(
                            "compressed data ends after {} of {} bytes were inflated (truncated or corrupted)",
                            c.out + filled as u64,
                            self.span.size
                        )));
                    }
                }
                Err(_) => {
                    return Err(self.fail(format!(
                        "invalid deflate data near uncompressed byte {} (the file is corrupted)",
                        c.out + filled as u64
                    )))
                }
            }
        }
        c.out += dst.len() as u64;
        if c.out == self.span.size {
            self.finish(c)?;
        }
        Ok(())
    }

    /// At the record's end: the stream must end here, and the CRC-32 must match.
    fn finish(&self, c: &mut Cursor) -> std::result::Result<(), SourceError> {
        let mut one = [0u8; 1];
        while !c.ended {
            self.refill(c)?;
            let r = inflate(&mut c.state, &c.inbuf[c.in_pos..], &mut one, MZFlush::None);
            c.in_pos += r.bytes_consumed;
            if r.bytes_written > 0 {
                return Err(self.fail(format!(
                    "deflate stream holds more than the {} bytes the zip directory declares (refused)",
                    self.span.size
                )));
            }
            match r.status {
                Ok(MZStatus::StreamEnd) => c.ended = true,
                Ok(_) | Err(MZError::Buf)
                    if r.bytes_consumed > 0 || c.fetched < self.span.stored_len => {}
                _ => {
                    return Err(self.fail(
                        "deflate stream does not end where the zip directory says (truncated or corrupted)",
                    ))
                }
            }
        }
        if let Some(want) = self.span.crc32 {
            let got = c.crc.clone().finalize();
            if got != want {
                return Err(self.fail(format!(
                    "CRC-32 mismatch: the zip directory says {want:08x}, the inflated bytes hash to {got:08x} (the file is corrupted)"
                )));
            }
        }
        Ok(())
    }
}

impl Source for RecordBytes<'_> {
    fn len(&self) -> u64 {
        self.span.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), SourceError> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.span.size)
            .ok_or_else(|| {
                self.fail(format!(
                    "read of {} bytes at {offset} is past the record's {} bytes",
                    buf.len(),
                    self.span.size
                ))
            })?;
        if !self.span.deflated {
            return self.src.read_at(self.span.start + offset, buf);
        }
        if buf.is_empty() {
            return Ok(());
        }
        let mut slot = self.cursor.borrow_mut();
        if slot.as_ref().is_none_or(|c| c.out > offset) {
            *slot = Some(Cursor::new());
        }
        let c = slot.as_mut().expect("cursor set above");
        let mut skip = vec![0u8; ((offset - c.out).min(64 << 10)) as usize];
        while c.out < offset {
            let n = ((offset - c.out) as usize).min(skip.len());
            self.produce(c, &mut skip[..n])?;
        }
        let r = self.produce(c, buf);
        if r.is_err() {
            *slot = None;
        }
        debug_assert!(r.is_err() || slot.as_ref().is_none_or(|c| c.out == end));
        r
    }
}

/// Inflate a whole deflated record of at most `limit` bytes into memory (pickles, small
/// records). Memory grows with the bytes actually produced, never with the claim alone.
pub fn inflate_small(
    src: &dyn Source,
    span: RecordSpan,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    if span.size > limit {
        return Err(FormatError::at(
            name,
            format!(
                "record of {} bytes is larger than the {limit}-byte limit",
                span.size
            ),
        ));
    }
    check_claim(name, span.stored_len, span.size, 0)?;
    let r = RecordBytes::new(src, span);
    let mut out = Vec::new();
    let mut done = 0u64;
    while done < span.size {
        let n = (span.size - done).min(1 << 20) as usize;
        let at = out.len();
        out.resize(at + n, 0);
        r.read_at(done, &mut out[at..])
            .map_err(|e| FormatError::at(name, e.0))?;
        done += n as u64;
    }
    if span.size == 0 && span.deflated {
        // An empty record must still be one well-formed (empty) deflate stream.
        r.finish(&mut Cursor::new())
            .map_err(|e| FormatError::new(e.0))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::source::MemSource;
    use miniz_oxide::deflate::compress_to_vec;

    fn span_of(comp: &[u8], data: &[u8]) -> RecordSpan {
        RecordSpan {
            start: 3,
            stored_len: comp.len() as u64,
            size: data.len() as u64,
            deflated: true,
            crc32: Some(crate::format::crc32::hash(data)),
        }
    }

    fn file(comp: &[u8]) -> MemSource {
        let mut f = vec![9u8; 3];
        f.extend_from_slice(comp);
        f.extend_from_slice(&[7u8; 5]);
        MemSource(f)
    }

    #[test]
    fn streams_forward_and_restarts_backwards() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let comp = compress_to_vec(&data, 6);
        let f = file(&comp);
        let r = RecordBytes::new(&f, span_of(&comp, &data));
        let mut b = vec![0u8; 1000];
        for off in [0u64, 5000, 2_999_000, 10, 1_500_000] {
            r.read_at(off, &mut b).unwrap();
            assert_eq!(&b[..], &data[off as usize..off as usize + 1000]);
        }
        assert!(r.read_at(2_999_500, &mut b).is_err());
        let all = inflate_small(&f, span_of(&comp, &data), "r", 1 << 30).unwrap();
        assert_eq!(all, data);
    }

    #[test]
    fn bad_crc_short_stream_and_long_stream_are_refused() {
        let data = vec![5u8; 100_000];
        let comp = compress_to_vec(&data, 6);
        let f = file(&comp);
        let mut s = span_of(&comp, &data);
        s.crc32 = Some(1);
        let e = inflate_small(&f, s, "data/0", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("CRC-32 mismatch"), "{e}");
        // the directory claims fewer bytes than the stream holds
        let mut s = span_of(&comp, &data);
        s.size = 99_999;
        s.crc32 = None;
        let e = inflate_small(&f, s, "data/0", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        // ... or more
        let mut s = span_of(&comp, &data);
        s.size = 100_001;
        let e = inflate_small(&f, s, "data/0", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("ends after 100000"), "{e}");
        // a truncated stream
        let mut s = span_of(&comp, &data);
        s.stored_len -= 3;
        let e = inflate_small(&f, s, "data/0", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        // garbage
        let junk = MemSource(vec![0xFF; 64]);
        let s = RecordSpan {
            start: 0,
            stored_len: 64,
            size: 1000,
            deflated: true,
            crc32: None,
        };
        assert!(inflate_small(&junk, s, "data/0", 1 << 20).is_err());
    }

    #[test]
    fn bomb_claims_are_refused() {
        let e = check_claim("data/3", 1000, 1000 * MAX_RATIO + RATIO_SLACK + 1, 0).unwrap_err();
        assert!(e.to_string().contains("zip bomb"), "{e}");
        check_claim("data/3", 1000, 1000 * MAX_RATIO, 0).unwrap();
        let e = check_claim("data/3", 1 << 30, 1 << 30, MAX_INFLATED_TOTAL).unwrap_err();
        assert!(e.to_string().contains("in total"), "{e}");
    }
}
