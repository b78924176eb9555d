//! Opcode-by-opcode tests of the pickle VM, on hand-assembled pickles whose meaning is fixed by
//! the pickle format itself (CPython's `pickletools` documents each opcode).

use super::tree;
use super::{Limits, StoragePid, StorageResolver, Unpickler};
use crate::format::checkpoint::{Key, Node, SafetyReport, TensorInfo, Tier};
use crate::format::dtype::DType;

#[derive(Default)]
struct Recorder {
    pids: Vec<StoragePid>,
}

impl StorageResolver for Recorder {
    fn storage(&mut self, pid: &StoragePid) -> Result<usize, String> {
        if let Some(i) = self.pids.iter().position(|p| p.key == pid.key) {
            return Ok(i);
        }
        self.pids.push(pid.clone());
        Ok(self.pids.len() - 1)
    }
}

#[derive(Debug)]
struct Run {
    node: Node,
    tensors: Vec<TensorInfo>,
    safety: SafetyReport,
    pids: Vec<StoragePid>,
    end: usize,
}

fn run_with(bytes: &[u8], limits: Limits) -> Result<Run, super::PickleError> {
    let mut rec = Recorder::default();
    let mut u = Unpickler::new(&mut rec, limits);
    let (root, end) = u.load(bytes, 0)?;
    let mut tensors = vec![];
    let node = tree::build_with_budget(&u, root, &[], &mut tensors, 100_000).map_err(|m| {
        super::PickleError {
            pos: 0,
            msg: m,
            truncated: false,
        }
    })?;
    let safety = std::mem::take(&mut u.safety);
    drop(u);
    Ok(Run {
        node,
        tensors,
        safety,
        pids: rec.pids,
        end,
    })
}

fn run(bytes: &[u8]) -> Run {
    run_with(bytes, Limits::default())
        .unwrap_or_else(|e| panic!("pickle failed at byte {}: {}", e.pos, e.msg))
}

fn err(bytes: &[u8]) -> super::PickleError {
    match run_with(bytes, Limits::default()) {
        Ok(r) => panic!("expected an error, got {:?}", r.node),
        Err(e) => e,
    }
}

/// PROTO 2 + body + STOP
fn p2(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 2];
    v.extend_from_slice(body);
    v.push(b'.');
    v
}

fn binunicode(s: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend_from_slice(&(s.len() as u32).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

fn global(m: &str, n: &str) -> Vec<u8> {
    format!("c{m}\n{n}\n").into_bytes()
}

fn int(v: i64) -> Node {
    Node::Int { value: v }
}

#[test]
fn doc_test_vector_tensor() {
    // docs/formats.md §3: torch.tensor([1.0, 2.0])
    let hex = "80 02 63 74 6f 72 63 68 2e 5f 75 74 69 6c 73 0a 5f 72 65 62 75 69 6c 64 5f 74 65 6e 73 6f 72 5f 76 32 0a 71 00 28 28 58 07 00 00 00 73 74 6f 72 61 67 65 71 01 63 74 6f 72 63 68 0a 46 6c 6f 61 74 53 74 6f 72 61 67 65 0a 71 02 58 01 00 00 00 30 71 03 58 03 00 00 00 63 70 75 71 04 4b 02 74 71 05 51 4b 00 4b 02 85 71 06 4b 01 85 71 07 89 63 63 6f 6c 6c 65 63 74 69 6f 6e 73 0a 4f 72 64 65 72 65 64 44 69 63 74 0a 71 08 29 52 71 09 74 71 0a 52 71 0b 2e";
    let bytes: Vec<u8> = hex
        .split(' ')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    assert_eq!(bytes.len(), 150);
    let r = run(&bytes);
    assert_eq!(r.end, 150);
    assert_eq!(r.node, Node::Tensor { index: 0 });
    let t = &r.tensors[0];
    assert_eq!(
        (
            t.dtype,
            t.shape.clone(),
            t.strides.clone(),
            t.storage_offset
        ),
        (DType::F32, vec![2], vec![1], 0)
    );
    assert_eq!(r.pids.len(), 1);
    assert_eq!(
        (
            r.pids[0].key.as_str(),
            r.pids[0].numel,
            r.pids[0].location.as_str()
        ),
        ("0", 2, "cpu")
    );
    assert_eq!(r.safety.verdict(), "safe");
    let names: Vec<_> = r
        .safety
        .globals
        .iter()
        .map(|g| format!("{}.{}", g.module, g.name))
        .collect();
    assert_eq!(
        names,
        [
            "torch._utils._rebuild_tensor_v2",
            "torch.FloatStorage",
            "collections.OrderedDict"
        ]
    );
}

#[test]
fn integer_opcodes() {
    assert_eq!(run(&p2(&[b'K', 200])).node, int(200));
    assert_eq!(run(&p2(&[b'M', 0xff, 0xff])).node, int(65535)); // BININT2 is unsigned
    assert_eq!(run(&p2(&[b'J', 0xff, 0xff, 0xff, 0xff])).node, int(-1));
    // LONG1 2**40
    assert_eq!(run(&p2(&[0x8a, 6, 0, 0, 0, 0, 0, 1])).node, int(1 << 40));
    // LONG1 is sign-extended two's complement: 0xff = -1, 0x80 0xff = -128
    assert_eq!(run(&p2(&[0x8a, 1, 0xff])).node, int(-1));
    assert_eq!(run(&p2(&[0x8a, 2, 0x80, 0xff])).node, int(-128));
    assert_eq!(run(&p2(&[0x8a, 0])).node, int(0));
    // LONG1 of 10 bytes: the legacy magic number, beyond i64
    let magic = [
        0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
    ];
    assert_eq!(
        run(&p2(&magic)).node,
        Node::BigInt {
            value: "119547037146038801333356".into()
        }
    );
    // LONG4
    assert_eq!(run(&p2(&[0x8b, 2, 0, 0, 0, 0x00, 0x01])).node, int(256));
    // text forms (protocol 0)
    assert_eq!(run(b"I42\n.").node, int(42));
    assert_eq!(run(b"I01\n.").node, Node::Bool { value: true });
    assert_eq!(run(b"I00\n.").node, Node::Bool { value: false });
    assert_eq!(
        run(b"L-12345678901234567890123L\n.").node,
        Node::BigInt {
            value: "-12345678901234567890123".into()
        }
    );
    assert_eq!(run(b"L7L\n.").node, int(7));
    assert_eq!(run(&p2(&[0x88])).node, Node::Bool { value: true });
    assert_eq!(run(&p2(&[0x89])).node, Node::Bool { value: false });
    assert_eq!(run(&p2(b"N")).node, Node::None);
}

#[test]
fn float_opcodes() {
    // BINFLOAT is big-endian
    assert_eq!(
        run(&p2(&[b'G', 0x3f, 0xe0, 0, 0, 0, 0, 0, 0])).node,
        Node::Float { value: 0.5 }
    );
    assert_eq!(run(b"F-2.25\n.").node, Node::Float { value: -2.25 });
    assert_eq!(
        run(b"Finf\n.").node,
        Node::Float {
            value: f64::INFINITY
        }
    );
}

#[test]
fn string_and_bytes_opcodes() {
    assert_eq!(
        run(&p2(&binunicode("héllo"))).node,
        Node::Str {
            value: "héllo".into()
        }
    );
    assert_eq!(
        run(&p2(&[b'U', 2, b'h', b'i'])).node,
        Node::Str { value: "hi".into() }
    );
    assert_eq!(
        run(&p2(&[b'T', 2, 0, 0, 0, b'h', b'i'])).node,
        Node::Str { value: "hi".into() }
    );
    assert_eq!(
        run(&p2(&[0x8c, 2, b'o', b'k'])).node,
        Node::Str { value: "ok".into() }
    );
    assert_eq!(
        run(&p2(&[0x8d, 1, 0, 0, 0, 0, 0, 0, 0, b'z'])).node,
        Node::Str { value: "z".into() }
    );
    assert_eq!(
        run(b"S'a\\nb\\x41'\n.").node,
        Node::Str {
            value: "a\nbA".into()
        }
    );
    assert_eq!(
        run(b"Vcaf\\u00e9\n.").node,
        Node::Str {
            value: "café".into()
        }
    );
    let bytes = |n: &Node| match n {
        Node::Bytes { data } => (data.len() as u64, data.clone()),
        other => panic!("not bytes: {other:?}"),
    };
    assert_eq!(
        bytes(&run(&p2(&[b'B', 3, 0, 0, 0, 1, 2, 3])).node),
        (3, vec![1, 2, 3])
    );
    assert_eq!(bytes(&run(&p2(&[b'C', 1, 9])).node), (1, vec![9]));
    assert_eq!(
        bytes(&run(&p2(&[0x8e, 1, 0, 0, 0, 0, 0, 0, 0, 7])).node),
        (1, vec![7])
    );
    // protocol 2 bytes: _codecs.encode('\xff\x00', 'latin1')
    let mut b = global("_codecs", "encode");
    b.extend(binunicode("\u{ff}\u{0}"));
    b.extend(binunicode("latin1"));
    b.extend([0x86, b'R']);
    assert_eq!(bytes(&run(&p2(&b)).node), (2, vec![0xff, 0]));
    // empty bytes: __builtin__.bytes()
    let mut e = global("__builtin__", "bytes");
    e.extend([b')', b'R']);
    let r = run(&p2(&e));
    assert_eq!(bytes(&r.node), (0, vec![]));
    assert_eq!(r.safety.globals[0].module, "builtins"); // Python-2 spelling mapped
}

#[test]
fn container_opcodes() {
    // [1, 2, 3] via EMPTY_LIST MARK ... APPENDS, then APPEND 4
    let r = run(&p2(&[
        b']', b'(', b'K', 1, b'K', 2, b'K', 3, b'e', b'K', 4, b'a',
    ]));
    assert_eq!(
        r.node,
        Node::List {
            items: vec![int(1), int(2), int(3), int(4)]
        }
    );
    // LIST (protocol 0): MARK items 'l'
    assert_eq!(
        run(b"(I1\nI2\nl.").node,
        Node::List {
            items: vec![int(1), int(2)]
        }
    );
    // tuples
    assert_eq!(run(&p2(b")")).node, Node::Tuple { items: vec![] });
    assert_eq!(
        run(&p2(&[b'K', 1, 0x85])).node,
        Node::Tuple {
            items: vec![int(1)]
        }
    );
    assert_eq!(
        run(&p2(&[b'K', 1, b'K', 2, 0x86])).node,
        Node::Tuple {
            items: vec![int(1), int(2)]
        }
    );
    assert_eq!(
        run(&p2(&[b'K', 1, b'K', 2, b'K', 3, 0x87])).node,
        Node::Tuple {
            items: vec![int(1), int(2), int(3)]
        }
    );
    assert_eq!(
        run(&p2(&[b'(', b'K', 1, b'K', 2, b'K', 3, b'K', 4, b't']))
            .node
            .clone(),
        Node::Tuple {
            items: vec![int(1), int(2), int(3), int(4)]
        }
    );
    // dicts: EMPTY_DICT MARK k v k v SETITEMS; SETITEM; DICT (protocol 0); order kept
    let mut d = vec![b'}', b'('];
    d.extend(binunicode("b"));
    d.extend([b'K', 2]);
    d.extend(binunicode("a"));
    d.extend([b'K', 1, b'u']);
    d.extend(binunicode("c"));
    d.extend([b'K', 3, b's']);
    match &run(&p2(&d)).node {
        Node::Dict { items, .. } => {
            let keys: Vec<_> = items.iter().map(|(k, _)| k.segment()).collect();
            assert_eq!(keys, ["b", "a", "c"]);
        }
        other => panic!("{other:?}"),
    }
    match &run(b"(S'k'\nI5\nd.").node {
        Node::Dict { items, .. } => assert_eq!(*items, vec![(Key::Str("k".into()), int(5))]),
        other => panic!("{other:?}"),
    }
    // int keys (optimizer state)
    match &run(&p2(&[b'}', b'K', 7, b'K', 8, b's'])).node {
        Node::Dict { items, .. } => assert_eq!(*items, vec![(Key::Int(7), int(8))]),
        other => panic!("{other:?}"),
    }
    // sets: EMPTY_SET MARK items ADDITEMS; FROZENSET; builtins.set([..])
    assert_eq!(
        run(&[0x80, 4, 0x8f, b'(', b'K', 1, 0x90, b'.']).node,
        Node::Set {
            items: vec![int(1)],
            frozen: false
        }
    );
    assert_eq!(
        run(&[0x80, 4, b'(', b'K', 1, 0x91, b'.']).node,
        Node::Set {
            items: vec![int(1)],
            frozen: true
        }
    );
    let mut s = global("__builtin__", "set");
    s.extend([b']', b'K', 5, b'a', 0x85, b'R']);
    assert_eq!(
        run(&p2(&s)).node,
        Node::Set {
            items: vec![int(5)],
            frozen: false
        }
    );
}

#[test]
fn memo_and_stack_opcodes() {
    // BINPUT/BINGET, LONG_BINPUT/LONG_BINGET, PUT/GET, MEMOIZE
    assert_eq!(run(&p2(&[b'K', 9, b'q', 3, b'0', b'h', 3])).node, int(9));
    assert_eq!(
        run(&p2(&[b'K', 9, b'r', 0, 1, 0, 0, b'0', b'j', 0, 1, 0, 0])).node,
        int(9)
    );
    assert_eq!(run(b"I9\np7\n0g7\n.").node, int(9));
    assert_eq!(
        run(&[0x80, 4, b'K', 9, 0x94, b'0', b'h', 0, b'.']).node,
        int(9)
    );
    // DUP + TUPLE2
    assert_eq!(
        run(&p2(&[b'K', 1, b'2', 0x86])).node,
        Node::Tuple {
            items: vec![int(1), int(1)]
        }
    );
    // POP_MARK discards back to the mark
    assert_eq!(
        run(&p2(&[b'K', 1, b'(', b'K', 2, b'K', 3, b'1'])).node,
        int(1)
    );
    // FRAME is skipped
    assert_eq!(
        run(&[0x80, 4, 0x95, 2, 0, 0, 0, 0, 0, 0, 0, b'K', 1, b'.']).node,
        int(1)
    );
    // a list memoized before its items are appended sees them (shared reference)
    let r = run(&p2(&[b']', b'q', 0, b'K', 1, b'a', b'0', b'h', 0]));
    assert_eq!(
        r.node,
        Node::List {
            items: vec![int(1)]
        }
    );
}

/// `torch._utils.<func>((` then the persistent id's `'storage', <module>.<class>, key, 'cpu'`
/// (the numel and the rest are the caller's).
fn rebuild_head(func: &str, (module, class): (&str, &str), key: &str) -> Vec<u8> {
    let mut b = global("torch._utils", func);
    b.push(b'(');
    b.push(b'(');
    b.extend(binunicode("storage"));
    b.extend(global(module, class));
    b.extend(binunicode(key));
    b.extend(binunicode("cpu"));
    b
}

fn rebuild(key: &str, numel: u8, memo_base: u8) -> Vec<u8> {
    let _ = memo_base;
    let mut b = rebuild_head("_rebuild_tensor_v2", ("torch", "FloatStorage"), key);
    b.extend([
        b'K', numel, b't', b'Q', b'K', 0, b'K', numel, 0x85, b'K', 1, 0x85, 0x89,
    ]);
    b.extend(global("collections", "OrderedDict"));
    b.extend([b')', b'R', b't', b'R']);
    b
}

#[test]
fn shared_tensor_object_is_listed_under_both_paths() {
    // {'a': t, 'b': t} where 'b' is a BINGET of 'a''s tensor
    let mut b = vec![b'}', b'('];
    b.extend(binunicode("a"));
    b.extend(rebuild("0", 2, 0));
    b.extend([b'q', 200]);
    b.extend(binunicode("b"));
    b.extend([b'h', 200, b'u']);
    let r = run(&p2(&b));
    assert_eq!(r.tensors.len(), 2);
    assert_eq!(r.tensors[0].path, ["a"]);
    assert_eq!(r.tensors[1].path, ["b"]);
    assert_eq!(r.tensors[0].storage, r.tensors[1].storage);
    match r.node {
        Node::Dict { state_dict, .. } => assert!(state_dict),
        other => panic!("{other:?}"),
    }
}

#[test]
fn build_on_ordered_dict_sets_metadata_attribute_not_items() {
    let mut b = global("collections", "OrderedDict");
    b.extend([b')', b'R', b'q', 1]);
    b.extend(binunicode("w"));
    b.extend(rebuild("0", 1, 0));
    b.push(b's');
    b.push(b'}');
    b.extend(binunicode("_metadata"));
    b.extend(global("collections", "OrderedDict"));
    b.extend([b')', b'R', b's', b'b']);
    let r = run(&p2(&b));
    match &r.node {
        Node::Dict { items, attrs, .. } => {
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].0, Key::Str("w".into()));
            assert_eq!(attrs.len(), 1);
            assert_eq!(attrs[0].0, Key::Str("_metadata".into()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.tensors.len(), 1);
}

#[test]
fn unknown_and_dangerous_globals_are_inert_and_reported() {
    // os.system('echo pwned') via GLOBAL + REDUCE: an inert object, tier dangerous
    let mut b = global("os", "system");
    b.extend(binunicode("echo pwned"));
    b.extend([0x85, b'R']);
    let r = run(&p2(&b));
    match &r.node {
        Node::Object {
            module, name, args, ..
        } => {
            assert_eq!((module.as_str(), name.as_str()), ("os", "system"));
            assert_eq!(
                args,
                &vec![Node::Str {
                    value: "echo pwned".into()
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.safety.verdict(), "dangerous");
    assert_eq!(r.safety.globals[0].tier, Tier::Dangerous);
    // argparse.Namespace via NEWOBJ + BUILD: unknown tier, state kept
    let mut n = global("argparse", "Namespace");
    n.extend([b')', 0x81, b'}']);
    n.extend(binunicode("lr"));
    n.extend([b'K', 3, b's', b'b']);
    let r = run(&p2(&n));
    assert_eq!(r.safety.verdict(), "unknown");
    match &r.node {
        Node::Object {
            name,
            state: Some(s),
            ..
        } => {
            assert_eq!(name, "Namespace");
            assert!(matches!(s.as_ref(), Node::Dict { .. }));
        }
        other => panic!("{other:?}"),
    }
    // INST and OBJ (protocol 0/1 object creation)
    let r = run(b"(S'x'\nios\nsystem\n.");
    assert!(matches!(r.node, Node::Object { .. }));
    assert_eq!(r.safety.verdict(), "dangerous");
    let mut o = vec![b'('];
    o.extend(global("subprocess", "Popen"));
    o.extend(binunicode("ls"));
    o.push(b'o');
    assert_eq!(run(&p2(&o)).safety.verdict(), "dangerous");
    // NEWOBJ_EX
    let mut x = global("mymod", "Thing");
    x.extend([b')', b'}', 0x92]);
    assert!(matches!(
        run(&[&[0x80, 4][..], &x, b"."].concat()).node,
        Node::Object { .. }
    ));
}

#[test]
fn stack_global_with_strings_and_with_computed_operands() {
    let mut b = vec![0x80, 4, 0x8c, 8];
    b.extend(b"builtins");
    b.extend([0x8c, 4]);
    b.extend(b"exec");
    b.push(0x93);
    b.extend([0x8c, 1, b'1', 0x85, b'R', b'.']);
    let r = run(&b);
    assert_eq!(r.safety.globals[0].name, "exec");
    assert_eq!(r.safety.verdict(), "dangerous");
    // module from an int: computed operands are dangerous even without a name
    let c = vec![0x80, 4, b'K', 1, 0x8c, 1, b'x', 0x93, b'.'];
    let r = run(&c);
    assert!(r.safety.globals.is_empty());
    assert_eq!(r.safety.findings.len(), 1);
    assert!(r.safety.findings[0].contains("STACK_GLOBAL operands are not strings"));
    assert_eq!(r.safety.verdict(), "dangerous");
}

#[test]
fn hostile_and_broken_input_is_an_error_not_a_panic() {
    // no STOP: truncated
    let e = err(&[0x80, 2, b'K', 1]);
    assert!(e.truncated, "{e:?}");
    // BINUNICODE8 claiming 2**60 bytes: an error, no allocation
    let mut h = vec![0x80, 4, 0x8d];
    h.extend((1u64 << 60).to_le_bytes());
    assert!(err(&h).truncated);
    // stack underflow
    assert!(err(&p2(b"0")).msg.contains("underflow"));
    // unknown opcode
    assert!(err(&[0x80, 2, 0xff, b'.'])
        .msg
        .contains("unknown opcode 0xff"));
    // missing memo entry
    assert!(err(&p2(&[b'h', 5])).msg.contains("memo index 5"));
    // APPEND to a dict, SETITEM on a list
    assert!(err(&p2(&[b'}', b'K', 1, b'a'])).msg.contains("APPEND"));
    assert!(err(&p2(&[b']', b'K', 1, b'K', 2, b's']))
        .msg
        .contains("SETITEM"));
    // value limit (ints past Python's small-int cache: each one a value of its own)
    let many: Vec<u8> = [0x80, 2, b'(']
        .into_iter()
        .chain((1000u16..1100).flat_map(|i| [b'M', i as u8, (i >> 8) as u8]))
        .chain([b'l', b'.'])
        .collect();
    let small = Limits {
        max_values: 50,
        ..Limits::default()
    };
    assert!(run_with(&many, small).unwrap_err().msg.contains("limit"));
    // MARK nesting limit
    let marks: Vec<u8> = [0x80, 2]
        .into_iter()
        .chain(std::iter::repeat_n(b'(', 200))
        .collect();
    let lim = Limits {
        max_marks: 100,
        ..Limits::default()
    };
    assert!(run_with(&marks, lim).unwrap_err().msg.contains("MARK"));
    // error offsets point at the opcode
    let e = err(&[0x80, 2, b'K', 1, 0xfe, b'.']);
    assert_eq!(e.pos, 4);
    // a tensor whose storage is not a storage
    let mut t = global("torch._utils", "_rebuild_tensor_v2");
    t.extend([b'(', b'K', 1, b'K', 0, b')', b')', 0x89, b'N', b't', b'R']);
    assert!(err(&p2(&t)).msg.contains("not a storage"));
}

#[test]
fn cycles_and_exponential_sharing_are_bounded() {
    // a list appended to itself
    let r = run(&p2(&[b']', b'q', 0, b'h', 0, b'a']));
    match &r.node {
        Node::List { items } => assert!(matches!(items[0], Node::Elided { .. })),
        other => panic!("{other:?}"),
    }
    // "billion laughs": each level is a pair of the previous level, 40 levels deep
    let mut b = vec![0x80, 2, b'K', 0, b'q', 0];
    for i in 0..40u8 {
        b.extend([b'h', i, b'h', i, 0x86, b'q', i + 1]);
    }
    b.push(b'.');
    let r = run(&b); // the tree builder stops at its budget (100,000 nodes in tests)
    fn has_elided(n: &Node) -> bool {
        match n {
            Node::Elided { .. } => true,
            Node::Tuple { items } => items.iter().any(has_elided),
            _ => false,
        }
    }
    assert!(has_elided(&r.node));
}

#[test]
fn tensor_rebuild_variants() {
    // _rebuild_tensor_v3 with UntypedStorage (numel in bytes) and a dtype argument
    let mut b = rebuild_head(
        "_rebuild_tensor_v3",
        ("torch.storage", "UntypedStorage"),
        "0",
    );
    b.extend([
        b'K', 6, b't', b'Q', b'K', 0, b'K', 3, 0x85, b'K', 1, 0x85, 0x89,
    ]);
    b.extend(global("collections", "OrderedDict"));
    b.extend([b')', b'R']);
    b.extend(global("torch", "uint16"));
    b.extend([b't', b'R']);
    let r = run(&p2(&b));
    assert_eq!(r.tensors[0].dtype, DType::U16);
    assert_eq!(r.pids[0].dtype, None);
    assert_eq!(r.pids[0].numel, 6);
    // _rebuild_parameter wraps a tensor
    let mut p = global("torch._utils", "_rebuild_parameter");
    p.extend(rebuild("0", 2, 0));
    p.push(0x88);
    p.extend(global("collections", "OrderedDict"));
    p.extend([b')', b'R', 0x87, b'R']);
    let r = run(&p2(&p));
    assert!(r.tensors[0].parameter && r.tensors[0].requires_grad);
    // torch.Size and torch.device values
    let mut s = global("torch", "Size");
    s.extend([b'K', 2, b'K', 3, 0x86, 0x85, b'R']);
    assert_eq!(run(&p2(&s)).node, Node::Size { dims: vec![2, 3] });
    let mut d = global("torch", "device");
    d.extend(binunicode("cuda"));
    d.extend([b'K', 1, 0x86, b'R']);
    assert_eq!(
        run(&p2(&d)).node,
        Node::Device {
            value: "cuda:1".into()
        }
    );
    // dtype as a bare value
    assert_eq!(
        run(&p2(&global("torch", "float16"))).node,
        Node::Dtype {
            name: "float16".into()
        }
    );
    // a negative size is rejected
    let mut n = rebuild_head("_rebuild_tensor_v2", ("torch", "FloatStorage"), "0");
    n.extend([
        b'K', 2, b't', b'Q', b'K', 0, b'J', 0xff, 0xff, 0xff, 0xff, 0x85, b'K', 1, 0x85, 0x89,
        b'N', b't', b'R',
    ]);
    assert!(err(&p2(&n)).msg.contains("negative"));
}

#[test]
fn repeated_dict_keys_keep_first_position_and_last_value() {
    // {'a': 1, 'b': 2, 'a': 3} built with SETITEMS: Python gives {'a': 3, 'b': 2}
    let mut d = vec![b'}', b'('];
    d.extend(binunicode("a"));
    d.extend([b'K', 1]);
    d.extend(binunicode("b"));
    d.extend([b'K', 2]);
    d.extend(binunicode("a"));
    d.extend([b'K', 3, b'u']);
    match &run(&p2(&d)).node {
        Node::Dict { items, .. } => {
            assert_eq!(
                *items,
                vec![
                    (Key::Str("a".into()), int(3)),
                    (Key::Str("b".into()), int(2))
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn arena_slots_stay_small() {
    // every arena slot is as large as the largest variant; the arena of a 1,000-tensor
    // checkpoint holds ~25,000 values, so the rare, large variants are boxed
    let size = std::mem::size_of::<super::value::Value>();
    assert!(size <= 64, "Value is {size} bytes");
}

#[test]
fn none_bools_the_empty_tuple_and_small_ints_take_one_value_each() {
    // [1] * 100 + [None, None, True, False, (), (), -5, -5, 257], as Python shares them: a few
    // values in all (a limit of 20 holds), each item reads as what it is
    let mut p = vec![0x80, 2, b'('];
    p.extend(std::iter::repeat_n([b'K', 1], 100).flatten());
    p.extend([b'N', b'N', 0x88, 0x89, b')', b')']);
    p.extend([b'J', 0xfb, 0xff, 0xff, 0xff, b'J', 0xfb, 0xff, 0xff, 0xff]);
    p.extend([b'M', 1, 1]); // 257: past the shared ints, a value of its own
                            // BUILD on the shared () is ignored and leaves it a leaf for every other holder
    p.extend([b')', b'}', b'b']);
    p.extend([b'l', b'.']);
    let small = Limits {
        max_values: 20,
        ..Limits::default()
    };
    let run = run_with(&p, small).unwrap();
    let Node::List { ref items } = run.node else {
        panic!("not a list: {:?}", run.node)
    };
    assert_eq!(items.len(), 110);
    assert!(items[..100].iter().all(|n| *n == Node::Int { value: 1 }));
    let empty = Node::Tuple { items: vec![] };
    assert_eq!(
        items[100..],
        [
            Node::None,
            Node::None,
            Node::Bool { value: true },
            Node::Bool { value: false },
            empty.clone(),
            empty.clone(),
            Node::Int { value: -5 },
            Node::Int { value: -5 },
            Node::Int { value: 257 },
            empty,
        ]
    );
}

#[test]
fn tuples_lists_and_sets_past_the_inline_items_keep_every_item_in_order() {
    let ints =
        |r: std::ops::Range<i64>| -> Vec<Node> { r.map(|value| Node::Int { value }).collect() };
    let push = |p: &mut Vec<u8>, r: std::ops::Range<u8>| p.extend(r.flat_map(|i| [b'K', i]));
    let mut p = vec![0x80, 2, b'('];
    // (0, …, 19) with MARK … TUPLE: more items than a value holds inline
    p.push(b'(');
    push(&mut p, 0..20);
    p.push(b't');
    // TUPLE1 / TUPLE2 / TUPLE3 keep their order
    p.extend([
        b'K', 1, 0x85, b'K', 1, b'K', 2, 0x86, b'K', 1, b'K', 2, b'K', 3, 0x87,
    ]);
    // [] + APPENDS of 0..9 + APPEND 9: the list grows past the inline items
    p.extend([b']', b'(']);
    push(&mut p, 0..9);
    p.extend([b'e', b'K', 9, b'a']);
    // frozenset of 0..10, and an empty set + ADDITEMS of 0..12
    p.push(b'(');
    push(&mut p, 0..10);
    p.push(0x91);
    p.extend([0x8f, b'(']);
    push(&mut p, 0..12);
    p.push(0x90);
    p.extend([b'l', b'.']);
    let run = run(&p);
    let Node::List { ref items } = run.node else {
        panic!("not a list: {:?}", run.node)
    };
    assert_eq!(
        items[..],
        [
            Node::Tuple { items: ints(0..20) },
            Node::Tuple { items: ints(1..2) },
            Node::Tuple { items: ints(1..3) },
            Node::Tuple { items: ints(1..4) },
            Node::List { items: ints(0..10) },
            Node::Set {
                items: ints(0..10),
                frozen: true
            },
            Node::Set {
                items: ints(0..12),
                frozen: false
            },
        ]
    );
    // inline items do not make an arena slot larger than a dict's (kind and two vectors)
    assert!(std::mem::size_of::<super::value::Value>() <= 56);
}
