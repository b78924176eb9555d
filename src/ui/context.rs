//! The opened checkpoint, shared with every panel through a Leptos context.
//!
//! Contract: `App` provides one [`Checkpoint`] (`use_context::<Checkpoint>()` from any panel,
//! e.g. the Edit and Compare tabs). It holds the opened file's index
//! ([`OpenedFile`]: entries, values, tree; `None` before the first file), the selected tensor
//! (index into the entries); a panel sends a request with [`Checkpoint::send`] using an id from
//! [`Checkpoint::new_id`] and receives every answer through [`Checkpoint::listen`] (it filters by
//! its own ids) — all three through the page's one [`super::hub`]. Opening a new file replaces `opened` and
//! clears `selected`.

use super::tree::Tree;
use crate::worker::protocol::{Entry, JsFile, Request, RequestId, Response, ValueEntry};
use leptos::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The page's view of the checkpoint open in the worker.
#[derive(Debug, Default)]
pub struct OpenedFile {
    /// The `open` request that produced it.
    pub id: RequestId,
    pub name: String,
    pub entries: Vec<Entry>,
    pub values: Vec<ValueEntry>,
    pub tree: Tree,
    /// Tensors by storage (those sharing bytes).
    pub by_storage: HashMap<u32, Vec<u32>>,
}

impl OpenedFile {
    pub fn new(id: RequestId, name: String, entries: Vec<Entry>, values: Vec<ValueEntry>) -> Self {
        let tree = Tree::build(&entries, &values);
        let mut by_storage: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(s) = e.storage {
                by_storage.entry(s).or_default().push(i as u32);
            }
        }
        OpenedFile {
            id,
            name,
            entries,
            values,
            tree,
            by_storage,
        }
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
pub struct Checkpoint {
    pub opened: RwSignal<Option<Arc<OpenedFile>>>,
    pub selected: RwSignal<Option<u32>>,
    /// The selected non-tensor value (index into `opened.values`), shown when no tensor is.
    pub selected_value: RwSignal<Option<u32>>,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Checkpoint {
    pub fn new() -> Self {
        Checkpoint {
            opened: RwSignal::new(None),
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

    /// Receive every worker answer from now on.
    pub fn listen(&self, f: impl Fn(&Response) + 'static) {
        super::hub::listen(f);
    }
}
