//! Exact statistics of 8- and 16-bit dtypes from a histogram of their bit patterns.
//!
//! Contract: a 1- or 2-byte element has at most 65536 distinct bit patterns, so one pass that
//! only *counts patterns* ([`PatternCounter`], one table increment per element) determines the
//! tensor's multiset of values completely. [`stats_from_patterns`] then derives everything from
//! the (value, count) pairs: count, NaN/±inf, zeros, min, max, mean and M2 (compensated sums over
//! at most 65536 terms, then Σ c·(v − mean)² — no streaming error at all), the numpy histogram
//! (each distinct value binned by [`BinPlan::index`], its count added), and **exact** numpy
//! quantiles at any tensor size (order statistics read off the cumulative counts of the sorted
//! distinct values). Used for float16, bfloat16, int16, uint16, bits16 and every 1-byte dtype
//! (float8 family, float4 pairs, int8, uint8, bool, quantized codes, bits8…): one read, bound 0.

use super::engine::{TensorStats, ValueSummary};
use super::histogram::{BinPlan, Histogram};
use super::moments::Moments;
use super::quantile::{lerp, linear_ranks, Quantiles, LEVELS};
use crate::format::element::Decoder;

/// Counts of each bit pattern of 1- or 2-byte units.
#[derive(Debug, Clone)]
pub struct PatternCounter {
    width: usize,
    /// u32 sub-counters (4 interleaved copies for bytes, 1 for u16), flushed into `totals`.
    sub: Vec<u32>,
    pending: u64,
    totals: Vec<u64>,
}

const FLUSH_EVERY: u64 = 1 << 31;

impl PatternCounter {
    /// `width` is 1 or 2 bytes.
    pub fn new(width: usize) -> PatternCounter {
        assert!(width == 1 || width == 2, "patterns of 1 or 2 bytes");
        let n = 1usize << (8 * width);
        let copies = if width == 1 { 4 } else { 1 };
        PatternCounter {
            width,
            sub: vec![0; n * copies],
            pending: 0,
            totals: vec![0; n],
        }
    }

    fn flush(&mut self) {
        let n = self.totals.len();
        for c in self.sub.chunks_exact_mut(n) {
            for (t, v) in self.totals.iter_mut().zip(c.iter_mut()) {
                *t += *v as u64;
                *v = 0;
            }
        }
        self.pending = 0;
    }

    /// Count the units of `bytes` (a whole number of units).
    pub fn add(&mut self, bytes: &[u8]) {
        for part in bytes.chunks(1 << 30) {
            let units = (part.len() / self.width) as u64;
            if self.pending + units > FLUSH_EVERY {
                self.flush();
            }
            self.pending += units;
            if self.width == 1 {
                let (s0, rest) = self.sub.split_at_mut(256);
                let (s1, rest) = rest.split_at_mut(256);
                let (s2, s3) = rest.split_at_mut(256);
                let mut it = part.chunks_exact(4);
                for q in &mut it {
                    s0[q[0] as usize] += 1;
                    s1[q[1] as usize] += 1;
                    s2[q[2] as usize] += 1;
                    s3[q[3] as usize] += 1;
                }
                for &b in it.remainder() {
                    s0[b as usize] += 1;
                }
            } else {
                let t = &mut self.sub[..65536];
                for c in part.chunks_exact(2) {
                    t[u16::from_le_bytes([c[0], c[1]]) as usize] += 1;
                }
            }
        }
    }

    /// The u64 count of every pattern (index = the pattern as a little-endian integer).
    pub fn finish(mut self) -> Vec<u64> {
        self.flush();
        self.totals
    }
}

/// Neumaier-compensated sum.
#[derive(Default, Clone, Copy)]
pub(crate) struct Sum {
    s: f64,
    c: f64,
}

impl Sum {
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.s + x;
        self.c += if self.s.abs() >= x.abs() {
            (self.s - t) + x
        } else {
            (x - t) + self.s
        };
        self.s = t;
    }
    pub(crate) fn get(&self) -> f64 {
        self.s + self.c
    }
}

/// Statistics of a tensor whose pattern counts (from [`PatternCounter`]) are `counts`.
/// `map`, if given, transforms every decoded value first (dequantization).
pub fn stats_from_patterns(
    dec: &Decoder,
    counts: &[u64],
    bins: usize,
    map: Option<&dyn Fn(f64) -> f64>,
) -> TensorStats {
    let width = if counts.len() > 256 { 2 } else { 1 };
    let mut vals: Vec<(f64, u64)> = Vec::new();
    let mut tmp: Vec<f32> = Vec::new();
    let (mut count, mut nan, mut posinf, mut neginf, mut zeros) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for (p, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        tmp.clear();
        dec.decode_f32(&(p as u16).to_le_bytes()[..width], &mut tmp);
        for &v32 in &tmp {
            let v = match map {
                Some(f) => f(v32 as f64),
                None => v32 as f64,
            };
            count += c;
            if v.is_nan() {
                nan += c;
            } else if v == f64::INFINITY {
                posinf += c;
            } else if v == f64::NEG_INFINITY {
                neginf += c;
            } else {
                if v == 0.0 {
                    zeros += c;
                }
                vals.push((v, c));
            }
        }
    }
    let mut s = TensorStats {
        summary: ValueSummary {
            count,
            zeros,
            nan,
            posinf,
            neginf,
            ..ValueSummary::default()
        },
        ..TensorStats::of_moments(&Moments::default())
    };
    if vals.is_empty() {
        return s;
    }
    vals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n: u64 = vals.iter().map(|v| v.1).sum();
    let nf = n as f64;
    let (mut sum, mut sq) = (Sum::default(), Sum::default());
    for &(v, c) in &vals {
        sum.add(v * c as f64);
        sq.add(v * v * c as f64);
    }
    let mean = sum.get() / nf;
    let mut m2 = Sum::default();
    for &(v, c) in &vals {
        let d = v - mean;
        m2.add(d * d * c as f64);
    }
    let (min, max) = (vals[0].0, vals[vals.len() - 1].0);
    s.summary.min = Some(min);
    s.summary.max = Some(max);
    s.summary.mean = Some(mean);
    s.summary.std = Some((m2.get() / nf).max(0.0).sqrt());
    s.l2 = sq.get().sqrt();
    s.absmax = Some(min.abs().max(max.abs()));
    let plan = BinPlan::new(min, max, bins);
    let mut h = vec![0u64; plan.n];
    for &(v, c) in &vals {
        h[plan.index(v)] += c;
    }
    s.histogram = Histogram {
        edges: plan.edges,
        counts: h,
    };
    // Order statistics: cum[i] = values in vals[..=i].
    let cum: Vec<u64> = vals
        .iter()
        .scan(0u64, |acc, v| {
            *acc += v.1;
            Some(*acc)
        })
        .collect();
    let at = |k: u64| vals[cum.partition_point(|&c| c <= k)].0;
    let mut q = [0f64; 7];
    for (o, &l) in q.iter_mut().zip(&LEVELS) {
        let (lo, hi, g) = linear_ranks(n, l);
        *o = lerp(at(lo), at(hi), g);
    }
    s.quantiles = Some(Quantiles {
        p1: q[0],
        p5: q[1],
        p25: q[2],
        p50: q[3],
        p75: q[4],
        p95: q[5],
        p99: q[6],
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DType;

    #[test]
    fn counts_bytes_and_u16() {
        let mut c = PatternCounter::new(1);
        c.add(&[1, 2, 2, 255, 1, 1, 0]);
        let t = c.finish();
        assert_eq!((t[0], t[1], t[2], t[255]), (1, 3, 2, 1));
        let mut c = PatternCounter::new(2);
        c.add(&[0x34, 0x12, 0x34, 0x12, 0xff, 0xff]);
        let t = c.finish();
        assert_eq!((t[0x1234], t[0xffff], t.iter().sum::<u64>()), (2, 1, 3));
    }

    #[test]
    fn stats_of_int8_codes() {
        let mut c = PatternCounter::new(1);
        let data: Vec<u8> = [-3i8, 0, 5, 5, 0, 1, -3, 127]
            .iter()
            .map(|&v| v as u8)
            .collect();
        c.add(&data);
        let s = stats_from_patterns(&Decoder::new(DType::I8), &c.finish(), 4, None);
        assert_eq!(s.summary.count, 8);
        assert_eq!(
            (s.summary.min, s.summary.max, s.summary.zeros),
            (Some(-3.0), Some(127.0), 2)
        );
        assert_eq!(s.summary.mean, Some(132.0 / 8.0));
        let q = s.quantiles.unwrap();
        // numpy.quantile([-3,-3,0,0,1,5,5,127], .5) = 0.5
        assert_eq!(q.p50, 0.5);
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 8);
    }

    #[test]
    fn packed_nibbles_expand() {
        let mut c = PatternCounter::new(1);
        c.add(&[0x21, 0x21]);
        let s = stats_from_patterns(&Decoder::new(DType::QUInt4x2), &c.finish(), 64, None);
        assert_eq!(
            (
                s.summary.count,
                s.summary.mean,
                s.summary.min,
                s.summary.max
            ),
            (4, Some(1.5), Some(1.0), Some(2.0))
        );
    }
}
