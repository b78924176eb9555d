//! The layer tree's model (no browser types: tested natively).
//!
//! Contract: [`Tree::build`] turns the worker's index (tensor [`Entry`]s and non-tensor
//! [`ValueEntry`]s) into folders: each path element is a container level, and within an element
//! the dotted segments of a key are nested folders (`state_dict` › `encoder` › `layers` › `0` ›
//! `weight`). Leaves are never merged (a key may also be a folder's name). Every node carries
//! the number of tensors, parameters and bytes below it. Children are kept in two orders:
//! natural ([`natural_cmp`]: `layers.2` before `layers.10`) and file order (tensors in index
//! order, values where they appear among them). [`Tree::rows`] flattens the expanded part (or,
//! with a [`Filter`], every matching leaf with all its ancestors expanded, plus where the match
//! lies in the leaf's full path) for a virtualized list.

use crate::format::fastmap::{KeyMap, KeySet};
use crate::worker::protocol::{Entry, ValueEntry};

/// Node id (index into [`Tree::nodes`]); 0 is the hidden root.
pub type NodeId = u32;

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Folder,
    /// Index into the entries.
    Tensor(u32),
    /// Index into the values.
    Value(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TreeNode {
    pub kind: NodeKind,
    pub parent: Option<NodeId>,
    /// 0 for the root's children.
    pub depth: u32,
    pub tensors: u64,
    pub params: u64,
    pub bytes: u64,
    /// File-order key of the node's first leaf.
    pub order: u64,
    /// Byte ranges of its path and label in [`Tree::text`] ([`Tree::path`], [`Tree::label`]).
    path: (u32, u32),
    label: (u32, u32),
    /// Its children in file order: a range of [`Tree::kids`].
    kids: (u32, u32),
    /// Where its children in natural order start in [`Tree::kids_natural`] (same length), when
    /// that differs from file order.
    natural: Option<u32>,
}

impl TreeNode {
    /// A node without totals, text or children yet ([`Tree::build`] fills them in).
    fn new(kind: NodeKind, parent: Option<NodeId>, depth: u32, order: u64) -> TreeNode {
        TreeNode {
            kind,
            parent,
            depth,
            tensors: 0,
            params: 0,
            bytes: 0,
            order,
            path: (0, 0),
            label: (0, 0),
            kids: (0, 0),
            natural: None,
        }
    }
}

/// The built tree. Its text and child lists live in three buffers (a 50,000-key tree is
/// ≈ 100,000 nodes: two strings and a child vector each cost a first open ≈ 40 ms).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tree {
    pub nodes: Vec<TreeNode>,
    /// Node of each tensor entry.
    pub tensor_node: Vec<NodeId>,
    /// Every node's path and label.
    text: String,
    kids: Vec<NodeId>,
    kids_natural: Vec<NodeId>,
}

/// Sibling order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Natural,
    File,
}

/// One visible row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub node: NodeId,
    pub depth: u32,
    pub has_children: bool,
    pub expanded: bool,
    /// Byte range of the search match within the node's label.
    pub mark: Option<(usize, usize)>,
}

/// Match ranges within labels, indexed by node (a vector: filled for every key per keystroke).
type Marks = [Option<(usize, usize)>];

/// A search: a substring (ASCII letters in either case, [`find_ignoring_ascii_case`]), or the
/// worker's answer to a regex search of this tree's paths ([`Tree::search_paths`],
/// [`crate::edit::search`]: the page carries no regex engine).
#[derive(Debug, Clone)]
pub enum Filter {
    Substring(String),
    /// Per node id: the byte range of the first match in its path.
    Matches(std::sync::Arc<[Option<(u32, u32)>]>),
}

/// Equal when the same substring or the same answer (by identity: answers are large).
impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        match (self, other) {
            (Filter::Substring(a), Filter::Substring(b)) => a == b,
            (Filter::Matches(a), Filter::Matches(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Filter {
    /// The substring filter of `query` (trimmed); `None` for an empty query.
    pub fn substring(query: &str) -> Option<Filter> {
        let q = query.trim();
        (!q.is_empty()).then(|| Filter::Substring(q.to_string()))
    }

    /// The filter of a regex search's answer over a tree of `nodes` nodes (`matches`:
    /// `(node id, start, end)`, as [`crate::edit::search::find_all`] gives them).
    pub fn matches(nodes: usize, matches: &[(u32, u32, u32)]) -> Filter {
        let mut at = vec![None; nodes];
        for &(n, a, b) in matches {
            if let Some(slot) = at.get_mut(n as usize) {
                *slot = Some((a, b));
            }
        }
        Filter::Matches(at.into())
    }

    /// Byte range of the first match in node `n`'s path `s`.
    pub fn find(&self, n: NodeId, s: &str) -> Option<(usize, usize)> {
        match self {
            Filter::Matches(at) => at
                .get(n as usize)
                .copied()
                .flatten()
                .map(|(a, b)| (a as usize, b as usize)),
            Filter::Substring(q) => find_ignoring_ascii_case(s, q),
        }
    }
}

/// Byte range of the first occurrence of `needle` in `hay`, ASCII letters in either case, every
/// other character as it is (no copy per key: searches run for every key on every keystroke;
/// no Unicode case tables in the page). A match begins and ends on character boundaries: UTF-8
/// lead and continuation bytes only ever match themselves.
pub fn find_ignoring_ascii_case(hay: &str, needle: &str) -> Option<(usize, usize)> {
    let q = needle.as_bytes();
    if q.is_empty() || q.len() > hay.len() {
        return q.is_empty().then_some((0, 0));
    }
    hay.as_bytes()
        .windows(q.len())
        .position(|w| w.eq_ignore_ascii_case(q))
        .map(|a| (a, a + q.len()))
}

pub use crate::stats::trend::natural_cmp;

/// Most folders above a leaf: deeper dotted keys keep the rest of their path in the leaf's
/// label, so building is linear in the total key length times at most this, and every later
/// walk of the tree recurses at most this deep.
pub const MAX_FOLDER_DEPTH: usize = 256;

impl Tree {
    /// Build from the index.
    pub fn build(entries: &[Entry], values: &[ValueEntry]) -> Tree {
        let mut t = Tree {
            nodes: vec![TreeNode::new(NodeKind::Folder, None, 0, 0)],
            tensor_node: Vec::with_capacity(entries.len()),
            ..Tree::default()
        };
        // one node per leaf, plus the folders (often as many: `layers.N.weight`)
        t.nodes.reserve(2 * (entries.len() + values.len()) + 1);
        // (parent, part follows an element boundary, part) → folder; the parts borrow from the
        // entries' paths, so finding a folder allocates nothing
        let mut folders: KeyMap<(NodeId, bool, &str), NodeId> = KeyMap::default();
        // leaves in file order: values go before the tensor they precede
        let mut leaves: Vec<(u64, NodeKind, &[String])> =
            Vec::with_capacity(entries.len() + values.len());
        for (i, e) in entries.iter().enumerate() {
            leaves.push((2 * i as u64 + 1, NodeKind::Tensor(i as u32), &e.path));
        }
        for (i, v) in values.iter().enumerate() {
            leaves.push((2 * v.after as u64, NodeKind::Value(i as u32), &v.path));
        }
        crate::order::sort_by_key(&mut leaves, |l| l.0);
        // the folders of the previous leaf, outermost first: (folder key, folder)
        let mut recent: Vec<((NodeId, bool, &str), NodeId)> = Vec::new();
        for (order, kind, path) in leaves {
            let (numel, bytes) = match kind {
                NodeKind::Tensor(i) => (entries[i as usize].numel, entries[i as usize].bytes),
                _ => (0, 0),
            };
            // folders: every element but the last, split at dots; then the last's dotted
            // parts but the final one
            let mut parent: NodeId = 0;
            let last = path.len().saturating_sub(1);
            // the leaf's label: the length of its path's suffix
            let mut label_len = 0usize;
            let mut folders_made = 0usize;
            'elems: for (ei, elem) in path.iter().enumerate() {
                let mut rest_of_elem: &str = elem;
                for pi in 0.. {
                    let (part, more) = match rest_of_elem.split_once('.') {
                        Some((part, more)) => (part, Some(more)),
                        None => (rest_of_elem, None),
                    };
                    if ei == last && more.is_none() {
                        label_len = part.len();
                        break;
                    }
                    if folders_made == MAX_FOLDER_DEPTH {
                        // the rest of the path is the leaf's label (bounded depth and work)
                        label_len = rest_of_elem.len()
                            + path[ei + 1..].iter().map(|r| 1 + r.len()).sum::<usize>();
                        break 'elems;
                    }
                    let level = folders_made;
                    folders_made += 1;
                    // the folder key distinguishes an element boundary from a dot
                    let key = (parent, pi == 0, part);
                    // the previous leaf's folder at this level, when it is the same one (keys
                    // in file order share most of their folders: no hashing for those)
                    if let Some(&(_, id)) = recent.get(level).filter(|(k, _)| *k == key) {
                        parent = id;
                    } else {
                        recent.truncate(level);
                        parent = match folders.get(&key) {
                            Some(&id) => id,
                            None => {
                                // its path: the parent's, then `/` (element) or `.` (dotted
                                // part), then its label
                                let (a, b) = t.nodes[parent as usize].path;
                                let start = t.text.len();
                                if a < b {
                                    t.text.extend_from_within(a as usize..b as usize);
                                    t.text.push(if pi == 0 { '/' } else { '.' });
                                }
                                let label_at = t.text.len();
                                t.text.push_str(part);
                                let id = t.push(parent, NodeKind::Folder, order);
                                let end = t.text.len();
                                t.nodes[id as usize].path = (start as u32, end as u32);
                                t.nodes[id as usize].label = (label_at as u32, end as u32);
                                folders.insert(key, id);
                                id
                            }
                        };
                        recent.push((key, parent));
                    }
                    match more {
                        Some(m) => rest_of_elem = m,
                        None => break,
                    }
                }
            }
            let is_tensor = matches!(kind, NodeKind::Tensor(_));
            let id = t.push(parent, kind, order);
            // its path: the elements joined by `/` (as `inspect --json`)
            let start = t.text.len();
            for (i, elem) in path.iter().enumerate() {
                if i > 0 {
                    t.text.push('/');
                }
                t.text.push_str(elem);
            }
            let end = t.text.len();
            let label = if path.is_empty() {
                t.text.push_str("(root)");
                (end as u32, t.text.len() as u32)
            } else {
                ((end - label_len) as u32, end as u32)
            };
            let node = &mut t.nodes[id as usize];
            node.path = (start as u32, end as u32);
            node.label = label;
            if is_tensor {
                node.tensors = 1;
                node.params = numel;
                node.bytes = bytes;
                t.tensor_node.push(id);
            }
        }
        // every folder's totals: a node's id is larger than its parent's (nodes are pushed
        // under existing ones), so one pass from the last node adds each into its parent
        for n in (1..t.nodes.len()).rev() {
            let (tensors, params, bytes, parent) = {
                let x = &t.nodes[n];
                (x.tensors, x.params, x.bytes, x.parent)
            };
            if let Some(p) = parent {
                let p = &mut t.nodes[p as usize];
                p.tensors += tensors;
                p.params = p.params.saturating_add(params);
                p.bytes = p.bytes.saturating_add(bytes);
            }
        }
        // children in file order: each parent's children are the nodes pushed under it, in id
        // order; one counting pass lays them out in `kids`
        let mut at = vec![0u32; t.nodes.len() + 1];
        for n in &t.nodes[1..] {
            at[n.parent.unwrap_or(0) as usize + 1] += 1;
        }
        for i in 1..at.len() {
            at[i] += at[i - 1];
        }
        for (i, n) in t.nodes.iter_mut().enumerate() {
            n.kids = (at[i], at[i + 1] - at[i]);
        }
        t.kids = vec![0; t.nodes.len() - 1];
        for i in 1..t.nodes.len() {
            let p = t.nodes[i].parent.unwrap_or(0) as usize;
            t.kids[at[p] as usize] = i as NodeId;
            at[p] += 1;
        }
        // natural order of every node's children, kept only where it differs from file order
        // (children are often in natural order already: numbered layers saved in order)
        let mut natural = Vec::new();
        for i in 0..t.nodes.len() {
            let kids = t.children(i as NodeId, Order::File);
            let cmp = |&a: &NodeId, &b: &NodeId| {
                natural_cmp(t.label(a), t.label(b))
                    .then(t.nodes[a as usize].order.cmp(&t.nodes[b as usize].order))
            };
            if kids.is_sorted_by(|a, b| cmp(a, b).is_le()) {
                continue;
            }
            let mut kids = kids.to_vec();
            crate::order::sort_by(&mut kids, cmp);
            natural.push((i, t.kids_natural.len() as u32));
            t.kids_natural.extend_from_slice(&kids);
        }
        for (i, start) in natural {
            t.nodes[i].natural = Some(start);
        }
        t
    }

    fn push(&mut self, parent: NodeId, kind: NodeKind, order: u64) -> NodeId {
        let id = self.nodes.len() as NodeId;
        let depth = if parent == 0 {
            0
        } else {
            self.nodes[parent as usize].depth + 1
        };
        self.nodes
            .push(TreeNode::new(kind, Some(parent), depth, order));
        id
    }

    /// Node `n`'s path: a leaf's path joined by `/` (as `inspect --json`); a folder's path
    /// (elements joined by `/`, dotted parts by `.`).
    pub fn path(&self, n: NodeId) -> &str {
        let (a, b) = self.nodes[n as usize].path;
        &self.text[a as usize..b as usize]
    }

    /// Number of nodes, the root included (node ids are below it).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// What a regex search of this tree sends the worker: the text every path is a range of,
    /// and each node's path as a byte range of it (index = node id).
    pub fn search_paths(&self) -> crate::worker::protocol::SearchPaths {
        crate::worker::protocol::SearchPaths {
            text: self.text.clone(),
            ranges: self.nodes.iter().map(|n| n.path).collect(),
        }
    }

    /// Node `n`'s label: the last part of its path (a leaf under the deepest folder allowed
    /// keeps the rest of its path).
    pub fn label(&self, n: NodeId) -> &str {
        let (a, b) = self.nodes[n as usize].label;
        &self.text[a as usize..b as usize]
    }

    /// Whether node `n` has children.
    pub fn has_children(&self, n: NodeId) -> bool {
        self.nodes[n as usize].kids.1 > 0
    }

    /// Node `n`'s children in `order`.
    pub fn children(&self, n: NodeId, order: Order) -> &[NodeId] {
        let node = &self.nodes[n as usize];
        let (a, len) = (node.kids.0 as usize, node.kids.1 as usize);
        match (order, node.natural) {
            (Order::Natural, Some(s)) => &self.kids_natural[s as usize..s as usize + len],
            _ => &self.kids[a..a + len],
        }
    }

    /// Folders whose depth is below `depth` (expand to that depth).
    pub fn folders_above(&self, depth: u32) -> KeySet<NodeId> {
        (1..self.nodes.len() as NodeId)
            .filter(|&i| {
                let n = &self.nodes[i as usize];
                n.kind == NodeKind::Folder && n.depth < depth
            })
            .collect()
    }

    /// The ancestors of `n` (not the root), innermost first.
    pub fn ancestors(&self, n: NodeId) -> Vec<NodeId> {
        let mut out = vec![];
        let mut at = self.nodes[n as usize].parent;
        while let Some(p) = at.filter(|&p| p != 0) {
            out.push(p);
            at = self.nodes[p as usize].parent;
        }
        out
    }

    /// The visible rows: without a filter, the children of expanded folders; with one, every
    /// matching leaf (its full path matched) and its ancestors, all expanded.
    pub fn rows(
        &self,
        expanded: &KeySet<NodeId>,
        order: Order,
        filter: Option<&Filter>,
    ) -> Vec<Row> {
        let mut out = vec![];
        match filter {
            None => self.walk(0, order, &mut out, &|n| expanded.contains(&n), None),
            Some(f) => {
                let mut keep = vec![false; self.nodes.len()];
                let mut marks: Vec<Option<(usize, usize)>> = vec![None; self.nodes.len()];
                // the part of a match that falls in the label (a suffix of the path)
                let in_label = |n: NodeId, (a, b): (usize, usize)| {
                    let (path, label) = (self.path(n), self.label(n));
                    let start = path.len().saturating_sub(label.len());
                    let (a2, b2) = (a.max(start), b.min(path.len()));
                    (a2 < b2).then(|| (a2 - start, b2 - start))
                };
                for (i, n) in self.nodes.iter().enumerate().skip(1) {
                    if n.kind == NodeKind::Folder {
                        continue;
                    }
                    if let Some(m) = f.find(i as NodeId, self.path(i as NodeId)) {
                        marks[i] = in_label(i as NodeId, m);
                        let mut at = Some(i as NodeId);
                        while let Some(x) = at {
                            if keep[x as usize] {
                                break;
                            }
                            keep[x as usize] = true;
                            // a folder whose own name matches is highlighted too (each
                            // folder is searched once: the walk stops at kept ones)
                            let node = &self.nodes[x as usize];
                            if x != 0 && x != i as NodeId {
                                if let Some(m) = f.find(x, self.path(x)) {
                                    marks[x as usize] = in_label(x, m);
                                }
                            }
                            at = node.parent;
                        }
                    }
                }
                self.walk(
                    0,
                    order,
                    &mut out,
                    &|n| keep[n as usize],
                    Some((&keep, &marks)),
                );
            }
        }
        out
    }

    fn walk(
        &self,
        n: NodeId,
        order: Order,
        out: &mut Vec<Row>,
        open: &dyn Fn(NodeId) -> bool,
        filter: Option<(&[bool], &Marks)>,
    ) {
        for &c in self.children(n, order) {
            if let Some((keep, _)) = filter {
                if !keep[c as usize] {
                    continue;
                }
            }
            let node = &self.nodes[c as usize];
            let has_children = self.has_children(c);
            let expanded = has_children && open(c);
            out.push(Row {
                node: c,
                depth: node.depth,
                has_children,
                expanded,
                mark: filter.and_then(|(_, m)| m[c as usize]),
            });
            if expanded {
                self.walk(c, order, out, open, filter);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    fn entry(path: &[&str], numel: u64) -> Entry {
        Entry {
            path: path.iter().map(|s| s.to_string()).collect(),
            dtype: crate::format::DType::F32,
            shape: vec![numel],
            strides: vec![1],
            storage_offset: 0,
            numel,
            bytes: numel * 4,
            storage: Some(0),
        }
    }

    #[test]
    fn very_long_dotted_keys_stop_at_the_folder_depth_limit() {
        let key = vec!["a"; 100_000].join(".");
        let t = Tree::build(&[entry(&[&key], 1), entry(&["b.c"], 2)], &[]);
        let deepest = t.nodes.iter().map(|n| n.depth).max().unwrap();
        assert_eq!(deepest as usize, MAX_FOLDER_DEPTH); // the leaf, below 256 folders
        assert_eq!(
            t.label(t.tensor_node[0]).len(),
            key.len() - 2 * MAX_FOLDER_DEPTH
        );
        assert_eq!(t.path(t.tensor_node[0]), key);
    }

    fn sample() -> Tree {
        let entries = vec![
            entry(&["state_dict", "layers.10.w"], 3),
            entry(&["state_dict", "layers.2.w"], 5),
            entry(&["state_dict", "layers.2.b"], 1),
            entry(&["optimizer", "state", "0", "exp_avg"], 5),
        ];
        let values = vec![ValueEntry {
            path: vec!["epoch".into()],
            text: "3".into(),
            kind: "int".into(),
            after: 0,
        }];
        Tree::build(&entries, &values)
    }

    fn labels(t: &Tree, rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| format!("{}{}", "  ".repeat(r.depth as usize), t.label(r.node)))
            .collect()
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            "layers.10",
            "layers.2",
            "layers.1",
            "a",
            "layers.02x",
            "b1",
            "b01",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            vec![
                "a",
                "b01",
                "b1",
                "layers.1",
                "layers.2",
                "layers.02x",
                "layers.10"
            ]
        );
        assert_eq!(natural_cmp("x9", "x10"), Ordering::Less);
        assert_eq!(natural_cmp("x", "x0"), Ordering::Less);
    }

    #[test]
    fn folders_counts_and_paths() {
        let t = sample();
        let all: KeySet<NodeId> = t.folders_above(99);
        let rows = t.rows(&all, Order::Natural, None);
        assert_eq!(
            labels(&t, &rows),
            vec![
                "epoch",
                "optimizer",
                "  state",
                "    0",
                "      exp_avg",
                "state_dict",
                "  layers",
                "    2",
                "      b",
                "      w",
                "    10",
                "      w",
            ]
        );
        let sd = rows[5].node as usize;
        assert_eq!(
            (t.nodes[sd].tensors, t.nodes[sd].params, t.nodes[sd].bytes),
            (3, 9, 36)
        );
        assert_eq!(t.nodes[0].tensors, 4);
        // leaves carry the inspect path; tensor_node maps entries to nodes
        assert_eq!(t.path(t.tensor_node[0]), "state_dict/layers.10.w");
        assert_eq!(t.path(rows[4].node), "optimizer/state/0/exp_avg");
        assert_eq!(t.path(rows[7].node), "state_dict/layers.2");
        assert_eq!(t.nodes[rows[0].node as usize].kind, NodeKind::Value(0));
    }

    #[test]
    fn file_order_and_collapse() {
        let t = sample();
        let all = t.folders_above(99);
        let rows = t.rows(&all, Order::File, None);
        let l = labels(&t, &rows);
        assert_eq!(
            &l[..5],
            &["epoch", "state_dict", "  layers", "    10", "      w"]
        );
        let top = t.folders_above(1);
        let rows = t.rows(&top, Order::Natural, None);
        assert_eq!(
            labels(&t, &rows),
            vec!["epoch", "optimizer", "  state", "state_dict", "  layers"]
        );
        assert!(rows[2].has_children && !rows[2].expanded);
        assert!(rows[1].expanded);
        assert!(t.rows(&KeySet::new(), Order::Natural, None).len() == 3);
    }

    #[test]
    fn search_shows_matches_with_ancestors_and_marks() {
        let t = sample();
        let f = Filter::substring("2.W").unwrap();
        let rows = t.rows(&KeySet::new(), Order::Natural, Some(&f));
        assert_eq!(
            labels(&t, &rows),
            vec!["state_dict", "  layers", "    2", "      w"]
        );
        assert_eq!(rows[3].mark, Some((0, 1)));
        // the folder `2` matches "2.W" only with its leaf: not marked
        assert!(rows.iter().take(3).all(|r| r.expanded && r.mark.is_none()));
        // a folder whose own name matches is marked
        let f = Filter::substring("LAYERS").unwrap();
        let rows = t.rows(&KeySet::new(), Order::Natural, Some(&f));
        assert_eq!(labels(&t, &rows)[1], "  layers");
        assert_eq!(rows[1].mark, Some((0, 6)));
        assert_eq!(rows[0].mark, None);
        // a regex: the worker's answer over the tree's paths (the engine of the edit operations)
        let regex = |p: &str| {
            let s = t.search_paths();
            crate::edit::search::find_all(p, &s.text, &s.ranges)
                .map(|m| Filter::matches(t.node_count(), &m))
        };
        let f = regex(r"layers\.\d+\.w$").unwrap();
        let rows = t.rows(&KeySet::new(), Order::Natural, Some(&f));
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().filter(|r| r.mark.is_some()).count() >= 2);
        let f = regex("LAYERS|layers").unwrap();
        let rows = t.rows(&KeySet::new(), Order::Natural, Some(&f));
        assert_eq!(rows[1].mark, Some((0, 6)));
        assert!(regex("(").is_err());
        assert!(Filter::substring("  ").is_none());
        let f = Filter::substring("nothing-like-this").unwrap();
        assert!(t.rows(&KeySet::new(), Order::Natural, Some(&f)).is_empty());
        // the ancestors of a node
        let leaf = t.tensor_node[1];
        assert_eq!(t.ancestors(leaf).len(), 3);
    }

    #[test]
    fn substring_search_folds_ascii_case_only_and_keeps_char_boundaries() {
        let f = |q: &str| Filter::substring(q).unwrap();
        assert_eq!(f("LAYERS.4").find(1, "model.Layers.4.w"), Some((6, 14)));
        // other characters match as they are; a match never splits one
        assert_eq!(f("é").find(1, "Éé"), Some((2, 4)));
        assert_eq!(f("É").find(1, "éÉ"), Some((2, 4)));
        assert_eq!(f("ÉX").find(1, "aÉx"), Some((1, 4)));
        assert_eq!(f("\u{e9}").find(1, "\u{c9}"), None);
        assert_eq!(find_ignoring_ascii_case("abc", ""), Some((0, 0)));
        assert_eq!(find_ignoring_ascii_case("ab", "abc"), None);
    }
}
