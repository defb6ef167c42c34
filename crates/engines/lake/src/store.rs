//! What the lake needs to know of an event data store; the control plane (crates/services)
//! owns stores and hands the lake their current specs through [`StoreCatalog`].

use crate::context::ContextKeys;
use crate::facts::Seen;
use datafusion::arrow::datatypes::SchemaRef;
use opentrail_model::EventRecord;
use opentrail_selectors::{AdvancedEventSelector, TrailSelectors};

/// The table a store's files hold: which events go in and the columns they get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreSchema {
    /// Management, data and network activity events ([`crate::events_schema`]).
    #[default]
    CloudTrailEvents,
    /// Events sent through channels with PutAuditEvents ([`crate::activity_schema`]).
    ActivityAuditLog,
}

impl StoreSchema {
    /// The table queries see.
    pub fn arrow_schema(self) -> SchemaRef {
        match self {
            Self::CloudTrailEvents => crate::events_schema(),
            Self::ActivityAuditLog => crate::activity_schema(),
        }
    }

    /// The columns of the files the writer stores (what external readers of the files,
    /// such as a federated table, see): for CloudTrail events the typed columns and
    /// `eventjsonskeleton` instead of `eventjson` and `eventjsonchecksum`.
    pub fn file_schema(self) -> SchemaRef {
        match self {
            Self::CloudTrailEvents => crate::events_file_schema(),
            Self::ActivityAuditLog => crate::activity_schema(),
        }
    }
}

/// One event data store the lake writes, as the lake sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store id: the last part of its ARN and its table name in SQL.
    pub id: String,
    /// The owning account; only events whose `recipientAccountId` is this account go in.
    pub account: String,
    pub home_region: String,
    /// Events of every region when true, else only of `home_region`.
    pub multi_region: bool,
    /// The store's effective advanced selectors (the control plane fills in AWS's default,
    /// all management events, when none were given). An empty list selects nothing.
    pub advanced_selectors: Vec<AdvancedEventSelector>,
    /// `StartEventDataStoreIngestion`/`Stop…`: a stopped store receives nothing (but the
    /// events logged before it stopped, below `until_offset`).
    pub ingestion_enabled: bool,
    /// Whole days of events kept, counted back from today (UTC) by event day.
    pub retention_days: u32,
    /// The first log offset whose event the store may hold: the log's end when the store
    /// was created or its ingestion last (re)started. A store collects events from its
    /// creation on, never the log's history (AWS brings history in with imports).
    pub from_offset: u64,
    /// The log's end when ingestion last stopped (or the store was deleted): events below
    /// it that the writer had not reached yet still go in; none at or after it.
    pub until_offset: Option<u64>,
    /// An Insights event data store: the ARNs of the source stores whose Insights events
    /// (their `insightSource`) it receives, and nothing else. `None` for other stores,
    /// which never receive an event data store's Insights events.
    pub insights_from: Option<Vec<String>>,
    pub schema: StoreSchema,
    /// ActivityAuditLog stores: the ARNs of the channels whose destinations include the
    /// store; only their events (by `metadata.channelARN`) go in.
    pub channels: Vec<String>,
    /// PutEventConfiguration's MaxEventSize in bytes: a larger event (its JSON record as
    /// logged) is left out of the store.
    pub max_event_bytes: usize,
    /// PutEventConfiguration's ContextKeySelectors: the `eventContext` the store's events
    /// get (none when empty).
    pub context_keys: ContextKeys,
}

/// The largest event a store keeps by default (MaxEventSize Standard, 256 KB).
pub const STANDARD_MAX_EVENT_BYTES: usize = 256 * 1024;

impl StoreSpec {
    /// Whether the store collects the event logged at `offset` (its selectors aside).
    pub fn collects_offset(&self, offset: u64) -> bool {
        offset >= self.from_offset
            && match self.until_offset {
                Some(until) => offset < until,
                None => self.ingestion_enabled,
            }
    }

    /// Whether the store may collect any event logged in `first..=last`.
    pub(crate) fn collects_any(&self, first: u64, last: u64) -> bool {
        last >= self.from_offset
            && match self.until_offset {
                Some(until) => first < until,
                None => self.ingestion_enabled,
            }
    }
}

/// The current event data stores, asked once per batch of events (keep it cheap). When
/// they cannot be read ([`crate::LakeError::Catalog`]) the batch is not written: the
/// writer retries it from its cursor, so no store misses an event.
pub trait StoreCatalog: Send + Sync + 'static {
    fn stores(&self) -> crate::Result<Vec<StoreSpec>>;

    /// The stores whose federation is enabling, enabled or disabling (EnableFederation):
    /// the writer publishes their Iceberg tables, keeps them current, or removes them.
    fn federated(&self) -> crate::Result<Vec<crate::FederatedStore>> {
        Ok(Vec::new())
    }

    /// The writer published the table of a store that was enabling (`enabled` true: now
    /// ENABLED) or removed the table of one that was disabling (`enabled` false: DISABLED).
    fn federation_settled(&self, store: &str, enabled: bool) -> crate::Result<()> {
        let _ = (store, enabled);
        Ok(())
    }
}

/// A fixed list of stores (tests, and callers that rebuild it on change).
impl StoreCatalog for Vec<StoreSpec> {
    fn stores(&self) -> crate::Result<Vec<StoreSpec>> {
        Ok(self.clone())
    }
}

/// A store's spec prepared for matching many events.
pub(crate) struct StoreFilter {
    pub(crate) spec: StoreSpec,
    selectors: TrailSelectors,
}

impl StoreFilter {
    pub(crate) fn new(spec: StoreSpec) -> Self {
        let selectors = TrailSelectors::Advanced(spec.advanced_selectors.clone());
        Self { spec, selectors }
    }

    /// Whether the store records `event`, logged at `offset`: collected offsets, its
    /// account, one of its regions, its selectors.
    pub(crate) fn admits(&self, offset: u64, event: &Seen<'_>) -> bool {
        self.spec.collects_offset(offset)
            && event.recipient_account_id() == self.spec.account
            && (self.spec.multi_region || event.aws_region() == self.spec.home_region)
            && self.admits_insights(event)
            && self.takes_channel_events_of(event)
    }

    /// An Insights store takes exactly its sources' Insights events; another store never
    /// takes an event data store's Insights events, and its selectors decide the rest.
    fn admits_insights(&self, event: &Seen<'_>) -> bool {
        let source = event.insight_source();
        match &self.spec.insights_from {
            Some(sources) => source.is_some_and(|source| sources.contains(&source)),
            None => source.is_none() && self.selectors.matches(event.view()),
        }
    }

    /// ActivityAuditLog stores take only the events of channels that name them as a
    /// destination; other stores take no channel events whatever their selectors.
    fn takes_channel_events_of(&self, event: &Seen<'_>) -> bool {
        let channel = event.channel_arn();
        match self.spec.schema {
            StoreSchema::ActivityAuditLog => {
                channel.is_some_and(|arn| self.spec.channels.contains(&arn))
            }
            StoreSchema::CloudTrailEvents => channel.is_none(),
        }
    }
}

/// `metadata.channelARN` of an event sent through a channel.
pub(crate) fn channel_arn(event: &EventRecord) -> Option<String> {
    if event.event_category() != "ActivityAuditLog" {
        return None;
    }
    let record: serde_json::Value = serde_json::from_str(event.json()).ok()?;
    record
        .get("metadata")?
        .get("channelARN")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `event` as the writer sees it (plain records through their facts).
    fn seen(event: &EventRecord) -> Seen<'_> {
        Seen::of(event.as_bytes(), None).unwrap()
    }
    use opentrail_selectors::{AdvancedFieldSelector, Operator};

    fn spec() -> StoreSpec {
        StoreSpec {
            id: "store".into(),
            account: "123456789012".into(),
            home_region: "us-east-1".into(),
            multi_region: false,
            advanced_selectors: vec![AdvancedEventSelector {
                name: Some("Default management events".into()),
                field_selectors: vec![AdvancedFieldSelector::new("eventCategory")
                    .with(Operator::Equals, ["Management"])],
            }],
            ingestion_enabled: true,
            retention_days: 366,
            from_offset: 0,
            until_offset: None,
            insights_from: None,
            schema: StoreSchema::CloudTrailEvents,
            channels: vec![],
            max_event_bytes: STANDARD_MAX_EVENT_BYTES,
            context_keys: ContextKeys::default(),
        }
    }

    fn event(account: &str, region: &str, category: &str) -> EventRecord {
        EventRecord::from_json(&format!(
            r#"{{"eventVersion":"1.09","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"{region}","eventID":"e","eventType":"AwsApiCall","recipientAccountId":"{account}","eventCategory":"{category}","managementEvent":{}}}"#,
            category == "Management"
        ))
        .unwrap()
    }

    #[test]
    fn admits_by_account_region_selectors_and_ingestion() {
        let filter = StoreFilter::new(spec());
        assert!(filter.admits(5, &seen(&event("123456789012", "us-east-1", "Management"))));
        assert!(!filter.admits(5, &seen(&event("210987654321", "us-east-1", "Management"))));
        assert!(!filter.admits(5, &seen(&event("123456789012", "eu-west-1", "Management"))));
        assert!(!filter.admits(5, &seen(&event("123456789012", "us-east-1", "Data"))));
        let multi = StoreFilter::new(StoreSpec {
            multi_region: true,
            ..spec()
        });
        assert!(multi.admits(5, &seen(&event("123456789012", "eu-west-1", "Management"))));
        let stopped = StoreFilter::new(StoreSpec {
            ingestion_enabled: false,
            ..spec()
        });
        assert!(!stopped.admits(5, &seen(&event("123456789012", "us-east-1", "Management"))));
    }

    #[test]
    fn admits_only_the_offsets_collected() {
        let management = event("123456789012", "us-east-1", "Management");
        let created_later = StoreFilter::new(StoreSpec {
            from_offset: 10,
            ..spec()
        });
        assert!(!created_later.admits(9, &seen(&management)));
        assert!(created_later.admits(10, &seen(&management)));
        assert!(created_later.admits(1_000, &seen(&management)));
        // Stopped at 20: what was logged before still goes in, nothing after.
        let stopped = StoreFilter::new(StoreSpec {
            from_offset: 10,
            until_offset: Some(20),
            ingestion_enabled: false,
            ..spec()
        });
        assert!(!stopped.admits(9, &seen(&management)));
        assert!(stopped.admits(19, &seen(&management)));
        assert!(!stopped.admits(20, &seen(&management)));
        assert!(stopped.spec.collects_any(0, 10));
        assert!(stopped.spec.collects_any(19, 30));
        assert!(!stopped.spec.collects_any(0, 9));
        assert!(!stopped.spec.collects_any(20, 30));
        let never = StoreSpec {
            ingestion_enabled: false,
            ..spec()
        };
        assert!(!never.collects_offset(0));
        assert!(!never.collects_any(0, u64::MAX));
    }

    #[test]
    fn an_insights_store_takes_only_its_sources_insights_events() {
        let insight = |source: Option<&str>| {
            let source = source.map_or(String::new(), |arn| format!(r#""insightSource":"{arn}","#));
            EventRecord::from_json(&format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","awsRegion":"us-east-1","eventID":"i","eventType":"AwsCloudTrailInsight","recipientAccountId":"123456789012","sharedEventID":"s",{source}"insightDetails":{{"state":"Start","eventSource":"ssm.amazonaws.com","eventName":"SendCommand","insightType":"ApiCallRateInsight","insightContext":{{}}}},"eventCategory":"Insight"}}"#
            ))
            .unwrap()
        };
        let insights_store = StoreFilter::new(StoreSpec {
            advanced_selectors: vec![AdvancedEventSelector {
                name: None,
                field_selectors: vec![
                    AdvancedFieldSelector::new("eventCategory").with(Operator::Equals, ["Insight"])
                ],
            }],
            insights_from: Some(vec!["arn:src".into()]),
            ..spec()
        });
        assert!(insights_store.admits(5, &seen(&insight(Some("arn:src")))));
        assert!(!insights_store.admits(5, &seen(&insight(Some("arn:other")))));
        assert!(!insights_store.admits(5, &seen(&insight(None))));
        assert!(!insights_store.admits(5, &seen(&event("123456789012", "us-east-1", "Management"))));
        let events_store = StoreFilter::new(spec());
        assert!(!events_store.admits(5, &seen(&insight(Some("arn:src")))));
    }
}
