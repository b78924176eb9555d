//! Export of the whole file's statistics as CSV or JSON: the numbers `weightscope stats --json`
//! prints (64 histogram bins, as the CLI's default), computed by the reader worker (tensors
//! already computed come from its cache) and downloaded as `<file>.stats.csv` /
//! `<file>.stats.json`.
//!
//! Contract: hooks `stats-export-csv` / `stats-export-json` (buttons), `stats-export-status`
//! (progress or the error, next to the buttons).

use super::context::PageCheckpoint;
use crate::worker::protocol::{Request, RequestId, Response};
use leptos::prelude::*;

/// Histogram bins of the export (the CLI's default `--bins`).
const BINS: u32 = 64;

/// Save `text` as a download named `name` (a Blob of type `mime`).
pub fn download(text: &str, name: &str, mime: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts)
        .map_err(|e| crate::worker::blob::js_error_text(&e))?;
    super::edit_panel::save_blob(&blob.into(), name)
}

/// The file name without its last extension.
fn stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// The two export buttons and their status.
#[component]
pub fn StatsExport() -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    // (request, csv?) in flight
    let pending = StoredValue::new(None::<(RequestId, bool)>);
    let status = RwSignal::new(None::<String>);
    ck.listen(move |r| {
        let Some((id, csv)) = pending.get_value() else {
            return;
        };
        match r {
            Response::Progress { id: i, done, total } if *i == id && *total > 0 => {
                status.set(Some(format!(
                    "statistics {:.0}%",
                    100.0 * *done as f64 / *total as f64
                )))
            }
            Response::StatsReport(x) if x.id == id => {
                pending.set_value(None);
                let name = ck
                    .opened
                    .with_untracked(|f| f.as_ref().map(|f| stem(&f.name).to_string()));
                let name = name.unwrap_or_else(|| "checkpoint".into());
                let res = if csv {
                    download(&x.csv, &format!("{name}.stats.csv"), "text/csv")
                } else {
                    download(&x.json, &format!("{name}.stats.json"), "application/json")
                };
                status.set(res.err().map(|e| format!("download failed: {e}")));
            }
            Response::Error(e) if e.id == Some(id) => {
                pending.set_value(None);
                status.set(Some(format!("statistics failed: {}", e.error)));
            }
            _ => {}
        }
    });
    let start = move |csv: bool| {
        let id = ck.new_id();
        pending.set_value(Some((id, csv)));
        status.set(Some("computing statistics…".into()));
        ck.send(&Request::StatsReport { id, bins: BINS });
    };
    view! {
        <span class="stats-export">
            <span class="muted small">"Statistics:"</span>
            <button class="mini" data-testid="stats-export-csv" title="Download every tensor's statistics as CSV"
                on:click=move |_| start(true)>"CSV"</button>
            <button class="mini" data-testid="stats-export-json" title="Download every tensor's statistics as JSON (as weightscope stats --json)"
                on:click=move |_| start(false)>"JSON"</button>
            <span class="muted small" data-testid="stats-export-status" role="status">{move || status.get()}</span>
        </span>
    }
}
