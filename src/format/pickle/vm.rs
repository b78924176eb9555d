//! A safe pickle virtual machine for protocols 0–5.
//!
//! Contract: [`Unpickler::load`] runs one pickle from a byte offset to its STOP and returns the
//! root value's [`Id`] in the arena plus the offset after STOP. It implements the CPython
//! unpickler's opcode set (memo, marks, PERSID/BINPERSID, text and binary forms) but **never
//! executes anything**: GLOBAL pushes a [`Value::Global`] (classified and recorded in the
//! [`SafetyReport`]); REDUCE / NEWOBJ / INST / OBJ hand the call to [`super::calls`], which builds
//! real values only for allow-listed torch and builtin functions and an inert [`Value::Object`]
//! for everything else. Hostile input is bounded by [`Limits`] (values, stack depth, memo size,
//! the memory budget of [`memory_budget`]), by [`MAX_DEPTH`] on nesting and by
//! [`MAX_DECIMAL_DIGITS`] on text integers, and becomes an error with the byte offset — never a
//! panic, hang or OOM.
//!
//! Complexity: linear in the pickle. Each opcode costs O(its argument bytes + the items it
//! moves); building a value also visits its direct children once (depth and budget); the memo is
//! a vector (a hash map for sparse indices); no value is ever walked recursively here.

use super::calls::{self, StorageResolver};
use super::value::{DictKind, Id, Inert, Items, Value};
use super::{pyfloat, safety};
use crate::format::checkpoint::{GlobalRef, SafetyReport};
use crate::format::fastmap::{KeyMap, KeySet};

/// Calls rendered for the safety report at most (each at most [`CALL_TEXT`] characters).
const CALLS_RENDERED: usize = 4096;
/// Longest call text in the safety report.
const CALL_TEXT: usize = 240;

/// Memo indices below this are stored densely.
const DENSE_MEMO: u64 = 1 << 20;

/// Deepest nesting of containers a pickle may build (a value inside 256 lists is refused; real
/// checkpoints nest a few tens deep). Every consumer of the tree (printing, JSON, the pickler,
/// the page, a debug build's 2 MiB test threads, the wasm worker's 1 MiB stack) may then recurse
/// safely.
pub const MAX_DEPTH: usize = 256;

/// Most decimal digits in a text `INT` / `LONG` literal: CPython's default
/// `sys.get_int_max_str_digits()` (4300), which keeps decimal parsing linear in practice.
pub const MAX_DECIMAL_DIGITS: usize = 4300;

/// The memory budget for unpickling `pickle_len` bytes: a fixed 256 MiB plus 128 bytes per
/// pickle byte. It counts every byte the file makes us hold — arena slots, strings, bytes, big
/// ints, container item lists (also those copied by BUILD and by allow-listed calls), and the
/// tree built from the arena (nodes, copied strings and bytes, tensor paths).
pub fn memory_budget(pickle_len: usize) -> usize {
    (256usize << 20).saturating_add(pickle_len.saturating_mul(128))
}

/// The refusal of opcode `op` on a value it does not apply to.
fn refused(op: &str, v: &Value, why: &str) -> String {
    format!("{op} on a {} ({why})", v.kind_name())
}

/// The note for bytes after a pickle's STOP (`pickle.load` leaves them unread), if there are any.
pub fn trailing_note(place: &str, len: usize, end: usize) -> Option<String> {
    (end < len).then(|| {
        format!(
            "{place}: {} bytes after the pickle's STOP were ignored",
            len - end
        )
    })
}

/// Resource limits for one unpickling run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Values in the arena (every pushed object counts).
    pub max_values: usize,
    /// Stack depth (including values held under marks).
    pub max_stack: usize,
    /// Number of MARKs open at once.
    pub max_marks: usize,
    /// Memo entries.
    pub max_memo: usize,
    /// The memory budget: every byte held for the file's values (see [`memory_budget`]).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_values: 20_000_000,
            max_stack: 1_000_000,
            max_marks: 100_000,
            max_memo: 10_000_000,
            max_bytes: memory_budget(0),
        }
    }
}

/// An unpickling error at a byte offset.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError {
    pub pos: usize,
    pub msg: String,
    /// The data ended before STOP (a caller with more bytes may retry).
    pub truncated: bool,
}

type R<T> = Result<T, PickleError>;

/// The unpickler state: arena, stack, marks and memo.
pub struct Unpickler<'r> {
    pub arena: Vec<Value>,
    /// Nesting depth of each arena value as built (1 for a scalar or an empty container). A
    /// container mutated after it was nested elsewhere can be deeper than this says; the tree
    /// builder checks depth again.
    depth: Vec<u16>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    /// Memo slots below [`DENSE_MEMO`] live in a vector (pickles number them densely from 0);
    /// larger indices, which only hand-made pickles use, in a map.
    memo: Vec<Option<Id>>,
    memo_sparse: KeyMap<u64, Id>,
    memo_len: usize,
    /// One shared slot per immutable value that Python itself shares (`None`, `True`, `False`,
    /// `()`, the small ints −5…256), made the first time an opcode pushes it: a state dict of
    /// many small tensors pushes several per tensor (their sizes, strides, offsets, flags).
    shared: Vec<Id>,
    limits: Limits,
    bytes_used: usize,
    pub safety: SafetyReport,
    /// Non-fatal observations (unknown BUILD targets, protocol warnings).
    pub notes: Vec<String>,
    resolver: &'r mut dyn StorageResolver,
    /// Protocol announced by PROTO (last seen in the current pickle; 0 before any, as in
    /// Python, where each `load` starts a new unpickler).
    pub protocol: u8,
    calls_rendered: usize,
    /// Globals already classified (per protocol class: dotted names resolve from protocol 4),
    /// so that a repeated GLOBAL costs one hash lookup.
    classified: KeySet<(String, String, bool)>,
}

impl<'r> Unpickler<'r> {
    pub fn new(resolver: &'r mut dyn StorageResolver, limits: Limits) -> Self {
        Unpickler {
            arena: Vec::new(),
            depth: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Vec::new(),
            memo_sparse: KeyMap::new(),
            memo_len: 0,
            shared: Vec::new(),
            limits,
            bytes_used: 0,
            safety: SafetyReport::default(),
            notes: Vec::new(),
            resolver,
            protocol: 0,
            calls_rendered: 0,
            classified: KeySet::new(),
        }
    }

    /// Value of an id.
    pub fn get(&self, id: Id) -> &Value {
        &self.arena[id as usize]
    }

    /// Add a value to the arena, charging its bytes to the memory budget and checking its
    /// nesting depth (O(number of direct children)).
    pub fn alloc(&mut self, v: Value) -> Result<Id, String> {
        if self.arena.len() >= self.limits.max_values {
            return Err(format!(
                "pickle builds more than {} values (limit)",
                self.limits.max_values
            ));
        }
        self.charge(held_bytes(&v))?;
        let mut deepest = 0u16;
        for_children(&v, |c| deepest = deepest.max(self.depth[c as usize]));
        let d = self.check_depth(deepest)?;
        self.arena.push(v);
        self.depth.push(d);
        Ok((self.arena.len() - 1) as Id)
    }

    /// The depth of a container whose deepest child has depth `child`, or the nesting error.
    fn check_depth(&self, child: u16) -> Result<u16, String> {
        let d = child + 1;
        if d as usize > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH}"));
        }
        Ok(d)
    }

    /// Deepen `target` to hold children `ids` (APPEND, SETITEM, BUILD) and charge their slots.
    fn grow(&mut self, target: Id, ids: impl Iterator<Item = Id>) -> Result<(), String> {
        let mut deepest = 0u16;
        let mut n = 0usize;
        for c in ids {
            deepest = deepest.max(self.depth[c as usize]);
            n += 1;
        }
        self.charge(n * std::mem::size_of::<Id>())?;
        let d = self.check_depth(deepest)?;
        if Shared::slot(&self.arena[target as usize]).is_some() {
            // a shared immutable value holds nothing (BUILD on it is ignored, items refused):
            // every other holder of it keeps its depth
            return Ok(());
        }
        let t = &mut self.depth[target as usize];
        *t = (*t).max(d);
        Ok(())
    }

    /// Bytes held so far (the tree builder continues counting from here).
    pub fn bytes_used(&self) -> usize {
        self.bytes_used
    }

    /// The memory budget of this run.
    pub fn budget(&self) -> usize {
        self.limits.max_bytes
    }

    fn charge(&mut self, n: usize) -> Result<(), String> {
        self.bytes_used = self.bytes_used.saturating_add(n);
        if self.bytes_used > self.limits.max_bytes {
            return Err(budget_error(self.limits.max_bytes));
        }
        Ok(())
    }

    /// Call the storage resolver (used by [`super::calls`]).
    pub fn resolver(&mut self) -> &mut dyn StorageResolver {
        self.resolver
    }

    /// Record a global (resolved as `find_class` would at the current protocol) in the safety
    /// report, once per name. The report's copy (list + dedup map) and the classified-names set
    /// are charged to the memory budget (checked by the alloc that follows every GLOBAL).
    pub fn record_global(&mut self, g: &safety::Resolved) {
        let key = (g.module.clone(), g.name.clone(), self.protocol >= 4);
        if !self.classified.insert(key) {
            return;
        }
        let (tier, why) = safety::classify(g, self.protocol);
        let before = self.safety.globals.len();
        let held =
            std::mem::size_of::<GlobalRef>() + 3 * (g.module.len() + g.name.len()) + why.len();
        self.safety.add(GlobalRef {
            module: g.module.clone(),
            name: g.name.clone(),
            tier,
            why,
        });
        if self.safety.globals.len() > before {
            self.bytes_used = self.bytes_used.saturating_add(held);
        }
    }

    /// True for the first [`CALLS_RENDERED`] calls rendered for the safety report (rendering
    /// is bounded per call, and so in all).
    pub fn may_render_call(&mut self) -> bool {
        self.calls_rendered += 1;
        self.calls_rendered <= CALLS_RENDERED
    }

    /// Record what a call of `module.name` with `args` would run (the first few distinct calls
    /// of globals that are not allowed; bounded work per call).
    pub fn record_call(&mut self, module: &str, name: &str, args: &[Id]) {
        if safety::is_allowed(module, name) || !self.may_render_call() {
            return;
        }
        let text = super::pyrepr::call_text(self, module, name, args, CALL_TEXT);
        self.safety.add_call(text);
    }

    /// Run one pickle starting at `start`; returns (root, offset after STOP). The memo is reset
    /// for each pickle (as in Python, where each `load` has its own unpickler).
    pub fn load(&mut self, data: &[u8], start: usize) -> R<(Id, usize)> {
        // Every value takes at least one opcode byte; a torch state dict of many small tensors
        // takes about 13 bytes per value (50,000 keys: 5.8 MB, 0.45 M values, the shared ones
        // aside), so a tenth of the input saves the arena's regrowth copies for them (the
        // reservation is virtual until used natively; capped because wasm commits it; a denser
        // pickle grows the arena as usual).
        let hint = (data.len().saturating_sub(start) / 10)
            .min(self.limits.max_values)
            .min(1 << 20);
        self.arena.reserve(hint.saturating_sub(self.arena.len()));
        self.depth.reserve(hint.saturating_sub(self.depth.len()));
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        self.memo_sparse.clear();
        self.memo_len = 0;
        self.protocol = 0;
        let mut rd = Reader { data, pos: start };
        loop {
            let op_pos = rd.pos;
            let op = rd.u8()?;
            let res = self.step(op, &mut rd);
            match res {
                Ok(true) => {
                    let root = self.pop().map_err(|m| PickleError {
                        pos: op_pos,
                        msg: m,
                        truncated: false,
                    })?;
                    return Ok((root, rd.pos));
                }
                Ok(false) => {}
                Err(Step::Msg(m)) => {
                    return Err(PickleError {
                        pos: op_pos,
                        msg: m,
                        truncated: false,
                    })
                }
                Err(Step::Pickle(e)) => return Err(e),
            }
        }
    }

    fn push(&mut self, id: Id) -> Result<(), String> {
        if self.stack.len() >= self.limits.max_stack {
            return Err(format!(
                "pickle stack deeper than {} (limit)",
                self.limits.max_stack
            ));
        }
        self.stack.push(id);
        Ok(())
    }

    fn push_new(&mut self, v: Value) -> Result<(), String> {
        let id = self.alloc(v)?;
        self.push(id)
    }

    /// Push `v`, an immutable value Python shares ([`Shared`]), through its one slot.
    fn push_shared(&mut self, v: Value) -> Result<(), String> {
        let Some(k) = Shared::slot(&v) else {
            return self.push_new(v);
        };
        if self.shared.is_empty() {
            self.shared = vec![Id::MAX; Shared::SLOTS];
        }
        let id = match self.shared[k] {
            Id::MAX => {
                let id = self.alloc(v)?;
                self.shared[k] = id;
                id
            }
            id => id,
        };
        self.push(id)
    }

    fn pop(&mut self) -> Result<Id, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow (pop below the current MARK)".into());
        }
        Ok(self.stack.pop().expect("checked"))
    }

    fn top(&self) -> Result<Id, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow (empty stack)".into());
        }
        Ok(*self.stack.last().expect("checked"))
    }

    fn pop_mark(&mut self) -> Result<Items, String> {
        let m = self.marks.pop().ok_or("no MARK on the stack")?;
        let items = Items::from_slice(&self.stack[m..]);
        self.stack.truncate(m);
        Ok(items)
    }

    fn memo_put(&mut self, idx: u64) -> Result<(), String> {
        let id = self.top()?;
        let fresh = if idx < DENSE_MEMO {
            let i = idx as usize;
            if i >= self.memo.len() {
                self.memo.resize(i + 1, None);
            }
            self.memo[i].replace(id).is_none()
        } else {
            self.memo_sparse.insert(idx, id).is_none()
        };
        if fresh {
            self.memo_len += 1;
            if self.memo_len > self.limits.max_memo {
                return Err(format!(
                    "memo larger than {} entries (limit)",
                    self.limits.max_memo
                ));
            }
        }
        Ok(())
    }

    fn memo_get(&mut self, idx: u64) -> Result<(), String> {
        let id = if idx < DENSE_MEMO {
            self.memo.get(idx as usize).copied().flatten()
        } else {
            self.memo_sparse.get(&idx).copied()
        };
        let id = id.ok_or_else(|| format!("memo index {idx} was never stored"))?;
        self.push(id)
    }

    fn string_value(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.charge(bytes.len())?; // before the copy; the value's own charge follows in alloc
        let s = String::from_utf8_lossy(bytes).into_owned();
        self.push_new(Value::Str(s))
    }

    fn bytes_value(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.charge(bytes.len())?;
        self.push_new(Value::Bytes(bytes.to_vec()))
    }

    fn long_value(&mut self, le: &[u8]) -> Result<(), String> {
        self.charge(le.len())?;
        let v = int_from_le(le);
        self.push_new(v)
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), String> {
        let g = safety::resolve(module, name, self.protocol);
        self.record_global(&g);
        self.push_new(Value::Global {
            module: g.module,
            name: g.name,
        })
    }

    fn set_items(&mut self, target: Id, pairs: Vec<(Id, Id)>) -> Result<(), String> {
        self.grow(target, pairs.iter().flat_map(|&(k, v)| [k, v]))?;
        // repeated keys are resolved (last value wins, first position kept) when the tree is
        // built, where keys are compared by value
        match &mut self.arena[target as usize] {
            Value::Dict { items, .. } => items.extend(pairs),
            Value::Object(o) => o.items.extend(pairs),
            other => return Err(refused("SETITEM(S)", other, "only dicts take items")),
        }
        Ok(())
    }

    fn append_items(&mut self, target: Id, new: &[Id]) -> Result<(), String> {
        self.grow(target, new.iter().copied())?;
        match &mut self.arena[target as usize] {
            Value::List(items) | Value::Set { items, .. } => items.extend_from_slice(new),
            Value::Object(o) => o.list.extend_from_slice(new),
            other => return Err(refused("APPEND(S)", other, "only lists take appends")),
        }
        Ok(())
    }

    fn build(&mut self, target: Id, state: Id) -> Result<(), String> {
        let state_items = match self.get(state) {
            Value::Dict { items, .. } => Some(items.clone()),
            _ => None,
        };
        // the state's items are copied into a dict's attributes; an object keeps the state's id
        match &state_items {
            Some(items) if matches!(self.get(target), Value::Dict { .. }) => {
                let ids: Vec<Id> = items.iter().flat_map(|&(k, v)| [k, v]).collect();
                self.grow(target, ids.into_iter())?;
            }
            _ => self.grow(target, std::iter::once(state))?,
        }
        match &mut self.arena[target as usize] {
            Value::Dict { attrs, .. } => {
                match state_items {
                    Some(items) => attrs.extend(items),
                    None => self
                        .notes
                        .push("BUILD on a dict with a non-dict state was ignored".into()),
                }
                Ok(())
            }
            Value::Object(o) => {
                o.state = Some(state);
                Ok(())
            }
            Value::Tensor(_) => Ok(()), // Parameter / tensor Python attributes: kept out of the index
            Value::Global { module, name } => {
                // BUILD on a class or function object itself (NEWOBJ never happened): Python
                // sets attributes of that module-level object (monkey-patching); keep it inert
                let (module, name) = (module.clone(), name.clone());
                self.safety.add_finding(format!(
                    "BUILD sets attributes of the global {module}.{name} itself (monkey-patching code that runs later)"
                ));
                let mut o = Inert::value(module, name, vec![]);
                if let Value::Object(i) = &mut o {
                    i.state = Some(state);
                }
                self.arena[target as usize] = o;
                Ok(())
            }
            other => {
                let k = other.kind_name();
                self.notes.push(format!("BUILD on a {k} was ignored"));
                Ok(())
            }
        }
    }

    /// Execute one opcode. Ok(true) at STOP.
    fn step(&mut self, op: u8, rd: &mut Reader) -> Result<bool, Step> {
        match op {
            b'(' => {
                if self.marks.len() >= self.limits.max_marks {
                    return Err(Step::Msg(format!(
                        "more than {} nested MARKs (limit)",
                        self.limits.max_marks
                    )));
                }
                self.marks.push(self.stack.len());
            }
            b'.' => return Ok(true),
            b'0' => {
                // POP: pops the top item, or the topmost MARK if the stack is at a mark
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let t = self.top()?;
                self.push(t)?;
            }
            b'F' => {
                let line = rd.line()?;
                let v = pyfloat::parse(line).ok_or_else(|| {
                    format!(
                        "FLOAT {:?} is not a number",
                        String::from_utf8_lossy(line).trim()
                    )
                })?;
                self.push_new(Value::Float(v))?;
            }
            b'I' => {
                let line = rd.line()?;
                let t = std::str::from_utf8(line)
                    .map_err(|_| "INT is not ASCII")?
                    .trim();
                check_digits(t)?;
                let v = match t {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    _ => parse_decimal(t).ok_or_else(|| format!("INT {t:?} is not an integer"))?,
                };
                self.push_shared(v)?;
            }
            b'J' => {
                let v = i32::from_le_bytes(rd.arr::<4>()?);
                self.push_shared(Value::Int(v as i64))?;
            }
            b'K' => {
                let v = rd.u8()?;
                self.push_shared(Value::Int(v as i64))?;
            }
            b'M' => {
                let v = u16::from_le_bytes(rd.arr::<2>()?);
                self.push_shared(Value::Int(v as i64))?;
            }
            b'L' => {
                let line = rd.line()?;
                let t = std::str::from_utf8(line)
                    .map_err(|_| "LONG is not ASCII")?
                    .trim();
                let t = t.strip_suffix('L').unwrap_or(t);
                check_digits(t)?;
                let v = parse_decimal(t).ok_or_else(|| format!("LONG {t:?} is not an integer"))?;
                self.push_new(v)?;
            }
            b'N' => self.push_shared(Value::None)?,
            b'P' => {
                let line = rd.line()?.to_vec();
                self.string_value(&line)?;
                let pid = self.pop()?;
                let v = calls::persistent_load(self, pid)?;
                self.push_new(v)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let v = calls::persistent_load(self, pid)?;
                self.push_new(v)?;
            }
            b'R' => {
                let args = self.pop()?;
                let func = self.pop()?;
                let v = calls::call(self, func, args)?;
                self.push_new(v)?;
            }
            b'S' => {
                let line = rd.line()?;
                let s = decode_py_string_literal(line).ok_or("STRING is not a quoted literal")?;
                self.string_value(&s)?;
            }
            b'T' => {
                let n = i32::from_le_bytes(rd.arr::<4>()?);
                if n < 0 {
                    return Err(Step::Msg("BINSTRING with a negative length".into()));
                }
                let b = rd.take(n as usize)?;
                self.string_value(b)?;
            }
            b'U' | 0x8c => {
                let b = rd.counted::<1>()?;
                self.string_value(b)?;
            }
            b'V' => {
                let line = rd.line()?;
                let s = decode_raw_unicode_escape(line);
                self.charge(s.len())?;
                self.push_new(Value::Str(s))?;
            }
            b'X' => {
                let b = rd.counted::<4>()?;
                self.string_value(b)?;
            }
            0x8d => {
                let b = rd.counted::<8>()?;
                self.string_value(b)?;
            }
            b'B' => {
                let b = rd.counted::<4>()?;
                self.bytes_value(b)?;
            }
            b'C' => {
                let b = rd.counted::<1>()?;
                self.bytes_value(b)?;
            }
            0x8e | 0x96 => {
                let b = rd.counted::<8>()?;
                self.bytes_value(b)?;
            }
            0x97 => {
                return Err(Step::Msg(
                    "NEXT_BUFFER: out-of-band pickle buffers are not supported".into(),
                ))
            }
            0x98 => {
                self.top()?; // READONLY_BUFFER: no-op on the value
            }
            b'a' => {
                let v = self.pop()?;
                let l = self.top()?;
                self.append_items(l, &[v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                let l = self.top()?;
                self.append_items(l, &items)?;
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                self.build(target, state)?;
            }
            b'c' => {
                let (m, n) = rd.module_and_name()?;
                self.global(&m, &n)?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (self.get(module).clone(), self.get(name).clone()) {
                    (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
                    (m, n) => {
                        let what = format!(
                            "STACK_GLOBAL operands are not strings ({} and {}): the pickle computes which function to import",
                            m.kind_name(),
                            n.kind_name()
                        );
                        self.safety.add_finding(what);
                        self.push_new(Value::Global {
                            module: "<computed>".into(),
                            name: "<computed>".into(),
                        })?;
                    }
                }
            }
            b'd' => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(Step::Msg("DICT with an odd number of items".into()));
                }
                let pairs = items.chunks(2).map(|c| (c[0], c[1])).collect();
                let id = self.alloc(Value::Dict {
                    kind: DictKind::Dict,
                    items: vec![],
                    attrs: vec![],
                })?;
                self.set_items(id, pairs)?;
                self.push(id)?;
            }
            b'}' => self.push_new(Value::Dict {
                kind: DictKind::Dict,
                items: vec![],
                attrs: vec![],
            })?,
            b'g' | b'h' | b'j' => {
                let idx = rd.memo_index(op)?;
                self.memo_get(idx)?;
            }
            b'i' => {
                let (m, n) = rd.module_and_name()?;
                let args = self.pop_mark()?;
                self.global(&m, &n)?;
                let cls = self.pop()?;
                let targs = self.alloc(Value::Tuple(args))?;
                let v = calls::call(self, cls, targs)?;
                self.push_new(v)?;
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(Step::Msg("OBJ without a class".into()));
                }
                let cls = items.remove(0);
                let targs = self.alloc(Value::Tuple(items))?;
                let v = calls::call(self, cls, targs)?;
                self.push_new(v)?;
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push_new(Value::List(items))?;
            }
            b']' => self.push_new(Value::List(Items::new()))?,
            b'p' | b'q' | b'r' => {
                let idx = rd.memo_index(op)?;
                self.memo_put(idx)?;
            }
            0x94 => {
                let idx = self.memo_len as u64;
                self.memo_put(idx)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let d = self.top()?;
                self.set_items(d, vec![(k, v)])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(Step::Msg("SETITEMS with an odd number of items".into()));
                }
                let d = self.top()?;
                self.set_items(d, items.chunks(2).map(|c| (c[0], c[1])).collect())?;
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push_new(Value::Tuple(items))?;
            }
            b')' => self.push_shared(Value::Tuple(Items::new()))?,
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Items::new();
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push_new(Value::Tuple(items))?;
            }
            b'G' => {
                let v = f64::from_be_bytes(rd.arr::<8>()?);
                self.push_new(Value::Float(v))?;
            }
            0x80 => {
                let p = rd.u8()?;
                if p > 5 {
                    return Err(Step::Msg(format!("unsupported pickle protocol {p}")));
                }
                self.protocol = p;
            }
            0x81 => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = calls::call(self, cls, args)?;
                self.push_new(v)?;
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = calls::call(self, cls, args)?;
                let id = self.alloc(v)?;
                if let Value::Object(o) = &mut self.arena[id as usize] {
                    if o.state.is_none() {
                        o.state = Some(kwargs);
                        self.grow(id, std::iter::once(kwargs))?;
                    }
                }
                self.push(id)?;
            }
            0x82..=0x84 => {
                let code = match op {
                    0x82 => rd.u8()? as u32,
                    0x83 => u16::from_le_bytes(rd.arr::<2>()?) as u32,
                    _ => i32::from_le_bytes(rd.arr::<4>()?) as u32,
                };
                let name = format!("ext{code}");
                self.record_global(&safety::Resolved {
                    module: "copyreg._extension_registry".into(),
                    name: name.clone(),
                    storage_type: false,
                });
                self.push_new(Value::Global {
                    module: "copyreg._extension_registry".into(),
                    name,
                })?;
            }
            0x88 => self.push_shared(Value::Bool(true))?,
            0x89 => self.push_shared(Value::Bool(false))?,
            0x8a => {
                let b = rd.counted::<1>()?;
                self.long_value(b)?;
            }
            0x8b => {
                let n = i32::from_le_bytes(rd.arr::<4>()?);
                if n < 0 {
                    return Err(Step::Msg("LONG4 with a negative length".into()));
                }
                let b = rd.take(n as usize)?;
                self.long_value(b)?;
            }
            0x8f => self.push_new(Value::Set {
                items: Items::new(),
                frozen: false,
            })?,
            0x90 => {
                let items = self.pop_mark()?;
                let s = self.top()?;
                self.append_items(s, &items)?;
            }
            0x91 => {
                let items = self.pop_mark()?;
                self.push_new(Value::Set {
                    items,
                    frozen: true,
                })?;
            }
            0x95 => {
                rd.arr::<8>()?; // FRAME: a length hint only
            }
            other => return Err(Step::Msg(format!("unknown opcode 0x{other:02x}"))),
        }
        Ok(false)
    }
}

/// Refuse decimal literals longer than CPython would convert.
fn check_digits(t: &str) -> Result<(), String> {
    let digits = t.trim_start_matches(['-', '+']).len();
    if digits > MAX_DECIMAL_DIGITS {
        return Err(format!(
            "integer literal of {digits} digits exceeds the limit of {MAX_DECIMAL_DIGITS} digits (as CPython's int conversion)"
        ));
    }
    Ok(())
}

/// The message for a run past the memory budget.
pub fn budget_error(budget: usize) -> String {
    format!(
        "the file's values need more than {} MiB of memory (memory budget: 256 MiB + 128 bytes per pickle byte)",
        budget >> 20
    )
}

/// The immutable values that Python itself makes once and shares (`None`, `True`, `False`,
/// the empty tuple, the small ints −5…256): the VM gives each one arena slot per run.
struct Shared;

impl Shared {
    const SMALL_INTS: std::ops::RangeInclusive<i64> = -5..=256;
    const SLOTS: usize = 4 + 262;

    /// The slot of `v`, if it is one of them.
    fn slot(v: &Value) -> Option<usize> {
        match v {
            Value::None => Some(0),
            Value::Bool(false) => Some(1),
            Value::Bool(true) => Some(2),
            Value::Tuple(t) if t.is_empty() => Some(3),
            Value::Int(i) if Self::SMALL_INTS.contains(i) => Some((4 + i + 5) as usize),
            _ => None,
        }
    }
}

/// Heap and slot bytes a value holds (its arena slot, strings, bytes, item lists).
fn held_bytes(v: &Value) -> usize {
    let id = std::mem::size_of::<Id>();
    std::mem::size_of::<Value>()
        + match v {
            Value::BigInt(b) | Value::Bytes(b) => b.len(),
            Value::Str(s) | Value::Device(s) => s.len(),
            Value::List(x) | Value::Tuple(x) | Value::Set { items: x, .. } => x.len() * id,
            Value::Dict { items, attrs, .. } => (items.len() + attrs.len()) * 2 * id,
            Value::Global { module, name } => module.len() + name.len(),
            Value::Object(o) => {
                std::mem::size_of::<super::value::Inert>()
                    + o.module.len()
                    + o.name.len()
                    + (o.args.len() + o.list.len() + 2 * o.items.len()) * id
            }
            Value::Tensor(t) => {
                std::mem::size_of::<super::value::RawTensor>()
                    + (t.shape.len() + t.strides.len()) * 8
            }
            Value::Size(d) => d.len() * 8,
            _ => 0,
        }
}

/// Call `f` on every direct child id of a value.
fn for_children(v: &Value, mut f: impl FnMut(Id)) {
    match v {
        Value::List(x) | Value::Tuple(x) | Value::Set { items: x, .. } => {
            x.iter().for_each(|&c| f(c))
        }
        Value::Dict { items, attrs, .. } => items.iter().chain(attrs).for_each(|&(k, v)| {
            f(k);
            f(v)
        }),
        Value::Object(o) => {
            o.args.iter().chain(&o.list).for_each(|&c| f(c));
            o.items.iter().for_each(|&(k, v)| {
                f(k);
                f(v)
            });
            if let Some(s) = o.state {
                f(s)
            }
        }
        _ => {}
    }
}

/// Step failure: a message at the opcode's offset, or a reader error with its own offset.
enum Step {
    Msg(String),
    Pickle(PickleError),
}

impl From<String> for Step {
    fn from(m: String) -> Self {
        Step::Msg(m)
    }
}

impl From<&str> for Step {
    fn from(m: &str) -> Self {
        Step::Msg(m.to_string())
    }
}

impl From<PickleError> for Step {
    fn from(e: PickleError) -> Self {
        Step::Pickle(e)
    }
}

/// A cursor over the pickle bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn eof(&self, what: &str) -> PickleError {
        PickleError {
            pos: self.pos,
            msg: format!("the pickle ends inside {what} (truncated file?)"),
            truncated: true,
        }
    }
    fn u8(&mut self) -> R<u8> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.eof("an opcode"))?;
        self.pos += 1;
        Ok(b)
    }
    fn arr<const N: usize>(&mut self) -> R<[u8; N]> {
        let s = self.take(N)?;
        Ok(s.try_into().expect("length N"))
    }
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.data.len() - self.pos < n {
            return Err(self.eof(&format!("a {n}-byte argument")));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// The `module` and `name` text lines of GLOBAL and INST.
    fn module_and_name(&mut self) -> R<(String, String)> {
        let module = String::from_utf8_lossy(self.line()?).into_owned();
        let name = String::from_utf8_lossy(self.line()?).into_owned();
        Ok((module, name))
    }
    /// An argument after its unsigned little-endian length of `N` (1, 4 or 8) bytes.
    fn counted<const N: usize>(&mut self) -> R<&'a [u8]> {
        let mut len = [0u8; 8];
        len[..N].copy_from_slice(&self.arr::<N>()?);
        self.take_u64(u64::from_le_bytes(len))
    }
    fn take_u64(&mut self, n: u64) -> R<&'a [u8]> {
        if n > (self.data.len() - self.pos) as u64 {
            return Err(self.eof(&format!("a {n}-byte argument")));
        }
        self.take(n as usize)
    }
    /// The memo index of GET (`g h j`) or PUT (`p q r`) in the opcode's encoding: decimal text,
    /// one byte or four little-endian bytes.
    fn memo_index(&mut self, op: u8) -> Result<u64, Step> {
        match op {
            b'g' | b'p' => {
                let what = if op == b'g' { "GET" } else { "PUT" };
                let line = self.line()?;
                parse_index(line).ok_or_else(|| Step::Msg(format!("{what} with a bad index")))
            }
            b'h' | b'q' => Ok(self.u8()? as u64),
            _ => Ok(u32::from_le_bytes(self.arr::<4>()?) as u64),
        }
    }
    fn line(&mut self) -> R<&'a [u8]> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| self.eof("a text line"))?;
        let s = &rest[..n];
        self.pos += n + 1;
        Ok(s)
    }
}

fn parse_index(line: &[u8]) -> Option<u64> {
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

/// Parse a decimal integer of any size into Int or BigInt (callers cap the digits at
/// [`MAX_DECIMAL_DIGITS`]: the conversion is quadratic in the digit count).
pub(crate) fn parse_decimal(t: &str) -> Option<Value> {
    if let Ok(v) = t.parse::<i64>() {
        return Some(Value::Int(v));
    }
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // magnitude as little-endian bytes
    let mut mag: Vec<u8> = vec![0];
    for c in digits.bytes() {
        let mut carry = (c - b'0') as u32;
        for b in mag.iter_mut() {
            let v = *b as u32 * 10 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push(carry as u8);
            carry >>= 8;
        }
    }
    mag.push(0); // sign byte
    if neg {
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let v = (!*b) as u16 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
    }
    Some(int_from_le(&mag))
}

/// Int if it fits i64, else BigInt.
fn int_from_le(le: &[u8]) -> Value {
    if le.is_empty() {
        return Value::Int(0);
    }
    let neg = le[le.len() - 1] & 0x80 != 0;
    // strip redundant sign-extension bytes
    let mut n = le.len();
    while n > 1 {
        let top = le[n - 1];
        let next_sign = le[n - 2] & 0x80 != 0;
        if (top == 0x00 && !neg && !next_sign) || (top == 0xff && neg && next_sign) {
            n -= 1;
        } else {
            break;
        }
    }
    if n <= 8 {
        let mut a = if neg { [0xffu8; 8] } else { [0u8; 8] };
        a[..n].copy_from_slice(&le[..n]);
        Value::Int(i64::from_le_bytes(a))
    } else {
        Value::BigInt(le[..n].to_vec())
    }
}

/// Decode a protocol-0 STRING argument: a quoted Python 2 `repr`.
fn decode_py_string_literal(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() < 2 {
        return None;
    }
    let q = line[0];
    if (q != b'\'' && q != b'"') || line[line.len() - 1] != q {
        return None;
    }
    let body = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let e = *body.get(i)?;
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match body.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let h = std::str::from_utf8(body.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            other => out.push(other),
        }
    }
    Some(out)
}

/// Decode a protocol-0 UNICODE argument (raw-unicode-escape: `\uXXXX`, `\UXXXXXXXX`, latin-1).
fn decode_raw_unicode_escape(line: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' && i + 1 < line.len() && (line[i + 1] == b'u' || line[i + 1] == b'U') {
            let n = if line[i + 1] == b'u' { 4 } else { 8 };
            if let Some(h) = line
                .get(i + 2..i + 2 + n)
                .and_then(|h| std::str::from_utf8(h).ok())
            {
                if let Some(c) = u32::from_str_radix(h, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                    i += 2 + n;
                    continue;
                }
            }
        }
        out.push(line[i] as char);
        i += 1;
    }
    out
}
