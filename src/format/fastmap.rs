//! The hash maps of the crate: [`KeyMap`] / [`KeySet`] for every lookup table (zip names are
//! indexed by hand through [`HashHeads`]), sharing one hash table's code whatever their key and
//! value types.
//!
//! Contract:
//! - Keys hash with [`HashState`]: in wasm foldhash (a few times faster than SipHash there, where
//!   the index build of a 50,000-key checkpoint spends a tenth of its time hashing), natively
//!   std's randomly keyed SipHash. wasm32-unknown-unknown has no OS randomness, so std's SipHash
//!   keys are fixed there: foldhash, seeded per map from addresses, gives up no flooding
//!   resistance the page had.
//! - [`KeyMap`] holds its entries in a `Vec`, in insertion order, and finds them through a table
//!   from a key's hash to the last entry inserted with that hash; earlier entries with an equal
//!   hash are chained. The table's element type is always `(u64, u32)`, so the code that grows
//!   and rehashes it exists once in a binary instead of once per key/value type (a `std` map
//!   instantiates it per element type: 1.5–2.3 KB of wasm each).
//! - A [`KeyMap`] behaves as a `HashMap` for `insert` (a second insert of an equal key replaces
//!   the value and keeps the first key), `get`, `entry(..).or_*`, `collect` (the last value of
//!   a key wins), `remove` and `retain`; it iterates in insertion order (a removal moves the
//!   last entry into the removed one's place). At most `u32::MAX - 1` entries.

use std::borrow::Borrow;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

#[cfg(target_arch = "wasm32")]
type State = foldhash::fast::RandomState;
#[cfg(not(target_arch = "wasm32"))]
type State = std::collections::hash_map::RandomState;

/// The hasher builder of every map here, for hashing pieces of a key by hand.
pub type HashState = State;

/// The hasher of a table whose keys are already hashes: it passes the `u64` through.
#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // only `write_u64` is called for a `u64` key; fold anything else in all the same
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A table from a hash (made by a keyed hasher) to the first entry with that hash: the one
/// element type every [`KeyMap`] shares, also used by hand (the zip reader's name index).
pub type HashHeads = std::collections::HashMap<u64, u32, BuildHasherDefault<Prehashed>>;

/// An empty [`HashHeads`] with room for `n` hashes.
pub fn heads_with_capacity(n: usize) -> HashHeads {
    HashHeads::with_capacity_and_hasher(n, Default::default())
}

/// The end of a chain of entries with equal hashes.
const END: u32 = u32::MAX;

/// A hash map from `K` to `V` in insertion order (see the module doc).
#[derive(Clone)]
pub struct KeyMap<K, V> {
    heads: HashHeads,
    entries: Vec<(K, V)>,
    /// `next[i]`: the entry inserted before `i` with the same hash, or [`END`].
    next: Vec<u32>,
    state: State,
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for KeyMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// Equal when both hold the same keys with equal values, whatever their order (as `HashMap`).
impl<K: Hash + Eq, V: PartialEq> PartialEq for KeyMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<K, V> Default for KeyMap<K, V> {
    fn default() -> Self {
        KeyMap {
            heads: HashHeads::default(),
            entries: Vec::new(),
            next: Vec::new(),
            state: State::default(),
        }
    }
}

impl<K, V> KeyMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        KeyMap {
            heads: heads_with_capacity(n),
            entries: Vec::with_capacity(n),
            next: Vec::with_capacity(n),
            state: State::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes every entry (keeps the memory).
    pub fn clear(&mut self) {
        self.heads.clear();
        self.entries.clear();
        self.next.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl<K: Hash + Eq, V> KeyMap<K, V> {
    /// The position of `key`'s entry, given its hash `h`.
    fn find<Q: Hash + Eq + ?Sized>(&self, h: u64, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        let mut at = *self.heads.get(&h)?;
        while at != END {
            let i = at as usize;
            if self.entries[i].0.borrow() == key {
                return Some(i);
            }
            at = self.next[i];
        }
        None
    }

    /// Appends an entry whose key is not in the map; its position.
    fn push(&mut self, h: u64, key: K, value: V) -> usize {
        let i = self.entries.len();
        assert!(i < END as usize, "KeyMap: too many entries");
        let before = self.heads.insert(h, i as u32).unwrap_or(END);
        self.next.push(before);
        self.entries.push((key, value));
        i
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(self.state.hash_one(key), key)?;
        Some(&self.entries[i].1)
    }

    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(self.state.hash_one(key), key)?;
        Some(&mut self.entries[i].1)
    }

    pub fn contains_key<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(self.state.hash_one(key), key).is_some()
    }

    /// Sets `key`'s value; the old value when `key` was there (its first key is kept).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let h = self.state.hash_one(&key);
        match self.find(h, &key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.push(h, key, value);
                None
            }
        }
    }

    /// `key`'s value, inserting `make()` first when `key` is not there.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let h = self.state.hash_one(&key);
        let i = match self.find(h, &key) {
            Some(i) => i,
            None => self.push(h, key, make()),
        };
        &mut self.entries[i].1
    }

    /// Removes `key`'s entry and gives its value; the last entry takes its place in the order.
    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let h = self.state.hash_one(key);
        let i = self.find(h, key)?;
        self.repoint(h, i, self.next[i]);
        let last = self.entries.len() - 1;
        if i != last {
            let hl = self.state.hash_one(&self.entries[last].0);
            self.repoint(hl, last, i as u32);
        }
        self.next.swap_remove(i);
        Some(self.entries.swap_remove(i).1)
    }

    /// Makes the link to entry `from` in the chain of hash `h` lead to `to` instead.
    fn repoint(&mut self, h: u64, from: usize, to: u32) {
        let Some(head) = self.heads.get_mut(&h) else {
            return;
        };
        if *head as usize == from {
            if to == END {
                self.heads.remove(&h);
            } else {
                *head = to;
            }
            return;
        }
        let mut at = *head as usize;
        while self.next[at] != END {
            if self.next[at] as usize == from {
                self.next[at] = to;
                return;
            }
            at = self.next[at] as usize;
        }
    }

    /// Keeps the entries for which `keep` is true, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.heads.clear();
        self.next.clear();
        for (i, (k, _)) in self.entries.iter().enumerate() {
            let before = self
                .heads
                .insert(self.state.hash_one(k), i as u32)
                .unwrap_or(END);
            self.next.push(before);
        }
    }

    /// `HashMap::entry`'s `or_insert` family.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        Entry { map: self, key }
    }
}

/// `map[key]`: the value of a key that must be there (panics otherwise, as `HashMap`'s).
impl<K: Hash + Eq + Borrow<Q>, Q: Hash + Eq + ?Sized, V> std::ops::Index<&Q> for KeyMap<K, V> {
    type Output = V;
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("KeyMap: no entry for the key")
    }
}

/// A key of a [`KeyMap`] about to be looked up or inserted ([`KeyMap::entry`]).
pub struct Entry<'a, K, V> {
    map: &'a mut KeyMap<K, V>,
    key: K,
}

impl<'a, K: Hash + Eq, V> Entry<'a, K, V> {
    pub fn or_insert(self, value: V) -> &'a mut V {
        self.map.get_or_insert_with(self.key, || value)
    }

    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        self.map.get_or_insert_with(self.key, make)
    }

    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.map.get_or_insert_with(self.key, V::default)
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for KeyMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = KeyMap::new();
        m.extend(iter);
        m
    }
}

impl<K: Hash + Eq, V> Extend<(K, V)> for KeyMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K, V> IntoIterator for KeyMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a KeyMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

/// A hash set in insertion order: a [`KeyMap`] without values.
#[derive(Clone, Default)]
pub struct KeySet<K>(KeyMap<K, ()>);

impl<K: std::fmt::Debug> std::fmt::Debug for KeySet<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl<K> KeySet<K> {
    pub fn new() -> Self {
        KeySet(KeyMap::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        KeySet(KeyMap::with_capacity(n))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.0.keys()
    }
}

impl<K: Hash + Eq> KeySet<K> {
    /// Adds `key`; false when it was there.
    pub fn insert(&mut self, key: K) -> bool {
        let h = self.0.state.hash_one(&key);
        if self.0.find(h, &key).is_some() {
            return false;
        }
        self.0.push(h, key, ());
        true
    }

    pub fn contains<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.0.contains_key(key)
    }

    /// Removes `key`; false when it was not there (the last key takes its place in the order).
    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.0.remove(key).is_some()
    }
}

impl<'a, K> IntoIterator for &'a KeySet<K> {
    type Item = &'a K;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, ())>, fn(&'a (K, ())) -> &'a K>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.entries.iter().map(|(k, _)| k)
    }
}

impl<K: Hash + Eq> Extend<K> for KeySet<K> {
    fn extend<I: IntoIterator<Item = K>>(&mut self, iter: I) {
        for k in iter {
            self.insert(k);
        }
    }
}

impl<K: Hash + Eq> FromIterator<K> for KeySet<K> {
    fn from_iter<I: IntoIterator<Item = K>>(iter: I) -> Self {
        let mut s = KeySet::new();
        for k in iter {
            s.insert(k);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// Every key hashes alike: each lookup walks one chain.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Clash(u32);
    impl Hash for Clash {
        fn hash<H: Hasher>(&self, h: &mut H) {
            h.write_u8(1);
        }
    }

    #[test]
    fn behaves_as_std_map() {
        let mut ours: KeyMap<String, usize> = KeyMap::new();
        let mut std_map: HashMap<String, usize> = HashMap::new();
        for (i, k) in ["a", "b", "a", "c", "b", "a", ""].iter().enumerate() {
            assert_eq!(
                ours.insert(k.to_string(), i),
                std_map.insert(k.to_string(), i)
            );
        }
        assert_eq!(ours.len(), std_map.len());
        for k in ["a", "b", "c", "", "d"] {
            assert_eq!(ours.get(k), std_map.get(k));
            assert_eq!(ours.contains_key(k), std_map.contains_key(k));
        }
        *ours.get_mut("c").unwrap() += 10;
        assert_eq!(ours.get("c"), Some(&13));
        // insertion order, each key once
        let keys: Vec<&str> = ours.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", ""]);
    }

    #[test]
    fn entry_and_collect() {
        let mut m: KeyMap<(usize, usize), Vec<u8>> = KeyMap::new();
        m.entry((0, 1)).or_default().push(1);
        m.entry((0, 1)).or_default().push(2);
        *m.entry((2, 0)).or_insert(vec![7]) = vec![8];
        assert_eq!(m.entry((2, 0)).or_insert_with(|| vec![9]), &vec![8]);
        assert_eq!(m.get(&(0, 1)), Some(&vec![1, 2]));
        // collect keeps the last value of a key, as std's does
        let c: KeyMap<&str, i32> = [("x", 1), ("y", 2), ("x", 3)].into_iter().collect();
        let s: HashMap<&str, i32> = [("x", 1), ("y", 2), ("x", 3)].into_iter().collect();
        assert_eq!(c.get("x"), s.get("x"));
        assert_eq!(c.into_iter().collect::<Vec<_>>(), [("x", 3), ("y", 2)]);
    }

    #[test]
    fn retain_keeps_lookups_working() {
        let mut m: KeyMap<Clash, u32> = (0..20).map(|i| (Clash(i), i)).collect();
        let mut s: HashMap<u32, u32> = (0..20).map(|i| (i, i)).collect();
        m.retain(|k, v| {
            *v += 1;
            k.0 % 3 != 0
        });
        s.retain(|k, v| {
            *v += 1;
            k % 3 != 0
        });
        assert_eq!(m.len(), s.len());
        for i in 0..20 {
            assert_eq!(m.get(&Clash(i)), s.get(&i));
        }
        assert_eq!(m.insert(Clash(3), 0), None);
        assert_eq!(m.insert(Clash(4), 0), Some(5));
    }

    /// Removes first, middle, last and absent keys from a map of 30, checking every lookup
    /// against std's map after each.
    fn remove_case<K: Hash + Eq>(key: impl Fn(u32) -> K) {
        let mut m: KeyMap<K, u32> = KeyMap::new();
        let mut s: HashMap<u32, u32> = HashMap::new();
        for i in 0..30 {
            m.insert(key(i), i);
            s.insert(i, i);
        }
        for i in [0, 29, 14, 14, 7, 28, 1, 31] {
            assert_eq!(m.remove(&key(i)), s.remove(&i));
            assert_eq!(m.len(), s.len());
            for j in 0..32 {
                assert_eq!(m.get(&key(j)), s.get(&j), "after removing {i}: {j}");
            }
        }
        for i in 0..30 {
            assert_eq!(m.remove(&key(i)), s.remove(&i));
        }
        assert!(m.is_empty());
        m.insert(key(5), 5);
        assert_eq!(m.get(&key(5)), Some(&5));
    }

    #[test]
    fn remove_as_std_map() {
        remove_case(|i| i); // distinct hashes
        remove_case(Clash); // one chain
        let mut set: KeySet<&str> = ["a", "b", "c"].into_iter().collect();
        assert!(set.remove("a") && !set.remove("a") && set.contains("c"));
    }

    #[test]
    fn equal_hashes_are_chained() {
        let mut m: KeyMap<Clash, u32> = KeyMap::with_capacity(4);
        for i in 0..100 {
            assert_eq!(m.insert(Clash(i), i), None);
        }
        assert_eq!(m.insert(Clash(42), 0), Some(42));
        assert_eq!(m.len(), 100);
        for i in 0..100 {
            assert_eq!(m.get(&Clash(i)), Some(&if i == 42 { 0 } else { i }));
        }
        assert!(!m.contains_key(&Clash(100)));
    }

    #[test]
    fn set_behaves_as_std_set() {
        let mut ours: KeySet<&str> = KeySet::new();
        let mut std_set: HashSet<&str> = HashSet::new();
        for k in ["q", "r", "q", "s", "r"] {
            assert_eq!(ours.insert(k), std_set.insert(k));
        }
        assert_eq!(ours.len(), std_set.len());
        assert!(ours.contains("s") && !ours.contains("t"));
        assert_eq!(ours.iter().copied().collect::<Vec<_>>(), ["q", "r", "s"]);
        let c: KeySet<Clash> = (0..10).chain(0..10).map(Clash).collect();
        assert_eq!(c.len(), 10);
    }
}
