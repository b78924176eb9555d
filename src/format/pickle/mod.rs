//! The safe unpickler: an allow-list VM that builds data and never executes pickle code.
//!
//! - [`vm`]: opcodes (protocols 0–5), memo, marks, limits.
//! - [`calls`]: what allow-listed callables build; inert objects for everything else.
//! - [`safety`]: name resolution as Python's `find_class` does it, and tiers of globals
//!   (allowed / unknown / dangerous); [`compat_names`]: the Python 2 name tables it uses.
//! - [`pyfloat`]: Python's `float()` of a protocol-0 `FLOAT` line.
//! - [`pyrepr`]: Python's `repr` of values and calls, for the CLI and the page.
//! - [`scan`]: what `torch.load` would call for any pickle stream, checkpoint or not.
//! - [`value`]: the value arena.
//! - [`tree`]: arena → [`crate::format::Node`] tree and tensor list.

pub mod calls;
pub mod compat_names;
pub mod pyfloat;
pub mod pyrepr;
pub mod safety;
pub mod scan;
pub mod tree;
pub mod value;
pub mod vm;

pub use calls::{StoragePid, StorageResolver};
pub use value::{Id, Value};
pub use vm::{trailing_note, Limits, PickleError, Unpickler};

#[cfg(test)]
mod tests;
