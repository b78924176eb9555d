//! The layer tree panel: search box, order and expand-depth controls, and a virtualized
//! `role="tree"` list (only the rows in view are in the DOM).
//!
//! Contract: every rendered row is `data-testid="tree-row"`; a leaf row has `data-path` = its
//! path joined by `/` (as `inspect --json`). Clicking a tensor row (or Enter on it) selects it in
//! the [`PageCheckpoint`] context; clicking a folder toggles it. Keys on the tree: ↑/↓ move, →
//! expands / enters, ← collapses / goes to the parent, Home/End, Enter selects or toggles, `c`
//! copies the key path. `/` anywhere focuses the search box, Esc in it clears the search and
//! returns to the tree. A selection made elsewhere (the overview) expands its ancestors and
//! scrolls its row into view.

use super::context::{OpenedFile, PageCheckpoint};
use super::edited::Mark;
use super::tree::{NodeId, NodeKind, Order, Row};
use crate::display::{group_digits, human_bytes, human_count};
use crate::format::fastmap::KeySet;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::KeyboardEvent;

/// Row height in pixels (CSS `.tree-row` uses the same).
pub const ROW_H: f64 = 24.0;
const OVERSCAN: usize = 8;

/// Copy text to the clipboard (best effort).
pub fn copy_text(text: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
}

/// The folders of `now` to show open after `before` (another view of the same file, e.g. before
/// an edit) had `open` open: the same paths, and every folder of a small tree.
fn still_open(before: &OpenedFile, now: &OpenedFile, open: &KeySet<NodeId>) -> KeySet<NodeId> {
    let paths: KeySet<&str> = open
        .iter()
        .filter(|&&n| (n as usize) < before.tree.nodes.len())
        .map(|&n| before.tree.path(n))
        .collect();
    let small = now.tree.nodes.len() <= 400;
    (1..now.tree.nodes.len() as NodeId)
        .filter(|&i| {
            let n = &now.tree.nodes[i as usize];
            n.kind == NodeKind::Folder
                && (paths.contains(now.tree.path(i)) || (small && n.depth < 64))
        })
        .collect()
}

/// The tree panel. `search` is shared with the overview (filtered subset).
#[component]
pub fn TreePanel(search: super::key_search::KeySearch) -> impl IntoView {
    let super::key_search::KeySearch {
        query: search,
        regex,
        filter,
        answered,
    } = search;
    let ck = expect_context::<PageCheckpoint>();
    let order = RwSignal::new(Order::Natural);
    let expanded = RwSignal::new(KeySet::<NodeId>::new());
    let cursor = RwSignal::new(0usize);
    let scroll_top = RwSignal::new(0.0f64);
    let view_h = RwSignal::new(480.0f64);
    let list_ref = NodeRef::<leptos::html::Div>::new();
    let search_ref = NodeRef::<leptos::html::Input>::new();

    // a new file: expand small trees fully, big ones to depth 2; a new view of the same file
    // (an edit, the original): keep the folders that were open, by path
    let last = StoredValue::new(None::<std::sync::Arc<OpenedFile>>);
    Effect::new(move |_| {
        if let Some(f) = ck.opened.get() {
            let before = last.get_value();
            last.set_value(Some(f.clone()));
            if let Some(b) = before.filter(|b| b.id == f.id) {
                let keep = expanded.with_untracked(|open| still_open(&b, &f, open));
                expanded.set(keep);
                return;
            }
            let depth = if f.tree.nodes.len() <= 400 { 64 } else { 2 };
            expanded.set(f.tree.folders_above(depth));
            cursor.set(0);
            // (only when scrolled: setting it forces a layout of the page being built)
            if scroll_top.get_untracked() != 0.0 {
                scroll_top.set(0.0);
                if let Some(el) = list_ref.get_untracked() {
                    el.set_scroll_top(0);
                }
            }
        }
    });

    let rows = Memo::new(move |_| {
        let Some(f) = ck.opened.get() else {
            return (Vec::<Row>::new(), None::<String>);
        };
        filter.with(|filter| match filter {
            Err(e) => (vec![], Some(e.clone())),
            Ok(filter) => {
                let r = expanded.with(|ex| f.tree.rows(ex, order.get(), filter.as_ref()));
                (r, None)
            }
        })
    });
    let searching = Memo::new(move |_| !search.get().trim().is_empty());
    let matches = Memo::new(move |_| {
        let f = ck.opened.get()?;
        searching.get().then(|| {
            rows.with(|(r, _)| {
                r.iter()
                    .filter(|r| f.tree.nodes[r.node as usize].kind != NodeKind::Folder)
                    .count()
            })
        })
    });

    let scroll_to = move |i: usize| {
        let Some(el) = list_ref.get_untracked() else {
            return;
        };
        let top = i as f64 * ROW_H;
        let st = el.scroll_top() as f64;
        let h = el.client_height() as f64;
        if top < st {
            el.set_scroll_top(top as i32);
        } else if top + ROW_H > st + h {
            el.set_scroll_top((top + ROW_H - h) as i32);
        }
    };

    // a selection made elsewhere: reveal it
    Effect::new(move |_| {
        let (Some(t), Some(f)) = (ck.selected.get(), ck.opened.get_untracked()) else {
            return;
        };
        let Some(&node) = f.tree.tensor_node.get(t as usize) else {
            return;
        };
        let anc = f.tree.ancestors(node);
        if !searching.get_untracked()
            && anc
                .iter()
                .any(|a| !expanded.with_untracked(|e| e.contains(a)))
        {
            expanded.update(|e| e.extend(anc));
        }
    });
    Effect::new(move |_| {
        let (Some(t), Some(f)) = (ck.selected.get(), ck.opened.get_untracked()) else {
            return;
        };
        let Some(&node) = f.tree.tensor_node.get(t as usize) else {
            return;
        };
        let at = rows.with(|(r, _)| r.iter().position(|r| r.node == node));
        if let Some(i) = at {
            if cursor.get_untracked() != i {
                cursor.set(i);
            }
            scroll_to(i);
        }
    });

    let toggle = move |node: NodeId| {
        if searching.get_untracked() {
            return;
        }
        expanded.update(|e| {
            if !e.remove(&node) {
                e.insert(node);
            }
        });
    };
    let activate = move |i: usize| {
        let Some(f) = ck.opened.get_untracked() else {
            return;
        };
        let Some(row) = rows.with_untracked(|(r, _)| r.get(i).cloned()) else {
            return;
        };
        cursor.set(i);
        match f.tree.nodes[row.node as usize].kind {
            NodeKind::Tensor(t) => {
                ck.selected_value.set(None);
                ck.selected.set(Some(t));
            }
            NodeKind::Folder => toggle(row.node),
            NodeKind::Value(v) => {
                ck.selected.set(None);
                ck.selected_value.set(Some(v));
            }
        }
    };

    let on_key = move |ev: KeyboardEvent| {
        let n = rows.with_untracked(|(r, _)| r.len());
        if n == 0 {
            return;
        }
        let i = cursor.get_untracked().min(n - 1);
        let row = rows.with_untracked(|(r, _)| r[i].clone());
        let mut to = None;
        match ev.key().as_str() {
            "ArrowDown" => to = Some((i + 1).min(n - 1)),
            "ArrowUp" => to = Some(i.saturating_sub(1)),
            "Home" => to = Some(0),
            "End" => to = Some(n - 1),
            "PageDown" => to = Some((i + 20).min(n - 1)),
            "PageUp" => to = Some(i.saturating_sub(20)),
            "ArrowRight" => {
                if row.has_children && !row.expanded {
                    toggle(row.node);
                } else if row.expanded {
                    to = Some((i + 1).min(n - 1));
                }
            }
            "ArrowLeft" => {
                if row.expanded && !searching.get_untracked() {
                    toggle(row.node);
                } else if let Some(f) = ck.opened.get_untracked() {
                    let parent = f.tree.nodes[row.node as usize].parent;
                    to =
                        rows.with_untracked(|(r, _)| r.iter().position(|x| Some(x.node) == parent));
                }
            }
            "Enter" | " " => activate(i),
            "c" => {
                if let Some(f) = ck.opened.get_untracked() {
                    copy_text(f.tree.path(row.node));
                }
            }
            _ => return,
        }
        ev.prevent_default();
        if let Some(j) = to {
            cursor.set(j);
            scroll_to(j);
            // moving onto a tensor inspects it (folders only take the cursor)
            let tensor = ck.opened.with_untracked(|f| {
                let f = f.as_ref()?;
                let node = rows.with_untracked(|(r, _)| r.get(j).map(|r| r.node))?;
                match f.tree.nodes[node as usize].kind {
                    NodeKind::Tensor(t) => Some(t),
                    _ => None,
                }
            });
            if let Some(t) = tensor {
                ck.selected_value.set(None);
                ck.selected.set(Some(t));
            }
        }
    };

    // `/` focuses the search box from anywhere
    let handle = window_event_listener(leptos::ev::keydown, move |ev: KeyboardEvent| {
        if ev.key() != "/" {
            return;
        }
        let typing = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if !typing {
            if let Some(inp) = search_ref.get_untracked() {
                ev.prevent_default();
                let _ = inp.focus();
            }
        }
    });
    on_cleanup(move || handle.remove());

    let on_search_key = move |ev: KeyboardEvent| match ev.key().as_str() {
        "Escape" => {
            search.set(String::new());
            if let Some(el) = list_ref.get_untracked() {
                let _ = el.focus();
            }
        }
        "ArrowDown" | "Enter" => {
            ev.prevent_default();
            cursor.set(0);
            if let Some(el) = list_ref.get_untracked() {
                let _ = el.focus();
            }
        }
        _ => {}
    };

    let on_scroll = move |_| {
        if let Some(el) = list_ref.get_untracked() {
            scroll_top.set(el.scroll_top() as f64);
            view_h.set(el.client_height() as f64);
        }
    };
    // the browser clamps scrollTop when the list shrinks, not always with a scroll event (at 0
    // there is nothing to clamp, and reading it forces a layout of the page being built)
    Effect::new(move |_| {
        rows.track();
        if scroll_top.get_untracked() == 0.0 {
            return;
        }
        if let Some(el) = list_ref.get_untracked() {
            let st = el.scroll_top() as f64;
            if st != scroll_top.get_untracked() {
                scroll_top.set(st);
            }
        }
    });
    // measure the list's height: the panel is laid out unseen with the page (its height then is
    // the whole window's, at least the list's height once shown), and again after each open, in
    // the next frame (when the layout is due anyway). Only a taller list renders again: a shorter
    // one keeps a few rows below its end until the next scroll (re-rendering the rows of the
    // first open cost ≈ 35 ms for nothing).
    Effect::new(move |_| {
        list_ref.track();
        ck.opened.track();
        request_animation_frame(move || {
            if let Some(el) = list_ref.get_untracked() {
                let h = el.client_height() as f64;
                if view_h.try_get_untracked().is_some_and(|v| h > v) {
                    view_h.set(h);
                }
            }
        });
    });

    let expand_to = move |d: u32| {
        if let Some(f) = ck.opened.get_untracked() {
            expanded.set(f.tree.folders_above(d));
        }
    };

    let visible = move || {
        let f = ck.opened.get()?;
        let count = (view_h.get() / ROW_H) as usize + 2 * OVERSCAN;
        let len = rows.with(|(r, _)| r.len());
        // the list may have shrunk without a scroll event: never start past its end
        let first = ((scroll_top.get() / ROW_H) as usize)
            .saturating_sub(OVERSCAN)
            .min(len.saturating_sub(count));
        let cur = cursor.get();
        let sel = ck.selected.get();
        Some(rows.with(|(r, _)| {
            r.iter()
                .enumerate()
                .skip(first)
                .take(count)
                .map(|(i, row)| tree_row(&f, i, row, cur == i, sel, activate))
                .collect_view()
        }))
    };
    let total_h = move || format!("{}px", rows.with(|(r, _)| r.len()) as f64 * ROW_H);
    let active =
        move || rows.with(|(r, _)| r.get(cursor.get()).map(|r| format!("tree-node-{}", r.node)));

    view! {
        <div class="tree-tools">
            <div class="search-box">
                <input
                    type="search"
                    class="search"
                    data-testid="search"
                    placeholder="Search keys   ( / )"
                    aria-label="Search keys"
                    spellcheck="false"
                    autocomplete="off"
                    node_ref=search_ref
                    prop:value=move || search.get()
                    data-answered=move || answered.get()
                    on:input=move |ev| search.set(event_target_value(&ev))
                    on:keydown=on_search_key
                />
                <label class="toggle" title="Regular expression">
                    <input type="checkbox" prop:checked=move || regex.get()
                        on:change=move |ev| regex.set(event_target_checked(&ev)) />
                    ".*"
                </label>
            </div>
            <TreeControls
                order=order
                expand_to=Callback::new(expand_to)
                note=Signal::derive(move || match (rows.with(|r| r.1.clone()), matches.get()) {
                    (Some(e), _) => e,
                    (None, Some(1)) => "1 match".to_string(),
                    (None, Some(m)) => format!("{} matches", group_digits(m as u64)),
                    (None, None) => String::new(),
                })
            />
        </div>
        <div
            class="tree"
            role="tree"
            aria-label="Checkpoint structure"
            tabindex="0"
            data-testid="tree"
            node_ref=list_ref
            aria-activedescendant=active
            on:scroll=on_scroll
            on:keydown=on_key
        >
            <div class="tree-inner" style:height=total_h>
                {visible}
            </div>
        </div>
    }
}

/// The tree's order and expand-depth controls, and the search's match count (`note`).
#[component]
fn TreeControls(
    order: RwSignal<Order>,
    expand_to: Callback<u32>,
    note: Signal<String>,
) -> impl IntoView {
    view! {
        <div class="tree-controls">
            <select
                aria-label="Order"
                on:change=move |ev| {
                    order.set(if event_target_value(&ev) == "file" { Order::File } else { Order::Natural })
                }
            >
                <option value="natural">"Natural order"</option>
                <option value="file">"File order"</option>
            </select>
            <span class="muted">"Expand"</span>
            <button class="mini" on:click=move |_| expand_to.run(0) title="Collapse all">"0"</button>
            <button class="mini" on:click=move |_| expand_to.run(1)>"1"</button>
            <button class="mini" on:click=move |_| expand_to.run(2)>"2"</button>
            <button class="mini" on:click=move |_| expand_to.run(3)>"3"</button>
            <button class="mini" on:click=move |_| expand_to.run(u32::MAX) title="Expand all">"all"</button>
            <span class="spacer"></span>
            <span class="muted match-count">{move || note.get()}</span>
        </div>
    }
}

fn tree_row(
    f: &OpenedFile,
    i: usize,
    row: &Row,
    is_cursor: bool,
    selected: Option<u32>,
    activate: impl Fn(usize) + Copy + 'static,
) -> impl IntoView {
    let n = &f.tree.nodes[row.node as usize];
    let (text, node_path) = (f.tree.label(row.node), f.tree.path(row.node));
    let label: AnyView = match row.mark {
        Some((a, b)) if b <= text.len() && text.is_char_boundary(a) && text.is_char_boundary(b) => view! {
            <span class="label">
                {text[..a].to_string()}<mark>{text[a..b].to_string()}</mark>{text[b..].to_string()}
            </span>
        }
        .into_any(),
        _ => view! { <span class="label">{text.to_string()}</span> }.into_any(),
    };
    let (kind, meta, path, is_sel) = match &n.kind {
        NodeKind::Folder => (
            "folder",
            format!(
                "{} · {} · {}",
                group_digits(n.tensors),
                human_count(n.params),
                human_bytes(n.bytes)
            ),
            None,
            false,
        ),
        NodeKind::Tensor(t) => {
            let e = &f.entries[*t as usize];
            (
                "tensor",
                format!("{} {}", e.dtype, shape_text(&e.shape)),
                Some(node_path.to_string()),
                selected == Some(*t),
            )
        }
        NodeKind::Value(v) => (
            if f.values[*v as usize].kind == "call" {
                "value call"
            } else {
                "value"
            },
            f.values[*v as usize].text.clone(),
            Some(node_path.to_string()),
            false,
        ),
    };
    let mark = match n.kind {
        NodeKind::Tensor(t) => f.marks.get(t as usize).cloned().unwrap_or_default(),
        _ => Mark::default(),
    };
    let title = match &mark.renamed_from {
        Some(old) => format!("{node_path}\nrenamed from {old}"),
        None if mark.removed => format!("{node_path}\nnot in the download (removed)"),
        None => node_path.to_string(),
    };
    let change = mark.is_change().then(|| {
        view! {
            <span class="changes">
                {mark.renamed_from.clone().map(|o| view! { <span class="was" data-testid="renamed-from">{format!("← {o}")}</span> })}
                {mark.cast_from.map(|d| view! { <span class="badge change cast" data-testid="badge-cast" title=format!("cast from {d} on download")>{format!("{d}→")}</span> })}
                {mark.added.then(|| view! { <span class="badge change added" data-testid="badge-added" title="transplanted from file B">"from B"</span> })}
                {mark.removed.then(|| view! { <span class="badge change removed" data-testid="badge-removed">"removed"</span> })}
            </span>
        }
    });
    let twisty = if row.has_children {
        if row.expanded {
            "▾"
        } else {
            "▸"
        }
    } else {
        ""
    };
    view! {
        <div
            class=format!("tree-row {kind}")
            class:cursor=is_cursor
            class:selected=is_sel
            role="treeitem"
            id=format!("tree-node-{}", row.node)
            data-testid="tree-row"
            data-path=path
            aria-expanded=row.has_children.then(|| row.expanded.to_string())
            aria-selected=is_sel.to_string()
            style:top=format!("{}px", i as f64 * ROW_H)
            style:padding-left=format!("{}px", 6 + row.depth * 14)
            class:removed=mark.removed
            class:changed=mark.is_change()
            data-change=mark.is_change().then(|| {
                if mark.removed { "removed" } else if mark.added { "added" } else if mark.cast_from.is_some() && mark.renamed_from.is_none() { "cast" } else { "renamed" }
            })
            title=title
            on:click=move |_| activate(i)
        >
            <span class="twisty" aria-hidden="true">{twisty}</span>
            {label}
            {change}
            <span class="meta">{meta}</span>
        </div>
    }
    // tachys has no typed `aria-level`
    .add_any_attr(leptos::tachys::html::attribute::custom::custom_attribute(
        "aria-level",
        (row.depth + 1).to_string(),
    ))
}

/// `[768, 3072]`.
pub fn shape_text(shape: &[u64]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
