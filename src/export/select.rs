//! Exact k-th largest of a stream of non-negative float64 values, in bounded memory.
//!
//! Contract: a [`Selector`] is fed the same `n` values (in the same order or not) once per pass
//! and finds the exact bit pattern of the k-th largest (1-based; NaN counts as largest, as
//! `torch.topk` ranks it). Non-negative floats order like their bit patterns, so this is a radix
//! selection on the 64 bits: each pass histograms the next bits of the values that share the
//! prefix found so far (widths 20, 20, 12, 12: at most 8 MiB of counts), and as soon as at most
//! [`COLLECT`] values share the prefix, one more pass collects them and selects exactly. A
//! tensor of any size therefore takes two to four passes and at most 16 MiB per selector.

/// Candidates gathered in memory for the last pass (16 MiB of u64).
pub const COLLECT: u64 = 1 << 21;

const WIDTHS: [u32; 4] = [20, 20, 12, 12];

enum Mode {
    Hist(Vec<u64>),
    Collect(Vec<u64>),
    Done(Option<u64>),
}

/// See the module contract.
pub struct Selector {
    /// Rank still sought among the values sharing `prefix` (1 = largest).
    k: u64,
    /// The bits fixed so far (the top `64 - shift` bits).
    prefix: u64,
    shift: u32,
    level: usize,
    mode: Mode,
    /// Largest candidate set collected (COLLECT; smaller in tests).
    collect: u64,
}

impl Selector {
    /// Find the k-th largest of `n` values (k = 0: no threshold, `result` is `Some(None)`).
    pub fn new(n: u64, k: u64) -> Selector {
        Selector::with_collect(n, k, COLLECT)
    }

    fn with_collect(n: u64, k: u64, collect: u64) -> Selector {
        let mode = if k == 0 || n == 0 {
            Mode::Done(None)
        } else if n <= collect {
            Mode::Collect(Vec::with_capacity(n as usize))
        } else {
            Mode::Hist(vec![0; 1 << WIDTHS[0]])
        };
        Selector {
            k,
            prefix: 0,
            shift: 64,
            level: 0,
            mode,
            collect,
        }
    }

    /// `Some(threshold bits)` once found (`Some(None)`: keep nothing).
    pub fn result(&self) -> Option<Option<u64>> {
        match self.mode {
            Mode::Done(r) => Some(r),
            _ => None,
        }
    }

    /// Feed values of the current pass.
    pub fn feed(&mut self, values: impl Iterator<Item = f64>) {
        let shift = self.shift;
        let prefix = self.prefix;
        let all = shift == 64;
        match &mut self.mode {
            Mode::Hist(h) => {
                let w = WIDTHS[self.level];
                let mask = (1u64 << w) - 1;
                let down = shift - w;
                for v in values {
                    let b = v.to_bits();
                    if all || b >> shift == prefix {
                        h[((b >> down) & mask) as usize] += 1;
                    }
                }
            }
            Mode::Collect(c) => {
                c.extend(
                    values
                        .map(f64::to_bits)
                        .filter(|&b| all || b >> shift == prefix),
                );
            }
            Mode::Done(_) => {}
        }
    }

    /// Close a pass: narrow the prefix or finish.
    pub fn end_pass(&mut self) {
        match std::mem::replace(&mut self.mode, Mode::Done(None)) {
            Mode::Hist(h) => {
                let w = WIDTHS[self.level];
                let mut k = self.k;
                let mut bucket = 0;
                let mut count = 0;
                for (b, &c) in h.iter().enumerate().rev() {
                    if k <= c {
                        bucket = b as u64;
                        count = c;
                        break;
                    }
                    k -= c;
                }
                self.k = k;
                self.prefix = if self.shift == 64 {
                    bucket
                } else {
                    (self.prefix << w) | bucket
                };
                self.shift -= w;
                self.level += 1;
                self.mode = if self.shift == 0 {
                    Mode::Done(Some(self.prefix))
                } else if count <= self.collect {
                    Mode::Collect(Vec::with_capacity(count as usize))
                } else {
                    Mode::Hist(vec![0; 1 << WIDTHS[self.level]])
                };
            }
            Mode::Collect(c) if c.is_empty() => self.mode = Mode::Done(None),
            Mode::Collect(mut c) => {
                let k = (self.k as usize).min(c.len()).max(1);
                let (_, kth, _) = c.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
                self.mode = Mode::Done(Some(*kth));
            }
            done @ Mode::Done(_) => self.mode = done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vals: &[f64], k: u64) -> Option<f64> {
        let mut s = Selector::with_collect(vals.len() as u64, k, 1000);
        let mut passes = 0;
        while s.result().is_none() {
            for c in vals.chunks(1000) {
                s.feed(c.iter().copied());
            }
            s.end_pass();
            passes += 1;
            assert!(passes <= 5);
        }
        s.result().unwrap().map(f64::from_bits)
    }

    fn sorted_kth(vals: &[f64], k: usize) -> f64 {
        let mut v = vals.to_vec();
        v.sort_by(|a, b| b.partial_cmp(a).unwrap());
        v[k - 1]
    }

    #[test]
    fn small_sets_collect_directly() {
        let v = [3.0, 1.0, 2.0, 2.0, 0.0];
        assert_eq!(run(&v, 1), Some(3.0));
        assert_eq!(run(&v, 2), Some(2.0));
        assert_eq!(run(&v, 3), Some(2.0));
        assert_eq!(run(&v, 5), Some(0.0));
        assert_eq!(run(&v, 0), None);
    }

    #[test]
    fn large_sets_use_histograms_and_stay_exact() {
        // more values than the (test) collect cap: histogram passes first
        let n = 200_000;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let vals: Vec<f64> = (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 7 == 0 {
                    0.5 // many ties
                } else {
                    ((x >> 11) as f64 / (1u64 << 53) as f64) * 2f64.powi((x % 20) as i32 - 10)
                }
            })
            .collect();
        for k in [1usize, 17, n / 7, n / 2, n - 1, n] {
            assert_eq!(run(&vals, k as u64), Some(sorted_kth(&vals, k)), "k={k}");
        }
        // all equal: every level of the radix is needed
        let same = vec![0.25f64; n];
        assert_eq!(run(&same, (n / 3) as u64), Some(0.25));
    }
}
