//! Placeholder for the Edit tab (rename / delete / cast / export), written on branch `edit`:
//! that branch replaces this file. Contract: `EditPanel` takes no props and reads the opened
//! checkpoint from the [`super::context::Checkpoint`] context.

use leptos::prelude::*;

#[component]
pub fn EditPanel() -> impl IntoView {
    view! { <p class="placeholder muted">"Editing is not available in this build."</p> }
}
