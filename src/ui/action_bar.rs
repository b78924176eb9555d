//! The action bar: always in view (sticky at the bottom of the window) while a file is open —
//! Undo, Redo, "N changes", the download format and Download — and the status line that says
//! what the last action did (applied, undone, redone, refused with the reason, downloaded).
//!
//! Contract: the bar talks to the worker through [`super::hub`]; the journal it shows is the
//! page's one copy in [`PageCheckpoint::journal`] (the app keeps it and the [`EditBar`] status up
//! to date from every journal answer). Ctrl+Z undoes and Ctrl+Shift+Z / Ctrl+Y redoes, except
//! while the focus is in a text field. Download asks the worker for a Blob (file slices + new
//! bytes), then clicks an `<a download>` with an object URL from the main thread and revokes it
//! later. Hooks (`data-testid`): `action-bar`, `undo`, `redo`, `change-count` (`data-count`),
//! `download-format`, `download`, `edit-progress`, `status` (`data-kind` `done` / `refused`),
//! `export-report` (data attributes with the numbers).

use super::context::PageCheckpoint;
use super::hub;
use super::model::StatusKind;
use super::widgets::FormatSelect;
use crate::display::human_bytes;
use crate::worker::protocol::{ErrorKind, OutFormat, Request, Response};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

/// The edit state the bar shares with the Edit tab.
#[derive(Clone, Copy)]
pub struct EditBar {
    /// The download format (the Edit tab lists what it would drop).
    pub format: RwSignal<OutFormat>,
    /// The status line: what the last action did.
    pub status: RwSignal<Option<(StatusKind, String)>>,
    /// The last refusal, shown next to the forms until the next action or keystroke.
    pub error: RwSignal<Option<String>>,
}

impl EditBar {
    pub fn new() -> Self {
        EditBar {
            format: RwSignal::new(OutFormat::Torch),
            status: RwSignal::new(None),
            error: RwSignal::new(None),
        }
    }
}

impl Default for EditBar {
    fn default() -> Self {
        Self::new()
    }
}

/// What the last export produced (the Blob itself went to the download).
#[derive(Debug, Clone, PartialEq)]
struct Exported {
    name: String,
    size: u64,
    tensors: u64,
    dropped: Vec<String>,
    aliases: Vec<(String, String)>,
    overflow: Vec<(String, u64)>,
    copied: u64,
    new: u64,
    millis: f64,
    mem_before: u64,
    mem_after: u64,
}

/// Hand `blob` to the browser as a download called `name` (from the main thread).
pub fn save_blob(blob: &JsValue, name: &str) -> Result<(), String> {
    let err = |e: JsValue| crate::worker::blob::js_error_text(&e);
    let blob: web_sys::Blob = blob
        .clone()
        .dyn_into()
        .map_err(|_| "the export is not a Blob")?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(err)?;
    let window = web_sys::window().ok_or("no window")?;
    let doc = window.document().ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = doc
        .create_element("a")
        .map_err(err)?
        .dyn_into()
        .map_err(|_| "cannot make a link")?;
    a.set_href(&url);
    a.set_download(name);
    a.set_attribute("hidden", "").map_err(err)?;
    let body = doc.body().ok_or("no body")?;
    body.append_child(&a).map_err(err)?;
    a.click();
    a.remove();
    // the download has taken its reference by then; give the URL back later
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    window
        .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 120_000)
        .map_err(err)?;
    Ok(())
}

fn pct(done: u64, total: u64) -> String {
    if total == 0 {
        "…".into()
    } else {
        format!("{:.0}%", 100.0 * done as f64 / total as f64)
    }
}

/// True when a key press lands in a text field (its own Ctrl+Z belongs to the field).
fn typing(ev: &web_sys::KeyboardEvent) -> bool {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|e| {
            matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || e.get_attribute("contenteditable").is_some()
        })
}

/// Send undo / redo.
fn undo() {
    let _ = hub::send(&Request::Undo { id: hub::next_id() });
}
fn redo() {
    let _ = hub::send(&Request::Redo { id: hub::next_id() });
}

/// The bar.
#[component]
pub fn ActionBar() -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    let bar = expect_context::<EditBar>();
    let export_id = StoredValue::new(0u32);
    let progress = RwSignal::new(None::<(u64, u64)>);
    let busy = RwSignal::new(false);
    let exported = RwSignal::new(None::<Exported>);
    let format = bar.format;

    let handle = hub::listen(move |r| match r {
        Response::Summary(_) => exported.set(None),
        Response::ExportProgress(p) if export_id.get_value() == p.id => {
            progress.set(Some((p.done, p.total)))
        }
        Response::Exported(e) if export_id.get_value() == e.id => {
            busy.set(false);
            progress.set(None);
            match save_blob(&e.blob.0, &e.name) {
                Ok(()) => bar.status.set(Some((
                    StatusKind::Done,
                    format!("Downloaded {} ({})", e.name, human_bytes(e.size)),
                ))),
                Err(msg) => bar.status.set(Some((
                    StatusKind::Refused,
                    format!("Download failed: {msg}"),
                ))),
            }
            exported.set(Some(Exported {
                name: e.name.clone(),
                size: e.size,
                tensors: e.tensors,
                dropped: e.dropped.clone(),
                aliases: e.aliases.clone(),
                overflow: e.overflow.clone(),
                copied: e.copied_bytes,
                new: e.new_bytes,
                millis: e.millis,
                mem_before: e.wasm_memory_before,
                mem_after: e.wasm_memory_after,
            }));
        }
        Response::Error(e) if e.id == Some(export_id.get_value()) => {
            busy.set(false);
            progress.set(None);
            if e.kind != ErrorKind::NoFile {
                bar.status.set(Some((
                    StatusKind::Refused,
                    format!("Download failed: {}", e.error),
                )));
            }
        }
        _ => {}
    });
    on_cleanup(move || hub::unlisten(handle));

    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if !(ev.ctrl_key() || ev.meta_key()) || typing(&ev) {
            return;
        }
        match ev.key().as_str() {
            "z" | "Z" if ev.shift_key() => {
                ev.prevent_default();
                redo();
            }
            "z" | "Z" => {
                ev.prevent_default();
                undo();
            }
            "y" | "Y" => {
                ev.prevent_default();
                redo();
            }
            _ => {}
        }
    });
    on_cleanup(move || keys.remove());

    let download = move |_| {
        let id = hub::next_id();
        export_id.set_value(id);
        busy.set(true);
        exported.set(None);
        progress.set(Some((0, 0)));
        if let Err(e) = hub::send(&Request::Export {
            id,
            format: format.get_untracked(),
        }) {
            busy.set(false);
            progress.set(None);
            bar.status.set(Some((StatusKind::Refused, e)));
        }
    };
    let changes = Memo::new(move |_| ck.changes());
    let can_undo = Memo::new(move |_| {
        ck.journal
            .with(|j| j.as_ref().is_some_and(|j| !j.ops.is_empty()))
    });
    let can_redo = Memo::new(move |_| {
        ck.journal
            .with(|j| j.as_ref().is_some_and(|j| !j.redo.is_empty()))
    });
    let has_file = Memo::new(move |_| ck.journal.with(|j| j.is_some()));

    view! {
        <div class="action-bar" data-testid="action-bar" role="toolbar" aria-label="Edits and download">
            <button class="button small" data-testid="undo" title="Undo (Ctrl+Z)"
                disabled=move || !can_undo.get() on:click=move |_| undo()>"Undo"</button>
            <button class="button small" data-testid="redo" title="Redo (Ctrl+Shift+Z)"
                disabled=move || !can_redo.get() on:click=move |_| redo()>"Redo"</button>
            <span data-testid="change-count" data-count=move || changes.get().to_string()
                class=move || { if changes.get() > 0 { "change-count has-changes" } else { "change-count" } }>
                {move || match changes.get() {
                    0 => "no changes".to_string(),
                    1 => "1 change".to_string(),
                    n => format!("{n} changes"),
                }}
            </span>
            <span class="status-line" data-testid="status" role="status" aria-live="polite"
                data-kind=move || bar.status.with(|s| s.as_ref().map(|s| s.0.name()).unwrap_or(""))>
                {move || bar.status.get().map(|(_, t)| t)}
            </span>
            <span class="spacer"></span>
            {move || progress.get().map(|(d, t)| view! {
                <span class="progress" data-testid="edit-progress" role="status">
                    <span class="spinner" aria-hidden="true"></span>
                    {format!("Writing… {}", pct(d, t))}
                </span>
            })}
            <FormatSelect format=format testid="download-format" label="Download format"
                torch_label="PyTorch .pth (weights_only=True)" />
            <button class="button primary" data-testid="download"
                disabled=move || busy.get() || !has_file.get()
                on:click=download>
                "Download"
            </button>
            {move || exported.get().map(report_view)}
        </div>
    }
}

fn report_view(e: Exported) -> impl IntoView {
    let mut notes = vec![];
    let mut list = |what: &str, items: Vec<String>| {
        if !items.is_empty() {
            notes.push(format!("{what}: {}", items.join("; ")));
        }
    };
    list("Dropped", e.dropped.clone());
    list(
        "Written once (aliases)",
        e.aliases
            .iter()
            .map(|(a, b)| format!("{a} = {b}"))
            .collect(),
    );
    list(
        "Overflow in the cast (values became ±inf)",
        e.overflow
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect(),
    );
    let title = format!(
        "{} — {} tensors, {} bytes ({} copied from the input file, {} new), {:.0} ms{}",
        e.name,
        e.tensors,
        e.size,
        e.copied,
        e.new,
        e.millis,
        notes.iter().map(|n| format!("\n{n}")).collect::<String>()
    );
    view! {
        <span class="export-report" data-testid="export-report" title=title
            data-name=e.name.clone() data-size=e.size.to_string()
            data-copied=e.copied.to_string() data-new=e.new.to_string()
            data-millis=format!("{:.1}", e.millis)
            data-wasm-before=e.mem_before.to_string() data-wasm-after=e.mem_after.to_string()>
            {format!("{} tensors · {}", e.tensors, human_bytes(e.size))}
            {(!notes.is_empty()).then(|| view! { <span class="muted">{format!(" · {}", notes.join(" · "))}</span> })}
        </span>
    }
}
