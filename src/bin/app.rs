//! The app wasm binary (built by Trunk). Natively this is an empty program.

fn main() {}
