//! Sorting through a few shared instantiations of the standard library's sorts.
//!
//! Contract: [`sort_by`], [`sort_by_key`] and [`sort`] sort a slice **stably** (equal elements
//! keep their order), exactly as `<[T]>::sort_by` / `sort_by_key` / `sort` would. They sort
//! element *indices* with one comparator behind `&dyn`, so every caller, whatever its element
//! type and comparator, shares one copy of the stable sort's code; only the in-place
//! permutation that moves the elements afterwards is generic (a small loop). [`indices_by`]
//! returns that order without moving anything. [`sort_floats`] sorts `f64`s by
//! [`f64::total_cmp`] (one copy for every caller). A `&dyn` comparison costs an indirect call
//! per comparison: these are for lists of names, entries, tensors and steps (up to about 10⁵
//! items), not for the statistics engine's per-element loops, which keep their own sorts.
//!
//! Why: each `sort_by` call site with its own closure type instantiates the whole sort (driftsort,
//! its small-sort networks and merges: 3–10 KB of wasm each); the page and the worker had dozens.
//! Every layer may use this module (it names none).

use std::cmp::Ordering;

/// The stable order of `0..n` under `cmp` (of two indices): one instantiation for every caller.
pub fn indices_by(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| cmp(a, b));
    idx
}

/// Put `v` into the order `idx` (`v'[i] = v[idx[i]]`, `idx` a permutation of `0..v.len()`),
/// following each cycle once; `idx` is used up.
fn permute<T>(v: &mut [T], mut idx: Vec<usize>) {
    for start in 0..v.len() {
        let mut cur = start;
        while idx[cur] != cur {
            let next = std::mem::replace(&mut idx[cur], cur);
            if next == start {
                break;
            }
            v.swap(cur, next);
            cur = next;
        }
    }
}

/// `v.sort_by(cmp)`: stable.
pub fn sort_by<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    let idx = indices_by(v.len(), &|a, b| cmp(&v[a], &v[b]));
    permute(v, idx);
}

/// `v.sort_by_key(key)`: stable.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// `v.sort()`: stable.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// `v.sort_by(f64::total_cmp)` (−0 before +0, NaNs at the ends by sign): one instantiation.
pub fn sort_floats(v: &mut [f64]) {
    v.sort_unstable_by(f64::total_cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift).
    fn numbers(n: usize, modulo: u64, seed: u64) -> Vec<u64> {
        let mut r = seed;
        (0..n)
            .map(|_| {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                r % modulo
            })
            .collect()
    }

    #[test]
    fn same_as_the_standard_stable_sort() {
        for n in [0usize, 1, 2, 3, 7, 20, 33, 100, 1000, 5000] {
            for modulo in [1u64, 3, 50, u64::MAX] {
                // (key, position): equal keys must keep their positions' order
                let v: Vec<(u64, usize)> = numbers(n, modulo, 0x9e37_79b9 + n as u64)
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| (k, i))
                    .collect();
                let mut want = v.clone();
                want.sort_by_key(|p| p.0);
                let mut got = v.clone();
                sort_by_key(&mut got, |p| p.0);
                assert_eq!(got, want, "n={n} modulo={modulo}");
                let mut want = v.clone();
                want.sort_by_key(|p| std::cmp::Reverse(p.0));
                let mut got = v.clone();
                sort_by(&mut got, |a, b| b.0.cmp(&a.0));
                assert_eq!(got, want, "descending, n={n} modulo={modulo}");
                let mut want = v.clone();
                want.sort();
                let mut got = v;
                sort(&mut got);
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn owned_elements_move_without_loss() {
        let mut v: Vec<String> = numbers(300, 40, 7)
            .iter()
            .map(|k| format!("k{k}"))
            .collect();
        let mut want = v.clone();
        want.sort();
        sort(&mut v);
        assert_eq!(v, want);
    }

    #[test]
    fn indices_are_the_stable_order() {
        let keys = numbers(500, 9, 11);
        let mut want: Vec<usize> = (0..keys.len()).collect();
        want.sort_by_key(|&i| keys[i]);
        assert_eq!(indices_by(keys.len(), &|a, b| keys[a].cmp(&keys[b])), want);
    }

    #[test]
    fn floats_by_total_order() {
        let mut v = vec![
            2.5,
            -0.0,
            f64::NAN,
            0.0,
            -1.0,
            f64::INFINITY,
            -f64::NAN,
            0.0,
        ];
        let mut want = v.clone();
        want.sort_by(f64::total_cmp);
        sort_floats(&mut v);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&v), bits(&want));
    }
}
