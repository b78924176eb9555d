//! postcard's encoding, both ways: a serde serializer that writes it ([`to_bytes`]: the worker's
//! answers, the page's requests) and a serde deserializer that reads it ([`from_bytes`]: the
//! worker's requests; the page reads answers with postcard's own, smaller at its opt-level "z").
//!
//! Contract: [`to_bytes`] gives exactly the bytes `postcard::to_allocvec` gives for any value
//! whose sequences and maps know their length, and [`from_bytes`] reads back what postcard
//! writes — the same value, or an error where `postcard::from_bytes` has one (bytes cut short or
//! left over, a varint past its type's width, a bool or `Option` tag other than 0/1, text that
//! is not UTF-8); both tested natively against postcard for every kind of serde value and for
//! the messages. Integers wider than a byte are LEB128 varints (signed ones zigzag-encoded
//! first), floats their little-endian bytes, strings and byte strings a varint length then the
//! bytes, `Option` a 0/1 byte, enum variants their index as a varint; structs and tuples are
//! their fields in order, without names or lengths. Self-describing input (`deserialize_any`,
//! identifiers, ignored values) is refused, as postcard does.
//!
//! Why not postcard's own code in the worker: its reads and writes are `#[inline]`, and the worker
//! is built at opt-level 3, so every message type's one `serialize` / visitor function got a copy
//! of the whole codec (the answers' `serialize` 44 KB of wasm, the requests' visitor 19 KB); here
//! each kind of value is read or written by one shared function.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
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

impl de::Error for WireError {
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

/// The value postcard's encoding `bytes` holds (all of them: bytes left over are an error).
pub fn from_bytes<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let mut r = Reader { input: bytes };
    let v = T::deserialize(&mut r)?;
    match r.input.is_empty() {
        true => Ok(v),
        false => Err(WireError(format!("{} bytes left over", r.input.len()))),
    }
}

/// The bytes not read yet.
pub struct Reader<'de> {
    input: &'de [u8],
}

type Read<T> = Result<T, WireError>;

fn cut_short() -> WireError {
    WireError("the message is cut short".into())
}

impl<'de> Reader<'de> {
    #[inline(never)]
    fn take(&mut self, n: usize) -> Read<&'de [u8]> {
        if n > self.input.len() {
            return Err(cut_short());
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    #[inline(never)]
    fn byte(&mut self) -> Read<u8> {
        Ok(self.take(1)?[0])
    }

    /// A 0/1 byte (a bool, an `Option`'s tag).
    #[inline(never)]
    fn flag(&mut self) -> Read<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(WireError(format!("{b} where 0 or 1 belongs"))),
        }
    }

    /// A varint of at most `bits` bits (postcard refuses longer ones and wider values).
    #[inline(never)]
    fn varint(&mut self, bits: u32) -> Read<u128> {
        let mut n = 0u128;
        for k in 0..bits.div_ceil(7) {
            let b = self.byte()?;
            n |= u128::from(b & 0x7f) << (7 * k);
            if b < 0x80 {
                return match bits == 128 || n >> bits == 0 {
                    true => Ok(n),
                    false => Err(WireError(format!("a varint wider than {bits} bits"))),
                };
            }
        }
        Err(WireError(format!("a varint longer than {bits} bits")))
    }

    #[inline(never)]
    fn zigzag(&mut self, bits: u32) -> Read<i128> {
        let n = self.varint(bits)?;
        Ok((n >> 1) as i128 ^ -((n & 1) as i128))
    }

    #[inline(never)]
    fn length(&mut self) -> Read<usize> {
        usize::try_from(self.varint(64)?).map_err(|_| WireError("a length past usize".into()))
    }

    /// A varint length, then that many bytes.
    #[inline(never)]
    fn sized(&mut self) -> Read<&'de [u8]> {
        let n = self.length()?;
        self.take(n)
    }

    #[inline(never)]
    fn text(&mut self) -> Read<&'de str> {
        std::str::from_utf8(self.sized()?).map_err(|_| WireError("text that is not UTF-8".into()))
    }

    fn refuse<T>(&self) -> Read<T> {
        Err(WireError("postcard is not self-describing".into()))
    }
}

/// Integers: read as a varint of their width (zigzag-decoded when signed), then narrowed.
macro_rules! read_integers {
    ($($method:ident => $visit:ident($t:ty) from $read:ident($bits:expr)),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
            v.$visit(self.$read($bits)? as $t)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = WireError;

    fn is_human_readable(&self) -> bool {
        false
    }
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Read<V::Value> {
        self.refuse()
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Read<V::Value> {
        self.refuse()
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Read<V::Value> {
        self.refuse()
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        v.visit_bool(self.flag()?)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        v.visit_i8(self.byte()? as i8)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        v.visit_u8(self.byte()?)
    }
    read_integers!(
        deserialize_i16 => visit_i16(i16) from zigzag(16),
        deserialize_i32 => visit_i32(i32) from zigzag(32),
        deserialize_i64 => visit_i64(i64) from zigzag(64),
        deserialize_i128 => visit_i128(i128) from zigzag(128),
        deserialize_u16 => visit_u16(u16) from varint(16),
        deserialize_u32 => visit_u32(u32) from varint(32),
        deserialize_u64 => visit_u64(u64) from varint(64),
        deserialize_u128 => visit_u128(u128) from varint(128)
    );
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        let b = self.take(4)?;
        v.visit_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        v.visit_f64(f64::from_le_bytes(b))
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        let mut chars = self.text()?.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => v.visit_char(c),
            _ => Err(WireError("not one character".into())),
        }
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        v.visit_borrowed_str(self.text()?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        v.visit_borrowed_str(self.text()?)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        v.visit_borrowed_bytes(self.sized()?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        v.visit_borrowed_bytes(self.sized()?)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        match self.flag()? {
            false => v.visit_none(),
            true => v.visit_some(self),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        v.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Read<V::Value> {
        v.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Read<V::Value> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        let left = self.length()?;
        v.visit_seq(Elements { de: self, left })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, left: usize, v: V) -> Read<V::Value> {
        v.visit_seq(Elements { de: self, left })
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        left: usize,
        v: V,
    ) -> Read<V::Value> {
        v.visit_seq(Elements { de: self, left })
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Read<V::Value> {
        let left = self.length()?;
        v.visit_map(Elements { de: self, left })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Read<V::Value> {
        v.visit_seq(Elements {
            de: self,
            left: fields.len(),
        })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Read<V::Value> {
        v.visit_enum(self)
    }
}

/// The next `left` elements of a sequence, tuple or struct (or entries of a map).
struct Elements<'a, 'de> {
    de: &'a mut Reader<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = WireError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Read<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_, 'de> {
    type Error = WireError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Read<Option<K::Value>> {
        de::SeqAccess::next_element_seed(self, seed)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Read<V::Value> {
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// An enum: the variant's index as a varint, then its content.
impl<'de> de::EnumAccess<'de> for &mut Reader<'de> {
    type Error = WireError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Read<(V::Value, Self)> {
        let index = self.varint(32)? as u32;
        let v = seed.deserialize(index.into_deserializer())?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Reader<'de> {
    type Error = WireError;
    fn unit_variant(self) -> Read<()> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Read<T::Value> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, left: usize, v: V) -> Read<V::Value> {
        v.visit_seq(Elements { de: self, left })
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Read<V::Value> {
        v.visit_seq(Elements {
            de: self,
            left: fields.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::protocol::*;
    use std::collections::BTreeMap;

    /// Every kind of serde value, at the edges of each integer width.
    #[derive(serde::Serialize, serde::Deserialize)]
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
    #[derive(serde::Serialize, serde::Deserialize)]
    struct UnitStruct;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Newtype(u64);
    #[derive(serde::Serialize, serde::Deserialize)]
    struct TupleStruct(i32, String);
    #[derive(serde::Serialize, serde::Deserialize)]
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
        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E>(self, b: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(b.to_vec()))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }

    /// Written as postcard writes it, and read back by [`from_bytes`] and by postcard to values
    /// that write the same bytes again (bit for bit, NaN included).
    fn same_as_postcard<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) {
        let bytes = to_bytes(v).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(v).unwrap());
        let ours: T = from_bytes(&bytes).unwrap();
        assert_eq!(to_bytes(&ours).unwrap(), bytes);
        let theirs: T = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(to_bytes(&theirs).unwrap(), bytes);
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

    /// What postcard refuses, the reader refuses.
    #[test]
    fn malformed_bytes_are_refused_as_postcard_refuses_them() {
        fn both_refuse<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
            assert!(from_bytes::<T>(bytes).is_err(), "{bytes:?}");
            assert!(postcard::from_bytes::<T>(bytes).is_err(), "{bytes:?}");
        }
        both_refuse::<u32>(&[]); // cut short
        both_refuse::<u32>(&[0x80]); // a varint cut short
        both_refuse::<u16>(&[0xff, 0xff, 0x04]); // 2^18 - 1: wider than 16 bits
        both_refuse::<u32>(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]); // six bytes
        both_refuse::<u64>(&[0xff; 11]);
        both_refuse::<i32>(&[0xff, 0xff, 0xff, 0xff, 0x1f]); // 2^33 - 1 zigzagged
        both_refuse::<bool>(&[2]);
        both_refuse::<Option<u8>>(&[2, 0]);
        both_refuse::<String>(&[2, 0xc3, 0x28]); // not UTF-8
        both_refuse::<String>(&[5, b'a']); // shorter than its length
        both_refuse::<char>(&[2, b'a', b'b']); // two characters
        both_refuse::<E>(&[4]); // no such variant
        both_refuse::<Vec<u8>>(&[3, 1, 2]);
        both_refuse::<f64>(&[0; 7]);
        both_refuse::<serde_json::Value>(&[0]); // self-describing: refused
        assert!(from_bytes::<u8>(&[1, 2]).is_err(), "bytes left over");
        assert_eq!(
            from_bytes::<u32>(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Ok(u32::MAX)
        );
        assert_eq!(from_bytes::<i64>(&[0x01]), Ok(-1));
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
