//! The value graph a pickle builds: an arena of [`Value`]s addressed by [`Id`].
//!
//! Contract: the arena is append-only; containers hold ids, so an object memoized before its items
//! were added (the pickle rule) sees them — shared references stay shared, as in Python.
//! Nothing here executes anything: calls of unknown globals are [`Value::Object`]s.

use crate::format::dtype::DType;

/// An index into the arena.
pub type Id = u32;

/// The items of a list, tuple or set: up to [`INLINE_ITEMS`] ids in the value itself, more on
/// the heap. A torch state dict's tuples (a storage's persistent id, a size, a stride, the
/// arguments of `_rebuild_tensor_v2`) all fit, so they cost no allocation of their own.
pub type Items = smallvec::SmallVec<[Id; INLINE_ITEMS]>;

/// Ids an [`Items`] holds without a heap allocation (the arena slot does not grow: a dict's
/// two item vectors are larger).
pub const INLINE_ITEMS: usize = 8;

/// How a dict was made.
pub use crate::format::checkpoint::DictKind;

/// A tensor rebuilt from `_rebuild_tensor_*` and friends (metadata only).
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// Index into the reader's storages; `None` for meta tensors.
    pub storage: Option<usize>,
    pub dtype: DType,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
    pub requires_grad: bool,
    pub parameter: bool,
    pub kind: crate::format::checkpoint::TensorKind,
}

impl RawTensor {
    /// The index entry for this tensor at `path`.
    pub fn info(&self, path: Vec<String>) -> crate::format::checkpoint::TensorInfo {
        crate::format::checkpoint::TensorInfo {
            path,
            dtype: self.dtype,
            shape: self.shape.clone(),
            strides: self.strides.clone(),
            storage_offset: self.offset,
            storage: self.storage,
            requires_grad: self.requires_grad,
            parameter: self.parameter,
            kind: self.kind.clone(),
        }
    }
}

/// A pickle value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// Little-endian two's complement bytes of an integer outside i64.
    BigInt(Vec<u8>),
    Float(f64),
    Complex(f64, f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Items),
    Tuple(Items),
    Dict {
        kind: DictKind,
        items: Vec<(Id, Id)>,
        attrs: Vec<(Id, Id)>,
    },
    Set {
        items: Items,
        frozen: bool,
    },
    /// A global referenced but not called (a class, a function, a dtype, a qscheme).
    Global {
        module: String,
        name: String,
    },
    /// The result of calling / instantiating a global we do not execute (boxed: it is the
    /// largest variant and rare, and every arena slot is as large as the largest variant).
    Object(Box<Inert>),
    /// A storage resolved from a persistent id: index into the reader's storages, and the dtype
    /// of a typed storage class (`None` for `UntypedStorage`).
    Storage {
        index: usize,
        dtype: Option<DType>,
    },
    Tensor(Box<RawTensor>),
    Dtype(DType),
    Device(String),
    Size(Vec<i64>),
    /// The MARK sentinel is never stored; this is a placeholder for popped/unknown slots.
    Invalid,
}

impl Value {
    /// A value that holds other values (list, tuple, dict, set, object): where depth and cycles
    /// are counted.
    pub fn is_container(&self) -> bool {
        matches!(
            self,
            Value::List(_)
                | Value::Tuple(_)
                | Value::Dict { .. }
                | Value::Set { .. }
                | Value::Object(_)
        )
    }

    /// A short description for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict { .. } => "dict",
            Value::Set { .. } => "set",
            Value::Global { .. } => "global",
            Value::Object(_) => "object",
            Value::Storage { .. } => "storage",
            Value::Tensor(_) => "tensor",
            Value::Dtype(_) => "dtype",
            Value::Device(_) => "device",
            Value::Size(_) => "torch.Size",
            Value::Invalid => "invalid",
        }
    }
}

/// An instance of a global that was never called: what it was built from, kept inert.
#[derive(Debug, Clone, PartialEq)]
pub struct Inert {
    pub module: String,
    pub name: String,
    pub args: Vec<Id>,
    pub state: Option<Id>,
    pub items: Vec<(Id, Id)>,
    pub list: Vec<Id>,
}

impl Inert {
    /// An inert object of `module.name` built from `args` (no state, items or list yet).
    pub fn value(module: impl Into<String>, name: impl Into<String>, args: Vec<Id>) -> Value {
        Value::Object(Box::new(Inert {
            module: module.into(),
            name: name.into(),
            args,
            state: None,
            items: vec![],
            list: vec![],
        }))
    }
}

/// Largest integer (in bytes) printed in decimal: 1786 bytes is about 4300 digits, CPython's
/// `int` → `str` limit. Decimal conversion is quadratic in the length; larger integers are
/// printed in hexadecimal (linear), as CPython asks for.
pub const MAX_DECIMAL_BYTES: usize = 1786;

/// Decimal text of a little-endian two's complement integer (for big ints); hexadecimal
/// (`0x…`, `-0x…`) past [`MAX_DECIMAL_BYTES`].
pub fn bigint_to_string(le: &[u8]) -> String {
    if le.is_empty() {
        return "0".into();
    }
    if le.len() > MAX_DECIMAL_BYTES {
        return bigint_to_hex(le);
    }
    let (neg, bytes) = sign_and_magnitude(le);
    // magnitude as little-endian u32 limbs
    let mut limbs: Vec<u32> = bytes
        .chunks(4)
        .map(|c| {
            let mut a = [0u8; 4];
            a[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(a)
        })
        .collect();
    let mut digits = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for l in limbs.iter_mut().rev() {
            let cur = (rem << 32) | *l as u64;
            *l = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        digits.push(rem as u32);
    }
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    match digits.pop() {
        None => s.push('0'),
        Some(top) => {
            s.push_str(&top.to_string());
            for d in digits.iter().rev() {
                s.push_str(&format!("{d:09}"));
            }
        }
    }
    s
}

/// The sign and the little-endian magnitude of a non-empty little-endian two's complement
/// integer.
fn sign_and_magnitude(le: &[u8]) -> (bool, Vec<u8>) {
    let neg = le[le.len() - 1] & 0x80 != 0;
    let mut mag = le.to_vec();
    if neg {
        // two's complement negate
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let v = (!*b) as u16 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
    }
    (neg, mag)
}

/// Hexadecimal text of a little-endian two's complement integer (linear time).
fn bigint_to_hex(le: &[u8]) -> String {
    let (neg, mag) = sign_and_magnitude(le);
    let digits: String = mag.iter().rev().map(|b| format!("{b:02x}")).collect();
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    format!("{}0x{digits}", if neg { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_bigints_print_in_hex() {
        let mut v = vec![0u8; MAX_DECIMAL_BYTES + 1];
        v[MAX_DECIMAL_BYTES - 1] = 0x12; // positive: the top byte stays 0
        let s = bigint_to_string(&v);
        assert_eq!(s, format!("0x12{}", "00".repeat(MAX_DECIMAL_BYTES - 1)));
        let neg = vec![0xffu8; 4000]; // -1
        assert_eq!(bigint_to_string(&neg), "-0x1");
    }

    #[test]
    fn bigints_print_in_decimal() {
        // 2**70
        let mut v = vec![0u8; 9];
        v[8] = 0x40;
        assert_eq!(bigint_to_string(&v), "1180591620717411303424");
        // -(2**70)
        let mut n = vec![0u8; 9];
        n[8] = 0xC0;
        assert_eq!(bigint_to_string(&n), "-1180591620717411303424");
        assert_eq!(bigint_to_string(&[0xff]), "-1");
        // legacy magic 0x1950A86A20F9469CFC6C
        let magic = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19];
        assert_eq!(
            bigint_to_string(&magic),
            u128::from_str_radix("1950A86A20F9469CFC6C", 16)
                .unwrap()
                .to_string()
        );
    }
}
