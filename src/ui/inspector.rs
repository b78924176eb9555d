//! The tensor inspector: metadata of the selected tensor, its statistics, a histogram (linear /
//! log, bin count, hover shows a bin's range and count), the value viewer
//! ([`super::value_viewer`]) and, for 2-D tensors, the heatmap ([`super::heatmap_view`]).
//!
//! Contract: selecting a tensor sends a `stats` request with
//! fresh ids; answers to older ids are ignored. Hooks: `inspector` (the panel), `stats` (each
//! number is a `dd` with `data-stat` = name and `data-value` = the full-precision number),
//! `histogram` (the canvas; `data-drawn` = the tensor index once drawn). Statistics taking over
//! 200 ms show the shared progress bar.

use super::charts::{draw_histogram, Frame};
use super::context::PageCheckpoint;
use super::tree_view::{copy_text, shape_text};
use crate::display::{group_digits, human_bytes, short_float};
use crate::stats::TensorStats;
use crate::worker::protocol::{Request, RequestId, Response, TensorSource};
use leptos::prelude::*;
use web_sys::MouseEvent;

/// A long-running request the page shows a progress bar for.
#[derive(Debug, Clone, PartialEq)]
pub struct Busy {
    pub id: RequestId,
    pub label: String,
    pub done: u64,
    pub total: u64,
    /// Shown (the work has taken over 200 ms).
    pub shown: bool,
}

impl Busy {
    /// Start showing request `id`'s work in `busy` (`total` bytes), its bar once it has taken
    /// over 200 ms (short work never flashes a bar).
    pub fn begin(busy: RwSignal<Option<Busy>>, id: RequestId, label: String, total: u64) {
        busy.set(Some(Busy {
            id,
            label,
            done: 0,
            total,
            shown: false,
        }));
        set_timeout(
            move || {
                busy.update(|b| {
                    if let Some(b) = b.as_mut().filter(|b| b.id == id) {
                        b.shown = true;
                    }
                })
            },
            std::time::Duration::from_millis(200),
        );
    }
}

/// The inspector panel. `busy` is the page's progress state for the statistics request.
#[component]
pub fn Inspector(busy: RwSignal<Option<Busy>>) -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    let theme = use_context::<super::charts::Theme>();
    let bins = RwSignal::new(64u32);
    let log = RwSignal::new(false);
    let stats = RwSignal::new(None::<(u32, TensorStats)>);
    // the shown entry the requests in flight are for (answers carry the source's index)
    let asked = StoredValue::new(0u32);
    let error = RwSignal::new(None::<String>);
    let ids = StoredValue::new([0 as RequestId; 1]);
    let frame = StoredValue::new(None::<Frame>);
    let hover = RwSignal::new(None::<String>);
    let hist_ref = NodeRef::<leptos::html::Canvas>::new();

    ck.listen(move |r| {
        let [s] = ids.get_value();
        match r {
            Response::Stats(x) if x.id == s => {
                stats.set(Some((asked.get_value(), x.stats.clone())));
                busy.update(|b| {
                    if b.as_ref().is_some_and(|b| b.id == s) {
                        *b = None;
                    }
                });
            }
            Response::Progress { id, done, total } if *id == s => busy.update(|b| {
                if let Some(b) = b.as_mut().filter(|b| b.id == s) {
                    b.done = *done;
                    b.total = *total;
                }
            }),
            Response::Error(e) if e.id == Some(s) => {
                busy.set(None);
                error.set(Some(e.error.clone()));
            }
            _ => {}
        }
    });

    // new selection or bin count: ask the worker
    // (a new view of the file re-reads the selected entry's source: an edit may change it)
    Effect::new(move |_prev: Option<Option<TensorSource>>| {
        let t = ck.selected.get();
        let b = bins.get();
        let Some(t) = t else {
            stats.set(None);
            return None;
        };
        let f = ck.opened.get()?;
        let e = f.entries.get(t as usize)?;
        let source = f.source_of(t);
        error.set(None);
        asked.set_value(t);
        let sid = ck.new_id();
        ids.update_value(|i| i[0] = sid);
        ck.send(&Request::StatsOf {
            id: sid,
            source,
            bins: b,
        });
        let label = format!(
            "Statistics of {}",
            f.tree.path(f.tree.tensor_node[t as usize])
        );
        Busy::begin(busy, sid, label, e.bytes);
        Some(source)
    });

    // draw the histogram when its data or the scale changes
    Effect::new(move |_| {
        if let Some(t) = theme {
            t.0.track();
        }
        let lg = log.get();
        let Some(canvas) = hist_ref.get() else { return };
        stats.with(|s| match s {
            Some((t, st)) if ck.selected.get_untracked() == Some(*t) => {
                frame.set_value(draw_histogram(&canvas, &st.histogram, lg));
                let _ = canvas.set_attribute("data-drawn", &t.to_string());
            }
            _ => {
                let _ = canvas.remove_attribute("data-drawn");
            }
        });
    });
    let on_hover = move |ev: MouseEvent| {
        let (Some(canvas), Some(fr)) = (hist_ref.get_untracked(), frame.get_value()) else {
            return;
        };
        let scale = canvas.width() as f64 / canvas.client_width().max(1) as f64;
        let px = ev.offset_x() as f64 * scale;
        let text = fr.x_value(px).and_then(|x| {
            stats.with_untracked(|s| {
                let h = &s.as_ref()?.1.histogram;
                let n = h.counts.len();
                let i = h
                    .edges
                    .partition_point(|&e| e <= x)
                    .saturating_sub(1)
                    .min(n.checked_sub(1)?);
                let close = if i + 1 == n { "]" } else { ")" };
                Some(format!(
                    "bin {}: [{}, {}{}  count {}",
                    i + 1,
                    short_float(h.edges[i]),
                    short_float(h.edges[i + 1]),
                    close,
                    group_digits(h.counts[i])
                ))
            })
        });
        hover.set(text);
    };

    let stats_view = move || {
        let t = ck.selected.get()?;
        stats.with(|s| {
            let (st_t, st) = s.as_ref()?;
            (*st_t == t).then(|| stats_grid(st))
        })
    };

    view! {
        <div class="inspector" data-testid="inspector">
            <SelectedValue />
            <TensorFacts />
            {move || error.get().map(|e| view! { <div class="panel error small" role="alert">{e}</div> })}
            <div class="insp-section" class:hidden=move || ck.selected.get().is_none()>
                <div class="section-title">
                    "Histogram"
                    <span class="spacer"></span>
                    <label class="toggle"><input type="checkbox" prop:checked=move || log.get()
                        on:change=move |ev| log.set(event_target_checked(&ev)) />"log count"</label>
                    <select aria-label="Bins" on:change=move |ev| {
                        if let Ok(b) = event_target_value(&ev).parse() { bins.set(b) }
                    }>
                        {[16u32, 32, 64, 128, 256].into_iter().map(|b| view! {
                            <option value=b.to_string() selected=b == 64>{format!("{b} bins")}</option>
                        }).collect_view()}
                    </select>
                </div>
                <canvas
                    class="histogram"
                    data-testid="histogram"
                    width="560"
                    height="150"
                    node_ref=hist_ref
                    on:mousemove=on_hover
                    on:mouseleave=move |_| hover.set(None)
                ></canvas>
                <div class="hover-line muted">{move || hover.get().unwrap_or_else(|| "hover a bar for its range and count".into())}</div>
                {stats_view}
            </div>
            <super::value_viewer::ValueViewer />
            <super::heatmap_view::HeatmapView />
        </div>
    }
}

fn stats_grid(s: &TensorStats) -> impl IntoView {
    let mut items: Vec<(&'static str, &'static str, Option<f64>)> = vec![
        ("min", "min", s.summary.min),
        ("max", "max", s.summary.max),
        ("mean", "mean", s.summary.mean),
        ("std", "std", s.summary.std),
        ("absmax", "|x| max", s.absmax),
        ("l2", "L2 norm", Some(s.l2)),
    ];
    if let Some(q) = &s.quantiles {
        items.extend([
            ("p1", "p1", Some(q.p1)),
            ("p25", "p25", Some(q.p25)),
            ("p50", "median", Some(q.p50)),
            ("p75", "p75", Some(q.p75)),
            ("p99", "p99", Some(q.p99)),
        ]);
    }
    let counts: Vec<(&'static str, &'static str, u64)> = vec![
        ("count", "count", s.summary.count),
        ("zeros", "zeros", s.summary.zeros),
        ("nan", "NaN", s.summary.nan),
        ("posinf", "+inf", s.summary.posinf),
        ("neginf", "−inf", s.summary.neginf),
    ];
    let bad = s.summary.nonfinite() > 0;
    view! {
        <dl class="stats" class:has-bad=bad data-testid="stats">
            {items.into_iter().map(|(k, label, v)| view! {
                <div>
                    <dt>{label}</dt>
                    <dd data-stat=k data-value=v.map(|v| format!("{v:e}")).unwrap_or_else(|| "null".into())>
                        {v.map(short_float).unwrap_or_else(|| "—".into())}
                    </dd>
                </div>
            }).collect_view()}
            {counts.into_iter().map(|(k, label, v)| view! {
                <div class:bad={matches!(k, "nan" | "posinf" | "neginf") && v > 0}>
                    <dt>{label}</dt>
                    <dd data-stat=k data-value=v.to_string()>{group_digits(v)}</dd>
                </div>
            }).collect_view()}
        </dl>
        {(!s.quantiles_exact && s.quantiles.is_some()).then(|| view! {
            <p class="muted small">{format!("quantiles from a sketch, within ±{}", short_float(s.quantile_error_bound))}</p>
        })}
        {super::stats_notes::notes(s)}
        {s.dequantized.then(|| view! { <p class="muted small">"quantized: statistics of the dequantized values"</p> })}
    }
}

/// The selected tensor's facts: its path (with Copy), what the journal changed about it, dtype,
/// shape, strides, elements, bytes and the tensors sharing its storage.
#[component]
fn TensorFacts() -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    move || {
        let t = ck.selected.get()?;
        let f = ck.opened.get()?;
        let e = f.entries.get(t as usize)?.clone();
        let path = f.tree.path(f.tree.tensor_node[t as usize]).to_string();
        let shared: Vec<String> = f
            .shared_with(t)
            .into_iter()
            .map(|o| f.tree.path(f.tree.tensor_node[o as usize]).to_string())
            .collect();
        let copy_path = path.clone();
        let mark = f.marks.get(t as usize).cloned().unwrap_or_default();
        let from_b = f
            .sources
            .get(t as usize)
            .filter(|s| s.input > 0)
            .map(|s| s.tensor);
        let change = mark.is_change().then(|| {
            view! {
                <ul class="insp-changes" data-testid="inspector-changes">
                    {mark.renamed_from.clone().map(|o| view! { <li>"renamed from "<code>{o}</code></li> })}
                    {mark.cast_from.map(|d| view! {
                        <li data-testid="inspector-cast">{format!("stored as {d}; cast to {} on download — the statistics and values below are of the {} values, as downloaded", e.dtype.name(), e.dtype.name())}</li>
                    })}
                    {from_b.map(|i| view! { <li data-testid="inspector-from-b">{format!("transplanted from file B (its tensor #{i}); the statistics and values below are of B's bytes")}</li> })}
                    {mark.removed.then(|| view! { <li>"not in the download (removed by the journal); shown as read"</li> })}
                </ul>
            }
        });
        Some(view! {
            <div class="insp-head">
                <code class="insp-path" data-testid="inspector-path">{path}</code>
                <button class="mini" title="Copy the key path" on:click=move |_| copy_text(&copy_path)>"Copy"</button>
            </div>
            {change}
            <dl class="kv">
                <dt>"dtype"</dt><dd data-testid="inspector-dtype">{e.dtype.name()}</dd>
                <dt>"shape"</dt><dd>{shape_text(&e.shape)}</dd>
                <dt>"strides"</dt><dd>{shape_text(&e.strides)}{(e.storage_offset > 0).then(|| format!("  offset {}", e.storage_offset))}</dd>
                <dt>"elements"</dt><dd>{group_digits(e.numel)}</dd>
                <dt>"bytes"</dt><dd>{format!("{} ({})", human_bytes(e.bytes), group_digits(e.bytes))}</dd>
                <dt>"storage"</dt>
                <dd>
                    {match (e.storage, shared.is_empty()) {
                        (None, _) => "none (meta tensor)".to_string(),
                        (Some(s), true) => format!("#{s}, not shared"),
                        (Some(s), false) => format!("#{s}, shared with {}", shared.len()),
                    }}
                    {(!shared.is_empty()).then(|| view! {
                        <ul class="shared">{shared.into_iter().take(8).map(|p| view! { <li><code>{p}</code></li> }).collect_view()}</ul>
                    })}
                </dd>
            </dl>
        })
    }
}

/// With no tensor selected: the selected non-tensor value (its path, kind and text), or a hint.
#[component]
fn SelectedValue() -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    move || {
        ck.selected.get().is_none().then(|| {
            let value = ck.selected_value.get().and_then(|v| {
                let f = ck.opened.get()?;
                f.values.get(v as usize).cloned()
            });
            match value {
                Some(v) => {
                    let path = v.path.join("/");
                    let copy = path.clone();
                    view! {
                        <div class="insp-head">
                            <code class="insp-path">{path}</code>
                            <button class="mini" on:click=move |_| copy_text(&copy)>"Copy"</button>
                        </div>
                        <dl class="kv">
                            <dt>"kind"</dt><dd>{v.kind}</dd>
                            <dt>"value"</dt><dd class="value-text">{v.text}</dd>
                        </dl>
                    }
                    .into_any()
                }
                None => view! {
                    <p class="placeholder muted">"Select a tensor in the tree (or a point in the overview)."</p>
                }
                .into_any(),
            }
        })
    }
}
