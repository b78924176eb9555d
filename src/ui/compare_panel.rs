//! Placeholder for the Compare tab (diff two checkpoints), written on branch `edit`: that branch
//! replaces this file. Contract: `ComparePanel` takes no props and reads the opened checkpoint
//! from the [`super::context::Checkpoint`] context.

use leptos::prelude::*;

#[component]
pub fn ComparePanel() -> impl IntoView {
    view! { <p class="placeholder muted">"Comparing is not available in this build."</p> }
}
