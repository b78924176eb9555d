//! The page's handle on the reader worker (`worker_loader.js`, built by Trunk from the `worker`
//! bin).
//!
//! Contract: requests sent before the worker posted `"ready"` are queued and sent after it.
//! Every decoded answer goes to `on_response`. If the worker fails (load error, a panic in its
//! wasm), `on_failure` is told, the worker is terminated and a fresh one is started, so the page
//! keeps working.

use crate::worker::blob::js_error_text;
use crate::worker::protocol::Response;
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
            })),
        };
        client.start();
        client
    }

    /// Post a request (queued until the worker is ready).
    pub fn send(&self, msg: JsValue) {
        if self.inner.borrow().worker.is_none() {
            // the last worker failed to start: try again for this request
            self.start();
        }
        let mut inner = self.inner.borrow_mut();
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
            let resp = match serde_wasm_bindgen::from_value::<Response>(ev.data()) {
                Ok(r) => r,
                Err(e) => {
                    let f = inner.borrow().on_failure.clone();
                    f(format!("undecodable answer from the reader: {e}"));
                    return;
                }
            };
            if resp == Response::Ready {
                let (worker, queued) = {
                    let mut i = inner.borrow_mut();
                    i.ready = true;
                    (i.worker.clone(), std::mem::take(&mut i.queue))
                };
                if let Some(w) = worker {
                    for m in queued {
                        let _ = w.post_message(&m);
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
            let (f, was_ready) = {
                let i = inner.borrow();
                (i.on_failure.clone(), i.ready)
            };
            f(message);
            let client = WorkerClient { inner };
            client.stop();
            // A worker that had worked crashed: start a fresh one for the next file. One that
            // never started is retried by the next `send`, not in a loop.
            if was_ready {
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
