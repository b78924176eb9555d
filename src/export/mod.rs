//! Export: an edited tree → a new file, as a plan of slices of the inputs plus new bytes.
//!
//! Sits above `format` (readers, zip/pickle decoding) and `edit` (the journal and its tree);
//! `worker` and `cli` call it. Nothing here touches the browser.
//!
//! - [`plan`]: choose the writer from the output name, run it, materialise natively.
//! - [`writer`]: torch zip and safetensors writers producing [`Part`]s.
//! - [`pickler`]: the safe pickler that writes `data.pkl`.
//! - [`merge`]: model fusion (linear, add-difference, slerp, ties) as a streamed input;
//!   [`select`]: the exact bounded-memory top-k threshold TIES needs.
//! - [`shards`]: Hugging Face-style sharded outputs and their index.
//! - [`crc_later`]: CRC-32s of records filled in while their bytes are written.

pub mod crc_later;
pub mod merge;
pub mod pickler;
pub mod plan;
pub mod select;
pub mod shards;
pub mod writer;

#[cfg(not(target_arch = "wasm32"))]
pub use plan::write_file;
pub use plan::{export, OutFormat};
pub use writer::{Inputs, Part, Report};
