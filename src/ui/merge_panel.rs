//! The Merge tab: the open file is FIRST; add other checkpoints (any format, sharded sets as
//! their `*.index.json` plus shards), pick a method and its parameters, preview how far each
//! merged tensor moves away from FIRST (the overview chart of relative change per tensor), then
//! download the merge as one file or as shards.
//!
//! Contract: merges run on a worker of their own (`worker::merge`, the CLI's merge code), so
//! Cancel terminates it at once — inside a tensor too — and the next action starts a fresh one
//! (every preview or export re-sends the inputs: opening reads indexes only). A refusal (a bad
//! pattern, parameters, different key sets or shapes) is shown next to the buttons and nothing
//! is downloaded. Where the browser offers the File System Access API, Merge asks where to save
//! (a file, or a folder for shards) and the worker streams the output there piece by piece
//! (`worker::disk`; Cancel drops the writable and removes the file); otherwise one output file
//! is downloaded at once (an `<a download>` of the worker's Blob) and shards are listed as one
//! link per file plus the index — the browser saves each where downloads go, the names being
//! those `save_pretrained` gives.
//! Test hooks (`data-testid`): `merge-panel`, `merge-first`, `merge-input` (file input),
//! `merge-inputs` (items with `data-tensors`), `merge-open-errors`, `merge-method` (select),
//! `merge-weight-N`, `merge-alpha`, `merge-t`, `merge-density`, `merge-keys`, `merge-preview`,
//! `merge-chart` (canvas, `data-points`), `merge-summary` (`data-merged`, `data-copied`),
//! `merge-format`, `merge-shard-size`, `merge-run`, `merge-progress`, `merge-cancel`,
//! `merge-cancelled`, `merge-error`, `merge-done` (`data-files`, `data-on-disk`, `data-wasm-memory`: the worker's wasm memory after the export), `merge-file` (links), `merge-saved` (files saved to disk).

use super::charts::{draw_overview, Frame, Point};
use super::widgets::{take_files, ErrorNote, FormatSelect};
use super::worker_client::WorkerClient;
use crate::display::human_bytes;
use crate::export::merge::Method;
use crate::export::plan::OutFormat;
use crate::export::shards::parse_size;
use crate::worker::merge::{
    merged_name, Change, DiskTarget, MergeInput, MergeReply, MergeRequest, MergeSpec,
};
use crate::worker::protocol::{JsFile, Request, RequestId, Response};
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::File;

/// What the Merge button asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Open,
    Preview,
    Export,
}

/// A finished preview.
#[derive(Debug, Clone, PartialEq)]
struct Preview {
    merged: u64,
    copied: u64,
    changes: Vec<Change>,
}

/// A finished export: (name, size, object URL) per file.
#[derive(Debug, Clone, PartialEq)]
struct Done {
    files: Vec<(String, u64, String)>,
    merged: u64,
    copied: u64,
    overflow: Vec<(String, u64)>,
    dropped: Vec<String>,
    seconds: f64,
    wasm_memory: u64,
    /// Written straight to disk (no links: the files are where the user chose).
    on_disk: bool,
}

fn pct(done: u64, total: u64) -> String {
    if total == 0 {
        "…".into()
    } else {
        format!("{:.0}%", 100.0 * done as f64 / total as f64)
    }
}

/// A number field bound to `sig` (a range slider beside it when `range` is given).
fn number(
    sig: RwSignal<f64>,
    id: String,
    label: String,
    range: Option<(f64, f64, f64)>,
) -> impl IntoView {
    // the browser's own reading of a number or range field (NaN when it is not a number): the
    // page's wasm then carries no float parser
    let set = move |ev: web_sys::Event| {
        let v = event_target::<web_sys::HtmlInputElement>(&ev).value_as_number();
        if v.is_finite() {
            sig.set(v);
        }
    };
    let slider = range.map(|(lo, hi, step)| {
        view! {
            <input type="range" min=lo.to_string() max=hi.to_string() step=step.to_string()
                aria-label=label.clone()
                prop:value=move || sig.get().to_string() on:input=set />
        }
    });
    view! {
        <label class="edit-row">
            <span class="edit-label">{label.clone()}</span>
            {slider}
            <input type="number" class="edit-input merge-number" data-testid=id step="any"
                prop:value=move || sig.get().to_string() on:change=set />
        </label>
    }
}

/// The merge panel. `first` gives the files of the open checkpoint (FIRST), if any.
#[component]
pub fn MergePanel(first: Callback<(), Option<Vec<File>>>) -> impl IntoView {
    let others = RwSignal::new_local(Vec::<File>::new());
    let inputs = RwSignal::new(Vec::<MergeInput>::new());
    let open_errors = RwSignal::new(Vec::<String>::new());
    let method = RwSignal::new("linear".to_string());
    let weights = RwSignal::new(Vec::<RwSignal<f64>>::new());
    let alpha = RwSignal::new(1.0);
    let t = RwSignal::new(0.5);
    let density = RwSignal::new(1.0);
    let keys = RwSignal::new(String::new());
    let format = RwSignal::new(OutFormat::Torch);
    let shard = RwSignal::new(String::new());
    let busy = RwSignal::new(None::<(RequestId, Action, u64, u64)>);
    let error = RwSignal::new(None::<String>);
    let cancelled = RwSignal::new(false);
    let preview = RwSignal::new(None::<Preview>);
    let done = RwSignal::new(None::<Done>);
    let hover = RwSignal::new(None::<String>);
    let log_y = RwSignal::new(false);
    let chart = NodeRef::<Canvas>::new();
    let frame = StoredValue::new(None::<Frame>);
    let client = StoredValue::new_local(None::<WorkerClient>);
    // the disk target of the running export and the files it started writing
    let disk = StoredValue::new_local(None::<(wasm_bindgen::JsValue, Vec<String>)>);
    let current = StoredValue::new(0u32);
    let theme = use_context::<super::charts::Theme>();

    let on_reply = move |r: MergeReply| {
        if r.id() != current.get_value() {
            return;
        }
        match r {
            MergeReply::Opened {
                inputs: got,
                errors,
                ..
            } => {
                // one weight per input, kept where the inputs stay
                weights.update(|w| {
                    w.truncate(got.len());
                    while w.len() < got.len() {
                        w.push(RwSignal::new(1.0));
                    }
                });
                inputs.set(got);
                open_errors.set(errors);
                if busy.with_untracked(|b| b.is_some_and(|b| b.1 == Action::Open)) {
                    busy.set(None);
                }
            }
            MergeReply::Progress { done: d, total, .. } => busy.update(|b| {
                if let Some(b) = b.as_mut() {
                    b.2 = d;
                    b.3 = total;
                }
            }),
            MergeReply::Saving { names, .. } => disk.update_value(|d| {
                if let Some(d) = d.as_mut() {
                    d.1 = names;
                }
            }),
            MergeReply::Refused { error: e, .. } | MergeReply::Error { error: e, .. } => {
                busy.set(None);
                error.set(Some(e));
                // the file the picker made stays empty: it goes (the worker removes shards)
                if let Some((t, _)) = disk.get_value() {
                    if !crate::worker::disk::is_directory(t.unchecked_ref()) {
                        super::disk_save::forget(t, vec![]);
                    }
                }
                disk.set_value(None);
            }
            MergeReply::Preview {
                merged,
                copied,
                changes,
                ..
            } => {
                busy.set(None);
                preview.set(Some(Preview {
                    merged,
                    copied,
                    changes,
                }));
            }
            MergeReply::Exported {
                files,
                merged,
                copied,
                overflow,
                dropped,
                millis,
                wasm_memory,
                on_disk,
                ..
            } => {
                busy.set(None);
                disk.set_value(None);
                let mut out = vec![];
                for f in &files {
                    let url = f
                        .blob
                        .0
                        .clone()
                        .dyn_into::<web_sys::Blob>()
                        .ok()
                        .and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok())
                        .unwrap_or_default();
                    out.push((f.name.clone(), f.size, url));
                }
                if let (false, [f]) = (on_disk, &files[..]) {
                    if let Err(e) = super::edit_panel::save_blob(&f.blob.0, &f.name) {
                        error.set(Some(format!("download failed: {e}")));
                    }
                }
                done.set(Some(Done {
                    files: out,
                    merged,
                    copied,
                    overflow,
                    dropped,
                    seconds: millis / 1000.0,
                    wasm_memory,
                    on_disk,
                }));
            }
        }
    };

    let spec = move || -> Result<MergeSpec, String> {
        let m = match method.get_untracked().as_str() {
            "linear" => Method::Linear {
                weights: weights.with_untracked(|w| w.iter().map(|s| s.get_untracked()).collect()),
            },
            "add-difference" => Method::AddDifference {
                alpha: alpha.get_untracked(),
            },
            "slerp" => Method::Slerp {
                t: t.get_untracked(),
            },
            _ => Method::Ties {
                density: density.get_untracked(),
                alpha: alpha.get_untracked(),
            },
        };
        let k = keys.get_untracked();
        Ok(MergeSpec {
            method: m,
            keys: (!k.trim().is_empty()).then_some(k),
        })
    };

    let post = move |req: MergeRequest<JsFile>| {
        let client = client.with_value(|c| c.clone()).unwrap_or_else(|| {
            let c = WorkerClient::spawn(
                move |r| {
                    if let Response::Merge(m) = r {
                        on_reply(m)
                    }
                },
                move |msg| {
                    busy.set(None);
                    error.set(Some(format!("the merge stopped: {msg}")));
                },
            );
            client.set_value(Some(c.clone()));
            c
        });
        if let Err(e) = client.send(&Request::Merge(req)) {
            error.set(Some(format!("cannot pass the files to the worker: {e}")));
        }
    };

    let start = move |action: Action| {
        error.set(None);
        cancelled.set(false);
        let Some(first_files) = first.run(()) else {
            error.set(Some(
                "open a checkpoint first: it is FIRST, the base of the merge".into(),
            ));
            return;
        };
        let (req, spec) = match action {
            Action::Open => (None, None),
            _ => match spec() {
                Ok(s) => (Some(action), Some(s)),
                Err(e) => return error.set(Some(e)),
            },
        };
        let shard_size = match shard.get_untracked().trim() {
            "" => None,
            s => match parse_size(s) {
                Ok(n) => Some(n),
                Err(e) => return error.set(Some(e.replace("--shard-size", "shard size"))),
            },
        };
        let id = super::hub::next_id();
        current.set_value(id);
        if action == Action::Preview {
            preview.set(None);
        }
        if action == Action::Export {
            // the links of the last export go
            done.with_untracked(|d| {
                d.iter().flat_map(|d| &d.files).for_each(|f| {
                    let _ = web_sys::Url::revoke_object_url(&f.2);
                })
            });
            done.set(None);
        }
        busy.set(Some((id, action, 0, 0)));
        disk.set_value(None);
        let send = move |first_files: Vec<File>, target: Option<DiskTarget>| {
            post(MergeRequest::MergeOpen {
                id,
                first: first_files.into_iter().map(JsFile).collect(),
                others: others.get_untracked().into_iter().map(JsFile).collect(),
            });
            match (req, spec) {
                (Some(Action::Preview), Some(spec)) => {
                    post(MergeRequest::MergePreview { id, spec })
                }
                (Some(Action::Export), Some(spec)) => post(MergeRequest::MergeExport {
                    id,
                    spec,
                    format: format.get_untracked(),
                    shard_size,
                    target,
                }),
                _ => {}
            }
        };
        // an export goes straight to disk where the browser lets the user pick the place
        let suggested = inputs
            .with_untracked(|i| i.first().map(|f| f.name.clone()))
            .or_else(|| first_files.first().map(|f| f.name()))
            .map(|n| merged_name(&n, format.get_untracked()))
            .unwrap_or_default();
        let picker = (action == Action::Export)
            .then(|| super::disk_save::pick(shard_size.is_some(), &suggested))
            .flatten();
        let Some(picker) = picker else {
            return send(first_files, None);
        };
        wasm_bindgen_futures::spawn_local(async move {
            let picked = wasm_bindgen_futures::JsFuture::from(picker).await;
            if current.get_value() != id {
                // cancelled while the picker was open: the file it made goes
                if let Ok(h) = picked {
                    super::disk_save::forget(h, vec![]);
                }
                return;
            }
            match picked {
                Ok(handle) => {
                    disk.set_value(Some((handle.clone(), vec![])));
                    send(first_files, Some(DiskTarget(handle)));
                }
                // the user closed the picker: nothing to do
                Err(e) if crate::worker::disk::error_name(&e) == "AbortError" => busy.set(None),
                Err(e) => {
                    busy.set(None);
                    error.set(Some(format!(
                        "cannot save there: {}",
                        crate::worker::blob::js_error_text(&e)
                    )));
                }
            }
        });
    };

    let cancel = move |_| {
        client.with_value(|c| {
            if let Some(c) = c {
                c.stop();
            }
        });
        current.set_value(0);
        busy.set(None);
        cancelled.set(true);
        // the writable dies with the worker; the file it was writing goes
        if let Some((t, names)) = disk.get_value() {
            super::disk_save::forget(t, names);
        }
        disk.set_value(None);
    };

    let add = move |ev: web_sys::Event| {
        let picked = take_files(&ev);
        others.update(|o| o.extend(picked));
        start(Action::Open);
    };

    // the chart: relative change per merged tensor, FIRST's order
    Effect::new(move |_| {
        if let Some(th) = theme {
            th.0.track();
        }
        let lg = log_y.get();
        let (Some(canvas), Some(p)) = (chart.get(), preview.get()) else {
            return;
        };
        let pts: Vec<Point> = p
            .changes
            .iter()
            .map(|c| Point {
                value: c.rel_change,
                flag: c.rel_change.is_some_and(|v| !v.is_finite()),
                selected: false,
            })
            .collect();
        frame.set_value(draw_overview(&canvas, &pts, lg));
        let _ = canvas.set_attribute("data-points", &pts.len().to_string());
    });
    let on_move = move |ev: web_sys::MouseEvent| {
        let (Some(canvas), Some(fr)) = (chart.get_untracked(), frame.get_value()) else {
            return;
        };
        let scale = canvas.width() as f64 / canvas.client_width().max(1) as f64;
        let text = fr.x_value(ev.offset_x() as f64 * scale).and_then(|x| {
            let i = x.round().max(0.0) as usize;
            preview.with_untracked(|p| {
                let c = p.as_ref()?.changes.get(i)?;
                Some(format!(
                    "{} · {}",
                    c.name,
                    c.rel_change
                        .map(|v| format!("{v:.3e}"))
                        .unwrap_or_else(|| "FIRST is all zero".into())
                ))
            })
        });
        hover.set(text);
    };

    // FIRST is whatever is open: a new file makes the inputs stale (reopened with the others)
    let ck = use_context::<super::context::PageCheckpoint>();
    let opened_id = move || ck.and_then(|c| c.opened.with(|f| f.as_ref().map(|f| f.id)));
    Effect::new(move |prev: Option<Option<u32>>| {
        let id = opened_id();
        if prev.is_some_and(|p| p != id) {
            inputs.set(vec![]);
            preview.set(None);
            error.set(None);
            if id.is_some() && others.with_untracked(|o| !o.is_empty()) {
                start(Action::Open);
            }
        }
        id
    });
    let first_name = move || {
        ck.and_then(|c| c.opened.with(|f| f.as_ref().map(|f| f.name.clone())))
            .or_else(|| inputs.with(|i| i.first().map(|f| f.name.clone())))
    };
    let is_busy = move || busy.get().is_some();
    let params = move || {
        let m = method.get();
        let w = (m == "linear").then(|| {
            let names: Vec<String> = inputs.with(|i| i.iter().map(|x| x.name.clone()).collect());
            weights
                .get()
                .into_iter()
                .enumerate()
                .map(|(k, s)| {
                    let label = format!("weight of {}", names.get(k).cloned().unwrap_or_default());
                    number(
                        s,
                        format!("merge-weight-{k}"),
                        label,
                        Some((0.0, 1.0, 0.05)),
                    )
                })
                .collect_view()
        });
        let a = (m == "add-difference" || m == "ties").then(|| {
            number(
                alpha,
                "merge-alpha".into(),
                "α (scale of the difference)".into(),
                Some((0.0, 2.0, 0.05)),
            )
        });
        let tt = (m == "slerp").then(|| {
            number(
                t,
                "merge-t".into(),
                "t (0 = FIRST)".into(),
                Some((0.0, 1.0, 0.01)),
            )
        });
        let d = (m == "ties").then(|| {
            number(
                density,
                "merge-density".into(),
                "density (kept fraction)".into(),
                Some((0.01, 1.0, 0.01)),
            )
        });
        view! { {w} {a} {tt} {d} }
    };

    view! {
        <section class="edit-panel merge-panel" data-testid="merge-panel">
            <div class="card-head">
                <h2>"Merge"</h2>
                <span class="muted" data-testid="merge-first">
                    {move || first_name().map(|n| format!("FIRST: {n}")).unwrap_or_else(|| "open a checkpoint first".into())}
                </span>
            </div>
            <p class="muted">
                "FIRST is the base: its tree, dtypes and non-floating tensors are kept. Tensors are \
                 matched by name; the arithmetic is float64, rounded once to FIRST's dtype — the \
                 same code as " <code>"weightscope merge"</code> "."
            </p>
            <div class="edit-row">
                <input type="file" id="merge-input" data-testid="merge-input" multiple class="visually-hidden" on:change=add />
                <label class="button" for="merge-input">"Add checkpoints…"</label>
                <button class="button small" data-testid="merge-clear"
                    disabled=move || others.with(|o| o.is_empty())
                    on:click=move |_| { others.set(vec![]); inputs.set(vec![]); preview.set(None); start(Action::Open); }>
                    "Remove all"
                </button>
            </div>
            <ol class="merge-inputs" data-testid="merge-inputs">
                {move || inputs.get().into_iter().enumerate().map(|(k, i)| view! {
                    <li data-tensors=i.tensors.to_string()>
                        <strong>{if k == 0 { "FIRST " } else { "" }}</strong>
                        {i.name.clone()}
                        <span class="muted">{format!(" · {} tensors · {}", i.tensors, human_bytes(i.bytes))}</span>
                    </li>
                }).collect_view()}
            </ol>
            {move || {
                let e = open_errors.get();
                (!e.is_empty()).then(|| view! {
                    <div class="note" data-testid="merge-open-errors">
                        <ul>{e.into_iter().map(|x| view! { <li>{x}</li> }).collect_view()}</ul>
                    </div>
                })
            }}
            <div class="edit-form">
                <label class="edit-row">
                    <span class="edit-label">"Method"</span>
                    <select data-testid="merge-method" prop:value=move || method.get()
                        on:change=move |ev| method.set(event_target_value(&ev))>
                        <option value="linear">"linear — Σ wᵢ·Mᵢ (weights normalised)"</option>
                        <option value="add-difference">"add difference — A + α·(B − C)"</option>
                        <option value="slerp">"slerp — two inputs"</option>
                        <option value="ties">"TIES — trim, elect sign, merge"</option>
                    </select>
                </label>
                {params}
                <label class="edit-row">
                    <span class="edit-label">"Only keys matching"</span>
                    <input type="text" class="edit-input" data-testid="merge-keys" placeholder="all (or a regex)"
                        prop:value=move || keys.get() on:input=move |ev| keys.set(event_target_value(&ev)) />
                </label>
            </div>
            <div class="edit-row">
                <button class="button" data-testid="merge-preview"
                    disabled=move || is_busy() || inputs.with(|i| i.len() < 2)
                    on:click=move |_| start(Action::Preview)>
                    "Preview change"
                </button>
                <label><input type="checkbox" prop:checked=move || log_y.get()
                    on:change=move |ev| log_y.set(event_target_checked(&ev)) />" log scale"</label>
            </div>
            {move || preview.get().map(|p| {
                let top = p.changes.iter()
                    .filter_map(|c| c.rel_change.map(|v| (v, c.name.clone())))
                    .fold(None::<(f64, String)>, |a, (v, n)| match a {
                        Some((b, _)) if b >= v => a,
                        _ => Some((v, n)),
                    });
                view! {
                    <p data-testid="merge-summary" data-merged=p.merged.to_string() data-copied=p.copied.to_string()>
                        {format!("{} tensors merged, {} copied from FIRST unchanged", p.merged, p.copied)}
                        {top.map(|(v, n)| format!(" · largest change: {n} ({v:.3e})"))}
                    </p>
                }
            })}
            <canvas node_ref=chart data-testid="merge-chart" width="640" height="200"
                class:hidden=move || preview.with(|p| p.is_none())
                on:mousemove=on_move on:mouseleave=move |_| hover.set(None)></canvas>
            <p class="muted merge-hover">{move || hover.get().unwrap_or_default()}</p>
            <div class="edit-row">
                <FormatSelect format=format testid="merge-format" label="Merge output format"
                    torch_label="PyTorch (.pth)" />
                <input type="text" class="edit-input" data-testid="merge-shard-size"
                    placeholder="one file (or shard size: 5GB, 500MB)"
                    prop:value=move || shard.get() on:input=move |ev| shard.set(event_target_value(&ev)) />
                <button class="button primary" data-testid="merge-run"
                    disabled=move || is_busy() || inputs.with(|i| i.len() < 2)
                    on:click=move |_| start(Action::Export)>
                    "Merge and download"
                </button>
                {move || busy.get().filter(|b| b.1 != Action::Open).map(|(_, a, d, t)| view! {
                    <span class="merge-status" data-testid="merge-progress" role="status">
                        <span class="spinner" aria-hidden="true"></span>
                        {format!("{} {}", if a == Action::Preview { "Computing…" } else { "Merging…" }, pct(d, t))}
                        <button class="button small" data-testid="merge-cancel" on:click=cancel>"Cancel"</button>
                    </span>
                })}
                {move || cancelled.get().then(|| view! {
                    <span class="muted" data-testid="merge-cancelled" role="status">"Cancelled: nothing was downloaded."</span>
                })}
            </div>
            <ErrorNote message=error testid="merge-error" title="Not merged" />
            {move || done.get().map(|d| {
                let n = d.files.len();
                view! {
                    <div class="note" data-testid="merge-done" data-files=n.to_string()
                        data-on-disk=d.on_disk.to_string()
                        data-wasm-memory=d.wasm_memory.to_string()>
                        <p>{format!(
                            "{} tensors merged, {} copied from FIRST, {} in {:.1} s (worker memory {})",
                            d.merged, d.copied,
                            human_bytes(d.files.iter().map(|f| f.1).sum()),
                            d.seconds, human_bytes(d.wasm_memory)
                        )}</p>
                        {(n > 1 && !d.on_disk).then(|| view! { <p>"Save every file into one folder (the index names the shards):"</p> })}
                        {d.on_disk.then(|| view! { <p>"Saved to disk where you chose:"</p> })}
                        <ul>
                            {d.files.into_iter().map(|(name, size, url)| if d.on_disk {
                                view! {
                                    <li data-testid="merge-saved">{name.clone()}
                                        <span class="muted">{format!(" {}", human_bytes(size))}</span></li>
                                }.into_any()
                            } else {
                                view! {
                                    <li><a data-testid="merge-file" href=url download=name.clone()>{name.clone()}</a>
                                        <span class="muted">{format!(" {}", human_bytes(size))}</span></li>
                                }.into_any()
                            }).collect_view()}
                        </ul>
                        {d.overflow.into_iter().map(|(k, c)| view! {
                            <p class="muted">{format!("overflow: {k}: {c} finite values became ±inf in FIRST's dtype")}</p>
                        }).collect_view()}
                        {d.dropped.into_iter().map(|x| view! { <p class="muted">{format!("not written: {x}")}</p> }).collect_view()}
                    </div>
                }
            })}
        </section>
    }
}
