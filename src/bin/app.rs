//! The app wasm binary (built by Trunk): mounts the page. Natively this is an empty program.

#[cfg(target_arch = "wasm32")]
fn main() {
    weightscope::ui::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
