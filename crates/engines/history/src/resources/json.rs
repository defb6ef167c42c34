//! `requestParameters` and `responseElements` as a tree borrowed from the record's text:
//! strings without escapes are not copied and objects are not made into maps (members
//! stay in a list, looked up by a scan). A `serde_json::Value` of each record's request
//! parameters was 1.5 % of the server's CPU under ingest; this tree is what a path lookup
//! needs and no more.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON value; numbers, booleans and `null` are not kept.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Json<'a> {
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
    Other,
}

impl<'a> Json<'a> {
    /// The value `text` holds; `None` when it is not JSON.
    pub(super) fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The member `key` of an object: the last one when the key repeats, the one a
    /// `serde_json::Value` keeps.
    pub(super) fn member(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Object(members) => members
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// A string, borrowed when the text holds it without escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_str(JsonVisitor)? {
            Json::Str(text) => Ok(Text(text)),
            _ => Err(serde::de::Error::custom("expected a string")),
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(text)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Json::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Json::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Json::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Json::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
        let mut array = Vec::with_capacity(items.size_hint().unwrap_or(0));
        while let Some(item) = items.next_element()? {
            array.push(item);
        }
        Ok(Json::Array(array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Self::Value, A::Error> {
        let mut object = Vec::with_capacity(members.size_hint().unwrap_or(0));
        while let Some((Text(key), value)) = members.next_entry()? {
            object.push((key, value));
        }
        Ok(Json::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_without_escapes_are_borrowed_and_repeated_keys_keep_the_last() {
        let text = r#"{"a":"plain","b":"esc\"aped","c":[1,true,null,{"d":"x"}],"a":"last"}"#;
        let json = Json::parse(text).unwrap();
        assert!(matches!(json.member("b"), Some(Json::Str(Cow::Owned(b))) if b == "esc\"aped"));
        assert!(matches!(
            json.member("a"),
            Some(Json::Str(Cow::Borrowed("last")))
        ));
        let Some(Json::Array(items)) = json.member("c") else {
            panic!("c is an array");
        };
        assert_eq!(items[..3], [Json::Other, Json::Other, Json::Other]);
        assert_eq!(items[3].member("d"), Some(&Json::Str(Cow::Borrowed("x"))));
        assert_eq!(json.member("missing"), None);
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        for text in ["", "{", "{\"a\":}", "[1,]", "{\"a\":1}x", "\"\\x\""] {
            assert_eq!(Json::parse(text), None, "{text:?}");
            assert!(serde_json::from_str::<serde_json::Value>(text).is_err());
        }
    }

    /// Keys with escapes are decoded, as `serde_json::Value` decodes them.
    #[test]
    fn escaped_keys_are_decoded() {
        let json = Json::parse(r#"{"bucket\u004eame":"logs"}"#).unwrap();
        assert_eq!(
            json.member("bucketName"),
            Some(&Json::Str(Cow::Borrowed("logs")))
        );
    }
}
