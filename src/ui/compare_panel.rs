//! The Compare panel: open a second file B, align names with prefix maps, diff A
//! and B in the worker with progress, filter the lists by status, chart the relative change
//! per tensor in A's file order, and transplant selected keys (or a pattern) from B into A's
//! edit journal (undoable in the Edit panel, exported as usual).
//!
//! Contract: maps are typed as `A_PREFIX=B_PREFIX` pairs separated by commas or new lines
//! (first matching rule wins, as in `weightscope diff --map`). Transplanting selected rows maps
//! each B key back to A's name through the same rules and asks the worker for one
//! `transplant` operation per rule (shape checks there; a refusal shows in `compare-error`).
//! Test hooks (`data-testid`): `compare-panel`, `compare-input`, `compare-b` (data-tensors),
//! `compare-map`, `compare-run`, `compare-progress`, `diff-filter` (select: all / only_a /
//! only_b / mismatched / changed), `diff-only-a`, `diff-only-b`, `diff-mismatched`,
//! `diff-changed` (lists; rows carry `data-key` and a checkbox), `diff-identical`,
//! `diff-chart` (canvas), `transplant-selected`, `transplant-pattern`,
//! `transplant-replacement`, `transplant-apply`, `compare-error`, `compare-done`.

use super::compare_model::{parse_maps, transplant_ops};
use super::hub;
use crate::worker::protocol::{DiffReply, JsFile, OpSpec, Request, Response};
use leptos::html::Canvas;
use leptos::prelude::*;
use std::collections::{BTreeSet, HashSet};
use web_sys::HtmlInputElement;

/// B's name of A key `k` (first matching rule).
fn to_b(k: &str, maps: &[(String, String)]) -> String {
    crate::stats::diff::map_key(k, maps)
}

fn draw_chart(canvas: &web_sys::HtmlCanvasElement, d: &DiffReply) -> Result<(), String> {
    use plotters::prelude::*;
    use plotters_canvas::CanvasBackend;
    let backend = CanvasBackend::with_canvas_object(canvas.clone()).ok_or("no 2d context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let vals: Vec<f64> = d.changed.iter().map(|c| c.rel_l2.unwrap_or(0.0)).collect();
    let n = vals.len().max(1);
    let top = vals.iter().cloned().fold(0.0f64, f64::max).max(1e-12) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(56)
        .caption(
            "relative L2 change per tensor (A's file order)",
            ("sans-serif", 13),
        )
        .build_cartesian_2d(0usize..n, 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("tensor #")
        .y_label_formatter(&|v| format!("{v:.2e}"))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            vals.iter().enumerate().map(|(i, v)| {
                Rectangle::new([(i, 0.0), (i + 1, *v)], RGBColor(59, 110, 200).filled())
            }),
        )
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// The compare panel.
#[component]
pub fn ComparePanel() -> impl IntoView {
    let b_name = RwSignal::new(None::<(String, u64)>);
    let error = RwSignal::new(None::<String>);
    let maps_text = RwSignal::new(String::new());
    let diff = RwSignal::new(None::<DiffReply>);
    let progress = RwSignal::new(None::<(u64, u64)>);
    let filter = RwSignal::new("all".to_string());
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let t_pat = RwSignal::new(String::new());
    let t_repl = RwSignal::new(String::new());
    let transplanted = RwSignal::new(0u32);
    let ours = StoredValue::new(HashSet::<u32>::new());
    let diff_id = StoredValue::new(0u32);
    let chart = NodeRef::<Canvas>::new();

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
            b_name.set(None);
            diff.set(None);
            selected.set(BTreeSet::new());
            error.set(None);
        }
        Response::OpenedB(o) if ours.with_value(|s| s.contains(&o.id)) => match &o.error {
            None => {
                b_name.set(Some((o.name.clone(), o.tensors)));
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
        Response::Journal(j) if ours.with_value(|s| s.contains(&j.id)) => match &j.error {
            Some(e) => error.set(Some(e.clone())),
            None => {
                error.set(None);
                transplanted.update(|n| *n += 1);
            }
        },
        Response::Error(e) if e.id.is_some_and(|id| ours.with_value(|s| s.contains(&id))) => {
            progress.set(None);
            error.set(Some(e.error.clone()));
        }
        _ => {}
    });
    on_cleanup(move || hub::unlisten(handle));

    Effect::new(move |_| {
        let d = diff.get();
        if let (Some(c), Some(d)) = (chart.get(), d) {
            if let Err(e) = draw_chart(&c, &d) {
                error.set(Some(format!("chart: {e}")));
            }
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
    let run = move |_| match parse_maps(&maps_text.get_untracked()) {
        Ok(maps) => {
            let id = hub::next_id();
            diff_id.set_value(id);
            error.set(None);
            progress.set(Some((0, 0)));
            send(Request::Diff { id, maps });
        }
        Err(e) => error.set(Some(e)),
    };
    let transplant_selected = move |_| {
        let maps = match parse_maps(&maps_text.get_untracked()) {
            Ok(m) => m,
            Err(e) => return error.set(Some(e)),
        };
        let keys: Vec<String> = selected.get_untracked().into_iter().collect();
        if keys.is_empty() {
            return error.set(Some("select rows to transplant first".into()));
        }
        for op in transplant_ops(&keys, &maps) {
            send(Request::Edit {
                id: hub::next_id(),
                op,
            });
        }
    };
    let transplant_pattern = move |_| {
        send(Request::Edit {
            id: hub::next_id(),
            op: OpSpec::Transplant {
                pattern: t_pat.get_untracked(),
                replacement: Some(t_repl.get_untracked()).filter(|r| !r.is_empty()),
            },
        })
    };

    // a row: its B key is what a transplant selects
    let row = move |label: String, b_key: Option<String>, extra: String| {
        let checkbox = b_key.map(|k| {
            let k2 = k.clone();
            view! {
                <input type="checkbox" class="diff-pick"
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
        view! {
            <li data-key=key>
                {checkbox}
                <code>{label}</code>
                <span class="muted">{extra}</span>
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
                <span class="muted">"A is the open file; B is the file you pick here"</span>
            </header>
            <div class="edit-row">
                <span class="edit-label">"File B"</span>
                <input type="file" data-testid="compare-input" on:change=on_file />
                {move || b_name.get().map(|(n, t)| view! {
                    <span data-testid="compare-b" data-tensors=t.to_string()>
                        <strong>{n}</strong>{format!(" · {t} tensors")}
                    </span>
                })}
            </div>
            <div class="edit-row">
                <span class="edit-label">"Prefix map"</span>
                <input type="text" class="edit-input" data-testid="compare-map" placeholder="module.=, backbone.=encoder."
                    prop:value=move || maps_text.get()
                    on:input=move |ev| maps_text.set(event_target_value(&ev)) />
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
            {move || error.get().map(|e| view! {
                <div class="panel error" data-testid="compare-error" role="alert"><p>{e}</p></div>
            })}
            {move || diff.get().map(|d| {
                let maps = parse_maps(&maps_text.get_untracked()).unwrap_or_default();
                let DiffReply { only_a, only_b, mismatched, changed, identical, .. } = d;
                let (n_only_a, n_only_b, n_mismatched, n_changed) =
                    (only_a.len(), only_b.len(), mismatched.len(), changed.len());
                view! {
                    <div class="diff" data-testid="compare-done">
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
                        <h3 class:hidden=move || !shown("only_a")>{format!("Only in A ({})", n_only_a)}</h3>
                        <ul data-testid="diff-only-a" class:hidden=move || !shown("only_a")>
                            {only_a.into_iter().map(|k| row(k, None, String::new())).collect_view()}
                        </ul>
                        <h3 class:hidden=move || !shown("only_b")>{format!("Only in B ({})", n_only_b)}</h3>
                        <ul data-testid="diff-only-b" class:hidden=move || !shown("only_b")>
                            {only_b.into_iter().map(|k| row(k.clone(), Some(k), String::new())).collect_view()}
                        </ul>
                        <h3 class:hidden=move || !shown("mismatched")>{format!("Shape or dtype differs ({})", n_mismatched)}</h3>
                        <ul data-testid="diff-mismatched" class:hidden=move || !shown("mismatched")>
                            {mismatched.into_iter().map(|m| {
                                let b = to_b(&m.key, &maps);
                                row(m.key, Some(b), format!(" A {} · B {}", m.a, m.b))
                            }).collect_view()}
                        </ul>
                        <h3 class:hidden=move || !shown("changed")>{format!("Values differ ({})", n_changed)}</h3>
                        <ul data-testid="diff-changed" class:hidden=move || !shown("changed")>
                            {changed.into_iter().map(|c| {
                                let f = |v: Option<f64>| v.map(|x| format!("{x:.3e}")).unwrap_or_else(|| "–".into());
                                let extra = format!(" max|Δ| {} · rel L2 {} · cos {}", f(c.max_abs), f(c.rel_l2), f(c.cosine));
                                let b = to_b(&c.key, &maps);
                                row(c.key, Some(b), extra)
                            }).collect_view()}
                        </ul>
                        <div class="edit-row">
                            <button class="button small" data-testid="transplant-selected"
                                on:click=transplant_selected>
                                {move || format!("Transplant {} selected from B into A", selected.with(|s| s.len()))}
                            </button>
                        </div>
                    </div>
                }
            })}
            <div class="edit-row">
                <span class="edit-label">"Transplant by pattern"</span>
                <input type="text" class="edit-input" data-testid="transplant-pattern" placeholder="^encoder\\."
                    prop:value=move || t_pat.get()
                    on:input=move |ev| t_pat.set(event_target_value(&ev)) />
                <input type="text" class="edit-input" data-testid="transplant-replacement" placeholder="backbone.encoder."
                    prop:value=move || t_repl.get()
                    on:input=move |ev| t_repl.set(event_target_value(&ev)) />
                <button class="button small" data-testid="transplant-apply"
                    disabled=move || b_name.get().is_none()
                    on:click=transplant_pattern>"Transplant"</button>
                <span class="muted" data-testid="transplant-count" data-count=move || transplanted.get().to_string()>
                    {move || match transplanted.get() { 0 => String::new(), n => format!("{n} transplant(s) in A's journal — see Edit") }}
                </span>
            </div>
        </section>
    }
}
