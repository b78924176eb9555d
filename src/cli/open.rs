//! Opening files from paths for the CLI (native only): single files, and — through the shared
//! [`crate::format`] API — whatever the format layer can open from a path.

use crate::format::pickle::scan;
use crate::format::{self, Checkpoint, FileSource, FormatError, Source};
use std::io::Write;
use std::path::Path;

/// A checkpoint with the sources of its files (`files[i]` ↔ `sources[i]`).
pub struct Opened {
    pub ckpt: Checkpoint,
    pub sources: Vec<Box<dyn Source>>,
}

impl Opened {
    /// Borrow the sources as trait objects for [`format::data::read_tensor`].
    pub fn source_refs(&self) -> Vec<&dyn Source> {
        self.sources
            .iter()
            .map(|s| s.as_ref() as &dyn Source)
            .collect()
    }
}

/// The name shown in messages for a path.
pub fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// Open any checkpoint the format layer reads from a path: a single file, or a sharded index
/// with its shards found beside it.
pub fn open_path(path: &Path) -> Result<Opened, FormatError> {
    let (ckpt, sources) = format::open_path(path)?;
    Ok(Opened { ckpt, sources })
}

/// Report a file that could not be opened: the error on stderr and, when the file holds
/// pickles that torch.load would run (a plain pickle, a broken checkpoint whose pickle calls
/// something before the break), what they would call. Returns the exit status: 3 when that
/// is dangerous, else 2.
pub fn report_unreadable(path: &Path, e: &FormatError) -> i32 {
    eprintln!("{e}");
    let scanned = FileSource::open(path)
        .ok()
        .and_then(|s| scan::scan_source(&s));
    match scanned {
        Some(s) if s.verdict() == "dangerous" => {
            let line = scan::would_call(&s.safety);
            if !e.message.contains(&line) {
                eprintln!("{}: {line}", display_name(path));
            }
            super::EXIT_DANGEROUS
        }
        _ => super::EXIT_UNREADABLE,
    }
}

/// The DANGEROUS line for an opened checkpoint (stderr), or `None` when it is not dangerous.
pub fn dangerous_line(c: &Checkpoint) -> Option<String> {
    (c.safety.verdict() == "dangerous").then(|| {
        format!(
            "{}: {}",
            c.files.first().map(String::as_str).unwrap_or(""),
            scan::would_call(&c.safety)
        )
    })
}

/// `weightscope detect FILE...`
pub fn detect_files(files: &[std::path::PathBuf], out: &mut dyn Write) -> i32 {
    let mut status = 0;
    for f in files {
        let name = display_name(f);
        match FileSource::open(f).and_then(|s| format::detect_source(&s).map(|fmt| (fmt, s.len())))
        {
            Ok((fmt, len)) => {
                let _ = writeln!(out, "{name}\t{}\t{len}\t{}", fmt.name(), fmt.describe());
                if fmt == format::Format::Unknown {
                    status = super::EXIT_UNREADABLE;
                }
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                status = super::EXIT_UNREADABLE;
            }
        }
    }
    status
}
