//! Editing: an undoable journal of operations over an opened checkpoint, and the export plan
//! that turns the edited tree into a new file made of slices of the original plus new bytes.
//!
//! - [`tree`]: the editable view ([`ETree`]).
//! - [`ops`]: rename, prefixes, regex replace, delete, keep, extract, cast, metadata, transplant.
//! - [`journal`]: undo / redo.
//! - [`search`]: key search by regex for the page's tree (the ops' engine, in the worker).
//! - [`spec`]: [`OpSpec`], an operation as the page and the CLI state it, and its one validator.

pub mod journal;
pub mod ops;
pub mod search;
pub mod spec;
pub mod transplant;
pub mod tree;

pub use journal::Journal;
pub use ops::{Op, Refused};
pub use spec::{OpSpec, SpecContext, CAST_TARGETS};
pub use tree::{ENode, ETree, TensorRef};
