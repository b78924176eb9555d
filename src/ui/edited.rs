//! The index the page shows: the opened checkpoint as it will be downloaded (the journal
//! applied) or as it was read, with what the journal changed marked on each entry (no browser
//! types: tested natively).
//!
//! Contract:
//! - [`ShownIndex::original`] is the index as read: every entry its own source, no marks.
//! - [`ShownIndex::edited`] is the worker's edited index ([`JournalReply::entries`], in the
//!   edited tree's order, with the new names); each entry keeps where its bytes come from
//!   ([`TensorSource`]) and its [`Mark`] (old name, stored dtype, transplanted). With
//!   `show_removed`, the original tensors no edited entry reads are appended, marked removed.
//!   Storage ids are made unique across inputs (a B file's storage 0 is not A's).
//! - [`Facts::of`] are the header's numbers of what is shown, removed entries left out: each
//!   storage is counted once, by its largest view (tied weights, aliases, reshaped views), and
//!   tensors under an optimizer's state are counted apart from the model's parameters.
//! - [`prefix_suggestions`] are the key prefixes the shown keys actually carry.

use crate::format::fastmap::KeyMap;
use crate::format::DType;
use crate::worker::protocol::{Entry, JournalReply, TensorSource, ValueEntry};

/// What the journal did to one shown entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mark {
    /// The old path (`/`-joined) of a renamed entry.
    pub renamed_from: Option<String>,
    /// The stored dtype of an entry the download casts.
    pub cast_from: Option<DType>,
    /// Transplanted from a B file.
    pub added: bool,
    /// Not in the download (shown only with "show removed").
    pub removed: bool,
}

impl Mark {
    pub fn is_change(&self) -> bool {
        self.renamed_from.is_some() || self.cast_from.is_some() || self.added || self.removed
    }
}

/// Entries, values, sources and marks of the shown index (same length: entries, sources,
/// marks).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShownIndex {
    pub entries: Vec<Entry>,
    pub values: Vec<ValueEntry>,
    pub sources: Vec<TensorSource>,
    pub marks: Vec<Mark>,
    /// True for the journal's view.
    pub edited: bool,
    /// Original tensors the download leaves out (whether shown or not).
    pub removed: usize,
}

impl ShownIndex {
    /// The index as read.
    pub fn original(entries: Vec<Entry>, values: Vec<ValueEntry>) -> ShownIndex {
        let n = entries.len();
        ShownIndex {
            sources: (0..n as u32).map(TensorSource::of).collect(),
            marks: vec![Mark::default(); n],
            entries,
            values,
            edited: false,
            removed: 0,
        }
    }

    /// The journal's view of `original` (the opened file's entries).
    pub fn edited(original: &[Entry], j: &JournalReply, show_removed: bool) -> ShownIndex {
        let mut out = ShownIndex {
            values: j.values.clone(),
            edited: true,
            ..ShownIndex::default()
        };
        let mut kept = vec![false; original.len()];
        // storages of B files get ids past A's
        let mut next = storage_ids(original);
        let mut remap: KeyMap<(u32, u32), u32> = KeyMap::new();
        for e in &j.entries {
            let mut entry = e.entry.clone();
            if e.source.input == 0 {
                if let Some(k) = kept.get_mut(e.source.tensor as usize) {
                    *k = true;
                }
            } else if let Some(s) = entry.storage {
                entry.storage = Some(*remap.entry((e.source.input, s)).or_insert_with(|| {
                    next += 1;
                    next - 1
                }));
            }
            out.marks.push(Mark {
                renamed_from: e.renamed_from.as_ref().map(|p| p.join("/")),
                cast_from: e.cast_from,
                added: e.source.input > 0,
                removed: false,
            });
            out.sources.push(e.source);
            out.entries.push(entry);
        }
        for (i, (e, k)) in original.iter().zip(&kept).enumerate() {
            if *k {
                continue;
            }
            out.removed += 1;
            if show_removed {
                out.entries.push(e.clone());
                out.sources.push(TensorSource::of(i as u32));
                out.marks.push(Mark {
                    removed: true,
                    ..Mark::default()
                });
            }
        }
        out
    }
}

/// True for a tensor under an optimizer's state (`optimizer/…`, Lightning's
/// `optimizer_states/0/…`, `optim_state_dict/…`): a path element that starts with `optim`.
pub fn is_optimizer_state(path: &[String]) -> bool {
    path.iter().any(|p| {
        p.as_bytes()
            .get(..5)
            .is_some_and(|b| b.eq_ignore_ascii_case(b"optim"))
    })
}

/// The header's numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub tensors: u64,
    /// Elements, each storage counted once (model and optimizer state together).
    pub params: u64,
    /// Of `params`, those under an optimizer's state.
    pub optimizer: u64,
    /// Bytes, each storage counted once.
    pub bytes: u64,
    /// Elements per dtype (as shown: after a cast).
    pub by_dtype: Vec<(DType, u64)>,
    /// Entries that share their bytes with an entry counted before them.
    pub tied: u64,
    /// Elements of every entry, each view counted (what the index lists).
    pub numel: u64,
}

/// One past the largest storage id of `entries` (0 when none has a storage).
fn storage_ids(entries: &[Entry]) -> u32 {
    entries
        .iter()
        .filter_map(|e| e.storage)
        .max()
        .map_or(0, |m| m + 1)
}

impl Facts {
    /// The numbers of `entries` (their `marks` say which are removed).
    pub fn of(entries: &[Entry], marks: &[Mark]) -> Facts {
        let mut f = Facts::default();
        // per storage (indexed by its index: the reader's storages are numbered from 0): its
        // largest view (elements, bytes, dtype, optimizer state)
        let mut storages: Vec<Option<(u64, u64, DType, bool)>> =
            vec![None; storage_ids(entries) as usize];
        // elements per dtype: a file has a few dtypes (a list beats a map per entry)
        let mut by: Vec<(DType, u64)> = Vec::new();
        let mut add = |f: &mut Facts, numel: u64, bytes: u64, dtype: DType, optim: bool| {
            f.params = f.params.saturating_add(numel);
            f.bytes = f.bytes.saturating_add(bytes);
            if optim {
                f.optimizer = f.optimizer.saturating_add(numel);
            }
            match by.iter_mut().find(|x| x.0 == dtype) {
                Some(x) => x.1 = x.1.saturating_add(numel),
                None => by.push((dtype, numel)),
            }
        };
        for (e, m) in entries.iter().zip(marks) {
            if m.removed {
                continue;
            }
            f.tensors += 1;
            f.numel = f.numel.saturating_add(e.numel);
            let here = (e.numel, e.bytes, e.dtype, is_optimizer_state(&e.path));
            match e.storage {
                None => add(&mut f, here.0, here.1, here.2, here.3),
                Some(st) => match &mut storages[st as usize] {
                    Some(best) => {
                        f.tied += 1;
                        if here.0 > best.0 {
                            *best = here;
                        }
                    }
                    slot @ None => *slot = Some(here),
                },
            }
        }
        for &(n, b, d, o) in storages.iter().flatten() {
            add(&mut f, n, b, d, o);
        }
        crate::order::sort_by_key(&mut by, |x| x.0);
        f.by_dtype = by;
        f
    }
}

/// Wrapper prefixes that training code adds to every key.
const KNOWN_PREFIXES: [&str; 6] = [
    "module.",
    "_orig_mod.",
    "model.",
    "base_model.",
    "backbone.",
    "encoder.",
];

/// Key prefixes the shown tensors carry (their key: the last path element), most common first:
/// known wrapper prefixes any key starts with, and a first dotted part shared by at least half
/// of the keys. At most four.
pub fn prefix_suggestions(entries: &[Entry]) -> Vec<String> {
    let mut counts: KeyMap<&str, usize> = KeyMap::default();
    for e in entries {
        if let Some(key) = e.path.last() {
            if let Some(dot) = key.find('.') {
                *counts.entry(&key[..=dot]).or_insert(0) += 1;
            }
        }
    }
    let mut out: Vec<(usize, &str)> = counts
        .iter()
        .filter(|(p, &n)| KNOWN_PREFIXES.contains(p) || 2 * n >= entries.len())
        .map(|(p, &n)| (n, *p))
        .collect();
    crate::order::sort_by(&mut out, |a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    out.into_iter()
        .take(4)
        .map(|(_, p)| p.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::protocol::EditedEntry;

    fn entry(path: &[&str], numel: u64, storage: u32) -> Entry {
        Entry {
            path: path.iter().map(|s| s.to_string()).collect(),
            dtype: DType::F32,
            shape: vec![numel],
            strides: vec![1],
            storage_offset: 0,
            numel,
            bytes: 4 * numel,
            storage: Some(storage),
        }
    }

    #[test]
    fn tied_weights_count_once_and_optimizer_state_apart() {
        // decoder.weight is the embedding's storage, same view (tied); exp_avg is optimizer state
        let entries = vec![
            entry(&["model", "emb.weight"], 6, 0),
            entry(&["model", "decoder.weight"], 6, 0),
            entry(&["model", "bias"], 2, 1),
            entry(&["optimizer", "state", "0", "exp_avg"], 6, 2),
        ];
        let f = {
            let s = ShownIndex::original(entries, vec![]);
            Facts::of(&s.entries, &s.marks)
        };
        assert_eq!(f.tensors, 4);
        assert_eq!(f.params, 14);
        assert_eq!(f.optimizer, 6);
        assert_eq!(f.bytes, 56);
        assert_eq!(f.tied, 1);
        assert_eq!(f.numel, 20);
        assert_eq!(f.by_dtype, vec![(DType::F32, 14)]);
        // another view of the same storage: the storage counts once, by its largest view
        let mut view = entry(&["model", "half"], 3, 0);
        view.storage_offset = 3;
        let s = ShownIndex::original(vec![view, entry(&["w"], 6, 0)], vec![]);
        let f = Facts::of(&s.entries, &s.marks);
        assert_eq!((f.params, f.tied), (6, 1));
        assert!(is_optimizer_state(&["optimizer_states".into(), "0".into()]));
        assert!(!is_optimizer_state(&["state_dict".into(), "w".into()]));
    }

    #[test]
    fn the_edited_index_marks_renames_casts_transplants_and_removals() {
        let original = vec![
            entry(&["module.a"], 2, 0),
            entry(&["module.b"], 3, 1),
            entry(&["module.c"], 1, 2),
        ];
        let edited = |path: &str, input: u32, tensor: u32, from: Option<&str>| EditedEntry {
            entry: entry(&[path], 2, tensor),
            source: TensorSource {
                input,
                tensor,
                cast: None,
            },
            renamed_from: from.map(|f| vec![f.to_string()]),
            cast_from: None,
        };
        let mut cast = edited("b", 0, 1, Some("module.b"));
        cast.entry.dtype = DType::F16;
        cast.cast_from = Some(DType::F32);
        let j = JournalReply {
            entries: vec![
                edited("a", 0, 0, Some("module.a")),
                cast,
                edited("x", 1, 0, None),
            ],
            ..JournalReply::default()
        };
        let s = ShownIndex::edited(&original, &j, false);
        assert_eq!(s.entries.len(), 3);
        assert_eq!(s.removed, 1);
        assert_eq!(s.marks[0].renamed_from.as_deref(), Some("module.a"));
        assert_eq!(s.marks[1].cast_from, Some(DType::F32));
        assert!(s.marks[2].added);
        // B's storage 0 is not A's storage 0
        assert_eq!(s.entries[2].storage, Some(3));
        assert_eq!(Facts::of(&s.entries, &s.marks).params, 6);
        let s = ShownIndex::edited(&original, &j, true);
        assert_eq!(s.entries.len(), 4);
        assert!(s.marks[3].removed);
        assert_eq!(s.entries[3].path, ["module.c"]);
        assert_eq!(s.sources[3], TensorSource::of(2));
        // removed entries are not counted
        assert_eq!(Facts::of(&s.entries, &s.marks).tensors, 3);
        let o = ShownIndex::original(original, vec![]);
        assert!(o.marks.iter().all(|m| !m.is_change()));
        assert_eq!(o.sources[2], TensorSource::of(2));
    }

    #[test]
    fn suggested_prefixes_are_in_the_file() {
        let e = |k: &str| entry(&[k], 1, 0);
        let dp = vec![e("module.conv.weight"), e("module.fc.bias"), e("head")];
        assert_eq!(prefix_suggestions(&dp), vec!["module."]);
        let compiled = vec![e("_orig_mod.a.w"), e("_orig_mod.b.w"), e("x.y")];
        assert_eq!(prefix_suggestions(&compiled), vec!["_orig_mod."]);
        // nothing shared, no wrapper: nothing suggested (and never `module.` by default)
        let plain = vec![e("conv1.weight"), e("bn1.bias"), e("fc.weight")];
        assert!(prefix_suggestions(&plain).is_empty());
        let hf = vec![
            e("model.layers.0.w"),
            e("model.layers.1.w"),
            e("lm_head.weight"),
        ];
        assert_eq!(prefix_suggestions(&hf), vec!["model."]);
    }
}
