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

/// A decoded JSON string: a range of the record (no escapes) or a decoded copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Text {
    InRecord(Span),
    Decoded(Box<str>),
}

/// One field of a record as parsed: absent (or `null`), a string, a boolean, or some
/// other JSON value kept as the range of its text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Slot {
    #[default]
    Absent,
    Str(Text),
    Bool(bool),
    /// A number, object or array; or a string whose escapes do not decode to
    /// Unicode (a lone surrogate), which has kind `String`.
    Json {
        kind: JsonKind,
        span: Span,
    },
}

impl Slot {
    /// Classifies `json`, the text of one well-formed JSON value inside `record`.
    pub(crate) fn read(record: &str, json: &str) -> Self {
        match json.as_bytes().first() {
            Some(b'"') => Self::read_string(record, json),
            Some(b't') => Self::Bool(true),
            Some(b'f') => Self::Bool(false),
            Some(b'n') => Self::Absent,
            Some(b'{') => Self::json(JsonKind::Object, record, json),
            Some(b'[') => Self::json(JsonKind::Array, record, json),
            _ => Self::json(JsonKind::Number, record, json),
        }
    }

    /// A string the scanner found in `record`.
    pub(crate) fn read_string_token(record: &str, token: super::scan::StrToken) -> Self {
        if !token.escaped {
            return Self::Str(Text::InRecord(Span {
                start: token.start,
                end: token.end,
            }));
        }
        let quoted = record.get(token.start as usize - 1..token.end as usize + 1);
        Self::read_string(record, quoted.unwrap_or("\"\""))
    }

    fn read_string(record: &str, json: &str) -> Self {
        // `json` is a complete JSON string literal, so it starts and ends with a quote.
        let inner = json.get(1..json.len().saturating_sub(1)).unwrap_or("");
        if !inner.contains('\\') {
            return Self::Str(Text::InRecord(Span::locate(record, inner)));
        }
        match serde_json::from_str::<String>(json) {
            Ok(decoded) => Self::Str(Text::Decoded(decoded.into_boxed_str())),
            Err(_) => Self::json(JsonKind::String, record, json),
        }
    }

    /// An object or array walked in place: `json` is its text inside `record`.
    pub(crate) fn read_container(record: &str, kind: JsonKind, json: &str) -> Self {
        Self::json(kind, record, json)
    }

    fn json(kind: JsonKind, record: &str, json: &str) -> Self {
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
            Self::Str(_) => Some(JsonKind::String),
            Self::Bool(_) => Some(JsonKind::Bool),
            Self::Json { kind, .. } => Some(*kind),
        }
    }

    /// The decoded string, when the value is a string.
    pub(crate) fn as_str<'a>(&'a self, record: &'a str) -> Option<&'a str> {
        match self {
            Self::Str(Text::InRecord(span)) => span.resolve(record),
            Self::Str(Text::Decoded(text)) => Some(text),
            _ => None,
        }
    }

    /// A boolean written either as JSON `true`/`false` or as the string
    /// `"true"`/`"false"`, as some services record `readOnly`.
    pub(crate) fn as_flag(&self, record: &str) -> Option<bool> {
        match self {
            Self::Bool(value) => Some(*value),
            Self::Str(_) => match self.as_str(record) {
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

    fn slot_of(record: &str, key: &str) -> Slot {
        let map: std::collections::BTreeMap<String, &RawValue> =
            serde_json::from_str(record).expect("object");
        map.get(key)
            .map_or(Slot::Absent, |value| Slot::read(record, value.get()))
    }

    #[test]
    fn plain_strings_are_ranges_of_the_record() {
        let record = r#"{"a": "plain text"}"#;
        let slot = slot_of(record, "a");
        assert!(matches!(slot, Slot::Str(Text::InRecord(_))));
        assert_eq!(slot.as_str(record), Some("plain text"));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let record = r#"{"a": "tab\there \u00e9 \/"}"#;
        let slot = slot_of(record, "a");
        assert!(matches!(slot, Slot::Str(Text::Decoded(_))));
        assert_eq!(slot.as_str(record), Some("tab\there é /"));
    }

    #[test]
    fn other_values_keep_their_kind_and_text() {
        let record =
            r#"{"n": 1.5E9, "o": {"k": [1]}, "l": [ ], "t": true, "z": null, "s": "\ud800"}"#;
        assert_eq!(slot_of(record, "n").kind(), Some(JsonKind::Number));
        assert_eq!(
            slot_of(record, "o").object_json(record),
            Some(r#"{"k": [1]}"#)
        );
        assert_eq!(slot_of(record, "l").kind(), Some(JsonKind::Array));
        assert_eq!(slot_of(record, "t"), Slot::Bool(true));
        assert_eq!(slot_of(record, "z"), Slot::Absent);
        assert_eq!(slot_of(record, "missing"), Slot::Absent);
        let lone_surrogate = slot_of(record, "s");
        assert_eq!(lone_surrogate.kind(), Some(JsonKind::String));
        assert_eq!(lone_surrogate.as_str(record), None);
    }

    #[test]
    fn flags_read_booleans_and_their_strings_only() {
        let record = r#"{"b": false, "t": "true", "f": "false", "x": "yes", "n": 1}"#;
        assert_eq!(slot_of(record, "b").as_flag(record), Some(false));
        assert_eq!(slot_of(record, "t").as_flag(record), Some(true));
        assert_eq!(slot_of(record, "f").as_flag(record), Some(false));
        assert_eq!(slot_of(record, "x").as_flag(record), None);
        assert_eq!(slot_of(record, "n").as_flag(record), None);
    }
}
