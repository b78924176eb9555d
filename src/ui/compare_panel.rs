//! The Compare panel: open a second file B, align names with prefix maps, diff A
//! and B in the worker with progress, filter the lists by status, chart the relative change
//! per tensor in A's file order, and transplant selected keys (or a pattern) from B into A's
//! edit journal (undoable in the Edit panel, exported as usual).
//!
//! Contract: maps are typed as `A_PREFIX=B_PREFIX` pairs separated by commas or new lines
//! (first matching rule wins, as in `weightscope diff --map`). Transplanting selected rows (or
//! a pattern without a replacement) maps each B key back to A's name through the same rules, so
//! A's tensors are replaced, in one `transplant` operation; when the worker refuses the batch,
//! each key is tried alone: what is valid is applied, what was refused is listed with the
//! reason. Rows whose shape or dtype differ say that a transplant refuses them. Every
//! message shows next to the action that caused it. A comparison that matched no names
//! suggests a prefix map; clicking a row's name selects A's tensor in the tree and opens the A/B
//! view of it in this panel (scrolled into view), whose "Inspect A's tensor" shows the Inspector.
//! Every B opened stays open (transplants refer to it); the latest is the chosen one, and with
//! two or more a select chooses the B that the diff, the A/B view and transplants use.
//! Test hooks (`data-testid`): `compare-panel`, `compare-input`, `compare-b` (data-tensors,
//! data-input), `compare-b-choose`,
//! `compare-map`, `compare-run`, `compare-progress`, `diff-filter` (select: all / only_a /
//! only_b / mismatched / changed), `diff-only-a`, `diff-only-b`, `diff-mismatched`,
//! `diff-changed` (lists; rows carry `data-key` and a checkbox), `diff-identical`,
//! `diff-chart` (canvas), `transplant-selected`, `transplant-pattern`,
//! `transplant-replacement`, `transplant-apply`, `compare-error` (opening B / comparing, next to
//! Compare), `transplant-result` (`data-applied`, `data-refused`; refused keys as `li`),
//! `transplant-error` (next to the pattern), `compare-suggest` (`data-map`, with the button
//! `compare-suggest-use`), `compare-done`.

use super::compare_model::{parse_maps, split_selected, suggest_map, transplant_op};
use super::context::PageCheckpoint;
use super::hub;
use super::widgets::{ErrorNote, TextField};
use crate::format::fastmap::{KeyMap, KeySet};
use crate::worker::protocol::{DiffReply, JsFile, OpSpec, Request, Response};
use leptos::html::Canvas;
use leptos::prelude::*;
use std::collections::BTreeSet;
use web_sys::HtmlInputElement;

/// B's name of A key `k` (first matching rule).
fn to_b(k: &str, maps: &[(String, String)]) -> String {
    crate::stats::diff::map_key(k, maps)
}

/// A selected-rows transplant in progress: the batch, then (after a refusal) one key at a time.
#[derive(Default)]
struct Batch {
    /// Request id → the keys it carries.
    pending: KeyMap<u32, Vec<String>>,
    applied: usize,
    refused: Vec<String>,
    maps: Vec<(String, String)>,
}

/// What the last selected-rows transplant did.
#[derive(Clone, Default, PartialEq)]
struct BatchResult {
    applied: usize,
    refused: Vec<String>,
    done: bool,
}

/// The compare panel.
#[component]
pub fn ComparePanel() -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    let theme = use_context::<super::charts::Theme>();
    let b_name = RwSignal::new(None::<(String, u64)>);
    // every B opened for this A (input number, name, tensors) and the chosen one's input
    let bs = RwSignal::new(Vec::<(u32, String, u64)>::new());
    let b_input = RwSignal::new(0u32);
    let error = RwSignal::new(None::<String>);
    let result = RwSignal::new(None::<BatchResult>);
    let batch = StoredValue::new(Batch::default());
    let maps_text = RwSignal::new(String::new());
    let diff = RwSignal::new(None::<DiffReply>);
    let progress = RwSignal::new(None::<(u64, u64)>);
    let filter = RwSignal::new("all".to_string());
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let transplanted = RwSignal::new(0u32);
    let ours = StoredValue::new(KeySet::<u32>::new());
    let diff_id = StoredValue::new(0u32);
    let chart = NodeRef::<Canvas>::new();
    let ab_key = RwSignal::new(None::<String>);
    let ab_maps = Signal::derive(move || parse_maps(&maps_text.get()).unwrap_or_default());

    let send = move |req: Request<JsFile>| {
        ours.update_value(|s| {
            s.insert(req.id());
        });
        if let Err(e) = hub::send(&req) {
            error.set(Some(e));
        }
    };

    let handle = hub::listen(move |r| match r {
        Response::Summary(_) => {
            ab_key.set(None);
            b_name.set(None);
            bs.set(vec![]);
            b_input.set(0);
            diff.set(None);
            selected.set(BTreeSet::new());
            error.set(None);
        }
        Response::OpenedB(o) if ours.with_value(|s| s.contains(&o.id)) => match &o.error {
            None => {
                b_name.set(Some((o.name.clone(), o.tensors)));
                b_input.set(o.input);
                bs.update(|v| {
                    if !v.iter().any(|b| b.0 == o.input) {
                        v.push((o.input, o.name.clone(), o.tensors));
                    }
                });
                ab_key.set(None);
                error.set(None);
                diff.set(None);
            }
            Some(e) => error.set(Some(e.clone())),
        },
        Response::DiffProgress(p) if p.id == diff_id.get_value() => {
            progress.set(Some((p.done, p.total)))
        }
        Response::Diff(d) if d.id == diff_id.get_value() => {
            progress.set(None);
            match &d.error {
                Some(e) => error.set(Some(e.clone())),
                None => {
                    selected.set(BTreeSet::new());
                    diff.set(Some(d.clone()));
                }
            }
        }
        Response::Journal(j) if batch.with_value(|b| b.pending.contains_key(&j.id)) => {
            let keys = batch
                .try_update_value(|b| b.pending.remove(&j.id))
                .flatten()
                .unwrap_or_default();
            match &j.error {
                None => {
                    transplanted.update(|n| *n += 1);
                    batch.update_value(|b| b.applied += keys.len());
                }
                // the batch was refused: try each key alone
                Some(_) if keys.len() > 1 => {
                    let maps = batch.with_value(|b| b.maps.clone());
                    for k in keys {
                        if let Some(op) = transplant_op(std::slice::from_ref(&k), &maps) {
                            let id = hub::next_id();
                            batch.update_value(|b| {
                                b.pending.insert(id, vec![k.clone()]);
                            });
                            send(Request::Edit { id, op });
                        }
                    }
                }
                Some(e) => {
                    batch.update_value(|b| b.refused.push(format!("{}: {e}", keys.join(", "))))
                }
            }
            batch.with_value(|b| {
                result.set(Some(BatchResult {
                    applied: b.applied,
                    refused: b.refused.clone(),
                    done: b.pending.is_empty(),
                }))
            });
        }
        Response::Error(e) if e.id.is_some_and(|id| ours.with_value(|s| s.contains(&id))) => {
            progress.set(None);
            error.set(Some(e.error.clone()));
        }
        _ => {}
    });
    on_cleanup(move || hub::unlisten(handle));

    Effect::new(move |_| {
        if let Some(t) = theme {
            t.0.track();
        }
        let d = diff.get();
        if let (Some(c), Some(d)) = (chart.get(), d) {
            let vals: Vec<f64> = d.changed.iter().map(|c| c.rel_l2.unwrap_or(0.0)).collect();
            super::charts::draw_bars(&c, &vals, "relative L2 change per tensor (A's file order)");
        }
    });

    let on_file = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let file = input.files().and_then(|l| l.item(0));
        input.set_value("");
        if let Some(f) = file {
            send(Request::OpenB {
                id: hub::next_id(),
                file: JsFile(f),
            });
        }
    };
    let run_diff = move || match parse_maps(&maps_text.get_untracked()) {
        Ok(maps) => {
            let id = hub::next_id();
            diff_id.set_value(id);
            error.set(None);
            progress.set(Some((0, 0)));
            send(Request::Diff { id, maps });
        }
        Err(e) => error.set(Some(e)),
    };
    let run = move |_| run_diff();
    let transplant_selected = move |_| {
        let maps = match parse_maps(&maps_text.get_untracked()) {
            Ok(m) => m,
            Err(e) => {
                return result.set(Some(BatchResult {
                    refused: vec![e],
                    done: true,
                    ..BatchResult::default()
                }))
            }
        };
        let keys: Vec<String> = selected.get_untracked().into_iter().collect();
        if keys.is_empty() {
            return result.set(Some(BatchResult {
                refused: vec!["select rows to transplant first".into()],
                done: true,
                ..BatchResult::default()
            }));
        }
        let mismatched: Vec<(String, String, String)> = diff.with_untracked(|d| {
            d.iter()
                .flat_map(|d| &d.mismatched)
                .map(|m| (to_b(&m.key, &maps), m.a.clone(), m.b.clone()))
                .collect()
        });
        let (ok, refused) = split_selected(&keys, &mismatched);
        let mut b = Batch {
            refused,
            maps: maps.clone(),
            ..Batch::default()
        };
        if let Some(op) = transplant_op(&ok, &maps) {
            let id = hub::next_id();
            b.pending.insert(id, ok);
            batch.set_value(b);
            send(Request::Edit { id, op });
        } else {
            batch.set_value(b);
        }
        batch.with_value(|b| {
            result.set(Some(BatchResult {
                applied: 0,
                refused: b.refused.clone(),
                done: b.pending.is_empty(),
            }))
        });
    };
    // A's tensor of a diff key, selected for the Inspector
    let open_key = move |key: &str| {
        let i = ck.opened.with_untracked(|f| {
            f.as_ref()?
                .entries
                .iter()
                .position(|e| e.path.join(".") == key || e.path.join("/") == key)
        });
        if let Some(i) = i {
            ck.selected.set(Some(i as u32));
        }
        ab_key.set(Some(key.to_string()));
    };
    // the A/B view's "Inspect A's tensor": select it and show the Inspector
    let tab = use_context::<super::app::ActiveTab>();
    let inspect = Callback::new(move |key: String| {
        open_key(&key);
        if let Some(t) = tab {
            t.0.set(super::app::Tab::Inspector);
        }
    });

    // a row: its B key is what a transplant selects
    // `why_not`: why a transplant of this row would be refused (said on the row; a batch
    // holding it applies the others and lists it as refused)
    let row = move |label: String,
                    b_key: Option<String>,
                    extra: String,
                    in_a: bool,
                    why_not: Option<String>| {
        let checkbox = b_key.map(|k| {
            let k2 = k.clone();
            view! {
                <input type="checkbox" class="diff-pick" title=why_not.clone().unwrap_or_default()
                    prop:checked=move || selected.with(|s| s.contains(&k))
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        selected.update(|s| {
                            if on { s.insert(k2.clone()); } else { s.remove(&k2); }
                        });
                    } />
            }
        });
        let key = label.clone();
        let disabled_row = why_not.is_some();
        let name = if in_a {
            let (k, k2) = (label.clone(), label.clone());
            view! {
                <button class="link diff-open" data-testid="diff-open" title="A and B side by side"
                    aria-pressed=move || ab_key.with(|a| a.as_deref() == Some(k2.as_str())).to_string()
                    on:click=move |_| open_key(&k)><code>{label}</code></button>
            }
            .into_any()
        } else {
            view! { <code>{label}</code> }.into_any()
        };
        view! {
            <li data-key=key class:not-transplantable=disabled_row>
                {checkbox}
                {name}
                <span class="muted">{extra}</span>
                {why_not.map(|w| view! { <span class="why-not">{w}</span> })}
            </li>
        }
    };
    let shown = move |what: &str| {
        let f = filter.get();
        f == "all" || f == what
    };

    view! {
        <section class="card compare-panel" data-testid="compare-panel">
            <header class="card-head">
                <h2>"Compare"</h2>
                <span class="muted">
                    "A: " <strong>{move || ck.opened.with(|f| f.as_ref().map(|f| f.name.clone()))}</strong>
                    {move || match b_name.get() {
                        Some((n, _)) => view! { " · B: " <strong data-testid="compare-b-name">{n}</strong> }.into_any(),
                        None => view! { " · B: the file you pick here" }.into_any(),
                    }}
                </span>
            </header>
            <div class="edit-row">
                <span class="edit-label">"File B"</span>
                <input type="file" data-testid="compare-input" on:change=on_file />
                {move || b_name.get().map(|(n, t)| view! {
                    <span data-testid="compare-b" data-tensors=t.to_string() data-input=move || b_input.get().to_string()>
                        <strong>{n}</strong>{format!(" · {t} tensors")}
                    </span>
                })}
                {move || (bs.with(|v| v.len()) > 1).then(|| view! {
                    <label class="muted small">"compare with "
                        <select data-testid="compare-b-choose" title="The B file that Compare, the A/B view and transplants use"
                            on:change=move |ev| {
                                if let Ok(input) = event_target_value(&ev).parse::<u32>() {
                                    send(Request::ChooseB { id: hub::next_id(), input });
                                }
                            }>
                            {bs.get().into_iter().map(|(i, n, _)| view! {
                                <option value=i.to_string() selected=move || b_input.get() == i>{format!("#{i} {n}")}</option>
                            }).collect_view()}
                        </select>
                    </label>
                })}
            </div>
            <div class="edit-row">
                <span class="edit-label">"Prefix map"</span>
                <TextField value=maps_text testid="compare-map" placeholder="=module.   (B's names have module. in front)"
                    title="A_PREFIX=B_PREFIX, comma-separated: =module. when B's keys start with module. and A's do not; module.= for the reverse" />
                <button class="button small" data-testid="compare-run"
                    disabled=move || b_name.get().is_none()
                    on:click=run>"Compare"</button>
                {move || progress.get().map(|(d, t)| view! {
                    <span class="progress" data-testid="compare-progress" role="status">
                        <span class="spinner" aria-hidden="true"></span>
                        {if t == 0 { "Comparing…".to_string() } else { format!("Comparing… {:.0}%", 100.0 * d as f64 / t as f64) }}
                    </span>
                })}
            </div>
            <ErrorNote message=error testid="compare-error" />
            <p class="muted small map-hint">"A_PREFIX=B_PREFIX: " <code>"=module."</code> " when B's names have " <code>"module."</code> " in front and A's do not, " <code>"module.="</code> " for the reverse."</p>
            {move || diff.get().map(|d| {
                let maps = parse_maps(&maps_text.get_untracked()).unwrap_or_default();
                let DiffReply { only_a, only_b, mismatched, changed, identical, .. } = d;
                let (n_only_a, n_only_b, n_mismatched, n_changed) =
                    (only_a.len(), only_b.len(), mismatched.len(), changed.len());
                let matched = identical as usize + n_mismatched + n_changed;
                let suggestion = (matched == 0).then(|| suggest_map(&only_a, &only_b));
                view! {
                    <div class="diff" data-testid="compare-done">
                        {suggestion.map(|s| map_suggestion(s, maps_text, run_diff))}
                        <div class="edit-row">
                            <span class="edit-label">"Show"</span>
                            <select data-testid="diff-filter" prop:value=move || filter.get()
                                on:change=move |ev| filter.set(event_target_value(&ev))>
                                <option value="all">"all"</option>
                                <option value="only_a">{format!("only in A ({})", only_a.len())}</option>
                                <option value="only_b">{format!("only in B ({})", only_b.len())}</option>
                                <option value="mismatched">{format!("shape/dtype differ ({})", mismatched.len())}</option>
                                <option value="changed">{format!("values differ ({})", changed.len())}</option>
                            </select>
                            <span data-testid="diff-identical" data-count=identical.to_string()>
                                {format!("{identical} identical")}
                            </span>
                        </div>
                        <canvas node_ref=chart data-testid="diff-chart" width="640" height="220"
                            data-bars=changed.len().to_string()></canvas>
                        <p class="muted small">"Click a name to see A and B side by side (here); the view's \"Inspect A's tensor\" opens it in the Inspector."</p>
                        <super::ab_view::AbView key=ab_key maps=ab_maps inspect=inspect />
                        <h3 class:hidden=move || !shown("only_a")>{format!("Only in A ({})", n_only_a)}</h3>
                        <ul data-testid="diff-only-a" class:hidden=move || !shown("only_a")>
                            {only_a.into_iter().map(|k| row(k, None, String::new(), true, None)).collect_view()}
                        </ul>
                        <h3 class:hidden=move || !shown("only_b")>{format!("Only in B ({})", n_only_b)}</h3>
                        <ul data-testid="diff-only-b" class:hidden=move || !shown("only_b")>
                            {only_b.into_iter().map(|k| row(k.clone(), Some(k), String::new(), false, None)).collect_view()}
                        </ul>
                        <h3 class:hidden=move || !shown("mismatched")>{format!("Shape or dtype differs ({})", n_mismatched)}</h3>
                        <ul data-testid="diff-mismatched" class:hidden=move || !shown("mismatched")>
                            {mismatched.into_iter().map(|m| {
                                let b = to_b(&m.key, &maps);
                                let why = "a transplant refuses it: B's tensor has another shape or dtype than A's".to_string();
                                row(m.key, Some(b), format!(" A {} · B {}", m.a, m.b), true, Some(why))
                            }).collect_view()}
                        </ul>
                        <h3 class:hidden=move || !shown("changed")>{format!("Values differ ({})", n_changed)}</h3>
                        <ul data-testid="diff-changed" class:hidden=move || !shown("changed")>
                            {changed.into_iter().map(|c| {
                                let f = |v: Option<f64>| v.map(|x| format!("{x:.3e}")).unwrap_or_else(|| "–".into());
                                let extra = format!(" max|Δ| {} · rel L2 {} · cos {}", f(c.max_abs), f(c.rel_l2), f(c.cosine));
                                let b = to_b(&c.key, &maps);
                                row(c.key, Some(b), extra, true, None)
                            }).collect_view()}
                        </ul>
                        <div class="edit-row">
                            <button class="button small" data-testid="transplant-selected"
                                on:click=transplant_selected>
                                {move || format!("Transplant {} selected from B into A", selected.with(|s| s.len()))}
                            </button>
                            {move || result.get().map(batch_result)}
                        </div>
                    </div>
                }
            })}
            <PatternTransplant maps_text=maps_text has_b=Signal::derive(move || b_name.with(|b| b.is_some()))
                transplanted=transplanted />
        </section>
    }
}

/// When no name is in both files: the prefix map `suggested` (a button uses it and compares
/// again), or how a map aligns names.
fn map_suggestion(
    suggested: Option<String>,
    maps_text: RwSignal<String>,
    run_diff: impl Fn() + Copy + 'static,
) -> AnyView {
    match suggested {
        Some(m) => {
            let (m2, m3) = (m.clone(), m.clone());
            view! {
                <div class="panel note-panel small" data-testid="compare-suggest" data-map=m3>
                    "No tensor name is in both files. Try the prefix map " <code>{m}</code> " — "
                    <button class="mini" data-testid="compare-suggest-use" on:click=move |_| {
                        maps_text.set(m2.clone());
                        run_diff();
                    }>"use it and compare"</button>
                </div>
            }
            .into_any()
        }
        None => view! {
            <div class="panel note-panel small" data-testid="compare-suggest" data-map="">
                "No tensor name is in both files. A prefix map (A_PREFIX=B_PREFIX) aligns names that differ by a prefix."
            </div>
        }
        .into_any(),
    }
}

/// What a selected-rows transplant did: applied and refused counts, each refusal with its reason.
fn batch_result(r: BatchResult) -> impl IntoView {
    let n = r.refused.len();
    view! {
        <div class="transplant-result" data-testid="transplant-result" role="status"
            data-applied=r.applied.to_string() data-refused=n.to_string() data-done=r.done.to_string()>
            {if r.done {
                format!("Applied {} tensor{} (see Edit){}", r.applied, if r.applied == 1 { "" } else { "s" },
                    if n > 0 { format!("; refused {n}:") } else { String::new() })
            } else { "Transplanting…".to_string() }}
            {(n > 0).then(|| view! {
                <ul class="refused">{r.refused.into_iter().map(|x| view! { <li>{x}</li> }).collect_view()}</ul>
            })}
        </div>
    }
}

/// "Transplant by pattern": B's tensors whose names match a regex, renamed by the replacement,
/// or (without one) mapped back to A's names through the prefix map `maps_text`. A refusal shows
/// next to the button; `transplanted` counts the transplants applied from this panel.
#[component]
fn PatternTransplant(
    maps_text: RwSignal<String>,
    has_b: Signal<bool>,
    transplanted: RwSignal<u32>,
) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let ids = StoredValue::new(KeySet::<u32>::new());
    let pattern = RwSignal::new(String::new());
    let replacement = RwSignal::new(String::new());
    let handle = hub::listen(move |r| match r {
        Response::Journal(j) if ids.with_value(|s| s.contains(&j.id)) => match &j.error {
            Some(e) => error.set(Some(e.clone())),
            None => {
                error.set(None);
                transplanted.update(|n| *n += 1);
            }
        },
        Response::Error(e) if e.id.is_some_and(|id| ids.with_value(|s| s.contains(&id))) => {
            error.set(Some(e.error.clone()))
        }
        _ => {}
    });
    on_cleanup(move || hub::unlisten(handle));
    let apply = move |_| {
        let replacement = Some(replacement.get_untracked()).filter(|r| !r.is_empty());
        let maps = match parse_maps(&maps_text.get_untracked()) {
            Ok(m) => m,
            Err(e) => return error.set(Some(e)),
        };
        let id = hub::next_id();
        ids.update_value(|s| {
            s.insert(id);
        });
        error.set(None);
        let req = Request::Edit {
            id,
            op: OpSpec::Transplant {
                pattern: pattern.get_untracked(),
                // without a replacement, B's names are mapped back to A's through the map
                maps: if replacement.is_none() { maps } else { vec![] },
                replacement,
            },
        };
        if let Err(e) = hub::send(&req) {
            error.set(Some(e));
        }
    };
    view! {
        <div class="edit-row">
            <span class="edit-label">"Transplant by pattern"</span>
            <TextField value=pattern testid="transplant-pattern" placeholder="^encoder\\." />
            <TextField value=replacement testid="transplant-replacement" placeholder="backbone.encoder." />
            <button class="button small" data-testid="transplant-apply"
                disabled=move || !has_b.get()
                title="Without a replacement, B's names are mapped to A's through the prefix map above"
                on:click=apply>"Transplant"</button>
            <ErrorNote message=error testid="transplant-error" />
            <span class="muted" data-testid="transplant-count" data-count=move || transplanted.get().to_string()>
                {move || match transplanted.get() { 0 => String::new(), n => format!("{n} transplant(s) in A's journal — see Edit") }}
            </span>
        </div>
    }
}
