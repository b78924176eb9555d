//! What REDUCE / NEWOBJ / BINPERSID mean: the allow-listed torch and builtin callables build real
//! values (tensors, storages, OrderedDicts, sets, bytes, sizes, devices); every other callable
//! yields an inert [`Value::Object`] recording its module, name and arguments. Nothing is executed.
//!
//! Contract: tensor rebuild calls (docs/formats.md §3) are validated (sizes and strides are
//! non-negative ints, storages resolved through the [`StorageResolver`]) and produce
//! [`Value::Tensor`]; bounds against the storage are checked when bytes are read.

use super::value::{DictKind, Id, Inert, Items, RawTensor, Value};
use super::vm::Unpickler;
use crate::format::checkpoint::TensorKind;
use crate::format::dtype::DType;

/// A storage persistent id: `('storage', class, key, location, numel[, view_metadata])`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoragePid {
    pub key: String,
    /// Element dtype of a typed storage class; `None` for `UntypedStorage` (numel in bytes).
    pub dtype: Option<DType>,
    /// The class name as written (`FloatStorage`, `UntypedStorage`).
    pub class: String,
    pub numel: u64,
    pub location: String,
    /// Legacy storage views: (root key, offset, numel) in elements.
    pub view: Option<(String, u64, u64)>,
}

/// Maps storage persistent ids to storage indices (zip records, legacy raw blocks).
pub trait StorageResolver {
    fn storage(&mut self, pid: &StoragePid) -> Result<usize, String>;
    /// A bare string persistent id: the 0.1.x tar format names each tensor and storage by a
    /// decimal key. `None`: not a key this reader knows (the id is kept inert).
    fn by_key(&mut self, _key: &str) -> Option<Value> {
        None
    }
}

fn int_of(u: &Unpickler, id: Id, what: &str) -> Result<i64, String> {
    match u.get(id) {
        Value::Int(v) => Ok(*v),
        Value::Bool(b) => Ok(*b as i64),
        Value::BigInt(_) => Err(format!("{what} is an integer too large for 64 bits")),
        other => Err(format!("{what} is a {}, not an int", other.kind_name())),
    }
}

fn uint_of(u: &Unpickler, id: Id, what: &str) -> Result<u64, String> {
    let v = int_of(u, id, what)?;
    u64::try_from(v).map_err(|_| format!("{what} is negative ({v})"))
}

fn dims_of(u: &Unpickler, id: Id, what: &str) -> Result<Vec<u64>, String> {
    match u.get(id) {
        Value::Tuple(items) | Value::List(items) => {
            items.iter().map(|&i| uint_of(u, i, what)).collect()
        }
        Value::Size(d) => d
            .iter()
            .map(|&v| u64::try_from(v).map_err(|_| format!("{what} is negative ({v})")))
            .collect(),
        other => Err(format!(
            "{what} is a {}, not a tuple of ints",
            other.kind_name()
        )),
    }
}

/// A pickled name or key as text: a str, an int in decimal, or bytes (lossy UTF-8).
pub(crate) fn str_of(u: &Unpickler, id: Id) -> Option<String> {
    match u.get(id) {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn bool_of(u: &Unpickler, id: Id) -> bool {
    matches!(u.get(id), Value::Bool(true)) || matches!(u.get(id), Value::Int(v) if *v != 0)
}

fn dtype_of(u: &Unpickler, id: Id) -> Result<DType, String> {
    match u.get(id) {
        Value::Global { module, name } if module == "torch" => DType::from_name(name)
            .filter(|d| d.name() == name)
            .ok_or_else(|| format!("torch.{name} is not a dtype weightscope knows")),
        Value::Dtype(d) => Ok(*d),
        other => Err(format!(
            "expected a torch dtype, found a {}",
            other.kind_name()
        )),
    }
}

fn args_of<'a>(u: &'a Unpickler, args: Id) -> Result<&'a [Id], String> {
    match u.get(args) {
        Value::Tuple(items) | Value::List(items) => Ok(items),
        other => Err(format!(
            "call arguments are a {}, not a tuple",
            other.kind_name()
        )),
    }
}

fn need(args: &[Id], n: usize, (module, name): (&str, &str)) -> Result<(), String> {
    if args.len() < n {
        return Err(format!(
            "{module}.{name} takes at least {n} arguments, got {}",
            args.len()
        ));
    }
    Ok(())
}

/// Resolve a BINPERSID / PERSID value.
pub fn persistent_load(u: &mut Unpickler, pid: Id) -> Result<Value, String> {
    if let Value::Str(text) = u.get(pid) {
        // Protocol 0 writes the storage tuple as its repr on a PERSID line (torch itself cannot
        // load these; we can): ('storage', <class 'torch.FloatStorage'>, '0', 'cpu', 6)
        if let Some(spid) = parse_pid_repr(text) {
            let dtype = spid.dtype;
            let index = u.resolver().storage(&spid)?;
            return Ok(Value::Storage { index, dtype });
        }
        let key = text.clone();
        if let Some(v) = u.resolver().by_key(&key) {
            return Ok(v);
        }
    }
    let items = match u.get(pid) {
        Value::Tuple(items) => items,
        other => {
            return Ok(Inert::value(
                "<persistent id>",
                other.kind_name(),
                vec![pid],
            ))
        }
    };
    // the tag as `str_of` reads it, compared without a copy
    let is_storage = items.first().is_some_and(|&i| match u.get(i) {
        Value::Str(s) => s == "storage",
        Value::Bytes(b) => b == b"storage",
        _ => false,
    });
    if !is_storage {
        let tag = items.first().and_then(|&i| str_of(u, i));
        return Ok(Inert::value(
            "<persistent id>",
            tag.unwrap_or_else(|| "?".into()),
            items.to_vec(),
        ));
    }
    // at most the six fields read below (the ids are copied: the resolver needs `u` mutably)
    let count = items.len();
    let mut fields = [0 as Id; 6];
    let n = count.min(fields.len());
    fields[..n].copy_from_slice(&items[..n]);
    let items = &fields[..n];
    if count < 5 {
        return Err(format!(
            "storage persistent id has {count} fields, expected 5 or 6"
        ));
    }
    let class = match u.get(items[1]) {
        Value::Global { name, .. } => name.as_str(),
        other => {
            return Err(format!(
                "storage class is a {}, not a class",
                other.kind_name()
            ))
        }
    };
    let dtype = if class == "UntypedStorage" || class == "TypedStorage" {
        None
    } else {
        Some(
            DType::from_storage_class(class)
                .ok_or_else(|| format!("unknown storage class {class}"))?,
        )
    };
    let class = class.to_string();
    let key = str_of(u, items[2]).ok_or("storage key is not a string")?;
    let location = str_of(u, items[3]).unwrap_or_default();
    let numel = uint_of(u, items[4], "storage numel")?;
    let view = match items.get(5).map(|&i| u.get(i).clone()) {
        None | Some(Value::None) => None,
        Some(Value::Tuple(v)) if v.len() == 3 => {
            let vk = str_of(u, v[0]).ok_or("storage view key is not a string")?;
            Some((
                vk,
                uint_of(u, v[1], "view offset")?,
                uint_of(u, v[2], "view size")?,
            ))
        }
        Some(other) => return Err(format!("storage view metadata is a {}", other.kind_name())),
    };
    let spid = StoragePid {
        key,
        dtype,
        class,
        numel,
        location,
        view,
    };
    let index = u.resolver().storage(&spid)?;
    Ok(Value::Storage { index, dtype })
}

fn object(module: &str, name: &str, args: Vec<Id>) -> Value {
    Inert::value(module, name, args)
}

struct TensorArgs {
    storage: usize,
    storage_dtype: Option<DType>,
    offset: u64,
    shape: Vec<u64>,
    strides: Vec<u64>,
}

/// Refuse shapes whose element count (times the largest element size) overflows 64 bits.
fn checked_shape(shape: Vec<u64>) -> Result<Vec<u64>, String> {
    let mut n: u64 = 16;
    for &d in &shape {
        n = n.checked_mul(d).ok_or_else(|| {
            format!("tensor size {shape:?} has more elements than fit in 64 bits")
        })?;
    }
    if shape.len() > 64 {
        return Err(format!("tensor has {} dimensions (limit 64)", shape.len()));
    }
    Ok(shape)
}

fn tensor_args(u: &Unpickler, a: &[Id]) -> Result<TensorArgs, String> {
    let (storage, storage_dtype) = match u.get(a[0]) {
        Value::Storage { index, dtype } => (*index, *dtype),
        other => {
            return Err(format!(
                "tensor storage is a {}, not a storage",
                other.kind_name()
            ))
        }
    };
    let offset = uint_of(u, a[1], "storage offset")?;
    let shape = checked_shape(dims_of(u, a[2], "size")?)?;
    let strides = dims_of(u, a[3], "stride")?;
    if shape.len() != strides.len() {
        return Err(format!(
            "size has {} dims but stride has {}",
            shape.len(),
            strides.len()
        ));
    }
    Ok(TensorArgs {
        storage,
        storage_dtype,
        offset,
        shape,
        strides,
    })
}

fn conj_neg(u: &Unpickler, meta: Option<&Id>) -> TensorKind {
    if let Some(&m) = meta {
        if let Value::Dict { items, .. } = u.get(m) {
            let mut conj = false;
            let mut neg = false;
            for &(k, v) in items {
                match str_of(u, k).as_deref() {
                    Some("conj") => conj = bool_of(u, v),
                    Some("neg") => neg = bool_of(u, v),
                    _ => {}
                }
            }
            if conj || neg {
                return TensorKind::ConjNeg { conj, neg };
            }
        }
    }
    TensorKind::Dense
}

fn make_tensor(ta: TensorArgs, dtype: DType, requires_grad: bool, kind: TensorKind) -> Value {
    Value::Tensor(Box::new(RawTensor {
        storage: Some(ta.storage),
        dtype,
        offset: ta.offset,
        shape: ta.shape,
        strides: ta.strides,
        requires_grad,
        parameter: false,
        kind,
    }))
}

fn as_parameter(u: &Unpickler, t: Id, requires_grad: bool) -> Result<Value, String> {
    match u.get(t) {
        Value::Tensor(raw) => {
            let mut raw = raw.clone();
            raw.parameter = true;
            raw.requires_grad = requires_grad;
            Ok(Value::Tensor(raw))
        }
        other => Err(format!(
            "Parameter wraps a {}, not a tensor",
            other.kind_name()
        )),
    }
}

/// `_rebuild_from_type_v2`, which calls its first argument with its third.
const FROM_TYPE: (&str, &str) = ("torch._tensor", "_rebuild_from_type_v2");

/// A call of something that is not a global: Python calls whatever the value is (an inert
/// object the pickle made earlier is reported as code computed by the pickle; anything else
/// fails to load in Python and is noted). The result is inert.
fn call_of_value(u: &mut Unpickler, func: Id, args: Id) -> Value {
    // the arguments copied once (reporting needs `u` mutably; a rare path)
    let a = args_of(u, args).map(<[Id]>::to_vec);
    let other = u.get(func);
    let k = other.kind_name();
    match other {
        // the result of a call we did not make: Python calls whatever it returned
        Value::Object(o) if !o.module.starts_with('<') || o.module == "<call>" => {
            let what = format!(
                "calls the result of {}.{}(…): a value computed by the pickle is called in turn",
                super::pyrepr::display_name(&o.module),
                super::pyrepr::display_name(&o.name)
            );
            u.safety.add_finding(what);
            if let Some(a) = a.as_ref().ok().filter(|_| u.may_render_call()) {
                let text = super::pyrepr::call_of_value(u, func, a, 240);
                u.safety.add_call(text);
            }
        }
        _ => {
            let note =
                format!("the pickle calls a {k}, which Python cannot call: loading fails there");
            if u.notes.len() < 64 && !u.notes.contains(&note) {
                u.notes.push(note);
            }
        }
    }
    object("<call>", k, a.unwrap_or_else(|_| vec![args]))
}

/// Apply `func` to `args` (REDUCE, NEWOBJ, INST, OBJ).
pub fn call(u: &mut Unpickler, func: Id, args: Id) -> Result<Value, String> {
    let Value::Global { module, name } = u.get(func) else {
        return Ok(call_of_value(u, func, args));
    };
    let from_type = (module.as_str(), name.as_str()) == FROM_TYPE;
    let allowed = super::safety::is_allowed(module, name);
    if !allowed {
        // what loading would run goes into the report (names and arguments copied: recording
        // needs `u` mutably; allowed calls, every tensor's among them, copy nothing)
        let (module, name) = (module.clone(), name.clone());
        let a = args_of(u, args)?.to_vec();
        u.record_call(&module, &name, &a);
    }
    if from_type {
        // `_rebuild_from_type_v2(func, type, args, state)` calls `func(*args)`
        let a = args_of(u, args)?;
        need(a, 3, FROM_TYPE)?;
        let (f, x) = (a[0], a[2]);
        return call(u, f, x);
    }
    let u: &Unpickler = u;
    let a = args_of(u, args)?;
    let Value::Global { module, name } = u.get(func) else {
        return Err("internal: the called global changed".into());
    };
    let (module, name) = (module.as_str(), name.as_str());
    let f = (module, name);
    let v = match f {
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            need(a, 4, f)?;
            let ta = tensor_args(u, a)?;
            let dtype = ta
                .storage_dtype
                .ok_or("_rebuild_tensor_v2 on an UntypedStorage (no dtype)")?;
            let rg = a.get(4).is_some_and(|&i| bool_of(u, i));
            let kind = conj_neg(u, a.get(6));
            make_tensor(ta, dtype, rg, kind)
        }
        ("torch._utils", "_rebuild_tensor_v3") => {
            need(a, 7, f)?;
            let ta = tensor_args(u, a)?;
            let dtype = dtype_of(u, a[6])?;
            let rg = bool_of(u, a[4]);
            let kind = conj_neg(u, a.get(7));
            make_tensor(ta, dtype, rg, kind)
        }
        ("torch._utils", "_rebuild_qtensor") => {
            need(a, 5, f)?;
            let ta = tensor_args(u, a)?;
            let dtype = ta
                .storage_dtype
                .ok_or("_rebuild_qtensor on an UntypedStorage")?;
            let (scheme, scale, zero_point, per_channel) = match u.get(a[4]) {
                Value::Tuple(q) if !q.is_empty() => {
                    let scheme = match u.get(q[0]) {
                        Value::Global { name, .. } => name.clone(),
                        _ => "unknown".into(),
                    };
                    let scale = q.get(1).and_then(|&i| match u.get(i) {
                        Value::Float(f) => Some(*f),
                        _ => None,
                    });
                    let zp = q.get(2).and_then(|&i| int_of(u, i, "zero point").ok());
                    let per_channel = match (
                        q.get(1).map(|&i| u.get(i)),
                        q.get(2).map(|&i| u.get(i)),
                        q.get(3),
                    ) {
                        (Some(Value::Tensor(s)), Some(Value::Tensor(z)), Some(&ax)) => {
                            Some(Box::new(crate::format::checkpoint::PerChannel {
                                scales: s.info(vec![]),
                                zero_points: z.info(vec![]),
                                axis: int_of(u, ax, "quantization axis")?,
                            }))
                        }
                        _ => None,
                    };
                    (scheme, scale, zp, per_channel)
                }
                _ => ("unknown".into(), None, None, None),
            };
            let rg = a.get(5).is_some_and(|&i| bool_of(u, i));
            make_tensor(
                ta,
                dtype,
                rg,
                TensorKind::Quantized {
                    scheme,
                    scale,
                    zero_point,
                    per_channel,
                },
            )
        }
        ("torch._utils", "_rebuild_parameter")
        | ("torch._utils", "_rebuild_parameter_with_state") => {
            need(a, 2, f)?;
            let rg = bool_of(u, a[1]);
            as_parameter(u, a[0], rg)?
        }
        ("torch.nn.parameter", "Parameter") => {
            need(a, 1, f)?;
            let rg = a.get(1).is_none_or(|&i| bool_of(u, i));
            as_parameter(u, a[0], rg)?
        }
        ("torch._utils", "_rebuild_meta_tensor_no_storage") => {
            need(a, 3, f)?;
            let dtype = dtype_of(u, a[0])?;
            let shape = checked_shape(dims_of(u, a[1], "size")?)?;
            let strides = dims_of(u, a[2], "stride")?;
            let rg = a.get(3).is_some_and(|&i| bool_of(u, i));
            meta_tensor(dtype, shape, strides, rg)
        }
        ("torch._utils", "_rebuild_wrapper_subclass") => {
            need(a, 4, f)?;
            let dtype = dtype_of(u, a[1])?;
            let shape = checked_shape(dims_of(u, a[2], "size")?)?;
            let strides = dims_of(u, a[3], "stride")?;
            meta_tensor(dtype, shape, strides, false)
        }
        ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor") => {
            need(a, 1, f)?;
            match u.get(a[0]) {
                Value::Tensor(_) => u.get(a[0]).clone(),
                _ => object(module, name, a.to_vec()),
            }
        }
        ("collections", "OrderedDict") | ("collections", "Counter") | ("builtins", "dict") => {
            let kind = match name {
                "OrderedDict" => DictKind::OrderedDict,
                "Counter" => DictKind::Counter,
                _ => DictKind::Dict,
            };
            let mut items = vec![];
            if let Some(&src) = a.first() {
                match u.get(src).clone() {
                    Value::Dict { items: it, .. } => items = it,
                    Value::List(pairs) | Value::Tuple(pairs) => {
                        for p in pairs {
                            if let Value::Tuple(kv) | Value::List(kv) = u.get(p) {
                                if kv.len() == 2 {
                                    items.push((kv[0], kv[1]));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            Value::Dict {
                kind,
                items,
                attrs: vec![],
            }
        }
        ("builtins", "set") | ("builtins", "frozenset") => {
            let items = match a.first().map(|&i| u.get(i).clone()) {
                Some(Value::List(v)) | Some(Value::Tuple(v)) => v,
                Some(Value::Set { items, .. }) => items,
                _ => Items::new(),
            };
            Value::Set {
                items,
                frozen: name == "frozenset",
            }
        }
        ("builtins", "complex") => {
            let num = |i: Option<&Id>| match i.map(|&i| u.get(i)) {
                Some(Value::Float(f)) => *f,
                Some(Value::Int(v)) => *v as f64,
                _ => 0.0,
            };
            Value::Complex(num(a.first()), num(a.get(1)))
        }
        ("builtins", "bytearray") | ("builtins", "bytes") => {
            match a.first().map(|&i| u.get(i).clone()) {
                Some(Value::Bytes(b)) => Value::Bytes(b),
                None => Value::Bytes(vec![]),
                _ => object(module, name, a.to_vec()),
            }
        }
        ("_codecs", "encode") => {
            need(a, 1, f)?;
            let text = match u.get(a[0]) {
                Value::Str(s) => s.clone(),
                _ => return Ok(object(module, name, a.to_vec())),
            };
            let enc = a
                .get(1)
                .and_then(|&i| str_of(u, i))
                .unwrap_or_else(|| "utf-8".into())
                .to_ascii_lowercase();
            let bytes = match enc.as_str() {
                "latin1" | "latin-1" | "iso-8859-1" => {
                    let mut out = Vec::with_capacity(text.len());
                    for c in text.chars() {
                        let c = c as u32;
                        if c > 255 {
                            return Err("_codecs.encode: a character outside latin-1".into());
                        }
                        out.push(c as u8);
                    }
                    out
                }
                _ => text.into_bytes(),
            };
            Value::Bytes(bytes)
        }
        ("torch", "Size") => {
            let dims = match a.first() {
                Some(&i) => dims_of(u, i, "torch.Size")?
                    .into_iter()
                    .map(|d| d as i64)
                    .collect(),
                None => vec![],
            };
            Value::Size(dims)
        }
        ("torch", "device") => {
            let ty = a.first().and_then(|&i| str_of(u, i)).unwrap_or_default();
            match a.get(1).map(|&i| u.get(i)) {
                Some(Value::Int(ix)) => Value::Device(format!("{ty}:{ix}")),
                _ => Value::Device(ty),
            }
        }
        ("torch.serialization", "_get_layout") => {
            let l = a.first().and_then(|&i| str_of(u, i)).unwrap_or_default();
            let l = l.strip_prefix("torch.").unwrap_or(&l).to_string();
            Value::Global {
                module: "torch".into(),
                name: l,
            }
        }
        _ => object(module, name, a.to_vec()),
    };
    Ok(v)
}

/// Parse the protocol-0 PERSID text `('storage', <class 'torch.FloatStorage'>, '0', 'cpu', 6)`.
fn parse_pid_repr(text: &str) -> Option<StoragePid> {
    let body = text
        .trim()
        .strip_prefix("('storage', <class '")?
        .strip_suffix(')')?;
    let (class_path, rest) = body.split_once("'>, ")?;
    let class = class_path.rsplit('.').next()?.to_string();
    let parts: Vec<&str> = rest.split(", ").collect();
    if parts.len() < 3 {
        return None;
    }
    let unq = |s: &str| s.trim().trim_matches('\'').to_string();
    let dtype = if class == "UntypedStorage" {
        None
    } else {
        Some(DType::from_storage_class(&class)?)
    };
    Some(StoragePid {
        key: unq(parts[0]),
        dtype,
        class,
        numel: parts[2].trim().parse().ok()?,
        location: unq(parts[1]),
        view: None,
    })
}

/// A tensor without data (the `meta` device, or a subclass whose data is not in the file).
fn meta_tensor(dtype: DType, shape: Vec<u64>, strides: Vec<u64>, requires_grad: bool) -> Value {
    Value::Tensor(Box::new(RawTensor {
        storage: None,
        dtype,
        offset: 0,
        shape,
        strides,
        requires_grad,
        parameter: false,
        kind: TensorKind::Meta,
    }))
}
