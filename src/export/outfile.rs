//! A native output file written on a second thread.
//!
//! Contract: [`OutFile`] takes the output's bytes as owned buffers ([`OutFile::write_owned`];
//! small writes through [`std::io::Write`] are gathered into 1 MiB buffers first) and writes them
//! in order on its own thread, so copying them into the kernel overlaps computing the next ones
//! (a merge reads and sums while the previous chunk is written). At most [`IN_FLIGHT`] buffers
//! wait at a time (memory stays bounded: a few chunks); written buffers come back to
//! [`super::writer::recycle`] for the next chunks. The first write error is returned by the next
//! call, or by [`OutFile::finish`], which waits for every byte to be written.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Buffers queued for the writing thread at most.
pub const IN_FLIGHT: usize = 2;

/// Small writes are gathered up to this many bytes before being queued.
const GATHER: usize = 1 << 20;

/// A file written on its own thread (see the module doc).
pub struct OutFile {
    tx: Option<SyncSender<Vec<u8>>>,
    back: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    small: Vec<u8>,
}

impl OutFile {
    pub fn new(mut file: std::fs::File) -> OutFile {
        let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (back_tx, back) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let thread = std::thread::spawn(move || -> io::Result<()> {
            for b in rx {
                file.write_all(&b)?;
                let _ = back_tx.try_send(b);
            }
            file.flush()
        });
        OutFile {
            tx: Some(tx),
            back,
            thread: Some(thread),
            small: Vec::new(),
        }
    }

    /// Queue `b` to be written after everything before it.
    pub fn write_owned(&mut self, b: Vec<u8>) -> io::Result<()> {
        self.send_small()?;
        self.send(b)
    }

    fn send_small(&mut self) -> io::Result<()> {
        if self.small.is_empty() {
            return Ok(());
        }
        let b = std::mem::take(&mut self.small);
        self.send(b)
    }

    fn send(&mut self, b: Vec<u8>) -> io::Result<()> {
        while let Ok(done) = self.back.try_recv() {
            super::writer::recycle(done);
        }
        if b.is_empty() {
            return Ok(());
        }
        let sent = self.tx.as_ref().map(|tx| tx.send(b).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // the thread stopped: its error
        Err(self
            .join()
            .err()
            .unwrap_or_else(|| io::Error::other("output thread ended early")))
    }

    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the output thread panicked"))),
            None => Ok(()),
        }
    }

    /// Write what is queued and wait until every byte is in the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_small()?;
        self.join()
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.small.extend_from_slice(buf);
        if self.small.len() >= GATHER {
            self.send_small()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send_small()
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_and_errors_surface() {
        let dir = std::env::temp_dir().join(format!("ws-outfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("o.bin");
        let mut w = OutFile::new(std::fs::File::create(&p).unwrap());
        let mut want = Vec::new();
        for i in 0..50u32 {
            let b: Vec<u8> = (0..(i * 977) % 70_000).map(|j| (i + j) as u8).collect();
            want.extend_from_slice(&b);
            if i % 3 == 0 {
                w.write_all(&b).unwrap();
            } else {
                w.write_owned(b).unwrap();
            }
        }
        w.finish().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), want);
        // a file opened read-only: the write error comes back
        let mut w = OutFile::new(std::fs::File::open(&p).unwrap());
        let mut res = Ok(());
        for _ in 0..10 {
            res = res.and_then(|_| w.write_owned(vec![1u8; 1 << 16]));
        }
        assert!(res.and_then(|_| w.finish()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
