//! Pure helpers of the page's charts (tested natively): the one colour ramp of every heatmap
//! and its legend, which tensor rows/columns a heatmap block covers, and axis labels without
//! float noise.
//!
//! Contract: [`ramp`] maps 0..=1 (clamped) to a dark-blue → teal → yellow colour, the same in
//! the Inspector's heatmap, the Run view's heatmap and their legends ([`css_gradient`]).
//! [`block_span`] inverts the heatmap fold's `r·rows/nr` assignment. [`axis_label`] writes a tick
//! at the precision the axis span needs (a tick within 1e-9 of the span from zero is `0`), never
//! more than 9 characters.

/// The ramp's stops (position, rgb).
const STOPS: [(f64, [u8; 3]); 5] = [
    (0.0, [0x1b, 0x1f, 0x4b]),
    (0.25, [0x2c, 0x5f, 0x9e]),
    (0.5, [0x1f, 0x9e, 0x89]),
    (0.75, [0x8f, 0xd1, 0x4f]),
    (1.0, [0xfd, 0xe7, 0x25]),
];

/// The colour of `t` in 0..=1.
pub fn ramp(t: f64) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let k = STOPS
        .windows(2)
        .position(|w| t <= w[1].0)
        .unwrap_or(STOPS.len() - 2);
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let u = (t - a.0) / (b.0 - a.0);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * u).round() as u8;
    [
        mix(a.1[0], b.1[0]),
        mix(a.1[1], b.1[1]),
        mix(a.1[2], b.1[2]),
    ]
}

/// `rgb(r,g,b)` of `t`.
pub fn ramp_css(t: f64) -> String {
    let [r, g, b] = ramp(t);
    format!("rgb({r},{g},{b})")
}

/// A CSS `linear-gradient` (left → right) of the whole ramp, for legends.
pub fn css_gradient() -> String {
    let stops: Vec<String> = STOPS
        .iter()
        .map(|(p, _)| format!("{} {:.0}%", ramp_css(*p), p * 100.0))
        .collect();
    format!("linear-gradient(to right, {})", stops.join(", "))
}

/// The tensor indices `[first, end)` along an axis of `n` folded into `blocks` blocks that
/// block `i` covers (element `r` is in block `r·blocks/n`).
pub fn block_span(i: u64, blocks: u64, n: u64) -> (u64, u64) {
    if blocks == 0 {
        return (0, 0);
    }
    let first = (i * n).div_ceil(blocks);
    let end = ((i + 1) * n).div_ceil(blocks).min(n);
    (first, end.max(first))
}

/// A tick label of value `v` on an axis spanning `span`: as many decimals as the span needs,
/// exponent form for very large or small magnitudes, `0` for a tick at zero.
pub fn axis_label(v: f64, span: f64) -> String {
    if !v.is_finite() {
        return crate::display::short_float(v);
    }
    let span = if span > 0.0 && span.is_finite() {
        span
    } else {
        v.abs().max(1.0)
    };
    if v.abs() <= span * 1e-9 {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-3..5).contains(&mag) {
        // 3 significant digits at most: 1.25e-7
        let s = format!("{v:.2e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        return format!("{m}e{e}");
    }
    // decimals for ~3 significant digits of the span's step (span / 10)
    let step = (span / 10.0).log10().floor() as i32;
    let decimals = (-step + 1).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A label of `10^e` for a log10 axis: `1e-3` at whole exponents, nothing between them.
pub fn log_label(e: f64) -> String {
    if (e - e.round()).abs() > 1e-6 {
        return String::new();
    }
    let e = e.round() as i64;
    match e {
        0 => "1".into(),
        1 => "10".into(),
        2 => "100".into(),
        _ => format!("1e{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_ends_and_middle() {
        assert_eq!(ramp(0.0), [0x1b, 0x1f, 0x4b]);
        assert_eq!(ramp(1.0), [0xfd, 0xe7, 0x25]);
        assert_eq!(ramp(0.5), [0x1f, 0x9e, 0x89]);
        assert_eq!(ramp(-3.0), ramp(0.0));
        assert_eq!(ramp(f64::NAN), ramp(0.0));
        assert!(css_gradient().starts_with("linear-gradient(to right, rgb(27,31,75) 0%"));
    }

    #[test]
    fn block_spans_invert_the_fold() {
        // 10 rows in 4 blocks: r·4/10 → 0,0,0,1,1,2,2,2,3,3
        let owner = |r: u64| r * 4 / 10;
        let mut covered = vec![];
        for i in 0..4 {
            let (a, b) = block_span(i, 4, 10);
            for r in a..b {
                assert_eq!(owner(r), i);
                covered.push(r);
            }
        }
        assert_eq!(covered, (0..10).collect::<Vec<_>>());
        assert_eq!(block_span(0, 1, 5), (0, 5));
    }

    #[test]
    fn labels_have_no_float_noise() {
        assert_eq!(axis_label(0.30000000000000004, 1.0), "0.3");
        assert_eq!(axis_label(1.1102230246251565e-17, 0.5), "0");
        assert_eq!(axis_label(-0.0, 1.0), "0");
        assert_eq!(axis_label(0.0125, 0.05), "0.0125");
        assert_eq!(axis_label(1234.0, 5000.0), "1234");
        assert_eq!(axis_label(123456.0, 1e6), "1.23e5");
        assert_eq!(axis_label(-1.23456e-7, 1e-6), "-1.23e-7");
        assert_eq!(axis_label(2.0e-5, 1e-4), "2e-5");
        for v in [
            0.1 + 0.2,
            -0.000123456,
            98765.4321,
            -1.5e-12,
            3.0e9,
            0.07 + 1e-17,
        ] {
            assert!(axis_label(v, v.abs() * 3.0).len() <= 9, "{v}");
        }
        assert_eq!(log_label(-3.0), "1e-3");
        assert_eq!(log_label(-2.5), "");
        assert_eq!(log_label(0.0), "1");
    }
}
