//! Small controls more than one panel uses.
//!
//! Contract: [`FormatSelect`] is the output-format `<select>` (PyTorch `.pth` or
//! `.safetensors`) bound to a signal; [`TextField`] a one-line text input bound to a signal;
//! [`ErrorNote`] the refusal or failure of an action, shown next to it while there is one;
//! [`take_files`] the files of a file input's `change` event.
//! Their `data-testid` and labels are the caller's.

use crate::export::plan::OutFormat;
use leptos::prelude::*;

/// The `<select>` value of an output format.
fn format_value(f: OutFormat) -> &'static str {
    match f {
        OutFormat::Torch => "torch",
        OutFormat::Safetensors => "safetensors",
    }
}

/// The output-format `<select>` bound to `format`: `testid` and `label` (its accessible name)
/// name it, `torch_label` is the text of the PyTorch option.
#[component]
pub fn FormatSelect(
    format: RwSignal<OutFormat>,
    testid: &'static str,
    label: &'static str,
    torch_label: &'static str,
) -> impl IntoView {
    view! {
        <select data-testid=testid aria-label=label
            prop:value=move || format_value(format.get())
            on:change=move |ev| {
                if let Some(f) = OutFormat::parse(&event_target_value(&ev)) {
                    format.set(f);
                }
            }>
            <option value="torch">{torch_label}</option>
            <option value="safetensors">".safetensors"</option>
        </select>
    }
}

/// A text input bound to `value` (set at every keystroke); `testid`, `placeholder` and the
/// optional `title` are shown as given.
#[component]
pub fn TextField(
    value: RwSignal<String>,
    testid: &'static str,
    placeholder: &'static str,
    #[prop(optional)] title: &'static str,
) -> impl IntoView {
    view! {
        <input type="text" class="edit-input" data-testid=testid placeholder=placeholder
            title=(!title.is_empty()).then_some(title)
            prop:value=move || value.get()
            on:input=move |ev| value.set(event_target_value(&ev)) />
    }
}

/// The message in `message`, while there is one, as an alert (with a bold `title` line when
/// given).
#[component]
pub fn ErrorNote(
    message: RwSignal<Option<String>>,
    testid: &'static str,
    #[prop(optional)] title: &'static str,
) -> impl IntoView {
    move || {
        message.get().map(|e| {
            let titled = !title.is_empty();
            view! {
                <div class="panel error" class:small=!titled class:edit-error=titled
                    data-testid=testid role="alert">
                    {titled.then(|| view! { <strong>{title}</strong> })}
                    <p>{e}</p>
                </div>
            }
        })
    }
}

/// The files picked in the `<input type=file>` whose `change` event is `ev`; the input is
/// cleared, so picking the same files again is a change too.
pub fn take_files(ev: &web_sys::Event) -> Vec<web_sys::File> {
    use wasm_bindgen::JsCast;
    let Some(input) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return vec![];
    };
    let files = input
        .files()
        .map(|l| (0..l.length()).filter_map(|i| l.item(i)).collect())
        .unwrap_or_default();
    input.set_value("");
    files
}
