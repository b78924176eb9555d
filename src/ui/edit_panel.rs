//! The Edit panel: operation forms with a live preview, the journal with Undo / Redo,
//! what an export would drop, and Download.
//!
//! Contract: the panel talks to the worker only through [`super::hub`]; every operation
//! is previewed as it is typed (old → new names, or the refusal — a collision, a bad pattern —
//! before anything is applied); a refused operation shows its message in `edit-error` (until
//! the next action or keystroke) and the journal stays as it was. Undo / Redo / Download live
//! in the [`super::action_bar`], always in view. The strip-prefix field starts empty; the
//! prefixes the shown keys carry are offered as buttons (`prefix-suggestion`). A selection (a
//! key or subtree path) is read from a [`Selection`] context when one is given.
//! Test hooks (`data-testid`): `edit-panel`, `op-strip-prefix` + `op-strip-prefix-apply`,
//! `prefix-suggestion`, `op-add-prefix` + `op-add-prefix-apply`, `op-rename-from` /
//! `op-rename-to` + `op-rename-apply`, `op-replace-pattern` / `op-replace-with` +
//! `op-replace-apply`, `op-delete` + `op-delete-apply`, `op-keep` + `op-keep-apply`,
//! `op-extract` + `op-extract-apply`, `op-cast` (select) / `op-cast-pattern` + `op-cast-apply`,
//! `op-meta-key` / `op-meta-value` + `op-meta-set` / `op-meta-remove`, `edit-preview`,
//! `edit-error`, `journal` (items with `data-state` `applied` / `undone`), `edit-drops`.

use super::hub;
use super::widgets::{ErrorNote, TextField};
use crate::worker::protocol::{OpSpec, OutFormat, PreviewReply, Request, Response};
use leptos::prelude::*;

/// Kept here for the panels that download through it (it moved to the action bar).
pub use super::action_bar::save_blob;

/// The selected key or subtree (path segments), provided by the tree view when it exists.
#[derive(Clone, Copy)]
pub struct Selection(pub Signal<Option<Vec<String>>>);

/// The buttons acting on the tensor or subtree selected in the tree: test id, text, operation.
type SelectionOp = (&'static str, &'static str, fn(Vec<String>) -> OpSpec);
const SELECTION_OPS: [SelectionOp; 2] = [
    ("op-delete-selected", "Delete", delete_path),
    ("op-keep-selected", "Keep only", keep_path),
];

fn delete_path(path: Vec<String>) -> OpSpec {
    OpSpec::DeletePath { path }
}

fn keep_path(path: Vec<String>) -> OpSpec {
    OpSpec::KeepPath { path }
}

/// The edit panel.
#[component]
pub fn EditPanel() -> impl IntoView {
    let ck = expect_context::<super::context::PageCheckpoint>();
    let bar = expect_context::<super::action_bar::EditBar>();
    let error = bar.error;
    let preview = RwSignal::new(None::<PreviewReply>);
    let preview_id = StoredValue::new(0u32);
    let selection = use_context::<Selection>();

    let send = move |req: Request<crate::worker::protocol::JsFile>| {
        if let Err(e) = hub::send(&req) {
            error.set(Some(e));
        }
    };

    let handle = hub::listen(move |r| match r {
        Response::Summary(_) => preview.set(None),
        Response::Journal(j) if j.applied => preview.set(None),
        Response::Preview(p) if preview_id.get_value() == p.id => preview.set(Some(p.clone())),
        _ => {}
    });
    on_cleanup(move || hub::unlisten(handle));

    let apply = move |op: OpSpec| {
        send(Request::Edit {
            id: hub::next_id(),
            op,
        })
    };
    let preview_op = move |op: Option<OpSpec>| {
        // a keystroke retires the last refusal
        error.set(None);
        match op {
            None => {
                preview_id.set_value(0);
                preview.set(None);
            }
            Some(op) => {
                let id = hub::next_id();
                preview_id.set_value(id);
                send(Request::Preview { id, op });
            }
        }
    };

    // form fields
    let strip = RwSignal::new(String::new());
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

    let op_rename = move || OpSpec::Rename {
        from: ren_from.get_untracked(),
        to: ren_to.get_untracked(),
    };
    let op_replace = move || OpSpec::Replace {
        pattern: re_pat.get_untracked(),
        replacement: re_with.get_untracked(),
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
    // an operation made from the text of one field
    let of_text = |sig: RwSignal<String>, op: fn(String) -> OpSpec| -> Rc<dyn Fn() -> OpSpec> {
        Rc::new(move || op(sig.get_untracked()))
    };
    // one operation's row: its label, its text fields (signal, test id, placeholder) and its
    // button (test id, text), all previewing / applying `op`
    type Fields = Vec<(RwSignal<String>, &'static str, &'static str)>;
    let op_row = move |label: &'static str,
                       fields: Fields,
                       (id, text): (&'static str, &'static str),
                       op: Rc<dyn Fn() -> OpSpec>| {
        view! {
            <div class="edit-row">
                <span class="edit-label">{label}</span>
                {fields.into_iter().map(|(sig, fid, placeholder)| field(sig, fid, placeholder, op.clone())).collect_view()}
                {button(id, text, op.clone())}
            </div>
        }
    };

    let has_file = Memo::new(move |_| ck.journal.with(|j| j.is_some()));
    let drops = Memo::new(move |_| {
        let f = bar.format.get();
        ck.journal.with(|j| {
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
    // the prefixes the shown keys carry, for the strip field
    let suggestions = Memo::new(move |_| {
        ck.opened
            .with(|f| {
                f.as_ref()
                    .map(|f| super::edited::prefix_suggestions(&f.entries))
            })
            .unwrap_or_default()
    });
    let suggest = move |p: String| {
        strip.set(p.clone());
        preview_op(Some(OpSpec::StripPrefix { prefix: p }));
    };

    let selection_buttons = selection.map(|Selection(sel)| {
        view! {
            <div class="edit-row">
                <span class="edit-label">"Selection"</span>
                <span class="muted">{move || sel.get().map(|p| p.join("/")).unwrap_or_else(|| "nothing selected".into())}</span>
                {SELECTION_OPS
                    .into_iter()
                    .map(|(id, text, op)| view! {
                        <button class="button small" data-testid=id disabled=move || sel.get().is_none()
                            on:click=move |_| {
                                if let Some(path) = sel.get_untracked() {
                                    apply(op(path))
                                }
                            }>
                            {text}
                        </button>
                    })
                    .collect_view()}
            </div>
        }
    });

    view! {
        <section class="card edit-panel" data-testid="edit-panel" data-ready=move || has_file.get().to_string()>
            <header class="card-head">
                <h2>"Edit"</h2>
                <span class="muted">
                    {move || ck.journal.with(|j| j.as_ref().map(|j| format!("{} · {} tensors", j.file, j.tensors)).unwrap_or_else(|| "open a checkpoint to edit it".into()))}
                </span>
            </header>
            <div class="edit-ops">
                {op_row("Strip prefix", vec![(strip, "op-strip-prefix", "a prefix of the keys")], ("op-strip-prefix-apply", "Strip"), of_text(strip, |prefix| OpSpec::StripPrefix { prefix }))}
                <PrefixSuggestions suggestions=suggestions pick=Callback::new(suggest) />
                {op_row("Add prefix", vec![(add, "op-add-prefix", "model.")], ("op-add-prefix-apply", "Add"), of_text(add, |prefix| OpSpec::AddPrefix { prefix }))}
                {op_row("Rename", vec![(ren_from, "op-rename-from", "old key"), (ren_to, "op-rename-to", "new key")], ("op-rename-apply", "Rename"), Rc::new(op_rename))}
                {op_row("Replace (regex)", vec![(re_pat, "op-replace-pattern", "^layers\\.(\\d+)\\."), (re_with, "op-replace-with", "blocks.$1.")], ("op-replace-apply", "Replace"), Rc::new(op_replace))}
                {op_row("Delete (regex)", vec![(del, "op-delete", "^head\\.")], ("op-delete-apply", "Delete"), of_text(del, |pattern| OpSpec::Delete { pattern }))}
                {op_row("Keep only (regex)", vec![(keep, "op-keep", "^encoder\\.")], ("op-keep-apply", "Keep"), of_text(keep, |pattern| OpSpec::Keep { pattern }))}
                {op_row("Extract subtree", vec![(extract, "op-extract", "state_dict")], ("op-extract-apply", "Extract"), of_text(extract, |path| OpSpec::Extract { path }))}
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
                    <TextField value=meta_key testid="op-meta-key" placeholder="key" />
                    <TextField value=meta_val testid="op-meta-value" placeholder="value" />
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
            <ErrorNote message=error testid="edit-error" title="Not applied" />
            {move || preview.get().map(preview_view)}
            <JournalList />
            <DropsNote drops=drops />
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

/// Buttons for the key prefixes the file carries (none when it carries none).
#[component]
fn PrefixSuggestions(suggestions: Memo<Vec<String>>, pick: Callback<String>) -> impl IntoView {
    move || {
        let s = suggestions.get();
        (!s.is_empty()).then(|| {
            view! {
                <div class="edit-row suggestions">
                    <span class="edit-label muted">"In this file"</span>
                    {s.into_iter().map(|p| {
                        let q = p.clone();
                        view! {
                            <button class="chip" data-testid="prefix-suggestion" title="Fill the strip field"
                                on:click=move |_| pick.run(q.clone())><code>{p}</code></button>
                        }
                    }).collect_view()}
                </div>
            }
        })
    }
}

/// The journal: applied operations, then the undone ones Redo would re-apply.
#[component]
fn JournalList() -> impl IntoView {
    let ck = expect_context::<super::context::PageCheckpoint>();
    view! {
        <div class="edit-journal">
            <h3>"Journal"<span class="muted">" — Undo / Redo in the bar below (Ctrl+Z, Ctrl+Shift+Z)"</span></h3>
            <ol class="journal" data-testid="journal">
                {move || ck.journal.with(|j| {
                    let Some(j) = j else { return vec![] };
                    let applied = j.ops.iter().map(|o| view! { <li data-state="applied">{o.clone()}</li> }.into_any());
                    let undone = j.redo.iter().rev().map(|o| view! { <li data-state="undone" class="muted undone">{o.clone()}</li> }.into_any());
                    applied.chain(undone).collect::<Vec<_>>()
                })}
            </ol>
        </div>
    }
}

/// What the chosen download format would leave out, and why.
#[component]
fn DropsNote(drops: Memo<Vec<String>>) -> impl IntoView {
    move || {
        let d = drops.get();
        (!d.is_empty()).then(|| {
            view! {
                <div class="note" data-testid="edit-drops">
                    <strong>{format!("Will not be written ({}):", d.len())}</strong>
                    <ul>{d.into_iter().map(|x| view! { <li>{x}</li> }).collect_view()}</ul>
                </div>
            }
        })
    }
}
