//! `weightscope diff A B [--json] [--map A_PREFIX=B_PREFIX]`: keys only in A / only in B,
//! dtype or shape mismatches, and value differences of matching tensors
//! ([`crate::stats::diff`]), as a report or JSON.

/// `weightscope diff A B [--json] [--map A_PREFIX=B_PREFIX]`
pub fn run(
    a: &std::path::Path,
    b: &std::path::Path,
    json: bool,
    map: &[String],
    out: &mut dyn std::io::Write,
) -> i32 {
    let mut maps = vec![];
    for m in map {
        match m.split_once('=') {
            Some((x, y)) => maps.push((x.to_string(), y.to_string())),
            None => {
                eprintln!("--map takes A_PREFIX=B_PREFIX, got {m:?}");
                return super::EXIT_USAGE;
            }
        }
    }
    let (oa, ob) = match (super::open::open_path(a), super::open::open_path(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return super::EXIT_UNREADABLE;
        }
    };
    let (sa, sb) = (oa.source_refs(), ob.source_refs());
    let r = match crate::stats::diff::diff(&oa.ckpt, &sa, &ob.ckpt, &sb, &maps, &mut |_, _| true) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{}",
                e.in_file(format!("{} vs {}", a.display(), b.display()))
            );
            return super::EXIT_UNREADABLE;
        }
    };
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&r).expect("json"));
        return 0;
    }
    let f = |x: Option<f64>| {
        x.map(crate::display::short_float)
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        out,
        "{} only in A, {} only in B, {} mismatched, {} changed, {} identical",
        r.only_a.len(),
        r.only_b.len(),
        r.mismatched.len(),
        r.changed.len(),
        r.identical
    );
    for k in &r.only_a {
        let _ = writeln!(out, "only in A   {}", super::esc(k));
    }
    for k in &r.only_b {
        let _ = writeln!(out, "only in B   {}", super::esc(k));
    }
    for m in &r.mismatched {
        let _ = writeln!(
            out,
            "mismatch    {}  A {} {:?}  B {} {:?}",
            super::esc(&m.key),
            m.a.dtype,
            m.a.shape,
            m.b.dtype,
            m.b.shape
        );
    }
    for c in &r.changed {
        let _ = writeln!(
            out,
            "changed     {}  max|a-b| {}  rel L2 {}  cosine {}",
            super::esc(&c.key),
            f(c.max_abs),
            f(c.rel_l2),
            f(c.cosine)
        );
    }
    0
}
