//! The A/B view of one tensor in Compare: A's and B's histograms on one axis (same bins over
//! the range of both) and the histogram of the difference a − b, computed by the worker
//! ([`crate::worker::ab`]).
//!
//! Contract: shown for the key in `key` (set by clicking a row's name in the diff lists) and
//! scrolled into view; sends one `ab` request per key and map. "Inspect A's tensor" selects A's
//! tensor and shows the Inspector tab. Hooks: `ab-view` (`data-key`, `data-b-key`), `ab-inspect`,
//! `ab-close`,
//! `ab-hist` (canvas; `data-a` / `data-b` = the counts as JSON, `data-lo` / `data-hi` = the
//! outer edges), `ab-diff` (canvas; `data-counts`, `data-lo`, `data-hi`), `ab-error`.

use super::charts::{draw_ab, draw_histogram};
use crate::worker::protocol::{AbReply, Request, Response};
use leptos::prelude::*;

/// Histogram bins of the view.
const BINS: u32 = 64;

/// `el.scrollIntoView({block: "nearest"})`: the least scrolling that shows `el`.
fn scroll_nearest(el: &web_sys::HtmlElement) {
    use wasm_bindgen::JsCast;
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"block".into(), &"nearest".into());
    if let Ok(f) = js_sys::Reflect::get(el, &"scrollIntoView".into()) {
        if let Some(f) = f.dyn_ref::<js_sys::Function>() {
            let _ = f.call1(el, &opts);
        }
    }
}

fn json(v: &[u64]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The A/B view of `key` (an A key) with the prefix maps `maps`; `inspect` shows A's tensor of
/// a key in the Inspector.
#[component]
pub fn AbView(
    key: RwSignal<Option<String>>,
    maps: Signal<Vec<(String, String)>>,
    inspect: Callback<String>,
) -> impl IntoView {
    let theme = use_context::<super::charts::Theme>();
    let view_ref = NodeRef::<leptos::html::Div>::new();
    let got = RwSignal::new(None::<AbReply>);
    let asked = StoredValue::new(0u32);
    let hist_ref = NodeRef::<leptos::html::Canvas>::new();
    let diff_ref = NodeRef::<leptos::html::Canvas>::new();
    let handle = super::hub::listen(move |r| {
        if let Response::Ab(x) = r {
            if x.id == asked.get_value() {
                got.set(Some((**x).clone()));
            }
        }
    });
    on_cleanup(move || super::hub::unlisten(handle));
    Effect::new(move |_| {
        let Some(k) = key.get() else {
            got.set(None);
            return;
        };
        let id = super::hub::next_id();
        asked.set_value(id);
        got.set(None);
        // where the user looks next: the view opens above the lists
        if let Some(el) = view_ref.get_untracked() {
            scroll_nearest(&el);
        }
        let _ = super::hub::send(&Request::Ab {
            id,
            key: k,
            maps: maps.get_untracked(),
            bins: BINS,
        });
    });
    Effect::new(move |_| {
        if let Some(t) = theme {
            t.0.track();
        }
        got.with(|g| {
            let Some(g) = g else { return };
            if let Some(c) = hist_ref.get() {
                draw_ab(&c, &g.a, &g.b);
                let _ = c.set_attribute("data-a", &json(&g.a.counts));
                let _ = c.set_attribute("data-b", &json(&g.b.counts));
                if let (Some(lo), Some(hi)) = (g.a.edges.first(), g.a.edges.last()) {
                    let _ = c.set_attribute("data-lo", &format!("{lo:e}"));
                    let _ = c.set_attribute("data-hi", &format!("{hi:e}"));
                }
            }
            if let (Some(c), Some(d)) = (diff_ref.get(), g.diff.as_ref()) {
                draw_histogram(&c, d, false);
                let _ = c.set_attribute("data-counts", &json(&d.counts));
                if let (Some(lo), Some(hi)) = (d.edges.first(), d.edges.last()) {
                    let _ = c.set_attribute("data-lo", &format!("{lo:e}"));
                    let _ = c.set_attribute("data-hi", &format!("{hi:e}"));
                }
            }
        });
    });
    view! {
        <div class="ab-view" data-testid="ab-view" class:hidden=move || key.with(|k| k.is_none())
            node_ref=view_ref
            data-key=move || key.get() data-b-key=move || got.with(|g| g.as_ref().map(|g| g.b_key.clone()))>
            <div class="section-title">
                {move || format!("A / B: {}", key.get().unwrap_or_default())}
                <span class="spacer"></span>
                <button class="mini" data-testid="ab-inspect" title="Select A's tensor and show it in the Inspector tab"
                    on:click=move |_| if let Some(k) = key.get_untracked() { inspect.run(k) }>"Inspect A's tensor"</button>
                <button class="mini" data-testid="ab-close" on:click=move |_| key.set(None)>"Close"</button>
            </div>
            {move || got.with(|g| g.as_ref().and_then(|g| g.error.clone())).map(|e| view! {
                <div class="panel error small" data-testid="ab-error" role="alert">{e}</div>
            })}
            <p class="muted small">"A (filled) and B (outlined) on one axis, same bins"</p>
            <canvas class="histogram" data-testid="ab-hist" width="560" height="150" node_ref=hist_ref></canvas>
            <p class="muted small">{move || got.with(|g| match g {
                Some(g) if !g.same_shape => "a − b: the shapes differ, no element-wise difference".to_string(),
                Some(g) if g.nonfinite_diff > 0 => format!("a − b, element by element ({} non-finite left out)", g.nonfinite_diff),
                _ => "a − b, element by element".to_string(),
            })}</p>
            <canvas class="histogram" data-testid="ab-diff" width="560" height="150" node_ref=diff_ref
                class:hidden=move || got.with(|g| g.as_ref().is_some_and(|g| g.diff.is_none()))></canvas>
        </div>
    }
}
