//! The worker's editor: an undoable [`Journal`] over the opened checkpoint, the
//! operations the page asks for, previews, the list of values an export would drop, and the
//! second file (B) used by compare and transplant. Pure Rust over [`Source`]s: tested natively.
//!
//! Contract:
//! - [`Editor::reset`] starts a fresh journal over a newly opened checkpoint (and forgets every
//!   B file). Every request answers with the journal's state ([`JournalReply`]); a refused
//!   operation leaves the journal unchanged and carries the refusal in `error`.
//! - [`Editor::preview`] never changes anything: for key operations it lists old → new names
//!   in file order, for deletions the removed keys, for transplants the added keys; a refusal
//!   (collision, bad pattern, nothing left) is returned as `error` before anything is applied.
//! - B files are inputs `1..`: each `open_b` appends one (a transplant keeps referring to the
//!   B it was taken from) and makes it the chosen B; [`Editor::choose_b`] picks another open
//!   one. Compare, the A/B view and transplant all use the chosen B ([`Editor::b`]).

use super::protocol::{
    DiffReply, EditedEntry, Entry, JournalReply, OpSpec, PreviewReply, RequestId, TensorSource,
};
use super::session::NamedSource;
use crate::edit::{ETree, Journal, Op, Refused, SpecContext};
use crate::export::plan::{planned_drops, OutFormat};
use crate::format::{self, Checkpoint, DType, FormatError, Source};

/// Largest number of rows a preview lists (the total is given separately).
pub const PREVIEW_ROWS: usize = 200;

/// A B file: its sources, index and the statistics computed of its tensors so far.
pub struct Other {
    pub files: Vec<NamedSource>,
    pub checkpoint: Checkpoint,
    pub cache: crate::stats::StatsCache,
}

/// The journal and the B files of the current session.
#[derive(Default)]
pub struct Editor {
    journal: Option<Journal>,
    others: Vec<Other>,
    /// The chosen B (an input number, 1..); 0 before any B is open.
    chosen: usize,
}

fn refused(e: impl std::fmt::Display) -> Refused {
    Refused(e.to_string())
}

impl Editor {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new journal over `ckpt` (input 0); B files are forgotten.
    pub fn reset(&mut self, ckpt: &Checkpoint) {
        self.journal = Some(Journal::new(ETree::from_checkpoint(ckpt, 0)));
        self.others.clear();
        self.chosen = 0;
    }

    /// Forget everything (the open failed or another file is being opened).
    pub fn clear(&mut self) {
        self.journal = None;
        self.others.clear();
        self.chosen = 0;
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// The B files (input `i + 1` is `others()[i]`).
    pub fn others(&self) -> &[Other] {
        &self.others
    }

    /// B file `input` (1..), to read its tensors.
    pub fn other_mut(&mut self, input: usize) -> Option<&mut Other> {
        self.others.get_mut(input.checked_sub(1)?)
    }

    /// Open a B file for compare / transplant; returns its input number.
    pub fn open_b(&mut self, file: NamedSource) -> Result<usize, FormatError> {
        let ckpt = format::open(&*file.source, &file.name)?;
        self.others.push(Other {
            files: vec![file],
            checkpoint: ckpt,
            cache: crate::stats::StatsCache::new(),
        });
        self.chosen = self.others.len();
        Ok(self.others.len())
    }

    /// Make open B file `input` (1..) the one compare, the A/B view and transplant use.
    pub fn choose_b(&mut self, input: usize) -> Result<(), String> {
        if input == 0 || input > self.others.len() {
            return Err(format!("no file B #{input} is open"));
        }
        self.chosen = input;
        Ok(())
    }

    /// The chosen B file and its input number.
    pub fn b(&self) -> Option<(usize, &Other)> {
        let i = self.chosen;
        Some((i, self.others.get(i.checked_sub(1)?)?))
    }

    /// Turn a page operation into an [`Op`] (`a`: the opened checkpoint) through the one
    /// validator, [`Op::from_spec`].
    pub fn decode(&self, a: &Checkpoint, spec: &OpSpec) -> Result<Op, Refused> {
        let current = self
            .journal
            .as_ref()
            .ok_or_else(|| Refused("no file is open".into()))?
            .current();
        let mut ckpts: Vec<&Checkpoint> = vec![a];
        ckpts.extend(self.others.iter().map(|o| &o.checkpoint));
        Op::from_spec(
            spec,
            &SpecContext {
                ckpts: &ckpts,
                current,
                b: self.b().map(|(i, _)| i),
            },
        )
    }

    fn state(&self, id: RequestId, a: &Checkpoint, error: Option<String>) -> JournalReply {
        let Some(j) = &self.journal else {
            return JournalReply {
                id,
                error: Some(error.unwrap_or_else(|| "no file is open".into())),
                ..JournalReply::default()
            };
        };
        let mut ckpts: Vec<&Checkpoint> = vec![a];
        ckpts.extend(self.others.iter().map(|o| &o.checkpoint));
        let tree = j.current();
        let tensors = tree.tensors();
        // with no operation the edited index is the opened file's own, which the page has
        let (entries, values) = if j.ops().is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                edited_index(tree, &ckpts),
                super::values::collect_edited(&tree.root),
            )
        };
        JournalReply {
            id,
            file: String::new(),
            ops: j.ops().iter().map(Op::describe).collect(),
            redo: j.redo_list().into_iter().map(Op::describe).collect(),
            tensors: tensors.len() as u64,
            keys: tensors
                .iter()
                .take(PREVIEW_ROWS)
                .map(|(p, _)| p.join("/"))
                .collect(),
            drops_torch: planned_drops(tree, &ckpts, OutFormat::Torch),
            drops_safetensors: planned_drops(tree, &ckpts, OutFormat::Safetensors),
            error,
            entries,
            values,
            metadata: tree.metadata.clone(),
            applied: false,
        }
    }

    /// The journal's state, unchanged.
    pub fn list(&self, id: RequestId, a: &Checkpoint) -> JournalReply {
        self.state(id, a, None)
    }

    /// Apply `spec`, or refuse it and change nothing.
    pub fn apply(&mut self, id: RequestId, a: &Checkpoint, spec: &OpSpec) -> JournalReply {
        let res = self.decode(a, spec).and_then(|op| {
            let desc = op.describe();
            let j = self
                .journal
                .as_mut()
                .ok_or_else(|| Refused("no file is open".into()))?;
            // an operation that changes nothing is refused, not journaled
            let next = j
                .preview(&op)
                .map_err(|e| refused(format!("{desc}: refused: {e}")))?;
            if next == *j.current() {
                return Err(refused(format!("{desc}: not applied: it changes nothing")));
            }
            j.apply(op)
                .map_err(|e| refused(format!("{desc}: refused: {e}")))
        });
        let applied = res.is_ok();
        JournalReply {
            applied,
            ..self.state(id, a, res.err().map(|e| e.0))
        }
    }

    pub fn undo(&mut self, id: RequestId, a: &Checkpoint) -> JournalReply {
        let ok = self.journal.as_mut().is_some_and(Journal::undo);
        JournalReply {
            applied: ok,
            ..self.state(id, a, (!ok).then(|| "nothing to undo".to_string()))
        }
    }

    pub fn redo(&mut self, id: RequestId, a: &Checkpoint) -> JournalReply {
        let ok = self.journal.as_mut().is_some_and(Journal::redo);
        JournalReply {
            applied: ok,
            ..self.state(id, a, (!ok).then(|| "nothing to redo".to_string()))
        }
    }

    /// What `spec` would do, without doing it.
    pub fn preview(&self, id: RequestId, a: &Checkpoint, spec: &OpSpec) -> PreviewReply {
        let mut reply = PreviewReply {
            id,
            ..PreviewReply::default()
        };
        let Some(j) = &self.journal else {
            reply.error = Some("no file is open".into());
            return reply;
        };
        let next = self.decode(a, spec).and_then(|op| {
            let desc = op.describe();
            reply.describe = desc.clone();
            j.preview(&op)
                .map_err(|e| refused(format!("{desc}: refused: {e}")))
        });
        let next = match next {
            Ok(t) => t,
            Err(e) => {
                reply.error = Some(e.0);
                return reply;
            }
        };
        let old: Vec<(String, (usize, usize))> = j
            .current()
            .tensors()
            .into_iter()
            .map(|(p, t)| (p.join("/"), (t.input, t.index)))
            .collect();
        let new: Vec<(String, (usize, usize), Option<DType>)> = next
            .tensors()
            .into_iter()
            .map(|(p, t)| (p.join("/"), (t.input, t.index), t.cast))
            .collect();
        let same_tensors = old.iter().map(|(_, r)| r).eq(new.iter().map(|(_, r, _)| r));
        if same_tensors {
            // key operations (and casts, metadata) keep the tensors and their order: pair them
            // up and list the keys that changed
            for ((o, _), (n, _, _)) in old.iter().zip(&new) {
                if o != n {
                    reply.changed += 1;
                    if reply.renames.len() < PREVIEW_ROWS {
                        reply.renames.push((o.clone(), n.clone()));
                    }
                }
            }
        } else {
            let new_refs: crate::format::fastmap::KeySet<(usize, usize)> =
                new.iter().map(|(_, r, _)| *r).collect();
            let old_refs: crate::format::fastmap::KeySet<(usize, usize)> =
                old.iter().map(|(_, r)| *r).collect();
            for (o, r) in &old {
                if !new_refs.contains(r) {
                    reply.changed += 1;
                    if reply.removed.len() < PREVIEW_ROWS {
                        reply.removed.push(o.clone());
                    }
                }
            }
            for (n, r, _) in &new {
                if !old_refs.contains(r) {
                    reply.changed += 1;
                    if reply.added.len() < PREVIEW_ROWS {
                        reply.added.push(n.clone());
                    }
                }
            }
        }
        if let OpSpec::Cast { .. } = spec {
            let before: Vec<Option<DType>> = j
                .current()
                .tensors()
                .into_iter()
                .map(|(_, t)| t.cast)
                .collect();
            for ((n, _, cast), b) in new.iter().zip(before) {
                if *cast != b {
                    reply.changed += 1;
                    if reply.renames.len() < PREVIEW_ROWS {
                        let to = cast.map(|d| d.name()).unwrap_or("(stored dtype)");
                        reply.renames.push((n.clone(), format!("{n} as {to}")));
                    }
                }
            }
        }
        reply
    }

    /// Compare the opened checkpoint (A, unedited) with the chosen B.
    pub fn diff(
        &self,
        id: RequestId,
        a: &Checkpoint,
        a_src: &[&dyn Source],
        maps: &[(String, String)],
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> DiffReply {
        let Some((_, b)) = self.b() else {
            return DiffReply {
                id,
                error: Some("open a file B first".into()),
                ..DiffReply::default()
            };
        };
        let b_src: Vec<&dyn Source> = b.files.iter().map(|f| &*f.source).collect();
        match crate::stats::diff::diff(a, a_src, &b.checkpoint, &b_src, maps, progress) {
            Ok(r) => DiffReply::of(id, a, &r),
            Err(e) => DiffReply {
                id,
                error: Some(e.to_string()),
                ..DiffReply::default()
            },
        }
    }
}

/// The edited index of `tree` (`ckpts[i]`: input `i`): every tensor in the tree's order with
/// the path it will be written under, its dtype and bytes after a cast, its source, and the
/// journal's change (old path, stored dtype).
pub fn edited_index(tree: &ETree, ckpts: &[&Checkpoint]) -> Vec<EditedEntry> {
    tree.tensors()
        .into_iter()
        .filter_map(|(path, t)| {
            let info = ckpts.get(t.input)?.tensors.get(t.index)?;
            let mut entry = Entry::of(info);
            let cast_from = t.cast.filter(|d| *d != info.dtype).map(|_| info.dtype);
            if let Some(d) = t.cast {
                entry.dtype = d;
                entry.bytes = info.numel().saturating_mul(d.size() as u64);
            }
            let renamed_from = (path != info.path).then(|| info.path.clone());
            entry.path = path;
            Some(EditedEntry {
                entry,
                source: TensorSource {
                    input: t.input as u32,
                    tensor: t.index as u32,
                    cast: cast_from.and(t.cast),
                },
                renamed_from,
                cast_from,
            })
        })
        .collect()
}

/// Milliseconds of wall time (the browser's clock in wasm, where `Instant` panics).
fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    return js_sys::Date::now();
    #[cfg(not(target_arch = "wasm32"))]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Throttled progress: nothing for 200 ms, then at most every 100 ms.
pub struct Ticker {
    start: f64,
    last: f64,
}

impl Default for Ticker {
    fn default() -> Self {
        Self::new()
    }
}

impl Ticker {
    pub fn new() -> Self {
        let t = now_ms();
        Ticker { start: t, last: t }
    }
    /// True when a progress message is due now.
    pub fn due(&mut self) -> bool {
        let t = now_ms();
        if t - self.start >= 200.0 && t - self.last >= 100.0 {
            self.last = t;
            true
        } else {
            false
        }
    }
}

/// Bytes the tensors of `tree` take once written (after casts): the export's progress total.
pub fn output_bytes(tree: &ETree, ckpts: &[&Checkpoint]) -> u64 {
    tree.tensors()
        .into_iter()
        .map(|(_, t)| {
            let info = &ckpts[t.input].tensors[t.index];
            let d = t.cast.unwrap_or(info.dtype);
            info.numel().saturating_mul(d.size() as u64)
        })
        .sum()
}

#[cfg(test)]
mod tests;
