//! The worker's entry point: decodes page messages, runs them on a [`Session`], posts answers.
//!
//! Contract: [`start`] installs the message handler, then posts [`Response::Ready`] (the page
//! queues its requests until then). A message that does not decode is answered with an `error`
//! whose `id` is `None`. Each answer is posted as soon as it exists (detection before the index).
//! An `all_stats` run is advanced in slices of about [`SLICE_MS`] ms (whole tensors), each slice
//! scheduled with `setTimeout(0)`, so messages such as `cancel` or `stats` for the selected
//! tensor are handled between slices; inside a large tensor the session still posts `progress`
//! every [`super::session::INNER_PROGRESS_BYTES`].

use super::blob;
use super::perf::mark;
use super::protocol::{
    message_bytes, request_from_message, response_from_message, to_message, ErrorKind, ErrorReply,
    JsFile, Request, Response, TensorSource, WARM_JOURNAL_LIST, WARM_OPEN,
};
use super::session::{NamedSource, Session};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session::new());
    static SCHEDULED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Length of one `all_stats` slice.
pub const SLICE_MS: f64 = 40.0;

fn now() -> f64 {
    js_sys::Date::now()
}

fn post(r: Response) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let done = matches!(r, Response::AllStatsDone { .. });
    post_to(&scope, r);
    if done {
        mark(&format!(
            "w:mem:all-stats-done:{}",
            super::export::wasm_memory()
        ));
    }
}

/// Run the next `all_stats` slice on a later turn of the event loop (once).
fn schedule() {
    if SCHEDULED.with(|s| s.replace(true)) {
        return;
    }
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let cb = Closure::once_into_js(move || {
        SCHEDULED.with(|s| s.set(false));
        let start = now();
        let more = SESSION.with(|s| {
            s.borrow_mut()
                .all_stats_step(&mut || now() - start < SLICE_MS, &mut |r| post(r))
        });
        if more {
            schedule();
        }
    });
    let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), 0);
}

/// The wire shape of an answer ([`super::protocol::to_message`]): a JS array `[BYTES,
/// HANDLE…]`, BYTES the postcard encoding of the [`Response`] (its buffer transferred when
/// posted, not copied), the HANDLEs the JS values it carries (an export's `Blob`). A compact
/// binary decodes several times faster than a JS object per field (an index has tens of
/// thousands of entries, a statistics run as many rows), and the page holds one decoder per
/// message type.
pub fn encode(r: &Response) -> JsValue {
    to_message(r).unwrap_or_else(|e| {
        let err = Response::Error(ErrorReply::new(
            r.id(),
            ErrorKind::Request,
            format!("internal: cannot encode an answer: {e}"),
        ));
        to_message(&err).expect("an error reply always encodes")
    })
}

/// The buffer of an encoded answer to transfer with it, so posting does not copy it.
pub fn transfer_list(v: &JsValue) -> js_sys::Array {
    let list = js_sys::Array::new();
    if let Some(bytes) = message_bytes(v) {
        list.push(&bytes.buffer());
    }
    list
}

/// The postcard variant number of [`Response::Summary`] (the first byte of its encoding).
const SUMMARY_VARIANT: u8 = 2;

/// True for an encoded summary, the answer that carries an index (the page times its
/// decoding).
pub fn carries_index(v: &JsValue) -> bool {
    message_bytes(v).is_some_and(|b| b.length() > 0 && b.get_index(0) == SUMMARY_VARIANT)
}

/// Post an answer to the page (its buffer transferred).
fn post_to(scope: &DedicatedWorkerGlobalScope, r: Response) {
    let v = encode(&r);
    // posting only fails for uncloneable values, which `encode` never makes
    let _ = scope.post_message_with_transfer(&v, &transfer_list(&v));
}

/// The files of a request as sources behind the block cache, and as blobs by name; an error
/// answer for request `id` when one cannot be read.
type Sources = (Vec<NamedSource>, Vec<(String, web_sys::Blob)>);
fn sources(id: u32, files: Vec<JsFile>) -> Result<Sources, Box<Response>> {
    let mut named = Vec::with_capacity(files.len());
    let mut blobs = Vec::with_capacity(files.len());
    for JsFile(file) in files {
        let name = file.name();
        blobs.push((name.clone(), web_sys::Blob::from(file.clone())));
        match blob::opened(file.into()) {
            Ok(src) => named.push(NamedSource {
                name,
                source: Box::new(src),
            }),
            Err(e) => {
                return Err(Box::new(Response::Error(ErrorReply::new(
                    Some(id),
                    ErrorKind::File,
                    format!("{name}: {}", e.0),
                ))))
            }
        }
    }
    Ok((named, blobs))
}

/// Decode what [`encode`] made (on the page).
pub fn decode(v: JsValue) -> Result<Response, String> {
    response_from_message(&v)
}

/// Handle one message from the page (a [`Request`] as [`super::protocol::to_message`] makes
/// it) on `session`, answering through `reply`.
pub fn handle(session: &mut Session, data: JsValue, reply: &mut dyn FnMut(Response)) {
    let req: Request<JsFile> = match request_from_message(&data) {
        Ok(r) => r,
        Err(e) => {
            reply(Response::Error(ErrorReply::new(
                None,
                ErrorKind::Request,
                format!("worker: bad request: {e}"),
            )));
            return;
        }
    };
    match req {
        Request::Open { id, files } => {
            let (named, blobs) = match sources(id, files) {
                Ok(x) => x,
                Err(e) => return reply(*e),
            };
            let reads = blob::read_counts();
            session.open(id, named, reply);
            let after = blob::read_counts();
            mark(&format!(
                "w:reads:{}:{}",
                after.0 - reads.0,
                after.1 - reads.1
            ));
            // Only a file that opened becomes the editor's input (a failing one leaves the
            // previous checkpoint open). Export slices refer to `Checkpoint::files` by index:
            // keep the blobs in that order (shards are not in drop order).
            if session.opened().is_some_and(|o| o.id == id) {
                let ordered: Vec<web_sys::Blob> = session
                    .opened()
                    .map(|o| {
                        o.files
                            .iter()
                            .filter_map(|f| {
                                blobs
                                    .iter()
                                    .find(|(n, _)| *n == f.name)
                                    .map(|(_, b)| b.clone())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                session.blobs = vec![ordered];
            }
        }
        Request::Stats { id, tensor, bins } => {
            session.stats_of(id, TensorSource::of(tensor), bins, reply)
        }
        Request::Values { id, tensor, n } => {
            session.values_of(id, TensorSource::of(tensor), n, reply)
        }
        Request::Heatmap { id, tensor, w, h } => {
            session.heatmap_of(id, TensorSource::of(tensor), (w, h), reply)
        }
        Request::AllStats { id, bins } => session.all_stats_begin(id, bins, reply),
        Request::Cancel { id } => session.cancel(id, reply),
        Request::StatsOf { id, source, bins } => session.stats_of(id, source, bins, reply),
        Request::ValuesOf { id, source, n } => session.values_of(id, source, n, reply),
        Request::HeatmapOf { id, source, w, h } => session.heatmap_of(id, source, (w, h), reply),
        Request::StatsPart {
            id,
            open_id,
            files,
            bins,
            tensors,
        } => {
            if session.opened().map(|o| o.id) != Some(open_id) {
                let named = match sources(id, files) {
                    Ok(x) => x.0,
                    Err(e) => return reply(*e),
                };
                // quietly: only a failure is an answer (with this request's id)
                session.open(open_id, named, &mut |r| {
                    if let Response::Error(mut e) = r {
                        e.id = Some(id);
                        reply(Response::Error(e));
                    }
                });
            }
            if session.opened().map(|o| o.id) == Some(open_id) {
                session.all_stats_of(id, bins, Some(&tensors), reply);
            }
        }
        Request::Window { id, tensor, window } => {
            session.window_of(id, TensorSource::of(tensor), &window, reply)
        }
        Request::WindowOf { id, source, window } => session.window_of(id, source, &window, reply),
        Request::StatsReport { id, bins } => session.stats_report(id, bins, reply),
        Request::Trend(t) => super::trend::handle_js(t, reply), // the run view's requests
        Request::Merge(m) => super::merge::handle_js(m, reply), // the Merge tab's requests
        Request::Search { id, pattern, paths } => {
            reply(Response::Search(session.search(id, &pattern, paths)))
        }
        other => super::export::handle(session, other, reply),
    }
}

/// The worker's `main`: install the message handler and post [`Response::Ready`].
pub fn start() {
    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let post_scope = scope.clone();
    let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        mark("w:recv");
        let post = &mut |r: Response| {
            let kind = match &r {
                Response::Detected(_) => "detected",
                Response::Summary(_) => "summary",
                Response::AllStatsDone { .. } => "all-stats-done",
                _ => "",
            };
            if !kind.is_empty() {
                mark(&format!("w:encode:{kind}"));
            }
            post_to(&post_scope, r);
            if !kind.is_empty() {
                mark(&format!("w:posted:{kind}"));
                mark(&format!("w:mem:{kind}:{}", super::export::wasm_memory()));
            }
        };
        let busy = SESSION.with(|s| {
            let mut s = s.borrow_mut();
            handle(&mut s, ev.data(), post);
            s.busy()
        });
        if busy {
            schedule();
        }
    });
    scope.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    // the handler lives as long as the worker
    onmessage.forget();
    if let Some(summary) = warm_up() {
        post_to(&scope, summary);
    }
    let _ = scope.post_message(&encode(&Response::Ready));
}

/// A tiny torch checkpoint (made by scripts/make_warm.py), opened once by [`warm_up`].
const WARM: &[u8] = include_bytes!("../../assets/warm.pth");

/// Open [`WARM`] in a throw-away session before the worker says it is ready, the way the page
/// opens a picked file: wasm functions (and the JS glue's) are compiled on their first call, so
/// this moves the compilation of the whole open path — the request's decoding, the `File`
/// reader and its block cache, detection, zip directory, unpickling, the index, the editor's
/// tree, the answers' encoding — out of the user's first open. The checkpoint goes in as a
/// `File` made here from its bytes, through [`handle`] with the same messages the page sends
/// (`open`, then `journal_list`: [`super::protocol::WARM_OPEN`]). Its summary (id
/// [`super::protocol::WARM_ID`]) is returned for the page, which
/// does the same with its side (decoding, tree, rendering); nothing else is posted or kept
/// (`blob::read_counts` counts its reads: its users take differences).
pub fn warm_up() -> Option<Response> {
    let file = {
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(WARM));
        web_sys::File::new_with_u8_array_sequence(&parts, "warm.pth").ok()?
    };
    let mut session = Session::new();
    let mut summary = None;
    let reply = &mut |r: Response| match r {
        Response::Summary(_) => summary = Some(r),
        r => {
            let _ = encode(&r);
        }
    };
    // the page's messages: [BYTES, File] and [BYTES]
    let open = js_sys::Array::of2(&js_sys::Uint8Array::from(&WARM_OPEN[..]), &file);
    handle(&mut session, open.into(), reply);
    let list = js_sys::Array::of1(&js_sys::Uint8Array::from(&WARM_JOURNAL_LIST[..]));
    handle(&mut session, list.into(), reply);
    summary
}
