//! What the Inspector's statistics are of, said next to them: for a complex tensor, that the
//! grid is of |z| and the real and imaginary parts' own statistics; with NaN or ±inf present,
//! that min / max / mean / std / L2 / quantiles and the histogram cover the finite values only.
//!
//! Contract: hooks `stats-complex` (the parts table; rows `data-part` = `real` / `imag`, cells
//! `data-stat` with `data-value` = the number) and `stats-finite-note` (`data-finite` = the
//! count of finite values).

use crate::display::{group_digits, short_float};
use crate::stats::{TensorStats, ValueSummary};
use leptos::prelude::*;

/// The notes under the statistics grid of `s`.
pub fn notes(s: &TensorStats) -> impl IntoView {
    let v = &s.summary;
    let bad = v.nonfinite();
    let finite = v.count.saturating_sub(bad);
    let finite_note = (bad > 0).then(|| {
        view! {
            <p class="note small" data-testid="stats-finite-note" data-finite=finite.to_string()>
                {format!(
                    "{} of {} values are NaN or ±inf: min, max, mean, std, L2, the quantiles and the histogram cover the {} finite values only.",
                    group_digits(bad), group_digits(v.count), group_digits(finite)
                )}
            </p>
        }
    });
    let complex = s.complex.as_ref().map(|c| {
        let row = |name: &'static str, label: &'static str, p: &ValueSummary| {
            let cell = |k: &'static str, v: Option<f64>| view! {
                <td data-stat=k data-value=v.map(|v| format!("{v:e}")).unwrap_or_else(|| "null".into())>
                    {v.map(short_float).unwrap_or_else(|| "—".into())}
                </td>
            };
            view! {
                <tr data-part=name>
                    <th>{label}</th>
                    {cell("min", p.min)}{cell("max", p.max)}{cell("mean", p.mean)}{cell("std", p.std)}
                    <td data-stat="zeros" data-value=p.zeros.to_string()>{group_digits(p.zeros)}</td>
                </tr>
            }
        };
        view! {
            <p class="note small">"Complex tensor: the statistics above and the histogram are of the magnitude |z|. Real and imaginary parts:"</p>
            <table class="parts" data-testid="stats-complex">
                <thead><tr><th></th><th>"min"</th><th>"max"</th><th>"mean"</th><th>"std"</th><th>"zeros"</th></tr></thead>
                <tbody>{row("real", "real", &c.real)}{row("imag", "imaginary", &c.imag)}</tbody>
            </table>
        }
    });
    view! { {complex} {finite_note} }
}
