//! The Inspector's heatmap of a 2-D tensor: sized to the panel, one canvas pixel per block
//! (scaled up without smoothing), the colour scale with its values, a hover readout of the
//! block's rows, columns and value, and the aggregation said in words.
//!
//! Contract: for a selected non-empty 2-D tensor, sends one `heatmap` request with a grid of at
//! most [`MAX_COLS`] × [`MAX_ROWS`] blocks (fewer for a narrow panel or a small tensor); each block
//! is the mean |x| of its finite values ([`crate::stats::heatmap`]). Hooks: `heatmap` (the canvas;
//! `data-rows` / `data-cols` = blocks, `data-max` = the scale's top), `heatmap-readout` (the hover
//! text; `data-value` = the block's value, `data-span` = its rows and columns `r0,r1,c0,c1`,
//! ends excluded), `heatmap-words` (the aggregation), `colour-legend`.

use super::colour_scale::ColourLegend;
use super::context::PageCheckpoint;
use super::scale::{axis_label, block_span, ramp};
use crate::display::{group_digits, short_float};
use crate::worker::protocol::{HeatmapReply, Request, RequestId, Response};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, MouseEvent};

/// Most block columns / rows asked for.
pub const MAX_COLS: u64 = 256;
pub const MAX_ROWS: u64 = 192;

/// The heatmap section of the Inspector.
#[component]
pub fn HeatmapView() -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    let heat = RwSignal::new(None::<(HeatmapReply, (u64, u64))>);
    let asked = StoredValue::new((0 as RequestId, (0u64, 0u64)));
    let readout = RwSignal::new(None::<(String, f32, [u64; 4])>);
    let box_ref = NodeRef::<leptos::html::Div>::new();
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();

    ck.listen(move |r| {
        let (id, shape) = asked.get_value();
        if let Response::Heatmap(h) = r {
            if h.id == id {
                heat.set(Some((h.clone(), shape)));
            }
        }
    });
    Effect::new(move |_| {
        let t = ck.selected.get();
        heat.set(None);
        readout.set(None);
        let Some(t) = t else { return };
        let Some((nr, nc, source)) = ck.opened.with_untracked(|f| {
            let f = f.as_ref()?;
            let e = f.entries.get(t as usize)?;
            // the bytes this entry of the shown (edited) checkpoint reads
            let source = f.source_of(t);
            (e.shape.len() == 2 && e.numel > 0 && e.storage.is_some())
                .then(|| (e.shape[0], e.shape[1], source))
        }) else {
            return;
        };
        // the panel's width in CSS pixels; two pixels per block at least
        let width = box_ref
            .get_untracked()
            .map(|el| el.client_width() as u64)
            .filter(|&w| w > 0)
            .unwrap_or(480);
        let height = (width * nr / nc.max(1)).clamp(48, 320);
        let w = nc.min(MAX_COLS).min((width / 2).max(1));
        let h = nr.min(MAX_ROWS).min((height / 2).max(1));
        let id = ck.new_id();
        asked.set_value((id, (nr, nc)));
        ck.send(&Request::HeatmapOf {
            id,
            source,
            w: w as u32,
            h: h as u32,
        });
    });
    let max = Memo::new(move |_| {
        heat.with(|h| {
            h.as_ref().map(|(h, _)| {
                h.cells
                    .iter()
                    .filter(|v| v.is_finite())
                    .fold(0f32, |a, &b| a.max(b))
            })
        })
    });
    Effect::new(move |_| {
        let Some(canvas) = canvas_ref.get() else {
            return;
        };
        heat.with(|h| {
            let Some((h, (nr, nc))) = h else { return };
            canvas.set_width(h.cols);
            canvas.set_height(h.rows);
            // the canvas keeps the tensor's aspect, within 48..320 CSS pixels high
            let _ =
                canvas.set_attribute("style", &format!("aspect-ratio: {} / {}", nc, (*nr).max(1)));
            let Ok(Some(ctx)) = canvas.get_context("2d") else {
                return;
            };
            let Ok(ctx) = ctx.dyn_into::<CanvasRenderingContext2d>() else {
                return;
            };
            let top = max.get_untracked().unwrap_or(0.0).max(f32::MIN_POSITIVE);
            for r in 0..h.rows {
                for c in 0..h.cols {
                    let v = h.cells[(r * h.cols + c) as usize];
                    let colour = if v.is_finite() {
                        let [r, g, b] = ramp((v / top) as f64);
                        format!("rgb({r},{g},{b})")
                    } else {
                        "#888".into()
                    };
                    ctx.set_fill_style_str(&colour);
                    ctx.fill_rect(c as f64, r as f64, 1.0, 1.0);
                }
            }
            let _ = canvas.set_attribute("data-rows", &h.rows.to_string());
            let _ = canvas.set_attribute("data-cols", &h.cols.to_string());
            let _ = canvas.set_attribute("data-max", &format!("{top:e}"));
        });
    });

    let on_move = move |ev: MouseEvent| {
        let Some(canvas) = canvas_ref.get_untracked() else {
            return;
        };
        let text = heat.with_untracked(|h| {
            let (h, (nr, nc)) = h.as_ref()?;
            let (cw, ch) = (
                canvas.client_width().max(1) as f64,
                canvas.client_height().max(1) as f64,
            );
            let j = ((ev.offset_x() as f64 / cw * h.cols as f64) as u64).min(h.cols as u64 - 1);
            let i = ((ev.offset_y() as f64 / ch * h.rows as f64) as u64).min(h.rows as u64 - 1);
            let v = h.cells[(i * h.cols as u64 + j) as usize];
            let (r0, r1) = block_span(i, h.rows as u64, *nr);
            let (c0, c1) = block_span(j, h.cols as u64, *nc);
            let span = |a: u64, b: u64| {
                if b <= a + 1 {
                    group_digits(a)
                } else {
                    format!("{}–{}", group_digits(a), group_digits(b - 1))
                }
            };
            let value = if v.is_finite() {
                short_float(v as f64)
            } else {
                "no finite value".into()
            };
            Some((
                format!(
                    "row {} · column {} · mean |x| = {value}",
                    span(r0, r1),
                    span(c0, c1)
                ),
                v,
                [r0, r1, c0, c1],
            ))
        });
        readout.set(text);
    };

    let words = move || {
        heat.with(|h| {
            let (h, (nr, nc)) = h.as_ref()?;
            let (br, bc) = (nr.div_ceil(h.rows as u64), nc.div_ceil(h.cols as u64));
            Some(if br * bc <= 1 {
                format!("Each cell is |x| of one value ({} × {} cells).", group_digits(*nr), group_digits(*nc))
            } else {
                format!(
                    "Each cell is the mean |x| of a block of up to {} × {} values (finite values only): the {} × {} tensor in {} × {} cells.",
                    br, bc, group_digits(*nr), group_digits(*nc), h.rows, h.cols
                )
            })
        })
    };

    view! {
        <div class="insp-section heatmap-view" node_ref=box_ref class:hidden=move || heat.with(|h| h.is_none())>
            <div class="section-title">"Heatmap"</div>
            <p class="muted small" data-testid="heatmap-words">{words}</p>
            <canvas class="heatmap" data-testid="heatmap" width="1" height="1" node_ref=canvas_ref
                on:mousemove=on_move on:mouseleave=move |_| readout.set(None)></canvas>
            <ColourLegend lo="0" hi=Signal::derive(move || max.get().map(|m| axis_label(m as f64, m as f64)).unwrap_or_default())
                caption="mean |x| per block" missing="no finite value" />
            <div class="heat-readout muted" data-testid="heatmap-readout"
                data-value=move || readout.with(|r| r.as_ref().map(|r| format!("{:e}", r.1)))
                data-span=move || readout.with(|r| r.as_ref().map(|r| format!("{},{},{},{}", r.2[0], r.2[1], r.2[2], r.2[3])))>
                {move || readout.with(|r| r.as_ref().map(|r| r.0.clone())).unwrap_or_else(|| "hover a cell for its rows, columns and value".into())}
            </div>
        </div>
    }
}
