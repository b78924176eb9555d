//! Where the page saves an output file: straight to disk through the File System Access API
//! when the browser offers it (Chromium's `showSaveFilePicker`, `showDirectoryPicker` for
//! shards), else the caller falls back to a Blob download.
//!
//! Contract: [`pick`] must be called inside the user's click (the pickers need the gesture);
//! it gives the picker's promise (a handle; rejected with `AbortError` when the user closes the
//! picker), or `None` when the API is absent or refuses at once. [`forget`] removes output
//! files the worker may have started (after Cancel or a refusal), so no empty or partial file
//! is left where the user chose to save.

use crate::worker::disk::{discard, is_directory, FsHandle};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// Open the save picker (a directory picker for shards) suggesting `name`.
pub fn pick(directory: bool, name: &str) -> Option<Promise> {
    let w = web_sys::window()?;
    let api = if directory {
        "showDirectoryPicker"
    } else {
        "showSaveFilePicker"
    };
    let f: Function = Reflect::get(&w, &api.into()).ok()?.dyn_into().ok()?;
    let opts = Object::new();
    let (k, v) = if directory {
        ("mode", "readwrite")
    } else {
        ("suggestedName", name)
    };
    Reflect::set(&opts, &k.into(), &v.into()).ok()?;
    f.call1(&w, &opts).ok()?.dyn_into().ok()
}

/// Remove the output files `names` of `target` (a file handle: the file itself) in the
/// background.
pub fn forget(target: JsValue, names: Vec<String>) {
    wasm_bindgen_futures::spawn_local(async move {
        let t: FsHandle = target.unchecked_into();
        if is_directory(&t) {
            for n in &names {
                discard(&t, n).await;
            }
        } else {
            discard(&t, "").await;
        }
    });
}
