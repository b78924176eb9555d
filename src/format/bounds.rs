//! Checked arithmetic on every tensor's numbers, at open: what torch's `set_` checks when it
//! rebuilds a tensor (`checkInBoundsForStorage`), so a file torch refuses is refused here too.
//!
//! Contract: [`check`] fails, naming the tensor, when
//! - shape and strides have different lengths;
//! - the element count or the byte count overflows 64 bits;
//! - a non-empty view reaches outside its storage: `(offset + Σ (size_i − 1) × stride_i + 1) ×
//!   itemsize` (each step checked) is larger than the storage's bytes. Empty tensors (a zero
//!   dimension) may have any offset and strides, as in torch.
//!
//! Every later consumer (streaming, statistics, export) may then compute element indices and
//! byte offsets of a tensor in `u64` without overflow; on wasm32, where `usize` is 32 bits,
//! callers still convert with `try_from` before indexing memory. O(tensors × dimensions).

use super::checkpoint::{Checkpoint, TensorInfo, TensorKind};
use super::error::{FormatError, Result};

/// Check every tensor of `ckpt` (per-channel quantizer tensors included).
pub fn check(ckpt: &Checkpoint) -> Result<()> {
    for t in &ckpt.tensors {
        check_one(ckpt, t)?;
        if let TensorKind::Quantized {
            per_channel: Some(pc),
            ..
        } = &t.kind
        {
            check_one(ckpt, &pc.scales)?;
            check_one(ckpt, &pc.zero_points)?;
        }
    }
    Ok(())
}

fn check_one(ckpt: &Checkpoint, t: &TensorInfo) -> Result<()> {
    let place = || format!("tensor '{}'", t.path.join("."));
    let fail = |m: String| FormatError::at(place(), m);
    if t.shape.len() != t.strides.len() {
        return Err(fail(format!(
            "{} sizes but {} strides",
            t.shape.len(),
            t.strides.len()
        )));
    }
    let itemsize = t.dtype.size() as u64;
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |a, &n| a.checked_mul(n))
        .ok_or_else(|| {
            fail(format!(
                "size {:?} has more elements than fit in 64 bits",
                t.shape
            ))
        })?;
    numel.checked_mul(itemsize).ok_or_else(|| {
        fail(format!(
            "size {:?} has more bytes than fit in 64 bits",
            t.shape
        ))
    })?;
    let Some(s) = t.storage.and_then(|i| ckpt.storages.get(i)) else {
        return Ok(()); // meta tensors: no storage to lie inside
    };
    if numel == 0 {
        return Ok(());
    }
    let overflow = || {
        fail(format!(
            "sizes {:?}, strides {:?} and storage offset {}: the view's extent overflows 64 bits",
            t.shape, t.strides, t.storage_offset
        ))
    };
    let mut last = t.storage_offset;
    for (&n, &st) in t.shape.iter().zip(&t.strides) {
        let reach = (n - 1).checked_mul(st).ok_or_else(overflow)?;
        last = last.checked_add(reach).ok_or_else(overflow)?;
    }
    let need = last
        .checked_add(1)
        .and_then(|e| e.checked_mul(itemsize))
        .ok_or_else(overflow)?;
    if need > s.nbytes {
        return Err(fail(format!(
            "sizes {:?}, strides {:?}, storage offset {} and itemsize {itemsize} need a storage of {need} bytes, but {} holds {} bytes (out of bounds, as torch refuses)",
            t.shape, t.strides, t.storage_offset, s.record, s.nbytes
        )));
    }
    Ok(())
}
