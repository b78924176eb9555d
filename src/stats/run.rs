//! Whole-checkpoint statistics: every selected tensor, lazily, with progress, cancellation and a
//! per-tensor cache.
//!
//! Contract: [`checkpoint_stats`] computes the statistics of each selected tensor that has data
//! and is not yet in the [`StatsCache`] (keyed by tensor index and bin count), streaming its bytes
//! with [`crate::format::data::read_tensor`] — once for tensors within the exact-quantile budget,
//! twice for larger ones (see [`super::engine`]). Progress is reported in bytes: `total` is the sum
//! over the pending tensors of their size times the passes they need, `done` grows after every
//! chunk. `progress` returning false cancels: the run stops promptly, keeps every tensor finished
//! so far in the cache, and returns [`Completion::Cancelled`]. A read error stops the run and is
//! returned naming the file and tensor. Tensors without data (meta) are never selected.

use super::engine::{tensor_stats_with_progress, StatsOptions, TensorStats};
use crate::format::data::read_tensor;
use crate::format::{Checkpoint, Result, Source};
use std::collections::HashMap;

/// Statistics already computed, by (tensor index, bins). Belongs to one opened checkpoint.
#[derive(Debug, Default, Clone)]
pub struct StatsCache {
    map: HashMap<(usize, usize), TensorStats>,
}

impl StatsCache {
    pub fn new() -> StatsCache {
        StatsCache::default()
    }
    pub fn get(&self, index: usize, bins: usize) -> Option<&TensorStats> {
        self.map.get(&(index, bins))
    }
    pub fn insert(&mut self, index: usize, bins: usize, stats: TensorStats) {
        self.map.insert((index, bins), stats);
    }
    pub fn contains(&self, index: usize, bins: usize) -> bool {
        self.map.contains_key(&(index, bins))
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Forget everything (e.g. after the checkpoint was edited).
    pub fn clear(&mut self) {
        self.map.clear();
    }
    /// Forget one tensor at every bin count.
    pub fn invalidate(&mut self, index: usize) {
        self.map.retain(|&(i, _), _| i != index);
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Done,
    Cancelled,
}

/// How many times the engine will stream tensor `i` (1 or 2; 0 without data).
pub fn passes_needed(ckpt: &Checkpoint, i: usize, opts: &StatsOptions) -> u64 {
    let t = &ckpt.tensors[i];
    if t.storage.is_none() {
        return 0;
    }
    let per = super::decode::Decoder::new(t.dtype).per_unit() as u64;
    if t.numel().saturating_mul(per) <= opts.quantile_exact_limit {
        1
    } else {
        2
    }
}

/// Compute (into `cache`) the statistics of every tensor `i` with `select(i)`.
pub fn checkpoint_stats(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    opts: &StatsOptions,
    select: &dyn Fn(usize) -> bool,
    progress: &mut dyn FnMut(u64, u64) -> bool,
    cache: &mut StatsCache,
) -> Result<Completion> {
    let pending: Vec<usize> = (0..ckpt.tensors.len())
        .filter(|&i| {
            ckpt.tensors[i].storage.is_some() && select(i) && !cache.contains(i, opts.bins)
        })
        .collect();
    let planned = |i: usize| ckpt.tensors[i].nbytes() * passes_needed(ckpt, i, opts);
    let total: u64 = pending.iter().map(|&i| planned(i)).sum();
    let mut done = 0u64;
    if !progress(done, total) {
        return Ok(Completion::Cancelled);
    }
    for &i in &pending {
        let t = &ckpt.tensors[i];
        let start = done;
        let mut replay = |sink: &mut dyn FnMut(&[u8]) -> Result<()>| {
            read_tensor(ckpt, sources, i, opts.chunk, sink)
        };
        let r = tensor_stats_with_progress(t.dtype, t.numel(), opts, &mut replay, &mut |n| {
            done += n;
            progress(done, total)
        });
        let file = t
            .storage
            .and_then(|s| ckpt.files.get(ckpt.storages[s].file))
            .cloned()
            .unwrap_or_default();
        match r.map_err(|e| e.in_file(file))? {
            Some(s) => {
                cache.insert(i, opts.bins, s);
                // A tensor with no finite values skips its second pass: account for it.
                done = start + planned(i);
            }
            None => return Ok(Completion::Cancelled),
        }
    }
    if done != total && !progress(total, total) {
        return Ok(Completion::Cancelled);
    }
    Ok(Completion::Done)
}
