//! Format detection from the first bytes of a file (docs/formats.md §1), never the extension.
//!
//! Contract: [`detect`] looks at up to [`HEAD_LEN`] leading bytes and the total length and names
//! the container family. It never fails; anything unrecognised is [`Format::Unknown`].

use serde::Serialize;

/// How many leading bytes [`detect`] wants (tar's `ustar` magic sits at 257).
pub const HEAD_LEN: usize = 512;

/// The legacy torch magic: pickled 80-bit int 0x1950A86A20F9469CFC6C (LONG1, 10 bytes), then STOP.
pub const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E,
];

/// A checkpoint container family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Format {
    /// `torch.save` zip (PyTorch ≥ 1.6).
    #[serde(rename = "torch-zip")]
    TorchZip,
    /// A zip holding `constants.pkl`: a TorchScript archive (`torch.jit.save`).
    #[serde(rename = "torchscript")]
    TorchScript,
    /// The legacy stacked-pickle stream (0.1.10 – 1.5, or `_use_new_zipfile_serialization=False`).
    #[serde(rename = "torch-legacy")]
    TorchLegacy,
    /// The legacy tar format (PyTorch 0.1.x before 0.1.10).
    #[serde(rename = "torch-tar")]
    TorchTar,
    /// A `.safetensors` file.
    #[serde(rename = "safetensors")]
    Safetensors,
    /// A `model.safetensors.index.json` with its shards.
    #[serde(rename = "safetensors-sharded")]
    SafetensorsSharded,
    /// A `pytorch_model.bin.index.json` with its shards.
    #[serde(rename = "torch-sharded")]
    TorchSharded,
    /// A `PYTORCH1` preview container (refused, as torch refuses it).
    #[serde(rename = "torch-preview")]
    TorchPreview,
    /// A pickle stream that is not a checkpoint format (a plain `pickle.dump`, a renamed
    /// payload): torch.load would still unpickle it, so its globals are scanned.
    #[serde(rename = "pickle")]
    Pickle,
    /// Nothing we recognise.
    #[serde(rename = "unknown")]
    Unknown,
}

impl Format {
    /// The stable name used by the CLI and the page (`torch-zip`, `safetensors`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Format::TorchZip => "torch-zip",
            Format::TorchScript => "torchscript",
            Format::TorchLegacy => "torch-legacy",
            Format::TorchTar => "torch-tar",
            Format::Safetensors => "safetensors",
            Format::SafetensorsSharded => "safetensors-sharded",
            Format::TorchSharded => "torch-sharded",
            Format::TorchPreview => "torch-preview",
            Format::Pickle => "pickle",
            Format::Unknown => "unknown",
        }
    }
    /// A human description.
    pub fn describe(self) -> &'static str {
        match self {
            Format::TorchZip => "PyTorch zip checkpoint (torch.save, PyTorch ≥ 1.6)",
            Format::TorchScript => "TorchScript archive (torch.jit.save)",
            Format::TorchLegacy => "legacy PyTorch pickle stream (PyTorch 0.1.10 – 1.5)",
            Format::TorchTar => "legacy PyTorch tar archive (PyTorch 0.1.x)",
            Format::Safetensors => "safetensors",
            Format::SafetensorsSharded => "sharded safetensors (index + shards)",
            Format::TorchSharded => "sharded PyTorch checkpoint (index + shards)",
            Format::TorchPreview => "PyTorch 1.0 preview container (PYTORCH1), unsupported",
            Format::Pickle => {
                "a pickle stream, not a checkpoint (torch.load would still unpickle it)"
            }
            Format::Unknown => "not a checkpoint format weightscope recognises",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Name the format of a file from its first bytes (`head`, up to [`HEAD_LEN`]) and its length.
pub fn detect(head: &[u8], file_len: u64) -> Format {
    if head.starts_with(b"PK\x03\x04") {
        return Format::TorchZip;
    }
    if head.len() >= 8 && head.starts_with(b"PYTORCH1") {
        return Format::TorchPreview;
    }
    if head.starts_with(&LEGACY_MAGIC) {
        return Format::TorchLegacy;
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Format::TorchTar;
    }
    if head.len() >= 9 {
        let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if n >= 2 && n <= file_len.saturating_sub(8) {
            let rest = &head[8..head.len().min(8 + n as usize)];
            if let Some(&c) = rest.iter().find(|&&c| c != b' ') {
                if c == b'{' {
                    return Format::Safetensors;
                }
            }
        }
        // A broken safetensors file whose header length is too large for the file (or for the
        // reader's limit): a plausible length (< 2^40) followed by `{"` is still recognised,
        // so that the safetensors reader can say what is wrong with its header.
        if (2..1 << 40).contains(&n) && head[8..].starts_with(b"{\"") {
            return Format::Safetensors;
        }
    }
    if looks_like_index_json(head) {
        if head_contains(head, b".safetensors\"") {
            return Format::SafetensorsSharded;
        }
        return Format::TorchSharded;
    }
    if super::pickle::scan::looks_like_pickle(head) {
        return Format::Pickle;
    }
    Format::Unknown
}

fn head_contains(head: &[u8], needle: &[u8]) -> bool {
    head.windows(needle.len()).any(|w| w == needle)
}

/// A sharded-checkpoint index: JSON text with a `weight_map`.
fn looks_like_index_json(head: &[u8]) -> bool {
    let first = head.iter().find(|c| !c.is_ascii_whitespace());
    first == Some(&b'{') && head_contains(head, b"\"weight_map\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_family() {
        assert_eq!(detect(b"PK\x03\x04rest", 100), Format::TorchZip);
        let mut legacy = LEGACY_MAGIC.to_vec();
        legacy.extend_from_slice(&[0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]);
        assert_eq!(detect(&legacy, 1000), Format::TorchLegacy);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect(&tar, 10240), Format::TorchTar);
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert_eq!(detect(&st, 10), Format::Safetensors);
        assert_eq!(detect(b"PYTORCH1xxxx", 12), Format::TorchPreview);
        assert_eq!(
            detect(b"hello world, not a checkpoint", 29),
            Format::Unknown
        );
        assert_eq!(detect(b"", 0), Format::Unknown);
        // pickles of any protocol that are not torch's legacy stream
        assert_eq!(
            detect(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00N.", 13),
            Format::Pickle
        );
        assert_eq!(detect(b"(dp0\nS'a'\np1\nI1\ns.", 20), Format::Pickle);
        assert_eq!(detect(b"cos\nsystem\n(S'echo'\ntR.", 24), Format::Pickle);
        assert_eq!(detect(b"\x80\x02}q\x00", 100), Format::Pickle); // cut by the head
        assert_eq!(detect(b"Nothing to see", 14), Format::Unknown);
        assert_eq!(detect(b"{\"json\": 1}", 11), Format::Unknown);
        // a safetensors length that points past the end is not safetensors
        let mut bad = 1000u64.to_le_bytes().to_vec();
        bad.extend_from_slice(b"{}");
        assert_eq!(detect(&bad, 10), Format::Unknown);
        // ... unless a JSON object with a key follows: a safetensors file with a bad length
        let mut bad = 200_000_000u64.to_le_bytes().to_vec();
        bad.extend_from_slice(br#"{"a":{}}"#);
        assert_eq!(detect(&bad, 16), Format::Safetensors);
        let idx = br#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}"#;
        assert_eq!(detect(idx, idx.len() as u64), Format::SafetensorsSharded);
    }
}
