//! The worker wasm binary (built by Trunk as a no-modules Web Worker): reads dropped files.
//! Natively this is an empty program.

#[cfg(target_arch = "wasm32")]
fn main() {
    weightscope::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
