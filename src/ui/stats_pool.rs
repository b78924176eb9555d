//! Whole-file statistics on a pool of workers (two per core).
//!
//! Contract: [`StatsPool::run`] splits the tensors of the open checkpoint into one contiguous
//! range per worker (equal bytes, file order, so each worker reads its part of the file
//! sequentially), sends each worker a `stats_part` request with the opened files (each worker
//! has its own reader and opens the files itself, once per checkpoint), and hands the page the
//! answers of the whole run as if one worker had made them: `stats_rows` as they arrive,
//! `progress` summed over the workers, one `all_stats_done` when every part is done, or one
//! `error` (the first failure ends the run). [`StatsPool::cancel`] terminates every worker at
//! once — work inside a tensor stops too — and the next run starts fresh workers. The pool
//! size is [`PER_CORE`] × `navigator.hardwareConcurrency` (1 to [`MAX_WORKERS`]), at most one
//! worker per [`MIN_PART_BYTES`] of tensor bytes.

use super::worker_client::WorkerClient;
use crate::worker::protocol::{Entry, ErrorKind, ErrorReply, JsFile, Request, RequestId, Response};
use std::cell::RefCell;
use std::rc::Rc;
use web_sys::File;

/// Most workers a pool starts.
pub const MAX_WORKERS: usize = 8;
/// Workers per core: a worker waits for each `FileReaderSync` read (the browser reads the file
/// on other threads), so two per core keep the cores computing while reads are under way.
pub const PER_CORE: usize = 2;
/// Least tensor bytes per worker: below this a part is not worth a worker's open.
pub const MIN_PART_BYTES: u64 = 64 << 20;

type Sink = Rc<dyn Fn(Response)>;

struct Run {
    id: RequestId,
    /// (done, total) bytes per part.
    progress: Vec<(u64, u64)>,
    finished: Vec<bool>,
    sink: Sink,
}

#[derive(Default)]
struct Inner {
    workers: Vec<WorkerClient>,
    run: Option<Run>,
}

/// The pool (cheap to clone).
#[derive(Clone, Default)]
pub struct StatsPool {
    inner: Rc<RefCell<Inner>>,
}

/// Workers for `bytes` of tensor bytes on this machine.
pub fn pool_size(bytes: u64) -> usize {
    let cores = web_sys::window()
        .map(|w| w.navigator().hardware_concurrency() as usize)
        .unwrap_or(1);
    (cores * PER_CORE)
        .clamp(1, MAX_WORKERS)
        .min((bytes / MIN_PART_BYTES).max(1) as usize)
}

/// Split tensors (file order) into `n` contiguous ranges of about equal bytes.
pub fn split(entries: &[Entry], n: usize) -> Vec<Vec<u32>> {
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    let per = total.div_ceil(n.max(1) as u64);
    let mut parts = vec![Vec::new()];
    let mut acc = 0u64;
    for (i, e) in entries.iter().enumerate() {
        // a new part when this tensor would overfill the current one
        if acc > 0 && acc.saturating_add(e.bytes) > per && parts.len() < n {
            parts.push(Vec::new());
            acc = 0;
        }
        acc += e.bytes;
        parts.last_mut().expect("one part at least").push(i as u32);
    }
    parts.retain(|p| !p.is_empty());
    parts
}

impl StatsPool {
    /// Start run `id` over the checkpoint that `open` request `open_id` produced from `files`;
    /// every answer goes to `sink`. A run in progress is cancelled first; idle workers are reused
    /// (they keep the checkpoint open).
    pub fn run(
        &self,
        id: RequestId,
        open_id: RequestId,
        files: &[File],
        entries: &[Entry],
        bins: u32,
        sink: impl Fn(Response) + 'static,
    ) {
        if self.running().is_some() {
            self.cancel();
        }
        let parts = split(entries, pool_size(entries.iter().map(|e| e.bytes).sum()));
        let sink: Sink = Rc::new(sink);
        {
            let mut inner = self.inner.borrow_mut();
            inner.run = Some(Run {
                id,
                progress: vec![(0, 0); parts.len()],
                finished: vec![false; parts.len()],
                sink,
            });
            while inner.workers.len() < parts.len() {
                let k = inner.workers.len();
                let me = self.clone();
                let me2 = self.clone();
                inner.workers.push(WorkerClient::spawn(
                    move |r| me.answer(k, r),
                    move |msg| me2.failed(&msg),
                ));
            }
        }
        let workers = self.inner.borrow().workers.clone();
        for (k, tensors) in parts.into_iter().enumerate() {
            let req = Request::StatsPart {
                id,
                open_id,
                files: files.iter().cloned().map(JsFile).collect(),
                bins,
                tensors,
            };
            if let Err(e) = workers[k].send(&req) {
                return self.failed(&format!("cannot pass the file to a worker: {e}"));
            }
        }
    }

    /// True while a run is going.
    pub fn running(&self) -> Option<RequestId> {
        self.inner.borrow().run.as_ref().map(|r| r.id)
    }

    /// Stop the run at once: terminate every worker (the next run starts new ones).
    pub fn cancel(&self) {
        let workers = {
            let mut inner = self.inner.borrow_mut();
            inner.run = None;
            std::mem::take(&mut inner.workers)
        };
        for w in workers {
            w.stop();
        }
    }

    fn answer(&self, k: usize, r: Response) {
        let out = {
            let mut inner = self.inner.borrow_mut();
            let Some(run) = inner.run.as_mut() else {
                return;
            };
            if r.id() != Some(run.id) {
                return;
            }
            let sink = run.sink.clone();
            let out = match r {
                Response::Progress { done, total, .. } => {
                    run.progress[k] = (done, total);
                    let (d, t) = run
                        .progress
                        .iter()
                        .fold((0, 0), |(a, b), (d, t)| (a + d, b + t));
                    Some(Response::Progress {
                        id: run.id,
                        done: d,
                        total: t,
                    })
                }
                Response::AllStatsDone { cancelled, .. } => {
                    run.finished[k] = true;
                    let id = run.id;
                    let all = run.finished.iter().all(|&f| f);
                    if all || cancelled {
                        inner.run = None;
                        Some(Response::AllStatsDone { id, cancelled })
                    } else {
                        None
                    }
                }
                r @ Response::Error(_) => {
                    inner.run = None;
                    Some(r)
                }
                r @ Response::StatsRows { .. } => Some(r),
                _ => None,
            };
            out.map(|o| (sink, o))
        };
        if let Some((sink, r)) = out {
            let failed = matches!(r, Response::Error(_));
            sink(r);
            if failed {
                self.cancel();
            }
        }
    }

    fn failed(&self, msg: &str) {
        let run = self.inner.borrow_mut().run.take();
        self.cancel();
        if let Some(run) = run {
            (run.sink)(Response::Error(ErrorReply::new(
                Some(run.id),
                ErrorKind::File,
                format!("layer statistics stopped: {msg}"),
            )));
        }
    }
}
