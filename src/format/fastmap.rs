//! Hash maps for the per-key work of opening a checkpoint (zip names, storage keys, dict keys,
//! the page's tree folders).
//!
//! Contract: [`FastMap`] / [`FastSet`] are `std` maps; in wasm they hash with foldhash (a few
//! times faster than SipHash there, where the index build of a 50,000-key checkpoint spends a
//! tenth of its time hashing), natively with std's randomly keyed SipHash. wasm32-unknown-unknown
//! has no OS randomness, so std's SipHash keys are fixed there: foldhash, seeded per map from
//! addresses, gives up no flooding resistance the page had.

#[cfg(target_arch = "wasm32")]
type State = foldhash::fast::RandomState;
#[cfg(not(target_arch = "wasm32"))]
type State = std::collections::hash_map::RandomState;

/// The hasher builder of [`FastMap`], for hashing pieces of a key by hand.
pub type HashState = State;

/// A hash map (see the module doc).
pub type FastMap<K, V> = std::collections::HashMap<K, V, State>;
/// A hash set (see the module doc).
pub type FastSet<T> = std::collections::HashSet<T, State>;

/// An empty [`FastMap`] with room for `n` entries.
pub fn map_with_capacity<K, V>(n: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(n, State::default())
}
