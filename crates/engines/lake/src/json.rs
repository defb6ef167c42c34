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
    #[cfg(test)]
    pub(crate) fn parse(text: &'a str) -> Option<Self> {
        Reader::default().read(text, &mut Vec::new())
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

/// Reads JSON texts into [`Json`] values, as serde_json reads them into `Value`s, in one
/// pass that also finds where the top-level members' values are (what the skeleton
/// needs). Member and item lists are gathered on stacks kept between texts, so each object
/// and array is allocated once at its final size.
///
/// Its own scan covers what records hold: strings without escapes, objects, arrays, the
/// literals and unsigned integers. Strings with escapes and other numbers are decoded by
/// serde_json itself; and anything the scan does not accept (bad syntax, control
/// characters in strings, deep nesting) is read again by serde_json, whose answer is the
/// one given — so every text reads exactly as `serde_json::from_str` reads it (a property
/// test compares them).
#[derive(Default)]
pub(crate) struct Reader<'a> {
    members: Vec<(Cow<'a, str>, Json<'a>)>,
    items: Vec<Json<'a>>,
}

/// Nesting the scan takes on itself; deeper texts go to serde_json (whose limit is 128).
const MAX_DEPTH: usize = 100;
/// Past this many members, repeated keys are found through an index.
const SCAN_MEMBERS: usize = 16;

impl<'a> Reader<'a> {
    /// Reads `text` (None when it is not JSON) and appends the members of its top-level
    /// object to `members`, as [`top_level_members`] finds them.
    pub(crate) fn read(
        &mut self,
        text: &'a str,
        members: &mut Vec<Member<'a>>,
    ) -> Option<Json<'a>> {
        let before = members.len();
        let mut scan = Scan {
            text,
            bytes: text.as_bytes(),
            at: 0,
            members: &mut self.members,
            items: &mut self.items,
        };
        scan.skip_space();
        let value = scan
            .value(0, Some(members))
            .filter(|_| scan.skip_space() == text.len());
        self.members.clear();
        self.items.clear();
        if value.is_some() {
            return value;
        }
        members.truncate(before);
        members.extend(top_level_members(text.as_bytes()));
        serde_json::from_str(text).ok()
    }
}

/// One text being read by [`Reader`].
struct Scan<'a, 's> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    members: &'s mut Vec<(Cow<'a, str>, Json<'a>)>,
    items: &'s mut Vec<Json<'a>>,
}

impl<'a> Scan<'a, '_> {
    /// Moves past white space; returns where it stopped.
    fn skip_space(&mut self) -> usize {
        self.at = skip_space(self.bytes, self.at);
        self.at
    }

    fn value(&mut self, depth: usize, top: Option<&mut Vec<Member<'a>>>) -> Option<Json<'a>> {
        match *self.bytes.get(self.at)? {
            b'"' => self.string().map(Json::String),
            b'{' => self.object(depth, top),
            b'[' => self.array(depth),
            b't' => self.literal(b"true", Json::Bool(true)),
            b'f' => self.literal(b"false", Json::Bool(false)),
            b'n' => self.literal(b"null", Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], value: Json<'a>) -> Option<Json<'a>> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| {
            self.at = end;
            value
        })
    }

    /// At a `"`: the string, borrowed from the text when it has no escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at + 1;
        let mut at = plain_run_end(self.bytes, start);
        loop {
            match *self.bytes.get(at)? {
                b'"' => {
                    self.at = at + 1;
                    return self.text.get(start..at).map(Cow::Borrowed);
                }
                b'\\' => return self.escaped_string(),
                0x00..=0x1F => return None,
                _ => at += 1,
            }
        }
    }

    /// At a `"` of a string with escapes: the string as serde_json decodes it.
    fn escaped_string(&mut self) -> Option<Cow<'a, str>> {
        let end = string_end(self.bytes, self.at)?;
        let decoded: String = serde_json::from_str(self.text.get(self.at..end)?).ok()?;
        self.at = end;
        Some(Cow::Owned(decoded))
    }

    /// Unsigned integers of up to 19 digits here; any other number as serde_json reads it.
    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.at;
        let mut at = start;
        while matches!(self.bytes.get(at), Some(b'0'..=b'9')) {
            at += 1;
        }
        let digits = at - start;
        let integer = !matches!(self.bytes.get(at), Some(b'.' | b'e' | b'E' | b'-' | b'+'));
        if integer && (1..=19).contains(&digits) && (digits == 1 || self.bytes[start] != b'0') {
            let value: u64 = self.text.get(start..at)?.parse().ok()?;
            self.at = at;
            return Some(Json::Number(value.into()));
        }
        while matches!(
            self.bytes.get(at),
            Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
        ) {
            at += 1;
        }
        let number: Number = serde_json::from_str(self.text.get(start..at)?).ok()?;
        self.at = at;
        Some(Json::Number(number))
    }

    fn array(&mut self, depth: usize) -> Option<Json<'a>> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let first = self.items.len();
        if self.skip_space_then(b']') {
            return Some(Json::Array(Vec::new()));
        }
        loop {
            let item = self.value(depth + 1, None)?;
            self.items.push(item);
            if self.next_or_close(b']')? {
                break;
            }
        }
        Some(Json::Array(self.items.drain(first..).collect()))
    }

    /// After an item or member: moves past a `,` and the space after it (false), or past
    /// `close` (true); None for anything else.
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        let byte = *self.bytes.get(self.skip_space())?;
        self.at += 1;
        if byte == b',' {
            self.skip_space();
            Some(false)
        } else {
            (byte == close).then_some(true)
        }
    }

    /// Moves past white space, then past `close` if it is there (true).
    fn skip_space_then(&mut self, close: u8) -> bool {
        self.skip_space();
        let found = self.bytes.get(self.at) == Some(&close);
        if found {
            self.at += 1;
        }
        found
    }

    /// An object; with `top`, also where each member's value is (keys without escapes).
    fn object(&mut self, depth: usize, mut top: Option<&mut Vec<Member<'a>>>) -> Option<Json<'a>> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let first = self.members.len();
        if self.skip_space_then(b'}') {
            return Some(Json::Object(Vec::new()));
        }
        let mut gathering = Gathering::default();
        loop {
            if self.bytes.get(self.at) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b':') {
                return None;
            }
            self.at += 1;
            let value_start = self.skip_space();
            let value = self.value(depth + 1, None)?;
            if let (Some(top), Cow::Borrowed(raw)) = (top.as_deref_mut(), &key) {
                top.push(Member {
                    key: raw,
                    value: value_start..self.at,
                });
            }
            gathering.insert(self.members, first, key, value);
            if self.next_or_close(b'}')? {
                break;
            }
        }
        Some(Json::Object(self.members.drain(first..).collect()))
    }
}

/// The members of one object as they are read, kept at `members[first..]` of a list: a
/// repeated key keeps its first place and takes its last value (as `serde_json::Value`
/// with `preserve_order` does).
#[derive(Default)]
struct Gathering<'a> {
    /// Built once an object has [`SCAN_MEMBERS`] members and a key may repeat.
    index: Option<HashMap<Cow<'a, str>, usize>>,
    /// A bit per key signature seen: a key whose bit is clear is new without a search
    /// (repeated keys are rare; records' top-level objects have ~20 members).
    signatures: u128,
}

impl<'a> Gathering<'a> {
    fn insert(
        &mut self,
        members: &mut Vec<(Cow<'a, str>, Json<'a>)>,
        first: usize,
        key: Cow<'a, str>,
        value: Json<'a>,
    ) {
        let object = &members[first..];
        let signature = 1u128 << key_signature(&key);
        let earlier = match &self.index {
            _ if self.signatures & signature == 0 => None,
            None if object.len() < SCAN_MEMBERS => {
                object.iter().position(|(seen, _)| same_key(seen, &key))
            }
            None => self
                .index
                .insert(
                    object
                        .iter()
                        .enumerate()
                        .map(|(at, (seen, _))| (seen.clone(), at))
                        .collect(),
                )
                .get(&key)
                .copied(),
            Some(map) => map.get(&key).copied(),
        };
        self.signatures |= signature;
        match earlier {
            Some(at) => members[first + at].1 = value,
            None => {
                if let Some(map) = &mut self.index {
                    map.insert(key.clone(), members.len() - first);
                }
                members.push((key, value));
            }
        }
    }
}

/// Key equality, deciding most unequal keys by their length and end bytes before comparing
/// them whole.
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.last() == b.last() && a.first() == b.first() && bytes_eq(a, b)
}

/// One of 128 bits for a key, from its length and end bytes: equal keys have equal bits.
fn key_signature(key: &str) -> u32 {
    let bytes = key.as_bytes();
    let (first, last) = (bytes.first().copied(), bytes.last().copied());
    let mixed = (bytes.len() as u32)
        .wrapping_mul(31)
        .wrapping_add(u32::from(first.unwrap_or(0)).wrapping_mul(7))
        .wrapping_add(u32::from(last.unwrap_or(0)));
    mixed % 128
}

/// Byte equality; keys and short values (up to 32 bytes) are compared a byte or a word at
/// a time, without a call to `memcmp`.
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len > 32 {
        return a == b;
    }
    if len < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |bytes: &[u8], at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let mut at = 0;
    while at + 8 < len {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, len - 8) == word(b, len - 8)
}

/// A top-level member of a JSON object: its key (raw, without quotes) and where its value's
/// text is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: std::ops::Range<usize>,
}

/// The members of the JSON object `text` is, in order; nothing if it is not one. Keys with
/// escapes are skipped (no column name has any).
pub(crate) fn top_level_members(text: &[u8]) -> Vec<Member<'_>> {
    let mut members = Vec::with_capacity(24);
    let mut at = skip_space(text, 0);
    if text.get(at) != Some(&b'{') {
        return members;
    }
    at += 1;
    loop {
        at = skip_space(text, at);
        if text.get(at) != Some(&b'"') {
            return members;
        }
        let key_start = at + 1;
        let Some(key_end) = string_end(text, at) else {
            return members;
        };
        let key = std::str::from_utf8(&text[key_start..key_end - 1]).unwrap_or("\\");
        at = skip_space(text, key_end);
        if text.get(at) != Some(&b':') {
            return members;
        }
        let value_start = skip_space(text, at + 1);
        let Some(value_end) = value_end(text, value_start) else {
            return members;
        };
        if !key.contains('\\') {
            members.push(Member {
                key,
                value: value_start..value_end,
            });
        }
        at = skip_space(text, value_end);
        match text.get(at) {
            Some(b',') => at += 1,
            _ => return members,
        }
    }
}

/// From `at`, the index of the first byte that is `"`, `\` or a control character (or the
/// end), eight bytes at a time.
pub(crate) fn plain_run_end(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGH;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let stops = zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGH);
        if stops != 0 {
            return at + (stops.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at
}

pub(crate) fn skip_space(text: &[u8], mut at: usize) -> usize {
    while matches!(text.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The index just past the string starting at `start` (a `"`), eight bytes at a time.
fn string_end(text: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    loop {
        at = plain_run_end(text, at);
        match text.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

/// The index just past the JSON value starting at `start` (not validated: containers by
/// their brackets, scalars up to the next delimiter).
pub(crate) fn value_end(text: &[u8], start: usize) -> Option<usize> {
    match text.get(start)? {
        b'"' => string_end(text, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = start;
            loop {
                match text.get(at)? {
                    b'"' => {
                        at = string_end(text, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        _ => {
            let mut at = start;
            while let Some(byte) = text.get(at) {
                if matches!(byte, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                at += 1;
            }
            (at > start).then_some(at)
        }
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
        let mut gathering = Gathering::default();
        while let Some(Key(key)) = map.next_key()? {
            let value: Json<'de> = map.next_value()?;
            gathering.insert(&mut members, 0, key, value);
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

    /// What serde_json alone reads (the reader's reference) and the members the text scan
    /// finds, against what the reader gives.
    fn reads_as_serde_json(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let expected: Option<Json> = serde_json::from_str(text).ok();
        let mut members = vec![Member {
            key: "kept",
            value: 0..0,
        }];
        let read = Reader::default().read(text, &mut members);
        proptest::prop_assert_eq!(&read, &expected, "{}", text);
        let mut scanned = vec![Member {
            key: "kept",
            value: 0..0,
        }];
        scanned.extend(top_level_members(text.as_bytes()));
        if expected.is_some() {
            proptest::prop_assert_eq!(members, scanned, "{}", text);
        }
        Ok(())
    }

    fn arbitrary_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "(?s).{0,12}".prop_map(Value::String),
            "[a-zA-Z:/. -]{0,24}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-cA-C\\\"é]{0,3}", inner), 0..20).prop_map(
                    |members| {
                        // Written with repeats: serde_json's map would drop them.
                        let text = format!(
                            "{{{}}}",
                            members
                                .iter()
                                .map(|(key, value)| format!(
                                    "{}:{}",
                                    Value::String(key.clone()),
                                    value
                                ))
                                .collect::<Vec<_>>()
                                .join(",")
                        );
                        Value::String(text)
                    }
                ),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]

        /// Valid texts, compact, spaced and with repeated keys (an object written as a
        /// string value above is also read as text on its own).
        #[test]
        fn the_reader_reads_valid_texts_as_serde_json_does(
            value in arbitrary_value(),
            spaced in proptest::bool::ANY,
        ) {
            let text = if spaced {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            };
            reads_as_serde_json(&text)?;
            if let Value::String(inner) = &value {
                reads_as_serde_json(inner)?;
            }
        }

        /// Texts of JSON's characters in any order: mostly not JSON, refused as serde_json
        /// refuses them, and read as it reads them when they are.
        #[test]
        fn the_reader_refuses_what_serde_json_refuses(
            text in "[{}\\[\\]\":, \n0-9.eE+\\-tnrufals\\\\u\u{1}é]{0,40}",
        ) {
            reads_as_serde_json(&text)?;
        }

        /// A record cut anywhere or with a byte changed.
        #[test]
        fn the_reader_reads_damaged_records_as_serde_json_does(
            cut in 0usize..400,
            at in 0usize..400,
            byte in proptest::sample::select(b"{}[]\":, 0-9.eEtnul\\x".to_vec()),
        ) {
            let record = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/b","n":[1,-2,3.5e2,{"k":null}]},"eventTime":"2024-03-10T11:45:03Z","requestParameters":{"a\"b":"c\u0041","n":18446744073709551615,"m":-0,"e":1E400},"readOnly":false}"#;
            reads_as_serde_json(&record[..cut.min(record.len())])?;
            let mut changed = record.as_bytes().to_vec();
            let at = at.min(changed.len() - 1);
            changed[at] = byte;
            if let Ok(changed) = String::from_utf8(changed) {
                reads_as_serde_json(&changed)?;
            }
        }
    }

    #[test]
    fn deep_nesting_and_many_members_read_as_serde_json_does() {
        for depth in [99, 100, 101, 127, 128, 129, 200] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            reads_as_serde_json(&text).unwrap();
            let text = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
            reads_as_serde_json(&text).unwrap();
        }
        let many: String = format!(
            "{{{}}}",
            (0..100)
                .map(|i| format!(r#""k{}":{}"#, i % 40, i))
                .collect::<Vec<_>>()
                .join(",")
        );
        reads_as_serde_json(&many).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn bytes_eq_is_equality(a in "[ab]{0,40}", b in "[ab]{0,40}") {
            proptest::prop_assert_eq!(bytes_eq(a.as_bytes(), b.as_bytes()), a == b);
            proptest::prop_assert!(bytes_eq(a.as_bytes(), a.as_bytes()));
        }
    }

    #[test]
    fn not_json_is_none() {
        assert!(Json::parse("{").is_none());
        assert!(Json::parse("").is_none());
    }
}
