//! The page's handle on the reader worker (`worker_loader.js`, built by Trunk from the `worker`
//! bin).
//!
//! Contract: requests sent before the worker posted `Response::Ready` are queued and sent after it.
//! Every decoded answer goes to `on_response`. If the worker fails (load error, a trap in its
//! wasm), `on_failure` is told — naming the file being opened when an `open` was in flight —,
//! the worker is terminated and a fresh one is started, so the page keeps working. The fresh
//! worker gets the checkpoint that was open back: the client keeps the last `open` that
//! succeeded and the edit requests sent since (`edit`, `undo`, `redo`, `open_b`) and replays
//! them to the new worker before anything else, then the last `search` that sent the tree's
//! paths (the worker keeps them); the answers to replayed opens and edits are dropped (the page
//! already has them). So a file that crashes the reader leaves the previous
//! checkpoint, its journal and its compare file open.

use crate::format::fastmap::KeySet;
use crate::worker::blob::js_error_text;
use crate::worker::perf::mark;
use crate::worker::protocol::{to_message, JsFile, Request, RequestId, Response};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{ErrorEvent, MessageEvent, Worker};

/// The worker script Trunk writes (`data-loader-shim`), relative to the page.
pub const WORKER_URL: &str = "./worker_loader.js";

type OnResponse = Rc<dyn Fn(Response)>;
type OnFailure = Rc<dyn Fn(String)>;

struct Inner {
    worker: Option<Worker>,
    ready: bool,
    queue: Vec<JsValue>,
    on_response: OnResponse,
    on_failure: OnFailure,
    /// The `open` in flight: its id, message and first file's name.
    opening: Option<(RequestId, JsValue, String)>,
    /// The last `open` that succeeded, then the edit requests sent since (id, message):
    /// replayed to a fresh worker after a crash.
    replay: Vec<(RequestId, JsValue)>,
    /// The last `search` that sent the tree's paths (the worker keeps them for later searches):
    /// replayed after `replay`; its answer is not dropped.
    search_paths: Option<(RequestId, JsValue)>,
    /// Ids of replayed requests whose answers are dropped.
    replayed: KeySet<RequestId>,
}

/// A running worker with a queue for the time before its handshake.
#[derive(Clone)]
pub struct WorkerClient {
    inner: Rc<RefCell<Inner>>,
}

impl WorkerClient {
    /// Start the worker.
    pub fn spawn(
        on_response: impl Fn(Response) + 'static,
        on_failure: impl Fn(String) + 'static,
    ) -> Self {
        let client = WorkerClient {
            inner: Rc::new(RefCell::new(Inner {
                worker: None,
                ready: false,
                queue: Vec::new(),
                on_response: Rc::new(on_response),
                on_failure: Rc::new(on_failure),
                opening: None,
                replay: Vec::new(),
                search_paths: None,
                replayed: KeySet::new(),
            })),
        };
        client.start();
        client
    }

    /// Post a request (queued until the worker is ready); an error only when it cannot be
    /// encoded.
    pub fn send(&self, req: &Request<JsFile>) -> Result<(), String> {
        let msg = to_message(req).map_err(|e| format!("cannot encode the request: {e}"))?;
        if self.inner.borrow().worker.is_none() {
            // the last worker failed to start: try again for this request
            self.start();
        }
        let mut inner = self.inner.borrow_mut();
        match req {
            Request::Open { id, files } => {
                let name = files
                    .first()
                    .map_or_else(|| "the file".into(), |f| f.0.name());
                inner.opening = Some((*id, msg.clone(), name));
            }
            // edits of the open checkpoint, replayed after a crash
            Request::Edit { id, .. }
            | Request::Undo { id }
            | Request::Redo { id }
            | Request::OpenB { id, .. }
                if !inner.replay.is_empty() =>
            {
                inner.replay.push((*id, msg.clone()));
            }
            Request::Search {
                id, paths: Some(_), ..
            } => inner.search_paths = Some((*id, msg.clone())),
            _ => {}
        }
        match (inner.worker.clone(), inner.ready) {
            (Some(w), true) => {
                let f = inner.on_failure.clone();
                drop(inner);
                if let Err(e) = w.post_message(&msg) {
                    f(js_error_text(&e));
                }
            }
            (Some(_), false) => inner.queue.push(msg),
            // the worker could not be created; `on_failure` has said so
            (None, _) => {}
        }
        Ok(())
    }

    fn start(&self) {
        let worker = match Worker::new(WORKER_URL) {
            Ok(w) => w,
            Err(e) => {
                let f = self.inner.borrow().on_failure.clone();
                f(js_error_text(&e));
                return;
            }
        };
        let weak = Rc::downgrade(&self.inner);
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(inner) = weak.upgrade() else { return };
            if crate::worker::service::carries_index(&ev.data()) {
                // time the index's decoding (the benchmark's marks)
                mark("p:recv");
            }
            let resp = match crate::worker::service::decode(ev.data()) {
                Ok(r) => {
                    if matches!(r, Response::Summary(_)) {
                        mark("p:decoded:summary");
                    }
                    r
                }
                Err(e) => {
                    let f = inner.borrow().on_failure.clone();
                    f(format!("undecodable answer from the reader: {e}"));
                    return;
                }
            };
            if let Some(id) = resp.id() {
                let mut i = inner.borrow_mut();
                if i.replayed.contains(&id) {
                    // the answer to a replayed request: the page has it already
                    return;
                }
                match (&resp, i.opening.as_ref()) {
                    (Response::Summary(s), Some((o, msg, _))) if s.id == *o => {
                        i.replay = vec![(*o, msg.clone())];
                        i.opening = None;
                    }
                    (Response::Error(e), Some((o, _, _))) if e.id == Some(*o) => {
                        i.opening = None;
                    }
                    _ => {}
                }
            }
            if resp == Response::Ready {
                let (worker, queued, replay) = {
                    let mut i = inner.borrow_mut();
                    i.ready = true;
                    // a replayed search's answer goes on to the page, which applies it only while
                    // it still waits for that search (it may have been queued when the worker died)
                    i.replayed = i.replay.iter().map(|m| m.0).collect();
                    let replay: Vec<_> = i.replay.iter().chain(&i.search_paths).cloned().collect();
                    (i.worker.clone(), std::mem::take(&mut i.queue), replay)
                };
                if let Some(w) = worker {
                    for m in replay.iter().map(|m| &m.1).chain(&queued) {
                        let _ = w.post_message(m);
                    }
                }
            }
            let f = inner.borrow().on_response.clone();
            f(resp);
        });
        let weak = Rc::downgrade(&self.inner);
        let onerror = Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| {
            ev.prevent_default();
            let Some(inner) = weak.upgrade() else { return };
            let message = match ev.message() {
                m if m.is_empty() => "the worker script failed to load".to_string(),
                m => m,
            };
            let (f, was_ready, opening) = {
                let mut i = inner.borrow_mut();
                (i.on_failure.clone(), i.ready, i.opening.take())
            };
            f(crash_message(&message, opening.map(|o| o.2), was_ready));
            // the owner may have stopped this client in `on_failure` (a statistics pool does)
            let stopped = inner.borrow().worker.is_none();
            let client = WorkerClient { inner };
            client.stop();
            // A worker that had worked crashed: start a fresh one for the next file. One that
            // never started is retried by the next `send`, not in a loop.
            if was_ready && !stopped {
                client.start();
            }
        });
        worker.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        worker.set_onerror(Some(onerror.as_ref().unchecked_ref()));
        // Each worker's two handlers live for the page's lifetime; restarts are rare (crashes).
        onmessage.forget();
        onerror.forget();
        let mut inner = self.inner.borrow_mut();
        inner.worker = Some(worker);
        inner.ready = false;
    }

    /// Terminate the current worker, dropping queued requests.
    pub fn stop(&self) {
        let mut inner = self.inner.borrow_mut();
        if let Some(w) = inner.worker.take() {
            w.set_onmessage(None);
            w.set_onerror(None);
            w.terminate();
        }
        inner.ready = false;
        inner.queue.clear();
    }

    /// Terminate the current worker and start a new one (gives its memory back).
    pub fn restart(&self) {
        self.stop();
        self.start();
    }
}

/// What the page says when the worker died: which file it was reading, and that the reader was
/// restarted with the previous checkpoint (a wasm trap — `RuntimeError: unreachable`, a stack
/// overflow — says nothing useful to a user on its own).
fn crash_message(js: &str, file: Option<String>, was_ready: bool) -> String {
    if !was_ready {
        return js.to_string();
    }
    let js = js.trim_start_matches("Uncaught ");
    match file {
        Some(f) => format!(
            "{f}: the reader failed on this file and was restarted ({js}); the file may be \
             damaged or crafted. Whatever was open before stays open."
        ),
        None => format!("the reader failed and was restarted ({js}); please try again"),
    }
}
