//! A structure-aware pickle input: a program of opcodes with well-formed arguments (drawn by
//! `arbitrary`), serialised to the bytes the VM reads. Strings and globals come mostly from small
//! tables of the names torch checkpoints use (tensor rebuilders, storage classes, OrderedDict,
//! persistent-id tuples) and of names a hostile file uses, so that mutations build tensors,
//! storages, memo references and deep nesting instead of failing at the first opcode. `Raw`
//! keeps every byte value reachable, and `Repeat` reaches depth (a million `TUPLE1`) with a
//! short input.

use arbitrary::Arbitrary;

/// Globals the VM treats specially, plus inert and dangerous ones.
pub const GLOBALS: &[(&str, &str)] = &[
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"),
    ("torch._utils", "_rebuild_wrapper_subclass"),
    ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.nn.parameter", "Parameter"),
    ("torch.serialization", "_get_layout"),
    ("torch", "FloatStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "LongStorage"),
    ("torch", "UntypedStorage"),
    ("torch", "float32"),
    ("torch", "Tensor"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "strided"),
    ("torch", "per_tensor_affine"),
    ("torch", "per_channel_affine"),
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("builtins", "dict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "complex"),
    ("_codecs", "encode"),
    ("argparse", "Namespace"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy", "dtype"),
    ("builtins", "eval"),
    ("builtins", "getattr"),
    ("os", "system"),
    ("posix", "system"),
    ("torch", "os.system"),
    ("__builtin__", "eval"),
];

/// Strings torch pickles are made of.
pub const STRINGS: &[&str] = &[
    "storage",
    "cpu",
    "cuda:0",
    "0",
    "1",
    "2",
    "weight",
    "bias",
    "_metadata",
    "version",
    "state_dict",
    "latin1",
    "utf-8",
    "conj",
    "neg",
    "",
    "a.b.c",
    "__dict__",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum Text {
    Table(u8),
    Own(String),
}

impl Text {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Text::Table(i) => STRINGS[*i as usize % STRINGS.len()].as_bytes().to_vec(),
            Text::Own(s) => s.as_bytes().to_vec(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Global {
    Table(u8),
    Own(String, String),
}

impl Global {
    fn names(&self) -> (String, String) {
        match self {
            Global::Table(i) => {
                let (m, n) = GLOBALS[*i as usize % GLOBALS.len()];
                (m.to_string(), n.to_string())
            }
            Global::Own(m, n) => (m.replace('\n', ""), n.replace('\n', "")),
        }
    }
}

/// One instruction of the program.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Proto(u8),
    Frame(u16),
    Mark,
    Pop,
    PopMark,
    Dup,
    None,
    True,
    False,
    BinInt(i32),
    BinInt1(u8),
    BinInt2(u16),
    Long1(Vec<u8>),
    Long4(Vec<u8>),
    /// `I` / `L` text integers (decimal digits, possibly many).
    IntText(i64),
    LongText(u8, u8),
    BinFloat(f64),
    FloatText(f64),
    /// `F` with a line spelled from float-literal pieces (digits, `_`, `.`, `e`, signs, spaces,
    /// `inf` / `nan`): what Python's `float()` accepts and what it refuses.
    FloatLine(Vec<u8>),
    ShortBinUnicode(Text),
    BinUnicode(Text),
    BinUnicode8(Text),
    Unicode(Text),
    StringText(Text),
    ShortBinString(Text),
    ShortBinBytes(Vec<u8>),
    BinBytes(Vec<u8>),
    ByteArray8(Vec<u8>),
    EmptyDict,
    EmptyList,
    EmptyTuple,
    EmptySet,
    AddItems,
    FrozenSet,
    Tuple,
    Tuple1,
    Tuple2,
    Tuple3,
    List,
    Dict,
    Append,
    Appends,
    SetItem,
    SetItems,
    Global(Global),
    StackGlobal,
    Reduce,
    NewObj,
    NewObjEx,
    Build,
    Inst(Global),
    Obj,
    PersId(Text),
    BinPersId,
    /// A torch storage persistent id: `('storage', class, key, location, numel)` then BINPERSID.
    StoragePid(u8, u8, u32),
    BinPut(u8),
    LongBinPut(u32),
    Put(u16),
    Memoize,
    BinGet(u8),
    LongBinGet(u32),
    Get(u16),
    Ext1(u8),
    NextBuffer,
    ReadonlyBuffer,
    Stop,
    Raw(u8),
    /// The body `n` times (n is capped; the whole program is capped at [`MAX_BYTES`]).
    Repeat(u16, Vec<Op>),
}

/// Serialised programs are cut at this size.
pub const MAX_BYTES: usize = 64 << 10;

/// A pickle program: a protocol header, then the ops, then STOP.
#[derive(Arbitrary, Debug, Clone)]
pub struct Program {
    pub proto: u8,
    pub ops: Vec<Op>,
}

impl Program {
    /// The pickle bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0x80, self.proto % 6];
        emit_all(&self.ops, &mut out, 0);
        out.push(b'.');
        out
    }
}

fn emit_all(ops: &[Op], out: &mut Vec<u8>, depth: usize) {
    for op in ops {
        if out.len() > MAX_BYTES {
            return;
        }
        emit(op, out, depth);
    }
}

fn len_prefixed(out: &mut Vec<u8>, op: u8, b: &[u8], width: usize) {
    out.push(op);
    out.extend_from_slice(&(b.len() as u64).to_le_bytes()[..width]);
    out.extend_from_slice(b);
}

fn emit(op: &Op, out: &mut Vec<u8>, depth: usize) {
    match op {
        Op::Proto(p) => out.extend_from_slice(&[0x80, *p]),
        Op::Frame(n) => {
            out.push(0x95);
            out.extend_from_slice(&(*n as u64).to_le_bytes());
        }
        Op::Mark => out.push(b'('),
        Op::Pop => out.push(b'0'),
        Op::PopMark => out.push(b'1'),
        Op::Dup => out.push(b'2'),
        Op::None => out.push(b'N'),
        Op::True => out.push(0x88),
        Op::False => out.push(0x89),
        Op::BinInt(v) => {
            out.push(b'J');
            out.extend_from_slice(&v.to_le_bytes());
        }
        Op::BinInt1(v) => out.extend_from_slice(&[b'K', *v]),
        Op::BinInt2(v) => {
            out.push(b'M');
            out.extend_from_slice(&v.to_le_bytes());
        }
        Op::Long1(b) => {
            let b = &b[..b.len().min(255)];
            len_prefixed(out, 0x8a, b, 1);
        }
        Op::Long4(b) => len_prefixed(out, 0x8b, b, 4),
        Op::IntText(v) => out.extend_from_slice(format!("I{v}\n").as_bytes()),
        Op::LongText(digit, reps) => {
            out.push(b'L');
            let d = b'0' + digit % 10;
            out.extend(std::iter::repeat_n(d, 1 + *reps as usize * 64));
            out.extend_from_slice(b"L\n");
        }
        Op::BinFloat(f) => {
            out.push(b'G');
            out.extend_from_slice(&f.to_be_bytes());
        }
        Op::FloatText(f) => out.extend_from_slice(format!("F{f}\n").as_bytes()),
        Op::FloatLine(pieces) => {
            const PIECES: [&[u8]; 16] = [
                b"0", b"7", b"9", b"_", b".", b"e", b"E", b"-", b"+", b" ", b"\x0b", b"inf",
                b"nan", b"INFINITY", b"00000000000000000000", b"1234567890123456789",
            ];
            out.push(b'F');
            for &p in pieces.iter().take(4096) {
                out.extend_from_slice(PIECES[p as usize % PIECES.len()]);
            }
            out.push(b'\n');
        }
        Op::ShortBinUnicode(t) => {
            let b = t.bytes();
            len_prefixed(out, 0x8c, &b[..b.len().min(255)], 1)
        }
        Op::BinUnicode(t) => len_prefixed(out, b'X', &t.bytes(), 4),
        Op::BinUnicode8(t) => len_prefixed(out, 0x8d, &t.bytes(), 8),
        Op::Unicode(t) => {
            out.push(b'V');
            out.extend(t.bytes().into_iter().filter(|&c| c != b'\n'));
            out.push(b'\n');
        }
        Op::StringText(t) => {
            out.extend_from_slice(b"S'");
            out.extend(t.bytes().into_iter().filter(|&c| c != b'\n' && c != b'\''));
            out.extend_from_slice(b"'\n");
        }
        Op::ShortBinString(t) => {
            let b = t.bytes();
            len_prefixed(out, b'U', &b[..b.len().min(255)], 1)
        }
        Op::ShortBinBytes(b) => len_prefixed(out, b'C', &b[..b.len().min(255)], 1),
        Op::BinBytes(b) => len_prefixed(out, b'B', b, 4),
        Op::ByteArray8(b) => len_prefixed(out, 0x96, b, 8),
        Op::EmptyDict => out.push(b'}'),
        Op::EmptyList => out.push(b']'),
        Op::EmptyTuple => out.push(b')'),
        Op::EmptySet => out.push(0x8f),
        Op::AddItems => out.push(0x90),
        Op::FrozenSet => out.push(0x91),
        Op::Tuple => out.push(b't'),
        Op::Tuple1 => out.push(0x85),
        Op::Tuple2 => out.push(0x86),
        Op::Tuple3 => out.push(0x87),
        Op::List => out.push(b'l'),
        Op::Dict => out.push(b'd'),
        Op::Append => out.push(b'a'),
        Op::Appends => out.push(b'e'),
        Op::SetItem => out.push(b's'),
        Op::SetItems => out.push(b'u'),
        Op::Global(g) => {
            let (m, n) = g.names();
            out.extend_from_slice(format!("c{m}\n{n}\n").as_bytes());
        }
        Op::StackGlobal => out.push(0x93),
        Op::Reduce => out.push(b'R'),
        Op::NewObj => out.push(0x81),
        Op::NewObjEx => out.push(0x92),
        Op::Build => out.push(b'b'),
        Op::Inst(g) => {
            let (m, n) = g.names();
            out.extend_from_slice(format!("i{m}\n{n}\n").as_bytes());
        }
        Op::Obj => out.push(b'o'),
        Op::PersId(t) => {
            out.push(b'P');
            out.extend(t.bytes().into_iter().filter(|&c| c != b'\n'));
            out.push(b'\n');
        }
        Op::BinPersId => out.push(b'Q'),
        Op::StoragePid(class, key, numel) => {
            const CLASSES: &[&str] = &[
                "FloatStorage",
                "HalfStorage",
                "BFloat16Storage",
                "LongStorage",
                "ByteStorage",
                "UntypedStorage",
                "ComplexFloatStorage",
                "BoolStorage",
            ];
            let class = CLASSES[*class as usize % CLASSES.len()];
            out.push(b'(');
            len_prefixed(out, 0x8c, b"storage", 1);
            out.extend_from_slice(format!("ctorch\n{class}\n").as_bytes());
            len_prefixed(out, 0x8c, (key % 8).to_string().as_bytes(), 1);
            len_prefixed(out, 0x8c, b"cpu", 1);
            out.push(b'J');
            out.extend_from_slice(&numel.to_le_bytes());
            out.extend_from_slice(b"tQ");
        }
        Op::BinPut(i) => out.extend_from_slice(&[b'q', *i]),
        Op::LongBinPut(i) => {
            out.push(b'r');
            out.extend_from_slice(&i.to_le_bytes());
        }
        Op::Put(i) => out.extend_from_slice(format!("p{i}\n").as_bytes()),
        Op::Memoize => out.push(0x94),
        Op::BinGet(i) => out.extend_from_slice(&[b'h', *i]),
        Op::LongBinGet(i) => {
            out.push(b'j');
            out.extend_from_slice(&i.to_le_bytes());
        }
        Op::Get(i) => out.extend_from_slice(format!("g{i}\n").as_bytes()),
        Op::Ext1(c) => out.extend_from_slice(&[0x82, *c]),
        Op::NextBuffer => out.push(0x97),
        Op::ReadonlyBuffer => out.push(0x98),
        Op::Stop => out.push(b'.'),
        Op::Raw(b) => out.push(*b),
        Op::Repeat(n, body) => {
            if depth > 3 {
                return;
            }
            for _ in 0..(*n).min(50_000) {
                let before = out.len();
                if before > MAX_BYTES {
                    return;
                }
                emit_all(body, out, depth + 1);
                if out.len() == before {
                    return; // a body that emits nothing: no point looping
                }
            }
        }
    }
}
