//! The layer-statistics overview: one point per tensor (in file order; only the search's
//! matches while searching) of a chosen statistic, NaN/Inf tensors flagged with a red marker,
//! the selected tensor ringed; a click selects the nearest tensor.
//!
//! Contract: the statistics come from an `all_stats` run ([`LayerStats`]), started by the page
//! after a file opens (automatically up to [`AUTO_LIMIT`] bytes, else by the button here).
//! Hook: `overview` is the canvas; `data-points` = number of tensors shown, `data-x0` /
//! `data-x1` = the plotting area's pixel span (canvas pixels), `data-computed` = tensors whose
//! statistics are in, `data-running` = `true` while a run is going, for tests and benchmarks;
//! `data-ylo` / `data-yhi` / `data-baseline` (see [`super::charts::draw_overview`]: on the log
//! axis zeros sit on their own line). `overview-collapse` folds the chart away (the pane keeps
//! its header line); `overview-zero-note` says how many points are on the zero line.

use super::charts::{draw_overview, Frame, Point};
use super::context::PageCheckpoint;
use super::table_model::RowSlot;
use crate::display::{group_digits, human_bytes, short_float};
use crate::stats::{StatsInput, StatsOptions};
use crate::worker::protocol::{Entry, StatsRow};
use leptos::prelude::*;
use web_sys::MouseEvent;

/// Files up to this many tensor bytes get their layer statistics computed on open.
pub const AUTO_LIMIT: u64 = 1 << 30;

/// Bytes a layer-statistics run reads for the tensors of `entries` that `pick` chooses: each
/// tensor's bytes once per pass the statistics engine plans for it (a tensor too big for exact
/// quantiles in one read is read twice; meta tensors are not read). The worker's progress total
/// is the same sum ([`crate::stats::planned_passes`]), so the figure on the "Compute all"
/// button is the total the progress bar counts to.
pub fn bytes_to_read(entries: &[Entry], pick: impl Fn(usize) -> bool) -> u64 {
    let opts = StatsOptions::default();
    entries
        .iter()
        .enumerate()
        .filter(|(i, e)| e.storage.is_some() && pick(*i))
        .fold(0u64, |a, (_, e)| {
            let passes = StatsInput::new(e.dtype, e.numel).planned_passes(&opts);
            a.saturating_add(e.bytes.saturating_mul(passes))
        })
}

/// Least time between two drawings of the chart while a statistics run fills it in (ms).
const RUN_REDRAW_MS: f64 = 250.0;

/// Statistic shown on the y axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Std,
    Mean,
    AbsMax,
    L2,
    ZeroFrac,
}

impl Stat {
    pub const ALL: [Stat; 5] = [
        Stat::Std,
        Stat::Mean,
        Stat::AbsMax,
        Stat::L2,
        Stat::ZeroFrac,
    ];
    pub fn key(self) -> &'static str {
        match self {
            Stat::Std => "std",
            Stat::Mean => "mean",
            Stat::AbsMax => "absmax",
            Stat::L2 => "l2",
            Stat::ZeroFrac => "zeros",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Stat::Std => "std",
            Stat::Mean => "mean",
            Stat::AbsMax => "|x| max",
            Stat::L2 => "L2 norm",
            Stat::ZeroFrac => "zero fraction",
        }
    }
    /// The value of this statistic in a row.
    pub fn of(self, r: &StatsRow) -> Option<f64> {
        match self {
            Stat::Std => r.summary.std,
            Stat::Mean => r.summary.mean,
            Stat::AbsMax => r.absmax,
            Stat::L2 => Some(r.l2),
            Stat::ZeroFrac => {
                (r.summary.count > 0).then(|| r.summary.zeros as f64 / r.summary.count as f64)
            }
        }
    }
}

/// Layer statistics of the opened file, filled by an `all_stats` run.
#[derive(Clone, Copy)]
pub struct LayerStats {
    /// One slot per tensor.
    pub rows: RwSignal<Vec<RowSlot>>,
    /// The run in progress, if any.
    pub running: RwSignal<Option<u32>>,
    /// The last run was cancelled.
    pub cancelled: RwSignal<bool>,
    /// Start a run over the whole file.
    pub start: Callback<()>,
    /// Bytes the next run reads ([`bytes_to_read`] of the tensors it will compute).
    pub to_read: Signal<u64>,
}

/// The overview panel. `subset`: the tensors to show (the search's matches), `None` = all.
#[component]
pub fn Overview(subset: Memo<Option<Vec<u32>>>) -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    let theme = use_context::<super::charts::Theme>();
    let ls = expect_context::<LayerStats>();
    let stat = RwSignal::new(Stat::Std);
    let log_y = RwSignal::new(false);
    let collapsed = RwSignal::new(false);
    let on_zero_line = RwSignal::new(0usize);
    let frame = StoredValue::new(None::<Frame>);
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();
    let shown = Memo::new(move |_| {
        let n = ck
            .opened
            .with(|f| f.as_ref().map(|f| f.entries.len()).unwrap_or(0));
        match subset.get() {
            Some(s) => s,
            None => (0..n as u32).collect(),
        }
    });
    let done = Memo::new(move |_| ls.rows.with(|r| r.iter().filter(|x| x.is_some()).count()));

    // Drawn in the next animation frame, once however many inputs changed before it: the
    // canvas' size is read when the frame's layout is due anyway (reading it while the page is
    // being built forced an extra layout of the whole workspace on open), and rows arriving
    // during a run redraw at most once per frame.
    let draw_due = StoredValue::new(false);
    let last_draw = StoredValue::new(f64::NEG_INFINITY);
    let draw = move || {
        // (the panel may be gone by the time the frame comes)
        if draw_due.try_update_value(|d| *d = false).is_none() {
            return;
        }
        last_draw.set_value(js_sys::Date::now());
        let (Some(canvas), Some(st)) = (canvas_ref.get_untracked(), stat.try_get_untracked())
        else {
            return;
        };
        let lg = log_y.get_untracked();
        let sel = ck.selected.get_untracked();
        let pts: Vec<Point> = shown.with_untracked(|s| {
            ls.rows.with_untracked(|rows| {
                s.iter()
                    .map(|&t| {
                        let r = rows.get(t as usize).and_then(|r| r.as_ref());
                        Point {
                            value: r.and_then(|r| st.of(r)),
                            flag: r.is_some_and(|r| r.summary.nonfinite() > 0),
                            selected: sel == Some(t),
                        }
                    })
                    .collect()
            })
        });
        // size the canvas to its box (no layout jump: the box has a fixed size)
        let w = canvas.client_width().max(300) as u32;
        if canvas.width() != w {
            canvas.set_width(w);
        }
        // and its height (the CSS height depends on the window: text is never stretched)
        let h = canvas.client_height().max(60) as u32;
        if canvas.height() != h {
            canvas.set_height(h);
        }
        let fr = draw_overview(&canvas, &pts, lg);
        on_zero_line.set(if lg {
            pts.iter().filter(|p| p.value == Some(0.0)).count()
        } else {
            0
        });
        frame.set_value(fr);
        let _ = canvas.set_attribute("data-points", &pts.len().to_string());
        if let Some(fr) = fr {
            let _ = canvas.set_attribute("data-x0", &fr.x0.to_string());
            let _ = canvas.set_attribute("data-x1", &fr.x1.to_string());
        }
    };
    Effect::new(move |_| {
        if let Some(t) = theme {
            t.0.track();
        }
        canvas_ref.track();
        stat.track();
        log_y.track();
        ck.selected.track();
        shown.track();
        ls.rows.track();
        if !draw_due.get_value() {
            draw_due.set_value(true);
            // while a run fills the chart in, at most every RUN_REDRAW (a chart of 50,000
            // points takes tens of ms to draw: every frame would starve the page)
            let since = js_sys::Date::now() - last_draw.get_value();
            let wait = RUN_REDRAW_MS - since;
            if ls.running.get_untracked().is_some() && wait > 0.0 {
                set_timeout(
                    move || request_animation_frame(draw),
                    std::time::Duration::from_millis(wait as u64),
                );
            } else {
                request_animation_frame(draw);
            }
        }
    });

    let on_click = move |ev: MouseEvent| {
        let (Some(canvas), Some(fr)) = (canvas_ref.get_untracked(), frame.get_value()) else {
            return;
        };
        let scale = canvas.width() as f64 / canvas.client_width().max(1) as f64;
        let Some(x) = fr.x_value(ev.offset_x() as f64 * scale) else {
            return;
        };
        let i = x.round().max(0.0) as usize;
        if let Some(t) = shown.with_untracked(|s| s.get(i).copied()) {
            ck.selected.set(Some(t));
        }
    };

    let hover = RwSignal::new(None::<String>);
    let on_move = move |ev: MouseEvent| {
        let (Some(canvas), Some(fr), Some(f)) = (
            canvas_ref.get_untracked(),
            frame.get_value(),
            ck.opened.get_untracked(),
        ) else {
            return;
        };
        let scale = canvas.width() as f64 / canvas.client_width().max(1) as f64;
        let text = fr.x_value(ev.offset_x() as f64 * scale).and_then(|x| {
            let i = x.round().max(0.0) as usize;
            let t = shown.with_untracked(|s| s.get(i).copied())?;
            let path = f.tree.path(*f.tree.tensor_node.get(t as usize)?);
            let st = stat.get_untracked();
            let v = ls.rows.with_untracked(|r| {
                r.get(t as usize)
                    .and_then(|r| r.as_ref())
                    .map(|r| {
                        let bad = if r.summary.nonfinite() > 0 {
                            format!("  ▲ {} NaN, {} inf", r.summary.nan, r.summary.inf())
                        } else {
                            String::new()
                        };
                        format!(
                            "{} = {}{bad}",
                            st.label(),
                            st.of(r).map(short_float).unwrap_or_else(|| "—".into())
                        )
                    })
                    .unwrap_or_else(|| "not computed yet".into())
            });
            Some(format!("#{t} {path}   {v}"))
        });
        hover.set(text);
    };

    let status = move || {
        let total = ck
            .opened
            .with(|f| f.as_ref().map(|f| f.entries.len()).unwrap_or(0));
        let d = done.get();
        let bytes = ls.to_read.get();
        let flagged = ls.rows.with(|r| {
            r.iter()
                .flatten()
                .filter(|r| r.summary.nonfinite() > 0)
                .count()
        });
        if ls.running.get().is_some() {
            view! { <span class="muted">{format!("computing… {} of {} tensors", group_digits(d as u64), group_digits(total as u64))}</span> }.into_any()
        } else if d < total {
            view! {
                <span class="muted">{format!("{} of {} tensors computed{}", group_digits(d as u64), group_digits(total as u64), if ls.cancelled.get() { " (cancelled)" } else { "" })}</span>
                {(bytes > 0).then(|| view! {
                    <button class="mini" data-testid="compute-all" data-bytes=bytes.to_string()
                        title="Bytes read: tensors too big for exact quantiles in one read are read twice"
                        on:click=move |_| ls.start.run(())>{format!("Compute all (reads {})", human_bytes(bytes))}</button>
                })}
            }.into_any()
        } else {
            view! {
                <span class="muted">{format!("{} tensors", group_digits(total as u64))}</span>
                {(flagged > 0).then(|| view! { <span class="flag-note">{format!("▲ {flagged} with NaN/Inf")}</span> })}
            }.into_any()
        }
    };

    view! {
        <div class="overview-head" class:overview-collapsed=collapsed>
            <button class="mini" data-testid="overview-collapse" aria-expanded=move || (!collapsed.get()).to_string()
                title="Show or hide the chart" on:click=move |_| collapsed.update(|c| *c = !*c)>
                {move || if collapsed.get() { "▸" } else { "▾" }}
            </button>
            <strong>"Layer statistics"</strong>
            <select aria-label="Statistic" on:change=move |ev| {
                let v = event_target_value(&ev);
                if let Some(s) = Stat::ALL.into_iter().find(|s| s.key() == v) { stat.set(s) }
            }>
                {Stat::ALL.into_iter().map(|s| view! { <option value=s.key()>{s.label()}</option> }).collect_view()}
            </select>
            <label class="toggle"><input type="checkbox" prop:checked=move || log_y.get()
                on:change=move |ev| log_y.set(event_target_checked(&ev)) />"log |y|"</label>
            <span class="muted">{move || subset.with(|s| s.as_ref().map(|s| format!("search matches: {}", group_digits(s.len() as u64))))}</span>
            {move || (on_zero_line.get() > 0).then(|| view! {
                <span class="muted small" data-testid="overview-zero-note">{format!("{} at 0: on the bottom line", group_digits(on_zero_line.get() as u64))}</span>
            })}
            <span class="spacer"></span>
            {status}
        </div>
        <canvas
            class="overview-chart"
            class:hidden=collapsed
            data-testid="overview"
            data-computed=move || done.get().to_string()
            data-running=move || ls.running.get().is_some().to_string()
            height="160"
            width="900"
            node_ref=canvas_ref
            on:click=on_click
            on:mousemove=on_move
            on:mouseleave=move |_| hover.set(None)
        ></canvas>
        <div class="hover-line muted overview-hover" class:hidden=collapsed>
            {move || hover.get().unwrap_or_else(|| "hover a point for its tensor; click to inspect it".into())}
        </div>
    }
}
