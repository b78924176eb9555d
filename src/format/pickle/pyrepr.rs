//! Python's `repr` for the values a pickle holds: the one rendering of strings, bytes, numbers
//! and calls used by the CLI and the page, so that a value can never pass for code
//! (`os.system('a'); eval('b')` is shown as one string argument, quotes and all).
//!
//! Contract: [`str_repr`] and [`bytes_repr`] follow CPython's `repr` (quote choice, `\\`, the
//! quote, `\t` `\n` `\r`, other non-printable characters as `\xhh` / `\uhhhh` / `\Uhhhhhhhh`;
//! printable means "not a control, format, separator other than the space, private-use or
//! noncharacter code point" — unassigned code points, which CPython also escapes, are shown as
//! they are). [`float_repr`] gives Python's shortest round-trip text (`1e-08`, `0.1`, `1.0`).
//! [`value_repr`] / [`call_text`] render arena values and calls (depth [`MAX_DEPTH`], at most
//! `max` characters, then `…`); [`display_name`] leaves a printable name as it is and quotes
//! anything else. All are O(output) — never more than `max` characters are built.

use super::value::{bigint_to_string, Id, Value};
use super::vm::Unpickler;
use crate::format::checkpoint::Node;
use std::borrow::Cow;
use std::fmt::Write;

/// Containers nested deeper than this are shown as `…`.
pub const MAX_DEPTH: usize = 4;

/// Would Python's `str.isprintable` say `c` is printable (see the module contract)?
pub fn is_printable(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false; // Cc; Zs other than the space, Zl, Zp
    }
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD
        | 0xFDD0..=0xFDEF)
        && (u & 0xFFFE) != 0xFFFE
}

fn quote_for(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

/// `repr(s)` for a Python `str`.
pub fn str_repr(s: &str) -> String {
    let q = quote_for(s.contains('\''), s.contains('"'));
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let u = c as u32;
                let _ = if u < 0x100 {
                    write!(out, "\\x{u:02x}")
                } else if u < 0x10000 {
                    write!(out, "\\u{u:04x}")
                } else {
                    write!(out, "\\U{u:08x}")
                };
            }
        }
    }
    out.push(q);
    out
}

/// `repr(b)` for Python `bytes`.
pub fn bytes_repr(b: &[u8]) -> String {
    let q = quote_for(b.contains(&b'\''), b.contains(&b'"')) as u8;
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(q as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(q as char);
    out
}

/// `repr(v)` for a Python `float`: the shortest text that reads back as `v`, in fixed notation
/// for exponents -4 to 15 and in `1e-08` / `1.5e+16` notation otherwise.
pub fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` is the shortest round-trip: "-1.2345e-8"
    let e = format!("{v:e}");
    let (mant, exp) = e.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    let (sign, mant) = match mant.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let s = if exp < 0 {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else if exp + 1 >= n {
            format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..=exp as usize],
                &digits[exp as usize + 1..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let es = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

/// A name as is when every character is printable, else its `repr` (quoted, escaped).
pub fn display_name(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_printable) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(str_repr(s))
    }
}

/// Cut `s` to at most `max` characters, ending in `…` when cut.
pub fn cut(mut s: String, max: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max.saturating_sub(1)) {
        if s[i..].chars().count() > 1 {
            s.truncate(i);
            s.push('…');
        }
    }
    s
}

struct Out {
    s: String,
    max: usize,
}

impl Out {
    fn full(&self) -> bool {
        self.s.len() > self.max
    }
    fn push(&mut self, t: &str) {
        if !self.full() {
            self.s.push_str(t);
        }
    }
    /// Characters (or bytes) of a string value worth rendering: one more than still fits, so a
    /// longer value overflows and is cut with `…` — rendering is O(max), not O(value).
    fn room(&self) -> usize {
        self.max.saturating_sub(self.s.len()) + 1
    }
}

/// The first `n` characters of `s`.
fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `repr` of an arena value (depth [`MAX_DEPTH`], about `max` characters).
pub fn value_repr(u: &Unpickler, id: Id, max: usize) -> String {
    let mut o = Out {
        s: String::new(),
        max,
    };
    value_into(u, id, 0, &mut o);
    cut(o.s, max)
}

/// `module.name(arg, …)` with every argument rendered by [`value_repr`] rules.
pub fn call_text(u: &Unpickler, module: &str, name: &str, args: &[Id], max: usize) -> String {
    let head = format!("{}.{}", display_name(module), display_name(name));
    call_of(u, head, args, max)
}

/// `callee(arg, …)` where `callee` is a value the pickle computed (the result of a call).
pub fn call_of_value(u: &Unpickler, callee: Id, args: &[Id], max: usize) -> String {
    call_of(u, value_repr(u, callee, max), args, max)
}

fn call_of(u: &Unpickler, head: String, args: &[Id], max: usize) -> String {
    let mut o = Out { s: head, max };
    o.push("(");
    for (i, &a) in args.iter().enumerate() {
        if i > 0 {
            o.push(", ");
        }
        value_into(u, a, 1, &mut o);
    }
    o.push(")");
    cut(o.s, max)
}

/// Items between `open` and `close`; `tuple` adds the comma of a 1-tuple.
fn seq_into(
    u: &Unpickler,
    items: &[Id],
    (open, close, tuple): (&str, &str, bool),
    depth: usize,
    o: &mut Out,
) {
    o.push(open);
    for (i, &c) in items.iter().enumerate() {
        if o.full() {
            break;
        }
        if i > 0 {
            o.push(", ");
        }
        value_into(u, c, depth + 1, o);
    }
    if items.len() == 1 && tuple {
        o.push(",");
    }
    o.push(close);
}

fn value_into(u: &Unpickler, id: Id, depth: usize, o: &mut Out) {
    if o.full() {
        return;
    }
    let v = u.get(id);
    let nested = v.is_container();
    if nested && depth >= MAX_DEPTH {
        o.push("…");
        return;
    }
    match v {
        Value::None => o.push("None"),
        Value::Bool(b) => o.push(if *b { "True" } else { "False" }),
        Value::Int(i) => o.push(&i.to_string()),
        Value::BigInt(b) => o.push(&bigint_to_string(b)),
        Value::Float(f) => o.push(&float_repr(*f)),
        Value::Complex(re, im) => o.push(&format!(
            "complex({}, {})",
            float_repr(*re),
            float_repr(*im)
        )),
        Value::Str(s) => o.push(&str_repr(prefix(s, o.room()))),
        Value::Bytes(b) => o.push(&bytes_repr(&b[..b.len().min(o.room())])),
        Value::List(items) => seq_into(u, items, ("[", "]", false), depth, o),
        Value::Tuple(items) => seq_into(u, items, ("(", ")", true), depth, o),
        Value::Set { items, frozen } => {
            if items.is_empty() {
                o.push(if *frozen { "frozenset()" } else { "set()" });
            } else {
                let open = if *frozen { "frozenset({" } else { "{" };
                seq_into(
                    u,
                    items,
                    (open, if *frozen { "})" } else { "}" }, false),
                    depth,
                    o,
                );
            }
        }
        Value::Dict { items, .. } => {
            o.push("{");
            for (i, &(k, x)) in items.iter().enumerate() {
                if o.full() {
                    break;
                }
                if i > 0 {
                    o.push(", ");
                }
                value_into(u, k, depth + 1, o);
                o.push(": ");
                value_into(u, x, depth + 1, o);
            }
            o.push("}");
        }
        Value::Global { module, name } => {
            o.push(&format!("{}.{}", display_name(module), display_name(name)))
        }
        Value::Object(inert) => {
            o.push(&format!(
                "{}.{}",
                display_name(&inert.module),
                display_name(&inert.name)
            ));
            seq_into(u, &inert.args, ("(", ")", false), depth, o);
        }
        Value::Tensor(t) => o.push(&format!("tensor(dtype={}, shape={:?})", t.dtype, t.shape)),
        Value::Dtype(d) => o.push(&format!("torch.{}", d.name())),
        Value::Device(d) => o.push(&format!("device({})", str_repr(d))),
        Value::Size(d) => o.push(&format!("torch.Size({d:?})")),
        other => o.push(&format!("<{}>", other.kind_name())),
    }
}

/// `repr` of a scalar tree node (what the CLI and the page show for a leaf value); `None` for
/// containers, tensors and objects.
pub fn scalar_repr(n: &Node) -> Option<String> {
    Some(match n {
        Node::None => "None".into(),
        Node::Bool { value } => (if *value { "True" } else { "False" }).into(),
        Node::Int { value } => value.to_string(),
        Node::BigInt { value } => value.clone(),
        Node::Float { value } => float_repr(*value),
        Node::Complex { re, im } => format!("complex({}, {})", float_repr(*re), float_repr(*im)),
        Node::Str { value } => str_repr(value),
        Node::Bytes { data } => bytes_repr(data),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_as_python_repr() {
        // expected texts are CPython's repr() of the same strings
        assert_eq!(str_repr("echo pwned"), "'echo pwned'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(
            str_repr("eval('1') + harmless('x')"),
            "\"eval('1') + harmless('x')\""
        );
        assert_eq!(str_repr("x') + eval('y"), "\"x') + eval('y\"");
        assert_eq!(str_repr("a\\b"), "'a\\\\b'");
        assert_eq!(str_repr("\t\n\r\x1b[2J\x7f"), "'\\t\\n\\r\\x1b[2J\\x7f'");
        assert_eq!(str_repr("\u{202e}abc\u{200b}"), "'\\u202eabc\\u200b'");
        assert_eq!(str_repr("\u{a0}é中"), "'\\xa0é中'");
        assert_eq!(str_repr("\u{e0041}"), "'\\U000e0041'");
        assert_eq!(bytes_repr(b"a'\x00\xff\"\\"), "b'a\\'\\x00\\xff\"\\\\'");
        assert_eq!(bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(display_name("os"), "os");
        assert_eq!(display_name("sys\x1b]0;x\x07"), "'sys\\x1b]0;x\\x07'");
    }

    #[test]
    fn floats_as_python_repr() {
        for (v, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-8, "1e-08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.0, "123456789012345.0"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "inf"),
            (-0.0, "-0.0"),
            (1e300, "1e+300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (100.0, "100.0"),
            (0.3333333333333333, "0.3333333333333333"),
        ] {
            assert_eq!(float_repr(v), want, "{v}");
        }
    }

    #[test]
    fn cut_marks_the_cut() {
        assert_eq!(cut("abcdef".into(), 4), "abc…");
        assert_eq!(cut("abcd".into(), 4), "abcd");
        assert_eq!(cut("ab".into(), 4), "ab");
    }
}
