//! Hugging Face-style sharded outputs: the tensors of a tree split into files of at most a
//! given size, plus the `*.index.json` that `transformers` reads.
//!
//! Contract:
//! - Tensors are named by their path joined by `.` and taken in tree order. Shards are filled as
//!   `huggingface_hub` fills them: a tensor larger than the limit gets a shard of its own;
//!   otherwise a new shard starts when the tensor would take the current one over the limit.
//! - Names: `model-00001-of-0000N.safetensors` or `pytorch_model-00001-of-0000N.bin`, and
//!   `model.safetensors.index.json` / `pytorch_model.bin.index.json` holding
//!   `{"metadata": {"total_size": BYTES}, "weight_map": {name: shard}}` (keys sorted, two-space
//!   indent, as `save_pretrained` writes it). A single shard is written as `model.safetensors` /
//!   `pytorch_model.bin` without an index, as `save_pretrained` does.
//! - Each shard is a flat dict of its tensors, written by the ordinary writers (untouched tensors
//!   are copied byte for byte). Non-tensor values are dropped (and listed); for safetensors,
//!   tensors safetensors cannot hold are dropped and aliases (one tensor under two names) are
//!   written once, under the first name.
//! - All or nothing: every file is written in a private folder inside the output directory and
//!   moved into place only after all succeeded.

use super::plan::OutFormat;
use super::writer::{alias_key, count_non_tensor_values, AliasKey, Inputs, Report};
use crate::edit::tree::{ENode, ETree, TensorRef};
use crate::format::{DictKind, Key, TensorKind};

/// Parse a shard size: bytes, or a number with `KB MB GB TB` (powers of 1000) or
/// `KiB MiB GiB TiB` (powers of 1024), as `transformers` reads `max_shard_size`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        "TIB" => 1 << 40,
        _ => {
            return Err(format!(
                "--shard-size {s:?}: use e.g. 5GB, 500MB, 2GiB or bytes"
            ))
        }
    };
    // digits with at most one point, exactly: whole bytes of `num × mult` (no float parsing:
    // the page's wasm then carries none of it)
    let not_a_number = || format!("--shard-size {s:?}: not a number");
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 18 {
        return Err(not_a_number());
    }
    let digits = |d: &str| -> Option<u128> {
        d.bytes().try_fold(0u128, |a, c| {
            a.checked_mul(10)?.checked_add(u128::from(c - b'0'))
        })
    };
    let (w, f) = (digits(whole).ok_or_else(not_a_number)?, digits(frac));
    let scale = 10u128.pow(frac.len() as u32);
    let v = w
        .checked_mul(scale)
        .and_then(|x| x.checked_add(f?))
        .and_then(|x| x.checked_mul(u128::from(mult)))
        .map(|x| x / scale);
    match v.and_then(|v| u64::try_from(v).ok()) {
        Some(v) if v >= 1 => Ok(v),
        _ => Err(format!("--shard-size {s:?}: must be at least one byte")),
    }
}

/// One planned shard: its tensors (name, reference) and their bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub tensors: Vec<(String, TensorRef)>,
    pub bytes: u64,
}

/// What [`plan_shards`] decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShardPlan {
    pub shards: Vec<Shard>,
    pub total_size: u64,
    /// Values not written, with the reason.
    pub dropped: Vec<String>,
    /// (alias, kept name): written once under the kept name (safetensors).
    pub aliases: Vec<(String, String)>,
}

/// Split the tensors of `tree` into shards of at most `max` bytes (see the contract).
pub fn plan_shards(tree: &ETree, inputs: &Inputs, format: OutFormat, max: u64) -> ShardPlan {
    let mut p = ShardPlan::default();
    let mut seen: crate::format::fastmap::KeyMap<AliasKey, String> = Default::default();
    let mut cur = Shard {
        tensors: vec![],
        bytes: 0,
    };
    for (path, t) in tree.tensors() {
        let name = path.join(".");
        let info = &inputs.ckpts[t.input].tensors[t.index];
        let dtype = t.cast.unwrap_or(info.dtype);
        if format == OutFormat::Safetensors {
            if dtype.safetensors_name().is_none()
                || info.kind != TensorKind::Dense
                || info.storage.is_none()
            {
                p.dropped.push(format!(
                    "{name}: safetensors cannot hold this {dtype} tensor"
                ));
                continue;
            }
            let key = alias_key(&t, info);
            if let Some(kept) = seen.get(&key) {
                p.aliases.push((name, kept.clone()));
                continue;
            }
            seen.insert(key, name.clone());
        }
        let size = info.numel() * dtype.size() as u64;
        p.total_size += size;
        if size > max {
            p.shards.push(Shard {
                tensors: vec![(name, t)],
                bytes: size,
            });
            continue;
        }
        if cur.bytes + size > max && !cur.tensors.is_empty() {
            p.shards.push(std::mem::replace(
                &mut cur,
                Shard {
                    tensors: vec![],
                    bytes: 0,
                },
            ));
        }
        cur.tensors.push((name, t));
        cur.bytes += size;
    }
    if !cur.tensors.is_empty() || p.shards.is_empty() {
        p.shards.push(cur);
    }
    let leaves = count_non_tensor_values(tree);
    if leaves > 0 {
        p.dropped.push(format!(
            "{leaves} non-tensor values (sharded checkpoints hold tensors only)"
        ));
    }
    p
}

/// File names: (shard names, index name or None for a single shard).
pub fn shard_names(format: OutFormat, n: usize) -> (Vec<String>, Option<String>) {
    let (stem, ext) = match format {
        OutFormat::Safetensors => ("model", "safetensors"),
        OutFormat::Torch => ("pytorch_model", "bin"),
    };
    if n == 1 {
        return (vec![format!("{stem}.{ext}")], None);
    }
    (
        (1..=n)
            .map(|i| format!("{stem}-{i:05}-of-{n:05}.{ext}"))
            .collect(),
        Some(format!("{stem}.{ext}.index.json")),
    )
}

/// The index JSON (keys sorted, two-space indent, trailing newline).
pub fn index_json(plan: &ShardPlan, names: &[String]) -> String {
    let mut map: Vec<(&str, &str)> = plan
        .shards
        .iter()
        .zip(names)
        .flat_map(|(s, f)| s.tensors.iter().map(move |(n, _)| (n.as_str(), f.as_str())))
        .collect();
    crate::order::sort(&mut map);
    let mut out = String::from("{\n  \"metadata\": {\n");
    out.push_str(&format!("    \"total_size\": {}\n  }},\n", plan.total_size));
    out.push_str("  \"weight_map\": {");
    for (i, (k, f)) in map.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str(&format!(
            "    {}: {}",
            serde_json::to_string(k).expect("json"),
            serde_json::to_string(f).expect("json")
        ));
    }
    out.push_str(if map.is_empty() {
        "}\n}\n"
    } else {
        "\n  }\n}\n"
    });
    out
}

/// The tree of one shard: a flat dict of its tensors, with `tree`'s safetensors metadata.
pub fn shard_tree(tree: &ETree, shard: &Shard) -> ETree {
    ETree {
        root: ENode::Dict {
            kind: DictKind::Dict,
            items: shard
                .tensors
                .iter()
                .map(|(n, t)| (Key::Str(n.clone()), ENode::Tensor(*t)))
                .collect(),
            attrs: vec![],
        },
        metadata: tree.metadata.clone(),
    }
}

/// What a sharded write did.
#[derive(Debug, Clone, Default)]
pub struct ShardReport {
    /// The files written, in order (shards, then the index if any).
    pub files: Vec<String>,
    pub plan: ShardPlan,
    /// The writers' reports, one per shard.
    pub reports: Vec<Report>,
}

/// Write `tree` as shards of at most `max` bytes into directory `dir` (created if missing).
#[cfg(not(target_arch = "wasm32"))]
pub fn write_sharded(
    tree: &ETree,
    inputs: &Inputs,
    format: OutFormat,
    dir: &std::path::Path,
    max: u64,
) -> Result<ShardReport, crate::format::FormatError> {
    let shown = dir.display().to_string();
    use crate::format::FormatError;
    let io = |e: std::io::Error| FormatError::new(e.to_string()).in_file(&shown);
    let plan = plan_shards(tree, inputs, format, max);
    if plan.total_size == 0 && plan.shards.iter().all(|s| s.tensors.is_empty()) {
        return Err(FormatError::new("nothing to write: no tensors").in_file(&shown));
    }
    let (names, index) = shard_names(format, plan.shards.len());
    std::fs::create_dir_all(dir).map_err(io)?;
    // written with their final names in a private folder, moved into place when all succeeded
    let tmp = dir.join(format!(".weightscope-shards-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io)?;
    let mut reports = vec![];
    let result = (|| -> Result<(), FormatError> {
        for (shard, name) in plan.shards.iter().zip(&names) {
            let r =
                super::plan::write_file(&shard_tree(tree, shard), inputs, format, &tmp.join(name))?;
            reports.push(r);
        }
        if let Some(ix) = &index {
            std::fs::write(tmp.join(ix), index_json(&plan, &names)).map_err(io)?;
        }
        Ok(())
    })();
    let mut files = names.clone();
    files.extend(index);
    let result = result.and_then(|()| {
        for n in &files {
            std::fs::rename(tmp.join(n), dir.join(n)).map_err(io)?;
        }
        Ok(())
    });
    for n in &files {
        let _ = std::fs::remove_file(tmp.join(n));
    }
    let _ = std::fs::remove_dir(&tmp);
    result?;
    Ok(ShardReport {
        files,
        plan,
        reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_transformers() {
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5kB"), Ok(1500));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("GB").is_err());
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        assert_eq!(parse_size(".5kB"), Ok(500));
        assert_eq!(parse_size("1.0000001MB"), Ok(1_000_000));
        assert_eq!(parse_size("16TiB"), Ok(16 << 40));
        assert!(parse_size("0.1").is_err()); // under one byte
        assert!(parse_size("1.2.3MB").is_err());
        assert!(parse_size(".").is_err());
        assert!(parse_size("99999999999999999999999TB").is_err()); // past u64
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn names_and_index_follow_save_pretrained() {
        let (n, i) = shard_names(OutFormat::Safetensors, 2);
        assert_eq!(
            n,
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        );
        assert_eq!(i.as_deref(), Some("model.safetensors.index.json"));
        let (n, i) = shard_names(OutFormat::Torch, 1);
        assert_eq!(n, ["pytorch_model.bin"]);
        assert_eq!(i, None);
        let t = |i| TensorRef {
            input: 0,
            index: i,
            cast: None,
            dtype: crate::format::DType::F32,
        };
        let plan = ShardPlan {
            shards: vec![
                Shard {
                    tensors: vec![("b".into(), t(0))],
                    bytes: 4,
                },
                Shard {
                    tensors: vec![("a".into(), t(1))],
                    bytes: 4,
                },
            ],
            total_size: 8,
            ..Default::default()
        };
        let j = index_json(&plan, &["s1".into(), "s2".into()]);
        assert_eq!(
            j,
            "{\n  \"metadata\": {\n    \"total_size\": 8\n  },\n  \"weight_map\": {\n    \"a\": \"s2\",\n    \"b\": \"s1\"\n  }\n}\n"
        );
    }
}
