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
//!   [`StatsOptions::moments_only`]): `std` (population, ddof = 0), `mean`, `abs_max`, `l2` — all
//!   over the finite values, `null` when there are none; `zero_fraction` = zeros / all values
//!   (`null` for an empty tensor); `nonfinite` = NaN + ±inf count; `rel_change` =
//!   ‖wₜ − wₜ₋₁‖₂ / ‖wₜ₋₁‖₂ over the values as float64 (complex as real/imaginary pairs, quantized
//!   as integer codes), computed while wₜ streams by reading wₜ₋₁'s same elements chunk by chunk
//!   (neither is held whole; the sums run over fixed blocks of values, so the result does not
//!   depend on the read size). `rel_change` is `null` at the first step, when the key is missing at
//!   t or t−1, when the shapes differ or one is complex and the other not, when either tensor holds
//!   a NaN or ±inf (or the sums overflow), and when ‖wₜ₋₁‖ = 0.
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
//!   (a parallel worker can take any step); [`assemble`] joins the steps into a [`TrendReport`]
//!   (the CLI's `--json`) and computes the flags; [`to_csv`] writes the same table, one row per
//!   tensor and step. Progress is in bytes read (both checkpoints); returning false cancels.
//!
//! Memory: one chunk of each of the two checkpoints at a time, plus, for a non-contiguous view of
//! the previous checkpoint, that view (see [`super::diff`]).

use super::diff::{decode, Elements};
use super::engine::{tensor_stats, StatsInput, StatsOptions, BLOCK};
use super::patterns::Sum;
use super::run::{dequant_of, read_logical};
use crate::format::{Checkpoint, DKind, FormatError, Key, Node, Result, Source};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;

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
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let by_step = items.iter().all(|(_, s)| s.is_some());
    idx.sort_by(|&a, &b| {
        let name = natural_cmp(&items[a].0, &items[b].0);
        if by_step {
            items[a].1.cmp(&items[b].1).then(name)
        } else {
            name
        }
    });
    idx
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

/// Σ(b − a)² and Σa² in eight f64 lanes chosen by the value's index (lane = index mod 8),
/// folded into compensated totals at the end of every [`BLOCK`] values (counted from the
/// tensor's start): the result does not depend on how the bytes were chunked, so the CLI and the
/// worker (different read sizes) agree to the bit.
#[derive(Default)]
struct Lanes {
    d: [f64; 8],
    p: [f64; 8],
    pos: u64,
    d2: Sum,
    p2: Sum,
}

impl Lanes {
    fn add<T: Copy + Into<f64>>(&mut self, prev: &[T], cur: &[T]) {
        let mut i = 0;
        while i < prev.len() {
            let in_block = (self.pos % BLOCK as u64) as usize;
            let take = (BLOCK - in_block).min(prev.len() - i);
            self.run(&prev[i..i + take], &cur[i..i + take]);
            i += take;
            if self.pos.is_multiple_of(BLOCK as u64) {
                self.fold();
            }
        }
    }

    #[inline(always)]
    fn one(&mut self, a: f64, b: f64) {
        let k = (self.pos % 8) as usize;
        self.d[k] += (b - a) * (b - a);
        self.p[k] += a * a;
        self.pos += 1;
    }

    /// Values within one block.
    fn run<T: Copy + Into<f64>>(&mut self, prev: &[T], cur: &[T]) {
        let mut j = 0;
        while j < prev.len() && !self.pos.is_multiple_of(8) {
            self.one(prev[j].into(), cur[j].into());
            j += 1;
        }
        let (pc, cc) = (prev[j..].chunks_exact(8), cur[j..].chunks_exact(8));
        let tail = j + pc.len() * 8;
        for (x, y) in pc.zip(cc) {
            for k in 0..8 {
                let (a, b): (f64, f64) = (x[k].into(), y[k].into());
                self.d[k] += (b - a) * (b - a);
                self.p[k] += a * a;
            }
        }
        self.pos += (tail - j) as u64;
        for k in tail..prev.len() {
            self.one(prev[k].into(), cur[k].into());
        }
    }

    fn fold(&mut self) {
        self.d2.add(self.d.iter().sum());
        self.p2.add(self.p.iter().sum());
        self.d = [0.0; 8];
        self.p = [0.0; 8];
    }

    /// (Σ(b − a)², Σa²).
    fn finish(&mut self) -> (f64, f64) {
        self.fold();
        (self.d2.get(), self.p2.get())
    }
}

/// Decode buffers: f32 prev / cur, f64 prev / cur, f32 scratch.
type Buffers = (Vec<f32>, Vec<f32>, Vec<f64>, Vec<f64>, Vec<f32>);

/// ‖cur − prev‖² and ‖prev‖² accumulated chunk by chunk as `cur` streams.
struct Change<'a> {
    prev: Elements<'a>,
    dec_prev: crate::format::element::Decoder,
    dec_cur: crate::format::element::Decoder,
    cur_size: usize,
    first: u64,
    lanes: Lanes,
    comparable: bool,
    bufs: Buffers,
}

impl Change<'_> {
    fn add(&mut self, cur: &[u8]) -> Result<()> {
        let n = (cur.len() / self.cur_size) as u64;
        let prev = self.prev.range(self.first, n)?;
        self.first += n;
        if !self.comparable {
            return Ok(());
        }
        use crate::format::element::Lane;
        let (fp, fc, dp, dc, scratch) = &mut self.bufs;
        if self.dec_prev.lane() == Lane::F32 && self.dec_cur.lane() == Lane::F32 {
            fp.clear();
            fc.clear();
            self.dec_prev.decode_f32(&prev, fp);
            self.dec_cur.decode_f32(cur, fc);
            if fp.len() != fc.len() {
                self.comparable = false;
                return Ok(());
            }
            self.lanes.add(fp, fc);
        } else {
            dp.clear();
            dc.clear();
            decode(&self.dec_prev, &prev, dp, scratch);
            decode(&self.dec_cur, cur, dc, scratch);
            if dp.len() != dc.len() {
                self.comparable = false;
                return Ok(());
            }
            self.lanes.add(dp, dc);
        }
        Ok(())
    }

    fn rel_change(&mut self) -> Option<f64> {
        let (d2, p2) = self.lanes.finish();
        (self.comparable && d2.is_finite() && p2.is_finite() && p2 > 0.0)
            .then(|| d2.sqrt() / p2.sqrt())
    }
}

/// The metrics of every model tensor of `cur` whose key passes `select`, with the relative
/// change from `prev` (the previous step's checkpoint). `progress(done, total)` gets bytes read;
/// returning false cancels (`Ok(None)`). Errors name the file and tensor.
pub fn step_points(
    cur: CheckpointRef<'_>,
    prev: Option<CheckpointRef<'_>>,
    select: &dyn Fn(&str) -> bool,
    chunk: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Option<StepPoints>> {
    let opts = StatsOptions {
        chunk,
        moments_only: true,
        ..StatsOptions::default()
    };
    let prev_keys: HashMap<String, usize> = prev
        .map(|p| model_tensors(p.ckpt).into_iter().collect())
        .unwrap_or_default();
    let mine: Vec<(String, usize, Option<usize>)> = model_tensors(cur.ckpt)
        .into_iter()
        .filter(|(k, _)| select(k))
        .map(|(k, i)| {
            let shape = &cur.ckpt.tensors[i].shape;
            let complex = cur.ckpt.tensors[i].dtype.kind() == DKind::Complex;
            let pi = prev_keys.get(&k).copied().filter(|&pi| {
                let u = &prev.expect("keys come from prev").ckpt.tensors[pi];
                &u.shape == shape && (u.dtype.kind() == DKind::Complex) == complex
            });
            (k, i, pi)
        })
        .collect();
    let total: u64 = mine
        .iter()
        .map(|(_, i, pi)| {
            let p = pi.map_or(0, |pi| prev.expect("pi").ckpt.tensors[pi].nbytes());
            cur.ckpt.tensors[*i].nbytes() + p
        })
        .sum();
    let mut done = 0u64;
    if !progress(0, total) {
        return Ok(None);
    }
    let mut out = StepPoints::default();
    for (key, i, pi) in mine {
        let t = &cur.ckpt.tensors[i];
        let mut change = match (prev, pi) {
            (Some(p), Some(pi)) => Some(Change {
                prev: Elements::new(p.ckpt, p.sources, pi).map_err(|e| e.in_file(p.file_of(pi)))?,
                dec_prev: crate::format::element::Decoder::new(p.ckpt.tensors[pi].dtype),
                dec_cur: crate::format::element::Decoder::new(t.dtype),
                cur_size: t.dtype.size(),
                first: 0,
                lanes: Lanes::default(),
                comparable: true,
                bufs: Default::default(),
            }),
            _ => None,
        };
        let prev_file = match (prev, pi) {
            (Some(p), Some(pi)) => p.file_of(pi),
            _ => String::new(),
        };
        let prev_size = |n: u64| {
            let ps = pi.map_or(0, |pi| prev.expect("pi").ckpt.tensors[pi].dtype.size()) as u64;
            n / t.dtype.size() as u64 * ps
        };
        let mut prev_err = None;
        let mut replay = |sink: &mut dyn FnMut(&[u8]) -> Result<()>| {
            read_logical(cur.ckpt, cur.sources, i, opts.chunk, &mut |b| {
                if let Some(c) = change.as_mut() {
                    if let Err(e) = c.add(b) {
                        prev_err = Some(e.in_file(prev_file.clone()));
                        return Err(FormatError::new("previous checkpoint unreadable"));
                    }
                }
                sink(b)
            })
        };
        let el = StatsInput {
            dtype: t.dtype,
            numel: t.numel(),
            dequant: dequant_of(&t.kind),
        };
        let r = tensor_stats(el, &opts, &mut replay, &mut |n| {
            done += n + prev_size(n);
            progress(done, total)
        });
        if let Some(e) = prev_err {
            return Err(e.within(key));
        }
        let Some(s) = r.map_err(|e| e.in_file(cur.file_of(i)))? else {
            return Ok(None);
        };
        let v = &s.summary;
        out.points.push(Point {
            std: v.std,
            mean: v.mean,
            abs_max: s.absmax,
            l2: (v.finite() > 0).then_some(s.l2),
            zero_fraction: (v.count > 0).then(|| v.zeros as f64 / v.count as f64),
            nonfinite: v.nonfinite(),
            rel_change: change.as_mut().and_then(Change::rel_change),
            floating: matches!(t.dtype.kind(), DKind::Float | DKind::Complex),
        });
        out.keys.push(key);
    }
    Ok(Some(out))
}

/// Join the steps (`points[t]` ↔ `steps[t]`) into the run's table and compute the flags.
pub fn assemble(steps: Vec<StepInfo>, points: &[StepPoints]) -> TrendReport {
    let n = steps.len();
    let mut index: HashMap<&str, usize> = HashMap::new();
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
    v.sort_by(f64::total_cmp);
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
    out.sort();
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
    let mut cell_flags: HashMap<(&str, usize), Vec<&str>> = HashMap::new();
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
        let srcs: Vec<Vec<&dyn Source>> = steps.iter().map(|(_, s)| vec![s as _]).collect();
        let opened: Vec<CheckpointRef> = steps
            .iter()
            .zip(&srcs)
            .map(|((c, _), s)| CheckpointRef {
                ckpt: c,
                sources: s,
            })
            .collect();
        let mut pts = vec![];
        for t in 0..opened.len() {
            let prev = t.checked_sub(1).map(|p| opened[p]);
            let p = step_points(opened[t], prev, &|_| true, 8, &mut |_, _| true);
            pts.push(p.unwrap().unwrap());
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

    #[test]
    fn change_sums_do_not_depend_on_chunking() {
        let a: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f64 * 1e-3 + 1.0)
            .collect();
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x + (i % 13) as f64 * 1e-7)
            .collect();
        let sums = |chunk: usize| {
            let mut l = Lanes::default();
            for (x, y) in a.chunks(chunk).zip(b.chunks(chunk)) {
                l.add(x, y);
            }
            l.finish()
        };
        let one = sums(10_000);
        assert_eq!(sums(3), one);
        assert_eq!(sums(4096), one);
        assert_eq!(sums(777), one);
        let want: f64 = a.iter().zip(&b).map(|(x, y)| (y - x) * (y - x)).sum();
        assert!((one.0 - want).abs() <= 1e-12 * want);
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["b10", "b9", "a", "b01", "b1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "b01", "b1", "b9", "b10"]);
    }
}
