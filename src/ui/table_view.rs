//! The tensor table: every tensor as one row (index, name, dtype, shape, elements, bytes and,
//! once the layer statistics are in, mean, std, |x| max, zeros, NaN), sortable by any column,
//! filtered by a substring, virtualized (only the rows in view are in the DOM), beside the tree
//! through a Tree / Table switch ([`TensorPane`]).
//!
//! Contract: clicking a row selects its tensor in the [`PageCheckpoint`] context (the Inspector
//! shows it). Hooks: `view-tree` / `view-table` (the switch), `tensor-table` (the scroll box;
//! `data-rows` = rows after the filter), `table-filter`, `table-sort` (header buttons,
//! `data-col` = [`Column::key`], `aria-sort`), `table-row` (`data-tensor` = index, `data-path`,
//! and per cell `data-col` with `data-value` = the full-precision number).

use super::context::PageCheckpoint;
use super::overview::LayerStats;
use super::table_model::{rows, Column};
use super::tree_view::{shape_text, TreePanel};
use crate::display::{group_digits, human_bytes, short_float};
use leptos::prelude::*;

/// Row height in pixels (CSS `.table-row` uses the same).
const ROW_H: f64 = 24.0;
const OVERSCAN: usize = 8;

/// The left pane: the layer tree or the tensor table.
#[component]
pub fn TensorPane(search: super::key_search::KeySearch) -> impl IntoView {
    let table = RwSignal::new(false);
    view! {
        <div class="pane-switch" role="tablist" aria-label="Tensors as">
            <button role="tab" class="tab" data-testid="view-tree" class:active=move || !table.get()
                aria-selected=move || (!table.get()).to_string() on:click=move |_| table.set(false)>"Tree"</button>
            <button role="tab" class="tab" data-testid="view-table" class:active=move || table.get()
                aria-selected=move || table.get().to_string() on:click=move |_| table.set(true)>"Table"</button>
            <span class="spacer"></span>
            <super::stats_export::StatsExport />
        </div>
        <div class="pane-body" class:hidden=move || table.get()><TreePanel search=search /></div>
        // built when first shown (an open renders the tree only)
        <div class="pane-body" class:hidden=move || !table.get()><super::lazy::Lazy when=table><TensorTable /></super::lazy::Lazy></div>
    }
}

/// The sortable, filterable, virtualized table of every tensor.
#[component]
pub fn TensorTable() -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    let ls = expect_context::<LayerStats>();
    let filter = RwSignal::new(String::new());
    let sort = RwSignal::new((Column::Index, false));
    let scroll_top = RwSignal::new(0.0f64);
    let view_h = RwSignal::new(480.0f64);
    let box_ref = NodeRef::<leptos::html::Div>::new();

    let names = Memo::new(move |_| {
        ck.opened.with(|f| {
            f.as_ref()
                .map(|f| {
                    f.tree
                        .tensor_node
                        .iter()
                        .map(|&n| f.tree.path(n).to_string())
                        .collect::<Vec<String>>()
                })
                .unwrap_or_default()
        })
    });
    let order = Memo::new(move |_| {
        let (col, desc) = sort.get();
        let text = filter.get();
        ck.opened.with(|f| {
            let Some(f) = f else { return vec![] };
            names.with(|n| {
                let refs: Vec<&str> = n.iter().map(|s| s.as_str()).collect();
                ls.rows
                    .with(|st| rows(&f.entries, &refs, st, &text, col, desc))
            })
        })
    });
    // a new file or a new order: back to the top
    Effect::new(move |_| {
        order.track();
        scroll_top.set(0.0);
        if let Some(el) = box_ref.get_untracked() {
            el.set_scroll_top(0);
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = box_ref.get_untracked() {
            scroll_top.set(el.scroll_top() as f64);
            view_h.set(el.client_height().max(48) as f64);
        }
    };
    Effect::new(move |_| {
        if let Some(el) = box_ref.get() {
            view_h.set(el.client_height().max(48) as f64);
        }
    });

    let header = move || {
        let (col, desc) = sort.get();
        Column::ALL
            .into_iter()
            .map(|c| {
                let active = c == col;
                let aria = if !active {
                    "none"
                } else if desc {
                    "descending"
                } else {
                    "ascending"
                };
                let arrow = if !active { "" } else if desc { " ▼" } else { " ▲" };
                view! {
                    <button class=format!("table-cell head col-{}", c.key()) class:num=c.numeric()
                        data-testid="table-sort" data-col=c.key() aria-sort=aria
                        title="Sort by this column (again: reverse)"
                        on:click=move |_| sort.update(|s| {
                            *s = if s.0 == c { (c, !s.1) } else { (c, c.numeric() && c != Column::Index) }
                        })>
                        {c.label()}{arrow}
                    </button>
                }
            })
            .collect_view()
    };

    let body = move || {
        let sel = ck.selected.get();
        let count = (view_h.get() / ROW_H) as usize + 2 * OVERSCAN;
        let first = ((scroll_top.get() / ROW_H) as usize).saturating_sub(OVERSCAN);
        let f = ck.opened.get()?;
        Some(order.with(|o| {
            let first = first.min(o.len());
            let end = (first + count).min(o.len());
            names.with(|names| {
                ls.rows.with(|st| {
                    o[first..end]
                        .iter()
                        .enumerate()
                        .map(|(k, &t)| {
                            let e = &f.entries[t as usize];
                            let s = st.get(t as usize).and_then(|s| s.clone());
                            let name = names.get(t as usize).cloned().unwrap_or_default();
                            let num = |c: Column, v: Option<f64>, text: String| view! {
                                <span class=format!("table-cell num col-{}", c.key()) data-col=c.key()
                                    data-value=v.map(|v| format!("{v:e}")).unwrap_or_default()>{text}</span>
                            };
                            let stat = |c: Column, v: Option<f64>| {
                                let text = v.map(short_float).unwrap_or_else(|| "—".into());
                                num(c, v, text)
                            };
                            let (mean, std, absmax) = match &s {
                                Some(s) => (s.summary.mean, s.summary.std, s.absmax),
                                None => (None, None, None),
                            };
                            let zeros = s.as_ref().map(|s| s.summary.zeros as f64);
                            let nan = s.as_ref().map(|s| s.summary.nan as f64);
                            let bad = s.as_ref().is_some_and(|s| s.summary.nonfinite() > 0);
                            let count_cell = |c: Column, v: Option<f64>| {
                                let text = v.map(|v| group_digits(v as u64)).unwrap_or_else(|| "—".into());
                                num(c, v, text)
                            };
                            let top = format!("{}px", (first + k) as f64 * ROW_H);
                            let title = name.clone();
                            view! {
                                <div class="table-row" data-testid="table-row" role="row"
                                    class:selected=sel == Some(t) class:bad=bad
                                    data-tensor=t data-path=e.path.join("/") style:top=top
                                    on:click=move |_| ck.selected.set(Some(t))>
                                    {num(Column::Index, Some(t as f64), t.to_string())}
                                    <span class="table-cell col-name" data-col="name" title=title>{name}</span>
                                    <span class="table-cell col-dtype" data-col="dtype">{e.dtype.name()}</span>
                                    <span class="table-cell col-shape" data-col="shape">{shape_text(&e.shape)}</span>
                                    {num(Column::Elements, Some(e.numel as f64), group_digits(e.numel))}
                                    {num(Column::Bytes, Some(e.bytes as f64), human_bytes(e.bytes))}
                                    {stat(Column::Mean, mean)}
                                    {stat(Column::Std, std)}
                                    {stat(Column::AbsMax, absmax)}
                                    {count_cell(Column::Zeros, zeros)}
                                    {count_cell(Column::Nan, nan)}
                                </div>
                            }
                        })
                        .collect_view()
                })
            })
        }))
    };

    let status = move || {
        let total = ck
            .opened
            .with(|f| f.as_ref().map(|f| f.entries.len()).unwrap_or(0));
        let done = ls.rows.with(|r| r.iter().filter(|x| x.is_some()).count());
        let shown = order.with(|o| o.len());
        let note = if ls.running.get().is_some() {
            format!(
                "statistics: {} of {} computed…",
                group_digits(done as u64),
                group_digits(total as u64)
            )
        } else if done < total {
            format!(
                "statistics of {} of {} tensors",
                group_digits(done as u64),
                group_digits(total as u64)
            )
        } else {
            String::new()
        };
        view! {
            <span class="muted">{format!("{} of {} tensors", group_digits(shown as u64), group_digits(total as u64))}</span>
            <span class="muted">{note}</span>
            {(done < total && ls.running.get().is_none()).then(|| view! {
                <button class="mini" data-testid="table-compute" on:click=move |_| ls.start.run(())>"Compute statistics"</button>
            })}
        }
    };

    view! {
        <div class="table-tools">
            <input class="search" type="search" placeholder="filter by name (substring)" data-testid="table-filter"
                aria-label="Filter tensors by name"
                prop:value=move || filter.get() on:input=move |ev| filter.set(event_target_value(&ev)) />
            <div class="table-status">{status}</div>
        </div>
        <div class="tensor-table" data-testid="tensor-table" role="table" node_ref=box_ref on:scroll=on_scroll
            data-rows=move || order.with(|o| o.len()).to_string()>
            <div class="table-row table-head" role="row">{header}</div>
            <div class="table-inner" style:height=move || format!("{}px", order.with(|o| o.len()) as f64 * ROW_H)>
                {body}
            </div>
        </div>
    }
}
