//! What the lake writer needs to know of a record before it converts it: which stores take
//! it (account, region, selectors), its event day and its sort key. The model's parse
//! ([`EventRecord`]) indexes and validates the whole record; the writer reads records the
//! event log holds, which ingest and the other producers validated with that very parse,
//! so it reads only these few fields here, in one pass that skips everything else
//! (profile, lake-bench README 2026-12-06: the model's parse was 18 % of the writer).
//!
//! Only plain records are read here: anything that would make an accessor of
//! [`EventRecord`] derive or decode a value (a field it reads that is absent, empty, of
//! another type where it reads a string, or written with escapes; a key given twice;
//! Insights and channel events) makes [`Facts::read`] answer `None`, and the writer parses
//! that record with the model as before. Where it answers, every value equals the model's
//! (a property test compares them).

use chrono::{DateTime, Utc};
use opentrail_model::EventRecord;
use opentrail_selectors::EventView;

use crate::json::{plain_run_end, skip_space, value_end};

/// The facts of one plain record, borrowed from its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Facts<'a> {
    pub(crate) text: &'a str,
    pub(crate) event_time: DateTime<Utc>,
    pub(crate) event_source: &'a str,
    pub(crate) event_name: &'a str,
    event_type: &'a str,
    event_category: &'a str,
    pub(crate) aws_region: &'a str,
    pub(crate) recipient_account_id: &'a str,
    read_only: Option<bool>,
    management_event: Option<bool>,
    session_credential_from_console: Option<bool>,
    error_code: Option<&'a str>,
    vpc_endpoint_id: Option<&'a str>,
    pub(crate) user_identity_arn: Option<&'a str>,
    /// (type, ARN or else ARNPrefix) of each element of `resources`.
    resources: Vec<(&'a str, &'a str)>,
}

/// A value as the facts need it: strings without escapes, booleans, anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value<'a> {
    /// Absent or `null`.
    Absent,
    Str(&'a str),
    Bool(bool),
    /// A number, object or array.
    Other,
}

impl<'a> Value<'a> {
    fn text(self) -> Option<&'a str> {
        match self {
            Self::Str(text) => Some(text),
            _ => None,
        }
    }

    /// A boolean, or the string "true"/"false" (as the model reads flags).
    fn flag(self) -> Option<bool> {
        match self {
            Self::Bool(value) => Some(value),
            Self::Str("true") => Some(true),
            Self::Str("false") => Some(false),
            _ => None,
        }
    }
}

/// Not a plain record: parse it with the model.
struct NotPlain;

type Read<T> = Result<T, NotPlain>;

/// A cursor over a record's bytes.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&mut self) -> Option<u8> {
        self.at = skip_space(self.bytes(), self.at);
        self.bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Read<()> {
        if self.peek() != Some(byte) {
            return Err(NotPlain);
        }
        self.at += 1;
        Ok(())
    }

    /// The string at the cursor (at its `"`), without escapes.
    fn string(&mut self) -> Read<&'a str> {
        let bytes = self.bytes();
        let start = self.at + 1;
        let mut end = start;
        loop {
            // Eight bytes at a time while eight are left, then one by one.
            end = plain_run_end(bytes, end);
            match bytes.get(end) {
                Some(b'"') => break,
                Some(b'\\') | None => return Err(NotPlain),
                Some(byte) if *byte < 0x20 => return Err(NotPlain),
                Some(_) => end += 1,
            }
        }
        self.at = end + 1;
        self.text.get(start..end).ok_or(NotPlain)
    }

    /// The value at the cursor; containers and other scalars are skipped by
    /// [`value_end`].
    fn value(&mut self) -> Read<Value<'a>> {
        if self.peek().ok_or(NotPlain)? == b'"' {
            return self.string().map(Value::Str);
        }
        let start = self.at;
        let end = value_end(self.bytes(), start).ok_or(NotPlain)?;
        self.at = end;
        Ok(match &self.bytes()[start..end] {
            b"null" => Value::Absent,
            b"true" => Value::Bool(true),
            b"false" => Value::Bool(false),
            _ => Value::Other,
        })
    }

    /// Calls `member` with each key of the object at the cursor (a key with escapes is not
    /// plain), the cursor at its value; `member` must consume the value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Read<()>) -> Read<()> {
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(NotPlain);
            }
            let key = self.string()?;
            self.eat(b':')?;
            self.peek();
            member(self, key)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(NotPlain),
            }
        }
    }
}

/// Sets `slot` once; a key given twice is not plain (the model refuses it).
fn set<'a>(slot: &mut Option<Value<'a>>, value: Value<'a>) -> Read<()> {
    if slot.replace(value).is_some() {
        return Err(NotPlain);
    }
    Ok(())
}

impl<'a> Facts<'a> {
    /// The facts of `text`, or `None` when it is not a plain record (see the module doc).
    pub(crate) fn read(text: &'a str) -> Option<Self> {
        Self::read_plain(text).ok()
    }

    fn read_plain(text: &'a str) -> Read<Self> {
        if !text.starts_with('{') {
            return Err(NotPlain);
        }
        let mut cursor = Cursor { text, at: 0 };
        let mut fields: [Option<Value<'a>>; 12] = [None; 12];
        let mut identity_arn = None;
        let mut identity_seen = false;
        let mut resources = None;
        cursor.object(|cursor, key| {
            let index = match key {
                "eventTime" => 0,
                "eventSource" => 1,
                "eventName" => 2,
                "eventType" => 3,
                "eventCategory" => 4,
                "awsRegion" => 5,
                "recipientAccountId" => 6,
                "readOnly" => 7,
                "managementEvent" => 8,
                "sessionCredentialFromConsole" => 9,
                "errorCode" => 10,
                "vpcEndpointId" => 11,
                "userIdentity" => {
                    if std::mem::replace(&mut identity_seen, true) {
                        return Err(NotPlain);
                    }
                    if cursor.peek() != Some(b'{') {
                        return cursor.value().map(drop);
                    }
                    return cursor.object(|cursor, key| {
                        if key != "arn" {
                            return cursor.value().map(drop);
                        }
                        let value = cursor.value()?;
                        set(&mut identity_arn, value)
                    });
                }
                "resources" => {
                    if resources.is_some() {
                        return Err(NotPlain);
                    }
                    resources = Some(read_resources(cursor)?);
                    return Ok(());
                }
                _ => return cursor.value().map(drop),
            };
            let value = cursor.value()?;
            set(&mut fields[index], value)
        })?;
        if cursor.peek().is_some() {
            return Err(NotPlain);
        }
        let field = |index: usize| fields[index].unwrap_or(Value::Absent);
        let required = |index: usize| field(index).text().ok_or(NotPlain);
        let event_time = required(0).map(opentrail_model::parse_event_time)?;
        let event_category = required(4)?;
        let recipient_account_id = required(6)?;
        if event_category.is_empty()
            || matches!(event_category, "Insight" | "ActivityAuditLog")
            || recipient_account_id.is_empty()
        {
            return Err(NotPlain);
        }
        Ok(Self {
            text,
            event_time: event_time.ok_or(NotPlain)?,
            event_source: field(1).text().unwrap_or(""),
            event_name: field(2).text().unwrap_or(""),
            event_type: required(3)?,
            event_category,
            aws_region: field(5).text().unwrap_or(""),
            recipient_account_id,
            read_only: field(7).flag(),
            management_event: field(8).flag(),
            session_credential_from_console: field(9).flag(),
            error_code: field(10).text(),
            vpc_endpoint_id: field(11).text(),
            user_identity_arn: identity_arn.and_then(Value::text),
            resources: resources.unwrap_or_default(),
        })
    }
}

/// The (type, ARN or else ARNPrefix) pairs of the `resources` value at the cursor: none
/// unless it is an array, whose elements must all be objects.
fn read_resources<'a>(cursor: &mut Cursor<'a>) -> Read<Vec<(&'a str, &'a str)>> {
    if cursor.peek() != Some(b'[') {
        return cursor.value().map(|_| Vec::new());
    }
    cursor.at += 1;
    let mut resources = Vec::new();
    if cursor.peek() == Some(b']') {
        cursor.at += 1;
        return Ok(resources);
    }
    loop {
        if cursor.peek() != Some(b'{') {
            return Err(NotPlain);
        }
        let (mut arn, mut prefix, mut kind) = (None, None, None);
        cursor.object(|cursor, key| {
            let slot = match key {
                "ARN" => &mut arn,
                "ARNPrefix" => &mut prefix,
                "type" => &mut kind,
                "accountId" => {
                    // Read only for the duplicate check the model makes.
                    return cursor.value().map(drop);
                }
                _ => return cursor.value().map(drop),
            };
            let value = cursor.value()?;
            set(slot, value)
        })?;
        let text = |slot: Option<Value<'a>>| slot.and_then(Value::text);
        resources.push((
            text(kind).unwrap_or(""),
            text(arn).or(text(prefix)).unwrap_or(""),
        ));
        match cursor.peek() {
            Some(b',') => cursor.at += 1,
            Some(b']') => {
                cursor.at += 1;
                return Ok(resources);
            }
            _ => return Err(NotPlain),
        }
    }
}

impl EventView for Facts<'_> {
    fn event_category(&self) -> &str {
        self.event_category
    }

    fn event_source(&self) -> &str {
        self.event_source
    }

    fn event_name(&self) -> &str {
        self.event_name
    }

    fn event_type(&self) -> &str {
        self.event_type
    }

    fn read_only(&self) -> Option<bool> {
        self.read_only
    }

    fn management_event(&self) -> bool {
        self.management_event
            .unwrap_or(self.event_category == "Management")
    }

    fn resources(&self) -> Vec<(String, String)> {
        self.resources
            .iter()
            .map(|&(kind, arn)| (kind.to_owned(), arn.to_owned()))
            .collect()
    }

    fn user_identity_arn(&self) -> Option<&str> {
        self.user_identity_arn
    }

    fn session_credential_from_console(&self) -> Option<bool> {
        self.session_credential_from_console
    }

    fn error_code(&self) -> Option<&str> {
        self.error_code
    }

    fn vpc_endpoint_id(&self) -> Option<&str> {
        self.vpc_endpoint_id
    }
}

/// A record as the writer sees it: read here, or parsed by the model (handed over by the
/// producer, or a record that is not plain).
pub(crate) enum Seen<'a> {
    Plain(Facts<'a>),
    Parsed(EventRecord),
}

impl<'a> Seen<'a> {
    /// `record`'s text seen: the producer's parse when the log kept it, else the facts,
    /// else the model's parse; `None` for what is not an event (provenance markers).
    pub(crate) fn of(bytes: &'a [u8], parsed: Option<&EventRecord>) -> Option<Self> {
        if let Some(event) = parsed {
            return Some(Self::Parsed(event.clone()));
        }
        let facts = std::str::from_utf8(bytes).ok().and_then(Facts::read);
        match facts {
            Some(facts) => Some(Self::Plain(facts)),
            None => EventRecord::from_slice(bytes).ok().map(Self::Parsed),
        }
    }

    pub(crate) fn view(&self) -> &dyn EventView {
        match self {
            Self::Plain(facts) => facts,
            Self::Parsed(event) => event,
        }
    }

    pub(crate) fn text(&self) -> &str {
        match self {
            Self::Plain(facts) => facts.text,
            Self::Parsed(event) => event.json(),
        }
    }

    pub(crate) fn event_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Plain(facts) => Some(facts.event_time),
            Self::Parsed(event) => event.event_time(),
        }
    }

    pub(crate) fn recipient_account_id(&self) -> &str {
        match self {
            Self::Plain(facts) => facts.recipient_account_id,
            Self::Parsed(event) => event.recipient_account_id(),
        }
    }

    pub(crate) fn aws_region(&self) -> &str {
        match self {
            Self::Plain(facts) => facts.aws_region,
            Self::Parsed(event) => event.aws_region(),
        }
    }

    /// The record's eventID (for messages; a plain record is parsed for it).
    pub(crate) fn event_id(&self) -> String {
        self.to_event()
            .map(|event| event.event_id().to_owned())
            .unwrap_or_default()
    }

    /// The Insights event's source (plain records are never Insights events).
    pub(crate) fn insight_source(&self) -> Option<String> {
        match self {
            Self::Plain(_) => None,
            Self::Parsed(event) => event.insight_source(),
        }
    }

    /// `metadata.channelARN` of a channel's event (plain records are never channel events).
    pub(crate) fn channel_arn(&self) -> Option<String> {
        match self {
            Self::Plain(_) => None,
            Self::Parsed(event) => crate::store::channel_arn(event),
        }
    }

    /// The model's record (the store's `eventContext` and the channel schema need it).
    pub(crate) fn to_event(&self) -> Option<EventRecord> {
        match self {
            Self::Plain(facts) => EventRecord::from_json(facts.text).ok(),
            Self::Parsed(event) => Some(event.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::conformance_events;
    use crate::direct::tests::{any_doc, identity, leaf, Doc};
    use proptest::prelude::*;
    use serde_json::Value as Json;

    /// Whether `text` has facts, and when it has, that they are the model's.
    fn agrees(text: &str) -> Result<bool, TestCaseError> {
        let facts = Facts::read(text);
        let Ok(event) = EventRecord::from_json(text) else {
            // Only records the model refuses may be read where it would not be; the log
            // holds none (producers parse every record with the model first).
            return Ok(false);
        };
        let Some(facts) = facts else {
            return Ok(false);
        };
        prop_assert_eq!(Some(facts.event_time), event.event_time(), "{}", text);
        prop_assert_eq!(facts.recipient_account_id, event.recipient_account_id());
        prop_assert_eq!(facts.aws_region, event.aws_region());
        prop_assert_eq!(facts.user_identity_arn, event.user_identity().arn);
        prop_assert_eq!(event.insight_source(), None);
        prop_assert!(event.event_category() != "ActivityAuditLog");
        // Everything selectors see, as one value.
        let seen = |view: &dyn EventView| {
            format!(
                "{:?}",
                (
                    (
                        view.event_category(),
                        view.event_source(),
                        view.event_name()
                    ),
                    (view.event_type(), view.read_only(), view.management_event()),
                    (
                        view.resources(),
                        view.user_identity_arn(),
                        view.error_code()
                    ),
                    (
                        view.session_credential_from_console(),
                        view.vpc_endpoint_id()
                    ),
                )
            )
        };
        prop_assert_eq!(seen(&facts), seen(&event), "{}", text);
        Ok(true)
    }

    #[test]
    fn conformance_records_have_the_models_facts() {
        let events = conformance_events();
        let mut plain = 0;
        for event in &events {
            if agrees(event.json()).unwrap() {
                plain += 1;
            }
        }
        // Every record AWS delivers today is plain; records before eventVersion 1.07
        // (no eventCategory) are not, and are read by the model.
        assert_eq!(plain, events.len());
    }

    #[test]
    fn what_is_not_plain_is_left_to_the_model() {
        let base = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/bob"},"eventTime":"2024-03-10T11:45:03Z","eventSource":"s3.amazonaws.com","eventName":"CreateBucket","awsRegion":"us-east-1","eventType":"AwsApiCall","recipientAccountId":"123456789012","eventCategory":"Management"}"#;
        assert!(agrees(base).unwrap());
        let changed = |from: &str, to: &str| {
            assert!(base.contains(from), "{from}");
            base.replacen(from, to, 1)
        };
        for text in [
            changed(r#""eventCategory":"Management""#, r#""eventCategory":"""#),
            changed(
                r#""eventCategory":"Management""#,
                r#""eventCategory":"Insight""#,
            ),
            changed(
                r#""eventCategory":"Management""#,
                r#""eventCategory":"ActivityAuditLog""#,
            ),
            changed(r#","eventType":"AwsApiCall""#, ""),
            changed(
                r#""recipientAccountId":"123456789012""#,
                r#""recipientAccountId":"""#,
            ),
            changed(
                r#""eventName":"CreateBucket""#,
                r#""eventName":"Create\u0042ucket""#,
            ),
            changed(r#""eventName""#, r#""event\u004eame""#),
            changed(
                r#""eventTime":"2024-03-10T11:45:03Z""#,
                r#""eventTime":"2024-03-10""#,
            ),
            changed(
                r#""awsRegion":"us-east-1""#,
                r#""awsRegion":"us-east-1","awsRegion":"x""#,
            ),
            format!(" {base}"),
            format!("{base} x"),
            "\u{1}provenance".to_string(),
        ] {
            assert!(Facts::read(&text).is_none(), "{text}");
        }
    }

    /// Mostly the first of `values` (what records hold), else any of them or any leaf.
    fn text_of(values: &'static [&'static str]) -> BoxedStrategy<Doc> {
        let text = |text: &str| Doc::Leaf(Json::String(text.into()));
        prop_oneof![
            12 => Just(text(values[0])),
            4 => proptest::sample::select(values.to_vec()).prop_map(text),
            1 => leaf(),
        ]
        .boxed()
    }

    fn flag() -> BoxedStrategy<Doc> {
        text_of(&["true", "false", "True", ""])
            .prop_union(
                any::<bool>()
                    .prop_map(|flag| Doc::Leaf(Json::Bool(flag)))
                    .boxed(),
            )
            .boxed()
    }

    fn resources() -> BoxedStrategy<Doc> {
        let member = prop_oneof![
            (
                proptest::sample::select(vec!["ARN", "ARNPrefix", "type", "accountId", "x"]),
                text_of(&["AWS::S3::Object", "arn:aws:s3:::b/k", "123456789012"]),
            ),
            (Just("arn"), leaf()),
        ];
        let element = prop_oneof![
            8 => proptest::collection::vec(member, 0..4).prop_map(|members| Doc::Object(
                members
                    .into_iter()
                    .map(|(key, value)| (key.to_string(), false, value))
                    .collect()
            )),
            1 => leaf(),
        ];
        prop_oneof![
            6 => proptest::collection::vec(element, 0..4).prop_map(Doc::Array),
            1 => leaf(),
        ]
        .boxed()
    }

    /// Records close to what CloudTrail writes, with now and then a member missing, given
    /// twice, of another type or escaped; members in any order, any spacing.
    fn record() -> impl Strategy<Value = String> {
        let members: Vec<(&'static str, BoxedStrategy<Doc>)> = vec![
            ("eventVersion", text_of(&["1.08", "1.11", "1.05"])),
            ("userIdentity", identity()),
            (
                "eventTime",
                text_of(&["2024-03-10T11:45:03Z", "2024-02-30T00:00:00Z", "2024-03-10"]),
            ),
            (
                "eventSource",
                text_of(&["s3.amazonaws.com", "signin.amazonaws.com"]),
            ),
            (
                "eventName",
                text_of(&["GetObject", "ConsoleLogin", "a\\\"b"]),
            ),
            ("awsRegion", text_of(&["us-east-1", "eu-west-1"])),
            ("errorCode", text_of(&["AccessDenied", ""])),
            ("requestParameters", any_doc()),
            ("readOnly", flag()),
            ("managementEvent", flag()),
            ("resources", resources()),
            ("eventType", text_of(&["AwsApiCall", "AwsVpceEvent", ""])),
            (
                "eventCategory",
                text_of(&["Management", "Data", "NetworkActivity", "Insight", ""]),
            ),
            ("recipientAccountId", text_of(&["123456789012", "", "12"])),
            ("vpcEndpointId", text_of(&["vpce-1", ""])),
            ("sessionCredentialFromConsole", flag()),
            ("insightDetails", any_doc()),
            ("other", any_doc()),
        ];
        let (keys, values): (Vec<_>, Vec<_>) = members.into_iter().unzip();
        (
            values,
            proptest::collection::vec(proptest::bool::weighted(0.97), keys.len()),
            proptest::option::weighted(0.05, 0..keys.len()),
            proptest::sample::select(vec!["", " ", "\n\t"]),
            any::<u64>(),
        )
            .prop_map(move |(values, present, twice, gap, seed)| {
                let mut members: Vec<(String, bool, Doc)> = keys
                    .iter()
                    .zip(values)
                    .zip(present)
                    .filter(|(_, present)| *present)
                    .map(|((key, value), _)| (key.to_string(), false, value))
                    .collect();
                if let Some(index) = twice.filter(|&index| index < members.len()) {
                    let again = members[index].clone();
                    members.push(again);
                }
                // A fixed shuffle per seed.
                let len = members.len();
                for index in (1..len).rev() {
                    let other = (seed.rotate_left(index as u32) % (index as u64 + 1)) as usize;
                    members.swap(index, other);
                }
                let mut text = String::new();
                Doc::Object(members).write(gap, &mut text);
                text.trim().to_string()
            })
    }

    /// The records above reach the comparison often enough to mean something.
    #[test]
    fn generated_records_are_often_plain() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = record();
        let (mut plain, mut model, cases) = (0, 0, 2000);
        for _ in 0..cases {
            let text = strategy.new_tree(&mut runner).unwrap().current();
            model += usize::from(EventRecord::from_json(&text).is_ok());
            plain += usize::from(agrees(&text).unwrap());
        }
        eprintln!("{plain} plain, {model} parsed by the model, of {cases}");
        assert!(plain * 10 >= cases, "{plain} plain of {cases}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Wherever a record reads as plain, its facts are the model's.
        #[test]
        fn plain_facts_are_the_models(text in record()) {
            agrees(&text)?;
        }
    }
}
