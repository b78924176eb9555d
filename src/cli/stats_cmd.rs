//! `weightscope stats FILE [--json] [--bins N] [--key REGEX]`.
//!
//! Contract: computes [`crate::stats`] for every tensor with data whose `/`-joined path matches
//! `key` (all when None), in checkpoint order, and writes either
//! `{"tensors": [{"path", "dtype", "shape", "count", "min", "max", "mean", "std", "l2", "absmax",
//! "zeros", "nan", "inf", "posinf", "neginf", "histogram": {"edges", "counts"}, "quantiles",
//! "quantiles_exact", "quantile_error_bound"}]}` (`inf` = posinf + neginf; statistics of the
//! finite values, `null` when there are none — `l2` is then 0; complex tensors add `"complex"`;
//! quantized tensors with per-tensor parameters are summarised dequantized, `"dequantized":
//! true`), or an aligned
//! table (path, dtype, shape, min, max, mean, std, zeros %, nan/inf). Tensors without data
//! (meta) are listed in the table as such and left out of the JSON.

use crate::display::short_float;
use crate::format::{Checkpoint, FormatError, Source};
use crate::stats::{checkpoint_stats, report, Completion, StatsCache, StatsOptions};

fn io(e: std::io::Error) -> FormatError {
    FormatError::new(format!("cannot write output: {e}"))
}

/// Run the `stats` command.
pub fn run(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    json: bool,
    bins: usize,
    key: Option<&regex_lite::Regex>,
    out: &mut dyn std::io::Write,
) -> Result<(), FormatError> {
    if bins == 0 || bins > crate::stats::MAX_BINS {
        return Err(FormatError::new(format!(
            "--bins must be between 1 and {} (got {bins})",
            crate::stats::MAX_BINS
        )));
    }
    let opts = StatsOptions {
        bins,
        ..StatsOptions::default()
    };
    let matches = |i: usize| key.is_none_or(|r| r.is_match(&ckpt.tensors[i].path_string()));
    let mut cache = StatsCache::new();
    let done = checkpoint_stats(ckpt, sources, &opts, &matches, &mut |_, _| true, &mut cache)?;
    debug_assert_eq!(done, Completion::Done);
    let selected: Vec<usize> = (0..ckpt.tensors.len()).filter(|&i| matches(i)).collect();
    if json {
        out.write_all(report::json(ckpt, &cache, bins, &selected).as_bytes())
            .map_err(io)?;
        return Ok(());
    }
    table(ckpt, &selected, &cache, bins, out).map_err(io)
}

/// A statistic as the page shows it (`-` when there is none).
fn num(x: Option<f64>) -> String {
    x.map(short_float).unwrap_or_else(|| "-".into())
}

fn table(
    ckpt: &Checkpoint,
    selected: &[usize],
    cache: &StatsCache,
    bins: usize,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let head = [
        "path", "dtype", "shape", "min", "max", "mean", "std", "zeros%", "nan/inf",
    ];
    let mut rows: Vec<[String; 9]> = Vec::new();
    for &i in selected {
        let t = &ckpt.tensors[i];
        let shape = format!(
            "[{}]",
            t.shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let r = match cache.get(i, bins) {
            Some(s) => {
                let zp = if s.summary.count == 0 {
                    "-".to_string()
                } else {
                    format!(
                        "{:.2}",
                        100.0 * s.summary.zeros as f64 / s.summary.count as f64
                    )
                };
                [
                    super::esc(&t.path_string()),
                    t.dtype.name().to_string(),
                    shape,
                    num(s.summary.min),
                    num(s.summary.max),
                    num(s.summary.mean),
                    num(s.summary.std),
                    zp,
                    format!("{}/{}", s.summary.nan, s.summary.posinf + s.summary.neginf),
                ]
            }
            None => [
                super::esc(&t.path_string()),
                t.dtype.name().to_string(),
                shape,
                "(no data)".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        rows.push(r);
    }
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (k, c) in r.iter().enumerate() {
            w[k] = w[k].max(c.chars().count());
        }
    }
    let line = |cells: &[String; 9], out: &mut dyn std::io::Write| -> std::io::Result<()> {
        let mut s = String::new();
        for (k, c) in cells.iter().enumerate() {
            let pad = w[k] - c.chars().count();
            // Text columns left-aligned, numbers right-aligned.
            if k < 3 {
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', pad));
            } else {
                s.extend(std::iter::repeat_n(' ', pad));
                s.push_str(c);
            }
            if k + 1 < cells.len() {
                s.push_str("  ");
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(&head.map(String::from), out)?;
    for r in &rows {
        line(r, out)?;
    }
    Ok(())
}

/// `weightscope stats FILE [--json] [--bins N] [--key REGEX]`
pub fn main(
    file: &std::path::Path,
    json: bool,
    bins: usize,
    key: Option<&str>,
    out: &mut dyn std::io::Write,
) -> i32 {
    let re = match super::key_regex(key) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let o = match super::open::open_path(file) {
        Ok(o) => o,
        Err(e) => return super::open::report_unreadable(file, &e),
    };
    match run(&o.ckpt, &o.source_refs(), json, bins, re.as_ref(), out) {
        Ok(()) => match super::open::dangerous_line(&o.ckpt) {
            Some(line) => {
                eprintln!("{line}");
                super::EXIT_DANGEROUS
            }
            None => 0,
        },
        Err(e) => {
            eprintln!(
                "{}",
                e.in_file(o.ckpt.files.first().cloned().unwrap_or_default())
            );
            super::EXIT_UNREADABLE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::run::tests::sample;

    #[test]
    fn json_output_shape() {
        let (ckpt, src) = sample();
        let mut out = Vec::new();
        run(&ckpt, &[&src], true, 8, None, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let ts = v["tensors"].as_array().unwrap();
        assert_eq!(ts.len(), 3);
        let w = &ts[0];
        assert_eq!(w["path"], serde_json::json!(["a", "w"]));
        assert_eq!(w["dtype"], "float32");
        assert_eq!(w["shape"], serde_json::json!([2, 3]));
        assert_eq!(w["count"], 6);
        assert_eq!(w["min"], -2.0);
        assert_eq!(w["histogram"]["counts"].as_array().unwrap().len(), 8);
        assert_eq!(w["histogram"]["edges"].as_array().unwrap().len(), 9);
        assert_eq!(w["quantiles"]["p50"], 2.0);
        let b = &ts[2];
        assert_eq!((b["nan"].as_u64(), b["inf"].as_u64()), (Some(1), Some(0)));
    }

    #[test]
    fn key_filter_and_table() {
        let (ckpt, src) = sample();
        let re = regex_lite::Regex::new("^a/").unwrap();
        let mut out = Vec::new();
        run(&ckpt, &[&src], false, 64, Some(&re), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("path"));
        assert!(lines[1].starts_with("a/w "));
        assert!(lines[2].starts_with("a/wt"));
        assert!(lines[1].contains("float32") && lines[1].contains("[2, 3]"));
        assert!(lines[1].contains("16.67")); // one zero in six
        let mut out = Vec::new();
        run(&ckpt, &[&src], false, 64, None, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("(no data)"));
        assert!(run(&ckpt, &[&src], true, 0, None, &mut Vec::new()).is_err());
    }

    #[test]
    fn number_format() {
        assert_eq!(num(None), "-");
        assert_eq!(num(Some(0.0)), "0");
        assert_eq!(num(Some(1.5)), "1.5");
        assert_eq!(num(Some(-0.0123456789)), "-0.0123457");
        assert_eq!(num(Some(1.5e-7)), "1.5e-7");
    }
}
