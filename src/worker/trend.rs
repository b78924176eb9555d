//! The training-run view's worker side: open every dropped checkpoint of a run (index only) and
//! compute one step of the trend table at a time ([`crate::stats::trend::step_points`]), over any
//! [`Source`] (tested natively; the worker feeds it browser `File`s).
//!
//! Contract:
//! - Requests are [`TrendRequest`]s (`trend_open` / `trend_step`), sent as
//!   [`super::protocol::Request::Trend`]; answers are [`Response::Trend`] carrying a
//!   [`TrendReply`] with the request's id.
//! - `trend_open {files}`: every `*.index.json` among the files takes the shards it names (by base
//!   name) and opens as one checkpoint; every other file opens alone. Answered by `opened`: the
//!   checkpoints that opened (name, step found in them, bytes of their tensors) in the default
//!   order ([`crate::stats::trend::order`]) and one line per file that did not. The session keeps
//!   them (replacing any earlier run).
//! - `trend_step {cur, prev}` (indices into `opened.checkpoints`): answered by `progress` (bytes
//!   of both checkpoints read, at most every [`PROGRESS_BYTES`]) then `points` or `error`.
//! - Cancel: the page terminates the workers computing a run (a step is one synchronous call);
//!   nothing here needs to stop.
//!
//! Several workers can each open the same files and take different steps: steps are
//! independent given (cur, prev).

use super::protocol::{RequestId, Response};
use super::session::{base_name, NamedSource};
use crate::format::{self, Checkpoint, FormatError, Source};
use crate::stats::trend::{self, StepPoints};
use serde::{Deserialize, Serialize};

/// At most one `progress` answer per this many bytes read.
pub const PROGRESS_BYTES: u64 = 16 << 20;

/// A page → worker message of the run view. `F` is the file handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendRequest<F> {
    TrendOpen {
        id: RequestId,
        files: Vec<F>,
    },
    TrendStep {
        id: RequestId,
        cur: u32,
        prev: Option<u32>,
    },
}

impl<F> TrendRequest<F> {
    /// The request id.
    pub fn id(&self) -> RequestId {
        match self {
            TrendRequest::TrendOpen { id, .. } | TrendRequest::TrendStep { id, .. } => *id,
        }
    }
}

/// One checkpoint of the run as opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCheckpoint {
    pub name: String,
    pub step: Option<i64>,
    pub bytes: u64,
}

/// A worker → page answer of the run view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendReply {
    Opened {
        id: RequestId,
        checkpoints: Vec<RunCheckpoint>,
        errors: Vec<String>,
    },
    Progress {
        id: RequestId,
        done: u64,
        total: u64,
    },
    Points {
        id: RequestId,
        cur: u32,
        prev: Option<u32>,
        points: StepPoints,
    },
    Error {
        id: RequestId,
        error: String,
    },
}

impl TrendReply {
    pub fn id(&self) -> RequestId {
        match self {
            TrendReply::Opened { id, .. }
            | TrendReply::Progress { id, .. }
            | TrendReply::Points { id, .. }
            | TrendReply::Error { id, .. } => *id,
        }
    }
}

struct RunFile {
    ckpt: Checkpoint,
    sources: Vec<Box<dyn Source>>,
}

/// The opened checkpoints of the current run.
#[derive(Default)]
pub struct TrendSession {
    files: Vec<RunFile>,
}

/// A checkpoint opened from dropped files: its name (the file, or the `*.index.json` of a
/// sharded set), the index, and one source per [`Checkpoint::files`] entry.
pub type Group = (String, Checkpoint, Vec<Box<dyn Source>>);

/// Open dropped files as checkpoints: every `*.index.json` takes the shards it names (by base
/// name) and opens as one checkpoint; every other file opens alone. Returns the checkpoints in
/// the order met (indexes first) and one line per file that did not open.
pub fn open_groups(files: Vec<NamedSource>) -> (Vec<Group>, Vec<String>) {
    let mut pool: Vec<Option<NamedSource>> = files.into_iter().map(Some).collect();
    let mut opened: Vec<Group> = vec![];
    let mut errors = vec![];
    // shards named by an index belong to it
    for i in 0..pool.len() {
        let is_index = pool[i]
            .as_ref()
            .is_some_and(|f| f.name.ends_with(".index.json"));
        if !is_index {
            continue;
        }
        let index = pool[i].take().expect("present");
        let mut opener = |shard: &str| -> format::Result<Box<dyn Source>> {
            let want = base_name(shard);
            pool.iter_mut()
                .find(|f| f.as_ref().is_some_and(|f| base_name(&f.name) == want))
                .and_then(Option::take)
                .map(|f| f.source)
                .ok_or_else(|| FormatError::new(format!("{want} was not among the files")))
        };
        match format::open_sharded(&*index.source, &index.name, &mut opener) {
            Ok((ckpt, sources)) => opened.push((index.name, ckpt, sources)),
            Err(e) => errors.push(e.in_file(&index.name).to_string()),
        }
    }
    for f in pool.into_iter().flatten() {
        match format::open(&*f.source, &f.name) {
            Ok(ckpt) => opened.push((f.name, ckpt, vec![f.source])),
            Err(e) => errors.push(e.in_file(&f.name).to_string()),
        }
    }
    (opened, errors)
}

impl TrendSession {
    pub fn new() -> Self {
        Self::default()
    }

    /// Open the run's files (see the module doc), answering `opened`.
    pub fn open(
        &mut self,
        id: RequestId,
        files: Vec<NamedSource>,
        reply: &mut dyn FnMut(Response),
    ) {
        let (groups, errors) = open_groups(files);
        let opened: Vec<(String, RunFile)> = groups
            .into_iter()
            .map(|(name, ckpt, sources)| (name, RunFile { ckpt, sources }))
            .collect();
        let items: Vec<(String, Option<i64>)> = opened
            .iter()
            .map(|(n, r)| (n.clone(), trend::step_of(&r.ckpt)))
            .collect();
        let order = trend::order(&items);
        let mut slots: Vec<Option<(String, RunFile)>> = opened.into_iter().map(Some).collect();
        let mut checkpoints = vec![];
        self.files.clear();
        for i in order {
            let (name, r) = slots[i].take().expect("each index once");
            checkpoints.push(RunCheckpoint {
                name,
                step: items[i].1,
                bytes: r.ckpt.tensors.iter().map(|t| t.nbytes()).sum(),
            });
            self.files.push(r);
        }
        reply(Response::Trend(TrendReply::Opened {
            id,
            checkpoints,
            errors,
        }));
    }

    /// Compute step `cur` after `prev`, answering `progress`es then `points` or `error`.
    pub fn step(
        &mut self,
        id: RequestId,
        cur: u32,
        prev: Option<u32>,
        chunk: usize,
        reply: &mut dyn FnMut(Response),
    ) {
        let get = |i: u32| self.files.get(i as usize);
        let (Some(c), p) = (get(cur), prev.map(get)) else {
            return reply(Response::Trend(TrendReply::Error {
                id,
                error: format!("no checkpoint {cur} in this run"),
            }));
        };
        if p.is_some_and(|p| p.is_none()) {
            return reply(Response::Trend(TrendReply::Error {
                id,
                error: format!("no checkpoint {} in this run", prev.unwrap_or(0)),
            }));
        }
        let cs: Vec<&dyn Source> = c.sources.iter().map(|s| &**s).collect();
        let ps: Vec<&dyn Source> = p
            .flatten()
            .map(|p| p.sources.iter().map(|s| &**s).collect())
            .unwrap_or_default();
        let prev_opened = p.flatten().map(|p| trend::CheckpointRef {
            ckpt: &p.ckpt,
            sources: &ps,
        });
        let mut last = 0u64;
        let r = trend::step_points(
            trend::CheckpointRef {
                ckpt: &c.ckpt,
                sources: &cs,
            },
            prev_opened,
            &|_| true,
            chunk,
            &mut |done, total| {
                if done == 0 || done >= last + PROGRESS_BYTES || done == total {
                    last = done;
                    reply(Response::Trend(TrendReply::Progress { id, done, total }));
                }
                true
            },
        );
        reply(Response::Trend(match r {
            Ok(Some(points)) => TrendReply::Points {
                id,
                cur,
                prev,
                points,
            },
            Ok(None) => TrendReply::Error {
                id,
                error: "cancelled".into(),
            },
            Err(e) => TrendReply::Error {
                id,
                error: e.to_string(),
            },
        }));
    }
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    static SESSION: std::cell::RefCell<TrendSession> = std::cell::RefCell::new(TrendSession::new());
}

/// Handle a run-view request in the worker (its files are browser `File`s).
#[cfg(target_arch = "wasm32")]
pub fn handle_js(req: TrendRequest<super::protocol::JsFile>, reply: &mut dyn FnMut(Response)) {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        match req {
            TrendRequest::TrendOpen { id, files } => {
                let mut named = vec![];
                for super::protocol::JsFile(file) in files {
                    let name = file.name();
                    match super::blob::cached(file.into()) {
                        Ok(src) => named.push(NamedSource {
                            name,
                            source: Box::new(src),
                        }),
                        Err(e) => {
                            return reply(Response::Trend(TrendReply::Error {
                                id,
                                error: format!("{name}: {}", e.0),
                            }))
                        }
                    }
                }
                s.open(id, named, reply);
            }
            TrendRequest::TrendStep { id, cur, prev } => {
                s.step(id, cur, prev, super::session::READ_CHUNK, reply)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file of one F32 tensor `w`, with an optional `step` in its metadata.
    fn st(values: &[f32], step: Option<i64>) -> Vec<u8> {
        let meta = step
            .map(|s| format!(r#""__metadata__":{{"step":"{s}"}},"#))
            .unwrap_or_default();
        let h = format!(
            r#"{{{meta}"w":{{"dtype":"F32","shape":[{}],"data_offsets":[0,{}]}}}}"#,
            values.len(),
            4 * values.len()
        );
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(h.as_bytes());
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out
    }

    #[test]
    fn opens_orders_and_computes_steps() {
        let mut s = TrendSession::new();
        let mut out = vec![];
        s.open(
            1,
            vec![
                NamedSource::in_memory("b.safetensors", st(&[3.0, 4.0], Some(20))),
                NamedSource::in_memory("bad.pth", vec![1, 2, 3]),
                NamedSource::in_memory("a.safetensors", st(&[3.0, 4.0, 0.0][..2], Some(10))),
            ],
            &mut |r| out.push(r),
        );
        let Response::Trend(TrendReply::Opened {
            checkpoints,
            errors,
            ..
        }) = &out[0]
        else {
            panic!("{out:?}")
        };
        let names: Vec<_> = checkpoints.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a.safetensors", "b.safetensors"]);
        assert_eq!(checkpoints[1].step, Some(20));
        assert_eq!(checkpoints[0].bytes, 8);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("bad.pth: "), "{errors:?}");
        out.clear();
        s.step(2, 1, Some(0), 4, &mut |r| out.push(r));
        let Some(Response::Trend(TrendReply::Points { points, cur, .. })) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(*cur, 1);
        assert_eq!(points.keys, ["w"]);
        assert_eq!(points.points[0].rel_change, Some(0.0));
        assert_eq!(points.points[0].l2, Some(5.0));
        assert!(matches!(
            out[0],
            Response::Trend(TrendReply::Progress {
                done: 0,
                total: 16,
                ..
            })
        ));
        out.clear();
        s.step(3, 7, None, 4, &mut |r| out.push(r));
        assert!(matches!(
            out[0],
            Response::Trend(TrendReply::Error { id: 3, .. })
        ));
    }
}
