//! The Run view's state, without the browser (tested natively): the run's checkpoints in the
//! user's order, the computed steps, the table, and what the heatmap and line charts show.
//!
//! Contract:
//! - [`RunModel::order`] lists indices into [`RunModel::checkpoints`] (the worker's default order
//!   at first; [`RunModel::move_item`] reorders). A step's points depend on the checkpoint and
//!   the one before it in the order, so they are cached by that pair: reordering recomputes only
//!   the pairs that changed ([`RunModel::jobs`]).
//! - [`RunModel::report`] is the table ([`crate::stats::trend::assemble`]) once every pair of
//!   the current order is computed — the same value `weightscope trend --json` prints for the
//!   same files in the same order, so the CSV / JSON exports match the CLI.
//! - [`Metric`] picks the series of a [`Series`]; [`heat`] maps a row's values to 0..=1 (each
//!   row scaled to its own min..max, so a layer's change over time shows whatever its scale;
//!   a constant row is 0.5, nulls `None`).

use crate::format::fastmap::KeyMap;
use crate::stats::trend::{self, Series, StepInfo, StepPoints, TrendReport};
use crate::worker::trend::RunCheckpoint;

/// The metric shown by the heatmap and the line charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Std,
    Mean,
    AbsMax,
    L2,
    ZeroFraction,
    Nonfinite,
    RelChange,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Std,
        Metric::Mean,
        Metric::AbsMax,
        Metric::L2,
        Metric::ZeroFraction,
        Metric::Nonfinite,
        Metric::RelChange,
    ];
    /// The JSON / CSV column name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Std => "std",
            Metric::Mean => "mean",
            Metric::AbsMax => "abs_max",
            Metric::L2 => "l2",
            Metric::ZeroFraction => "zero_fraction",
            Metric::Nonfinite => "nonfinite",
            Metric::RelChange => "rel_change",
        }
    }
    pub fn from_name(n: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == n)
    }
    /// The series' values of this metric.
    pub fn values(self, s: &Series) -> Vec<Option<f64>> {
        match self {
            Metric::Std => s.std.clone(),
            Metric::Mean => s.mean.clone(),
            Metric::AbsMax => s.abs_max.clone(),
            Metric::L2 => s.l2.clone(),
            Metric::ZeroFraction => s.zero_fraction.clone(),
            Metric::Nonfinite => s.nonfinite.iter().map(|v| v.map(|v| v as f64)).collect(),
            Metric::RelChange => s.rel_change.clone(),
        }
    }
}

/// A row's values scaled to 0..=1 by the row's own finite min and max (0.5 when they are equal).
pub fn heat(values: &[Option<f64>]) -> Vec<Option<f64>> {
    let fin = values.iter().flatten().filter(|v| v.is_finite());
    let (lo, hi) = fin.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
        (a.min(v), b.max(v))
    });
    values
        .iter()
        .map(|v| {
            v.filter(|v| v.is_finite())
                .map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
        })
        .collect()
}

/// The Run view's data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunModel {
    pub checkpoints: Vec<RunCheckpoint>,
    pub order: Vec<usize>,
    /// Computed steps by (checkpoint, previous checkpoint in the order).
    pub done: KeyMap<(u32, Option<u32>), StepPoints>,
    /// Files that did not open.
    pub errors: Vec<String>,
}

impl RunModel {
    /// A run as the worker opened it (in its default order).
    pub fn new(checkpoints: Vec<RunCheckpoint>, errors: Vec<String>) -> RunModel {
        RunModel {
            order: (0..checkpoints.len()).collect(),
            checkpoints,
            done: KeyMap::new(),
            errors,
        }
    }

    /// The (checkpoint, previous) pairs of the current order.
    pub fn pairs(&self) -> Vec<(u32, Option<u32>)> {
        self.order
            .iter()
            .enumerate()
            .map(|(k, &i)| (i as u32, k.checked_sub(1).map(|p| self.order[p] as u32)))
            .collect()
    }

    /// Pairs still to compute, in order.
    pub fn jobs(&self) -> Vec<(u32, Option<u32>)> {
        self.pairs()
            .into_iter()
            .filter(|p| !self.done.contains_key(p))
            .collect()
    }

    /// Bytes a pair reads (the checkpoint's tensors and the previous one's).
    pub fn job_bytes(&self, (cur, prev): (u32, Option<u32>)) -> u64 {
        let b = |i: u32| self.checkpoints.get(i as usize).map_or(0, |c| c.bytes);
        b(cur) + prev.map_or(0, b)
    }

    /// Move the checkpoint at position `from` of the order to position `to`.
    pub fn move_item(&mut self, from: usize, to: usize) {
        if from < self.order.len() && to < self.order.len() {
            let x = self.order.remove(from);
            self.order.insert(to, x);
        }
    }

    /// The table, once every pair of the current order is computed.
    pub fn report(&self) -> Option<TrendReport> {
        let pairs = self.pairs();
        let points: Option<Vec<StepPoints>> =
            pairs.iter().map(|p| self.done.get(p).cloned()).collect();
        let steps = self
            .order
            .iter()
            .map(|&i| StepInfo {
                file: self.checkpoints[i].name.clone(),
                step: self.checkpoints[i].step,
            })
            .collect();
        Some(trend::assemble(steps, &points?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::trend::Point;

    fn ck(name: &str, bytes: u64) -> RunCheckpoint {
        RunCheckpoint {
            name: name.into(),
            step: None,
            bytes,
        }
    }

    fn pts(v: f64, rel: Option<f64>) -> StepPoints {
        StepPoints {
            keys: vec!["w".into()],
            points: vec![Point {
                std: Some(v),
                rel_change: rel,
                floating: true,
                ..Point::default()
            }],
        }
    }

    #[test]
    fn reorder_recomputes_only_changed_pairs() {
        let mut m = RunModel::new(vec![ck("a", 10), ck("b", 20), ck("c", 30)], vec![]);
        assert_eq!(m.jobs(), [(0, None), (1, Some(0)), (2, Some(1))]);
        assert_eq!(m.job_bytes((2, Some(1))), 50);
        assert!(m.report().is_none());
        m.done.insert((0, None), pts(1.0, None));
        m.done.insert((1, Some(0)), pts(2.0, Some(0.5)));
        m.done.insert((2, Some(1)), pts(3.0, Some(0.25)));
        let r = m.report().unwrap();
        assert_eq!(r.steps[2].file, "c");
        assert_eq!(r.tensors[0].std, [Some(1.0), Some(2.0), Some(3.0)]);
        m.move_item(2, 0); // c a b
        assert_eq!(m.order, [2, 0, 1]);
        assert_eq!(m.jobs(), [(2, None), (0, Some(2))]);
    }

    #[test]
    fn heat_scales_rows() {
        assert_eq!(
            heat(&[Some(1.0), None, Some(3.0), Some(2.0)]),
            [Some(0.0), None, Some(1.0), Some(0.5)]
        );
        assert_eq!(heat(&[Some(4.0), Some(4.0)]), [Some(0.5), Some(0.5)]);
        assert_eq!(Metric::from_name("abs_max"), Some(Metric::AbsMax));
    }
}
