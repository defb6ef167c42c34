//! Where one parsed field's value lives inside the record's JSON text.
//! Strings without escapes are byte ranges of the record, so typical records are
//! indexed without copying any text; only strings with escapes are decoded into a copy.

/// The JSON type of a field value, for validation messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonKind {
    String,
    Number,
    Bool,
    Object,
    Array,
}

impl JsonKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Bool => "boolean",
            Self::Object => "object",
            Self::Array => "array",
        }
    }
}

/// A byte range of the record's JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The position of `part` inside `record`; `part` must be a subslice of `record`.
    fn locate(record: &str, part: &str) -> Self {
        let start = (part.as_ptr() as usize).wrapping_sub(record.as_ptr() as usize);
        let end = start.wrapping_add(part.len());
        debug_assert!(end <= record.len(), "part is not inside the record");
        // Records longer than u32::MAX bytes are refused before indexing; should one slip
        // through, the out-of-range span resolves to nothing rather than to wrong text.
        Self {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn resolve(self, record: &str) -> Option<&str> {
        record.get(self.start as usize..self.end as usize)
    }
}

/// Where slots' text lives: the record, and the strings decoded out of it (strings
/// with escapes, rare in CloudTrail records, are kept aside so that a slot stays small).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    pub(crate) record: &'a str,
    pub(crate) decoded: &'a [Box<str>],
}

/// One field of a record as parsed: absent (or `null`), a string, a boolean, or some
/// other JSON value kept as the range of its text. Twelve bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Slot {
    #[default]
    Absent,
    /// A string without escapes: a range of the record.
    Str(Span),
    /// A string with escapes: its decoded text is `decoded[index]`.
    Decoded(u32),
    Bool(bool),
    /// A number, object or array; or a string whose escapes do not decode to
    /// Unicode (a lone surrogate), which has kind `String`.
    Json {
        kind: JsonKind,
        span: Span,
    },
}

impl Slot {
    /// Classifies `json`, the text of one well-formed JSON value inside `record`;
    /// decoded strings go to `decoded`.
    pub(crate) fn read(record: &str, json: &str, decoded: &mut Vec<Box<str>>) -> Self {
        match json.as_bytes().first() {
            Some(b'"') => Self::read_string(record, json, decoded),
            Some(b't') => Self::Bool(true),
            Some(b'f') => Self::Bool(false),
            Some(b'n') => Self::Absent,
            Some(b'{') => Self::read_container(record, JsonKind::Object, json),
            Some(b'[') => Self::read_container(record, JsonKind::Array, json),
            _ => Self::read_container(record, JsonKind::Number, json),
        }
    }

    /// A string the scanner found in `record`.
    pub(crate) fn read_string_token(
        record: &str,
        token: super::scan::StrToken,
        decoded: &mut Vec<Box<str>>,
    ) -> Self {
        if !token.escaped {
            return Self::Str(Span {
                start: token.start,
                end: token.end,
            });
        }
        let quoted = record.get(token.start as usize - 1..token.end as usize + 1);
        Self::read_string(record, quoted.unwrap_or("\"\""), decoded)
    }

    fn read_string(record: &str, json: &str, decoded: &mut Vec<Box<str>>) -> Self {
        // `json` is a complete JSON string literal, so it starts and ends with a quote.
        let inner = json.get(1..json.len().saturating_sub(1)).unwrap_or("");
        if !inner.contains('\\') {
            return Self::Str(Span::locate(record, inner));
        }
        match serde_json::from_str::<String>(json) {
            Ok(text) => {
                decoded.push(text.into_boxed_str());
                Self::Decoded(u32::try_from(decoded.len() - 1).unwrap_or(u32::MAX))
            }
            Err(_) => Self::read_container(record, JsonKind::String, json),
        }
    }

    /// A value of `kind` kept as its text `json` inside `record` (also objects and arrays
    /// the parser walked in place).
    pub(crate) fn read_container(record: &str, kind: JsonKind, json: &str) -> Self {
        Self::Json {
            kind,
            span: Span::locate(record, json),
        }
    }

    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    /// The JSON type of a present value.
    pub(crate) fn kind(&self) -> Option<JsonKind> {
        match self {
            Self::Absent => None,
            Self::Str(_) | Self::Decoded(_) => Some(JsonKind::String),
            Self::Bool(_) => Some(JsonKind::Bool),
            Self::Json { kind, .. } => Some(*kind),
        }
    }

    /// The decoded string, when the value is a string.
    pub(crate) fn as_str<'a>(&self, source: Source<'a>) -> Option<&'a str> {
        match self {
            Self::Str(span) => span.resolve(source.record),
            Self::Decoded(index) => source.decoded.get(*index as usize).map(|text| &**text),
            _ => None,
        }
    }

    /// A boolean written either as JSON `true`/`false` or as the string
    /// `"true"`/`"false"`, as some services record `readOnly`.
    pub(crate) fn as_flag(&self, source: Source<'_>) -> Option<bool> {
        match self {
            Self::Bool(value) => Some(*value),
            Self::Str(_) | Self::Decoded(_) => match self.as_str(source) {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The JSON text of the value, when it is an object.
    pub(crate) fn object_json<'a>(&self, record: &'a str) -> Option<&'a str> {
        match self {
            Self::Json {
                kind: JsonKind::Object,
                span,
            } => span.resolve(record),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    /// The slot of `key`, and the strings decoded on the way (leaked: tests only).
    fn slot_of(record: &'static str, key: &str) -> (Slot, Source<'static>) {
        let map: std::collections::BTreeMap<String, &RawValue> =
            serde_json::from_str(record).expect("object");
        let mut decoded = Vec::new();
        let slot = map.get(key).map_or(Slot::Absent, |value| {
            Slot::read(record, value.get(), &mut decoded)
        });
        let decoded: &'static [Box<str>] = Vec::leak(decoded);
        (slot, Source { record, decoded })
    }

    #[test]
    fn plain_strings_are_ranges_of_the_record() {
        let record = r#"{"a": "plain text"}"#;
        let (slot, source) = slot_of(record, "a");
        assert!(matches!(slot, Slot::Str(_)));
        assert_eq!(slot.as_str(source), Some("plain text"));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let record = r#"{"a": "tab\there \u00e9 \/"}"#;
        let (slot, source) = slot_of(record, "a");
        assert!(matches!(slot, Slot::Decoded(0)));
        assert_eq!(slot.as_str(source), Some("tab\there é /"));
    }

    #[test]
    fn other_values_keep_their_kind_and_text() {
        let record =
            r#"{"n": 1.5E9, "o": {"k": [1]}, "l": [ ], "t": true, "z": null, "s": "\ud800"}"#;
        assert_eq!(slot_of(record, "n").0.kind(), Some(JsonKind::Number));
        assert_eq!(
            slot_of(record, "o").0.object_json(record),
            Some(r#"{"k": [1]}"#)
        );
        assert_eq!(slot_of(record, "l").0.kind(), Some(JsonKind::Array));
        assert_eq!(slot_of(record, "t").0, Slot::Bool(true));
        assert_eq!(slot_of(record, "z").0, Slot::Absent);
        assert_eq!(slot_of(record, "missing").0, Slot::Absent);
        let (lone_surrogate, source) = slot_of(record, "s");
        assert_eq!(lone_surrogate.kind(), Some(JsonKind::String));
        assert_eq!(lone_surrogate.as_str(source), None);
    }

    #[test]
    fn flags_read_booleans_and_their_strings_only() {
        let record = r#"{"b": false, "t": "true", "f": "false", "x": "yes", "n": 1}"#;
        assert_eq!(
            {
                let (slot, source) = slot_of(record, "b");
                slot.as_flag(source)
            },
            Some(false)
        );
        assert_eq!(
            {
                let (slot, source) = slot_of(record, "t");
                slot.as_flag(source)
            },
            Some(true)
        );
        assert_eq!(
            {
                let (slot, source) = slot_of(record, "f");
                slot.as_flag(source)
            },
            Some(false)
        );
        assert_eq!(
            {
                let (slot, source) = slot_of(record, "x");
                slot.as_flag(source)
            },
            None
        );
        assert_eq!(
            {
                let (slot, source) = slot_of(record, "n");
                slot.as_flag(source)
            },
            None
        );
    }
}
