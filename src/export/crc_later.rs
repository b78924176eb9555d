//! CRC-32s filled in while an output file is written, for records whose bytes are only produced
//! then (a merge streamed to disk: its parts are listed before anything is written, and hashing
//! the merged tensors at listing time would compute them twice).
//!
//! Contract: a torch writer given [`super::Inputs::deferred`] lists, per record it left
//! unhashed, a [`CrcLater`]: the record's data range in the output file and the positions of its
//! two CRC-32 fields (data descriptor, central directory entry), which it wrote as 0. Both fields
//! come after the data, so a writer going through the file in order can fill them in:
//! [`CrcFill::data`] takes the record's bytes as they are written, in order, and
//! [`CrcFill::fill`] writes the finished CRC-32s into the new bytes about to be written. A field
//! reached before its data was complete is an error (never a wrong CRC-32). Each call costs
//! O(log records + bytes), so a file with many records is filled in linear time.

use crate::format::{FormatError, Result};
use std::ops::Range;

/// One record's CRC-32 left for later: its data in the output file, and the file positions of
/// the two little-endian CRC-32 fields to fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrcLater {
    pub data: Range<u64>,
    pub at: [u64; 2],
}

/// Hashes the deferred records' bytes as they are written and fills in their CRC-32 fields.
pub struct CrcFill {
    records: Vec<CrcLater>,
    /// Per record: its CRC-32 once all its bytes went through [`CrcFill::data`].
    done: Vec<Option<u32>>,
    /// The record being hashed: (index, bytes hashed so far, hasher).
    current: Option<(usize, u64, crate::format::crc32::Hasher)>,
    /// Every field position with its record, in file order.
    fields: Vec<(u64, usize)>,
}

impl CrcFill {
    /// For the records a writer listed (in the order of their data, as it lists them).
    pub fn new(records: Vec<CrcLater>) -> Self {
        let mut fields: Vec<(u64, usize)> = records
            .iter()
            .enumerate()
            .flat_map(|(k, r)| r.at.iter().map(move |&p| (p, k)))
            .collect();
        crate::order::sort(&mut fields);
        CrcFill {
            done: vec![None; records.len()],
            records,
            current: None,
            fields,
        }
    }

    /// `bytes` are written at file position `pos`. Bytes inside a deferred record must come in
    /// order; other bytes are ignored.
    pub fn data(&mut self, pos: u64, bytes: &[u8]) -> Result<()> {
        let mut pos = pos;
        let mut bytes = bytes;
        while !bytes.is_empty() {
            let k = self.records.partition_point(|r| r.data.end <= pos);
            let Some(r) = self
                .records
                .get(k)
                .filter(|r| r.data.start < pos + bytes.len() as u64)
            else {
                return Ok(());
            };
            if pos < r.data.start {
                let skip = (r.data.start - pos) as usize;
                (pos, bytes) = (r.data.start, &bytes[skip..]);
                continue;
            }
            let (len, start) = (r.data.end - r.data.start, r.data.start);
            if self.current.as_ref().is_none_or(|(i, _, _)| *i != k) {
                self.current = Some((k, 0, crate::format::crc32::Hasher::new()));
            }
            let (_, hashed, h) = self.current.as_mut().expect("set above");
            if pos != start + *hashed {
                return Err(FormatError::new(format!(
                    "internal error: bytes of {start}..{} written out of order",
                    start + len
                )));
            }
            let n = ((len - *hashed) as usize).min(bytes.len());
            h.update(&bytes[..n]);
            *hashed += n as u64;
            if *hashed == len {
                let (_, _, h) = self.current.take().expect("set above");
                self.done[k] = Some(h.finalize());
            }
            pos += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// The new bytes `b` about to be written at `pos`, with every CRC-32 field inside them filled in.
    pub fn fill(&self, pos: u64, b: &mut [u8]) -> Result<()> {
        let end = pos + b.len() as u64;
        let first = self.fields.partition_point(|&(p, _)| p < pos);
        for &(p, k) in self.fields[first..].iter().take_while(|&&(p, _)| p < end) {
            let at = (p - pos) as usize;
            let (Some(crc), Some(field)) = (self.done[k], b.get_mut(at..at + 4)) else {
                let r = &self.records[k].data;
                return Err(FormatError::new(format!(
                    "internal error: the CRC-32 of bytes {}..{} is due at {p} before they were all written",
                    r.start, r.end
                )));
            };
            field.copy_from_slice(&crc.to_le_bytes());
        }
        Ok(())
    }

    /// True when `pos..pos+len` holds a field to fill in (so the bytes need [`CrcFill::fill`]).
    pub fn touches(&self, pos: u64, len: u64) -> bool {
        let first = self.fields.partition_point(|&(p, _)| p < pos);
        self.fields.get(first).is_some_and(|&(p, _)| p < pos + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_fields_after_their_data_and_refuses_early_ones() {
        // file: 4 bytes, record A at 4..10, its descriptor CRC at 10, record B at 14..16,
        // both directory fields at 20 and 24
        let recs = vec![
            CrcLater {
                data: 4..10,
                at: [10, 20],
            },
            CrcLater {
                data: 14..16,
                at: [16, 24],
            },
        ];
        let mut f = CrcFill::new(recs);
        let mut early = [0u8; 8];
        assert!(f.fill(8, &mut early).is_err(), "A's field before its data");
        f.data(0, b"head").unwrap();
        f.data(4, b"abc").unwrap();
        assert!(f.data(8, b"x").is_err(), "a gap in A's bytes");
        f.data(7, b"def").unwrap();
        let mut d = [0u8; 4];
        f.fill(10, &mut d).unwrap();
        assert_eq!(u32::from_le_bytes(d), crate::format::crc32::hash(b"abcdef"));
        // B arrives in one piece that also covers bytes before it
        f.data(12, b"..gh").unwrap();
        let mut dir = [0xAAu8; 12];
        f.fill(16, &mut dir).unwrap();
        assert_eq!(&dir[..4], &crate::format::crc32::hash(b"gh").to_le_bytes());
        assert_eq!(
            &dir[4..8],
            &crate::format::crc32::hash(b"abcdef").to_le_bytes()
        );
        assert_eq!(&dir[8..], &crate::format::crc32::hash(b"gh").to_le_bytes());
        assert!(f.touches(20, 1) && !f.touches(28, 100) && !f.touches(0, 10));
    }
}
