//! The opened checkpoint, shared with every panel through a Leptos context.
//!
//! Contract: `App` provides one [`Checkpoint`] (`use_context::<Checkpoint>()` from any panel,
//! e.g. the Edit and Compare tabs). It holds the worker client, the opened file's index
//! ([`OpenedFile`]: entries, values, tree; `None` before the first file), the selected tensor
//! (index into the entries), and a fan-out of worker answers: a panel sends a request with
//! [`Checkpoint::send`] using an id from [`Checkpoint::new_id`] and receives every answer through
//! [`Checkpoint::listen`] (it filters by its own ids). Opening a new file replaces `opened` and
//! clears `selected`.

use super::tree::Tree;
use super::worker_client::WorkerClient;
use crate::worker::protocol::{Entry, JsFile, Request, RequestId, Response, ValueEntry};
use leptos::prelude::*;
use std::collections::HashMap;
use std::rc::Rc;
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

type Listener = Rc<dyn Fn(&Response)>;

/// The shared handle (cheap to copy).
#[derive(Clone, Copy)]
pub struct Checkpoint {
    pub client: StoredValue<WorkerClient, LocalStorage>,
    pub opened: RwSignal<Option<Arc<OpenedFile>>>,
    pub selected: RwSignal<Option<u32>>,
    /// The selected non-tensor value (index into `opened.values`), shown when no tensor is.
    pub selected_value: RwSignal<Option<u32>>,
    listeners: StoredValue<Vec<Listener>, LocalStorage>,
    next: StoredValue<RequestId>,
}

impl Checkpoint {
    pub fn new(client: StoredValue<WorkerClient, LocalStorage>) -> Self {
        Checkpoint {
            client,
            opened: RwSignal::new(None),
            selected: RwSignal::new(None),
            selected_value: RwSignal::new(None),
            listeners: StoredValue::new_local(vec![]),
            next: StoredValue::new(1 << 24),
        }
    }

    /// A fresh request id (never one the open flow uses).
    pub fn new_id(&self) -> RequestId {
        let mut id = 0;
        self.next.update_value(|n| {
            *n += 1;
            id = *n;
        });
        id
    }

    /// Post a request to the worker.
    pub fn send(&self, req: &Request<JsFile>) {
        match serde_wasm_bindgen::to_value(req) {
            Ok(v) => self.client.with_value(|c| c.send(v)),
            Err(e) => web_sys::console::error_1(&format!("cannot encode a request: {e}").into()),
        }
    }

    /// Receive every worker answer from now on.
    pub fn listen(&self, f: impl Fn(&Response) + 'static) {
        self.listeners.update_value(|l| l.push(Rc::new(f)));
    }

    /// Hand an answer to every listener.
    pub fn dispatch(&self, r: &Response) {
        let ls: Vec<Listener> = self.listeners.with_value(|l| l.clone());
        for l in ls {
            l(r);
        }
    }
}
