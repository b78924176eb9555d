//! Comparison of weightscope's `TensorStats` with statistics computed by torch/numpy (the
//! `*.stats.json` / `expected.json` layout), shared by the stats integration tests.
//!
//! Rules: count, zeros, nan, posinf, neginf, min, max, absmax and the histogram (edges and counts)
//! must be equal; mean, std and l2 within 1e-6 relative (or 1e-12 absolute near zero); quantiles
//! within the engine's reported `quantile_error_bound` plus 1e-12 relative slack.

use serde_json::Value;
use weightscope::stats::TensorStats;

fn opt(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn close(a: f64, b: f64) -> bool {
    let d = (a - b).abs();
    d <= 1e-6 * b.abs() || d <= 1e-12
}

/// Differences between `got` and the expected object `e`, as readable lines (empty = match).
pub fn compare(what: &str, got: &TensorStats, e: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut fail = |m: String| bad.push(format!("{what}: {m}"));
    for (k, v) in [
        ("count", got.summary.count),
        ("zeros", got.summary.zeros),
        ("nan", got.summary.nan),
        ("posinf", got.summary.posinf),
        ("neginf", got.summary.neginf),
    ] {
        if e[k].as_u64() != Some(v) {
            fail(format!("{k}: got {v}, expected {}", e[k]));
        }
    }
    for (k, v) in [
        ("min", got.summary.min),
        ("max", got.summary.max),
        ("absmax", got.absmax),
    ] {
        if opt(&e[k]) != v {
            fail(format!("{k}: got {v:?}, expected {}", e[k]));
        }
    }
    for (k, v) in [
        ("mean", got.summary.mean),
        ("std", got.summary.std),
        ("l2", Some(got.l2)),
    ] {
        match (v, opt(&e[k])) {
            (None, None) => {}
            (Some(a), Some(b)) if close(a, b) => {}
            (a, _) => fail(format!("{k}: got {a:?}, expected {}", e[k])),
        }
    }
    let edges: Vec<f64> = e["edges"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let counts: Vec<u64> = e["counts"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if got.histogram.edges != edges {
        fail(format!(
            "histogram edges differ: got {:?}, expected {:?}",
            got.histogram.edges, edges
        ));
    }
    if got.histogram.counts != counts {
        fail(format!(
            "histogram counts differ: got {:?}, expected {:?}",
            got.histogram.counts, counts
        ));
    }
    // An object whose values are all null means "no quantiles" too.
    let want_q = e["quantiles"]
        .as_object()
        .filter(|o| o.values().any(|v| !v.is_null()));
    match (&got.quantiles, want_q) {
        (None, None) => {}
        (Some(q), Some(want)) => {
            for (name, (_, v)) in ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]
                .iter()
                .zip(q.pairs())
            {
                let w = want.get(*name).and_then(Value::as_f64);
                let ok = w.is_some_and(|w| {
                    (v - w).abs() <= got.quantile_error_bound + 1e-12 * w.abs().max(1.0)
                });
                if !ok {
                    fail(format!(
                        "quantile {name}: got {v}, expected {w:?} (bound {})",
                        got.quantile_error_bound
                    ));
                }
            }
        }
        (g, w) => fail(format!("quantiles: got {g:?}, expected {w:?}")),
    }
    bad
}
