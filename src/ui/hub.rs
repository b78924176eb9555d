//! The page's one message hub between the worker client and everything that talks to the worker
//! (the app's statistics run, the Inspector, the Edit and Compare tabs).
//!
//! Contract: the app calls [`connect`] once with a function that posts a message to the worker,
//! and [`dispatch`] once with every answer the worker sends. Everyone else [`listen`]s for
//! answers (and [`unlisten`]s when unmounted) and [`send`]s requests with ids from [`next_id`] —
//! the one id counter of the page, so an answer is routed to the one request it belongs to. Ids
//! start above 2^24, clear of the page's own `open` ids. Without [`connect`], [`send`] fails with
//! a message instead of losing the request silently.

use crate::worker::protocol::{JsFile, Request, RequestId, Response};
use std::cell::RefCell;
use std::rc::Rc;
type Listener = Rc<dyn Fn(&Response)>;
type Send = Rc<dyn Fn(&Request<JsFile>) -> Result<(), String>>;

#[derive(Default)]
struct Link {
    send: Option<Send>,
    listeners: Vec<(u64, Listener)>,
    next_listener: u64,
    next_id: RequestId,
}

thread_local! {
    static LINK: RefCell<Link> = RefCell::new(Link::default());
}

/// Give the panels a way to post to the worker.
pub fn connect(send: impl Fn(&Request<JsFile>) -> Result<(), String> + 'static) {
    LINK.with(|l| l.borrow_mut().send = Some(Rc::new(send)));
}

/// Pass a worker answer to every listening panel.
pub fn dispatch(r: &Response) {
    let ls: Vec<Listener> = LINK.with(|l| {
        l.borrow()
            .listeners
            .iter()
            .map(|(_, f)| f.clone())
            .collect()
    });
    for f in ls {
        f(r);
    }
}

/// Register a listener; returns its handle for [`unlisten`].
pub fn listen(f: impl Fn(&Response) + 'static) -> u64 {
    LINK.with(|l| {
        let mut l = l.borrow_mut();
        l.next_listener += 1;
        let h = l.next_listener;
        l.listeners.push((h, Rc::new(f)));
        h
    })
}

pub fn unlisten(handle: u64) {
    LINK.with(|l| l.borrow_mut().listeners.retain(|(h, _)| *h != handle));
}

/// A fresh request id for a panel.
pub fn next_id() -> RequestId {
    LINK.with(|l| {
        let mut l = l.borrow_mut();
        l.next_id = l.next_id.max(1 << 24) + 1;
        l.next_id
    })
}

/// Post `req` to the worker.
pub fn send(req: &Request<JsFile>) -> Result<(), String> {
    let f = LINK
        .with(|l| l.borrow().send.clone())
        .ok_or("the reader is not connected to this panel")?;
    f(req)
}
