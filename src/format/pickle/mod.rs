//! The safe unpickler: an allow-list VM that builds data and never executes pickle code.
//!
//! - [`vm`]: opcodes (protocols 0–5), memo, marks, limits.
//! - [`calls`]: what allow-listed callables build; inert objects for everything else.
//! - [`safety`]: tiers of globals (allowed / unknown / dangerous).
//! - [`value`]: the value arena.
//! - [`tree`]: arena → [`crate::format::Node`] tree and tensor list.

pub mod calls;
pub mod safety;
pub mod tree;
pub mod value;
pub mod vm;

pub use calls::{StoragePid, StorageResolver};
pub use value::{Id, Value};
pub use vm::{Limits, PickleError, Unpickler};

#[cfg(test)]
mod tests;
