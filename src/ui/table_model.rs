//! The tensor table's model (tested natively): which tensors are shown, in which order.
//!
//! Contract: [`rows`] keeps the tensors whose path contains the filter text (ASCII letters in
//! either case; empty = all) and sorts them by a [`Column`] — stable, ties in file order;
//! tensors without a value in that column (statistics not computed yet, no finite values)
//! always last, whatever the direction. Linear in the rows plus one sort: 100,000 tensors take
//! a few milliseconds.

use crate::worker::protocol::{Entry, StatsRow};
use std::cmp::Ordering;

/// One tensor's statistics once computed (the page keeps one slot per tensor). Shared, not
/// copied: a 50,000-tensor file's slots are copied whole whenever rows arrive or the shown view
/// changes (a row is ≈ 150 bytes, a slot one pointer).
pub type RowSlot = Option<std::sync::Arc<StatsRow>>;

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Index,
    Name,
    Dtype,
    Shape,
    Elements,
    Bytes,
    Mean,
    Std,
    AbsMax,
    Zeros,
    Nan,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::Index,
        Column::Name,
        Column::Dtype,
        Column::Shape,
        Column::Elements,
        Column::Bytes,
        Column::Mean,
        Column::Std,
        Column::AbsMax,
        Column::Zeros,
        Column::Nan,
    ];
    /// (stable name, header text): the name is the test hooks' `data-col`.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Column::Index => ("index", "#"),
            Column::Name => ("name", "name"),
            Column::Dtype => ("dtype", "dtype"),
            Column::Shape => ("shape", "shape"),
            Column::Elements => ("elements", "elements"),
            Column::Bytes => ("bytes", "bytes"),
            Column::Mean => ("mean", "mean"),
            Column::Std => ("std", "std"),
            Column::AbsMax => ("absmax", "|x| max"),
            Column::Zeros => ("zeros", "zeros"),
            Column::Nan => ("nan", "NaN"),
        }
    }
    /// Stable name (test hooks: `data-col`).
    pub fn key(self) -> &'static str {
        self.names().0
    }
    /// Header text.
    pub fn label(self) -> &'static str {
        self.names().1
    }
    /// A numeric column (right-aligned).
    pub fn numeric(self) -> bool {
        !matches!(self, Column::Name | Column::Dtype | Column::Shape)
    }
}

/// A sort key: text or number, `None` = no value.
#[derive(PartialEq, PartialOrd)]
enum Key<'a> {
    Num(f64),
    Text(&'a str),
    Dims(&'a [u64]),
}

fn key<'a>(
    c: Column,
    i: usize,
    e: &'a Entry,
    name: &'a str,
    s: Option<&StatsRow>,
) -> Option<Key<'a>> {
    Some(match c {
        Column::Index => Key::Num(i as f64),
        Column::Name => Key::Text(name),
        Column::Dtype => Key::Text(e.dtype.name()),
        Column::Shape => Key::Dims(&e.shape),
        Column::Elements => Key::Num(e.numel as f64),
        Column::Bytes => Key::Num(e.bytes as f64),
        Column::Mean => Key::Num(s?.summary.mean?),
        Column::Std => Key::Num(s?.summary.std?),
        Column::AbsMax => Key::Num(s?.absmax?),
        Column::Zeros => Key::Num(s?.summary.zeros as f64),
        Column::Nan => Key::Num(s?.summary.nan as f64),
    })
}

/// Indices of the shown tensors, in display order. `names[i]` is tensor `i`'s path text,
/// `stats[i]` its statistics if computed.
pub fn rows(
    entries: &[Entry],
    names: &[&str],
    stats: &[RowSlot],
    filter: &str,
    sort: Column,
    descending: bool,
) -> Vec<u32> {
    let needle = filter.trim();
    let mut shown: Vec<u32> = (0..entries.len() as u32)
        .filter(|&i| {
            needle.is_empty()
                || names
                    .get(i as usize)
                    .is_some_and(|n| crate::ui::tree::find_ignoring_ascii_case(n, needle).is_some())
        })
        .collect();
    let k = |i: u32| {
        let i = i as usize;
        key(
            sort,
            i,
            &entries[i],
            names.get(i).copied().unwrap_or(""),
            stats.get(i).and_then(|s| s.as_deref()),
        )
    };
    crate::order::sort_by(&mut shown, |&a, &b| match (k(a), k(b)) {
        (Some(x), Some(y)) => {
            let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
            if descending {
                o.reverse()
            } else {
                o
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DType;
    use crate::stats::ValueSummary;

    fn entry(shape: Vec<u64>, dtype: DType) -> Entry {
        let numel = shape.iter().product();
        Entry {
            path: vec![],
            dtype,
            strides: vec![],
            storage_offset: 0,
            bytes: numel * dtype.size() as u64,
            numel,
            shape,
            storage: Some(0),
        }
    }

    fn stats(t: u32, mean: Option<f64>) -> std::sync::Arc<StatsRow> {
        std::sync::Arc::new(StatsRow {
            tensor: t,
            summary: ValueSummary {
                count: 1,
                mean,
                ..ValueSummary::default()
            },
            l2: 0.0,
            absmax: None,
        })
    }

    #[test]
    fn filters_and_sorts_with_missing_values_last() {
        let entries = vec![
            entry(vec![4, 4], DType::F32),
            entry(vec![4], DType::F16),
            entry(vec![2, 8], DType::F32),
            entry(vec![], DType::I64),
        ];
        let names = ["enc.w", "enc.b", "Dec.w", "steps"];
        let st = vec![
            Some(stats(0, Some(0.5))),
            None,
            Some(stats(2, Some(-1.0))),
            Some(stats(3, None)),
        ];
        let r = |f: &str, c, d| rows(&entries, &names, &st, f, c, d);
        assert_eq!(r("", Column::Index, false), vec![0, 1, 2, 3]);
        assert_eq!(r("", Column::Index, true), vec![3, 2, 1, 0]);
        assert_eq!(r("", Column::Name, false), vec![2, 1, 0, 3]);
        assert_eq!(r("dec", Column::Name, false), vec![2]);
        assert_eq!(r(" .W ", Column::Index, false), vec![0, 2]);
        assert_eq!(r("", Column::Mean, false), vec![2, 0, 1, 3]);
        assert_eq!(r("", Column::Mean, true), vec![0, 2, 1, 3]);
        // equal keys keep file order
        assert_eq!(r("", Column::Elements, true), vec![0, 2, 1, 3]);
        assert_eq!(r("", Column::Bytes, false), vec![1, 3, 0, 2]);
        assert_eq!(r("", Column::Shape, false), vec![3, 2, 1, 0]);
        assert_eq!(r("", Column::Dtype, false), vec![1, 0, 2, 3]);
    }

    #[test]
    fn a_hundred_thousand_rows() {
        let entries: Vec<Entry> = (0..100_000u64)
            .map(|i| entry(vec![i % 97 + 1], DType::F32))
            .collect();
        let names: Vec<String> = (0..100_000).map(|i| format!("layer.{i}.w")).collect();
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let r = rows(&entries, &refs, &[], "", Column::Elements, true);
        assert_eq!(r.len(), 100_000);
        assert_eq!(entries[r[0] as usize].numel, 97);
        assert_eq!(
            rows(&entries, &refs, &[], "layer.9999.", Column::Name, false),
            vec![9999]
        );
    }
}
