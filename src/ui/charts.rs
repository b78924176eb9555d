//! Canvas drawing on the main thread: the histogram and the layer overview with plotters +
//! plotters-canvas (plotters measures text through the DOM, so never in the worker), and the
//! heatmap with the plain 2-D context.
//!
//! Contract: each `draw_*` clears the whole canvas and returns the [`Frame`] of the plotting
//! area in canvas pixels with the data range on x, so mouse positions can be mapped back to
//! bins / tensors ([`Frame::x_value`]). Colours follow the system theme ([`dark`]).

use crate::stats::Histogram;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

/// The plotting area of a drawn chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub x0: i32,
    pub x1: i32,
    pub y0: i32,
    pub y1: i32,
    pub lo: f64,
    pub hi: f64,
}

impl Frame {
    /// The data x at canvas pixel `px`, `None` outside the plotting area.
    pub fn x_value(&self, px: f64) -> Option<f64> {
        if px < self.x0 as f64 || px > self.x1 as f64 || self.x1 <= self.x0 {
            return None;
        }
        Some(self.lo + (px - self.x0 as f64) / (self.x1 - self.x0) as f64 * (self.hi - self.lo))
    }
}

/// Bumped when the system theme changes; chart effects track it to redraw in the new colours.
#[derive(Clone, Copy)]
pub struct Theme(pub leptos::prelude::RwSignal<u32>);

/// Watch `prefers-color-scheme` (call once, from the app).
pub fn watch_theme() -> Theme {
    use leptos::prelude::*;
    let t = RwSignal::new(0u32);
    if let Some(mq) =
        web_sys::window().and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
    {
        let cb = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || t.update(|x| *x += 1));
        mq.set_onchange(Some(cb.as_ref().unchecked_ref()));
        // both live as long as the page
        cb.forget();
        std::mem::forget(mq);
    }
    Theme(t)
}

/// True when the system asks for a dark theme.
pub fn dark() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .is_some_and(|m| m.matches())
}

struct Palette {
    bg: RGBColor,
    fg: RGBColor,
    grid: RGBColor,
    accent: RGBColor,
    bad: RGBColor,
}

fn palette() -> Palette {
    if dark() {
        Palette {
            bg: RGBColor(0x19, 0x1d, 0x23),
            fg: RGBColor(0x94, 0xa0, 0xb0),
            grid: RGBColor(0x2e, 0x35, 0x3f),
            accent: RGBColor(0x7c, 0x93, 0xf5),
            bad: RGBColor(0xff, 0x7b, 0x7b),
        }
    } else {
        Palette {
            bg: RGBColor(0xff, 0xff, 0xff),
            fg: RGBColor(0x5f, 0x6b, 0x7a),
            grid: RGBColor(0xdd, 0xe1, 0xe7),
            accent: RGBColor(0x3b, 0x5b, 0xdb),
            bad: RGBColor(0xc9, 0x2a, 0x2a),
        }
    }
}

/// Short tick text.
pub fn tick(v: f64) -> String {
    crate::display::short_float(v)
}

/// A y-axis label: the value, or `1e<value>` on a log10 axis.
fn count_tick(v: f64, log: bool) -> String {
    if log {
        format!("1e{}", tick(v))
    } else {
        tick(v)
    }
}

/// Draw `h` (bars over the bin edges), heights `log10(1 + count)` when `log`.
pub fn draw_histogram(canvas: &HtmlCanvasElement, h: &Histogram, log: bool) -> Option<Frame> {
    let p = palette();
    let backend = CanvasBackend::with_canvas_object(canvas.clone())?;
    let root = backend.into_drawing_area();
    root.fill(&p.bg).ok()?;
    if h.counts.is_empty() || h.edges.len() != h.counts.len() + 1 {
        root.titled(
            "no finite values",
            ("sans-serif", 13).into_font().color(&p.fg),
        )
        .ok()?;
        return None;
    }
    let (mut lo, mut hi) = (h.edges[0], h.edges[h.edges.len() - 1]);
    if hi <= lo {
        lo -= 0.5;
        hi += 0.5;
    }
    let y = |c: u64| {
        if log {
            (1.0 + c as f64).log10()
        } else {
            c as f64
        }
    };
    let ymax = h.counts.iter().map(|&c| y(c)).fold(0.0, f64::max).max(1e-9) * 1.05;
    let label = ("sans-serif", 11).into_font().color(&p.fg);
    let mut chart = ChartBuilder::on(&root)
        .margin(6)
        .margin_right(14)
        .x_label_area_size(20)
        .y_label_area_size(46)
        .build_cartesian_2d(lo..hi, 0f64..ymax)
        .ok()?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(1)
        .light_line_style(p.grid.mix(0.25))
        .bold_line_style(p.grid)
        .axis_style(p.grid)
        .x_labels(6)
        .y_labels(4)
        .label_style(label)
        .x_label_formatter(&|v| {
            // a tick at zero computed as lo + k·step is rarely exactly 0
            if v.abs() < (hi - lo) * 1e-9 {
                "0".into()
            } else {
                tick(*v)
            }
        })
        .y_label_formatter(&|v| count_tick(*v, log))
        .draw()
        .ok()?;
    let bar = p.accent.filled();
    chart
        .draw_series(
            h.counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| {
                    let (a, b) = if h.edges[i + 1] > h.edges[i] {
                        (h.edges[i], h.edges[i + 1])
                    } else {
                        (lo, hi)
                    };
                    Rectangle::new([(a, 0.0), (b, y(c))], bar)
                }),
        )
        .ok()?;
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    root.present().ok()?;
    Some(Frame {
        x0: xr.start,
        x1: xr.end,
        y0: yr.start,
        y1: yr.end,
        lo,
        hi,
    })
}

/// One point of the overview: its position in the shown subset and the statistic (`None` for
/// tensors without a value yet); `flag` marks NaN/Inf tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub value: Option<f64>,
    pub flag: bool,
    pub selected: bool,
}

/// Draw the overview: x = position in file order, y = the statistic.
pub fn draw_overview(canvas: &HtmlCanvasElement, points: &[Point], log_y: bool) -> Option<Frame> {
    let p = palette();
    let backend = CanvasBackend::with_canvas_object(canvas.clone())?;
    let root = backend.into_drawing_area();
    root.fill(&p.bg).ok()?;
    let tr = |v: f64| if log_y { v.abs().max(1e-30).log10() } else { v };
    let vals: Vec<f64> = points
        .iter()
        .filter_map(|q| q.value.filter(|v| v.is_finite()).map(tr))
        .collect();
    let (mut lo, mut hi) = vals
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if hi <= lo {
        lo -= 0.5;
        hi += 0.5;
    }
    let pad = (hi - lo) * 0.06;
    let n = points.len().max(1) as f64;
    let label = ("sans-serif", 11).into_font().color(&p.fg);
    let mut chart = ChartBuilder::on(&root)
        .margin(6)
        .margin_right(14)
        .x_label_area_size(20)
        .y_label_area_size(54)
        .build_cartesian_2d(-0.5f64..n - 0.5, (lo - pad)..(hi + pad))
        .ok()?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(1)
        .light_line_style(p.grid.mix(0.25))
        .bold_line_style(p.grid)
        .axis_style(p.grid)
        .x_labels(points.len().clamp(1, 8))
        .y_labels(4)
        .label_style(label)
        .x_label_formatter(&|v| {
            // positions are whole tensors: no label between them
            if (v - v.round()).abs() > 1e-6 {
                String::new()
            } else {
                format!("{}", v.round() as i64)
            }
        })
        .y_label_formatter(&|v| count_tick(*v, log_y))
        .draw()
        .ok()?;
    let r = if points.len() > 2000 { 1 } else { 2 };
    chart
        .draw_series(points.iter().enumerate().filter_map(|(i, q)| {
            let v = tr(q.value?);
            v.is_finite()
                .then(|| Circle::new((i as f64, v), r, p.accent.mix(0.85).filled()))
        }))
        .ok()?;
    chart
        .draw_series(
            points
                .iter()
                .enumerate()
                .filter(|(_, q)| q.flag)
                .map(|(i, _)| TriangleMarker::new((i as f64, hi + pad * 0.5), 5, p.bad.filled())),
        )
        .ok()?;
    if let Some((i, q)) = points.iter().enumerate().find(|(_, q)| q.selected) {
        let y = q.value.map(tr).filter(|v| v.is_finite()).unwrap_or(lo);
        chart
            .draw_series(std::iter::once(Circle::new(
                (i as f64, y),
                5,
                p.bad.stroke_width(2),
            )))
            .ok()?;
    }
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    root.present().ok()?;
    Some(Frame {
        x0: xr.start,
        x1: xr.end,
        y0: yr.start,
        y1: yr.end,
        lo: -0.5,
        hi: n - 0.5,
    })
}

/// Draw `rows`×`cols` cells (mean |x|) scaled to the largest, NaN cells hatched grey.
pub fn draw_heatmap(canvas: &HtmlCanvasElement, rows: u32, cols: u32, cells: &[f32]) {
    let Ok(Some(ctx)) = canvas.get_context("2d") else {
        return;
    };
    let Ok(ctx) = ctx.dyn_into::<CanvasRenderingContext2d>() else {
        return;
    };
    let (w, h) = (canvas.width() as f64, canvas.height() as f64);
    ctx.clear_rect(0.0, 0.0, w, h);
    if rows == 0 || cols == 0 {
        return;
    }
    let max = cells
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |a, &b| a.max(b))
        .max(f32::MIN_POSITIVE);
    let (cw, ch) = (w / cols as f64, h / rows as f64);
    for r in 0..rows {
        for c in 0..cols {
            let v = cells[(r * cols + c) as usize];
            let color = if v.is_finite() {
                ramp((v / max) as f64)
            } else {
                "#888".to_string()
            };
            ctx.set_fill_style_str(&color);
            ctx.fill_rect(c as f64 * cw, r as f64 * ch, cw.ceil(), ch.ceil());
        }
    }
}

/// A dark-blue → teal → yellow ramp for t in [0, 1].
fn ramp(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let stops = [
        (0.0, (0x1b, 0x1f, 0x4b)),
        (0.5, (0x1f, 0x9e, 0x89)),
        (1.0, (0xfd, 0xe7, 0x25)),
    ];
    let (a, b) = if t < 0.5 {
        (stops[0], stops[1])
    } else {
        (stops[1], stops[2])
    };
    let u = (t - a.0) / (b.0 - a.0);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * u).round() as u8;
    format!(
        "rgb({},{},{})",
        mix(a.1 .0, b.1 .0),
        mix(a.1 .1, b.1 .1),
        mix(a.1 .2, b.1 .2)
    )
}
