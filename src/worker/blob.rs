//! A [`Source`] over a browser `Blob` (or `File`), read synchronously in a worker.
//!
//! Contract: `read_at` reads exactly the requested span with
//! `FileReaderSync::read_as_array_buffer(blob.slice(a, b))`, using the f64 slice methods (the
//! i32 ones overflow past 2 GiB). No bytes are read before they are asked for; wrap the source
//! in [`CachedSource`] (see [`cached`]) for the many small reads parsers make, or with
//! [`streaming`] for a reader going front to back in pieces of a few hundred KiB.
//! `FileReaderSync` exists only in workers: [`BlobSource::new`] fails on the main thread.

use crate::format::{CachedSource, Source, SourceError};
use js_sys::{Reflect, Uint8Array};
use std::cell::Cell;
use wasm_bindgen::JsValue;
use web_sys::{Blob, FileReaderSync};

/// Block size and block count of the cache [`cached`] puts in front of a blob.
pub const CACHE_BLOCK: usize = 64 * 1024;
pub const CACHE_BLOCKS: usize = 16;
/// Block size and block count of [`streaming`]'s cache.
pub const STREAM_BLOCK: usize = 4 << 20;
pub const STREAM_BLOCKS: usize = 2;
/// Block size and block count of an opened file's sequential reader ([`OpenedBlob`]): the
/// whole-file statistics read a file front to back, many tensors per block (a header and a few
/// bytes each for tiny tensors; a tensor read once per statistics pass for the rest).
pub const SCAN_BLOCK: usize = 8 << 20;
pub const SCAN_BLOCKS: usize = 2;

thread_local! {
    /// `FileReaderSync` reads and bytes read by every [`BlobSource`] of this worker.
    static READS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// `(reads, bytes)` made through `FileReaderSync` by this worker so far (for the benchmark).
pub fn read_counts() -> (u64, u64) {
    READS.with(|r| r.get())
}

/// Random access to a `Blob`'s bytes.
pub struct BlobSource {
    blob: Blob,
    len: u64,
    reader: FileReaderSync,
    reads: Cell<u64>,
}

/// `name: message` of a thrown JS value (DOMException, Error), or its debug form.
pub fn js_error_text(e: &JsValue) -> String {
    let field = |k: &str| {
        Reflect::get(e, &JsValue::from_str(k))
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    match (field("name"), field("message")) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (None, Some(m)) => m,
        (Some(n), None) => n,
        (None, None) => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    }
}

impl BlobSource {
    /// A source over `blob`. Fails outside a worker (no `FileReaderSync`).
    pub fn new(blob: Blob) -> Result<Self, SourceError> {
        let reader = FileReaderSync::new().map_err(|e| SourceError(js_error_text(&e)))?;
        let len = blob.size() as u64;
        Ok(BlobSource {
            blob,
            len,
            reader,
            reads: Cell::new(0),
        })
    }
    /// The underlying blob.
    pub fn blob(&self) -> &Blob {
        &self.blob
    }
    /// Number of `FileReaderSync` reads made so far.
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }
}

impl Source for BlobSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&end| end <= self.len)
            .ok_or_else(|| {
                SourceError(format!(
                    "read of {} bytes at offset {offset} is past the end of the file ({} bytes)",
                    buf.len(),
                    self.len
                ))
            })?;
        if buf.is_empty() {
            return Ok(());
        }
        let at = |e: JsValue| SourceError(format!("byte {offset}: {}", js_error_text(&e)));
        let part = self
            .blob
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(at)?;
        let bytes = self.reader.read_as_array_buffer(&part).map_err(at)?;
        self.reads.set(self.reads.get() + 1);
        READS.with(|r| {
            let (n, b) = r.get();
            r.set((n + 1, b + buf.len() as u64))
        });
        let arr = Uint8Array::new(&bytes);
        if arr.length() as usize != buf.len() {
            return Err(SourceError(format!(
                "byte {offset}: short read: {} of {} bytes (the file changed on disk?)",
                arr.length(),
                buf.len()
            )));
        }
        arr.copy_to(buf);
        Ok(())
    }
}

/// A blob source for a reader that goes through a file front to back in pieces smaller than
/// [`STREAM_BLOCK`] (a merge reads 256 KiB of each input at a time): every `FileReaderSync` call
/// costs ≈ 1.5 ms in Chromium here, whatever its size (BENCHMARKS.md, "The page's merge to
/// disk"), so the pieces are served from 4 MiB blocks — two per input, one being read and one
/// for a piece that straddles blocks.
pub fn streaming(blob: Blob) -> Result<CachedSource<BlobSource>, SourceError> {
    Ok(CachedSource::new(
        BlobSource::new(blob)?,
        STREAM_BLOCK,
        STREAM_BLOCKS,
    ))
}

/// An opened file: the standard block cache for the parsers' small reads, and a second reader
/// with [`SCAN_BLOCK`] blocks as its [`Source::sequential`] view for the whole-file statistics.
/// Each `FileReaderSync` call costs ≈ 1.5 ms here whatever its size: 50,000 tiny tensors read
/// through 64 KiB blocks made ≈ 500 calls (BENCHMARKS.md). Neither reads anything before it is
/// asked; the scan blocks stay allocated once used (16 MiB).
pub struct OpenedBlob {
    small: CachedSource<BlobSource>,
    scan: CachedSource<BlobSource>,
}

impl Source for OpenedBlob {
    fn len(&self) -> u64 {
        self.small.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        self.small.read_at(offset, buf)
    }
    fn sequential(&self) -> Option<&dyn Source> {
        Some(&self.scan)
    }
}

/// An opened file's two readers ([`OpenedBlob`]).
pub fn opened(blob: Blob) -> Result<OpenedBlob, SourceError> {
    Ok(OpenedBlob {
        small: cached(blob.clone())?,
        scan: CachedSource::new(BlobSource::new(blob)?, SCAN_BLOCK, SCAN_BLOCKS),
    })
}

/// A blob source behind the standard block cache.
pub fn cached(blob: Blob) -> Result<CachedSource<BlobSource>, SourceError> {
    Ok(CachedSource::new(
        BlobSource::new(blob)?,
        CACHE_BLOCK,
        CACHE_BLOCKS,
    ))
}
