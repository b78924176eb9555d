//! Leptos components that render signals.
