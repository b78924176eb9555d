//! Errors from readers: every error names the file, the place (a record, a byte offset, a tensor)
//! and what was wrong, e.g. `model.pth: data.pkl: byte 1042: STACK_GLOBAL operands are not strings`.

use std::fmt;

/// A reader error. `file` is filled in by the outermost caller that knows the file name.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatError {
    /// The file name (may be empty until [`FormatError::in_file`] sets it).
    pub file: String,
    /// Where in the file: a record name, `byte N`, a tensor name; outermost first.
    pub place: Vec<String>,
    /// What was wrong.
    pub message: String,
}

impl FormatError {
    pub fn new(message: impl Into<String>) -> Self {
        FormatError {
            file: String::new(),
            place: Vec::new(),
            message: message.into(),
        }
    }
    /// An error at a place (record, offset, tensor).
    pub fn at(place: impl Into<String>, message: impl Into<String>) -> Self {
        FormatError {
            file: String::new(),
            place: vec![place.into()],
            message: message.into(),
        }
    }
    /// Prefix an outer place (e.g. the record that holds a pickle byte offset).
    pub fn within(mut self, place: impl Into<String>) -> Self {
        self.place.insert(0, place.into());
        self
    }
    /// Set the file name (kept if already set).
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        if self.file.is_empty() {
            self.file = file.into();
        }
        self
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        for p in &self.place {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormatError {}

impl From<super::source::SourceError> for FormatError {
    fn from(e: super::source::SourceError) -> Self {
        FormatError::new(e.0)
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
