//! Canvas drawing on the main thread: the histogram and the layer overview with plotters +
//! plotters-canvas (plotters measures text through the DOM, so never in the worker), and the
//! heatmap with the plain 2-D context.
//!
//! Contract: each `draw_*` clears the whole canvas and returns the [`Frame`] of the plotting
//! area in canvas pixels with the data range on x, so mouse positions can be mapped back to
//! bins / tensors ([`Frame::x_value`]). Colours follow the system theme ([`dark`]).

use crate::stats::Histogram;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;

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

/// A y-axis label: the value, or `1e<value>` on a log10 axis.
fn count_tick(v: f64, log: bool, span: f64) -> String {
    if log {
        super::scale::log_label(v)
    } else {
        super::scale::axis_label(v, span)
    }
}

type Root = DrawingArea<CanvasBackend, plotters::coord::Shift>;
type Chart<'a> = ChartContext<'a, CanvasBackend, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The canvas as a plotters drawing area, cleared to the theme's background, and the palette.
fn start(canvas: &HtmlCanvasElement) -> Option<(Root, Palette)> {
    let p = palette();
    let root = CanvasBackend::with_canvas_object(canvas.clone())?.into_drawing_area();
    root.fill(&p.bg).ok()?;
    Some((root, p))
}

/// The empty chart's caption.
fn no_finite_values(root: &Root, p: &Palette) -> Option<Frame> {
    root.titled(
        "no finite values",
        ("sans-serif", 13).into_font().color(&p.fg),
    )
    .ok()?;
    None
}

/// A chart over `x` × `y` with the page's margins and a y-label area `y_area` px wide.
fn cartesian<'a>(
    root: &'a Root,
    y_area: u32,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Option<Chart<'a>> {
    ChartBuilder::on(root)
        .margin(6)
        .margin_right(14)
        .x_label_area_size(20)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x, y)
        .ok()
}

/// The axes, the horizontal grid and the tick labels (`x_labels` / 4 of them, through the
/// formatters) in the theme's colours; `x_desc` names the x axis.
fn mesh(
    chart: &mut Chart,
    p: &Palette,
    (x_labels, x_desc): (usize, Option<&str>),
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: &dyn Fn(&f64) -> String,
) -> Option<()> {
    let label = ("sans-serif", 11).into_font().color(&p.fg);
    let mut m = chart.configure_mesh();
    m.disable_x_mesh()
        .max_light_lines(1)
        .light_line_style(p.grid.mix(0.25))
        .bold_line_style(p.grid)
        .axis_style(p.grid)
        .x_labels(x_labels)
        .y_labels(4)
        .label_style(label)
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt);
    if let Some(d) = x_desc {
        m.x_desc(d);
    }
    m.draw().ok()
}

/// The mesh of a chart of values on x (a range `span` wide, 6 ticks) and counts on y.
fn value_mesh(
    chart: &mut Chart,
    p: &Palette,
    span: f64,
    y_fmt: &dyn Fn(&f64) -> String,
) -> Option<()> {
    // a tick at zero computed as lo + k·step is rarely exactly 0: axis_label says 0
    mesh(
        chart,
        p,
        (6, None),
        &|v| super::scale::axis_label(*v, span),
        y_fmt,
    )
}

/// Show the drawing and return its plotting area with `lo..hi` on x.
fn finish(root: &Root, chart: &Chart, lo: f64, hi: f64) -> Option<Frame> {
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

/// An x label at whole positions only (tensors), none between them.
fn whole_tick(v: &f64) -> String {
    if (v - v.round()).abs() > 1e-6 {
        String::new()
    } else {
        format!("{}", v.round() as i64)
    }
}

/// Draw `h` (bars over the bin edges), heights `log10(1 + count)` when `log`.
pub fn draw_histogram(canvas: &HtmlCanvasElement, h: &Histogram, log: bool) -> Option<Frame> {
    let (root, p) = start(canvas)?;
    if h.counts.is_empty() || h.edges.len() != h.counts.len() + 1 {
        return no_finite_values(&root, &p);
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
    let mut chart = cartesian(&root, 46, lo..hi, 0f64..ymax)?;
    value_mesh(&mut chart, &p, hi - lo, &|v| count_tick(*v, log, ymax))?;
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
    finish(&root, &chart, lo, hi)
}

/// One point of the overview: its position in the shown subset and the statistic (`None` for
/// tensors without a value yet); `flag` marks NaN/Inf tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub value: Option<f64>,
    pub flag: bool,
    pub selected: bool,
}

/// The positions of the points that `keep` picks.
fn positions<'a>(
    points: &'a [Point],
    keep: impl Fn(&Point) -> bool + 'a,
) -> impl Iterator<Item = usize> + 'a {
    points
        .iter()
        .enumerate()
        .filter(move |(_, q)| keep(q))
        .map(|(i, _)| i)
}

/// Draw the overview: x = position in file order, y = the statistic. On a log axis (`log_y`,
/// log10 |y|) zeros have no place: they are drawn as hollow markers on a baseline under the
/// plot, and the axis range comes from the non-zero values only. Sets the canvas's `data-ylo` /
/// `data-yhi` (the axis range, log10 on a log axis) and `data-baseline` (points on the zero
/// line).
pub fn draw_overview(canvas: &HtmlCanvasElement, points: &[Point], log_y: bool) -> Option<Frame> {
    let (root, p) = start(canvas)?;
    let on_axis = |v: f64| v.is_finite() && (!log_y || v != 0.0);
    let tr = |v: f64| if log_y { v.abs().log10() } else { v };
    let vals: Vec<f64> = points
        .iter()
        .filter_map(|q| q.value.filter(|&v| on_axis(v)).map(tr))
        .collect();
    let zeros = if log_y {
        points.iter().filter(|q| q.value == Some(0.0)).count()
    } else {
        0
    };
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
    let _ = canvas.set_attribute("data-ylo", &lo.to_string());
    let _ = canvas.set_attribute("data-yhi", &hi.to_string());
    let _ = canvas.set_attribute("data-baseline", &zeros.to_string());
    let pad = (hi - lo) * 0.06;
    // the zero line sits under the plot, apart from the log axis
    let base = lo - pad * 3.0;
    let bottom = if zeros > 0 { base - pad } else { lo - pad };
    let n = points.len().max(1) as f64;
    let span = hi - lo;
    let mut chart = cartesian(&root, 62, -0.5f64..n - 0.5, bottom..(hi + pad))?;
    mesh(
        &mut chart,
        &p,
        (points.len().clamp(1, 8), None),
        &whole_tick,
        &|v| {
            if *v < lo - pad * 1.5 {
                // below the axis: only the zero line's label
                String::new()
            } else if log_y {
                super::scale::log_label(*v)
            } else {
                super::scale::axis_label(*v, span)
            }
        },
    )?;
    let r = if points.len() > 2000 { 1 } else { 2 };
    let values = points
        .iter()
        .enumerate()
        .filter_map(|(i, q)| Some((i as f64, q.value.filter(|&v| on_axis(v)).map(tr)?)));
    if points.len() > 2000 {
        // thousands of points: 2-pixel squares, one per distinct pixel, filled as one path (a
        // circle per point took 50,000 canvas calls for 50,000 tensors)
        let mut seen = crate::format::fastmap::KeySet::default();
        let px: Vec<(i32, i32)> = values
            .map(|xy| chart.backend_coord(&xy))
            .filter(|&c| seen.insert(c))
            .collect();
        fill_squares(canvas, &px, p.accent)?;
    } else {
        chart
            .draw_series(values.map(|xy| Circle::new(xy, r, p.accent.mix(0.85).filled())))
            .ok()?;
    }
    if zeros > 0 {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, base), (n - 0.5, base)],
                p.grid,
            )))
            .ok()?;
        chart
            .draw_series(
                positions(points, |q| q.value == Some(0.0))
                    .map(|i| Circle::new((i as f64, base), r + 1, p.fg.stroke_width(1))),
            )
            .ok()?;
        let (xr, _) = chart.plotting_area().get_pixel_range();
        let (_, yb) = chart.backend_coord(&(0.0, base));
        root.draw(&Text::new(
            "0",
            (xr.start - 14, yb - 6),
            ("sans-serif", 11).into_font().color(&p.fg),
        ))
        .ok()?;
    }
    chart
        .draw_series(
            positions(points, |q| q.flag)
                .map(|i| TriangleMarker::new((i as f64, hi + pad * 0.5), 5, p.bad.filled())),
        )
        .ok()?;
    if let Some((i, q)) = points.iter().enumerate().find(|(_, q)| q.selected) {
        let y = match q.value {
            Some(v) if on_axis(v) => tr(v),
            Some(v) if v == 0.0 && log_y => base,
            _ => lo,
        };
        chart
            .draw_series(std::iter::once(Circle::new(
                (i as f64, y),
                5,
                p.bad.stroke_width(2),
            )))
            .ok()?;
    }
    finish(&root, &chart, -0.5, n - 0.5)
}

/// Fill a 2 × 2 pixel square at each of `px` (canvas pixels) in `colour` at 85 % opacity, as
/// one path.
fn fill_squares(canvas: &HtmlCanvasElement, px: &[(i32, i32)], colour: RGBColor) -> Option<()> {
    let ctx: web_sys::CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    ctx.begin_path();
    for &(x, y) in px {
        ctx.rect(x as f64 - 1.0, y as f64 - 1.0, 2.0, 2.0);
    }
    let RGBColor(r, g, b) = colour;
    ctx.set_fill_style_str(&format!("rgba({r},{g},{b},0.85)"));
    ctx.fill();
    Some(())
}

/// Draw one bar per value (x = position, y = value from 0) in the theme's colours, `caption` on
/// top; the y ticks are [`super::scale::axis_label`]s.
pub fn draw_bars(canvas: &HtmlCanvasElement, vals: &[f64], caption: &str) -> Option<Frame> {
    let (root, p) = start(canvas)?;
    let n = vals.len().max(1);
    let top = vals
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-12)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .margin_right(14)
        .x_label_area_size(24)
        .y_label_area_size(60)
        .caption(caption, ("sans-serif", 13).into_font().color(&p.fg))
        .build_cartesian_2d(0f64..n as f64, 0f64..top)
        .ok()?;
    mesh(
        &mut chart,
        &p,
        (n.clamp(1, 8), Some("tensor #")),
        &whole_tick,
        &|v| super::scale::axis_label(*v, top),
    )?;
    chart
        .draw_series(
            vals.iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, v)| {
                    Rectangle::new([(i as f64, 0.0), (i as f64 + 0.9, *v)], p.accent.filled())
                }),
        )
        .ok()?;
    finish(&root, &chart, 0.0, n as f64)
}

/// Draw A's and B's histograms (same edges) on one axis: A as filled bars, B as outlined bars
/// over them, each in its own colour, with a legend.
pub fn draw_ab(canvas: &HtmlCanvasElement, a: &Histogram, b: &Histogram) -> Option<Frame> {
    let (root, p) = start(canvas)?;
    let edges = if a.edges.len() >= 2 {
        &a.edges
    } else {
        &b.edges
    };
    if edges.len() < 2 {
        return no_finite_values(&root, &p);
    }
    let (lo, hi) = (edges[0], edges[edges.len() - 1]);
    let ymax = a.max_count().max(b.max_count()).max(1) as f64 * 1.08;
    let mut chart = cartesian(&root, 52, lo..hi, 0f64..ymax)?;
    value_mesh(&mut chart, &p, hi - lo, &|v| {
        super::scale::axis_label(*v, ymax)
    })?;
    let b_colour = RGBColor(0xe0, 0x8a, 0x1e);
    let bars = |h: &Histogram| -> Vec<(f64, f64, f64)> {
        h.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (h.edges[i], h.edges[i + 1], c as f64))
            .collect()
    };
    chart
        .draw_series(
            bars(a).into_iter().map(|(x0, x1, c)| {
                Rectangle::new([(x0, 0.0), (x1, c)], p.accent.mix(0.55).filled())
            }),
        )
        .ok()?
        .label("A")
        .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], p.accent.filled()));
    chart
        .draw_series(
            bars(b)
                .into_iter()
                .map(|(x0, x1, c)| Rectangle::new([(x0, 0.0), (x1, c)], b_colour.stroke_width(2))),
        )
        .ok()?
        .label("B")
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - 4), (x + 10, y + 4)], b_colour.stroke_width(2))
        });
    chart
        .configure_series_labels()
        .background_style(p.bg.mix(0.8))
        .border_style(p.grid)
        .label_font(("sans-serif", 11).into_font().color(&p.fg))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .ok()?;
    finish(&root, &chart, lo, hi)
}
