//! Bytes → index. Pure Rust, no browser APIs: every reader takes a [`Source`].
//!
//! - [`detect`]: name the container from its first bytes.
//! - [`open`]: build a [`Checkpoint`] index (metadata only, no tensor bytes).
//! - [`data::read_tensor`]: stream one tensor's bytes on demand.

pub mod bounds;
pub mod checkpoint;
pub mod crc32;
pub mod data;
pub mod detect;
pub mod dtype;
pub mod element;
pub mod error;
pub mod fastmap;
pub mod inflate;
pub mod pickle;
pub mod source;
pub mod tar;
pub mod torch;
pub mod zip;

pub use checkpoint::{
    Checkpoint, DictKind, GlobalRef, Key, Node, SafetyReport, StorageInfo, TensorInfo, TensorKind,
    Tier, Verdict,
};
pub use detect::{detect, Format, HEAD_LEN};
pub use dtype::{DKind, DType};
pub use error::{FormatError, Result};
pub use source::{CachedSource, MemSource, Source, SourceError};

#[cfg(not(target_arch = "wasm32"))]
pub use source::FileSource;

// safetensors and sharded checkpoints
pub mod json;
pub mod safetensors;
pub mod sharded;

#[cfg(not(target_arch = "wasm32"))]
pub use sharded::open_path;
pub use sharded::{open_sharded, ShardOpener, WithSources};

/// Detect the format of a source from its first bytes.
pub fn detect_source(src: &dyn Source) -> std::result::Result<Format, SourceError> {
    let n = src.len().min(HEAD_LEN as u64) as usize;
    let head = src.read_vec(0, n)?;
    Ok(detect(&head, src.len()))
}

/// Open a single-file checkpoint (torch zip, legacy, tar, safetensors) named `name`.
/// Errors carry `name` as their file.
pub fn open(src: &dyn Source, name: &str) -> Result<Checkpoint> {
    let fmt = detect_source(src).map_err(|e| FormatError::from(e).in_file(name))?;
    let r = match fmt {
        Format::Unknown => Err(FormatError::new(
            "not a PyTorch or safetensors checkpoint (no zip, legacy-pickle, tar or safetensors signature in the first bytes)",
        )),
        Format::Safetensors => safetensors::open(src, name),
        Format::SafetensorsSharded | Format::TorchSharded => Err(FormatError::new(
            "a sharded-checkpoint index (weight_map → shard files): open it together with its shards (format::open_sharded, or format::open_path natively)",
        )),
        Format::TorchPreview => Err(FormatError::new(
            "a PyTorch 1.0 preview (PYTORCH1) container; torch itself refuses these",
        )),
        Format::TorchZip | Format::TorchScript => {
            torch::open_zip(src, name).and_then(|c| bounds::check(&c).map(|()| c))
        }
        Format::TorchLegacy => {
            torch::open_legacy(src, name).and_then(|c| bounds::check(&c).map(|()| c))
        }
        Format::Pickle => Err(FormatError::new(
            pickle::scan::scan_source(src)
                .map(|s| pickle::scan::not_a_checkpoint(&s))
                .unwrap_or_else(|| "not a PyTorch or safetensors checkpoint: a pickle stream".into()),
        )),
        Format::TorchTar => {
            tar::open_tar(src, name).and_then(|c| bounds::check(&c).map(|()| c))
        }
    };
    r.map_err(|e| e.in_file(name))
}
