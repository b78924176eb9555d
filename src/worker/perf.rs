//! User-timing marks (`performance.mark`) on the page and in the worker, read by
//! `bench/page_bench.mjs` to break the time of an open down into its steps.
//!
//! Contract: [`mark`] never fails and costs about a microsecond; every name starts with `ws:`.
//! It works in a window and in a worker (both have a global `performance`).

use wasm_bindgen::JsCast;

/// Add the mark `ws:{name}` to the current global's performance timeline.
pub fn mark(name: &str) {
    let Ok(p) = js_sys::Reflect::get(&js_sys::global(), &"performance".into()) else {
        return;
    };
    if let Some(p) = p.dyn_ref::<web_sys::Performance>() {
        let _ = p.mark(&format!("ws:{name}"));
    }
}
