//! The opened checkpoint, shared with every panel through a Leptos context.
//!
//! Contract: `App` provides one [`PageCheckpoint`] (`use_context::<PageCheckpoint>()` from any panel,
//! e.g. the Edit and Compare tabs). It holds the opened file's index
//! ([`OpenedFile`]: entries, values, tree; `None` before the first file), the selected tensor
//! (index into the entries); a panel sends a request with [`PageCheckpoint::send`] using an id from
//! [`PageCheckpoint::new_id`] and receives every answer through [`PageCheckpoint::listen`] (it filters by
//! its own ids) — all three through the page's one [`super::hub`]. Opening a new file replaces `opened` and
//! clears `selected`. `opened` is what every panel shows: after an edit, the journal's view
//! (the checkpoint as it will be downloaded, rebuilt from the worker's edited index), or the
//! file as read when `show_original` is set; `selected` indexes its entries, and an entry's
//! `sources` say which bytes the Inspector reads.

use super::edited::ShownIndex;
use super::tree::Tree;
use crate::format::fastmap::{map_with_capacity, FastMap};
use crate::worker::protocol::{
    Entry, JournalReply, JsFile, Request, RequestId, Response, TensorSource, ValueEntry,
};
use leptos::prelude::*;
use std::sync::Arc;

/// The page's view of the checkpoint open in the worker: as read, or as it will be downloaded
/// (see [`super::edited`]). Its entries, values, sources and marks are those of `shown` (read
/// through `Deref`: `f.entries` is `f.shown.entries`).
#[derive(Debug, Default)]
pub struct OpenedFile {
    /// The `open` request that produced it.
    pub id: RequestId,
    pub name: String,
    /// Per entry: where its bytes come from (an index of the opened file as read, a B tensor,
    /// a cast) and what the journal changed; `edited` is true for the journal's view.
    pub shown: ShownIndex,
    pub tree: Tree,
    /// Tensors by storage, for the storages two or more tensors share (a storage of its own
    /// is not listed: a list per tensor of a state dict of many small tensors is as many
    /// allocations while the view is built).
    pub by_storage: FastMap<u32, Vec<u32>>,
}

impl std::ops::Deref for OpenedFile {
    type Target = ShownIndex;
    fn deref(&self) -> &ShownIndex {
        &self.shown
    }
}

impl OpenedFile {
    pub fn new(id: RequestId, name: String, entries: Vec<Entry>, values: Vec<ValueEntry>) -> Self {
        Self::shown(id, name, ShownIndex::original(entries, values))
    }

    /// The file `id` as `shown`.
    pub fn shown(id: RequestId, name: String, shown: ShownIndex) -> Self {
        let tree = Tree::build(&shown.entries, &shown.values);
        let mut tensors_of: FastMap<u32, u32> = map_with_capacity(shown.entries.len());
        for s in shown.entries.iter().filter_map(|e| e.storage) {
            *tensors_of.entry(s).or_default() += 1;
        }
        let mut by_storage: FastMap<u32, Vec<u32>> = FastMap::default();
        for (i, e) in shown.entries.iter().enumerate() {
            if let Some(s) = e
                .storage
                .filter(|s| tensors_of.get(s).is_some_and(|&n| n > 1))
            {
                by_storage.entry(s).or_default().push(i as u32);
            }
        }
        OpenedFile {
            id,
            name,
            shown,
            tree,
            by_storage,
        }
    }

    /// Where entry `t`'s bytes come from: the opened file's tensor, a B tensor (a transplant),
    /// with the journal's cast (what the download holds).
    pub fn source_of(&self, t: u32) -> TensorSource {
        self.sources
            .get(t as usize)
            .copied()
            .unwrap_or(TensorSource::of(t))
    }

    /// The entry of this view that reads the bytes `source` reads (the cast aside).
    pub fn find_source(&self, source: TensorSource) -> Option<u32> {
        self.sources
            .iter()
            .position(|s| s.input == source.input && s.tensor == source.tensor)
            .map(|i| i as u32)
    }

    /// The other tensors sharing tensor `t`'s storage.
    pub fn shared_with(&self, t: u32) -> Vec<u32> {
        self.entries[t as usize]
            .storage
            .and_then(|s| self.by_storage.get(&s))
            .map(|v| v.iter().copied().filter(|&x| x != t).collect())
            .unwrap_or_default()
    }
}

/// The shared handle (cheap to copy).
#[derive(Clone, Copy)]
pub struct PageCheckpoint {
    /// The file as shown: the journal's view (as it will be downloaded) unless
    /// `show_original` is set or nothing was changed; `original`: as read.
    pub opened: RwSignal<Option<Arc<OpenedFile>>>,
    pub original: RwSignal<Option<Arc<OpenedFile>>>,
    /// The journal's last answer (operations, redo list, the edited index).
    pub journal: RwSignal<Option<Arc<JournalReply>>>,
    pub show_original: RwSignal<bool>,
    pub show_removed: RwSignal<bool>,
    pub selected: RwSignal<Option<u32>>,
    /// The selected non-tensor value (index into `opened.values`), shown when no tensor is.
    pub selected_value: RwSignal<Option<u32>>,
}

impl Default for PageCheckpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl PageCheckpoint {
    pub fn new() -> Self {
        PageCheckpoint {
            opened: RwSignal::new(None),
            original: RwSignal::new(None),
            journal: RwSignal::new(None),
            show_original: RwSignal::new(false),
            show_removed: RwSignal::new(false),
            selected: RwSignal::new(None),
            selected_value: RwSignal::new(None),
        }
    }

    /// A fresh request id from the page's one counter ([`super::hub::next_id`]).
    pub fn new_id(&self) -> RequestId {
        super::hub::next_id()
    }

    /// Post a request to the worker.
    pub fn send(&self, req: &Request<JsFile>) {
        if let Err(e) = super::hub::send(req) {
            web_sys::console::error_1(&e.into());
        }
    }

    /// Operations in the journal (0 before any edit).
    pub fn changes(&self) -> usize {
        self.journal.with(|j| j.as_ref().map_or(0, |j| j.ops.len()))
    }

    /// Receive every worker answer from now on.
    pub fn listen(&self, f: impl Fn(&Response) + 'static) {
        super::hub::listen(f);
    }
}
