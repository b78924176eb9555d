//! The page: a drop zone covering the window, a file picker, and what the worker found.
//!
//! Contract: a dropped or picked set of files is sent to the worker as one `open` request; the
//! components only render [`PageState`] signals. Test hooks (`data-testid`, stable):
//! `drop-zone` (its `data-worker` is `ready` once the reader answered the handshake),
//! `file-input`, `progress`, `error`, `file-summary` (with `file-name`, `file-size`,
//! `file-format`), `tensor-count`, `param-count`, `safety`, `details-note`.

use super::model::{group_digits, human_bytes, human_count, Details, FileCard, PageState};
use super::worker_client::WorkerClient;
use crate::worker::protocol::{ErrorReply, JsFile, Request, Response, Summary};
use leptos::prelude::*;
use web_sys::{DragEvent, File, FileList, HtmlInputElement};

/// Mount the app on `<body>`.
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

fn files_of(list: Option<FileList>) -> Vec<File> {
    let Some(list) = list else { return vec![] };
    (0..list.length()).filter_map(|i| list.item(i)).collect()
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let state = RwSignal::new(PageState::default());
    let client = StoredValue::new_local(WorkerClient::spawn(
        move |r| {
            crate::ui::edit_link::dispatch(&r); // edit & compare panels (issues 7, 8)
            state.update(|s| s.apply(r))
        },
        move |msg| state.update(|s| s.worker_failed(&msg)),
    ));
    crate::ui::edit_link::connect(move |v| client.with_value(|c| c.send(v))); // issues 7, 8

    let open = move |files: Vec<File>| {
        if files.is_empty() {
            return;
        }
        let names: Vec<String> = files.iter().map(|f| f.name()).collect();
        let mut id = 0;
        state.update(|s| id = s.begin(&names));
        let req = Request::Open {
            id,
            files: files.into_iter().map(JsFile).collect(),
        };
        match serde_wasm_bindgen::to_value(&req) {
            Ok(v) => client.with_value(|c| c.send(v)),
            Err(e) => state.update(|s| {
                s.apply(Response::Error(ErrorReply {
                    id: Some(id),
                    error: format!("cannot pass the file to the reader: {e}"),
                    unsupported: false,
                }))
            }),
        }
    };

    // dragenter/dragleave fire for every child crossed: count them
    let drag_depth = RwSignal::new(0i32);
    let dragging = Memo::new(move |_| drag_depth.get() > 0);
    let on_dragenter = move |ev: DragEvent| {
        ev.prevent_default();
        drag_depth.update(|d| *d += 1);
    };
    let on_dragover = move |ev: DragEvent| {
        ev.prevent_default();
        if let Some(dt) = ev.data_transfer() {
            dt.set_drop_effect("copy");
        }
    };
    let on_dragleave = move |_: DragEvent| drag_depth.update(|d| *d = (*d - 1).max(0));
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        drag_depth.set(0);
        open(files_of(ev.data_transfer().and_then(|dt| dt.files())));
    };

    let worker_state = Memo::new(move |_| {
        if state.with(|s| s.worker_ready) {
            "ready"
        } else {
            "starting"
        }
    });
    let card = Memo::new(move |_| state.with(|s| s.card.clone()));
    let error = Memo::new(move |_| state.with(|s| s.error.clone()));
    let pending = Memo::new(move |_| {
        state.with(|s| {
            s.pending.as_ref().map(|p| {
                let format = p.detected.as_ref().map(|d| d.format.clone());
                (p.label.clone(), format)
            })
        })
    });

    view! {
        <div
            class="app"
            class:dragging=dragging
            data-testid="drop-zone"
            data-worker=worker_state
            on:dragenter=on_dragenter
            on:dragover=on_dragover
            on:dragleave=on_dragleave
            on:drop=on_drop
        >
            <header class="topbar">
                <div class="brand">
                    <span class="logo" aria-hidden="true"></span>
                    <h1>"weightscope"</h1>
                </div>
                <p class="tagline">
                    "PyTorch & safetensors checkpoints, read in your browser. "
                    "Nothing is uploaded; no pickle code runs."
                </p>
                <FilePicker open=open />
            </header>
            <main class="content">
                {move || pending.get().map(|(label, format)| progress(label, format))}
                {move || error.get().map(error_panel)}
                {move || match card.get() {
                    Some(c) => summary_card(c).into_any(),
                    None => empty_hint().into_any(),
                }}
                // --- edit & compare (issues 7, 8): until the tab strip lands, shown below the
                // summary card once a checkpoint's index is built
                <Show when=move || card.with(|c| matches!(c, Some(FileCard { details: Details::Summary(_), .. })))>
                    <crate::ui::edit_panel::EditPanel />
                    <crate::ui::compare_panel::ComparePanel />
                </Show>
                // --- end edit & compare
            </main>
            <div class="drop-overlay" aria-hidden="true">
                <div class="drop-target">"Drop to open"</div>
            </div>
        </div>
    }
}

/// The `<input type=file multiple>` behind a button.
#[component]
fn FilePicker<F>(open: F) -> impl IntoView
where
    F: Fn(Vec<File>) + 'static,
{
    let on_change = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let files = files_of(input.files());
        // clear it, so picking the same file again is a change
        input.set_value("");
        open(files);
    };
    view! {
        <input
            id="file-input"
            class="visually-hidden"
            type="file"
            multiple
            data-testid="file-input"
            on:change=on_change
        />
        <label class="button primary" for="file-input">"Open files…"</label>
    }
}

fn progress(label: String, format: Option<String>) -> impl IntoView {
    view! {
        <div class="progress" data-testid="progress" role="status">
            <span class="spinner" aria-hidden="true"></span>
            <span>"Reading " <strong>{label}</strong> "…"</span>
            {format.map(|f| view! { <span class="badge">{f}</span> })}
        </div>
    }
}

fn error_panel(message: String) -> impl IntoView {
    view! {
        <div class="panel error" data-testid="error" role="alert">
            <strong>"Could not open this file"</strong>
            <p>{message}</p>
        </div>
    }
}

fn empty_hint() -> impl IntoView {
    view! {
        <section class="hint">
            <p class="hint-title">"Drop a checkpoint anywhere on this page"</p>
            <p class="muted">
                ".pth · .pt · .bin · .ckpt · .safetensors — detected from the bytes, not the name"
            </p>
            <label class="button" for="file-input">"Choose files…"</label>
        </section>
    }
}

fn summary_card(card: FileCard) -> impl IntoView {
    let FileCard {
        name,
        size,
        format,
        format_description,
        files,
        details,
    } = card;
    let details = match details {
        Details::Summary(s) => summary_facts(s).into_any(),
        Details::NotAvailable(msg) => view! {
            <p class="note" data-testid="details-note">
                "Details not available yet: this build can detect the format but cannot read it. "
                <span class="muted">{msg}</span>
            </p>
        }
        .into_any(),
    };
    let more = (files > 1).then(|| {
        view! {
            <p class="note">
                {format!("{} files were given; only the first is read for now.", files)}
            </p>
        }
    });
    view! {
        <article class="card" data-testid="file-summary">
            <header class="card-head">
                <h2 class="file-name" data-testid="file-name" title=name.clone()>{name.clone()}</h2>
                <span class="badge format" data-testid="file-format">{format}</span>
            </header>
            <dl class="facts">
                <div>
                    <dt>"Size"</dt>
                    <dd data-testid="file-size" data-bytes=size.to_string()>
                        {human_bytes(size)}
                        <span class="muted">{format!(" ({} bytes)", group_digits(size))}</span>
                    </dd>
                </div>
                <div class="wide">
                    <dt>"Format"</dt>
                    <dd>{format_description}</dd>
                </div>
            </dl>
            {details}
            {more}
        </article>
    }
}

fn summary_facts(s: Summary) -> impl IntoView {
    let globals = s.globals.len();
    let flagged: Vec<String> = s
        .globals
        .iter()
        .filter(|g| g.tier != "allowed")
        .map(|g| format!("{}.{}", g.module, g.name))
        .collect();
    let detail = match s.verdict.as_str() {
        "safe" => format!("{globals} globals referenced, all allowed"),
        _ => flagged.join(", "),
    };
    view! {
        <dl class="facts">
            <div>
                <dt>"Tensors"</dt>
                <dd data-testid="tensor-count">{group_digits(s.tensors)}</dd>
            </div>
            <div>
                <dt>"Parameters"</dt>
                <dd data-testid="param-count" data-count=s.params.to_string()>
                    {human_count(s.params)}
                    <span class="muted">{format!(" ({})", group_digits(s.params))}</span>
                </dd>
            </div>
            <div class="wide">
                <dt>"Safety"</dt>
                <dd data-testid="safety" data-verdict=s.verdict.clone()>
                    <span class=format!("verdict {}", s.verdict)>{s.verdict.clone()}</span>
                    " — "
                    <span class="globals">{detail}</span>
                </dd>
            </div>
        </dl>
        {(!s.notes.is_empty())
            .then(|| {
                view! {
                    <ul class="notes">
                        {s.notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
                    </ul>
                }
            })}
    }
}
