//! The value viewer: pages through any tensor's values and shows any 2-D plane of an N-D tensor
//! (choose the row and column axes and the index of every other axis), read lazily from the
//! worker one window at a time (`window_of` requests, [`crate::worker::window`]): the values of
//! the entry as it will be downloaded (B's for a transplanted entry, cast for a cast one).
//!
//! Contract: a 0-D or 1-D tensor shows [`FLAT`] values per page in row-major order; a tensor of
//! 2 or more dimensions shows [`ROWS`]×[`COLS`] cells of the chosen plane, paged along both
//! axes. Answers to older requests are dropped. Hooks: `value-viewer`, `vv-row-axis` /
//! `vv-col-axis` (selects), `vv-index` inputs (`data-axis`), `vv-prev` / `vv-next` (rows or
//! elements), `vv-left` / `vv-right` (columns), `vv-goto` (first row / element), `vv-range` (the
//! shown range in words), `vv-cell` (`data-row` / `data-col` = the indices along the two axes,
//! or `data-index` for a flat page; `data-value` = the number, full precision).

use super::context::PageCheckpoint;
use crate::display::group_digits;
use crate::worker::protocol::{Request, RequestId, Response, TensorSource, Window, WindowReply};
use leptos::prelude::*;

/// Values per page of a 0-D / 1-D tensor.
pub const FLAT: u32 = 64;
/// Rows and columns per page of a plane.
pub const ROWS: u32 = 16;
pub const COLS: u32 = 8;

/// What the viewer shows of the selected tensor.
#[derive(Debug, Clone, PartialEq)]
struct Place {
    /// Where the shown entry's values come from (the opened file's tensor, a B tensor, a cast).
    source: TensorSource,
    shape: Vec<u64>,
    row_axis: usize,
    col_axis: usize,
    index: Vec<u64>,
    row0: u64,
    col0: u64,
}

impl Place {
    fn new(source: TensorSource, shape: Vec<u64>) -> Place {
        let nd = shape.len();
        Place {
            source,
            row_axis: nd.saturating_sub(2),
            col_axis: nd.saturating_sub(1),
            index: vec![0; nd],
            shape,
            row0: 0,
            col0: 0,
        }
    }
    fn flat(&self) -> bool {
        self.shape.len() < 2
    }
    fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
    /// Extent of the paged dimension and the page step (rows, or elements for a flat tensor).
    fn rows_extent(&self) -> (u64, u64) {
        if self.flat() {
            (self.numel(), FLAT as u64)
        } else {
            (self.shape[self.row_axis], ROWS as u64)
        }
    }
    fn window(&self) -> Window {
        if self.flat() {
            Window::Flat {
                first: self.row0,
                count: FLAT,
            }
        } else {
            Window::Plane {
                row_axis: self.row_axis as u32,
                col_axis: self.col_axis as u32,
                index: self.index.clone(),
                row0: self.row0,
                rows: ROWS,
                col0: self.col0,
                cols: COLS,
            }
        }
    }
}

/// The viewer of the selected tensor's values.
#[component]
pub fn ValueViewer() -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    let place = RwSignal::new(None::<Place>);
    let got = RwSignal::new(None::<(Place, WindowReply)>);
    let error = RwSignal::new(None::<String>);
    let asked = StoredValue::new((0 as RequestId, None::<Place>));

    ck.listen(move |r| {
        let (id, p) = asked.get_value();
        match r {
            Response::Window(w) if w.id == id => {
                if let Some(p) = p {
                    got.set(Some((p, w.clone())));
                }
            }
            Response::Error(e) if e.id == Some(id) => error.set(Some(e.error.clone())),
            _ => {}
        }
    });
    // a new tensor: start at its first values
    Effect::new(move |_| {
        let t = ck.selected.get();
        let p = t.and_then(|t| {
            ck.opened.with_untracked(|f| {
                let f = f.as_ref()?;
                let e = f.entries.get(t as usize)?;
                // the bytes this shown entry is downloaded from: A's, B's (a transplant), cast
                Some(Place::new(f.source_of(t), e.shape.clone()))
            })
        });
        got.set(None);
        place.set(p);
    });
    // ask for the window shown
    Effect::new(move |_| {
        let Some(p) = place.get() else { return };
        error.set(None);
        let id = ck.new_id();
        asked.set_value((id, Some(p.clone())));
        ck.send(&Request::WindowOf {
            id,
            source: p.source,
            window: p.window(),
        });
    });

    let edit = move |f: &dyn Fn(&mut Place)| {
        place.update(|p| {
            if let Some(p) = p {
                f(p)
            }
        })
    };
    let page = move |rows: i64, cols: i64| {
        edit(&|p: &mut Place| {
            let (n, step) = p.rows_extent();
            let last = n.saturating_sub(1) / step * step;
            p.row0 = (p.row0 as i64 + rows * step as i64).clamp(0, last as i64) as u64;
            if !p.flat() {
                let nc = p.shape[p.col_axis];
                let lastc = nc.saturating_sub(1) / COLS as u64 * COLS as u64;
                p.col0 = (p.col0 as i64 + cols * COLS as i64).clamp(0, lastc as i64) as u64;
            }
        })
    };
    let set_axis = move |row: bool, v: String| {
        let Ok(a) = v.parse::<usize>() else { return };
        edit(&|p: &mut Place| {
            let (r, c) = (p.row_axis, p.col_axis);
            if row {
                p.row_axis = a;
                if a == c {
                    p.col_axis = r;
                }
            } else {
                p.col_axis = a;
                if a == r {
                    p.row_axis = c;
                }
            }
            p.row0 = 0;
            p.col0 = 0;
        })
    };
    let goto = move |v: String| {
        let Ok(i) = v.trim().replace(',', "").parse::<u64>() else {
            return;
        };
        edit(&|p: &mut Place| {
            let (n, _) = p.rows_extent();
            p.row0 = i.min(n.saturating_sub(1));
        })
    };

    let controls = move || {
        let p = place.get()?;
        let (n, step) = p.rows_extent();
        let range = if p.flat() {
            let end = (p.row0 + step).min(n);
            format!(
                "elements {}–{} of {}",
                group_digits(p.row0),
                group_digits(end.saturating_sub(1)),
                group_digits(n)
            )
        } else {
            let nc = p.shape[p.col_axis];
            format!(
                "rows {}–{} of {} (axis {}) · columns {}–{} of {} (axis {})",
                group_digits(p.row0),
                group_digits((p.row0 + step).min(n).saturating_sub(1)),
                group_digits(n),
                p.row_axis,
                group_digits(p.col0),
                group_digits((p.col0 + COLS as u64).min(nc).saturating_sub(1)),
                group_digits(nc),
                p.col_axis
            )
        };
        let nd = p.shape.len();
        let axes = (!p.flat()).then(|| {
            let opts = move |sel: usize| {
                (0..nd)
                    .map(|a| view! { <option value=a.to_string() selected=a == sel>{format!("axis {a}")}</option> })
                    .collect_view()
            };
            let others = (0..nd)
                .filter(|&d| d != p.row_axis && d != p.col_axis)
                .map(|d| {
                    let size = p.shape[d];
                    let v = p.index[d];
                    view! {
                        <label class="vv-index">{format!("axis {d} index")}
                            <input type="number" min="0" max=size.saturating_sub(1).to_string() data-testid="vv-index"
                                data-axis=d prop:value=v.to_string()
                                on:change=move |ev| {
                                    if let Ok(i) = event_target_value(&ev).parse::<u64>() {
                                        edit(&|p: &mut Place| {
                                            p.index[d] = i.min(p.shape[d].saturating_sub(1));
                                        })
                                    }
                                } />
                            <span class="muted">{format!("/ {size}")}</span>
                        </label>
                    }
                })
                .collect_view();
            view! {
                <label>"rows: "<select data-testid="vv-row-axis" on:change=move |ev| set_axis(true, event_target_value(&ev))>{opts(p.row_axis)}</select></label>
                <label>"columns: "<select data-testid="vv-col-axis" on:change=move |ev| set_axis(false, event_target_value(&ev))>{opts(p.col_axis)}</select></label>
                {others}
            }
        });
        let first_row = p.row0 == 0;
        let last_row = p.row0 + step >= n;
        let (first_col, last_col) = if p.flat() {
            (true, true)
        } else {
            (p.col0 == 0, p.col0 + COLS as u64 >= p.shape[p.col_axis])
        };
        let flat = p.flat();
        Some(view! {
            <div class="vv-controls">
                {axes}
                <span class="vv-pager">
                    <button class="mini" data-testid="vv-prev" disabled=first_row on:click=move |_| page(-1, 0)
                        title=if flat { "previous values" } else { "previous rows" }>"↑"</button>
                    <button class="mini" data-testid="vv-next" disabled=last_row on:click=move |_| page(1, 0)
                        title=if flat { "next values" } else { "next rows" }>"↓"</button>
                    {(!flat).then(|| view! {
                        <button class="mini" data-testid="vv-left" disabled=first_col on:click=move |_| page(0, -1) title="previous columns">"←"</button>
                        <button class="mini" data-testid="vv-right" disabled=last_col on:click=move |_| page(0, 1) title="next columns">"→"</button>
                    })}
                    <label class="muted">{if flat { "go to element " } else { "go to row " }}
                        <input type="text" inputmode="numeric" size="8" data-testid="vv-goto"
                            on:change=move |ev| goto(event_target_value(&ev)) />
                    </label>
                </span>
                <span class="muted vv-range" data-testid="vv-range">{range}</span>
            </div>
        })
    };

    let grid = move || {
        let (p, w) = got.get()?;
        if place.with(|q| q.as_ref().map(|q| q.source)) != Some(p.source) {
            return None;
        }
        let cell =
            |text: String, v: f64, row: Option<u64>, col: Option<u64>, index: Option<u64>| {
                view! {
                    <span class="vv-cell" data-testid="vv-cell" data-row=row.map(|r| r.to_string())
                        data-col=col.map(|c| c.to_string()) data-index=index.map(|i| i.to_string())
                        data-value=format!("{v:e}") title=format!("{v}")>{text}</span>
                }
            };
        if p.flat() {
            let cells = w
                .values
                .into_iter()
                .zip(w.numbers)
                .enumerate()
                .map(|(k, (t, v))| cell(t, v, None, None, Some(p.row0 + k as u64)))
                .collect_view();
            return Some(view! { <div class="vv-grid flat">{cells}</div> }.into_any());
        }
        let nr = (p.shape[p.row_axis] - p.row0).min(ROWS as u64);
        let nc = (p.shape[p.col_axis] - p.col0).min(COLS as u64) as usize;
        let head = (0..nc)
            .map(|c| view! { <span class="vv-head">{group_digits(p.col0 + c as u64)}</span> })
            .collect_view();
        let mut it = w.values.into_iter().zip(w.numbers);
        let rows = (0..nr)
            .map(|r| {
                let row = p.row0 + r;
                let cells = (0..nc)
                    .filter_map(|c| {
                        let (t, v) = it.next()?;
                        Some(cell(t, v, Some(row), Some(p.col0 + c as u64), None))
                    })
                    .collect_view();
                view! { <span class="vv-head row">{group_digits(row)}</span>{cells} }
            })
            .collect_view();
        Some(view! {
            <div class="vv-grid" style=format!("grid-template-columns: auto repeat({nc}, minmax(0, 1fr))")>
                <span class="vv-head corner"></span>{head}{rows}
            </div>
        }.into_any())
    };

    view! {
        <div class="insp-section value-viewer" data-testid="value-viewer" class:hidden=move || place.with(|p| p.is_none())>
            <div class="section-title">"Values"</div>
            {controls}
            {move || error.get().map(|e| view! { <div class="panel error small" role="alert">{e}</div> })}
            {grid}
        </div>
    }
}
