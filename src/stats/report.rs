//! The statistics report of a whole checkpoint: the rows `weightscope stats --json` prints and
//! the page exports, as JSON and as CSV.
//!
//! Contract: [`row`] is one tensor's row (`path`, `dtype`, `shape`, the statistics of
//! [`TensorStats`], `inf` = posinf + neginf, `complex` only for complex tensors, `dequantized`
//! only when true). [`json`] is `{"tensors": [row, ...]}` plus a newline — byte for byte what the
//! CLI prints. [`csv`] has one line per row with the same numbers (each written as Rust's
//! shortest round-trip text, so it parses back to the same `f64`), the path joined by `/` and
//! quoted when needed, the shape as `2x3`, quantiles as columns `p1` … `p99`, empty cells for
//! `null`. Tensors without data (meta) have no statistics and are left out of both.

use super::{ComplexParts, Histogram, Quantiles, StatsCache, TensorStats, ValueSummary};
use crate::format::Checkpoint;
use serde::Serialize;

/// One tensor's row (the CLI's JSON contract).
#[derive(Serialize)]
pub struct Row<'a> {
    pub path: &'a [String],
    pub dtype: &'static str,
    pub shape: &'a [u64],
    #[serde(flatten)]
    pub summary: &'a ValueSummary,
    pub l2: f64,
    pub absmax: Option<f64>,
    pub inf: u64,
    pub histogram: &'a Histogram,
    pub quantiles: Option<Quantiles>,
    pub quantiles_exact: bool,
    pub quantile_error_bound: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complex: Option<&'a ComplexParts>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dequantized: bool,
}

#[derive(Serialize)]
struct Out<'a> {
    tensors: Vec<Row<'a>>,
}

/// The row of tensor `i` with statistics `s`.
pub fn row<'a>(ckpt: &'a Checkpoint, i: usize, s: &'a TensorStats) -> Row<'a> {
    let t = &ckpt.tensors[i];
    Row {
        path: &t.path,
        dtype: t.dtype.name(),
        shape: &t.shape,
        summary: &s.summary,
        l2: s.l2,
        absmax: s.absmax,
        inf: s.summary.inf(),
        histogram: &s.histogram,
        quantiles: s.quantiles,
        quantiles_exact: s.quantiles_exact,
        quantile_error_bound: s.quantile_error_bound,
        complex: s.complex.as_ref(),
        dequantized: s.dequantized,
    }
}

fn rows<'a>(
    ckpt: &'a Checkpoint,
    cache: &'a StatsCache,
    bins: usize,
    selected: &[usize],
) -> Vec<Row<'a>> {
    selected
        .iter()
        .filter_map(|&i| cache.get(i, bins).map(|s| row(ckpt, i, s)))
        .collect()
}

/// `{"tensors": [...]}\n` for the `selected` tensors whose statistics at `bins` are in `cache`.
pub fn json(ckpt: &Checkpoint, cache: &StatsCache, bins: usize, selected: &[usize]) -> String {
    let out = Out {
        tensors: rows(ckpt, cache, bins, selected),
    };
    // serialising plain numbers and strings cannot fail
    serde_json::to_string(&out).unwrap_or_default() + "\n"
}

/// The CSV header line's columns.
pub const CSV_COLUMNS: [&str; 24] = [
    "path",
    "dtype",
    "shape",
    "count",
    "min",
    "max",
    "mean",
    "std",
    "l2",
    "absmax",
    "zeros",
    "nan",
    "inf",
    "posinf",
    "neginf",
    "p1",
    "p5",
    "p25",
    "p50",
    "p75",
    "p95",
    "p99",
    "quantiles_exact",
    "quantile_error_bound",
];

/// A CSV cell: quoted when it holds a comma, quote or line break.
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// The same rows as [`json`], as CSV (header line first, `\n` line ends).
pub fn csv(ckpt: &Checkpoint, cache: &StatsCache, bins: usize, selected: &[usize]) -> String {
    let mut out = CSV_COLUMNS.join(",") + "\n";
    for r in rows(ckpt, cache, bins, selected) {
        let q = r
            .quantiles
            .map(|q| [q.p1, q.p5, q.p25, q.p50, q.p75, q.p95, q.p99]);
        let shape = r
            .shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x");
        let mut cells = vec![
            cell(&r.path.join("/")),
            r.dtype.to_string(),
            shape,
            r.summary.count.to_string(),
            num(r.summary.min),
            num(r.summary.max),
            num(r.summary.mean),
            num(r.summary.std),
            r.l2.to_string(),
            num(r.absmax),
            r.summary.zeros.to_string(),
            r.summary.nan.to_string(),
            r.inf.to_string(),
            r.summary.posinf.to_string(),
            r.summary.neginf.to_string(),
        ];
        cells.extend((0..7).map(|k| num(q.map(|q| q[k]))));
        cells.push(r.quantiles_exact.to_string());
        cells.push(r.quantile_error_bound.to_string());
        out += &cells.join(",");
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::run::tests::sample;
    use crate::stats::{checkpoint_stats, StatsOptions};

    #[test]
    fn csv_has_the_json_numbers() {
        let (ckpt, src) = sample();
        let opts = StatsOptions {
            bins: 8,
            ..StatsOptions::default()
        };
        let mut cache = StatsCache::new();
        checkpoint_stats(
            &ckpt,
            &[&src],
            &opts,
            &|_| true,
            &mut |_, _| true,
            &mut cache,
        )
        .unwrap();
        let all: Vec<usize> = (0..ckpt.tensors.len()).collect();
        let j: serde_json::Value = serde_json::from_str(&json(&ckpt, &cache, 8, &all)).unwrap();
        let text = csv(&ckpt, &cache, 8, &all);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        let ts = j["tensors"].as_array().unwrap();
        assert_eq!(lines.len(), ts.len() + 1);
        for (line, t) in lines[1..].iter().zip(ts) {
            let c: Vec<&str> = line.split(',').collect();
            assert_eq!(c.len(), CSV_COLUMNS.len());
            let path: Vec<&str> = t["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            assert_eq!(c[0], path.join("/"));
            for (k, name) in CSV_COLUMNS.iter().enumerate().skip(3).take(12) {
                match t[*name].as_f64() {
                    Some(v) => assert_eq!(c[k].parse::<f64>().unwrap(), v, "{name}"),
                    None => assert_eq!(c[k], "", "{name}"),
                }
            }
            assert_eq!(c[18].parse::<f64>().ok(), t["quantiles"]["p50"].as_f64());
        }
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
