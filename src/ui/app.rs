//! The page: a drop zone covering the window, a file picker, a "Try a sample" button, the
//! summary header, the layer tree (left), the tabs Inspector / Edit / Compare (right) and the
//! layer-statistics overview (below).
//!
//! Contract: a dropped or picked set of files is sent to the worker as one `open` request; the
//! sample is the page's own `sample.pth`, fetched (same origin) and opened the same way. The
//! open flow renders [`PageState`]; the opened index, the selection and the worker's answers are
//! shared through [`PageCheckpoint`] (see [`super::context`]). After a file opens, its layer
//! statistics are computed (files up to [`AUTO_LIMIT`] bytes) with progress and Cancel. Test
//! hooks (`data-testid`, stable): `drop-zone` (its `data-worker` is `ready` once the reader
//! answered the handshake), `file-input`, `sample`, `progress`, `error`, `file-summary` (with
//! `file-name`, `file-size`, `file-format`), `tensor-count`, `param-count`, `safety`,
//! `details-note`, `tree`, `tree-row`, `search`, `inspector`, `stats`, `histogram`, `overview`.

use super::action_bar::{ActionBar, EditBar};
use super::compare_panel::ComparePanel;
use super::context::{OpenedFile, PageCheckpoint};
use super::edit_panel::EditPanel;
use super::edited::{Facts, ShownIndex};
use super::inspector::{Busy, Inspector};
use super::lazy::Lazy;
use super::model::{journal_status, StatusKind};
use super::model::{Details, FileCard, PageState};
use super::overview::{bytes_to_read, LayerStats, Overview, AUTO_LIMIT};
use super::stats_pool::{StatsPool, MIN_PART_BYTES};
use super::tree::NodeKind;
use super::worker_client::WorkerClient;
use crate::display::{group_digits, human_bytes, human_count};
use crate::worker::protocol::{
    ErrorKind, ErrorReply, JsFile, Request, Response, StatsRow, Summary, Tier, Verdict, WARM_ID,
};
use leptos::prelude::*;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use web_sys::{DragEvent, File, FileList, HtmlInputElement};

/// Mount the app on `<body>`.
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

fn files_of(list: Option<FileList>) -> Vec<File> {
    let Some(list) = list else { return vec![] };
    (0..list.length()).filter_map(|i| list.item(i)).collect()
}

/// What the right column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Inspector,
    Edit,
    Compare,
    Merge,
}

/// The right column's tab, for panels that send the user to another one (context).
#[derive(Clone, Copy)]
pub struct ActiveTab(pub RwSignal<Tab>);

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let state = RwSignal::new(PageState::default());
    let hub = StoredValue::new(None::<PageCheckpoint>);
    let busy = RwSignal::new(None::<Busy>);
    // the layer-statistics run in progress, if any
    let running = RwSignal::new(None::<u32>);
    let client = StoredValue::new_local(WorkerClient::spawn(
        move |r| {
            if let Some(ck) = hub.get_value() {
                on_answer(state, ck, r);
            }
        },
        move |msg| {
            state.update(|s| s.worker_failed(&msg));
            busy.set(None);
            running.set(None);
        },
    ));
    crate::ui::hub::connect(move |r| client.with_value(|c| c.send(r)));
    let ck = PageCheckpoint::new();
    hub.set_value(Some(ck));
    provide_context(ck);
    let bar = EditBar::new();
    provide_context(bar);
    // the journal: one copy for the page, and what the last action did
    ck.listen(move |r| {
        if let Response::Journal(j) = r {
            if j.file.is_empty() {
                return; // "no checkpoint is open"
            }
            let status = ck
                .journal
                .with_untracked(|prev| journal_status(prev.as_deref(), j));
            if let Some(s) = status {
                bar.error.set(
                    (s.0 == StatusKind::Refused)
                        .then(|| j.error.clone())
                        .flatten(),
                );
                bar.status.set(Some(s));
            }
            ck.journal.set(Some(Arc::new(j.clone())));
        }
    });
    // what every panel shows: the journal's view (as downloaded) or the file as read
    Effect::new(move |_| {
        let Some(o) = ck.original.get() else { return };
        let show_original = ck.show_original.get();
        let show_removed = ck.show_removed.get();
        let shown = ck.journal.with(|j| match j {
            Some(j) if !show_original && !j.ops.is_empty() => Arc::new(OpenedFile::shown(
                o.id,
                o.name.clone(),
                ShownIndex::edited(&o.entries, j, show_removed),
            )),
            _ => o.clone(),
        });
        let prev = ck.opened.get_untracked();
        if prev.as_ref().is_some_and(|p| Arc::ptr_eq(p, &shown)) {
            return;
        }
        // the selection stays on the same bytes
        let source = ck.selected.get_untracked().and_then(|t| {
            prev.as_ref()
                .filter(|p| p.id == o.id)?
                .sources
                .get(t as usize)
                .copied()
        });
        let selected = source.and_then(|s| shown.find_source(s));
        ck.opened.set(Some(shown));
        if ck.selected.get_untracked() != selected {
            ck.selected.set(selected);
        }
    });
    // the Edit tab's "delete / keep selected" act on the tensor selected in the tree
    provide_context(crate::ui::edit_panel::Selection(Signal::derive(
        move || {
            let i = ck.selected.get()? as usize;
            ck.opened.with(|f| {
                f.as_ref()
                    .and_then(|f| f.entries.get(i))
                    .map(|e| e.path.clone())
            })
        },
    )));
    provide_context(super::charts::watch_theme());

    // layer statistics of the opened file: big files on a pool of workers, small ones on the
    // reader (which has the file open already)
    let pool = StoredValue::new_local(StatsPool::default());
    // (open id, files, total bytes) of the last opens: a sharded set's size in the header
    let file_sets = RwSignal::new(Vec::<(u32, usize, u64)>::new());
    let sent = StoredValue::new_local(Vec::<(u32, Vec<File>)>::new());
    layer_stats(ck, busy, pool, sent, running);
    let cancel = move || {
        let Some(b) = busy.get_untracked() else {
            return;
        };
        if pool.with_value(|p| p.running()) == Some(b.id) {
            // terminate the pool's workers: stops inside a tensor too
            pool.with_value(|p| p.cancel());
            crate::ui::hub::dispatch(&Response::AllStatsDone {
                id: b.id,
                cancelled: true,
            });
        } else if running.get_untracked() == Some(b.id) {
            ck.send(&Request::Cancel { id: b.id });
        }
        // a single tensor's statistics cannot be interrupted: its answer is dropped
        busy.set(None);
    };

    let open = move |files: Vec<File>| {
        if files.is_empty() || !discard_changes(ck) {
            return;
        }
        crate::worker::perf::mark("p:open");
        let names: Vec<String> = files.iter().map(|f| f.name()).collect();
        let total: u64 = files.iter().map(|f| f.size() as u64).sum();
        let mut id = 0;
        state.update(|s| id = s.begin(&names));
        // the files of the last opens, for the statistics pool's workers
        file_sets.update(|v| {
            v.push((id, names.len(), total));
            let n = v.len();
            v.drain(..n.saturating_sub(2));
        });
        sent.update_value(|v| {
            v.push((id, files.clone()));
            let n = v.len();
            v.drain(..n.saturating_sub(2));
        });
        let req = Request::Open {
            id,
            files: files.into_iter().map(JsFile).collect(),
        };
        if let Err(e) = client.with_value(|c| c.send(&req)) {
            state.update(|s| {
                s.apply(Response::Error(ErrorReply::new(
                    Some(id),
                    ErrorKind::Request,
                    format!("cannot pass the file to the reader: {e}"),
                )))
            });
        }
    };
    let sample = move |_: leptos::ev::MouseEvent| fetch_sample(open, state);
    // the Merge tab's FIRST: the files of the open checkpoint
    let first_files = Callback::new(move |_: ()| {
        let id = ck.opened.with_untracked(|f| f.as_ref().map(|f| f.id))?;
        sent.with_value(|v| v.iter().find(|(i, _)| *i == id).map(|x| x.1.clone()))
    });

    let search = super::key_search::key_search(ck);
    let subset = Memo::new(move |_| {
        let f = ck.opened.get()?;
        search.filter.with(|filter| {
            let filter = filter.as_ref().ok()?.as_ref()?;
            Some(
                f.tree
                    .tensor_node
                    .iter()
                    .enumerate()
                    .filter(|(_, &n)| {
                        matches!(f.tree.nodes[n as usize].kind, NodeKind::Tensor(_))
                            && filter.find(n, f.tree.path(n)).is_some()
                    })
                    .map(|(i, _)| i as u32)
                    .collect::<Vec<u32>>(),
            )
        })
    });
    let tab = RwSignal::new(Tab::Inspector);
    provide_context(ActiveTab(tab));
    // (the worker's warm-up file is rendered unseen: it is not a file the user opened)
    let has_file = Memo::new(move |_| {
        ck.opened
            .with(|f| f.as_ref().is_some_and(|f| f.id != WARM_ID))
    });

    // dragenter/dragleave fire for every child crossed: count them
    let drag_depth = RwSignal::new(0i32);
    let dragging = Memo::new(move |_| drag_depth.get() > 0);
    let on_dragenter = move |ev: DragEvent| {
        ev.prevent_default();
        drag_depth.update(|d| *d += 1);
    };
    let on_dragover = move |ev: DragEvent| {
        ev.prevent_default();
        if let Some(dt) = ev.data_transfer() {
            dt.set_drop_effect("copy");
        }
    };
    let on_dragleave = move |_: DragEvent| drag_depth.update(|d| *d = (*d - 1).max(0));
    // the Run view (a training run's checkpoints) takes the dropped files while it is shown
    let run_mode = RwSignal::new(false);
    let run_files = RwSignal::new_local(Vec::<File>::new());
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        drag_depth.set(0);
        let files = files_of(ev.data_transfer().and_then(|dt| dt.files()));
        if run_mode.get_untracked() {
            run_files.set(files);
        } else {
            open(files);
        }
    };

    let worker_state = Memo::new(move |_| {
        if state.with(|s| s.worker_ready) {
            "ready"
        } else {
            "starting"
        }
    });
    let card = Memo::new(move |_| state.with(|s| s.card.clone()));
    let error = Memo::new(move |_| state.with(|s| s.error.clone()));
    let pending = Memo::new(move |_| {
        state.with(|s| {
            s.pending.as_ref().map(|p| {
                let format = p.detected.as_ref().map(|d| d.format.clone());
                (p.label.clone(), format)
            })
        })
    });

    view! {
        <div
            class="app"
            class:dragging=dragging
            data-testid="drop-zone"
            data-worker=worker_state
            on:dragenter=on_dragenter
            on:dragover=on_dragover
            on:dragleave=on_dragleave
            on:drop=on_drop
        >
            <TopBar sample=sample open=open run_mode=run_mode />
            <div class:hidden=move || !run_mode.get()><Lazy when=run_mode><super::run_view::RunView files=run_files /></Lazy></div>
            <main class="content" class:hidden=run_mode>
                {move || pending.get().map(|(label, format)| progress(label, format))}
                {move || busy.get().filter(|b| b.shown).map(|b| work_progress(b, cancel))}
                {move || error.get().map(error_panel)}
                {move || match card.get() {
                    Some(c) => {
                        let set = match &c.details {
                            Details::Summary(s) => file_sets.with(|v| v.iter().find(|x| x.0 == s.id).map(|x| (x.1, x.2))),
                        };
                        view! { <SummaryCard card=c set=set /> }.into_any()
                    }
                    None => empty_hint().into_any(),
                }}
                // built with the page and laid out unseen until a file is open (`.standby`):
                // the first open only fills it in. Building it then cost ≈ 200 ms of the first
                // open's 400; styling and laying it out for the first time (the monospace fonts'
                // first use) ≈ 100 ms more.
                <div class="workspace" class:standby=move || !has_file.get() inert=move || !has_file.get()>
                    <section class="pane tree-pane">
                        <super::table_view::TensorPane search=search />
                    </section>
                    <SidePane tab=tab busy=busy first_files=first_files />
                    <section class="pane overview-pane">
                        <Overview subset=subset />
                    </section>
                </div>
            </main>
            // below the scrolling page, not over it: nothing of the page is ever behind the bar
            <div class="action-dock" class:hidden=run_mode>
                <div class:hidden=move || !has_file.get()><ActionBar /></div>
            </div>
            <div class="drop-overlay" aria-hidden="true">
                <div class="drop-target">"Drop to open"</div>
            </div>
        </div>
    }
}

/// The top bar: the name, what the page does, "Try a sample", the file picker and the switch to
/// the Run view.
#[component]
fn TopBar(
    sample: impl Fn(leptos::ev::MouseEvent) + 'static,
    open: impl Fn(Vec<File>) + 'static,
    run_mode: RwSignal<bool>,
) -> impl IntoView {
    view! {
        <header class="topbar">
            <div class="brand">
                <span class="logo" aria-hidden="true"></span>
                <h1>"weightscope"</h1>
            </div>
            <p class="tagline">
                "PyTorch & safetensors checkpoints, read in your browser. "
                "Nothing is uploaded; no pickle code runs."
            </p>
            <button class="button" data-testid="sample" on:click=sample>"Try a sample"</button>
            <FilePicker open=open />
            <button class="button" data-testid="run-mode" aria-pressed=move || run_mode.get().to_string()
                on:click=move |_| run_mode.update(|m| *m = !*m)>
                {move || if run_mode.get() { "Back to the file" } else { "Training run…" }}
            </button>
        </header>
    }
}

/// The right column: the tabs Inspector / Edit / Compare / Merge and their panels (all mounted;
/// the hidden ones keep their state).
#[component]
fn SidePane(
    tab: RwSignal<Tab>,
    busy: RwSignal<Option<Busy>>,
    first_files: Callback<(), Option<Vec<File>>>,
) -> impl IntoView {
    view! {
        <section class="pane side-pane">
            <div class="tabs" role="tablist">
                {[(Tab::Inspector, "Inspector"), (Tab::Edit, "Edit"), (Tab::Compare, "Compare"), (Tab::Merge, "Merge")]
                    .into_iter()
                    .map(|(t, label)| view! {
                        <button role="tab" class="tab" class:active=move || tab.get() == t
                            aria-selected=move || (tab.get() == t).to_string()
                            on:click=move |_| tab.set(t)>{label}</button>
                    })
                    .collect_view()}
            </div>
            <div class="tab-body">
                <div class:hidden=move || tab.get() != Tab::Inspector><Inspector busy=busy /></div>
                // a tab is built when first shown: an open renders the Inspector only
                <div class:hidden=move || tab.get() != Tab::Edit><Lazy when=Signal::derive(move || tab.get() == Tab::Edit)><EditPanel /></Lazy></div>
                <div class:hidden=move || tab.get() != Tab::Compare><Lazy when=Signal::derive(move || tab.get() == Tab::Compare)><ComparePanel /></Lazy></div>
                <div class:hidden=move || tab.get() != Tab::Merge><Lazy when=Signal::derive(move || tab.get() == Tab::Merge)><super::merge_panel::MergePanel first=first_files /></Lazy></div>
            </div>
        </section>
    }
}

/// The `<input type=file multiple>` behind a button.
#[component]
fn FilePicker<F>(open: F) -> impl IntoView
where
    F: Fn(Vec<File>) + 'static,
{
    let on_change = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let files = files_of(input.files());
        // clear it, so picking the same file again is a change
        input.set_value("");
        open(files);
    };
    view! {
        <input
            id="file-input"
            class="visually-hidden"
            type="file"
            multiple
            data-testid="file-input"
            on:change=on_change
        />
        <label class="button primary" for="file-input">"Open files…"</label>
    }
}

/// The layer statistics of the opened file ([`LayerStats`], provided as context): computed
/// when a file opens (up to [`AUTO_LIMIT`] bytes) or on request, big files on the pool of
/// workers, small ones on the reader; the rows as the shown entries see them; `running` is the
/// run in progress.
fn layer_stats(
    ck: PageCheckpoint,
    busy: RwSignal<Option<Busy>>,
    pool: StoredValue<StatsPool, LocalStorage>,
    sent: StoredValue<Vec<(u32, Vec<File>)>, LocalStorage>,
    running: RwSignal<Option<u32>>,
) {
    // by the opened file's tensor index, and as the shown entries see them
    let a_rows = RwSignal::new(Vec::<super::table_model::RowSlot>::new());
    let rows = RwSignal::new(Vec::new());
    let cancelled = RwSignal::new(false);
    let start_all = Callback::new(move |_: ()| {
        let id = ck.new_id();
        running.set(Some(id));
        cancelled.set(false);
        let f = ck.original.get_untracked();
        let on_pool = f
            .as_ref()
            .and_then(|f| pool_files(f, sent).map(|files| (f.clone(), files)));
        match on_pool {
            Some((f, files)) => pool.with_value(|p| {
                p.run(id, f.id, &files, &f.entries, 64, move |r| {
                    crate::ui::hub::dispatch(&r)
                })
            }),
            None => ck.send(&Request::AllStats { id, bins: 64 }),
        }
        Busy::begin(busy, id, "Layer statistics".into(), 0);
    });
    // what the next run reads: a pool's fresh workers compute every tensor, the reader skips
    // the ones already in (not followed while a run fills the rows in: nothing shows it then,
    // and it walks every entry)
    let to_read = Memo::new(move |prev: Option<&u64>| {
        if running.get().is_some() {
            return prev.copied().unwrap_or(0);
        }
        ck.original.with(|f| {
            let Some(f) = f else { return 0 };
            let on_pool = pool_files(f, sent).is_some();
            a_rows.with(|a| {
                bytes_to_read(&f.entries, |i| {
                    on_pool || a.get(i).is_none_or(|r| r.is_none())
                })
            })
        })
    });
    let ls = LayerStats {
        rows,
        running,
        cancelled,
        start: start_all,
        to_read: to_read.into(),
    };
    // Rows come in many small answers (one per worker time slice; thousands for 50,000 tiny
    // tensors): they are applied together at most every ROWS_EVERY, so the overview and the
    // table redraw a few times a second instead of once per answer. Everything that ends a run
    // applies the waiting rows first.
    let waiting = StoredValue::new(Vec::<StatsRow>::new());
    let due = StoredValue::new(false);
    let apply_waiting = move || {
        due.set_value(false);
        let got = waiting.try_update_value(std::mem::take).unwrap_or_default();
        if !got.is_empty() {
            a_rows.update(|v| {
                for r in got {
                    if let Some(slot) = v.get_mut(r.tensor as usize) {
                        *slot = Some(std::sync::Arc::new(r));
                    }
                }
            });
        }
    };
    ck.listen(move |r| match r {
        Response::StatsRows { id, rows: got } if running.get_untracked() == Some(*id) => {
            waiting.update_value(|w| w.extend_from_slice(got));
            if !due.get_value() {
                due.set_value(true);
                set_timeout(apply_waiting, ROWS_EVERY);
            }
        }
        Response::Progress { id, done, total } if running.get_untracked() == Some(*id) => busy
            .update(|b| {
                if let Some(b) = b.as_mut().filter(|b| b.id == *id) {
                    b.done = *done;
                    b.total = *total;
                }
            }),
        Response::AllStatsDone { id, cancelled: c } if running.get_untracked() == Some(*id) => {
            apply_waiting();
            running.set(None);
            cancelled.set(*c);
            busy.update(|b| {
                if b.as_ref().is_some_and(|b| b.id == *id) {
                    *b = None;
                }
            });
        }
        Response::Error(e) if e.id.is_some() && e.id == running.get_untracked() => {
            apply_waiting();
            running.set(None);
            busy.set(None);
        }
        _ => {}
    });
    Effect::new(move |_| {
        let shown = ck.opened.with(|f| {
            f.as_ref().map(|f| {
                a_rows.with(|a| {
                    f.sources
                        .iter()
                        .map(|s| {
                            (s.input == 0)
                                .then(|| a.get(s.tensor as usize).cloned().flatten())
                                .flatten()
                        })
                        .collect::<Vec<_>>()
                })
            })
        });
        rows.set(shown.unwrap_or_default());
    });
    // a new file: fresh slots, and its statistics when it is small enough
    Effect::new(move |_| {
        let Some(f) = ck.original.get() else { return };
        if f.id == WARM_ID {
            return;
        }
        waiting.update_value(Vec::clear);
        a_rows.set(vec![None; f.entries.len()]);
        pool.with_value(|p| p.cancel());
        if let Some(id) = running.get_untracked() {
            running.set(None);
            busy.update(|b| {
                if b.as_ref().is_some_and(|b| b.id == id) {
                    *b = None;
                }
            });
        }
        let bytes: u64 = f.entries.iter().fold(0, |a, e| a.saturating_add(e.bytes));
        if !f.entries.is_empty() && bytes <= AUTO_LIMIT {
            // once the file's first frame is out (its first answers and the progress line would
            // otherwise be rendered before the tree is first shown); a hidden tab gets no frames
            let open_id = f.id;
            after_frame(move || {
                let same = ck
                    .original
                    .try_with_untracked(|o| o.as_ref().map(|o| o.id) == Some(open_id));
                if same == Some(true) && running.get_untracked().is_none() {
                    start_all.run(());
                }
            });
        }
    });
    provide_context(ls);
}

/// Run `f` once, after the next frame has been drawn, or after [`FRAME_LATEST`] when no frame
/// comes (a hidden tab gets none).
fn after_frame(f: impl Fn() + Copy + 'static) {
    let done = StoredValue::new(false);
    let once = move || {
        if done.try_get_value() == Some(false) {
            done.set_value(true);
            f();
        }
    };
    request_animation_frame(move || set_timeout(once, std::time::Duration::ZERO));
    set_timeout(once, FRAME_LATEST);
}

/// How long [`after_frame`] waits for a frame at most.
const FRAME_LATEST: std::time::Duration = std::time::Duration::from_millis(250);

/// How long statistics rows wait to be applied together (see [`layer_stats`]).
const ROWS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The files of opened file `f` when its layer statistics run on the pool of workers (at least
/// [`MIN_PART_BYTES`] of tensors), `None` when the reader computes them.
fn pool_files(
    f: &OpenedFile,
    sent: StoredValue<Vec<(u32, Vec<File>)>, LocalStorage>,
) -> Option<Vec<File>> {
    let bytes: u64 = f.entries.iter().map(|e| e.bytes).sum();
    if bytes < MIN_PART_BYTES {
        return None;
    }
    sent.with_value(|v| v.iter().find(|(i, _)| *i == f.id).map(|x| x.1.clone()))
}

fn progress(label: String, format: Option<String>) -> impl IntoView {
    view! {
        <div class="progress" data-testid="progress" role="status">
            <span class="spinner" aria-hidden="true"></span>
            <span>"Reading " <strong>{label}</strong> "…"</span>
            {format.map(|f| view! { <span class="badge">{f}</span> })}
        </div>
    }
}

/// Route one worker answer: the open flow to [`PageState`], the index to [`PageCheckpoint`], and
/// every answer to the hub's listeners.
fn on_answer(state: RwSignal<PageState>, ck: PageCheckpoint, r: Response) {
    match r {
        Response::Summary(s) if s.id == WARM_ID => show_warm(ck, s),
        Response::Ready if warm_shown(ck) => {
            // the warm-up file's first frame (its style and layout) first, then ready
            after_frame(move || {
                if warm_shown(ck) {
                    ck.original.set(None);
                    ck.opened.set(None);
                }
                crate::ui::hub::dispatch(&Response::Ready);
                state.update(|st| st.apply(Response::Ready));
            });
        }
        Response::Summary(mut s) => {
            let pending = state.with_untracked(|st| {
                st.pending.as_ref().filter(|p| p.id == s.id).map(|p| {
                    p.detected
                        .as_ref()
                        .map(|d| d.name.clone())
                        .unwrap_or_else(|| p.label.clone())
                })
            });
            if let Some(name) = pending {
                let entries = std::mem::take(&mut s.entries);
                let values = std::mem::take(&mut s.values);
                ck.selected.set(None);
                ck.selected_value.set(None);
                let f = Arc::new(OpenedFile::new(s.id, name, entries, values));
                crate::worker::perf::mark("p:tree-built");
                // a fresh journal comes with the file: show it as read until it is edited
                ck.journal.set(None);
                ck.show_original.set(false);
                ck.original.set(Some(f.clone()));
                ck.opened.set(Some(f));
                // the journal's state (the Edit tab's) once the file's first frame is out: the
                // worker's work for it (a 50,000-key file's export plans: ≈ 100 ms) would
                // otherwise share the cores with the page's first render of the file
                after_frame(|| {
                    let _ = crate::ui::hub::send(&Request::JournalList {
                        id: crate::ui::hub::next_id(),
                    });
                });
                crate::worker::perf::mark("p:opened-set");
            }
            let r = Response::Summary(s);
            crate::ui::hub::dispatch(&r);
            state.update(|st| st.apply(r));
            crate::worker::perf::mark("p:state-applied");
        }
        r @ (Response::Ready | Response::Detected(_) | Response::Error(_)) => {
            crate::ui::hub::dispatch(&r);
            state.update(|st| st.apply(r));
        }
        r => crate::ui::hub::dispatch(&r),
    }
}

/// The worker's warm-up index ([`WARM_ID`], posted once before it is ready): built into a file
/// and rendered into the unseen workspace, so the user's first open finds the decoding, the tree
/// and the components' code compiled (wasm functions compile on their first call) and their rows
/// styled and laid out once. It is removed when the worker is ready, a frame later; never when a
/// file is open (a restarted worker warms up too).
fn show_warm(ck: PageCheckpoint, mut s: Summary) {
    if ck.original.with_untracked(|o| o.is_some()) {
        return;
    }
    let entries = std::mem::take(&mut s.entries);
    let values = std::mem::take(&mut s.values);
    let f = Arc::new(OpenedFile::new(WARM_ID, "warm.pth".into(), entries, values));
    ck.original.set(Some(f.clone()));
    ck.opened.set(Some(f));
}

/// True while the worker's warm-up file is the open one.
fn warm_shown(ck: PageCheckpoint) -> bool {
    ck.original
        .with_untracked(|o| o.as_ref().is_some_and(|o| o.id == WARM_ID))
}

/// Fetch the page's own `sample.pth` and open it like a picked file.
fn fetch_sample(open: impl Fn(Vec<File>) + Copy + 'static, state: RwSignal<PageState>) {
    let fail = move |msg: String| {
        state.update(|s| {
            let id = s.begin(&["sample.pth".to_string()]);
            s.apply(Response::Error(ErrorReply::new(
                Some(id),
                ErrorKind::File,
                format!("sample.pth: {msg}"),
            )))
        })
    };
    let Some(w) = web_sys::window() else { return };
    // the callbacks run once each; they are small and leaked on purpose
    let blob = Closure::<dyn FnMut(JsValue)>::new(move |b: JsValue| {
        let parts = js_sys::Array::of1(&b);
        match File::new_with_blob_sequence(&parts, "sample.pth") {
            Ok(f) => open(vec![f]),
            Err(e) => fail(crate::worker::blob::js_error_text(&e)),
        }
    });
    let failed = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        fail(crate::worker::blob::js_error_text(&e))
    });
    let got = Closure::<dyn FnMut(JsValue)>::new(move |resp: JsValue| {
        let resp: web_sys::Response = resp.unchecked_into();
        if !resp.ok() {
            fail(format!("HTTP {}", resp.status()));
            return;
        }
        match resp.blob() {
            Ok(p) => {
                let _ = p.then2(&blob, &failed);
            }
            Err(e) => fail(crate::worker::blob::js_error_text(&e)),
        }
    });
    let failed2 = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        fail(crate::worker::blob::js_error_text(&e))
    });
    let _ = w.fetch_with_str("./sample.pth").then2(&got, &failed2);
    got.forget();
    failed2.forget();
}

fn work_progress(b: Busy, cancel: impl Fn() + Copy + 'static) -> impl IntoView {
    let pct = if b.total > 0 {
        (b.done as f64 / b.total as f64 * 100.0).min(100.0)
    } else {
        0.0
    };
    view! {
        <div class="progress work" data-testid="progress" role="progressbar"
            aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{pct:.0}")
            data-done=b.done.to_string() data-total=b.total.to_string()>
            <span class="spinner" aria-hidden="true"></span>
            <span class="progress-label">{b.label}</span>
            <span class="bar"><span class="fill" style:width=format!("{pct:.1}%")></span></span>
            <span class="muted">{format!("{} / {}", human_bytes(b.done), human_bytes(b.total))}</span>
            <button class="mini" data-testid="cancel" on:click=move |_| cancel()>"Cancel"</button>
        </div>
    }
}

fn error_panel(message: String) -> impl IntoView {
    view! {
        <div class="panel error" data-testid="error" role="alert">
            <strong>"Could not open this file"</strong>
            <p>{message}</p>
        </div>
    }
}

fn empty_hint() -> impl IntoView {
    view! {
        <section class="hint">
            <p class="hint-title">"Drop a checkpoint anywhere on this page"</p>
            <p class="muted">
                ".pth · .pt · .bin · .ckpt · .safetensors — detected from the bytes, not the name"
            </p>
            <label class="button" for="file-input">"Choose files…"</label>
        </section>
    }
}

/// True when opening another file may go on: the journal is empty, or the user agreed to
/// discard its changes.
fn discard_changes(ck: PageCheckpoint) -> bool {
    let n = ck.changes();
    if n == 0 {
        return true;
    }
    let name = ck
        .original
        .with_untracked(|f| f.as_ref().map(|f| f.name.clone()))
        .unwrap_or_default();
    let msg = format!(
        "{name} has {n} edit{} in its journal. Opening another file discards them \
         (Download first to keep the edited checkpoint). Open the other file?",
        if n == 1 { "" } else { "s" }
    );
    web_sys::window()
        .and_then(|w| w.confirm_with_message(&msg).ok())
        .unwrap_or(false)
}

/// The summary header: the file, and the numbers of what is shown — the checkpoint as it will
/// be downloaded after edits (with a switch to the file as read), or as read.
#[component]
fn SummaryCard(card: FileCard, set: Option<(usize, u64)>) -> impl IntoView {
    let ck = expect_context::<PageCheckpoint>();
    let FileCard {
        name,
        size,
        format,
        format_description,
        files,
        details,
    } = card;
    let Details::Summary(s) = details;
    let sharded = format.ends_with("-sharded");
    let shown_size = match set {
        Some((_, total)) if sharded => total,
        _ => size,
    };
    let size_text = if sharded {
        format!(
            "{} shards · {}",
            files.saturating_sub(1),
            human_bytes(shown_size)
        )
    } else {
        human_bytes(shown_size)
    };
    // several files without an index: the first one is read
    let more = (files > 1 && !sharded).then(|| {
        view! {
            <p class="note" data-testid="details-note">
                {format!("{files} files were given; only the first is read (drop a sharded checkpoint's *.index.json with its shards to read them as one).")}
            </p>
        }
    });
    let changes = Memo::new(move |_| ck.changes());
    let edited_view = Memo::new(move |_| ck.opened.with(|f| f.as_ref().is_some_and(|f| f.edited)));
    let facts = Memo::new(move |_| {
        ck.opened
            .with(|f| f.as_ref().map(|f| Facts::of(&f.entries, &f.marks)))
            .unwrap_or_default()
    });
    let removed = Memo::new(move |_| ck.opened.with(|f| f.as_ref().map_or(0, |f| f.removed)));
    let drops = Memo::new(move |_| {
        ck.journal
            .with(|j| j.as_ref().map_or(0, |j| j.drops_torch.len()))
    });
    view! {
        <article class="card" data-testid="file-summary"
            data-view=move || if edited_view.get() { "edited" } else { "original" }>
            <header class="card-head">
                <h2 class="file-name" data-testid="file-name" title=name.clone()>{name.clone()}</h2>
                <span class="badge format" data-testid="file-format" title=format_description.clone()>{format}</span>
                <span class="file-size" data-testid="file-size" data-bytes=shown_size.to_string()>
                    {size_text}
                    <span class="muted">{format!(" ({} bytes)", group_digits(shown_size))}</span>
                </span>
                <span class="muted format-desc" title=format_description.clone()>{format_description.clone()}</span>
                <span class="spacer"></span>
                <Show when=move || { changes.get() > 0 }>
                    <div class="view-switch" role="group" aria-label="Which checkpoint is shown">
                        <button class="chip" data-testid="view-edited" aria-pressed=move || (!ck.show_original.get()).to_string()
                            on:click=move |_| ck.show_original.set(false)>
                            {move || format!("As downloaded ({} change{})", changes.get(), if changes.get() == 1 { "" } else { "s" })}
                        </button>
                        <button class="chip" data-testid="view-original" aria-pressed=move || ck.show_original.get().to_string()
                            on:click=move |_| ck.show_original.set(true)>"Original"</button>
                        <label class="toggle" title="List the tensors the download leaves out, struck through">
                            <input type="checkbox" data-testid="show-removed" prop:checked=move || ck.show_removed.get()
                                on:change=move |ev| ck.show_removed.set(event_target_checked(&ev)) />
                            {move || format!("show removed ({})", removed.get())}
                        </label>
                    </div>
                </Show>
            </header>
            {move || summary_facts(s.clone(), facts.get(), edited_view.get(), drops.get())}
            {more}
        </article>
    }
}

fn summary_facts(s: Summary, facts: Facts, edited: bool, drops: usize) -> impl IntoView {
    let calls = s.calls.clone();
    let globals = s.globals.len();
    let flagged = s.globals.iter().filter(|g| g.tier != Tier::Allowed).count();
    let detail = match s.verdict {
        Verdict::Safe if globals == 0 => "no pickle globals".to_string(),
        Verdict::Safe => format!("{globals} globals referenced, all allowed"),
        _ => s
            .globals
            .iter()
            .filter(|g| g.tier != Tier::Allowed)
            .map(|g| format!("{}.{}", g.module, g.name))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let dtypes = facts
        .by_dtype
        .iter()
        .map(|(d, n)| format!("{d}\u{a0}{}", human_count(*n))) // a dtype and its count never split
        .collect::<Vec<_>>()
        .join(" · ");
    let dangerous = s.verdict == Verdict::Dangerous;
    let globals_list = (flagged > 0 || (globals > 0 && globals <= 12)).then(|| {
        let mut gl = s.globals.clone();
        // dangerous first, then unknown, then allowed
        crate::order::sort_by_key(&mut gl, |g| std::cmp::Reverse(g.tier));
        view! {
            <details class="globals-list" open={flagged > 0}>
                <summary>{format!("{globals} pickle globals ({flagged} not on the allow list)")}</summary>
                {dangerous.then(|| view! {
                    <p class="danger-note">
                        "Loading this file with "<code>"torch.load(weights_only=False)"</code>
                        " (or any pickle loader) would run the calls below. weightscope never runs them."
                    </p>
                })}
                <ul>
                    {gl.into_iter().map(|g| {
                        let why = if g.why.is_empty() {
                            match g.tier {
                                Tier::Allowed => "allowed: a known tensor/container constructor".to_string(),
                                Tier::Unknown => "unknown: not executed; shown as an inert object".to_string(),
                                Tier::Dangerous => "dangerous".to_string(),
                            }
                        } else {
                            g.why.clone()
                        };
                        let name = format!("{}.{}", g.module, g.name);
                        let prefix = format!("{name}(");
                        let made: Vec<String> = if g.tier == Tier::Dangerous {
                            calls.iter().filter(|c| c.starts_with(&prefix)).take(3).cloned().collect()
                        } else {
                            vec![]
                        };
                        view! {
                            <li class=format!("global {}", g.tier)>
                                <code>{name}</code>
                                <span class=format!("tier {}", g.tier)>{g.tier.name()}</span>
                                <span class="why">{why}</span>
                                {(!made.is_empty()).then(|| view! {
                                    <span class="calls">"would call "
                                        {made.into_iter().map(|c| view! { <code class="call">{c}</code> " " }).collect_view()}
                                    </span>
                                })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </details>
        }
    });
    let model = facts.params.saturating_sub(facts.optimizer);
    let params_note = match (facts.optimizer, facts.tied) {
        (0, 0) => String::new(),
        (0, t) => format!(" · {} tied, counted once", group_digits(t)),
        (o, t) => format!(
            " · model {} · optimizer state {}{}",
            human_count(model),
            human_count(o),
            if t > 0 {
                format!(" · {} tied, counted once", group_digits(t))
            } else {
                String::new()
            }
        ),
    };
    view! {
        <dl class="facts">
            <div>
                <dt>"Tensors"</dt>
                <dd data-testid="tensor-count">{group_digits(facts.tensors)}</dd>
            </div>
            <div class="wide-ish">
                <dt>"Parameters"</dt>
                <dd data-testid="param-count" data-count=facts.params.to_string() data-numel=facts.numel.to_string()
                    data-model=model.to_string() data-optimizer=facts.optimizer.to_string()>
                    {human_count(facts.params)}
                    <span class="muted">{format!(" ({}){params_note}", group_digits(facts.params))}</span>
                </dd>
            </div>
            <div>
                <dt>"Tensor bytes"</dt>
                <dd data-testid="tensor-bytes" data-bytes=facts.bytes.to_string()>{human_bytes(facts.bytes)}</dd>
            </div>
            <div>
                <dt>"By dtype"</dt>
                <dd class="dtypes" data-testid="dtypes">{dtypes}</dd>
            </div>
            <div class="wide">
                <dt>"Safety"</dt>
                <dd data-testid="safety" data-verdict=s.verdict.name()>
                    <span class=format!("verdict {}", s.verdict)>{s.verdict.name()}</span>
                    " — "
                    <span class="globals">{detail}</span>
                </dd>
            </div>
            {edited.then(|| view! {
                <div class="wide download">
                    <dt>"Download"</dt>
                    <dd data-testid="safety-output" data-verdict="safe"
                        title="the written file names only tensor-rebuild globals: it loads with torch.load(weights_only=True)">
                        <span class="verdict safe">"safe"</span>
                        {if drops > 0 { format!(" — {drops} value(s) left out") } else { " — weights_only=True".to_string() }}
                    </dd>
                </div>
            })}
        </dl>
        {globals_list}
        {(!s.metadata.is_empty())
            .then(|| {
                view! {
                    <details class="metadata-block" data-testid="metadata">
                        <summary>{format!("safetensors metadata ({} entries)", s.metadata.len())}</summary>
                        <dl class="kv metadata">
                            {s.metadata
                                .into_iter()
                                .map(|(k, v)| view! { <dt><code>{k}</code></dt><dd><code>{v}</code></dd> })
                                .collect_view()}
                        </dl>
                    </details>
                }
            })}
        {(!s.notes.is_empty())
            .then(|| {
                view! {
                    <ul class="notes">
                        {s.notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
                    </ul>
                }
            })}
    }
}
