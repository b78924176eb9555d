//! The one description of an edit operation and its one validator.
//!
//! Contract: [`OpSpec`] is an operation as a user states it — what the page sends (serde: in a
//! request's postcard bytes; as JSON, externally tagged: `{"strip_prefix": {"prefix": "module."}}`;
//! every field always written) and what the CLI's flags parse
//! into. [`Op::from_spec`] is the only way either becomes an [`Op`]: it compiles patterns, refuses
//! empty delete / keep / transplant patterns, empty keys and paths, cast targets outside [`CAST_TARGETS`], and a
//! transplant with no B file or whose pattern matches no tensor of B (or would replace a tensor of
//! another shape or dtype). A refusal is a [`Refused`] naming the operation; nothing is applied.

use super::ops::{parse_regex, Op, Refused};
use super::transplant;
use super::tree::ETree;
use crate::format::{Checkpoint, DType};
use regex_lite::Regex;
use serde::{Deserialize, Serialize};

/// The dtypes a cast may target (floating-point tensors only are cast).
pub const CAST_TARGETS: [DType; 3] = [DType::F16, DType::BF16, DType::F32];

/// An edit operation as the user states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpSpec {
    StripPrefix {
        prefix: String,
    },
    AddPrefix {
        prefix: String,
    },
    /// One key (its own key or `/`-joined path) to a new key.
    Rename {
        from: String,
        to: String,
    },
    /// Regex replace on keys (`$1` or `\1` for groups).
    Replace {
        pattern: String,
        replacement: String,
    },
    Delete {
        pattern: String,
    },
    /// Delete a selected key or subtree (path segments).
    DeletePath {
        path: Vec<String>,
    },
    Keep {
        pattern: String,
    },
    /// Keep only a selected key or subtree.
    KeepPath {
        path: Vec<String>,
    },
    /// The container at this `/`-joined path becomes the root.
    Extract {
        path: String,
    },
    /// Cast floating-point tensors (all, or those matching `pattern`) to one of [`CAST_TARGETS`].
    Cast {
        dtype: DType,
        #[serde(default)]
        pattern: Option<String>,
    },
    /// Set (`Some`) or remove (`None`) a safetensors `__metadata__` entry.
    SetMetadata {
        key: String,
        #[serde(default)]
        value: Option<String>,
    },
    /// Copy B's tensors whose key or path matches `pattern` into A, the match replaced by
    /// `replacement` (a prefix mapping such as `^backbone\.` → `encoder.`).
    Transplant {
        pattern: String,
        #[serde(default)]
        replacement: Option<String>,
        /// Without a replacement: `(A_PREFIX, B_PREFIX)` rules (as `diff --map`) that give each
        /// B key its A name ([`transplant::map_back`]), so matching A tensors are replaced.
        #[serde(default)]
        maps: Vec<(String, String)>,
    },
}

/// What a spec is resolved against.
pub struct SpecContext<'a> {
    /// Every input: 0 is the edited file, the others are B files.
    pub ckpts: &'a [&'a Checkpoint],
    /// The tree the operation will apply to.
    pub current: &'a ETree,
    /// The input a transplant takes its tensors from (`None`: no B file is open).
    pub b: Option<usize>,
}

/// A user pattern that must not be empty (an empty one would match everything).
fn pattern(op: &str, p: &str) -> Result<Regex, Refused> {
    if p.is_empty() {
        return Err(Refused(format!("{op}: the pattern is empty")));
    }
    parse_regex(p)
}

/// `^path(/|$)` of a selected key or subtree (its `/`-joined path), as a pattern.
fn path_pattern(op: &str, path: &[String]) -> Result<Regex, Refused> {
    if path.is_empty() {
        return Err(Refused(format!("{op}: no path was given")));
    }
    parse_regex(&format!("^{}(/|$)", regex_lite::escape(&path.join("/"))))
}

impl Op {
    /// Validate `spec` and turn it into an operation over `cx`.
    pub fn from_spec(spec: &OpSpec, cx: &SpecContext) -> Result<Op, Refused> {
        Ok(match spec {
            OpSpec::StripPrefix { prefix } => Op::StripPrefix(prefix.clone()),
            OpSpec::AddPrefix { prefix } => Op::AddPrefix(prefix.clone()),
            OpSpec::Rename { from, to } => Op::Rename {
                from: from.clone(),
                to: to.clone(),
            },
            OpSpec::Replace {
                pattern,
                replacement,
            } => Op::replace(pattern, replacement)?,
            OpSpec::Delete { pattern: p } => Op::Delete(pattern("delete", p)?),
            OpSpec::DeletePath { path } => Op::Delete(path_pattern("delete", path)?),
            OpSpec::Keep { pattern: p } => Op::Keep(pattern("keep", p)?),
            OpSpec::KeepPath { path } => Op::Keep(path_pattern("keep", path)?),
            OpSpec::Extract { path } => {
                let segs: Vec<String> = path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if segs.is_empty() {
                    return Err(Refused("extract: the path is empty".into()));
                }
                Op::Extract(segs)
            }
            OpSpec::Cast { dtype, pattern: p } => {
                check_cast_target(*dtype)?;
                let pattern = match p.as_deref() {
                    None | Some("") => None,
                    Some(p) => Some(parse_regex(p)?),
                };
                Op::Cast {
                    dtype: *dtype,
                    pattern,
                }
            }
            OpSpec::SetMetadata { key, value } => {
                if key.is_empty() {
                    return Err(Refused("metadata: the key is empty".into()));
                }
                Op::SetMetadata {
                    key: key.clone(),
                    value: value.clone(),
                }
            }
            OpSpec::Transplant {
                pattern: p,
                replacement,
                maps,
            } => {
                let Some(input) = cx.b else {
                    return Err(Refused("transplant: open a file B first".into()));
                };
                let re = pattern("transplant", p)?;
                let repl = replacement.as_deref().filter(|r| !r.is_empty());
                let mut tensors = transplant::select(cx.ckpts[input], input, &re, repl);
                if repl.is_none() && !maps.is_empty() {
                    for (p, _) in tensors.iter_mut() {
                        if let Some(k) = p.last_mut() {
                            *k = transplant::map_back(k, maps);
                        }
                    }
                }
                if tensors.is_empty() {
                    return Err(Refused(format!("transplant: no tensor of B matches /{p}/")));
                }
                transplant::check_shapes(cx.current, cx.ckpts, &tensors)?;
                Op::Transplant {
                    input,
                    pattern: re,
                    prefix: repl.unwrap_or_default().to_string(),
                    tensors,
                }
            }
        })
    }
}

/// Refuse a cast to a dtype outside [`CAST_TARGETS`].
pub fn check_cast_target(dtype: DType) -> Result<(), Refused> {
    if CAST_TARGETS.contains(&dtype) {
        return Ok(());
    }
    let names: Vec<&str> = CAST_TARGETS.iter().map(|d| d.name()).collect();
    Err(Refused(format!(
        "cast: {dtype} is not a cast target ({})",
        names.join(", ")
    )))
}
