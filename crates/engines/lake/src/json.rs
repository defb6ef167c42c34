//! A JSON value that borrows the record's text: what the lake writer reads each record
//! into. Strings without escapes, and object keys, point into the record instead of being
//! copied, and objects are lists of members instead of hash maps. It reads and writes
//! the same values as `serde_json::Value` with `preserve_order`: members keep their order,
//! a repeated key keeps its first place and takes its last value, numbers are
//! `serde_json::Number`s and are written as `Value` writes them.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Reads one JSON text; None when it is not JSON.
    pub(crate) fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    pub(crate) fn as_object(&self) -> Option<&[(Cow<'a, str>, Json<'a>)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub(crate) fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    /// The compact JSON text, as `serde_json::Value`'s `to_string` writes it.
    pub(crate) fn write_into(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail, and every Json can be written.
        let _ = serde_json::to_writer(out, self);
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(flag) => serializer.serialize_bool(*flag),
            Json::Number(number) => number.serialize(serializer),
            Json::String(text) => serializer.serialize_str(text),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key.as_ref(), value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(value).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(value.to_string())))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(value)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Deserialize::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        // Past this many members, repeated keys are found through an index.
        const SCAN: usize = 16;
        let mut index: HashMap<Cow<'de, str>, usize> = HashMap::new();
        while let Some(Key(key)) = map.next_key()? {
            let value: Json<'de> = map.next_value()?;
            let earlier = if members.len() < SCAN {
                members.iter().position(|(seen, _)| *seen == key)
            } else {
                if index.is_empty() {
                    index.extend(
                        members
                            .iter()
                            .enumerate()
                            .map(|(at, (seen, _))| (seen.clone(), at)),
                    );
                }
                index.get(&key).copied()
            };
            match earlier {
                Some(at) => members[at].1 = value,
                None => {
                    if !index.is_empty() {
                        index.insert(key.clone(), members.len());
                    }
                    members.push((key, value));
                }
            }
        }
        Ok(Json::Object(members))
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value.to_string())))
            }
            fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Json reads and writes every text exactly as serde_json::Value does.
    fn same_as_value(text: &str) {
        let value: Value = serde_json::from_str(text).unwrap();
        let json = Json::parse(text).unwrap();
        let mut written = Vec::new();
        json.write_into(&mut written);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            value.to_string(),
            "{text}"
        );
    }

    #[test]
    fn reads_and_writes_as_serde_json_value_does() {
        for text in [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e\/f","g":-2.50,"h":1e3}}"#,
            r#"{"k":1,"k":2,"j":3}"#,
            r#"{"esc\u0041ped":"line\nbreak \"quoted\" é \ud83d\ude00"}"#,
            r#"  [ 1 , 18446744073709551615 , -9223372036854775808 , 0.1 , 1E-7 ]  "#,
            r#""just a string""#,
            "null",
        ] {
            same_as_value(text);
        }
        let many: String = format!(
            "{{{}}}",
            (0..100)
                .map(|i| format!(r#""k{}":{}"#, i % 40, i))
                .collect::<Vec<_>>()
                .join(",")
        );
        same_as_value(&many);
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let json = Json::parse(r#"{"plain":"text","esc\"aped":"a\tb"}"#).unwrap();
        let members = json.as_object().unwrap();
        assert!(matches!(members[0].0, Cow::Borrowed(_)));
        assert!(matches!(members[0].1, Json::String(Cow::Borrowed(_))));
        assert!(matches!(members[1].0, Cow::Owned(_)));
        assert!(matches!(members[1].1, Json::String(Cow::Owned(_))));
    }

    #[test]
    fn not_json_is_none() {
        assert!(Json::parse("{").is_none());
        assert!(Json::parse("").is_none());
    }
}
