//! A JSON value tree that keeps object members in document order, duplicates included.
//!
//! Contract: [`parse`] accepts exactly the JSON serde_json accepts (RFC 8259, serde_json's nesting
//! limit of 128) and returns a [`Json`] whose objects are `Vec<(key, value)>` in the order they
//! appear in the text, **with repeated keys kept**. Readers of untrusted JSON headers
//! (safetensors headers, sharded-checkpoint indices) use it to report duplicate names and to keep
//! header order; `serde_json::Value` cannot do either (its map is sorted and drops repeats, and
//! even the `preserve_order` feature keeps only the last of two equal keys).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A non-negative integer that fits u64.
    UInt(u64),
    /// A negative integer that fits i64.
    Int(i64),
    /// Any other number (fractions, exponents, integers beyond 64 bits).
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    /// Members in document order; a repeated key appears twice.
    Object(Vec<(String, Json)>),
}

/// Parse JSON text. Leading and trailing JSON whitespace is allowed; anything else after the
/// value is an error.
pub fn parse(text: &str) -> Result<Json, serde_json::Error> {
    serde_json::from_str(text)
}

impl Json {
    /// What sort of value this is, for error messages ("a string", "an array", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::UInt(_) => "an integer",
            Json::Int(_) => "a negative integer",
            Json::Float(_) => "a non-integer number",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// Render back to compact JSON text (object order and repeats kept).
    pub fn to_text(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => b.to_string(),
            Json::UInt(u) => u.to_string(),
            Json::Int(i) => i.to_string(),
            Json::Float(f) => text(f),
            Json::Str(s) => text(s),
            Json::Array(items) => {
                let parts: Vec<String> = items.iter().map(Json::to_text).collect();
                format!("[{}]", parts.join(","))
            }
            Json::Object(members) => {
                let parts: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}:{}", text(k), v.to_text()))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
        }
    }
}

/// A float (`null` when not finite, as serde_json writes it) or a string as JSON text;
/// serialising either cannot fail.
fn text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::UInt(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(if v >= 0 {
            Json::UInt(v as u64)
        } else {
            Json::Int(v)
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            members.push((k, v));
        }
        Ok(Json::Object(members))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_repeats() {
        let j = parse(r#" {"b": 1, "a": [true, null, -2, 1.5, "x"], "b": {"z": "1", "y": 2}} "#)
            .unwrap();
        let Json::Object(m) = &j else { panic!() };
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(
            m[1].1,
            Json::Array(vec![
                Json::Bool(true),
                Json::Null,
                Json::Int(-2),
                Json::Float(1.5),
                Json::Str("x".into())
            ])
        );
        assert_eq!(
            j.to_text(),
            r#"{"b":1,"a":[true,null,-2,1.5,"x"],"b":{"z":"1","y":2}}"#
        );
    }

    #[test]
    fn big_integers_and_errors() {
        assert_eq!(parse("18446744073709551615").unwrap(), Json::UInt(u64::MAX));
        // beyond u64: serde_json falls back to a float, which readers reject as "not an integer"
        assert!(matches!(
            parse("18446744073709551616").unwrap(),
            Json::Float(_)
        ));
        assert!(parse("{\"a\":1} x").is_err());
        assert!(parse("{\"a\":1,}").is_err());
        assert!(parse("").is_err());
    }
}
