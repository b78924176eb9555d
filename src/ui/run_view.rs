//! The Run tab: drop (or pick) the checkpoints of one training run and see every layer's
//! statistics across steps — a layer × step heatmap of a chosen metric, line charts of the
//! selected layers, the flags, and CSV / JSON export of the table.
//!
//! Contract: the files go to a small pool of the page's own reader workers (at most
//! [`MAX_WORKERS`], never more than the checkpoints or `navigator.hardwareConcurrency`), each
//! opening all of them ([`crate::worker::trend`]); the first `opened` answer gives the run and
//! its default order (by step, else by name). Then every (checkpoint, previous) pair of the
//! order is computed by whichever worker is idle, with one progress bar over the bytes to read.
//! Cancel terminates the workers (nothing half-done is kept; finished steps are); Resume starts
//! fresh ones. Moving a checkpoint up or down recomputes only the pairs that changed
//! ([`super::run_model`]). The table equals `weightscope trend` on the same files in the same
//! order, and the exports are its `--csv` / `--json` output. While the view is shown, files
//! dropped anywhere on the page come here (the app hands them over as `files`) and open a run.
//!
//! Test hooks (`data-testid`): `run-mode` (the app's header button), `run-panel`, `run-drop`, `run-input`, `run-order` with `run-item`
//! rows (`data-name`, `data-step`) and their `run-up` / `run-down` buttons, `run-progress`,
//! `run-cancel`, `run-resume`, `run-errors`, `run-metric` (select of the metric names),
//! `run-heatmap` with `run-cell` cells (`data-key`, `data-step`, `data-flags`, `data-value`),
//! `run-flags` with `run-flag` buttons (`data-key`, `data-step`, `data-kind`), `run-selected`
//! (`data-key`, `data-step`), `run-chart` (an SVG, one `polyline` per charted layer with
//! `data-key`), `run-export-csv`, `run-export-json`, `run-done` (`data-tensors`, `data-flags`).

use super::run_model::{heat, Metric, RunModel};
use super::worker_client::WorkerClient;
use crate::stats::trend::{to_csv, TrendReport};
use crate::worker::protocol::{JsFile, Request, Response};
use crate::worker::trend::{TrendReply, TrendRequest};
use leptos::prelude::*;
use web_sys::File;

/// Most workers a run uses.
pub const MAX_WORKERS: usize = 4;

type Pair = (u32, Option<u32>);

struct Slot {
    client: WorkerClient,
    ready: bool,
    job: Option<(u32, Pair)>,
    done: u64,
}

/// Everything the handlers share (all `Copy` handles).
#[derive(Clone, Copy)]
struct Run {
    model: RwSignal<Option<RunModel>>,
    report: RwSignal<Option<TrendReport>>,
    progress: RwSignal<Option<(u64, u64)>>,
    error: RwSignal<Option<String>>,
    cancelled: RwSignal<bool>,
    files: StoredValue<Vec<File>, LocalStorage>,
    pool: StoredValue<Vec<Slot>, LocalStorage>,
    next_id: StoredValue<u32>,
    /// Bytes of the pairs of this run finished so far, and of all its pairs.
    tally: StoredValue<(u64, u64)>,
}

fn send(client: &WorkerClient, req: TrendRequest<JsFile>) -> Result<(), String> {
    client.send(&Request::Trend(req))
}

impl Run {
    fn id(self) -> u32 {
        self.next_id.update_value(|i| *i += 1);
        self.next_id.get_value()
    }

    /// Stop every worker (a Cancel or a new run).
    fn stop(self) {
        self.pool.update_value(|p| {
            for s in p.iter() {
                s.client.stop();
            }
            p.clear();
        });
        self.progress.set(None);
    }

    /// Start workers and have each open the run's files.
    fn start(self) {
        self.stop();
        let files = self.files.get_value();
        if files.is_empty() {
            return;
        }
        let cores = web_sys::window()
            .map(|w| w.navigator().hardware_concurrency() as usize)
            .unwrap_or(1);
        let n = MAX_WORKERS.min(cores.max(1)).min(files.len()).max(1);
        for k in 0..n {
            let client = WorkerClient::spawn(
                move |r| self.on_answer(k, r),
                move |msg| {
                    self.error.set(Some(format!("reader failed: {msg}")));
                    self.stop();
                },
            );
            let id = self.id();
            let req = TrendRequest::TrendOpen {
                id,
                files: files.iter().map(|f| JsFile(f.clone())).collect(),
            };
            if let Err(e) = send(&client, req) {
                self.error.set(Some(e));
            }
            self.pool.update_value(|p| {
                p.push(Slot {
                    client,
                    ready: false,
                    job: None,
                    done: 0,
                })
            });
        }
        self.cancelled.set(false);
    }

    /// Give idle workers the pairs nobody is computing.
    fn dispatch(self) {
        let Some(jobs) = self
            .model
            .with_untracked(|m| m.as_ref().map(RunModel::jobs))
        else {
            return;
        };
        let busy: Vec<Pair> = self
            .pool
            .with_value(|p| p.iter().filter_map(|s| s.job.map(|j| j.1)).collect());
        let mut todo = jobs.into_iter().filter(|j| !busy.contains(j));
        let idle: Vec<usize> = self.pool.with_value(|p| {
            p.iter()
                .enumerate()
                .filter(|(_, s)| s.ready && s.job.is_none())
                .map(|(k, _)| k)
                .collect()
        });
        for k in idle {
            let Some(job) = todo.next() else { break };
            let id = self.id();
            let req = TrendRequest::TrendStep {
                id,
                cur: job.0,
                prev: job.1,
            };
            // send outside the pool's borrow (a failing worker's handler stops the pool)
            let client = self.pool.try_update_value(|p| {
                let s = &mut p[k];
                s.job = Some((id, job));
                s.done = 0;
                s.client.clone()
            });
            if let Some(Err(e)) = client.map(|c| send(&c, req)) {
                self.error.set(Some(e));
            }
        }
        self.show_progress();
    }

    fn show_progress(self) {
        let (finished, total) = self.tally.get_value();
        let inflight: u64 = self
            .pool
            .with_value(|p| p.iter().filter(|s| s.job.is_some()).map(|s| s.done).sum());
        let running = self.pool.with_value(|p| p.iter().any(|s| s.job.is_some()));
        self.progress
            .set(running.then_some((finished + inflight, total.max(1))));
    }

    fn on_answer(self, k: usize, r: Response) {
        let Response::Trend(r) = r else { return };
        match r {
            TrendReply::Opened {
                checkpoints,
                errors,
                ..
            } => {
                if self.model.with_untracked(|m| m.is_none()) {
                    self.model.set(Some(RunModel::new(checkpoints, errors)));
                    self.begin();
                }
                self.pool.update_value(|p| {
                    if let Some(s) = p.get_mut(k) {
                        s.ready = true;
                    }
                });
                self.dispatch();
            }
            TrendReply::Progress { id, done, .. } => {
                let mine = self.pool.try_update_value(|p| match p.get_mut(k) {
                    Some(s) if s.job.is_some_and(|j| j.0 == id) => {
                        s.done = done;
                        true
                    }
                    _ => false,
                });
                if mine == Some(true) {
                    self.show_progress();
                }
            }
            TrendReply::Points {
                id,
                cur,
                prev,
                points,
            } => {
                let job = self.pool.try_update_value(|p| match p.get_mut(k) {
                    Some(s) if s.job.is_some_and(|j| j.0 == id) => s.job.take(),
                    _ => None,
                });
                if job.flatten().is_none() {
                    return;
                }
                let bytes = self
                    .model
                    .with_untracked(|m| m.as_ref().map_or(0, |m| m.job_bytes((cur, prev))));
                self.tally.update_value(|t| t.0 += bytes);
                self.model.update(|m| {
                    if let Some(m) = m {
                        m.done.insert((cur, prev), points);
                    }
                });
                self.finish_or_dispatch();
            }
            TrendReply::Error { id, error } => {
                self.pool.update_value(|p| {
                    if let Some(s) = p.get_mut(k) {
                        if s.job.is_some_and(|j| j.0 == id) {
                            s.job = None;
                        }
                    }
                });
                self.error.set(Some(error));
                self.stop();
            }
        }
    }

    /// A new computation over the current order: reset the byte tally.
    fn begin(self) {
        let total = self.model.with_untracked(|m| {
            m.as_ref()
                .map_or(0, |m| m.jobs().iter().map(|&j| m.job_bytes(j)).sum())
        });
        self.tally.set_value((0, total));
        self.report.set(None);
    }

    fn finish_or_dispatch(self) {
        let report = self
            .model
            .with_untracked(|m| m.as_ref().and_then(RunModel::report));
        match report {
            Some(r) => {
                self.report.set(Some(r));
                self.progress.set(None);
            }
            None => self.dispatch(),
        }
    }

    /// New files: a new run.
    fn open(self, files: Vec<File>) {
        if files.is_empty() {
            return;
        }
        self.files.set_value(files);
        self.model.set(None);
        self.report.set(None);
        self.error.set(None);
        self.start();
    }

    /// The order changed: compute what is missing.
    fn reordered(self) {
        self.begin();
        if self.cancelled.get_untracked() {
            return;
        }
        self.finish_or_dispatch();
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4e}")).unwrap_or_else(|| "–".into())
}

/// A colour from a 0..=1 heat value (the page's one ramp, see [`super::scale::ramp`]), grey
/// for missing values.
fn colour(h: Option<f64>) -> String {
    match h {
        None => "#888".into(),
        Some(h) => super::scale::ramp_css(h),
    }
}

/// The chart of the selected layers: one polyline per layer over the steps.
fn line_chart(report: &TrendReport, keys: &[String], metric: Metric) -> impl IntoView {
    const W: f64 = 560.0;
    const H: f64 = 180.0;
    const PAD: f64 = 28.0;
    let series: Vec<(String, Vec<Option<f64>>)> = keys
        .iter()
        .filter_map(|k| report.tensors.iter().find(|s| &s.key == k))
        .map(|s| (s.key.clone(), metric.values(s)))
        .collect();
    let all = series.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let (lo, hi) = all
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let span = if hi > lo { hi - lo } else { 1.0 };
    let n = report.steps.len().max(2) - 1;
    let x = move |t: usize| PAD + (W - 2.0 * PAD) * t as f64 / n as f64;
    let y = move |v: f64| H - PAD - (H - 2.0 * PAD) * (v - lo) / span;
    let lines = series
        .into_iter()
        .enumerate()
        .map(|(i, (key, vals))| {
            let pts: Vec<String> = vals
                .iter()
                .enumerate()
                .filter_map(|(t, v)| {
                    v.filter(|v| v.is_finite())
                        .map(|v| format!("{:.1},{:.1}", x(t), y(v)))
                })
                .collect();
            let hue = (i * 67) % 360;
            let key_attr = key.clone();
            view! {
                <polyline data-key=key_attr points=pts.join(" ") fill="none"
                    stroke=format!("hsl({hue}, 70%, 45%)") stroke-width="2">
                    <title>{key}</title>
                </polyline>
            }
        })
        .collect_view();
    // one label per step (every k-th when they would crowd): the step found in the file, else
    // the position
    let every = report.steps.len().div_ceil(12).max(1);
    let labels = report
        .steps
        .iter()
        .enumerate()
        .filter(|(t, _)| t % every == 0 || *t + 1 == report.steps.len())
        .map(|(t, s)| {
            let text = s.step.map(|v| v.to_string()).unwrap_or_else(|| format!("#{t}"));
            view! {
                <line x1=x(t) y1=H - PAD x2=x(t) y2=H - PAD + 3.0 stroke="currentColor" stroke-width="0.5" />
                <text class="run-step-label" data-step=t x=x(t) y=H - PAD + 13.0 font-size="9" text-anchor="middle" fill="currentColor">{text}</text>
            }
        })
        .collect_view();
    let span = hi - lo;
    view! {
        <svg data-testid="run-chart" class="run-chart" viewBox=format!("0 0 {W} {}", H + 8.0) width="100%">
            <text x="2" y="12" font-size="10" fill="currentColor">{super::scale::axis_label(hi, span)}</text>
            <text x="2" y=format!("{}", H - PAD) font-size="10" fill="currentColor">{super::scale::axis_label(lo, span)}</text>
            <line x1=PAD y1=H - PAD x2=W - PAD y2=H - PAD stroke="currentColor" stroke-width="0.5" />
            {labels}
            <text x=W / 2.0 y=H + 6.0 font-size="9" text-anchor="middle" fill="currentColor">"step"</text>
            {lines}
        </svg>
    }
}

/// The Run tab.
#[component]
pub fn RunView(
    /// Files dropped on the page while the Run view is shown.
    files: RwSignal<Vec<File>, LocalStorage>,
) -> impl IntoView {
    let run = Run {
        model: RwSignal::new(None),
        report: RwSignal::new(None),
        progress: RwSignal::new(None),
        error: RwSignal::new(None),
        cancelled: RwSignal::new(false),
        files: StoredValue::new_local(vec![]),
        pool: StoredValue::new_local(vec![]),
        next_id: StoredValue::new(0),
        tally: StoredValue::new((0, 0)),
    };
    let metric = RwSignal::new(Metric::RelChange);
    let selected = RwSignal::new(None::<(String, usize)>);
    let charted = RwSignal::new(Vec::<String>::new());
    on_cleanup(move || run.stop());

    let select = move |key: String, step: usize| {
        charted.update(|c| {
            if !c.contains(&key) {
                c.push(key.clone());
            }
        });
        selected.set(Some((key, step)));
    };
    Effect::new(move |_| {
        let list = files.get();
        run.open(list);
    });
    let on_pick = move |ev: web_sys::Event| run.open(super::widgets::take_files(&ev));
    let cancel = move |_| {
        run.stop();
        run.cancelled.set(true);
    };
    let resume = move |_| {
        // fresh workers open the files again; the computed steps and the user's order stay
        // (`opened` only sets up a run when there is none)
        let model = run.model.get_untracked();
        run.start();
        run.model.set(model);
        run.begin();
    };
    let move_item = move |from: usize, to: usize| {
        run.model.update(|m| {
            if let Some(m) = m {
                m.move_item(from, to);
            }
        });
        run.reordered();
    };
    let export = move |csv: bool| {
        let Some(r) = run.report.get_untracked() else {
            return;
        };
        let res = if csv {
            super::stats_export::download(&to_csv(&r), "trend.csv", "text/csv")
        } else {
            // numbers, strings and lists: serialising cannot fail (no error text in the page)
            let text = serde_json::to_string(&r).unwrap_or_default() + "\n";
            super::stats_export::download(&text, "trend.json", "application/json")
        };
        if let Err(e) = res {
            run.error.set(Some(format!("export failed: {e}")));
        }
    };

    let order_view = move || {
        run.model.with(|m| {
            let Some(m) = m else { return ().into_any() };
            let last = m.order.len().saturating_sub(1);
            m.order
                .iter()
                .enumerate()
                .map(|(pos, &i)| {
                    let c = &m.checkpoints[i];
                    let step = c.step.map(|s| s.to_string()).unwrap_or_else(|| "–".into());
                    let step_attr = step.clone();
                    view! {
                        <li data-testid="run-item" data-name=c.name.clone() data-step=step_attr>
                            <span class="run-pos">{pos}</span>
                            <span class="run-name">{c.name.clone()}</span>
                            <span class="run-step">"step " {step}</span>
                            <button data-testid="run-up" disabled=pos == 0
                                on:click=move |_| move_item(pos, pos - 1)>"↑"</button>
                            <button data-testid="run-down" disabled=pos == last
                                on:click=move |_| move_item(pos, pos + 1)>"↓"</button>
                        </li>
                    }
                })
                .collect_view()
                .into_any()
        })
    };

    let heatmap = move || {
        let metric = metric.get();
        let sel = selected.get();
        run.report.with(|r| {
            let Some(r) = r else { return ().into_any() };
            let n = r.steps.len();
            let header = (0..n)
                .map(|t| view! { <div class="run-col">{t}</div> })
                .collect_view();
            let rows = r
                .tensors
                .iter()
                .map(|s| {
                    let vals = metric.values(s);
                    let hs = heat(&vals);
                    let cells = (0..n)
                        .map(|t| {
                            let flags: Vec<&str> = r
                                .flags
                                .iter()
                                .filter(|f| f.key == s.key && f.step_index == t)
                                .map(|f| f.kind.name())
                                .collect();
                            let key = s.key.clone();
                            let is_sel = sel.as_ref().is_some_and(|(k, st)| *k == key && *st == t);
                            let title = format!("{} · step {t} · {} = {}", key, metric.name(), fmt(vals[t]));
                            view! {
                                <div data-testid="run-cell" class="run-cell"
                                    class:flagged=!flags.is_empty() class:selected=is_sel
                                    data-key=key.clone() data-step=t data-flags=flags.join(";")
                                    data-value=vals[t].map(|v| v.to_string()).unwrap_or_default()
                                    title=title
                                    style=format!("background:{}", colour(hs[t]))
                                    on:click=move |_| select(key.clone(), t)></div>
                            }
                        })
                        .collect_view();
                    view! {
                        <div class="run-key" title=s.key.clone()>{s.key.clone()}</div>
                        {cells}
                    }
                })
                .collect_view();
            view! {
                <div data-testid="run-heatmap" class="run-heatmap"
                    style=format!("grid-template-columns: minmax(8em, 16em) repeat({n}, minmax(14px, 1fr))")>
                    <div class="run-key">"layer \\ step"</div>
                    {header}
                    {rows}
                </div>
                <super::colour_scale::ColourLegend lo="row min" hi="row max"
                    caption=format!("{}: each layer's row scaled from its own smallest to its largest value", metric.name())
                    missing="no value at this step" />
            }
            .into_any()
        })
    };

    let flags_view = move || {
        run.report.with(|r| {
            let Some(r) = r else { return ().into_any() };
            if r.flags.is_empty() {
                return view! { <p class="run-none">"No flags."</p> }.into_any();
            }
            r.flags
                .iter()
                .map(|f| {
                    let (key, step, kind) = (f.key.clone(), f.step_index, f.kind.name());
                    let k2 = key.clone();
                    view! {
                        <li><button data-testid="run-flag" class=format!("run-flag {kind}")
                            data-key=key.clone() data-step=step data-kind=kind
                            on:click=move |_| select(k2.clone(), step)>
                            {format!("{kind} · step {step} · {key}")}
                        </button></li>
                    }
                })
                .collect_view()
                .into_any()
        })
    };

    let selected_view = move || {
        let Some((key, step)) = selected.get() else {
            return ().into_any();
        };
        let detail = run.report.with(|r| {
            r.as_ref()
                .and_then(|r| r.tensors.iter().find(|s| s.key == key))
                .map(|s| {
                    Metric::ALL
                        .iter()
                        .map(|m| format!("{} {}", m.name(), fmt(m.values(s)[step])))
                        .collect::<Vec<_>>()
                        .join(" · ")
                })
                .unwrap_or_default()
        });
        let key_attr = key.clone();
        view! {
            <div data-testid="run-selected" class="run-selected" data-key=key_attr data-step=step>
                <strong>{key}</strong>" at step " {step} ": " {detail}
            </div>
        }
        .into_any()
    };

    let chart_view = move || {
        let keys = charted.get();
        let m = metric.get();
        run.report.with(|r| match r {
            Some(r) if !keys.is_empty() => view! {
                <div class="run-charted">
                    {line_chart(r, &keys, m)}
                    <button on:click=move |_| charted.set(vec![])>"Clear chart"</button>
                </div>
            }
            .into_any(),
            _ => ().into_any(),
        })
    };

    view! {
        <section data-testid="run-panel" class="run-panel">
            <div data-testid="run-drop" class="run-drop">
                <p>"Drop the checkpoints of one training run anywhere on the page (.pth / .ckpt / .safetensors; a sharded set with its index), or "
                    <label class="button">"pick them…"
                        <input data-testid="run-input" type="file" multiple class="visually-hidden" on:change=on_pick />
                    </label>
                </p>
            </div>
            {move || run.error.get().map(|e| view! { <p data-testid="run-errors" class="error">{e}</p> })}
            {move || run.model.with(|m| m.as_ref().filter(|m| !m.errors.is_empty()).map(|m| {
                let errs = m.errors.clone();
                view! { <ul data-testid="run-errors" class="error">{errs.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul> }
            }))}
            <ol data-testid="run-order" class="run-order">{order_view}</ol>
            {move || run.progress.get().map(|(d, t)| view! {
                <div class="run-progress">
                    <progress data-testid="run-progress" max=t value=d></progress>
                    <span>{format!("{:.0}%", 100.0 * d as f64 / t as f64)}</span>
                    <button data-testid="run-cancel" on:click=cancel>"Cancel"</button>
                </div>
            })}
            {move || (run.cancelled.get() && run.report.with(|r| r.is_none())).then(|| view! {
                <p>"Cancelled. " <button data-testid="run-resume" on:click=resume>"Resume"</button></p>
            })}
            {move || run.report.with(|r| r.as_ref().map(|r| {
                let (nt, nf) = (r.tensors.len(), r.flags.len());
                view! {
                    <div data-testid="run-done" class="run-toolbar" data-tensors=nt data-flags=nf>
                        <label>"Metric "
                            <select data-testid="run-metric"
                                on:change=move |ev| {
                                    if let Some(m) = Metric::from_name(&event_target_value(&ev)) {
                                        metric.set(m);
                                    }
                                }>
                                {Metric::ALL.iter().map(|m| view! {
                                    <option value=m.name() selected=*m == metric.get_untracked()>{m.name()}</option>
                                }).collect_view()}
                            </select>
                        </label>
                        <span>{format!("{nt} tensors · {nf} flags")}</span>
                        <button data-testid="run-export-csv" on:click=move |_| export(true)>"Export CSV"</button>
                        <button data-testid="run-export-json" on:click=move |_| export(false)>"Export JSON"</button>
                    </div>
                }
            }))}
            <ul data-testid="run-flags" class="run-flags">{flags_view}</ul>
            {selected_view}
            {chart_view}
            {heatmap}
        </section>
    }
}
