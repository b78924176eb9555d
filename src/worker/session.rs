//! The worker's request handling, over any [`Source`] (so it runs and is tested natively; the
//! worker feeds it browser `File`s wrapped as sources).
//!
//! Contract: [`Session::open`] answers through `reply` exactly as [`super::protocol`] describes:
//! `Detected` then `Summary`/`Error`, or a lone `Error` when the first bytes cannot be read.
//! Detection uses the real rules ([`crate::format::detect`]) on the first
//! [`crate::format::HEAD_LEN`] bytes, never the file name. The session keeps the opened
//! checkpoint and its sources for later requests (tensor statistics, export) and drops the
//! previous ones when a new file is opened.

use super::protocol::{Detected, ErrorReply, RequestId, Response, Summary};
use crate::format::{self, Checkpoint, FormatError, Source};

/// One file of a request: its name and its bytes.
pub struct NamedSource {
    pub name: String,
    pub source: Box<dyn Source>,
}

/// The checkpoint currently open in the worker.
pub struct Opened {
    /// The request that opened it.
    pub id: RequestId,
    /// The files, in request order (`files[0]` is the one opened).
    pub files: Vec<NamedSource>,
    pub checkpoint: Checkpoint,
}

/// The worker's state between requests.
#[derive(Default)]
pub struct Session {
    opened: Option<Opened>,
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// The checkpoint opened by the last successful `open`, if any.
    pub fn opened(&self) -> Option<&Opened> {
        self.opened.as_ref()
    }

    /// Handle `open {id, files}`.
    pub fn open(
        &mut self,
        id: RequestId,
        files: Vec<NamedSource>,
        reply: &mut dyn FnMut(Response),
    ) {
        // A new open replaces whatever was open, also when it fails: the page moved on.
        self.opened = None;
        let Some(first) = files.first() else {
            reply(Response::Error(ErrorReply {
                id: Some(id),
                error: "no file was given".into(),
                unsupported: false,
            }));
            return;
        };
        let name = first.name.clone();
        let src: &dyn Source = &*first.source;
        let fmt = match format::detect_source(src) {
            Ok(f) => f,
            Err(e) => {
                let err = FormatError::at("first bytes", e.0).in_file(&name);
                reply(Response::Error(ErrorReply::from_format(id, &err)));
                return;
            }
        };
        reply(Response::Detected(Detected {
            id,
            name: name.clone(),
            size: src.len(),
            format: fmt.name().to_string(),
            format_description: fmt.describe().to_string(),
            files: files.len() as u32,
        }));
        match format::open(src, &name) {
            Ok(checkpoint) => {
                reply(Response::Summary(Summary::of(id, &checkpoint)));
                self.opened = Some(Opened {
                    id,
                    files,
                    checkpoint,
                });
            }
            Err(e) => reply(Response::Error(ErrorReply::from_format(id, &e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{MemSource, SourceError};

    struct Broken;
    impl Source for Broken {
        fn len(&self) -> u64 {
            4096
        }
        fn read_at(&self, _: u64, _: &mut [u8]) -> Result<(), SourceError> {
            Err(SourceError(
                "NotReadableError: the file changed on disk".into(),
            ))
        }
    }

    fn run(files: Vec<NamedSource>) -> (Session, Vec<Response>) {
        let mut s = Session::new();
        let mut out = vec![];
        s.open(5, files, &mut |r| out.push(r));
        (s, out)
    }

    fn named(name: &str, bytes: Vec<u8>) -> NamedSource {
        NamedSource {
            name: name.into(),
            source: Box::new(MemSource(bytes)),
        }
    }

    #[test]
    fn unknown_bytes_are_detected_then_refused() {
        // named .pth on purpose: the extension must not matter
        let (s, out) = run(vec![named(
            "random.pth",
            b"\x13\x37 not a checkpoint at all".to_vec(),
        )]);
        assert_eq!(out.len(), 2, "{out:?}");
        let Response::Detected(d) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!((d.id, d.name.as_str(), d.size), (5, "random.pth", 26));
        assert_eq!(d.format, "unknown");
        let Response::Error(e) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(e.id, Some(5));
        assert!(!e.unsupported);
        assert!(e.error.starts_with("random.pth: "), "{}", e.error);
        assert!(s.opened().is_none());
    }

    #[test]
    fn detection_ignores_the_name() {
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        let (_, out) = run(vec![named("weights.txt", st)]);
        let Response::Detected(d) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(d.format, "safetensors");
        assert_eq!(d.size, 10);
        assert_eq!(d.files, 1);
        // then exactly one final answer for the same request
        assert_eq!(out.len(), 2);
        assert!(
            matches!(&out[1], Response::Summary(s) if s.id == 5)
                || matches!(&out[1], Response::Error(e) if e.id == Some(5))
        );
    }

    #[test]
    fn unreadable_file_gives_one_error_naming_file_and_place() {
        let (_, out) = run(vec![NamedSource {
            name: "gone.pth".into(),
            source: Box::new(Broken),
        }]);
        assert_eq!(
            out,
            vec![Response::Error(ErrorReply {
                id: Some(5),
                error: "gone.pth: first bytes: NotReadableError: the file changed on disk".into(),
                unsupported: false,
            })]
        );
    }

    #[test]
    fn empty_request_is_an_error() {
        let (_, out) = run(vec![]);
        assert!(matches!(&out[..], [Response::Error(e)] if e.id == Some(5) && !e.unsupported));
    }

    #[test]
    fn empty_file_is_unknown() {
        let (_, out) = run(vec![named("empty.pth", vec![])]);
        let Response::Detected(d) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!((d.size, d.format.as_str()), (0, "unknown"));
        assert!(matches!(&out[1], Response::Error(e) if !e.unsupported));
    }
}
