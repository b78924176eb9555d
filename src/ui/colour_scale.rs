//! The colour scale (legend) of every heatmap: the ramp of [`super::scale::ramp`] as a bar, the
//! values at its two ends, what a colour means in words, and the colour of missing cells.
//!
//! Contract: hook `colour-legend` with `data-lo` / `data-hi` (the ends' values as text) and the
//! caption as its text. Used by the Inspector's heatmap and the Run view's layer × step heatmap.

use leptos::prelude::*;

/// A horizontal colour legend from `lo` (left) to `hi` (right).
#[component]
pub fn ColourLegend(
    /// Label of the left end (the ramp's 0).
    #[prop(into)]
    lo: Signal<String>,
    /// Label of the right end (the ramp's 1).
    #[prop(into)]
    hi: Signal<String>,
    /// What the colour shows, in words.
    #[prop(into)]
    caption: Signal<String>,
    /// What grey cells mean (none when empty).
    #[prop(into, optional)]
    missing: Signal<String>,
) -> impl IntoView {
    view! {
        <div class="colour-legend" data-testid="colour-legend" data-lo=lo data-hi=hi>
            <span class="legend-end">{lo}</span>
            <span class="legend-bar" style:background=super::scale::css_gradient()></span>
            <span class="legend-end">{hi}</span>
            <span class="legend-caption">{caption}</span>
            {move || {
                let m = missing.get();
                (!m.is_empty()).then(|| view! {
                    <span class="legend-missing"><span class="legend-swatch"></span>{m}</span>
                })
            }}
        </div>
    }
}
