//! The key search the tree and the overview share: the query, the regex switch, and the filter
//! they both apply.
//!
//! Contract: a substring query filters at once, in the page. A regex query is sent to the worker
//! ([`crate::worker::protocol::Request::Search`]), which matches the shown tree's paths with the
//! edit operations' engine; the filter is its answer for the tree on screen. The paths go with
//! the first query for a tree only (the worker keeps them; the worker's client replays them to
//! a restarted worker). Until the
//! answer to a newer query arrives the previous one stays applied (no flicker while typing); an
//! answer for another tree (a new file or edit) is never applied — the filter is then empty
//! until the new answer comes. An invalid pattern gives the worker's one-line error.

use super::context::{OpenedFile, PageCheckpoint};
use super::tree::Filter;
use crate::worker::protocol::{Request, RequestId, Response};
use leptos::prelude::*;
use std::sync::{Arc, Weak};

/// The search state (cheap to copy into components).
#[derive(Clone, Copy)]
pub struct KeySearch {
    pub query: RwSignal<String>,
    pub regex: RwSignal<bool>,
    /// `Ok(None)`: no search; `Err`: an invalid pattern.
    pub filter: Memo<Result<Option<Filter>, String>>,
    /// The regex query whose answer is applied (the search box's `data-answered`: tests and the
    /// page benchmark wait for it).
    pub answered: Signal<String>,
}

/// Which tree an answer is for (the shown index's identity: a new file or edit is a new one).
fn tree_key(f: &Arc<OpenedFile>) -> usize {
    Arc::as_ptr(f) as usize
}

/// The page's one key search.
pub fn key_search(ck: PageCheckpoint) -> KeySearch {
    let query = RwSignal::new(String::new());
    let regex = RwSignal::new(false);
    // the last answer: the tree and the query it is for, and the filter or the pattern's error
    let answer = RwSignal::new(None::<(usize, String, Result<Filter, String>)>);
    // the regex request in flight: its id, the tree, its number of nodes and the query
    let asked = StoredValue::new((0 as RequestId, 0usize, 0usize, String::new()));
    // the tree whose paths the worker has (a `Weak` keeps its address from being reused)
    let sent = StoredValue::new(Weak::<OpenedFile>::new());

    ck.listen(move |r| {
        if let Response::Search(s) = r {
            let (id, tree, nodes, q) = asked.get_value();
            if s.id == id {
                let result = match &s.error {
                    Some(e) => Err(e.clone()),
                    None => Ok(Filter::matches(nodes, &s.matches)),
                };
                answer.set(Some((tree, q, result)));
            }
        }
    });
    Effect::new(move |_| {
        let q = query.with(|q| q.trim().to_string());
        if !regex.get() || q.is_empty() {
            return;
        }
        let Some(f) = ck.opened.get() else { return };
        let paths = (!sent.with_value(|s| s.ptr_eq(&Arc::downgrade(&f)))).then(|| {
            sent.set_value(Arc::downgrade(&f));
            f.tree.search_paths()
        });
        let id = ck.new_id();
        asked.set_value((id, tree_key(&f), f.tree.node_count(), q.clone()));
        ck.send(&Request::Search {
            id,
            pattern: q,
            paths,
        });
    });
    let filter = Memo::new(move |_| {
        let q = query.get();
        if !regex.get() {
            return Ok(Filter::substring(&q));
        }
        if q.trim().is_empty() {
            return Ok(None);
        }
        let tree = ck.opened.with(|f| f.as_ref().map(tree_key));
        answer.with(|a| match a {
            Some((t, _, result)) if Some(*t) == tree => result.clone().map(Some),
            // still searching this tree: nothing matches yet
            _ => Ok(Some(Filter::matches(0, &[]))),
        })
    });
    KeySearch {
        query,
        regex,
        filter,
        answered: Signal::derive(move || {
            answer.with(|a| a.as_ref().map(|a| a.1.clone()).unwrap_or_default())
        }),
    }
}
