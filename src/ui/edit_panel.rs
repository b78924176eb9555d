//! The Edit panel: operation forms with a live preview, the journal with Undo / Redo,
//! what an export would drop, and Download.
//!
//! Contract: the panel talks to the worker only through [`super::edit_link`]; every operation
//! is previewed as it is typed (old → new names, or the refusal — a collision, a bad pattern —
//! before anything is applied); a refused operation shows its message in `edit-error` and the
//! journal stays as it was. Download asks the worker for a Blob (file slices + new bytes), then
//! clicks an `<a download>` with an object URL from the main thread and revokes it later.
//! A selection (a key or subtree path) is read from a [`Selection`] context when one is given.
//! Test hooks (`data-testid`): `edit-panel`, `op-strip-prefix` + `op-strip-prefix-apply`,
//! `op-add-prefix` + `op-add-prefix-apply`, `op-rename-from` / `op-rename-to` +
//! `op-rename-apply`, `op-replace-pattern` / `op-replace-with` + `op-replace-apply`,
//! `op-delete` + `op-delete-apply`, `op-keep` + `op-keep-apply`, `op-extract` +
//! `op-extract-apply`, `op-cast` (select) / `op-cast-pattern` + `op-cast-apply`, `op-meta-key` /
//! `op-meta-value` + `op-meta-set` / `op-meta-remove`, `edit-preview`, `edit-error`,
//! `journal` (items with `data-state` `applied` / `undone`), `undo`, `redo`, `edit-drops`,
//! `download-format`, `download`, `edit-progress`, `export-report` (data attributes with the
//! numbers).

use super::hub;
use crate::worker::protocol::{
    ErrorKind, JournalReply, OpSpec, OutFormat, PreviewReply, Request, Response,
};
use leptos::prelude::*;
use std::collections::HashSet;
use wasm_bindgen::prelude::*;

/// The selected key or subtree (path segments), provided by the tree view when it exists.
#[derive(Clone, Copy)]
pub struct Selection(pub Signal<Option<Vec<String>>>);

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

/// The edit panel.
#[component]
pub fn EditPanel() -> impl IntoView {
    let journal = RwSignal::new(None::<JournalReply>);
    let error = RwSignal::new(None::<String>);
    let preview = RwSignal::new(None::<PreviewReply>);
    let preview_id = StoredValue::new(0u32);
    let export_id = StoredValue::new(0u32);
    let ours = StoredValue::new(HashSet::<u32>::new());
    let progress = RwSignal::new(None::<(u64, u64)>);
    let busy = RwSignal::new(false);
    let exported = RwSignal::new(None::<Exported>);
    let format = RwSignal::new(OutFormat::Torch);
    let selection = use_context::<Selection>();

    let send = move |req: Request<crate::worker::protocol::JsFile>| {
        ours.update_value(|s| {
            s.insert(req.id());
        });
        if let Err(e) = hub::send(&req) {
            error.set(Some(e));
        }
    };
    let refresh = move || send(Request::JournalList { id: hub::next_id() });

    let handle = hub::listen(move |r| match r {
        Response::Summary(_) => {
            // another file was opened: its journal is fresh
            preview.set(None);
            error.set(None);
            exported.set(None);
            refresh();
        }
        Response::Journal(j) => {
            let mine = ours.with_value(|s| s.contains(&j.id));
            if j.ops.is_empty() && j.redo.is_empty() && j.file.is_empty() {
                // "no checkpoint is open": nothing to show yet
                journal.set(None);
                return;
            }
            if mine {
                error.set(j.error.clone());
                if j.error.is_none() {
                    preview.set(None);
                }
            }
            journal.set(Some(j.clone()));
        }
        Response::Preview(p) if preview_id.get_value() == p.id => preview.set(Some(p.clone())),
        Response::ExportProgress(p) if export_id.get_value() == p.id => {
            progress.set(Some((p.done, p.total)))
        }
        Response::Exported(e) if export_id.get_value() == e.id => {
            busy.set(false);
            progress.set(None);
            if let Err(msg) = save_blob(&e.blob.0, &e.name) {
                error.set(Some(format!("download failed: {msg}")));
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
        Response::Error(e) if e.id.is_some_and(|id| ours.with_value(|s| s.contains(&id))) => {
            if e.id == Some(export_id.get_value()) {
                busy.set(false);
                progress.set(None);
            }
            if e.kind != ErrorKind::NoFile {
                error.set(Some(e.error.clone()));
            }
        }
        _ => {}
    });
    on_cleanup(move || hub::unlisten(handle));
    refresh();

    let apply = move |op: OpSpec| {
        send(Request::Edit {
            id: hub::next_id(),
            op,
        })
    };
    let preview_op = move |op: Option<OpSpec>| match op {
        None => {
            preview_id.set_value(0);
            preview.set(None);
        }
        Some(op) => {
            let id = hub::next_id();
            preview_id.set_value(id);
            send(Request::Preview { id, op });
        }
    };

    // form fields
    let strip = RwSignal::new("module.".to_string());
    let add = RwSignal::new(String::new());
    let ren_from = RwSignal::new(String::new());
    let ren_to = RwSignal::new(String::new());
    let re_pat = RwSignal::new(String::new());
    let re_with = RwSignal::new(String::new());
    let del = RwSignal::new(String::new());
    let keep = RwSignal::new(String::new());
    let extract = RwSignal::new(String::new());
    let cast = RwSignal::new(crate::edit::CAST_TARGETS[0]);
    let cast_pat = RwSignal::new(String::new());
    let meta_key = RwSignal::new(String::new());
    let meta_val = RwSignal::new(String::new());

    let op_strip = move || OpSpec::StripPrefix {
        prefix: strip.get_untracked(),
    };
    let op_add = move || OpSpec::AddPrefix {
        prefix: add.get_untracked(),
    };
    let op_rename = move || OpSpec::Rename {
        from: ren_from.get_untracked(),
        to: ren_to.get_untracked(),
    };
    let op_replace = move || OpSpec::Replace {
        pattern: re_pat.get_untracked(),
        replacement: re_with.get_untracked(),
    };
    let op_delete = move || OpSpec::Delete {
        pattern: del.get_untracked(),
    };
    let op_keep = move || OpSpec::Keep {
        pattern: keep.get_untracked(),
    };
    let op_extract = move || OpSpec::Extract {
        path: extract.get_untracked(),
    };
    let op_cast = move || OpSpec::Cast {
        dtype: cast.get_untracked(),
        pattern: Some(cast_pat.get_untracked()).filter(|p| !p.is_empty()),
    };

    // a text field that previews `op` as it is typed (nothing when emptied)
    let field = move |sig: RwSignal<String>,
                      id: &'static str,
                      placeholder: &'static str,
                      op: std::rc::Rc<dyn Fn() -> OpSpec>| {
        view! {
            <input
                type="text"
                class="edit-input"
                data-testid=id
                placeholder=placeholder
                prop:value=move || sig.get()
                on:input={
                    let op = op.clone();
                    move |ev| {
                        let v = event_target_value(&ev);
                        let empty = v.is_empty();
                        sig.set(v);
                        preview_op((!empty).then(|| op()));
                    }
                }
                on:focus=move |_| {
                    if !sig.get_untracked().is_empty() {
                        preview_op(Some(op()));
                    }
                }
            />
        }
    };
    let button =
        move |id: &'static str, label: &'static str, op: std::rc::Rc<dyn Fn() -> OpSpec>| {
            view! {
                <button class="button small" data-testid=id on:click=move |_| apply(op())>
                    {label}
                </button>
            }
        };
    use std::rc::Rc;

    let has_file = Memo::new(move |_| journal.with(|j| j.is_some()));
    let drops = Memo::new(move |_| {
        let f = format.get();
        journal.with(|j| {
            j.as_ref()
                .map(|j| {
                    if f == OutFormat::Safetensors {
                        j.drops_safetensors.clone()
                    } else {
                        j.drops_torch.clone()
                    }
                })
                .unwrap_or_default()
        })
    });

    let download = move |_| {
        let id = hub::next_id();
        export_id.set_value(id);
        busy.set(true);
        exported.set(None);
        error.set(None);
        progress.set(Some((0, 0)));
        send(Request::Export {
            id,
            format: format.get_untracked(),
        });
    };

    let selection_buttons = selection.map(|Selection(sel)| {
        view! {
            <div class="edit-row">
                <span class="edit-label">"Selection"</span>
                <span class="muted">{move || sel.get().map(|p| p.join("/")).unwrap_or_else(|| "nothing selected".into())}</span>
                <button
                    class="button small"
                    data-testid="op-delete-selected"
                    disabled=move || sel.get().is_none()
                    on:click=move |_| {
                        if let Some(path) = sel.get_untracked() {
                            apply(OpSpec::DeletePath { path })
                        }
                    }
                >
                    "Delete"
                </button>
                <button
                    class="button small"
                    data-testid="op-keep-selected"
                    disabled=move || sel.get().is_none()
                    on:click=move |_| {
                        if let Some(path) = sel.get_untracked() {
                            apply(OpSpec::KeepPath { path })
                        }
                    }
                >
                    "Keep only"
                </button>
            </div>
        }
    });

    view! {
        <section class="card edit-panel" data-testid="edit-panel" data-ready=move || has_file.get().to_string()>
            <header class="card-head">
                <h2>"Edit"</h2>
                <span class="muted">
                    {move || journal.with(|j| j.as_ref().map(|j| format!("{} · {} tensors", j.file, j.tensors)).unwrap_or_else(|| "open a checkpoint to edit it".into()))}
                </span>
            </header>
            <div class="edit-ops">
                <div class="edit-row">
                    <span class="edit-label">"Strip prefix"</span>
                    {field(strip, "op-strip-prefix", "module.", Rc::new(op_strip))}
                    {button("op-strip-prefix-apply", "Strip", Rc::new(op_strip))}
                </div>
                <div class="edit-row">
                    <span class="edit-label">"Add prefix"</span>
                    {field(add, "op-add-prefix", "model.", Rc::new(op_add))}
                    {button("op-add-prefix-apply", "Add", Rc::new(op_add))}
                </div>
                <div class="edit-row">
                    <span class="edit-label">"Rename"</span>
                    {field(ren_from, "op-rename-from", "old key", Rc::new(op_rename))}
                    {field(ren_to, "op-rename-to", "new key", Rc::new(op_rename))}
                    {button("op-rename-apply", "Rename", Rc::new(op_rename))}
                </div>
                <div class="edit-row">
                    <span class="edit-label">"Replace (regex)"</span>
                    {field(re_pat, "op-replace-pattern", "^layers\\.(\\d+)\\.", Rc::new(op_replace))}
                    {field(re_with, "op-replace-with", "blocks.$1.", Rc::new(op_replace))}
                    {button("op-replace-apply", "Replace", Rc::new(op_replace))}
                </div>
                <div class="edit-row">
                    <span class="edit-label">"Delete (regex)"</span>
                    {field(del, "op-delete", "^head\\.", Rc::new(op_delete))}
                    {button("op-delete-apply", "Delete", Rc::new(op_delete))}
                </div>
                <div class="edit-row">
                    <span class="edit-label">"Keep only (regex)"</span>
                    {field(keep, "op-keep", "^encoder\\.", Rc::new(op_keep))}
                    {button("op-keep-apply", "Keep", Rc::new(op_keep))}
                </div>
                <div class="edit-row">
                    <span class="edit-label">"Extract subtree"</span>
                    {field(extract, "op-extract", "state_dict", Rc::new(op_extract))}
                    {button("op-extract-apply", "Extract", Rc::new(op_extract))}
                </div>
                <div class="edit-row">
                    <span class="edit-label">"Cast floats to"</span>
                    <select
                        data-testid="op-cast"
                        prop:value=move || cast.get().name()
                        on:change=move |ev| {
                            if let Some(d) = crate::format::DType::from_name(&event_target_value(&ev)) {
                                cast.set(d);
                            }
                            preview_op(Some(op_cast()));
                        }
                    >
                        {crate::edit::CAST_TARGETS
                            .iter()
                            .map(|d| view! { <option value=d.name()>{d.name()}</option> })
                            .collect_view()}
                    </select>
                    {field(cast_pat, "op-cast-pattern", "all (or a regex)", Rc::new(op_cast))}
                    {button("op-cast-apply", "Cast", Rc::new(op_cast))}
                </div>
                <div class="edit-row">
                    <span class="edit-label">"safetensors metadata"</span>
                    <input type="text" class="edit-input" data-testid="op-meta-key" placeholder="key"
                        prop:value=move || meta_key.get()
                        on:input=move |ev| meta_key.set(event_target_value(&ev)) />
                    <input type="text" class="edit-input" data-testid="op-meta-value" placeholder="value"
                        prop:value=move || meta_val.get()
                        on:input=move |ev| meta_val.set(event_target_value(&ev)) />
                    <button class="button small" data-testid="op-meta-set"
                        on:click=move |_| apply(OpSpec::SetMetadata { key: meta_key.get_untracked(), value: Some(meta_val.get_untracked()) })>
                        "Set"
                    </button>
                    <button class="button small" data-testid="op-meta-remove"
                        on:click=move |_| apply(OpSpec::SetMetadata { key: meta_key.get_untracked(), value: None })>
                        "Remove"
                    </button>
                </div>
                {selection_buttons}
            </div>
            {move || error.get().map(|e| view! {
                <div class="panel error edit-error" data-testid="edit-error" role="alert">
                    <strong>"Not applied"</strong>
                    <p>{e}</p>
                </div>
            })}
            {move || preview.get().map(preview_view)}
            <div class="edit-journal">
                <div class="edit-row">
                    <h3>"Journal"</h3>
                    <button class="button small" data-testid="undo"
                        disabled=move || journal.with(|j| j.as_ref().is_none_or(|j| j.ops.is_empty()))
                        on:click=move |_| send(Request::Undo { id: hub::next_id() })>
                        "Undo"
                    </button>
                    <button class="button small" data-testid="redo"
                        disabled=move || journal.with(|j| j.as_ref().is_none_or(|j| j.redo.is_empty()))
                        on:click=move |_| send(Request::Redo { id: hub::next_id() })>
                        "Redo"
                    </button>
                </div>
                <ol class="journal" data-testid="journal">
                    {move || journal.with(|j| {
                        let Some(j) = j else { return vec![] };
                        let applied = j.ops.iter().map(|o| view! { <li data-state="applied">{o.clone()}</li> }.into_any());
                        let undone = j.redo.iter().rev().map(|o| view! { <li data-state="undone" class="muted undone">{o.clone()}</li> }.into_any());
                        applied.chain(undone).collect::<Vec<_>>()
                    })}
                </ol>
            </div>
            <div class="edit-download">
                {move || {
                    let d = drops.get();
                    (!d.is_empty()).then(|| view! {
                        <div class="note" data-testid="edit-drops">
                            <strong>{format!("Will not be written ({}):", d.len())}</strong>
                            <ul>{d.into_iter().map(|x| view! { <li>{x}</li> }).collect_view()}</ul>
                        </div>
                    })
                }}
                <div class="edit-row">
                    <select data-testid="download-format"
                        prop:value=move || match format.get() {
                            OutFormat::Torch => "torch",
                            OutFormat::Safetensors => "safetensors",
                        }
                        on:change=move |ev| {
                            if let Some(f) = OutFormat::parse(&event_target_value(&ev)) {
                                format.set(f);
                            }
                        }>
                        <option value="torch">"PyTorch (.pth, loads with weights_only=True)"</option>
                        <option value="safetensors">".safetensors"</option>
                    </select>
                    <button class="button primary" data-testid="download"
                        disabled=move || busy.get() || !has_file.get()
                        on:click=download>
                        "Download"
                    </button>
                    {move || progress.get().map(|(d, t)| view! {
                        <span class="progress" data-testid="edit-progress" role="status">
                            <span class="spinner" aria-hidden="true"></span>
                            {format!("Writing… {}", pct(d, t))}
                        </span>
                    })}
                </div>
                {move || exported.get().map(report_view)}
            </div>
        </section>
    }
}

fn preview_view(p: PreviewReply) -> impl IntoView {
    let shown = p.renames.len() + p.removed.len() + p.added.len();
    let more = (p.changed as usize).saturating_sub(shown);
    let ok = p.error.is_none().to_string();
    view! {
        <div class="edit-preview" data-testid="edit-preview" data-ok=ok data-changed=p.changed.to_string()>
            <strong>{if p.describe.is_empty() { "Preview".to_string() } else { format!("Preview: {}", p.describe) }}</strong>
            {p.error.clone().map(|e| view! { <p class="preview-refused">{e}</p> })}
            <ul class="preview-list">
                {p.renames.into_iter().map(|(a, b)| view! {
                    <li><code>{a}</code>" → "<code>{b}</code></li>
                }).collect_view()}
                {p.removed.into_iter().map(|a| view! {
                    <li class="removed"><code>{a}</code>" (removed)"</li>
                }).collect_view()}
                {p.added.into_iter().map(|a| view! {
                    <li class="added"><code>{a}</code>" (added)"</li>
                }).collect_view()}
            </ul>
            {(more > 0).then(|| view! { <p class="muted">{format!("… and {more} more")}</p> })}
        </div>
    }
}

fn report_view(e: Exported) -> impl IntoView {
    view! {
        <div class="note export-report" data-testid="export-report"
            data-name=e.name.clone() data-size=e.size.to_string()
            data-copied=e.copied.to_string() data-new=e.new.to_string()
            data-millis=format!("{:.1}", e.millis)
            data-wasm-before=e.mem_before.to_string() data-wasm-after=e.mem_after.to_string()>
            <p>
                <strong>{e.name.clone()}</strong>
                {format!(
                    " — {} tensors, {} bytes ({} copied from the input file, {} new), {:.0} ms",
                    e.tensors, e.size, e.copied, e.new, e.millis
                )}
            </p>
            {(!e.dropped.is_empty()).then(|| view! {
                <p>"Dropped: " {e.dropped.join("; ")}</p>
            })}
            {(!e.aliases.is_empty()).then(|| view! {
                <p>"Written once (aliases): " {e.aliases.iter().map(|(a, b)| format!("{a} = {b}")).collect::<Vec<_>>().join("; ")}</p>
            })}
            {(!e.overflow.is_empty()).then(|| view! {
                <p>"Overflow in the cast (values became ±inf): " {e.overflow.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join("; ")}</p>
            })}
        </div>
    }
}
