//! A training run at a glance: statistics of every tensor across the checkpoints of one run.
//!
//! # Contract
//! - **Steps.** Each checkpoint (a single file or a sharded set, opened as one [`Checkpoint`]) is
//!   one step. [`step_of`] finds its training step: the root dict's integer `global_step`, else
//!   `step`, else `epoch` (a Lightning checkpoint keeps them at the top level), else the same
//!   names in safetensors `__metadata__` (a decimal integer). [`order`] sorts the checkpoints by
//!   step when every one has a step (equal steps by name), otherwise all of them by the natural
//!   order of their names ([`natural_cmp`]: `run-2` before `run-10`).
//! - **Tensors.** Only the model's state dict counts ([`model_tensors`]): the root itself when it
//!   directly holds a tensor, else the root dict's `state_dict`, `model_state_dict` or `model`
//!   entry (first present that is a dict), else the whole tree. A tensor's key is its path below
//!   that node joined by `/` (a plain state dict's own keys). Tensors without data (meta) and
//!   those outside the state dict (optimizer moments) are left out. Keys are matched by name
//!   across steps; a key missing at a step is `null` there. Keys are listed in order of first
//!   appearance (step order, then the checkpoint's tensor order).
//! - **Metrics** per tensor and step ([`Point`]), from the statistics engine's moments (one read,
//!   [`StatsOptions::moments_only`]; for float32 / float64 compared with the same dtype, in one
//!   loop per block with the change sums, [`super::fused`], bit-identical): `std` (population,
//!   ddof = 0), `mean`, `abs_max`, `l2` — all over the finite values, `null` when there are none; `zero_fraction` = zeros / all values
//!   (`null` for an empty tensor); `nonfinite` = NaN + ±inf count; `rel_change` =
//!   ‖wₜ − wₜ₋₁‖₂ / ‖wₜ₋₁‖₂ over the values as float64 (complex as real/imaginary pairs, quantized
//!   as integer codes), computed while wₜ streams by reading wₜ₋₁'s same elements chunk by chunk
//!   (neither is held whole; the sums run over fixed blocks of values, so the result does not
//!   depend on the read size). `rel_change` is `null` at the first step, when the key is missing at
//!   t or t−1, when the shapes differ or one is complex and the other not, when either tensor holds
//!   a NaN or ±inf (or the sums overflow), and when ‖wₜ₋₁‖ = 0. Values are the logical ones
//!   (negated / conjugated views with their sign bits applied, as in [`super::run`]).
//! - **Expanded views** (zero strides, `w.expand(2**40, 3)`) cost their distinct elements: the
//!   metrics come from those with their multiplicity ([`super::expanded::scale`]), and so does
//!   `rel_change` when both steps repeat along the same dimensions. When they repeat along
//!   different ones, both are read over the dimensions neither repeats; if that is more than
//!   2^24 values and more than either step's distinct elements, `rel_change` is `null` (comparing
//!   would cost more than reading both files).
//! - **Flags** ([`flags`]), on floating-point and complex tensors only (integer counters such as
//!   `num_batches_tracked` change by design):
//!   - `jump` at step t: `rel_change[t] > 10 × median` of the tensor's non-null `rel_change` values
//!     over the run (numpy's median: mean of the middle two for an even count). Never when that
//!     median is 0 (10 × 0 would flag every change of a mostly frozen tensor). With fewer than
//!     three values no value can exceed it.
//!   - `nonfinite` at step t: `nonfinite[t] > 0` while the previous step at which the tensor is
//!     present had none (or there is no such step): a NaN/inf appearing, flagged once until it
//!     goes away again.
//!   - `dead` at step t: `std[t] < 1e-3 × std[f]`, f the first step with a non-null std, which must
//!     be > 0, while the previous present step was not below it (or there is none after f):
//!     flagged when the std collapses, once until it recovers.
//!
//!   Flags are sorted by step index, then by the tensor's place in `tensors`, then by kind (jump,
//!   nonfinite, dead).
//! - **Work split.** [`step_points`] computes one step from its checkpoint and the previous one
//!   (a parallel worker can take any step; the previous checkpoint is read again);
//!   [`run_points`] computes every step of a run reading each checkpoint once (tensor by tensor
//!   across the steps, the previous step's values of the tensor kept from its read) — same
//!   results; [`assemble`] joins the steps into a [`TrendReport`] (the CLI's `--json`) and
//!   computes the flags; [`to_csv`] writes the same table, one row per tensor and step. Progress
//!   is in bytes read; returning false cancels.
//!
//! Memory: [`step_points`] holds one chunk of each of the two checkpoints at a time, plus, for a
//! non-contiguous view of the previous checkpoint, that view (see [`super::diff`]);
//! [`run_points`] also holds one tensor's previous values, up to [`HOLD_LIMIT`] bytes (a larger
//! tensor's previous values are read again chunk by chunk).

use super::diff::{decode, Elements};
use super::engine::{as_values, tensor_stats, StatsInput, StatsOptions, TensorStats, BLOCK};
use super::fused::{fused_ok, ChangeMoments, Lanes};
use super::moments::Val;
use super::run::{dequant_of, read_logical, sign_flips};
use crate::format::data::read_tensor_owned;
use crate::format::element::{Decoder, Lane};
use crate::format::fastmap::KeyMap;
use crate::format::{Checkpoint, DKind, DType, FormatError, Key, Node, Result, Source, TensorInfo};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering;

/// Factor of the `jump` flag over the tensor's median relative change.
pub const JUMP_FACTOR: f64 = 10.0;
/// Fraction of the first std below which a tensor is flagged `dead`.
pub const DEAD_FRACTION: f64 = 1e-3;

/// One checkpoint of the run, in step order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    pub file: String,
    pub step: Option<i64>,
}

/// One tensor's metrics at one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub std: Option<f64>,
    pub mean: Option<f64>,
    pub abs_max: Option<f64>,
    pub l2: Option<f64>,
    pub zero_fraction: Option<f64>,
    pub nonfinite: u64,
    pub rel_change: Option<f64>,
    /// Floating-point or complex dtype (flags apply).
    pub floating: bool,
}

/// Every tensor of one step: `keys[i]` ↔ `points[i]`, in the checkpoint's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepPoints {
    pub keys: Vec<String>,
    pub points: Vec<Point>,
}

/// One tensor across the run: one value per step, `None` where it is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub key: String,
    pub std: Vec<Option<f64>>,
    pub mean: Vec<Option<f64>>,
    pub abs_max: Vec<Option<f64>>,
    pub l2: Vec<Option<f64>>,
    pub zero_fraction: Vec<Option<f64>>,
    pub nonfinite: Vec<Option<u64>>,
    pub rel_change: Vec<Option<f64>>,
    /// Floating-point or complex at some step (flags apply); not part of the JSON.
    #[serde(skip)]
    pub floating: bool,
}

/// What a flag reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    Jump,
    Nonfinite,
    Dead,
}

impl FlagKind {
    pub fn name(self) -> &'static str {
        match self {
            FlagKind::Jump => "jump",
            FlagKind::Nonfinite => "nonfinite",
            FlagKind::Dead => "dead",
        }
    }
}

/// A tensor at a step that looks wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub key: String,
    pub step_index: usize,
    pub kind: FlagKind,
}

/// The whole run: the CLI's `trend --json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendReport {
    pub steps: Vec<StepInfo>,
    pub tensors: Vec<Series>,
    pub flags: Vec<Flag>,
}

/// Compare with digit runs as numbers: `a2 < a10`, `layers.9 < layers.10`; equal runs with
/// different leading zeros, and otherwise equal strings, fall back to byte order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let m = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (p, q) = (&x[..n], &y[..m]);
                let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
                let (p2, q2) = (&p[strip(p)..], &q[strip(q)..]);
                let o = p2.len().cmp(&q2.len()).then_with(|| p2.cmp(q2));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

const STEP_NAMES: [&str; 3] = ["global_step", "step", "epoch"];

/// The training step recorded in a checkpoint (see the module doc), if any.
pub fn step_of(ckpt: &Checkpoint) -> Option<i64> {
    let items = match &ckpt.root {
        Node::Dict { items, .. } => items.as_slice(),
        _ => &[],
    };
    STEP_NAMES.iter().find_map(|name| {
        let in_root = items.iter().find_map(|(k, v)| match (k, v) {
            (Key::Str(s), Node::Int { value }) if s == name => Some(*value),
            _ => None,
        });
        in_root.or_else(|| {
            ckpt.metadata
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.trim().parse().ok())
        })
    })
}

/// The order of the checkpoints `(name, step)`: indices into `items`, by step when every one has
/// a step (ties by name), else by the names' natural order.
pub fn order(items: &[(String, Option<i64>)]) -> Vec<usize> {
    let by_step = items.iter().all(|(_, s)| s.is_some());
    crate::order::indices_by(items.len(), &|a, b| {
        let name = natural_cmp(&items[a].0, &items[b].0);
        if by_step {
            items[a].1.cmp(&items[b].1).then(name)
        } else {
            name
        }
    })
}

/// The path of the model's state dict within the tree (see the module doc).
fn state_dict_prefix(ckpt: &Checkpoint) -> Vec<String> {
    let Node::Dict { items, .. } = &ckpt.root else {
        return vec![];
    };
    if items.iter().any(|(_, v)| matches!(v, Node::Tensor { .. })) {
        return vec![];
    }
    for name in ["state_dict", "model_state_dict", "model"] {
        let hit = items
            .iter()
            .any(|(k, v)| matches!(k, Key::Str(s) if s == name) && matches!(v, Node::Dict { .. }));
        if hit {
            return vec![name.to_string()];
        }
    }
    vec![]
}

/// The model's tensors with data: `(key, tensor index)`, in the checkpoint's order.
pub fn model_tensors(ckpt: &Checkpoint) -> Vec<(String, usize)> {
    let prefix = state_dict_prefix(ckpt);
    ckpt.tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| t.storage.is_some() && t.path.starts_with(&prefix))
        .map(|(i, t)| (t.path[prefix.len()..].join("/"), i))
        .collect()
}

/// A checkpoint with its sources (`sources[i]` reads `ckpt.files[i]`).
#[derive(Clone, Copy)]
pub struct CheckpointRef<'a> {
    pub ckpt: &'a Checkpoint,
    pub sources: &'a [&'a dyn Source],
}

impl CheckpointRef<'_> {
    fn file_of(&self, i: usize) -> String {
        self.ckpt.tensors[i]
            .storage
            .and_then(|s| self.ckpt.files.get(self.ckpt.storages[s].file))
            .or(self.ckpt.files.first())
            .cloned()
            .unwrap_or_default()
    }
}

/// Decode buffers: f32 prev / cur, f64 prev / cur, f32 scratch.
type Buffers = (Vec<f32>, Vec<f32>, Vec<f64>, Vec<f64>, Vec<f32>);

/// Most bytes of one tensor kept in memory as the previous step's values while the run is walked
/// ([`run_points`]); a larger tensor's previous values are read again range by range.
pub const HOLD_LIMIT: u64 = 128 << 20;

/// Beyond this many values, two steps' expanded views repeated along different dimensions are
/// not compared (see the module doc).
const COMMON_VIEW_FLOOR: u64 = 1 << 24;

/// Flip the sign bits a negated / conjugated view needs ([`sign_flips`]) in `bytes`.
fn apply_flips(flips: &Option<(usize, Vec<usize>)>, bytes: &mut [u8]) {
    if let Some((size, offsets)) = flips {
        for e in bytes.chunks_exact_mut(*size) {
            for &o in offsets {
                e[o] ^= 0x80;
            }
        }
    }
}

/// Where the previous step's values come from.
enum Prev<'a> {
    /// Read again range by range (logical values after the sign flips).
    Ranges(Box<Elements<'a>>, Option<(usize, Vec<usize>)>),
    /// Held in memory from the previous step's read (logical values).
    Held(&'a [u8]),
}

/// ‖cur − prev‖² and ‖prev‖² accumulated chunk by chunk as `cur` streams.
struct Change<'a> {
    prev: Prev<'a>,
    prev_size: usize,
    dec_prev: Decoder,
    dec_cur: Decoder,
    cur_size: usize,
    first: u64,
    lanes: Lanes,
    comparable: bool,
    bufs: Buffers,
    /// Multiplicity of every compared value (expanded views compare their distinct elements).
    mult: u64,
    /// Both sides float32, or both float64.
    same_native: Option<DType>,
}

impl<'a> Change<'a> {
    fn new(prev: Prev<'a>, prev_dtype: DType, cur_dtype: DType, mult: u64) -> Change<'a> {
        Change {
            prev,
            prev_size: prev_dtype.size(),
            dec_prev: Decoder::new(prev_dtype),
            dec_cur: Decoder::new(cur_dtype),
            cur_size: cur_dtype.size(),
            first: 0,
            lanes: Lanes::default(),
            comparable: true,
            bufs: Default::default(),
            mult,
            same_native: (prev_dtype == cur_dtype && matches!(cur_dtype, DType::F32 | DType::F64))
                .then_some(cur_dtype),
        }
    }

    /// Bytes of the previous step read to compare `cur_bytes` bytes of the current one.
    fn prev_bytes_for(&self, cur_bytes: u64) -> u64 {
        match self.prev {
            Prev::Ranges(..) => cur_bytes / self.cur_size as u64 * self.prev_size as u64,
            Prev::Held(_) => 0,
        }
    }

    /// The previous step's logical bytes of the next `n` values (None once not comparable).
    fn take_prev(&mut self, n: u64) -> Result<Option<Cow<'a, [u8]>>> {
        let first = self.first;
        self.first += n;
        if !self.comparable {
            return Ok(None);
        }
        let ps = self.prev_size as u64;
        let got = match &self.prev {
            Prev::Ranges(e, flips) => {
                let mut b = e.range(first, n)?;
                apply_flips(flips, &mut b);
                Cow::Owned(b)
            }
            Prev::Held(h) => match h.get((first * ps) as usize..((first + n) * ps) as usize) {
                Some(b) => Cow::Borrowed(b),
                None => Cow::Borrowed(&[][..]),
            },
        };
        if got.len() as u64 != n * ps {
            self.comparable = false;
            return Ok(None);
        }
        Ok(Some(got))
    }

    fn add(&mut self, cur: &[u8]) -> Result<()> {
        let Some(prev) = self.take_prev((cur.len() / self.cur_size) as u64)? else {
            return Ok(());
        };
        // a block of values at a time: the decoded copies stay in the first-level cache
        let (ps, cs) = (BLOCK * self.prev_size, BLOCK * self.cur_size);
        for (p, c) in prev.chunks(ps).zip(cur.chunks(cs)) {
            self.add_block(p, c);
        }
        Ok(())
    }

    fn add_block(&mut self, prev: &[u8], cur: &[u8]) {
        // float32 or float64 on both sides: summed from the bytes in place, without a copy
        if self.same_native == Some(DType::F32) {
            if let (Some(p), Some(c)) = (as_values::<f32>(prev), as_values::<f32>(cur)) {
                if p.len() == c.len() {
                    self.lanes.add(p, c);
                    return;
                }
            }
        } else if self.same_native == Some(DType::F64) {
            if let (Some(p), Some(c)) = (as_values::<f64>(prev), as_values::<f64>(cur)) {
                if p.len() == c.len() {
                    self.lanes.add(p, c);
                    return;
                }
            }
        }
        let (fp, fc, dp, dc, scratch) = &mut self.bufs;
        if self.dec_prev.lane() == Lane::F32 && self.dec_cur.lane() == Lane::F32 {
            fp.clear();
            fc.clear();
            self.dec_prev.decode_f32(prev, fp);
            self.dec_cur.decode_f32(cur, fc);
            if fp.len() != fc.len() {
                self.comparable = false;
                return;
            }
            self.lanes.add(fp, fc);
        } else {
            dp.clear();
            dc.clear();
            decode(&self.dec_prev, prev, dp, scratch);
            decode(&self.dec_cur, cur, dc, scratch);
            if dp.len() != dc.len() {
                self.comparable = false;
                return;
            }
            self.lanes.add(dp, dc);
        }
    }

    fn rel_change(&mut self) -> Option<f64> {
        let sums = self.lanes.finish();
        self.rel_from(sums)
    }

    /// ‖cur − prev‖ / ‖prev‖ from the sums (Σ(b − a)², Σa²) of the compared values.
    fn rel_from(&self, (d2, p2): (f64, f64)) -> Option<f64> {
        let m = self.mult as f64;
        let (d2, p2) = (d2 * m, p2 * m);
        (self.comparable && d2.is_finite() && p2.is_finite() && p2 > 0.0)
            .then(|| d2.sqrt() / p2.sqrt())
    }
}

/// The dimensions of `t` that repeat its elements (size > 1, stride 0: an expanded view's).
fn repeated_dims(t: &TensorInfo) -> Vec<bool> {
    t.shape
        .iter()
        .zip(&t.strides)
        .map(|(&n, &s)| n > 1 && s == 0)
        .collect()
}

/// Tensor `i` of `ckpt` without the dimensions `drop` marks (repeating ones): a one-tensor
/// checkpoint of what remains, and how often each remaining element occurs in the whole view.
/// None when nothing is dropped (or the tensor has no data).
fn drop_dims(ckpt: &Checkpoint, i: usize, drop: &[bool]) -> Option<(Checkpoint, u64)> {
    let t = &ckpt.tensors[i];
    if !drop.iter().any(|&d| d) || t.shape.contains(&0) {
        return None;
    }
    let mut r = t.clone();
    let mut m = 1u64;
    r.shape.clear();
    r.strides.clear();
    for ((&n, &s), &d) in t.shape.iter().zip(&t.strides).zip(drop) {
        if d {
            m = m.checked_mul(n)?;
        } else {
            r.shape.push(n);
            r.strides.push(s);
        }
    }
    let s = ckpt.storages.get(t.storage?)?.clone();
    r.storage = Some(0);
    let one = Checkpoint {
        format: ckpt.format,
        root: Node::None,
        tensors: vec![r],
        storages: vec![s],
        safety: Default::default(),
        metadata: vec![],
        files: ckpt.files.clone(),
        notes: vec![],
    };
    Some((one, m))
}

/// A tensor as read: itself, or its distinct elements when it is an expanded view.
struct Reading<'a> {
    o: CheckpointRef<'a>,
    /// The original tensor.
    i: usize,
    reduced: Option<(Checkpoint, u64)>,
    repeats: Vec<bool>,
}

impl<'a> Reading<'a> {
    fn new(o: CheckpointRef<'a>, i: usize) -> Reading<'a> {
        let repeats = repeated_dims(&o.ckpt.tensors[i]);
        Reading {
            o,
            i,
            reduced: drop_dims(o.ckpt, i, &repeats),
            repeats,
        }
    }
    /// The checkpoint and tensor index to read.
    fn view(&self) -> (&Checkpoint, usize) {
        match &self.reduced {
            Some((one, _)) => (one, 0),
            None => (self.o.ckpt, self.i),
        }
    }
    fn mult(&self) -> u64 {
        self.reduced.as_ref().map_or(1, |(_, m)| *m)
    }
    fn nbytes(&self) -> u64 {
        let (c, i) = self.view();
        c.tensors[i].nbytes()
    }
    fn info(&self) -> &TensorInfo {
        &self.o.ckpt.tensors[self.i]
    }
}

/// `‖cur − prev‖ / ‖prev‖` for two steps whose expanded views repeat along different dimensions:
/// both read over the dimensions neither repeats (`None` past [`COMMON_VIEW_FLOOR`] values more
/// than either step holds).
fn change_across_layouts(cur: &Reading, prev: &Reading, chunk: usize) -> Result<Option<f64>> {
    let common: Vec<bool> = cur
        .repeats
        .iter()
        .zip(&prev.repeats)
        .map(|(&a, &b)| a && b)
        .collect();
    let (cr, pr) = (
        drop_dims(cur.o.ckpt, cur.i, &common),
        drop_dims(prev.o.ckpt, prev.i, &common),
    );
    let m = cr.as_ref().map_or(1, |(_, m)| *m);
    let (cc, ci) = cr.as_ref().map_or((cur.o.ckpt, cur.i), |(c, _)| (c, 0));
    let (pc, pi) = pr.as_ref().map_or((prev.o.ckpt, prev.i), |(c, _)| (c, 0));
    let numel = cc.tensors[ci].numel();
    let own = |r: &Reading| {
        let (c, i) = r.view();
        c.tensors[i].numel()
    };
    if numel > own(cur).max(own(prev)).max(COMMON_VIEW_FLOOR) {
        return Ok(None);
    }
    let (ct, pt) = (cur.info(), prev.info());
    let cur_el = Elements::new(cc, cur.o.sources, ci)?;
    let prev_el =
        Elements::new(pc, prev.o.sources, pi).map_err(|e| e.in_file(prev.o.file_of(prev.i)))?;
    let mut change = Change::new(
        Prev::Ranges(Box::new(prev_el), sign_flips(pt.dtype, &pt.kind)),
        pt.dtype,
        ct.dtype,
        m,
    );
    let cur_flips = sign_flips(ct.dtype, &ct.kind);
    let step = (chunk as u64 / ct.dtype.size() as u64).max(1);
    let mut first = 0;
    while first < numel {
        let n = (numel - first).min(step);
        let mut b = cur_el.range(first, n)?;
        apply_flips(&cur_flips, &mut b);
        change.add(&b)?;
        first += n;
    }
    Ok(change.rel_change())
}

/// The previous step's values of one tensor, kept from its read ([`run_points`]).
struct Held {
    bytes: Vec<u8>,
    repeats: Vec<bool>,
}

/// One tensor at one step: its statistics (from its distinct elements when it is an expanded
/// view) and its relative change from `prev` (the same key at the previous step, when comparable),
/// from `held` (the previous step's values) when given, else by reading `prev` again range by
/// range. With `whole` (a buffer to reuse), the tensor's values are read whole into it first,
/// then measured from memory, and the filled buffer is returned (the next step's `held`).
/// `on_bytes(n)` after every chunk (bytes read from both steps); false cancels (`Ok(None)`).
fn measure(
    cur: &Reading,
    prev: Option<&Reading>,
    held: Option<&Held>,
    whole: Option<Vec<u8>>,
    opts: &StatsOptions,
    on_bytes: &mut dyn FnMut(u64) -> bool,
) -> Result<Option<(Point, Option<Vec<u8>>)>> {
    let t = cur.info();
    let key = t.path_string();
    let mut across = false;
    let mut change = match prev {
        Some(p) if p.repeats == cur.repeats => {
            let pt = p.info();
            let from = match held.filter(|h| h.repeats == cur.repeats) {
                Some(h) => Prev::Held(&h.bytes),
                None => {
                    let (pc, pi) = p.view();
                    Prev::Ranges(
                        Box::new(
                            Elements::new(pc, p.o.sources, pi)
                                .map_err(|e| e.in_file(p.o.file_of(p.i)))?,
                        ),
                        sign_flips(pt.dtype, &pt.kind),
                    )
                }
            };
            Some(Change::new(from, pt.dtype, t.dtype, cur.mult()))
        }
        Some(_) => {
            across = true;
            None
        }
        None => None,
    };
    let prev_file = prev.map(|p| p.o.file_of(p.i)).unwrap_or_default();
    let (vc, vi) = cur.view();
    let whole = match whole {
        Some(buf) => Some(
            read_whole(vc, cur.o.sources, vi, buf).map_err(|e| e.in_file(cur.o.file_of(cur.i)))?,
        ),
        None => None,
    };
    let mut read = 0u64;
    let mut on_read = |n: u64| {
        read += n;
        on_bytes(n)
    };
    // float32 / float64 on both sides: the moments and the change sums in one pass per block
    let fused = change.as_ref().and_then(|c| c.same_native);
    let measured = match (fused.filter(|_| fused_ok()), change.as_mut()) {
        (Some(dt), Some(c)) => {
            let sp = CurValues {
                cur,
                whole: whole.as_deref(),
                chunk: opts.chunk,
            };
            let r = if dt == DType::F32 {
                fused_pass::<f32>(c, &sp, &mut on_read)
            } else {
                fused_pass::<f64>(c, &sp, &mut on_read)
            };
            r.map_err(|e| match e {
                Side::Cur(e) => e.in_file(cur.o.file_of(cur.i)),
                Side::Prev(e) => e.in_file(prev_file).within(key),
            })?
            .map(|(s, sums)| (s, sums.and_then(|x| c.rel_from(x))))
        }
        _ => {
            let mut prev_err = None;
            let mut replay = |sink: &mut dyn FnMut(&[u8]) -> Result<()>| {
                let mut feed = |b: &[u8]| {
                    if let Some(c) = change.as_mut() {
                        if let Err(e) = c.add(b) {
                            prev_err = Some(e);
                            return Err(FormatError::new("previous checkpoint unreadable"));
                        }
                    }
                    sink(b)
                };
                let sp = CurValues {
                    cur,
                    whole: whole.as_deref(),
                    chunk: opts.chunk,
                };
                sp.stream(&mut feed)
            };
            let el = StatsInput {
                dtype: t.dtype,
                numel: vc.tensors[vi].numel(),
                dequant: dequant_of(&t.kind),
            };
            let r = tensor_stats(el, opts, &mut replay, &mut on_read);
            if let Some(e) = prev_err {
                return Err(e.in_file(prev_file).within(key));
            }
            let r = r.map_err(|e| e.in_file(cur.o.file_of(cur.i)))?;
            let rel_change = match (change.as_mut(), prev) {
                (Some(c), _) => c.rel_change(),
                (None, Some(p)) if across => change_across_layouts(cur, p, opts.chunk)?,
                _ => None,
            };
            r.map(|s| (s, rel_change))
        }
    };
    let Some((mut s, rel_change)) = measured else {
        return Ok(None);
    };
    let prev_read = change.as_ref().map_or(0, |c| c.prev_bytes_for(read));
    if !on_bytes(prev_read) {
        return Ok(None);
    }
    super::expanded::scale(&mut s, cur.mult());
    let v = &s.summary;
    let point = Point {
        std: v.std,
        mean: v.mean,
        abs_max: s.absmax,
        l2: (v.finite() > 0).then_some(s.l2),
        zero_fraction: (v.count > 0).then(|| v.zeros as f64 / v.count as f64),
        nonfinite: v.nonfinite(),
        rel_change,
        floating: matches!(t.dtype.kind(), DKind::Float | DKind::Complex),
    };
    Ok(Some((point, whole)))
}

/// The current step's logical values of a tensor, streamed in chunks of about `chunk` bytes:
/// from `whole` when it was read whole, else from its file.
struct CurValues<'r, 'a> {
    cur: &'r Reading<'a>,
    whole: Option<&'r [u8]>,
    chunk: usize,
}

impl CurValues<'_, '_> {
    fn stream(&self, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let (vc, vi) = self.cur.view();
        match self.whole {
            Some(w) => {
                let size = vc.tensors[vi].dtype.size();
                w.chunks((self.chunk / size).max(1) * size)
                    .try_for_each(sink)
            }
            None => read_logical(vc, self.cur.o.sources, vi, self.chunk, sink),
        }
    }
}

/// A fused pass's statistics and change sums (Σ(b − a)², Σa²; None when not comparable).
type Fused = (TensorStats, Option<(f64, f64)>);

/// Which step an error comes from.
enum Side {
    Cur(FormatError),
    Prev(FormatError),
}

/// The moments-only statistics of the current step's values and the change sums against the
/// previous step's ([`Change::take_prev`]), in one pass per block ([`ChangeMoments`]; float32 or
/// float64 on both sides). `on_bytes(n)` after every chunk; false cancels (`Ok(None)`).
fn fused_pass<T: Val>(
    change: &mut Change,
    values: &CurValues,
    on_bytes: &mut dyn FnMut(u64) -> bool,
) -> std::result::Result<Option<Fused>, Side> {
    let mut fused = ChangeMoments::<T>::new();
    let (mut prev_err, mut cancelled) = (None, false);
    let size = std::mem::size_of::<T>();
    let r = values.stream(&mut |b: &[u8]| {
        match change.take_prev((b.len() / size) as u64) {
            Ok(p) => fused.add(p.as_deref(), b),
            Err(e) => {
                prev_err = Some(e);
                return Err(FormatError::new("previous checkpoint unreadable"));
            }
        }
        if !on_bytes(b.len() as u64) {
            cancelled = true;
            return Err(FormatError::new("statistics cancelled"));
        }
        Ok(())
    });
    if let Some(e) = prev_err {
        return Err(Side::Prev(e));
    }
    if cancelled {
        return Ok(None);
    }
    r.map_err(Side::Cur)?;
    Ok(Some(fused.finish()))
}

/// The logical values of tensor `i` of `ckpt` read whole into `buf` (reused; a tensor of
/// stored contiguous bytes is read straight into it).
fn read_whole(
    ckpt: &Checkpoint,
    sources: &[&dyn Source],
    i: usize,
    buf: Vec<u8>,
) -> Result<Vec<u8>> {
    let t = &ckpt.tensors[i];
    let n = t.nbytes();
    let mut spare = Some(buf);
    let mut out: Vec<u8> = Vec::new();
    let chunk = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
    read_tensor_owned(
        ckpt,
        sources,
        i,
        chunk,
        &mut |_| spare.take().unwrap_or_default(),
        &mut |v| {
            if out.is_empty() {
                out = v;
            } else {
                out.extend_from_slice(&v);
            }
            Ok(())
        },
    )?;
    apply_flips(&sign_flips(t.dtype, &t.kind), &mut out);
    Ok(out)
}

/// The tensor of `prev` that `cur`'s tensor `i` (key `key`) is compared with: same key, same
/// shape, both complex or neither.
fn partner(cur: &TensorInfo, prev: &Checkpoint, pi: Option<usize>) -> Option<usize> {
    pi.filter(|&pi| {
        let u = &prev.tensors[pi];
        u.shape == cur.shape
            && (u.dtype.kind() == DKind::Complex) == (cur.dtype.kind() == DKind::Complex)
    })
}

fn moments_opts(chunk: usize) -> StatsOptions {
    StatsOptions {
        chunk,
        moments_only: true,
        ..StatsOptions::default()
    }
}

/// The metrics of every model tensor of `cur` whose key passes `select`, with the relative
/// change from `prev` (the previous step's checkpoint, read again beside `cur`).
/// `progress(done, total)` gets bytes read; returning false cancels (`Ok(None)`). Errors name
/// the file and tensor. (A whole run read checkpoint by checkpoint once: [`run_points`].)
pub fn step_points(
    cur: CheckpointRef<'_>,
    prev: Option<CheckpointRef<'_>>,
    select: &dyn Fn(&str) -> bool,
    chunk: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Option<StepPoints>> {
    let opts = moments_opts(chunk);
    let prev_keys: KeyMap<String, usize> = prev
        .map(|p| model_tensors(p.ckpt).into_iter().collect())
        .unwrap_or_default();
    let mine: Vec<(String, Reading, Option<Reading>)> = model_tensors(cur.ckpt)
        .into_iter()
        .filter(|(k, _)| select(k))
        .map(|(k, i)| {
            let pr = prev.and_then(|p| {
                partner(&cur.ckpt.tensors[i], p.ckpt, prev_keys.get(&k).copied())
                    .map(|pi| Reading::new(p, pi))
            });
            (k, Reading::new(cur, i), pr)
        })
        .collect();
    let planned =
        |c: &Reading, p: &Option<Reading>| c.nbytes() + p.as_ref().map_or(0, Reading::nbytes);
    let total: u64 = mine.iter().map(|(_, c, p)| planned(c, p)).sum();
    let mut done = 0u64;
    if !progress(0, total) {
        return Ok(None);
    }
    let mut out = StepPoints::default();
    for (key, c, p) in mine {
        let start = done;
        let Some((point, _)) = measure(&c, p.as_ref(), None, None, &opts, &mut |n| {
            done += n;
            progress(done.min(total), total)
        })?
        else {
            return Ok(None);
        };
        done = start + planned(&c, &p);
        out.points.push(point);
        out.keys.push(key);
    }
    Ok(Some(out))
}

/// Every step of a run (`steps` in step order), each checkpoint read once: tensor by tensor
/// (keys in order of first appearance), the tensor of every step in turn, each compared with
/// the previous step's values kept from its read (up to [`HOLD_LIMIT`] bytes per tensor; a larger
/// tensor's previous values are read again, as [`step_points`] does). The result equals
/// [`step_points`] of every step with the one before. `progress(done, total)` gets bytes read;
/// returning false cancels (`Ok(None)`).
pub fn run_points(
    steps: &[CheckpointRef<'_>],
    select: &dyn Fn(&str) -> bool,
    chunk: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Option<Vec<StepPoints>>> {
    walk_run(steps, select, chunk, HOLD_LIMIT, progress)
}

/// Buffers of whole tensors kept for reuse ([`walk_run`]): small ones, large ones.
#[derive(Default)]
struct Spares([Vec<Vec<u8>>; 2]);

impl Spares {
    fn class(nbytes: u64) -> usize {
        usize::from(nbytes >= 1 << 20)
    }
    /// A buffer for a tensor of `nbytes` bytes.
    fn take(&mut self, nbytes: u64) -> Vec<u8> {
        self.0[Spares::class(nbytes)].pop().unwrap_or_default()
    }
}

/// [`run_points`] holding tensors of at most `hold` bytes.
fn walk_run(
    steps: &[CheckpointRef<'_>],
    select: &dyn Fn(&str) -> bool,
    chunk: usize,
    hold: u64,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Option<Vec<StepPoints>>> {
    let opts = moments_opts(chunk);
    let lists: Vec<Vec<(String, usize)>> = steps
        .iter()
        .map(|o| {
            model_tensors(o.ckpt)
                .into_iter()
                .filter(|(k, _)| select(k))
                .collect()
        })
        .collect();
    // key → (position in step k's list) per step
    let mut at: KeyMap<&str, Vec<Option<usize>>> = KeyMap::new();
    let mut keys: Vec<&str> = vec![];
    for (k, list) in lists.iter().enumerate() {
        for (pos, (key, _)) in list.iter().enumerate() {
            at.entry(key.as_str()).or_insert_with(|| {
                keys.push(key.as_str());
                vec![None; steps.len()]
            })[k] = Some(pos);
        }
    }
    let total: u64 = lists
        .iter()
        .zip(steps)
        .flat_map(|(l, o)| l.iter().map(|&(_, i)| Reading::new(*o, i).nbytes()))
        .sum();
    let mut done = 0u64;
    if !progress(0, total) {
        return Ok(None);
    }
    let mut points: Vec<Vec<Option<Point>>> = lists.iter().map(|l| vec![None; l.len()]).collect();
    // two buffers of whole tensors, taking turns: the previous step's values and the current's
    // (kept from key to key: no fresh pages to fault in); one pair for tensors under 1 MiB, one
    // for larger ones (a large buffer lent to a small tensor would be shortened, and lengthened
    // again for the next large one: zeroed anew)
    let mut spares = Spares::default();
    let give_back = |spares: &mut Spares, h: Option<Held>| {
        if let Some(h) = h {
            let pair = &mut spares.0[Spares::class(h.bytes.len() as u64)];
            if pair.len() < 2 {
                pair.push(h.bytes);
            }
        }
    };
    for key in keys {
        let where_ = &at[key];
        let mut held: Option<Held> = None;
        let mut prev: Option<Reading> = None;
        for (k, o) in steps.iter().enumerate() {
            let Some(pos) = where_[k] else {
                give_back(&mut spares, held.take());
                prev = None;
                continue;
            };
            let i = lists[k][pos].1;
            let cur = Reading::new(*o, i);
            let pr = prev.filter(|p| partner(cur.info(), p.o.ckpt, Some(p.i)).is_some());
            let whole = (cur.nbytes() <= hold).then(|| spares.take(cur.nbytes()));
            let Some((point, filled)) =
                measure(&cur, pr.as_ref(), held.as_ref(), whole, &opts, &mut |n| {
                    done += n;
                    progress(done.min(total), total)
                })?
            else {
                return Ok(None);
            };
            points[k][pos] = Some(point);
            give_back(&mut spares, held.take());
            held = filled.map(|bytes| Held {
                bytes,
                repeats: cur.repeats.clone(),
            });
            prev = Some(cur);
        }
        give_back(&mut spares, held.take());
    }
    Ok(Some(
        lists
            .into_iter()
            .zip(points)
            .map(|(l, p)| StepPoints {
                keys: l.into_iter().map(|(k, _)| k).collect(),
                points: p
                    .into_iter()
                    .map(|p| p.expect("every listed tensor measured"))
                    .collect(),
            })
            .collect(),
    ))
}

/// Join the steps (`points[t]` ↔ `steps[t]`) into the run's table and compute the flags.
pub fn assemble(steps: Vec<StepInfo>, points: &[StepPoints]) -> TrendReport {
    let n = steps.len();
    let mut index: KeyMap<&str, usize> = KeyMap::new();
    let mut tensors: Vec<Series> = Vec::new();
    for (t, sp) in points.iter().enumerate().take(n) {
        for (key, p) in sp.keys.iter().zip(&sp.points) {
            let at = *index.entry(key.as_str()).or_insert_with(|| {
                tensors.push(Series {
                    key: key.clone(),
                    std: vec![None; n],
                    mean: vec![None; n],
                    abs_max: vec![None; n],
                    l2: vec![None; n],
                    zero_fraction: vec![None; n],
                    nonfinite: vec![None; n],
                    rel_change: vec![None; n],
                    floating: false,
                });
                tensors.len() - 1
            });
            let s = &mut tensors[at];
            s.std[t] = p.std;
            s.mean[t] = p.mean;
            s.abs_max[t] = p.abs_max;
            s.l2[t] = p.l2;
            s.zero_fraction[t] = p.zero_fraction;
            s.nonfinite[t] = Some(p.nonfinite);
            s.rel_change[t] = if t == 0 { None } else { p.rel_change };
            s.floating |= p.floating;
        }
    }
    let flags = flags(&tensors);
    TrendReport {
        steps,
        tensors,
        flags,
    }
}

/// numpy's median of the values (None when empty).
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    crate::order::sort_floats(&mut v);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// The flags of a run's series (rules in the module doc).
pub fn flags(tensors: &[Series]) -> Vec<Flag> {
    let mut out: Vec<(usize, usize, FlagKind)> = Vec::new();
    for (ti, s) in tensors.iter().enumerate() {
        if !s.floating {
            continue;
        }
        if let Some(med) = median(s.rel_change.iter().flatten().copied().collect()) {
            if med > 0.0 {
                for (t, r) in s.rel_change.iter().enumerate() {
                    if r.is_some_and(|r| r > JUMP_FACTOR * med) {
                        out.push((t, ti, FlagKind::Jump));
                    }
                }
            }
        }
        let mut before = false;
        for (t, nf) in s.nonfinite.iter().enumerate() {
            if let Some(nf) = *nf {
                let now = nf > 0;
                if now && !before {
                    out.push((t, ti, FlagKind::Nonfinite));
                }
                before = now;
            }
        }
        let first = s.std.iter().flatten().next().copied();
        if let Some(first) = first.filter(|&f| f > 0.0) {
            let mut before = false;
            for (t, sd) in s.std.iter().enumerate() {
                if let Some(sd) = *sd {
                    let now = sd < DEAD_FRACTION * first;
                    if now && !before {
                        out.push((t, ti, FlagKind::Dead));
                    }
                    before = now;
                }
            }
        }
    }
    crate::order::sort(&mut out);
    out.into_iter()
        .map(|(step_index, ti, kind)| Flag {
            key: tensors[ti].key.clone(),
            step_index,
            kind,
        })
        .collect()
}

/// Shortest text that parses back to the same f64 (empty for None).
fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v:?}")).unwrap_or_default()
}

/// Quote a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The table as CSV: a header, then one row per tensor and step (tensor order, then step order):
/// `key,step_index,file,step,std,mean,abs_max,l2,zero_fraction,nonfinite,rel_change,flags`,
/// empty fields for nulls, numbers in Rust's shortest round-trip form, `flags` the kinds at that
/// cell joined by `;`. Lines end with `\n`.
pub fn to_csv(r: &TrendReport) -> String {
    let mut cell_flags: KeyMap<(&str, usize), Vec<&str>> = KeyMap::new();
    for f in &r.flags {
        cell_flags
            .entry((f.key.as_str(), f.step_index))
            .or_default()
            .push(f.kind.name());
    }
    let mut out = String::from(
        "key,step_index,file,step,std,mean,abs_max,l2,zero_fraction,nonfinite,rel_change,flags\n",
    );
    for s in &r.tensors {
        for (t, st) in r.steps.iter().enumerate() {
            let fl = cell_flags
                .get(&(s.key.as_str(), t))
                .map(|v| v.join(";"))
                .unwrap_or_default();
            let row = [
                csv_field(&s.key),
                t.to_string(),
                csv_field(&st.file),
                st.step.map(|v| v.to_string()).unwrap_or_default(),
                num(s.std[t]),
                num(s.mean[t]),
                num(s.abs_max[t]),
                num(s.l2[t]),
                num(s.zero_fraction[t]),
                s.nonfinite[t].map(|v| v.to_string()).unwrap_or_default(),
                num(s.rel_change[t]),
                fl,
            ];
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{
        DType, DictKind, Format, MemSource, SafetyReport, StorageInfo, TensorInfo, TensorKind,
    };

    /// A plain state dict of f32 tensors `(key, values)` over one in-memory file.
    fn ckpt(tensors: &[(&str, &[f32])], root_extra: &[(&str, Node)]) -> (Checkpoint, MemSource) {
        let mut bytes = Vec::new();
        let mut infos = vec![];
        let mut storages = vec![];
        let mut items = vec![];
        for (i, (k, v)) in tensors.iter().enumerate() {
            storages.push(StorageInfo::plain(
                i.to_string(),
                format!("archive/data/{i}"),
                DType::F32,
                4 * v.len() as u64,
                bytes.len() as u64,
            ));
            bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
            infos.push(TensorInfo {
                path: vec![k.to_string()],
                dtype: DType::F32,
                shape: vec![v.len() as u64],
                strides: vec![1],
                storage_offset: 0,
                storage: Some(i),
                requires_grad: false,
                parameter: false,
                kind: TensorKind::Dense,
            });
            items.push((Key::Str(k.to_string()), Node::Tensor { index: i }));
        }
        for (k, v) in root_extra {
            items.push((Key::Str(k.to_string()), v.clone()));
        }
        let c = Checkpoint {
            format: Format::TorchZip,
            root: Node::Dict {
                kind: DictKind::Dict,
                items,
                attrs: vec![],
                state_dict: true,
            },
            tensors: infos,
            storages,
            safety: SafetyReport::default(),
            metadata: vec![],
            files: vec!["x.pth".into()],
            notes: vec![],
        };
        (c, MemSource(bytes))
    }

    fn run(steps: &[(Checkpoint, MemSource)]) -> TrendReport {
        let srcs = sources_of(steps);
        let opened = opened_of(steps, &srcs);
        let mut pts = vec![];
        for t in 0..opened.len() {
            let prev = t.checked_sub(1).map(|p| opened[p]);
            let p = step_points(opened[t], prev, &|_| true, 8, &mut |_, _| true);
            pts.push(p.unwrap().unwrap());
        }
        // the run walked once, previous values held or read again: the same points
        for hold in [HOLD_LIMIT, 0] {
            let walked = walk_run(&opened, &|_| true, 8, hold, &mut |_, _| true);
            assert_eq!(walked.unwrap().unwrap(), pts, "hold {hold}");
        }
        let infos = (0..steps.len())
            .map(|t| StepInfo {
                file: format!("s{t}"),
                step: None,
            })
            .collect();
        assemble(infos, &pts)
    }

    #[test]
    fn metrics_rel_change_and_missing_keys() {
        let s0 = ckpt(&[("w", &[3.0, 4.0, 0.0]), ("b", &[1.0])], &[]);
        let s1 = ckpt(&[("w", &[3.0, 4.0, 5.0])], &[]);
        let s2 = ckpt(&[("w", &[3.0, f32::NAN, 5.0]), ("b", &[2.0])], &[]);
        let r = run(&[s0, s1, s2]);
        assert_eq!(
            r.tensors.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
            ["w", "b"]
        );
        let w = &r.tensors[0];
        assert_eq!(w.rel_change, vec![None, Some(1.0), None]);
        assert_eq!(w.l2[0], Some(5.0));
        assert_eq!(w.abs_max[2], Some(5.0));
        assert_eq!(w.nonfinite, vec![Some(0), Some(0), Some(1)]);
        assert_eq!(w.zero_fraction[0], Some(1.0 / 3.0));
        assert_eq!(w.std[1], Some((2.0f64 / 3.0).sqrt()));
        let b = &r.tensors[1];
        assert_eq!(b.mean, vec![Some(1.0), None, Some(2.0)]);
        assert_eq!(b.rel_change, vec![None, None, None]);
        assert_eq!(
            r.flags,
            vec![Flag {
                key: "w".into(),
                step_index: 2,
                kind: FlagKind::Nonfinite
            }]
        );
        let csv = to_csv(&r);
        assert!(csv.contains("\nw,1,s1,,0.816496580927726,4.0,5.0,7.0710678118654755,0.0,0,1.0,\n"));
        assert!(csv.contains("\nw,2,s2,,1.0,4.0,5.0,5.830951894845301,0.0,1,,nonfinite\n"));
        assert!(csv.contains("\nb,1,s1,,,,,,,,,\n"), "{csv}");
    }

    #[test]
    fn jump_and_dead_rules() {
        let mk = |f: &[Option<f64>], std: &[Option<f64>]| Series {
            key: "k".into(),
            std: std.to_vec(),
            mean: vec![None; f.len()],
            abs_max: vec![None; f.len()],
            l2: vec![None; f.len()],
            zero_fraction: vec![None; f.len()],
            nonfinite: vec![Some(0); f.len()],
            rel_change: f.to_vec(),
            floating: true,
        };
        let s = mk(
            &[None, Some(0.01), Some(0.02), Some(0.5), Some(0.01)],
            &[Some(1.0), Some(0.5), Some(9e-4), Some(1e-4), Some(1.0)],
        );
        let kinds: Vec<(usize, FlagKind)> =
            flags(&[s]).iter().map(|f| (f.step_index, f.kind)).collect();
        assert_eq!(kinds, [(2, FlagKind::Dead), (3, FlagKind::Jump)]);
        // median 0: no jumps; exactly 10× the median: no jump; int tensors: no flags
        let s = mk(&[None, Some(0.0), Some(0.0), Some(1.0)], &[Some(1.0); 4]);
        assert!(flags(&[s]).is_empty());
        let s = mk(&[None, Some(0.1), Some(0.1), Some(1.0)], &[Some(1.0); 4]);
        assert!(flags(&[s]).is_empty());
        let mut s = mk(&[None, Some(0.1), Some(0.1), Some(5.0)], &[Some(1.0); 4]);
        assert_eq!(flags(std::slice::from_ref(&s)).len(), 1);
        s.floating = false;
        assert!(flags(&[s]).is_empty());
        assert_eq!(median(vec![3.0, 1.0, 2.0, 10.0]), Some(2.5));
    }

    #[test]
    fn steps_and_order() {
        let (c, _) = ckpt(
            &[],
            &[
                ("epoch", Node::Int { value: 3 }),
                ("global_step", Node::Int { value: 120 }),
            ],
        );
        assert_eq!(step_of(&c), Some(120));
        let (mut c, _) = ckpt(&[("w", &[1.0])], &[]);
        assert_eq!(step_of(&c), None);
        c.metadata.push(("step".into(), "42".into()));
        assert_eq!(step_of(&c), Some(42));
        let items = |v: &[(&str, Option<i64>)]| -> Vec<(String, Option<i64>)> {
            v.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        let a = items(&[("run-10", Some(1)), ("run-2", Some(5)), ("run-1", Some(3))]);
        assert_eq!(order(&a), [0, 2, 1]);
        let b = items(&[("run-10", Some(1)), ("run-2", None), ("run-1", Some(3))]);
        assert_eq!(order(&b), [2, 1, 0]);
    }

    #[test]
    fn lightning_state_dict_keys() {
        let (mut c, _) = ckpt(&[("w", &[1.0])], &[]);
        let Node::Dict { items, .. } = &mut c.root else {
            unreachable!()
        };
        let sd = std::mem::take(items);
        *items = vec![
            (Key::Str("global_step".into()), Node::Int { value: 7 }),
            (
                Key::Str("state_dict".into()),
                Node::Dict {
                    kind: DictKind::OrderedDict,
                    items: sd,
                    attrs: vec![],
                    state_dict: true,
                },
            ),
        ];
        c.tensors[0].path = vec!["state_dict".into(), "w".into()];
        assert_eq!(model_tensors(&c), [("w".to_string(), 0)]);
    }

    use crate::format::data::Counting;

    /// Each step's sources, then the steps as [`CheckpointRef`].
    fn sources_of<S: Source>(steps: &[(Checkpoint, S)]) -> Vec<Vec<&dyn Source>> {
        steps.iter().map(|(_, s)| vec![s as &dyn Source]).collect()
    }
    fn opened_of<'a, S>(
        steps: &'a [(Checkpoint, S)],
        srcs: &'a [Vec<&'a dyn Source>],
    ) -> Vec<CheckpointRef<'a>> {
        steps
            .iter()
            .zip(srcs)
            .map(|((c, _), s)| CheckpointRef {
                ckpt: c,
                sources: s,
            })
            .collect()
    }

    #[test]
    fn the_walked_run_reads_each_checkpoint_once() {
        let vals: Vec<f32> = (0..1000).map(|i| i as f32 * 0.25).collect();
        let steps: Vec<(Checkpoint, Counting)> = (0..4)
            .map(|k| {
                let w: Vec<f32> = vals.iter().map(|x| x + k as f32).collect();
                let (c, m) = ckpt(&[("w", &w), ("b", &vals[..10])], &[]);
                (c, Counting(m, Default::default()))
            })
            .collect();
        let srcs = sources_of(&steps);
        let opened = opened_of(&steps, &srcs);
        let pts = run_points(&opened, &|_| true, 64, &mut |_, _| true)
            .unwrap()
            .unwrap();
        for (_, s) in &steps {
            assert_eq!(s.1.get(), 4 * 1010, "bytes read from one checkpoint");
        }
        let rel = pts[2].points[0].rel_change.unwrap();
        let norm = |k: f32| {
            vals.iter()
                .map(|x| ((x + k) as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        assert!((rel - (1000f64).sqrt() / norm(1.0)).abs() < 1e-12, "{rel}");
        // step by step, each checkpoint is read twice (as a step and as the previous step)
        for (_, s) in &steps {
            s.1.set(0);
        }
        for t in 1..opened.len() {
            step_points(
                opened[t],
                Some(opened[t - 1]),
                &|_| true,
                64,
                &mut |_, _| true,
            )
            .unwrap();
        }
        assert_eq!(steps[1].1 .1.get(), 2 * 4 * 1010);
    }

    /// A one-tensor state dict `w` of f32 `storage` viewed with `shape` and `strides`.
    fn view(storage: &[f32], shape: &[u64], strides: &[u64]) -> (Checkpoint, Counting) {
        let (mut c, m) = ckpt(&[("w", storage)], &[]);
        c.tensors[0].shape = shape.to_vec();
        c.tensors[0].strides = strides.to_vec();
        (c, Counting(m, Default::default()))
    }

    #[test]
    fn expanded_views_cost_their_distinct_elements() {
        // torch.tensor([...]).expand(2**40, 3) at three steps: 12 bytes read per step
        let big = 1u64 << 40;
        let steps = [
            view(&[1.0, 2.0, 2.0], &[big, 3], &[0, 1]),
            view(&[1.0, 2.0, 4.0], &[big, 3], &[0, 1]),
            view(&[0.0, 2.0, 4.0], &[big, 3], &[0, 1]),
        ];
        let srcs = sources_of(&steps);
        let opened = opened_of(&steps, &srcs);
        for hold in [HOLD_LIMIT, 0] {
            let pts = walk_run(&opened, &|_| true, 64, hold, &mut |_, _| true)
                .unwrap()
                .unwrap();
            let p: Vec<&Point> = pts.iter().map(|s| &s.points[0]).collect();
            assert_eq!(p[0].mean, Some(5.0 / 3.0));
            assert_eq!(p[0].std, Some((2.0f64 / 9.0).sqrt()));
            assert_eq!(p[1].l2, Some((21.0 * big as f64).sqrt()));
            assert_eq!(p[2].zero_fraction, Some(1.0 / 3.0));
            assert_eq!(p[0].rel_change, None);
            assert_eq!(p[1].rel_change, Some(2.0 / 3.0));
            assert_eq!(p[2].rel_change, Some(1.0 / 21f64.sqrt()));
            let step_by_step =
                step_points(opened[2], Some(opened[1]), &|_| true, 64, &mut |_, _| true)
                    .unwrap()
                    .unwrap();
            assert_eq!(&step_by_step.points[0], p[2]);
        }
        for (_, s) in &steps {
            assert!(s.1.get() <= 5 * 12, "{} bytes read", s.1.get());
        }
    }

    #[test]
    fn views_repeated_along_different_dimensions_are_compared_over_the_rest() {
        // [4, 3]: step 0 repeats rows (u expanded), step 1 repeats columns (v expanded)
        let u = [1.0f32, 2.0, 3.0];
        let v = [1.0f32, -1.0, 0.5, 2.0];
        let a = view(&u, &[4, 3], &[0, 1]);
        let b = view(&v, &[4, 3], &[1, 0]);
        let r = run(&[(a.0, a.1 .0), (b.0, b.1 .0)]);
        let (mut d2, mut p2) = (0f64, 0f64);
        for x in v {
            for y in u {
                d2 += ((x - y) as f64).powi(2);
                p2 += (y as f64).powi(2);
            }
        }
        let got = r.tensors[0].rel_change[1].unwrap();
        assert!((got - d2.sqrt() / p2.sqrt()).abs() < 1e-15, "{got}");
        // [2^40, 3]: rows repeated, then every element one value: compared over 3 values
        let big = 1u64 << 40;
        let a = view(&u, &[big, 3], &[0, 1]);
        let c = view(&[1.0], &[big, 3], &[0, 0]);
        let r = run(&[(a.0, a.1 .0), (c.0, c.1 .0)]);
        let got = r.tensors[0].rel_change[1].unwrap();
        assert!((got - (5.0f64 / 14.0).sqrt()).abs() < 1e-15, "{got}");
        // [2^20, 2^20]: rows repeated, then columns: 2^40 values to compare — not compared
        let n = 1u64 << 20;
        let w: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let a = view(&w, &[n, n], &[0, 1]);
        let b = view(&w, &[n, n], &[1, 0]);
        let r = run(&[(a.0, a.1 .0), (b.0, b.1 .0)]);
        assert_eq!(r.tensors[0].rel_change[1], None);
        assert_eq!(r.tensors[0].mean[1], r.tensors[0].mean[0]);
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["b10", "b9", "a", "b01", "b1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "b01", "b1", "b9", "b10"]);
    }
}
