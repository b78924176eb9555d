//! `weightscope` — the native CLI. On wasm32 this binary is empty (the page uses `app`/`worker`).

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(weightscope::cli::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {}
