//! The bytes of an answer to the page: a serde serializer that writes postcard's encoding.
//!
//! Contract: [`to_bytes`] gives exactly the bytes `postcard::to_allocvec` gives for any value
//! whose sequences and maps know their length (tested natively against postcard for every
//! kind of serde value and for answers), so the page decodes them with postcard. Integers
//! wider than a byte are LEB128 varints (signed ones zigzag-encoded first), floats their
//! little-endian bytes, strings and byte strings a varint length then the bytes, `Option` a
//! 0/1 byte, enum variants their index as a varint; structs and tuples are their fields in
//! order, without names or lengths.
//!
//! Why not postcard's own serializer in the worker: its writes are `#[inline]` and the worker is
//! built at opt-level 3, so the whole encoder was copied into the answers' one `serialize`
//! function (44 KB of wasm); here each kind of value is written by one shared function.

use serde::ser::{self, Serialize};

/// Why a value could not be encoded (a sequence or map of unknown length, or a type's own
/// error).
#[derive(Debug, Clone, PartialEq)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

impl ser::Error for WireError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        WireError(msg.to_string())
    }
}

/// The postcard encoding of `value`.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, WireError> {
    let mut w = Writer { out: Vec::new() };
    value.serialize(&mut w)?;
    Ok(w.out)
}

/// The bytes written so far.
pub struct Writer {
    out: Vec<u8>,
}

type Done = Result<(), WireError>;

impl Writer {
    #[inline(never)]
    fn byte(&mut self, b: u8) -> Done {
        self.out.push(b);
        Ok(())
    }

    #[inline(never)]
    fn varint(&mut self, mut n: u128) -> Done {
        while n >= 0x80 {
            self.out.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
        Ok(())
    }

    #[inline(never)]
    fn zigzag(&mut self, n: i128) -> Done {
        self.varint(((n << 1) ^ (n >> 127)) as u128)
    }

    #[inline(never)]
    fn raw(&mut self, b: &[u8]) -> Done {
        self.out.extend_from_slice(b);
        Ok(())
    }

    #[inline(never)]
    fn sized(&mut self, b: &[u8]) -> Done {
        self.varint(b.len() as u128)?;
        self.raw(b)
    }

    #[inline(never)]
    fn length(&mut self, len: Option<usize>) -> Done {
        match len {
            Some(n) => self.varint(n as u128),
            None => Err(WireError("a sequence or map of unknown length".into())),
        }
    }
}

/// Integers wider than a byte: widened, then written as a varint (zigzag-encoded when signed).
macro_rules! integers {
    ($($method:ident($t:ty) => $write:ident),*) => {$(
        fn $method(self, v: $t) -> Done {
            self.$write(v.into())
        }
    )*};
}

impl ser::Serializer for &mut Writer {
    type Ok = ();
    type Error = WireError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }
    fn serialize_bool(self, v: bool) -> Done {
        self.byte(v as u8)
    }
    fn serialize_i8(self, v: i8) -> Done {
        self.byte(v as u8)
    }
    integers!(
        serialize_i16(i16) => zigzag,
        serialize_i32(i32) => zigzag,
        serialize_i64(i64) => zigzag,
        serialize_u16(u16) => varint,
        serialize_u32(u32) => varint,
        serialize_u64(u64) => varint
    );
    fn serialize_i128(self, v: i128) -> Done {
        self.zigzag(v)
    }
    fn serialize_u8(self, v: u8) -> Done {
        self.byte(v)
    }
    fn serialize_u128(self, v: u128) -> Done {
        self.varint(v)
    }
    fn serialize_f32(self, v: f32) -> Done {
        self.raw(&v.to_le_bytes())
    }
    fn serialize_f64(self, v: f64) -> Done {
        self.raw(&v.to_le_bytes())
    }
    fn serialize_char(self, v: char) -> Done {
        self.sized(v.encode_utf8(&mut [0; 4]).as_bytes())
    }
    fn serialize_str(self, v: &str) -> Done {
        self.sized(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.sized(v)
    }
    fn serialize_none(self) -> Done {
        self.byte(0)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        self.byte(1)?;
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Done {
        self.varint(index.into())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Done {
        self.varint(index.into())?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, WireError> {
        self.length(len)?;
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, WireError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, WireError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, WireError> {
        self.varint(index.into())?;
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self, WireError> {
        self.length(len)?;
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, WireError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, WireError> {
        // the variant's index, then its fields: as a tuple variant
        ser::Serializer::serialize_tuple_variant(self, name, index, variant, len)
    }
}

/// Every compound writes its elements one after the other, with nothing around them.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for &mut Writer {
            type Ok = ();
            type Error = WireError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
}
elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// Struct fields are written without their names.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for &mut Writer {
            type Ok = ();
            type Error = WireError;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Done {
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
}
fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for &mut Writer {
    type Ok = ();
    type Error = WireError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::protocol::*;
    use std::collections::BTreeMap;

    /// Every kind of serde value, at the edges of each integer width.
    #[derive(serde::Serialize)]
    struct Kinds {
        b: (bool, bool),
        i8s: [i8; 3],
        i16s: [i16; 4],
        i32s: [i32; 4],
        i64s: [i64; 4],
        i128s: [i128; 3],
        u8s: [u8; 2],
        u16s: [u16; 3],
        u32s: [u32; 4],
        u64s: [u64; 5],
        u128s: [u128; 2],
        usizes: Vec<usize>,
        f32s: [f32; 3],
        f64s: [f64; 4],
        chars: [char; 3],
        text: String,
        bytes: serde_bytes_like::Bytes,
        opt: (Option<u32>, Option<String>),
        unit: (),
        unit_struct: UnitStruct,
        newtype: Newtype,
        tuple_struct: TupleStruct,
        enums: Vec<E>,
        map: BTreeMap<String, Vec<u8>>,
        nested: Vec<Vec<(u16, i16)>>,
    }
    #[derive(serde::Serialize)]
    struct UnitStruct;
    #[derive(serde::Serialize)]
    struct Newtype(u64);
    #[derive(serde::Serialize)]
    struct TupleStruct(i32, String);
    #[derive(serde::Serialize)]
    enum E {
        Unit,
        New(i64),
        Tuple(u8, f32),
        Struct { a: Option<bool>, b: String },
    }

    /// A byte string serialized with `serialize_bytes` (as `serde_bytes` does).
    mod serde_bytes_like {
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    fn same_as_postcard<T: serde::Serialize>(v: &T) {
        assert_eq!(to_bytes(v).unwrap(), postcard::to_allocvec(v).unwrap());
    }

    #[test]
    fn every_kind_of_value_as_postcard_writes_it() {
        let enums: Vec<E> = (0..200)
            .map(|i| match i % 4 {
                0 => E::Unit,
                1 => E::New(-i),
                2 => E::Tuple(i as u8, 0.5),
                _ => E::Struct {
                    a: (i % 8 == 3).then_some(true),
                    b: "x".repeat(i as usize),
                },
            })
            .collect();
        let k = Kinds {
            b: (true, false),
            i8s: [i8::MIN, -1, i8::MAX],
            i16s: [i16::MIN, -64, 63, i16::MAX],
            i32s: [i32::MIN, -65, 64, i32::MAX],
            i64s: [i64::MIN, -1, 1 << 40, i64::MAX],
            i128s: [i128::MIN, -3, i128::MAX],
            u8s: [0, u8::MAX],
            u16s: [127, 128, u16::MAX],
            u32s: [0, 16_383, 16_384, u32::MAX],
            u64s: [0, 127, 128, 1 << 53, u64::MAX],
            u128s: [u64::MAX as u128 + 1, u128::MAX],
            usizes: vec![0, 300, usize::MAX],
            f32s: [-0.0, f32::NAN, f32::INFINITY],
            f64s: [1.5, -f64::MIN_POSITIVE, f64::NEG_INFINITY, f64::NAN],
            chars: ['a', 'é', '🦀'],
            text: "naïve ✓ ".repeat(40),
            bytes: serde_bytes_like::Bytes((0..=255).collect()),
            opt: (Some(7), None),
            unit: (),
            unit_struct: UnitStruct,
            newtype: Newtype(1 << 35),
            tuple_struct: TupleStruct(-5, "t".into()),
            enums,
            map: [("k".to_string(), vec![1, 2]), (String::new(), vec![])]
                .into_iter()
                .collect(),
            nested: vec![vec![(1, -1); 3], vec![], vec![(u16::MAX, i16::MIN)]],
        };
        same_as_postcard(&k);
    }

    /// An export answer: natively its Blob is nothing on the wire (in wasm, its position beside
    /// the bytes, which this test does not cover).
    #[cfg(not(target_arch = "wasm32"))]
    fn exported() -> Vec<Response> {
        vec![Response::Exported(ExportReply {
            id: 2,
            name: "m.pth".into(),
            size: 10,
            blob: BlobHandle,
            tensors: 1,
            dropped: vec![],
            aliases: vec![("a".into(), "b".into())],
            overflow: vec![("w".into(), 3)],
            copied_bytes: 1,
            new_bytes: 2,
            millis: 0.25,
            wasm_memory_before: 0,
            wasm_memory_after: 1 << 30,
        })]
    }
    #[cfg(target_arch = "wasm32")]
    fn exported() -> Vec<Response> {
        vec![]
    }

    #[test]
    fn answers_as_postcard_writes_them() {
        let summary = Summary {
            id: 4,
            tensors: 1,
            params: 6,
            globals: vec![GlobalInfo {
                module: "os".into(),
                name: "system".into(),
                tier: Tier::Dangerous,
                why: "runs a shell command".into(),
            }],
            entries: vec![Entry::of(&crate::format::TensorInfo::f32_at_start(
                "w",
                vec![2, 3],
                vec![3, 1],
            ))],
            metadata: vec![("format".into(), "pt".into())],
            ..Default::default()
        };
        let mut answers = vec![
            Response::Ready,
            Response::Summary(summary),
            Response::Error(ErrorReply::no_file(3)),
            Response::Progress {
                id: 1,
                done: 5,
                total: u64::MAX,
            },
            Response::Window(WindowReply {
                id: 9,
                tensor: 0,
                values: vec!["nan".into()],
                numbers: vec![f64::NAN],
            }),
        ];
        answers.extend(exported());
        for a in &answers {
            same_as_postcard(a);
        }
    }

    #[test]
    fn unknown_lengths_are_refused() {
        struct Unsized;
        impl serde::Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                s.serialize_seq(None)?.end()
            }
        }
        assert!(to_bytes(&Unsized).is_err());
    }
}
