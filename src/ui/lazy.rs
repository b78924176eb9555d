//! Build a part of the page only when it is first shown.
//!
//! Contract: [`Lazy`]'s children are built the first time `when` is true and stay mounted after
//! that (the caller hides them with CSS when `when` turns false again), so a tab keeps its state
//! once opened but a tab never opened costs nothing when a file opens.

use leptos::prelude::*;

/// Children built on the first `true` of `when`, then kept.
#[component]
pub fn Lazy(#[prop(into)] when: Signal<bool>, children: ChildrenFn) -> impl IntoView {
    // false until `when` is first true, then true for good
    let shown = Memo::new(move |was: Option<&bool>| was.copied().unwrap_or(false) || when.get());
    move || shown.get().then(|| children())
}
