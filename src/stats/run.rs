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
//! Statistics are of the logical values: a tensor saved with torch's negation / conjugation bit
//! ([`TensorKind::ConjNeg`]) has the sign bits flipped as it streams ([`sign_flips`]); a quantized
//! tensor with per-tensor scale and zero point is summarised dequantized, `(q − zp)·scale` (as
//! the fixtures' torch/numpy reference does); per-channel ones by their integer codes.

use super::engine::{tensor_stats, Dequant, StatsInput, StatsOptions, TensorStats};
use crate::format::data::read_tensor;
use crate::format::fastmap::KeyMap;
use crate::format::{Checkpoint, DType, Result, Source, TensorKind};

/// Statistics already computed, by (tensor index, bins). Belongs to one opened checkpoint.
#[derive(Debug, Default, Clone)]
pub struct StatsCache {
    map: KeyMap<(usize, usize), TensorStats>,
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

/// For a tensor stored with torch's lazy negation / conjugation bits, the byte offsets (within
/// each element of `size` bytes) whose top bit must flip to get the logical values: negation
/// flips every float component's sign, conjugation the imaginary part's. Only IEEE-style floats
/// and complex are handled (torch makes such views of those); other dtypes are left as stored.
pub fn sign_flips(dtype: DType, kind: &TensorKind) -> Option<(usize, Vec<usize>)> {
    let TensorKind::ConjNeg { conj, neg } = kind else {
        return None;
    };
    let size = dtype.size();
    let offsets = match dtype {
        DType::F64 | DType::F32 | DType::F16 | DType::BF16 if *neg => vec![size - 1],
        DType::C128 | DType::C64 | DType::C32 => {
            let half = size / 2;
            match (*neg, *conj) {
                (true, true) => vec![half - 1],
                (true, false) => vec![half - 1, size - 1],
                (false, true) => vec![size - 1],
                (false, false) => vec![],
            }
        }
        _ => vec![],
    };
    (!offsets.is_empty()).then_some((size, offsets))
}

/// Stream tensor `i`'s logical values (see [`sign_flips`]) as little-endian bytes in chunks of at
/// most `chunk` bytes: [`read_tensor`] with the negation / conjugation bits applied.
pub fn read_logical(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    i: usize,
    chunk: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let t = &ckpt.tensors[i];
    let Some((size, offsets)) = sign_flips(t.dtype, &t.kind) else {
        return read_tensor(ckpt, sources, i, chunk, sink);
    };
    let mut buf = Vec::new();
    read_tensor(ckpt, sources, i, chunk, &mut |b| {
        buf.clear();
        buf.extend_from_slice(b);
        for e in buf.chunks_exact_mut(size) {
            for &o in &offsets {
                e[o] ^= 0x80;
            }
        }
        sink(&buf)
    })
}

/// The per-tensor dequantization of a quantized tensor with a scale and zero point (None for
/// every other tensor, per-channel ones included: those are summarised by their codes).
pub fn dequant_of(kind: &TensorKind) -> Option<Dequant> {
    match kind {
        TensorKind::Quantized {
            scale: Some(scale),
            zero_point: Some(zero_point),
            ..
        } => Some(Dequant {
            scale: *scale,
            zero_point: *zero_point,
        }),
        _ => None,
    }
}

/// How many times the engine will stream tensor `i` (1 or 2; 0 without data).
pub fn planned_passes(ckpt: &Checkpoint, i: usize, opts: &StatsOptions) -> u64 {
    let t = &ckpt.tensors[i];
    if t.storage.is_none() {
        return 0;
    }
    StatsInput::new(t.dtype, t.numel()).planned_passes(opts)
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
    let planned = |i: usize| {
        ckpt.tensors[i]
            .nbytes()
            .saturating_mul(planned_passes(ckpt, i, opts))
    };
    let total: u64 = pending
        .iter()
        .fold(0u64, |a, &i| a.saturating_add(planned(i)));
    let mut done = 0u64;
    if !progress(done, total) {
        return Ok(Completion::Cancelled);
    }
    for &i in &pending {
        let t = &ckpt.tensors[i];
        let start = done;
        // An expanded view (zero strides) is summarised from its distinct elements.
        let reduced = super::expanded::reduced_checkpoint(ckpt, i);
        let (rck, ri) = match &reduced {
            Some((one, _)) => (one, 0),
            None => (ckpt, i),
        };
        let numel = rck.tensors[ri].numel();
        let dequant = dequant_of(&t.kind);
        let plain = sign_flips(t.dtype, &t.kind).is_none() && dequant.is_none();
        let mut replay = |sink: &mut dyn FnMut(&[u8]) -> Result<()>| {
            read_logical(rck, sources, ri, opts.chunk, sink)
        };
        let el = StatsInput {
            dtype: t.dtype,
            numel,
            dequant,
        };
        let r = tensor_stats(el, opts, &mut replay, &mut |n| {
            done = done.saturating_add(n);
            progress(done, total)
        });
        let file = t
            .storage
            .and_then(|s| ckpt.files.get(ckpt.storages[s].file))
            .cloned()
            .unwrap_or_default();
        match r.map_err(|e| e.in_file(file.clone()))? {
            Some(mut s) => {
                if let Some((one, m)) = &reduced {
                    super::expanded::scale(&mut s, *m);
                    // exact quantiles from the distinct values (plain real tensors)
                    if plain && one.tensors[0].numel() <= opts.quantile_exact_limit {
                        if let Some(q) = super::expanded::finite_values(one, sources, 0, opts.chunk)
                            .map_err(|e| e.in_file(file.clone()))?
                            .and_then(|v| super::expanded::repeated_quantiles(v, *m))
                        {
                            s.quantiles = Some(q);
                            s.quantiles_exact = true;
                            s.quantile_error_bound = 0.0;
                        }
                    }
                }
                cache.insert(i, opts.bins, s);
                // A tensor with no finite values skips its second pass: account for it.
                done = start.saturating_add(planned(i));
            }
            None => return Ok(Completion::Cancelled),
        }
    }
    if done != total && !progress(total, total) {
        return Ok(Completion::Cancelled);
    }
    Ok(Completion::Done)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::{
        Checkpoint, DType, Format, MemSource, Node, SafetyReport, StorageInfo, TensorInfo,
        TensorKind,
    };

    fn tensor(
        path: &str,
        dtype: DType,
        shape: &[u64],
        strides: &[u64],
        storage: Option<usize>,
    ) -> TensorInfo {
        TensorInfo {
            path: path.split('/').map(String::from).collect(),
            dtype,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            storage_offset: 0,
            storage,
            requires_grad: false,
            parameter: false,
            kind: TensorKind::Dense,
        }
    }

    /// A checkpoint over one in-memory file: `a/w` f32 [2,3], `a/wt` its transpose, `m` meta,
    /// `b` bf16 [4] with a NaN.
    pub(crate) fn sample() -> (Checkpoint, MemSource) {
        let mut bytes = Vec::new();
        for x in [1.0f32, -2.0, 3.0, 0.0, 5.0, 6.0] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let b_off = bytes.len() as u64;
        for x in [0x3f80u16, 0x7fc0, 0xc000, 0x0000] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let storage = |key: &str, dtype, nbytes, offset| {
            StorageInfo::plain(key, format!("archive/data/{key}"), dtype, nbytes, offset)
        };
        let ckpt = Checkpoint {
            format: Format::TorchZip,
            root: Node::None,
            tensors: vec![
                tensor("a/w", DType::F32, &[2, 3], &[3, 1], Some(0)),
                tensor("a/wt", DType::F32, &[3, 2], &[1, 3], Some(0)),
                tensor("m", DType::F32, &[5], &[1], None),
                tensor("b", DType::BF16, &[4], &[1], Some(1)),
            ],
            storages: vec![
                storage("0", DType::F32, 24, 0),
                storage("1", DType::BF16, 8, b_off),
            ],
            safety: SafetyReport::default(),
            metadata: vec![],
            files: vec!["sample.pth".into()],
            notes: vec![],
        };
        (ckpt, MemSource(bytes))
    }

    /// [`checkpoint_stats`] of every tensor.
    fn all_stats(
        ckpt: &Checkpoint,
        sources: &[&dyn Source],
        opts: &StatsOptions,
        progress: &mut dyn FnMut(u64, u64) -> bool,
        cache: &mut StatsCache,
    ) -> Result<Completion> {
        checkpoint_stats(ckpt, sources, opts, &|_| true, progress, cache)
    }

    #[test]
    fn computes_selected_tensors_once_and_caches() {
        let (ckpt, src) = sample();
        let sources: [&dyn Source; 1] = [&src];
        let opts = StatsOptions::default();
        let mut cache = StatsCache::new();
        let mut reports = Vec::new();
        let r = all_stats(
            &ckpt,
            &sources,
            &opts,
            &mut |d, t| {
                reports.push((d, t));
                true
            },
            &mut cache,
        )
        .unwrap();
        assert_eq!(r, Completion::Done);
        assert_eq!(cache.len(), 3); // meta tensor skipped
        assert_eq!(reports.first(), Some(&(0, 24 + 24 + 8)));
        assert_eq!(reports.last(), Some(&(56, 56)));
        let w = cache.get(0, 64).unwrap();
        let wt = cache.get(1, 64).unwrap();
        assert_eq!(w.summary.mean, Some(13.0 / 6.0));
        assert_eq!(
            (w.summary.min, w.summary.max, w.summary.zeros),
            (Some(-2.0), Some(6.0), 1)
        );
        assert_eq!(w.histogram, wt.histogram);
        assert_eq!(w.quantiles, wt.quantiles);
        let b = cache.get(3, 64).unwrap();
        assert_eq!(
            (b.summary.count, b.summary.nan, b.summary.min, b.summary.max),
            (4, 1, Some(-2.0), Some(1.0))
        );
        // Second run: everything cached, nothing read.
        let mut calls = 0;
        all_stats(
            &ckpt,
            &sources,
            &opts,
            &mut |d, t| {
                calls += 1;
                assert_eq!((d, t), (0, 0));
                true
            },
            &mut cache,
        )
        .unwrap();
        assert_eq!(calls, 1);
        // Another bin count is another cache entry.
        let o16 = StatsOptions {
            bins: 16,
            ..opts.clone()
        };
        checkpoint_stats(
            &ckpt,
            &sources,
            &o16,
            &|i| i == 3,
            &mut |_, _| true,
            &mut cache,
        )
        .unwrap();
        assert_eq!(cache.get(3, 16).unwrap().histogram.counts.len(), 16);
        assert!(cache.get(0, 16).is_none());
        cache.invalidate(3);
        assert!(cache.get(3, 64).is_none() && cache.get(3, 16).is_none());
    }

    #[test]
    fn cancel_keeps_finished_tensors() {
        let (ckpt, src) = sample();
        let sources: [&dyn Source; 1] = [&src];
        let mut cache = StatsCache::new();
        let r = all_stats(
            &ckpt,
            &sources,
            &StatsOptions::default(),
            &mut |d, _| d <= 24,
            &mut cache,
        )
        .unwrap();
        assert_eq!(r, Completion::Cancelled);
        assert!(cache.get(0, 64).is_some());
        assert!(cache.get(1, 64).is_none());
    }

    #[test]
    fn read_errors_name_file_and_tensor() {
        let (mut ckpt, _) = sample();
        let short = MemSource(vec![0; 10]);
        let sources: [&dyn Source; 1] = [&short];
        ckpt.tensors.truncate(1);
        let e = all_stats(
            &ckpt,
            &sources,
            &StatsOptions::default(),
            &mut |_, _| true,
            &mut StatsCache::new(),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("sample.pth: a/w: archive/data/0: "),
            "{msg}"
        );
    }

    #[test]
    fn negated_view_gives_logical_values() {
        let (mut ckpt, src) = sample();
        ckpt.tensors[0].kind = TensorKind::ConjNeg {
            conj: false,
            neg: true,
        };
        let sources: [&dyn Source; 1] = [&src];
        let mut cache = StatsCache::new();
        checkpoint_stats(
            &ckpt,
            &sources,
            &StatsOptions::default(),
            &|i| i == 0,
            &mut |_, _| true,
            &mut cache,
        )
        .unwrap();
        let s = cache.get(0, 64).unwrap();
        assert_eq!(
            (s.summary.min, s.summary.max, s.summary.mean),
            (Some(-6.0), Some(2.0), Some(-13.0 / 6.0))
        );
        assert_eq!(
            sign_flips(
                DType::C64,
                &TensorKind::ConjNeg {
                    conj: true,
                    neg: false
                }
            ),
            Some((8, vec![7]))
        );
        assert_eq!(
            sign_flips(
                DType::C64,
                &TensorKind::ConjNeg {
                    conj: true,
                    neg: true
                }
            ),
            Some((8, vec![3]))
        );
        assert_eq!(sign_flips(DType::F32, &TensorKind::Dense), None);
    }

    #[test]
    fn two_pass_progress_total() {
        let (ckpt, src) = sample();
        let sources: [&dyn Source; 1] = [&src];
        let opts = StatsOptions {
            quantile_exact_limit: 0,
            ..StatsOptions::default()
        };
        assert_eq!(planned_passes(&ckpt, 0, &opts), 2);
        assert_eq!(planned_passes(&ckpt, 2, &opts), 0);
        let passes = |d, n| StatsInput::new(d, n).planned_passes(&opts);
        assert_eq!(passes(DType::BF16, 1 << 20), 1); // bit-pattern path
        assert_eq!(passes(DType::I8, 3), 1);
        assert_eq!(passes(DType::F32, 1 << 20), 2);
        let mut last = (0, 0);
        all_stats(
            &ckpt,
            &sources,
            &opts,
            &mut |d, t| {
                last = (d, t);
                true
            },
            &mut StatsCache::new(),
        )
        .unwrap();
        assert_eq!(last, (112, 112));
    }
}
