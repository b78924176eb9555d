//! Sharded checkpoints: `model.safetensors.index.json` / `pytorch_model.bin.index.json` plus their
//! shard files (docs/formats.md §7).
//!
//! Contract:
//! - [`read_index`] parses an index (at most [`MAX_INDEX_BYTES`]; real indices of the largest
//!   public models are a few MB) into its `weight_map` in file order and its shard list in order of
//!   first appearance. Shard names must be relative paths without `..` (they are looked up beside
//!   the index).
//! - [`open_sharded`] opens every shard through a caller-supplied function (a dropped-file map in
//!   the browser, the index's folder natively) with [`super::open`] (safetensors or torch, sniffed
//!   from the bytes), and merges them into ONE [`Checkpoint`]: `files` = shard names, each
//!   `StorageInfo::file` = its shard, root = one state dict whose items are each shard's top-level
//!   items, shards in order of first appearance in `weight_map`, each in its own file order.
//!   It returns one source per `files` entry, same order. Only shard headers / pickles are read.
//! - Complexity: linear in the index and the shards' entries (duplicate names and shard lists
//!   through hash maps, per-shard tensor lists grouped once).
//! - Errors: a shard that cannot be opened, or a tensor the index puts in a shard that does not
//!   hold it, is a [`FormatError`] naming the index, the shard and the tensor. A tensor a shard
//!   holds but the index does not list is kept and reported in `notes`, as are differing
//!   `__metadata__` values between shards and the index's own `metadata` (informational).
//! - `format` is `SafetensorsSharded` when every shard is safetensors, else `TorchSharded`.
//! - [`open_path`] (native): open a path that is either a single checkpoint or an index.

use super::checkpoint::{Checkpoint, DictKind, Key, Node, SafetyReport};
use super::detect::Format;
use super::error::{FormatError, Result};
use super::json::{self, Json};
use super::source::Source;
use crate::format::fastmap::{KeyMap, KeySet};

/// Largest index file accepted: 25 MiB. The index of a 671B-parameter model with ~90k tensors is
/// under 10 MB; a larger "index" is almost certainly not one, and parsing it would cost memory
/// in the browser worker.
pub const MAX_INDEX_BYTES: u64 = 25 << 20;

/// A parsed sharded-checkpoint index.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardIndex {
    /// tensor name → shard file name, in file order.
    pub weight_map: Vec<(String, String)>,
    /// Distinct shard file names, in order of first appearance in `weight_map`.
    pub shards: Vec<String>,
    /// The index's `metadata` object (e.g. `total_size`), values as JSON text (strings unquoted).
    pub metadata: Vec<(String, String)>,
}

/// Parse an index file named `name` (errors carry it as their file).
pub fn read_index(src: &dyn Source, name: &str) -> Result<ShardIndex> {
    read_index_inner(src).map_err(|e| e.in_file(name))
}

fn read_index_inner(src: &dyn Source) -> Result<ShardIndex> {
    let len = src.len();
    if len > MAX_INDEX_BYTES {
        return Err(FormatError::new(format!(
            "index file is {len} bytes, more than the {MAX_INDEX_BYTES}-byte limit for sharded-checkpoint indices"
        )));
    }
    let bytes = src.read_vec(0, len as usize)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        FormatError::new(format!(
            "index is not valid UTF-8 (byte {})",
            e.valid_up_to()
        ))
    })?;
    let root =
        json::parse(text).map_err(|e| FormatError::new(format!("invalid JSON in index: {e}")))?;
    let Json::Object(members) = root else {
        return Err(FormatError::new(format!(
            "an index must be a JSON object with a weight_map, found {}",
            root.kind()
        )));
    };
    let (mut weight_map, mut metadata) = (None, None);
    for (k, v) in members {
        let slot = match k.as_str() {
            "weight_map" => &mut weight_map,
            "metadata" => &mut metadata,
            _ => continue,
        };
        if slot.is_some() {
            return Err(FormatError::new(format!("duplicate '{k}' in index")));
        }
        *slot = Some(v);
    }
    let members = match weight_map {
        Some(Json::Object(m)) => m,
        Some(other) => {
            return Err(FormatError::at(
                "weight_map",
                format!(
                    "must be an object of tensor name → shard file, found {}",
                    other.kind()
                ),
            ))
        }
        None => return Err(FormatError::new("index has no weight_map")),
    };
    let mut seen: KeyMap<&str, ()> = KeyMap::with_capacity(members.len());
    let mut shards: Vec<String> = Vec::new();
    let mut shard_seen: KeySet<&str> = KeySet::new();
    let mut map = Vec::with_capacity(members.len());
    for (tensor, v) in &members {
        let place = || format!("weight_map: tensor '{tensor}'");
        if seen.insert(tensor, ()).is_some() {
            return Err(FormatError::at(place(), "listed more than once"));
        }
        let Json::Str(file) = v else {
            return Err(FormatError::at(
                place(),
                format!("shard file name must be a string, found {}", v.kind()),
            ));
        };
        check_shard_name(file).map_err(|m| FormatError::at(place(), m))?;
        if shard_seen.insert(file) {
            shards.push(file.clone()); // O(1) per entry: the index is read in linear time
        }
        map.push((tensor.clone(), file.clone()));
    }
    let metadata = match metadata {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Json::Str(s) => (k, s),
                other => (k, other.to_text()),
            })
            .collect(),
        Some(other) => {
            return Err(FormatError::at(
                "metadata",
                format!("must be an object, found {}", other.kind()),
            ))
        }
    };
    Ok(ShardIndex {
        weight_map: map,
        shards,
        metadata,
    })
}

/// Shard names are looked up beside the index: refuse anything that could escape its folder.
fn check_shard_name(f: &str) -> std::result::Result<(), String> {
    let bad = f.is_empty()
        || f.starts_with('/')
        || f.contains('\\')
        || f.contains('\0')
        || f.contains(':')
        || f.split('/').any(|c| c == ".." || c == "." || c.is_empty());
    if bad {
        return Err(format!(
            "shard file name {f:?} is not a plain file name relative to the index's folder"
        ));
    }
    Ok(())
}

/// Gives the source of a shard file named as in the index (relative to the index's folder).
pub type ShardOpener<'a> = dyn FnMut(&str) -> Result<Box<dyn Source>> + 'a;

/// A checkpoint and one source per [`Checkpoint::files`] entry, same order.
pub type WithSources = (Checkpoint, Vec<Box<dyn Source>>);

/// Open a sharded checkpoint from its index. `shard(name)` returns the source of a shard file
/// named as in the index's `weight_map` (relative to the index). Returns the merged checkpoint
/// and one source per `Checkpoint::files` entry.
pub fn open_sharded(
    index: &dyn Source,
    index_name: &str,
    shard: &mut ShardOpener<'_>,
) -> Result<WithSources> {
    let idx = read_index(index, index_name)?;
    let mut sources: Vec<Box<dyn Source>> = Vec::with_capacity(idx.shards.len());
    let mut parts = Vec::with_capacity(idx.shards.len());
    // first tensor and tensor count per shard, in one pass (linear in the weight_map)
    let mut per_shard: KeyMap<&str, (&str, usize)> = KeyMap::new();
    for (t, f) in &idx.weight_map {
        per_shard.entry(f.as_str()).or_insert((t.as_str(), 0)).1 += 1;
    }
    for file in &idx.shards {
        let (first, count) = per_shard
            .get(file.as_str())
            .map(|&(t, n)| (t.to_string(), n))
            .unwrap_or_default();
        let src = shard(file).map_err(|e| {
            let others = if count > 1 {
                format!(" and {} other tensors", count - 1)
            } else {
                String::new()
            };
            FormatError::at(
                format!("shard '{file}'"),
                format!(
                    "cannot open the shard that the index lists for tensor '{first}'{others}: {e}"
                ),
            )
            .in_file(index_name)
        })?;
        let ck = super::open(src.as_ref(), file)?;
        sources.push(src);
        parts.push(ck);
    }
    let ck = merge(&idx, parts, index_name)?;
    Ok((ck, sources))
}

/// Merge opened shards (`parts[i]` is `idx.shards[i]`).
fn merge(idx: &ShardIndex, parts: Vec<Checkpoint>, index_name: &str) -> Result<Checkpoint> {
    let shard_no: KeyMap<&str, usize> = idx
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let owner: KeyMap<&str, usize> = idx
        .weight_map
        .iter()
        .map(|(t, f)| (t.as_str(), shard_no[f.as_str()]))
        .collect();
    let all_safetensors = parts.iter().all(|p| p.format == Format::Safetensors);
    let mut out = Checkpoint {
        format: if all_safetensors {
            Format::SafetensorsSharded
        } else {
            Format::TorchSharded
        },
        root: Node::None,
        tensors: Vec::new(),
        storages: Vec::new(),
        safety: SafetyReport::default(),
        metadata: Vec::new(),
        files: idx.shards.clone(),
        notes: Vec::new(),
    };
    if idx.shards.is_empty() {
        out.notes.push("the index's weight_map is empty".into());
    }
    let mut items: Vec<(Key, Node)> = Vec::new();
    let mut taken: KeyMap<String, usize> = KeyMap::new(); // name → shard that supplied it
    let mut meta_from: Vec<usize> = Vec::new();
    // the tensors the index puts in each shard, grouped once (linear in the weight_map)
    let mut listed: Vec<Vec<&str>> = vec![Vec::new(); idx.shards.len()];
    for (t, f) in &idx.weight_map {
        listed[shard_no[f.as_str()]].push(t.as_str());
    }
    for (si, part) in parts.into_iter().enumerate() {
        let file = &idx.shards[si];
        let mut part = part;
        let shard_items = state_dict_items(&mut part, file)?;
        check_listed(&listed[si], &shard_items, file, index_name)?;
        let mut tmap: KeyMap<usize, usize> = KeyMap::new();
        let mut smap: KeyMap<usize, usize> = KeyMap::new();
        for (key, node) in shard_items {
            let name = key.segment();
            let (keep, note) = claim(idx, &owner, &taken, &name, si);
            out.notes.extend(note);
            if !keep {
                continue;
            }
            taken.insert(name, si);
            let mut node = node;
            remap(
                &mut node,
                &part.tensors,
                &part.storages,
                si,
                &mut out,
                &mut tmap,
                &mut smap,
            );
            items.push((key, node));
        }
        for g in part.safety.globals {
            out.safety.add(g);
        }
        merge_metadata(&mut out, &mut meta_from, part.metadata, idx, si);
        out.notes
            .extend(part.notes.into_iter().map(|n| format!("{file}: {n}")));
    }
    index_notes(idx, &mut out);
    out.root = Node::Dict {
        kind: DictKind::Dict,
        items,
        attrs: Vec::new(),
        state_dict: true,
    };
    Ok(out)
}

/// The items of a shard's root dict (taken out of it); a shard must hold a state dict.
fn state_dict_items(part: &mut Checkpoint, file: &str) -> Result<Vec<(Key, Node)>> {
    match &mut part.root {
        Node::Dict { items, .. } => Ok(std::mem::take(items)),
        _ => Err(FormatError::new(
            "a shard must hold a dict of tensors (a state dict) at its root",
        )
        .in_file(file)),
    }
}

/// Every tensor the index puts in shard `file` (`listed`) must be among its `items`.
fn check_listed(
    listed: &[&str],
    items: &[(Key, Node)],
    file: &str,
    index_name: &str,
) -> Result<()> {
    let present: KeySet<String> = items.iter().map(|(k, _)| k.segment()).collect();
    match listed.iter().find(|t| !present.contains(**t)) {
        None => Ok(()),
        Some(t) => Err(FormatError::at(
            format!("tensor '{t}'"),
            format!(
                "the index lists this tensor in shard '{file}', but that shard does not contain it"
            ),
        )
        .in_file(index_name)),
    }
}

/// Whether shard `si`'s tensor `name` goes into the merged checkpoint — the copy in the shard
/// the index assigns it to; a tensor the index does not list, from the first shard that has it
/// (`taken`: name → shard that supplied it) — and the note to make about it.
fn claim(
    idx: &ShardIndex,
    owner: &KeyMap<&str, usize>,
    taken: &KeyMap<String, usize>,
    name: &str,
    si: usize,
) -> (bool, Option<String>) {
    let file = &idx.shards[si];
    match owner.get(name) {
        Some(&o) if o == si => (true, None),
        Some(&o) => (
            false,
            Some(format!(
                "tensor '{name}' is also in shard '{file}', but the index assigns it to '{}'; that copy is used",
                idx.shards[o]
            )),
        ),
        None => match taken.get(name) {
            Some(&prev) => (
                false,
                Some(format!(
                    "tensor '{name}' is in shard '{file}' and in shard '{}' but not in the index; the first is used",
                    idx.shards[prev]
                )),
            ),
            None => (
                true,
                Some(format!(
                    "tensor '{name}' is in shard '{file}' but not in the index"
                )),
            ),
        },
    }
}

/// Add shard `si`'s `__metadata__` to `out`'s: the first value of a key is kept, a different
/// later one noted (`meta_from[i]`: the shard that gave `out.metadata[i]`).
fn merge_metadata(
    out: &mut Checkpoint,
    meta_from: &mut Vec<usize>,
    metadata: Vec<(String, String)>,
    idx: &ShardIndex,
    si: usize,
) {
    let file = &idx.shards[si];
    for (k, v) in metadata {
        match out.metadata.iter().position(|(o, _)| *o == k) {
            None => {
                out.metadata.push((k, v));
                meta_from.push(si);
            }
            Some(p) if out.metadata[p].1 != v => out.notes.push(format!(
                "__metadata__ '{k}' differs between shards: '{}' in '{}' (kept), '{v}' in '{file}'",
                out.metadata[p].1, idx.shards[meta_from[p]]
            )),
            Some(_) => {}
        }
    }
}

/// The index's own metadata as notes, and whether its `total_size` matches the shards' bytes.
fn index_notes(idx: &ShardIndex, out: &mut Checkpoint) {
    for (k, v) in &idx.metadata {
        out.notes.push(format!("index metadata {k} = {v}"));
    }
    if let Some((_, v)) = idx.metadata.iter().find(|(k, _)| k == "total_size") {
        let sum: u64 = out.storages.iter().map(|s| s.nbytes).sum();
        if v.parse::<u64>().ok() != Some(sum) {
            out.notes.push(format!(
                "the index's total_size ({v}) differs from the shards' storage bytes ({sum}); informational only"
            ));
        }
    }
}

/// Copy a shard's node's tensors into the merged checkpoint and renumber them and their
/// storages in place (shared tensors / storages within a shard stay shared).
fn remap(
    node: &mut Node,
    tensors: &[super::checkpoint::TensorInfo],
    storages: &[super::checkpoint::StorageInfo],
    shard: usize,
    out: &mut Checkpoint,
    tmap: &mut KeyMap<usize, usize>,
    smap: &mut KeyMap<usize, usize>,
) {
    if let Node::Tensor { index } = node {
        if let Some(&i) = tmap.get(index) {
            *index = i;
            return;
        }
        let mut t = tensors[*index].clone();
        t.storage = t.storage.map(|s| {
            *smap.entry(s).or_insert_with(|| {
                let mut st = storages[s].clone();
                st.file = shard;
                out.storages.push(st);
                out.storages.len() - 1
            })
        });
        out.tensors.push(t);
        let i = out.tensors.len() - 1;
        tmap.insert(*index, i);
        *index = i;
        return;
    }
    node.for_each_child_mut(&mut |c| remap(c, tensors, storages, shard, out, tmap, smap));
}

/// Open a checkpoint from a native path: a single file (any format [`super::open`] reads), or a
/// sharded-checkpoint index whose shards are found beside it. Errors name the path as given.
#[cfg(not(target_arch = "wasm32"))]
pub fn open_path(path: &std::path::Path) -> Result<WithSources> {
    use super::source::FileSource;
    let name = path.to_string_lossy().into_owned();
    let src = FileSource::open(path).map_err(|e| FormatError::new(e.0).in_file(&name))?;
    let fmt = super::detect_source(&src).map_err(|e| FormatError::from(e).in_file(&name))?;
    match fmt {
        Format::SafetensorsSharded | Format::TorchSharded => {
            let dir = path.parent().unwrap_or(std::path::Path::new(""));
            open_sharded(&src, &name, &mut |shard| {
                FileSource::open(&dir.join(shard))
                    .map(|s| Box::new(s) as Box<dyn Source>)
                    .map_err(|e| FormatError::new(e.0))
            })
        }
        _ => {
            let ck = super::open(&src, &name)?;
            Ok((ck, vec![Box::new(src)]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::data::{read_tensor_vec, Counting};
    use crate::format::source::MemSource;
    use std::collections::BTreeMap;

    /// A safetensors file of U8 tensors `(name, bytes)`, laid out in the given order.
    fn st(tensors: &[(&str, &[u8])], meta: &str) -> Vec<u8> {
        let mut h = format!(r#"{{"__metadata__":{{{meta}}}"#);
        let mut off = 0;
        let mut data = Vec::new();
        for (n, b) in tensors {
            h += &format!(
                r#","{n}":{{"dtype":"U8","shape":[{}],"data_offsets":[{off},{}]}}"#,
                b.len(),
                off + b.len()
            );
            off += b.len();
            data.extend_from_slice(b);
        }
        h.push('}');
        let mut v = (h.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(h.as_bytes());
        v.extend(data);
        v
    }

    fn index(map: &[(&str, &str)]) -> MemSource {
        let items: Vec<String> = map
            .iter()
            .map(|(t, f)| format!(r#""{t}": "{f}""#))
            .collect();
        MemSource(
            format!(
                "{{\n  \"metadata\": {{\"total_size\": 6}},\n  \"weight_map\": {{{}}}\n}}",
                items.join(", ")
            )
            .into_bytes(),
        )
    }

    fn open_with(idx: &MemSource, files: &BTreeMap<&str, Vec<u8>>) -> Result<WithSources> {
        open_sharded(idx, "model.safetensors.index.json", &mut |name| {
            files
                .get(name)
                .map(|b| Box::new(MemSource(b.clone())) as Box<dyn Source>)
                .ok_or_else(|| FormatError::new("no such file was dropped"))
        })
    }

    fn two_shards() -> BTreeMap<&'static str, Vec<u8>> {
        let mut files = BTreeMap::new();
        files.insert(
            "m-1.safetensors",
            st(&[("b", &[1, 2]), ("a", &[3])], r#""format":"pt""#),
        );
        files.insert(
            "m-2.safetensors",
            st(&[("d", &[4, 5]), ("c", &[6])], r#""format":"pt""#),
        );
        files
    }

    #[test]
    fn merges_shards_in_index_order() {
        // shard 2 appears first in the weight_map
        let idx = index(&[
            ("c", "m-2.safetensors"),
            ("a", "m-1.safetensors"),
            ("b", "m-1.safetensors"),
            ("d", "m-2.safetensors"),
        ]);
        let files = two_shards();
        let (ck, srcs) = open_with(&idx, &files).unwrap();
        assert_eq!(ck.format, Format::SafetensorsSharded);
        assert_eq!(ck.files, ["m-2.safetensors", "m-1.safetensors"]);
        assert_eq!(srcs.len(), 2);
        let names: Vec<_> = ck.tensors.iter().map(|t| t.path_string()).collect();
        assert_eq!(names, ["d", "c", "b", "a"]);
        let files_of: Vec<_> = ck
            .tensors
            .iter()
            .map(|t| ck.storages[t.storage.unwrap()].file)
            .collect();
        assert_eq!(files_of, [0, 0, 1, 1]);
        assert_eq!(ck.metadata, vec![("format".into(), "pt".into())]);
        let Node::Dict {
            items, state_dict, ..
        } = &ck.root
        else {
            panic!()
        };
        assert!(state_dict);
        assert_eq!(items.len(), 4);
        assert_eq!(items[2], (Key::Str("b".into()), Node::Tensor { index: 2 }));
        assert!(
            ck.notes
                .iter()
                .any(|n| n == "index metadata total_size = 6"),
            "{:?}",
            ck.notes
        );
        assert!(!has_note(&ck, "differs"), "{:?}", ck.notes);
        let refs: Vec<&dyn Source> = srcs.iter().map(|s| s.as_ref()).collect();
        let want: [&[u8]; 4] = [&[4, 5], &[6], &[1, 2], &[3]];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(read_tensor_vec(&ck, &refs, i).unwrap(), *w);
        }
    }

    #[test]
    fn missing_shard_names_shard_and_tensor() {
        let idx = index(&[("a", "m-1.safetensors"), ("x", "m-3.safetensors")]);
        let err = open_with(&idx, &two_shards()).err().unwrap().to_string();
        assert!(
            err.starts_with("model.safetensors.index.json: shard 'm-3.safetensors': "),
            "{err}"
        );
        assert!(
            err.contains("tensor 'x'") && err.contains("no such file was dropped"),
            "{err}"
        );
    }

    #[test]
    fn tensor_missing_from_its_shard_is_an_error() {
        let idx = index(&[
            ("a", "m-1.safetensors"),
            ("b", "m-1.safetensors"),
            ("zz", "m-1.safetensors"),
        ]);
        let err = open_with(&idx, &two_shards()).err().unwrap().to_string();
        assert!(
            err.contains("tensor 'zz'") && err.contains("shard 'm-1.safetensors'"),
            "{err}"
        );
        assert!(err.contains("does not contain it"), "{err}");
    }

    #[test]
    fn unlisted_tensor_is_a_note_and_kept() {
        let idx = index(&[("a", "m-1.safetensors"), ("c", "m-2.safetensors")]);
        let (ck, _) = open_with(&idx, &two_shards()).unwrap();
        assert_eq!(ck.tensors.len(), 4);
        assert!(ck
            .notes
            .iter()
            .any(|n| n == "tensor 'b' is in shard 'm-1.safetensors' but not in the index"));
        assert!(has_note(&ck, "tensor 'd'"), "{:?}", ck.notes);
    }

    #[test]
    fn tensor_in_two_shards_uses_the_indexed_one() {
        let mut files = two_shards();
        files.insert(
            "m-2.safetensors",
            st(&[("a", &[9, 9, 9])], r#""format":"np""#),
        );
        let idx = index(&[
            ("b", "m-1.safetensors"),
            ("a", "m-1.safetensors"),
            ("q", "m-1.safetensors"),
        ]);
        // q is not in m-1: error first
        assert!(open_with(&idx, &files).is_err());
        let idx = index(&[("b", "m-1.safetensors"), ("a", "m-2.safetensors")]);
        let (ck, srcs) = open_with(&idx, &files).unwrap();
        let names: Vec<_> = ck.tensors.iter().map(|t| t.path_string()).collect();
        assert_eq!(names, ["b", "a"]);
        let refs: Vec<&dyn Source> = srcs.iter().map(|s| s.as_ref()).collect();
        assert_eq!(read_tensor_vec(&ck, &refs, 1).unwrap(), [9, 9, 9]);
        assert!(
            has_note(&ck, "assigns it to 'm-2.safetensors'"),
            "{:?}",
            ck.notes
        );
        assert!(
            has_note(&ck, "__metadata__ 'format' differs"),
            "{:?}",
            ck.notes
        );
    }

    /// Whether one of the checkpoint's notes contains `fragment`.
    fn has_note(ck: &Checkpoint, fragment: &str) -> bool {
        ck.notes.iter().any(|n| n.contains(fragment))
    }

    #[test]
    fn opening_reads_only_the_index_and_shard_headers() {
        let big = vec![7u8; 1 << 20];
        let mut files = BTreeMap::new();
        files.insert("m-1.safetensors", st(&[("a", &big), ("b", &big)], ""));
        files.insert("m-2.safetensors", st(&[("c", &big)], ""));
        let idx = index(&[
            ("a", "m-1.safetensors"),
            ("b", "m-1.safetensors"),
            ("c", "m-2.safetensors"),
        ]);
        let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let (ck, _) = open_sharded(&idx, "i.json", &mut |name| {
            let bytes = files[name].clone();
            Ok(Box::new(Counting(MemSource(bytes), read.clone())) as Box<dyn Source>)
        })
        .unwrap();
        assert_eq!(ck.tensors.len(), 3);
        // per shard: the 512-byte format sniff, then 8 + N
        let header = |f: &str| u64::from_le_bytes(files[f][..8].try_into().unwrap());
        let want = 2 * (512 + 8) + header("m-1.safetensors") + header("m-2.safetensors");
        assert_eq!(read.get(), want);
    }

    #[test]
    fn index_rules() {
        let bad = |text: &str, frag: &str| {
            let err = read_index(&MemSource(text.as_bytes().to_vec()), "i.json")
                .unwrap_err()
                .to_string();
            assert!(err.contains(frag), "{err} lacks {frag}");
            assert!(err.starts_with("i.json: "), "{err}");
        };
        bad("[]", "must be a JSON object");
        bad("{", "invalid JSON in index");
        bad(r#"{"metadata":{}}"#, "no weight_map");
        bad(r#"{"weight_map":[]}"#, "weight_map");
        bad(
            r#"{"weight_map":{"a":"x","a":"y"}}"#,
            "tensor 'a': listed more than once",
        );
        bad(r#"{"weight_map":{"a":1}}"#, "must be a string");
        bad(
            r#"{"weight_map":{"a":"../x.safetensors"}}"#,
            "not a plain file name",
        );
        bad(r#"{"weight_map":{"a":"/etc/x"}}"#, "not a plain file name");
        bad(
            r#"{"weight_map":{},"weight_map":{}}"#,
            "duplicate 'weight_map'",
        );
        let big = MemSource(vec![b' '; MAX_INDEX_BYTES as usize + 1]);
        assert!(read_index(&big, "i.json")
            .unwrap_err()
            .to_string()
            .contains("limit"));
        let ok = read_index(
            &MemSource(br#"{"metadata":{"total_size":12,"x":"y"},"weight_map":{"b":"s/2.bin","a":"1.bin","c":"s/2.bin"},"extra":1}"#.to_vec()),
            "i.json",
        )
        .unwrap();
        assert_eq!(ok.shards, ["s/2.bin", "1.bin"]);
        assert_eq!(ok.weight_map[1], ("a".to_string(), "1.bin".to_string()));
        assert_eq!(
            ok.metadata,
            vec![("total_size".into(), "12".into()), ("x".into(), "y".into())]
        );
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn open_path_handles_single_files_and_indices() {
        let dir = std::env::temp_dir().join(format!("ws-sharded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (n, b) in two_shards() {
            std::fs::write(dir.join(n), b).unwrap();
        }
        let idx = r#"{"metadata": {"total_size": 6}, "weight_map": {"a": "m-1.safetensors", "b": "m-1.safetensors", "c": "m-2.safetensors", "d": "m-2.safetensors"}}"#;
        std::fs::write(dir.join("model.safetensors.index.json"), idx).unwrap();
        let (ck, srcs) = open_path(&dir.join("model.safetensors.index.json")).unwrap();
        assert_eq!(ck.format, Format::SafetensorsSharded);
        assert_eq!(ck.tensors.len(), 4);
        assert_eq!(srcs.len(), 2);
        let (ck, srcs) = open_path(&dir.join("m-2.safetensors")).unwrap();
        assert_eq!(ck.format, Format::Safetensors);
        assert_eq!(srcs.len(), 1);
        std::fs::remove_file(dir.join("m-2.safetensors")).unwrap();
        let err = open_path(&dir.join("model.safetensors.index.json"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("shard 'm-2.safetensors'") && err.contains("tensor 'c'"),
            "{err}"
        );
        let err = open_path(&dir.join("nope.safetensors"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("nope.safetensors"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
