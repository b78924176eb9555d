//! Output files streamed straight to disk through the File System Access API (Chromium's
//! `showSaveFilePicker` / `showDirectoryPicker` handles), used by the worker to write and by
//! the page to clean up after Cancel.
//!
//! Contract:
//! - A target is a `FileSystemFileHandle` (one output file: it is written) or a
//!   `FileSystemDirectoryHandle` (shards: each output file is its entry, created or replaced).
//! - [`open`] gives the file's `FileSystemWritableFileStream`; bytes go to the browser's swap
//!   file and replace the file only on [`close`]; [`abort`] drops them, so a failed or
//!   cancelled write never leaves a file that looks complete. [`discard`] removes an output
//!   file (the empty one the picker or [`open`] created), retrying while a writable of a
//!   terminated worker still holds its lock.
//! - Every call awaits the browser's promise, so a writer feeding chunks one by one holds at
//!   most one chunk at a time (the stream's back-pressure).

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// A `FileSystemFileHandle` or `FileSystemDirectoryHandle`.
    #[wasm_bindgen(extends = Object)]
    #[derive(Clone, Debug)]
    pub type FsHandle;
    #[wasm_bindgen(method, catch, js_name = createWritable)]
    fn create_writable(this: &FsHandle) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = getFileHandle)]
    fn get_file_handle(this: &FsHandle, name: &str, opts: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = removeEntry)]
    fn remove_entry(this: &FsHandle, name: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn remove(this: &FsHandle) -> Result<Promise, JsValue>;

    /// A `FileSystemWritableFileStream`.
    #[wasm_bindgen(extends = Object)]
    #[derive(Clone, Debug)]
    pub type Writable;
    #[wasm_bindgen(method, catch, js_name = write)]
    fn write_js(this: &Writable, data: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = close)]
    fn close_js(this: &Writable) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = abort)]
    fn abort_js(this: &Writable) -> Result<Promise, JsValue>;
}

async fn wait(p: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(p?).await
}

/// Whether `target` is a directory handle (shards go into it).
pub fn is_directory(target: &FsHandle) -> bool {
    Reflect::get(target, &"kind".into())
        .ok()
        .and_then(|k| k.as_string())
        .is_some_and(|k| k == "directory")
}

/// The writable of output file `name`: `target` itself, or its entry `name` (created).
pub async fn open(target: &FsHandle, name: &str) -> Result<Writable, JsValue> {
    let file: FsHandle = if is_directory(target) {
        let opts = Object::new();
        Reflect::set(&opts, &"create".into(), &true.into())?;
        wait(target.get_file_handle(name, &opts))
            .await?
            .unchecked_into()
    } else {
        target.clone()
    };
    Ok(wait(file.create_writable()).await?.unchecked_into())
}

/// Append bytes (copied out of wasm memory now).
pub async fn write_bytes(w: &Writable, bytes: &[u8]) -> Result<(), JsValue> {
    wait(w.write_js(&Uint8Array::from(bytes))).await.map(|_| ())
}

/// Append a `Blob` (e.g. a slice of an input file: the browser copies it).
pub async fn write_blob(w: &Writable, blob: &web_sys::Blob) -> Result<(), JsValue> {
    wait(w.write_js(blob)).await.map(|_| ())
}

/// Finish the file: the bytes written replace it.
pub async fn close(w: &Writable) -> Result<(), JsValue> {
    wait(w.close_js()).await.map(|_| ())
}

/// Drop what was written (errors ignored: the writable may already be gone).
pub async fn abort(w: &Writable) {
    let _ = wait(w.abort_js()).await;
}

/// Sleep `ms` milliseconds (window or worker).
async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        let set = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match set {
            Some(f) => {
                let _ = f.call2(&JsValue::NULL, &resolve, &ms.into());
            }
            None => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    let _ = JsFuture::from(p).await;
}

/// Remove output file `name` of `target` (the file itself for a file handle; in a folder, only
/// a file of that name), retrying for up to 5 s while it is locked; `true` once it is gone.
pub async fn discard(target: &FsHandle, name: &str) -> bool {
    if is_directory(target) {
        // only a file: a folder of that name is not an output
        let found = wait(target.get_file_handle(name, &JsValue::UNDEFINED)).await;
        if let Err(e) = found {
            return error_name(&e) == "NotFoundError";
        }
    }
    for _ in 0..50 {
        let r = if is_directory(target) {
            wait(target.remove_entry(name)).await
        } else {
            wait(target.remove()).await
        };
        match r {
            Ok(_) => return true,
            Err(e) if error_name(&e) == "NotFoundError" => return true,
            Err(_) => sleep(100).await,
        }
    }
    false
}

/// A DOMException's `name` (`AbortError`, `NotFoundError`…), or "".
pub fn error_name(e: &JsValue) -> String {
    Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default()
}
