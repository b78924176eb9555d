//! The page's state and how worker answers change it (no browser types: tested natively).
//!
//! Contract:
//! - [`PageState::begin`] starts a request and returns its id; only answers carrying the id of
//!   the request in flight change the page (answers to superseded requests are dropped).
//! - A file whose index is built, or whose format is recognised but has no reader yet, becomes
//!   the shown [`FileCard`]. A file that fails (unknown format, unreadable, broken) leaves the
//!   previous card in place and sets [`PageState::error`].
//! - Starting a new request clears the previous error.

use crate::worker::protocol::{Detected, RequestId, Response, Summary};

/// What the page knows about the file shown in the summary card.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCard {
    pub name: String,
    pub size: u64,
    pub format: String,
    pub format_description: String,
    /// Files in the request (1 unless several were picked or dropped together).
    pub files: u32,
    pub details: Details,
}

/// The index part of the card.
#[derive(Debug, Clone, PartialEq)]
pub enum Details {
    /// The checkpoint's index was built.
    Summary(Summary),
}

/// A request in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: RequestId,
    /// What is being read (file names), for the progress line.
    pub label: String,
    /// The detection answer, once it arrived.
    pub detected: Option<Detected>,
}

/// Everything the page renders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageState {
    last_id: RequestId,
    pub worker_ready: bool,
    pub pending: Option<Pending>,
    pub card: Option<FileCard>,
    pub error: Option<String>,
}

impl PageState {
    /// Start a request for `names`; returns the id to send.
    pub fn begin(&mut self, names: &[String]) -> RequestId {
        self.last_id = self.last_id.wrapping_add(1);
        let label = match names {
            [] => "no file".to_string(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (+{} more)", rest.len()),
        };
        self.pending = Some(Pending {
            id: self.last_id,
            label,
            detected: None,
        });
        self.error = None;
        self.last_id
    }

    /// Apply one worker answer.
    pub fn apply(&mut self, r: Response) {
        match r {
            Response::Ready => self.worker_ready = true,
            Response::Detected(d) => {
                if let Some(p) = self.pending.as_mut().filter(|p| p.id == d.id) {
                    p.detected = Some(d);
                }
            }
            Response::Summary(s) => {
                if let Some(d) = self.take_detected(s.id) {
                    self.card = Some(card(d, Details::Summary(s)));
                    self.error = None;
                }
            }
            Response::Error(e) => match e.id {
                // an undecodable message: nothing else will answer the request in flight
                None => {
                    self.pending = None;
                    self.error = Some(e.error);
                }
                Some(id) if self.pending.as_ref().is_some_and(|p| p.id == id) => {
                    self.pending = None;
                    self.error = Some(e.error);
                }
                Some(_) => {}
            },
            // answers to tensor, edit and compare requests are routed by the components that
            // asked
            _ => {}
        }
    }

    /// The worker died (a crash, a failed load): the request in flight is lost.
    pub fn worker_failed(&mut self, message: &str) {
        self.worker_ready = false;
        let what = match self.pending.take() {
            // the client's message names the file already
            Some(p) if message.starts_with(&format!("{}: ", p.label)) => message.to_string(),
            Some(p) => format!("{}: the reader stopped: {message}", p.label),
            None => format!("the reader stopped: {message}"),
        };
        self.error = Some(what);
    }

    fn take_detected(&mut self, id: RequestId) -> Option<Detected> {
        if self.pending.as_ref().is_some_and(|p| p.id == id) {
            self.pending.take().and_then(|p| p.detected)
        } else {
            None
        }
    }
}

fn card(d: Detected, details: Details) -> FileCard {
    FileCard {
        name: d.name,
        size: d.size,
        format: d.format,
        format_description: d.format_description,
        files: d.files,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::protocol::{ErrorKind, ErrorReply};

    fn detected(id: RequestId, name: &str, format: &str) -> Response {
        Response::Detected(Detected {
            id,
            name: name.into(),
            size: 100,
            format: format.into(),
            format_description: format!("{format} file"),
            files: 1,
        })
    }

    fn summary(id: RequestId) -> Response {
        Response::Summary(Summary {
            id,
            tensors: 2,
            params: 9,
            verdict: crate::format::Verdict::Safe,
            globals: vec![],
            notes: vec![],
            ..Default::default()
        })
    }

    fn error(id: RequestId, msg: &str) -> Response {
        Response::Error(ErrorReply::new(Some(id), ErrorKind::File, msg))
    }

    #[test]
    fn good_file_becomes_the_card() {
        let mut s = PageState::default();
        s.apply(Response::Ready);
        assert!(s.worker_ready);
        let id = s.begin(&["a.pth".into()]);
        assert_eq!(s.pending.as_ref().unwrap().label, "a.pth");
        s.apply(detected(id, "a.pth", "torch-zip"));
        assert!(
            s.card.is_none(),
            "the card changes only once the outcome is known"
        );
        s.apply(summary(id));
        let c = s.card.as_ref().unwrap();
        assert_eq!((c.name.as_str(), c.format.as_str()), ("a.pth", "torch-zip"));
        assert!(matches!(&c.details, Details::Summary(x) if x.tensors == 2 && x.params == 9));
        assert!(s.pending.is_none() && s.error.is_none());
    }

    #[test]
    fn failure_keeps_previous_card_and_next_file_clears_error() {
        let mut s = PageState::default();
        let a = s.begin(&["a.pth".into()]);
        s.apply(detected(a, "a.pth", "torch-zip"));
        s.apply(summary(a));
        let before = s.card.clone();

        let b = s.begin(&["noise.bin".into()]);
        s.apply(detected(b, "noise.bin", "unknown"));
        s.apply(error(b, "noise.bin: not a checkpoint"));
        assert_eq!(s.card, before);
        assert_eq!(s.error.as_deref(), Some("noise.bin: not a checkpoint"));
        assert!(s.pending.is_none());

        let c = s.begin(&["c.safetensors".into()]);
        assert!(s.error.is_none());
        s.apply(detected(c, "c.safetensors", "safetensors"));
        s.apply(summary(c));
        assert_eq!(s.card.as_ref().unwrap().name, "c.safetensors");
    }

    #[test]
    fn an_error_for_a_detected_format_is_an_error() {
        let mut s = PageState::default();
        let id = s.begin(&["x".into()]);
        s.apply(detected(id, "x", "torch-tar"));
        s.apply(error(id, "x: a legacy tar archive: not read"));
        assert!(s.card.is_none());
        assert_eq!(
            s.error.as_deref(),
            Some("x: a legacy tar archive: not read")
        );
    }

    #[test]
    fn unreadable_file_error_without_detection() {
        let mut s = PageState::default();
        let id = s.begin(&["gone.pth".into()]);
        s.apply(error(id, "gone.pth: first bytes: NotReadableError"));
        assert!(s.card.is_none());
        assert!(s.error.as_deref().unwrap().contains("NotReadableError"));
    }

    #[test]
    fn answers_to_superseded_requests_are_ignored() {
        let mut s = PageState::default();
        let old = s.begin(&["slow.pth".into()]);
        let new = s.begin(&["fast.pth".into(), "shard2.bin".into()]);
        assert_ne!(old, new);
        assert_eq!(s.pending.as_ref().unwrap().label, "fast.pth (+1 more)");
        s.apply(detected(old, "slow.pth", "torch-zip"));
        s.apply(summary(old));
        s.apply(error(old, "slow.pth: late"));
        assert!(s.card.is_none() && s.error.is_none());
        assert_eq!(s.pending.as_ref().unwrap().id, new);
        assert!(s.pending.as_ref().unwrap().detected.is_none());
    }

    #[test]
    fn worker_crash_ends_the_request_with_an_error() {
        let mut s = PageState::default();
        s.apply(Response::Ready);
        s.begin(&["big.pth".into()]);
        s.worker_failed("RuntimeError: unreachable");
        assert!(!s.worker_ready);
        assert!(s.pending.is_none());
        assert_eq!(
            s.error.as_deref(),
            Some("big.pth: the reader stopped: RuntimeError: unreachable")
        );
        // the worker client's own message already names the file: kept as it is
        s.begin(&["evil.pth".into()]);
        let msg = "evil.pth: the reader failed on this file and was restarted (RuntimeError: unreachable)";
        s.worker_failed(msg);
        assert_eq!(s.error.as_deref(), Some(msg));
    }

    #[test]
    fn undecodable_message_error_ends_pending() {
        let mut s = PageState::default();
        s.begin(&["a".into()]);
        s.apply(Response::Error(ErrorReply::new(
            None,
            ErrorKind::Request,
            "worker: bad request",
        )));
        assert!(s.pending.is_none());
        assert_eq!(s.error.as_deref(), Some("worker: bad request"));
    }
}

/// What the status line says after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// An operation, undo or redo took effect; a download was written.
    Done,
    /// The worker refused it (nothing changed); the text says why.
    Refused,
}

impl StatusKind {
    pub fn name(self) -> &'static str {
        match self {
            StatusKind::Done => "done",
            StatusKind::Refused => "refused",
        }
    }
}

/// The status line for a journal answer, from the journal before it (`prev`): what was
/// applied, undone or redone, or the refusal; `None` for a plain listing.
pub fn journal_status(
    prev: Option<&crate::worker::protocol::JournalReply>,
    j: &crate::worker::protocol::JournalReply,
) -> Option<(StatusKind, String)> {
    if let Some(e) = &j.error {
        return Some((StatusKind::Refused, format!("Not applied: {e}")));
    }
    if !j.applied {
        return None;
    }
    let (ops, redo) = prev.map_or((0, 0), |p| (p.ops.len(), p.redo.len()));
    let text = if j.ops.len() < ops {
        format!("Undone: {}", j.redo.first().cloned().unwrap_or_default())
    } else if j.redo.len() < redo && j.ops.len() == ops + 1 {
        format!("Redone: {}", j.ops.last().cloned().unwrap_or_default())
    } else {
        format!("Applied: {}", j.ops.last().cloned().unwrap_or_default())
    };
    Some((StatusKind::Done, text))
}

#[cfg(test)]
mod status_tests {
    use super::*;
    use crate::worker::protocol::JournalReply;

    fn j(ops: &[&str], redo: &[&str], applied: bool, error: Option<&str>) -> JournalReply {
        JournalReply {
            ops: ops.iter().map(|s| s.to_string()).collect(),
            redo: redo.iter().map(|s| s.to_string()).collect(),
            applied,
            error: error.map(String::from),
            ..JournalReply::default()
        }
    }

    #[test]
    fn the_status_line_says_what_happened() {
        let a = j(&["strip"], &[], true, None);
        assert_eq!(
            journal_status(None, &a),
            Some((StatusKind::Done, "Applied: strip".into()))
        );
        let b = j(&["strip", "cast"], &[], true, None);
        assert_eq!(journal_status(Some(&a), &b).unwrap().1, "Applied: cast");
        let undone = j(&["strip"], &["cast"], true, None);
        assert_eq!(journal_status(Some(&b), &undone).unwrap().1, "Undone: cast");
        assert_eq!(journal_status(Some(&undone), &b).unwrap().1, "Redone: cast");
        let refused = j(&["strip"], &["cast"], false, Some("x: it changes nothing"));
        assert_eq!(
            journal_status(Some(&undone), &refused),
            Some((
                StatusKind::Refused,
                "Not applied: x: it changes nothing".into()
            ))
        );
        // a listing says nothing
        assert_eq!(
            journal_status(Some(&b), &j(&["strip", "cast"], &[], false, None)),
            None
        );
    }
}
