//! Random-access byte sources.
//!
//! Contract: a [`Source`] has a fixed length and serves `read_at` for any in-range span; it never
//! needs the whole file in memory. Readers only ever go through this trait, so the same parser
//! runs on a native file, an in-memory buffer, or (in the worker) a browser `Blob`.
//! [`CachedSource`] adds a small block cache for the many tiny reads that zip parsing makes.

use std::cell::RefCell;
use std::fmt;

/// An I/O failure while reading a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

/// Random access to the bytes of one file.
pub trait Source {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Fill `buf` with the bytes at `offset..offset+buf.len()`. Reading past the end is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError>;
    /// True for an empty source.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Read `len` bytes at `offset` into a new vector.
    fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, SourceError> {
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }
    /// A second view of the same bytes for scanning the file front to back (whole-file
    /// statistics) when this source keeps one — e.g. a reader with a few large blocks where
    /// every read has a high fixed cost — else `None` (use this source).
    fn sequential(&self) -> Option<&dyn Source> {
        None
    }
}

impl<S: Source + ?Sized> Source for &S {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        (**self).read_at(offset, buf)
    }
    fn sequential(&self) -> Option<&dyn Source> {
        (**self).sequential()
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        (**self).read_at(offset, buf)
    }
    fn sequential(&self) -> Option<&dyn Source> {
        (**self).sequential()
    }
}

impl<S: Source + ?Sized> Source for std::rc::Rc<S> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        (**self).read_at(offset, buf)
    }
    fn sequential(&self) -> Option<&dyn Source> {
        (**self).sequential()
    }
}

fn check_range(len: u64, offset: u64, n: usize) -> Result<(), SourceError> {
    match offset.checked_add(n as u64) {
        Some(end) if end <= len => Ok(()),
        _ => Err(SourceError(format!(
            "read of {n} bytes at offset {offset} is past the end of the file ({len} bytes)"
        ))),
    }
}

/// An in-memory source (tests, small files, bytes already fetched).
pub struct MemSource(pub Vec<u8>);

impl Source for MemSource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_range(self.len(), offset, buf.len())?;
        let o = offset as usize;
        buf.copy_from_slice(&self.0[o..o + buf.len()]);
        Ok(())
    }
}

/// A native file read with positioned reads (no seeking state, no mmap).
#[cfg(not(target_arch = "wasm32"))]
pub struct FileSource {
    file: std::fs::File,
    len: u64,
    reads: std::cell::Cell<u64>,
    bytes_read: std::cell::Cell<u64>,
}

#[cfg(not(target_arch = "wasm32"))]
impl FileSource {
    pub fn open(path: &std::path::Path) -> Result<Self, SourceError> {
        let file = std::fs::File::open(path)
            .map_err(|e| SourceError(format!("{}: {e}", path.display())))?;
        let len = file
            .metadata()
            .map_err(|e| SourceError(format!("{}: {e}", path.display())))?
            .len();
        Ok(FileSource {
            file,
            len,
            reads: 0.into(),
            bytes_read: 0.into(),
        })
    }
    /// Number of `read_at` calls and bytes read so far (for benchmarks and laziness tests).
    pub fn io_counters(&self) -> (u64, u64) {
        (self.reads.get(), self.bytes_read.get())
    }
}

/// Process-wide totals of [`FileSource`] reads: (calls, bytes). For benchmarks and laziness tests.
#[cfg(not(target_arch = "wasm32"))]
pub fn file_io_totals() -> (u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    (FILE_READS.load(Relaxed), FILE_BYTES.load(Relaxed))
}

#[cfg(not(target_arch = "wasm32"))]
static FILE_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[cfg(not(target_arch = "wasm32"))]
static FILE_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(not(target_arch = "wasm32"))]
impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_range(self.len, offset, buf.len())?;
        self.reads.set(self.reads.get() + 1);
        self.bytes_read
            .set(self.bytes_read.get() + buf.len() as u64);
        FILE_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        FILE_BYTES.fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file
                .read_exact_at(buf, offset)
                .map_err(|e| SourceError(e.to_string()))
        }
        #[cfg(not(unix))]
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = &self.file;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| SourceError(e.to_string()))?;
            f.read_exact(buf).map_err(|e| SourceError(e.to_string()))
        }
    }
}

/// A block cache in front of another source. Small reads (zip directory walking, pickle
/// reading) are served from aligned blocks; large reads go straight through.
pub struct CachedSource<S: Source> {
    inner: S,
    block: usize,
    cache: RefCell<Vec<(u64, Vec<u8>)>>,
    capacity: usize,
}

impl<S: Source> CachedSource<S> {
    /// `block` bytes per block, at most `capacity` blocks kept (least recently used evicted).
    pub fn new(inner: S, block: usize, capacity: usize) -> Self {
        CachedSource {
            inner,
            block: block.max(512),
            cache: RefCell::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }
    pub fn inner(&self) -> &S {
        &self.inner
    }
    fn with_block<R>(&self, start: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, SourceError> {
        let mut cache = self.cache.borrow_mut();
        if let Some(pos) = cache.iter().position(|(s, _)| *s == start) {
            let entry = cache.remove(pos);
            cache.push(entry);
        } else {
            let n = (self.inner.len() - start).min(self.block as u64) as usize;
            // the least recently used block's memory is read into again: a fresh block would be
            // allocated and zeroed first (8 MiB blocks: as much time as hashing them)
            let mut data = if cache.len() >= self.capacity {
                cache.remove(0).1
            } else {
                Vec::new()
            };
            data.resize(n, 0);
            self.inner.read_at(start, &mut data)?;
            cache.push((start, data));
        }
        Ok(f(&cache.last().expect("just pushed").1))
    }
}

impl<S: Source> Source for CachedSource<S> {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_range(self.len(), offset, buf.len())?;
        if buf.len() >= self.block {
            return self.inner.read_at(offset, buf);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let start = pos - pos % self.block as u64;
            let within = (pos - start) as usize;
            let n = self.with_block(start, |b| {
                let n = (b.len() - within).min(buf.len() - done);
                buf[done..done + n].copy_from_slice(&b[within..within + n]);
                n
            })?;
            if n == 0 {
                return Err(SourceError("short block".into()));
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_reads_match_direct_reads() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let c = CachedSource::new(MemSource(data.clone()), 1024, 3);
        for (off, n) in [
            (0u64, 10usize),
            (1020, 10),
            (3000, 2500),
            (9990, 10),
            (5, 1024),
        ] {
            let mut b = vec![0; n];
            c.read_at(off, &mut b).unwrap();
            assert_eq!(&b[..], &data[off as usize..off as usize + n]);
        }
        let mut b = vec![0; 11];
        assert!(c.read_at(9990, &mut b).is_err());
    }

    #[test]
    fn evicted_blocks_are_reused_with_the_right_bytes() {
        // 10,000 bytes in blocks of 1,024 (the last one short), two kept: every read below
        // evicts a block and reads into its memory, the short last block included
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 253) as u8).collect();
        let c = CachedSource::new(MemSource(data.clone()), 1024, 2);
        let mut off = 0u64;
        for step in 0..200u64 {
            let n = (step * 37 % 900 + 1) as usize;
            off = (off + step * 1531) % (10_000 - n as u64);
            let mut b = vec![0; n];
            c.read_at(off, &mut b).unwrap();
            assert_eq!(&b[..], &data[off as usize..off as usize + n], "read {step}");
            let mut last = vec![0; 5];
            c.read_at(9_995, &mut last).unwrap();
            assert_eq!(&last[..], &data[9_995..]);
        }
        assert!(c.cache.borrow().len() <= 2);
    }
}
